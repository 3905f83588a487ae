#pragma once
// Exports a morph between W+ keyframes to a video (or PNG folder) on its own thread with the shared
// model; the UI polls progress and can cancel.
#include <mutex>
#include <string>
#include <vector>

#include "latentkit/morph.h"

#include "background_task.h"
#include "model_store.h"

namespace latentkit::viewer {

/// What to export.
struct MorphExportJob {
    std::string model_path, out, device = "cpu";
    MorphSpec spec;  ///< W+ keyframes (spec.w_keys), the path, and how frames are synthesised (spec.render)
    int fps = 30;
};

/// Progress of an export.
struct MorphExportState {
    bool running = false, done = false;
    int64_t frame = 0, frames = 0;
    std::string error;
};

/// One export at a time.
class MorphExporter {
public:
    explicit MorphExporter(ModelStore& models) : models_(models) {}
    MorphExporter(const MorphExporter&) = delete;
    MorphExporter& operator=(const MorphExporter&) = delete;
    void start(const MorphExportJob& job);
    void cancel();
    MorphExportState state() const;
    void wait();

private:
    void run(MorphExportJob job);
    ModelStore& models_;
    mutable std::mutex mutex_;
    MorphExportState state_;
    BackgroundTask task_;  // last: joined before the state it writes is destroyed
};

}  // namespace latentkit::viewer
