#include "latentkit/networks.h"

#include <fmt/format.h>

#include <cmath>
#include <set>

#include "latentkit/error.h"
#include "layers.h"
#include "ops.h"
#include "torch_errors.h"

namespace latentkit {

namespace {
bool use_half(bool use_fp16, bool force_fp32, const torch::Tensor& like) { return use_fp16 && !force_fp32 && like.is_cuda(); }
// As the reference: fp16 blocks keep their activations channels-last when the config asks for it.
torch::MemoryFormat block_format(bool half, bool channels_last) {
    return half && channels_last ? torch::MemoryFormat::ChannelsLast : torch::MemoryFormat::Contiguous;
}
}  // namespace

// ---------------------------------------------------------------------------------------------
// Mapping

MappingNetwork::MappingNetwork(int z_dim_, int c_dim_, int w_dim_, std::optional<int> num_ws_, const MappingConfig& config)
    : z_dim(z_dim_), c_dim(c_dim_), w_dim(w_dim_), num_ws(num_ws_), config_(config) {
    int embed_features = config.embed_features.value_or(w_dim);
    if (c_dim == 0) embed_features = 0;
    const int layer_features = config.layer_features.value_or(w_dim);
    std::vector<int> features{z_dim + embed_features};
    for (int k = 0; k < config.num_layers - 1; ++k) features.push_back(layer_features);
    features.push_back(w_dim);
    if (c_dim > 0) embed_ = register_module("embed", std::make_shared<FullyConnectedLayer>(c_dim, embed_features));
    for (int k = 0; k < config.num_layers; ++k) {
        layers_.push_back(register_module(fmt::format("fc{}", k),
                                          std::make_shared<FullyConnectedLayer>(features[k], features[k + 1], true, config.activation,
                                                                                config.lr_multiplier)));
    }
    if (num_ws && config.w_avg_beta) w_avg = register_buffer("w_avg", torch::zeros({w_dim}));
}

torch::Tensor MappingNetwork::forward(const torch::Tensor& z, const torch::Tensor& c, double psi, std::optional<int> cutoff,
                                      bool skip_w_avg_update) {
    return detail::guard_torch("mapping network", [&]() -> torch::Tensor {
        torch::Tensor x;
        if (z_dim > 0) {
            if (!z.defined() || z.dim() != 2 || z.size(1) != z_dim)
                throw ShapeError(fmt::format("z must have shape [N, {}]", z_dim));
            x = ops::normalize_2nd_moment(z.to(torch::kFloat32));
        }
        if (c_dim > 0) {
            if (!c.defined() || c.dim() != 2 || c.size(1) != c_dim)
                throw ShapeError(fmt::format("this model is conditional: labels c must have shape [N, {}]", c_dim));
            torch::Tensor y = ops::normalize_2nd_moment(embed_->forward(c.to(torch::kFloat32)));
            x = x.defined() ? torch::cat({x, y}, 1) : y;
        }
        for (auto& layer : layers_) x = layer->forward(x);
        if (config_.w_avg_beta && w_avg.defined() && is_training() && !skip_w_avg_update) {
            torch::NoGradGuard no_grad;
            w_avg.copy_(x.detach().mean(0).lerp(w_avg, *config_.w_avg_beta));
        }
        if (num_ws) x = x.unsqueeze(1).repeat({1, *num_ws, 1});
        if (psi != 1) {
            if (!w_avg.defined()) throw ArgumentError("truncation needs w_avg, which this mapping network does not track");
            if (!num_ws || !cutoff) {
                x = w_avg.lerp(x, psi);
            } else {
                using torch::indexing::Slice;
                x = x.clone();
                auto head = x.index({Slice(), Slice(0, *cutoff)});
                x.index_put_({Slice(), Slice(0, *cutoff)}, w_avg.lerp(head, psi));
            }
        }
        return x;
    });
}

// ---------------------------------------------------------------------------------------------
// Synthesis

class SynthesisBlock : public torch::nn::Module {
public:
    SynthesisBlock(int in_channels, int out_channels, const GeneratorConfig& g, int resolution, bool is_last, bool use_fp16)
        : in_channels_(in_channels), resolution_(resolution), img_channels_(g.img_channels), is_last_(is_last),
          architecture_(g.synthesis.architecture), use_fp16_(use_fp16), channels_last_(g.synthesis.fp16_channels_last),
          fused_default_(g.synthesis.fused_modconv_default) {
        const auto& s = g.synthesis;
        resample_filter = register_buffer("resample_filter", ops::setup_filter(s.resample_filter));
        if (in_channels == 0) {
            const_ = register_parameter("const", torch::randn({out_channels, resolution, resolution}));
        } else {
            conv0_ = register_module("conv0", std::make_shared<SynthesisLayer>(in_channels, out_channels, g.w_dim, resolution, s.kernel_size,
                                                                                2, s.use_noise, s.activation, s.resample_filter, s.conv_clamp));
            ++num_conv;
        }
        conv1_ = register_module("conv1", std::make_shared<SynthesisLayer>(out_channels, out_channels, g.w_dim, resolution, s.kernel_size,
                                                                            1, s.use_noise, s.activation, s.resample_filter, s.conv_clamp));
        ++num_conv;
        if (is_last || architecture_ == Architecture::skip) {
            torgb_ = register_module("torgb", std::make_shared<ToRGBLayer>(out_channels, g.img_channels, g.w_dim, s.conv_clamp));
            ++num_torgb;
        }
        if (in_channels != 0 && architecture_ == Architecture::resnet)
            skip_ = register_module("skip", std::make_shared<Conv2dLayer>(in_channels, out_channels, 1, false, Activation::linear, 2, 1,
                                                                           s.resample_filter));
    }

