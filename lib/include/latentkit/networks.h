#pragma once
// StyleGAN2 and StyleGAN3 generators and the StyleGAN2 discriminator as LibTorch modules, numerically
// matching the references (stylegan2-ada-pytorch's training/networks.py, the stylegan3 repo's
// training/networks_stylegan3.py). Parameter and buffer names equal the reference state_dict names.
// One Generator class serves both families: callers use its mapping and synthesis networks the same way.
#include <torch/torch.h>

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "latentkit/implementation.h"
#include "latentkit/model_config.h"
#include "latentkit/noise_mode.h"
#include "latentkit/option_names.h"

namespace latentkit {

class FullyConnectedLayer;
class SynthesisBlock;
class Stylegan3Input;
class Stylegan3Layer;
class DiscriminatorBlock;
class DiscriminatorEpilogue;


/// Options for one synthesis call.
struct SynthesisOptions {
    NoiseMode noise_mode = NoiseMode::constant;
    bool force_fp32 = false;            ///< ignore num_fp16_res
    std::optional<bool> fused_modconv;  ///< unset: fused when not training (as the reference)
    /// With NoiseMode::custom: one unit-variance noise tensor per synthesis layer, in layer order
    /// (see SynthesisNetwork::noise_resolutions), each [res, res] or [N, 1, res, res].
    std::vector<torch::Tensor> noise;
    /// When set, receives each synthesis block's (StyleGAN3: each layer's) feature maps [N, C, H, W]
    /// (float32, in network order), e.g. to look inside the network.
    std::vector<torch::Tensor>* block_outputs = nullptr;
    /// StyleGAN3: the input's user transform [3, 3] (see stylegan3_transform); undefined = the network's
    /// own `transform` buffer. Ignored by StyleGAN2.
    torch::Tensor input_transform;
};

/// One modulated layer of a synthesis network (ToRGB excluded): the W+ index it reads and its
/// style-affine weight [in_channels, w_dim].
struct StyleLayer {
    int ws_index;
    torch::Tensor affine_weight;
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

/// ws [N, num_ws, w_dim] -> image [N, img_channels, R, R] (float32, about [-1, 1]). The interface both
/// families implement (StyleGAN2: blocks b4..bR; StyleGAN3: input + layers L0..LN).
class SynthesisNetwork : public torch::nn::Module {
public:
    ~SynthesisNetwork() override = default;
    virtual torch::Tensor forward(const torch::Tensor& ws, const SynthesisOptions& options = {}) = 0;
    /// Resolution of each noise input in layer order (b4.conv1, b8.conv0, b8.conv1, ...); empty for StyleGAN3.
    virtual std::vector<int> noise_resolutions() const = 0;
    /// The modulated layers except ToRGB, in network order (closed-form factorisation reads these).
    virtual std::vector<StyleLayer> style_layers() const = 0;
    /// Names of the entries block_outputs receives ("b4", ... or "L0_36_512", ...).
    virtual std::vector<std::string> block_names() const = 0;
    const int num_ws;

protected:
    explicit SynthesisNetwork(int num_ws_) : num_ws(num_ws_) {}
};

/// StyleGAN2 synthesis: constant input and blocks of modulated 3x3 convolutions with noise, skip /
/// resnet / orig architecture, fp16 blocks on CUDA.
class Stylegan2Synthesis : public SynthesisNetwork {
public:
    explicit Stylegan2Synthesis(const GeneratorConfig& config);
    torch::Tensor forward(const torch::Tensor& ws, const SynthesisOptions& options = {}) override;
    std::vector<int> noise_resolutions() const override;
    std::vector<StyleLayer> style_layers() const override;
    std::vector<std::string> block_names() const override;

private:
    GeneratorConfig config_;
    std::vector<int> resolutions_;
    std::vector<std::shared_ptr<SynthesisBlock>> blocks_;
};

/// The fixed shape of one StyleGAN3 synthesis layer (what a graph exporter needs besides its tensors).
struct Stylegan3LayerShape {
    std::string name;  ///< L{index}_{size}_{channels}, as the reference names it
    int in_channels = 0, out_channels = 0, in_size = 0, out_size = 0, kernel = 1;
    int64_t up = 1, down = 1;                ///< filtered_lrelu's up- and downsampling factors
    std::array<int64_t, 4> padding{};        ///< the upsampling filter's padding [x0, x1, y0, y1]
    bool is_torgb = false;
};

/// The fixed shape of StyleGAN3's Fourier-feature input.
struct Stylegan3InputShape {
    int channels = 0, size = 0;
    double sampling_rate = 0, bandwidth = 0;
};

/// StyleGAN3 (alias-free, -T and -R) synthesis: Fourier-feature input with a learned and a user
/// transform, then layers of modulated convolution and filtered leaky ReLU (up, lrelu, down).
class Stylegan3Synthesis : public SynthesisNetwork {
public:
    explicit Stylegan3Synthesis(const GeneratorConfig& config);
    torch::Tensor forward(const torch::Tensor& ws, const SynthesisOptions& options = {}) override;
    std::vector<int> noise_resolutions() const override { return {}; }
    std::vector<StyleLayer> style_layers() const override;
    std::vector<std::string> block_names() const override;
    /// The input's and every layer's fixed shape, in network order.
    Stylegan3InputShape input_shape() const;
    std::vector<Stylegan3LayerShape> layer_shapes() const;

private:
    torch::Tensor forward_one(const torch::Tensor& ws, const SynthesisOptions& options);
    GeneratorConfig config_;
    std::shared_ptr<Stylegan3Input> input_;
    std::vector<std::shared_ptr<Stylegan3Layer>> layers_;
    std::vector<std::string> names_;
};

/// gen_images.py's input transform for --translate X,Y --rotate DEG: inv(make_transform(translate,
/// rotate)) as float32 [3, 3], for SynthesisOptions::input_transform.
torch::Tensor stylegan3_transform(double translate_x, double translate_y, double rotate_degrees);

/// The full generator: mapping + synthesis (StyleGAN2 or StyleGAN3, by config.family).
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

/// The device a module's parameters are on (the CPU for a module without parameters).
torch::Device device_of(const torch::nn::Module& module);

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

/// A copy of a generator (parameters and buffers) on the same device, in eval mode.
std::shared_ptr<Generator> clone_generator(const Generator& G);

/// Total number of elements in the module's parameters.
int64_t count_parameters(const torch::nn::Module& module);

/// Copies named tensors into the module's parameters and buffers. Every parameter and buffer must be
/// present with the same shape, and no tensor may be left over; otherwise ShapeError / ModelFormatError
/// naming `source` and the tensor.
void load_state(torch::nn::Module& module, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                const std::string& source);

}  // namespace latentkit
