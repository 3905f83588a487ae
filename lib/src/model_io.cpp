#include "latentkit/model_io.h"

#include <fmt/format.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "latentkit/atomic_file.h"
#include "latentkit/error.h"
#include "latentkit/log.h"
#include "latentkit/networks.h"
#include "model_loading.h"
#include "pickle.h"
#include "torch_convert.h"
#include "torch_errors.h"

namespace latentkit {
namespace detail {
using json = nlohmann::json;
using pickle::Kind;
using pickle::Value;

json pickle_json(const Value* v, const std::string& source, int depth) {
    if (depth > 32) throw ModelFormatError(source + ": network arguments nest too deeply");
    switch (v->kind) {
        case Kind::none: return nullptr;
        case Kind::boolean: return v->b;
        case Kind::integer: return v->i;
        case Kind::floating: return std::isfinite(v->f) ? json(v->f) : json(nullptr);
        case Kind::string: return v->s;
        case Kind::list:
        case Kind::tuple: {
            json a = json::array();
            for (const Value* x : v->items) a.push_back(pickle_json(x, source, depth + 1));
            return a;
        }
        case Kind::dict: {
            json o = json::object();
            for (size_t k = 0; k + 1 < v->items.size(); k += 2) {
                if (v->items[k]->kind != Kind::string) throw ModelFormatError(source + ": network argument name is not a string");
                o[v->items[k]->s] = pickle_json(v->items[k + 1], source, depth + 1);
            }
            return o;
        }
        default: throw ModelFormatError(source + ": network argument of an unsupported type");
    }
}
}  // namespace detail

namespace {
using detail::build_network;
using detail::NamedTensors;
using detail::pickle_json;
using json = nlohmann::json;
using pickle::Kind;
using pickle::Value;

constexpr int kMaxModuleDepth = 64;
const char* kFormatKey = "latentkit.format";
const char* kSourceFormatKey = "latentkit.source_format";  // the kind of file a converted model came from
const char* kNotesKey = "latentkit.notes";                 // what its loader assumed or computed (JSON list)

const Value* module_state(const Value* modules, const char* name) {
    const Value* m = modules && modules->kind == Kind::dict ? modules->get(name) : nullptr;
    return m && m->kind == Kind::object ? m->state : nullptr;
}

// Collects parameters and buffers of a pickled module tree under their state_dict names.
void collect_tensors(const Value* state, const std::string& prefix, NamedTensors& out, const std::string& source, int depth,
                     bool& stylegan3) {
    if (depth > kMaxModuleDepth) throw ModelFormatError(source + ": module tree nests too deeply");
    if (!state || state->kind != Kind::dict) throw ModelFormatError(source + ": module state is not a dict");
    const Value* non_persistent = state->get("_non_persistent_buffers_set");
    auto is_non_persistent = [&](const std::string& name) {
        if (!non_persistent) return false;
        for (const Value* x : non_persistent->items)
            if (x->is_string(name)) return true;
        return false;
    };
    for (const char* field : {"_parameters", "_buffers"}) {
        const Value* d = state->get(field);
        if (!d) continue;
        if (d->kind != Kind::dict) throw ModelFormatError(source + ": " + field + " is not a dict");
        for (size_t k = 0; k + 1 < d->items.size(); k += 2) {
            const Value* name = d->items[k];
            const Value* t = d->items[k + 1];
            if (name->kind != Kind::string) throw ModelFormatError(source + ": tensor name is not a string");
            if (t->kind == Kind::none || is_non_persistent(name->s)) continue;
            out.emplace_back(prefix + name->s, to_torch(pickle::to_tensor_data(*t, source)));
        }
    }
    const Value* modules = state->get("_modules");
    if (!modules) return;
    if (modules->kind != Kind::dict) throw ModelFormatError(source + ": _modules is not a dict");
    for (size_t k = 0; k + 1 < modules->items.size(); k += 2) {
        const Value* name = modules->items[k];
        const Value* m = modules->items[k + 1];
        if (m->kind == Kind::none) continue;
        if (name->kind != Kind::string || m->kind != Kind::object)
            throw ModelFormatError(source + ": submodule is not a persistent network object");
        if (m->s == "SynthesisInput") stylegan3 = true;
        collect_tensors(m->state, prefix + name->s + ".", out, source, depth + 1, stylegan3);
    }
}

// Options of the synthesis network that the stylegan3 repo's Generator takes at its top level.
constexpr const char* kTopLevelSynthesisArgs[] = {"channel_base", "channel_max", "num_fp16_res", "conv_clamp", "architecture",
                                                  "resample_filter", "fp16_channels_last", "fused_modconv_default", "kernel_size",
                                                  "use_noise", "activation"};

// Which repository wrote a pickle: told by the generator's constructor arguments (synthesis_kwargs in
// stylegan2-ada-pytorch, top-level synthesis options in the stylegan3 repo) and, when it has neither,
// by the attributes the stylegan3 repo's layers keep (FullyConnectedLayer.in_features).
KwargsOrigin pickle_origin(const Value* root) {
    const Value* g = nullptr;
    for (const char* key : {"G_ema", "G"})
        if (!g && root->kind == Kind::dict) g = root->get(key);
    if (root->kind == Kind::object) g = root;
    const Value* state = g && g->kind == Kind::object ? g->state : nullptr;
    if (!state || state->kind != Kind::dict) return KwargsOrigin::stylegan2_ada;
    if (const Value* kw = state->get("_init_kwargs"); kw && kw->kind == Kind::dict) {
        if (kw->get("synthesis_kwargs")) return KwargsOrigin::stylegan2_ada;
        for (const char* arg : kTopLevelSynthesisArgs)
            if (kw->get(arg)) return KwargsOrigin::stylegan3_repo;
    }
    const Value* mapping = module_state(state->get("_modules"), "mapping");
    const Value* fc0 = mapping ? module_state(mapping->get("_modules"), "fc0") : nullptr;
    return fc0 && fc0->get("in_features") ? KwargsOrigin::stylegan3_repo : KwargsOrigin::stylegan2_ada;
}

// A persistence-pickled network: its constructor arguments and tensors.
struct PickledNetwork {
    std::string where;
    json kwargs;
    NamedTensors tensors;
    bool stylegan3 = false;  // has a SynthesisInput (networks_stylegan3)
};

PickledNetwork read_pickled_network(const Value* obj, const char* expected_class, const std::string& source) {
    PickledNetwork n;
    n.where = fmt::format("{} ({})", source, expected_class);
    if (obj->kind != Kind::object) throw ModelFormatError(n.where + ": not a persistent network object");
    const Value* state = obj->state;
    if (!state || state->kind != Kind::dict) throw ModelFormatError(n.where + ": network state is not a dict");
    collect_tensors(state, "", n.tensors, n.where, 0, n.stylegan3);
    if (obj->s != expected_class) throw ModelFormatError(fmt::format("{}: class {} is not a StyleGAN {}", n.where, obj->s, expected_class));
    const Value* args = state->get("_init_args");
    if (args && !args->items.empty()) throw ModelFormatError(n.where + ": positional constructor arguments are not supported");
    const Value* kwargs = state->get("_init_kwargs");
    if (!kwargs) throw ModelFormatError(n.where + ": no _init_kwargs (not a persistence-pickled network)");
    n.kwargs = pickle_json(kwargs, n.where);
    return n;
}

std::shared_ptr<Generator> generator_from_pickle(const Value* obj, const std::string& source, KwargsOrigin origin) {
    PickledNetwork n = read_pickled_network(obj, "Generator", source);
    if (n.stylegan3) n.where = source + " (StyleGAN3 Generator)";
    // StyleGAN3 networks exist only in the stylegan3 repo, with its layout and defaults.
    const GeneratorConfig config =
        n.stylegan3 ? GeneratorConfig::from_kwargs_json(n.kwargs.dump(), n.where, KwargsOrigin::stylegan3_repo, GeneratorFamily::stylegan3)
                    : GeneratorConfig::from_kwargs_json(n.kwargs.dump(), n.where, origin);
    return build_network<Generator>(config, n.tensors, n.where);
}

std::shared_ptr<Discriminator> discriminator_from_pickle(const Value* obj, const std::string& source, KwargsOrigin origin) {
    PickledNetwork n = read_pickled_network(obj, "Discriminator", source);
    return build_network<Discriminator>(DiscriminatorConfig::from_kwargs_json(n.kwargs.dump(), n.where, origin), n.tensors, n.where);
}

Model load_pickle(const std::string& path, const std::string& bytes) {
    auto doc = pickle::parse(bytes, path);
    const Value* root = doc->root;
    if (detail::is_tf_networks(root)) return detail::load_tf_networks(root, path);
    const KwargsOrigin origin = pickle_origin(root);
    Model model;
    model.path = path;
    const bool sg3 = origin == KwargsOrigin::stylegan3_repo;
    model.format = sg3 ? "stylegan3-repo pickle" : "stylegan2-ada pickle";
    model.config_source = sg3 ? "the networks' constructor arguments (_init_kwargs), with the stylegan3 repo's defaults"
                              : "the networks' constructor arguments (_init_kwargs), with stylegan2-ada-pytorch's defaults";
    if (root->kind == Kind::object && root->s == "Generator") {
        model.G_ema = generator_from_pickle(root, path, origin);
        return model;
    }
    if (root->kind != Kind::dict) throw ModelFormatError(path + ": pickle holds no StyleGAN2 networks (not a dict of G/D/G_ema)");
    if (const Value* g = root->get("G_ema")) model.G_ema = generator_from_pickle(g, path, origin);
    if (const Value* g = root->get("G")) model.G = generator_from_pickle(g, path, origin);
    if (const Value* d = root->get("D")) model.D = discriminator_from_pickle(d, path, origin);
    if (!model.G_ema && !model.G && !model.D) throw ModelFormatError(path + ": pickle holds no G, G_ema or D network");
    if (const Value* pipe = root->get("augment_pipe"); pipe && pipe->kind == Kind::object && pipe->state) {
        const Value* buffers = pipe->state->get("_buffers");
        if (const Value* p = buffers ? buffers->get("p") : nullptr; p && p->kind == Kind::tensor) {
            const auto values = pickle::to_tensor_data(*p, path).to_floats();
            if (values.size() == 1) model.augment_p = values[0];
        }
    }
    if (const Value* kw = root->get("training_set_kwargs"); kw && kw->kind == Kind::dict)
        model.training_set_kwargs = pickle_json(kw, path).dump();
    return model;
}

// Architecture of a bare generator state dict (reference names, no configuration), from tensor shapes.
GeneratorConfig infer_generator(const TensorFile& file, const std::string& path) {
    auto shape = [&](const std::string& name) -> std::vector<int64_t> {
        const TensorData* t = file.find(name);
        return t ? t->shape : std::vector<int64_t>{};
    };
    auto fail = [&](const std::string& what) { return ModelFormatError(path + ": a state dict without a configuration, and " + what); };
    GeneratorConfig c;
    int layers = 0;
    while (file.find(fmt::format("mapping.fc{}.weight", layers))) ++layers;
    if (layers == 0) throw fail("no generator tensors (mapping.fc0.weight)");
    c.mapping.num_layers = layers;
    const auto fc0 = shape("mapping.fc0.weight"), last = shape(fmt::format("mapping.fc{}.weight", layers - 1));
    if (fc0.size() != 2 || last.size() != 2) throw fail("mapping weights are not matrices");
    c.w_dim = static_cast<int>(last[0]);
    const auto embed = shape("mapping.embed.weight");
    c.c_dim = embed.size() == 2 ? static_cast<int>(embed[1]) : 0;
    const int embed_features = embed.size() == 2 ? static_cast<int>(embed[0]) : 0;
    c.z_dim = static_cast<int>(fc0[1]) - embed_features;
    if (c.c_dim > 0 && embed_features != c.w_dim) c.mapping.embed_features = embed_features;
    if (layers > 1 && fc0[0] != c.w_dim) c.mapping.layer_features = static_cast<int>(fc0[0]);
    if (!file.find("mapping.w_avg")) c.mapping.w_avg_beta.reset();
    int res = 4;
    std::vector<int> channels;
    for (; file.find(fmt::format("synthesis.b{}.conv1.weight", res)); res *= 2) {
        const auto w = shape(fmt::format("synthesis.b{}.conv1.weight", res));
        if (w.size() != 4) throw fail(fmt::format("synthesis.b{}.conv1.weight is not a convolution kernel", res));
        channels.push_back(static_cast<int>(w[0]));
    }
    if (channels.empty()) throw fail("no synthesis tensors");
    c.img_resolution = res / 2;
    const auto torgb = shape(fmt::format("synthesis.b{}.torgb.weight", c.img_resolution));
    if (torgb.size() != 4) throw fail("no final torgb layer");
    c.img_channels = static_cast<int>(torgb[0]);
    auto& s = c.synthesis;
    s.kernel_size = static_cast<int>(shape("synthesis.b4.conv1.weight").at(2));
    s.use_noise = file.find("synthesis.b4.conv1.noise_strength") != nullptr;
    s.architecture = file.find("synthesis.b8.skip.weight")                                  ? Architecture::resnet
                     : file.find("synthesis.b4.torgb.weight") && c.img_resolution > 4 ? Architecture::skip
                                                                                       : Architecture::orig;
    if (const auto rule = fit_channel_rule(channels)) {
        std::tie(s.channel_base, s.channel_max) = *rule;
    } else {
        s.channels = channels;
    }
    s.conv_clamp = 256;
    log_warn(fmt::format("{}: bare state dict without latentkit metadata: architecture inferred from tensor shapes, assuming the "
                         "reference training defaults (conv_clamp 256, mapping lr_multiplier 0.01, lrelu)", path));
    return c;
}

NamedTensors tensors_with_prefix(const TensorFile& file, const std::string& prefix) {
    NamedTensors out;
    for (const auto& [name, t] : file.tensors)
        if (name.rfind(prefix, 0) == 0) out.emplace_back(name.substr(prefix.size()), to_torch(t));
    return out;
}

Model load_safetensors_model(const std::string& path, std::shared_ptr<const std::string> bytes) {
    const TensorFile file = parse_safetensors(std::move(bytes), path);
    auto meta = [&](const std::string& key) -> const std::string* {
        auto it = file.metadata.find(key);
        return it == file.metadata.end() ? nullptr : &it->second;
    };
    const std::string* format = meta(kFormatKey);
    if (!format) return detail::load_bare_state_dict(file, path, "bare state dict");
    if (*format != "1") throw ModelFormatError(fmt::format("{}: latentkit model format version {} is newer than this build reads", path, *format));
    Model model;
    model.path = path;
    model.format = "latentkit safetensors";
    if (const std::string* origin = meta(kSourceFormatKey)) model.converted_from = *origin;
    model.config_source = "latentkit metadata";
    for (const char* name : {"G_ema", "G"}) {
        if (const std::string* cfg = meta(std::string(name) + ".config")) {
            const std::string where = fmt::format("{} ({})", path, name);
            auto net = build_network<Generator>(GeneratorConfig::from_kwargs_json(*cfg, where), tensors_with_prefix(file, std::string(name) + "."), where);
            (std::string(name) == "G_ema" ? model.G_ema : model.G) = net;
        }
    }
    if (const std::string* cfg = meta("D.config")) {
        const std::string where = path + " (D)";
        model.D = build_network<Discriminator>(DiscriminatorConfig::from_kwargs_json(*cfg, where), tensors_with_prefix(file, "D."), where);
    }
    if (!model.G_ema && !model.G && !model.D) throw ModelFormatError(path + ": latentkit model file holds no network");
    if (const std::string* p = meta("augment_p")) {
        try {
            model.augment_p = std::stod(*p);
        } catch (const std::exception&) {
            throw ModelFormatError(path + ": augment_p metadata is not a number");
        }
    }
    if (const std::string* k = meta("training_set_kwargs")) model.training_set_kwargs = *k;
    if (const std::string* n = meta(kNotesKey)) {
        const json notes = json::parse(*n, nullptr, false);
        if (!notes.is_array()) throw ModelFormatError(path + ": " + kNotesKey + " metadata is not a JSON list");
        for (const json& note : notes)
            if (note.is_string()) model.notes.push_back(note.get<std::string>());
    }
    for (const auto& [key, value] : file.metadata)
        if (key.rfind("info.", 0) == 0) model.info[key.substr(5)] = value;
    return model;
}

bool looks_like_safetensors(const std::string& b) {
    if (b.size() < 9) return false;
    uint64_t n;
    std::memcpy(&n, b.data(), 8);
    return n <= b.size() - 8 && b[8] == '{';
}
}  // namespace

Model detail::load_bare_state_dict(const TensorFile& file, const std::string& path, const std::string& format) {
    Model model;
    model.path = path;
    model.format = format;
    model.config_source = "tensor shapes (stylegan2-ada-pytorch state dict names), with the reference training defaults";
    model.G_ema = build_network<Generator>(infer_generator(file, path), tensors_with_prefix(file, ""), path);
    return model;
}

std::shared_ptr<Generator> Model::generator() const {
    if (G_ema) return G_ema;
    if (G) return G;
    throw ModelFormatError(path + ": holds no generator (only a discriminator)");
}

Model load_model(const std::string& path) {
    return detail::guard_torch(path + ": loading", [&]() -> Model {
        auto bytes = std::make_shared<const std::string>(read_file(path));
        const std::string& b = *bytes;
        if (b.empty()) throw ModelFormatError(path + ": file is empty");
        if (pickle::is_legacy_torch_save(b) || b.rfind("PK\x03\x04", 0) == 0) return detail::load_torch_save(bytes, path);
        if (b.size() >= 2 && static_cast<uint8_t>(b[0]) == 0x80 && static_cast<uint8_t>(b[1]) >= 2 && static_cast<uint8_t>(b[1]) <= 5)
            return load_pickle(path, b);
        if (looks_like_safetensors(b)) return load_safetensors_model(path, bytes);
        if (b.rfind("\x93NUMPY", 0) == 0) throw ModelFormatError(path + ": a numpy array file, not a model");
        if (static_cast<uint8_t>(b[0]) == 0x80)
            throw ModelFormatError(fmt::format("{}: pickle protocol {} is not supported (2 to 5 are)", path, static_cast<int>(static_cast<uint8_t>(b[1]))));
        throw ModelFormatError(path + ": not a model file; latentkit reads StyleGAN2 .pkl snapshots (PyTorch and TensorFlow), torch.save "
                                      "checkpoints (.pt) and latentkit .safetensors");
    });
}

TensorFile model_tensor_file(const Model& model, const SaveOptions& options) {
    TensorFile file;
    file.metadata[kFormatKey] = "1";
    auto add = [&](const std::string& name, const torch::nn::Module& net, const std::string& config) {
        file.metadata[name + ".config"] = config;
        for (const auto& p : net.named_parameters(true)) file.tensors.emplace_back(name + "." + p.key(), from_torch(p.value()));
        for (const auto& b : net.named_buffers(true)) file.tensors.emplace_back(name + "." + b.key(), from_torch(b.value()));
    };
    if (model.G_ema) add("G_ema", *model.G_ema, model.G_ema->config.to_kwargs_json());
    if (!options.g_ema_only || !model.G_ema) {
        if (model.G) add("G", *model.G, model.G->config.to_kwargs_json());
        if (model.D && !options.g_ema_only) add("D", *model.D, model.D->config.to_kwargs_json());
    }
    if (file.tensors.empty()) throw ArgumentError("nothing to save: the model has no networks");
    if (model.augment_p) file.metadata["augment_p"] = fmt::format("{}", *model.augment_p);
    const std::string origin = !model.converted_from.empty() ? model.converted_from : model.format;
    if (!origin.empty() && origin != "latentkit safetensors") file.metadata[kSourceFormatKey] = origin;
    if (!model.notes.empty()) file.metadata[kNotesKey] = json(model.notes).dump();
    if (!model.training_set_kwargs.empty()) file.metadata["training_set_kwargs"] = model.training_set_kwargs;
    for (const auto& [key, value] : model.info) file.metadata["info." + key] = value;
    return file;
}

void save_model(const std::string& path, const Model& model, const SaveOptions& options) {
    return detail::guard_torch(path + ": saving", [&]() -> void {
        write_safetensors(path, model_tensor_file(model, options));
    });
}

}  // namespace latentkit
