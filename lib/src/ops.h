#pragma once
// Building blocks of the StyleGAN2-ADA networks, numerically as the reference torch_utils/ops
// (reference, non-CUDA-plugin code paths), written against the LibTorch API common to 1.13 and 2.x.
#include <torch/torch.h>

#include <array>
#include <optional>
#include <string>
#include <vector>

#include "latentkit/implementation.h"
#include "latentkit/model_config.h"

namespace latentkit::ops {

/// An activation function's default alpha and gain (the reference's `activation_funcs`).
struct ActivationDefaults {
    double alpha = 0.0;
    double gain = 1.0;
};
/// The defaults of `act`.
ActivationDefaults activation_defaults(Activation act);

/// Bias, activation, gain and clamp in that order (bias broadcast along dim 1).
torch::Tensor bias_act(torch::Tensor x, const torch::Tensor& b, Activation act = Activation::linear,
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

/// The kernels of the up^2 output phases of a stride-`up` transposed convolution with w (conv2d layout
/// [out, in / groups, kh, kw], taps placed without flipping), phase (py, px) at py * up + px, each
/// contiguous; undefined for a phase with no taps.
std::vector<torch::Tensor> polyphase_kernels(const torch::Tensor& w, int64_t up);

/// The reference's upsampling convolution (stride-`up` transposed convolution, then the filter f with
/// gain up^2 and conv2d_resample's padding), computed as one stride-1 convolution per output phase on
/// the low-resolution x (kernels from polyphase_kernels of a kh x kw kernel), written interleaved into
/// the filter's zero border, and one filter pass.
torch::Tensor upconv_polyphase(const torch::Tensor& x, const std::vector<torch::Tensor>& phases, int64_t kh, int64_t kw,
                               const torch::Tensor& f, int64_t up, int64_t padding, int64_t groups);

/// conv2d_resample's padding of the filter pass around a convolution with `padding`, as [x0, x1, y0, y1].
Pad resample_padding(const torch::Tensor& f, int64_t up, int64_t down, int64_t padding);

/// Convolution with optional up/downsampling: the reference's execution path, or with the fast
/// implementation the same function through polyphase convolutions and separable, strided filters.
torch::Tensor conv2d_resample(torch::Tensor x, torch::Tensor w, const torch::Tensor& f, int64_t up = 1, int64_t down = 1,
                              int64_t padding = 0, int64_t groups = 1, bool flip_weight = true);

/// Modulated convolution with optional demodulation and noise.
torch::Tensor modulated_conv2d(torch::Tensor x, torch::Tensor weight, torch::Tensor styles, const torch::Tensor& noise,
                               int64_t up, int64_t padding, const torch::Tensor& resample_filter, bool demodulate,
                               bool flip_weight, bool fused_modconv);

/// True when x takes the fast CPU paths: the fast implementation, a float32 CPU tensor.
bool fast_cpu(const torch::Tensor& x);

/// modulated_conv2d followed by bias_act(bias, act, gain, clamp) for the fast CPU path: demodulation
/// and gain folded into the weight (one image) or into one scale of the output, the activation and
/// clamp in place when no gradient is recorded. The same function as the two calls.
/// `cache` may hold the weight's squared sum over the kernel ([out, in]) and its polyphase kernels;
/// what it lacks is computed.
struct WeightCache {
    torch::Tensor square_sum;
    std::vector<torch::Tensor> phases;
};
torch::Tensor modulated_conv2d_bias_act(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& styles,
                                        const torch::Tensor& noise, int64_t up, int64_t padding, const torch::Tensor& resample_filter,
                                        bool demodulate, bool flip_weight, const torch::Tensor& bias, Activation act, double gain,
                                        std::optional<double> clamp, const WeightCache& cache = {});

/// x * rsqrt(mean(x^2, dim) + eps).
torch::Tensor normalize_2nd_moment(const torch::Tensor& x, int64_t dim = 1, double eps = 1e-8);

}  // namespace latentkit::ops
