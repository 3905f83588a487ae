// latentkit dataset: folders, zips and videos to a training dataset in the reference layout.
#include <fmt/format.h>

#include <memory>

#include "common.h"
#include "latentkit/error.h"
#include "latentkit/io/dataset.h"
#include "latentkit/log.h"
#include "latentkit/stop.h"
#include "progress_bar.h"

namespace latentkit::tools {
namespace {

struct Opts {
    io::DatasetOptions d;
    std::string transform = "center-crop", background = "0,0,0";
    bool gray = false;
};

std::array<uint8_t, 3> parse_rgb(const std::string& text) {
    std::array<uint8_t, 3> c{};
    std::vector<uint64_t> v;
    size_t p = 0;
    while (p <= text.size()) {
        const size_t q = std::min(text.find(',', p), text.size());
        try {
            size_t used = 0;
            const int x = std::stoi(text.substr(p, q - p), &used);
            if (used != q - p || x < 0 || x > 255) throw std::out_of_range("");
            v.push_back(static_cast<uint64_t>(x));
        } catch (const std::exception&) {
            throw ArgumentError("--background must be R,G,B with values 0 to 255, not '" + text + "'");
        }
        p = q + 1;
    }
    if (v.size() != 3) throw ArgumentError("--background must be R,G,B with values 0 to 255, not '" + text + "'");
    for (int k = 0; k < 3; ++k) c[k] = static_cast<uint8_t>(v[k]);
    return c;
}

void run(Opts& o) {
    o.d.transform = io::parse_dataset_transform(o.transform);
    o.d.channels = o.gray ? 1 : 3;
    o.d.background = parse_rgb(o.background);
    log_info(fmt::format("building {} from {}", o.d.dest, o.d.source));
    std::unique_ptr<ProgressBar> bar;
    const io::DatasetSummary s = io::prepare_dataset(o.d, [&](size_t done, size_t total) {
        if (total == 0) return true;
        if (!bar) bar = std::make_unique<ProgressBar>("dataset", static_cast<int64_t>(total), "img");
        bar->update(static_cast<int64_t>(done));
        return !stop_requested();
    });
    if (bar) bar->finish();
    for (const auto& [file, why] : s.unreadable) log_warn(fmt::format("skipped {}: {}", file, describe(why)));
    if (s.unlabeled > 0) log_warn(fmt::format("{} image(s) have no label in dataset.json: the dataset is written without labels", s.unlabeled));
    std::string dropped;
    auto part = [&](size_t n, const char* what) {
        if (n) dropped += fmt::format("{}{} {}", dropped.empty() ? "" : ", ", n, what);
    };
    part(s.unreadable.size() - s.not_square, "unreadable or unlabelled");
    part(s.not_square, "not square");
    part(s.no_face, "without a face");
    part(s.duplicates, "duplicates");
    part(s.over_limit, "over --max-images");
    log_info(fmt::format("{}: kept {} image(s) at {}x{}{}{}; dropped {}", o.d.dest, s.kept, o.d.resolution, o.d.resolution,
                         o.d.channels == 1 ? " gray" : "", s.label_dim ? fmt::format(", {} label(s)", s.label_dim) : "",
                         dropped.empty() ? "none" : dropped));
}

}  // namespace

void register_dataset(CLI::App& app) {
    auto o = std::make_shared<Opts>();
    auto* cmd = app.add_subcommand("dataset", "Build a training dataset (reference layout) from a folder, zip or video");
    cmd->add_option("--source,-s", o->d.source, "Folder of images (recursive), .zip, or a video file")->required();
    cmd->add_option("--dest,-d", o->d.dest, "Output .zip, or a new folder")->required();
    cmd->add_option("--resolution,-r", o->d.resolution, "Output size (power of two)")->required();
    cmd->add_option("--transform", o->transform, "none, center-crop (default), center-crop-wide, pad or face-align (the reference's default is none)")
        ->check(CLI::IsMember({"none", "center-crop", "center-crop-wide", "pad", "face-align"}));
    add_enum_option(cmd, "--filter", o->d.filter, "Resize filter (default lanczos: the reference dataset tool's anti-aliased Lanczos, pixel for pixel; auto: area down, lanczos up; lanczos4: OpenCV's)");
    cmd->add_flag("--gray", o->gray, "Grayscale output (default RGB)");
    cmd->add_option("--background", o->background, "R,G,B behind transparent pixels and padding");
    cmd->add_flag("--labels-from-folders", o->d.labels_from_folders, "Class label = name of the first sub-folder (else dataset.json)");
    cmd->add_flag("--keep-unlabeled", o->d.keep_unlabeled, "Keep images that dataset.json gives no label, and write the dataset "
                                                         "without labels (the reference's rule; default: skip them)");
    cmd->add_option("--max-images", o->d.max_images, "Keep at most this many images");
    cmd->add_option("--dedupe", o->d.dedupe_bits, "Drop near-duplicates: perceptual hashes within this many bits (0 = identical)")
        ->check(CLI::Range(0, 32));
    cmd->add_option("--fps", o->d.video_fps, "Video: frames per second to take (default: every --every-th frame)")->check(above(0));
    cmd->add_option("--every", o->d.every_nth, "Video: take every n-th frame")->check(above(0));
    cmd->add_option("--start", o->d.start_s, "Video: start time in seconds")->check(at_least(0));
    cmd->add_option("--end", o->d.end_s, "Video: end time in seconds");
    cmd->add_option("--landmarks", o->d.landmark_model, "face-align: dlib 68-point landmark model");
    cmd->callback([o]() { run(*o); });
}

}  // namespace latentkit::tools
