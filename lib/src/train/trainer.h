#pragma once
// The training loop's internals, shared by trainer.cpp (minibatches, phases, the loop) and
// trainer_files.cpp (set-up, resume, snapshots, grids, log).
#include <torch/torch.h>

#include <cmath>
#include <string>
#include <vector>

#include "latentkit/networks.h"
#include "latentkit/tensor_data.h"
#include "latentkit/train.h"
#include "train/augment.h"
#include "train/distributed.h"

namespace latentkit::training {

using torch::Tensor;

inline uint64_t splitmix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}
inline uint64_t mix(uint64_t a, uint64_t b, uint64_t c = 0, uint64_t d = 0) { return splitmix(splitmix(splitmix(splitmix(a) ^ b) ^ c) ^ d); }

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

inline void set_requires_grad(torch::nn::Module& net, bool on) {
    for (auto& p : net.parameters(true)) p.set_requires_grad(on);
}
inline void zero_grads(torch::nn::Module& net) {
    for (auto& p : net.parameters(true))
        if (p.grad().defined()) p.mutable_grad() = Tensor();
}

// Per-phase accumulators; summed over chunks and processes in one all-reduce with the gradients.
enum Stat { kLoss, kLossCount, kSignSum, kSignCount, kRealScore, kFakeScore, kScoreCount, kNumStats };

// The tick's accumulators on the device (float64): per-phase mean losses and their counts, D's mean
// scores, and ADA's sign sum and count (read every ada_interval minibatches).
enum Accumulator { kAccLoss = 0, kAccLossN = 4, kAccReal = 8, kAccFake, kAccScoreN, kAccSign, kAccSignN, kNumAcc };

// The pieces of the reference loss (training/loss.py) that the phases share, testable on their own.

/// What one generator pass of the loss gives: the images and the ws the synthesis saw.
struct GeneratorRun {
    Tensor img, ws;
};

/// The reference's run_G: ws from the mapping (psi 1), the layers from `cutoff` on replaced by those of
/// mix_z (cutoff >= num_ws: no mixing), then the synthesis. The returned ws are the mixed ones, so that
/// path-length gradients are taken with respect to what the synthesis saw. When `w_means` is given, the
/// mean of the mapped w (before mixing) is appended: the reference moves w_avg towards it in every
/// training-mode mapping call except the mixing one.
GeneratorRun run_generator(Generator& G, const Tensor& z, const Tensor& c, int64_t cutoff, const Tensor& mix_z, const SynthesisOptions& so,
                           std::vector<Tensor>* w_means = nullptr);

/// Path lengths per sample: the norm of d(sum(img * noise))/d(ws), squared over w and averaged over
/// layers, as the reference's pl_lengths. The graph is kept for the penalty's backward pass.
Tensor path_lengths(const Tensor& img, const Tensor& ws, const Tensor& noise);

/// The reference's pl_mean after a chunk: `pl_mean` lerped towards the chunk's mean length by `decay`,
/// with the gradient through the lengths (the penalty is taken against this value).
Tensor pl_mean_step(const Tensor& pl_mean, const Tensor& lengths, double decay);

/// What a chunk backpropagates, as the reference: the chunk's mean loss times the phase's gain (its
/// interval). Chunks of several accumulation rounds add up.
Tensor chunk_objective(const Tensor& per_sample_loss, double gain);

/// w_avg moved towards each mean in turn with weight 1 - beta (the reference's update per mapping call).
void update_w_avg(Tensor& w_avg, const std::vector<Tensor>& means, double beta = 0.995);

/// The reference's four training phases, in their order (the values seed each phase's random draws).
enum class PhaseKind : int {
    g_main = 0,  ///< Gmain: the generator's adversarial loss
    g_reg = 1,   ///< Greg: the path-length penalty
    d_main = 2,  ///< Dmain: the discriminator on fakes and reals
    d_reg = 3,   ///< Dreg: R1 on reals
};

/// One phase of a minibatch.
struct Phase {
    const char* name;
    PhaseKind kind;
    bool g;         ///< updates G (else D)
    int interval;   ///< every this many minibatches
    int id() const { return static_cast<int>(kind); }
};

/// One training run: state, phases and run-folder files (trainer.cpp: the loop; trainer_files.cpp:
/// set-up, resume, snapshots, grids and the log).
class Trainer {
public:
    Trainer(const TrainingData& data, const TrainOptions& o, const TrainCallbacks& cb)
        : data_(data), o_(o), cb_(cb), env_(DistributedEnv::from_environment()), device_(process_device(o.device, env_)),
          coll_(env_, device_, training::choose_backend(o.dist_backend, device_)), pipe_(training::AugmentSpec::preset(o.augpipe)) {
        setup();
    }
    TrainEnd run();

private:
    void setup();
    void build_networks();
    void place_networks();  // device, modes and fresh optimiser state
    void restore(const std::string& path);
    void restore_counters(const std::string& state, const std::string& path);
    void restore_optimizer(Adam& opt, const TensorFile& file, const std::string& prefix, const std::string& path);
    void load_reals(int64_t chunk, Tensor& img, Tensor& c);
    Tensor random_labels(int64_t n);
    GeneratorRun run_g(const Tensor& z, const Tensor& c, bool grad, std::vector<Tensor>* w_means);
    Tensor pl_penalty(const Tensor& lengths);
    void run_chunk(const Phase& ph, const Tensor& real, const Tensor& real_c, Tensor& stats, std::vector<Tensor>& w_means);
    void reduce_phase(torch::nn::Module& net, std::vector<Tensor>& sums, Tensor& stats, const std::vector<Tensor>& w_means);
    void accumulate_tick(const Phase& ph, const Tensor& stats);
    void train_minibatch(const std::vector<Phase>& phases);
    bool stop_requested(int64_t total);
    std::vector<std::pair<std::string, double>> snapshot_metrics();
    void write_training_options(const std::string& resume);
    // Round r of this process is global chunk r * world_size + rank (one process: chunk r).
    int64_t chunk_of(int round) const { return static_cast<int64_t>(round) * env_.world_size + env_.rank; }
    void adjust_augment();
    TickStats read_tick();
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
    torch::Device device_;
    training::Collective coll_;
    training::AugmentPipe pipe_;
    ResolvedTraining r_;
    int64_t num_items_ = 0;  // with mirrored copies
    int c_dim_ = 0;
    std::shared_ptr<Generator> G_, G_ema_;
    std::shared_ptr<Discriminator> D_;
    Adam opt_g_, opt_d_;
    double p_ = 0;
    Tensor pl_mean_;
    Tensor acc_;                            // Accumulator slots, on the device
    double rt_sum_ = 0, rt_count_ = 0;      // ADA's E[sign(D(real))] over the tick's adjustments
    int64_t cur_nimg_ = 0, batch_idx_ = 0, tick_start_nimg_ = 0;
    int tick_ = 0;
    double elapsed_ = 0;
    std::string last_snapshot_;
    int64_t perm_epoch_ = -1;
    std::vector<int64_t> perm_;
};

}  // namespace latentkit::training
