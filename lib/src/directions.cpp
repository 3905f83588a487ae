// Attribute directions: supervised fits (Eigen), orthogonalisation, PCA and closed-form factorisation,
// and the JSON direction file.
#include "latentkit/directions.h"

#include <fmt/format.h>

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>

#include "latentkit/atomic_file.h"
#include "latentkit/error.h"
#include "linear_fit.h"

namespace latentkit {

using linear_fit::MatrixD;
using linear_fit::VectorD;
using linear_fit::fit_logistic;
using linear_fit::newton;
using linear_fit::with_bias;

FitMethod parse_fit_method(const std::string& text) {
    if (const auto m = option_from_name<FitMethod>(text)) return *m;
    throw ArgumentError(fmt::format("unknown fitting method '{}' (use {})", text, option_choices<FitMethod>()));
}

namespace {

VectorD fit_svm(const MatrixD& x, const VectorD& s, double lambda) {
    const MatrixD a = with_bias(x);
    const int64_t d = x.cols();
    auto f = [&](const VectorD& th, double& value, VectorD* grad, MatrixD* hess) {
        const VectorD m = (a * th).cwiseProduct(s);
        const VectorD slack = (1.0 - m.array()).max(0.0).matrix();
        value = slack.squaredNorm() + 0.5 * lambda * th.head(d).squaredNorm();
        if (grad) {
            *grad = -2.0 * a.transpose() * slack.cwiseProduct(s);
            grad->head(d) += lambda * th.head(d);
        }
        if (hess) {
            const VectorD active = (slack.array() > 0).cast<double>().matrix();
            *hess = 2.0 * a.transpose() * active.asDiagonal() * a;
            hess->diagonal().head(d).array() += lambda;
            (*hess)(d, d) += 1e-9;
        }
    };
    return newton(f, VectorD::Zero(d + 1));
}

VectorD fit_ridge(const MatrixD& x, const VectorD& y, double lambda, double& intercept) {
    const Eigen::RowVectorXd mean = x.colwise().mean();
    const MatrixD xc = x.rowwise() - mean;
    const double ym = y.mean();
    MatrixD gram = xc.transpose() * xc;
    gram.diagonal().array() += lambda;
    const VectorD beta = gram.ldlt().solve(xc.transpose() * (y.array() - ym).matrix());
    intercept = ym - mean.dot(beta);
    return beta;
}

MatrixD rows_of(const LabelledSamples& s, const std::vector<int64_t>& idx) {
    MatrixD m(static_cast<int64_t>(idx.size()), s.d);
    for (size_t r = 0; r < idx.size(); ++r)
        for (int64_t c = 0; c < s.d; ++c) m(static_cast<int64_t>(r), c) = s.x[static_cast<size_t>(idx[r] * s.d + c)];
    return m;
}

std::vector<float> to_floats(const VectorD& v) { return std::vector<float>(v.data(), v.data() + v.size()); }

// Eigenvectors get a deterministic sign: the largest-magnitude entry is positive.
void fix_sign(VectorD& v) {
    Eigen::Index i;
    v.cwiseAbs().maxCoeff(&i);
    if (v[i] < 0) v = -v;
}

}  // namespace

namespace {

void check_fit(const LabelledSamples& samples, const FitOptions& o) {
    if (samples.n < 1 || samples.d < 1 || samples.x.size() != static_cast<size_t>(samples.n * samples.d) ||
        samples.y.size() != static_cast<size_t>(samples.n))
        throw ArgumentError("fit_direction: the samples and labels do not match");
    for (double v : samples.y)
        if (!std::isfinite(v)) throw ArgumentError("a label is not a finite number");
    if (o.validation_fraction < 0 || o.validation_fraction >= 1) throw ArgumentError("the validation fraction must be in [0, 1)");
    if (o.regularization < 0) throw ArgumentError("the regularisation must not be negative");
    if (o.method == FitMethod::ridge && (o.threshold || o.keep_ratio))
        throw ArgumentError("a threshold or keep ratio makes binary labels: use logistic or svm");
}

// The samples that take part and their targets: all, thresholded to 0/1 for binary methods, or the
// top and bottom keep_ratio as 1 and 0 (InterFaceGAN).
std::pair<std::vector<int64_t>, std::vector<double>> fit_targets(const LabelledSamples& samples, const FitOptions& o) {
    const bool binary = o.method != FitMethod::ridge;
    std::vector<int64_t> idx;
    std::vector<double> target;
    if (o.keep_ratio) {
        if (!(*o.keep_ratio > 0 && *o.keep_ratio <= 0.5)) throw ArgumentError("the keep ratio must be in (0, 0.5]");
        std::vector<int64_t> order(static_cast<size_t>(samples.n));
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return samples.y[a] > samples.y[b]; });
        const auto keep = static_cast<int64_t>(std::floor(samples.n * *o.keep_ratio));
        for (int64_t k = 0; k < keep; ++k) idx.push_back(order[k]), target.push_back(1);
        for (int64_t k = samples.n - keep; k < samples.n; ++k) idx.push_back(order[k]), target.push_back(0);
        return {idx, target};
    }
    for (int64_t k = 0; k < samples.n; ++k) {
        double y = samples.y[static_cast<size_t>(k)];
        if (binary) {
            if (o.threshold) y = y > *o.threshold ? 1 : 0;
            else if (y != 0 && y != 1) throw ArgumentError(fmt::format("label {} is not 0 or 1 (give a threshold for scores)", y));
        }
        idx.push_back(k);
        target.push_back(y);
    }
    return {idx, target};
}

