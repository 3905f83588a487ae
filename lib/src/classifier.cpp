// The few-label image classifier: standardise, principal components of the labelled rows, logistic
// regression (linear_fit.h); cross-validation and precision / recall.
#include "latentkit/classifier.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "latentkit/error.h"
#include "linear_fit.h"

namespace latentkit {
using linear_fit::MatrixD;
using linear_fit::VectorD;

LinearClassifier LinearClassifier::fit(const LabelledRows& rows, const ClassifierOptions& o) {
    const int64_t n = rows.n, d = rows.d;
    const int64_t positives = std::count(rows.y.begin(), rows.y.end(), 1);
    if (n < 4) throw ArgumentError(fmt::format("{} labelled images are too few to fit a classifier (give at least 4)", n));
    if (positives == 0 || positives == n) throw ArgumentError(fmt::format("the labels are all {}: label some images 1 and some 0", positives ? 1 : 0));
    MatrixD x = Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(rows.x.data(), n, d).cast<double>();
    if (!x.allFinite()) throw ArgumentError("the image features hold NaN or infinity");
    LinearClassifier c;
    c.d_ = d;
    const VectorD mean = x.colwise().mean();
    x.rowwise() -= mean.transpose();
    VectorD scale = (x.colwise().squaredNorm() / static_cast<double>(n)).cwiseSqrt();
    for (int64_t j = 0; j < d; ++j) scale[j] = scale[j] > 1e-8 ? scale[j] : 1.0;
    x = x * scale.cwiseInverse().asDiagonal();
    // principal components from the Gram matrix (n x n): cheap for n << d
    Eigen::SelfAdjointEigenSolver<MatrixD> eig(x * x.transpose());
    const VectorD values = eig.eigenvalues().reverse();
    const MatrixD vectors = eig.eigenvectors().rowwise().reverse();
    int64_t k = 0;
    while (k < std::min<int64_t>(o.max_components, n - 1) && values[k] > 1e-9 * values[0]) ++k;
    MatrixD basis = x.transpose() * vectors.leftCols(k);
    for (int64_t j = 0; j < k; ++j) basis.col(j) /= std::sqrt(values[j]);  // unit directions
    MatrixD z = x * basis;
    for (int64_t j = 0; j < k; ++j) {
        const double sd = std::sqrt(values[j] / static_cast<double>(n));
        z.col(j) /= sd;
        basis.col(j) /= sd;  // whitened coordinates
    }
    VectorD signs(n);
    for (int64_t i = 0; i < n; ++i) signs[i] = rows.y[static_cast<size_t>(i)] == 1 ? 1.0 : -1.0;
    const VectorD theta = linear_fit::fit_logistic(z, signs, o.regularization);
    c.k_ = k;
    c.mean_.assign(mean.data(), mean.data() + d);
    c.scale_.assign(scale.data(), scale.data() + d);
    c.basis_.resize(static_cast<size_t>(d * k));
    Eigen::Map<MatrixD>(c.basis_.data(), d, k) = basis;
    c.weights_.assign(theta.data(), theta.data() + k);
    c.bias_ = theta[k];
    return c;
}

std::vector<double> LinearClassifier::probabilities(const std::vector<float>& x, int64_t d) const {
    if (d != d_) throw ShapeError(fmt::format("the classifier was fitted on {} features, these rows have {}", d_, d));
    const int64_t m = d > 0 ? static_cast<int64_t>(x.size()) / d : 0;
    MatrixD rows = Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(x.data(), m, d).cast<double>();
    rows.rowwise() -= Eigen::Map<const VectorD>(mean_.data(), d).transpose();
    rows = rows * Eigen::Map<const VectorD>(scale_.data(), d).cwiseInverse().asDiagonal();
    const VectorD logits = rows * Eigen::Map<const MatrixD>(basis_.data(), d, k_) * Eigen::Map<const VectorD>(weights_.data(), k_);
    std::vector<double> out(static_cast<size_t>(m));
    for (int64_t i = 0; i < m; ++i) out[static_cast<size_t>(i)] = 1.0 / (1.0 + std::exp(-(logits[i] + bias_)));
    return out;
}

std::vector<double> cross_validated_probabilities(const LabelledRows& rows, int folds, uint64_t seed, const ClassifierOptions& o) {
    if (folds < 2) throw ArgumentError("cross-validation needs at least 2 folds");
    // stratified: each class shuffled, then dealt round the folds
    std::vector<int> fold(static_cast<size_t>(rows.n));
    std::mt19937_64 gen(seed);
    for (int label : {0, 1}) {
        std::vector<size_t> idx;
        for (size_t i = 0; i < fold.size(); ++i)
            if (rows.y[i] == label) idx.push_back(i);
        std::shuffle(idx.begin(), idx.end(), gen);
        for (size_t k = 0; k < idx.size(); ++k) fold[idx[k]] = static_cast<int>(k % static_cast<size_t>(folds));
    }
    std::vector<double> out(fold.size(), 0.0);
    for (int f = 0; f < folds; ++f) {
        LabelledRows train{0, rows.d, {}, {}};
        std::vector<float> test;
        std::vector<size_t> test_idx;
        for (size_t i = 0; i < fold.size(); ++i) {
            const auto row = rows.x.begin() + static_cast<std::ptrdiff_t>(i * static_cast<size_t>(rows.d));
            if (fold[i] == f) test.insert(test.end(), row, row + rows.d), test_idx.push_back(i);
            else train.x.insert(train.x.end(), row, row + rows.d), train.y.push_back(rows.y[i]), ++train.n;
        }
        if (test_idx.empty()) continue;
        const std::vector<double> p = LinearClassifier::fit(train, o).probabilities(test, rows.d);
        for (size_t k = 0; k < test_idx.size(); ++k) out[test_idx[k]] = p[k];
    }
    return out;
}

std::vector<PrecisionRecall> precision_recall(const std::vector<double>& p, const std::vector<int>& labels, const std::vector<double>& thresholds) {
    std::vector<PrecisionRecall> out;
    const auto positives = static_cast<double>(std::count(labels.begin(), labels.end(), 1));
    for (double t : thresholds) {
        PrecisionRecall r;
        r.threshold = t;
        int64_t tp = 0, correct = 0;
        for (size_t i = 0; i < p.size(); ++i) {
            const bool chosen = p[i] >= t;
            r.selected += chosen;
            tp += chosen && labels[i] == 1;
            correct += chosen == (labels[i] == 1);
        }
        r.precision = r.selected ? static_cast<double>(tp) / static_cast<double>(r.selected) : 1.0;
        r.recall = positives > 0 ? static_cast<double>(tp) / positives : 0.0;
        r.accuracy = p.empty() ? 0.0 : static_cast<double>(correct) / static_cast<double>(p.size());
        out.push_back(r);
    }
    return out;
}

}  // namespace latentkit
