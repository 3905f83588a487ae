#include "latentkit/morph.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "latentkit/error.h"
#include "latentkit/latent.h"
#include "latentkit/rng.h"
#include "torch_errors.h"

namespace latentkit {

bool same_morph_spec(const MorphSpec& a, const MorphSpec& b) {
    const auto same_keys = [](const torch::Tensor& x, const torch::Tensor& y) {
        return x.is_same(y) || (x.sizes() == y.sizes() && x.device() == y.device() && torch::equal(x, y));
    };
    return same_render_spec(a.render, b.render) && a.path.kind == b.path.kind && a.path.easing == b.path.easing &&
           a.path.frames_per_transition == b.path.frames_per_transition && a.path.loop == b.path.loop && a.space_z == b.space_z &&
           a.cells == b.cells && std::equal(a.w_keys.begin(), a.w_keys.end(), b.w_keys.begin(), b.w_keys.end(), same_keys) &&
           a.layers == b.layers && a.loop_noise == b.loop_noise && a.batch == b.batch;
}

MorphRenderer::MorphRenderer(std::shared_ptr<Generator> G, MorphSpec spec) : renderer_(std::move(G)), spec_(std::move(spec)) {
    if (spec_.cells < 1) throw ArgumentError("a morph needs at least one cell");
    if (spec_.batch < 1) throw ArgumentError("batch must be at least 1");
    if (spec_.space_z && !spec_.w_keys.empty()) throw ArgumentError("W+ keyframes cannot be interpolated in z: use W space");
    class_labels(renderer_.generator().config.c_dim, spec_.render.class_index, 1);  // checks the class before any work
    torch::NoGradGuard no_grad;
    prepare_keys();
    if (spec_.loop_noise) prepare_loop_noise();
}

// Every keyframe (z, or W+ with the truncation applied), split between the cells.
void MorphRenderer::prepare_keys() {
    const auto& cfg = renderer_.generator().config;
    const torch::Device device = renderer_.device();
    std::vector<torch::Tensor> all;
    if (!spec_.render.seeds.empty()) {
        const torch::Tensor z = z_from_seeds(spec_.render.seeds, cfg.z_dim).to(device);
        all.push_back(spec_.space_z ? z : renderer_.mapped(z, spec_.render));
    }
    for (const auto& w : spec_.w_keys) {
        if (w.dim() != 3 || w.size(1) != cfg.num_ws() || w.size(2) != cfg.w_dim)
            throw ShapeError(fmt::format("keyframe latents must have shape [N, {}, {}]", cfg.num_ws(), cfg.w_dim));
        all.push_back(w.to(device, torch::kFloat32));
    }
    if (all.empty()) throw ArgumentError("a morph needs keyframes");
    const torch::Tensor keys = torch::cat(all, 0);
    const int64_t total = keys.size(0);
    if (total % spec_.cells != 0)
        throw ArgumentError(fmt::format("{} keyframes cannot be split evenly between {} grid cells", total, spec_.cells));
    const int64_t per_cell = total / spec_.cells;
    frames_ = path_frame_count(per_cell, spec_.path);
    for (int c = 0; c < spec_.cells; ++c) {
        keys_.push_back(keys.narrow(0, c * per_cell, per_cell));
        held_.push_back(spec_.space_z ? renderer_.mapped(keys_.back().narrow(0, 0, 1), spec_.render)[0] : keys_.back()[0]);
    }
}

// Two noise maps per layer; frame f uses cos(a) A + sin(a) B with a = 2 pi f / frames (unit variance, loops).
void MorphRenderer::prepare_loop_noise() {
    NumpyRandomState rs(spec_.render.noise_seed.value_or(0));
    for (int res : renderer_.generator().synthesis->noise_resolutions()) {
        auto make = [&]() {
            const auto v = rs.randn(int64_t(res) * res);
            std::vector<float> f(v.begin(), v.end());
            return torch::tensor(f).reshape({1, 1, res, res}).to(renderer_.device());
        };
        torch::Tensor a = make();
        loop_noise_.emplace_back(a, make());
    }
}

int64_t MorphRenderer::frames_per_batch() const { return std::max<int64_t>(1, spec_.batch / spec_.cells); }

torch::Tensor MorphRenderer::latents(int64_t first, int64_t n) {
    if (first < 0 || n < 1 || first + n > frames_) throw ArgumentError("frame range outside the morph");
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> items, held;
    for (int64_t f = first; f < first + n; ++f)
        for (int c = 0; c < spec_.cells; ++c) {
            items.push_back(path_frame(keys_[static_cast<size_t>(c)], spec_.path, f));
            held.push_back(held_[static_cast<size_t>(c)]);
        }
    return finish(torch::stack(items), held);
}

torch::Tensor MorphRenderer::latents_at(double t) {
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> items;
    for (const auto& keys : keys_) {
        const double transitions = static_cast<double>(keys.size(0)) - (spec_.path.loop ? 0.0 : 1.0);
        items.push_back(path_sample(keys, spec_.path, std::clamp(t, 0.0, 1.0) * transitions));
    }
    return finish(torch::stack(items), held_);
}

// Path points (z or W+) -> W+ with the held layers and the spec's mixing and edits.
torch::Tensor MorphRenderer::finish(torch::Tensor ws, const std::vector<torch::Tensor>& held) const {
    if (spec_.space_z) ws = renderer_.mapped(ws, spec_.render);
    if (!spec_.layers.empty()) ws = select_layers(ws, torch::stack(held), spec_.layers);
    return renderer_.edited(ws, spec_.render);
}

torch::Tensor MorphRenderer::render(int64_t first, int64_t n) {
    return detail::guard_torch("morph", [&]() -> torch::Tensor {
        const torch::Tensor ws = latents(first, n);
        torch::NoGradGuard no_grad;
        std::vector<torch::Tensor> noise;
        if (spec_.loop_noise) {
            std::vector<torch::Tensor> angles;
            for (int64_t f = first; f < first + n; ++f)
                for (int c = 0; c < spec_.cells; ++c) angles.push_back(torch::full({1, 1, 1, 1}, 2.0 * M_PI * double(f) / double(frames_)));
            const torch::Tensor theta = torch::cat(angles, 0).to(renderer_.device());
            for (const auto& [a, b] : loop_noise_) noise.push_back(torch::cos(theta) * a + torch::sin(theta) * b);
        }
        std::vector<torch::Tensor> out;
        for (int64_t start = 0; start < ws.size(0); start += spec_.batch) {
            const int64_t m = std::min<int64_t>(spec_.batch, ws.size(0) - start);
            RenderSpec part = spec_.render;
            if (spec_.loop_noise) {
                part.noise_mode = NoiseMode::custom;
                for (const auto& t : noise) part.noise.push_back(t.narrow(0, start, m));
            }
            out.push_back(renderer_.synthesize(ws.narrow(0, start, m), part));
        }
        return torch::cat(out, 0);
    });
}

}  // namespace latentkit
