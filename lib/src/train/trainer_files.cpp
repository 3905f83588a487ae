// A training run's set-up and files: presets, the run folder, resuming, snapshots, grids and the log.
#include <fmt/format.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>

#include "latentkit/atomic_file.h"
#include "latentkit/error.h"
#include "latentkit/latent.h"
#include "latentkit/log.h"
#include "latentkit/model_io.h"
#include "torch_convert.h"
#include "train/trainer.h"

namespace latentkit {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

std::string snapshot_name(int64_t nimg) { return fmt::format("snapshot-{:09d}.safetensors", nimg); }

}  // namespace

std::string latest_snapshot(const std::string& outdir) {
    std::error_code ec;
    if (!fs::is_directory(outdir, ec)) return "";
    static const std::regex re(R"(snapshot-(\d{9})\.safetensors)");
    std::string best;
    for (const auto& e : fs::directory_iterator(outdir, ec)) {
        const std::string name = e.path().filename().string();
        if (std::regex_match(name, re) && name > fs::path(best).filename().string()) best = e.path().string();
    }
    return best;
}

ResolvedTraining resolve_training(const TrainOptions& o, int res, int gpus) {
    ResolvedTraining r;
    double fmaps = 1, ema = 10;
    std::optional<double> ramp;
    int mb = 32, mbstd = 4, map = 8;
    int ref_gpus = 8;  // the fixed presets' per-GPU batch is mb / ref_gpus (the reference's GPU count for them)
    double lrate = 0.002, gamma = 10;
    switch (o.cfg) {
    case TrainPreset::automatic:
        mb = std::max(std::min(gpus * std::min(4096 / res, 32), 64), gpus);
        mbstd = std::min(mb / gpus, 4);
        fmaps = res >= 512 ? 1 : 0.5;
        lrate = res >= 1024 ? 0.002 : 0.0025;
        gamma = 0.0002 * res * res / mb;
        ema = mb * 10.0 / 32;
        ramp = 0.05;
        map = 2;
        ref_gpus = gpus;
        break;
    case TrainPreset::stylegan2: break;
    case TrainPreset::paper256: mb = 64, mbstd = 8, fmaps = 0.5, lrate = 0.0025, gamma = 1, ema = 20; break;
    case TrainPreset::paper512: mb = 64, mbstd = 8, fmaps = 1, lrate = 0.0025, gamma = 0.5, ema = 20; break;
    case TrainPreset::paper1024: mb = 32, mbstd = 4, fmaps = 1, lrate = 0.002, gamma = 2, ema = 10; break;
    case TrainPreset::cifar:
        mb = 64, mbstd = 32, fmaps = 1, lrate = 0.0025, gamma = 0.01, ema = 500, ramp = 0.05, map = 2, ref_gpus = 2;
        r.d_architecture = Architecture::orig;
        break;
    }
    const bool cifar = o.cfg == TrainPreset::cifar;
    r.batch = o.batch.value_or(mb);
    r.mbstd_group = o.mbstd_group.value_or(mbstd);
    // As the reference's train.py: a given --batch is split evenly over the processes; a preset's batch
    // keeps the per-GPU share it was designed with (4 for stylegan2 and paper1024 on any number of GPUs).
    r.batch_gpu = o.batch_gpu.value_or(o.batch ? r.batch / gpus : mb / ref_gpus);
    r.gamma = o.gamma.value_or(gamma);
    r.lr_g = o.lr_g.value_or(lrate);
    r.lr_d = o.lr_d.value_or(lrate);
    r.ema_kimg = o.ema_kimg.value_or(ema);
    r.ema_rampup = o.ema_rampup ? (*o.ema_rampup < 0 ? std::nullopt : o.ema_rampup) : ramp;
    r.ada_kimg = o.ada_kimg.value_or(500);
    r.map_layers = o.map_layers.value_or(map);
    r.channel_base = o.channel_base.value_or(static_cast<int>(fmaps * 32768));
    r.channel_max = o.channel_max.value_or(512);
    r.z_dim = o.z_dim.value_or(512);
    r.w_dim = o.w_dim.value_or(512);
    r.style_mixing = o.style_mixing >= 0 ? o.style_mixing : cifar ? 0 : 0.9;
    r.pl_weight = o.pl_weight >= 0 ? o.pl_weight : cifar ? 0 : 2;
    if (r.batch < 1 || r.batch_gpu < 1) throw ArgumentError("batch sizes must be positive");
    if (r.batch % (r.batch_gpu * gpus) != 0)
        throw ArgumentError(Message() << field("TrainOptions.batch") << fmt::format(" {} is not a multiple of ", r.batch)
                                                << field("TrainOptions.batch_gpu") << fmt::format(" {} times {} process(es)", r.batch_gpu, gpus));
    if (r.mbstd_group < 1 || r.batch_gpu % r.mbstd_group != 0)
        throw ArgumentError(Message() << field("TrainOptions.batch_gpu")
                                                << fmt::format(" {} is not a multiple of the minibatch-stddev group {} (", r.batch_gpu, r.mbstd_group)
                                                << field("TrainOptions.mbstd_group") << ")");
    if (r.gamma < 0 || r.lr_g <= 0 || r.lr_d <= 0 || r.ema_kimg < 0) throw ArgumentError("gamma, learning rates and EMA must be positive");
    if (r.ada_kimg <= 0) throw ArgumentError(Message() << field("TrainOptions.ada_kimg") << fmt::format(" {} must be positive", r.ada_kimg));
    return r;
}

