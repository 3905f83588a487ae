#pragma once
// The render entry point: a plain description of one image or a batch (RenderSpec) and a Renderer that
// holds a generator and turns specs into latents and images. The commands, the viewer's render worker
// and the examples render through it.
#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "latentkit/noise_mode.h"

namespace latentkit {

class Generator;
struct SynthesisOptions;

/// A direction applied with a strength to a range of W+ layers (as apply_direction).
struct RenderEdit {
    std::vector<float> vector;  ///< unit length, w_dim
    double scale = 1.0;         ///< strength 1 moves this far (Direction::scale)
    double strength = 0.0;
    int first_layer = 0;        ///< first W+ layer it acts on
    int last_layer = -1;        ///< last one; -1: to the end
};

/// What to render: where the latents come from (the first of `ws`, `z`, `seed_blend`, `seeds` that is
/// set), how they are changed (truncation, style mixing, edits) and how they are synthesised.
struct RenderSpec {
    std::vector<uint32_t> seeds;  ///< one image per seed: z = numpy.random.RandomState(seed).randn(z_dim)
    /// One image from the weighted sum of these seeds' latents (the viewer's continuous seed position).
    std::vector<std::pair<uint32_t, double>> seed_blend;
    torch::Tensor z;              ///< [N, z_dim]
    torch::Tensor ws;             ///< latents used as they are (no truncation): [N, num_ws, w_dim] or [N, w_dim]
    std::optional<int> class_index;  ///< conditional models: every image's class (required there)
    double psi = 1.0;             ///< truncation of mapped latents toward w_avg
    std::optional<int> cutoff;    ///< truncate only the first `cutoff` layers (unset: all)
    std::optional<uint32_t> mix_seed;  ///< style mixing: `mix_layers` come from this seed's latent
    std::vector<int> mix_layers;
    std::vector<RenderEdit> edits;     ///< applied in order, after mixing
    NoiseMode noise_mode = NoiseMode::constant;  ///< constant, random or none (StyleGAN2)
    /// With NoiseMode::random: one noise map per layer drawn from this seed and shared by the batch; unset:
    /// fresh noise for every image and call.
    std::optional<uint32_t> noise_seed;
    /// With NoiseMode::custom: one map per noise layer (SynthesisNetwork::noise_resolutions), each
    /// [N, 1, R, R] or [R, R].
    std::vector<torch::Tensor> noise;
    /// Amplitude of the noise per image (one value: every image; empty: 1): the noise of the mode above
    /// multiplied by it (StyleGAN2; audio pulses).
    std::vector<float> noise_gain;
    double translate_x = 0, translate_y = 0, rotate = 0;  ///< StyleGAN3 input transform (gen_images.py); ignored by StyleGAN2
};

/// Whether two specs render the same images: every field equal, tensors by value (a new field must be
/// added here).
bool same_render_spec(const RenderSpec& a, const RenderSpec& b);

/// Renders specs with one generator, on the device its parameters are on, in eval mode and without
/// gradients. Safe to use from one thread at a time.
class Renderer {
public:
    explicit Renderer(std::shared_ptr<Generator> G);
    /// The spec's W+ latents [N, num_ws, w_dim] on the generator's device, every change applied.
    /// Throws ArgumentError (no source, a conditional model without a class) or ShapeError.
    torch::Tensor latents(const RenderSpec& spec) const;
    /// Images [N, C, R, R] (float32, about -1..1, on the generator's device) of `ws` with the spec's noise
    /// and input transform; `block_outputs` receives each block's features (SynthesisOptions).
    torch::Tensor synthesize(const torch::Tensor& ws, const RenderSpec& spec, std::vector<torch::Tensor>* block_outputs = nullptr) const;
    /// synthesize(latents(spec), spec).
    torch::Tensor render(const RenderSpec& spec) const;
    /// W+ latents [N, num_ws, w_dim] of z [N, z_dim] with the spec's class and truncation (no mixing or edits).
    torch::Tensor mapped(const torch::Tensor& z, const RenderSpec& spec) const;
    /// `ws` [N, num_ws, w_dim] with the spec's style mixing and edits applied.
    torch::Tensor edited(torch::Tensor ws, const RenderSpec& spec) const;
    /// The generator rendered with.
    Generator& generator() const { return *G_; }
    /// Its device.
    torch::Device device() const { return device_; }

private:
    void scale_noise(SynthesisOptions& so, const std::vector<float>& gain, int64_t n) const;
    std::shared_ptr<Generator> G_;
    torch::Device device_;
};

}  // namespace latentkit
