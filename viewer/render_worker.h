#pragma once
// The viewer's render worker: owns the model on its own thread, renders only the newest request
// (older ones are dropped), and hands back an image or an error message. No GL here.
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "latentkit/directions.h"
#include "latentkit/png.h"

namespace latentkit::viewer {

/// One direction applied with a strength.
struct DirectionEdit {
    Direction direction;
    double strength = 0;
    int first_layer = 0, last_layer = -1;  ///< W+ layers it acts on (last -1: to the end)
};

/// Everything needed to render one image.
struct RenderRequest {
    uint64_t id = 0;
    std::string model_path;
    std::string device = "cpu";
    double seed_x = 0, seed_y = 0;  ///< continuous seed position: integer points are seeds (x + 100 * y)
    double psi = 1.0;
    int cutoff = -1;                ///< truncate only the first `cutoff` layers (-1: all)
    std::string noise_mode = "const";  ///< const, random or none
    uint32_t noise_seed = 0;        ///< seed of random noise
    bool mix = false;
    uint32_t mix_seed = 0;
    std::vector<int> mix_layers;    ///< layers taken from mix_seed
    std::vector<DirectionEdit> edits;
    std::vector<float> base_ws;     ///< a W+ latent to start from instead of the seeds (num_ws * w_dim), e.g. a projection
    double translate_x = 0, translate_y = 0, rotate = 0;  ///< StyleGAN3: the input transform (gen_images.py's --translate, --rotate)
    int view_block = -1;            ///< show this synthesis block's features instead of the output (0 = 4x4)
    int view_channel = -1;          ///< that channel as gray, or -1 for the first three as RGB
    bool device_output = false;     ///< on CUDA, hand back the image in device memory (for CUDA-GL interop)
};

/// What the model is, for the UI.
struct ModelSummary {
    std::string path, format, fingerprint;
    int resolution = 0, channels = 0, num_ws = 0, w_dim = 0, z_dim = 0, c_dim = 0;
    std::string family;  ///< "StyleGAN2" or "StyleGAN3"
};

/// An RGBA8 image in CUDA device memory (rows packed, top row first), kept alive by `owner`.
struct DeviceImage {
    const void* data = nullptr;
    int width = 0, height = 0;
    int device = 0;                       ///< CUDA device index
    std::shared_ptr<void> owner;          ///< the tensor holding the pixels
    std::function<Image8()> to_host;  ///< the same image as host RGB (the fallback upload)
};

/// The answer to a request.
struct RenderResult {
    uint64_t id = 0;
    Image8 image;      ///< RGB, the model's resolution (empty on error, or when device_image is set)
    std::shared_ptr<const DeviceImage> device_image;  ///< set instead of image for device_output on CUDA
    std::string error;     ///< one line when the request failed
    std::vector<float> ws; ///< the W+ latent rendered (num_ws * w_dim), with every edit applied
    double render_ms = 0;
    std::optional<ModelSummary> model;  ///< set when a model was (re)loaded for this request
};

/// Work for the open model other than a render (on the worker, which owns the model).
struct DirectionsJob {
    std::string kind = "pca";  ///< "pca", "sefa", or "samples" (latents and thumbnails to label)
    int components = 10;
    int samples = 10000;       ///< PCA samples (seeds 0..samples-1); thumbnails for "samples"
    int first_seed = 0;        ///< "samples": seeds first_seed .. first_seed + samples - 1
    double psi = 1.0;          ///< "samples": truncation
};

/// The answer to a DirectionsJob.
struct DirectionsResult {
    std::string kind;
    DirectionSet set;                ///< pca, sefa
    std::vector<uint32_t> seeds;     ///< samples
    std::vector<float> w;            ///< samples: seeds.size() x w_dim
    std::vector<Image8> images;  ///< samples: RGB thumbnails at the model's resolution
    std::string error;
};

/// The four integer seeds around a continuous position and their bilinear weights (as the reference
/// visualizer: seed = x + 100 * y, modulo 2^32).
std::vector<std::pair<uint32_t, double>> blend_seeds(double x, double y);

/// The device a --device value names: "auto" is cuda when LibTorch sees a CUDA device, else cpu.
/// Throws ArgumentError for cuda when there is none.
std::string resolve_device(const std::string& name);

/// Renders requests on a background thread.
class RenderWorker {
public:
    RenderWorker();
    ~RenderWorker();
    RenderWorker(const RenderWorker&) = delete;
    RenderWorker& operator=(const RenderWorker&) = delete;
    /// Queues a request, replacing one that has not started yet.
    void submit(RenderRequest request);
    /// The newest finished result, if one arrived since the last call.
    std::optional<RenderResult> poll();
    /// Queues a directions job (jobs are never dropped for renders; a newer job replaces a queued one).
    void submit_job(DirectionsJob job);
    /// The finished job, if one arrived since the last call.
    std::optional<DirectionsResult> poll_job();
    /// True while a request or job is queued or running.
    bool busy() const;
    /// Renders on the calling thread (tests, benchmarks).
    RenderResult render_now(const RenderRequest& request);
    /// Runs a job on the calling thread with the model of the last render (tests).
    DirectionsResult run_job(const DirectionsJob& job);

private:
    struct Model;
    void loop();
    std::unique_ptr<Model> model_;
    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::optional<RenderRequest> pending_;
    std::optional<RenderResult> done_;
    std::optional<DirectionsJob> pending_job_;
    std::optional<DirectionsResult> job_done_;
    bool rendering_ = false, stop_ = false;
    std::thread thread_;
};

}  // namespace latentkit::viewer