    std::pair<torch::Tensor, torch::Tensor> forward(torch::Tensor x, torch::Tensor img, const torch::Tensor& ws,
                                                    const SynthesisOptions& opt, size_t& noise_index) {
        const bool half = use_half(use_fp16_, opt.force_fp32, ws);
        const auto dtype = half ? torch::kHalf : torch::kFloat32;
        const bool fused = opt.fused_modconv.value_or(default_fused(half, ws));
        int wi = 0;
        auto next_w = [&]() { return ws.select(1, wi++); };
        auto next_noise = [&]() {
            const size_t k = noise_index++;
            if (opt.noise_mode != NoiseMode::custom) return torch::Tensor();
            if (k >= opt.noise.size())
                throw ArgumentError(fmt::format("custom noise: {} tensors given, the network has more noise inputs", opt.noise.size()));
            return opt.noise[k];
        };
        const auto format = block_format(half, channels_last_);
        if (in_channels_ == 0) {
            x = const_.to(dtype).unsqueeze(0).repeat({ws.size(0), 1, 1, 1}).contiguous(format);
        } else {
            x = x.to(dtype).contiguous(format);
        }
        if (in_channels_ == 0) {
            x = conv1_->forward(x, next_w(), opt.noise_mode, next_noise(), fused);
        } else if (architecture_ == Architecture::resnet) {
            torch::Tensor y = skip_->forward(x, std::sqrt(0.5));
            x = conv0_->forward(x, next_w(), opt.noise_mode, next_noise(), fused);
            x = conv1_->forward(x, next_w(), opt.noise_mode, next_noise(), fused, std::sqrt(0.5));
            x = y + x;
        } else {
            x = conv0_->forward(x, next_w(), opt.noise_mode, next_noise(), fused);
            x = conv1_->forward(x, next_w(), opt.noise_mode, next_noise(), fused);
        }
        if (img.defined()) img = ops::upsample2d(img, resample_filter);
        if (torgb_) {
            // float32 in the contiguous layout, as the reference returns it (an fp16 block computes channels-last).
            torch::Tensor y = torgb_->forward(x, next_w(), fused).to(torch::kFloat32).contiguous();
            img = img.defined() ? img + y : y;
        }
        return {x, img};
    }

