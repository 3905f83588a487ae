// Projection of images into a generator's latent space, and pivotal tuning.
#include "latentkit/projector.h"
#include "latentkit/stop.h"

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <torch/script.h>

#include <cmath>

#include "latentkit/error.h"
#include "latentkit/latent.h"
#include "latentkit/log.h"
#include "latentkit/networks.h"
#include "latentkit/rng.h"
#include "torch_errors.h"

namespace latentkit {

LossWeights default_projection_loss(bool have_lpips, bool have_discriminator) {
    if (have_lpips) return {1.0, 0.0, 0.0};
    if (have_discriminator) return {0.0, 1.0, 0.0};
    return {0.0, 0.0, 1.0};
}

LatentSpace parse_latent_space(const std::string& text) {
    if (const auto s = option_from_name<LatentSpace>(text)) return *s;
    throw ArgumentError(fmt::format("unknown latent space '{}' (use w or w+)", text));
}

// ---------------------------------------------------------------------------------------------

struct LpipsModel::State {
    std::string path;
    torch::jit::Module module;
};

LpipsModel::LpipsModel(const std::string& path) : s_(std::make_unique<State>()) {
    s_->path = path;
    try {
        s_->module = torch::jit::load(path, torch::kCPU);
    } catch (const c10::Error& e) {
        throw ModelFormatError(fmt::format("{}: not a TorchScript module ({})", path, e.what_without_backtrace()));
    } catch (const std::exception& e) {
        throw ModelFormatError(fmt::format("{}: not a TorchScript module ({})", path, e.what()));
    }
    s_->module.eval();
    auto method = s_->module.find_method("forward");
    if (!method) throw ModelFormatError(fmt::format("{}: the TorchScript module has no forward method", path));
    const auto& args = method->function().getSchema().arguments();
    for (const char* needed : {"resize_images", "return_lpips"}) {
        bool found = false;
        for (const auto& a : args) found = found || a.name() == needed;
        if (!found)
            throw ModelFormatError(fmt::format("{}: forward() has no '{}' argument; an LPIPS network must have the interface of the "
                                               "reference vgg16.pt: forward(img, resize_images: bool, return_lpips: bool)",
                                               path, needed));
    }
    for (auto p : s_->module.parameters()) p.set_requires_grad(false);
}

LpipsModel::~LpipsModel() = default;

torch::Tensor LpipsModel::features(const torch::Tensor& img255) {
    return detail::guard_torch(s_->path, [&]() -> torch::Tensor {
        torch::Tensor x = img255.to(torch::kFloat32);
        if (x.size(1) == 1) x = x.repeat({1, 3, 1, 1});
        if (x.size(2) > 256)
            x = torch::nn::functional::interpolate(
                x, torch::nn::functional::InterpolateFuncOptions().size(std::vector<int64_t>{256, 256}).mode(torch::kArea));
        c10::IValue out;
        try {
            out = s_->module.get_method("forward")({x}, {{"resize_images", false}, {"return_lpips", true}});
        } catch (const c10::Error& e) {
            throw ModelFormatError(fmt::format("{}: running the LPIPS network failed: {}", s_->path, e.what_without_backtrace()));
        }
        if (!out.isTensor() || out.toTensor().dim() != 2 || out.toTensor().size(0) != x.size(0))
            throw ModelFormatError(fmt::format("{}: the LPIPS network must return a [N, features] tensor", s_->path));
        return out.toTensor().to(torch::kFloat32);
    });
}

void LpipsModel::to(const torch::Device& device) { s_->module.to(device); }

const std::string& LpipsModel::path() const { return s_->path; }

// ---------------------------------------------------------------------------------------------

std::pair<torch::Tensor, double> w_statistics(Generator& G, int samples, uint32_t seed) {
    if (samples < 1) throw ArgumentError("the W statistics need at least one sample");
    torch::NoGradGuard no_grad;
    const auto device = device_of(*G.synthesis);
    NumpyRandomState rs(seed);
    const int z_dim = G.config.z_dim;
    torch::Tensor sum = torch::zeros({G.config.w_dim}, torch::kFloat64);
    std::vector<torch::Tensor> chunks;
    for (int start = 0; start < samples; start += 1000) {
        const int n = std::min(1000, samples - start);
        const std::vector<double> z = rs.randn(static_cast<int64_t>(n) * z_dim);
        const torch::Tensor zt = torch::tensor(z, torch::kFloat64).reshape({n, z_dim}).to(torch::kFloat32).to(device);
        torch::Tensor c;
        if (G.config.c_dim > 0) {  // conditional models: every class in turn
            c = torch::zeros({n, G.config.c_dim});
            for (int k = 0; k < n; ++k) c[k][(start + k) % G.config.c_dim] = 1.0;
            c = c.to(device);
        }
        const torch::Tensor w = G.mapping->forward(zt, c).select(1, 0).to(torch::kCPU);
        chunks.push_back(w);
    }
    const torch::Tensor w = torch::cat(chunks).to(torch::kFloat64);
    const torch::Tensor mean = w.mean(0, true);
    const double std = std::sqrt((w - mean).square().sum().item<double>() / samples);
    return {mean.to(torch::kFloat32), std};
}

torch::Tensor projection_uint8(const torch::Tensor& images) {
    const torch::Tensor x = images.detach().to(torch::kCPU, torch::kFloat32);
    return ((x + 1) * (255.0 / 2)).permute({0, 2, 3, 1}).clamp(0, 255).to(torch::kUInt8).contiguous();
}

torch::Tensor psnr(const torch::Tensor& images, const torch::Tensor& targets255) {
    const torch::Tensor a = projection_uint8(images).permute({0, 3, 1, 2}).to(torch::kFloat32);
    const torch::Tensor b = targets255.detach().to(torch::kCPU, torch::kFloat32);
    const torch::Tensor mse = (a - b).square().flatten(1).mean(1).clamp_min(1e-10);
    return 10.0 * torch::log10(255.0 * 255.0 / mse);
}

// ---------------------------------------------------------------------------------------------

namespace {

// Turns off gradients of a module's parameters for the scope, restoring them afterwards.
class FrozenParameters {
public:
    explicit FrozenParameters(torch::nn::Module* m) {
        if (!m) return;
        for (auto& p : m->parameters()) {
            saved_.emplace_back(p, p.requires_grad());
            p.set_requires_grad(false);
        }
    }
    ~FrozenParameters() {
        for (auto& [p, r] : saved_) p.set_requires_grad(r);
    }
    FrozenParameters(const FrozenParameters&) = delete;
    FrozenParameters& operator=(const FrozenParameters&) = delete;

private:
    std::vector<std::pair<torch::Tensor, bool>> saved_;
};

// The image distance between synthesised images and fixed targets, per target.
class ImageDistance {
public:
    ImageDistance(const LossWeights& w, const torch::Tensor& targets255, Discriminator* D, LpipsModel* lpips) : w_(w), D_(D), lpips_(lpips) {
        if (w.lpips < 0 || w.discriminator < 0 || w.pixel < 0) throw ArgumentError("loss weights must not be negative");
        if (w.lpips == 0 && w.discriminator == 0 && w.pixel == 0) throw ArgumentError("at least one loss weight must be positive");
        if (w.lpips > 0 && !lpips) throw ArgumentError(Message() << "the LPIPS loss needs a VGG16 TorchScript file (" << field("Projector.lpips") << ")");
        if (w.discriminator > 0 && !D) throw ArgumentError("the discriminator loss needs a model file that contains D");
        torch::NoGradGuard no_grad;
        target_ = targets255 / 127.5 - 1.0;
        if (w.lpips > 0) target_lpips_ = lpips->features(targets255);
        if (w.discriminator > 0)
            for (const auto& f : D->features(target_, true)) target_d_.push_back(normalize(f));
    }

