// latentkit export (also `convert`): any model latentkit reads -> .safetensors or rosinality .pt.
#include <fmt/format.h>

#include "common.h"
#include "latentkit/error.h"
#include "latentkit/log.h"
#include "latentkit/model_export.h"

namespace latentkit::tools {

void register_export(CLI::App& app) {
    struct Opts {
        std::string input, output;
        std::optional<ExportFormat> format;
        bool g_ema_only = false;
        std::vector<std::string> info;
    };
    auto opts = std::make_shared<Opts>();
    auto* cmd = app.add_subcommand("export", "Write a model for other software: latentkit .safetensors, or a rosinality stylegan2-pytorch "
                                             ".pt checkpoint (e4e, pSp, StyleCLIP, StyleGAN-NADA)");
    cmd->alias("convert");
    cmd->add_option("input", opts->input, "Model to read (any kind latentkit reads, or a URL)")->required();
    cmd->add_option("output", opts->output, "File to write (.safetensors or .pt)")->required();
    const std::vector<std::string> formats(std::begin(OptionNames<ExportFormat>::names), std::end(OptionNames<ExportFormat>::names));
    cmd->add_option_function<std::string>(
           "--format", [opts](const std::string& s) { opts->format = *option_from_name<ExportFormat>(s); },
           "Output format: " + option_choices<ExportFormat>() + " (default: from the output's extension)")
        ->check(CLI::IsMember(formats));
    cmd->add_flag("--g-ema-only", opts->g_ema_only, "Keep only G_ema (enough for exploring; smaller)");
    cmd->add_option("--info", opts->info, "Set a metadata entry KEY=VALUE (description, licence, training, ...); .safetensors only; repeatable");
    cmd->callback([opts]() {
        const std::string& out = opts->output;
        const ExportFormat format = opts->format ? *opts->format : export_format_for(out);
        if (!opts->info.empty() && format != ExportFormat::safetensors)
            throw ArgumentError("--info: metadata goes into .safetensors files only");
        Model m = load_model_arg(opts->input);
        for (const std::string& item : opts->info) {
            const auto eq = item.find('=');
            if (eq == std::string::npos || eq == 0) throw ArgumentError("--info " + item + ": expected KEY=VALUE");
            m.info[item.substr(0, eq)] = item.substr(eq + 1);
        }
        ExportOptions eo;
        eo.format = format;
        eo.g_ema_only = opts->g_ema_only;
        export_model(out, m, eo);
        log_info(fmt::format("wrote {} ({})", out, option_name(format)));
    });
}

}  // namespace latentkit::tools
