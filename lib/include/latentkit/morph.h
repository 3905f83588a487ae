#pragma once
// Morph rendering: keyframes (seeds and W+ latents) -> a path per grid cell -> batches of frames.
#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "latentkit/interpolate.h"
#include "latentkit/networks.h"
#include "latentkit/render.h"

namespace latentkit {

/// What to render: a path through keyframes, and a RenderSpec for everything else.
struct MorphSpec {
    /// The keyframe seeds (render.seeds, before the w_keys), the class, truncation (of seed keyframes, or
    /// of every frame in z space), noise, the StyleGAN3 input transform, and the style mixing and edits
    /// applied to every frame. render.z, render.ws and render.seed_blend are not used.
    RenderSpec render;
    PathOptions path;                     ///< interpolation kind, easing, frames per transition, loop
    bool space_z = false;                 ///< interpolate z (then map every frame) instead of W+
    int cells = 1;                        ///< independent paths (grid cells); keyframes are split evenly
    std::vector<torch::Tensor> w_keys;    ///< W+ keyframes after the seeds, each [N, num_ws, w_dim] (W space only)
    std::vector<int> layers;              ///< ws that move; the rest stay at each cell's first keyframe (empty: all)
    /// Smooth random noise that loops with the video, drawn from render.noise_seed (0 when unset);
    /// replaces render.noise_mode.
    bool loop_noise = false;
    int batch = 8;                        ///< images per synthesis call
};

/// Whether two morph specs render the same frames (tensors by value).
bool same_morph_spec(const MorphSpec& a, const MorphSpec& b);

/// Renders the frames of a morph. Frame f of cell c is path_frame(keys of c, f).
class MorphRenderer {
public:
    /// Validates the spec (keyframe counts, shapes, layers) and prepares the keyframes on the device of
    /// G's parameters.
    MorphRenderer(std::shared_ptr<Generator> G, MorphSpec spec);
    /// Frames in the video.
    int64_t frame_count() const { return frames_; }
    /// Frames rendered per call of render() that fill one batch.
    int64_t frames_per_batch() const;
    /// W+ latents of frames [first, first + n), cells inner: [n * cells, num_ws, w_dim].
    torch::Tensor latents(int64_t first, int64_t n);
    /// W+ latents at position t in [0, 1] of the whole path (between frames too), cells inner:
    /// [cells, num_ws, w_dim]. The viewer's morph preview.
    torch::Tensor latents_at(double t);
    /// The renderer of the frames (the spec's class, truncation, noise and transform go with `render`).
    const Renderer& renderer() const { return renderer_; }
    /// The spec, as validated.
    const MorphSpec& spec() const { return spec_; }
    /// Images of frames [first, first + n), cells inner: [n * cells, C, R, R] in the generator's range.
    torch::Tensor render(int64_t first, int64_t n);

private:
    void prepare_keys();
    void prepare_loop_noise();
    torch::Tensor finish(torch::Tensor items, const std::vector<torch::Tensor>& held) const;
    Renderer renderer_;
    MorphSpec spec_;
    std::vector<torch::Tensor> keys_;      ///< per cell: [K, z_dim] or [K, num_ws, w_dim]
    std::vector<torch::Tensor> held_;      ///< per cell: W+ of the first keyframe
    std::vector<std::pair<torch::Tensor, torch::Tensor>> loop_noise_;  ///< per noise layer: (A, B)
    int64_t frames_ = 0;
};

}  // namespace latentkit
