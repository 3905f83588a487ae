// The render worker: seed blending, truncation, style mixing, directions, the morph preview.
#include "render_worker.h"
#include "error_text.h"

#include <fmt/format.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <chrono>
#include <algorithm>
#include <cmath>

#include "latentkit/device.h"
#include "latentkit/editing.h"
#include "latentkit/error.h"
#include "latentkit/interpolate.h"
#include "latentkit/io/download.h"
#include "latentkit/io/tensor_image.h"
#include "latentkit/latent.h"
#include "latentkit/networks.h"
#include "latentkit/render.h"

namespace latentkit::viewer {

std::vector<std::pair<uint32_t, double>> blend_seeds(double x, double y) {
    std::vector<std::pair<uint32_t, double>> out;
    for (const auto& [ox, oy] : {std::pair{0, 0}, {1, 0}, {0, 1}, {1, 1}}) {
        const double sx = std::floor(x) + ox, sy = std::floor(y) + oy;
        const double weight = (1 - std::abs(x - sx)) * (1 - std::abs(y - sy));
        if (weight <= 0) continue;
        const auto seed = static_cast<uint32_t>(static_cast<int64_t>(sx) + static_cast<int64_t>(sy) * 100);
        out.emplace_back(seed, weight);
    }
    return out;
}

bool same_render(const RenderRequest& a, const RenderRequest& b) {
    return a.model_path == b.model_path && a.device == b.device && same_render_spec(a.spec, b.spec) &&
           a.morph.has_value() == b.morph.has_value() && (!a.morph || same_morph_spec(*a.morph, *b.morph)) && a.morph_t == b.morph_t &&
           a.view_block == b.view_block && a.view_channel == b.view_channel && a.device_output == b.device_output &&
           a.blend_model == b.blend_model && (a.blend_model.empty() || (a.blend.from_resolution == b.blend.from_resolution &&
                                                                        a.blend.width == b.blend.width && a.blend.mapping == b.blend.mapping));
}

std::string resolve_device(const std::string& name) {
    return device_from_name(name).str();
}

namespace {

// The output image as packed RGBA8 on its CUDA device.
std::shared_ptr<const DeviceImage> device_rgba(const torch::Tensor& img) {
    torch::Tensor rgb = to_uint8_nhwc(img.narrow(0, 0, 1), true)[0];  // [H, W, C]
    if (rgb.size(2) < 3) rgb = rgb.narrow(2, 0, 1).repeat({1, 1, 3});
    const torch::Tensor alpha = torch::full({rgb.size(0), rgb.size(1), 1}, 255, rgb.options());
    auto rgba = std::make_shared<torch::Tensor>(torch::cat({rgb.narrow(2, 0, 3), alpha}, 2).contiguous());
    torch::cuda::synchronize(rgba->device().index());
    auto d = std::make_shared<DeviceImage>();
    d->data = rgba->data_ptr();
    d->height = static_cast<int>(rgba->size(0));
    d->width = static_cast<int>(rgba->size(1));
    d->device = rgba->device().index();
    d->owner = rgba;
    d->to_host = [rgba] {
        const torch::Tensor rgb_host = rgba->narrow(2, 0, 3).to(torch::kCPU).contiguous();
        return Image8{static_cast<int>(rgb_host.size(1)), static_cast<int>(rgb_host.size(0)), 3,
                          std::vector<uint8_t>(rgb_host.data_ptr<uint8_t>(), rgb_host.data_ptr<uint8_t>() + rgb_host.numel())};
    };
    return d;
}

// The class every request of a conditional model needs: class 0 unless it names one.
void default_class(RenderSpec& spec, const GeneratorConfig& cfg) {
    if (cfg.c_dim > 0 && !spec.class_index) spec.class_index = 0;
}

// One synthesis block's features as an RGB image, each channel normalised by its own spread.
Image8 block_image(const std::vector<torch::Tensor>& blocks, int block, int channel) {
    if (block >= static_cast<int>(blocks.size())) throw ArgumentError(fmt::format("block {} does not exist (the model has {})", block, blocks.size()));
    const torch::Tensor f = blocks[static_cast<size_t>(block)][0].to(torch::kCPU);  // [C, h, w]
    if (channel >= f.size(0)) throw ArgumentError(fmt::format("channel {} does not exist (the block has {})", channel, f.size(0)));
    torch::Tensor v = channel >= 0 ? f.narrow(0, channel, 1).repeat({3, 1, 1}) : f.narrow(0, 0, std::min<int64_t>(3, f.size(0)));
    if (v.size(0) < 3) v = v.narrow(0, 0, 1).repeat({3, 1, 1});
    // To [-1, 1] by 4 standard deviations, then the usual 8-bit conversion.
    const torch::Tensor mean = v.mean({1, 2}, true), sd = v.std({1, 2}, false, true).clamp_min(1e-8);
    return io::images_from_batch(((v - mean) / (2 * sd)).clamp(-1, 1).unsqueeze(0))[0];
}

}  // namespace

RenderWorker::RenderWorker(ModelStore& models) : models_(models), thread_([this] { loop(); }) {}

RenderWorker::~RenderWorker() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stop_ = true;
    }
    wake_.notify_all();
    thread_.join();
}

