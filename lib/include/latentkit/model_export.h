#pragma once
// Writing models for other software: latentkit's own .safetensors, rosinality stylegan2-pytorch's .pt
// checkpoint layout (what e4e, pSp, StyleCLIP and StyleGAN-NADA load), and NVIDIA's .pkl in the
// data-only layout both of NVIDIA's repos convert (their scripts, the visualizer, PTI, DragGAN), and the
// generator as an ONNX graph of standard operators (ONNX Runtime, OpenVINO, TensorRT, browsers). Every
// file is written to a temporary name and renamed.
#include <optional>
#include <string>

#include "latentkit/model_io.h"
#include "latentkit/option_names.h"

namespace latentkit {

/// The formats export_model writes.
enum class ExportFormat { safetensors, pt, pkl, onnx };
template <>
struct OptionNames<ExportFormat> {
    static constexpr const char* names[] = {"safetensors", "pt", "pkl", "onnx"};
};

/// Which part of the generator an ONNX file holds: z (and c), psi, truncation_cutoff -> img; the same
/// -> ws; or ws -> img.
enum class OnnxPart { full, mapping, synthesis };
template <>
struct OptionNames<OnnxPart> {
    static constexpr const char* names[] = {"full", "mapping", "synthesis"};
};

/// How export_model writes.
struct ExportOptions {
    std::optional<ExportFormat> format;  ///< unset: from the file name's extension
    bool g_ema_only = false;             ///< write only the generator to explore (G_ema)
    OnnxPart onnx_part = OnnxPart::full;  ///< .onnx: which part of G_ema
    /// .onnx, StyleGAN2: one unit-variance noise input per layer ("noise0", ... [N or 1, 1, R, R]) instead
    /// of the model's constant noise built in.
    bool onnx_noise_inputs = false;
};

/// Whether this build writes ONNX (built with the ONNX library, Debian libonnx-dev).
bool onnx_export_available();

/// The format a file name's extension asks for; throws ArgumentError naming the file otherwise.
ExportFormat export_format_for(const std::string& path);

/// Writes `model` as `options.format`. A model the format cannot hold is refused with a one-line
/// ModelFormatError naming the file and what is missing (.pt: StyleGAN3, conditional models, gray
/// images, 'orig'/'resnet' generators; .pkl: StyleGAN3, models without a discriminator,
/// channel widths that follow no channel_base/channel_max rule; .onnx: a model without a generator, or a
/// build without ONNX); what it holds only approximately is written with a warning (log_warn), e.g.
/// channel widths outside rosinality's table, or a conv_clamp it does not apply. The ONNX graph
/// (opset 17, standard operators, weights as initializers, batch size free) passes onnx::checker.
void export_model(const std::string& path, const Model& model, const ExportOptions& options = {});

}  // namespace latentkit
