// Loading the viewer's model once.
#include "model_store.h"

#include <torch/torch.h>

#include "latentkit/editing.h"
#include "latentkit/io/download.h"
#include "latentkit/log.h"
#include "latentkit/model_io.h"
#include "latentkit/networks.h"

namespace latentkit::viewer {

std::shared_ptr<const OpenModel> ModelStore::open(const std::string& location, const std::string& device) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (current_ && current_->location == location && current_->device == device) return current_;
    current_.reset();  // the old networks go as soon as their last user is done
    auto m = std::make_shared<OpenModel>();
    Model loaded = io::load_model_location(location);
    m->location = location;
    m->device = device;
    m->G = loaded.generator();
    m->D = loaded.D;
    const torch::Device dev(device);
    m->G->to(dev);
    m->G->eval();
    if (m->D) {
        m->D->to(dev);
        m->D->eval();
    }
    const auto& c = m->G->config;
    m->summary = {location, loaded.format, model_fingerprint(*m->G), c.img_resolution, c.img_channels, c.num_ws(), c.w_dim, c.z_dim,
                  c.c_dim, c.family_name()};
    for (const auto& note : loaded.notes) log_info(location + ": " + note);
    current_ = std::move(m);
    ++loads_;
    return current_;
}

int ModelStore::loads() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return loads_;
}

}  // namespace latentkit::viewer
