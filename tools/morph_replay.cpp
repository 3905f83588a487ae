// latentkit morph --replay: the recorded script lines applied to a viewer state, frame by frame, and
// rendered with the viewer's own request and renderer.
#include "morph_replay.h"

#include <fmt/format.h>

#include <cmath>

#include "latentkit/error.h"
#include "latentkit/io/audio.h"
#include "latentkit/io/tensor_image.h"
#include "latentkit/log.h"
#include "latentkit/stop.h"
#include "model_store.h"
#include "progress_bar.h"
#include "recording.h"
#include "render_worker.h"
#include "viewer_state.h"

namespace latentkit::tools {

void replay_recording(const ReplayJob& job) {
    const viewer::Recording rec = viewer::load_recording(job.recording);
    viewer::ViewerState s;
    s.model_path = job.model.empty() ? rec.model : job.model;
    if (s.model_path.empty()) throw ArgumentError(job.recording + ": the recording names no model: give --model");
    s.device = job.device;
    s.directions = rec.sliders;
    viewer::ModelStore models;
    viewer::RenderWorker worker(models);
    s.model = models.open(s.model_path, s.device)->summary;
    io::VideoOptions vo = job.video;
    if (io::is_frame_folder(job.out) && !rec.audio.empty()) log_warn(job.out + ": a folder of frames holds no sound (" + rec.audio + ")");
    else if (!rec.audio.empty()) vo.audio = std::make_shared<io::AudioClip>(io::decode_audio(rec.audio, rec.audio_start, rec.duration > 0 ? rec.duration : -1));
    else log_warn(job.recording + ": recorded from the input device (or without sound): the video is silent");
    // frames at 0, 1/fps, ... up to the moment the recording stopped
    const auto frames = static_cast<int64_t>(std::floor(rec.duration * vo.fps + 1e-6)) + 1;
    const int res = job.size > 0 ? job.size : s.model.resolution;
    auto sink = io::make_async(io::open_frame_sink(job.out, res, res, vo));
    ProgressBar bar("replay", frames, "frames");
    size_t next = 0;
    for (int64_t f = 0; f < frames; ++f) {
        if (stop_requested()) throw CancelledError(fmt::format("replay interrupted (frame {} of {}; {} was not written)", f, frames, job.out));
        const double t = static_cast<double>(f) / vo.fps;
        for (; next < rec.events.size() && rec.events[next].time <= t + 1e-9; ++next)
            for (const auto& line : rec.events[next].lines)
                if (!viewer::apply_script_line(s, line)) throw ArgumentError(fmt::format("{}: unknown line '{}'", job.recording, line));
        const viewer::RenderResult r = worker.render_now(viewer::request_from(s));
        if (!r.error.empty()) throw Error(fmt::format("{}: frame {}: {}", job.recording, f, r.error));
        Image8 image = io::convert_channels(r.image, 3);
        if (image.width != res) image = io::resize_image(image, res, res, job.filter);
        sink->write(image);
        bar.update(f + 1);
    }
    sink->finish();
    bar.finish();
    log_info(fmt::format("wrote {} ({} frames of {}, {} fps{})", job.out, frames, job.recording, vo.fps, vo.audio ? ", with sound" : ""));
}

}  // namespace latentkit::tools
