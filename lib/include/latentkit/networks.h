#pragma once
// StyleGAN2-ADA generator and discriminator as LibTorch modules, numerically matching the reference
// (NVlabs stylegan2-ada-pytorch). Parameter and buffer names equal the reference state_dict names.
#include <torch/torch.h>

#include <memory>
#include <optional>
#include <vector>

#include "latentkit/model_config.h"

namespace latentkit {

class FullyConnectedLayer;
class SynthesisBlock;
class DiscriminatorBlock;
class DiscriminatorEpilogue;

/// How the synthesis network's per-pixel noise inputs are fed.
enum class NoiseMode {
    random,    ///< fresh Gaussian noise every call
    constant,  ///< the stored noise_const buffers (reproducible; the reference generate.py default)
    none,      ///< no noise
    custom     ///< the tensors in SynthesisOptions::noise
};

/// Options for one synthesis call.
struct SynthesisOptions {
    NoiseMode noise_mode = NoiseMode::constant;
    bool force_fp32 = false;            ///< ignore num_fp16_res
    std::optional<bool> fused_modconv;  ///< unset: fused when not training (as the reference)
    /// With NoiseMode::custom: one unit-variance noise tensor per synthesis layer, in layer order
    /// (see SynthesisNetwork::noise_resolutions), each [res, res] or [N, 1, res, res].
    std::vector<torch::Tensor> noise;
    /// When set, receives each synthesis block's feature maps [N, C, res, res] (float32, lowest
    /// resolution first), e.g. to look inside the network.
    std::vector<torch::Tensor>* block_outputs = nullptr;
};

/// z (and label c) -> w, broadcast to num_ws, with optional truncation.
class MappingNetwork : public torch::nn::Module {
public:
    MappingNetwork(int z_dim, int c_dim, int w_dim, std::optional<int> num_ws, const MappingConfig& config);
    /// z [N, z_dim], c [N, c_dim] (undefined when c_dim == 0) -> [N, num_ws, w_dim] (or [N, w_dim] without num_ws).
    /// In training mode w_avg is updated unless `skip_w_avg_update`.
    torch::Tensor forward(const torch::Tensor& z, const torch::Tensor& c, double truncation_psi = 1.0,
                          std::optional<int> truncation_cutoff = std::nullopt, bool skip_w_avg_update = false);

    torch::Tensor w_avg;  ///< running mean of w (undefined when not tracked)
    const int z_dim, c_dim, w_dim;
    const std::optional<int> num_ws;

private:
    MappingConfig config_;
    std::shared_ptr<FullyConnectedLayer> embed_;
    std::vector<std::shared_ptr<FullyConnectedLayer>> layers_;
};

/// ws [N, num_ws, w_dim] -> image [N, img_channels, R, R] (float32, about [-1, 1]).
class SynthesisNetwork : public torch::nn::Module {
public:
    explicit SynthesisNetwork(const GeneratorConfig& config);
    torch::Tensor forward(const torch::Tensor& ws, const SynthesisOptions& options = {});

    /// Resolutions of the blocks, 4 up to the image resolution.
    const std::vector<int>& block_resolutions() const { return resolutions_; }
    /// Resolution of each synthesis layer's noise input, in layer order (b4.conv1, b8.conv0, b8.conv1, ...).
    std::vector<int> noise_resolutions() const;
    const int num_ws;

private:
    GeneratorConfig config_;
    std::vector<int> resolutions_;
    std::vector<std::shared_ptr<SynthesisBlock>> blocks_;
};

/// The full generator: mapping + synthesis.
class Generator : public torch::nn::Module {
public:
    explicit Generator(const GeneratorConfig& config);
    /// z [N, z_dim], c [N, c_dim] -> images.
    torch::Tensor forward(const torch::Tensor& z, const torch::Tensor& c, double truncation_psi = 1.0,
                          std::optional<int> truncation_cutoff = std::nullopt, const SynthesisOptions& options = {});

    const GeneratorConfig config;
    std::shared_ptr<MappingNetwork> mapping;
    std::shared_ptr<SynthesisNetwork> synthesis;
};

/// The discriminator: image (and label) -> logit [N, 1].
class Discriminator : public torch::nn::Module {
public:
    explicit Discriminator(const DiscriminatorConfig& config);
    /// img [N, C, R, R], c [N, c_dim] (undefined when c_dim == 0). N must be a multiple of the mbstd group.
    torch::Tensor forward(const torch::Tensor& img, const torch::Tensor& c, bool force_fp32 = false);
    /// The activations after each block (highest resolution first, the 4x4 epilogue excluded), float32.
    /// They do not mix samples, so each image's features depend on that image only.
    std::vector<torch::Tensor> features(const torch::Tensor& img, bool force_fp32 = false);

    const DiscriminatorConfig config;

private:
    std::vector<int> resolutions_;
    std::vector<std::shared_ptr<DiscriminatorBlock>> blocks_;
    std::shared_ptr<MappingNetwork> mapping_;
    std::shared_ptr<DiscriminatorEpilogue> epilogue_;
};

/// Total number of elements in the module's parameters.
int64_t count_parameters(const torch::nn::Module& module);

/// Copies named tensors into the module's parameters and buffers. Every parameter and buffer must be
/// present with the same shape, and no tensor may be left over; otherwise ShapeError / ModelFormatError
/// naming `source` and the tensor.
void load_state(torch::nn::Module& module, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                const std::string& source);

}  // namespace latentkit
