// The StyleGAN2-ADA training loop (reference training/training_loop.py and training/loss.py).
//
// Determinism: every random draw of a minibatch chunk comes from the default generator seeded with
// (seed, minibatch, phase, global chunk index), and the data order from (seed, epoch). A run resumed
// from a snapshot therefore continues bit for bit, and one process working through all chunks of a
// minibatch computes what several processes compute with one chunk each.
#include <fmt/format.h>
#include <sys/stat.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>

#include "latentkit/atomic_file.h"
#include "latentkit/error.h"
#include "latentkit/latent.h"
#include "latentkit/log.h"
#include "latentkit/metrics.h"
#include "latentkit/model_io.h"
#include "latentkit/networks.h"
#include "latentkit/train.h"
#include "torch_convert.h"
#include "train/augment.h"
#include "train/distributed.h"

namespace latentkit {
namespace {

using json = nlohmann::json;
using torch::Tensor;
namespace fs = std::filesystem;

uint64_t splitmix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}
uint64_t mix(uint64_t a, uint64_t b, uint64_t c = 0, uint64_t d = 0) { return splitmix(splitmix(splitmix(splitmix(a) ^ b) ^ c) ^ d); }

// Adam as torch.optim.Adam, with state that can be saved and restored exactly.
struct Adam {
    std::vector<std::string> names;
    std::vector<Tensor> params, m, v;
    int64_t steps = 0;
    double lr = 0, beta1 = 0, beta2 = 0.99, eps = 1e-8;

    void init(torch::nn::Module& net) {
        for (const auto& p : net.named_parameters(true)) {
            names.push_back(p.key());
            params.push_back(p.value());
            m.push_back(torch::zeros_like(p.value()));
            v.push_back(torch::zeros_like(p.value()));
        }
    }
    void step() {
        torch::NoGradGuard no_grad;
        ++steps;
        const double bc1 = 1 - std::pow(beta1, double(steps)), bc2 = 1 - std::pow(beta2, double(steps));
        for (size_t k = 0; k < params.size(); ++k) {
            const Tensor g = params[k].grad();
            if (!g.defined()) continue;
            m[k].mul_(beta1).add_(g, 1 - beta1);
            v[k].mul_(beta2).addcmul_(g, g, 1 - beta2);
            const Tensor denom = (v[k].sqrt() / std::sqrt(bc2)).add_(eps);
            params[k].addcdiv_(m[k], denom, -lr / bc1);
        }
    }
};

void set_requires_grad(torch::nn::Module& net, bool on) {
    for (auto& p : net.parameters(true)) p.set_requires_grad(on);
}
void zero_grads(torch::nn::Module& net) {
    for (auto& p : net.parameters(true))
        if (p.grad().defined()) p.mutable_grad() = Tensor();
}

// Per-phase accumulators; summed over chunks and processes in one all-reduce with the gradients.
enum Stat { kLoss, kLossCount, kSignSum, kSignCount, kRealScore, kFakeScore, kScoreCount, kPlSum, kPlCount, kWCount, kNumStats };

struct Phase {
    const char* name;
    int id;
    bool g;         // updates G (else D)
    int interval;   // every this many minibatches
};

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
    double lrate = 0.002, gamma = 10;
    if (o.cfg == "auto") {
        mb = std::max(std::min(gpus * std::min(4096 / res, 32), 64), gpus);
        mbstd = std::min(mb / gpus, 4);
        fmaps = res >= 512 ? 1 : 0.5;
        lrate = res >= 1024 ? 0.002 : 0.0025;
        gamma = 0.0002 * res * res / mb;
        ema = mb * 10.0 / 32;
        ramp = 0.05;
        map = 2;
    } else if (o.cfg == "stylegan2") {
    } else if (o.cfg == "paper256") {
        mb = 64, mbstd = 8, fmaps = 0.5, lrate = 0.0025, gamma = 1, ema = 20;
    } else if (o.cfg == "paper512") {
        mb = 64, mbstd = 8, fmaps = 1, lrate = 0.0025, gamma = 0.5, ema = 20;
    } else if (o.cfg == "paper1024") {
        mb = 32, mbstd = 4, fmaps = 1, lrate = 0.002, gamma = 2, ema = 10;
    } else if (o.cfg == "cifar") {
        mb = 64, mbstd = 32, fmaps = 1, lrate = 0.0025, gamma = 0.01, ema = 500, ramp = 0.05, map = 2;
        r.d_architecture = "orig";
    } else {
        throw ArgumentError("unknown --cfg '" + o.cfg + "' (auto, stylegan2, paper256, paper512, paper1024, cifar)");
    }
    const bool cifar = o.cfg == "cifar";
    r.batch = o.batch.value_or(mb);
    r.mbstd_group = o.mbstd_group.value_or(mbstd);
    r.batch_gpu = o.batch_gpu.value_or(r.batch / gpus);
    r.gamma = o.gamma.value_or(gamma);
    r.lr_g = o.lr_g.value_or(lrate);
    r.lr_d = o.lr_d.value_or(lrate);
    r.ema_kimg = o.ema_kimg.value_or(ema);
    r.ema_rampup = o.ema_rampup ? (*o.ema_rampup < 0 ? std::nullopt : o.ema_rampup) : ramp;
    r.map_layers = o.map_layers.value_or(map);
    r.channel_base = o.channel_base.value_or(static_cast<int>(fmaps * 32768));
    r.channel_max = o.channel_max.value_or(512);
    r.z_dim = o.z_dim.value_or(512);
    r.w_dim = o.w_dim.value_or(512);
    r.style_mixing = o.style_mixing >= 0 ? o.style_mixing : cifar ? 0 : 0.9;
    r.pl_weight = o.pl_weight >= 0 ? o.pl_weight : cifar ? 0 : 2;
    if (r.batch < 1 || r.batch_gpu < 1) throw ArgumentError("batch sizes must be positive");
    if (r.batch % (r.batch_gpu * gpus) != 0)
        throw ArgumentError(fmt::format("--batch {} is not a multiple of --batch-gpu {} times {} process(es)", r.batch, r.batch_gpu, gpus));
    if (r.mbstd_group < 1 || r.batch_gpu % r.mbstd_group != 0)
        throw ArgumentError(fmt::format("--batch-gpu {} is not a multiple of the minibatch-stddev group {} (--mbstd-group)", r.batch_gpu, r.mbstd_group));
    if (r.gamma < 0 || r.lr_g <= 0 || r.lr_d <= 0 || r.ema_kimg < 0) throw ArgumentError("gamma, learning rates and EMA must be positive");
    return r;
}

