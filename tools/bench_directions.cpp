// latentkit bench directions: direction fitting (ridge, logistic, SVM) and PCA of sampled W.
#include <fmt/format.h>
#include <torch/torch.h>

#include <chrono>
#include <random>

#include "bench.h"
#include "common.h"
#include "latentkit/directions.h"
#include "latentkit/editing.h"
#include "latentkit/latent.h"

namespace latentkit::tools {
void bench_directions(const Opts& o, const DirectionsOpts& p) {
    const torch::Device device = device_from_name(o.device);
    std::string what;
    auto G = bench_generator_on(o, what, device);
    const int d = G->config.w_dim;
    using clock = std::chrono::steady_clock;
    auto secs = [](clock::time_point t0) { return std::chrono::duration<double>(clock::now() - t0).count(); };

    std::vector<uint32_t> seeds(static_cast<size_t>(p.samples));
    for (size_t k = 0; k < seeds.size(); ++k) seeds[k] = static_cast<uint32_t>(k);
    auto t0 = clock::now();
    const torch::Tensor w = sample_w(*G, seeds, 1.0, p.batch);
    const double t_sample = secs(t0);
    // Labels from a planted direction plus noise, so the fits have something to find.
    std::mt19937_64 rng(7);
    std::normal_distribution<float> g;
    std::vector<float> truth(static_cast<size_t>(d));
    for (auto& v : truth) v = g(rng);
    const torch::Tensor score = w.matmul(torch::tensor(truth)) ;
    LabelledSamples ls;
    ls.n = p.samples;
    ls.d = d;
    ls.x.assign(w.data_ptr<float>(), w.data_ptr<float>() + w.numel());
    const double spread = score.std().item<double>();
    for (int64_t k = 0; k < ls.n; ++k) ls.y.push_back(score[k].item<double>() + 0.2 * spread * g(rng));
    fmt::print("model      {}\n", what);
    fmt::print("device     {}  threads {}\n", device.str(), torch::get_num_threads());
    fmt::print("sampling   {} latents in {:.2f} s\n", p.samples, t_sample);
    const double median = [&] { std::vector<double> y = ls.y; std::nth_element(y.begin(), y.begin() + y.size() / 2, y.end()); return y[y.size() / 2]; }();
    for (const char* m : {"ridge", "logistic", "svm"}) {
        FitOptions fo;
        fo.method = parse_fit_method(m);
        if (fo.method != FitMethod::ridge) fo.threshold = median;
        t0 = clock::now();
        const Direction dir = fit_direction(ls, fo);
        const double t = secs(t0);
        double cos = 0, nt = 0;
        for (int k = 0; k < d; ++k) cos += dir.vector[static_cast<size_t>(k)] * truth[static_cast<size_t>(k)], nt += double(truth[static_cast<size_t>(k)]) * truth[static_cast<size_t>(k)];
        fmt::print("fit {:<8} {} x {} in {:.2f} s  (cosine to the planted direction {:.3f}, {} {:.3f})\n", m, p.samples, d, t, cos / std::sqrt(nt),
                   dir.stats.count("r2") ? "r2" : "accuracy", dir.stats.count("r2") ? dir.stats.at("r2") : dir.stats.at("accuracy"));
    }
    PcaAccumulator acc(d);
    double t_map = 0, t_acc = 0;
    for (int start = 0; start < p.pca_samples; start += p.batch) {
        std::vector<uint32_t> chunk;
        for (int k = start; k < std::min(p.pca_samples, start + p.batch); ++k) chunk.push_back(static_cast<uint32_t>(k));
        t0 = clock::now();
        const torch::Tensor cw = sample_w(*G, chunk, 1.0, p.batch).contiguous();
        t_map += secs(t0);
        t0 = clock::now();
        acc.add(cw.data_ptr<float>(), cw.size(0));
        t_acc += secs(t0);
    }
    std::vector<float> mean;
    std::vector<std::vector<float>> comps;
    std::vector<double> vars;
    t0 = clock::now();
    acc.solve(std::min(20, d), mean, comps, vars);
    const double t_solve = secs(t0);
    fmt::print("pca        {} samples: mapping {:.2f} s, accumulating {:.2f} s, 20 components {:.2f} s (memory: one {}x{} matrix)\n",
               p.pca_samples, t_map, t_acc, t_solve, d, d);
}

}  // namespace latentkit::tools