namespace {
GeneratorConfig generator_config(const ResolvedTraining& r, bool fp16, int resolution, int channels, int c_dim) {
    GeneratorConfig gc;
    gc.z_dim = r.z_dim;
    gc.w_dim = r.w_dim;
    gc.c_dim = c_dim;
    gc.img_resolution = resolution;
    gc.img_channels = channels;
    gc.mapping.num_layers = r.map_layers;
    gc.synthesis.channel_base = r.channel_base;
    gc.synthesis.channel_max = r.channel_max;
    gc.synthesis.num_fp16_res = fp16 ? 4 : 0;
    if (fp16) gc.synthesis.conv_clamp = 256;
    gc.synthesis.fp16_channels_last = fp16;
    return gc;
}
}  // namespace

GeneratorConfig training_generator_config(const TrainOptions& options, int resolution, int channels, int c_dim) {
    return generator_config(resolve_training(options, resolution, 1), options.fp16, resolution, channels, c_dim);
}

GeneratorConfig stylegan3_generator_config(bool rotation_equivariant, int resolution, int channel_base) {
    GeneratorConfig c;
    c.family = GeneratorFamily::stylegan3;
    c.img_resolution = resolution;
    c.mapping.num_layers = 2;
    c.mapping.w_avg_beta = 0.998;
    c.stylegan3.channel_base = channel_base;
    if (rotation_equivariant) {  // train.py: stylegan3-r doubles the widths and uses 1x1 convolutions with radial filters
        c.stylegan3.conv_kernel = 1;
        c.stylegan3.use_radial_filters = true;
        c.stylegan3.channel_base *= 2;
        c.stylegan3.channel_max *= 2;
    }
    return c;
}

