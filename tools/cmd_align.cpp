// latentkit align: photos to square, face-aligned (FFHQ-style) or centre-cropped PNGs.
#include <fmt/format.h>

#include <filesystem>

#include "common.h"
#include "latentkit/error.h"
#include "latentkit/io/face_align.h"
#include "latentkit/io/image.h"
#include "latentkit/log.h"

namespace latentkit::tools {
namespace {

struct Opts {
    std::vector<std::string> inputs;
    std::string outdir, landmarks = io::default_landmark_model_path();
    io::AlignMode align = io::AlignMode::face;
    int size = 1024, face_index = 0;
};

void run(const Opts& o) {
    const io::AlignMode mode = o.align;
    const std::unique_ptr<io::FaceDetector> detector = io::make_face_detector(mode, o.landmarks);
    std::vector<std::pair<std::string, Image8>> done;
    for (const auto& path : o.inputs) {  // everything is prepared before anything is written
        const auto aligned = io::align_image(io::read_image(path), path, mode, o.size, detector.get(), o.face_index);
        log_info(fmt::format("{}: {}", path, aligned.method));
        done.emplace_back(path, aligned.image);
    }
    ensure_output_dir(o.outdir);
    for (const auto& [path, image] : done) {
        const std::string out = (std::filesystem::path(o.outdir) / (std::filesystem::path(path).stem().string() + ".png")).string();
        write_png(out, image);
    }
    log_info(fmt::format("wrote {} image(s) to {}", done.size(), o.outdir));
}

}  // namespace

void register_align(CLI::App& app) {
    auto o = std::make_shared<Opts>();
    auto* cmd = app.add_subcommand("align", "Crop photos to squares: FFHQ-style face alignment or centre crop");
    cmd->add_option("--input,-i", o->inputs, "Photo (repeat for several)")->required();
    add_outdir_option(cmd, o->outdir, "Output folder (NAME.png per photo)");
    cmd->add_option("--size", o->size, "Output size in pixels")->check(CLI::Range(4, 8192));
    add_enum_option(cmd, "--align", o->align, "Face alignment, auto (face, else centre crop), center or none");
    cmd->add_option("--face-index", o->face_index, "Which face when there are several (0 = largest)")->check(at_least(0));
    cmd->add_option("--landmarks", o->landmarks, "dlib 68-point landmark model");
    cmd->callback([o]() { run(*o); });
}

}  // namespace latentkit::tools
