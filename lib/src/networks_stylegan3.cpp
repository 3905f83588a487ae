// StyleGAN3 (alias-free) synthesis network, numerically as the stylegan3 repo's
// training/networks_stylegan3.py with its reference (non-CUDA-plugin) ops.
#include <fmt/format.h>

#include <cmath>

#include "latentkit/error.h"
#include "latentkit/networks.h"
#include "layers.h"
#include "ops.h"
#include "torch_errors.h"

namespace latentkit {
namespace {
constexpr double kPi = 3.14159265358979323846;

// scipy.signal.kaiser_atten / kaiser_beta.
double kaiser_beta(int numtaps, double width) {
    const double a = 2.285 * (numtaps - 1) * kPi * width + 7.95;
    if (a > 50) return 0.1102 * (a - 8.7);
    if (a > 21) return 0.5842 * std::pow(a - 21, 0.4) + 0.07886 * (a - 21);
    return 0;
}

// numpy.kaiser(numtaps, beta).
std::vector<double> kaiser_window(int numtaps, double beta) {
    std::vector<double> w(static_cast<size_t>(numtaps), 1.0);
    if (numtaps == 1) return w;
    const double alpha = (numtaps - 1) / 2.0;
    for (int n = 0; n < numtaps; ++n) {
        const double r = (n - alpha) / alpha;
        w[static_cast<size_t>(n)] = std::cyl_bessel_i(0.0, beta * std::sqrt(std::max(0.0, 1 - r * r))) / std::cyl_bessel_i(0.0, beta);
    }
    return w;
}

// SynthesisLayer.design_lowpass_filter: a separable Kaiser low-pass (scipy.signal.firwin) or a radially
// symmetric jinc filter; undefined for a single tap (identity). Used when a network is built from its
// configuration alone: a model file brings its own filters.
torch::Tensor lowpass_filter(int numtaps, double cutoff, double width, double fs, bool radial) {
    if (numtaps == 1) return {};
    const double nyq = fs / 2;
    const std::vector<double> window = kaiser_window(numtaps, kaiser_beta(numtaps, width / nyq));
    if (!radial) {
        const double c = cutoff / nyq, alpha = 0.5 * (numtaps - 1);
        std::vector<float> h(static_cast<size_t>(numtaps));
        double sum = 0;
        std::vector<double> hd(static_cast<size_t>(numtaps));
        for (int n = 0; n < numtaps; ++n) {
            const double x = c * (n - alpha);
            const double sinc = x == 0 ? 1.0 : std::sin(kPi * x) / (kPi * x);
            hd[static_cast<size_t>(n)] = c * sinc * window[static_cast<size_t>(n)];
            sum += hd[static_cast<size_t>(n)];
        }
        for (int n = 0; n < numtaps; ++n) h[static_cast<size_t>(n)] = static_cast<float>(hd[static_cast<size_t>(n)] / sum);
        return torch::tensor(h);
    }
    std::vector<double> f(static_cast<size_t>(numtaps * numtaps));
    double sum = 0;
    for (int i = 0; i < numtaps; ++i)
        for (int j = 0; j < numtaps; ++j) {
            const double x = (j - (numtaps - 1) / 2.0) / fs, y = (i - (numtaps - 1) / 2.0) / fs, r = std::hypot(x, y);
            double v = std::cyl_bessel_j(1.0, 2 * cutoff * kPi * r) / (kPi * r);
            v *= window[static_cast<size_t>(i)] * window[static_cast<size_t>(j)];
            f[static_cast<size_t>(i * numtaps + j)] = v;
            sum += v;
        }
    std::vector<float> out(f.size());
    for (size_t k = 0; k < f.size(); ++k) out[k] = static_cast<float>(f[k] / sum);
    return torch::tensor(out).reshape({numtaps, numtaps});
}

// The sizes, rates and cutoffs of every layer, from the configuration (SynthesisNetwork.__init__).
struct LayerPlan {
    std::vector<double> cutoffs, sampling_rates, half_widths;
    std::vector<int> sizes, channels;
};

LayerPlan plan_layers(const GeneratorConfig& g) {
    const Stylegan3Config& t = g.stylegan3;
    const int n = t.num_layers;
    const double last_cutoff = g.img_resolution / 2.0, last_stopband = last_cutoff * t.last_stopband_rel;
    LayerPlan p;
    for (int i = 0; i <= n; ++i) {
        const double e = std::min(static_cast<double>(i) / (n - t.num_critical), 1.0);
        const double cutoff = t.first_cutoff * std::pow(last_cutoff / t.first_cutoff, e);
        const double stopband = t.first_stopband * std::pow(last_stopband / t.first_stopband, e);
        const double rate = std::exp2(std::ceil(std::log2(std::min(stopband * 2, static_cast<double>(g.img_resolution)))));
        p.cutoffs.push_back(cutoff);
        p.sampling_rates.push_back(rate);
        p.half_widths.push_back(std::max(stopband, rate / 2) - cutoff);
        p.sizes.push_back(i >= n - 1 ? g.img_resolution : static_cast<int>(rate + t.margin_size * 2));
        p.channels.push_back(i == n ? g.img_channels : static_cast<int>(std::nearbyint(std::min(t.channel_base / 2.0 / cutoff, double(t.channel_max)))));
    }
    return p;
}

// modulated_conv2d of networks_stylegan3.py: pre-normalised weights and styles, demodulation, the input
// gain, one grouped convolution with full padding.
torch::Tensor modulated_conv(const torch::Tensor& x, torch::Tensor w, torch::Tensor s, bool demodulate, int64_t padding,
                             const torch::Tensor& input_gain) {
    const int64_t n = x.size(0), in_channels = w.size(1), kh = w.size(2), kw = w.size(3);
    if (demodulate) {
        w = w * w.square().mean({1, 2, 3}, true).rsqrt();
        s = s * s.square().mean().rsqrt();
    }
    w = w.unsqueeze(0) * s.unsqueeze(1).unsqueeze(3).unsqueeze(4);
    if (demodulate) w = w * (w.square().sum({2, 3, 4}) + 1e-8).rsqrt().unsqueeze(2).unsqueeze(3).unsqueeze(4);
    w = w * input_gain.expand({n, in_channels}).unsqueeze(1).unsqueeze(3).unsqueeze(4);
    if (x.device().is_cpu()) ops::check_cpu_convolution();
    torch::Tensor y = torch::conv2d(x.reshape({1, -1, x.size(2), x.size(3)}), w.reshape({-1, in_channels, kh, kw}).to(x.dtype()), {},
                                    1, padding, 1, n);
    return y.reshape({n, -1, y.size(2), y.size(3)});
}
}  // namespace

// Fourier features of a w-dependent rotation and translation (SynthesisInput).
class Stylegan3Input : public torch::nn::Module {
public:
    Stylegan3Input(int w_dim, int channels, int size, double sampling_rate, double bandwidth)
        : shape{channels, size, sampling_rate, bandwidth}, channels_(channels), size_(size), sampling_rate_(sampling_rate), bandwidth_(bandwidth) {
        torch::Tensor freqs = torch::randn({channels, 2});
        const torch::Tensor radii = freqs.square().sum(1, true).sqrt();
        freqs = freqs / (radii * radii.square().exp().pow(0.25)) * bandwidth;
        weight = register_parameter("weight", torch::randn({channels, channels}));
        affine = register_module("affine", std::make_shared<FullyConnectedLayer>(w_dim, 4));
        {
            torch::NoGradGuard no_grad;  // weight_init 0, bias_init [1, 0, 0, 0]
            affine->weight.zero_();
            affine->bias.copy_(torch::tensor({1.0f, 0.0f, 0.0f, 0.0f}));
        }
        transform = register_buffer("transform", torch::eye(3));
        this->freqs = register_buffer("freqs", freqs);
        phases = register_buffer("phases", torch::rand({channels}) - 0.5);
    }

