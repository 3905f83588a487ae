#pragma once
// Layers of the StyleGAN2-ADA networks (reference training/networks.py), parameter names included.
#include <torch/torch.h>

#include "ops.h"

#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace latentkit {

/// Dense layer with equalised learning rate.
class FullyConnectedLayer : public torch::nn::Module {
public:
    FullyConnectedLayer(int64_t in_features, int64_t out_features, bool bias = true, Activation activation = Activation::linear,
                        double lr_multiplier = 1.0, double bias_init = 0.0);
    torch::Tensor forward(const torch::Tensor& x);

    torch::Tensor weight, bias;

private:
    Activation activation_;
    double weight_gain_, bias_gain_;
};

/// Convolution with equalised learning rate, optional resampling, bias, activation and clamp.
class Conv2dLayer : public torch::nn::Module {
public:
    Conv2dLayer(int64_t in_channels, int64_t out_channels, int64_t kernel_size, bool bias = true, Activation activation = Activation::linear,
                int64_t up = 1, int64_t down = 1, const std::vector<float>& resample_filter = {1, 3, 3, 1},
                std::optional<double> conv_clamp = std::nullopt, bool trainable = true);
    torch::Tensor forward(const torch::Tensor& x, double gain = 1.0);

    torch::Tensor weight, bias, resample_filter;

private:
    Activation activation_;
    int64_t up_, down_, padding_;
    std::optional<double> conv_clamp_;
    double weight_gain_, act_gain_;
};

/// Noise input modes of the synthesis layers.
enum class NoiseMode;

/// Modulated 3x3 convolution of the synthesis network (optionally 2x upsampling), with noise.
class SynthesisLayer : public torch::nn::Module {
public:
    SynthesisLayer(int64_t in_channels, int64_t out_channels, int64_t w_dim, int64_t resolution, int64_t kernel_size, int64_t up,
                   bool use_noise, Activation activation, const std::vector<float>& resample_filter, std::optional<double> conv_clamp);
    /// `custom_noise` is used with NoiseMode::custom (unit variance; scaled by noise_strength here).
    torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& w, NoiseMode noise_mode, const torch::Tensor& custom_noise,
                          bool fused_modconv, double gain = 1.0);

    std::shared_ptr<FullyConnectedLayer> affine;
    torch::Tensor weight, bias, resample_filter, noise_const, noise_strength;

private:
    // The fast CPU path's weight-derived tensors (squared sums, polyphase kernels), kept while the weight is
    // unchanged and no gradient is recorded; a lock keeps shared use from several threads safe.
    ops::WeightCache weight_cache();
    std::mutex cache_mutex_;
    const void* cache_data_ = nullptr;
    int64_t cache_version_ = -1;
    ops::WeightCache cache_;

    int64_t resolution_, up_, padding_;
    bool use_noise_;
    Activation activation_;
    std::optional<double> conv_clamp_;
    double act_gain_;
};

/// Modulated 1x1 convolution to image channels (no demodulation).
class ToRGBLayer : public torch::nn::Module {
public:
    ToRGBLayer(int64_t in_channels, int64_t out_channels, int64_t w_dim, std::optional<double> conv_clamp);
    torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& w, bool fused_modconv);

    std::shared_ptr<FullyConnectedLayer> affine;
    torch::Tensor weight, bias;

private:
    std::optional<double> conv_clamp_;
    double weight_gain_;
};

/// Appends the minibatch standard deviation as extra channels.
torch::Tensor minibatch_stddev(const torch::Tensor& x, std::optional<int64_t> group_size, int64_t num_channels);

}  // namespace latentkit
