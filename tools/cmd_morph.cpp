// latentkit morph: videos that travel through latent space between keyframes.
#include <fmt/format.h>
#include <torch/torch.h>

#include <cmath>

#include "common.h"
#include "latentkit/error.h"
#include "latentkit/interpolate.h"
#include "latentkit/io/image.h"
#include "latentkit/io/tensor_image.h"
#include "latentkit/io/video.h"
#include "latentkit/latent.h"
#include "latentkit/log.h"
#include "latentkit/morph.h"
#include "latentkit/networks.h"
#include "latentkit/stop.h"
#include "progress_bar.h"

namespace latentkit::tools {
namespace {

struct Opts {
    std::string model, seeds, space, grid, layers, device = "cpu", out;
    std::string preset = "medium";
    std::vector<std::string> w_files;
    int fps = 30, crf = -1, size = 0;
    io::ResizeFilter filter = io::ResizeFilter::automatic;
    MorphSpec spec;  // the options that are its fields set them directly
};

void run(const Opts& o) {
    MorphSpec spec = o.spec;
    spec.space_z = o.space.empty() ? spec.path.kind == PathKind::spherical : o.space == "z";
    if (!o.space.empty() && o.space != "z" && o.space != "w") throw ArgumentError("--space " + o.space + ": expected z or w");
    if (spec.space_z && !o.w_files.empty()) throw ArgumentError("--w latents are in W: use --space w");
    const GridSize grid = parse_grid(o.grid);
    spec.cells = grid.cols * grid.rows;
    if (!o.seeds.empty()) spec.render.seeds = parse_seeds(o.seeds);
    if (spec.render.seeds.empty() && o.w_files.empty()) throw ArgumentError("give keyframes with --seeds and/or --w");
    const torch::Device device = device_from_name(o.device);

    const Model model = load_model_arg(o.model);
    auto G = model.generator();
    if (!o.layers.empty()) spec.layers = parse_layers(o.layers, G->config.num_ws());
    check_render_options(spec.render, G->config);
    for (const auto& f : o.w_files) spec.w_keys.push_back(read_latents(f, G->config));
    G->to(device);
    G->eval();
    MorphRenderer renderer(G, spec);

    io::VideoOptions vo;
    vo.fps = o.fps;
    vo.crf = o.crf;
    vo.preset = o.preset;
    const int res = o.size > 0 ? o.size : G->config.img_resolution;
    auto sink = io::make_async(io::open_frame_sink(o.out, res * grid.cols, res * grid.rows, vo));
    ProgressBar bar("morph", renderer.frame_count(), "frames");
    for (int64_t f = 0; f < renderer.frame_count();) {
        if (stop_requested()) throw CancelledError(fmt::format("morph interrupted (frame {} of {}; {} was not written)", f, renderer.frame_count(), o.out));
        const int64_t n = std::min<int64_t>(renderer.frames_per_batch(), renderer.frame_count() - f);
        const std::vector<Image8> cells = io::images_from_batch(renderer.render(f, n));
        for (int64_t k = 0; k < n; ++k) {
            std::vector<Image8> frame_cells(cells.begin() + k * spec.cells, cells.begin() + (k + 1) * spec.cells);
            for (auto& c : frame_cells) {
                c = io::convert_channels(c, 3);
                if (c.width != res) c = io::resize_image(c, res, res, o.filter);
            }
            sink->write(io::tile_images(frame_cells, grid.cols, grid.rows));
        }
        f += n;
        bar.update(f);
    }
    sink->finish();
    bar.finish();
    log_info(fmt::format("wrote {} ({} frames, {}x{}, {} fps)", o.out, renderer.frame_count(), res * grid.cols, res * grid.rows, o.fps));
}
}  // namespace

void register_morph(CLI::App& app) {
    auto o = std::make_shared<Opts>();
    auto* cmd = app.add_subcommand("morph", "Render a video that morphs between keyframes (seeds or latents)");
    add_model_option(cmd, o->model);
    add_seeds_option(cmd, o->seeds, "Keyframe seeds, e.g. 1,2,3 (with --grid: split evenly between the cells)");
    cmd->add_option("--w", o->w_files, "Keyframe latents (.npz with 'w' [N, num_ws, w_dim], e.g. projected_w.npz), after the seeds");
    cmd->add_option("--frames", o->spec.path.frames_per_transition, "Frames per transition")->check(above(0));
    add_enum_option(cmd, "--kind", o->spec.path.kind, "Interpolation: lerp, slerp or cubic (smooth curve through all keyframes)");
    cmd->add_option("--space", o->space, "Interpolate in z or w (default: z for slerp, else w)");
    add_enum_option(cmd, "--easing", o->spec.path.easing, "Timing in each transition: linear or ease-in-out");
    cmd->add_flag("--loop", o->spec.path.loop, "Return from the last keyframe to the first (a seamless loop)");
    cmd->add_option("--grid", o->grid, "COLSxROWS grid of independent morphs in one video");
    add_trunc_option(cmd, o->spec.render.psi, "Truncation psi (1 = none)");
    cmd->add_option("--layers", o->layers, "Only these ws move (e.g. 0-5); the others stay at the first keyframe");
    add_render_options(cmd, o->spec.render, kTruncCutoff | kNoiseMode | kNoiseSeed | kClass | kTransform);
    cmd->add_flag("--noise-loop", o->spec.loop_noise, "Noise that moves smoothly and loops with the video (from --noise-seed)");
    cmd->add_option("--size", o->size, "Pixels per cell side, resampled from the model's resolution (default: that resolution)")
        ->check(CLI::Range(4, 4096));
    add_enum_option(cmd, "--filter", o->filter, "Resampling filter for --size (auto: area down, Lanczos up)");
    cmd->add_option("--fps", o->fps, "Frames per second");
    cmd->add_option("--crf", o->crf, "Encoder quality, lower is better (default 18 for H.264, 32 for VP9)");
    cmd->add_option("--preset", o->preset, "x264 preset: ultrafast ... veryslow");
    cmd->add_option("--batch", o->spec.batch, "Images generated per batch")->check(above(0));
    add_device_option(cmd, o->device);
    cmd->add_option("--out,-o", o->out, "Output: .mp4, .mkv, .mov, .webm, .gif, or a folder/ of PNG frames")->required();
    cmd->callback([o]() { run(*o); });
}

}  // namespace latentkit::tools