    torch::Tensor operator()(const torch::Tensor& synth) const {
        torch::Tensor total = torch::zeros({synth.size(0)}, synth.options());
        if (w_.lpips > 0) {
            const torch::Tensor f = lpips_->features((synth + 1) * 127.5);
            total = total + w_.lpips * (target_lpips_ - f).square().sum(1);
        }
        if (w_.discriminator > 0) {
            const auto feats = D_->features(synth, true);
            for (size_t k = 0; k < feats.size(); ++k)
                total = total + w_.discriminator * (target_d_[k] - normalize(feats[k])).square().sum(1).flatten(1).mean(1);
        }
        if (w_.pixel > 0) {
            // An 8-bit target pixel at 0 or 255 only says "at or beyond the limit": synthesis beyond it costs nothing.
            torch::Tensor e = synth - target_;
            e = torch::where((target_ >= 1.0 & e > 0) | (target_ <= -1.0 & e < 0), torch::zeros_like(e), e);
            total = total + w_.pixel * e.square().flatten(1).mean(1);
        }
        return total;
    }

private:
    static torch::Tensor normalize(const torch::Tensor& f) { return f / (f.square().sum(1, true).sqrt() + 1e-8); }

    LossWeights w_;
    Discriminator* D_;
    LpipsModel* lpips_;
    torch::Tensor target_, target_lpips_;
    std::vector<torch::Tensor> target_d_;
};

void check_targets(const torch::Tensor& targets, const GeneratorConfig& cfg) {
    if (!targets.defined() || targets.dim() != 4 || targets.size(0) < 1 || targets.size(1) != cfg.img_channels ||
        targets.size(2) != cfg.img_resolution || targets.size(3) != cfg.img_resolution)
        throw ShapeError(fmt::format("projection targets must have shape [N, {}, {}, {}]", cfg.img_channels, cfg.img_resolution,
                                     cfg.img_resolution));
}

double learning_rate(const ProjectorOptions& o, int step) {
    const double t = static_cast<double>(step) / o.steps;
    double ramp = std::min(1.0, (1.0 - t) / o.lr_rampdown);
    ramp = 0.5 - 0.5 * std::cos(ramp * M_PI);
    ramp *= o.lr_rampup > 0 ? std::min(1.0, t / o.lr_rampup) : 1.0;
    return o.learning_rate * ramp;
}

void set_learning_rate(torch::optim::Adam& opt, double lr) {
    for (auto& group : opt.param_groups()) static_cast<torch::optim::AdamOptions&>(group.options()).lr(lr);
}

// The reference's noise penalty: squared autocorrelation at one pixel offset, over a pyramid, per sample.
torch::Tensor noise_penalty(const std::vector<torch::Tensor>& noise) {
    torch::Tensor reg;
    for (const auto& buf : noise) {
        torch::Tensor v = buf;
        while (true) {
            const torch::Tensor a = (v * torch::roll(v, 1, 3)).mean({1, 2, 3}).square();
            const torch::Tensor b = (v * torch::roll(v, 1, 2)).mean({1, 2, 3}).square();
            reg = reg.defined() ? reg + a + b : a + b;
            if (v.size(2) <= 8) break;
            v = torch::avg_pool2d(v, 2);
        }
    }
    return reg;
}

void check_cancel(const ProjectionCallback& cb, const ProjectionStep& s, const char* what) {
    if (cb && !cb(s)) throw CancelledError(fmt::format("{} cancelled at step {} of {}", what, s.step, s.steps));
}

}  // namespace

namespace {
bool is_noise_buffer(const std::string& key) { return key.size() >= 11 && key.compare(key.size() - 11, 11, "noise_const") == 0; }

// The synthesis network's noise buffers (reference names), in SynthesisNetwork::noise_resolutions() order.
std::vector<std::string> noise_buffer_names(Generator& G) {
    std::vector<std::string> names;
    for (const auto& b : G.synthesis->named_buffers(true)) {
        if (is_noise_buffer(b.key())) names.push_back("synthesis." + b.key());
    }
    return names;
}

// Where the optimisation starts: the given latents, or the W mean ([N, 1 or num_ws, w_dim], CPU).
torch::Tensor initial_latents(const ProjectorOptions& o, const torch::Tensor& w_avg, int64_t n, int num_ws, int w_dim) {
    if (!o.initial_ws.defined()) return w_avg.reshape({1, 1, w_dim}).expand({n, o.space == LatentSpace::w ? 1 : num_ws, w_dim}).contiguous().clone();
    torch::Tensor init = o.initial_ws.to(torch::kCPU, torch::kFloat32);
    if (init.dim() != 3 || (init.size(0) != 1 && init.size(0) != n) || init.size(1) != num_ws || init.size(2) != w_dim)
        throw ShapeError(fmt::format("the starting latents must have shape [{} or 1, {}, {}]", n, num_ws, w_dim));
    init = init.expand({n, num_ws, w_dim});
    return (o.space == LatentSpace::w ? init.narrow(1, 0, 1) : init).contiguous().clone();
}
}  // namespace

Projector::Projector(std::shared_ptr<Generator> G, std::shared_ptr<Discriminator> D, std::shared_ptr<LpipsModel> lpips)
    : G_(std::move(G)), D_(std::move(D)), lpips_(std::move(lpips)) {
    if (!G_) throw ArgumentError("the projector needs a generator");
}

namespace {
// The result of an optimisation: the latents (W broadcast to every layer), the noise, and the images
// with the model's own constant noise, as the reference optimises the noise of a copy of G and renders
// proj.png with the model's (or with the optimised noise on request).
ProjectionResult finish_projection(Generator& G, const torch::Tensor& w_opt, const std::vector<torch::Tensor>& noise, const ProjectorOptions& o,
                                   const ImageDistance& distance) {
    ProjectionResult result;
    torch::NoGradGuard no_grad;
    torch::Tensor ws = w_opt.detach();
    if (o.space == LatentSpace::w) ws = ws.repeat({1, G.synthesis->num_ws, 1});
    for (const auto& buf : noise) result.noise.push_back(buf.detach().clone());
    result.noise_names = noise_buffer_names(G);
    SynthesisOptions out;
    out.noise_mode = o.images_with_optimized_noise && !noise.empty() ? NoiseMode::custom : NoiseMode::constant;
    out.noise = result.noise;
    const torch::Tensor img = G.synthesis->forward(ws, out);
    result.loss = distance(img).to(torch::kCPU);
    result.images = img.to(torch::kCPU);
    result.ws = ws.to(torch::kCPU).contiguous();
    for (auto& buf : result.noise) buf = buf.to(torch::kCPU);
    return result;
}
}  // namespace

ProjectionResult Projector::project(const torch::Tensor& targets_in, const ProjectorOptions& o, const ProjectionCallback& callback) {
    return detail::guard_torch("projection", [&]() -> ProjectionResult {
        const GeneratorConfig& cfg = G_->config;
        check_targets(targets_in, cfg);
        if (o.steps < 1) throw ArgumentError("the number of steps must be at least 1");
        if (o.learning_rate <= 0 || o.lr_rampdown <= 0 || o.lr_rampup < 0) throw ArgumentError("invalid learning-rate schedule");
        const torch::Device device = device_of(*G_->synthesis);
        const int64_t n = targets_in.size(0);
        const int num_ws = G_->synthesis->num_ws;
        const torch::Tensor targets = targets_in.to(device, torch::kFloat32);

        G_->eval();
        if (D_) D_->eval();
        FrozenParameters frozen_g(G_.get()), frozen_d(D_.get());
        const ImageDistance distance(o.loss, targets, D_.get(), lpips_.get());

        if (!stats_mean_.defined() || stats_samples_ != o.w_avg_samples || stats_seed_ != o.w_avg_seed) {
            std::tie(stats_mean_, stats_spread_) = w_statistics(*G_, o.w_avg_samples, o.w_avg_seed);
            stats_samples_ = o.w_avg_samples;
            stats_seed_ = o.w_avg_seed;
        }
        const torch::Tensor w_avg = stats_mean_;
        const double w_std = stats_spread_;
        log_debug(fmt::format("projector: W spread {:.4f} from {} samples", w_std, o.w_avg_samples));

        at::Generator gen = at::detail::createCPUGenerator(o.seed);
        const auto cpu_f32 = torch::TensorOptions().dtype(torch::kFloat32);
        torch::Tensor w_opt = initial_latents(o, w_avg, n, num_ws, cfg.w_dim).to(device).set_requires_grad(true);

        std::vector<torch::Tensor> noise;
        if (o.optimize_noise)
            for (int r : G_->synthesis->noise_resolutions())
                noise.push_back(torch::randn({n, 1, r, r}, gen, cpu_f32).to(device).set_requires_grad(true));
        std::vector<torch::Tensor> params{w_opt};
        if (o.optimize_noise) params.insert(params.end(), noise.begin(), noise.end());
        torch::optim::Adam optimizer(params, torch::optim::AdamOptions(o.learning_rate).betas({0.9, 0.999}).eps(1e-8));

        SynthesisOptions so;
        so.noise_mode = o.optimize_noise ? NoiseMode::custom : NoiseMode::constant;
        so.noise = noise;
        int steps_done = 0;
        for (int step = 0; step < o.steps; ++step) {
            const double t = static_cast<double>(step) / o.steps;
            const double w_noise_scale = w_std * o.initial_noise_factor * std::pow(std::max(0.0, 1.0 - t / o.noise_ramp_length), 2.0);
            set_learning_rate(optimizer, learning_rate(o, step));

            const torch::Tensor w_noise = torch::randn(w_opt.sizes(), gen, cpu_f32).to(device) * w_noise_scale;
            torch::Tensor ws = w_opt + w_noise;
            if (o.space == LatentSpace::w) ws = ws.repeat({1, num_ws, 1});
            const torch::Tensor synth = G_->synthesis->forward(ws, so);
            const torch::Tensor dist = distance(synth);
            torch::Tensor loss = dist.sum();
            if (!noise.empty() && o.noise_regularize_weight > 0) loss = loss + noise_penalty(noise).sum() * o.noise_regularize_weight;

            optimizer.zero_grad();
            loss.backward();
            optimizer.step();

            if (o.optimize_noise) {
                torch::NoGradGuard no_grad;
                for (auto& buf : noise) {
                    buf.sub_(buf.mean({1, 2, 3}, true));
                    buf.mul_(buf.square().mean({1, 2, 3}, true).rsqrt());
                }
            }
            torch::Tensor step_ws = w_opt.detach();
            if (o.space == LatentSpace::w) step_ws = step_ws.expand({n, num_ws, cfg.w_dim});
            check_cancel(callback, {step + 1, o.steps, dist.detach().to(torch::kCPU), synth.detach(), step_ws}, "projection");
            steps_done = step + 1;
            if (stop_requested()) break;  // the caller keeps the latents so far
        }

        ProjectionResult result = finish_projection(*G_, w_opt, noise, o, distance);
        result.steps_done = steps_done;
        return result;
    });
}

torch::Tensor Projector::render(const torch::Tensor& ws) const {
    return detail::guard_torch("rendering a projection", [&]() -> torch::Tensor {
        torch::NoGradGuard no_grad;
        SynthesisOptions so;
        so.noise_mode = NoiseMode::constant;
        return G_->synthesis->forward(ws.to(device_of(*G_->synthesis), torch::kFloat32), so).to(torch::kCPU);
    });
}

std::shared_ptr<Generator> Projector::tune(const ProjectionResult& result, const torch::Tensor& targets_in, const TuningOptions& o,
                                           const ProjectionCallback& callback) {
    return detail::guard_torch("pivotal tuning", [&]() -> std::shared_ptr<Generator> {
        const GeneratorConfig& cfg = G_->config;
        check_targets(targets_in, cfg);
        if (o.steps < 1) throw ArgumentError("the number of tuning steps must be at least 1");
        if (!result.ws.defined() || result.ws.size(0) != targets_in.size(0))
            throw ShapeError("pivotal tuning needs one projected latent per target");
        const torch::Device device = device_of(*G_->synthesis);
        const torch::Tensor targets = targets_in.to(device, torch::kFloat32);
        if (D_) D_->eval();
        FrozenParameters frozen_d(D_.get());
        const ImageDistance distance(o.loss, targets, D_.get(), lpips_.get());

        auto tuned = clone_generator(*G_);
        tuned->eval();
        std::vector<torch::Tensor> params;
        for (auto& p : tuned->synthesis->parameters()) {
            p.set_requires_grad(true);
            params.push_back(p);
        }
        for (auto& p : tuned->mapping->parameters()) p.set_requires_grad(false);
        torch::optim::Adam optimizer(params, torch::optim::AdamOptions(o.learning_rate).betas({0.9, 0.999}));
        const torch::Tensor ws = result.ws.to(device);
        SynthesisOptions so;
        so.noise_mode = result.noise.empty() ? NoiseMode::constant : NoiseMode::custom;
        for (const auto& buf : result.noise) so.noise.push_back(buf.to(device));
        for (int step = 0; step < o.steps; ++step) {
            const torch::Tensor synth = tuned->synthesis->forward(ws, so);
            const torch::Tensor dist = distance(synth);
            optimizer.zero_grad();
            dist.sum().backward();
            optimizer.step();
            check_cancel(callback, {step + 1, o.steps, dist.detach().to(torch::kCPU), synth.detach()}, "pivotal tuning");
            throw_if_stopped("pivotal tuning");
        }
        for (auto& p : tuned->parameters()) p.set_requires_grad(false);
        if (targets.size(0) == 1 && !result.noise.empty()) {
            // One target: its optimised noise becomes the copy's constant noise, so the tuned model
            // reproduces the photo from the projected latent with the default noise mode.
            torch::NoGradGuard no_grad;
            size_t k = 0;
            for (auto& b : tuned->synthesis->named_buffers(true)) {
                if (!is_noise_buffer(b.key())) continue;
                if (k < result.noise.size() && b.value().numel() == result.noise[k].numel())
                    b.value().copy_(result.noise[k].reshape(b.value().sizes()));
                ++k;
            }
        }
        return tuned;
    });
}

}  // namespace latentkit
