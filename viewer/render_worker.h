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

#include "latentkit/blend.h"
#include "latentkit/morph.h"
#include "latentkit/render.h"
#include "latentkit/png.h"
#include "model_store.h"

namespace latentkit::viewer {

/// Everything needed to render one image, and its id.
struct RenderRequest {
    uint64_t id = 0;
    std::string model_path, device = "cpu";
    RenderSpec spec;                  ///< the image (class 0 for a conditional model that names none)
    std::optional<MorphSpec> morph;   ///< set: show the point morph_t of this path instead of spec's latents
    double morph_t = 0;               ///< 0..1 over the whole path
    int view_block = -1;              ///< show this synthesis block's features (0 = 4x4)
    int view_channel = -1;            ///< that channel as gray, or -1: the first three as RGB
    bool device_output = false;       ///< on CUDA, hand back the image in device memory
    std::string blend_model;          ///< set: render a blend of the model (base) with this one (detail)
    BlendOptions blend;               ///< how (with blend_model)
};

/// Whether two requests render the same image: every field but the id.
bool same_render(const RenderRequest& a, const RenderRequest& b);

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
    std::shared_ptr<Generator> blended(const RenderRequest& r, const OpenModel& base);
    std::shared_ptr<const OpenModel> last_model_;  // of the last render: a new one is reported
    std::string blend_key_, detail_path_;           // the blend kept, and the detail model it came from
    std::shared_ptr<Generator> blended_;
    std::shared_ptr<Model> detail_;
    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::optional<RenderRequest> pending_;
    std::optional<RenderResult> done_;
    bool rendering_ = false, stop_ = false;
    std::thread thread_;
};

}  // namespace latentkit::viewer
