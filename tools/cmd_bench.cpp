// latentkit bench: speed measurements (never timed tests).
#include <fmt/format.h>
#include <torch/torch.h>

#include <chrono>

#include "common.h"
#include "latentkit/error.h"
#include "latentkit/latent.h"
#include "latentkit/io/config.h"
#include "latentkit/io/tensor_image.h"
#include "latentkit/io/video.h"
#include "latentkit/morph.h"
#include "latentkit/networks.h"
#include "latentkit/projector.h"
#include "latentkit/directions.h"
#include "latentkit/editing.h"
#include "latentkit/train.h"
#include "latentkit/render.h"
#include <random>
#include <filesystem>
#include <unistd.h>

namespace latentkit::tools {
namespace {

struct Opts {
    std::string model, device = "cpu";
    int random_resolution = 0;
    std::string arch = "stylegan2";
    int batch = 1, iters = 10, warmup = 2;
    bool compare = false;  ///< run the reference and the fast implementation in turn and print the speed-up
};

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
    c.img_resolution = o.random_resolution;
    if (o.arch == "stylegan2") {
        c.synthesis.channel_base = 16384;
        c.synthesis.channel_max = 512;
        c.synthesis.conv_clamp = 256;
        c.synthesis.num_fp16_res = 4;
        c.mapping.num_layers = 8;
        what = fmt::format("random {0}x{0} StyleGAN2 generator, paper256 widths", o.random_resolution);
    } else {
        c.family = GeneratorFamily::stylegan3;
        c.mapping.num_layers = 2;
        c.mapping.w_avg_beta = 0.998;
        c.stylegan3.channel_base = 16384;
        if (o.arch == "stylegan3-r") {
            c.stylegan3.conv_kernel = 1;
            c.stylegan3.use_radial_filters = true;
            c.stylegan3.channel_base *= 2;
            c.stylegan3.channel_max *= 2;
        }
        what = fmt::format("random {0}x{0} {1} generator, ffhqu-256 widths", o.random_resolution, o.arch == "stylegan3-r" ? "StyleGAN3-R" : "StyleGAN3-T");
    }
    c.validate();
    return std::make_shared<Generator>(c);
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
    const torch::Device device = parse_device(o.device);
    std::string what;
    auto G = bench_generator(o, what);
    G->to(device);
    G->eval();
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
    const torch::Device device = parse_device(o.device);
    std::string what;
    auto G = bench_generator(o, what);
    G->to(device);
    G->eval();
    MorphSpec spec;
    spec.seeds = {1, 2};
    spec.path.frames_per_transition = frames - 1;
    spec.batch = o.batch;
    MorphRenderer renderer(G, spec, device);
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

struct ProjectOpts {
    int steps = 20, quality_steps = 0, targets = 1, w_avg_samples = 10000;
    std::string space = "w", vgg;
    std::vector<std::string> losses;
    bool compare = false;
};

// The model's generator and discriminator, or random ones of the paper256 widths.
std::pair<std::shared_ptr<Generator>, std::shared_ptr<Discriminator>> bench_networks(const Opts& o, std::string& what) {
    if (!o.model.empty()) {
        const Model m = load_model_arg(o.model);
        what = o.model;
        return {m.generator(), m.D};
    }
    auto G = bench_generator(o, what);
    DiscriminatorConfig dc;
    dc.img_resolution = o.random_resolution;
    dc.channel_base = 16384;
    dc.conv_clamp = 256;
    dc.num_fp16_res = 4;
    dc.validate();
    return {G, std::make_shared<Discriminator>(dc)};
}

// PSNR (and LPIPS) of projections of the self-generated targets after `steps` steps.
void report_quality(Projector& projector, ProjectorOptions po, const torch::Tensor& targets, int steps, const std::shared_ptr<LpipsModel>& lpips,
                    const torch::Device& device) {
    po.steps = steps;
    const ProjectionResult r = projector.project(targets, po);
    const torch::Tensor q = psnr(r.images, targets);
    const int64_t n = targets.size(0);
    fmt::print("quality    {} steps: PSNR {:.2f} dB (mean of {} self-generated targets, seeds 0-{})\n", steps, q.mean().item<double>(), n, n - 1);
    if (!lpips) return;
    torch::NoGradGuard no_grad;
    const torch::Tensor a = lpips->features((r.images.to(device) + 1) * 127.5);
    const torch::Tensor b = lpips->features(targets.to(device));
    fmt::print("           LPIPS {:.4f} (mean)\n", (a - b).square().sum(1).mean().item<double>());
}

void bench_project(const Opts& o, const ProjectOpts& p) {
    const torch::Device device = parse_device(o.device);
    std::string what;
    const auto networks = bench_networks(o, what);
    const std::shared_ptr<Generator> G = networks.first;
    const std::shared_ptr<Discriminator> D = networks.second;
    std::shared_ptr<LpipsModel> lpips;
    if (!p.vgg.empty()) lpips = std::make_shared<LpipsModel>(p.vgg);
    ProjectorOptions po;
    po.space = parse_latent_space(p.space);
    po.w_avg_samples = p.w_avg_samples;
    po.loss = !p.losses.empty() ? parse_losses(p.losses) : default_projection_loss(lpips != nullptr, D != nullptr);
    G->to(device);
    if (D) D->to(device);
    if (lpips) lpips->to(device);
    Projector projector(G, po.loss.discriminator > 0 ? D : nullptr, lpips);

    std::vector<uint32_t> seeds;
    for (int k = 0; k < p.targets; ++k) seeds.push_back(static_cast<uint32_t>(k));
    torch::Tensor targets;
    {
        torch::NoGradGuard no_grad;
        G->eval();
        RenderSpec spec;
        spec.seeds = seeds;
        targets = (Renderer(G).render(spec) * 127.5 + 128).clamp(0, 255).floor().to(torch::kCPU);
    }
    // Steps/s from the third step on (the first ones include one-time set-up).
    po.steps = p.steps;
    auto steps_per_second = [&]() {
        std::chrono::steady_clock::time_point t_start;
        projector.project(targets, po, [&](const ProjectionStep& s) {
            sync(device);
            if (s.step == 2) t_start = std::chrono::steady_clock::now();
            return true;
        });
        return (p.steps - 2) / std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
    };
    const int res = G->config.img_resolution;
    fmt::print("model      {}\n", what);
    fmt::print("device     {}  threads {}  targets {} at {}x{}  space {}  loss {}\n", device.str(), torch::get_num_threads(), p.targets, res,
               res, p.space, describe_losses(po.loss));
    if (p.compare) {
        // One projection with each implementation, one after the other, from the same start.
        const Implementation before = implementation();
        double rates[2];
        for (int k = 0; k < 2; ++k) {
            set_implementation(k == 0 ? Implementation::reference : Implementation::fast);
            rates[k] = steps_per_second();
            fmt::print("{:<10} {:.2f} steps/s ({:.1f} ms/step) over {} steps\n", k == 0 ? "reference" : "fast", rates[k], 1000.0 / rates[k],
                       p.steps - 2);
        }
        set_implementation(before);
        fmt::print("speed-up   {:.2f}x (fast against reference)\n", rates[1] / rates[0]);
    } else {
        reset_peak_memory(device);
        const double rate = steps_per_second();
        const double peak = peak_memory_mib(device);
        fmt::print("speed      {:.2f} steps/s ({:.1f} ms/step) over {} steps\n", rate, 1000.0 / rate, p.steps - 2);
        if (peak >= 0) fmt::print("peak mem   {:.0f} MiB ({})\n", peak, device.is_cuda() ? "CUDA tensors" : "process resident set");
        else fmt::print("peak mem   not available (this build has no CUDA memory statistics)\n");
    }

    if (p.quality_steps > 0) report_quality(projector, po, targets, p.quality_steps, lpips, device);
}
struct DirectionsOpts {
    int samples = 10000, pca_samples = 100000, batch = 1000;
};

void bench_directions(const Opts& o, const DirectionsOpts& p) {
    const torch::Device device = parse_device(o.device);
    std::string what;
    auto G = bench_generator(o, what);
    G->to(device);
    G->eval();
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
}  // namespace

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

struct TrainBenchOpts {
    int res = 256, iters = 20, warmup = 4;
    TrainPreset cfg = TrainPreset::paper256;
    std::optional<int> batch, batch_gpu;
    bool compare = false;
};

void bench_train(const Opts& o, const TrainBenchOpts& b) {
    const torch::Device device = parse_device(o.device);
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

void register_bench(CLI::App& app) {
    auto* bench = app.add_subcommand("bench", "Benchmarks");
    bench->require_subcommand(1);
    auto o = std::make_shared<Opts>();
    auto* gen = bench->add_subcommand("generate", "Time mapping + synthesis (ms/image, images/s)");
    add_model_option(gen, o->model, "Model file or URL");
    gen->add_option("--random", o->random_resolution, "Instead of a model: random weights at this resolution with paper256 widths");
    gen->add_option("--arch", o->arch, "With --random: stylegan2 (paper256 widths), stylegan3-t or stylegan3-r (ffhqu-256 widths)")
        ->check(CLI::IsMember({"stylegan2", "stylegan3-t", "stylegan3-r"}));
    gen->add_option("--batch", o->batch, "Batch size")->check(above(0));
    gen->add_option("--iters", o->iters, "Timed iterations")->check(above(0));
    gen->add_option("--warmup", o->warmup, "Untimed warm-up iterations")->check(at_least(0));
    add_device_option(gen, o->device);
    gen->add_flag("--compare", o->compare, "Time the reference and the fast implementation in turn and print the speed-up");
    gen->callback([o]() { bench_generate(*o); });

    auto mo = std::make_shared<Opts>();
    auto frames = std::make_shared<int>(120);
    auto* morph = bench->add_subcommand("morph", "Time a morph: generation only, and generation + H.264 encoding (frames/s)");
    add_model_option(morph, mo->model, "Model file or URL");
    morph->add_option("--random", mo->random_resolution, "Instead of a model: random weights at this resolution with paper256 widths");
    morph->add_option("--frames", *frames, "Frames to render")->check(at_least(2));
    morph->add_option("--batch", mo->batch, "Batch size")->check(above(0));
    add_device_option(morph, mo->device);
    morph->callback([mo, frames]() { bench_morph(*mo, *frames); });

    auto po = std::make_shared<Opts>();
    auto pp = std::make_shared<ProjectOpts>();
    auto* proj = bench->add_subcommand("project", "Time projection steps (steps/s, peak memory) and measure reconstruction quality");
    add_model_option(proj, po->model, "Model file or URL");
    proj->add_option("--random", po->random_resolution, "Instead of a model: random weights at this resolution with paper256 widths");
    proj->add_option("--steps", pp->steps, "Timed steps (the first two are not counted)")->check(at_least(3));
    proj->add_option("--targets", pp->targets, "Self-generated targets (seeds 0..N-1) projected together")->check(above(0));
    proj->add_option("--space", pp->space, "w or w+")->check(CLI::IsMember({"w", "w+"}));
    proj->add_option("--loss", pp->losses, "lpips, discriminator and/or pixel (=WEIGHT)")->delimiter(',');
    proj->add_option("--vgg", pp->vgg, "TorchScript VGG16 for LPIPS (the reference's vgg16.pt)");
    proj->add_option("--quality-steps", pp->quality_steps, "Also run a full projection of this many steps and report PSNR / LPIPS")->check(at_least(0));
    proj->add_option("--w-avg-samples", pp->w_avg_samples, "z samples for the W mean and spread");
    add_device_option(proj, po->device);
    proj->add_flag("--compare", pp->compare, "Run the projection with the reference, then the fast implementation, and print the speed-up");
    proj->callback([po, pp]() { bench_project(*po, *pp); });

    auto dopt = std::make_shared<Opts>();
    auto dd = std::make_shared<DirectionsOpts>();
    auto* dirs = bench->add_subcommand("directions", "Time direction fitting (ridge, logistic, SVM) and PCA of sampled W");
    add_model_option(dirs, dopt->model, "Model file or URL");
    dirs->add_option("--random", dopt->random_resolution, "Instead of a model: random weights at this resolution with paper256 widths");
    dirs->add_option("--samples", dd->samples, "Latents for the fits")->check(at_least(100));
    dirs->add_option("--pca-samples", dd->pca_samples, "Latents for the PCA")->check(at_least(2));
    dirs->add_option("--batch", dd->batch, "Latents mapped per batch")->check(above(0));
    add_device_option(dirs, dopt->device);
    dirs->callback([dopt, dd]() { bench_directions(*dopt, *dd); });

    auto topt = std::make_shared<Opts>();
    auto tb = std::make_shared<TrainBenchOpts>();
    auto* tr = bench->add_subcommand("train", "Time training minibatches on random images (s/kimg, peak memory)");
    tr->add_option("--res", tb->res, "Resolution");
    add_enum_option(tr, "--cfg", tb->cfg, "Preset");
    tr->add_option("--batch", tb->batch, "Total batch (default: the preset's)");
    tr->add_option("--batch-gpu", tb->batch_gpu, "Images per forward pass");
    tr->add_option("--iters", tb->iters, "Timed minibatches")->check(above(0));
    tr->add_option("--warmup", tb->warmup, "Untimed minibatches first")->check(above(0));
    add_device_option(tr, topt->device);
    tr->add_flag("--compare", tb->compare, "Train with the reference, then the fast implementation, and print the speed-up");
    tr->callback([topt, tb]() { bench_train(*topt, *tb); });
}

}  // namespace latentkit::tools
