// latentkit bench train: training minibatches on random images (s/kimg, peak memory).
#include <fmt/format.h>
#include <torch/torch.h>
#include <unistd.h>

#include <filesystem>

#include "bench.h"
#include "common.h"
#include "latentkit/train.h"

namespace latentkit::tools {
namespace {

// Random images in memory: training speed without reading files.
class RandomImages : public TrainingData {
public:
    RandomImages(int res, size_t n) : res_(res), n_(n) {}
    size_t size() const override { return n_; }
    int resolution() const override { return res_; }
    int channels() const override { return 3; }
    int label_dim() const override { return 0; }
    void read_image(size_t index, uint8_t* out) const override {
        uint64_t x = index * 0x9e3779b97f4a7c15ull + 1;
        for (size_t k = 0; k < size_t(3) * res_ * res_; ++k) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            out[k] = static_cast<uint8_t>(x);
        }
    }
    std::vector<float> label(size_t) const override { return {}; }
    std::string name() const override { return "random images"; }

private:
    int res_;
    size_t n_;
};

}  // namespace

void bench_train(const Opts& o, const TrainBenchOpts& b) {
    const torch::Device device = device_from_name(o.device);
    const RandomImages data(b.res, 1000);
    TrainOptions t;
    t.cfg = b.cfg;
    t.batch = b.batch;
    t.batch_gpu = b.batch_gpu;
    t.device = device.str();
    const ResolvedTraining r = resolve_training(t, b.res, 1);
    const std::string dir = (std::filesystem::temp_directory_path() / ("latentkit-bench-train-" + std::to_string(::getpid()))).string();
    t.outdir = dir;
    t.tick_kimg = r.batch * b.warmup / 1000.0;
    t.kimg = r.batch * (b.warmup + b.iters) / 1000.0;
    t.snap = 0;
    // Seconds per kimg of the minibatches after the warm-up tick (the second tick).
    auto sec_per_kimg = [&]() {
        std::vector<TickStats> ticks;
        TrainCallbacks cb;
        cb.tick = [&](const TickStats& s) {
            ticks.push_back(s);
            if (ticks.size() == 1) reset_peak_memory(device);
        };
        std::error_code ec;
        try {
            train(data, t, cb);
        } catch (...) {
            std::filesystem::remove_all(dir, ec);
            throw;
        }
        std::filesystem::remove_all(dir, ec);
        return ticks.size() >= 2 ? ticks.back().sec_per_kimg : -1.0;
    };
    fmt::print("train      {}x{} --cfg {}  batch {} (batch-gpu {})  {} on {}\n", b.res, b.res, option_name(b.cfg), r.batch, r.batch_gpu,
               device.is_cuda() ? "fp16 top 4 resolutions" : "fp32", device.str());
    auto report = [&](const char* label, double spk) {
        if (spk > 0) fmt::print("{:<10} {:.2f} s/kimg  ({:.1f} img/s, {} minibatches after {} warm-up)\n", label, spk, 1000 / spk, b.iters, b.warmup);
    };
    if (b.compare) {
        // A run with each implementation, one after the other, from the same seed.
        const Implementation before = implementation();
        double spk[2];
        for (int k = 0; k < 2; ++k) {
            set_implementation(k == 0 ? Implementation::reference : Implementation::fast);
            spk[k] = sec_per_kimg();
            report(k == 0 ? "reference" : "fast", spk[k]);
        }
        set_implementation(before);
        if (spk[0] > 0 && spk[1] > 0) fmt::print("speed-up   {:.2f}x (fast against reference)\n", spk[0] / spk[1]);
        return;
    }
    report("speed", sec_per_kimg());
    const double peak = peak_memory_mib(device);
    if (peak >= 0) fmt::print("peak mem   {:.0f} MiB ({})\n", peak, device.is_cuda() ? "CUDA tensors" : "process resident set");
}

}  // namespace latentkit::tools
