// latentkit generate: images from seeds or from projected latents, as the reference generate.py.
#include <fmt/format.h>
#include <torch/torch.h>

#include <filesystem>

#include "common.h"
#include "latentkit/error.h"
#include "latentkit/png.h"
#include "latentkit/io/tensor_image.h"
#include "latentkit/latent.h"
#include "latentkit/log.h"
#include "latentkit/networks.h"
#include "latentkit/stop.h"
#include "progress_bar.h"

namespace latentkit::tools {
namespace {

struct Opts {
    std::string model, seeds, projected_w, outdir, grid, device = "cpu";
    std::vector<double> truncs{1.0};
    int batch = 8;
    RenderSpec spec;  // class, cutoff, noise and transform; the seeds and psi per image
};


void run(const Opts& o) {
    if (o.truncs.empty()) throw ArgumentError("--trunc needs a value");
    if (o.truncs.size() > 1 && !o.projected_w.empty()) throw ArgumentError("several --trunc values need --seeds");
    // One image per (seed, psi), seed by seed: with --grid COLS = the psi count, a truncation sweep.
    std::vector<std::pair<uint32_t, double>> items;
    if (!o.seeds.empty())
        for (uint32_t seed : parse_seeds(o.seeds))
            for (double psi : o.truncs) items.emplace_back(seed, psi);
    const GridSize grid = parse_grid(o.grid);
    const torch::Device device = device_from_name(o.device);
    const Model model = load_model_arg(o.model);
    auto G = model.generator();
    const auto& cfg = G->config;
    const RenderSpec& spec = o.spec;
    torch::Tensor projected;
    check_render_options(spec, cfg, o.projected_w.empty());
    if (!o.projected_w.empty()) projected = read_latents(o.projected_w, cfg);
    ensure_output_dir(o.outdir);
    G->to(device);
    G->eval();
    const Renderer renderer(G);
    namespace fs = std::filesystem;
    const int64_t total = projected.defined() ? projected.size(0) : static_cast<int64_t>(items.size());
    if (!o.grid.empty() && total > grid.cols * grid.rows)
        throw ArgumentError(fmt::format("--grid {}: {} cells cannot hold {} images", o.grid, grid.cols * grid.rows, total));
    std::vector<Image8> cells;
    ProgressBar bar("generate", total);
    for (int64_t start = 0; start < total; start += o.batch) {
        if (stop_requested())
            throw CancelledError(o.grid.empty() ? fmt::format("generate stopped: kept the {} of {} image(s) written to {}", start, total, o.outdir)
                                                : fmt::format("generate stopped: {} was not written", (fs::path(o.outdir) / "grid.png").string()));
        const int64_t n = std::min<int64_t>(o.batch, total - start);
        torch::Tensor ws;
        std::vector<std::string> paths;
        if (projected.defined()) {
            RenderSpec latent = spec;
            latent.ws = projected.narrow(0, start, n);
            ws = renderer.latents(latent);
            for (int64_t k = 0; k < n; ++k) paths.push_back((fs::path(o.outdir) / fmt::format("proj{:02d}.png", start + k)).string());
        } else {
            std::vector<torch::Tensor> rows;
            for (int64_t k = start; k < start + n; ++k) {
                const auto [seed, psi] = items[k];
                RenderSpec one = spec;
                one.seeds = {seed};
                one.psi = psi;
                rows.push_back(renderer.latents(one));
                const std::string name = o.truncs.size() == 1 ? fmt::format("seed{:04d}.png", seed) : fmt::format("seed{:04d}-psi{:.2f}.png", seed, psi);
                paths.push_back((fs::path(o.outdir) / name).string());
            }
            ws = torch::cat(rows);
        }
        const auto images = io::images_from_batch(renderer.synthesize(ws, spec));
        for (size_t k = 0; k < images.size(); ++k) {
            if (o.grid.empty()) write_png(paths[k], images[k]);
            else cells.push_back(images[k]);
        }
        bar.update(start + n);
    }
    bar.finish();
    if (o.grid.empty()) {
        log_info(fmt::format("wrote {} image(s) to {}", total, o.outdir));
        return;
    }
    const std::string path = (fs::path(o.outdir) / "grid.png").string();
    write_png(path, io::tile_images(cells, grid.cols, grid.rows));
    log_info(fmt::format("wrote {} ({} images, {}x{} grid)", path, total, grid.cols, grid.rows));
}
}  // namespace

void register_generate(CLI::App& app) {
    auto o = std::make_shared<Opts>();
    auto* cmd = app.add_subcommand("generate", "Generate images from seeds or from a projected_w.npz");
    add_model_option(cmd, o->model);
    auto* seeds = add_seeds_option(cmd, o->seeds, "Seeds, e.g. 0-3,42");
    auto* pw = cmd->add_option("--projected-w", o->projected_w, "Latents to render (reference projected_w.npz, key 'w')");
    seeds->excludes(pw);
    add_trunc_option(cmd, o->truncs, "Truncation psi (1 = none); several (0,0.5,1) render each seed at each psi")
        ->delimiter(',');
    add_render_options(cmd, o->spec, kTruncCutoff | kNoiseMode | kClass | kTransform);
    cmd->add_option("--grid", o->grid, "COLSxROWS: write all images as one OUTDIR/grid.png, row by row");
    cmd->add_option("--batch", o->batch, "Images per batch")->check(above(0));
    add_device_option(cmd, o->device);
    add_outdir_option(cmd, o->outdir, "Output folder");
    cmd->callback([o]() {
        if (o->seeds.empty() && o->projected_w.empty()) throw ArgumentError("give --seeds or --projected-w");
        run(*o);
    });
}

}  // namespace latentkit::tools
