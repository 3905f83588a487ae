#include "latentkit/metrics.h"

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <torch/script.h>

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <limits>
#include <random>

#include "latentkit/error.h"
#include "latentkit/latent.h"
#include "latentkit/log.h"
#include "latentkit/networks.h"
#include "latentkit/tensor_data.h"
#include "torch_convert.h"

namespace latentkit {
namespace {

using torch::Tensor;

struct Detector {
    torch::jit::Module module;
    torch::Device device;
    Detector(const std::string& path, const torch::Device& d) : device(d) {
        try {
            module = torch::jit::load(path, torch::kCPU);
        } catch (const c10::Error& e) {
            throw ModelFormatError(path + ": not a TorchScript feature network (the reference inception-2015-12-05.pt): " +
                                   e.what_without_backtrace());
        }
        const auto& schema = module.get_method("forward").function().getSchema();
        bool has_flag = false;
        for (const auto& a : schema.arguments())
            if (a.name() == "return_features") has_flag = true;
        if (!has_flag) throw ModelFormatError(path + ": its forward() has no return_features argument (the reference Inception interface)");
        module.to(device);
        module.eval();
    }
    // uint8 [N, C, H, W] -> float [N, F] on the CPU.
    Tensor features(Tensor img) {
        if (img.size(1) == 1) img = img.repeat({1, 3, 1, 1});
        torch::NoGradGuard no_grad;
        const torch::IValue out = module.get_method("forward")({img.to(device)}, {{"return_features", true}});
        if (!out.isTensor()) throw ModelFormatError("the feature network did not return a tensor");
        const Tensor f = out.toTensor();
        if (f.dim() != 2 || f.size(0) != img.size(0)) throw ModelFormatError("the feature network returned a tensor of the wrong shape");
        return f.to(torch::kCPU, torch::kFloat32).contiguous();
    }
};

std::string cache_key(const TrainingData& data, const MetricOptions& o) {
    struct stat st {};
    ::stat(o.detector.c_str(), &st);
    const std::string text = fmt::format("{}|{}|{}|{}|{}|{}|{}|{}", data.name(), data.size(), data.resolution(), data.channels(), o.mirror,
                                         o.max_real, std::filesystem::absolute(o.detector).string(), st.st_size);
    return fmt::format("{:016x}", std::hash<std::string>{}(text));
}

// This process's batches of `total` items: batch k (of o.batch items) belongs to process k % processes.
// The features go into rows of an [total, F] buffer, zero elsewhere, which the processes then sum.
class SharedFeatures {
public:
    SharedFeatures(const MetricOptions& o, int64_t total) : o_(o), total_(total) {}
    int64_t batches() const { return (total_ + o_.batch - 1) / o_.batch; }
    bool mine(int64_t batch) const { return batch % o_.processes == o_.rank; }
    void put(int64_t batch, const Tensor& f) {
        if (!all_.defined()) all_ = torch::zeros({total_, f.size(1)}, torch::kFloat32);
        all_.narrow(0, batch * o_.batch, f.size(0)).copy_(f);
    }
    Tensor gather() {
        if (o_.processes > 1) {
            // A process without a batch of its own learns the feature size from those with one.
            float size[2] = {all_.defined() ? static_cast<float>(all_.size(1)) : 0.0f, all_.defined() ? 1.0f : 0.0f};
            o_.sum_over_processes(size, 2);
            if (!all_.defined()) all_ = torch::zeros({total_, static_cast<int64_t>(std::lround(size[0] / size[1]))}, torch::kFloat32);
            o_.sum_over_processes(all_.data_ptr<float>(), static_cast<size_t>(all_.numel()));
        }
        return all_;
    }

private:
    const MetricOptions& o_;
    int64_t total_;
    Tensor all_;
};

Tensor compute_real_features(Detector& det, const TrainingData& data, const MetricOptions& o) {
    const int64_t n = o.max_real > 0 ? std::min<int64_t>(o.max_real, data.size()) : static_cast<int64_t>(data.size());
    const int res = data.resolution(), ch = data.channels();
    std::vector<Tensor> copies;
    for (int flip = 0; flip < (o.mirror ? 2 : 1); ++flip) {
        SharedFeatures out(o, n);
        for (int64_t b = 0; b < out.batches(); ++b) {
            if (!out.mine(b)) continue;
            const int64_t k = b * o.batch, m = std::min<int64_t>(o.batch, n - k);
            Tensor bytes = torch::empty({m, ch, res, res}, torch::kUInt8);
            for (int64_t i = 0; i < m; ++i) data.read_image(static_cast<size_t>(k + i), bytes[i].data_ptr<uint8_t>());
            if (flip) bytes = bytes.flip({3}).contiguous();
            out.put(b, det.features(bytes));
        }
        copies.push_back(out.gather());
    }
    return torch::cat(copies);
}

// The dataset's features, from the cache when every process finds it there.
Tensor real_features(Detector& det, const TrainingData& data, const MetricOptions& o) {
    std::string cache;
    Tensor cached;
    if (!o.cache_dir.empty()) {
        cache = (std::filesystem::path(o.cache_dir) / ("dataset-features-" + cache_key(data, o) + ".safetensors")).string();
        std::error_code ec;
        if (std::filesystem::exists(cache, ec)) {
            try {
                const TensorFile f = read_safetensors(cache);
                if (const TensorData* t = f.find("features")) cached = to_torch(*t);
            } catch (const Error& e) {
                log_warn(std::string(e.what()) + ": recomputing the dataset statistics");
            }
        }
    }
    float found = cached.defined() ? 1.0f : 0.0f;
    if (o.processes > 1) o.sum_over_processes(&found, 1);
    if (found == static_cast<float>(o.processes)) return cached;
    Tensor f = compute_real_features(det, data, o);
    if (!cache.empty() && o.rank == 0) {
        std::error_code ec;
        std::filesystem::create_directories(o.cache_dir, ec);
        TensorFile file;
        file.metadata["dataset"] = data.name();
        file.tensors.emplace_back("features", from_torch(f));
        try {
            write_safetensors(cache, file);
        } catch (const Error& e) {
            log_warn(std::string(e.what()) + ": dataset statistics not cached");
        }
    }
    return f;
}

// Batch k's latents, labels and noise come from a generator seeded with (seed, k), so that any process
// computes the same batch.
Tensor generated_features(Detector& det, Generator& G, const TrainingData& data, const MetricOptions& o, const torch::Device& device) {
    SharedFeatures out(o, o.num_generated);
    torch::NoGradGuard no_grad;
    const bool was_training = G.is_training();
    G.eval();
    for (int64_t b = 0; b < out.batches(); ++b) {
        if (!out.mine(b)) continue;
        at::Generator gen = at::detail::createCPUGenerator(o.seed * 1000003 + static_cast<uint64_t>(b) + 1);
        const int64_t m = std::min<int64_t>(o.batch, o.num_generated - b * o.batch);
        const Tensor z = at::randn({m, G.config.z_dim}, gen, c10::nullopt, c10::nullopt, c10::nullopt, c10::nullopt).to(device);
        Tensor c;
        if (G.config.c_dim > 0) {
            const Tensor idx = at::randint(static_cast<int64_t>(data.size()), {m}, gen, torch::kInt64);
            std::vector<float> labels;
            for (int64_t i = 0; i < m; ++i) {
                const auto l = data.label(static_cast<size_t>(idx[i].item<int64_t>()));
                labels.insert(labels.end(), l.begin(), l.end());
            }
            c = torch::tensor(labels).view({m, G.config.c_dim}).to(device);
        }
        SynthesisOptions so;
        so.noise_mode = NoiseMode::custom;
        for (int r : G.synthesis->noise_resolutions())
            so.noise.push_back(at::randn({m, 1, r, r}, gen, c10::nullopt, c10::nullopt, c10::nullopt, c10::nullopt).to(device));
        if (so.noise.empty()) so.noise_mode = NoiseMode::none;
        const Tensor img = G.forward(z, c, 1.0, std::nullopt, so);
        out.put(b, det.features((img * 127.5 + 128).clamp(0, 255).to(torch::kUInt8)));
    }
    if (was_training) G.train();
    return out.gather();
}

void mean_cov(const Tensor& f, std::vector<double>& mu, std::vector<double>& sigma) {
    const Tensor x = f.to(torch::kFloat64);
    const Tensor m = x.mean(0);
    const Tensor d = x - m;
    const Tensor c = d.t().matmul(d) / std::max<int64_t>(x.size(0) - 1, 1);
    mu.assign(m.data_ptr<double>(), m.data_ptr<double>() + m.numel());
    const Tensor cc = c.contiguous();
    sigma.assign(cc.data_ptr<double>(), cc.data_ptr<double>() + cc.numel());
}

}  // namespace

double frechet_distance(const std::vector<double>& mu1, const std::vector<double>& sigma1, const std::vector<double>& mu2,
                        const std::vector<double>& sigma2) {
    const int d = static_cast<int>(mu1.size());
    if (mu2.size() != mu1.size() || sigma1.size() != size_t(d) * d || sigma2.size() != size_t(d) * d)
        throw ArgumentError("frechet_distance: sizes disagree");
    using Mat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    const Eigen::Map<const Mat> s1(sigma1.data(), d, d), s2(sigma2.data(), d, d);
    double diff = 0;
    for (int k = 0; k < d; ++k) diff += (mu1[k] - mu2[k]) * (mu1[k] - mu2[k]);
    Eigen::SelfAdjointEigenSolver<Mat> e1(s1);
    const Mat root = e1.eigenvectors() * e1.eigenvalues().cwiseMax(0).cwiseSqrt().asDiagonal() * e1.eigenvectors().transpose();
    const Mat inner = root * s2 * root;
    Eigen::SelfAdjointEigenSolver<Mat> e2((inner + inner.transpose()) / 2, Eigen::EigenvaluesOnly);
    const double trace_sqrt = e2.eigenvalues().cwiseMax(0).cwiseSqrt().sum();
    return std::max(diff + s1.trace() + s2.trace() - 2 * trace_sqrt, 0.0);
}

double kernel_inception_distance(const std::vector<float>& real, const std::vector<float>& fake, int dim, uint64_t seed) {
    const int64_t nr = static_cast<int64_t>(real.size()) / dim, nf = static_cast<int64_t>(fake.size()) / dim;
    const int64_t m = std::min<int64_t>(std::min(nr, nf), 1000);
    if (m < 2) throw ArgumentError("KID needs at least 2 real and 2 generated images");
    using Mat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    std::mt19937_64 rng(seed);
    auto subset = [&](const std::vector<float>& src, int64_t n) {
        std::vector<int64_t> idx(n);
        for (int64_t k = 0; k < n; ++k) idx[k] = k;
        Mat out(m, dim);
        for (int64_t k = 0; k < m; ++k) {
            std::swap(idx[k], idx[k + static_cast<int64_t>(rng() % static_cast<uint64_t>(n - k))]);
            for (int j = 0; j < dim; ++j) out(k, j) = src[static_cast<size_t>(idx[k]) * dim + j];
        }
        return out;
    };
    double t = 0;
    const int subsets = 100;
    for (int s = 0; s < subsets; ++s) {
        const Mat x = subset(fake, nf), y = subset(real, nr);
        const Mat kxx = ((x * x.transpose()).array() / dim + 1).cube().matrix();
        const Mat kyy = ((y * y.transpose()).array() / dim + 1).cube().matrix();
        const Mat kxy = ((x * y.transpose()).array() / dim + 1).cube().matrix();
        const double a = kxx.sum() - kxx.trace() + kyy.sum() - kyy.trace();
        t += a / (m - 1) - kxy.sum() * 2 / m;
    }
    return t / subsets / m;
}

std::vector<std::pair<std::string, double>> compute_metrics(Generator& G, const TrainingData& data, const std::vector<Metric>& metrics,
                                                            const MetricOptions& o) {
    if (metrics.empty()) return {};
    if (o.detector.empty()) throw ArgumentError(Message() << "metrics need a TorchScript Inception network (" << field("MetricOptions.detector") << ": inception-2015-12-05.pt)");
    if (o.num_generated < 2) throw ArgumentError("metrics need at least 2 generated images");
    if (o.processes > 1 && !o.sum_over_processes) throw ArgumentError(Message() << field("MetricOptions.processes") << " > 1 needs " << field("MetricOptions.sum_over_processes"));
    const torch::Device device(o.device);
    Detector det(o.detector, device);
    const Tensor real = real_features(det, data, o);
    const Tensor fake = generated_features(det, G, data, o, device);
    if (real.size(1) != fake.size(1)) throw ModelFormatError(o.detector + ": feature sizes differ between calls");
    std::vector<std::pair<std::string, double>> out;
    for (const Metric m : metrics) {
        const std::string n = option_name(m);
        if (m == Metric::fid50k_full) {
            std::vector<double> mu1, s1, mu2, s2;
            mean_cov(real, mu1, s1);
            mean_cov(fake, mu2, s2);
            out.emplace_back(n, frechet_distance(mu2, s2, mu1, s1));
        } else {
            const std::vector<float> r(real.data_ptr<float>(), real.data_ptr<float>() + real.numel());
            const std::vector<float> f(fake.data_ptr<float>(), fake.data_ptr<float>() + fake.numel());
            out.emplace_back(n, kernel_inception_distance(r, f, static_cast<int>(real.size(1)), o.seed));
        }
    }
    return out;
}

NearestNeighbours nearest_neighbours(const std::vector<uint8_t>& queries, const std::vector<uint8_t>& references, int64_t dim,
                                     const std::vector<int64_t>& skip) {
    if (dim < 1 || queries.size() % dim != 0 || references.size() % dim != 0)
        throw ArgumentError("nearest_neighbours: the data is not a whole number of rows of the given size");
    const int64_t n = static_cast<int64_t>(queries.size()) / dim, m = static_cast<int64_t>(references.size()) / dim;
    if (!skip.empty() && static_cast<int64_t>(skip.size()) != n) throw ArgumentError("nearest_neighbours: one skip entry per query expected");
    if (m == 0 || (m == 1 && !skip.empty() && skip[0] == 0)) throw ArgumentError("nearest_neighbours: no reference rows to compare with");
    torch::NoGradGuard no_grad;
    auto as_float = [dim](const std::vector<uint8_t>& v, int64_t start, int64_t rows) {
        return torch::from_blob(const_cast<uint8_t*>(v.data()) + start * dim, {rows, dim}, torch::kUInt8).to(torch::kFloat64);
    };
    const Tensor q = as_float(queries, 0, n);
    const Tensor q2 = q.square().sum(1, true);
    Tensor best = torch::full({n}, std::numeric_limits<double>::infinity(), torch::kFloat64);
    Tensor best_index = torch::full({n}, -1, torch::kInt64);
    const int64_t chunk = 512;
    for (int64_t start = 0; start < m; start += chunk) {
        const int64_t rows = std::min(chunk, m - start);
        const Tensor r = as_float(references, start, rows);
        Tensor d2 = (q2 + r.square().sum(1).unsqueeze(0) - 2 * q.matmul(r.t())).clamp_min(0);
        for (int64_t i = 0; i < static_cast<int64_t>(skip.size()); ++i)
            if (skip[i] >= start && skip[i] < start + rows) d2[i][skip[i] - start] = std::numeric_limits<double>::infinity();
        const auto [value, index] = d2.min(1);
        const Tensor better = value < best;
        best = torch::where(better, value, best);
        best_index = torch::where(better, index + start, best_index);
    }
    NearestNeighbours out;
    for (int64_t i = 0; i < n; ++i) {
        const int64_t j = best_index[i].item<int64_t>();
        if (j < 0) throw ArgumentError("nearest_neighbours: no reference rows to compare with");
        double sum = 0;
        for (int64_t k = 0; k < dim; ++k) {
            const double d = double(queries[i * dim + k]) - double(references[j * dim + k]);
            sum += d * d;
        }
        out.index.push_back(j);
        out.rms.push_back(std::sqrt(sum / dim));
    }
    return out;
}

}  // namespace latentkit
