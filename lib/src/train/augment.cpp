#include "train/augment.h"

#include <cmath>

#include "latentkit/error.h"
#include "ops.h"

namespace latentkit::training {
namespace {

using torch::Tensor;
constexpr double kPi = 3.14159265358979323846;

// Batched 3x3 / 4x4 matrices built from per-sample values [N].
Tensor eye(int64_t n, int64_t d, const torch::TensorOptions& o) { return torch::eye(d, o).unsqueeze(0).repeat({n, 1, 1}); }

Tensor translate2d(const Tensor& tx, const Tensor& ty) {
    Tensor m = eye(tx.size(0), 3, tx.options());
    m.select(1, 0).select(1, 2).copy_(tx);
    m.select(1, 1).select(1, 2).copy_(ty);
    return m;
}
Tensor scale2d(const Tensor& sx, const Tensor& sy) {
    Tensor m = eye(sx.size(0), 3, sx.options());
    m.select(1, 0).select(1, 0).copy_(sx);
    m.select(1, 1).select(1, 1).copy_(sy);
    return m;
}
Tensor rotate2d(const Tensor& theta) {
    Tensor m = eye(theta.size(0), 3, theta.options());
    m.select(1, 0).select(1, 0).copy_(theta.cos());
    m.select(1, 0).select(1, 1).copy_(-theta.sin());
    m.select(1, 1).select(1, 0).copy_(theta.sin());
    m.select(1, 1).select(1, 1).copy_(theta.cos());
    return m;
}

// Where(rand < prob, value, fallback) per sample.
Tensor masked(const Tensor& value, double prob, double fallback) {
    const Tensor keep = torch::rand({value.size(0)}, value.options()) < prob;
    return torch::where(keep, value, torch::full_like(value, fallback));
}

// Reflects coordinates (pixel units, align_corners = false) into [0, size - 1].
Tensor reflect(const Tensor& x, int64_t size) {
    Tensor t = (x + 0.5).abs().fmod(2.0 * size);
    t = torch::where(t > size, 2.0 * size - t, t) - 0.5;
    return t.clamp(0, size - 1);
}

// Bilinear grid sampling with reflection padding built from gather, so that it can be differentiated
// twice with respect to the input (R1 through the augmentations needs it; LibTorch's grid_sampler has
// no double backward). The grid itself carries no gradient.
Tensor grid_sample_reflect(const Tensor& input, const Tensor& grid) {
    const int64_t n = input.size(0), c = input.size(1), h = input.size(2), w = input.size(3);
    const int64_t ho = grid.size(1), wo = grid.size(2);
    const Tensor gx = reflect(((grid.select(3, 0) + 1) * w - 1) / 2, w).reshape({n, 1, ho * wo});
    const Tensor gy = reflect(((grid.select(3, 1) + 1) * h - 1) / 2, h).reshape({n, 1, ho * wo});
    const Tensor x0 = gx.floor(), y0 = gy.floor();
    const Tensor wx = gx - x0, wy = gy - y0;
    const Tensor ix0 = x0.to(torch::kInt64), iy0 = y0.to(torch::kInt64);
    const Tensor ix1 = (ix0 + 1).clamp_max(w - 1), iy1 = (iy0 + 1).clamp_max(h - 1);
    const Tensor flat = input.reshape({n, c, h * w});
    auto at = [&](const Tensor& iy, const Tensor& ix) { return flat.gather(2, (iy * w + ix).expand({n, c, ho * wo})); };
    const Tensor out = at(iy0, ix0) * ((1 - wx) * (1 - wy)) + at(iy0, ix1) * (wx * (1 - wy)) + at(iy1, ix0) * ((1 - wx) * wy) +
                       at(iy1, ix1) * (wx * wy);
    return out.reshape({n, c, ho, wo});
}

}  // namespace

AugmentSpec AugmentSpec::preset(AugmentPipeline p) {
    AugmentSpec s;
    using P = AugmentPipeline;
    // The reference's presets: bg is blit + geom, bgc adds color.
    const bool blit = p == P::blit || p == P::bg || p == P::bgc;
    const bool geom = p == P::geom || p == P::bg || p == P::bgc;
    const bool color = p == P::color || p == P::bgc;
    if (blit) s.xflip = s.rotate90 = s.xint = 1;
    if (geom) s.scale = s.rotate = s.aniso = s.xfrac = 1;
    if (color) s.brightness = s.contrast = s.lumaflip = s.hue = s.saturation = 1;
    return s;
}

AugmentPipe::AugmentPipe(const AugmentSpec& spec) : spec_(spec) {}

Tensor AugmentPipe::operator()(const Tensor& images, double p) const {
    if (p <= 0) return images;
    const int64_t n = images.size(0), c = images.size(1), h = images.size(2), w = images.size(3);
    const auto fo = torch::TensorOptions().dtype(torch::kFloat32).device(images.device());
    Tensor x = images;

    // Geometric transformations as one inverse matrix (output pixel -> input pixel), about the centre.
    Tensor g = eye(n, 3, fo);
    bool geometric = false;
    if (spec_.xflip > 0) {
        Tensor i = masked(torch::randint(2, {n}, fo), p * spec_.xflip, 0);
        g = g.bmm(scale2d(1 - 2 * i, torch::ones_like(i)));
        geometric = true;
    }
    if (spec_.rotate90 > 0) {
        Tensor i = masked(torch::randint(4, {n}, fo), p * spec_.rotate90, 0);
        g = g.bmm(rotate2d(-kPi / 2 * i));
        geometric = true;
    }
    if (spec_.xint > 0) {
        Tensor t = torch::rand({n, 2}, fo) * 2 - 1;
        const Tensor keep = torch::rand({n, 1}, fo) < p * spec_.xint;
        t = torch::where(keep, t, torch::zeros_like(t)) * 0.125;
        g = g.bmm(translate2d(-(t.select(1, 0) * w).round(), -(t.select(1, 1) * h).round()));
        geometric = true;
    }
    if (spec_.scale > 0) {
        Tensor s = masked(torch::exp2(torch::randn({n}, fo) * 0.2), p * spec_.scale, 1);
        g = g.bmm(scale2d(1 / s, 1 / s));
        geometric = true;
    }
    const double p_rot = 1 - std::sqrt(std::max(1 - p * spec_.rotate, 0.0));
    if (spec_.rotate > 0) {
        Tensor theta = masked((torch::rand({n}, fo) * 2 - 1) * kPi, p_rot, 0);
        g = g.bmm(rotate2d(-theta));
        geometric = true;
    }
    if (spec_.aniso > 0) {
        Tensor s = masked(torch::exp2(torch::randn({n}, fo) * 0.2), p * spec_.aniso, 1);
        g = g.bmm(scale2d(1 / s, s));
    }
    if (spec_.rotate > 0) {
        Tensor theta = masked((torch::rand({n}, fo) * 2 - 1) * kPi, p_rot, 0);
        g = g.bmm(rotate2d(-theta));
    }
    if (spec_.xfrac > 0) {
        Tensor t = torch::randn({n, 2}, fo) * 0.125;
        const Tensor keep = torch::rand({n, 1}, fo) < p * spec_.xfrac;
        t = torch::where(keep, t, torch::zeros_like(t));
        g = g.bmm(translate2d(-t.select(1, 0) * w, -t.select(1, 1) * h));
    }
    if (geometric) {
        // Only resample the images whose matrix is not the identity.
        const Tensor moved = (g - torch::eye(3, fo)).abs().amax({1, 2}) > 1e-6;
        if (moved.any().item<bool>()) {
            // Pixel units -> normalised coordinates for affine_grid (align_corners = false).
            const Tensor to_norm = scale2d(torch::full({n}, 2.0 / w, fo), torch::full({n}, 2.0 / h, fo));
            const Tensor from_norm = scale2d(torch::full({n}, w / 2.0, fo), torch::full({n}, h / 2.0, fo));
            const Tensor theta = to_norm.bmm(g).bmm(from_norm).narrow(1, 0, 2);
            // 2x supersampling keeps the bilinear resampling from aliasing.
            static const std::vector<float> taps{1, 3, 3, 1};
            const Tensor f = ops::setup_filter(taps).to(images.device());
            Tensor up = ops::upsample2d(x.to(torch::kFloat32), f);
            const Tensor grid = torch::nn::functional::affine_grid(theta, {n, c, h * 2, w * 2}, false);
            Tensor warped = grid_sample_reflect(up, grid);
            warped = ops::downsample2d(warped, f);
            x = torch::where(moved.view({n, 1, 1, 1}), warped, x.to(torch::kFloat32));
        }
    }

    // Colour transformations as one 4x4 matrix on (r, g, b, 1).
    const bool color = spec_.brightness > 0 || spec_.contrast > 0 || spec_.lumaflip > 0 || spec_.hue > 0 || spec_.saturation > 0;
    if (color) {
        Tensor m = eye(n, 4, fo);
        const Tensor v = torch::tensor({1.0f, 1.0f, 1.0f, 0.0f}, fo) / std::sqrt(3.0);
        const Tensor vv = torch::outer(v, v).unsqueeze(0);
        const Tensor i4 = torch::eye(4, fo).unsqueeze(0);
        if (spec_.brightness > 0) {
            Tensor b = masked(torch::randn({n}, fo) * 0.2, p * spec_.brightness, 0);
            Tensor t = eye(n, 4, fo);
            for (int k = 0; k < 3; ++k) t.select(1, k).select(1, 3).copy_(b);
            m = t.bmm(m);
        }
        if (spec_.contrast > 0) {
            Tensor s = masked(torch::exp2(torch::randn({n}, fo) * 0.5), p * spec_.contrast, 1);
            Tensor t = eye(n, 4, fo);
            for (int k = 0; k < 3; ++k) t.select(1, k).select(1, k).copy_(s);
            m = t.bmm(m);
        }
        if (spec_.lumaflip > 0) {
            Tensor i = masked(torch::randint(2, {n}, fo), p * spec_.lumaflip, 0);
            m = (i4 - 2 * vv * i.view({n, 1, 1})).bmm(m);
        }
        if (spec_.hue > 0 && c > 1) {
            // Rotation about the luma axis (Rodrigues).
            Tensor theta = masked((torch::rand({n}, fo) * 2 - 1) * kPi, p * spec_.hue, 0).view({n, 1, 1});
            const float a = float(1 / std::sqrt(3.0));
            const Tensor k = torch::tensor({0.0f, -a, a, 0.0f, a, 0.0f, -a, 0.0f, -a, a, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f}, fo).view({1, 4, 4});
            const Tensor vv3 = vv * torch::tensor({1.0f, 1.0f, 1.0f, 0.0f}, fo).view({1, 4, 1});
            Tensor r = i4 + theta.sin() * k + (1 - theta.cos()) * (vv3 - (i4 - torch::diag(torch::tensor({0.0f, 0.0f, 0.0f, 1.0f}, fo)).unsqueeze(0)));
            m = r.bmm(m);
        }
        if (spec_.saturation > 0 && c > 1) {
            Tensor s = masked(torch::exp2(torch::randn({n}, fo)), p * spec_.saturation, 1).view({n, 1, 1});
            m = (vv + (i4 - vv) * s).bmm(m);
        }
        Tensor flat = x.to(torch::kFloat32).reshape({n, c, h * w});
        if (c == 3) {
            flat = m.narrow(1, 0, 3).narrow(2, 0, 3).bmm(flat) + m.narrow(1, 0, 3).narrow(2, 3, 1);
        } else if (c == 1) {
            const Tensor m1 = m.narrow(1, 0, 3).mean(1, true);
            flat = flat * m1.narrow(2, 0, 3).sum(2, true) + m1.narrow(2, 3, 1);
        }
        x = flat.reshape({n, c, h, w});
    }
    return x.to(images.scalar_type());
}

}  // namespace latentkit::training