// A seeded shuffle of the targets into training and validation parts.
struct FitSplit {
    MatrixD x_train, x_val;
    VectorD y_train, y_val;
    int64_t n = 0, n_train = 0, n_val = 0;
};

FitSplit split_targets(const LabelledSamples& samples, const std::vector<int64_t>& idx, const std::vector<double>& target,
                       const FitOptions& o) {
    std::vector<size_t> perm(idx.size());
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), std::mt19937_64(o.seed));
    FitSplit s;
    s.n = static_cast<int64_t>(idx.size());
    s.n_val = static_cast<int64_t>(std::floor(s.n * o.validation_fraction));
    s.n_train = s.n - s.n_val;
    const int64_t needed = o.method != FitMethod::ridge ? 4 : 3;
    if (s.n_train < needed || (o.validation_fraction > 0 && s.n_val < 2))
        throw ArgumentError(fmt::format("too few samples: {} used, {} for training and {} for validation", s.n, s.n_train, s.n_val));
    std::vector<int64_t> train_idx, val_idx;
    s.y_train.resize(s.n_train);
    s.y_val.resize(s.n_val);
    for (int64_t k = 0; k < s.n; ++k) {
        const size_t p = perm[static_cast<size_t>(k)];
        if (k < s.n_train) s.y_train[k] = target[p], train_idx.push_back(idx[p]);
        else s.y_val[k - s.n_train] = target[p], val_idx.push_back(idx[p]);
    }
    s.x_train = rows_of(samples, train_idx);
    s.x_val = rows_of(samples, val_idx);
    return s;
}

// Logistic regression or the SVM on centred inputs; accuracies into `stats`.
VectorD fit_binary(const FitSplit& s, const FitOptions& o, int64_t d, double& bias, std::map<std::string, double>& stats) {
    const double positives = s.y_train.sum();
    if (positives == 0 || positives == s.n_train)
        throw ArgumentError(fmt::format("all {} training labels are {}: two classes are needed", s.n_train, positives == 0 ? 0 : 1));
    // Centre the inputs so the bias is well conditioned; the direction is unaffected.
    const Eigen::RowVectorXd mean = s.x_train.colwise().mean();
    const VectorD signs = (2.0 * s.y_train.array() - 1.0).matrix();
    const VectorD th = o.method == FitMethod::logistic ? fit_logistic(s.x_train.rowwise() - mean, signs, o.regularization)
                                                       : fit_svm(s.x_train.rowwise() - mean, signs, o.regularization);
    const VectorD beta = th.head(d);
    bias = th[d] - mean.dot(beta);
    auto accuracy = [&](const MatrixD& x, const VectorD& y) {
        const VectorD f = (x * beta).array() + bias;
        int64_t right = 0;
        for (int64_t k = 0; k < y.size(); ++k) right += (f[k] > 0) == (y[k] > 0.5);
        return static_cast<double>(right) / std::max<int64_t>(1, y.size());
    };
    stats["train_accuracy"] = accuracy(s.x_train, s.y_train);
    if (s.n_val > 0) stats["accuracy"] = accuracy(s.x_val, s.y_val);
    return beta;
}

