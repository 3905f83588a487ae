// The reference's ADA pipeline (training/augment.py): the same random draws in the same order, the
// same matrices, and the same execution of geometric transforms (reflect padding by the transform's
// margin, 2x upsampling with the sym6 wavelet filter, bilinear sampling, and the filter's exact way
// back down), so that flips, 90-degree rotations and integer shifts move pixels losslessly.
#include "train/augment.h"

#include <fmt/format.h>

#include <cmath>
#include <vector>

#include "latentkit/error.h"
#include "ops.h"

namespace latentkit::training {
namespace {

using torch::Tensor;
constexpr double kPi = 3.14159265358979323846;

// sym6's low-pass decomposition filter (PyWavelets' coefficients, as the reference lists them).
const std::vector<float> kSym6{0.015404109327027373f, 0.0034907120842174702f, -0.11799011114819057f, -0.048311742585633f,
                               0.4910559419267466f,   0.787641141030194f,     0.3379294217276218f,   -0.07263752278646252f,
                               -0.021060292512300564f, 0.04472490177066578f,  0.0017677118642428036f, -0.007800708325034148f};

// Batched 3x3 / 4x4 matrices from per-sample values [N].
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
    m.select(1, 0).select(1, 1).copy_((-theta).sin());
    m.select(1, 1).select(1, 0).copy_(theta.sin());
    m.select(1, 1).select(1, 1).copy_(theta.cos());
    return m;
}
Tensor constant_matrix(int64_t n, const torch::TensorOptions& o, std::vector<float> rows) {
    const int64_t d = rows.size() == 9 ? 3 : 4;
    return torch::tensor(rows, o).view({1, d, d}).repeat({n, 1, 1});
}
Tensor scale2d(int64_t n, const torch::TensorOptions& o, float sx, float sy) { return constant_matrix(n, o, {sx, 0, 0, 0, sy, 0, 0, 0, 1}); }
Tensor translate2d(int64_t n, const torch::TensorOptions& o, float tx, float ty) { return constant_matrix(n, o, {1, 0, tx, 0, 1, ty, 0, 0, 1}); }

// The per-sample parameter draws of one transform: `value` (already drawn), kept where a second draw
// is below `prob`, else `fallback`; a debug percentile replaces the value for every sample after the
// draws (so that the random stream advances as without it).
class Draws {
public:
    Draws(int64_t n, const torch::TensorOptions& o, double p, std::optional<double> pct)
        : n_(n), o_(o), p_(static_cast<float>(p)), pct_(pct ? torch::full({}, *pct, o) : Tensor()) {}
    Tensor rand(std::vector<int64_t> shape) const { return torch::rand(shape, o_); }
    Tensor randn(std::vector<int64_t> shape) const { return torch::randn(shape, o_); }
    // where(rand(shape_of_keep) < strength * p, value, fallback)
    Tensor keep(const Tensor& value, double strength, double fallback, std::vector<int64_t> keep_shape) const {
        const Tensor k = torch::rand(keep_shape, o_) < static_cast<float>(strength) * p_;
        return torch::where(k, value, torch::full_like(value, fallback));
    }
    Tensor keep(const Tensor& value, const Tensor& prob, double fallback) const {
        return torch::where(torch::rand(value.sizes(), o_) < prob, value, torch::full_like(value, fallback));
    }
    bool debug() const { return pct_.defined(); }
    const Tensor& pct() const { return pct_; }
    // The debug value as a tensor shaped like `like`.
    Tensor fixed(const Tensor& like, const Tensor& v) const { return torch::full_like(like, 0) + v; }
    int64_t n() const { return n_; }
    float p() const { return p_; }

private:
    int64_t n_;
    torch::TensorOptions o_;
    float p_;
    Tensor pct_;
};

// The inverse geometric transform (output pixel -> input pixel, about the centre), G_inv.
Tensor geometric_matrix(const AugmentSpec& s, const Draws& d, int64_t w, int64_t h, const torch::TensorOptions& fo) {
    const int64_t n = d.n();
    Tensor g = eye(n, 3, fo);
    auto erf_std = [&](double std) { return (d.pct() * 2 - 1).erfinv() * std; };
    if (s.xflip > 0) {
        Tensor i = d.keep((d.rand({n}) * 2).floor(), s.xflip, 0, {n});
        if (d.debug()) i = d.fixed(i, (d.pct() * 2).floor());
        g = g.bmm(scale2d(1 - 2 * i, torch::ones_like(i)));
    }
    if (s.rotate90 > 0) {
        Tensor i = d.keep((d.rand({n}) * 4).floor(), s.rotate90, 0, {n});
        if (d.debug()) i = d.fixed(i, (d.pct() * 4).floor());
        g = g.bmm(rotate2d(kPi / 2 * i));
    }
    if (s.xint > 0) {
        Tensor t = d.keep((d.rand({n, 2}) * 2 - 1) * s.xint_max, s.xint, 0, {n, 1});
        if (d.debug()) t = d.fixed(t, (d.pct() * 2 - 1) * s.xint_max);
        g = g.bmm(translate2d(-(t.select(1, 0) * w).round(), -(t.select(1, 1) * h).round()));
    }
    if (s.scale > 0) {
        Tensor v = d.keep(torch::exp2(d.randn({n}) * s.scale_std), s.scale, 1, {n});
        if (d.debug()) v = d.fixed(v, torch::exp2(erf_std(s.scale_std)));
        g = g.bmm(scale2d(1 / v, 1 / v));
    }
    // P(pre or post rotation) = rotate * p.
    const Tensor p_rot = 1 - (1 - static_cast<float>(s.rotate) * torch::full({}, d.p(), fo)).clamp(0, 1).sqrt();
    if (s.rotate > 0) {
        Tensor theta = d.keep((d.rand({n}) * 2 - 1) * kPi * s.rotate_max, p_rot, 0);
        if (d.debug()) theta = d.fixed(theta, (d.pct() * 2 - 1) * kPi * s.rotate_max);
        g = g.bmm(rotate2d(theta));
    }
    if (s.aniso > 0) {
        Tensor v = d.keep(torch::exp2(d.randn({n}) * s.aniso_std), s.aniso, 1, {n});
        if (d.debug()) v = d.fixed(v, torch::exp2(erf_std(s.aniso_std)));
        g = g.bmm(scale2d(1 / v, 1 / (1 / v)));
    }
    if (s.rotate > 0) {
        Tensor theta = d.keep((d.rand({n}) * 2 - 1) * kPi * s.rotate_max, p_rot, 0);
        if (d.debug()) theta = torch::zeros_like(theta);
        g = g.bmm(rotate2d(theta));
    }
    if (s.xfrac > 0) {
        Tensor t = d.keep(d.randn({n, 2}) * s.xfrac_std, s.xfrac, 0, {n, 1});
        if (d.debug()) t = d.fixed(t, erf_std(s.xfrac_std));
        g = g.bmm(translate2d(-t.select(1, 0) * w, -t.select(1, 1) * h));
    }
    return g;
}

// Bilinear sampling with zero padding (align_corners = false, grid_sample's defaults) built from
// gather, so that it can be differentiated twice with respect to the input (R1 through the
// augmentations needs it; LibTorch's grid_sampler has no double backward). The grid carries no gradient.
Tensor grid_sample_zeros(const Tensor& input, const Tensor& grid) {
    const int64_t n = input.size(0), c = input.size(1), h = input.size(2), w = input.size(3);
    const int64_t ho = grid.size(1), wo = grid.size(2);
    const Tensor gx = (((grid.select(3, 0) + 1) * w - 1) / 2).reshape({n, 1, ho * wo});
    const Tensor gy = (((grid.select(3, 1) + 1) * h - 1) / 2).reshape({n, 1, ho * wo});
    const Tensor x0 = gx.floor(), y0 = gy.floor();
    const Tensor wx = gx - x0, wy = gy - y0;
    const Tensor flat = input.reshape({n, c, h * w});
    auto at = [&](const Tensor& y, const Tensor& x, const Tensor& weight) {
        const Tensor inside = (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1);
        const Tensor idx = (y.clamp(0, h - 1) * w + x.clamp(0, w - 1)).to(torch::kInt64);
        return flat.gather(2, idx.expand({n, c, ho * wo})) * (weight * inside.to(weight.dtype()));
    };
    const Tensor out = at(y0, x0, (1 - wx) * (1 - wy)) + at(y0, x0 + 1, wx * (1 - wy)) + at(y0 + 1, x0, (1 - wx) * wy) + at(y0 + 1, x0 + 1, wx * wy);
    return out.reshape({n, c, ho, wo});
}

// ops::upsample2d with a 1-D filter (zero insertion, padding ((fw + 1) / 2, (fw - 2) / 2), the flipped
// filter times 2 per axis) along one axis of length `len`, as a [2 len, len] matrix: two matrix products
// do what two depthwise convolutions over the zero-filled image do, several times faster on the CPU.
Tensor upsample_operator(int64_t len, const Tensor& f) {
    const int64_t fw = f.size(0), p0 = (fw + 1) / 2;
    const Tensor g = f.flip(0) * 2;
    const Tensor k = 2 * torch::arange(len).unsqueeze(0) + p0 - torch::arange(2 * len).unsqueeze(1);  // tap of input i at output j
    return torch::where((k >= 0) & (k < fw), g.index({k.clamp(0, fw - 1)}), torch::zeros({}, g.options()));
}

Tensor upsample2x(const Tensor& x, const Tensor& f) {
    const Tensor rows = upsample_operator(x.size(2), f).to(x.options()), cols = upsample_operator(x.size(3), f).to(x.options());
    return torch::matmul(rows, torch::matmul(x, cols.t()));
}

// Executes G_inv on the images as the reference does.
Tensor apply_geometric(const Tensor& images, Tensor g, const torch::TensorOptions& fo) {
    const int64_t n = images.size(0), c = images.size(1), h = images.size(2), w = images.size(3);
    const Tensor f = ops::setup_filter(kSym6).to(images.device());
    const int64_t taps = static_cast<int64_t>(kSym6.size()), hz_pad = taps / 4;
    // Padding: how far the transformed corners reach outside, plus the filter's support.
    const double cx = (w - 1) / 2.0, cy = (h - 1) / 2.0;
    const Tensor corners = torch::tensor({-cx, -cy, 1.0, cx, -cy, 1.0, cx, cy, 1.0, -cx, cy, 1.0}, fo).view({4, 3});
    Tensor margin = g.matmul(corners.t()).narrow(1, 0, 2).permute({1, 0, 2}).flatten(1);  // [xy, batch * corner]
    margin = torch::cat({-margin, margin}).amax(1);                                         // [x0, y0, x1, y1]
    margin = margin + torch::tensor({float(hz_pad * 2 - cx), float(hz_pad * 2 - cy), float(hz_pad * 2 - cx), float(hz_pad * 2 - cy)}, fo);
    margin = margin.clamp_min(0).minimum(torch::tensor({float(w - 1), float(h - 1), float(w - 1), float(h - 1)}, fo));
    const Tensor m = margin.ceil().to(torch::kInt32).to(torch::kCPU);  // the one host read: the padded size
    const int64_t mx0 = m[0].item<int>(), my0 = m[1].item<int>(), mx1 = m[2].item<int>(), my1 = m[3].item<int>();
    namespace F = torch::nn::functional;
    Tensor x = F::pad(images, F::PadFuncOptions({mx0, mx1, my0, my1}).mode(torch::kReflect));
    g = translate2d(n, fo, float(mx0 - mx1) / 2, float(my0 - my1) / 2).bmm(g);
    x = upsample2x(x, f);
    g = scale2d(n, fo, 2, 2).bmm(g).bmm(scale2d(n, fo, 0.5f, 0.5f));
    g = translate2d(n, fo, -0.5f, -0.5f).bmm(g).bmm(translate2d(n, fo, 0.5f, 0.5f));
    const int64_t oh = (h + hz_pad * 2) * 2, ow = (w + hz_pad * 2) * 2;
    g = scale2d(n, fo, float(2.0 / x.size(3)), float(2.0 / x.size(2))).bmm(g).bmm(scale2d(n, fo, float(1 / (2.0 / ow)), float(1 / (2.0 / oh))));
    const Tensor grid = F::affine_grid(g.narrow(1, 0, 2), {n, c, oh, ow}, false);
    x = grid_sample_zeros(x, grid);
    const int64_t pad = -hz_pad * 2;
    return ops::upfirdn2d(x, f, 1, 2, {pad + (taps - 1) / 2, pad + (taps - 2) / 2, pad + (taps - 1) / 2, pad + (taps - 2) / 2}, true);
}

// The colour transform C (colour in -> colour out) on homogeneous (r, g, b, 1).
Tensor color_matrix(const AugmentSpec& s, const Draws& d, int64_t channels, const torch::TensorOptions& fo) {
    const int64_t n = d.n();
    auto erf_std = [&](double std) { return (d.pct() * 2 - 1).erfinv() * std; };
    Tensor m = eye(n, 4, fo);
    const Tensor v = torch::tensor({1.0f, 1.0f, 1.0f, 0.0f}, fo) / std::sqrt(3.0);  // luma axis
    const Tensor vv = torch::outer(v, v).unsqueeze(0);
    const Tensor i4 = torch::eye(4, fo).unsqueeze(0);
    if (s.brightness > 0) {
        Tensor b = d.keep(d.randn({n}) * s.brightness_std, s.brightness, 0, {n});
        if (d.debug()) b = d.fixed(b, erf_std(s.brightness_std));
        Tensor t = eye(n, 4, fo);
        for (int k = 0; k < 3; ++k) t.select(1, k).select(1, 3).copy_(b);
        m = t.bmm(m);
    }
    if (s.contrast > 0) {
        Tensor v2 = d.keep(torch::exp2(d.randn({n}) * s.contrast_std), s.contrast, 1, {n});
        if (d.debug()) v2 = d.fixed(v2, torch::exp2(erf_std(s.contrast_std)));
        Tensor t = eye(n, 4, fo);
        for (int k = 0; k < 3; ++k) t.select(1, k).select(1, k).copy_(v2);
        m = t.bmm(m);
    }
    if (s.lumaflip > 0) {
        Tensor i = d.keep((d.rand({n, 1, 1}) * 2).floor(), s.lumaflip, 0, {n, 1, 1});
        if (d.debug()) i = d.fixed(i, (d.pct() * 2).floor());
        m = (i4 - 2 * vv * i).bmm(m);  // Householder reflection
    }
    if (s.hue > 0 && channels > 1) {
        Tensor theta = d.keep((d.rand({n}) * 2 - 1) * kPi * s.hue_max, s.hue, 0, {n});
        if (d.debug()) theta = d.fixed(theta, (d.pct() * 2 - 1) * kPi * s.hue_max);
        // Rotation about the luma axis (Rodrigues: I + sin K + (1 - cos) K^2, K^2 = vv^T - I in 3-D).
        theta = theta.view({n, 1, 1});
        const float a = float(1 / std::sqrt(3.0));
        const Tensor k = torch::tensor({0.0f, -a, a, 0.0f, a, 0.0f, -a, 0.0f, -a, a, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f}, fo).view({1, 4, 4});
        const Tensor i3 = torch::diag(torch::tensor({1.0f, 1.0f, 1.0f, 0.0f}, fo)).unsqueeze(0);
        m = (i4 + theta.sin() * k + (1 - theta.cos()) * (vv - i3)).bmm(m);
    }
    if (s.saturation > 0 && channels > 1) {
        Tensor v2 = d.keep(torch::exp2(d.randn({n, 1, 1}) * s.saturation_std), s.saturation, 1, {n, 1, 1});
        if (d.debug()) v2 = d.fixed(v2, torch::exp2(erf_std(s.saturation_std)));
        m = (vv + (i4 - vv) * v2).bmm(m);
    }
    return m;
}

Tensor apply_color(const Tensor& images, const Tensor& m) {
    const int64_t n = images.size(0), c = images.size(1), h = images.size(2), w = images.size(3);
    Tensor flat = images.reshape({n, c, h * w});
    if (c == 3) {
        flat = m.narrow(1, 0, 3).narrow(2, 0, 3).bmm(flat) + m.narrow(1, 0, 3).narrow(2, 3, 1);
    } else if (c == 1) {
        const Tensor m1 = m.narrow(1, 0, 3).mean(1, true);
        flat = flat * m1.narrow(2, 0, 3).sum(2, true) + m1.narrow(2, 3, 1);
    }
    return flat.reshape({n, c, h, w});
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

Tensor AugmentPipe::operator()(const Tensor& images, double p, std::optional<double> debug_percentile) const {
    if (p <= 0 && !debug_percentile) return images;
    const int64_t n = images.size(0), c = images.size(1), h = images.size(2), w = images.size(3);
    if (c != 1 && c != 3) throw ArgumentError(fmt::format("augmentation needs RGB or gray images, not {} channels", c));
    const auto fo = torch::TensorOptions().dtype(torch::kFloat32).device(images.device());
    const Draws draws(n, fo, p, debug_percentile);
    Tensor x = images.to(torch::kFloat32);
    const AugmentSpec& s = spec_;
    // As the reference, a pipeline with geometric transforms resamples every image (those that stay in
    // place come back unchanged up to rounding): no per-batch host read decides it.
    if (s.xflip > 0 || s.rotate90 > 0 || s.xint > 0 || s.scale > 0 || s.rotate > 0 || s.aniso > 0 || s.xfrac > 0)
        x = apply_geometric(x, geometric_matrix(s, draws, w, h, fo), fo);
    if (s.brightness > 0 || s.contrast > 0 || s.lumaflip > 0 || s.hue > 0 || s.saturation > 0)
        x = apply_color(x, color_matrix(s, draws, c, fo));
    return x.to(images.scalar_type());
}

}  // namespace latentkit::training