    torch::Tensor forward(const torch::Tensor& w, const torch::Tensor& user_transform) {
        const auto opts = w.options().dtype(torch::kFloat32);
        const int64_t n = w.size(0);
        torch::Tensor t = affine->forward(w);  // (r_c, r_s, t_x, t_y)
        t = t / t.narrow(1, 0, 2).norm(2, 1, true);
        const torch::Tensor zero = torch::zeros({n}, opts), one = torch::ones({n}, opts);
        const torch::Tensor c = t.select(1, 0), s = t.select(1, 1), tx = t.select(1, 2), ty = t.select(1, 3);
        // Inverse rotation, then inverse translation, with respect to the output image.
        const torch::Tensor m_r = torch::stack({c, -s, zero, s, c, zero, zero, zero, one}, 1).reshape({n, 3, 3});
        const torch::Tensor m_t = torch::stack({one, zero, -tx, zero, one, -ty, zero, zero, one}, 1).reshape({n, 3, 3});
        const torch::Tensor user = user_transform.defined() ? user_transform.to(w.device(), torch::kFloat32) : transform;
        const torch::Tensor transforms = m_r.matmul(m_t).matmul(user.unsqueeze(0));
        torch::Tensor f = freqs.unsqueeze(0), ph = phases.unsqueeze(0);
        ph = ph + f.matmul(transforms.narrow(1, 0, 2).narrow(2, 2, 1)).squeeze(2);
        f = f.matmul(transforms.narrow(1, 0, 2).narrow(2, 0, 2));
        const torch::Tensor amplitudes = (1 - (f.norm(2, 2) - bandwidth_) / (sampling_rate_ / 2 - bandwidth_)).clamp(0, 1);
        torch::Tensor theta = torch::eye(2, 3, opts);
        theta[0][0] = 0.5 * size_ / sampling_rate_;
        theta[1][1] = 0.5 * size_ / sampling_rate_;
        const torch::Tensor grids = torch::nn::functional::affine_grid(theta.unsqueeze(0), {1, 1, size_, size_}, false);
        torch::Tensor x = grids.unsqueeze(3).matmul(f.permute({0, 2, 1}).unsqueeze(1).unsqueeze(2)).squeeze(3);
        x = x + ph.unsqueeze(1).unsqueeze(2);
        x = torch::sin(x * (kPi * 2)) * amplitudes.unsqueeze(1).unsqueeze(2);
        x = x.matmul((weight / std::sqrt(static_cast<double>(channels_))).t());
        return x.permute({0, 3, 1, 2});
    }

