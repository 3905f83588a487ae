#include "ops.h"

#include <ATen/Context.h>
#include <fmt/format.h>

#include <cmath>
#include <mutex>

#include "latentkit/error.h"
#include "latentkit/log.h"

namespace latentkit::ops {
namespace F = torch::nn::functional;
using torch::indexing::None;
using torch::indexing::Slice;

const Activation& activation(const std::string& name) {
    static const Activation table[] = {
        {"linear", 0, 1}, {"relu", 0, std::sqrt(2.0)}, {"lrelu", 0.2, std::sqrt(2.0)}, {"tanh", 0, 1}, {"sigmoid", 0, 1},
        {"elu", 0, 1},    {"selu", 0, 1},              {"softplus", 0, 1},             {"swish", 0, std::sqrt(2.0)},
    };
    for (const auto& a : table)
        if (a.name == name) return a;
    throw ArgumentError("unknown activation function '" + name + "'");
}

torch::Tensor bias_act(torch::Tensor x, const torch::Tensor& b, const std::string& act, std::optional<double> gain,
                       std::optional<double> clamp) {
    const Activation& spec = activation(act);
    if (b.defined()) {
        std::vector<int64_t> shape(static_cast<size_t>(x.dim()), 1);
        shape[1] = -1;
        x = x + b.reshape(shape);
    }
    const double alpha = spec.def_alpha;
    if (act == "relu") x = torch::relu(x);
    else if (act == "lrelu") x = F::leaky_relu(x, F::LeakyReLUFuncOptions().negative_slope(alpha));
    else if (act == "tanh") x = torch::tanh(x);
    else if (act == "sigmoid") x = torch::sigmoid(x);
    else if (act == "elu") x = F::elu(x);
    else if (act == "selu") x = torch::selu(x);
    else if (act == "softplus") x = F::softplus(x);
    else if (act == "swish") x = torch::sigmoid(x) * x;
    const double g = gain.value_or(spec.def_gain);
    if (g != 1) x = x * g;
    if (clamp && *clamp >= 0) x = x.clamp(-*clamp, *clamp);
    return x;
}

void check_cpu_convolution() {
    static std::once_flag once;
    std::call_once(once, [] {
        auto& context = at::globalContext();
        if (!context.userEnabledMkldnn()) return;
        torch::NoGradGuard no_grad;
        const auto opts = torch::TensorOptions().dtype(torch::kFloat32);
        const torch::Tensor x = torch::sin(torch::arange(4 * 33 * 4 * 4, opts)).reshape({4, 33, 4, 4});
        const torch::Tensor w = torch::cos(torch::arange(8 * 33 * 3 * 3, opts)).reshape({8, 33, 3, 3});
        const auto conv = F::Conv2dFuncOptions().padding(1);
        const torch::Tensor fast = F::conv2d(x, w, conv);
        context.setUserEnabledMkldnn(false);
        const torch::Tensor plain = F::conv2d(x, w, conv);
        const double error = (fast - plain).abs().max().item<double>(), scale = plain.abs().max().item<double>();
        if (error <= 1e-4 * scale) {
            context.setUserEnabledMkldnn(true);
            return;
        }
        log_warn(fmt::format("this LibTorch's oneDNN (MKL-DNN) computes wrong CPU convolutions (error {:.3g} of {:.3g} on a "
                             "test case): oneDNN is switched off for this process",
                             error, scale));
    });
}

torch::Tensor setup_filter(const std::vector<float>& taps) {
    auto f = torch::tensor(taps, torch::kFloat32);
    if (f.numel() < 8) f = torch::outer(f, f);
    return f / f.sum();
}

torch::Tensor upfirdn2d(torch::Tensor x, const torch::Tensor& filter, int64_t up, int64_t down, Pad pad, bool flip_filter,
                        double gain) {
    torch::Tensor f = filter.defined() ? filter : torch::ones({1, 1}, x.options().dtype(torch::kFloat32));
    const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
    const auto [px0, px1, py0, py1] = pad;
    if (up > 1) {
        x = x.reshape({n, c, h, 1, w, 1});
        x = F::pad(x, F::PadFuncOptions({0, up - 1, 0, 0, 0, up - 1}));
        x = x.reshape({n, c, h * up, w * up});
    }
    x = F::pad(x, F::PadFuncOptions({std::max<int64_t>(px0, 0), std::max<int64_t>(px1, 0), std::max<int64_t>(py0, 0),
                                     std::max<int64_t>(py1, 0)}));
    x = x.index({Slice(), Slice(), Slice(std::max<int64_t>(-py0, 0), x.size(2) - std::max<int64_t>(-py1, 0)),
                 Slice(std::max<int64_t>(-px0, 0), x.size(3) - std::max<int64_t>(-px1, 0))});
    f = f * std::pow(gain, f.dim() / 2.0);
    f = f.to(x.dtype());
    if (!flip_filter) {
        std::vector<int64_t> dims;
        for (int64_t d = 0; d < f.dim(); ++d) dims.push_back(d);
        f = f.flip(dims);
    }
    if (x.device().is_cpu()) check_cpu_convolution();
    if (f.dim() == 2) {
        f = f.unsqueeze(0).unsqueeze(0).repeat({c, 1, 1, 1});
        x = F::conv2d(x, f, F::Conv2dFuncOptions().groups(c));
    } else {
        auto fr = f.unsqueeze(0).unsqueeze(0).repeat({c, 1, 1});
        x = F::conv2d(x, fr.unsqueeze(2), F::Conv2dFuncOptions().groups(c));
        x = F::conv2d(x, fr.unsqueeze(3), F::Conv2dFuncOptions().groups(c));
    }
    if (down > 1) x = x.index({Slice(), Slice(), Slice(None, None, down), Slice(None, None, down)});
    return x;
}

namespace {
std::pair<int64_t, int64_t> filter_size(const torch::Tensor& f) {
    if (!f.defined()) return {1, 1};
    return {f.size(-1), f.size(0)};
}

torch::Tensor conv2d_wrapper(const torch::Tensor& x, torch::Tensor w, int64_t stride, int64_t pad_y, int64_t pad_x, int64_t groups,
                             bool transpose, bool flip_weight) {
    if (!flip_weight) w = w.flip({2, 3});
    if (x.device().is_cpu()) check_cpu_convolution();
    if (transpose)
        return F::conv_transpose2d(x, w, F::ConvTranspose2dFuncOptions().stride(stride).padding({pad_y, pad_x}).groups(groups));
    return F::conv2d(x, w, F::Conv2dFuncOptions().stride(stride).padding({pad_y, pad_x}).groups(groups));
}
}  // namespace

torch::Tensor upsample2d(const torch::Tensor& x, const torch::Tensor& f, int64_t up) {
    const auto [fw, fh] = filter_size(f);
    return upfirdn2d(x, f, up, 1, {(fw + up - 1) / 2, (fw - up) / 2, (fh + up - 1) / 2, (fh - up) / 2}, false,
                     static_cast<double>(up * up));
}

torch::Tensor downsample2d(const torch::Tensor& x, const torch::Tensor& f, int64_t down) {
    const auto [fw, fh] = filter_size(f);
    return upfirdn2d(x, f, 1, down, {(fw - down + 1) / 2, (fw - down) / 2, (fh - down + 1) / 2, (fh - down) / 2});
}

torch::Tensor conv2d_resample(torch::Tensor x, torch::Tensor w, const torch::Tensor& f, int64_t up, int64_t down, int64_t padding,
                              int64_t groups, bool flip_weight) {
    const int64_t out_channels = w.size(0), in_per_group = w.size(1), kh = w.size(2), kw = w.size(3);
    const auto [fw, fh] = filter_size(f);
    int64_t px0 = padding, px1 = padding, py0 = padding, py1 = padding;
    if (up > 1) {
        px0 += (fw + up - 1) / 2;
        px1 += (fw - up) / 2;
        py0 += (fh + up - 1) / 2;
        py1 += (fh - up) / 2;
    }
    if (down > 1) {
        px0 += (fw - down + 1) / 2;
        px1 += (fw - down) / 2;
        py0 += (fh - down + 1) / 2;
        py1 += (fh - down) / 2;
    }
    if (kw == 1 && kh == 1 && down > 1 && up == 1) {
        x = upfirdn2d(x, f, 1, down, {px0, px1, py0, py1});
        return conv2d_wrapper(x, w, 1, 0, 0, groups, false, flip_weight);
    }
    if (kw == 1 && kh == 1 && up > 1 && down == 1) {
        x = conv2d_wrapper(x, w, 1, 0, 0, groups, false, flip_weight);
        return upfirdn2d(x, f, up, 1, {px0, px1, py0, py1}, false, static_cast<double>(up * up));
    }
    if (down > 1 && up == 1) {
        x = upfirdn2d(x, f, 1, 1, {px0, px1, py0, py1});
        return conv2d_wrapper(x, w, down, 0, 0, groups, false, flip_weight);
    }
    if (up > 1) {
        if (groups == 1) {
            w = w.transpose(0, 1);
        } else {
            w = w.reshape({groups, out_channels / groups, in_per_group, kh, kw});
            w = w.transpose(1, 2);
            w = w.reshape({groups * in_per_group, out_channels / groups, kh, kw});
        }
        px0 -= kw - 1;
        px1 -= kw - up;
        py0 -= kh - 1;
        py1 -= kh - up;
        const int64_t pxt = std::max<int64_t>(std::min(-px0, -px1), 0);
        const int64_t pyt = std::max<int64_t>(std::min(-py0, -py1), 0);
        x = conv2d_wrapper(x, w, up, pyt, pxt, groups, true, !flip_weight);
        x = upfirdn2d(x, f, 1, 1, {px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt}, false, static_cast<double>(up * up));
        if (down > 1) x = upfirdn2d(x, f, 1, down);
        return x;
    }
    if (up == 1 && down == 1 && px0 == px1 && py0 == py1 && px0 >= 0 && py0 >= 0)
        return conv2d_wrapper(x, w, 1, py0, px0, groups, false, flip_weight);
    x = upfirdn2d(x, up > 1 ? f : torch::Tensor(), up, 1, {px0, px1, py0, py1}, false, static_cast<double>(up * up));
    x = conv2d_wrapper(x, w, 1, 0, 0, groups, false, flip_weight);
    if (down > 1) x = upfirdn2d(x, f, 1, down);
    return x;
}

torch::Tensor modulated_conv2d(torch::Tensor x, torch::Tensor weight, torch::Tensor styles, const torch::Tensor& noise, int64_t up,
                               int64_t padding, const torch::Tensor& resample_filter, bool demodulate, bool flip_weight,
                               bool fused_modconv) {
    const int64_t batch = x.size(0);
    const int64_t in_channels = weight.size(1), kh = weight.size(2), kw = weight.size(3);
    if (x.scalar_type() == torch::kHalf && demodulate) {
        weight = weight * (1.0 / std::sqrt(static_cast<double>(in_channels * kh * kw)) /
                           weight.norm(INFINITY, {1, 2, 3}, true));
        styles = styles / styles.norm(INFINITY, {1}, true);
    }
    torch::Tensor w, dcoefs;
    if (demodulate || fused_modconv) {
        w = weight.unsqueeze(0) * styles.reshape({batch, 1, -1, 1, 1});
    }
    if (demodulate) dcoefs = (w.square().sum({2, 3, 4}) + 1e-8).rsqrt();
    if (demodulate && fused_modconv) w = w * dcoefs.reshape({batch, -1, 1, 1, 1});

    if (!fused_modconv) {
        x = x * styles.to(x.dtype()).reshape({batch, -1, 1, 1});
        x = conv2d_resample(x, weight.to(x.dtype()), resample_filter, up, 1, padding, 1, flip_weight);
        if (demodulate && noise.defined()) {
            x = torch::addcmul(noise.to(x.dtype()), x, dcoefs.to(x.dtype()).reshape({batch, -1, 1, 1}));
        } else if (demodulate) {
            x = x * dcoefs.to(x.dtype()).reshape({batch, -1, 1, 1});
        } else if (noise.defined()) {
            x = x + noise.to(x.dtype());
        }
        return x;
    }
    x = x.reshape({1, -1, x.size(2), x.size(3)});
    w = w.reshape({-1, in_channels, kh, kw});
    x = conv2d_resample(x, w.to(x.dtype()), resample_filter, up, 1, padding, batch, flip_weight);
    x = x.reshape({batch, -1, x.size(2), x.size(3)});
    if (noise.defined()) x = x + noise.to(x.dtype());
    return x;
}

torch::Tensor normalize_2nd_moment(const torch::Tensor& x, int64_t dim, double eps) {
    return x * (x.square().mean(dim, true) + eps).rsqrt();
}

}  // namespace latentkit::ops
