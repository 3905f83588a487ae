// latentkit curate: a few labelled images -> a classifier on image features -> the matching images of
// a large folder or zip as a new dataset.
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <numeric>

#include "common.h"
#include "latentkit/atomic_file.h"
#include "latentkit/classifier.h"
#include "latentkit/error.h"
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

// LABELS.csv: `file,label` rows (an optional header), files named as in the source, labels 1 or 0.
std::map<size_t, int> read_labels(const Opts& o, const io::ImageSource& src) {
    std::map<std::string, size_t> index;
    for (size_t k = 0; k < src.names.size(); ++k) index[src.names[k]] = k;
    std::map<size_t, int> labels;
    const auto rows = read_csv(o.labels);
    for (size_t r = 0; r < rows.size(); ++r) {
        const auto& row = rows[r];
        if (r == 0 && row.size() >= 2 && row[1] != "0" && row[1] != "1") continue;  // a header
        if (row.size() != 2) throw ArgumentError(fmt::format("{}: line {}: expected file,label", o.labels, r + 1));
        if (row[1] != "0" && row[1] != "1") throw ArgumentError(fmt::format("{}: line {}: the label must be 1 or 0, not '{}'", o.labels, r + 1, row[1]));
        const auto it = index.find(row[0]);
        if (it == index.end()) throw ArgumentError(fmt::format("{}: line {}: '{}' is not among the images of {}", o.labels, r + 1, row[0], o.images));
        labels[it->second] = row[1] == "1";
    }
    if (labels.empty()) throw ArgumentError(o.labels + ": holds no labels");
    return labels;
}

std::vector<float> flat(const std::vector<std::vector<float>>& rows, const std::vector<size_t>& which) {
    std::vector<float> out;
    for (size_t k : which) out.insert(out.end(), rows[k].begin(), rows[k].end());
    return out;
}

void print_table(const std::vector<PrecisionRecall>& table) {
    fmt::print("held-out precision / recall of the labelled images by threshold:\n  threshold  precision  recall  accuracy  chosen\n");
    for (const auto& r : table)
        fmt::print("  {:9.2f}  {:9.3f}  {:6.3f}  {:8.3f}  {:6}\n", r.threshold, r.precision, r.recall, r.accuracy, r.selected);
}

void write_report(const Opts& o, const io::ImageSource& src, const std::vector<double>& p, const std::map<size_t, int>& labels,
                  const std::vector<size_t>& order) {
    std::string csv = "rank,file,probability,label\n";
    for (size_t r = 0; r < order.size(); ++r) {
        const auto it = labels.find(order[r]);
        csv += fmt::format("{},{},{:.6f},{}\n", r + 1, csv_field(src.names[order[r]]), p[order[r]], it == labels.end() ? "" : std::to_string(it->second));
    }
    write_file_atomic(o.report, csv.data(), csv.size());
}

void run(const Opts& o) {
    if (o.out.empty() && o.report.empty()) throw ArgumentError("give --out DEST and/or --report RANKED.csv");
    const io::ImageSource src(o.images);
    if (src.names.empty()) throw IoError(o.images + ": holds no images");
    const std::map<size_t, int> labels = read_labels(o, src);
    LabelledRows rows;
    std::vector<size_t> labelled;
    for (const auto& [k, y] : labels) labelled.push_back(k), rows.y.push_back(y);
    const auto positives = std::count(rows.y.begin(), rows.y.end(), 1);
    if (positives == 0 || positives == static_cast<long>(rows.y.size()))
        throw ArgumentError(fmt::format("{}: every label is {}: label some images 1 and some 0", o.labels, positives ? 1 : 0));
    const auto extractor = io::make_feature_extractor(o.features, device_from_name(o.device).str());
    log_info(fmt::format("{}: {} images, {} labelled ({} of them 1); features: {}", o.images, src.names.size(), labelled.size(), positives,
                         extractor->describe()));
    const std::string cache = o.no_cache ? "" : !o.cache.empty() ? o.cache : io::cache_dir() + "/features";
    ProgressBar bar("features", static_cast<int64_t>(src.names.size()), "img");
    const auto features = io::source_features(src, *extractor, cache, [&](size_t done, size_t) {
        bar.update(static_cast<int64_t>(done));
        return true;
    });
    bar.finish();
    rows.n = static_cast<int64_t>(labelled.size());
    rows.d = static_cast<int64_t>(features[0].size());
    rows.x = flat(features, labelled);
    const int folds = static_cast<int>(std::min<long>(o.folds, std::min<long>(positives, rows.n - positives)));
    if (folds >= 2) {
        const std::vector<double> held_out = cross_validated_probabilities(rows, folds, 0);
        print_table(precision_recall(held_out, rows.y, {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9}));
        const auto at = precision_recall(held_out, rows.y, {o.threshold})[0];
        fmt::print("{}-fold held-out accuracy {:.3f} at threshold {}\n", folds, at.accuracy, o.threshold);
    } else {
        log_warn("too few labels of one class for cross-validation (give at least 2 of each): no held-out accuracy");
    }
    std::vector<size_t> all(src.names.size());
    std::iota(all.begin(), all.end(), 0);
    const std::vector<double> p = LinearClassifier::fit(rows).probabilities(flat(features, all), rows.d);
    std::vector<size_t> order = all;
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return p[a] > p[b]; });
    if (!o.report.empty()) write_report(o, src, p, labels, order);
    if (o.out.empty()) return;
    io::DatasetSink sink(o.out, "curate.out");
    size_t chosen = 0;
    for (size_t k : order) {
        const auto it = labels.find(k);
        if (it != labels.end() ? it->second == 1 : p[k] >= o.threshold) sink.add(src.names[k], src.bytes(k)), ++chosen;
    }
    sink.finish("{\"labels\": null}\n");
    log_info(fmt::format("wrote {}: {} of {} images (labelled 1, or unlabelled with probability >= {})", o.out, chosen, src.names.size(), o.threshold));
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
