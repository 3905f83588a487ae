#pragma once
// Runs a projection for the viewer on its own thread with the shared model, so the render worker
// stays free; the UI polls snapshots (step, loss, current image) and can cancel.
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "latentkit/io/face_align.h"
#include "latentkit/latent_space.h"
#include "latentkit/projector.h"
#include "latentkit/png.h"

#include "background_task.h"
#include "model_store.h"

namespace latentkit::viewer {

/// The projector options the viewer starts from: 300 steps, the model's constant noise kept.
inline ProjectorOptions viewer_projector_options() {
    ProjectorOptions o;
    o.steps = 300;
    o.optimize_noise = false;
    return o;
}

/// What to project.
struct ProjectionJob {
    std::string model_path, target_path, device = "cpu";
    io::AlignMode align = io::AlignMode::automatic;
    std::string vgg;             ///< optional LPIPS network (reference vgg16.pt)
    /// Steps, space, W statistics, ... (the viewer keeps the model's constant noise: optimize_noise is
    /// off, and the loss follows default_projection_loss).
    ProjectorOptions options = viewer_projector_options();
};

/// The state of a running or finished projection.
struct ProjectionSnapshot {
    bool running = false, done = false;
    int step = 0, steps = 0;
    double loss = 0;
    std::string error, alignment;
    Image8 target, current;  ///< RGB, the model's resolution
    std::vector<float> ws;       ///< the result, num_ws * w_dim (when done)
    int num_ws = 0, w_dim = 0;
    uint64_t version = 0;        ///< changes whenever the snapshot does
};

/// One projection at a time; starting another cancels the running one.
class ProjectionRunner {
public:
    explicit ProjectionRunner(ModelStore& models) : models_(models) {}
    ProjectionRunner(const ProjectionRunner&) = delete;
    ProjectionRunner& operator=(const ProjectionRunner&) = delete;
    /// Starts `job` (the model's constant noise is kept, so the result renders as shown).
    void start(const ProjectionJob& job);
    /// Asks the running projection to stop; it ends with the error "cancelled".
    void cancel();
    /// A copy of the current state.
    ProjectionSnapshot snapshot() const;
    /// Waits for the running projection to end.
    void wait();

private:
    void run(ProjectionJob job);
    ModelStore& models_;
    mutable std::mutex mutex_;
    ProjectionSnapshot snap_;
    BackgroundTask task_;  // last: joined before the state it writes is destroyed
};

}  // namespace latentkit::viewer
