// rosinality stylegan2-pytorch checkpoints: {"g_ema", "g", "d": state dicts, "latent_avg"} in its own
// names and shapes (the inverse of model_torch_save.cpp's reading), through torch.save's zip format.
#include <fmt/format.h>

#include <cmath>
#include <map>

#include "latentkit/error.h"
#include "latentkit/log.h"
#include "latentkit/model_export.h"
#include "latentkit/networks.h"
#include "latentkit/torch_save_writer.h"
#include "model_loading.h"
#include "torch_convert.h"

namespace latentkit::detail {
namespace {

using torch::Tensor;
using Tensors = std::map<std::string, Tensor>;

Tensors state_of(torch::nn::Module& net) {
    Tensors out;
    for (const auto& p : net.named_parameters(true)) out[p.key()] = p.value().detach().to(torch::kCPU, torch::kFloat32);
    for (const auto& b : net.named_buffers(true)) out[b.key()] = b.value().detach().to(torch::kCPU, torch::kFloat32);
    return out;
}

// The state dict being written, in rosinality's order.
struct StateDict {
    std::vector<std::pair<std::string, Tensor>> items;
    const Tensors& src;
    const std::string& where;
    Tensor get(const std::string& name) const {
        const auto it = src.find(name);
        if (it == src.end()) throw ModelFormatError(fmt::format("{}: the network has no '{}' to write", where, name));
        return it->second;
    }
    void put(const std::string& name, const Tensor& t) { items.emplace_back(name, t.contiguous()); }
};

int log2i(int r) { return static_cast<int>(std::lround(std::log2(r))); }

// rosinality's channel table for a channel multiplier, 4x4 first.
std::vector<int> rosinality_channels(int resolution, int multiplier) {
    std::vector<int> out;
    for (int r = 4; r <= resolution; r *= 2) out.push_back(r <= 32 ? 512 : 512 * multiplier * 32 / r);
    return out;
}

void check_generator(const GeneratorConfig& c, const std::string& where) {
    auto refuse = [&](const std::string& what) {
        throw ModelFormatError(fmt::format("{}: rosinality's stylegan2-pytorch cannot hold {}", where, what));
    };
    if (c.family != GeneratorFamily::stylegan2) refuse("a StyleGAN3 generator");
    if (c.c_dim > 0) refuse(fmt::format("a conditional generator ({} labels): its Generator takes none", c.c_dim));
    if (c.img_channels != 3) refuse(fmt::format("{}-channel images: its ToRGB layers make 3", c.img_channels));
    if (c.synthesis.architecture != Architecture::skip)
        refuse(fmt::format("a '{}' generator: its Generator is 'skip'", option_name(c.synthesis.architecture)));
    if (!c.synthesis.use_noise) refuse("a generator without noise inputs");
    if (c.synthesis.kernel_size != 3) refuse(fmt::format("{}x{} convolutions", c.synthesis.kernel_size, c.synthesis.kernel_size));
    if (c.synthesis.activation != Activation::lrelu || c.mapping.activation != Activation::lrelu) refuse("activations other than leaky ReLU");
    if (c.mapping.layer_features && *c.mapping.layer_features != c.w_dim) refuse("mapping layers of another width than w");
    if (c.z_dim != c.w_dim) refuse(fmt::format("z of {} values and w of {}: its style_dim is both", c.z_dim, c.w_dim));
    if (c.synthesis.resample_filter != std::vector<float>{1, 3, 3, 1})
        log_warn(where + ": the resampling filter is not [1, 3, 3, 1]: build rosinality's Generator with blur_kernel set to it");
    if (c.synthesis.conv_clamp)
        log_warn(fmt::format("{}: conv_clamp {} is not written (rosinality's networks do not clamp; images differ only where activations "
                             "exceed it)", where, *c.synthesis.conv_clamp));
    if (std::abs(c.mapping.lr_multiplier - 0.01) > 1e-12)
        log_warn(fmt::format("{}: mapping lr_multiplier {}: build rosinality's Generator with lr_mlp={}", where, c.mapping.lr_multiplier,
                             c.mapping.lr_multiplier));
    std::vector<int> ours;
    for (int r = 4; r <= c.img_resolution; r *= 2) ours.push_back(c.channels_at(r));
    bool table = false;
    for (int m : {1, 2, 4}) table = table || ours == rosinality_channels(c.img_resolution, m);
    if (!table)
        log_warn(fmt::format("{}: channel widths {} (4x4 first) are not rosinality's table for any channel_multiplier: build its Generator "
                             "with its `channels` dict set to them", where, fmt::join(ours, ", ")));
}

std::vector<std::pair<std::string, Tensor>> generator_state(Generator& G, const std::string& where) {
    const GeneratorConfig& c = G.config;
    const Tensors src = state_of(G);
    StateDict sd{{}, src, where};
    for (int k = 0; k < c.mapping.num_layers; ++k)
        for (const char* p : {"weight", "bias"}) sd.put(fmt::format("style.{}.{}", k + 1, p), sd.get(fmt::format("mapping.fc{}.{}", k, p)));
    sd.put("input.input", sd.get("synthesis.b4.const").unsqueeze(0));
    // One modulated layer: weight with rosinality's leading 1, modulation, noise weight, activation bias.
    auto conv = [&](const std::string& to, const std::string& from, bool blur) {
        sd.put(to + ".conv.weight", sd.get(from + ".weight").unsqueeze(0));
        if (blur) sd.put(to + ".conv.blur.kernel", sd.get(from + ".resample_filter") * 4);  // its upsampling blur carries the gain
        sd.put(to + ".conv.modulation.weight", sd.get(from + ".affine.weight"));
        sd.put(to + ".conv.modulation.bias", sd.get(from + ".affine.bias"));
        sd.put(to + ".noise.weight", sd.get(from + ".noise_strength").reshape({1}));
        sd.put(to + ".activate.bias", sd.get(from + ".bias"));
    };
    auto rgb = [&](const std::string& to, const std::string& from, bool upsample) {
        sd.put(to + ".bias", sd.get(from + ".torgb.bias").reshape({1, c.img_channels, 1, 1}));
        if (upsample) sd.put(to + ".upsample.kernel", sd.get(from + ".resample_filter") * 4);
        sd.put(to + ".conv.weight", sd.get(from + ".torgb.weight").unsqueeze(0));
        sd.put(to + ".conv.modulation.weight", sd.get(from + ".torgb.affine.weight"));
        sd.put(to + ".conv.modulation.bias", sd.get(from + ".torgb.affine.bias"));
    };
    conv("conv1", "synthesis.b4.conv1", false);
    rgb("to_rgb1", "synthesis.b4", false);
    for (int r = 8; r <= c.img_resolution; r *= 2) {
        const int j = log2i(r) - 3;
        conv(fmt::format("convs.{}", 2 * j), fmt::format("synthesis.b{}.conv0", r), true);
        conv(fmt::format("convs.{}", 2 * j + 1), fmt::format("synthesis.b{}.conv1", r), false);
    }
    for (int r = 8; r <= c.img_resolution; r *= 2) rgb(fmt::format("to_rgbs.{}", log2i(r) - 3), fmt::format("synthesis.b{}", r), true);
    sd.put("noises.noise_0", sd.get("synthesis.b4.conv1.noise_const").view({1, 1, 4, 4}));
    for (int r = 8; r <= c.img_resolution; r *= 2)
        for (int k = 0; k < 2; ++k)
            sd.put(fmt::format("noises.noise_{}", 2 * (log2i(r) - 3) + 1 + k), sd.get(fmt::format("synthesis.b{}.conv{}.noise_const", r, k)).view({1, 1, r, r}));
    return sd.items;
}

// Why rosinality's Discriminator cannot hold D, or "" when it can.
std::string discriminator_misfit(const DiscriminatorConfig& c) {
    if (c.c_dim > 0) return "it is conditional";
    if (c.architecture != Architecture::resnet) return fmt::format("it is a '{}' discriminator (rosinality's is 'resnet')", option_name(c.architecture));
    if (c.img_channels != 3) return "it takes gray images";
    if (c.mbstd_group_size != 4 || c.mbstd_num_channels != 1) return "its minibatch-stddev layer is not rosinality's (group 4, 1 channel)";
    if (c.activation != Activation::lrelu) return "its activation is not leaky ReLU";
    return "";
}

std::vector<std::pair<std::string, Tensor>> discriminator_state(Discriminator& D, const std::string& where) {
    const DiscriminatorConfig& c = D.config;
    const Tensors src = state_of(D);
    StateDict sd{{}, src, where};
    const int R = c.img_resolution;
    sd.put("convs.0.0.weight", sd.get(fmt::format("b{}.fromrgb.weight", R)));
    sd.put("convs.0.1.bias", sd.get(fmt::format("b{}.fromrgb.bias", R)));
    int k = 1;
    for (int r = R; r >= 8; r /= 2, ++k) {
        const std::string to = fmt::format("convs.{}", k), from = fmt::format("b{}", r);
        sd.put(to + ".conv1.0.weight", sd.get(from + ".conv0.weight"));
        sd.put(to + ".conv1.1.bias", sd.get(from + ".conv0.bias"));
        sd.put(to + ".conv2.0.kernel", sd.get(from + ".conv1.resample_filter"));
        sd.put(to + ".conv2.1.weight", sd.get(from + ".conv1.weight"));
        sd.put(to + ".conv2.2.bias", sd.get(from + ".conv1.bias"));
        sd.put(to + ".skip.0.kernel", sd.get(from + ".skip.resample_filter"));
        sd.put(to + ".skip.1.weight", sd.get(from + ".skip.weight"));
    }
    sd.put("final_conv.0.weight", sd.get("b4.conv.weight"));
    sd.put("final_conv.1.bias", sd.get("b4.conv.bias"));
    for (const auto& [to, from] : {std::pair<const char*, const char*>{"final_linear.0", "b4.fc"}, {"final_linear.1", "b4.out"}})
        for (const char* p : {"weight", "bias"}) sd.put(fmt::format("{}.{}", to, p), sd.get(fmt::format("{}.{}", from, p)));
    return sd.items;
}

void write_state(TorchSaveWriter& w, const std::string& key, const std::vector<std::pair<std::string, Tensor>>& state) {
    w.string(key);
    w.begin_dict(true);
    for (const auto& [name, t] : state) {
        w.string(name);
        w.tensor(from_torch(t));
    }
    w.end_dict();
}

}  // namespace

void write_rosinality(const std::string& path, const Model& model, bool g_ema_only) {
    torch::NoGradGuard no_grad;
    const std::shared_ptr<Generator> g_ema = model.generator();
    Generator& G_ema = *g_ema;
    check_generator(G_ema.config, path);
    std::vector<std::pair<std::string, std::vector<std::pair<std::string, Tensor>>>> parts;
    parts.emplace_back("g_ema", generator_state(G_ema, path + " (g_ema)"));
    if (!g_ema_only && model.G && model.G != g_ema) parts.emplace_back("g", generator_state(*model.G, path + " (g)"));
    if (!g_ema_only && model.D) {
        const std::string misfit = discriminator_misfit(model.D->config);
        if (misfit.empty()) parts.emplace_back("d", discriminator_state(*model.D, path + " (d)"));
        else log_warn(fmt::format("{}: the discriminator is not written: {}", path, misfit));
    }
    TorchSaveWriter w(path);
    w.begin_dict();
    for (const auto& [key, state] : parts) write_state(w, key, state);
    if (G_ema.mapping->w_avg.defined()) {
        w.string("latent_avg");
        w.tensor(from_torch(G_ema.mapping->w_avg.detach().to(torch::kCPU, torch::kFloat32).contiguous()));
    }
    w.end_dict();
    w.finish();
}

}  // namespace latentkit::detail
