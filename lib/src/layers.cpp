#include "layers.h"

#include <cmath>

#include "latentkit/networks.h"
#include "ops.h"

namespace latentkit {

FullyConnectedLayer::FullyConnectedLayer(int64_t in_features, int64_t out_features, bool has_bias, Activation activation,
                                         double lr_multiplier, double bias_init)
    : activation_(activation),
      weight_gain_(lr_multiplier / std::sqrt(static_cast<double>(in_features))),
      bias_gain_(lr_multiplier) {
    weight = register_parameter("weight", torch::randn({out_features, in_features}) / lr_multiplier);
    if (has_bias) bias = register_parameter("bias", torch::full({out_features}, static_cast<float>(bias_init)));
}

torch::Tensor FullyConnectedLayer::forward(const torch::Tensor& x) {
    torch::Tensor w = weight.to(x.dtype()) * weight_gain_;
    torch::Tensor b = bias;
    if (b.defined()) {
        b = b.to(x.dtype());
        if (bias_gain_ != 1) b = b * bias_gain_;
    }
    if (activation_ == Activation::linear && b.defined()) return torch::addmm(b.unsqueeze(0), x, w.t());
    return ops::bias_act(x.matmul(w.t()), b, activation_);
}

Conv2dLayer::Conv2dLayer(int64_t in_channels, int64_t out_channels, int64_t kernel_size, bool has_bias, Activation activation,
                         int64_t up, int64_t down, const std::vector<float>& filter, std::optional<double> conv_clamp, bool trainable)
    : activation_(activation),
      up_(up),
      down_(down),
      padding_(kernel_size / 2),
      conv_clamp_(conv_clamp),
      weight_gain_(1.0 / std::sqrt(static_cast<double>(in_channels * kernel_size * kernel_size))),
      act_gain_(ops::activation_defaults(activation_).gain) {
    resample_filter = register_buffer("resample_filter", ops::setup_filter(filter));
    auto w = torch::randn({out_channels, in_channels, kernel_size, kernel_size});
    if (trainable) {
        weight = register_parameter("weight", w);
        if (has_bias) bias = register_parameter("bias", torch::zeros({out_channels}));
    } else {
        weight = register_buffer("weight", w);
        if (has_bias) bias = register_buffer("bias", torch::zeros({out_channels}));
    }
}

torch::Tensor Conv2dLayer::forward(const torch::Tensor& x, double gain) {
    torch::Tensor w = weight * weight_gain_;
    torch::Tensor b = bias.defined() ? bias.to(x.dtype()) : torch::Tensor();
    const bool flip_weight = up_ == 1;
    torch::Tensor y = ops::conv2d_resample(x, w.to(x.dtype()), resample_filter, up_, down_, padding_, 1, flip_weight);
    std::optional<double> clamp;
    if (conv_clamp_) clamp = *conv_clamp_ * gain;
    return ops::bias_act(y, b, activation_, act_gain_ * gain, clamp);
}

SynthesisLayer::SynthesisLayer(int64_t in_channels, int64_t out_channels, int64_t w_dim, int64_t resolution, int64_t kernel_size,
                               int64_t up, bool use_noise, Activation activation, const std::vector<float>& filter,
                               std::optional<double> conv_clamp)
    : resolution_(resolution),
      up_(up),
      padding_(kernel_size / 2),
      use_noise_(use_noise),
      activation_(activation),
      conv_clamp_(conv_clamp),
      act_gain_(ops::activation_defaults(activation_).gain) {
    resample_filter = register_buffer("resample_filter", ops::setup_filter(filter));
    affine = register_module("affine", std::make_shared<FullyConnectedLayer>(w_dim, in_channels, true, Activation::linear, 1.0, 1.0));
    weight = register_parameter("weight", torch::randn({out_channels, in_channels, kernel_size, kernel_size}));
    if (use_noise) {
        noise_const = register_buffer("noise_const", torch::randn({resolution, resolution}));
        noise_strength = register_parameter("noise_strength", torch::zeros({}));
    }
    bias = register_parameter("bias", torch::zeros({out_channels}));
}

torch::Tensor SynthesisLayer::forward(const torch::Tensor& x, const torch::Tensor& w, NoiseMode noise_mode,
                                      const torch::Tensor& custom_noise, bool fused_modconv, double gain) {
    torch::Tensor styles = affine->forward(w);
    torch::Tensor noise;
    if (use_noise_ && noise_mode == NoiseMode::random)
        noise = torch::randn({x.size(0), 1, resolution_, resolution_}, x.options().dtype(torch::kFloat32)) * noise_strength;
    if (use_noise_ && noise_mode == NoiseMode::constant) noise = noise_const * noise_strength;
    if (use_noise_ && noise_mode == NoiseMode::custom) noise = custom_noise.to(x.device(), torch::kFloat32) * noise_strength;
    const bool flip_weight = up_ == 1;
    std::optional<double> clamp;
    if (conv_clamp_) clamp = *conv_clamp_ * gain;
    if (ops::fast_cpu(x))
        return ops::modulated_conv2d_bias_act(x, weight, styles, noise, up_, padding_, resample_filter, true, flip_weight, bias, activation_,
                                              act_gain_ * gain, clamp, weight_cache());
    torch::Tensor y = ops::modulated_conv2d(x, weight, styles, noise, up_, padding_, resample_filter, true, flip_weight, fused_modconv);
    return ops::bias_act(y, bias.to(y.dtype()), activation_, act_gain_ * gain, clamp);
}

ops::WeightCache SynthesisLayer::weight_cache() {
    if (torch::GradMode::is_enabled()) return {};
    std::lock_guard<std::mutex> lock(cache_mutex_);
    if (cache_data_ != weight.data_ptr() || cache_version_ != static_cast<int64_t>(weight._version())) {
        cache_.square_sum = weight.square().sum({2, 3});
        cache_.phases = up_ > 1 ? ops::polyphase_kernels(weight, up_) : std::vector<torch::Tensor>{};
        cache_data_ = weight.data_ptr();
        cache_version_ = static_cast<int64_t>(weight._version());
    }
    return cache_;
}

ToRGBLayer::ToRGBLayer(int64_t in_channels, int64_t out_channels, int64_t w_dim, std::optional<double> conv_clamp)
    : conv_clamp_(conv_clamp), weight_gain_(1.0 / std::sqrt(static_cast<double>(in_channels))) {
    affine = register_module("affine", std::make_shared<FullyConnectedLayer>(w_dim, in_channels, true, Activation::linear, 1.0, 1.0));
    weight = register_parameter("weight", torch::randn({out_channels, in_channels, 1, 1}));
    bias = register_parameter("bias", torch::zeros({out_channels}));
}

torch::Tensor ToRGBLayer::forward(const torch::Tensor& x, const torch::Tensor& w, bool fused_modconv) {
    torch::Tensor styles = affine->forward(w) * weight_gain_;
    if (ops::fast_cpu(x))
        return ops::modulated_conv2d_bias_act(x, weight, styles, {}, 1, 0, {}, false, true, bias, Activation::linear, 1.0, conv_clamp_);
    torch::Tensor y = ops::modulated_conv2d(x, weight, styles, torch::Tensor(), 1, 0, torch::Tensor(), false, true, fused_modconv);
    return ops::bias_act(y, bias.to(y.dtype()), Activation::linear, std::nullopt, conv_clamp_);
}

torch::Tensor minibatch_stddev(const torch::Tensor& x, std::optional<int64_t> group_size, int64_t num_channels) {
    const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
    const int64_t g = group_size ? std::min(*group_size, n) : n;
    const int64_t f = num_channels, cc = c / f;
    torch::Tensor y = x.reshape({g, -1, f, cc, h, w});
    y = y - y.mean(0);
    y = y.square().mean(0);
    y = (y + 1e-8).sqrt();
    y = y.mean({2, 3, 4});
    y = y.reshape({-1, f, 1, 1});
    y = y.repeat({g, 1, h, w});
    return torch::cat({x, y}, 1);
}

}  // namespace latentkit
