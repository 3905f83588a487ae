#pragma once
// Latent-space operations: seeds to z, z to W / W+, truncation, interpolation, style mixing, and the
// reference 8-bit image conversion. W+ tensors are [N, num_ws, w_dim]; a single w is [N, w_dim].
#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <vector>

namespace latentkit {

class Generator;

/// z for each seed, stacked: [N, z_dim] float32, row k = numpy.random.RandomState(seeds[k]).randn(z_dim).
torch::Tensor z_from_seeds(const std::vector<uint32_t>& seeds, int z_dim);

/// Labels for a batch: one-hot for `class_index` ([batch, c_dim]); undefined tensor when c_dim == 0.
/// Throws ArgumentError when a conditional model gets no class or an out-of-range one.
torch::Tensor class_labels(int c_dim, std::optional<int> class_index, int64_t batch);

/// Maps z (and labels) to W+ with truncation, in eval mode without gradients.
torch::Tensor map_to_ws(Generator& G, const torch::Tensor& z, const torch::Tensor& c, double truncation_psi = 1.0,
                        std::optional<int> truncation_cutoff = std::nullopt);

/// Repeats a single w [N, w_dim] over `num_ws` layers.
torch::Tensor broadcast_w(const torch::Tensor& w, int num_ws);

/// Truncation toward w_avg: ws' = w_avg + psi * (ws - w_avg), on the first `cutoff` layers (all if unset).
torch::Tensor truncate(const torch::Tensor& ws, const torch::Tensor& w_avg, double psi, std::optional<int> cutoff = std::nullopt);

/// Linear interpolation a + t * (b - a).
torch::Tensor lerp(const torch::Tensor& a, const torch::Tensor& b, double t);

/// Spherical interpolation along the last dimension (for z); falls back to lerp for (anti)parallel vectors.
torch::Tensor slerp(const torch::Tensor& a, const torch::Tensor& b, double t);

/// Style mixing: `ws` with the layers in `layers` replaced by those of `source` (both [N, num_ws, w_dim]).
torch::Tensor mix_layers(const torch::Tensor& ws, const torch::Tensor& source, const std::vector<int>& layers);

/// Reference 8-bit conversion: (img * 127.5 + 128).clamp(0, 255) as uint8, NCHW -> NHWC; on the CPU
/// unless `keep_device`, which leaves the result on the image's device (the viewer's GPU upload).
torch::Tensor to_uint8_nhwc(const torch::Tensor& img, bool keep_device = false);

}  // namespace latentkit
