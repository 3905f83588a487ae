// latentkit bench generate and bench morph: generation speed, alone and with video encoding.
#include <fmt/format.h>
#include <torch/torch.h>

#include <chrono>

#include "bench.h"
#include "common.h"
#include "latentkit/error.h"
#include "latentkit/io/config.h"
#include "latentkit/io/tensor_image.h"
#include "latentkit/io/video.h"
#include "latentkit/latent.h"
#include "latentkit/morph.h"
#include "latentkit/render.h"

namespace latentkit::tools {
void sync(const torch::Device& d) {
    if (d.is_cuda()) torch::cuda::synchronize(d.index() < 0 ? 0 : d.index());
}

// The generator to benchmark: --model, or random weights: StyleGAN2 with the reference paper256 widths,
// StyleGAN3 with those of the stylegan3 repo's ffhqu-256 runs (--cbase 16384, 2 mapping layers).
std::shared_ptr<Generator> bench_generator(const Opts& o, std::string& what) {
    if (o.model.empty() == (o.random_resolution == 0)) throw ArgumentError("give either --model or --random RES");
    if (!o.random_resolution) {
        what = o.model;
        return load_model_arg(o.model).generator();
    }
    GeneratorConfig c;
    if (o.arch == BenchArch::stylegan2) {
        TrainOptions preset;
        preset.cfg = TrainPreset::paper256;
        c = training_generator_config(preset, o.random_resolution);
        what = fmt::format("random {0}x{0} StyleGAN2 generator, paper256 widths", o.random_resolution);
    } else {
        const bool r = o.arch == BenchArch::stylegan3_r;
        c = stylegan3_generator_config(r, o.random_resolution);
        what = fmt::format("random {0}x{0} {1} generator, ffhqu-256 widths", o.random_resolution, r ? "StyleGAN3-R" : "StyleGAN3-T");
    }
    c.validate();
    return std::make_shared<Generator>(c);
}

std::shared_ptr<Generator> bench_generator_on(const Opts& o, std::string& what, const torch::Device& device) {
    auto G = bench_generator(o, what);
    G->to(device);
    G->eval();
    return G;
}

// Multiply-adds x 2 of the synthesis network's convolutions for one image (StyleGAN2; upsampling
// convolutions counted at the low resolution, where they run).
double synthesis_gflop(const GeneratorConfig& c) {
    if (c.family != GeneratorFamily::stylegan2) return 0;
    const double k2 = c.synthesis.kernel_size * c.synthesis.kernel_size;
    double flop = 0;
    for (int res = 4; res <= c.img_resolution; res *= 2) {
        const double out = c.channels_at(res);
        if (res > 4) flop += 2 * c.channels_at(res / 2) * out * k2 * (res / 2) * (res / 2);
        flop += 2 * out * out * k2 * res * res;
    }
    return flop / 1e9;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}


void bench_generate(const Opts& o) {
    const torch::Device device = device_from_name(o.device);
    std::string what;
    auto G = bench_generator_on(o, what, device);
    torch::NoGradGuard no_grad;
    const auto& c = G->config;
    std::vector<uint32_t> seeds(static_cast<size_t>(o.batch));
    for (int k = 0; k < o.batch; ++k) seeds[static_cast<size_t>(k)] = static_cast<uint32_t>(k);
    const Renderer renderer(G);
    RenderSpec spec;
    spec.seeds = seeds;
    if (c.c_dim > 0) spec.class_index = 0;
    // With --compare the two implementations take turns, iteration by iteration, so that both see the
    // same machine load; the speed-up is the ratio of their medians.
    std::vector<Implementation> impls{implementation()};
    if (o.compare) impls = {Implementation::reference, Implementation::fast};
    std::vector<std::vector<double>> ms(impls.size());
    std::vector<torch::Tensor> images(impls.size());
    const Implementation before = implementation();
    for (int k = 0; k < o.warmup + o.iters; ++k)
        for (size_t i = 0; i < impls.size(); ++i) {
            set_implementation(impls[i]);
            const auto t0 = std::chrono::steady_clock::now();
            images[i] = renderer.render(spec);
            sync(device);
            if (k >= o.warmup) ms[i].push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
        }
    set_implementation(before);
    const double gflop = synthesis_gflop(c);
    fmt::print("model      {}\n", what);
    fmt::print("device     {}  threads {}\n", device.str(), torch::get_num_threads());
    fmt::print("batch      {}  iterations {} (+{} warm-up)\n", o.batch, o.iters, o.warmup);
    for (size_t i = 0; i < impls.size(); ++i) {
        const double m = median(ms[i]);
        const auto [lo, hi] = std::minmax_element(ms[i].begin(), ms[i].end());
        fmt::print("{:<10} batch time median {:.1f} ms  min {:.1f} ms  max {:.1f} ms\n", implementation_name(impls[i]), m, *lo, *hi);
        fmt::print("{:<10} per image  {:.2f} ms   {:.2f} images/s{}\n", "", m / o.batch, 1000.0 * o.batch / m,
                   gflop > 0 ? fmt::format("   convolutions {:.1f} GFLOP/image at {:.0f} GFLOP/s", gflop, gflop * o.batch / (m / 1000)) : "");
    }
    if (o.compare)
        fmt::print("speed-up   {:.2f}x (fast against reference; images differ by at most {:.2g})\n", median(ms[0]) / median(ms[1]),
                   (images[0] - images[1]).abs().max().item<double>());
}

void bench_morph(const Opts& o, int frames) {
    const torch::Device device = device_from_name(o.device);
    std::string what;
    auto G = bench_generator_on(o, what, device);
    MorphSpec spec;
    spec.render.seeds = {1, 2};
    if (G->config.c_dim > 0) spec.render.class_index = 0;
    spec.path.frames_per_transition = frames - 1;
    spec.batch = o.batch;
    MorphRenderer renderer(G, spec);
    const int res = G->config.img_resolution;
    renderer.render(0, std::min<int64_t>(renderer.frames_per_batch(), renderer.frame_count()));  // warm-up
    // Without libav (a build on a machine without FFmpeg) the frames go to a PNG folder instead.
    const std::string kind = LATENTKIT_HAVE_LIBAV ? "mp4" : "png";
    const std::string path = (std::filesystem::temp_directory_path() / fmt::format("latentkit-bench-{}.{}", ::getpid(), kind)).string() +
                             (LATENTKIT_HAVE_LIBAV ? "" : "/");
    std::vector<Image8> rendered;
    // mode 0: generation only (frames kept), 1: encoding of the kept frames only, 2: both, overlapped.
    auto timed = [&](int mode) {
        std::unique_ptr<io::FrameSink> sink;
        if (mode > 0) sink = io::make_async(io::open_frame_sink(path, res, res));
        const auto t0 = std::chrono::steady_clock::now();
        if (mode == 1) {
            for (const auto& im : rendered) sink->write(im);
        } else {
            for (int64_t f = 0; f < renderer.frame_count(); f += renderer.frames_per_batch()) {
                const int64_t n = std::min<int64_t>(renderer.frames_per_batch(), renderer.frame_count() - f);
                torch::Tensor img = renderer.render(f, n);
                sync(device);
                for (auto& im : io::images_from_batch(img)) {
                    if (mode == 0) rendered.push_back(io::convert_channels(im, 3));
                    else sink->write(io::convert_channels(im, 3));
                }
            }
        }
        if (sink) sink->finish();
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::filesystem::remove_all(path);
        return secs;
    };
    const double gen = timed(0), enc = timed(1), all = timed(2);
    const double n = static_cast<double>(renderer.frame_count());
    fmt::print("model      {}\n", what);
    fmt::print("device     {}  threads {}  batch {}  frames {} at {}x{}\n", device.str(), torch::get_num_threads(), o.batch, renderer.frame_count(), res, res);
    fmt::print("generation only   {:.2f} frames/s\n", n / gen);
    fmt::print("end to end ({})  {:.2f} frames/s\n", kind, n / all);
    fmt::print("encoding only     {:.2f} frames/s ({})\n", n / enc, LATENTKIT_HAVE_LIBAV ? "H.264 crf 18, preset medium" : "PNG files");
    fmt::print("encoding share    {:.1f}% of end-to-end time (encoding-only time / end-to-end time)\n", 100.0 * enc / all);
}

}  // namespace latentkit::tools
