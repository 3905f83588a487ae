#pragma once
// Image-quality metrics of a generator against its training data, as the reference metrics:
// FID and KID on the pool features of a TorchScript Inception network the user provides
// (the reference `inception-2015-12-05.pt` call interface).
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "latentkit/option_names.h"
#include "latentkit/training_data.h"

namespace latentkit {

class Generator;

/// The metrics (the reference's names): FID and KID against the whole dataset, 50k generated images.
enum class Metric { fid50k_full, kid50k_full };
template <>
struct OptionNames<Metric> {
    static constexpr const char* names[] = {"fid50k_full", "kid50k_full"};
};

/// How metrics are computed.
struct MetricOptions {
    std::string detector;        ///< TorchScript file: forward(img uint8 [N,3,H,W], return_features: bool) -> [N, F]
    int num_generated = 50000;   ///< generated images per metric
    int max_real = 0;            ///< dataset images used (0: all)
    std::string cache_dir;       ///< dataset feature statistics are cached here ("" = not cached)
    std::string device = "cpu";
    int batch = 32;
    bool mirror = false;         ///< include x-flipped dataset images
    uint64_t seed = 0;           ///< generated latents, their noise, and KID subsets
    /// Several processes (data-parallel training): each computes the features of its share of the
    /// batches (batch k belongs to process k % processes), and `sum_over_processes` sums a buffer over
    /// all of them in place, so that every process ends with every feature. All processes must call.
    int rank = 0, processes = 1;
    std::function<void(float* data, size_t count)> sum_over_processes;
};

/// Computes the metrics of G against the data, each under its name. The result does not depend on the
/// number of processes: batches, their latents and their noise are the same whoever computes them.
/// Throws ModelFormatError when the detector cannot be used.
std::vector<std::pair<std::string, double>> compute_metrics(Generator& G, const TrainingData& data, const std::vector<Metric>& metrics,
                                                            const MetricOptions& options);

/// Fréchet distance between two Gaussians given by mean and covariance (row-major d x d).
double frechet_distance(const std::vector<double>& mu1, const std::vector<double>& sigma1, const std::vector<double>& mu2,
                        const std::vector<double>& sigma2);

/// Kernel inception distance of two feature sets ([n, d] row-major), reference subsets (100 of up to 1000).
double kernel_inception_distance(const std::vector<float>& real, const std::vector<float>& fake, int dim, uint64_t seed);

/// For each query, the closest reference and how far it is.
struct NearestNeighbours {
    std::vector<int64_t> index;  ///< reference row nearest to each query row
    std::vector<double> rms;     ///< root-mean-square difference to it, in the units of the data (0..255 for pixels)
};

/// Exhaustive nearest-neighbour search of `queries` (n rows) among `references` (m rows), both row-major
/// with `dim` values per row (e.g. 8-bit images of one shape). `skip`, when given, holds one reference
/// row per query that it may not match (-1: none), to compare a set against itself. Throws ArgumentError
/// when the sizes disagree or no reference is left for a query.
NearestNeighbours nearest_neighbours(const std::vector<uint8_t>& queries, const std::vector<uint8_t>& references, int64_t dim,
                                     const std::vector<int64_t>& skip = {});

}  // namespace latentkit
