#pragma once
// Internal: the Newton solver and L2-regularised logistic regression that direction fits and the
// image classifier of `curate` share (Eigen).
#include <Eigen/Dense>
#include <algorithm>
#include <cmath>

namespace latentkit::linear_fit {

using MatrixD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using VectorD = Eigen::VectorXd;

// Newton's method with backtracking for a smooth convex objective of [beta; bias].
/// Newton's method with backtracking line search for a smooth convex objective.
template <typename Objective>
VectorD newton(const Objective& f, VectorD theta, int max_iter = 100) {
    double value;
    VectorD grad;
    MatrixD hess;
    f(theta, value, &grad, &hess);
    for (int it = 0; it < max_iter; ++it) {
        const VectorD step = hess.ldlt().solve(-grad);
        const double decrease = -grad.dot(step);
        if (!(decrease > 1e-12 * std::max(1.0, std::abs(value)))) break;
        double t = 1.0, next = 0;
        VectorD candidate;
        for (int k = 0; k < 40; ++k, t *= 0.5) {
            candidate = theta + t * step;
            f(candidate, next, nullptr, nullptr);
            if (next <= value - 0.25 * t * decrease) break;
        }
        theta = candidate;
        f(theta, value, &grad, &hess);
    }
    return theta;
}

/// Rows of x (n x d) with a trailing 1 for the bias.
inline MatrixD with_bias(const MatrixD& x) {
    MatrixD out(x.rows(), x.cols() + 1);
    out.leftCols(x.cols()) = x;
    out.col(x.cols()).setOnes();
    return out;
}

/// Logistic regression of signs `s` (+1 / -1) on rows `x`: [weights; bias] minimising the log loss plus
/// lambda / 2 |weights|^2.
inline VectorD fit_logistic(const MatrixD& x, const VectorD& s, double lambda) {
    const MatrixD a = with_bias(x);
    const int64_t d = x.cols();
    auto f = [&](const VectorD& th, double& value, VectorD* grad, MatrixD* hess) {
        const VectorD m = (a * th).cwiseProduct(s);  // margins
        value = 0;
        VectorD g_coef(m.size()), h_coef(m.size());
        for (int64_t i = 0; i < m.size(); ++i) {
            value += m[i] > 0 ? std::log1p(std::exp(-m[i])) : -m[i] + std::log1p(std::exp(m[i]));
            const double p = 1.0 / (1.0 + std::exp(m[i]));  // sigmoid(-m)
            g_coef[i] = -s[i] * p;
            h_coef[i] = p * (1 - p);
        }
        value += 0.5 * lambda * th.head(d).squaredNorm();
        if (grad) {
            *grad = a.transpose() * g_coef;
            grad->head(d) += lambda * th.head(d);
        }
        if (hess) {
            *hess = a.transpose() * h_coef.asDiagonal() * a;
            hess->diagonal().head(d).array() += lambda;
            (*hess)(d, d) += 1e-9;
        }
    };
    return newton(f, VectorD::Zero(d + 1));
}

}  // namespace latentkit::linear_fit
