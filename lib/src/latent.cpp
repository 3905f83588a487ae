#include "latentkit/latent.h"

#include <fmt/format.h>

#include <cmath>

#include "latentkit/error.h"
#include "latentkit/networks.h"
#include "latentkit/rng.h"

namespace latentkit {

torch::Tensor z_from_seeds(const std::vector<uint32_t>& seeds, int z_dim) {
    auto z = torch::empty({static_cast<int64_t>(seeds.size()), z_dim}, torch::kFloat32);
    for (size_t k = 0; k < seeds.size(); ++k) {
        const auto row = seed_to_z(seeds[k], z_dim);
        std::memcpy(z[static_cast<int64_t>(k)].data_ptr<float>(), row.data(), row.size() * sizeof(float));
    }
    return z;
}

torch::Tensor class_labels(int c_dim, std::optional<int> class_index, int64_t batch) {
    if (c_dim == 0) {
        if (class_index) throw ArgumentError(Message() << "this model is unconditional: " << field("RenderSpec.class_index") << " does not apply");
        return {};
    }
    if (!class_index) throw ArgumentError(Message() << fmt::format("this model is conditional ({} classes): give ", c_dim) << field("RenderSpec.class_index"));
    if (*class_index < 0 || *class_index >= c_dim)
        throw ArgumentError(fmt::format("class {} is out of range: the model has classes 0 to {}", *class_index, c_dim - 1));
    auto c = torch::zeros({batch, c_dim}, torch::kFloat32);
    c.select(1, *class_index).fill_(1.0);
    return c;
}

torch::Tensor map_to_ws(Generator& G, const torch::Tensor& z, const torch::Tensor& c, double psi, std::optional<int> cutoff) {
    torch::NoGradGuard no_grad;
    return G.mapping->forward(z, c, psi, cutoff, true);
}

torch::Tensor broadcast_w(const torch::Tensor& w, int num_ws) {
    if (w.dim() != 2) throw ShapeError("a single w must have shape [N, w_dim]");
    return w.unsqueeze(1).repeat({1, num_ws, 1});
}

torch::Tensor truncate(const torch::Tensor& ws, const torch::Tensor& w_avg, double psi, std::optional<int> cutoff) {
    if (psi == 1) return ws;
    if (!cutoff) return w_avg.lerp(ws, psi);
    using torch::indexing::Slice;
    torch::Tensor out = ws.clone();
    out.index_put_({Slice(), Slice(0, *cutoff)}, w_avg.lerp(ws.index({Slice(), Slice(0, *cutoff)}), psi));
    return out;
}

torch::Tensor lerp(const torch::Tensor& a, const torch::Tensor& b, double t) { return a + (b - a) * t; }

torch::Tensor slerp(const torch::Tensor& a, const torch::Tensor& b, double t) {
    auto an = a / a.norm(2, -1, true);
    auto bn = b / b.norm(2, -1, true);
    auto dot = (an * bn).sum(-1, true).clamp(-1.0, 1.0);
    auto omega = torch::acos(dot);
    auto so = torch::sin(omega);
    auto result = (torch::sin((1.0 - t) * omega) / so) * a + (torch::sin(t * omega) / so) * b;
    auto linear = lerp(a, b, t);
    return torch::where(so.abs() < 1e-6, linear, result);
}

torch::Tensor mix_layers(const torch::Tensor& ws, const torch::Tensor& source, const std::vector<int>& layers) {
    if (ws.sizes() != source.sizes()) throw ShapeError("style mixing needs two W+ tensors of the same shape");
    torch::Tensor out = ws.clone();
    for (int l : layers) {
        if (l < 0 || l >= ws.size(1)) throw ArgumentError(fmt::format("layer {} is out of range 0..{}", l, ws.size(1) - 1));
        out.select(1, l).copy_(source.select(1, l));
    }
    return out;
}

torch::Tensor to_uint8_nhwc(const torch::Tensor& img, bool keep_device) {
    const torch::Device device = keep_device ? img.device() : torch::Device(torch::kCPU);
    return (img.detach().to(device, torch::kFloat32) * 127.5 + 128).clamp(0, 255).to(torch::kUInt8).permute({0, 2, 3, 1}).contiguous();
}

}  // namespace latentkit
