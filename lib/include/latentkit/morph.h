#pragma once
// Morph rendering: keyframes (seeds and W+ latents) -> a path per grid cell -> batches of frames.
#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "latentkit/interpolate.h"
#include "latentkit/networks.h"

namespace latentkit {

/// What to render.
struct MorphSpec {
    PathOptions path;                     ///< interpolation kind, easing, frames per transition, loop
    bool space_z = false;                 ///< interpolate z (then map every frame) instead of W+
    int cells = 1;                        ///< independent paths (grid cells); keyframes are split evenly
    std::vector<uint32_t> seeds;          ///< keyframe seeds, first
    std::vector<torch::Tensor> w_keys;    ///< then W+ keyframes, each [N, num_ws, w_dim] (W space only)
    double truncation_psi = 1.0;          ///< applied to seed keyframes (or every frame in z space)
    std::optional<int> truncation_cutoff;
    std::vector<int> layers;              ///< ws that move; the rest stay at each cell's first keyframe (empty: all)
    NoiseMode noise = NoiseMode::constant;  ///< NoiseMode::custom: smooth noise that loops with the video
    uint32_t noise_seed = 0;              ///< seed of the looping noise
    std::optional<int> class_index;       ///< label for conditional models
    torch::Tensor input_transform;        ///< StyleGAN3: the input transform of every frame (SynthesisOptions)
    int batch = 8;                        ///< images per synthesis call
};

/// Renders the frames of a morph. Frame f of cell c is path_frame(keys of c, f).
class MorphRenderer {
public:
    /// Validates the spec (keyframe counts, shapes, layers) and prepares the keyframes on `device`.
    MorphRenderer(std::shared_ptr<Generator> G, MorphSpec spec, torch::Device device);
    /// Frames in the video.
    int64_t frame_count() const { return frames_; }
    /// Frames rendered per call of render() that fill one batch.
    int64_t frames_per_batch() const;
    /// W+ latents of frames [first, first + n), cells inner: [n * cells, num_ws, w_dim].
    torch::Tensor latents(int64_t first, int64_t n);
    /// Images of frames [first, first + n), cells inner: [n * cells, C, R, R] in the generator's range.
    torch::Tensor render(int64_t first, int64_t n);

private:
    std::shared_ptr<Generator> G_;
    MorphSpec spec_;
    torch::Device device_;
    torch::Tensor c_;                      ///< labels for one image, or undefined
    std::vector<torch::Tensor> keys_;      ///< per cell: [K, z_dim] or [K, num_ws, w_dim]
    std::vector<torch::Tensor> held_;      ///< per cell: W+ of the first keyframe
    std::vector<std::pair<torch::Tensor, torch::Tensor>> loop_noise_;  ///< per noise layer: (A, B)
    int64_t frames_ = 0;
};

}  // namespace latentkit
