#pragma once
// Training StyleGAN2-ADA: the reference configuration presets, losses (non-saturating logistic, lazy
// R1 and path-length regularisation, style mixing), adaptive discriminator augmentation, G EMA,
// snapshots that resume bit for bit, and data parallelism over processes (c10d: Gloo / NCCL).
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "latentkit/metrics.h"
#include "latentkit/training_data.h"
#include "latentkit/model_config.h"
#include "latentkit/option_names.h"

namespace latentkit {

/// The reference train.py's configuration presets.
enum class TrainPreset { automatic, stylegan2, paper256, paper512, paper1024, cifar };
template <>
struct OptionNames<TrainPreset> {
    static constexpr const char* names[] = {"auto", "stylegan2", "paper256", "paper512", "paper1024", "cifar"};
};

/// Augmentation of what D sees: adaptive (ADA), none, or a fixed probability.
enum class AugmentMode { ada, noaug, fixed };
template <>
struct OptionNames<AugmentMode> {
    static constexpr const char* names[] = {"ada", "noaug", "fixed"};
};

/// The reference's augmentation pipelines: blit (flips, 90-degree rotations, integer translation),
/// geom (+ scaling, rotation, anisotropy, fractional translation), color, bg (blit + geom), bgc (all).
enum class AugmentPipeline { blit, geom, color, bg, bgc };
template <>
struct OptionNames<AugmentPipeline> {
    static constexpr const char* names[] = {"blit", "geom", "color", "bg", "bgc"};
};

/// How several training processes sum their gradients: NCCL on CUDA when the build has it, else Gloo (automatic).
enum class DistBackend { automatic, gloo, nccl };
template <>
struct OptionNames<DistBackend> {
    static constexpr const char* names[] = {"auto", "gloo", "nccl"};
};

/// Settings of a training run. Unset values come from the `cfg` preset, as in the reference train.py.
struct TrainOptions {
    std::string outdir;                  ///< run folder: snapshots, grids, log.jsonl
    TrainPreset cfg = TrainPreset::automatic;
    double kimg = 25000;                 ///< stop after this many thousand real images shown
    double tick_kimg = 4;                ///< progress line (and log entry) every this many kimg
    int snap = 50;                       ///< snapshot at tick 0 and every this many ticks, as the reference (0: only at the end)
    uint64_t seed = 0;                   ///< every random draw of the run follows from it
    bool cond = false;                   ///< train a conditional model on the data's labels
    bool mirror = false;                 ///< add x-flipped copies of the images
    std::optional<int> batch;            ///< total batch size (all processes)
    std::optional<int> batch_gpu;        ///< images per forward pass (gradient accumulation)
    std::optional<double> gamma;         ///< R1 weight
    std::optional<double> lr_g, lr_d;    ///< learning rates
    std::optional<int> map_layers;       ///< mapping network depth
    std::optional<int> channel_base;     ///< channels = min(channel_base / res, channel_max)
    std::optional<int> channel_max;
    std::optional<int> z_dim, w_dim;     ///< latent sizes (512 in every preset)
    std::optional<int> mbstd_group;      ///< minibatch-stddev group size
    std::optional<double> ema_kimg;      ///< G EMA half-life in kimg
    std::optional<double> ema_rampup;    ///< EMA ramp-up ratio; a negative value turns it off (unset: the preset's; none when fine-tuning)
    double style_mixing = -1;            ///< probability (negative: preset, 0.9 or 0 for cifar)
    double pl_weight = -1;               ///< path-length weight (negative: preset, 2 or 0 for cifar)
    double pl_decay = 0.01;
    int pl_batch_shrink = 2;
    int g_reg_interval = 4, d_reg_interval = 16;
    AugmentMode aug = AugmentMode::ada;
    std::optional<double> p;             ///< initial (or, with fixed, constant) augmentation probability
    double ada_target = 0.6;             ///< target E[sign(D(real))]
    int ada_interval = 4;                ///< adjust p every this many minibatches
    std::optional<double> ada_kimg;      ///< kimg for p to move from 0 to 1 (unset: 500; 100 when fine-tuning, as the reference)
    AugmentPipeline augpipe = AugmentPipeline::bgc;
    int freezed = 0;                     ///< freeze the first N discriminator layers (transfer learning)
    std::string resume;                  ///< latentkit snapshot (continue) or reference .pkl (transfer)
    std::string device = "cpu";          ///< cpu, cuda, cuda:N
    DistBackend dist_backend = DistBackend::automatic;  ///< several processes
    bool fp16 = true;                    ///< fp16 in the top 4 resolutions on CUDA (with conv_clamp 256, channels-last)
    bool allow_tf32 = false;             ///< TF32 matmuls/convolutions on CUDA (off, as the reference's train.py)
    int grid_w = 0, grid_h = 0;          ///< fakes grid size (0: from the resolution)
    std::string inception;               ///< TorchScript Inception (reference inception-2015-12-05.pt)
    std::vector<Metric> metrics;         ///< computed at snapshots (needs `inception`)
    int metric_samples = 50000;          ///< generated images per metric
    std::string cache_dir;               ///< where dataset feature statistics are cached ("" = none)
};

/// One progress report (per tick).
struct TickStats {
    int tick = 0;
    double kimg = 0, total_kimg = 0;
    double sec_per_kimg = 0, sec_per_tick = 0, elapsed = 0;
    double loss_g = 0, loss_d = 0, loss_r1 = 0, loss_pl = 0;  ///< means over the tick
    double real_score = 0, fake_score = 0;                      ///< mean D logits
    double augment_p = 0, r_t = 0;                              ///< ADA probability, and E[sign(D(real))] over the tick's adjustments
    double peak_memory_mb = 0;                                  ///< CUDA allocator peak (0 on CPU)
    std::string snapshot;                                       ///< snapshot written at this tick, if any
    std::vector<std::pair<std::string, double>> metrics;        ///< metric results at this tick
};

/// What ended a run.
enum class TrainEnd { finished, stopped };

/// Hooks a program gives the trainer; all optional.
struct TrainCallbacks {
    /// Called after every minibatch with (nimg done, nimg total); return false to stop the run
    /// cleanly after this minibatch (a snapshot is written).
    std::function<bool(int64_t, int64_t)> step;
    /// Called per tick (rank 0 only).
    std::function<void(const TickStats&)> tick;
    /// Writes an 8-bit image (rows of width * channels bytes) to a path (rank 0 only).
    std::function<void(const std::string& path, int width, int height, int channels, const std::vector<uint8_t>& pixels)> write_image;
};

/// The resolved configuration of a run (preset plus overrides), as written to training_options.json.
struct ResolvedTraining {
    int batch = 0, batch_gpu = 0, mbstd_group = 0;
    double gamma = 0, lr_g = 0, lr_d = 0, ema_kimg = 0;
    std::optional<double> ema_rampup;
    double style_mixing = 0, pl_weight = 0;
    double ada_kimg = 500;
    int map_layers = 0, channel_base = 0, channel_max = 0, z_dim = 512, w_dim = 512;
    Architecture d_architecture = Architecture::resnet;
};

/// The preset values for a dataset resolution and number of processes (reference train.py).
/// Throws ArgumentError for an unknown preset or inconsistent overrides.
ResolvedTraining resolve_training(const TrainOptions& options, int resolution, int world_size);

/// The generator a run builds for `resolution` x `channels` images with `c_dim` labels: the preset's
/// widths and mapping depth (resolve_training for one process), fp16 blocks and clamp with options.fp16.
GeneratorConfig training_generator_config(const TrainOptions& options, int resolution, int channels = 3, int c_dim = 0);

/// The generators of the stylegan3 repo's train.py (--cfg stylegan3-t or stylegan3-r, --map 2), which
/// latentkit renders but does not train; channel_base 16384 is its ffhqu-256 runs' --cbase.
GeneratorConfig stylegan3_generator_config(bool rotation_equivariant, int resolution, int channel_base = 16384);

/// Trains on `data` until options.kimg, or until a callback or request_stop() (latentkit/stop.h) asks to
/// stop (after the minibatch, with a snapshot: TrainEnd::stopped). Writes the run folder
/// (rank 0): training_options.json, log.jsonl, reals.png, fakes-*.png grids and
/// snapshot-NNNNNNNNN.safetensors files (G, G_ema, D, optimiser and ADA state) written atomically.
/// Throws Error subclasses with one-line messages (bad data, resume mismatch, divergence).
TrainEnd train(const TrainingData& data, const TrainOptions& options, const TrainCallbacks& callbacks = {});

/// The newest snapshot-*.safetensors in a run folder, or "" when it has none.
std::string latest_snapshot(const std::string& outdir);

/// Processes of a data-parallel run, from torchrun-style environment variables
/// (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT); rank 0 of 1 without them.
struct DistributedEnv {
    int rank = 0, world_size = 1, local_rank = 0;
    std::string master_addr = "127.0.0.1";
    int master_port = 29500;
    /// Reads the environment; throws ArgumentError for malformed values.
    static DistributedEnv from_environment();
};

/// This process's device: with several processes "cuda" or "cuda:N" means cuda:LOCAL_RANK, one GPU per
/// process as torchrun lays them out (cuda:0 when CUDA_VISIBLE_DEVICES gives each process one GPU); other
/// names are returned as they are. Throws ArgumentError when LOCAL_RANK has no GPU.
std::string process_device(const std::string& device, const DistributedEnv& env);

/// Whether this build can run several processes (LibTorch with c10d).
bool distributed_available();

/// Whether this build can connect CUDA processes through NCCL (LibTorch built with it, and nccl.h).
bool nccl_available();

}  // namespace latentkit
