// latentkit project: finds the latent with which a model reproduces a photo.
#include <fmt/format.h>
#include <torch/torch.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "common.h"
#include "latentkit/io/csv.h"
#include "latentkit/atomic_file.h"
#include "latentkit/error.h"
#include "latentkit/io/dataset.h"
#include "latentkit/io/face_align.h"
#include "latentkit/io/image.h"
#include "latentkit/npz.h"
#include "latentkit/io/tensor_image.h"
#include "latentkit/io/video.h"
#include "latentkit/log.h"
#include "latentkit/networks.h"
#include "latentkit/projector.h"
#include "latentkit/stop.h"
#include "latentkit/render.h"
#include "progress_bar.h"

namespace latentkit::tools {
namespace fs = std::filesystem;

namespace {

struct Opts {
    std::string model, outdir, vgg, device = "cpu", init_w, landmarks = io::default_landmark_model_path(), target_dir;
    LatentSpace space = LatentSpace::w;
    io::AlignMode align = io::AlignMode::automatic;
    std::string background = "ffffff";
    std::vector<std::string> targets, losses;
    int steps = 1000, face_index = 0, video_every = 1, video_fps = 30, batch = 1, tune_steps = 0, w_avg_samples = 10000;
    uint64_t seed = 303;
    double lr = 0.1, tune_lr = 3e-4, w_noise = 0.05;
    bool save_video = false, fixed_noise = false, optimized_noise_image = false;
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

// The projector's settings from the options: losses chosen from what the model and --vgg offer.
ProjectorOptions projector_options(const Opts& o, const Model& model, bool have_lpips) {
    ProjectorOptions po;
    po.steps = o.steps;
    po.space = o.space;
    po.learning_rate = o.lr;
    po.initial_noise_factor = o.w_noise;
    po.seed = o.seed;
    po.optimize_noise = !o.fixed_noise;
    po.images_with_optimized_noise = o.optimized_noise_image;
    po.w_avg_samples = o.w_avg_samples;
    po.loss = !o.losses.empty() ? parse_losses(o.losses) : default_projection_loss(have_lpips, model.D != nullptr);
    if (o.losses.empty() && !have_lpips && !model.D)
        log_warn(fmt::format("{} has no discriminator and no --vgg was given: using the pixel loss alone", model.path));
    if (po.loss.lpips > 0 && !have_lpips) throw ArgumentError("the lpips loss needs --vgg vgg16.pt (the reference's TorchScript VGG16)");
    if (po.loss.discriminator > 0 && !model.D)
        throw ModelFormatError(fmt::format("{}: holds no discriminator, which the discriminator loss needs (use --vgg or --loss pixel)", model.path));
    return po;
}

// Reads and prepares every target (paths[k], written to dirs[k]) before any work, so bad input fails
// early and leaves nothing.
std::vector<Target> prepare_targets(const Opts& o, const GeneratorConfig& cfg, const std::vector<std::string>& paths, const std::vector<std::string>& dirs) {
    const auto background = parse_background(o.background);
    const std::unique_ptr<io::FaceDetector> detector = io::make_face_detector(o.align, o.landmarks);
    std::vector<Target> targets;
    for (size_t k = 0; k < paths.size(); ++k) {
        io::ReadImageOptions ro;
        ro.background = background;
        const Image8 photo = io::read_image(paths[k], ro);
        io::AlignedImage aligned = io::align_image(photo, paths[k], o.align, cfg.img_resolution, detector.get(), o.face_index);
        log_info(fmt::format("{}: {}x{}, {}", paths[k], photo.width, photo.height, aligned.method));
        targets.push_back({paths[k], dirs[k], aligned.method, io::convert_channels(aligned.image, cfg.img_channels)});
    }
    return targets;
}

// --target-dir: the images below the folder (sorted), each written to OUTDIR/<its path without the
// extension> (with the extension when two names would meet).
struct FolderTargets {
    std::vector<std::string> names, paths, dirs;  // every image found
};

FolderTargets folder_targets(const Opts& o) {
    if (!fs::is_directory(o.target_dir)) throw IoError(o.target_dir + ": no such folder");
    const io::ImageSource source(o.target_dir);
    if (source.names.empty()) throw IoError(o.target_dir + ": holds no images (png, jpg, jpeg, webp, bmp, tif, ppm, pgm)");
    FolderTargets f;
    std::map<std::string, int> stems;
    for (const auto& n : source.names) ++stems[fs::path(n).replace_extension().generic_string()];
    for (const auto& n : source.names) {
        const std::string stem = fs::path(n).replace_extension().generic_string();
        const std::string out = stems[stem] > 1 ? stem + "_" + fs::path(n).extension().string().substr(1) : stem;
        f.names.push_back(n);
        f.paths.push_back((fs::path(o.target_dir) / n).string());
        f.dirs.push_back((fs::path(o.outdir) / out).string());
    }
    return f;
}

// A finished projection's record (projection.json without interrupted_at_step), or nothing.
std::optional<nlohmann::json> finished_projection(const std::string& dir) {
    const fs::path file = fs::path(dir) / "projection.json";
    if (!fs::exists(file)) return std::nullopt;
    try {
        nlohmann::json j = nlohmann::json::parse(read_file(file.string()));
        if (j.contains("interrupted_at_step") || !fs::exists(fs::path(dir) / "projected_w.npz")) return std::nullopt;
        return j;
    } catch (const nlohmann::json::exception&) {
        return std::nullopt;  // damaged: projected again
    }
}

// OUTDIR/index.csv: file, loss, PSNR and output folder of every image projected so far.
void write_index(const Opts& o, const FolderTargets& f) {
    std::string csv = "file,loss,psnr_db,output\n";
    for (size_t k = 0; k < f.names.size(); ++k)
        if (const auto j = finished_projection(f.dirs[k]))
            csv += fmt::format("{},{:.6f},{:.3f},{}\n", io::csv_field(f.names[k]), j->value("distance", 0.0), j->value("psnr_db", 0.0),
                               io::csv_field(fs::relative(f.dirs[k], o.outdir).generic_string()));
    ensure_output_dir(o.outdir);
    write_file_atomic((fs::path(o.outdir) / "index.csv").string(), csv.data(), csv.size());
}

// What one batch of targets came to: the projection and, with --tune-generator, the tuned copy.
struct BatchResult {
    ProjectionResult projection;
    torch::Tensor psnr;                 // [n]
    std::shared_ptr<Generator> tuned;   // the first target's, with --tune-generator
    Image8 tuned_image;
    double tuned_psnr = 0;
};

// Pivotal tuning of a copy of G for the batch's (single) target.
void tune_first(const Opts& o, Projector& projector, const ProjectorOptions& po, const torch::Tensor& target, const torch::Device& device,
                BatchResult& r) {
    TuningOptions to;
    to.steps = std::max(1, o.tune_steps);
    to.learning_rate = o.tune_lr;
    to.loss = po.loss;
    to.loss.pixel = std::max(to.loss.pixel, 1.0);
    ProgressBar bar("tune", o.tune_steps, "step");
    r.tuned = projector.tune(r.projection, target, to, [&](const ProjectionStep& s) {
        bar.set_note(fmt::format("loss {:.4f}", s.loss.mean().item<double>()));
        bar.update(s.step);
        return true;
    });
    bar.finish();
    RenderSpec spec;
    spec.ws = r.projection.ws;
    const torch::Tensor img = Renderer(r.tuned).render(spec).to(torch::kCPU);
    r.tuned_image = io::images_from_uint8(projection_uint8(img))[0];
    r.tuned_psnr = psnr(img, target)[0].item<double>();
}

// Projects targets[start, start + n) together, writing the progress videos as it goes.
// `overall`: with --target-dir, one bar over every image's steps (this batch's start at `overall_done`).
BatchResult project_batch(const Opts& o, Projector& projector, ProjectorOptions po, const std::vector<Target>& targets, size_t start,
                          size_t n, const torch::Tensor& init, const GeneratorConfig& cfg, const torch::Device& device,
                          ProgressBar* overall = nullptr, int64_t overall_done = 0) {
    std::vector<torch::Tensor> batch;
    for (size_t k = 0; k < n; ++k) batch.push_back(io::tensor_from_image(targets[start + k].image));
    const torch::Tensor target_tensor = torch::stack(batch);
    po.initial_ws = init.defined() ? (init.size(0) == 1 ? init : init.narrow(0, static_cast<int64_t>(start), static_cast<int64_t>(n))) : torch::Tensor();
    for (size_t k = 0; k < n; ++k) ensure_output_dir(targets[start + k].dir);
    std::vector<std::unique_ptr<io::FrameSink>> videos;
    if (o.save_video) {
        io::VideoOptions vo;
        vo.fps = o.video_fps;
        for (size_t k = 0; k < n; ++k)
            videos.push_back(io::make_async(io::open_frame_sink((fs::path(targets[start + k].dir) / "proj.mp4").string(), 2 * cfg.img_resolution,
                                                                cfg.img_resolution, vo)));
    }
    const std::string label = targets.size() == 1 ? "project" : fmt::format("project {}/{}", start + 1, targets.size());
    std::optional<ProgressBar> own;
    if (!overall) own.emplace(label, o.steps, "step");
    ProgressBar& bar = overall ? *overall : *own;
    BatchResult r;
    r.projection = projector.project(target_tensor, po, [&](const ProjectionStep& s) {
        bar.set_note(fmt::format("{}loss {:.4f}", overall ? fmt::format("image {}/{}, ", start + 1, targets.size()) : "", s.loss.mean().item<double>()));
        bar.update(overall_done + s.step);
        if (!videos.empty() && (s.step % o.video_every == 0 || s.step == s.steps || stop_requested())) {
            // As the reference's video: what each step's latent gives with the model's constant noise.
            const auto frames = io::images_from_uint8(projection_uint8(projector.render(s.ws)));
            for (size_t k = 0; k < n; ++k) videos[k]->write(side_by_side(targets[start + k].image, frames[k]));
        }
        return true;
    });
    if (own) own->finish();
    for (auto& v : videos) v->finish();  // a stopped projection's video ends at its last step
    r.psnr = psnr(r.projection.images, target_tensor);
    if (o.tune_steps > 0 && r.projection.steps_done == o.steps) tune_first(o, projector, po, target_tensor, device, r);
    return r;
}

// The optimised noise of target k, named by the generator's noise buffers ([1, 1, r, r] each).
void write_noise_npz(const std::string& path, const ProjectionResult& r, int64_t k) {
    std::vector<std::pair<std::string, TensorData>> arrays;
    for (size_t i = 0; i < r.noise.size(); ++i) {
        const torch::Tensor t = r.noise[i].narrow(0, k, 1).to(torch::kCPU, torch::kFloat32).contiguous();
        const std::string name = i < r.noise_names.size() ? r.noise_names[i] : fmt::format("noise{}", i);
        arrays.emplace_back(name, TensorData::from_floats(t.sizes().vec(), std::vector<float>(t.data_ptr<float>(), t.data_ptr<float>() + t.numel())));
    }
    write_npz(path, arrays);
}

// Writes target.png, proj.png, projected_w.npz, projection.json (and the tuned model) of target k of a batch.
void write_target(const Opts& o, const Model& model, const ProjectorOptions& po, const Target& t, BatchResult& r, size_t k) {
    const fs::path dir(t.dir);
    write_png((dir / "target.png").string(), t.image);
    write_png((dir / "proj.png").string(), io::images_from_uint8(projection_uint8(r.projection.images.narrow(0, static_cast<int64_t>(k), 1)))[0]);
    write_latents((dir / "projected_w.npz").string(), r.projection.ws.narrow(0, static_cast<int64_t>(k), 1));
    const bool noisy_image = po.images_with_optimized_noise && !r.projection.noise.empty();
    if (noisy_image) write_noise_npz((dir / "projected_noise.npz").string(), r.projection, static_cast<int64_t>(k));
    const double distance = r.projection.loss[static_cast<int64_t>(k)].item<double>(), quality = r.psnr[static_cast<int64_t>(k)].item<double>();
    nlohmann::json info = {{"target", t.path}, {"alignment", t.method}, {"model", model.path}, {"space", option_name(po.space)},
                           {"steps", o.steps}, {"seed", o.seed}, {"loss", describe_losses(po.loss)}, {"optimized_noise", po.optimize_noise},
                           {"image_noise", noisy_image ? "optimized (projected_noise.npz)" : "model constant"},
                           {"distance", distance}, {"psnr_db", quality}};
    if (r.projection.steps_done < o.steps) info["interrupted_at_step"] = r.projection.steps_done;
    std::string note = fmt::format("PSNR {:.2f} dB", quality);
    if (k == 0 && r.tuned) {
        Model out;
        out.G_ema = r.tuned;
        out.info["description"] = fmt::format("{} pivotally tuned for {} ({} steps)", fs::path(model.path).filename().string(),
                                              fs::path(t.path).filename().string(), o.tune_steps);
        r.tuned->to(torch::kCPU);
        save_model((dir / "tuned.safetensors").string(), out, {true});
        write_png((dir / "proj_tuned.png").string(), r.tuned_image);
        info["tuned_steps"] = o.tune_steps;
        info["tuned_psnr_db"] = r.tuned_psnr;
        note += fmt::format(", tuned {:.2f} dB", r.tuned_psnr);
    }
    const std::string text = info.dump(2) + "\n";
    write_file_atomic((dir / "projection.json").string(), text.data(), text.size());
    log_info(fmt::format("{}: distance {:.4f}, {} -> {}", t.path, distance, note, t.dir));
}

void run(const Opts& o) {
    if (o.targets.empty() == o.target_dir.empty()) throw ArgumentError("give --target images or one --target-dir folder");
    if (o.tune_steps > 0 && o.batch != 1) throw ArgumentError("--tune-generator tunes one model per target: use --batch 1");
    const torch::Device device = device_from_name(o.device);
    const Model model = load_model_arg(o.model);
    auto G = model.generator();
    const GeneratorConfig& cfg = G->config;
    torch::Tensor init;
    if (!o.init_w.empty()) {
        init = read_latents(o.init_w, cfg);
        if (init.size(0) != 1 && (init.size(0) != static_cast<int64_t>(o.targets.size()) || !o.target_dir.empty()))
            throw ShapeError(fmt::format("{}: holds {} latents; give one, or one per --target ({})", o.init_w, init.size(0), o.targets.size()));
    }
    std::shared_ptr<LpipsModel> lpips;
    if (!o.vgg.empty()) lpips = std::make_shared<LpipsModel>(o.vgg);
    const ProjectorOptions po = projector_options(o, model, lpips != nullptr);
    FolderTargets folder;
    std::vector<std::string> paths = o.targets, dirs = target_dirs(o.targets, o.outdir);
    if (!o.target_dir.empty()) {
        folder = folder_targets(o);
        paths.clear(), dirs.clear();
        for (size_t k = 0; k < folder.paths.size(); ++k)
            if (!finished_projection(folder.dirs[k])) paths.push_back(folder.paths[k]), dirs.push_back(folder.dirs[k]);
        log_info(fmt::format("{}: {} images, {} already projected in {}", o.target_dir, folder.paths.size(), folder.paths.size() - paths.size(), o.outdir));
        if (paths.empty()) return write_index(o, folder);
    }
    const std::vector<Target> targets = prepare_targets(o, cfg, paths, dirs);

    G->to(device);
    auto D = model.D;
    if (D && po.loss.discriminator > 0) D->to(device);
    else D = nullptr;
    if (lpips) lpips->to(device);
    Projector projector(G, D, lpips);
    log_info(fmt::format("projecting {} target(s) in {} for {} steps, loss {}, on {}", targets.size(), option_name(po.space), o.steps,
                         describe_losses(po.loss), device.str()));
    std::optional<ProgressBar> overall;
    if (!o.target_dir.empty()) overall.emplace("project", static_cast<int64_t>(targets.size()) * o.steps, "step");
    for (size_t start = 0; start < targets.size(); start += static_cast<size_t>(o.batch)) {
        const size_t n = std::min<size_t>(static_cast<size_t>(o.batch), targets.size() - start);
        BatchResult r = project_batch(o, projector, po, targets, start, n, init, cfg, device, overall ? &*overall : nullptr,
                                      static_cast<int64_t>(start) * o.steps);
        for (size_t k = 0; k < n; ++k) write_target(o, model, po, targets[start + k], r, k);
        if (!o.target_dir.empty()) write_index(o, folder);
        if (r.projection.steps_done < o.steps)
            throw CancelledError(fmt::format("projection stopped at step {} of {}: kept its latents, images{} in {} (projection.json says "
                                             "interrupted_at_step){}",
                                             r.projection.steps_done, o.steps, o.save_video ? " and progress video" : "", targets[start].dir,
                                             start + n < targets.size() ? fmt::format("; {} target(s) not projected", targets.size() - start - n) : ""));
    }
    if (overall) overall->finish();
}

}  // namespace

void register_project(CLI::App& app) {
    auto o = std::make_shared<Opts>();
    auto* cmd = app.add_subcommand("project", "Find the latent with which a model reproduces a photo");
    add_model_option(cmd, o->model);
    cmd->add_option("--target,-t", o->targets, "Photo to project (repeat for several)");
    cmd->add_option("--target-dir", o->target_dir, "Project every image in this folder (recursively, sorted); run again to go on where it stopped");
    add_outdir_option(cmd, o->outdir, "Output folder (one sub-folder per target when there are several; with --target-dir also index.csv)");
    cmd->add_option("--steps", o->steps, "Optimisation steps")->check(above(0));
    add_enum_option(cmd, "--space", o->space, "Latent space: w (one w, the reference) or w+ (one per layer)");
    cmd->add_option("--init-w", o->init_w, "Start from these latents (projected_w.npz), e.g. a w result to refine in w+");
    add_enum_option(cmd, "--align", o->align, "Photo preparation");
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
    cmd->add_flag("--fixed-noise", o->fixed_noise, "Keep the model's constant noise instead of optimising it");
    cmd->add_flag("--proj-with-optimized-noise", o->optimized_noise_image,
                  "Render proj.png with the optimised noise (closer to the photo; the noise goes to projected_noise.npz, and the "
                  "latent alone no longer reproduces the image). Default, as the reference: the model's constant noise");
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
