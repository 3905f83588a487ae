// latentkit blend: coarse layers from one model, fine layers from a fine-tuned copy (layer swapping).
#include <fmt/format.h>

#include "common.h"
#include "latentkit/blend.h"
#include "latentkit/log.h"
#include "latentkit/model_export.h"

namespace latentkit::tools {

void register_blend(CLI::App& app) {
    struct Opts {
        std::string base, detail, out;
        BlendOptions blend;
    };
    auto o = std::make_shared<Opts>();
    auto* cmd = app.add_subcommand("blend", "Blend two models of one architecture: synthesis blocks below --from-res from BASE, "
                                            "from there up from DETAIL (layer swapping, as 'toonified' models are made)");
    cmd->add_option("base", o->base, "Model of the coarse layers (and, by default, the mapping)")->required();
    cmd->add_option("detail", o->detail, "Model of the fine layers, e.g. BASE fine-tuned on other images")->required();
    cmd->add_option("out", o->out, "Blended model to write (.safetensors, .pt or .onnx)")->required();
    cmd->add_option("--from-res", o->blend.from_resolution, "First resolution taken from DETAIL (4: all of its synthesis; above the "
                                                           "model's resolution: none)")->required()->check(CLI::Range(1, 1 << 16));
    cmd->add_option("--width", o->blend.width, "Smooth transition over this many resolutions (octaves) around --from-res; 0: a hard switch")
        ->check(at_least(0));
    add_enum_option(cmd, "--mapping", o->blend.mapping, "Mapping network (and w_avg) of the base or the detail model");
    cmd->callback([o]() {
        const Model base = load_model_arg(o->base), detail = load_model_arg(o->detail);
        const Model blended = blend_models(base, detail, o->blend);
        ExportOptions eo;
        eo.g_ema_only = export_format_for(o->out) != ExportFormat::pkl;  // a .pkl needs a D: refused in one line
        export_model(o->out, blended, eo);
        log_info(fmt::format("wrote {} ({} below {}x{}, {} from there up{})", o->out, o->base, o->blend.from_resolution, o->blend.from_resolution,
                             o->detail, o->blend.width > 0 ? fmt::format(", over {} octaves", o->blend.width) : ""));
    });
}

}  // namespace latentkit::tools
