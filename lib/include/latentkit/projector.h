#pragma once
// Projection: finds the latents (W or W+) and noise inputs with which a generator reproduces target
// images, as the reference StyleGAN2-ADA projector does, with W+, several losses, batches of targets
// and pivotal tuning of the generator.
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "latentkit/latent_space.h"

namespace latentkit {

class Generator;
class Discriminator;


/// Parses "w" or "w+"; throws ArgumentError otherwise.
LatentSpace parse_latent_space(const std::string& text);

/// Weights of the terms of the image distance; terms with weight 0 are not computed.
struct LossWeights {
    double lpips = 0;          ///< LPIPS through a TorchScript VGG16 (needs an LpipsModel), as the reference
    double discriminator = 0;  ///< distance of channel-normalised discriminator features (needs D)
    double pixel = 0;          ///< mean squared pixel error in [-1, 1]
};

/// The loss a projection uses when none is asked for: LPIPS when an LPIPS model is given (the
/// reference), else the discriminator-feature distance when there is a discriminator, else pixels.
LossWeights default_projection_loss(bool have_lpips, bool have_discriminator);

/// A perceptual distance network with the reference `vgg16.pt` interface:
/// `forward(img, resize_images: bool, return_lpips: bool)` with img in [0, 255], returning [N, F]
/// features whose squared Euclidean distance is LPIPS.
class LpipsModel {
public:
    /// Loads a TorchScript file (on the CPU); throws ModelFormatError naming it when it is not a
    /// TorchScript module or its forward lacks the resize_images / return_lpips arguments.
    explicit LpipsModel(const std::string& path);
    ~LpipsModel();
    LpipsModel(const LpipsModel&) = delete;
    LpipsModel& operator=(const LpipsModel&) = delete;
    /// Features of images [N, 3, H, W] in [0, 255] (gray images are repeated to 3 channels; images
    /// larger than 256 are area-downsampled to 256 first, as the reference projector does).
    torch::Tensor features(const torch::Tensor& img255);
    /// Moves the module to `device`.
    void to(const torch::Device& device);
    const std::string& path() const;

private:
    struct State;
    std::unique_ptr<State> s_;
};

/// Settings of a projection; the defaults are those of the reference projector.
struct ProjectorOptions {
    int steps = 1000;
    LatentSpace space = LatentSpace::w;
    double learning_rate = 0.1;          ///< peak Adam learning rate (betas 0.9, 0.999)
    double lr_rampup = 0.05;             ///< fraction of steps with a linear warm-up
    double lr_rampdown = 0.25;           ///< fraction of steps with a cosine ramp-down
    double initial_noise_factor = 0.05;  ///< W noise at the start, in units of the W standard deviation
    double noise_ramp_length = 0.75;     ///< fraction of steps after which the W noise is zero
    bool optimize_noise = true;          ///< also optimise the per-pixel noise inputs
    double noise_regularize_weight = 1e5;  ///< weight of the noise autocorrelation penalty
    int w_avg_samples = 10000;           ///< z samples for the W mean and spread
    uint32_t w_avg_seed = 123;           ///< numpy seed of those samples (the reference uses 123)
    uint64_t seed = 303;                 ///< seed of the noise inputs and the W noise
    LossWeights loss{1.0, 0.0, 0.0};     ///< the reference uses LPIPS alone
    /// The result's images (and so proj.png and its PSNR) with the optimised noise instead of the model's
    /// own constant noise. Off by default, as the reference: its proj.png is what the latent alone gives.
    bool images_with_optimized_noise = false;
    /// Optional start [N, num_ws, w_dim] or [1, num_ws, w_dim] (for example a W result to refine in W+);
    /// in W space its first layer is used. Undefined: start at the W mean.
    torch::Tensor initial_ws;
};

/// What a progress callback sees after each optimisation step.
struct ProjectionStep {
    int step = 0;             ///< steps done (1-based)
    int steps = 0;            ///< steps in all
    torch::Tensor loss;       ///< image distance per target, [N] on the CPU
    torch::Tensor images;     ///< this step's synthesis [N, C, R, R] in [-1, 1], detached (with the W noise and optimised noise)
    torch::Tensor ws;         ///< the latents after this step [N, num_ws, w_dim], detached (what Projector::render shows)
};

/// Called after each step; returning false cancels (the call then throws CancelledError). A stop
/// requested through request_stop() instead ends Projector::project after the step, with the latents
/// so far (ProjectionResult::steps_done), and Projector::tune with CancelledError.
using ProjectionCallback = std::function<bool(const ProjectionStep&)>;

/// A finished projection.
struct ProjectionResult {
    torch::Tensor ws;                  ///< [N, num_ws, w_dim] on the CPU
    std::vector<torch::Tensor> noise;  ///< optimised noise, one [N, 1, r, r] per layer (SynthesisNetwork::noise_resolutions)
    std::vector<std::string> noise_names;  ///< the generator's noise buffers those correspond to (synthesis.b8.conv0.noise_const, ...)
    torch::Tensor images;              ///< synthesis of ws with the model's constant noise (or the optimised noise, see
                                       ///< ProjectorOptions::images_with_optimized_noise), [N, C, R, R] in [-1, 1], on the CPU
    torch::Tensor loss;                ///< image distance of `images` per target, [N]
    int steps_done = 0;                ///< steps run: fewer than asked when a stop was requested (request_stop)
};

/// Settings of pivotal tuning (fine-tuning the generator around projected latents).
struct TuningOptions {
    int steps = 350;
    double learning_rate = 3e-4;
    LossWeights loss{1.0, 0.0, 1.0};  ///< the pivotal tuning paper uses LPIPS + pixel L2
};

/// Projects targets into a generator. The generator, discriminator and LPIPS model stay unchanged;
/// the W statistics are computed once per projector and reused (its mapping must not change).
class Projector {
public:
    /// `D` is needed for the discriminator loss and `lpips` for the LPIPS loss; the networks must be on one device.
    Projector(std::shared_ptr<Generator> G, std::shared_ptr<Discriminator> D = nullptr, std::shared_ptr<LpipsModel> lpips = nullptr);

