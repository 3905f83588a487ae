#include "ops.h"

#include <ATen/Context.h>
#include <fmt/format.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <mutex>

#include "latentkit/error.h"
#include "latentkit/log.h"

namespace latentkit {
namespace {
Implementation initial_implementation() {
    const char* env = std::getenv("LATENTKIT_IMPL");
    if (!env || !*env) return Implementation::fast;
    if (const auto impl = option_from_name<Implementation>(env)) return *impl;
    log_warn(fmt::format("LATENTKIT_IMPL={}: not {}; using the fast implementation", env, option_choices<Implementation>()));
    return Implementation::fast;
}
std::atomic<Implementation>& current_implementation() {
    static std::atomic<Implementation> impl{initial_implementation()};
    return impl;
}
}  // namespace

void set_implementation(Implementation impl) { current_implementation() = impl; }
Implementation implementation() { return current_implementation(); }
const char* implementation_name(Implementation impl) { return option_name(impl); }
}  // namespace latentkit

namespace latentkit::ops {
namespace F = torch::nn::functional;
using torch::indexing::None;
using torch::indexing::Slice;

namespace {
bool fast() { return implementation() == Implementation::fast; }
}  // namespace

bool fast_cpu(const torch::Tensor& x) { return fast() && x.device().is_cpu() && x.scalar_type() == torch::kFloat32; }

ActivationDefaults activation_defaults(Activation act) {
    switch (act) {
        case Activation::relu: return {0, std::sqrt(2.0)};
        case Activation::lrelu: return {0.2, std::sqrt(2.0)};
        case Activation::swish: return {0, std::sqrt(2.0)};
        default: return {0, 1};
    }
}

torch::Tensor bias_act(torch::Tensor x, const torch::Tensor& b, Activation act, std::optional<double> gain, std::optional<double> clamp) {
    const ActivationDefaults spec = activation_defaults(act);
    if (b.defined()) {
        std::vector<int64_t> shape(static_cast<size_t>(x.dim()), 1);
        shape[1] = -1;
        x = x + b.reshape(shape);
    }
    switch (act) {
        case Activation::linear: break;
        case Activation::relu: x = torch::relu(x); break;
        case Activation::lrelu: x = F::leaky_relu(x, F::LeakyReLUFuncOptions().negative_slope(spec.alpha)); break;
        case Activation::tanh: x = torch::tanh(x); break;
        case Activation::sigmoid: x = torch::sigmoid(x); break;
        case Activation::elu: x = F::elu(x); break;
        case Activation::selu: x = torch::selu(x); break;
        case Activation::softplus: x = F::softplus(x); break;
        case Activation::swish: x = torch::sigmoid(x) * x; break;
    }
    const double g = gain.value_or(spec.gain);
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

namespace {
// Depthwise filtering of x (already padded) keeping every `stride`-th sample: one 2-D pass, or a
// horizontal and a vertical pass for a 1-D filter.
torch::Tensor depthwise_filter(const torch::Tensor& x, const torch::Tensor& f, int64_t stride) {
    const int64_t c = x.size(1);
    if (x.device().is_cpu()) check_cpu_convolution();
    if (f.dim() == 1) {
        const torch::Tensor fr = f.unsqueeze(0).unsqueeze(0).repeat({c, 1, 1});
        const torch::Tensor y = F::conv2d(x, fr.unsqueeze(2), F::Conv2dFuncOptions().groups(c).stride({1, stride}));
        return F::conv2d(y, fr.unsqueeze(3), F::Conv2dFuncOptions().groups(c).stride({stride, 1}));
    }
    return F::conv2d(x, f.unsqueeze(0).unsqueeze(0).repeat({c, 1, 1, 1}), F::Conv2dFuncOptions().groups(c).stride(stride));
}
}  // namespace

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
    // The fast implementation strides the filter (computing only the samples it keeps); the reference
    // filters everything, then subsamples.
    if (fast()) return depthwise_filter(x, f, down);
    x = depthwise_filter(x, f, 1);
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

namespace {
// Whether the upsampling convolution's filter border is a border, not a crop (then upconv_polyphase applies).
bool polyphase_fits(int64_t kh, int64_t kw, const torch::Tensor& f, int64_t up, int64_t padding) {
    const auto [fw, fh] = filter_size(f);
    return padding + (fw + up - 1) / 2 >= kw - 1 && padding + (fw - up) / 2 >= kw - up && padding + (fh + up - 1) / 2 >= kh - 1 &&
           padding + (fh - up) / 2 >= kh - up;
}
}  // namespace

std::vector<torch::Tensor> polyphase_kernels(const torch::Tensor& w, int64_t up) {
    const int64_t kh = w.size(2), kw = w.size(3);
    const torch::Tensor flipped = w.flip({2, 3});
    std::vector<torch::Tensor> out;
    for (int64_t py = 0; py < up; ++py)
        for (int64_t px = 0; px < up; ++px) {
            // Phase (py, px) takes the taps py, py + up, ... in reverse order: a strided slice of the flip.
            if (py >= kh || px >= kw) {
                out.emplace_back();
                continue;
            }
            out.push_back(flipped.index({Slice(), Slice(), Slice((kh - 1 - py) % up, kh - py, up), Slice((kw - 1 - px) % up, kw - px, up)})
                              .contiguous());
        }
    return out;
}

torch::Tensor upconv_polyphase(const torch::Tensor& x, const std::vector<torch::Tensor>& phases, int64_t kh, int64_t kw,
                               const torch::Tensor& f, int64_t up, int64_t padding, int64_t groups) {
    const int64_t n = x.size(0), h = x.size(2), wd = x.size(3);
    const auto [fw, fh] = filter_size(f);
    if (!polyphase_fits(kh, kw, f, up, padding)) throw ArgumentError("upconv_polyphase: this padding crops the transposed convolution");
    // The filter's zero border around the transposed convolution's output (as conv2d_resample pads it).
    const int64_t bx0 = padding + (fw + up - 1) / 2 - (kw - 1), bx1 = padding + (fw - up) / 2 - (kw - up);
    const int64_t by0 = padding + (fh + up - 1) / 2 - (kh - 1), by1 = padding + (fh - up) / 2 - (kh - up);
    const int64_t oh = (h - 1) * up + kh + by0 + by1, ow = (wd - 1) * up + kw + bx0 + bx1;
    const int64_t mh = (oh + up - 1) / up, mw = (ow + up - 1) / up;
    if (x.device().is_cpu()) check_cpu_convolution();
    // Output row Y of the bordered image lies in phase Y % up, at row Y / up of the interleaved buffer.
    torch::Tensor buffer;
    for (int64_t py = 0; py < up; ++py) {
        for (int64_t px = 0; px < up; ++px) {
            const torch::Tensor& sub = phases[static_cast<size_t>(py * up + px)];
            if (!sub.defined()) continue;
            const torch::Tensor y =
                F::conv2d(x, sub, F::Conv2dFuncOptions().padding({(kh - 1 - py) / up, (kw - 1 - px) / up}).groups(groups));
            if (!buffer.defined()) buffer = torch::zeros({n, y.size(1), mh, up, mw, up}, y.options());
            buffer.select(5, (px + bx0) % up).select(3, (py + by0) % up).narrow(2, (py + by0) / up, y.size(2)).narrow(3, (px + bx0) / up, y.size(3)).copy_(y);
        }
    }
    // The filter (gain up^2, flipped: upfirdn2d convolves) over the whole buffer; rows and columns past
    // the bordered image only reach outputs that are cut off.
    torch::Tensor g = f.defined() ? f : torch::ones({1, 1}, x.options());
    g = (g * std::pow(static_cast<double>(up * up), g.dim() / 2.0)).to(x.dtype());
    g = g.dim() == 2 ? g.flip({0, 1}) : g.flip({0});
    return depthwise_filter(buffer.reshape({n, buffer.size(1), mh * up, mw * up}), g, 1).narrow(2, 0, oh - fh + 1).narrow(3, 0, ow - fw + 1);
}

torch::Tensor upsample2d(const torch::Tensor& x, const torch::Tensor& f, int64_t up) {
    const auto [fw, fh] = filter_size(f);
    return upfirdn2d(x, f, up, 1, {(fw + up - 1) / 2, (fw - up) / 2, (fh + up - 1) / 2, (fh - up) / 2}, false,
                     static_cast<double>(up * up));
}

torch::Tensor downsample2d(const torch::Tensor& x, const torch::Tensor& f, int64_t down) {
    const auto [fw, fh] = filter_size(f);
    return upfirdn2d(x, f, 1, down, {(fw - down + 1) / 2, (fw - down) / 2, (fh - down + 1) / 2, (fh - down) / 2});
}

Pad resample_padding(const torch::Tensor& f, int64_t up, int64_t down, int64_t padding) {
    const auto [fw, fh] = filter_size(f);
    Pad p{padding, padding, padding, padding};
    if (up > 1) p = {p[0] + (fw + up - 1) / 2, p[1] + (fw - up) / 2, p[2] + (fh + up - 1) / 2, p[3] + (fh - up) / 2};
    if (down > 1) p = {p[0] + (fw - down + 1) / 2, p[1] + (fw - down) / 2, p[2] + (fh - down + 1) / 2, p[3] + (fh - down) / 2};
    return p;
}

torch::Tensor conv2d_resample(torch::Tensor x, torch::Tensor w, const torch::Tensor& f, int64_t up, int64_t down, int64_t padding,
                              int64_t groups, bool flip_weight) {
    const int64_t out_channels = w.size(0), in_per_group = w.size(1), kh = w.size(2), kw = w.size(3);
    auto [px0, px1, py0, py1] = resample_padding(f, up, down, padding);
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
    if (up > 1 && down == 1 && fast() && polyphase_fits(kh, kw, f, up, padding))
        return upconv_polyphase(x, polyphase_kernels(flip_weight ? w.flip({2, 3}) : w, up), kh, kw, f, up, padding, groups);
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
    if (fast() && kw == 1 && kh == 1 && up == 1 && down == 1 && groups == 1 && px0 == 0 && px1 == 0 && py0 == 0 && py1 == 0 && out_channels < 8 &&
        x.device().is_cpu())
        return torch::matmul(w.reshape({out_channels, in_per_group}), x.flatten(2)).reshape({x.size(0), out_channels, x.size(2), x.size(3)});
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

torch::Tensor modulated_conv2d_bias_act(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& styles,
                                        const torch::Tensor& noise, int64_t up, int64_t padding, const torch::Tensor& resample_filter,
                                        bool demodulate, bool flip_weight, const torch::Tensor& bias, Activation act, double gain,
                                        std::optional<double> clamp, const WeightCache& cache) {
    const int64_t n = x.size(0), out = weight.size(0), in = weight.size(1), taps = weight.size(2) * weight.size(3);
    const bool homogeneous = act == Activation::linear || act == Activation::lrelu || act == Activation::relu;
    const double g = homogeneous ? gain : 1.0;  // act(v) * g = act(v * g) for these: g goes into the scales
    torch::Tensor scale;
    if (demodulate) {
        const torch::Tensor square_sum = cache.square_sum.defined() ? cache.square_sum : weight.square().sum({2, 3});
        scale = (styles.square().matmul(square_sum.t()) + 1e-8).rsqrt();
    }
    if (g != 1) scale = scale.defined() ? scale * g : torch::full({n, out}, g, x.options());
    // The upsampling layers go straight to the polyphase convolution (the modulation commutes with
    // splitting the kernel into phases).
    const int64_t kh = weight.size(2), kw = weight.size(3);
    const bool polyphase = up > 1 && !flip_weight && polyphase_fits(kh, kw, resample_filter, up, padding);
    const std::vector<torch::Tensor> phases = !polyphase ? std::vector<torch::Tensor>{}
                                              : !cache.phases.empty() ? cache.phases : polyphase_kernels(weight, up);
    // Modulate whichever is smaller: the weight (one image) or the activations.
    const int64_t pixels = x.size(2) * x.size(3) * up * up;
    torch::Tensor y;
    if (n == 1 && out * in * taps < (in + out) * pixels) {
        torch::Tensor m = styles.reshape({1, in, 1, 1});
        if (scale.defined()) m = m * scale.reshape({out, 1, 1, 1});
        if (polyphase) {
            std::vector<torch::Tensor> modulated;
            for (const auto& p : phases) modulated.push_back(p.defined() ? p * m : p);
            y = upconv_polyphase(x, modulated, kh, kw, resample_filter, up, padding, 1);
        } else {
            y = conv2d_resample(x, weight * m, resample_filter, up, 1, padding, 1, flip_weight);
        }
    } else {
        const torch::Tensor xm = x * styles.reshape({n, in, 1, 1});
        y = polyphase ? upconv_polyphase(xm, phases, kh, kw, resample_filter, up, padding, 1)
                      : conv2d_resample(xm, weight, resample_filter, up, 1, padding, 1, flip_weight);
        if (scale.defined()) y = y * scale.reshape({n, out, 1, 1});
    }
    // In place when no gradient is recorded (once y is contiguous: the polyphase output is a view).
    const bool no_grad = !torch::GradMode::is_enabled();
    auto in_place = [&] { return no_grad && y.is_contiguous(); };
    if (noise.defined()) {
        const torch::Tensor scaled = g != 1 ? noise * g : noise;
        y = in_place() ? y.add_(scaled) : y + scaled;
    }
    if (!homogeneous) return bias_act(y, bias, act, gain, clamp);
    if (bias.defined()) {
        const torch::Tensor b = (g != 1 ? bias * g : bias).reshape({1, out, 1, 1});
        y = in_place() ? y.add_(b) : y + b;
    }
    if (act == Activation::lrelu) y = F::leaky_relu(y, F::LeakyReLUFuncOptions().negative_slope(0.2).inplace(in_place()));
    if (act == Activation::relu) y = in_place() ? y.relu_() : y.relu();
    if (clamp && *clamp >= 0) y = in_place() ? y.clamp_(-*clamp, *clamp) : y.clamp(-*clamp, *clamp);
    return y;
}

torch::Tensor normalize_2nd_moment(const torch::Tensor& x, int64_t dim, double eps) {
    return x * (x.square().mean(dim, true) + eps).rsqrt();
}

}  // namespace latentkit::ops
