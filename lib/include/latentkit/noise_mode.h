#pragma once
// NoiseMode on its own, for code that names it without LibTorch (networks.h has the networks).
#include "latentkit/option_names.h"

namespace latentkit {

/// How a StyleGAN2 synthesis network's per-pixel noise inputs are fed (StyleGAN3 has none).
enum class NoiseMode {
    random,    ///< fresh Gaussian noise every call
    constant,  ///< the stored noise_const buffers (reproducible; the reference generate.py default)
    none,      ///< no noise
    custom     ///< the tensors in SynthesisOptions::noise
};
template <>
struct OptionNames<NoiseMode> {
    static constexpr const char* names[] = {"random", "const", "none", "custom"};
};

}  // namespace latentkit