namespace {

class Trainer {
public:
    Trainer(const TrainingData& data, const TrainOptions& o, const TrainCallbacks& cb)
        : data_(data), o_(o), cb_(cb), env_(DistributedEnv::from_environment()), coll_(env_),
          device_(o.device), pipe_(training::AugmentSpec::preset(o.augpipe)) {
        setup();
    }
    TrainEnd run();

private:
    void setup();
    void build_networks();
    void place_networks();  // device, modes and fresh optimiser state
    void restore(const std::string& path);
    void load_reals(int64_t chunk, Tensor& img, Tensor& c);
    Tensor random_labels(int64_t n);
    std::pair<Tensor, Tensor> run_g(const Tensor& z, const Tensor& c, bool grad);
    Tensor run_d(const Tensor& img, const Tensor& c);
    void run_phase(const Phase& ph, std::vector<Tensor>& reals, std::vector<Tensor>& real_c);
    void update_ema();
    void write_grid(const std::string& name, bool reals);
    std::string write_snapshot();
    void log_tick(TickStats& s);
    bool rank0() const { return env_.rank == 0; }

    const TrainingData& data_;
    TrainOptions o_;
    TrainCallbacks cb_;
    DistributedEnv env_;
    training::Collective coll_;
    torch::Device device_;
    training::AugmentPipe pipe_;
    ResolvedTraining r_;
    int64_t num_items_ = 0;  // with mirrored copies
    int c_dim_ = 0;
    std::shared_ptr<Generator> G_, G_ema_;
    std::shared_ptr<Discriminator> D_;
    Adam opt_g_, opt_d_;
    double p_ = 0;
    Tensor pl_mean_;
    double ada_sign_sum_ = 0, ada_sign_count_ = 0;
    int64_t cur_nimg_ = 0, batch_idx_ = 0, tick_start_nimg_ = 0;
    int tick_ = 0;
    double elapsed_ = 0;
    bool resumed_native_ = false;
    std::string last_snapshot_;
    std::vector<double> tick_sums_ = std::vector<double>(12, 0.0);
    int64_t perm_epoch_ = -1;
    std::vector<int64_t> perm_;
};

void Trainer::setup() {
    if (data_.size() == 0) throw Error(data_.name() + ": the dataset holds no images");
    const int res = data_.resolution();
    if (res < 4 || (res & (res - 1)) != 0) throw Error(fmt::format("{}: resolution {} is not a power of two >= 4", data_.name(), res));
    if (data_.channels() != 1 && data_.channels() != 3) throw Error(fmt::format("{}: {} channels (1 or 3 are supported)", data_.name(), data_.channels()));
    if (o_.cond && data_.label_dim() == 0)
        throw Error(data_.name() + ": --cond needs labels, but the dataset has none (dataset.json with \"labels\")");
    c_dim_ = o_.cond ? data_.label_dim() : 0;
    num_items_ = static_cast<int64_t>(data_.size()) * (o_.mirror ? 2 : 1);
    if (o_.aug != "ada" && o_.aug != "noaug" && o_.aug != "fixed") throw ArgumentError("unknown --aug '" + o_.aug + "' (ada, noaug, fixed)");
    if (o_.aug == "fixed" && !o_.p) throw ArgumentError("--aug fixed needs --p");
    if (o_.p && (*o_.p < 0 || *o_.p > 1)) throw ArgumentError("--p must be in [0, 1]");
    if (o_.kimg <= 0 || o_.tick_kimg <= 0) throw ArgumentError("--kimg and --tick must be positive");
    if (device_.is_cuda() && !torch::cuda::is_available()) throw Error("--device " + o_.device + ": LibTorch has no CUDA here");
    if (device_.is_cuda()) {
        at::globalContext().setAllowTF32CuBLAS(o_.allow_tf32);
        at::globalContext().setAllowTF32CuDNN(o_.allow_tf32);
        at::globalContext().setBenchmarkCuDNN(true);
    }
    r_ = resolve_training(o_, res, env_.world_size);
    p_ = o_.aug == "noaug" ? 0 : o_.p.value_or(0);

    std::error_code ec;
    fs::create_directories(o_.outdir, ec);
    if (!fs::is_directory(o_.outdir)) throw IoError(o_.outdir + ": cannot create the run folder");
    std::string resume = o_.resume;
    if (resume == "auto") {
        resume = latest_snapshot(o_.outdir);
        log_info(resume.empty() ? "--resume auto: no snapshot in " + o_.outdir + ", starting a new run" : "--resume auto: continuing from " + resume);
    } else if (resume.empty() && !latest_snapshot(o_.outdir).empty()) {
        throw ArgumentError(o_.outdir + " already holds snapshots of a run: continue it with --resume auto, or choose another --outdir");
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
    if (rank0()) {
        json j;
        j["dataset"] = data_.name();
        j["resolution"] = res;
        j["channels"] = data_.channels();
        j["images"] = data_.size();
        j["cfg"] = o_.cfg;
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
        j["aug"] = o_.aug;
        j["augpipe"] = o_.augpipe;
        j["ada_target"] = o_.ada_target;
        j["ada_kimg"] = o_.ada_kimg;
        j["mirror"] = o_.mirror;
        j["cond"] = o_.cond;
        j["seed"] = o_.seed;
        j["kimg"] = o_.kimg;
        j["resume"] = resume;
        j["device"] = o_.device;
        j["G"] = json::parse(G_->config.to_kwargs_json());
        j["D"] = json::parse(D_->config.to_kwargs_json());
        const std::string text = j.dump(2) + "\n";
        write_file_atomic((fs::path(o_.outdir) / "training_options.json").string(), text.data(), text.size());
    }
}

void Trainer::build_networks() {
    GeneratorConfig gc;
    gc.z_dim = r_.z_dim;
    gc.w_dim = r_.w_dim;
    gc.c_dim = c_dim_;
    gc.img_resolution = data_.resolution();
    gc.img_channels = data_.channels();
    gc.mapping.num_layers = r_.map_layers;
    gc.synthesis.channel_base = r_.channel_base;
    gc.synthesis.channel_max = r_.channel_max;
    gc.synthesis.num_fp16_res = o_.fp16 ? 4 : 0;
    if (o_.fp16) gc.synthesis.conv_clamp = 256;
    DiscriminatorConfig dc;
    dc.c_dim = c_dim_;
    dc.img_resolution = data_.resolution();
    dc.img_channels = data_.channels();
    dc.architecture = r_.d_architecture;
    dc.channel_base = r_.channel_base;
    dc.channel_max = r_.channel_max;
    dc.num_fp16_res = o_.fp16 ? 4 : 0;
    if (o_.fp16) dc.conv_clamp = 256;
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

void Trainer::restore(const std::string& path) {
    Model m = load_model(path);
    if (!m.G || !m.D || !m.G_ema)
        throw ModelFormatError(path + ": cannot resume training from it: it needs G, D and G_ema (this file has only " +
                               (m.G_ema ? std::string("G_ema") : m.G ? "G" : "D") + ")");
    const auto& g = m.G->config;
    if (g.img_resolution != data_.resolution() || g.img_channels != data_.channels() || g.c_dim != c_dim_)
        throw ModelFormatError(fmt::format("{}: the networks are for {}x{} images with {} channel(s) and {} label(s); the dataset has {}x{}, {}, {}",
                                           path, g.img_resolution, g.img_resolution, g.img_channels, g.c_dim, data_.resolution(),
                                           data_.resolution(), data_.channels(), c_dim_));
    // Networks take the architecture of the file (the user need not repeat it); D's frozen layers from the options.
    DiscriminatorConfig dc = m.D->config;
    dc.freeze_layers = o_.freezed;
    if (dc.mbstd_group_size && r_.batch_gpu % *dc.mbstd_group_size != 0)
        throw ArgumentError(fmt::format("--batch-gpu {} is not a multiple of the resumed discriminator's minibatch-stddev group {}", r_.batch_gpu,
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

    const TensorFile file = path.size() > 4 && path.compare(path.size() - 4, 4, ".pkl") == 0 ? TensorFile() : read_safetensors(path);
    auto it = file.metadata.find("train.state");
    if (it == file.metadata.end()) {
        log_info(path + ": networks loaded; starting a new (transfer-learning) run from them");
        return;
    }
    json st;
    try {
        st = json::parse(it->second);
        cur_nimg_ = st.at("cur_nimg").get<int64_t>();
        batch_idx_ = st.at("batch_idx").get<int64_t>();
        tick_ = st.at("tick").get<int>();
        tick_start_nimg_ = st.at("tick_start_nimg").get<int64_t>();
        opt_g_.steps = st.at("opt_G_steps").get<int64_t>();
        opt_d_.steps = st.at("opt_D_steps").get<int64_t>();
        elapsed_ = st.at("elapsed").get<double>();
        ada_sign_sum_ = st.at("ada_sign_sum").get<double>();
        ada_sign_count_ = st.at("ada_sign_count").get<double>();
        if (st.at("batch").get<int>() != r_.batch)
            log_warn(fmt::format("{}: the run used batch {}, now {}: the continuation will differ from an uninterrupted run", path,
                                 st.at("batch").get<int>(), r_.batch));
    } catch (const json::exception& e) {
        throw ModelFormatError(path + ": damaged training state: " + e.what());
    }
    if (m.augment_p && o_.aug == "ada") p_ = *m.augment_p;
    auto restore_opt = [&](Adam& opt, const std::string& prefix) {
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
    };
    torch::NoGradGuard no_grad;
    restore_opt(opt_g_, "opt_G");
    restore_opt(opt_d_, "opt_D");
    if (const TensorData* t = file.find("state.pl_mean")) pl_mean_.copy_(to_torch(*t).reshape({}));
    resumed_native_ = true;
    last_snapshot_ = path;
    log_info(fmt::format("{}: resuming at {:.3f} kimg (tick {}, augment p {:.4f})", path, cur_nimg_ / 1000.0, tick_, p_));
}

void Trainer::load_reals(int64_t chunk, Tensor& img, Tensor& c) {
    const int64_t b = r_.batch_gpu, res = data_.resolution(), ch = data_.channels();
    const int64_t base = batch_idx_ * r_.batch + chunk * b;
    Tensor bytes = torch::empty({b, ch, res, res}, torch::kUInt8);
    std::vector<float> labels;
    std::vector<bool> flip(b);
    for (int64_t k = 0; k < b; ++k) {
        const int64_t pos = base + k, epoch = pos / num_items_;
        if (epoch != perm_epoch_) {
            perm_.resize(num_items_);
            for (int64_t i = 0; i < num_items_; ++i) perm_[i] = i;
            uint64_t state = mix(o_.seed, 0xDA7A, static_cast<uint64_t>(epoch));
            for (int64_t i = num_items_ - 1; i > 0; --i) {
                state = splitmix(state);
                std::swap(perm_[i], perm_[static_cast<int64_t>(state % static_cast<uint64_t>(i + 1))]);
            }
            perm_epoch_ = epoch;
        }
        int64_t item = perm_[pos % num_items_];
        flip[k] = item >= static_cast<int64_t>(data_.size());
        if (flip[k]) item -= static_cast<int64_t>(data_.size());
        data_.read_image(static_cast<size_t>(item), bytes[k].data_ptr<uint8_t>());
        if (c_dim_ > 0) {
            const auto l = data_.label(static_cast<size_t>(item));
            labels.insert(labels.end(), l.begin(), l.end());
        }
    }
    Tensor x = bytes.to(torch::kFloat32) / 127.5 - 1;
    for (int64_t k = 0; k < b; ++k)
        if (flip[k]) x[k] = x[k].flip({2});
    img = x.to(device_);
    c = c_dim_ > 0 ? torch::tensor(labels).view({b, c_dim_}).to(device_) : Tensor();
}

Tensor Trainer::random_labels(int64_t n) {
    if (c_dim_ == 0) return Tensor();
    const Tensor idx = torch::randint(static_cast<int64_t>(data_.size()), {n}, torch::kInt64);
    std::vector<float> labels;
    for (int64_t k = 0; k < n; ++k) {
        const auto l = data_.label(static_cast<size_t>(idx[k].item<int64_t>()));
        labels.insert(labels.end(), l.begin(), l.end());
    }
    return torch::tensor(labels).view({n, c_dim_}).to(device_);
}

// Returns (images, ws before mixing).
std::pair<Tensor, Tensor> Trainer::run_g(const Tensor& z, const Tensor& c, bool grad) {
    std::optional<torch::NoGradGuard> guard;
    if (!grad) guard.emplace();
    Tensor ws = G_->mapping->forward(z, c, 1.0, std::nullopt, true);
    Tensor mixed = ws;
    if (r_.style_mixing > 0) {
        const int64_t num_ws = ws.size(1);
        int64_t cutoff = torch::randint(1, num_ws, {1}, torch::kInt64).item<int64_t>();
        if (torch::rand({1}).item<double>() >= r_.style_mixing) cutoff = num_ws;
        if (cutoff < num_ws) {
            const Tensor other = G_->mapping->forward(torch::randn_like(z), c, 1.0, std::nullopt, true);
            mixed = torch::cat({ws.narrow(1, 0, cutoff), other.narrow(1, cutoff, num_ws - cutoff)}, 1);
        }
    }
    SynthesisOptions so;
    so.noise_mode = NoiseMode::random;
    return {G_->synthesis->forward(mixed, so), ws};
}

Tensor Trainer::run_d(const Tensor& img, const Tensor& c) {
    const Tensor x = p_ > 0 ? pipe_(img, p_) : img;
    return D_->forward(x, c);
}

void Trainer::run_phase(const Phase& ph, std::vector<Tensor>& reals, std::vector<Tensor>& real_c) {
    torch::nn::Module& net = ph.g ? static_cast<torch::nn::Module&>(*G_) : static_cast<torch::nn::Module&>(*D_);
    set_requires_grad(*G_, ph.g);
    set_requires_grad(*D_, !ph.g);
    zero_grads(net);
    const int rounds = r_.batch / (r_.batch_gpu * env_.world_size);
    const double gain = ph.interval;
    const int64_t b = r_.batch_gpu;
    const auto fo = torch::TensorOptions().device(device_);
    Tensor stats = torch::zeros({kNumStats}, torch::kFloat64);
    Tensor w_sum = torch::zeros({r_.w_dim}, torch::kFloat64);
    auto add = [&](Stat s, const Tensor& v) { stats[s] += v.detach().to(torch::kCPU, torch::kFloat64).sum(); };
    // Chunk gradients are summed here in chunk order, so that one process working through several
    // chunks adds exactly what the all-reduce adds across processes.
    std::vector<Tensor> params = net.parameters(true), sums(params.size());
    for (int round = 0; round < rounds; ++round) {
        const int64_t chunk = static_cast<int64_t>(env_.rank) * rounds + round;
        torch::manual_seed(mix(o_.seed, static_cast<uint64_t>(batch_idx_), static_cast<uint64_t>(ph.id), static_cast<uint64_t>(chunk)));
        if (ph.id == 0) {  // Gmain
            const Tensor z = torch::randn({b, G_->config.z_dim}, fo);
            const Tensor c = random_labels(b);
            auto [img, ws] = run_g(z, c, true);
            const Tensor logits = run_d(img, c);
            const Tensor loss = torch::softplus(-logits);
            (loss.sum() * (gain / r_.batch)).backward();
            add(kLoss, loss);
            stats[kLossCount] += double(b);
            add(kFakeScore, logits);
            w_sum += ws.detach().select(1, 0).to(torch::kCPU, torch::kFloat64).sum(0);
            stats[kWCount] += double(b);
        } else if (ph.id == 1) {  // Greg: path length
            const int64_t pb = std::max<int64_t>(b / o_.pl_batch_shrink, 1);
            const Tensor z = torch::randn({pb, G_->config.z_dim}, fo);
            auto [img, ws] = run_g(z, random_labels(pb), true);
            const Tensor noise = torch::randn_like(img) / std::sqrt(double(img.size(2) * img.size(3)));
            const Tensor grads = torch::autograd::grad({(img * noise).sum()}, {ws}, {}, true, true)[0];
            const Tensor lengths = grads.square().sum(2).mean(1).sqrt();
            const Tensor penalty = (lengths - pl_mean_).square();
            const Tensor loss = penalty * r_.pl_weight;
            ((img.select(1, 0).select(1, 0).select(1, 0) * 0 + loss).sum() * (gain / (double(pb) * rounds * env_.world_size))).backward();
            add(kLoss, penalty);
            stats[kLossCount] += double(pb);
            add(kPlSum, lengths);
            stats[kPlCount] += double(pb);
        } else if (ph.id == 2) {  // Dmain
            const Tensor z = torch::randn({b, G_->config.z_dim}, fo);
            const Tensor c = random_labels(b);
            Tensor fake = run_g(z, c, false).first;
            const Tensor fake_logits = run_d(fake, c);
            const Tensor real_logits = run_d(reals[round], real_c[round]);
            const Tensor loss = torch::softplus(fake_logits) + torch::softplus(-real_logits);
            (loss.sum() * (gain / r_.batch)).backward();
            add(kLoss, loss);
            stats[kLossCount] += double(b);
            add(kRealScore, real_logits);
            add(kFakeScore, fake_logits);
            stats[kScoreCount] += double(b);
            add(kSignSum, real_logits.sign());
            stats[kSignCount] += double(b);
        } else {  // Dreg: R1
            const Tensor x = reals[round].detach().requires_grad_(true);
            const Tensor logits = run_d(x, real_c[round]);
            const Tensor grads = torch::autograd::grad({logits.sum()}, {x}, {}, true, true)[0];
            const Tensor penalty = grads.square().sum({1, 2, 3});
            const Tensor loss = penalty * (r_.gamma / 2);
            ((logits.select(1, 0) * 0 + loss).sum() * (gain / r_.batch)).backward();
            add(kLoss, penalty);
            stats[kLossCount] += double(b);
            add(kSignSum, logits.sign());
            stats[kSignCount] += double(b);
        }
        torch::NoGradGuard no_grad;
        for (size_t k = 0; k < params.size(); ++k) {
            Tensor g = params[k].grad();
            if (!g.defined()) continue;
            sums[k] = sums[k].defined() ? sums[k] + g.detach() : g.detach().clone();
            params[k].mutable_grad() = Tensor();
        }
    }
    // One all-reduce for gradients and statistics.
    std::vector<Tensor> grads;
    for (size_t k = 0; k < params.size(); ++k) {
        params[k].mutable_grad() = sums[k].defined() ? sums[k] : torch::zeros_like(params[k]);
        grads.push_back(params[k].grad().flatten());
    }
    if (env_.world_size > 1) {
        Tensor flat = torch::cat(grads).to(torch::kFloat64);
        Tensor packed = torch::cat({flat.cpu(), stats, w_sum});
        coll_.all_reduce_sum(packed);
        int64_t off = 0;
        for (auto& p : net.parameters(true)) {
            const int64_t n = p.numel();
            p.mutable_grad().copy_(packed.narrow(0, off, n).view(p.sizes()).to(p.options()));
            off += n;
        }
        stats.copy_(packed.narrow(0, off, kNumStats));
        w_sum.copy_(packed.narrow(0, off + kNumStats, r_.w_dim));
    }
    const double loss_sum = stats[kLoss].item<double>();
    if (!std::isfinite(loss_sum))
        throw Error(fmt::format("training diverged at {:.3f} kimg: the {} loss is {}; stopped (the last good snapshot is {})", cur_nimg_ / 1000.0,
                                ph.name, loss_sum, last_snapshot_.empty() ? "none yet" : last_snapshot_));
    {
        torch::NoGradGuard no_grad;
        for (auto& p : net.parameters(true)) p.mutable_grad() = torch::nan_to_num(p.grad(), 0.0, 1e5, -1e5);
    }
    Adam& opt = ph.g ? opt_g_ : opt_d_;
    const int reg_interval = ph.g ? o_.g_reg_interval : o_.d_reg_interval;
    const double mb_ratio = double(reg_interval) / (reg_interval + 1);
    opt.lr = (ph.g ? r_.lr_g : r_.lr_d) * mb_ratio;
    opt.beta1 = 0;
    opt.beta2 = std::pow(0.99, mb_ratio);
    opt.step();
    zero_grads(net);

    torch::NoGradGuard no_grad;
    const double count = stats[kLossCount].item<double>();
    const int slot = ph.id * 2;
    tick_sums_[slot] += loss_sum / std::max(count, 1.0);
    tick_sums_[slot + 1] += 1;
    if (stats[kScoreCount].item<double>() > 0) {
        tick_sums_[8] += stats[kRealScore].item<double>() / stats[kScoreCount].item<double>();
        tick_sums_[9] += stats[kFakeScore].item<double>() / stats[kScoreCount].item<double>();
        tick_sums_[10] += 1;
    }
    ada_sign_sum_ += stats[kSignSum].item<double>();
    ada_sign_count_ += stats[kSignCount].item<double>();
    if (stats[kPlCount].item<double>() > 0) {
        const double mean = stats[kPlSum].item<double>() / stats[kPlCount].item<double>();
        pl_mean_.add_((mean - pl_mean_) * o_.pl_decay);
    }
    if (stats[kWCount].item<double>() > 0 && G_->mapping->w_avg.defined()) {
        const Tensor mean = (w_sum / stats[kWCount]).to(G_->mapping->w_avg.options());
        G_->mapping->w_avg.copy_(mean + (G_->mapping->w_avg - mean) * 0.995);
    }
}

void Trainer::update_ema() {
    torch::NoGradGuard no_grad;
    double ema_nimg = r_.ema_kimg * 1000;
    if (r_.ema_rampup) ema_nimg = std::min(ema_nimg, cur_nimg_ * *r_.ema_rampup);
    const double beta = std::pow(0.5, r_.batch / std::max(ema_nimg, 1e-8));
    auto src = G_->named_parameters(true);
    for (auto& p : G_ema_->named_parameters(true)) p.value().copy_(src[p.key()].detach().lerp(p.value(), beta));
    auto bsrc = G_->named_buffers(true);
    for (auto& b : G_ema_->named_buffers(true)) b.value().copy_(bsrc[b.key()]);
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
    st["ada_sign_sum"] = ada_sign_sum_;
    st["ada_sign_count"] = ada_sign_count_;
    st["batch"] = r_.batch;
    st["seed"] = o_.seed;
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

TrainEnd Trainer::run() {
    const int64_t total = static_cast<int64_t>(std::llround(o_.kimg * 1000));
    if (cur_nimg_ == 0) {
        write_grid("reals.png", true);
        write_grid("fakes-init.png", false);
    }
    if (cur_nimg_ >= total) {
        log_info(fmt::format("the run is already at {:.3f} kimg (--kimg {})", cur_nimg_ / 1000.0, o_.kimg));
        return TrainEnd::finished;
    }
    const Phase phases[] = {{"G", 0, true, 1}, {"path length", 1, true, o_.g_reg_interval}, {"D", 2, false, 1}, {"R1", 3, false, o_.d_reg_interval}};
    const int rounds = r_.batch / (r_.batch_gpu * env_.world_size);
    auto tick_start = std::chrono::steady_clock::now();
    auto last = tick_start;
    while (true) {
        std::vector<Tensor> reals(rounds), real_c(rounds);
        for (int round = 0; round < rounds; ++round) load_reals(static_cast<int64_t>(env_.rank) * rounds + round, reals[round], real_c[round]);
        for (const Phase& ph : phases) {
            if (batch_idx_ % ph.interval != 0) continue;
            if (ph.id == 1 && r_.pl_weight == 0) continue;
            if (ph.id == 3 && r_.gamma == 0) continue;
            run_phase(ph, reals, real_c);
        }
        cur_nimg_ += r_.batch;
        ++batch_idx_;
        update_ema();
        if (o_.aug == "ada" && batch_idx_ % o_.ada_interval == 0 && ada_sign_count_ > 0) {
            const double rt = ada_sign_sum_ / ada_sign_count_;
            const double adjust = (rt > o_.ada_target ? 1.0 : rt < o_.ada_target ? -1.0 : 0.0) * (r_.batch * o_.ada_interval) / (o_.ada_kimg * 1000);
            p_ = std::clamp(p_ + adjust, 0.0, 1.0);
            tick_sums_[11] = rt;
            ada_sign_sum_ = ada_sign_count_ = 0;
        }
        const auto now = std::chrono::steady_clock::now();
        elapsed_ += std::chrono::duration<double>(now - last).count();
        last = now;
        bool stop = cb_.step && !cb_.step(cur_nimg_, total);
        if (env_.world_size > 1) {
            Tensor flag = torch::full({1}, stop ? 1.0 : 0.0, torch::kFloat64);
            coll_.all_reduce_sum(flag);
            stop = flag.item<double>() > 0;
        }
        const bool done = cur_nimg_ >= total;
        if (!done && !stop && cur_nimg_ < tick_start_nimg_ + static_cast<int64_t>(o_.tick_kimg * 1000)) continue;

        TickStats s;
        s.tick = tick_;
        s.kimg = cur_nimg_ / 1000.0;
        s.total_kimg = o_.kimg;
        s.sec_per_tick = std::chrono::duration<double>(now - tick_start).count();
        s.sec_per_kimg = s.sec_per_tick / std::max((cur_nimg_ - tick_start_nimg_) / 1000.0, 1e-9);
        s.elapsed = elapsed_;
        auto avg = [&](int slot) { return tick_sums_[slot + 1] > 0 ? tick_sums_[slot] / tick_sums_[slot + 1] : 0.0; };
        s.loss_g = avg(0);
        s.loss_pl = avg(2);
        s.loss_d = avg(4);
        s.loss_r1 = avg(6);
        s.real_score = tick_sums_[10] > 0 ? tick_sums_[8] / tick_sums_[10] : 0;
        s.fake_score = tick_sums_[10] > 0 ? tick_sums_[9] / tick_sums_[10] : 0;
        s.augment_p = p_;
        s.r_t = tick_sums_[11];
        const bool snap = done || stop || (o_.snap > 0 && (tick_ + 1) % o_.snap == 0);
        ++tick_;
        tick_start_nimg_ = cur_nimg_;
        if (snap) {
            write_grid(fmt::format("fakes-{:09d}.png", cur_nimg_), false);
            s.snapshot = write_snapshot();
            if (!o_.metrics.empty()) {
                MetricOptions mo;
                mo.detector = o_.inception;
                mo.num_generated = o_.metric_samples;
                mo.cache_dir = o_.cache_dir;
                mo.device = o_.device;
                mo.batch = r_.batch_gpu;
                mo.mirror = o_.mirror;
                if (rank0()) s.metrics = compute_metrics(*G_ema_, data_, o_.metrics, mo);
            }
        }
        if (rank0()) {
            log_tick(s);
            if (cb_.tick) cb_.tick(s);
        }
        std::fill(tick_sums_.begin(), tick_sums_.end() - 1, 0.0);
        tick_start = std::chrono::steady_clock::now();
        last = tick_start;
        if (done) return TrainEnd::finished;
        if (stop) return TrainEnd::stopped;
    }
}

}  // namespace

TrainEnd train(const TrainingData& data, const TrainOptions& options, const TrainCallbacks& callbacks) {
    Trainer t(data, options, callbacks);
    return t.run();
}

}  // namespace latentkit
