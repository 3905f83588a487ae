// latentkit style-mix: the reference style-mixing grid.
#include <fmt/format.h>
#include <torch/torch.h>

#include "common.h"
#include "latentkit/error.h"
#include "latentkit/png.h"
#include "latentkit/io/tensor_image.h"
#include "latentkit/latent.h"
#include "latentkit/log.h"
#include "latentkit/networks.h"
#include "latentkit/render.h"

namespace latentkit::tools {
namespace {

struct Opts {
    std::string model, rows, cols, styles = "0-6", device = "cpu", out;
    RenderSpec spec;  // psi, class and noise
};

void run(const Opts& o) {
    const std::vector<uint32_t> rows = parse_seeds(o.rows, "--rows"), cols = parse_seeds(o.cols, "--cols");
    RenderSpec spec = o.spec;
    const std::string& out = o.out;
    if (out.size() < 4 || out.compare(out.size() - 4, 4, ".png") != 0) throw ArgumentError(out + ": the grid is written as .png");
    const torch::Device device = device_from_name(o.device);
    const Model model = load_model_arg(o.model);
    auto G = model.generator();
    const std::vector<int> styles = parse_layers(o.styles, G->config.num_ws(), "--styles");
    G->to(device);
    G->eval();
    torch::NoGradGuard no_grad;
    const Renderer renderer(G);

    spec.seeds = rows;
    spec.seeds.insert(spec.seeds.end(), cols.begin(), cols.end());
    const torch::Tensor ws = renderer.latents(spec);
    const int64_t nr = static_cast<int64_t>(rows.size()), nc = static_cast<int64_t>(cols.size());
    // Row and column images first, then every (row, col) mix: the row's ws with the column's at `styles`.
    std::vector<torch::Tensor> batch{ws};
    for (int64_t r = 0; r < nr; ++r)
        batch.push_back(mix_layers(ws.narrow(0, r, 1).expand({nc, -1, -1}).contiguous(), ws.narrow(0, nr, nc), styles));
    const torch::Tensor all_ws = torch::cat(batch, 0);
    std::vector<torch::Tensor> imgs;
    for (int64_t s = 0; s < all_ws.size(0); s += 8) imgs.push_back(renderer.synthesize(all_ws.narrow(0, s, std::min<int64_t>(8, all_ws.size(0) - s)), spec));
    const auto images = io::images_from_batch(torch::cat(imgs, 0));

    const int res = G->config.img_resolution;
    Image8 canvas;
    canvas.width = res * static_cast<int>(nc + 1);
    canvas.height = res * static_cast<int>(nr + 1);
    canvas.channels = images[0].channels;
    canvas.pixels.assign(size_t(canvas.width) * canvas.height * canvas.channels, 0);
    for (int64_t k = 0; k < nc; ++k) io::paste(canvas, images[static_cast<size_t>(nr + k)], static_cast<int>(k + 1) * res, 0);
    for (int64_t r = 0; r < nr; ++r) {
        io::paste(canvas, images[static_cast<size_t>(r)], 0, static_cast<int>(r + 1) * res);
        for (int64_t k = 0; k < nc; ++k)
            io::paste(canvas, images[static_cast<size_t>(nr + nc + r * nc + k)], static_cast<int>(k + 1) * res, static_cast<int>(r + 1) * res);
    }
    write_png(out, canvas);
    log_info(fmt::format("wrote {} ({} rows x {} columns)", out, nr, nc));
}
}  // namespace

void register_style_mix(CLI::App& app) {
    auto o = std::make_shared<Opts>();
    auto* cmd = app.add_subcommand("style-mix", "Style-mixing grid: each row seed's ws with the column seed's at --styles");
    add_model_option(cmd, o->model);
    cmd->add_option("--rows", o->rows, "Row seeds, e.g. 85,100,75")->required();
    cmd->add_option("--cols", o->cols, "Column seeds, e.g. 55,821,1789")->required();
    cmd->add_option("--styles", o->styles, "ws taken from the column seed (default 0-6)");
    add_trunc_option(cmd, o->spec.psi, "Truncation psi (1 = none)");
    add_render_options(cmd, o->spec, kNoiseMode | kClass);
    add_device_option(cmd, o->device);
    cmd->add_option("--out,-o", o->out, "Output .png")->required();
    cmd->callback([o]() { run(*o); });
}

}  // namespace latentkit::tools