// Ridge regression; R^2 into `stats`.
VectorD fit_scores(const FitSplit& s, const FitOptions& o, double& bias, std::map<std::string, double>& stats) {
    const VectorD beta = fit_ridge(s.x_train, s.y_train, o.regularization, bias);
    auto r2 = [&](const MatrixD& x, const VectorD& y) {
        const VectorD f = (x * beta).array() + bias;
        const double ss_res = (y - f).squaredNorm(), ss_tot = (y.array() - y.mean()).matrix().squaredNorm();
        return ss_tot > 0 ? 1.0 - ss_res / ss_tot : 0.0;
    };
    stats["train_r2"] = r2(s.x_train, s.y_train);
    if (s.n_val > 0) stats["r2"] = r2(s.x_val, s.y_val);
    return beta;
}

}  // namespace

Direction fit_direction(const LabelledSamples& samples, const FitOptions& o) {
    check_fit(samples, o);
    const auto [idx, target] = fit_targets(samples, o);
    const FitSplit split = split_targets(samples, idx, target, o);
    Direction dir;
    double bias = 0;
    VectorD beta = o.method != FitMethod::ridge ? fit_binary(split, o, samples.d, bias, dir.stats) : fit_scores(split, o, bias, dir.stats);
    const double norm = beta.norm();
    if (!(norm > 0) || !std::isfinite(norm)) throw ArgumentError("the fit found no direction (the labels do not depend on W)");
    beta /= norm;
    dir.vector = to_floats(beta);
    dir.source = option_name(o.method);
    dir.stats["samples"] = static_cast<double>(split.n);
    dir.stats["train"] = static_cast<double>(split.n_train);
    dir.stats["validation"] = static_cast<double>(split.n_val);
    // Strength 1 = one standard deviation of all given latents along the direction.
    const Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> all(samples.x.data(), samples.n, samples.d);
    const VectorD proj = all.cast<double>() * beta;
    const double sd = std::sqrt((proj.array() - proj.mean()).square().mean());
    dir.scale = sd > 0 ? sd : 1.0;
    return dir;
}

std::vector<float> orthogonalize(const std::vector<float>& v, const std::vector<std::vector<float>>& others) {
    const auto d = static_cast<int64_t>(v.size());
    std::vector<VectorD> basis;
    for (const auto& o : others) {
        if (static_cast<int64_t>(o.size()) != d) throw ShapeError("orthogonalize: the directions have different sizes");
        VectorD u = Eigen::Map<const Eigen::VectorXf>(o.data(), d).cast<double>();
        for (const auto& b : basis) u -= u.dot(b) * b;
        if (u.norm() > 1e-8) basis.push_back(u.normalized());
    }
    VectorD x = Eigen::Map<const Eigen::VectorXf>(v.data(), d).cast<double>();
    const double before = x.norm();
    for (int pass = 0; pass < 2; ++pass)
        for (const auto& b : basis) x -= x.dot(b) * b;
    if (!(x.norm() > 1e-6 * std::max(1.0, before))) throw ArgumentError("the direction lies within the ones it should be orthogonal to");
    return to_floats(x.normalized());
}

PcaAccumulator::PcaAccumulator(int d) : d_(d), shift_(static_cast<size_t>(d)), sum_(static_cast<size_t>(d)), outer_(static_cast<size_t>(d) * d) {
    if (d < 1) throw ArgumentError("PCA needs a positive dimension");
}

void PcaAccumulator::add(const float* rows, int64_t n) {
    if (n <= 0) return;
    if (n_ == 0)
        for (int c = 0; c < d_; ++c) shift_[static_cast<size_t>(c)] = rows[c];
    const Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> x(rows, n, d_);
    const Eigen::Map<const Eigen::RowVectorXd> shift(shift_.data(), d_);
    const MatrixD xs = x.cast<double>().rowwise() - shift;
    Eigen::Map<Eigen::RowVectorXd>(sum_.data(), d_) += xs.colwise().sum();
    Eigen::Map<MatrixD>(outer_.data(), d_, d_).noalias() += xs.transpose() * xs;
    n_ += n;
}

double PcaAccumulator::total_variance() const {
    if (n_ < 2) return 0.0;
    double total = 0;
    for (int c = 0; c < d_; ++c) {
        const double m = sum_[static_cast<size_t>(c)] / static_cast<double>(n_);
        total += (outer_[static_cast<size_t>(c) * d_ + c] - static_cast<double>(n_) * m * m) / static_cast<double>(n_ - 1);
    }
    return total;
}