    std::shared_ptr<FullyConnectedLayer> affine;
    torch::Tensor weight, transform, freqs, phases;
    const Stylegan3InputShape shape;

private:
    int channels_;
    int64_t size_;
    double sampling_rate_, bandwidth_;
};

// One layer L{i}_{size}_{channels}: modulated convolution, then bias, upsampling, leaky ReLU with gain
// and clamp, and downsampling (filtered_lrelu). The last one is ToRGB: 1x1, no demodulation, linear.
class Stylegan3Layer : public torch::nn::Module {
public:
    Stylegan3Layer(const GeneratorConfig& g, const LayerPlan& p, int idx) {
        const Stylegan3Config& t = g.stylegan3;
        const int prev = std::max(idx - 1, 0);
        is_torgb = idx == t.num_layers;
        const bool critical = idx >= t.num_layers - t.num_critical;
        use_fp16_ = p.sampling_rates[idx] * std::exp2(t.num_fp16_res) > g.img_resolution;
        in_channels_ = p.channels[prev];
        out_channels_ = p.channels[idx];
        const int in_size = p.sizes[prev], out_size = p.sizes[idx];
        const int in_rate = static_cast<int>(p.sampling_rates[prev]), out_rate = static_cast<int>(p.sampling_rates[idx]);
        const int tmp_rate = std::max(in_rate, out_rate) * (is_torgb ? 1 : t.lrelu_upsampling);
        kernel_ = is_torgb ? 1 : t.conv_kernel;
        conv_clamp_ = t.conv_clamp;
        affine = register_module("affine", std::make_shared<FullyConnectedLayer>(g.w_dim, in_channels_, true, Activation::linear, 1.0, 1.0));
        weight = register_parameter("weight", torch::randn({out_channels_, in_channels_, kernel_, kernel_}));
        bias = register_parameter("bias", torch::zeros({out_channels_}));
        magnitude_ema = register_buffer("magnitude_ema", torch::ones({}));
        up_ = tmp_rate / in_rate;
        down_ = tmp_rate / out_rate;
        if (up_ * in_rate != tmp_rate || down_ * out_rate != tmp_rate)
            throw ArgumentError(fmt::format("StyleGAN3 layer {}: sampling rates {} and {} do not divide {}", idx, in_rate, out_rate, tmp_rate));
        const int up_taps = up_ > 1 && !is_torgb ? t.filter_size * up_ : 1;
        const int down_taps = down_ > 1 && !is_torgb ? t.filter_size * down_ : 1;
        up_filter = lowpass_filter(up_taps, p.cutoffs[prev], p.half_widths[prev] * 2, tmp_rate, false);
        down_filter = lowpass_filter(down_taps, p.cutoffs[idx], p.half_widths[idx] * 2, tmp_rate, t.use_radial_filters && !critical);
        if (up_filter.defined()) up_filter = register_buffer("up_filter", up_filter);
        if (down_filter.defined()) down_filter = register_buffer("down_filter", down_filter);
        const int64_t pad_total = static_cast<int64_t>(out_size - 1) * down_ + 1 - static_cast<int64_t>(in_size + kernel_ - 1) * up_ +
                                  up_taps + down_taps - 2;
        const int64_t lo = static_cast<int64_t>(std::floor((pad_total + up_) / 2.0)), hi = pad_total - lo;
        padding_ = {lo, hi, lo, hi};
        layer_name = fmt::format("L{}_{}_{}", idx, out_size, out_channels_);
        shape = {layer_name, in_channels_, out_channels_, in_size, out_size, kernel_, up_, down_, padding_, is_torgb};
    }

