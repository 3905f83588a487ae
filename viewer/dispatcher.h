#pragma once
// The viewer's request dispatcher: once a frame it hands what the state asks for to the workers
// (render worker, projection, morph export, task thread) and brings their results back into the
// state. No GL: the app uploads the images it returns. Scripts and widgets go through the same path.
#include <optional>
#include <string>

#include "latentkit/png.h"
#include "log_buffer.h"
#include "model_store.h"
#include "morph_exporter.h"
#include "projection_runner.h"
#include "render_worker.h"
#include "curate_session.h"
#include "task_queue.h"
#include "viewer_state.h"

namespace latentkit::viewer {

/// What a frame has to show that the state does not hold.
struct DispatchEvents {
    std::optional<RenderResult> render;  ///< a new image (or error) for the main view
    bool projection_changed = false;     ///< projection() has new images
};

/// Owns the model and the workers; see the file comment.
class Dispatcher {
public:
    /// `device_output`: ask for CUDA images in device memory (CUDA-GL interop is available).
    explicit Dispatcher(bool device_output = false);
    /// Asks for host images from now on (after the CUDA-GL interop failed).
    void stop_device_output() { device_output_ = false; }
    /// Whether renders are asked for in device memory.
    bool device_output() const { return device_output_; }
    /// One frame: results into the state, requests out of it. `dt`: seconds since the last frame.
    DispatchEvents step(ViewerState& s, double dt);
    /// True when nothing is queued or running and the newest request is the image shown.
    bool idle(const ViewerState& s) const;
    /// True while file tasks are queued or running.
    bool tasks_busy() const { return tasks_.busy(); }
    /// Waits for the queued file tasks and applies what they found (at exit).
    void drain(ViewerState& s);
    /// Writes `image` to `path` on the task thread (the status line says so; failures become the error).
    void save_png(const std::string& path, Image8 image);
    /// Opens a file by its kind (files.h): model, direction file, latent or photo to project.
    void open_file(ViewerState& s, const std::string& path);
    const ProjectionSnapshot& projection() const { return proj_snap_; }
    const MorphExportState& export_state() const { return export_state_; }
    ModelStore& models() { return store_; }

private:
    void take_render(ViewerState& s, DispatchEvents& events);
    void run_jobs(ViewerState& s);
    void save_blend(ViewerState& s);
    void run_curate(ViewerState& s, const std::string& line);
    void follow_projection(ViewerState& s, DispatchEvents& events);
    void follow_morph(ViewerState& s, double dt);
    void send_render(ViewerState& s);
    void refresh_browser(ViewerState& s);

    bool device_output_;
    LogBuffer log_;
    ModelStore store_;
    RenderWorker worker_{store_};
    ProjectionRunner runner_{store_};
    MorphExporter exporter_{store_};
    RenderRequest last_sent_;
    std::pair<double, double> sent_seed_{0, 0};  // the seed position of last_sent_
    bool have_sent_ = false;
    uint64_t next_id_ = 1, shown_id_ = 0;
    ProjectionSnapshot proj_snap_;
    MorphExportState export_state_;
    std::shared_ptr<CurateSession> curate_;  // the Curate panel's, used on the task thread only
    TaskQueue tasks_;  // last: destroyed first, finishing its queued writes while the rest exists
};

}  // namespace latentkit::viewer
