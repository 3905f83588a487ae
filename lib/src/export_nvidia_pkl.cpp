// NVIDIA .pkl for stylegan2-ada-pytorch and stylegan3: the TensorFlow-era layout, a (G, D, Gs) tuple of
// dnnlib.tflib.network.Network records (static_kwargs, variables as numpy arrays, components), which
// both repos' legacy.load_network_pkl convert into their own networks. It carries and runs no Python
// source. The inverse of model_tf.cpp's reading (legacy.py's names, transposes and flips).
#include <fmt/format.h>

#include <functional>
#include <cmath>
#include <regex>

#include "latentkit/atomic_file.h"
#include "latentkit/error.h"
#include "latentkit/networks.h"
#include "model_loading.h"
#include "ops.h"
#include "pickle_writer.h"
#include "torch_convert.h"

namespace latentkit::detail {
namespace {

using json = nlohmann::json;
using torch::Tensor;

// One TensorFlow network record.
struct TfNet {
    std::string name;
    json kwargs = json::object();
    std::vector<std::pair<std::string, TensorData>> variables;
    std::vector<std::pair<std::string, TfNet>> components;
};

TensorData dense(const Tensor& w) { return from_torch(w.t().contiguous()); }  // [out, in] -> TF [in, out]
TensorData conv(const Tensor& w, bool flip) {                                   // [out, in, kh, kw] -> TF [kh, kw, in, out]
    Tensor t = w.permute({2, 3, 1, 0});
    if (flip) t = t.flip({0, 1});
    return from_torch(t.contiguous());
}
TensorData plain(const Tensor& t) { return from_torch(t.contiguous()); }

json filter_json(const std::vector<float>& taps) {
    json out = json::array();
    for (float t : taps) out.push_back(t == std::round(t) ? json(static_cast<int64_t>(t)) : json(t));
    return out;
}

[[noreturn]] void refuse(const std::string& path, const std::string& what) {
    throw ModelFormatError(fmt::format("{}: NVIDIA's .pkl (the data-only TensorFlow-era layout that legacy.py converts) cannot hold {}", path, what));
}

// The layout keeps one list of filter taps and rebuilds every layer's filter from it: a resampling
// filter buffer that is not that filter (a checkpoint that stores its own per layer) cannot be kept.
bool resample_filter_matches(const std::string& key, const Tensor& t, const std::vector<float>& taps, const std::string& path) {
    if (key.size() < 15 || key.compare(key.size() - 15, 15, "resample_filter") != 0) return false;
    const Tensor expected = ops::setup_filter(taps);
    if (!t.sizes().equals(expected.sizes()) || (t - expected).abs().max().item<double>() > 1e-6)
        refuse(path, fmt::format("{}: a resampling filter other than the one its resample_kernel gives", key));
    return true;
}

// fmap_base for channels min(2 * fmap_base / r, fmap_max) at every resolution, or a refusal.
int64_t fmap_base(int channel_base, int channel_max, int resolution, const std::string& path, const std::function<int(int)>& at) {
    if (channel_base % 2 != 0) refuse(path, fmt::format("an odd channel_base {}", channel_base));
    for (int r = 4; r <= resolution; r *= 2)
        if (at(r) != std::min(channel_base / r, channel_max))
            refuse(path, fmt::format("channel widths that follow no channel_base/channel_max rule ({} at {}x{})", at(r), r, r));
    return channel_base / 2;
}

TfNet generator_network(Generator& G, const std::string& name, const std::string& path) {
    const GeneratorConfig& c = G.config;
    const auto& s = c.synthesis;
    TfNet net{name};
    net.kwargs = {{"latent_size", c.z_dim}, {"label_size", c.c_dim}, {"dlatent_size", c.w_dim}, {"resolution", c.img_resolution},
                  {"num_channels", c.img_channels}, {"mapping_layers", c.mapping.num_layers}, {"mapping_nonlinearity", option_name(c.mapping.activation)},
                  {"mapping_lrmul", c.mapping.lr_multiplier}, {"w_avg_beta", *c.mapping.w_avg_beta},
                  {"fmap_base", fmap_base(s.channel_base, s.channel_max, c.img_resolution, path, [&](int r) { return c.channels_at(r); })},
                  {"fmap_max", s.channel_max}, {"num_fp16_res", s.num_fp16_res}, {"architecture", option_name(s.architecture)},
                  {"resample_kernel", filter_json(s.resample_filter)}, {"use_noise", s.use_noise}, {"nonlinearity", option_name(s.activation)}};
    if (s.conv_clamp) net.kwargs["conv_clamp"] = *s.conv_clamp;
    if (c.mapping.embed_features) net.kwargs["label_fmaps"] = *c.mapping.embed_features;
    if (c.mapping.layer_features) net.kwargs["mapping_fmaps"] = *c.mapping.layer_features;
    TfNet mapping{"G_mapping"}, synthesis{"G_synthesis"};
    static const std::regex mapping_re(R"(mapping\.(embed|fc(\d+))\.(weight|bias))");
    static const std::regex layer_re(R"(synthesis\.b(\d+)\.(conv0|conv1|torgb)\.(weight|bias|noise_strength|noise_const|affine\.weight|affine\.bias))");
    static const std::regex skip_re(R"(synthesis\.b(\d+)\.skip\.weight)");
    auto add = [&](const std::string& key, const Tensor& t) {
        std::smatch m;
        if (key == "mapping.w_avg") return net.variables.emplace_back("dlatent_avg", plain(t)), true;
        if (key == "synthesis.b4.const") return synthesis.variables.emplace_back("4x4/Const/const", plain(t.unsqueeze(0))), true;
        if (std::regex_match(key, m, mapping_re)) {
            const std::string layer = m[1] == "embed" ? std::string("LabelEmbed") : "Dense" + m[2].str();
            mapping.variables.emplace_back(layer + "/" + m[3].str(), m[3] == "weight" ? dense(t) : plain(t));
            return true;
        }
        if (std::regex_match(key, m, layer_re)) {
            const int r = std::stoi(m[1].str());
            const std::string kind = m[2].str(), var = m[3].str();
            const std::string layer = kind == "torgb" ? "ToRGB" : r == 4 ? "Conv" : kind == "conv0" ? "Conv0_up" : "Conv1";
            const std::string prefix = fmt::format("{0}x{0}/{1}/", r, layer);
            const int lg = static_cast<int>(std::lround(std::log2(r)));
            if (var == "weight") synthesis.variables.emplace_back(prefix + "weight", conv(t, kind == "conv0"));
            else if (var == "bias" || var == "noise_strength") synthesis.variables.emplace_back(prefix + var, plain(t.reshape(var == "bias" ? t.sizes() : torch::IntArrayRef{})));
            else if (var == "affine.weight") synthesis.variables.emplace_back(prefix + "mod_weight", dense(t));
            else if (var == "affine.bias") synthesis.variables.emplace_back(prefix + "mod_bias", plain(t - 1));
            else synthesis.variables.emplace_back(fmt::format("noise{}", r == 4 ? 0 : 2 * lg - (kind == "conv0" ? 5 : 4)), plain(t.reshape({1, 1, r, r})));
            return true;
        }
        if (std::regex_match(key, m, skip_re)) return synthesis.variables.emplace_back(fmt::format("{0}x{0}/Skip/weight", m[1].str()), conv(t, true)), true;
        return resample_filter_matches(key, t, s.resample_filter, path);
    };
    for (const auto& p : G.named_parameters(true))
        if (!add(p.key(), p.value().detach().to(torch::kCPU, torch::kFloat32))) refuse(path, "the generator's " + p.key());
    for (const auto& b : G.named_buffers(true))
        if (!add(b.key(), b.value().detach().to(torch::kCPU, torch::kFloat32))) refuse(path, "the generator's " + b.key());
    net.components = {{"mapping", std::move(mapping)}, {"synthesis", std::move(synthesis)}};
    return net;
}

TfNet discriminator_network(Discriminator& D, const std::string& path) {
    const DiscriminatorConfig& c = D.config;
    TfNet net{"D"};
    const int cmap = c.cmap_dim.value_or(c.channels_at(4));
    net.kwargs = {{"label_size", c.c_dim}, {"resolution", c.img_resolution}, {"num_channels", c.img_channels},
                  {"architecture", option_name(c.architecture)},
                  {"fmap_base", fmap_base(c.channel_base, c.channel_max, c.img_resolution, path, [&](int r) { return c.channels_at(r); })},
                  {"fmap_max", c.channel_max}, {"num_fp16_res", c.num_fp16_res}, {"nonlinearity", option_name(c.activation)},
                  {"resample_kernel", filter_json(c.resample_filter)}, {"freeze_layers", c.freeze_layers},
                  {"mbstd_num_features", c.mbstd_num_channels}};
    net.kwargs["mbstd_group_size"] = c.mbstd_group_size ? json(*c.mbstd_group_size) : json(nullptr);
    if (c.conv_clamp) net.kwargs["conv_clamp"] = *c.conv_clamp;
    if (c.c_dim > 0) {
        // One number stands for the label mapping's widths and the projection: they must agree.
        const int embed = c.mapping.embed_features.value_or(cmap), layer = c.mapping.layer_features.value_or(cmap);
        if (embed != cmap || layer != cmap) refuse(path, "a conditional discriminator whose label mapping is not as wide as its projection");
        net.kwargs["mapping_fmaps"] = cmap;
        net.kwargs["mapping_layers"] = c.mapping.num_layers;
        net.kwargs["mapping_lrmul"] = c.mapping.lr_multiplier;
    }
    static const std::regex block_re(R"(b(\d+)\.(fromrgb|conv0|conv1|skip|conv|fc|out)\.(weight|bias))");
    static const std::regex mapping_re(R"(mapping\.(embed|fc(\d+))\.(weight|bias))");
    auto add = [&](const std::string& key, const Tensor& t) {
        std::smatch m;
        if (std::regex_match(key, m, mapping_re)) {
            const std::string layer = m[1] == "embed" ? std::string("LabelEmbed") : "Mapping" + m[2].str();
            net.variables.emplace_back(layer + "/" + m[3].str(), m[3] == "weight" ? dense(t) : plain(t));
            return true;
        }
        if (std::regex_match(key, m, block_re)) {
            const std::string r = m[1].str(), kind = m[2].str(), var = m[3].str();
            const std::string layer = kind == "fromrgb" ? "FromRGB" : kind == "conv0" ? "Conv0" : kind == "conv1" ? "Conv1_down"
                                    : kind == "skip" ? "Skip" : kind == "conv" ? "Conv" : kind == "fc" ? "Dense0" : "";
            const std::string name = kind == "out" ? "Output/" + var : fmt::format("{0}x{0}/{1}/{2}", r, layer, var);
            net.variables.emplace_back(name, var == "bias" ? plain(t) : kind == "fc" || kind == "out" ? dense(t) : conv(t, false));
            return true;
        }
        return resample_filter_matches(key, t, c.resample_filter, path);
    };
    for (const auto& p : D.named_parameters(true))
        if (!add(p.key(), p.value().detach().to(torch::kCPU, torch::kFloat32))) refuse(path, "the discriminator's " + p.key());
    for (const auto& b : D.named_buffers(true))
        if (!add(b.key(), b.value().detach().to(torch::kCPU, torch::kFloat32))) refuse(path, "the discriminator's " + b.key());
    return net;
}

void write_value(pickle::PickleWriter& w, const json& v) {
    if (v.is_null()) w.none();
    else if (v.is_boolean()) w.boolean(v.get<bool>());
    else if (v.is_number_integer()) w.integer(v.get<int64_t>());
    else if (v.is_number()) w.floating(v.get<double>());
    else if (v.is_string()) w.text(v.get<std::string>());
    else if (v.is_array()) {
        w.empty_list();
        w.mark();
        for (const auto& x : v) write_value(w, x);
        w.appends();
    } else {
        throw ArgumentError("an object among TensorFlow kwargs");
    }
}

// A Network as Python pickles it: NEWOBJ of the class, then BUILD with its __dict__.
void write_network(pickle::PickleWriter& w, const TfNet& net) {
    w.global("dnnlib.tflib.network", "Network");
    w.empty_tuple();
    w.newobj();
    w.empty_dict();
    w.mark();
    w.text("version");
    w.integer(4);
    w.text("name");
    w.text(net.name);
    w.text("static_kwargs");
    w.empty_dict();
    w.mark();
    for (auto it = net.kwargs.begin(); it != net.kwargs.end(); ++it) {
        w.text(it.key());
        write_value(w, it.value());
    }
    w.setitems();
    w.text("components");
    w.empty_dict();
    w.mark();
    for (const auto& [name, comp] : net.components) {
        w.text(name);
        write_network(w, comp);
    }
    w.setitems();
    w.text("build_module_src");
    w.text("# written by latentkit export: data only, converted by legacy.py\n");
    w.text("build_func_name");
    w.text("training.networks." + net.name);
    w.text("variables");
    w.empty_list();
    w.mark();
    for (const auto& [name, t] : net.variables) {
        w.mark();
        w.text(name);
        w.numpy_array(t);
        w.tuple();
    }
    w.appends();
    w.setitems();
    w.build();
}

void check_networks(const Model& model, const Generator& G_ema, const std::string& path) {
    const GeneratorConfig& c = G_ema.config;
    if (c.family != GeneratorFamily::stylegan2) refuse(path, "a StyleGAN3 generator (the stylegan3 repo's own pickles carry its Python source)");
    if (!model.D) refuse(path, "a model without a discriminator: legacy.load_network_pkl requires G, D and G_ema");
    if (c.synthesis.kernel_size != 3) refuse(path, fmt::format("{0}x{0} convolutions", c.synthesis.kernel_size));
    if (!c.mapping.w_avg_beta || !G_ema.mapping->w_avg.defined()) refuse(path, "a generator without w_avg");
}

}  // namespace

void write_nvidia_pkl(const std::string& path, const Model& model) {
    torch::NoGradGuard no_grad;
    const std::shared_ptr<Generator> g_ema = model.generator();
    check_networks(model, *g_ema, path);
    const std::shared_ptr<Generator> g = model.G ? model.G : g_ema;
    pickle::PickleWriter w(3);
    w.mark();
    write_network(w, generator_network(*g, "G", path));
    write_network(w, discriminator_network(*model.D, path));
    write_network(w, generator_network(*g_ema, "Gs", path));
    w.tuple();
    const std::string bytes = w.finish();
    write_file_atomic(path, bytes.data(), bytes.size());
}

}  // namespace latentkit::detail