    /// Projects targets [N, C, R, R] (float, 0..255, the generator's channels and resolution) together,
    /// each with its own latent, noise and optimiser state. Deterministic for a seed on the CPU.
    ProjectionResult project(const torch::Tensor& targets, const ProjectorOptions& options, const ProjectionCallback& callback = {});

    /// The images latents [N, num_ws, w_dim] give with the model's constant noise, on the CPU: what the
    /// reference projector writes as proj.png and as the frames of its progress video.
    torch::Tensor render(const torch::Tensor& ws) const;

    /// Pivotal tuning: a copy of the generator fine-tuned so `result`'s latents reproduce `targets` closely.
    std::shared_ptr<Generator> tune(const ProjectionResult& result, const torch::Tensor& targets, const TuningOptions& options,
                                    const ProjectionCallback& callback = {});

private:
    std::shared_ptr<Generator> G_;
    std::shared_ptr<Discriminator> D_;
    std::shared_ptr<LpipsModel> lpips_;
    // W statistics of the last (samples, seed), reused by later projections with the same generator.
    int stats_samples_ = 0;
    uint32_t stats_seed_ = 0;
    torch::Tensor stats_mean_;
    double stats_spread_ = 0;
};

/// The W mean [1, w_dim] and the reference's W spread (root mean squared distance to the mean) of
/// `samples` mapped latents, from numpy.random.RandomState(seed) z's.
std::pair<torch::Tensor, double> w_statistics(Generator& G, int samples, uint32_t seed);

/// Images [N, C, H, W] in [-1, 1] as the reference projector writes proj.png: (x + 1) * 127.5 clamped to
/// 0..255 and truncated; [N, H, W, C] uint8 on the CPU.
torch::Tensor projection_uint8(const torch::Tensor& images);

/// Peak signal-to-noise ratio in dB of images in [-1, 1] (as projection_uint8 writes them) against
/// targets in [0, 255], per image ([N]).
torch::Tensor psnr(const torch::Tensor& images, const torch::Tensor& targets255);

}  // namespace latentkit
