#pragma once
// Helpers shared by the latentkit subcommands.
#include <CLI/CLI.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "latentkit/model_io.h"

namespace c10 {
struct Device;
}

namespace latentkit::tools {

/// Parses "0-3,42" into seeds (each in 0..2^32-1); throws ArgumentError when empty or malformed.
std::vector<uint32_t> parse_seeds(const std::string& text);

/// Parses "cpu", "cuda", "cuda:N" or "auto"; throws ArgumentError when CUDA is asked for but unavailable.
c10::Device parse_device(const std::string& text);

/// Loads the model named by --model, logging what was loaded.
Model load_model_arg(const std::string& path);

/// Creates `dir` (and parents) if needed; throws IoError naming it when that fails or it is not writable.
void ensure_output_dir(const std::string& dir);

/// Registration of each subcommand on the main app.
void register_info(CLI::App& app);
void register_generate(CLI::App& app);
void register_convert(CLI::App& app);
void register_bench(CLI::App& app);

}  // namespace latentkit::tools
