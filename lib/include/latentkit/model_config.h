#pragma once
// Architecture descriptions of StyleGAN2 networks, with the reference constructor arguments
// (stylegan2-ada-pytorch's training/networks.py and the stylegan3 repo's training/networks_stylegan2.py).
#include <cmath>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "latentkit/option_names.h"

namespace latentkit {

/// How a StyleGAN2 network joins its blocks (reference `architecture`).
enum class Architecture {
    orig,    ///< each block feeds the next; RGB only at the end (G) or the start (D)
    skip,    ///< RGB outputs (G) or inputs (D) at every resolution, summed
    resnet,  ///< residual connections around each block
};
template <>
struct OptionNames<Architecture> {
    static constexpr const char* names[] = {"orig", "skip", "resnet"};
};

/// An activation function of bias_act (the reference's `activation_funcs`).
enum class Activation { linear, relu, lrelu, tanh, sigmoid, elu, selu, softplus, swish };
template <>
struct OptionNames<Activation> {
    static constexpr const char* names[] = {"linear", "relu", "lrelu", "tanh", "sigmoid", "elu", "selu", "softplus", "swish"};
};

/// Which reference's constructor arguments a kwargs description follows. They differ in layout (the
/// stylegan3 repo takes the synthesis options at the top level of Generator) and in defaults.
enum class KwargsOrigin {
    stylegan2_ada,   ///< stylegan2-ada-pytorch: synthesis_kwargs, num_fp16_res 0, no conv_clamp, w_avg_beta 0.995
    stylegan3_repo,  ///< stylegan3 repo, networks_stylegan2: num_fp16_res 4, conv_clamp 256, w_avg_beta 0.998
};

/// MappingNetwork options (reference `mapping_kwargs`).
struct MappingConfig {
    int num_layers = 8;                     ///< number of fully connected layers
    std::optional<int> embed_features;      ///< label embedding size; unset = w_dim
    std::optional<int> layer_features;      ///< hidden layer size; unset = w_dim
    Activation activation = Activation::lrelu;  ///< activation of every layer
    double lr_multiplier = 0.01;            ///< learning-rate multiplier (scales weights and biases)
    std::optional<double> w_avg_beta = 0.995;  ///< w_avg tracking decay; unset = no w_avg
};

/// SynthesisNetwork options (reference `synthesis_kwargs`, including block and layer options).
struct SynthesisConfig {
    int channel_base = 32768;            ///< channels at resolution r = min(channel_base / r, channel_max)
    int channel_max = 512;               ///< upper bound on channels
    int num_fp16_res = 0;                ///< highest resolutions that run in fp16 (on CUDA only)
    Architecture architecture = Architecture::skip;
    std::vector<float> resample_filter{1, 3, 3, 1};  ///< FIR taps for resampling
    std::optional<double> conv_clamp;    ///< clamp conv outputs to +-X; unset = no clamping
    bool fp16_channels_last = false;     ///< channels-last memory format in fp16 blocks
    int kernel_size = 3;                 ///< convolution kernel size
    bool use_noise = true;               ///< per-pixel noise inputs
    Activation activation = Activation::lrelu;  ///< activation of the conv layers
    /// Channels of each block, 4x4 first, when they follow no channel_base/channel_max rule (files of
    /// other tools); empty = min(channel_base / r, channel_max).
    std::vector<int> channels;
    /// The stylegan3 repo's fused_modconv_default: "true", "false", "inference_only", or empty (the
    /// stylegan2-ada rule). Both formulations compute the same function; in training it is honoured,
    /// in inference latentkit takes the faster one for the device.
    std::string fused_modconv_default;
};

/// StyleGAN3 (alias-free) synthesis options: the stylegan3 repo's SynthesisNetwork and SynthesisLayer
/// arguments (training/networks_stylegan3.py), with its defaults.
struct Stylegan3Config {
    int channel_base = 32768;                 ///< channels = min(channel_base / 2 / cutoff, channel_max)
    int channel_max = 512;
    int num_layers = 14;                      ///< layers after the Fourier-feature input, ToRGB excluded
    int num_critical = 2;                     ///< critically sampled layers at the end
    double first_cutoff = 2;                  ///< f_c of the first layer
    double first_stopband = std::pow(2.0, 2.1);     ///< minimum stopband of the first layer
    double last_stopband_rel = std::pow(2.0, 0.3);  ///< minimum stopband of the last layer relative to its cutoff
    int margin_size = 10;                     ///< extra pixels outside the image
    double output_scale = 0.25;               ///< scale of the output image
    int num_fp16_res = 4;                     ///< layers above img_resolution / 2^N run in fp16 (on CUDA only)
    int conv_kernel = 3;                      ///< 3 for -T, 1 for -R (ToRGB is always 1)
    int filter_size = 6;                      ///< low-pass filter taps per resampling factor
    int lrelu_upsampling = 2;                 ///< sampling rate of the leaky ReLU relative to the layer's
    bool use_radial_filters = false;          ///< -R: radially symmetric 2-D downsampling filters
    std::optional<double> conv_clamp = 256.0; ///< clamp layer outputs to +-X; unset = no clamping
    double magnitude_ema_beta = 0.999;        ///< decay of the input magnitude EMA (training)
};

/// The two generator families: StyleGAN2 (blocks of modulated convolutions with noise) and StyleGAN3
/// (Fourier-feature input, alias-free layers). They share the mapping network and W space.
enum class GeneratorFamily { stylegan2, stylegan3 };

/// Generator architecture (reference `Generator.__init__` arguments).
struct GeneratorConfig {
    int z_dim = 512;
    int c_dim = 0;
    int w_dim = 512;
    int img_resolution = 1024;
    int img_channels = 3;
    GeneratorFamily family = GeneratorFamily::stylegan2;
    MappingConfig mapping;
    SynthesisConfig synthesis;   ///< StyleGAN2 synthesis (family stylegan2)
    Stylegan3Config stylegan3;   ///< StyleGAN3 synthesis (family stylegan3)

