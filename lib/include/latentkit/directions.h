#pragma once
// Attribute directions in W: fitting them from labelled latents (ridge, logistic regression, linear
// SVM, InterFaceGAN's recipe), making them orthogonal to others, and direction files. Plain vectors
// and Eigen inside: no LibTorch in this header.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "latentkit/option_names.h"

namespace latentkit {

/// A unit direction in W and what is known about it.
struct Direction {
    std::string name;                    ///< e.g. "smile", "pca3"
    std::string source;                  ///< "ridge", "logistic", "svm", "pca", "sefa", "orthogonal"
    std::vector<float> vector;           ///< unit length, w_dim
    double scale = 1.0;                  ///< W standard deviation along the vector: strength 1 moves this far
    std::optional<std::pair<int, int>> layers;  ///< first and last W+ layer it is meant for (unset: all)
    double strength_min = -3, strength_max = 3;  ///< suggested slider range, in units of `scale`
    std::map<std::string, double> stats;  ///< fit statistics: samples, validation accuracy / r2, variance, ...
};

/// The directions of one file and the model they were made for.
struct DirectionSet {
    std::string model_fingerprint;  ///< model_fingerprint() of the model (empty: unknown)
    int w_dim = 0;
    int num_ws = 0;
    std::vector<float> w_mean;        ///< mean of the sampled W (PCA), may be empty
    std::vector<Direction> directions;
};

/// Writes a direction file (JSON) atomically.
void save_directions(const std::string& path, const DirectionSet& set);
/// Reads a direction file; throws ModelFormatError naming the file when it is not one or is inconsistent.
DirectionSet load_directions(const std::string& path);
/// Throws ShapeError (other w_dim) or ModelFormatError (other model) naming `path` when `set` does not
/// fit a model with `w_dim` and `fingerprint`; `any_model` skips the fingerprint comparison.
void check_directions_fit(const DirectionSet& set, const std::string& path, int w_dim, const std::string& fingerprint,
                          bool any_model = false);
/// Picks one direction of a set by name or index ("smile", "3"); throws ArgumentError when absent.
const Direction& select_direction(const DirectionSet& set, const std::string& which, const std::string& path);

/// A reference to directions in a file, as command lines and scripts write it: "FILE" (every direction),
/// "FILE#NAME" or "FILE#INDEX" (one), optionally followed by "@WEIGHT".
struct DirectionRef {
    std::string path;
    std::string selector;  ///< name or index; empty: the whole file
    double weight = 1.0;   ///< the strength multiplier after '@'
};
/// Parses a direction reference ("@WEIGHT" only with `allow_weight`); throws ArgumentError naming `text`.
DirectionRef parse_direction_ref(const std::string& text, bool allow_weight = false);
/// Reads the file of `ref`, checks it against a model (check_directions_fit; skipped when w_dim is 0)
/// and returns the whole set, or only the selected direction.
DirectionSet load_direction_ref(const DirectionRef& ref, int w_dim, const std::string& fingerprint, bool any_model = false);

/// Latents with their labels, row-major: x is n x d.
struct LabelledSamples {
    int64_t n = 0, d = 0;
    std::vector<float> x;
    std::vector<double> y;
};

/// How a direction is fitted.
enum class FitMethod {
    ridge,     ///< continuous scores: ridge regression
    logistic,  ///< binary labels: L2-regularised logistic regression
    svm        ///< binary labels: L2-regularised linear SVM (squared hinge)
};
template <>
struct OptionNames<FitMethod> {
    static constexpr const char* names[] = {"ridge", "logistic", "svm"};
};

/// Parses "ridge", "logistic" or "svm".
FitMethod parse_fit_method(const std::string& text);

/// Fitting settings.
struct FitOptions {
    FitMethod method = FitMethod::ridge;
    double regularization = 1.0;     ///< ridge lambda / inverse of the SVM and logistic C, per sample
    std::optional<double> threshold; ///< binary methods: label = score > threshold (unset: scores must be 0/1)
    std::optional<double> keep_ratio;  ///< InterFaceGAN: keep this fraction at each end of the sorted scores, labelled 1 / 0
    double validation_fraction = 0.3;  ///< held out for the reported accuracy / r2
    uint64_t seed = 0;                 ///< shuffle before the split
};

/// The fitted unit normal in W and its statistics ("samples", "train", "validation", "accuracy" or "r2").
/// Throws ArgumentError when the labels cannot be fitted (one class, too few samples, NaN).
Direction fit_direction(const LabelledSamples& samples, const FitOptions& options);

/// `v` with its components along `others` removed, renormalised; throws ArgumentError when nothing is left.
std::vector<float> orthogonalize(const std::vector<float>& v, const std::vector<std::vector<float>>& others);

/// Accumulates mean and covariance of W samples chunk by chunk (memory d x d, whatever the count).
class PcaAccumulator {
public:
    explicit PcaAccumulator(int d);
    /// Adds n rows of d floats.
    void add(const float* rows, int64_t n);
    int64_t count() const { return n_; }
    /// Sum of the variances of all dimensions (the trace of the covariance).
    double total_variance() const;
    /// The mean, and the k strongest components (unit vectors) with their variances, strongest first.
    void solve(int k, std::vector<float>& mean, std::vector<std::vector<float>>& components, std::vector<double>& variances) const;

private:
    int d_;
    int64_t n_ = 0;
    std::vector<double> shift_, sum_, outer_;  // sums of (x - shift) for numerical stability
};

/// Closed-form factorisation (SeFa): the eigenvectors of A^T A for the style-affine weights A (rows of
/// w_dim floats, each normalised to unit length), strongest first, with their eigenvalues.
void closed_form_directions(const std::vector<std::vector<float>>& rows, int d, int k, std::vector<std::vector<float>>& vectors,
                            std::vector<double>& values);

}  // namespace latentkit
