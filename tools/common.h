#pragma once
// Helpers shared by the latentkit subcommands.
#include <CLI/CLI.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "latentkit/device.h"
#include "latentkit/error.h"
#include "latentkit/model_config.h"
#include "latentkit/latent_files.h"
#include "latentkit/model_io.h"
#include "latentkit/render.h"
#include "latentkit/option_names.h"

namespace c10 {
struct Device;
}
namespace at {
class Tensor;
}

namespace latentkit {
enum class NoiseMode;
struct LossWeights;
}

namespace latentkit::tools {

/// Parses a list of numbers and inclusive ranges ("0-3,42") for `option`, each at most `max_value`;
/// throws ArgumentError when empty or malformed.
std::vector<uint64_t> parse_ranges(const std::string& text, const std::string& option, uint64_t max_value);

/// Parses "0-3,42" into seeds (each in 0..2^32-1).
std::vector<uint32_t> parse_seeds(const std::string& text, const std::string& option = "--seeds");

/// Parses a layer list ("0-5") for a model with `num_ws` layers.
std::vector<int> parse_layers(const std::string& text, int num_ws, const std::string& option = "--layers");

/// Columns and rows of an image grid.
struct GridSize {
    int cols = 1, rows = 1;
};

/// Parses "COLSxROWS" for `option` (at most 256 cells); "" is 1x1. Throws ArgumentError otherwise.
GridSize parse_grid(const std::string& text, const std::string& option = "--grid");

/// Help text of every --model option that falls back to the default model.
inline constexpr const char* kModelHelp =
    "Model file or http(s) URL (.pkl, .pt or .safetensors; default: $LATENTKIT_MODEL, else the bundled emoji model)";

/// Loads the model named by --model (a path, or a URL downloaded once into the cache with a progress
/// bar), logging what was loaded and the loader's notes; an empty path loads the default model
/// (io::default_model) and says so.
Model load_model_arg(const std::string& path);

/// Remembers the (sub)command being run; main calls it once the command line is parsed, so that the
/// helpers below can tell which options were given.
void set_invocation(const CLI::App& app);

/// True when the command being run was given `option` (e.g. "--noise-mode").
bool option_given(const std::string& option);

/// The render options a command offers (add_render_options).
enum RenderFlag : unsigned {
    kTruncCutoff = 1,  ///< --trunc-cutoff -> RenderSpec::cutoff
    kClass = 2,        ///< --class -> RenderSpec::class_index
    kNoiseMode = 4,    ///< --noise-mode const|random|none -> RenderSpec::noise_mode
    kNoiseSeed = 8,    ///< --noise-seed -> RenderSpec::noise_seed
    kTransform = 16,   ///< --translate X,Y and --rotate DEG -> RenderSpec::translate_x/_y, rotate (StyleGAN3)
};

/// Adds the options in `which` (RenderFlag bits), each bound to its field of `spec`.
void add_render_options(CLI::App* cmd, RenderSpec& spec, unsigned which);

/// Checks the spec's options against the model before any work: --translate and --rotate only for
/// StyleGAN3, and --class for its classes when latents are mapped (`mapped`). Throws ArgumentError.
void check_render_options(const RenderSpec& spec, const GeneratorConfig& config, bool mapped = true);

/// The folder of the page's files (index.html, latentkit.js): $LATENTKIT_WEB_DIR, the source tree's web/
/// or the installed share/latentkit/web. Throws IoError when none holds index.html.
std::string web_dir();

/// The folder of ONNX Runtime Web's files (ort.min.js and its WASM): $LATENTKIT_ORT_WEB_DIR, the source
/// tree's node_modules/onnxruntime-web/dist or the installed share/latentkit/web/ort. Throws IoError.
std::string ort_web_dir();

/// A model location as a local file: URLs are downloaded into the cache (with a progress bar).
std::string model_file_arg(const std::string& location);

/// Creates `dir` (and parents) if needed; throws IoError naming it when that fails or it is not writable.
void ensure_output_dir(const std::string& dir);

/// Parses --loss items "lpips", "discriminator", "pixel", each optionally "=WEIGHT".
LossWeights parse_losses(const std::vector<std::string>& items);

/// "lpips=1,pixel=0.5": the terms with a positive weight.
std::string describe_losses(const LossWeights& weights);

/// Peak memory in MiB: the process's peak resident set on the CPU, the peak of allocated tensors on
/// CUDA (-1 when this build cannot read CUDA allocator statistics).
double peak_memory_mib(const c10::Device& device);

/// Starts a new peak for peak_memory_mib on CUDA (no-op on the CPU).
void reset_peak_memory(const c10::Device& device);

/// The flag that sets a library option field ("TrainOptions.batch_gpu" -> "--batch-gpu"); a field
/// this tool has no flag for keeps its library name.
std::string flag_of(const std::string& field);

/// A library message with its fields written as this tool's flags.
std::string describe(const Message& message);

/// Throws ArgumentError naming the option when a floating-point option of `app` or its chosen
/// subcommands was given NaN or an infinity.
void check_finite_options(const CLI::App& app);

/// Validator: a number of at least `min`.
CLI::Validator at_least(double min);

/// Validator: a number greater than `min`.
CLI::Validator above(double min);

/// --model,-m: a model file or URL (an empty value loads the default model).
CLI::Option* add_model_option(CLI::App* cmd, std::string& model, const std::string& help = kModelHelp);

/// --device: cpu, cuda, cuda:N or auto (checked for its form; device_from_name checks CUDA when run).
CLI::Option* add_device_option(CLI::App* cmd, std::string& device, const std::string& help = "cpu, cuda, cuda:N or auto");

/// --seeds,-s: numbers and ranges such as 0-3,42, checked as parse_seeds reads them.
CLI::Option* add_seeds_option(CLI::App* cmd, std::string& seeds, const std::string& help);

/// --trunc: truncation psi (one number, or a list where `psi` is a vector); any finite number.
template <class T>
CLI::Option* add_trunc_option(CLI::App* cmd, T& psi, const std::string& help = "Truncation psi (1 = none)") {
    return cmd->add_option("--trunc", psi, help);
}

/// --outdir,-o: the output folder (required).
CLI::Option* add_outdir_option(CLI::App* cmd, std::string& dir, const std::string& help = "Output folder");

/// An option taking one of the names of an option enum (option_names.h), listed in the help text.
template <class E>
CLI::Option* add_enum_option(CLI::App* cmd, const std::string& name, E& value, const std::string& help) {
    std::vector<std::string> names(std::begin(OptionNames<E>::names), std::end(OptionNames<E>::names));
    for (const auto& [alias, v] : OptionAliases<E>::entries)
        if (alias) names.emplace_back(alias);
    auto* opt = cmd->add_option_function<std::string>(name, [&value](const std::string& s) { value = *option_from_name<E>(s); },
                                                      help);
    opt->check(CLI::IsMember(names))->default_str(option_name(value));
    return opt;
}

/// Registration of each subcommand on the main app.
void register_info(CLI::App& app);
void register_generate(CLI::App& app);
void register_export(CLI::App& app);
void register_bench(CLI::App& app);
void register_morph(CLI::App& app);
void register_style_mix(CLI::App& app);
void register_project(CLI::App& app);
void register_align(CLI::App& app);
void register_directions(CLI::App& app);
void register_edit(CLI::App& app);
void register_dataset(CLI::App& app);
void register_train(CLI::App& app);
void register_nearest(CLI::App& app);
void register_serve(CLI::App& app);
void register_blend(CLI::App& app);
void register_curate(CLI::App& app);

}  // namespace latentkit::tools