    /// The modulated convolutions in order (conv0 first when there is one).
    std::vector<std::shared_ptr<SynthesisLayer>> conv_layers() const {
        if (conv0_) return {conv0_, conv1_};
        return {conv1_};
    }

    int num_conv = 0, num_torgb = 0;
    torch::Tensor resample_filter;

private:
    // In training, the file's fused_modconv_default when it has one, else the stylegan2-ada rule. In
    // inference (the same function either way): fused (grouped) modconv in fp32 or at batch 1, except
    // for batches on the CPU, where a grouped convolution is slower than a shared one.
    bool default_fused(bool half, const torch::Tensor& ws) const {
        if (is_training()) return fused_default_ == "true";
        return ws.size(0) == 1 || (!half && !ws.device().is_cpu());
    }

    int in_channels_, resolution_, img_channels_;
    bool is_last_;
    Architecture architecture_;
    bool use_fp16_, channels_last_;
    std::string fused_default_;
    torch::Tensor const_;
    std::shared_ptr<SynthesisLayer> conv0_, conv1_;
    std::shared_ptr<ToRGBLayer> torgb_;
    std::shared_ptr<Conv2dLayer> skip_;
};

Stylegan2Synthesis::Stylegan2Synthesis(const GeneratorConfig& config) : SynthesisNetwork(config.num_ws()), config_(config) {
    config.validate();
    const int log2 = static_cast<int>(std::lround(std::log2(config.img_resolution)));
    const int fp16_resolution = std::max(1 << std::max(log2 + 1 - config.synthesis.num_fp16_res, 0), 8);
    for (int res = 4; res <= config.img_resolution; res *= 2) {
        const int in_channels = res > 4 ? config.channels_at(res / 2) : 0;
        auto block = std::make_shared<SynthesisBlock>(in_channels, config.channels_at(res), config, res, res == config.img_resolution,
                                                      res >= fp16_resolution);
        blocks_.push_back(register_module(fmt::format("b{}", res), block));
        resolutions_.push_back(res);
    }
}

torch::Tensor Stylegan2Synthesis::forward(const torch::Tensor& ws_in, const SynthesisOptions& options) {
    return detail::guard_torch("StyleGAN2 synthesis", [&]() -> torch::Tensor {
        if (!ws_in.defined() || ws_in.dim() != 3 || ws_in.size(1) != num_ws || ws_in.size(2) != config_.w_dim)
            throw ShapeError(fmt::format("ws must have shape [N, {}, {}]", num_ws, config_.w_dim));
        // On the CPU, LibTorch's convolutions are several times slower per image for a batch than for
        // single images, so batches there run image by image outside training (gradients flow through
        // the concatenation; no layer mixes images, so the result is the same).
        const int64_t n = ws_in.size(0);
        if (n > 1 && ws_in.device().is_cpu() && !is_training() && !options.fused_modconv && !options.block_outputs) {
            std::vector<torch::Tensor> out;
            for (int64_t k = 0; k < n; ++k) {
                SynthesisOptions one = options;
                for (auto& t : one.noise)
                    if (t.dim() == 4 && t.size(0) == n) t = t.narrow(0, k, 1);
                out.push_back(forward(ws_in.narrow(0, k, 1), one));
            }
            return torch::cat(out);
        }
        torch::Tensor ws = ws_in.to(torch::kFloat32);
        torch::Tensor x, img;
        int64_t w_idx = 0;
        size_t noise_index = 0;
        for (auto& block : blocks_) {
            torch::Tensor block_ws = ws.narrow(1, w_idx, block->num_conv + block->num_torgb);
            w_idx += block->num_conv;
            std::tie(x, img) = block->forward(x, img, block_ws, options, noise_index);
            if (options.block_outputs) options.block_outputs->push_back(x.to(torch::kFloat32));
        }
        return img;
    });
}

std::vector<int> Stylegan2Synthesis::noise_resolutions() const {
    std::vector<int> out;
    for (int res : resolutions_) {
        if (res > 4) out.push_back(res);
        out.push_back(res);
    }
    return out;
}

std::vector<StyleLayer> Stylegan2Synthesis::style_layers() const {
    std::vector<StyleLayer> out;
    int ws_index = 0;
    for (const auto& block : blocks_)
        for (const auto& layer : block->conv_layers()) out.push_back({ws_index++, layer->affine->weight});
    return out;
}

std::vector<std::string> Stylegan2Synthesis::block_names() const {
    std::vector<std::string> out;
    for (int res : resolutions_) out.push_back(fmt::format("b{}", res));
    return out;
}

Generator::Generator(const GeneratorConfig& cfg) : config(cfg) {
    if (cfg.family == GeneratorFamily::stylegan3)
        synthesis = register_module("synthesis", std::make_shared<Stylegan3Synthesis>(cfg));
    else
        synthesis = register_module("synthesis", std::make_shared<Stylegan2Synthesis>(cfg));
    mapping = register_module("mapping", std::make_shared<MappingNetwork>(cfg.z_dim, cfg.c_dim, cfg.w_dim, synthesis->num_ws, cfg.mapping));
}

torch::Tensor Generator::forward(const torch::Tensor& z, const torch::Tensor& c, double psi, std::optional<int> cutoff,
                                 const SynthesisOptions& options) {
    return synthesis->forward(mapping->forward(z, c, psi, cutoff), options);
}

// ---------------------------------------------------------------------------------------------
// Discriminator

class DiscriminatorBlock : public torch::nn::Module {
public:
    DiscriminatorBlock(int in_channels, int tmp_channels, int out_channels, int resolution, const DiscriminatorConfig& d,
                       int first_layer_idx, bool use_fp16)
        : in_channels_(in_channels), resolution_(resolution), architecture_(d.architecture), use_fp16_(use_fp16),
          channels_last_(d.fp16_channels_last) {
        resample_filter = register_buffer("resample_filter", ops::setup_filter(d.resample_filter));
        auto trainable = [&]() { return first_layer_idx + num_layers++ >= d.freeze_layers; };
        if (in_channels == 0 || architecture_ == Architecture::skip)
            fromrgb_ = register_module("fromrgb", std::make_shared<Conv2dLayer>(d.img_channels, tmp_channels, 1, true, d.activation, 1, 1,
                                                                                 d.resample_filter, d.conv_clamp, trainable()));
        conv0_ = register_module("conv0", std::make_shared<Conv2dLayer>(tmp_channels, tmp_channels, 3, true, d.activation, 1, 1,
                                                                          d.resample_filter, d.conv_clamp, trainable()));
        conv1_ = register_module("conv1", std::make_shared<Conv2dLayer>(tmp_channels, out_channels, 3, true, d.activation, 1, 2,
                                                                          d.resample_filter, d.conv_clamp, trainable()));
        if (architecture_ == Architecture::resnet)
            skip_ = register_module("skip", std::make_shared<Conv2dLayer>(tmp_channels, out_channels, 1, false, Activation::linear, 1, 2,
                                                                           d.resample_filter, std::nullopt, trainable()));
    }

