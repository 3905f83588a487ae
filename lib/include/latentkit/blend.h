#pragma once
// Model blending (layer swapping): the coarse synthesis layers of one model with the fine layers of
// another of the same architecture, as "toonified" models are made.
#include <string>

#include "latentkit/model_io.h"
#include "latentkit/option_names.h"

namespace latentkit {

/// Which model's mapping network the blend keeps.
enum class BlendMapping { base, detail };
template <>
struct OptionNames<BlendMapping> {
    static constexpr const char* names[] = {"base", "detail"};
};

/// How to blend.
struct BlendOptions {
    int from_resolution = 32;  ///< synthesis blocks from this resolution up come from the detail model
    /// Width of a smooth transition, in resolutions (octaves): a block at log2 resolution l takes
    /// clamp((l - log2(from_resolution)) / width + 0.5, 0, 1) of the detail model; 0: a hard switch.
    double width = 0;
    BlendMapping mapping = BlendMapping::base;
};

/// The share of the detail model in the synthesis block at `resolution` (0: all base, 1: all detail).
double blend_weight(int resolution, const BlendOptions& options);

/// G_ema of `base` with its synthesis blocks (weights, biases, noise buffers) mixed with `detail`'s
/// by blend_weight, and the mapping network (with w_avg) of the model `options.mapping` names. The
/// result holds only that generator. Throws ArgumentError when the models differ in architecture or
/// shape, are StyleGAN3 (not supported), or the options are out of range.
Model blend_models(const Model& base, const Model& detail, const BlendOptions& options);

}  // namespace latentkit
