#pragma once
// Loading and saving models through load_model(): the StyleGAN2 files people have (stylegan2-ada-pytorch
// and stylegan3-repo .pkl snapshots, TensorFlow-era .pkl, rosinality .pt checkpoints, bare state dicts)
// are read; latentkit's native .safetensors is read and written. Nothing in a file is ever executed.
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "latentkit/tensor_data.h"

namespace latentkit {

class Generator;
class Discriminator;

/// The networks and training state found in a model file.
struct Model {
    std::string path;                        ///< file it came from
    /// Kind of file: "stylegan2-ada pickle", "stylegan3-repo pickle", "TensorFlow StyleGAN2 pickle",
    /// "rosinality checkpoint", "torch.save state dict", "latentkit safetensors" or "bare state dict".
    std::string format;
    std::string converted_from;              ///< for a converted file: the kind of file it was made from
    std::string config_source;               ///< where the architecture came from (arguments, tensor shapes, ...)
    std::vector<std::string> notes;          ///< what the loader had to assume or compute (kept by save_model)
    std::shared_ptr<Generator> G_ema;        ///< the generator to explore (may be null)
    std::shared_ptr<Generator> G;            ///< the training generator (may be null)
    std::shared_ptr<Discriminator> D;        ///< the discriminator (may be null)
    std::optional<double> augment_p;         ///< ADA augmentation probability
    std::string training_set_kwargs;         ///< JSON text, empty if unknown
    std::map<std::string, std::string> info; ///< free-form metadata (description, licence, ...)

    /// G_ema if present, else G; throws ModelFormatError if the file holds no generator.
    std::shared_ptr<Generator> generator() const;
};

/// Loads a model file of any kind above on the CPU in float32, in eval mode.
/// Throws ModelFormatError / ShapeError / IoError with a one-line message naming the file.
Model load_model(const std::string& path);

/// Which networks save_model writes.
struct SaveOptions {
    bool g_ema_only = false;  ///< write only G_ema (what exploring needs)
};

/// The tensors and metadata save_model writes (to add more before writing, e.g. training state).
TensorFile model_tensor_file(const Model& model, const SaveOptions& options = {});

/// Writes the model as latentkit .safetensors (architecture in the metadata), atomically.
void save_model(const std::string& path, const Model& model, const SaveOptions& options = {});

}  // namespace latentkit
