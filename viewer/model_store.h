#pragma once
// The viewer's one copy of the open model: loaded once, shared read-only by the render worker,
// the projection, the directions jobs and the morph export.
#include <memory>
#include <mutex>
#include <string>

namespace latentkit {
struct Model;
class Generator;
class Discriminator;
}  // namespace latentkit

namespace latentkit::viewer {

/// What the model is, for the UI.
struct ModelSummary {
    std::string path, format, fingerprint;
    int resolution = 0, channels = 0, num_ws = 0, w_dim = 0, z_dim = 0, c_dim = 0;
    std::string family;  ///< "StyleGAN2" or "StyleGAN3"
};

/// A model open on a device, in eval mode. Users only run it (no training, no moves).
struct OpenModel {
    std::string location, device;
    std::shared_ptr<Generator> G;      ///< G_ema when the file has it
    std::shared_ptr<Discriminator> D;  ///< may be null
    ModelSummary summary;
};

/// Loads models on the threads that need them, each location and device once: the same pair gives the
/// same OpenModel; another pair replaces it (users still holding the old one keep it until they end).
class ModelStore {
public:
    /// The model at `location` (a path or URL) on `device`, loaded if it is not the open one.
    /// Throws as io::load_model_location does; concurrent callers of one model wait for one load.
    std::shared_ptr<const OpenModel> open(const std::string& location, const std::string& device);
    /// How many loads have happened (tests).
    int loads() const;

private:
    mutable std::mutex mutex_;
    std::shared_ptr<const OpenModel> current_;
    int loads_ = 0;
};

}  // namespace latentkit::viewer
