// The viewer's projection thread.
#include "projection_runner.h"
#include "error_text.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include "latentkit/error.h"
#include "latentkit/io/face_align.h"
#include "latentkit/io/image.h"
#include "latentkit/io/tensor_image.h"
#include "latentkit/networks.h"
#include "latentkit/projector.h"

namespace latentkit::viewer {

void ProjectionRunner::start(const ProjectionJob& job) {
    task_.stop();
    {
        std::lock_guard<std::mutex> lock(mutex_);
        const uint64_t v = snap_.version;
        snap_ = ProjectionSnapshot{};
        snap_.running = true;
        snap_.steps = job.options.steps;
        snap_.version = v + 1;
    }
    task_.start([this, job] { run(job); });
}

void ProjectionRunner::cancel() { task_.cancel(); }

void ProjectionRunner::wait() { task_.join(); }

ProjectionSnapshot ProjectionRunner::snapshot() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return snap_;
}

void ProjectionRunner::run(ProjectionJob job) {
    try {
        const std::shared_ptr<const OpenModel> model = models_.open(job.model_path, job.device);
        const auto& G = model->G;
        const auto& cfg = G->config;
        const Image8 photo = io::read_image(job.target_path);
        const std::unique_ptr<io::FaceDetector> detector = io::make_face_detector(job.align);
        const io::AlignedImage aligned = io::align_image(photo, job.target_path, job.align, cfg.img_resolution, detector.get());
        const Image8 target = io::convert_channels(aligned.image, cfg.img_channels);
        {
            std::lock_guard<std::mutex> lock(mutex_);
            snap_.target = io::convert_channels(target, 3);
            snap_.alignment = aligned.method;
            ++snap_.version;
        }
        const torch::Device device(job.device);
        std::shared_ptr<LpipsModel> lpips;
        if (!job.vgg.empty()) {
            lpips = std::make_shared<LpipsModel>(job.vgg);
            lpips->to(device);
        }
        auto D = lpips ? nullptr : model->D;
        ProjectorOptions o = job.options;
        o.loss = default_projection_loss(lpips != nullptr, D != nullptr);
        Projector projector(G, D, lpips);
        const ProjectionResult r = projector.project(io::tensor_from_image(target).unsqueeze(0), o, [&](const ProjectionStep& s) {
            std::lock_guard<std::mutex> lock(mutex_);
            snap_.step = s.step;
            snap_.loss = s.loss.sum().item<double>();
            snap_.current = io::convert_channels(io::images_from_batch(s.images.to(torch::kCPU))[0], 3);
            ++snap_.version;
            return !task_.cancelled();
        });
        const torch::Tensor ws = r.ws.contiguous();
        std::lock_guard<std::mutex> lock(mutex_);
        snap_.ws.assign(ws.data_ptr<float>(), ws.data_ptr<float>() + ws.numel());
        snap_.num_ws = cfg.num_ws();
        snap_.w_dim = cfg.w_dim;
        snap_.current = io::convert_channels(io::images_from_batch(r.images)[0], 3);
        snap_.done = true;
        snap_.running = false;
        ++snap_.version;
    } catch (const CancelledError&) {
        std::lock_guard<std::mutex> lock(mutex_);
        snap_.error = "cancelled";
        snap_.running = false;
        ++snap_.version;
    } catch (const std::exception& e) {
        std::lock_guard<std::mutex> lock(mutex_);
        snap_.error = error_text(e);
        snap_.running = false;
        ++snap_.version;
    }
}

}  // namespace latentkit::viewer
