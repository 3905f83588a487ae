// export_model: one entry for every format latentkit writes (the `export` and `convert` commands).
#include "latentkit/model_export.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "latentkit/error.h"
#include "model_loading.h"

namespace latentkit {

ExportFormat export_format_for(const std::string& path) {
    std::string ext = std::filesystem::path(path).extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    if (ext == ".safetensors") return ExportFormat::safetensors;
    if (ext == ".pt" || ext == ".pth") return ExportFormat::pt;
    if (ext == ".pkl") return ExportFormat::pkl;
    if (ext == ".onnx") return ExportFormat::onnx;
    throw ArgumentError(fmt::format("{}: no export format for '{}' files (.safetensors, .pt, .pkl or .onnx): name the file so, or give the format", path,
                                    ext.empty() ? "extension-less" : ext));
}

bool onnx_export_available() { return LATENTKIT_HAVE_ONNX != 0; }

void export_model(const std::string& path, const Model& model, const ExportOptions& options) {
    const ExportFormat format = options.format ? *options.format : export_format_for(path);
    switch (format) {
        case ExportFormat::safetensors: {
            SaveOptions so;
            so.g_ema_only = options.g_ema_only;
            save_model(path, model, so);
            return;
        }
        case ExportFormat::pt:
            detail::write_rosinality(path, model, options.g_ema_only);
            return;
        case ExportFormat::pkl:
            if (options.g_ema_only) throw ArgumentError(Message() << path + ": an NVIDIA .pkl holds G, D and G_ema (" << field("ExportOptions.g_ema_only") << " does not apply)");
            detail::write_nvidia_pkl(path, model);
            return;
        case ExportFormat::onnx:
#if LATENTKIT_HAVE_ONNX
            detail::write_onnx(path, model, options);
            return;
#else
            throw ArgumentError(path + ": this latentkit was built without ONNX (install libonnx-dev and rebuild)");
#endif
    }
}

}  // namespace latentkit
