#include "latentkit/render.h"

#include <fmt/format.h>

#include <algorithm>

#include "latentkit/directions.h"
#include "latentkit/editing.h"
#include "latentkit/error.h"
#include "latentkit/latent.h"
#include "latentkit/networks.h"

namespace latentkit {

namespace {
torch::Device device_of(const Generator& G) {
    const auto params = G.synthesis->parameters();
    return params.empty() ? torch::Device(torch::kCPU) : params.front().device();
}

// The labels of n images, or undefined for an unconditional model.
torch::Tensor labels(const Generator& G, const RenderSpec& spec, int64_t n, const torch::Device& device) {
    torch::Tensor c = class_labels(G.config.c_dim, spec.class_index, n);
    return c.defined() ? c.to(device) : c;
}

torch::Tensor apply_edits(torch::Tensor ws, const std::vector<RenderEdit>& edits, int num_ws) {
    for (const auto& e : edits) {
        if (e.strength == 0) continue;
        std::vector<int> layers;
        const int last = e.last_layer < 0 ? num_ws - 1 : std::min(e.last_layer, num_ws - 1);
        for (int l = std::max(0, e.first_layer); l <= last; ++l) layers.push_back(l);
        Direction d;
        d.vector = e.vector;
        d.scale = e.scale;
        if (!layers.empty()) ws = apply_direction(ws, d, e.strength, layers);
    }
    return ws;
}
}  // namespace

Renderer::Renderer(std::shared_ptr<Generator> G) : G_(std::move(G)), device_(device_of(*G_)) {}

// The seeds' latents from one mapping call.
torch::Tensor Renderer::mapped(const std::vector<uint32_t>& seeds, const RenderSpec& spec) const {
    const torch::Tensor z = z_from_seeds(seeds, G_->config.z_dim).to(device_);
    return map_to_ws(*G_, z, labels(*G_, spec, z.size(0), device_), spec.psi, spec.cutoff);
}

torch::Tensor Renderer::latents(const RenderSpec& spec) const {
    torch::NoGradGuard no_grad;
    const GeneratorConfig& cfg = G_->config;
    const int num_ws = G_->synthesis->num_ws;
    torch::Tensor ws;
    if (spec.ws.defined()) {
        ws = spec.ws.to(device_, torch::kFloat32);
        if (ws.dim() == 2) ws = broadcast_w(ws, num_ws);
        if (ws.dim() != 3 || ws.size(1) != num_ws || ws.size(2) != cfg.w_dim)
            throw ShapeError(fmt::format("latents must have shape [N, {}, {}] or [N, {}] for this model", num_ws, cfg.w_dim, cfg.w_dim));
    } else if (spec.z.defined()) {
        ws = map_to_ws(*G_, spec.z.to(device_), labels(*G_, spec, spec.z.size(0), device_), spec.psi, spec.cutoff);
    } else if (!spec.seed_blend.empty()) {
        for (const auto& [seed, weight] : spec.seed_blend) {
            const torch::Tensor w = mapped({seed}, spec) * weight;
            ws = ws.defined() ? ws + w : w;
        }
    } else if (!spec.seeds.empty()) {
        ws = mapped(spec.seeds, spec);
    } else {
        throw ArgumentError("nothing to render: give seeds, z or latents");
    }
    if (spec.mix_seed && !spec.mix_layers.empty())
        ws = mix_layers(ws, mapped({*spec.mix_seed}, spec).expand_as(ws), spec.mix_layers);
    return apply_edits(ws, spec.edits, num_ws);
}

torch::Tensor Renderer::synthesize(const torch::Tensor& ws, const RenderSpec& spec, std::vector<torch::Tensor>* block_outputs) const {
    torch::NoGradGuard no_grad;
    SynthesisOptions so;
    so.noise_mode = spec.noise_mode;
    if (spec.noise_mode == NoiseMode::random && spec.noise_seed) {
        so.noise_mode = NoiseMode::custom;
        at::Generator gen = at::detail::createCPUGenerator(*spec.noise_seed);
        for (int res : G_->synthesis->noise_resolutions()) so.noise.push_back(torch::randn({res, res}, gen, torch::TensorOptions()).to(device_));
    }
    if (G_->config.family == GeneratorFamily::stylegan3 && (spec.translate_x != 0 || spec.translate_y != 0 || spec.rotate != 0))
        so.input_transform = stylegan3_transform(spec.translate_x, spec.translate_y, spec.rotate);
    so.block_outputs = block_outputs;
    return G_->synthesis->forward(ws.to(device_), so);
}

torch::Tensor Renderer::render(const RenderSpec& spec) const { return synthesize(latents(spec), spec); }

}  // namespace latentkit