    torch::Tensor forward(const torch::Tensor& x_in, const torch::Tensor& w, bool force_fp32) {
        const torch::Tensor input_gain = magnitude_ema.rsqrt();
        torch::Tensor styles = affine->forward(w);
        if (is_torgb) styles = styles * (1.0 / std::sqrt(static_cast<double>(in_channels_ * kernel_ * kernel_)));
        const bool half = use_fp16_ && !force_fp32 && x_in.is_cuda();
        torch::Tensor x = modulated_conv(x_in.to(half ? torch::kHalf : torch::kFloat32), weight, styles, !is_torgb, kernel_ - 1, input_gain);
        x = ops::bias_act(x, bias.to(x.dtype()));
        x = ops::upfirdn2d(x, up_filter, up_, 1, padding_, false, static_cast<double>(up_ * up_));
        x = ops::bias_act(x, {}, is_torgb ? Activation::linear : Activation::lrelu, is_torgb ? 1.0 : std::sqrt(2.0), conv_clamp_);
        return ops::upfirdn2d(x, down_filter, 1, down_);
    }

    std::shared_ptr<FullyConnectedLayer> affine;
    torch::Tensor weight, bias, magnitude_ema, up_filter, down_filter;
    std::string layer_name;  ///< L{index}_{size}_{channels}, as the reference names it
    bool is_torgb = false;
    Stylegan3LayerShape shape;

private:
    bool use_fp16_ = false;
    int in_channels_ = 0, out_channels_ = 0, kernel_ = 3;
    int64_t up_ = 1, down_ = 1;
    ops::Pad padding_{0, 0, 0, 0};
    std::optional<double> conv_clamp_;
};

Stylegan3Synthesis::Stylegan3Synthesis(const GeneratorConfig& config) : SynthesisNetwork(config.num_ws()), config_(config) {
    config.validate();
    const LayerPlan p = plan_layers(config);
    input_ = register_module("input", std::make_shared<Stylegan3Input>(config.w_dim, p.channels[0], p.sizes[0], p.sampling_rates[0],
                                                                        p.cutoffs[0]));
    for (int idx = 0; idx <= config.stylegan3.num_layers; ++idx) {
        auto layer = std::make_shared<Stylegan3Layer>(config, p, idx);
        layers_.push_back(register_module(layer->layer_name, layer));
        names_.push_back(layer->layer_name);
    }
}

torch::Tensor Stylegan3Synthesis::forward(const torch::Tensor& ws, const SynthesisOptions& options) {
    return detail::guard_torch("StyleGAN3 synthesis", [&]() -> torch::Tensor {
        if (!ws.defined() || ws.dim() != 3 || ws.size(1) != num_ws || ws.size(2) != config_.w_dim)
            throw ShapeError(fmt::format("ws must have shape [N, {}, {}]", num_ws, config_.w_dim));
        // As for StyleGAN2: on the CPU outside training, image by image (the grouped convolution of a batch
        // is slower there); no layer mixes images, so the result is the same.
        const int64_t n = ws.size(0);
        if (n > 1 && ws.device().is_cpu() && !is_training() && !options.block_outputs) {
            std::vector<torch::Tensor> out;
            for (int64_t k = 0; k < n; ++k) out.push_back(forward_one(ws.narrow(0, k, 1), options));
            return torch::cat(out);
        }
        return forward_one(ws, options);
    });
}

torch::Tensor Stylegan3Synthesis::forward_one(const torch::Tensor& ws_in, const SynthesisOptions& options) {
    const torch::Tensor ws = ws_in.to(torch::kFloat32);
    torch::Tensor x = input_->forward(ws.select(1, 0), options.input_transform);
    for (size_t k = 0; k < layers_.size(); ++k) {
        x = layers_[k]->forward(x, ws.select(1, static_cast<int64_t>(k) + 1), options.force_fp32);
        if (options.block_outputs) options.block_outputs->push_back(x.to(torch::kFloat32));
    }
    if (config_.stylegan3.output_scale != 1) x = x * config_.stylegan3.output_scale;
    return x.to(torch::kFloat32);
}

std::vector<StyleLayer> Stylegan3Synthesis::style_layers() const {
    std::vector<StyleLayer> out;
    for (size_t k = 0; k < layers_.size(); ++k)
        if (!layers_[k]->is_torgb) out.push_back({static_cast<int>(k) + 1, layers_[k]->affine->weight});
    return out;
}

std::vector<std::string> Stylegan3Synthesis::block_names() const { return names_; }

Stylegan3InputShape Stylegan3Synthesis::input_shape() const { return input_->shape; }

std::vector<Stylegan3LayerShape> Stylegan3Synthesis::layer_shapes() const {
    std::vector<Stylegan3LayerShape> out;
    for (const auto& layer : layers_) out.push_back(layer->shape);
    return out;
}

torch::Tensor stylegan3_transform(double translate_x, double translate_y, double rotate_degrees) {
    // make_transform = [[c, s, tx], [-s, c, ty], [0, 0, 1]]; its inverse is [[c, -s, -(c tx - s ty)], [s, c, -(s tx + c ty)], [0, 0, 1]].
    const double a = rotate_degrees / 360.0 * kPi * 2, s = std::sin(a), c = std::cos(a);
    const std::vector<double> inv{c, -s, -(c * translate_x - s * translate_y), s, c, -(s * translate_x + c * translate_y), 0, 0, 1};
    return torch::tensor(inv, torch::kFloat64).reshape({3, 3}).to(torch::kFloat32);
}

}  // namespace latentkit
