// latentkit bench project: projection steps per second, peak memory, reconstruction quality.
#include <fmt/format.h>
#include <torch/torch.h>

#include <chrono>

#include "bench.h"
#include "common.h"
#include "latentkit/projector.h"
#include "latentkit/render.h"

namespace latentkit::tools {
namespace {

// The model's generator and discriminator, or random ones of the paper256 widths.
std::pair<std::shared_ptr<Generator>, std::shared_ptr<Discriminator>> bench_networks(const Opts& o, std::string& what) {
    if (!o.model.empty()) {
        const Model m = load_model_arg(o.model);
        what = o.model;
        return {m.generator(), m.D};
    }
    auto G = bench_generator(o, what);
    DiscriminatorConfig dc;
    dc.img_resolution = o.random_resolution;
    dc.channel_base = 16384;
    dc.conv_clamp = 256;
    dc.num_fp16_res = 4;
    dc.validate();
    return {G, std::make_shared<Discriminator>(dc)};
}

// PSNR (and LPIPS) of projections of the self-generated targets after `steps` steps.
void report_quality(Projector& projector, ProjectorOptions po, const torch::Tensor& targets, int steps, const std::shared_ptr<LpipsModel>& lpips,
                    const torch::Device& device) {
    po.steps = steps;
    const ProjectionResult r = projector.project(targets, po);
    const torch::Tensor q = psnr(r.images, targets);
    const int64_t n = targets.size(0);
    fmt::print("quality    {} steps: PSNR {:.2f} dB (mean of {} self-generated targets, seeds 0-{})\n", steps, q.mean().item<double>(), n, n - 1);
    if (!lpips) return;
    torch::NoGradGuard no_grad;
    const torch::Tensor a = lpips->features((r.images.to(device) + 1) * 127.5);
    const torch::Tensor b = lpips->features(targets.to(device));
    fmt::print("           LPIPS {:.4f} (mean)\n", (a - b).square().sum(1).mean().item<double>());
}

}  // namespace

void bench_project(const Opts& o, const ProjectOpts& p) {
    const torch::Device device = device_from_name(o.device);
    std::string what;
    const auto networks = bench_networks(o, what);
    const std::shared_ptr<Generator> G = networks.first;
    const std::shared_ptr<Discriminator> D = networks.second;
    std::shared_ptr<LpipsModel> lpips;
    if (!p.vgg.empty()) lpips = std::make_shared<LpipsModel>(p.vgg);
    ProjectorOptions po;
    po.space = parse_latent_space(p.space);
    po.w_avg_samples = p.w_avg_samples;
    po.loss = !p.losses.empty() ? parse_losses(p.losses) : default_projection_loss(lpips != nullptr, D != nullptr);
    G->to(device);
    if (D) D->to(device);
    if (lpips) lpips->to(device);
    Projector projector(G, po.loss.discriminator > 0 ? D : nullptr, lpips);

    std::vector<uint32_t> seeds;
    for (int k = 0; k < p.targets; ++k) seeds.push_back(static_cast<uint32_t>(k));
    torch::Tensor targets;
    {
        torch::NoGradGuard no_grad;
        G->eval();
        RenderSpec spec;
        spec.seeds = seeds;
        targets = (Renderer(G).render(spec) * 127.5 + 128).clamp(0, 255).floor().to(torch::kCPU);
    }
    // Steps/s from the third step on (the first ones include one-time set-up).
    po.steps = p.steps;
    auto steps_per_second = [&]() {
        std::chrono::steady_clock::time_point t_start;
        projector.project(targets, po, [&](const ProjectionStep& s) {
            sync(device);
            if (s.step == 2) t_start = std::chrono::steady_clock::now();
            return true;
        });
        return (p.steps - 2) / std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
    };
    const int res = G->config.img_resolution;
    fmt::print("model      {}\n", what);
    fmt::print("device     {}  threads {}  targets {} at {}x{}  space {}  loss {}\n", device.str(), torch::get_num_threads(), p.targets, res,
               res, p.space, describe_losses(po.loss));
    if (p.compare) {
        // One projection with each implementation, one after the other, from the same start.
        const Implementation before = implementation();
        double rates[2];
        for (int k = 0; k < 2; ++k) {
            set_implementation(k == 0 ? Implementation::reference : Implementation::fast);
            rates[k] = steps_per_second();
            fmt::print("{:<10} {:.2f} steps/s ({:.1f} ms/step) over {} steps\n", k == 0 ? "reference" : "fast", rates[k], 1000.0 / rates[k],
                       p.steps - 2);
        }
        set_implementation(before);
        fmt::print("speed-up   {:.2f}x (fast against reference)\n", rates[1] / rates[0]);
    } else {
        reset_peak_memory(device);
        const double rate = steps_per_second();
        const double peak = peak_memory_mib(device);
        fmt::print("speed      {:.2f} steps/s ({:.1f} ms/step) over {} steps\n", rate, 1000.0 / rate, p.steps - 2);
        if (peak >= 0) fmt::print("peak mem   {:.0f} MiB ({})\n", peak, device.is_cuda() ? "CUDA tensors" : "process resident set");
        else fmt::print("peak mem   not available (this build has no CUDA memory statistics)\n");
    }

    if (p.quality_steps > 0) report_quality(projector, po, targets, p.quality_steps, lpips, device);
}

}  // namespace latentkit::tools
