// TensorFlow-era StyleGAN2 / StyleGAN2-ADA pickles: a (G, D, Gs) tuple of dnnlib.tflib.network.Network
// records, converted to latentkit's networks with the rules of stylegan2-ada-pytorch's legacy.py
// (kwargs and their defaults, variable names, transposes and flips). build_module_src is never read.
#include <fmt/format.h>

#include <cmath>
#include <map>
#include <set>

#include "latentkit/error.h"
#include "model_loading.h"

namespace latentkit::detail {
namespace {
using json = nlohmann::json;
using pickle::Kind;
using pickle::Value;

constexpr const char* kNetworkClass = "dnnlib.tflib.network.Network";
constexpr int kMaxComponentDepth = 16;

// One TensorFlow network: its static kwargs and every variable of it and its components, named with
// component prefixes ("mapping/Dense0/weight", "synthesis/4x4/Conv/weight", "dlatent_avg").
struct TfNetwork {
    std::string where;
    int64_t version = 0;
    json kwargs;
    std::map<std::string, TensorData> params;
    std::vector<std::string> component_names;
};

bool is_network(const Value* v) { return v && v->kind == Kind::object && v->s == kNetworkClass; }

const Value* field(const Value* state, const char* name, Kind kind, const std::string& where) {
    const Value* v = state->get(name);
    if (!v || v->kind != kind) throw ModelFormatError(fmt::format("{}: TensorFlow network has no valid '{}'", where, name));
    return v;
}

void collect_variables(const Value* net, const std::string& prefix, TfNetwork& out, int depth) {
    if (depth > kMaxComponentDepth) throw ModelFormatError(out.where + ": TensorFlow components nest too deeply");
    if (!is_network(net) || !net->state) throw ModelFormatError(out.where + ": a TensorFlow component is not a Network");
    const Value* vars = field(net->state, "variables", Kind::list, out.where);
    for (const Value* pair : vars->items) {
        if ((pair->kind != Kind::tuple && pair->kind != Kind::list) || pair->items.size() != 2 || pair->items[0]->kind != Kind::string)
            throw ModelFormatError(out.where + ": a TensorFlow variable is not a (name, array) pair");
        const Value* value = pair->items[1];
        const std::string name = prefix + pair->items[0]->s;
        // Session.run gives scalar variables (noise_strength) as numpy scalars, the others as arrays.
        if (value->kind == Kind::floating || value->kind == Kind::integer)
            out.params[name] = TensorData::from_floats({}, {static_cast<float>(value->kind == Kind::floating ? value->f : value->i)});
        else if (value->kind == Kind::tensor)
            out.params[name] = pickle::to_tensor_data(*value, out.where);
        else
            throw ModelFormatError(fmt::format("{}: TensorFlow variable '{}' is not a numpy array", out.where, name));
    }
    if (const Value* comps = net->state->get("components"); comps && comps->kind != Kind::none) {
        if (comps->kind != Kind::dict) throw ModelFormatError(out.where + ": TensorFlow components are not a dict");
        for (size_t k = 0; k + 1 < comps->items.size(); k += 2) {
            if (comps->items[k]->kind != Kind::string) throw ModelFormatError(out.where + ": TensorFlow component name is not a string");
            if (depth == 0) out.component_names.push_back(comps->items[k]->s);
            collect_variables(comps->items[k + 1], prefix + comps->items[k]->s + "/", out, depth + 1);
        }
    }
}

TfNetwork read_network(const Value* net, const std::string& path, const std::string& role) {
    TfNetwork n;
    n.where = fmt::format("{} ({})", path, role);
    if (!is_network(net) || !net->state || net->state->kind != Kind::dict) throw ModelFormatError(n.where + ": not a TensorFlow Network");
    n.version = field(net->state, "version", Kind::integer, n.where)->i;
    if (n.version < 4)
        throw ModelFormatError(fmt::format("{}: TensorFlow network version {} is older than 4 (StyleGAN or early StyleGAN2); "
                                           "legacy.py does not convert it either", n.where, n.version));
    n.kwargs = pickle_json(field(net->state, "static_kwargs", Kind::dict, n.where), n.where);
    collect_variables(net, "", n, 0);
    return n;
}

// legacy.py's kwarg(): the value, or `def` when absent, and `none` in place of an explicit None. Every
// name asked for is known; a static kwarg no rule asks for is refused, naming it.
class TfKwargs {
public:
    explicit TfKwargs(const TfNetwork& net) : net_(net) {}
    json operator()(const std::string& name, json def = nullptr, json none = nullptr) {
        known_.insert(name);
        const auto it = net_.kwargs.find(name);
        json v = it == net_.kwargs.end() ? std::move(def) : *it;
        return v.is_null() ? std::move(none) : v;
    }
    void refuse_unknown() const {
        for (auto it = net_.kwargs.begin(); it != net_.kwargs.end(); ++it)
            if (!known_.count(it.key()))
                throw ModelFormatError(fmt::format("{}: unknown TensorFlow kwarg '{}' (legacy.py refuses it too)", net_.where, it.key()));
    }

private:
    const TfNetwork& net_;
    std::set<std::string> known_;
};

json doubled(const json& fmap_base, const std::string& where) {
    if (!fmap_base.is_number_integer()) throw ModelFormatError(where + ": TensorFlow kwarg 'fmap_base' is not an integer");
    return fmap_base.get<int64_t>() * 2;
}

// Renames legacy.py applies: {prefix}lod{k} layers of the 'orig' architecture become {r}x{r} layers.
bool rename_lod(TfNetwork& net, const std::string& layer, int resolution) {
    const std::regex lod(layer + "_lod(\\d+)/(.*)");
    bool any = false;
    std::map<std::string, TensorData> renamed;
    for (const auto& [name, t] : net.params) {
        std::smatch m;
        if (!std::regex_match(name, m, lod)) continue;
        const int r = resolution >> std::stoi(m[1].str());
        renamed[fmt::format("{}x{}/{}/{}", r, r, layer, m[2].str())] = t;
        any = true;
    }
    for (auto& [name, t] : renamed) net.params[name] = t;
    return any;
}

int log2i(const std::string& r) { return static_cast<int>(std::lround(std::log2(std::stod(r)))); }

std::shared_ptr<Generator> convert_generator(TfNetwork net) {
    TfKwargs kwarg(net);
    json mapping = {{"num_layers", kwarg("mapping_layers", 8)},         {"embed_features", kwarg("label_fmaps")},
                    {"layer_features", kwarg("mapping_fmaps")},         {"activation", kwarg("mapping_nonlinearity", "lrelu")},
                    {"lr_multiplier", kwarg("mapping_lrmul", 0.01)},    {"w_avg_beta", kwarg("w_avg_beta", 0.995, 1)}};
    json synthesis = {{"channel_base", doubled(kwarg("fmap_base", 16384), net.where)}, {"channel_max", kwarg("fmap_max", 512)},
                      {"num_fp16_res", kwarg("num_fp16_res", 0)},  {"conv_clamp", kwarg("conv_clamp")},
                      {"architecture", kwarg("architecture", "skip")}, {"resample_filter", kwarg("resample_kernel", {1, 3, 3, 1})},
                      {"use_noise", kwarg("use_noise", true)},     {"activation", kwarg("nonlinearity", "lrelu")}};
    json kwargs = {{"z_dim", kwarg("latent_size", 512)},      {"c_dim", kwarg("label_size", 0)},
                   {"w_dim", kwarg("dlatent_size", 512)},     {"img_resolution", kwarg("resolution", 1024)},
                   {"img_channels", kwarg("num_channels", 3)}, {"mapping_kwargs", mapping}, {"synthesis_kwargs", synthesis}};
    for (const char* ignored : {"truncation_psi", "truncation_cutoff", "style_mixing_prob", "structure"}) kwarg(ignored);
    kwarg.refuse_unknown();
    if (!kwargs["img_resolution"].is_number_integer()) throw ModelFormatError(net.where + ": TensorFlow kwarg 'resolution' is not an integer");
    if (rename_lod(net, "ToRGB", kwargs["img_resolution"].get<int>())) kwargs["synthesis_kwargs"]["architecture"] = "orig";
    auto G = std::make_shared<Generator>(GeneratorConfig::from_kwargs_json(kwargs.dump(), net.where));

    const FileTensors tf(std::move(net.params), net.where, "TensorFlow variable");
    auto s = [](const std::smatch& m, const char* layer, const char* var) {
        return fmt::format("synthesis/{0}x{0}/{1}/{2}", m[1].str(), layer, var);
    };
    auto noise = [&](int index) { return tf.first(fmt::format("synthesis/noise{}", index), 4)[0]; };
    // Rules in legacy.py's order; the first that matches a name applies.
    const std::vector<ConversionRule> rules = {
        {std::regex(R"(mapping\.w_avg)"), [&](auto&) { return tf.get("dlatent_avg"); }},
        {std::regex(R"(mapping\.embed\.weight)"), [&](auto&) { return tf.dense("mapping/LabelEmbed/weight"); }},
        {std::regex(R"(mapping\.embed\.bias)"), [&](auto&) { return tf.get("mapping/LabelEmbed/bias"); }},
        {std::regex(R"(mapping\.fc(\d+)\.weight)"), [&](auto& m) { return tf.dense(fmt::format("mapping/Dense{}/weight", m[1].str())); }},
        {std::regex(R"(mapping\.fc(\d+)\.bias)"), [&](auto& m) { return tf.get(fmt::format("mapping/Dense{}/bias", m[1].str())); }},
        {std::regex(R"(synthesis\.b4\.const)"), [&](auto&) { return tf.first("synthesis/4x4/Const/const", 4); }},
        {std::regex(R"(synthesis\.b4\.conv1\.weight)"), [&](auto&) { return tf.conv("synthesis/4x4/Conv/weight"); }},
        {std::regex(R"(synthesis\.b4\.conv1\.bias)"), [&](auto&) { return tf.get("synthesis/4x4/Conv/bias"); }},
        {std::regex(R"(synthesis\.b4\.conv1\.noise_const)"), [&](auto&) { return noise(0); }},
        {std::regex(R"(synthesis\.b4\.conv1\.noise_strength)"), [&](auto&) { return tf.get("synthesis/4x4/Conv/noise_strength"); }},
        {std::regex(R"(synthesis\.b4\.conv1\.affine\.weight)"), [&](auto&) { return tf.dense("synthesis/4x4/Conv/mod_weight"); }},
        {std::regex(R"(synthesis\.b4\.conv1\.affine\.bias)"), [&](auto&) { return tf.get("synthesis/4x4/Conv/mod_bias") + 1; }},
        {std::regex(R"(synthesis\.b(\d+)\.conv0\.weight)"), [&](auto& m) { return tf.conv(s(m, "Conv0_up", "weight"), true); }},
        {std::regex(R"(synthesis\.b(\d+)\.conv0\.bias)"), [&](auto& m) { return tf.get(s(m, "Conv0_up", "bias")); }},
        {std::regex(R"(synthesis\.b(\d+)\.conv0\.noise_const)"), [&](auto& m) { return noise(log2i(m[1].str()) * 2 - 5); }},
        {std::regex(R"(synthesis\.b(\d+)\.conv0\.noise_strength)"), [&](auto& m) { return tf.get(s(m, "Conv0_up", "noise_strength")); }},
        {std::regex(R"(synthesis\.b(\d+)\.conv0\.affine\.weight)"), [&](auto& m) { return tf.dense(s(m, "Conv0_up", "mod_weight")); }},
        {std::regex(R"(synthesis\.b(\d+)\.conv0\.affine\.bias)"), [&](auto& m) { return tf.get(s(m, "Conv0_up", "mod_bias")) + 1; }},
        {std::regex(R"(synthesis\.b(\d+)\.conv1\.weight)"), [&](auto& m) { return tf.conv(s(m, "Conv1", "weight")); }},
        {std::regex(R"(synthesis\.b(\d+)\.conv1\.bias)"), [&](auto& m) { return tf.get(s(m, "Conv1", "bias")); }},
        {std::regex(R"(synthesis\.b(\d+)\.conv1\.noise_const)"), [&](auto& m) { return noise(log2i(m[1].str()) * 2 - 4); }},
        {std::regex(R"(synthesis\.b(\d+)\.conv1\.noise_strength)"), [&](auto& m) { return tf.get(s(m, "Conv1", "noise_strength")); }},
        {std::regex(R"(synthesis\.b(\d+)\.conv1\.affine\.weight)"), [&](auto& m) { return tf.dense(s(m, "Conv1", "mod_weight")); }},
        {std::regex(R"(synthesis\.b(\d+)\.conv1\.affine\.bias)"), [&](auto& m) { return tf.get(s(m, "Conv1", "mod_bias")) + 1; }},
        {std::regex(R"(synthesis\.b(\d+)\.torgb\.weight)"), [&](auto& m) { return tf.conv(s(m, "ToRGB", "weight")); }},
        {std::regex(R"(synthesis\.b(\d+)\.torgb\.bias)"), [&](auto& m) { return tf.get(s(m, "ToRGB", "bias")); }},
        {std::regex(R"(synthesis\.b(\d+)\.torgb\.affine\.weight)"), [&](auto& m) { return tf.dense(s(m, "ToRGB", "mod_weight")); }},
        {std::regex(R"(synthesis\.b(\d+)\.torgb\.affine\.bias)"), [&](auto& m) { return tf.get(s(m, "ToRGB", "mod_bias")) + 1; }},
        {std::regex(R"(synthesis\.b(\d+)\.skip\.weight)"), [&](auto& m) { return tf.conv(s(m, "Skip", "weight"), true); }},
        {std::regex(R"(.*\.resample_filter)"), nullptr},
    };
    populate(*G, rules, tf);
    return G;
}

std::shared_ptr<Discriminator> convert_discriminator(TfNetwork net) {
    TfKwargs kwarg(net);
    const json nonlinearity = kwarg("nonlinearity", "lrelu");
    json kwargs = {{"c_dim", kwarg("label_size", 0)},
                   {"img_resolution", kwarg("resolution", 1024)},
                   {"img_channels", kwarg("num_channels", 3)},
                   {"architecture", kwarg("architecture", "resnet")},
                   {"channel_base", doubled(kwarg("fmap_base", 16384), net.where)},
                   {"channel_max", kwarg("fmap_max", 512)},
                   {"num_fp16_res", kwarg("num_fp16_res", 0)},
                   {"conv_clamp", kwarg("conv_clamp")},
                   {"cmap_dim", kwarg("mapping_fmaps")},
                   {"block_kwargs",
                    {{"activation", nonlinearity}, {"resample_filter", kwarg("resample_kernel", {1, 3, 3, 1})},
                     {"freeze_layers", kwarg("freeze_layers", 0)}}},
                   {"mapping_kwargs",
                    {{"num_layers", kwarg("mapping_layers", 0)}, {"embed_features", kwarg("mapping_fmaps")},
                     {"layer_features", kwarg("mapping_fmaps")}, {"activation", nonlinearity},
                     {"lr_multiplier", kwarg("mapping_lrmul", 0.1)}}},
                   {"epilogue_kwargs",
                    {{"mbstd_group_size", kwarg("mbstd_group_size")}, {"mbstd_num_channels", kwarg("mbstd_num_features", 1)},
                     {"activation", nonlinearity}}}};
    kwarg("structure");
    kwarg.refuse_unknown();
    if (!kwargs["img_resolution"].is_number_integer()) throw ModelFormatError(net.where + ": TensorFlow kwarg 'resolution' is not an integer");
    if (rename_lod(net, "FromRGB", kwargs["img_resolution"].get<int>())) kwargs["architecture"] = "orig";
    auto D = std::make_shared<Discriminator>(DiscriminatorConfig::from_kwargs_json(kwargs.dump(), net.where));

    const FileTensors tf(std::move(net.params), net.where, "TensorFlow variable");
    auto layer = [](const std::smatch& m, const std::string& name, const char* var) {
        return fmt::format("{0}x{0}/{1}/{2}", m[1].str(), name, var);
    };
    auto conv_name = [](const std::smatch& m) { return m[2].str() == "0" ? std::string("Conv0") : "Conv" + m[2].str() + "_down"; };
    const std::vector<ConversionRule> rules = {
        {std::regex(R"(b(\d+)\.fromrgb\.weight)"), [&](auto& m) { return tf.conv(layer(m, "FromRGB", "weight")); }},
        {std::regex(R"(b(\d+)\.fromrgb\.bias)"), [&](auto& m) { return tf.get(layer(m, "FromRGB", "bias")); }},
        {std::regex(R"(b(\d+)\.conv(\d+)\.weight)"), [&](auto& m) { return tf.conv(layer(m, conv_name(m), "weight")); }},
        {std::regex(R"(b(\d+)\.conv(\d+)\.bias)"), [&](auto& m) { return tf.get(layer(m, conv_name(m), "bias")); }},
        {std::regex(R"(b(\d+)\.skip\.weight)"), [&](auto& m) { return tf.conv(layer(m, "Skip", "weight")); }},
        {std::regex(R"(mapping\.embed\.weight)"), [&](auto&) { return tf.dense("LabelEmbed/weight"); }},
        {std::regex(R"(mapping\.embed\.bias)"), [&](auto&) { return tf.get("LabelEmbed/bias"); }},
        {std::regex(R"(mapping\.fc(\d+)\.weight)"), [&](auto& m) { return tf.dense(fmt::format("Mapping{}/weight", m[1].str())); }},
        {std::regex(R"(mapping\.fc(\d+)\.bias)"), [&](auto& m) { return tf.get(fmt::format("Mapping{}/bias", m[1].str())); }},
        {std::regex(R"(b4\.conv\.weight)"), [&](auto&) { return tf.conv("4x4/Conv/weight"); }},
        {std::regex(R"(b4\.conv\.bias)"), [&](auto&) { return tf.get("4x4/Conv/bias"); }},
        {std::regex(R"(b4\.fc\.weight)"), [&](auto&) { return tf.dense("4x4/Dense0/weight"); }},
        {std::regex(R"(b4\.fc\.bias)"), [&](auto&) { return tf.get("4x4/Dense0/bias"); }},
        {std::regex(R"(b4\.out\.weight)"), [&](auto&) { return tf.dense("Output/weight"); }},
        {std::regex(R"(b4\.out\.bias)"), [&](auto&) { return tf.get("Output/bias"); }},
        {std::regex(R"(.*\.resample_filter)"), nullptr},
    };
    populate(*D, rules, tf);
    return D;
}

bool is_generator_network(const TfNetwork& net) {
    for (const std::string& c : net.component_names)
        if (c == "synthesis") return true;
    return false;
}

}  // namespace

bool is_tf_networks(const Value* root) {
    if (is_network(root)) return true;
    if (!root || root->kind != Kind::tuple || root->items.empty()) return false;
    for (const Value* v : root->items)
        if (!is_network(v)) return false;
    return true;
}

Model load_tf_networks(const Value* root, const std::string& path) {
    Model model;
    model.path = path;
    model.format = "TensorFlow StyleGAN2 pickle";
    model.config_source = "the TensorFlow networks' static_kwargs, converted with the rules of stylegan2-ada-pytorch's legacy.py";
    if (root->kind == Kind::tuple) {
        if (root->items.size() != 3)
            throw ModelFormatError(fmt::format("{}: a tuple of {} TensorFlow networks; a snapshot holds three (G, D, Gs)", path,
                                               root->items.size()));
        model.G = convert_generator(read_network(root->items[0], path, "G"));
        model.D = convert_discriminator(read_network(root->items[1], path, "D"));
        model.G_ema = convert_generator(read_network(root->items[2], path, "Gs"));
        return model;
    }
    // A lone network (some releases pickle only Gs): a generator when it has a synthesis component.
    TfNetwork net = read_network(root, path, "network");
    if (is_generator_network(net))
        model.G_ema = convert_generator(std::move(net));
    else
        model.D = convert_discriminator(std::move(net));
    return model;
}

}  // namespace latentkit::detail
