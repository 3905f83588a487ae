#include "latentkit/blend.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "latentkit/error.h"
#include "latentkit/networks.h"
#include "torch_errors.h"

namespace latentkit {

double blend_weight(int resolution, const BlendOptions& o) {
    const double l = std::log2(static_cast<double>(resolution)), r = std::log2(static_cast<double>(o.from_resolution));
    if (o.width <= 0) return l >= r ? 1.0 : 0.0;
    return std::clamp((l - r) / o.width + 0.5, 0.0, 1.0);
}

namespace {
// The resolution of a StyleGAN2 synthesis tensor ("synthesis.b64.conv0.weight" -> 64), 0 for others.
int block_resolution(const std::string& name) {
    const std::string prefix = "synthesis.b";
    if (name.rfind(prefix, 0) != 0) return 0;
    const size_t dot = name.find('.', prefix.size());
    return std::stoi(name.substr(prefix.size(), dot - prefix.size()));
}

void check_blendable(const Model& base, const Model& detail, const BlendOptions& o) {
    const auto& a = base.generator()->config;
    const auto& b = detail.generator()->config;
    if (a.family != GeneratorFamily::stylegan2 || b.family != GeneratorFamily::stylegan2)
        throw ArgumentError("blend: StyleGAN3 models are not supported (their layers have no resolution blocks to swap)");
    if (a.to_kwargs_json() != b.to_kwargs_json())
        throw ArgumentError(fmt::format("blend: {} and {} differ in architecture or shape ({}x{} {}, {}x{} {}); blend a model with a fine-tuned copy of itself",
                                        base.path, detail.path, a.img_resolution, a.img_resolution, a.family_name(), b.img_resolution,
                                        b.img_resolution, b.family_name()));
    if (o.from_resolution < 1) throw ArgumentError(fmt::format("blend: from resolution {} must be positive", o.from_resolution));
    if (!(o.width >= 0) || !std::isfinite(o.width)) throw ArgumentError("blend: the transition width must be a finite number of at least 0");
}
}  // namespace

Model blend_models(const Model& base, const Model& detail, const BlendOptions& options) {
    check_blendable(base, detail, options);
    return detail::guard_torch("blend", [&]() {
        const auto G = clone_generator(*base.generator());
        auto d_params = detail.generator()->named_parameters(true);
        auto d_buffers = detail.generator()->named_buffers(true);
        torch::NoGradGuard no_grad;
        auto mix = [&](const std::string& name, torch::Tensor& t, const torch::Tensor& other) {
            const bool mapping = name.rfind("mapping.", 0) == 0;
            const double w = mapping ? (options.mapping == BlendMapping::detail ? 1.0 : 0.0)
                                     : block_resolution(name) > 0 ? blend_weight(block_resolution(name), options) : 0.0;
            if (w > 0) t.copy_(t * (1.0 - w) + other.to(t.device(), t.scalar_type()) * w);
        };
        for (auto& p : G->named_parameters(true)) mix(p.key(), p.value(), d_params[p.key()]);
        for (auto& b : G->named_buffers(true)) mix(b.key(), b.value(), d_buffers[b.key()]);
        Model out;
        out.path = base.path;
        out.format = "latentkit blend";
        out.G_ema = G;
        out.notes.push_back(fmt::format("blend of {} (below {}x{}) and {} (from there up), transition width {}, mapping of the {} model", base.path,
                                        options.from_resolution, options.from_resolution, detail.path, options.width,
                                        option_name(options.mapping)));
        return out;
    });
}

}  // namespace latentkit
