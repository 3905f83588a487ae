#include "latentkit/model_config.h"

#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <nlohmann/json.hpp>

#include "latentkit/error.h"

namespace latentkit {

// Option enums in architecture descriptions are written by their names (option_names.h).
template <class E>
void enum_to_json(nlohmann::json& j, E value) {
    j = option_name(value);
}
template <class E>
void enum_from_json(const nlohmann::json& j, E& value) {
    const auto v = option_from_name<E>(j.get<std::string>());
    if (!v) throw std::invalid_argument("not one of " + option_choices<E>());
    value = *v;
}
void to_json(nlohmann::json& j, Architecture a) { enum_to_json(j, a); }
void from_json(const nlohmann::json& j, Architecture& a) { enum_from_json(j, a); }
void to_json(nlohmann::json& j, Activation a) { enum_to_json(j, a); }
void from_json(const nlohmann::json& j, Activation& a) { enum_from_json(j, a); }

namespace {
using json = nlohmann::json;

bool is_pow2(int v) { return v >= 4 && (v & (v - 1)) == 0; }

// Reads keyword arguments of one reference constructor, refusing names it does not know.
class Kwargs {
public:
    Kwargs(const json& j, std::string where, const std::string& source, KwargsOrigin origin)
        : j_(j), where_(std::move(where)), source_(source), origin_(origin) {
        if (!j.is_object()) throw ModelFormatError(fmt::format("{}: {} arguments are not a mapping", source_, where_));
        for (auto it = j.begin(); it != j.end(); ++it) unused_.push_back(it.key());
    }
    template <class T>
    void get(const char* key, T& out) {
        if (!take(key)) return;
        try {
            out = j_.at(key).get<T>();
        } catch (const std::exception&) {
            throw bad(key);
        }
    }
    template <class T>
    void get_opt(const char* key, std::optional<T>& out) {
        if (!take(key)) return;
        if (j_.at(key).is_null()) {
            out.reset();
            return;
        }
        T v{};
        get_value(key, v);
        out = v;
    }
    /// Reads a nested kwargs dict (e.g. mapping_kwargs) with `fn`, refusing unknown names in it too.
    template <class Fn>
    void section(const char* key, const std::string& where, Fn fn) {
        if (!take(key)) return;
        Kwargs sub(j_.at(key), where, source_, origin_);
        fn(sub);
        sub.finish();
    }
    /// The raw value of `key` (marked as read), or nullptr when absent.
    const json* take_raw(const char* key) { return take(key) ? &j_.at(key) : nullptr; }
    void finish() const {
        if (!unused_.empty())
            throw ModelFormatError(fmt::format("{}: {} argument '{}' is not an option of {}'s networks (another architecture?)", source_,
                                               where_, unused_.front(),
                                               origin_ == KwargsOrigin::stylegan2_ada ? "stylegan2-ada-pytorch" : "the stylegan3 repo"));
    }

private:
    bool take(const char* key) {
        auto it = std::find(unused_.begin(), unused_.end(), key);
        if (it == unused_.end()) return false;
        unused_.erase(it);
        return true;
    }
    template <class T>
    void get_value(const char* key, T& out) {
        try {
            out = j_.at(key).get<T>();
        } catch (const std::exception&) {
            throw bad(key);
        }
    }
    ModelFormatError bad(const char* key) const {
        return ModelFormatError(fmt::format("{}: {} argument '{}' has an unexpected value {}", source_, where_, key, j_.at(key).dump()));
    }
    const json& j_;
    std::string where_;
    const std::string& source_;
    KwargsOrigin origin_;
    std::vector<std::string> unused_;
};

template <class T>
json opt_json(const std::optional<T>& v) {
    return v ? json(*v) : json(nullptr);
}

void read_mapping(Kwargs& k, MappingConfig& m) {
    k.get("num_layers", m.num_layers);
    k.get_opt("embed_features", m.embed_features);
    k.get_opt("layer_features", m.layer_features);
    k.get("activation", m.activation);
    k.get("lr_multiplier", m.lr_multiplier);
    k.get_opt("w_avg_beta", m.w_avg_beta);
}

json mapping_json(const MappingConfig& m, bool with_beta) {
    json j = {{"num_layers", m.num_layers}, {"activation", m.activation}, {"lr_multiplier", m.lr_multiplier}};
    j["embed_features"] = opt_json(m.embed_features);
    j["layer_features"] = opt_json(m.layer_features);
    if (with_beta) j["w_avg_beta"] = opt_json(m.w_avg_beta);
    return j;
}

json parse_json(const std::string& text, const std::string& source) {
    try {
        return json::parse(text);
    } catch (const std::exception& e) {
        throw ModelFormatError(source + ": architecture description is not valid JSON: " + e.what());
    }
}

int block_index(int res) {
    int k = 0;
    while ((4 << k) < res) ++k;
    return k;
}

int table_or_rule(const std::vector<int>& table, int res, int base, int max) {
    if (!table.empty()) {
        const size_t k = static_cast<size_t>(block_index(res));
        return k < table.size() ? table[k] : 0;
    }
    return std::min(base / res, max);
}

void check_table(const std::vector<int>& table, int img_resolution, const char* what) {
    if (table.empty()) return;
    if (table.size() != static_cast<size_t>(block_index(img_resolution) + 1))
        throw ArgumentError(fmt::format("{} channel table has {} entries for resolutions 4 to {}", what, table.size(), img_resolution));
}

// The fused_modconv_default argument: a bool or 'inference_only'.
std::string read_fused_default(const json& v, const std::string& source) {
    if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
    if (v.is_string() && v.get<std::string>() == "inference_only") return "inference_only";
    throw ModelFormatError(fmt::format("{}: argument 'fused_modconv_default' has an unexpected value {}", source, v.dump()));
}

json fused_default_json(const std::string& v) {
    if (v == "true" || v == "false") return v == "true";
    return v;
}
}  // namespace

std::optional<std::pair<int, int>> fit_channel_rule(const std::vector<int>& channels) {
    if (channels.empty()) return std::nullopt;
    const int max = *std::max_element(channels.begin(), channels.end());
    const int top = 4 << (channels.size() - 1);
    int base = max * top;
    for (size_t k = 0; k < channels.size(); ++k)
        if (channels[k] < max) {
            base = channels[k] * (4 << k);
            break;
        }
    for (size_t k = 0; k < channels.size(); ++k)
        if (std::min(base / (4 << k), max) != channels[k]) return std::nullopt;
    return std::make_pair(base, max);
}

int GeneratorConfig::channels_at(int res) const {
    return table_or_rule(synthesis.channels, res, synthesis.channel_base, synthesis.channel_max);
}

const char* GeneratorConfig::family_name() const { return family == GeneratorFamily::stylegan3 ? "StyleGAN3" : "StyleGAN2"; }

int GeneratorConfig::num_ws() const {
    if (family == GeneratorFamily::stylegan3) return stylegan3.num_layers + 2;
    int n = 0;
    for (int res = 4; res <= img_resolution; res *= 2) n += res == 4 ? 1 : 2;
    return n + 1;
}

void GeneratorConfig::validate() const {
    if (!is_pow2(img_resolution)) throw ArgumentError(fmt::format("resolution {} is not a power of two >= 4", img_resolution));
    if (z_dim < 0 || c_dim < 0 || w_dim <= 0 || img_channels <= 0 || mapping.num_layers < 1)
        throw ArgumentError("generator dimensions must be positive");
    if (z_dim == 0 && c_dim == 0) throw ArgumentError("generator needs z_dim or c_dim");
    if (family == GeneratorFamily::stylegan3) {
        const auto& t = stylegan3;
        if (t.num_layers < 1 || t.num_critical < 0 || t.num_critical >= t.num_layers)
            throw ArgumentError(fmt::format("StyleGAN3 num_layers {} and num_critical {} do not fit", t.num_layers, t.num_critical));
        if (t.channel_base < 1 || t.channel_max < 1 || t.conv_kernel < 1 || t.filter_size < 1 || t.lrelu_upsampling < 1 || t.margin_size < 0 ||
            !(t.first_cutoff > 0) || !(t.first_stopband > 0) || !(t.last_stopband_rel > 0))
            throw ArgumentError("StyleGAN3 synthesis options must be positive");
        return;
    }
    check_table(synthesis.channels, img_resolution, "generator");
    for (int res = 4; res <= img_resolution; res *= 2)
        if (channels_at(res) <= 0) throw ArgumentError(fmt::format("no channels at resolution {}", res));
}

namespace {
json stylegan3_json(const Stylegan3Config& t) {
    json j = {{"channel_base", t.channel_base},         {"channel_max", t.channel_max},        {"num_layers", t.num_layers},
              {"num_critical", t.num_critical},         {"first_cutoff", t.first_cutoff},      {"first_stopband", t.first_stopband},
              {"last_stopband_rel", t.last_stopband_rel}, {"margin_size", t.margin_size},      {"output_scale", t.output_scale},
              {"num_fp16_res", t.num_fp16_res},         {"conv_kernel", t.conv_kernel},        {"filter_size", t.filter_size},
              {"lrelu_upsampling", t.lrelu_upsampling}, {"use_radial_filters", t.use_radial_filters},
              {"magnitude_ema_beta", t.magnitude_ema_beta}};
    j["conv_clamp"] = opt_json(t.conv_clamp);
    return j;
}

// The stylegan3 repo's SynthesisNetwork and SynthesisLayer arguments (networks_stylegan3.py).
void read_stylegan3(Kwargs& k, Stylegan3Config& t) {
    k.get("channel_base", t.channel_base);
    k.get("channel_max", t.channel_max);
    k.get("num_layers", t.num_layers);
    k.get("num_critical", t.num_critical);
    k.get("first_cutoff", t.first_cutoff);
    k.get("first_stopband", t.first_stopband);
    k.get("last_stopband_rel", t.last_stopband_rel);
    k.get("margin_size", t.margin_size);
    k.get("output_scale", t.output_scale);
    k.get("num_fp16_res", t.num_fp16_res);
    k.get("conv_kernel", t.conv_kernel);
    k.get("filter_size", t.filter_size);
    k.get("lrelu_upsampling", t.lrelu_upsampling);
    k.get("use_radial_filters", t.use_radial_filters);
    k.get_opt("conv_clamp", t.conv_clamp);
    k.get("magnitude_ema_beta", t.magnitude_ema_beta);
}
}  // namespace

std::string GeneratorConfig::to_kwargs_json() const {
    if (family == GeneratorFamily::stylegan3) {
        json m = {{"num_layers", mapping.num_layers}, {"lr_multiplier", mapping.lr_multiplier}};
        m["w_avg_beta"] = opt_json(mapping.w_avg_beta);
        return json{{"z_dim", z_dim}, {"c_dim", c_dim}, {"w_dim", w_dim}, {"img_resolution", img_resolution},
                    {"img_channels", img_channels}, {"mapping_kwargs", m}, {"stylegan3_kwargs", stylegan3_json(stylegan3)}}
            .dump();
    }
    const auto& s = synthesis;
    json syn = {{"channel_base", s.channel_base}, {"channel_max", s.channel_max}, {"num_fp16_res", s.num_fp16_res},
                {"architecture", s.architecture}, {"resample_filter", s.resample_filter}, {"fp16_channels_last", s.fp16_channels_last},
                {"kernel_size", s.kernel_size}, {"use_noise", s.use_noise}, {"activation", s.activation}};
    syn["conv_clamp"] = opt_json(s.conv_clamp);
    if (!s.channels.empty()) syn["channels"] = s.channels;
    if (!s.fused_modconv_default.empty()) syn["fused_modconv_default"] = fused_default_json(s.fused_modconv_default);
    json j = {{"z_dim", z_dim}, {"c_dim", c_dim}, {"w_dim", w_dim}, {"img_resolution", img_resolution},
              {"img_channels", img_channels}, {"mapping_kwargs", mapping_json(mapping, true)}, {"synthesis_kwargs", syn}};
    return j.dump();
}

namespace {
// The synthesis options, read from synthesis_kwargs (stylegan2-ada) or the top level (stylegan3 repo).
void read_synthesis(Kwargs& k, SynthesisConfig& y, const std::string& source) {
    k.get("channel_base", y.channel_base);
    k.get("channel_max", y.channel_max);
    k.get("num_fp16_res", y.num_fp16_res);
    k.get("architecture", y.architecture);
    k.get("resample_filter", y.resample_filter);
    k.get_opt("conv_clamp", y.conv_clamp);
    k.get("fp16_channels_last", y.fp16_channels_last);
    k.get("kernel_size", y.kernel_size);
    k.get("use_noise", y.use_noise);
    k.get("activation", y.activation);
    k.get("channels", y.channels);
    if (const json* v = k.take_raw("fused_modconv_default")) y.fused_modconv_default = read_fused_default(*v, source);
}

void validated(const std::function<void()>& validate, const std::string& source) {
    try {
        validate();
    } catch (const ArgumentError& e) {
        throw ModelFormatError(source + ": " + e.what());
    }
}
}  // namespace

GeneratorConfig GeneratorConfig::from_kwargs_json(const std::string& text, const std::string& source, KwargsOrigin origin,
                                                  GeneratorFamily family) {
    const json j = parse_json(text, source);
    GeneratorConfig c;
    const bool sg3 = origin == KwargsOrigin::stylegan3_repo;
    if (j.is_object() && j.contains("stylegan3_kwargs")) family = GeneratorFamily::stylegan3;  // latentkit's own layout
    c.family = family;
    if (sg3 || family == GeneratorFamily::stylegan3) c.mapping.w_avg_beta = 0.998;
    if (family == GeneratorFamily::stylegan3) c.mapping.num_layers = 2;
    if (sg3) {
        c.synthesis.num_fp16_res = 4;
        c.synthesis.conv_clamp = 256;
    }
    Kwargs k(j, "Generator", source, origin);
    k.get("z_dim", c.z_dim);
    k.get("c_dim", c.c_dim);
    k.get("w_dim", c.w_dim);
    k.get("img_resolution", c.img_resolution);
    k.get("img_channels", c.img_channels);
    k.section("mapping_kwargs", "Generator mapping", [&](Kwargs& mk) {
        read_mapping(mk, c.mapping);
    });
    if (family == GeneratorFamily::stylegan3 && sg3)
        read_stylegan3(k, c.stylegan3);
    else if (family == GeneratorFamily::stylegan3)
        k.section("stylegan3_kwargs", "Generator synthesis", [&](Kwargs& sk) { read_stylegan3(sk, c.stylegan3); });
    else if (sg3)
        read_synthesis(k, c.synthesis, source);
    else
        k.section("synthesis_kwargs", "Generator synthesis", [&](Kwargs& sk) {
            read_synthesis(sk, c.synthesis, source);
        });
    k.finish();
    validated([&] { c.validate(); }, source);
    return c;
}

int DiscriminatorConfig::channels_at(int res) const { return table_or_rule(channels, res, channel_base, channel_max); }

void DiscriminatorConfig::validate() const {
    if (!is_pow2(img_resolution)) throw ArgumentError(fmt::format("resolution {} is not a power of two >= 4", img_resolution));
    if (c_dim < 0 || img_channels <= 0) throw ArgumentError("discriminator dimensions must be positive");
    check_table(channels, img_resolution, "discriminator");
    for (int res = 4; res <= img_resolution; res *= 2)
        if (channels_at(res) <= 0) throw ArgumentError(fmt::format("no channels at resolution {}", res));
}

std::string DiscriminatorConfig::to_kwargs_json() const {
    json j = {{"c_dim", c_dim}, {"img_resolution", img_resolution}, {"img_channels", img_channels}, {"architecture", architecture},
              {"channel_base", channel_base}, {"channel_max", channel_max}, {"num_fp16_res", num_fp16_res}};
    j["conv_clamp"] = opt_json(conv_clamp);
    j["cmap_dim"] = opt_json(cmap_dim);
    if (!channels.empty()) j["channels"] = channels;
    j["block_kwargs"] = {{"activation", activation}, {"resample_filter", resample_filter}, {"fp16_channels_last", fp16_channels_last},
                         {"freeze_layers", freeze_layers}};
    j["mapping_kwargs"] = mapping_json(mapping, false);
    j["epilogue_kwargs"] = {{"mbstd_num_channels", mbstd_num_channels}, {"activation", activation}};
    j["epilogue_kwargs"]["mbstd_group_size"] = opt_json(mbstd_group_size);
    return j.dump();
}

DiscriminatorConfig DiscriminatorConfig::from_kwargs_json(const std::string& text, const std::string& source, KwargsOrigin origin) {
    const json j = parse_json(text, source);
    DiscriminatorConfig c;
    if (origin == KwargsOrigin::stylegan3_repo) {
        c.num_fp16_res = 4;
        c.conv_clamp = 256;
    }
    Kwargs k(j, "Discriminator", source, origin);
    k.get("c_dim", c.c_dim);
    k.get("img_resolution", c.img_resolution);
    k.get("img_channels", c.img_channels);
    k.get("architecture", c.architecture);
    k.get("channel_base", c.channel_base);
    k.get("channel_max", c.channel_max);
    k.get("num_fp16_res", c.num_fp16_res);
    k.get_opt("conv_clamp", c.conv_clamp);
    k.get_opt("cmap_dim", c.cmap_dim);
    k.get("channels", c.channels);
    k.section("block_kwargs", "Discriminator block", [&](Kwargs& bk) {
        bk.get("activation", c.activation);
        bk.get("resample_filter", c.resample_filter);
        bk.get("fp16_channels_last", c.fp16_channels_last);
        bk.get("freeze_layers", c.freeze_layers);
    });
    k.section("mapping_kwargs", "Discriminator mapping", [&](Kwargs& mk) {
        read_mapping(mk, c.mapping);
    });
    k.section("epilogue_kwargs", "Discriminator epilogue", [&](Kwargs& ek) {
        ek.get_opt("mbstd_group_size", c.mbstd_group_size);
        ek.get("mbstd_num_channels", c.mbstd_num_channels);
        ek.get("activation", c.activation);
    });
    k.finish();
    validated([&] { c.validate(); }, source);
    return c;
}

}  // namespace latentkit
