// latentkit edit: move latents along directions; a grid of strengths, a sweep video, or the latents.
#include <fmt/format.h>
#include <torch/torch.h>

#include <filesystem>

#include "common.h"
#include "latentkit/directions.h"
#include "latentkit/editing.h"
#include "latentkit/error.h"
#include "latentkit/png.h"
#include "latentkit/io/tensor_image.h"
#include "latentkit/io/video.h"
#include "latentkit/latent.h"
#include "latentkit/log.h"
#include "latentkit/networks.h"
#include "latentkit/stop.h"
#include "latentkit/render.h"
#include "progress_bar.h"

namespace latentkit::tools {
namespace {

struct Opts {
    std::string model, seeds, w, strengths = "-3:3:7", layers, out, save_w, device = "cpu";
    std::vector<std::string> directions;
    RenderSpec spec;  // psi, class and noise
    int frames = 60, fps = 30, batch = 8;
    bool any_model = false;
};

// "a:b:n" (n evenly spaced values) or "a,b,c".
std::vector<double> parse_strengths(const std::string& text) {
    std::vector<double> out;
    double a, b;
    int n;
    char extra;
    if (std::sscanf(text.c_str(), "%lf:%lf:%d%c", &a, &b, &n, &extra) == 3) {
        if (n < 1 || n > 1000) throw ArgumentError("--strengths " + text + ": the count must be between 1 and 1000");
        for (int k = 0; k < n; ++k) out.push_back(n == 1 ? a : a + (b - a) * k / (n - 1));
        return out;
    }
    size_t pos = 0;
    while (pos <= text.size()) {
        const size_t comma = std::min(text.find(',', pos), text.size());
        const std::string item = text.substr(pos, comma - pos);
        char* end = nullptr;
        const double v = std::strtod(item.c_str(), &end);
        if (item.empty() || end != item.c_str() + item.size() || !std::isfinite(v))
            throw ArgumentError("--strengths " + text + ": expected FROM:TO:COUNT or a list like -2,0,2");
        out.push_back(v);
        pos = comma + 1;
    }
    return out;
}

// One applied direction: FILE, FILE#NAME or FILE#INDEX, optionally @WEIGHT.
struct Applied {
    Direction direction;
    double weight = 1.0;
};

std::vector<Applied> load_applied(const Opts& o, int w_dim, const std::string& fingerprint) {
    std::vector<Applied> out;
    for (const std::string& spec : o.directions) {
        const DirectionRef ref = parse_direction_ref(spec, true);
        Applied a;
        a.weight = ref.weight;
        a.direction = load_direction_ref(ref, w_dim, fingerprint, o.any_model).directions.front();
        out.push_back(a);
    }
    return out;
}

void run(const Opts& o) {
    if (o.seeds.empty() == o.w.empty()) throw ArgumentError("give --seeds or --w");
    if (o.directions.empty()) throw ArgumentError("give at least one --direction");
    const std::vector<double> strengths = parse_strengths(o.strengths);
    const torch::Device device = device_from_name(o.device);
    const Model model = load_model_arg(o.model);
    auto G = model.generator();
    const auto& cfg = G->config;
    const std::vector<int> layers = o.layers.empty() ? std::vector<int>{} : parse_layers(o.layers, cfg.num_ws());
    const auto applied = load_applied(o, cfg.w_dim, model_fingerprint(*G));
    G->to(device);
    G->eval();
    torch::NoGradGuard no_grad;
    const Renderer renderer(G);
    RenderSpec spec = o.spec;
    torch::Tensor ws;
    if (!o.w.empty()) {
        ws = read_latents(o.w, cfg);
    } else {
        spec.seeds = parse_seeds(o.seeds);
        ws = renderer.latents(spec).to(torch::kCPU);
    }
    const int64_t rows = ws.size(0);
    auto edited = [&](double strength) {
        torch::Tensor out = ws;
        for (const auto& a : applied) out = apply_direction(out, a.direction, strength * a.weight, layers);
        return out;
    };
    auto render = [&](const torch::Tensor& batch_ws) {
        std::vector<Image8> images;
        for (int64_t s = 0; s < batch_ws.size(0); s += o.batch) {
            const int64_t n = std::min<int64_t>(o.batch, batch_ws.size(0) - s);
            for (auto& im : io::images_from_batch(renderer.synthesize(batch_ws.narrow(0, s, n), spec))) images.push_back(std::move(im));
        }
        return images;
    };

    const std::string ext = std::filesystem::path(o.out).extension().string();
    const bool video = ext == ".mp4" || ext == ".mkv" || ext == ".mov" || ext == ".webm" || ext == ".gif";
    if (video) {
        // A sweep from the first strength to the last, the latents side by side.
        const double from = strengths.front(), to = strengths.back();
        const int res = cfg.img_resolution;
        io::VideoOptions vo;
        vo.fps = o.fps;
        auto sink = io::make_async(io::open_frame_sink(o.out, res * static_cast<int>(rows), res, vo));
        ProgressBar bar("edit", o.frames, "frame");
        for (int f = 0; f < o.frames; ++f) {
            if (stop_requested()) throw CancelledError(fmt::format("edit interrupted (frame {} of {}; {} was not written)", f, o.frames, o.out));
            const auto images = render(edited(from + (to - from) * f / (o.frames - 1)));
            std::vector<Image8> rgb;
            for (const auto& im : images) rgb.push_back(io::convert_channels(im, 3));
            sink->write(io::tile_images(rgb, static_cast<int>(rows), 1));
            bar.update(f + 1);
        }
        sink->finish();
        bar.finish();
    } else {
        std::vector<Image8> cells;
        std::vector<torch::Tensor> grid;
        for (int64_t r = 0; r < rows; ++r)
            for (double s : strengths) grid.push_back(edited(s).narrow(0, r, 1));
        cells = render(torch::cat(grid));
        write_png(o.out, io::tile_images(cells, static_cast<int>(strengths.size()), static_cast<int>(rows)));
    }
    if (!o.save_w.empty()) {  // after the images, so a failed run writes nothing
        std::vector<torch::Tensor> all;
        for (int64_t r = 0; r < rows; ++r)
            for (double s : strengths) all.push_back(edited(s).narrow(0, r, 1));
        write_latents(o.save_w, torch::cat(all));
    }
    log_info(fmt::format("{} latent(s) x {} strength(s) ({} to {}) -> {}", rows, strengths.size(), strengths.front(), strengths.back(), o.out));
}

}  // namespace

void register_edit(CLI::App& app) {
    auto o = std::make_shared<Opts>();
    auto* cmd = app.add_subcommand("edit", "Move latents along directions: a grid of strengths (.png) or a sweep video");
    add_model_option(cmd, o->model);
    auto* seeds = add_seeds_option(cmd, o->seeds, "Seeds of the latents to edit");
    auto* w = cmd->add_option("--w", o->w, "Latents to edit (projected_w.npz)");
    seeds->excludes(w);
    cmd->add_option("--direction,-d", o->directions, "Direction: FILE, FILE#NAME or FILE#INDEX, optionally @WEIGHT (repeat to combine)")->required();
    cmd->add_option("--strengths", o->strengths, "FROM:TO:COUNT or a list, in units of the direction's scale");
    cmd->add_option("--layers", o->layers, "Apply only on these W+ layers (default: the direction's own range, else all)");
    add_trunc_option(cmd, o->spec.psi, "Truncation psi of seed latents");
    add_render_options(cmd, o->spec, kClass | kNoiseMode);
    cmd->add_option("--frames", o->frames, "Frames of a sweep video")->check(at_least(2));
    cmd->add_option("--fps", o->fps, "Frame rate of a sweep video")->check(above(0));
    cmd->add_option("--batch", o->batch, "Images per batch")->check(above(0));
    cmd->add_option("--save-w", o->save_w, "Also write the edited latents (.npz, rows x strengths)");
    cmd->add_flag("--any-model", o->any_model, "Apply directions made for another model with the same w_dim");
    add_device_option(cmd, o->device);
    cmd->add_option("--out,-o", o->out, "Grid image (.png) or sweep video (.mp4, .webm, .gif)")->required();
    cmd->callback([o]() { run(*o); });
}

}  // namespace latentkit::tools