namespace training {

using json = nlohmann::json;
namespace fs = std::filesystem;

void Trainer::setup() {
    if (data_.size() == 0) throw Error(data_.name() + ": the dataset holds no images");
    const int res = data_.resolution();
    if (res < 4 || (res & (res - 1)) != 0) throw Error(fmt::format("{}: resolution {} is not a power of two >= 4", data_.name(), res));
    if (data_.channels() != 1 && data_.channels() != 3) throw Error(fmt::format("{}: {} channels (1 or 3 are supported)", data_.name(), data_.channels()));
    if (o_.cond && data_.label_dim() == 0)
        throw Error(Message() << data_.name() + ": " << field("TrainOptions.cond") << " needs labels, but the dataset has none (dataset.json with \"labels\")");
    c_dim_ = o_.cond ? data_.label_dim() : 0;
    num_items_ = static_cast<int64_t>(data_.size()) * (o_.mirror ? 2 : 1);
    if (o_.aug == AugmentMode::fixed && !o_.p) throw ArgumentError(Message() << field("TrainOptions.aug") << " fixed needs " << field("TrainOptions.p"));
    if (o_.p && (*o_.p < 0 || *o_.p > 1)) throw ArgumentError(Message() << field("TrainOptions.p") << " must be in [0, 1]");
    if (o_.kimg <= 0 || o_.tick_kimg <= 0) throw ArgumentError(Message() << field("TrainOptions.kimg") << " and " << field("TrainOptions.tick_kimg") << " must be positive");
    if (device_.is_cuda() && !torch::cuda::is_available()) throw Error(Message() << field("TrainOptions.device") << " " + o_.device + ": LibTorch has no CUDA here");
    if (device_.is_cuda()) {
        at::globalContext().setAllowTF32CuBLAS(o_.allow_tf32);
        at::globalContext().setAllowTF32CuDNN(o_.allow_tf32);
        at::globalContext().setBenchmarkCuDNN(true);
    }
    r_ = resolve_training(o_, res, env_.world_size);
    if (env_.world_size > 1)
        log_info(coll_.backend() == training::Backend::Nccl ? "gradients are summed over NCCL on the GPUs"
                                                            : "gradients are summed over Gloo (through host memory)");
    p_ = o_.aug == AugmentMode::noaug ? 0 : o_.p.value_or(0);

    std::error_code ec;
    fs::create_directories(o_.outdir, ec);
    if (!fs::is_directory(o_.outdir)) throw IoError(o_.outdir + ": cannot create the run folder");
    std::string resume = o_.resume;
    if (resume == "auto") {
        resume = latest_snapshot(o_.outdir);
        log_info(resume.empty() ? "resume auto: no snapshot in " + o_.outdir + ", starting a new run" : "resume auto: continuing from " + resume);
    } else if (resume.empty() && !latest_snapshot(o_.outdir).empty()) {
        throw ArgumentError(Message() << o_.outdir + " already holds snapshots of a run: continue it (" << field("TrainOptions.resume")
                                        << " auto), or choose another " << field("TrainOptions.outdir"));
    }
    torch::manual_seed(mix(o_.seed, 0xC0FFEE));
    build_networks();
    if (!resume.empty()) restore(resume);
    {
        // Identical starting point on every process.
        torch::NoGradGuard no_grad;
        for (auto* net : {static_cast<torch::nn::Module*>(G_.get()), static_cast<torch::nn::Module*>(D_.get()),
                          static_cast<torch::nn::Module*>(G_ema_.get())}) {
            for (auto& t : net->parameters(true)) coll_.broadcast(t);
            for (auto& t : net->buffers(true)) coll_.broadcast(t);
        }
    }
    if (rank0()) write_training_options(resume);
}

// training_options.json: the resolved settings and both networks' arguments.
void Trainer::write_training_options(const std::string& resume) {
    json j;
    j["dataset"] = data_.name();
    j["resolution"] = data_.resolution();
    j["channels"] = data_.channels();
    j["images"] = data_.size();
    j["cfg"] = option_name(o_.cfg);
    j["batch"] = r_.batch;
    j["batch_gpu"] = r_.batch_gpu;
    j["processes"] = env_.world_size;
    j["gamma"] = r_.gamma;
    j["lr_g"] = r_.lr_g;
    j["lr_d"] = r_.lr_d;
    j["ema_kimg"] = r_.ema_kimg;
    j["ema_rampup"] = r_.ema_rampup ? json(*r_.ema_rampup) : json(nullptr);
    j["map_layers"] = r_.map_layers;
    j["channel_base"] = r_.channel_base;
    j["channel_max"] = r_.channel_max;
    j["mbstd_group"] = r_.mbstd_group;
    j["style_mixing"] = r_.style_mixing;
    j["pl_weight"] = r_.pl_weight;
    j["aug"] = option_name(o_.aug);
    j["augpipe"] = option_name(o_.augpipe);
    j["ada_target"] = o_.ada_target;
    j["ada_kimg"] = r_.ada_kimg;
    j["mirror"] = o_.mirror;
    j["cond"] = o_.cond;
    j["seed"] = o_.seed;
    j["kimg"] = o_.kimg;
    j["resume"] = resume;
    j["device"] = device_.str();
    j["G"] = json::parse(G_->config.to_kwargs_json());
    j["D"] = json::parse(D_->config.to_kwargs_json());
    const std::string text = j.dump(2) + "\n";
    write_file_atomic((fs::path(o_.outdir) / "training_options.json").string(), text.data(), text.size());
}

void Trainer::build_networks() {
    const GeneratorConfig gc = generator_config(r_, o_.fp16, data_.resolution(), data_.channels(), c_dim_);
    DiscriminatorConfig dc;
    dc.c_dim = c_dim_;
    dc.img_resolution = data_.resolution();
    dc.img_channels = data_.channels();
    dc.architecture = r_.d_architecture;
    dc.channel_base = r_.channel_base;
    dc.channel_max = r_.channel_max;
    dc.num_fp16_res = o_.fp16 ? 4 : 0;
    if (o_.fp16) dc.conv_clamp = 256;
    dc.fp16_channels_last = o_.fp16;
    dc.mbstd_group_size = r_.mbstd_group;
    dc.freeze_layers = o_.freezed;
    gc.validate();
    dc.validate();
    G_ = std::make_shared<Generator>(gc);
    D_ = std::make_shared<Discriminator>(dc);
    G_ema_ = std::make_shared<Generator>(gc);
    {
        torch::NoGradGuard no_grad;
        auto src = G_->named_parameters(true);
        for (auto& p : G_ema_->named_parameters(true)) p.value().copy_(src[p.key()]);
        auto bsrc = G_->named_buffers(true);
        for (auto& b : G_ema_->named_buffers(true)) b.value().copy_(bsrc[b.key()]);
    }
    pl_mean_ = torch::zeros({}, torch::TensorOptions().device(device_));
    acc_ = torch::zeros({kNumAcc}, torch::TensorOptions().dtype(torch::kFloat64).device(device_));
    place_networks();
}

void Trainer::place_networks() {
    G_->to(device_);
    D_->to(device_);
    G_ema_->to(device_);
    G_->train();
    D_->train();
    G_ema_->eval();
    set_requires_grad(*G_ema_, false);
    opt_g_ = Adam();
    opt_d_ = Adam();
    opt_g_.init(*G_);
    opt_d_.init(*D_);
}

// The counters, ADA accumulators and run settings of a latentkit snapshot's train.state.
void Trainer::restore_counters(const std::string& state, const std::string& path) {
    json st;
    try {
        st = json::parse(state);
        cur_nimg_ = st.at("cur_nimg").get<int64_t>();
        batch_idx_ = st.at("batch_idx").get<int64_t>();
        tick_ = st.at("tick").get<int>();
        tick_start_nimg_ = st.at("tick_start_nimg").get<int64_t>();
        opt_g_.steps = st.at("opt_G_steps").get<int64_t>();
        opt_d_.steps = st.at("opt_D_steps").get<int64_t>();
        elapsed_ = st.at("elapsed").get<double>();
        acc_[kAccSign] = st.at("ada_sign_sum").get<double>();
        acc_[kAccSignN] = st.at("ada_sign_count").get<double>();
        // A continued run keeps the ADA speed and EMA ramp-up it started with (a fine-tune's transfer
        // defaults included) unless they are given again.
        if (!o_.ada_kimg && st.contains("ada_kimg")) r_.ada_kimg = st.at("ada_kimg").get<double>();
        if (!o_.ema_rampup && st.contains("ema_rampup"))
            r_.ema_rampup = st.at("ema_rampup").is_null() ? std::nullopt : std::optional<double>(st.at("ema_rampup").get<double>());
        if (st.at("batch").get<int>() != r_.batch)
            log_warn(fmt::format("{}: the run used batch {}, now {}: the continuation will differ from an uninterrupted run", path,
                                 st.at("batch").get<int>(), r_.batch));
    } catch (const json::exception& e) {
        throw ModelFormatError(path + ": damaged training state: " + e.what());
    }
}

// Adam's moments from a snapshot.
void Trainer::restore_optimizer(Adam& opt, const TensorFile& file, const std::string& prefix, const std::string& path) {
    torch::NoGradGuard no_grad;
    for (size_t k = 0; k < opt.names.size(); ++k) {
        for (int which = 0; which < 2; ++which) {
            const std::string name = prefix + (which ? ".exp_avg_sq." : ".exp_avg.") + opt.names[k];
            const TensorData* t = file.find(name);
            if (!t) throw ModelFormatError(path + ": training state lacks " + name);
            Tensor& dst = which ? opt.v[k] : opt.m[k];
            if (t->shape != dst.sizes().vec()) throw ModelFormatError(path + ": " + name + " has the wrong shape");
            dst.copy_(to_torch(*t));
        }
    }
}

void Trainer::restore(const std::string& path) {
    Model m = load_model(path);
    if (!m.G || !m.D || !m.G_ema)
        throw ModelFormatError(path + ": cannot resume training from it: it needs G, D and G_ema (this file has only " +
                               (m.G_ema ? std::string("G_ema") : m.G ? "G" : "D") + ")");
    const auto& g = m.G->config;
    if (g.family == GeneratorFamily::stylegan3)
        throw ModelFormatError(path + ": a StyleGAN3 model: latentkit trains StyleGAN2 networks only, so it cannot resume from or fine-tune "
                                      "it (explore it with every other command)");
    if (g.img_resolution != data_.resolution() || g.img_channels != data_.channels() || g.c_dim != c_dim_)
        throw ModelFormatError(fmt::format("{}: the networks are for {}x{} images with {} channel(s) and {} label(s); the dataset has {}x{}, {}, {}",
                                           path, g.img_resolution, g.img_resolution, g.img_channels, g.c_dim, data_.resolution(),
                                           data_.resolution(), data_.channels(), c_dim_));
    // Networks take the architecture of the file (the user need not repeat it); D's frozen layers from the options.
    DiscriminatorConfig dc = m.D->config;
    dc.freeze_layers = o_.freezed;
    if (dc.mbstd_group_size && r_.batch_gpu % *dc.mbstd_group_size != 0)
        throw ArgumentError(Message() << field("TrainOptions.batch_gpu")
                                                << fmt::format(" {} is not a multiple of the resumed discriminator's minibatch-stddev group {}", r_.batch_gpu,
                                                               *dc.mbstd_group_size));
    auto state_of = [](torch::nn::Module& net) {
        std::vector<std::pair<std::string, Tensor>> out;
        for (const auto& p : net.named_parameters(true)) out.emplace_back(p.key(), p.value());
        for (const auto& b : net.named_buffers(true)) out.emplace_back(b.key(), b.value());
        return out;
    };
    G_ = std::make_shared<Generator>(m.G->config);
    G_ema_ = std::make_shared<Generator>(m.G_ema->config);
    D_ = std::make_shared<Discriminator>(dc);
    load_state(*G_, state_of(*m.G), path + " (G)");
    load_state(*G_ema_, state_of(*m.G_ema), path + " (G_ema)");
    load_state(*D_, state_of(*m.D), path + " (D)");
    place_networks();

    // Only latentkit's own snapshots carry a training state; every other model file starts a fine-tune.
    const bool own = path.size() > 12 && path.compare(path.size() - 12, 12, ".safetensors") == 0;
    const TensorFile file = own ? read_safetensors(path) : TensorFile();
    auto it = file.metadata.find("train.state");
    if (it == file.metadata.end()) {
        // The reference's train.py with --resume: ADA five times faster and no EMA ramp-up, so that p
        // reacts to the new data at once and G_ema is not overwritten by G in the first minibatches.
        if (!o_.ada_kimg) r_.ada_kimg = 100;
        if (!o_.ema_rampup) r_.ema_rampup = std::nullopt;
        log_info(fmt::format("{}: networks loaded; starting a new (transfer-learning) run from them (ADA speed {} kimg, EMA ramp-up {})", path,
                             r_.ada_kimg, r_.ema_rampup ? fmt::format("{}", *r_.ema_rampup) : "none"));
        return;
    }
    restore_counters(it->second, path);
    if (m.augment_p && o_.aug == AugmentMode::ada) p_ = *m.augment_p;
    torch::NoGradGuard no_grad;
    restore_optimizer(opt_g_, file, "opt_G", path);
    restore_optimizer(opt_d_, file, "opt_D", path);
    if (const TensorData* t = file.find("state.pl_mean")) pl_mean_.copy_(to_torch(*t).reshape({}));
    last_snapshot_ = path;
    log_info(fmt::format("{}: resuming at {:.3f} kimg (tick {}, augment p {:.4f})", path, cur_nimg_ / 1000.0, tick_, p_));
}

void Trainer::write_grid(const std::string& name, bool reals) {
    if (!rank0() || !cb_.write_image) return;
    const int res = data_.resolution(), ch = data_.channels();
    const int gw = o_.grid_w > 0 ? o_.grid_w : std::clamp(1920 / res, 4, 16);
    const int gh = o_.grid_h > 0 ? o_.grid_h : std::clamp(1080 / res, 2, 16);
    const int n = gw * gh;
    Tensor images;
    torch::NoGradGuard no_grad;
    if (reals) {
        Tensor bytes = torch::empty({n, ch, res, res}, torch::kUInt8);
        for (int k = 0; k < n; ++k) data_.read_image(static_cast<size_t>(k) % data_.size(), bytes[k].data_ptr<uint8_t>());
        images = bytes.permute({0, 2, 3, 1}).contiguous();
    } else {
        std::vector<uint32_t> seeds(n);
        for (int k = 0; k < n; ++k) seeds[k] = static_cast<uint32_t>(k);
        const Tensor z = z_from_seeds(seeds, G_ema_->config.z_dim).to(device_);
        std::vector<Tensor> parts;
        for (int k = 0; k < n; k += r_.batch_gpu) {
            const int m = std::min(r_.batch_gpu, n - k);
            Tensor c;
            if (c_dim_ > 0) {
                std::vector<float> labels;
                for (int i = k; i < k + m; ++i) {
                    const auto l = data_.label(static_cast<size_t>(i) % data_.size());
                    labels.insert(labels.end(), l.begin(), l.end());
                }
                c = torch::tensor(labels).view({m, c_dim_}).to(device_);
            }
            parts.push_back(to_uint8_nhwc(G_ema_->forward(z.narrow(0, k, m), c)));
        }
        images = torch::cat(parts);
    }
    const Tensor grid = images.view({gh, gw, res, res, ch}).permute({0, 2, 1, 3, 4}).contiguous().view({gh * res, gw * res * ch});
    std::vector<uint8_t> pixels(grid.data_ptr<uint8_t>(), grid.data_ptr<uint8_t>() + grid.numel());
    cb_.write_image((fs::path(o_.outdir) / name).string(), gw * res, gh * res, ch, pixels);
}

std::string Trainer::write_snapshot() {
    if (!rank0()) return "";
    Model m;
    m.G = G_;
    m.D = D_;
    m.G_ema = G_ema_;
    m.augment_p = p_;
    json ts;
    ts["path"] = data_.name();
    ts["resolution"] = data_.resolution();
    ts["use_labels"] = o_.cond;
    ts["xflip"] = o_.mirror;
    ts["max_size"] = data_.size();
    m.training_set_kwargs = ts.dump();
    m.info["description"] = "latentkit training snapshot";
    m.info["kimg"] = fmt::format("{:.3f}", cur_nimg_ / 1000.0);
    TensorFile file = model_tensor_file(m);
    for (auto [opt, prefix] : {std::pair<Adam*, const char*>{&opt_g_, "opt_G"}, {&opt_d_, "opt_D"}})
        for (size_t k = 0; k < opt->names.size(); ++k) {
            file.tensors.emplace_back(std::string(prefix) + ".exp_avg." + opt->names[k], from_torch(opt->m[k]));
            file.tensors.emplace_back(std::string(prefix) + ".exp_avg_sq." + opt->names[k], from_torch(opt->v[k]));
        }
    file.tensors.emplace_back("state.pl_mean", from_torch(pl_mean_.reshape({1})));
    json st;
    st["cur_nimg"] = cur_nimg_;
    st["batch_idx"] = batch_idx_;
    st["tick"] = tick_;
    st["tick_start_nimg"] = tick_start_nimg_;
    st["opt_G_steps"] = opt_g_.steps;
    st["opt_D_steps"] = opt_d_.steps;
    st["elapsed"] = elapsed_;
    const Tensor signs = acc_.narrow(0, kAccSign, 2).to(torch::kCPU);
    st["ada_sign_sum"] = signs[0].item<double>();
    st["ada_sign_count"] = signs[1].item<double>();
    st["batch"] = r_.batch;
    st["seed"] = o_.seed;
    st["ada_kimg"] = r_.ada_kimg;
    st["ema_rampup"] = r_.ema_rampup ? json(*r_.ema_rampup) : json(nullptr);
    file.metadata["train.state"] = st.dump();
    const std::string path = (fs::path(o_.outdir) / snapshot_name(cur_nimg_)).string();
    write_safetensors(path, file);
    last_snapshot_ = path;
    return path;
}

void Trainer::log_tick(TickStats& s) {
    if (!rank0()) return;
    json j;
    j["tick"] = s.tick;
    j["kimg"] = s.kimg;
    j["sec_per_tick"] = s.sec_per_tick;
    j["sec_per_kimg"] = s.sec_per_kimg;
    j["elapsed"] = s.elapsed;
    j["loss_G"] = s.loss_g;
    j["loss_D"] = s.loss_d;
    j["loss_r1"] = s.loss_r1;
    j["loss_pl"] = s.loss_pl;
    j["score_real"] = s.real_score;
    j["score_fake"] = s.fake_score;
    j["augment_p"] = s.augment_p;
    j["r_t"] = s.r_t;
    if (!s.snapshot.empty()) j["snapshot"] = fs::path(s.snapshot).filename().string();
    for (const auto& [name, value] : s.metrics) j["metrics"][name] = value;
    const std::string line = j.dump() + "\n";
    const std::string path = (fs::path(o_.outdir) / "log.jsonl").string();
    FILE* f = std::fopen(path.c_str(), "a");
    if (!f) throw IoError(path + ": cannot append to the training log");
    const bool ok = std::fwrite(line.data(), 1, line.size(), f) == line.size();
    if (std::fclose(f) != 0 || !ok) throw IoError(path + ": cannot append to the training log (disk full?)");
}

}  // namespace training
}  // namespace latentkit
