// latentkit export (also `convert`): any model latentkit reads -> .safetensors, rosinality .pt, NVIDIA .pkl or ONNX.
#include <fmt/format.h>

#include "common.h"
#include "export_web.h"
#include "latentkit/error.h"
#include "latentkit/log.h"
#include "latentkit/model_export.h"

namespace latentkit::tools {

void register_export(CLI::App& app) {
    struct Opts {
        std::string input, output;
        std::optional<ExportFormat> format;
        bool g_ema_only = false, noise_inputs = false;
        OnnxPart part = OnnxPart::full;
        std::vector<std::string> info, directions;
        bool web = false;
        std::string title = "latentkit";
    };
    auto opts = std::make_shared<Opts>();
    auto* cmd = app.add_subcommand("export", "Write a model for other software: latentkit .safetensors, a rosinality stylegan2-pytorch "
                                             ".pt checkpoint (e4e, pSp, StyleCLIP, StyleGAN-NADA), an NVIDIA .pkl (their scripts, "
                                             "the visualizer, PTI, DragGAN) or the generator as ONNX (ONNX Runtime, OpenVINO, TensorRT)");
    cmd->alias("convert");
    cmd->add_option("input", opts->input, "Model to read (any kind latentkit reads, or a URL)")->required();
    cmd->add_option("output", opts->output, "File to write (.safetensors, .pt, .pkl or .onnx), or with --format web a folder")->required();
    std::vector<std::string> formats(std::begin(OptionNames<ExportFormat>::names), std::end(OptionNames<ExportFormat>::names));
    formats.push_back("web");
    cmd->add_option_function<std::string>(
           "--format",
           [opts](const std::string& s) {
               opts->web = s == "web";
               if (!opts->web) opts->format = *option_from_name<ExportFormat>(s);
           },
           "Output format: " + option_choices<ExportFormat>() + " (default: from the output's extension), or web: a static page that runs the "
           "model in the browser (ONNX Runtime Web)")
        ->check(CLI::IsMember(formats));
    cmd->add_option("--directions", opts->directions, "web: direction files (FILE or FILE#NAME) for the page's sliders; repeatable");
    cmd->add_option("--title", opts->title, "web: the page's title");
    cmd->add_flag("--g-ema-only", opts->g_ema_only, "Keep only G_ema (enough for exploring; smaller)");
    const std::vector<std::string> parts(std::begin(OptionNames<OnnxPart>::names), std::end(OptionNames<OnnxPart>::names));
    cmd->add_option_function<std::string>(
           "--part", [opts](const std::string& s) { opts->part = *option_from_name<OnnxPart>(s); },
           "ONNX: full (z, c, psi, truncation_cutoff -> img), mapping (-> ws) or synthesis (ws -> img); default full")
        ->check(CLI::IsMember(parts));
    cmd->add_flag("--noise-inputs", opts->noise_inputs,
                  "ONNX, StyleGAN2: one unit-variance noise input per layer (noise0, ...; default: the model's constant noise)");
    cmd->add_option("--info", opts->info, "Set a metadata entry KEY=VALUE (description, licence, training, ...); .safetensors only; repeatable");
    cmd->callback([opts]() {
        const std::string& out = opts->output;
        if (opts->web) {
            if (opts->part != OnnxPart::full || opts->noise_inputs || opts->g_ema_only || !opts->info.empty())
                throw ArgumentError("--part, --noise-inputs, --g-ema-only and --info do not apply to --format web");
            export_web(load_model_arg(opts->input), out, opts->directions, opts->title);
            log_info(fmt::format("wrote {} (a static page: serve the folder, e.g. python3 -m http.server -d {})", out, out));
            return;
        }
        if (!opts->directions.empty() || opts->title != "latentkit") throw ArgumentError("--directions and --title apply to --format web only");
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
        eo.onnx_part = opts->part;
        eo.onnx_noise_inputs = opts->noise_inputs;
        if (format != ExportFormat::onnx && (opts->part != OnnxPart::full || opts->noise_inputs))
            throw ArgumentError("--part and --noise-inputs apply to .onnx files only");
        export_model(out, m, eo);
        log_info(fmt::format("wrote {} ({})", out, option_name(format)));
    });
}

}  // namespace latentkit::tools
