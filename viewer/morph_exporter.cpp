// The viewer's morph export thread: MorphRenderer + the video writer.
#include "morph_exporter.h"
#include "error_text.h"

#include <torch/torch.h>

#include "latentkit/error.h"
#include "latentkit/io/tensor_image.h"
#include "latentkit/io/video.h"
#include "latentkit/networks.h"
#include "latentkit/morph.h"

namespace latentkit::viewer {

void MorphExporter::start(const MorphExportJob& job) {
    task_.stop();
    {
        std::lock_guard<std::mutex> lock(mutex_);
        state_ = MorphExportState{};
        state_.running = true;
    }
    task_.start([this, job] { run(job); });
}

void MorphExporter::cancel() { task_.cancel(); }

void MorphExporter::wait() { task_.join(); }

MorphExportState MorphExporter::state() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return state_;
}

void MorphExporter::run(MorphExportJob job) {
    try {
        if (job.spec.w_keys.size() + job.spec.render.seeds.size() < 2) throw ArgumentError("a morph needs at least two keyframes");
        const std::shared_ptr<const OpenModel> model = models_.open(job.model_path, job.device);
        const auto& cfg = model->G->config;
        MorphRenderer renderer(model->G, job.spec);
        {
            std::lock_guard<std::mutex> lock(mutex_);
            state_.frames = renderer.frame_count();
        }
        io::VideoOptions vo;
        vo.fps = job.fps;
        auto sink = io::make_async(io::open_frame_sink(job.out, cfg.img_resolution, cfg.img_resolution, vo));
        torch::NoGradGuard no_grad;
        for (int64_t f = 0; f < renderer.frame_count(); f += renderer.frames_per_batch()) {
            if (task_.cancelled()) throw CancelledError("cancelled");
            const int64_t n = std::min(renderer.frames_per_batch(), renderer.frame_count() - f);
            for (auto& im : io::images_from_batch(renderer.render(f, n).to(torch::kCPU))) sink->write(io::convert_channels(im, 3));
            std::lock_guard<std::mutex> lock(mutex_);
            state_.frame = f + n;
        }
        sink->finish();
        std::lock_guard<std::mutex> lock(mutex_);
        state_.done = true;
        state_.running = false;
    } catch (const std::exception& e) {
        std::lock_guard<std::mutex> lock(mutex_);
        state_.error = error_text(e);
        state_.running = false;
    }
}

}  // namespace latentkit::viewer
