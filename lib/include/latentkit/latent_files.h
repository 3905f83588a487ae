#pragma once
// Latent files: W+ latents as the reference's projected_w.npz, and the samples file of `latentkit
// directions sample` (W latents with their seeds and the model they came from).
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

namespace latentkit {

struct GeneratorConfig;

/// Reads W+ latents [N, num_ws, w_dim] (float32, CPU) from a .npz with array 'w', as the reference's
/// projected_w.npz; throws ShapeError / ModelFormatError naming the file when it does not fit `config`.
torch::Tensor read_latents(const std::string& path, const GeneratorConfig& config);
/// Writes W+ latents as the reference's projected_w.npz (key 'w', float32), atomically.
void write_latents(const std::string& path, const torch::Tensor& ws);

/// W latents of sampled seeds, for labelling and fitting directions.
struct Samples {
    std::vector<uint32_t> seeds;
    torch::Tensor w;          ///< [N, w_dim] float32
    std::string fingerprint;  ///< model_fingerprint() of the model they came from
    int num_ws = 0;
};
/// Writes a samples file (.npz: w, seeds, fingerprint, num_ws), atomically.
void write_samples(const std::string& path, const Samples& samples);
/// Reads a samples file; throws ModelFormatError naming the file when it is not one.
Samples read_samples(const std::string& path);

}  // namespace latentkit
