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

namespace {
bool same_tensor(const torch::Tensor& a, const torch::Tensor& b) {
    if (a.defined() != b.defined()) return false;
    if (!a.defined() || a.is_same(b)) return true;
    return a.sizes() == b.sizes() && a.scalar_type() == b.scalar_type() && a.device() == b.device() && torch::equal(a, b);
}

bool same_tensors(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end(), same_tensor);
}

bool same_edit(const RenderEdit& a, const RenderEdit& b) {
    return a.vector == b.vector && a.scale == b.scale && a.strength == b.strength && a.first_layer == b.first_layer && a.last_layer == b.last_layer;
}
}  // namespace

bool same_render_spec(const RenderSpec& a, const RenderSpec& b) {
    return a.seeds == b.seeds && a.seed_blend == b.seed_blend && same_tensor(a.z, b.z) && same_tensor(a.ws, b.ws) &&
           a.class_index == b.class_index && a.psi == b.psi && a.cutoff == b.cutoff && a.mix_seed == b.mix_seed &&
           a.mix_layers == b.mix_layers && std::equal(a.edits.begin(), a.edits.end(), b.edits.begin(), b.edits.end(), same_edit) &&
           a.noise_mode == b.noise_mode && a.noise_seed == b.noise_seed && same_tensors(a.noise, b.noise) &&
           a.noise_gain == b.noise_gain && a.translate_x == b.translate_x && a.translate_y == b.translate_y && a.rotate == b.rotate;
}

Renderer::Renderer(std::shared_ptr<Generator> G) : G_(std::move(G)), device_(device_of(*G_->synthesis)) {}

torch::Tensor Renderer::mapped(const torch::Tensor& z, const RenderSpec& spec) const {
    torch::NoGradGuard no_grad;
    return map_to_ws(*G_, z.to(device_), labels(*G_, spec, z.size(0), device_), spec.psi, spec.cutoff);
}

torch::Tensor Renderer::edited(torch::Tensor ws, const RenderSpec& spec) const {
    torch::NoGradGuard no_grad;
    if (spec.mix_seed && !spec.mix_layers.empty())
        ws = mix_layers(ws, mapped(z_from_seeds({*spec.mix_seed}, G_->config.z_dim), spec).expand_as(ws), spec.mix_layers);
    return apply_edits(ws, spec.edits, G_->synthesis->num_ws);
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
        ws = mapped(spec.z, spec);
    } else if (!spec.seed_blend.empty()) {
        for (const auto& [seed, weight] : spec.seed_blend) {
            const torch::Tensor w = mapped(z_from_seeds({seed}, cfg.z_dim), spec) * weight;
            ws = ws.defined() ? ws + w : w;
        }
    } else if (!spec.seeds.empty()) {
        ws = mapped(z_from_seeds(spec.seeds, cfg.z_dim), spec);
    } else {
        throw ArgumentError("nothing to render: give seeds, z or latents");
    }
    return edited(ws, spec);
}

// The noise maps `so` would use, each multiplied by its image's gain (custom noise from then on).
void Renderer::scale_noise(SynthesisOptions& so, const std::vector<float>& gain, int64_t n) const {
    const std::vector<int> resolutions = G_->synthesis->noise_resolutions();
    if (resolutions.empty() || std::all_of(gain.begin(), gain.end(), [](float g) { return g == 1.0f; })) return;
    if (gain.size() != 1 && static_cast<int64_t>(gain.size()) != n)
        throw ArgumentError(fmt::format("noise_gain has {} values for {} images", gain.size(), n));
    if (so.noise_mode == NoiseMode::constant) {
        for (const auto& item : G_->synthesis->named_buffers(true)) {
            const std::string& name = item.key();
            if (name.size() >= 11 && name.compare(name.size() - 11, 11, "noise_const") == 0) so.noise.push_back(item.value());
        }
        if (so.noise.size() != resolutions.size()) throw ModelFormatError("the model's constant noise maps do not match its noise layers");
    } else if (so.noise_mode == NoiseMode::random) {
        for (int res : resolutions) so.noise.push_back(torch::randn({n, 1, res, res}, torch::TensorOptions().device(device_)));
    }
    const torch::Tensor g = torch::tensor(gain).to(device_).reshape({-1, 1, 1, 1});
    for (auto& t : so.noise) t = (t.dim() == 2 ? t.reshape({1, 1, t.size(0), t.size(1)}) : t).to(device_, torch::kFloat32) * g;
    so.noise_mode = NoiseMode::custom;
}

torch::Tensor Renderer::synthesize(const torch::Tensor& ws, const RenderSpec& spec, std::vector<torch::Tensor>* block_outputs) const {
    torch::NoGradGuard no_grad;
    SynthesisOptions so;
    so.noise_mode = spec.noise_mode;
    for (const auto& t : spec.noise) so.noise.push_back(t.to(device_));
    if (spec.noise_mode == NoiseMode::random && spec.noise_seed) {
        so.noise_mode = NoiseMode::custom;
        at::Generator gen = at::detail::createCPUGenerator(*spec.noise_seed);
        for (int res : G_->synthesis->noise_resolutions()) so.noise.push_back(torch::randn({res, res}, gen, torch::TensorOptions()).to(device_));
    }
    if (!spec.noise_gain.empty() && so.noise_mode != NoiseMode::none) scale_noise(so, spec.noise_gain, ws.size(0));
    if (G_->config.family == GeneratorFamily::stylegan3 && (spec.translate_x != 0 || spec.translate_y != 0 || spec.rotate != 0))
        so.input_transform = stylegan3_transform(spec.translate_x, spec.translate_y, spec.rotate);
    so.block_outputs = block_outputs;
    return G_->synthesis->forward(ws.to(device_), so);
}

torch::Tensor Renderer::render(const RenderSpec& spec) const { return synthesize(latents(spec), spec); }

}  // namespace latentkit
