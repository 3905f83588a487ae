#pragma once
// The viewer's render worker: renders only the newest request on its own thread (older ones are
// dropped) with the shared model, and hands back an image or an error message. No GL here.
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "latentkit/noise_mode.h"
#include "latentkit/png.h"
#include "model_store.h"

namespace latentkit::viewer {

// The fields of a request are listed once, here: the struct and its comparison are made from the list,
// so a new field cannot be left out of the comparison. (type, name, default)
#define LATENTKIT_DIRECTION_EDIT_FIELDS(X) \
    X(std::vector<float>, vector, {})      /* unit length, w_dim */ \
    X(double, scale, 1.0)                  /* strength 1 moves this far (Direction::scale) */ \
    X(double, strength, 0.0)               \
    X(int, first_layer, 0)                 /* W+ layers it acts on */ \
    X(int, last_layer, -1)                 /* -1: to the end */

#define LATENTKIT_RENDER_REQUEST_FIELDS(X)                                                              \
    X(std::string, model_path, {})                                                                      \
    X(std::string, device, "cpu")                                                                       \
    X(double, seed_x, 0.0)                 /* continuous seed position: integer points are seeds */     \
    X(double, seed_y, 0.0)                 /* (x + 100 * y) */                                          \
    X(double, psi, 1.0)                                                                                 \
    X(int, cutoff, -1)                     /* truncate only the first `cutoff` layers (-1: all) */      \
    X(NoiseMode, noise_mode, NoiseMode::constant) /* constant, random (seeded by noise_seed) or none */ \
    X(uint32_t, noise_seed, 0u)                                                                         \
    X(bool, mix, false)                                                                                 \
    X(uint32_t, mix_seed, 0u)                                                                           \
    X(std::vector<int>, mix_layers, {})    /* layers taken from mix_seed */                             \
    X(std::vector<DirectionEdit>, edits, {})                                                            \
    X(std::vector<float>, base_ws, {})     /* a W+ latent instead of the seeds (num_ws * w_dim) */      \
    X(std::vector<std::vector<float>>, morph_keys, {}) /* 2 or more: show the morph path at morph_t */  \
    X(bool, morph_cubic, false)                                                                         \
    X(bool, morph_loop, false)                                                                          \
    X(int, morph_frames, 60)                                                                            \
    X(double, morph_t, 0.0)                /* 0..1 over the whole path */                               \
    X(double, translate_x, 0.0)            /* StyleGAN3 input transform (gen_images.py) */              \
    X(double, translate_y, 0.0)                                                                         \
    X(double, rotate, 0.0)                                                                              \
    X(int, view_block, -1)                 /* show this synthesis block's features (0 = 4x4) */         \
    X(int, view_channel, -1)               /* that channel as gray, or -1: the first three as RGB */    \
    X(bool, device_output, false)          /* on CUDA, hand back the image in device memory */

#define LATENTKIT_DECLARE_FIELD(type, name, init) type name = init;
#define LATENTKIT_SAME_FIELD(type, name, init) &&a.name == b.name

/// One direction applied with a strength.
struct DirectionEdit {
    LATENTKIT_DIRECTION_EDIT_FIELDS(LATENTKIT_DECLARE_FIELD)
};

/// Whether two edits are the same (every field).
inline bool operator==(const DirectionEdit& a, const DirectionEdit& b) { return true LATENTKIT_DIRECTION_EDIT_FIELDS(LATENTKIT_SAME_FIELD); }

/// Everything needed to render one image, and its id.
struct RenderRequest {
    uint64_t id = 0;
    LATENTKIT_RENDER_REQUEST_FIELDS(LATENTKIT_DECLARE_FIELD)
};

/// Whether two requests render the same image: every field but the id.
inline bool same_render(const RenderRequest& a, const RenderRequest& b) { return true LATENTKIT_RENDER_REQUEST_FIELDS(LATENTKIT_SAME_FIELD); }

/// An RGBA8 image in CUDA device memory (rows packed, top row first), kept alive by `owner`.
struct DeviceImage {
    const void* data = nullptr;
    int width = 0, height = 0;
    int device = 0;                       ///< CUDA device index
    std::shared_ptr<void> owner;          ///< the tensor holding the pixels
    std::function<Image8()> to_host;      ///< the same image as host RGB (the fallback upload)
};

/// The answer to a request.
struct RenderResult {
    uint64_t id = 0;
    Image8 image;      ///< RGB, the model's resolution (empty on error, or when device_image is set)
    std::shared_ptr<const DeviceImage> device_image;  ///< set instead of image for device_output on CUDA
    std::string error;     ///< one line when the request failed
    std::vector<float> ws; ///< the W+ latent rendered (num_ws * w_dim), with every edit applied
    double render_ms = 0;
    std::optional<ModelSummary> model;  ///< set when this request rendered with another model than the last
};

/// The four integer seeds around a continuous position and their bilinear weights (as the reference
/// visualizer: seed = x + 100 * y, modulo 2^32).
std::vector<std::pair<uint32_t, double>> blend_seeds(double x, double y);

/// The device a --device value names: "auto" is cuda when LibTorch sees a CUDA device, else cpu.
/// Throws ArgumentError for cuda when there is none.
std::string resolve_device(const std::string& name);

/// Renders requests on a background thread with the models of `models`.
class RenderWorker {
public:
    explicit RenderWorker(ModelStore& models);
    ~RenderWorker();
    RenderWorker(const RenderWorker&) = delete;
    RenderWorker& operator=(const RenderWorker&) = delete;
    /// Queues a request, replacing one that has not started yet.
    void submit(RenderRequest request);
    /// The newest finished result, if one arrived since the last call.
    std::optional<RenderResult> poll();
    /// True while a request is queued or rendering.
    bool busy() const;
    /// Renders on the calling thread (tests, benchmarks).
    RenderResult render_now(const RenderRequest& request);

private:
    void loop();
    ModelStore& models_;
    std::shared_ptr<const OpenModel> last_model_;  // of the last render: a new one is reported
    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::optional<RenderRequest> pending_;
    std::optional<RenderResult> done_;
    bool rendering_ = false, stop_ = false;
    std::thread thread_;
};

}  // namespace latentkit::viewer
