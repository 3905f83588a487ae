#pragma once
// Differentiable augmentation of everything the discriminator sees (ADA, the reference `bgc` pipeline).
#include <torch/torch.h>

#include <string>

#include "latentkit/train.h"

namespace latentkit::training {

/// Which transformations run, with the reference strengths.
struct AugmentSpec {
    double xflip = 0, rotate90 = 0, xint = 0, scale = 0, rotate = 0, aniso = 0, xfrac = 0;
    double brightness = 0, contrast = 0, lumaflip = 0, hue = 0, saturation = 0;
    /// "blit", "geom", "color", "bg" or "bgc"; throws ArgumentError otherwise.
    static AugmentSpec preset(AugmentPipeline pipeline);
};

/// Applies random transformations, each with probability p (times its strength), to a batch [N, C, H, W]
/// in [-1, 1]. Gradients flow to the input. Random draws use the default generator.
class AugmentPipe {
public:
    explicit AugmentPipe(const AugmentSpec& spec);
    torch::Tensor operator()(const torch::Tensor& images, double p) const;

private:
    AugmentSpec spec_;
};

}  // namespace latentkit::training
