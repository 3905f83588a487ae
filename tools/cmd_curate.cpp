// latentkit curate: a few labelled images -> a classifier on image features -> the matching images of
// a large folder or zip as a new dataset.
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <numeric>

#include "common.h"
#include "latentkit/io/csv.h"
#include "latentkit/atomic_file.h"
#include "latentkit/classifier.h"
#include "latentkit/error.h"
#include "latentkit/io/curate.h"
#include "latentkit/io/dataset.h"
#include "latentkit/io/download.h"
#include "latentkit/io/image_features.h"
#include "latentkit/log.h"
#include "progress_bar.h"

namespace latentkit::tools {
namespace {

struct Opts {
    std::string images, labels, features, out, report, device = "cpu", cache;
    double threshold = 0.5;
    int folds = 5;
    bool no_cache = false;
};

void print_table(const std::vector<PrecisionRecall>& table) {
    fmt::print("held-out precision / recall of the labelled images by threshold:\n  threshold  precision  recall  accuracy  chosen\n");
    for (const auto& r : table)
        fmt::print("  {:9.2f}  {:9.3f}  {:6.3f}  {:8.3f}  {:6}\n", r.threshold, r.precision, r.recall, r.accuracy, r.selected);
}

void write_report(const Opts& o, const io::Curator& c) {
    const auto& p = c.probabilities();
    std::vector<size_t> order(p.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return p[a] > p[b]; });
    std::string csv = "rank,file,probability,label\n";
    for (size_t r = 0; r < order.size(); ++r) {
        const int label = c.labels()[order[r]];
        csv += fmt::format("{},{},{:.6f},{}\n", r + 1, io::csv_field(c.source().names[order[r]]), p[order[r]], label < 0 ? "" : std::to_string(label));
    }
    write_file_atomic(o.report, csv.data(), csv.size());
}

void run(const Opts& o) {
    if (o.out.empty() && o.report.empty()) throw ArgumentError("give --out DEST and/or --report RANKED.csv");
    io::Curator c(o.images);
    c.read_labels(o.labels);  // before any network is loaded or feature computed: bad labels fail at once
    const auto extractor = io::make_feature_extractor(o.features, device_from_name(o.device).str());
    const std::string cache = o.no_cache ? "" : !o.cache.empty() ? o.cache : io::cache_dir() + "/features";
    {
        ProgressBar bar("features", static_cast<int64_t>(c.size()), "img");
        c.compute_features(*extractor, cache, [&](size_t done, size_t) {
            bar.update(static_cast<int64_t>(done));
            return true;
        });
        bar.finish();
    }
    const auto [ones, zeros] = c.counts();
    log_info(fmt::format("{}: {} images, {} labelled ({} of them 1); features: {}", o.images, c.size(), ones + zeros, ones, extractor->describe()));
    c.fit(o.labels);
    const int folds = static_cast<int>(std::min<size_t>(static_cast<size_t>(o.folds), std::min(ones, zeros)));
    if (folds >= 2) {
        const auto [held, labels] = c.held_out(folds);
        print_table(precision_recall(held, labels, {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9}));
        fmt::print("{}-fold held-out accuracy {:.3f} at threshold {}\n", folds, precision_recall(held, labels, {o.threshold})[0].accuracy, o.threshold);
    } else {
        log_warn("too few labels of one class for cross-validation (give at least 2 of each): no held-out accuracy");
    }
    if (!o.report.empty()) write_report(o, c);
    if (o.out.empty()) return;
    const size_t chosen = c.write_dataset(o.out, o.threshold, "curate.out");
    log_info(fmt::format("wrote {}: {} of {} images (labelled 1, or unlabelled with probability >= {})", o.out, chosen, c.size(), o.threshold));
}

}  // namespace

void register_curate(CLI::App& app) {
    auto o = std::make_shared<Opts>();
    auto* cmd = app.add_subcommand("curate", "Pick the images of a folder or zip that look like the ones labelled 1, from a few labels");
    cmd->add_option("--images", o->images, "Folder (searched recursively) or zip of images")->required();
    cmd->add_option("--labels", o->labels, "CSV of file,label (1 or 0) for some of the images, names as inside --images")->required();
    cmd->add_option("--features", o->features, "Image features: builtin (default, no download), D:MODEL (a model's discriminator), or a "
                                                "TorchScript network by path or URL (e.g. the reference's vgg16.pt)");
    cmd->add_option("--threshold", o->threshold, "Keep unlabelled images whose probability is at least this")->check(CLI::Range(0.0, 1.0));
    cmd->add_option("--out", o->out, "The chosen images as a new dataset: a folder, or a .zip (with dataset.json), for `latentkit dataset`");
    cmd->add_option("--report", o->report, "Every image ranked: rank,file,probability,label");
    cmd->add_option("--folds", o->folds, "Folds of the held-out accuracy")->check(CLI::Range(2, 20));
    cmd->add_option("--cache", o->cache, "Folder of cached features (default: the download cache's features/)");
    cmd->add_flag("--no-cache", o->no_cache, "Compute every feature again and keep none");
    add_device_option(cmd, o->device);
    cmd->callback([o]() { run(*o); });
}

}  // namespace latentkit::tools
