// latentkit project: finds the latent with which a model reproduces a photo.
#include <fmt/format.h>
#include <torch/torch.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "common.h"
#include "latentkit/atomic_file.h"
#include "latentkit/error.h"
#include "latentkit/io/face_align.h"
#include "latentkit/io/image.h"
#include "latentkit/npz.h"
#include "latentkit/io/tensor_image.h"
#include "latentkit/io/video.h"
#include "latentkit/log.h"
#include "latentkit/networks.h"
#include "latentkit/projector.h"
#include "progress_bar.h"

namespace latentkit::tools {
namespace fs = std::filesystem;

namespace {

struct Opts {
    std::string model, outdir, space = "w", align = "auto", vgg, device = "cpu", init_w, landmarks = io::default_landmark_model_path();
    std::string background = "ffffff";
    std::vector<std::string> targets, losses;
    int steps = 1000, face_index = 0, video_every = 1, video_fps = 30, batch = 1, tune_steps = 0, w_avg_samples = 10000;
    uint64_t seed = 303;
    double lr = 0.1, tune_lr = 3e-4, w_noise = 0.05;
    bool save_video = false, fixed_noise = false;
};

struct Target {
    std::string path, dir, method;
    Image8 image;  // model channels, model resolution
};

std::array<uint8_t, 3> parse_background(const std::string& text) {
    std::string t = text.size() == 7 && text[0] == '#' ? text.substr(1) : text;
    if (t.size() != 6 || t.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos)
        throw ArgumentError("--background " + text + ": expected an RGB colour like ffffff");
    const unsigned long v = std::stoul(t, nullptr, 16);
    return {static_cast<uint8_t>(v >> 16), static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v)};
}

// One folder per target when there are several, named after the file (made unique).
std::vector<std::string> target_dirs(const std::vector<std::string>& paths, const std::string& outdir) {
    if (paths.size() == 1) return {outdir};
    std::vector<std::string> dirs;
    std::map<std::string, int> used;
    for (const auto& p : paths) {
        std::string stem = fs::path(p).stem().string();
        if (stem.empty()) stem = "target";
        const int n = ++used[stem];
        dirs.push_back((fs::path(outdir) / (n == 1 ? stem : fmt::format("{}_{}", stem, n))).string());
    }
    return dirs;
}

Image8 side_by_side(const Image8& a, const Image8& b) {
    Image8 canvas;
    canvas.width = a.width + b.width;
    canvas.height = std::max(a.height, b.height);
    canvas.channels = 3;
    canvas.pixels.assign(static_cast<size_t>(canvas.width) * canvas.height * 3, 0);
    io::paste(canvas, io::convert_channels(a, 3), 0, 0);
    io::paste(canvas, io::convert_channels(b, 3), a.width, 0);
    return canvas;
}

void run(const Opts& o) {
    if (o.targets.empty()) throw ArgumentError("give at least one --target image");
    if (o.tune_steps > 0 && o.batch != 1) throw ArgumentError("--tune-generator tunes one model per target: use --batch 1");
    ProjectorOptions po;
    po.steps = o.steps;
    po.space = parse_latent_space(o.space);
    po.learning_rate = o.lr;
    po.initial_noise_factor = o.w_noise;
    po.seed = o.seed;
    po.optimize_noise = !o.fixed_noise;
    po.w_avg_samples = o.w_avg_samples;
    const io::AlignMode align = io::parse_align_mode(o.align);
    const auto background = parse_background(o.background);
    const torch::Device device = parse_device(o.device);

    const Model model = load_model_arg(o.model);
    auto G = model.generator();
    const GeneratorConfig& cfg = G->config;
    torch::Tensor init;
    if (!o.init_w.empty()) {
        init = read_ws_npz(o.init_w, cfg);
        if (init.size(0) != 1 && init.size(0) != static_cast<int64_t>(o.targets.size()))
            throw ShapeError(fmt::format("{}: holds {} latents; give one, or one per target ({})", o.init_w, init.size(0), o.targets.size()));
    }
    std::shared_ptr<LpipsModel> lpips;
    if (!o.vgg.empty()) lpips = std::make_shared<LpipsModel>(o.vgg);
    if (o.losses.empty()) {
        if (lpips) po.loss = {1.0, 0.0, 0.0};
        else if (model.D) po.loss = {0.0, 1.0, 0.0};
        else {
            po.loss = {0.0, 0.0, 1.0};
            log_warn(fmt::format("{} has no discriminator and no --vgg was given: using the pixel loss alone", model.path));
        }
    } else {
        po.loss = parse_losses(o.losses);
    }
    if (po.loss.lpips > 0 && !lpips) throw ArgumentError("the lpips loss needs --vgg vgg16.pt (the reference's TorchScript VGG16)");
    if (po.loss.discriminator > 0 && !model.D)
        throw ModelFormatError(fmt::format("{}: holds no discriminator, which the discriminator loss needs (use --vgg or --loss pixel)", model.path));
    TuningOptions to;
    to.steps = std::max(1, o.tune_steps);
    to.learning_rate = o.tune_lr;
    to.loss = po.loss;
    to.loss.pixel = std::max(to.loss.pixel, 1.0);

    // Read and prepare every target before any work, so bad input fails early and leaves nothing.
    const std::unique_ptr<io::FaceDetector> detector = io::make_face_detector(align, o.landmarks);
    const auto dirs = target_dirs(o.targets, o.outdir);
    std::vector<Target> targets;
    for (size_t k = 0; k < o.targets.size(); ++k) {
        io::ReadImageOptions ro;
        ro.background = background;
        const Image8 photo = io::read_image(o.targets[k], ro);
        io::AlignedImage aligned = io::align_image(photo, o.targets[k], align, cfg.img_resolution, detector.get(), o.face_index);
        log_info(fmt::format("{}: {}x{}, {}", o.targets[k], photo.width, photo.height, aligned.method));
        targets.push_back({o.targets[k], dirs[k], aligned.method, io::convert_channels(aligned.image, cfg.img_channels)});
    }

    G->to(device);
    auto D = model.D;
    if (D && po.loss.discriminator > 0) D->to(device);
    else D = nullptr;
    if (lpips) lpips->to(device);
    Projector projector(G, D, lpips);
    log_info(fmt::format("projecting {} target(s) in {} for {} steps, loss {}, on {}", targets.size(), o.space, o.steps,
                         describe_losses(po.loss), device.str()));

    for (size_t start = 0; start < targets.size(); start += o.batch) {
        const size_t n = std::min<size_t>(o.batch, targets.size() - start);
        std::vector<torch::Tensor> batch;
        for (size_t k = 0; k < n; ++k) batch.push_back(io::tensor_from_image(targets[start + k].image));
        const torch::Tensor target_tensor = torch::stack(batch);
        po.initial_ws = init.defined() ? (init.size(0) == 1 ? init : init.narrow(0, start, n)) : torch::Tensor();
        for (size_t k = 0; k < n; ++k) ensure_output_dir(targets[start + k].dir);

        std::vector<std::unique_ptr<io::FrameSink>> videos;
        if (o.save_video) {
            io::VideoOptions vo;
            vo.fps = o.video_fps;
            for (size_t k = 0; k < n; ++k)
                videos.push_back(io::make_async(io::open_frame_sink((fs::path(targets[start + k].dir) / "proj.mp4").string(),
                                                                    2 * cfg.img_resolution, cfg.img_resolution, vo)));
        }
        const std::string label = targets.size() == 1 ? "project" : fmt::format("project {}/{}", start + 1, targets.size());
        ProgressBar bar(label, o.steps, "step");
        auto on_step = [&](const ProjectionStep& s) {
            bar.set_note(fmt::format("loss {:.4f}", s.loss.mean().item<double>()));
            bar.update(s.step);
            if (!videos.empty() && (s.step % o.video_every == 0 || s.step == s.steps)) {
                const auto frames = io::images_from_batch(s.images);
                for (size_t k = 0; k < n; ++k) videos[k]->write(side_by_side(targets[start + k].image, frames[k]));
            }
            return true;
        };
        const ProjectionResult result = projector.project(target_tensor, po, on_step);
        bar.finish();
        const torch::Tensor quality = psnr(result.images, target_tensor);
        const auto images = io::images_from_batch(result.images);

        std::vector<std::shared_ptr<Generator>> tuned(n);
        std::vector<Image8> tuned_images(n);
        std::vector<double> tuned_psnr(n, 0.0);
        if (o.tune_steps > 0) {
            ProgressBar tune_bar("tune", o.tune_steps, "step");
            tuned[0] = projector.tune(result, target_tensor, to, [&](const ProjectionStep& s) {
                tune_bar.set_note(fmt::format("loss {:.4f}", s.loss.mean().item<double>()));
                tune_bar.update(s.step);
                return true;
            });
            tune_bar.finish();
            torch::NoGradGuard no_grad;
            const torch::Tensor img = tuned[0]->synthesis->forward(result.ws.to(device)).to(torch::kCPU);
            tuned_images[0] = io::images_from_batch(img)[0];
            tuned_psnr[0] = psnr(img, target_tensor)[0].item<double>();
        }

        for (size_t k = 0; k < n; ++k) {
            const Target& t = targets[start + k];
            const fs::path dir(t.dir);
            write_png((dir / "target.png").string(), t.image);
            write_png((dir / "proj.png").string(), images[k]);
            write_ws_npz((dir / "projected_w.npz").string(), result.ws.narrow(0, k, 1));
            if (!videos.empty()) videos[k]->finish();
            nlohmann::json info = {{"target", t.path},
                                   {"alignment", t.method},
                                   {"model", model.path},
                                   {"space", o.space},
                                   {"steps", o.steps},
                                   {"seed", o.seed},
                                   {"loss", describe_losses(po.loss)},
                                   {"optimized_noise", po.optimize_noise},
                                   {"distance", result.loss[k].item<double>()},
                                   {"psnr_db", quality[k].item<double>()}};
            std::string note = fmt::format("PSNR {:.2f} dB", quality[k].item<double>());
            if (tuned[k]) {
                Model out;
                out.G_ema = tuned[k];
                out.info["description"] = fmt::format("{} pivotally tuned for {} ({} steps)", fs::path(model.path).filename().string(),
                                                      fs::path(t.path).filename().string(), o.tune_steps);
                tuned[k]->to(torch::kCPU);
                save_model((dir / "tuned.safetensors").string(), out, {true});
                write_png((dir / "proj_tuned.png").string(), tuned_images[k]);
                info["tuned_steps"] = o.tune_steps;
                info["tuned_psnr_db"] = tuned_psnr[k];
                note += fmt::format(", tuned {:.2f} dB", tuned_psnr[k]);
            }
            const std::string text = info.dump(2) + "\n";
            write_file_atomic((dir / "projection.json").string(), text.data(), text.size());
            log_info(fmt::format("{}: distance {:.4f}, {} -> {}", t.path, result.loss[k].item<double>(), note, t.dir));
        }
    }
}

}  // namespace

