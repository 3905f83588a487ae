#pragma once
// Building blocks of the StyleGAN2-ADA networks, numerically as the reference torch_utils/ops
// (reference, non-CUDA-plugin code paths), written against the LibTorch API common to 1.13 and 2.x.
#include <torch/torch.h>

#include <array>
#include <optional>
#include <string>

namespace latentkit::ops {

/// Activation function description (name, default alpha and gain).
struct Activation {
    std::string name;
    double def_alpha = 0.0;
    double def_gain = 1.0;
};
/// Looks up 'linear', 'relu', 'lrelu', 'tanh', 'sigmoid', 'elu', 'selu', 'softplus', 'swish'.
const Activation& activation(const std::string& name);

/// Bias, activation, gain and clamp in that order (bias broadcast along dim 1).
torch::Tensor bias_act(torch::Tensor x, const torch::Tensor& b, const std::string& act = "linear",
                       std::optional<double> gain = std::nullopt, std::optional<double> clamp = std::nullopt);

/// Once per process: compares a float32 CPU convolution through oneDNN with LibTorch's own kernels and
/// switches oneDNN off (with a warning) if they disagree, as Debian 13's LibTorch 2.6 does for odd channel counts.
/// The convolutions in this file call it; code that may run a CPU convolution before them should call it too.
void check_cpu_convolution();

/// 2-D filter buffer from 1-D taps: outer product (fewer than 8 taps), normalised to sum 1.
torch::Tensor setup_filter(const std::vector<float>& taps);

/// Padding as [x0, x1, y0, y1].
using Pad = std::array<int64_t, 4>;

/// Upsample (zero insertion), pad/crop, FIR filter, downsample.
torch::Tensor upfirdn2d(torch::Tensor x, const torch::Tensor& f, int64_t up = 1, int64_t down = 1, Pad pad = {0, 0, 0, 0},
                        bool flip_filter = false, double gain = 1.0);
/// 2x upsampling with the filter (gain up^2).
torch::Tensor upsample2d(const torch::Tensor& x, const torch::Tensor& f, int64_t up = 2);
/// 2x downsampling with the filter.
torch::Tensor downsample2d(const torch::Tensor& x, const torch::Tensor& f, int64_t down = 2);

/// Convolution with optional up/downsampling, choosing the same execution path as the reference.
torch::Tensor conv2d_resample(torch::Tensor x, torch::Tensor w, const torch::Tensor& f, int64_t up = 1, int64_t down = 1,
                              int64_t padding = 0, int64_t groups = 1, bool flip_weight = true);

/// Modulated convolution with optional demodulation and noise.
torch::Tensor modulated_conv2d(torch::Tensor x, torch::Tensor weight, torch::Tensor styles, const torch::Tensor& noise,
                               int64_t up, int64_t padding, const torch::Tensor& resample_filter, bool demodulate,
                               bool flip_weight, bool fused_modconv);

/// x * rsqrt(mean(x^2, dim) + eps).
torch::Tensor normalize_2nd_moment(const torch::Tensor& x, int64_t dim = 1, double eps = 1e-8);

}  // namespace latentkit::ops