void RenderWorker::submit(RenderRequest request) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        pending_ = std::move(request);
    }
    wake_.notify_all();
}

std::optional<RenderResult> RenderWorker::poll() {
    std::lock_guard<std::mutex> lock(mutex_);
    std::optional<RenderResult> r = std::move(done_);
    done_.reset();
    return r;
}

bool RenderWorker::busy() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return pending_.has_value() || rendering_;
}

void RenderWorker::loop() {
    while (true) {
        RenderRequest request;
        {
            std::unique_lock<std::mutex> lock(mutex_);
            wake_.wait(lock, [this] { return stop_ || pending_.has_value(); });
            if (stop_) return;
            rendering_ = true;
            request = std::move(*pending_);
            pending_.reset();
        }
        RenderResult result = render_now(request);
        std::lock_guard<std::mutex> lock(mutex_);
        done_ = std::move(result);
        rendering_ = false;
    }
}

// The blend of the open model with the request's detail model, made again only when the settings change.
std::shared_ptr<Generator> RenderWorker::blended(const RenderRequest& r, const OpenModel& base) {
    const std::string key = fmt::format("{}|{}|{}|{}|{}|{}", r.model_path, r.blend_model, r.device, r.blend.from_resolution, r.blend.width,
                                        option_name(r.blend.mapping));
    if (key == blend_key_) return blended_;
    if (detail_path_ != r.blend_model || !detail_) {
        detail_ = std::make_shared<Model>(io::load_model_location(r.blend_model));
        detail_path_ = r.blend_model;
    }
    detail_->generator()->to(device_of(*base.G->synthesis));
    Model b;
    b.G_ema = base.G;
    b.path = base.location;
    blended_ = blend_models(b, *detail_, r.blend).generator();
    blended_->to(device_of(*base.G->synthesis));
    blended_->eval();
    blend_key_ = key;
    return blended_;
}

RenderResult RenderWorker::render_now(const RenderRequest& r) {
    RenderResult out;
    out.id = r.id;
    const auto t0 = std::chrono::steady_clock::now();
    try {
        if (r.model_path.empty()) throw ArgumentError("no model open");
        std::shared_ptr<const OpenModel> model = models_.open(r.model_path, r.device);
        if (model != last_model_) out.model = model->summary;
        last_model_ = model;
        const std::shared_ptr<Generator> G = r.blend_model.empty() ? model->G : blended(r, *model);
        const Renderer renderer(G);
        RenderSpec spec = r.spec;
        torch::Tensor ws;
        if (r.morph) {
            MorphSpec morph = *r.morph;
            default_class(morph.render, G->config);
            ws = MorphRenderer(G, morph).latents_at(r.morph_t);
            spec = morph.render;
        } else {
            default_class(spec, G->config);
            ws = renderer.latents(spec);
        }
        {
            const torch::Tensor flat = ws.to(torch::kCPU).contiguous();
            out.ws.assign(flat.data_ptr<float>(), flat.data_ptr<float>() + flat.numel());
        }
        std::vector<torch::Tensor> blocks;
        const torch::Tensor img = renderer.synthesize(ws, spec, r.view_block >= 0 ? &blocks : nullptr);
        if (r.view_block >= 0) out.image = block_image(blocks, r.view_block, r.view_channel);
        else if (r.device_output && img.is_cuda()) out.device_image = device_rgba(img);
        else out.image = io::convert_channels(io::images_from_batch(img.to(torch::kCPU))[0], 3);
    } catch (const std::exception& e) {
        out.error = error_text(e);
    }
    out.render_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    return out;
}

}  // namespace latentkit::viewer