    std::pair<torch::Tensor, torch::Tensor> forward(torch::Tensor x, torch::Tensor img, bool force_fp32) {
        const auto& like = x.defined() ? x : img;
        const bool half = use_half(use_fp16_, force_fp32, like);
        const auto dtype = half ? torch::kHalf : torch::kFloat32;
        const auto format = block_format(half, channels_last_);
        if (x.defined()) x = x.to(dtype).contiguous(format);
        if (in_channels_ == 0 || architecture_ == Architecture::skip) {
            img = img.to(dtype).contiguous(format);
            torch::Tensor y = fromrgb_->forward(img);
            x = x.defined() ? x + y : y;
            img = architecture_ == Architecture::skip ? ops::downsample2d(img, resample_filter) : torch::Tensor();
        }
        if (architecture_ == Architecture::resnet) {
            torch::Tensor y = skip_->forward(x, std::sqrt(0.5));
            x = conv0_->forward(x);
            x = conv1_->forward(x, std::sqrt(0.5));
            x = y + x;
        } else {
            x = conv0_->forward(x);
            x = conv1_->forward(x);
        }
        return {x, img};
    }

    int num_layers = 0;
    torch::Tensor resample_filter;

private:
    int in_channels_, resolution_;
    Architecture architecture_;
    bool use_fp16_, channels_last_;
    std::shared_ptr<Conv2dLayer> fromrgb_, conv0_, conv1_, skip_;
};

class DiscriminatorEpilogue : public torch::nn::Module {
public:
    DiscriminatorEpilogue(int in_channels, int cmap_dim, const DiscriminatorConfig& d)
        : cmap_dim_(cmap_dim), architecture_(d.architecture), mbstd_group_(d.mbstd_group_size), mbstd_channels_(d.mbstd_num_channels) {
        if (architecture_ == Architecture::skip)
            fromrgb_ = register_module("fromrgb", std::make_shared<Conv2dLayer>(d.img_channels, in_channels, 1, true, d.activation));
        conv_ = register_module("conv", std::make_shared<Conv2dLayer>(in_channels + mbstd_channels_, in_channels, 3, true, d.activation, 1, 1,
                                                                       d.resample_filter, d.conv_clamp));
        fc_ = register_module("fc", std::make_shared<FullyConnectedLayer>(in_channels * 16, in_channels, true, d.activation));
        out_ = register_module("out", std::make_shared<FullyConnectedLayer>(in_channels, cmap_dim == 0 ? 1 : cmap_dim));
    }

