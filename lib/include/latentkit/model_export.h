#pragma once
// Writing models for other software: latentkit's own .safetensors, rosinality stylegan2-pytorch's .pt
// checkpoint layout (what e4e, pSp, StyleCLIP and StyleGAN-NADA load), and NVIDIA's .pkl in the
// data-only layout both of NVIDIA's repos convert (their scripts, the visualizer, PTI, DragGAN). Every file is written to a
// temporary name and renamed.
#include <optional>
#include <string>

#include "latentkit/model_io.h"
#include "latentkit/option_names.h"

namespace latentkit {

/// The formats export_model writes.
enum class ExportFormat { safetensors, pt, pkl };
template <>
struct OptionNames<ExportFormat> {
    static constexpr const char* names[] = {"safetensors", "pt", "pkl"};
};

/// How export_model writes.
struct ExportOptions {
    std::optional<ExportFormat> format;  ///< unset: from the file name's extension
    bool g_ema_only = false;             ///< write only the generator to explore (G_ema)
};

/// The format a file name's extension asks for; throws ArgumentError naming the file otherwise.
ExportFormat export_format_for(const std::string& path);

/// Writes `model` as `options.format`. A model the format cannot hold is refused with a one-line
/// ModelFormatError naming the file and what is missing (.pt: StyleGAN3, conditional models, gray
/// images, 'orig'/'resnet' generators; .pkl: StyleGAN3, models without a discriminator,
/// channel widths that follow no channel_base/channel_max rule); what it holds only approximately is written with a warning
/// (log_warn), e.g. channel widths outside rosinality's table, or a conv_clamp it does not apply.
void export_model(const std::string& path, const Model& model, const ExportOptions& options = {});

}  // namespace latentkit
