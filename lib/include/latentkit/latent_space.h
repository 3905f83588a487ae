#pragma once
// LatentSpace on its own, for code that names it without LibTorch (projector.h has the projector).
#include "latentkit/option_names.h"

namespace latentkit {

/// Which latent is optimised.
enum class LatentSpace {
    w,      ///< one w, broadcast to every layer (the reference)
    w_plus  ///< one w per layer
};
template <>
struct OptionNames<LatentSpace> {
    static constexpr const char* names[] = {"w", "w+"};
};
template <>
struct OptionAliases<LatentSpace> {
    static constexpr std::pair<const char*, LatentSpace> entries[] = {{"W", LatentSpace::w}, {"W+", LatentSpace::w_plus}, {"wplus", LatentSpace::w_plus}};
};

}  // namespace latentkit
