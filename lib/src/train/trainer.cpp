// The StyleGAN2-ADA training loop (reference training/training_loop.py and training/loss.py).
//
// Determinism: every random draw of a minibatch chunk comes from the default generator seeded with
// (seed, minibatch, phase, global chunk index), and the data order from (seed, epoch). A run resumed
// from a snapshot therefore continues bit for bit, and one process working through all chunks of a
// minibatch computes what several processes compute with one chunk each.
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <optional>

#include "latentkit/error.h"
#include "latentkit/log.h"
#include "latentkit/metrics.h"
#include "latentkit/stop.h"
#include "train/trainer.h"
#include "torch_errors.h"

namespace latentkit {
namespace training {

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

GeneratorRun run_generator(Generator& G, const Tensor& z, const Tensor& c, int64_t cutoff, const Tensor& mix_z, const SynthesisOptions& so,
                           std::vector<Tensor>* w_means) {
    Tensor ws = G.mapping->forward(z, c, 1.0, std::nullopt, true);
    if (w_means) w_means->push_back(ws.detach().select(1, 0).mean(0));
    const int64_t num_ws = ws.size(1);
    if (cutoff < num_ws) {
        const Tensor other = G.mapping->forward(mix_z, c, 1.0, std::nullopt, true);
        ws = torch::cat({ws.narrow(1, 0, cutoff), other.narrow(1, cutoff, num_ws - cutoff)}, 1);
    }
    return {G.synthesis->forward(ws, so), ws};
}

Tensor path_lengths(const Tensor& img, const Tensor& ws, const Tensor& noise) {
    const Tensor grads = torch::autograd::grad({(img * noise).sum()}, {ws}, {}, true, true)[0];
    return grads.square().sum(2).mean(1).sqrt();
}

Tensor pl_mean_step(const Tensor& pl_mean, const Tensor& lengths, double decay) { return pl_mean.lerp(lengths.mean(), decay); }

void update_w_avg(Tensor& w_avg, const std::vector<Tensor>& means, double beta) {
    torch::NoGradGuard no_grad;
    for (const Tensor& m : means) w_avg.copy_(m.to(w_avg.options()).lerp(w_avg, beta));
}

// The reference's run_G with a random mixing cutoff (probability r_.style_mixing) and random noise.
GeneratorRun Trainer::run_g(const Tensor& z, const Tensor& c, bool grad, std::vector<Tensor>* w_means) {
    std::optional<torch::NoGradGuard> guard;
    if (!grad) guard.emplace();
    const int64_t num_ws = G_->synthesis->num_ws;
    int64_t cutoff = num_ws;
    Tensor mix_z;
    if (r_.style_mixing > 0) {
        cutoff = torch::randint(1, num_ws, {1}, torch::kInt64).item<int64_t>();
        if (torch::rand({1}).item<double>() >= r_.style_mixing) cutoff = num_ws;
        if (cutoff < num_ws) mix_z = torch::randn_like(z);
    }
    SynthesisOptions so;
    so.noise_mode = NoiseMode::random;
    return run_generator(*G_, z, c, cutoff, mix_z, so, w_means);
}

Tensor Trainer::run_d(const Tensor& img, const Tensor& c) {
    const Tensor x = p_ > 0 ? pipe_(img, p_) : img;
    return D_->forward(x, c);
}

Tensor chunk_objective(const Tensor& per_sample_loss, double gain) { return per_sample_loss.mean() * gain; }

// The path-length penalty of this process's chunk. As in the reference on one GPU, pl_mean moves
// towards each chunk's mean length in chunk order, and each chunk's penalty is taken against the value
// after its own step. With several processes the chunks of one round run side by side: their mean
// lengths are shared first (a small all-reduce), so every process follows the chain one process would.
Tensor Trainer::pl_penalty(const Tensor& lengths) {
    const int W = env_.world_size;
    if (W == 1) {
        const Tensor pl_mean = pl_mean_step(pl_mean_, lengths, o_.pl_decay);
        pl_mean_ = pl_mean.detach().clone();
        return (lengths - pl_mean).square();
    }
    Tensor means = torch::zeros({W}, torch::TensorOptions().dtype(torch::kFloat32).device(lengths.device()));
    means[env_.rank] = lengths.detach().mean();
    coll_.all_reduce_sum(means);
    Tensor before = pl_mean_;
    {
        torch::NoGradGuard no_grad;
        for (int r = 0; r < env_.rank; ++r) before = before.lerp(means[r], o_.pl_decay);
    }
    const Tensor pl_mean = pl_mean_step(before, lengths, o_.pl_decay);
    {
        torch::NoGradGuard no_grad;
        Tensor after = pl_mean.detach();
        for (int r = env_.rank + 1; r < W; ++r) after = after.lerp(means[r], o_.pl_decay);
        pl_mean_ = after.clone();
    }
    return (lengths - pl_mean).square();
}

// One chunk of a phase: forward, and backward of the reference's objective (the chunk's mean loss times
// the phase's interval), adding to the phase's statistics on the device (no host read).
void Trainer::run_chunk(const Phase& ph, const Tensor& real, const Tensor& real_c, Tensor& stats, std::vector<Tensor>& w_means) {
    const int64_t b = r_.batch_gpu;
    const double gain = ph.interval;
    const auto fo = torch::TensorOptions().device(device_);
    auto add = [&](Stat s, const Tensor& v) { stats[s] += v.detach().sum().to(torch::kFloat32); };
    if (ph.kind == PhaseKind::g_main) {
        const Tensor z = torch::randn({b, G_->config.z_dim}, fo);
        const Tensor c = random_labels(b);
        const GeneratorRun g = run_g(z, c, true, &w_means);
        const Tensor logits = run_d(g.img, c);
        const Tensor loss = torch::softplus(-logits);
        chunk_objective(loss, gain).backward();
        add(kLoss, loss);
        stats[kLossCount] += double(b);
        add(kFakeScore, logits);
    } else if (ph.kind == PhaseKind::g_reg) {  // path length
        const int64_t pb = std::max<int64_t>(b / o_.pl_batch_shrink, 1);
        const Tensor z = torch::randn({pb, G_->config.z_dim}, fo);
        const GeneratorRun g = run_g(z, random_labels(pb), true, &w_means);
        const Tensor noise = torch::randn_like(g.img) / std::sqrt(double(g.img.size(2) * g.img.size(3)));
        const Tensor penalty = pl_penalty(path_lengths(g.img, g.ws, noise));
        chunk_objective(g.img.select(1, 0).select(1, 0).select(1, 0) * 0 + penalty * r_.pl_weight, gain).backward();
        add(kLoss, penalty);
        stats[kLossCount] += double(pb);
    } else if (ph.kind == PhaseKind::d_main) {
        const Tensor z = torch::randn({b, G_->config.z_dim}, fo);
        const Tensor c = random_labels(b);
        const Tensor fake = run_g(z, c, false, &w_means).img;
        const Tensor fake_logits = run_d(fake, c);
        const Tensor real_logits = run_d(real, real_c);
        const Tensor loss_fake = torch::softplus(fake_logits), loss_real = torch::softplus(-real_logits);
        (chunk_objective(loss_fake, gain) + chunk_objective(loss_real, gain)).backward();
        add(kLoss, loss_fake + loss_real);
        stats[kLossCount] += double(b);
        add(kRealScore, real_logits);
        add(kFakeScore, fake_logits);
        stats[kScoreCount] += double(b);
        add(kSignSum, real_logits.sign());
        stats[kSignCount] += double(b);
    } else {  // Dreg: R1
        const Tensor x = real.detach().requires_grad_(true);
        const Tensor logits = run_d(x, real_c);
        const Tensor grads = torch::autograd::grad({logits.sum()}, {x}, {}, true, true)[0];
        const Tensor penalty = grads.square().sum({1, 2, 3});
        chunk_objective(logits.select(1, 0) * 0 + penalty * (r_.gamma / 2), gain).backward();
        add(kLoss, penalty);
        stats[kLossCount] += double(b);
        add(kSignSum, logits.sign());
        stats[kSignCount] += double(b);
    }
}

// Sums the chunks' gradients, statistics and w means over processes (one float32 all-reduce) and moves
// w_avg through the means in global chunk order, as one process running every chunk would. Gradients
// are summed, not averaged: N processes compute what one process computes with the same global batch,
// which is the reference on one GPU (its DDP averages over GPUs instead).
void Trainer::reduce_phase(torch::nn::Module& net, std::vector<Tensor>& sums, Tensor& stats, const std::vector<Tensor>& w_means) {
    std::vector<Tensor> params = net.parameters(true);
    for (size_t k = 0; k < params.size(); ++k) params[k].mutable_grad() = sums[k].defined() ? sums[k] : torch::zeros_like(params[k]);
    const int W = env_.world_size;
    std::vector<Tensor> means = w_means;
    if (W > 1) {
        std::vector<Tensor> parts;
        for (auto& p : params) parts.push_back(p.grad().flatten().to(torch::kFloat32));
        parts.push_back(stats);
        // Slot round * W + rank holds this process's chunk of that round; the others are zero.
        const int64_t slots = static_cast<int64_t>(w_means.size()) * W;
        Tensor w_block = torch::zeros({slots, r_.w_dim}, stats.options());
        for (size_t k = 0; k < w_means.size(); ++k) w_block[static_cast<int64_t>(k) * W + env_.rank].copy_(w_means[k]);
        parts.push_back(w_block.flatten());
        Tensor packed = torch::cat(parts);
        coll_.all_reduce_sum(packed);
        int64_t off = 0;
        for (auto& p : params) {
            const int64_t n = p.numel();
            p.mutable_grad().copy_(packed.narrow(0, off, n).view(p.sizes()));
            off += n;
        }
        stats.copy_(packed.narrow(0, off, kNumStats));
        const Tensor all = packed.narrow(0, off + kNumStats, slots * r_.w_dim).view({slots, r_.w_dim});
        means.clear();
        for (int64_t k = 0; k < slots; ++k) means.push_back(all[k]);
    }
    if (G_->mapping->w_avg.defined()) update_w_avg(G_->mapping->w_avg, means);
}

void Trainer::run_phase(const Phase& ph, std::vector<Tensor>& reals, std::vector<Tensor>& real_c) {
    torch::nn::Module& net = ph.g ? static_cast<torch::nn::Module&>(*G_) : static_cast<torch::nn::Module&>(*D_);
    set_requires_grad(*G_, ph.g);
    set_requires_grad(*D_, !ph.g);
    zero_grads(net);
    const int rounds = r_.batch / (r_.batch_gpu * env_.world_size);
    Tensor stats = torch::zeros({kNumStats}, torch::TensorOptions().device(device_));
    std::vector<Tensor> w_means;
    // Chunk gradients are summed here in chunk order, so that one process working through several
    // chunks adds exactly what the all-reduce adds across processes.
    std::vector<Tensor> params = net.parameters(true), sums(params.size());
    for (int round = 0; round < rounds; ++round) {
        torch::manual_seed(mix(o_.seed, static_cast<uint64_t>(batch_idx_), static_cast<uint64_t>(ph.id()), static_cast<uint64_t>(chunk_of(round))));
        run_chunk(ph, reals[round], real_c[round], stats, w_means);
        torch::NoGradGuard no_grad;
        for (size_t k = 0; k < params.size(); ++k) {
            Tensor g = params[k].grad();
            if (!g.defined()) continue;
            sums[k] = sums[k].defined() ? sums[k] + g.detach() : g.detach().clone();
            params[k].mutable_grad() = Tensor();
        }
    }
    reduce_phase(net, sums, stats, w_means);
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
    accumulate_tick(ph, stats);
}

// Adds a phase's statistics to the tick's accumulators, on the device: they are read once per tick
// (and the ADA signs once per ada_interval minibatches, as the reference reads them).
void Trainer::accumulate_tick(const Phase& ph, const Tensor& stats) {
    torch::NoGradGuard no_grad;
    const Tensor st = stats.to(torch::kFloat64);
    acc_[kAccLoss + ph.id()] += st[kLoss] / st[kLossCount].clamp_min(1);
    acc_[kAccLossN + ph.id()] += 1;
    if (ph.kind == PhaseKind::d_main) {  // the scores
        acc_[kAccReal] += st[kRealScore] / st[kScoreCount];
        acc_[kAccFake] += st[kFakeScore] / st[kScoreCount];
        acc_[kAccScoreN] += 1;
    }
    acc_[kAccSign] += st[kSignSum];
    acc_[kAccSignN] += st[kSignCount];
}

// ADA's heuristic every ada_interval minibatches: the one host read of the signs in between ticks.
void Trainer::adjust_augment() {
    const Tensor signs = acc_.narrow(0, kAccSign, 2).to(torch::kCPU);
    const double sum = signs[0].item<double>(), count = signs[1].item<double>();
    if (count <= 0) return;
    const double rt = sum / count;
    const double adjust = (rt > o_.ada_target ? 1.0 : rt < o_.ada_target ? -1.0 : 0.0) * (r_.batch * o_.ada_interval) / (r_.ada_kimg * 1000);
    p_ = std::clamp(p_ + adjust, 0.0, 1.0);
    rt_sum_ += rt;
    rt_count_ += 1;
    acc_.narrow(0, kAccSign, 2).zero_();
}

// The tick's statistics from the accumulators (one host read), which are then reset. A non-finite
// loss ends the run here, before anything of it is written.
TickStats Trainer::read_tick() {
    const Tensor a = acc_.to(torch::kCPU);
    auto at = [&](int k) { return a[k].item<double>(); };
    static const char* names[] = {"G", "path length", "D", "R1"};
    TickStats s;
    double* losses[] = {&s.loss_g, &s.loss_pl, &s.loss_d, &s.loss_r1};
    for (int k = 0; k < 4; ++k) {
        *losses[k] = at(kAccLossN + k) > 0 ? at(kAccLoss + k) / at(kAccLossN + k) : 0.0;
        if (!std::isfinite(*losses[k]))
            throw Error(fmt::format("training diverged at {:.3f} kimg: the {} loss is {}; stopped (the last good snapshot is {})", cur_nimg_ / 1000.0,
                                    names[k], *losses[k], last_snapshot_.empty() ? "none yet" : last_snapshot_));
    }
    s.real_score = at(kAccScoreN) > 0 ? at(kAccReal) / at(kAccScoreN) : 0;
    s.fake_score = at(kAccScoreN) > 0 ? at(kAccFake) / at(kAccScoreN) : 0;
    s.augment_p = p_;
    s.r_t = rt_count_ > 0 ? rt_sum_ / rt_count_ : 0;
    acc_.narrow(0, 0, kAccSign).zero_();
    rt_sum_ = rt_count_ = 0;
    return s;
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

// One minibatch: its reals, every phase due, the EMA, the counters and ADA's heuristic.
void Trainer::train_minibatch(const std::vector<Phase>& phases) {
    const int rounds = r_.batch / (r_.batch_gpu * env_.world_size);
    std::vector<Tensor> reals(rounds), real_c(rounds);
    for (int round = 0; round < rounds; ++round) load_reals(chunk_of(round), reals[round], real_c[round]);
    for (const Phase& ph : phases) {
        if (batch_idx_ % ph.interval != 0) continue;
        if (ph.kind == PhaseKind::g_reg && r_.pl_weight == 0) continue;
        if (ph.kind == PhaseKind::d_reg && r_.gamma == 0) continue;
        run_phase(ph, reals, real_c);
    }
    update_ema();  // with the image count before this minibatch, as the reference's ramp-up
    cur_nimg_ += r_.batch;
    ++batch_idx_;
    if (o_.aug == AugmentMode::ada && batch_idx_ % o_.ada_interval == 0) adjust_augment();
}

// Whether the program asked to stop, on any process (every process then stops after this minibatch).
bool Trainer::stop_requested(int64_t total) {
    bool stop = (cb_.step && !cb_.step(cur_nimg_, total)) || latentkit::stop_requested();
    if (env_.world_size > 1) {
        Tensor flag = torch::full({1}, stop ? 1.0 : 0.0, torch::kFloat64);
        coll_.all_reduce_sum(flag);
        stop = flag.item<double>() > 0;
    }
    return stop;
}

// The snapshot's metrics. Every process computes its share, as the reference (rank 0 alone would keep
// the others waiting in the next all-reduce past its timeout).
std::vector<std::pair<std::string, double>> Trainer::snapshot_metrics() {
    MetricOptions mo;
    mo.detector = o_.inception;
    mo.num_generated = o_.metric_samples;
    mo.cache_dir = o_.cache_dir;
    mo.device = o_.device;
    mo.batch = r_.batch_gpu;
    mo.mirror = o_.mirror;
    mo.rank = env_.rank;
    mo.processes = env_.world_size;
    mo.sum_over_processes = [this](float* data, size_t count) {
        Tensor t = torch::from_blob(data, {static_cast<int64_t>(count)}, torch::kFloat32);
        coll_.all_reduce_sum(t);
    };
    return compute_metrics(*G_ema_, data_, o_.metrics, mo);
}

TrainEnd Trainer::run() {
    const int64_t total = static_cast<int64_t>(std::llround(o_.kimg * 1000));
    if (cur_nimg_ == 0) {
        write_grid("reals.png", true);
        write_grid("fakes-init.png", false);
    }
    if (cur_nimg_ >= total) {
        log_info(fmt::format("the run is already at {:.3f} kimg, its length is {} kimg", cur_nimg_ / 1000.0, o_.kimg));
        return TrainEnd::finished;
    }
    const std::vector<Phase> phases{{"G", PhaseKind::g_main, true, 1},
                                     {"path length", PhaseKind::g_reg, true, o_.g_reg_interval},
                                     {"D", PhaseKind::d_main, false, 1},
                                     {"R1", PhaseKind::d_reg, false, o_.d_reg_interval}};
    auto tick_start = std::chrono::steady_clock::now();
    auto last = tick_start;
    while (true) {
        train_minibatch(phases);
        const auto now = std::chrono::steady_clock::now();
        elapsed_ += std::chrono::duration<double>(now - last).count();
        last = now;
        const bool stop = stop_requested(total), done = cur_nimg_ >= total;
        // As the reference: tick 0 ends after the first minibatch, then one tick every tick_kimg.
        if (!done && !stop && tick_ != 0 && cur_nimg_ < tick_start_nimg_ + static_cast<int64_t>(o_.tick_kimg * 1000)) continue;

        TickStats s = read_tick();
        s.tick = tick_;
        s.kimg = cur_nimg_ / 1000.0;
        s.total_kimg = o_.kimg;
        s.sec_per_tick = std::chrono::duration<double>(now - tick_start).count();
        s.sec_per_kimg = s.sec_per_tick / std::max((cur_nimg_ - tick_start_nimg_) / 1000.0, 1e-9);
        s.elapsed = elapsed_;
        const bool snap = done || stop || (o_.snap > 0 && tick_ % o_.snap == 0);  // ticks 0, snap, 2 snap, ... (the reference's)
        ++tick_;
        tick_start_nimg_ = cur_nimg_;
        if (snap) {
            write_grid(fmt::format("fakes-{:09d}.png", cur_nimg_), false);
            s.snapshot = write_snapshot();
            if (!o_.metrics.empty()) s.metrics = snapshot_metrics();
        }
        if (rank0()) {
            log_tick(s);
            if (cb_.tick) cb_.tick(s);
        }
        tick_start = std::chrono::steady_clock::now();
        last = tick_start;
        if (done) return TrainEnd::finished;
        if (stop) return TrainEnd::stopped;
    }
}

}  // namespace training

TrainEnd train(const TrainingData& data, const TrainOptions& options, const TrainCallbacks& callbacks) {
    return detail::guard_torch("training", [&]() -> TrainEnd {
        training::Trainer t(data, options, callbacks);
        return t.run();
    });
}

}  // namespace latentkit
