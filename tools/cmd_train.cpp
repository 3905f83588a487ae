// latentkit train: StyleGAN2-ADA training on a dataset made by `latentkit dataset` (or the reference tool).
#include <fmt/format.h>
#include <torch/torch.h>

#include <filesystem>
#include <memory>

#include "common.h"
#include "latentkit/io/download.h"
#include "latentkit/error.h"
#include "latentkit/io/dataset.h"
#include "latentkit/png.h"
#include "latentkit/stop.h"
#include "latentkit/io/video.h"
#include "latentkit/log.h"
#include "latentkit/train.h"
#include "progress_bar.h"

namespace latentkit::tools {
namespace {

namespace fs = std::filesystem;

struct Opts {
    TrainOptions t;
    std::string data, metrics = "auto", video_ext = ".mp4";
    size_t max_images = 0;
    bool progress_video = false, fp32 = false, tf32 = false, no_tf32 = false;
    int video_fps = 10;
    std::string ema_rampup;
};

// The fixed-seed grids of a run, oldest first, as a video.
void write_progress_video(const std::string& outdir, const std::string& path, int fps) {
    std::vector<std::string> grids;
    for (const auto& e : fs::directory_iterator(outdir)) {
        const std::string n = e.path().filename().string();
        if (n.rfind("fakes-", 0) == 0 && e.path().extension() == ".png") grids.push_back(e.path().string());
    }
    std::sort(grids.begin(), grids.end(), [](const std::string& a, const std::string& b) {
        const bool ia = a.find("fakes-init") != std::string::npos, ib = b.find("fakes-init") != std::string::npos;
        return ia != ib ? ia : a < b;
    });
    if (grids.empty()) throw Error(outdir + ": no fakes-*.png grids to make a progress video from");
    const Image8 first = read_png(grids[0]);
    io::VideoOptions vo;
    vo.fps = fps;
    auto sink = io::open_frame_sink(path, first.width, first.height, vo);
    for (const auto& g : grids) {
        Image8 img = read_png(g);
        if (img.channels == 1) {
            Image8 rgb{img.width, img.height, 3, std::vector<uint8_t>(img.pixels.size() * 3)};
            for (size_t k = 0; k < img.pixels.size(); ++k) rgb.pixels[k * 3] = rgb.pixels[k * 3 + 1] = rgb.pixels[k * 3 + 2] = img.pixels[k];
            img = std::move(rgb);
        }
        sink->write(img);
    }
    sink->finish();
    log_info(fmt::format("wrote {} ({} frames)", path, grids.size()));
}

// A --metrics item: the reference's names, or fid / kid for short.
Metric metric_named(const std::string& name) {
    if (name == "fid") return Metric::fid50k_full;
    if (name == "kid") return Metric::kid50k_full;
    if (const auto m = option_from_name<Metric>(name)) return *m;
    throw ArgumentError("--metrics " + name + ": unknown metric (" + option_choices<Metric>() + ", or fid / kid)");
}

void run(Opts& o, const DistributedEnv& env) {
    TrainOptions& t = o.t;
    if (!o.ema_rampup.empty()) {
        if (o.ema_rampup == "none") t.ema_rampup = -1.0;
        else {
            try {
                t.ema_rampup = std::stod(o.ema_rampup);
            } catch (const std::exception&) {
                throw ArgumentError("--ema-rampup must be a number or 'none'");
            }
        }
    }
    t.fp16 = !o.fp32;
    if (o.tf32 && o.no_tf32) throw ArgumentError("--tf32 and --no-tf32 contradict each other");
    t.allow_tf32 = o.tf32;
    t.device = process_device(device_from_name(t.device).str(), env);
    const torch::Device device(t.device);
    if (o.metrics == "auto") {
        if (t.inception.empty()) log_info("metrics: none (give --inception inception-2015-12-05.pt to compute FID/KID at snapshots)");
        else t.metrics = {Metric::fid50k_full};
    } else if (o.metrics != "none") {
        t.metrics.clear();
        size_t p = 0;
        while (p <= o.metrics.size()) {
            const size_t q = std::min(o.metrics.find(',', p), o.metrics.size());
            if (q > p) t.metrics.push_back(metric_named(o.metrics.substr(p, q - p)));
            p = q + 1;
        }
        if (t.inception.empty()) throw ArgumentError("--metrics " + o.metrics + " needs --inception (a TorchScript Inception network)");
    }
    if (t.cache_dir.empty() && !t.metrics.empty()) t.cache_dir = io::cache_dir();
    if (t.resume != "auto") t.resume = model_file_arg(t.resume);
    io::ImageDataset data(o.data, o.max_images);
    log_info(fmt::format("dataset {}: {} images, {}x{}, {} channel(s){}", o.data, data.size(), data.resolution(), data.resolution(),
                         data.channels(), data.label_dim() ? fmt::format(", {} label(s)", data.label_dim()) : ""));
    if (env.world_size > 1) log_info(fmt::format("process {} of {} ({}:{})", env.rank, env.world_size, env.master_addr, env.master_port));

    // SIGINT / SIGTERM (main's handler) ask the trainer to stop cleanly: it snapshots and returns.
    std::unique_ptr<ProgressBar> bar;
    TrainCallbacks cb;
    int64_t bar_total = 0;
    cb.step = [&](int64_t nimg, int64_t total) {
        if (env.rank == 0) {
            if (!bar || bar_total != total) bar = std::make_unique<ProgressBar>("train", total, "img"), bar_total = total;
            bar->update(nimg);
        }
        return !stop_requested();
    };
    cb.tick = [&](const TickStats& s) {
        const double mem = peak_memory_mib(device);
        std::string line = fmt::format("tick {:<4} kimg {:.3f}/{:g}  sec/kimg {:.2f}  G {:.3f}  D {:.3f}  R1 {:.3f}  PL {:.3f}  p {:.3f}  r_t {:.2f}",
                                       s.tick, s.kimg, s.total_kimg, s.sec_per_kimg, s.loss_g, s.loss_d, s.loss_r1, s.loss_pl, s.augment_p, s.r_t);
        if (mem > 0) line += fmt::format("  mem {:.2f} GB", mem / 1024);
        for (const auto& [name, value] : s.metrics) line += fmt::format("  {} {:.4f}", name, value);
        if (!s.snapshot.empty()) line += "  -> " + fs::path(s.snapshot).filename().string();
        log_info(line);
        reset_peak_memory(device);
    };
    cb.write_image = [](const std::string& path, int w, int h, int c, const std::vector<uint8_t>& pixels) {
        write_png(path, Image8{w, h, c, pixels});
    };
    const TrainEnd end = train(data, t, cb);
    if (bar) bar->finish();
    const std::string last = latest_snapshot(t.outdir);
    if (end != TrainEnd::stopped) log_info("finished; latest snapshot: " + last);
    if (o.progress_video && env.rank == 0) write_progress_video(t.outdir, (fs::path(t.outdir) / ("progress" + o.video_ext)).string(), o.video_fps);
    if (end == TrainEnd::stopped)
        throw CancelledError("training stopped on request: kept the snapshot " + last + " (continue with --resume auto)");
}

}  // namespace

void register_train(CLI::App& app) {
    auto o = std::make_shared<Opts>();
    TrainOptions& t = o->t;
    auto* cmd = app.add_subcommand("train", "Train a StyleGAN2-ADA model (CPU or CUDA; several processes with torchrun-style variables)");
    cmd->add_option("--data", o->data, "Dataset folder or .zip (latentkit dataset / the reference dataset_tool)")->required();
    add_outdir_option(cmd, t.outdir, "Run folder: snapshots, grids, log.jsonl");
    add_enum_option(cmd, "--cfg", t.cfg, "Preset");
    cmd->add_option("--kimg", t.kimg, "Train until this many thousand real images have been shown")->check(above(0));
    cmd->add_option("--tick", t.tick_kimg, "Progress line every this many kimg")->check(above(0));
    cmd->add_option("--snap", t.snap, "Snapshot at tick 0 and every this many ticks, as the reference (0: only at the end)")->check(at_least(0));
    cmd->add_option("--seed", t.seed, "Random seed of the run");
    cmd->add_option("--resume", t.resume, "Continue from a latentkit snapshot ('auto': the newest in --outdir) or start from another model file or URL");
    cmd->add_flag("--cond", t.cond, "Conditional model on the dataset's labels");
    cmd->add_flag("--mirror", t.mirror, "Add x-flipped copies of the images");
    cmd->add_option("--max-images", o->max_images, "Use only the first N images");
    cmd->add_option("--batch", t.batch, "Total batch size");
    cmd->add_option("--batch-gpu", t.batch_gpu, "Images per forward pass (the rest by gradient accumulation)");
    cmd->add_option("--gamma", t.gamma, "R1 regularisation weight");
    cmd->add_option("--glr", t.lr_g, "Generator learning rate");
    cmd->add_option("--dlr", t.lr_d, "Discriminator learning rate");
    cmd->add_option("--map", t.map_layers, "Mapping network depth");
    cmd->add_option("--cbase", t.channel_base, "Channel base (channels = min(cbase / res, cmax))");
    cmd->add_option("--cmax", t.channel_max, "Maximum channels");
    cmd->add_option("--z-dim", t.z_dim, "Latent z size (512 in the presets)");
    cmd->add_option("--w-dim", t.w_dim, "Latent w size (512 in the presets)");
    cmd->add_option("--mbstd-group", t.mbstd_group, "Minibatch-stddev group size");
    cmd->add_option("--ema", t.ema_kimg, "G EMA half-life in kimg");
    cmd->add_option("--ema-rampup", o->ema_rampup, "EMA ramp-up ratio, or 'none' (default: the preset's; none when fine-tuning from a model)");
    cmd->add_option("--style-mixing", t.style_mixing, "Style mixing probability (preset: 0.9, cifar 0)");
    cmd->add_option("--pl-weight", t.pl_weight, "Path-length regularisation weight (preset: 2, cifar 0)");
    add_enum_option(cmd, "--aug", t.aug, "Augmentation");
    cmd->add_option("--p", t.p, "Augmentation probability (start value for ada, constant for fixed)");
    cmd->add_option("--target", t.ada_target, "ADA target for E[sign(D(real))]");
    cmd->add_option("--ada-kimg", t.ada_kimg, "ADA speed: kimg for p to go from 0 to 1 (default 500; 100 when fine-tuning from a model)")->check(above(0));
    add_enum_option(cmd, "--augpipe", t.augpipe, "Augmentation pipeline");
    cmd->add_option("--freezed", t.freezed, "Freeze the first N discriminator layers (transfer learning)")->check(at_least(0));
    add_device_option(cmd, t.device, "cpu, cuda, cuda:N or auto (with several processes: cuda:LOCAL_RANK)");
    add_enum_option(cmd, "--dist-backend", t.dist_backend, "Several processes (auto: NCCL on CUDA when built with it, else Gloo)");
    cmd->add_flag("--fp32", o->fp32, "No fp16 in the top resolutions (CUDA)");
    cmd->add_flag("--tf32", o->tf32, "Allow TF32 matmuls and convolutions on CUDA (faster, less exact; off by default, as the reference's --allow-tf32)");
    cmd->add_flag("--no-tf32", o->no_tf32, "Disallow TF32 (the default; kept for older scripts)");
    cmd->add_option("--grid", [o](const CLI::results_t& r) {
        const std::string& s = r[0];
        const auto x = s.find('x');
        try {
            o->t.grid_w = std::stoi(s.substr(0, x));
            o->t.grid_h = std::stoi(s.substr(x + 1));
        } catch (const std::exception&) {
            return false;
        }
        return x != std::string::npos && o->t.grid_w > 0 && o->t.grid_h > 0;
    }, "Fakes grid size WxH (default from the resolution)");
    cmd->add_option("--inception", t.inception, "TorchScript Inception (reference inception-2015-12-05.pt) for FID/KID");
    cmd->add_option("--metrics", o->metrics, "fid50k_full,kid50k_full, none, or auto (fid50k_full when --inception is given)");
    cmd->add_option("--metric-samples", t.metric_samples, "Generated images per metric")->check(CLI::Range(2, 1000000));
    cmd->add_option("--cache-dir", t.cache_dir, "Cache for dataset feature statistics (default ~/.cache/latentkit)");
    cmd->add_flag("--progress-video", o->progress_video, "At the end, write progress.mp4 from the fakes grids");
    cmd->add_option("--progress-video-fps", o->video_fps, "Frames per second of the progress video")->check(CLI::Range(1, 120));
    cmd->callback([o]() {
        const DistributedEnv env = DistributedEnv::from_environment();
        run(*o, env);
    });
}

}  // namespace latentkit::tools
