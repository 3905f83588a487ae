#include "latentkit/interpolate.h"

#include <fmt/format.h>

#include <cmath>

#include "latentkit/error.h"
#include "latentkit/latent.h"

namespace latentkit {

int64_t path_frame_count(int64_t keys, const PathOptions& o) {
    if (o.frames_per_transition < 1) throw ArgumentError("frames per transition must be at least 1");
    if (keys < 2) throw ArgumentError(fmt::format("a path needs at least 2 keyframes, got {}", keys));
    return o.loop ? keys * o.frames_per_transition : (keys - 1) * o.frames_per_transition + 1;
}

torch::Tensor path_sample(const torch::Tensor& keys, const PathOptions& o, double u) {
    const int64_t k = keys.size(0);
    const int64_t transitions = o.loop ? k : k - 1;
    if (k < 2) throw ArgumentError("a path needs at least 2 keyframes");
    if (u < 0 || u > static_cast<double>(transitions)) throw ArgumentError("path position out of range");
    int64_t s = static_cast<int64_t>(std::floor(u));
    if (s >= transitions) s = transitions - 1;
    double t = u - static_cast<double>(s);
    if (o.easing == Easing::ease_in_out) t = t * t * (3.0 - 2.0 * t);
    auto key = [&](int64_t i) {
        if (o.loop) return keys[((i % k) + k) % k];
        return keys[std::clamp<int64_t>(i, 0, k - 1)];
    };
    const torch::Tensor p1 = key(s), p2 = key(s + 1);
    switch (o.kind) {
        case PathKind::linear: return lerp(p1, p2, t);
        case PathKind::spherical: return slerp(p1, p2, t);
        case PathKind::cubic: {
            const torch::Tensor p0 = key(s - 1), p3 = key(s + 2);
            const double t2 = t * t, t3 = t2 * t;
            return 0.5 * (2.0 * p1 + (p2 - p0) * t + (2.0 * p0 - 5.0 * p1 + 4.0 * p2 - p3) * t2 + (3.0 * p1 - p0 - 3.0 * p2 + p3) * t3);
        }
    }
    return p1;
}

torch::Tensor path_frame(const torch::Tensor& keys, const PathOptions& o, int64_t index) {
    const int64_t n = path_frame_count(keys.size(0), o);
    if (index < 0 || index >= n) throw ArgumentError(fmt::format("frame {} is outside the path's {} frames", index, n));
    return path_sample(keys, o, static_cast<double>(index) / static_cast<double>(o.frames_per_transition));
}

torch::Tensor select_layers(const torch::Tensor& moving, const torch::Tensor& held, const std::vector<int>& layers) {
    if (moving.sizes() != held.sizes()) throw ShapeError("layer selection needs two latents of the same shape");
    const int64_t num_ws = moving.size(-2);
    auto mask = torch::zeros({num_ws, 1}, moving.options().dtype(torch::kBool));
    for (int l : layers) {
        if (l < 0 || l >= num_ws) throw ArgumentError(fmt::format("layer {} is out of range 0..{}", l, num_ws - 1));
        mask[l] = true;
    }
    return torch::where(mask, moving, held);
}

}  // namespace latentkit
