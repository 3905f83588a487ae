#pragma once
// The viewer's work other than renders, as plain functions the dispatcher runs on its task thread:
// directions from the open model, a direction fitted to hand labels, direction and latent files.
#include <cstdint>
#include <string>
#include <vector>

#include "latentkit/directions.h"
#include "latentkit/option_names.h"
#include "latentkit/png.h"
#include "model_store.h"

namespace latentkit::viewer {

/// What a directions job makes.
enum class DirectionsJobKind { pca, sefa, samples };

}  // namespace latentkit::viewer

namespace latentkit {
template <>
struct OptionNames<viewer::DirectionsJobKind> {
    static constexpr const char* names[] = {"pca", "sefa", "samples"};
};
}  // namespace latentkit

namespace latentkit::viewer {

/// Directions of the open model (pca, sefa), or latents and thumbnails to label (samples).
struct DirectionsJob {
    DirectionsJobKind kind = DirectionsJobKind::pca;
    int components = 10;
    int samples = 10000;       ///< PCA samples (seeds 0..samples-1); thumbnails for samples
    int first_seed = 0;        ///< samples: seeds first_seed .. first_seed + samples - 1
    double psi = 1.0;          ///< samples: truncation
};

/// The answer to a DirectionsJob.
struct DirectionsResult {
    DirectionsJobKind kind = DirectionsJobKind::pca;
    DirectionSet set;                ///< pca, sefa
    std::vector<uint32_t> seeds;     ///< samples
    std::vector<float> w;            ///< samples: seeds.size() x w_dim
    std::vector<Image8> images;      ///< samples: RGB thumbnails at the model's resolution
};

/// Runs a directions job with `model` on the calling thread; throws on bad input.
DirectionsResult run_directions_job(const OpenModel& model, const DirectionsJob& job);

/// Fits a direction (logistic regression in W) to the marked samples (`w`: marks.size() x w_dim);
/// throws ArgumentError when fewer than 2 positive and 2 negative samples are marked.
DirectionSet fit_marked_direction(const std::vector<float>& w, const std::vector<int>& marks, int w_dim, const std::string& name);

/// Reads "file.json" or "file.json#name" (one direction of it), checked against `model` when one is open.
DirectionSet read_direction_spec(const std::string& spec, const ModelSummary& model);

/// Reads the first latent of a projected_w.npz ('w' [N, num_ws, w_dim]) as num_ws * w_dim floats;
/// throws ShapeError naming the file when it does not fit `model`.
std::vector<float> read_latent_file(const std::string& path, const ModelSummary& model);

}  // namespace latentkit::viewer