    /// Channels of the StyleGAN2 block at `res` (power of two >= 4).
    int channels_at(int res) const;
    /// "StyleGAN2" or "StyleGAN3".
    const char* family_name() const;
    /// Number of per-layer ws the synthesis network takes.
    int num_ws() const;
    /// Throws ArgumentError if the configuration cannot be built.
    void validate() const;
    /// The reference constructor keyword arguments as JSON text.
    std::string to_kwargs_json() const;
    /// Reads reference keyword arguments with that reference's defaults; unknown arguments throw
    /// ModelFormatError mentioning `source`. `family` says which network the arguments are for when the
    /// layout cannot tell (stylegan3-repo pickles); latentkit's own JSON says it itself.
    static GeneratorConfig from_kwargs_json(const std::string& json, const std::string& source,
                                            KwargsOrigin origin = KwargsOrigin::stylegan2_ada,
                                            GeneratorFamily family = GeneratorFamily::stylegan2);
};

/// Discriminator architecture (reference `Discriminator.__init__` arguments).
struct DiscriminatorConfig {
    int c_dim = 0;
    int img_resolution = 1024;
    int img_channels = 3;
    Architecture architecture = Architecture::resnet;
    int channel_base = 32768;
    int channel_max = 512;
    int num_fp16_res = 0;
    std::optional<double> conv_clamp;
    std::optional<int> cmap_dim;           ///< label projection size; unset = channels at 4x4
    Activation activation = Activation::lrelu;  ///< blocks and epilogue
    std::vector<float> resample_filter{1, 3, 3, 1};
    bool fp16_channels_last = false;
    int freeze_layers = 0;                 ///< first N layers are frozen (buffers, not parameters)
    MappingConfig mapping;                 ///< label mapping (when c_dim > 0)
    std::optional<int> mbstd_group_size = 4;  ///< unset = whole minibatch
    int mbstd_num_channels = 1;            ///< 0 disables minibatch stddev
    /// Channels at each resolution, 4x4 first, when they follow no channel_base/channel_max rule;
    /// empty = min(channel_base / r, channel_max).
    std::vector<int> channels;

    /// Channels at resolution `res`.
    int channels_at(int res) const;
    /// Throws ArgumentError if the configuration cannot be built.
    void validate() const;
    /// The reference constructor keyword arguments as JSON text.
    std::string to_kwargs_json() const;
    /// Reads reference keyword arguments with that reference's defaults; unknown arguments throw
    /// ModelFormatError mentioning `source`.
    static DiscriminatorConfig from_kwargs_json(const std::string& json, const std::string& source,
                                                KwargsOrigin origin = KwargsOrigin::stylegan2_ada);
};

/// channel_base and channel_max that give `channels` (one per resolution, 4x4 first) through
/// min(channel_base / r, channel_max), or nothing when no pair does.
std::optional<std::pair<int, int>> fit_channel_rule(const std::vector<int>& channels);

}  // namespace latentkit
