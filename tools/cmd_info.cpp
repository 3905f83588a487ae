// latentkit info: what a model file holds.
#include <fmt/format.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "common.h"
#include "latentkit/networks.h"

namespace latentkit::tools {

namespace {
using Json = nlohmann::ordered_json;

// The generator's architecture.
void describe_generator(const GeneratorConfig& c, Json& j) {
    j["kind"] = fmt::format("{} generator", c.family_name());
    j["resolution"] = c.img_resolution;
    j["channels"] = c.img_channels;
    j["z_dim"] = c.z_dim;
    j["w_dim"] = c.w_dim;
    j["c_dim"] = c.c_dim;
    j["num_ws"] = c.num_ws();
    j["mapping_layers"] = c.mapping.num_layers;
    auto clamp_json = [](const std::optional<double>& v) { return v ? Json(*v) : Json(nullptr); };
    if (c.family == GeneratorFamily::stylegan3) {
        const auto& t = c.stylegan3;
        j["architecture"] = t.use_radial_filters || t.conv_kernel == 1 ? "StyleGAN3-R (rotation equivariant)" : "StyleGAN3-T (translation equivariant)";
        j["layers"] = t.num_layers;
        j["channel_base"] = t.channel_base;
        j["channel_max"] = t.channel_max;
        j["num_fp16_res"] = t.num_fp16_res;
        j["conv_clamp"] = clamp_json(t.conv_clamp);
    } else {
        j["architecture"] = option_name(c.synthesis.architecture);
        j["channel_base"] = c.synthesis.channel_base;
        j["channel_max"] = c.synthesis.channel_max;
        j["num_fp16_res"] = c.synthesis.num_fp16_res;
        j["conv_clamp"] = clamp_json(c.synthesis.conv_clamp);
    }
}

// Everything `info` says about a model, in the order it says it.
Json describe_model(const Model& m) {
    Json j;
    j["file"] = m.path;
    j["format"] = m.format;
    if (!m.converted_from.empty()) j["converted_from"] = m.converted_from;
    if (!m.config_source.empty()) j["configuration"] = m.config_source;
    std::vector<std::string> nets;
    if (m.G_ema) nets.push_back("G_ema");
    if (m.G) nets.push_back("G");
    if (m.D) nets.push_back("D");
    j["networks"] = nets;
    if (m.G_ema || m.G) describe_generator(m.generator()->config, j);
    else j["kind"] = "StyleGAN2 discriminator only";
    Json params;
    if (m.G_ema) params["G_ema"] = count_parameters(*m.G_ema);
    if (m.G) params["G"] = count_parameters(*m.G);
    if (m.D) params["D"] = count_parameters(*m.D);
    j["parameters"] = params;
    if (m.augment_p) j["augment_p"] = *m.augment_p;
    if (!m.training_set_kwargs.empty()) {
        auto kwargs = Json::parse(m.training_set_kwargs, nullptr, false);
        j["training_set_kwargs"] = kwargs.is_discarded() ? Json(m.training_set_kwargs) : kwargs;
    }
    if (!m.info.empty()) j["info"] = m.info;
    if (!m.notes.empty()) j["notes"] = m.notes;
    return j;
}

// One "key  value" line per entry; lists as comma-separated text.
void print_description(const Json& j) {
    for (auto it = j.begin(); it != j.end(); ++it) {
        const auto& v = it.value();
        std::string text = v.is_string() ? v.get<std::string>() : v.dump();
        if (v.is_number_float()) text = fmt::format("{:.6g}", v.get<double>());
        if (it.key() == "networks") text = fmt::format("{}", fmt::join(v.get<std::vector<std::string>>(), ", "));
        if (it.key() == "notes") text = fmt::format("{}", fmt::join(v.get<std::vector<std::string>>(), "; "));
        if (it.key() == "parameters") {
            std::vector<std::string> parts;
            for (auto p = v.begin(); p != v.end(); ++p) parts.push_back(fmt::format("{} {}", p.key(), p.value().get<int64_t>()));
            text = fmt::format("{}", fmt::join(parts, ", "));
        }
        fmt::print("{:<20} {}\n", it.key(), text);
    }
}
}  // namespace

void register_info(CLI::App& app) {
    struct Opts {
        std::string model;
        bool json = false;
    };
    auto opts = std::make_shared<Opts>();
    auto* cmd = app.add_subcommand("info", "Show what a model file holds");
    cmd->add_option("model", opts->model, kModelHelp);
    cmd->add_flag("--json", opts->json, "Print JSON");
    cmd->callback([opts]() {
        const Json j = describe_model(load_model_arg(opts->model));
        if (opts->json) std::cout << j.dump(2) << "\n";
        else print_description(j);
    });
}

}  // namespace latentkit::tools
