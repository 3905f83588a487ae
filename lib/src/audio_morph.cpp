// Audio-reactive morphs: per frame, a position on the morph path, then truncation, edits and noise from
// the frame's controls.
#include "latentkit/audio_morph.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "latentkit/error.h"
#include "latentkit/latent.h"
#include "latentkit/networks.h"
#include "latentkit/rng.h"
#include "torch_errors.h"

namespace latentkit {

Direction random_direction(Generator& G, uint32_t seed, std::optional<int> class_index) {
    torch::NoGradGuard no_grad;
    const int w_dim = G.config.w_dim;
    NumpyRandomState rs(seed);
    const auto draw = rs.randn(w_dim);
    torch::Tensor v = torch::tensor(std::vector<float>(draw.begin(), draw.end()));
    v = v / v.norm();
    std::vector<uint32_t> seeds(1000);
    for (uint32_t k = 0; k < seeds.size(); ++k) seeds[k] = k;
    const torch::Device device = device_of(*G.mapping);
    if (G.config.c_dim > 0 && !class_index) class_index = 0;
    const torch::Tensor c = class_labels(G.config.c_dim, class_index, static_cast<int64_t>(seeds.size()));
    const torch::Tensor w =
        map_to_ws(G, z_from_seeds(seeds, G.config.z_dim).to(device), c.defined() ? c.to(device) : c).select(1, 0).to(torch::kCPU, torch::kFloat32);
    Direction d;
    d.name = "random";
    d.source = "random";
    d.scale = w.matmul(v).std().item<double>();
    d.vector.assign(v.data_ptr<float>(), v.data_ptr<float>() + w_dim);
    d.stats["seed"] = seed;
    return d;
}

AudioMorphRenderer::AudioMorphRenderer(std::shared_ptr<Generator> G, MorphSpec spec, const AudioMap& map, std::vector<AudioControl> controls,
                                       const std::vector<Direction>& directions)
    : G_(std::move(G)), spec_(std::move(spec)), controls_(std::move(controls)) {
    if (controls_.empty()) throw ArgumentError("an audio morph needs at least one frame of audio");
    if (spec_.loop_noise) throw ArgumentError("noise that loops with the video cannot follow audio: leave out the looping noise");
    if (spec_.cells < 1) throw ArgumentError("a morph needs at least one cell");
    int64_t keys = static_cast<int64_t>(spec_.render.seeds.size());
    for (const auto& w : spec_.w_keys) keys += w.dim() > 0 ? w.size(0) : 0;
    if (keys % spec_.cells != 0) throw ArgumentError(fmt::format("{} keyframes cannot be split evenly between {} grid cells", keys, spec_.cells));
    transitions_ = static_cast<double>(keys / spec_.cells) - (spec_.path.loop ? 0.0 : 1.0);
    positions_ = audio_path_positions(controls_, transitions_);
    const GeneratorConfig& cfg = G_->config;
    for (const auto& l : map.links) {
        if (l.target == AudioTarget::noise && G_->synthesis->noise_resolutions().empty())
            notes_.push_back("the noise links do nothing: this model has no noise inputs");
        if (l.target == AudioTarget::class_index && cfg.c_dim == 0) notes_.push_back("the class links do nothing: this model is unconditional");
        if (l.target != AudioTarget::direction) continue;
        if (l.direction == "random") {
            link_directions_.push_back(random_direction(*G_, map.seed, spec_.render.class_index));
            continue;
        }
        const auto it = std::find_if(directions.begin(), directions.end(), [&](const Direction& d) { return d.name == l.direction; });
        if (it == directions.end()) throw ArgumentError(fmt::format("the audio map moves along direction '{}', which the given directions do not have", l.direction));
        if (it->vector.size() != static_cast<size_t>(cfg.w_dim)) throw ShapeError(fmt::format("direction '{}' has {} values, the model's w_dim is {}", it->name, it->vector.size(), cfg.w_dim));
        link_directions_.push_back(*it);
    }
    std::sort(notes_.begin(), notes_.end());
    notes_.erase(std::unique(notes_.begin(), notes_.end()), notes_.end());
    path_for(0);  // checks the keyframes and the class before any work
}

// The morph path of the class `class_steps` changes after the spec's: keyframes mapped without
// truncation and without edits (the frames add them).
MorphRenderer& AudioMorphRenderer::path_for(int class_steps) {
    const int c_dim = G_->config.c_dim;
    const int cls = c_dim > 0 ? (spec_.render.class_index.value_or(0) + class_steps) % c_dim : 0;
    auto& slot = paths_[cls];
    if (!slot) {
        MorphSpec plain = spec_;
        plain.render.psi = 1.0;
        plain.render.edits.clear();
        plain.render.mix_seed.reset();
        plain.render.mix_layers.clear();
        if (c_dim > 0) plain.render.class_index = cls;
        slot = std::make_unique<MorphRenderer>(G_, plain);
    }
    return *slot;
}

int64_t AudioMorphRenderer::frames_per_batch() const { return std::max<int64_t>(1, spec_.batch / spec_.cells); }

torch::Tensor AudioMorphRenderer::latents(int64_t first, int64_t n) {
    if (first < 0 || n < 1 || first + n > frame_count()) throw ArgumentError("frame range outside the morph");
    torch::NoGradGuard no_grad;
    const torch::Tensor& w_avg = G_->mapping->w_avg;
    std::vector<torch::Tensor> out;
    for (int64_t f = first; f < first + n; ++f) {
        const AudioControl& c = controls_[static_cast<size_t>(f)];
        MorphRenderer& path = path_for(c.class_steps);
        torch::Tensor ws = path.latents_at(transitions_ > 0 ? positions_[static_cast<size_t>(f)] / transitions_ : 0.0);
        RenderSpec frame = spec_.render;
        frame.psi = spec_.render.psi + c.psi;
        if (frame.psi != 1.0) {
            if (!w_avg.defined()) throw ModelFormatError("this model has no w_avg: truncation is not possible");
            ws = truncate(ws, w_avg.to(ws.device()), frame.psi, frame.cutoff);
        }
        if (G_->config.c_dim > 0) frame.class_index = path.spec().render.class_index;
        for (size_t k = 0; k < link_directions_.size() && k < c.directions.size(); ++k) {
            const Direction& d = link_directions_[k];
            RenderEdit e{d.vector, d.scale, c.directions[k], 0, -1};
            if (d.layers) std::tie(e.first_layer, e.last_layer) = *d.layers;
            frame.edits.push_back(e);
        }
        out.push_back(path.renderer().edited(ws, frame));
    }
    return torch::cat(out, 0);
}

torch::Tensor AudioMorphRenderer::render(int64_t first, int64_t n) {
    return detail::guard_torch("audio morph", [&]() -> torch::Tensor {
        const torch::Tensor ws = latents(first, n);
        std::vector<float> gains;
        for (int64_t f = first; f < first + n; ++f)
            for (int c = 0; c < spec_.cells; ++c) gains.push_back(static_cast<float>(1.0 + controls_[static_cast<size_t>(f)].noise));
        std::vector<torch::Tensor> out;
        for (int64_t start = 0; start < ws.size(0); start += spec_.batch) {
            const int64_t m = std::min<int64_t>(spec_.batch, ws.size(0) - start);
            RenderSpec part = spec_.render;
            part.noise_gain.assign(gains.begin() + start, gains.begin() + start + m);
            out.push_back(path_for(0).renderer().synthesize(ws.narrow(0, start, m), part));
        }
        return torch::cat(out, 0);
    });
}

}  // namespace latentkit
