// latentkit convert: reference .pkl (or any readable model) -> latentkit .safetensors.
#include <fmt/format.h>

#include "common.h"
#include "latentkit/error.h"
#include "latentkit/log.h"

namespace latentkit::tools {

void register_convert(CLI::App& app) {
    struct Opts {
        std::string input, output;
        bool g_ema_only = false;
        std::vector<std::string> info;
    };
    auto opts = std::make_shared<Opts>();
    auto* cmd = app.add_subcommand("convert", "Convert a model (e.g. a reference .pkl) to latentkit .safetensors");
    cmd->add_option("input", opts->input, "Model to read (.pkl or .safetensors)")->required();
    cmd->add_option("output", opts->output, "File to write (.safetensors)")->required();
    cmd->add_flag("--g-ema-only", opts->g_ema_only, "Keep only G_ema (enough for exploring; smaller)");
    cmd->add_option("--info", opts->info, "Set a metadata entry KEY=VALUE (description, licence, training, ...); repeatable");
    cmd->callback([opts]() {
        const std::string& out = opts->output;
        if (out.size() < 12 || out.compare(out.size() - 12, 12, ".safetensors") != 0)
            throw ArgumentError(out + ": the output must end in .safetensors");
        Model m = load_model_arg(opts->input);
        for (const std::string& item : opts->info) {
            const auto eq = item.find('=');
            if (eq == std::string::npos || eq == 0) throw ArgumentError("--info " + item + ": expected KEY=VALUE");
            m.info[item.substr(0, eq)] = item.substr(eq + 1);
        }
        SaveOptions so;
        so.g_ema_only = opts->g_ema_only;
        save_model(out, m, so);
        log_info(fmt::format("wrote {}", out));
    });
}

}  // namespace latentkit::tools