void register_project(CLI::App& app) {
    auto o = std::make_shared<Opts>();
    auto* cmd = app.add_subcommand("project", "Find the latent with which a model reproduces a photo");
    add_model_option(cmd, o->model);
    cmd->add_option("--target,-t", o->targets, "Photo to project (repeat for several)")->required();
    add_outdir_option(cmd, o->outdir, "Output folder (one sub-folder per target when there are several)");
    cmd->add_option("--steps", o->steps, "Optimisation steps")->check(above(0));
    cmd->add_option("--space", o->space, "Latent space: w (one w, the reference) or w+ (one per layer)")->check(CLI::IsMember({"w", "w+"}));
    cmd->add_option("--init-w", o->init_w, "Start from these latents (projected_w.npz), e.g. a w result to refine in w+");
    cmd->add_option("--align", o->align, "Photo preparation: auto, face, center or none")->check(CLI::IsMember({"auto", "face", "center", "none"}));
    cmd->add_option("--face-index", o->face_index, "Which face when there are several (0 = largest)")->check(at_least(0));
    cmd->add_option("--landmarks", o->landmarks, "dlib 68-point landmark model");
    cmd->add_option("--background", o->background, "RGB colour under transparent pixels, e.g. ffffff");
    cmd->add_option("--vgg", o->vgg, "TorchScript VGG16 for the LPIPS loss (the reference's vgg16.pt)");
    cmd->add_option("--loss", o->losses, "lpips, discriminator and/or pixel, each optionally =WEIGHT (default: lpips with --vgg, "
                                         "else discriminator)")->delimiter(',');
    cmd->add_option("--lr", o->lr, "Peak learning rate");
    cmd->add_option("--w-noise", o->w_noise, "Initial W noise, in units of the W spread (decays to 0 at 75% of the steps)")->check(at_least(0));
    cmd->add_option("--seed", o->seed, "Seed of the noise inputs and W noise");
    cmd->add_option("--w-avg-samples", o->w_avg_samples, "z samples for the W mean and spread")->check(above(0));
    cmd->add_flag("--fixed-noise", o->fixed_noise, "Keep the model's constant noise instead of optimising it "
                                                   "(generate --projected-w then reproduces proj.png exactly)");
    cmd->add_option("--batch", o->batch, "Targets optimised together (each with its own latent and optimiser state)")->check(above(0));
    cmd->add_flag("--save-video", o->save_video, "Write proj.mp4: target and synthesis side by side");
    cmd->add_option("--video-every", o->video_every, "Put every k-th step in the video")->check(above(0));
    cmd->add_option("--video-fps", o->video_fps, "Frame rate of the video")->check(above(0));
    cmd->add_option("--tune-generator", o->tune_steps, "Pivotal tuning: fine-tune a copy of G for STEPS steps, save tuned.safetensors")->check(at_least(0));
    cmd->add_option("--tune-lr", o->tune_lr, "Learning rate of pivotal tuning");
    add_device_option(cmd, o->device);
    cmd->callback([o]() { run(*o); });
}

}  // namespace latentkit::tools