    torch::Tensor forward(torch::Tensor x, torch::Tensor img, const torch::Tensor& cmap) {
        x = x.to(torch::kFloat32);
        if (architecture_ == Architecture::skip) x = x + fromrgb_->forward(img.to(torch::kFloat32));
        if (mbstd_channels_ > 0) {
            const int64_t n = x.size(0);
            const int64_t g = mbstd_group_ ? std::min<int64_t>(*mbstd_group_, n) : n;
            if (n % g != 0)
                throw ShapeError(fmt::format("discriminator batch {} is not a multiple of its minibatch-stddev group size {}", n, g));
            if (x.size(1) % mbstd_channels_ != 0) throw ShapeError("channels not divisible by mbstd_num_channels");
            x = minibatch_stddev(x, mbstd_group_, mbstd_channels_);
        }
        x = conv_->forward(x);
        x = fc_->forward(x.flatten(1));
        x = out_->forward(x);
        if (cmap_dim_ > 0) x = (x * cmap).sum(1, true) * (1.0 / std::sqrt(static_cast<double>(cmap_dim_)));
        return x;
    }

private:
    int cmap_dim_;
    Architecture architecture_;
    std::optional<int> mbstd_group_;
    int mbstd_channels_;
    std::shared_ptr<Conv2dLayer> fromrgb_, conv_;
    std::shared_ptr<FullyConnectedLayer> fc_, out_;
};

Discriminator::Discriminator(const DiscriminatorConfig& cfg) : config(cfg) {
    cfg.validate();
    const int log2 = static_cast<int>(std::lround(std::log2(cfg.img_resolution)));
    const int fp16_resolution = std::max(1 << std::max(log2 + 1 - cfg.num_fp16_res, 0), 8);
    int cmap_dim = cfg.cmap_dim.value_or(cfg.channels_at(4));
    if (cfg.c_dim == 0) cmap_dim = 0;
    int layer_idx = 0;
    for (int res = cfg.img_resolution; res > 4; res /= 2) {
        const int in_channels = res < cfg.img_resolution ? cfg.channels_at(res) : 0;
        auto block = std::make_shared<DiscriminatorBlock>(in_channels, cfg.channels_at(res), cfg.channels_at(res / 2), res, cfg, layer_idx,
                                                          res >= fp16_resolution);
        layer_idx += block->num_layers;
        blocks_.push_back(register_module(fmt::format("b{}", res), block));
        resolutions_.push_back(res);
    }
    if (cfg.c_dim > 0) {
        MappingConfig m = cfg.mapping;
        m.w_avg_beta.reset();
        mapping_ = register_module("mapping", std::make_shared<MappingNetwork>(0, cfg.c_dim, cmap_dim, std::nullopt, m));
    }
    epilogue_ = register_module("b4", std::make_shared<DiscriminatorEpilogue>(cfg.channels_at(4), cmap_dim, cfg));
}

namespace {
void check_discriminator_input(const torch::Tensor& img_in, const DiscriminatorConfig& config) {
    if (!img_in.defined() || img_in.dim() != 4 || img_in.size(1) != config.img_channels || img_in.size(2) != config.img_resolution ||
        img_in.size(3) != config.img_resolution)
        throw ShapeError(fmt::format("discriminator input must have shape [N, {}, {}, {}]", config.img_channels, config.img_resolution,
                                     config.img_resolution));
}
}  // namespace

std::vector<torch::Tensor> Discriminator::features(const torch::Tensor& img_in, bool force_fp32) {
    return detail::guard_torch("discriminator", [&]() -> std::vector<torch::Tensor> {
        check_discriminator_input(img_in, config);
        torch::Tensor x, img = img_in;
        std::vector<torch::Tensor> out;
        for (auto& block : blocks_) {
            std::tie(x, img) = block->forward(x, img, force_fp32);
            out.push_back(x.to(torch::kFloat32));
        }
        return out;
    });
}

torch::Tensor Discriminator::forward(const torch::Tensor& img_in, const torch::Tensor& c, bool force_fp32) {
    return detail::guard_torch("discriminator", [&]() -> torch::Tensor {
        check_discriminator_input(img_in, config);
        torch::Tensor x, img = img_in;
        for (auto& block : blocks_) std::tie(x, img) = block->forward(x, img, force_fp32);
        torch::Tensor cmap;
        if (config.c_dim > 0) cmap = mapping_->forward(torch::Tensor(), c);
        return epilogue_->forward(x, img, cmap);
    });
}

// ---------------------------------------------------------------------------------------------

torch::Device device_of(const torch::nn::Module& module) {
    const auto params = module.parameters();
    return params.empty() ? torch::Device(torch::kCPU) : params.front().device();
}

std::shared_ptr<Generator> clone_generator(const Generator& G) {
    auto copy = std::make_shared<Generator>(G.config);
    std::vector<std::pair<std::string, torch::Tensor>> tensors;
    for (const auto& p : G.named_parameters(true)) tensors.emplace_back(p.key(), p.value().detach());
    for (const auto& b : G.named_buffers(true)) tensors.emplace_back(b.key(), b.value().detach());
    copy->to(device_of(*G.synthesis));
    load_state(*copy, tensors, "generator copy");
    copy->eval();
    return copy;
}

int64_t count_parameters(const torch::nn::Module& module) {
    int64_t n = 0;
    for (const auto& p : module.parameters()) n += p.numel();
    return n;
}

void load_state(torch::nn::Module& module, const std::vector<std::pair<std::string, torch::Tensor>>& tensors, const std::string& source) {
    std::map<std::string, torch::Tensor> targets;
    for (const auto& p : module.named_parameters(true)) targets[p.key()] = p.value();
    for (const auto& b : module.named_buffers(true)) targets[b.key()] = b.value();
    std::set<std::string> seen;
    torch::NoGradGuard no_grad;
    for (const auto& [name, t] : tensors) {
        auto it = targets.find(name);
        if (it == targets.end()) throw ModelFormatError(fmt::format("{}: tensor '{}' does not belong to this architecture", source, name));
        if (!seen.insert(name).second) throw ModelFormatError(fmt::format("{}: tensor '{}' appears twice", source, name));
        if (it->second.sizes() != t.sizes())
            throw ShapeError(fmt::format("{}: tensor '{}' has shape {} but the architecture needs {}", source, name,
                                         fmt::join(t.sizes(), "x"), fmt::join(it->second.sizes(), "x")));
        it->second.copy_(t.to(it->second.dtype()));
    }
    for (const auto& [name, t] : targets)
        if (!seen.count(name)) throw ModelFormatError(fmt::format("{}: tensor '{}' is missing", source, name));
}

}  // namespace latentkit
