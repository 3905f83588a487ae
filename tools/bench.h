#pragma once
// latentkit bench: what its subcommands share (one file per subcommand: bench_*.cpp).
#include <torch/torch.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "latentkit/networks.h"
#include "latentkit/train.h"

namespace latentkit {
namespace tools {
/// The random generators of `bench generate --random`, from the presets in train.h.
enum class BenchArch { stylegan2, stylegan3_t, stylegan3_r };
}  // namespace tools
template <>
struct OptionNames<tools::BenchArch> {
    static constexpr const char* names[] = {"stylegan2", "stylegan3-t", "stylegan3-r"};
};
}  // namespace latentkit

namespace latentkit::tools {

/// Options every bench subcommand has.
struct Opts {
    std::string model, device = "cpu";
    int random_resolution = 0;
    BenchArch arch = BenchArch::stylegan2;
    int batch = 1, iters = 10, warmup = 2;
    bool compare = false;  ///< run the reference and the fast implementation in turn and print the speed-up
};

/// Options of `bench project`.
struct ProjectOpts {
    int steps = 20, quality_steps = 0, targets = 1, w_avg_samples = 10000;
    std::string space = "w", vgg;
    std::vector<std::string> losses;
    bool compare = false;
};

/// Options of `bench directions`.
struct DirectionsOpts {
    int samples = 10000, pca_samples = 100000, batch = 1000;
};

/// Options of `bench train`.
struct TrainBenchOpts {
    int res = 256, iters = 20, warmup = 4;
    TrainPreset cfg = TrainPreset::paper256;
    std::optional<int> batch, batch_gpu;
    bool compare = false;
};

/// Options of `bench audio`.
struct AudioBenchOpts {
    std::string audio;   ///< a sound file ("" : a synthetic minute)
    double fps = 30;
    int frames = 300;    ///< frames of each morph
};

/// Waits for the device's queued work (CUDA), so that times are real.
void sync(const torch::Device& d);
/// The generator to benchmark: --model, or random weights: StyleGAN2 with the reference paper256
/// widths, StyleGAN3 with those of the stylegan3 repo's ffhqu-256 runs. `what` receives a description.
std::shared_ptr<Generator> bench_generator(const Opts& o, std::string& what);
/// bench_generator's generator on `device`, in eval mode.
std::shared_ptr<Generator> bench_generator_on(const Opts& o, std::string& what, const torch::Device& device);
/// Multiply-adds x 2 of the synthesis network's convolutions for one image (StyleGAN2; 0 otherwise).
double synthesis_gflop(const GeneratorConfig& c);
/// The median of the values.
double median(std::vector<double> v);

/// The subcommands.
void bench_generate(const Opts& o);
void bench_morph(const Opts& o, int frames);
void bench_project(const Opts& o, const ProjectOpts& p);
void bench_directions(const Opts& o, const DirectionsOpts& p);
void bench_train(const Opts& o, const TrainBenchOpts& b);
void bench_audio(const Opts& o, const AudioBenchOpts& a);

}  // namespace latentkit::tools
