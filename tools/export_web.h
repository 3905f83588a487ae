#pragma once
// `latentkit export MODEL DIR --format web`: a static folder that runs the model in the browser.
#include <string>
#include <vector>

#include "latentkit/model_io.h"

namespace latentkit::tools {

/// Writes DIR: index.html and latentkit.js (web/), mapping.onnx and synthesis.onnx, ONNX Runtime Web's
/// files, latentkit-page.json (the model's sizes, its StyleGAN3 transform, the title) and, with
/// `directions`, directions.json. DIR must not exist or be empty; it appears whole or not at all.
void export_web(const Model& model, const std::string& dir, const std::vector<std::string>& directions, const std::string& title);

}  // namespace latentkit::tools