void PcaAccumulator::solve(int k, std::vector<float>& mean, std::vector<std::vector<float>>& components, std::vector<double>& variances) const {
    if (n_ < 2) throw ArgumentError("PCA needs at least 2 samples");
    if (k < 1 || k > d_) throw ArgumentError(fmt::format("the number of components must be between 1 and {}", d_));
    const Eigen::Map<const Eigen::RowVectorXd> sum(sum_.data(), d_);
    const Eigen::RowVectorXd ms = sum / static_cast<double>(n_);
    const MatrixD cov = (Eigen::Map<const MatrixD>(outer_.data(), d_, d_) - static_cast<double>(n_) * ms.transpose() * ms) / static_cast<double>(n_ - 1);
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(cov);
    mean = to_floats((ms + Eigen::Map<const Eigen::RowVectorXd>(shift_.data(), d_)).transpose());
    components.clear();
    variances.clear();
    for (int j = 0; j < k; ++j) {  // eigenvalues come in increasing order
        VectorD v = es.eigenvectors().col(d_ - 1 - j);
        fix_sign(v);
        components.push_back(to_floats(v));
        variances.push_back(std::max(0.0, es.eigenvalues()[d_ - 1 - j]));
    }
}

void closed_form_directions(const std::vector<std::vector<float>>& rows, int d, int k, std::vector<std::vector<float>>& vectors,
                            std::vector<double>& values) {
    if (rows.empty()) throw ArgumentError("closed-form factorisation needs style weights");
    if (k < 1 || k > d) throw ArgumentError(fmt::format("the number of directions must be between 1 and {}", d));
    Eigen::MatrixXd m = Eigen::MatrixXd::Zero(d, d);
    for (const auto& r : rows) {
        if (static_cast<int>(r.size()) != d) throw ShapeError("closed-form factorisation: a weight row has the wrong size");
        VectorD v = Eigen::Map<const Eigen::VectorXf>(r.data(), d).cast<double>();
        const double norm = v.norm();
        if (norm > 0) m.selfadjointView<Eigen::Lower>().rankUpdate(v / norm);
    }
    m = m.selfadjointView<Eigen::Lower>();
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(m);
    vectors.clear();
    values.clear();
    for (int j = 0; j < k; ++j) {
        VectorD v = es.eigenvectors().col(d - 1 - j);
        fix_sign(v);
        vectors.push_back(to_floats(v));
        values.push_back(es.eigenvalues()[d - 1 - j]);
    }
}

// ---------------------------------------------------------------------------------------------

void save_directions(const std::string& path, const DirectionSet& set) {
    nlohmann::json dirs = nlohmann::json::array();
    for (const auto& d : set.directions) {
        nlohmann::json j = {{"name", d.name},
                            {"source", d.source},
                            {"scale", d.scale},
                            {"strength_range", {d.strength_min, d.strength_max}},
                            {"stats", d.stats},
                            {"vector", d.vector}};
        j["layers"] = d.layers ? nlohmann::json{d.layers->first, d.layers->second} : nlohmann::json(nullptr);
        dirs.push_back(j);
    }
    nlohmann::json root = {{"format", "latentkit-directions"},
                           {"version", 1},
                           {"model", {{"fingerprint", set.model_fingerprint}, {"w_dim", set.w_dim}, {"num_ws", set.num_ws}}},
                           {"directions", dirs}};
    if (!set.w_mean.empty()) root["w_mean"] = set.w_mean;
    const std::string text = root.dump(1) + "\n";
    write_file_atomic(path, text.data(), text.size());
}

