#pragma once
// A linear classifier for a few hundred labels on image features (`latentkit curate`): features
// standardised, projected on the principal components of the labelled ones, then an L2-regularised
// logistic regression. Plain vectors in, Eigen inside: no LibTorch.
#include <cstdint>
#include <vector>

namespace latentkit {

/// Fitting settings.
struct ClassifierOptions {
    double regularization = 1.0;  ///< L2 weight of the logistic regression (on whitened components)
    int max_components = 64;      ///< principal components kept (at most the labelled count - 1)
};

/// Rows of features (n x d, row-major) with labels 0 or 1.
struct LabelledRows {
    int64_t n = 0, d = 0;
    std::vector<float> x;
    std::vector<int> y;
};

/// A fitted classifier: the probability that a row has label 1.
class LinearClassifier {
public:
    /// Fits `rows`; throws ArgumentError when they hold one class only, fewer than 4 rows, or NaN.
    static LinearClassifier fit(const LabelledRows& rows, const ClassifierOptions& options = {});
    /// Probability of label 1 of each row of x (m x d).
    std::vector<double> probabilities(const std::vector<float>& x, int64_t d) const;

private:
    int64_t d_ = 0, k_ = 0;
    std::vector<double> mean_, scale_, basis_, weights_;  // basis_: d x k, row-major
    double bias_ = 0;
};

/// Each labelled row's probability from a classifier that did not see it: `folds`-fold cross-validation,
/// folds stratified by label and shuffled with `seed`.
std::vector<double> cross_validated_probabilities(const LabelledRows& rows, int folds, uint64_t seed, const ClassifierOptions& options = {});

/// Precision and recall of the decision "probability >= threshold" against the labels.
struct PrecisionRecall {
    double threshold = 0.5, precision = 0, recall = 0, accuracy = 0;
    int64_t selected = 0;
};
/// One row per threshold.
std::vector<PrecisionRecall> precision_recall(const std::vector<double>& probabilities, const std::vector<int>& labels,
                                              const std::vector<double>& thresholds);

}  // namespace latentkit
