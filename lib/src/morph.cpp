#include "latentkit/morph.h"

#include <fmt/format.h>

#include <cmath>

#include "latentkit/error.h"
#include "latentkit/latent.h"
#include "latentkit/rng.h"
#include "torch_errors.h"

namespace latentkit {

MorphRenderer::MorphRenderer(std::shared_ptr<Generator> G, MorphSpec spec, torch::Device device)
    : G_(std::move(G)), spec_(std::move(spec)), device_(device) {
    const auto& cfg = G_->config;
    if (spec_.cells < 1) throw ArgumentError("a morph needs at least one cell");
    if (spec_.batch < 1) throw ArgumentError("batch must be at least 1");
    if (spec_.space_z && !spec_.w_keys.empty()) throw ArgumentError("W+ keyframes cannot be interpolated in z: use W space");
    c_ = class_labels(cfg.c_dim, spec_.class_index, 1);
    if (c_.defined()) c_ = c_.to(device_);
    torch::NoGradGuard no_grad;

    std::vector<torch::Tensor> all;
    if (!spec_.seeds.empty()) {
        const torch::Tensor z = z_from_seeds(spec_.seeds, cfg.z_dim).to(device_);
        if (spec_.space_z) {
            all.push_back(z);
        } else {
            const torch::Tensor c = c_.defined() ? c_.expand({z.size(0), -1}) : c_;
            all.push_back(map_to_ws(*G_, z, c, spec_.truncation_psi, spec_.truncation_cutoff));
        }
    }
    for (const auto& w : spec_.w_keys) {
        if (w.dim() != 3 || w.size(1) != cfg.num_ws() || w.size(2) != cfg.w_dim)
            throw ShapeError(fmt::format("keyframe latents must have shape [N, {}, {}]", cfg.num_ws(), cfg.w_dim));
        all.push_back(w.to(device_, torch::kFloat32));
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
        if (spec_.space_z) {
            held_.push_back(map_to_ws(*G_, keys_.back().narrow(0, 0, 1), c_, spec_.truncation_psi, spec_.truncation_cutoff)[0]);
        } else {
            held_.push_back(keys_.back()[0]);
        }
    }
    if (spec_.noise == NoiseMode::custom) {
        NumpyRandomState rs(spec_.noise_seed);
        for (int res : G_->synthesis->noise_resolutions()) {
            auto make = [&]() {
                const auto v = rs.randn(int64_t(res) * res);
                std::vector<float> f(v.begin(), v.end());
                return torch::tensor(f).reshape({1, 1, res, res}).to(device_);
            };
            torch::Tensor a = make();
            loop_noise_.emplace_back(a, make());
        }
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
    torch::Tensor ws = torch::stack(items);
    if (spec_.space_z) {
        const torch::Tensor c = c_.defined() ? c_.expand({ws.size(0), -1}) : c_;
        ws = map_to_ws(*G_, ws, c, spec_.truncation_psi, spec_.truncation_cutoff);
    }
    if (!spec_.layers.empty()) ws = select_layers(ws, torch::stack(held), spec_.layers);
    return ws;
}

torch::Tensor MorphRenderer::render(int64_t first, int64_t n) {
    return detail::guard_torch("morph", [&]() -> torch::Tensor {
        const torch::Tensor ws = latents(first, n);
        torch::NoGradGuard no_grad;
        SynthesisOptions so;
        so.noise_mode = spec_.noise;
        so.input_transform = spec_.input_transform;
        if (spec_.noise == NoiseMode::custom) {
            std::vector<torch::Tensor> angles;
            for (int64_t f = first; f < first + n; ++f)
                for (int c = 0; c < spec_.cells; ++c) angles.push_back(torch::full({1, 1, 1, 1}, 2.0 * M_PI * double(f) / double(frames_)));
            const torch::Tensor theta = torch::cat(angles, 0).to(device_);
            for (const auto& [a, b] : loop_noise_) so.noise.push_back(torch::cos(theta) * a + torch::sin(theta) * b);
        }
        std::vector<torch::Tensor> out;
        for (int64_t start = 0; start < ws.size(0); start += spec_.batch) {
            const int64_t m = std::min<int64_t>(spec_.batch, ws.size(0) - start);
            SynthesisOptions part = so;
            for (auto& t : part.noise) t = t.narrow(0, start, m);
            out.push_back(G_->synthesis->forward(ws.narrow(0, start, m), part));
        }
        return torch::cat(out, 0);
    });
}

}  // namespace latentkit