DirectionSet load_directions(const std::string& path) {
    const std::string text = read_file(path);
    DirectionSet set;
    try {
        const auto root = nlohmann::json::parse(text);
        if (!root.is_object() || root.value("format", "") != "latentkit-directions")
            throw ModelFormatError(fmt::format("{}: not a latentkit direction file", path));
        if (root.value("version", 0) != 1) throw ModelFormatError(fmt::format("{}: direction file version {} is not supported", path, root.value("version", 0)));
        const auto& model = root.at("model");
        set.model_fingerprint = model.value("fingerprint", "");
        set.w_dim = model.at("w_dim").get<int>();
        set.num_ws = model.value("num_ws", 0);
        if (root.contains("w_mean")) set.w_mean = root["w_mean"].get<std::vector<float>>();
        for (const auto& j : root.at("directions")) {
            Direction d;
            d.name = j.at("name").get<std::string>();
            d.source = j.value("source", "");
            d.scale = j.value("scale", 1.0);
            d.vector = j.at("vector").get<std::vector<float>>();
            if (j.contains("layers") && !j["layers"].is_null()) d.layers = std::make_pair(j["layers"][0].get<int>(), j["layers"][1].get<int>());
            if (j.contains("strength_range")) d.strength_min = j["strength_range"][0].get<double>(), d.strength_max = j["strength_range"][1].get<double>();
            if (j.contains("stats")) d.stats = j["stats"].get<std::map<std::string, double>>();
            set.directions.push_back(std::move(d));
        }
    } catch (const nlohmann::json::exception& e) {
        throw ModelFormatError(fmt::format("{}: not a valid direction file ({})", path, e.what()));
    }
    if (set.w_dim < 1) throw ModelFormatError(fmt::format("{}: w_dim must be positive", path));
    if (set.directions.empty()) throw ModelFormatError(fmt::format("{}: holds no directions", path));
    if (!set.w_mean.empty() && static_cast<int>(set.w_mean.size()) != set.w_dim)
        throw ModelFormatError(fmt::format("{}: w_mean has {} values, w_dim is {}", path, set.w_mean.size(), set.w_dim));
    for (auto& d : set.directions) {
        if (static_cast<int>(d.vector.size()) != set.w_dim)
            throw ModelFormatError(fmt::format("{}: direction '{}' has {} values, w_dim is {}", path, d.name, d.vector.size(), set.w_dim));
        double sq = 0;
        for (float v : d.vector) sq += double(v) * v;
        if (!std::isfinite(sq) || std::abs(std::sqrt(sq) - 1.0) > 1e-3)
            throw ModelFormatError(fmt::format("{}: direction '{}' is not a unit vector", path, d.name));
        if (!(d.scale > 0) || !std::isfinite(d.scale)) throw ModelFormatError(fmt::format("{}: direction '{}' has an invalid scale", path, d.name));
        if (d.layers && (d.layers->first < 0 || d.layers->second < d.layers->first || (set.num_ws > 0 && d.layers->second >= set.num_ws)))
            throw ModelFormatError(fmt::format("{}: direction '{}' has an invalid layer range", path, d.name));
    }
    return set;
}

void check_directions_fit(const DirectionSet& set, const std::string& path, int w_dim, const std::string& fingerprint, bool any_model) {
    if (set.w_dim != w_dim)
        throw ShapeError(fmt::format("{}: the directions are for w_dim {}, this model has w_dim {}", path, set.w_dim, w_dim));
    if (!any_model && !set.model_fingerprint.empty() && set.model_fingerprint != fingerprint)
        throw ModelFormatError(Message() << fmt::format("{}: the directions were made for another model (fingerprint {}, this model {}); ", path,
                                                             set.model_fingerprint, fingerprint)
                                             << field("directions.any_model") << " applies them anyway");
}

const Direction& select_direction(const DirectionSet& set, const std::string& which, const std::string& path) {
    if (which.empty()) return set.directions.front();
    for (const auto& d : set.directions)
        if (d.name == which) return d;
    if (which.find_first_not_of("0123456789") == std::string::npos && which.size() < 9) {
        const size_t k = std::stoul(which);
        if (k < set.directions.size()) return set.directions[k];
    }
    throw ArgumentError(fmt::format("{}: has no direction '{}' ({} direction(s))", path, which, set.directions.size()));
}

DirectionRef parse_direction_ref(const std::string& text, bool allow_weight) {
    DirectionRef ref;
    std::string s = text;
    const size_t at = s.rfind('@');
    if (allow_weight && at != std::string::npos && s.find('/', at) == std::string::npos) {
        char* end = nullptr;
        ref.weight = std::strtod(s.c_str() + at + 1, &end);
        if (end != s.c_str() + s.size() || at + 1 == s.size() || !std::isfinite(ref.weight))
            throw ArgumentError(text + ": the weight after @ is not a number");
        s = s.substr(0, at);
    }
    const size_t hash = s.rfind('#');
    ref.path = s.substr(0, hash);
    if (hash != std::string::npos) ref.selector = s.substr(hash + 1);
    if (ref.path.empty()) throw ArgumentError(text + ": names no direction file");
    return ref;
}

DirectionSet load_direction_ref(const DirectionRef& ref, int w_dim, const std::string& fingerprint, bool any_model) {
    DirectionSet set = load_directions(ref.path);
    if (w_dim > 0) check_directions_fit(set, ref.path, w_dim, fingerprint, any_model);
    if (!ref.selector.empty()) set.directions = {select_direction(set, ref.selector, ref.path)};
    return set;
}

}  // namespace latentkit
