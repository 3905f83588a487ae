#pragma once
// Differentiable augmentation of everything the discriminator sees (ADA, the reference `bgc` pipeline).
#include <torch/torch.h>

#include <optional>
#include <string>

#include "latentkit/train.h"

namespace latentkit::training {

/// Which transformations run (probability multipliers), with the reference's ranges.
struct AugmentSpec {
    double xflip = 0, rotate90 = 0, xint = 0, scale = 0, rotate = 0, aniso = 0, xfrac = 0;
    double brightness = 0, contrast = 0, lumaflip = 0, hue = 0, saturation = 0;
    double xint_max = 0.125, scale_std = 0.2, rotate_max = 1, aniso_std = 0.2, xfrac_std = 0.125;
    double brightness_std = 0.2, contrast_std = 0.5, hue_max = 1, saturation_std = 1;
    /// "blit", "geom", "color", "bg" or "bgc"; throws ArgumentError otherwise.
    static AugmentSpec preset(AugmentPipeline pipeline);
};

/// Applies random transformations, each with probability p (times its strength), to a batch [N, C, H, W]
/// in [-1, 1], as the reference's AugmentPipe: the same draws in the same order from the default
/// generator, so that a seed gives the reference's output. Gradients flow to the input (twice).
class AugmentPipe {
public:
    explicit AugmentPipe(const AugmentSpec& spec);
    /// `debug_percentile` (the reference's debugging knob): every enabled transform takes the value at
    /// that percentile of its distribution, for every image, whatever p.
    torch::Tensor operator()(const torch::Tensor& images, double p, std::optional<double> debug_percentile = std::nullopt) const;

private:
    AugmentSpec spec_;
};

}  // namespace latentkit::training
