#pragma once
// Latent editing with directions: sampling W, model fingerprints, style weights for closed-form
// factorisation, moving latents along directions, and user TorchScript scorers.
#include <torch/torch.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "latentkit/directions.h"

namespace latentkit {

class Generator;

/// A short hex fingerprint of a model's architecture and mapping network; direction files record it.
/// (Pivotal tuning changes only the synthesis network, so tuned copies keep the fingerprint.)
std::string model_fingerprint(Generator& G);

/// w for each seed ([N, w_dim], CPU, float32), mapped in batches, with optional truncation.
torch::Tensor sample_w(Generator& G, const std::vector<uint32_t>& seeds, double truncation_psi = 1.0, int batch = 256);

/// The style-affine weights ([out_channels, w_dim] each) of the synthesis layers whose W+ index is in
/// `layers` (all convolution layers when empty), in layer order. ToRGB layers are not included.
std::vector<torch::Tensor> style_weights(Generator& G, const std::vector<int>& layers = {});

/// The W+ index of each synthesis convolution layer, in layer order.
std::vector<int> conv_layer_indices(const Generator& G);

/// Principal components of W (GANSpace) for `seeds`, accumulated batch by batch: k directions named
/// pca0.., scale = sqrt(variance), stats variance / explained / samples, the W mean in the set.
/// `progress` (optional) is told the samples done after each batch.
DirectionSet pca_directions(Generator& G, const std::vector<uint32_t>& seeds, int k, double truncation_psi = 1.0, int batch = 1000,
                            const std::function<void(int64_t)>& progress = {});

/// Closed-form factorisation (SeFa) of the style weights of `layers` (all when empty): k directions
/// named sefa0.., strongest first; scale = W standard deviation along each (from 2000 samples).
DirectionSet sefa_directions(Generator& G, const std::vector<int>& layers, int k, double truncation_psi = 1.0);

/// ws [N, num_ws, w_dim] moved by strength * scale * vector on `layers` (the direction's own layer
/// range when empty and it has one, else every layer). Strength 0 returns ws unchanged.
torch::Tensor apply_direction(const torch::Tensor& ws, const Direction& direction, double strength, const std::vector<int>& layers = {});

/// A user TorchScript model that scores images, e.g. an attribute classifier.
class ScriptScorer {
public:
    /// Loads `path`; throws ModelFormatError naming it when it is not TorchScript.
    explicit ScriptScorer(const std::string& path);
    ~ScriptScorer();
    ScriptScorer(const ScriptScorer&) = delete;
    ScriptScorer& operator=(const ScriptScorer&) = delete;
    /// Input settings: value range of the images it expects ("-1,1", "0,1" or "0,255") and an optional size.
    void set_input(const std::string& range, std::optional<int> size);
    /// Scores of images [N, C, H, W] in [-1, 1]: output column `index` of a [N, K] (or [N]) result.
    std::vector<double> score(const torch::Tensor& images, int index = 0);
    void to(const torch::Device& device);

private:
    struct State;
    std::unique_ptr<State> s_;
};

}  // namespace latentkit
