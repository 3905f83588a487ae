#pragma once
// Which formulation the networks compute their resampling with (process-wide).
#include "latentkit/option_names.h"

namespace latentkit {

/// How the networks compute resampling convolutions and filters. `reference`: the reference
/// formulation (stride-2 transposed convolutions, then 2-D FIR passes over the whole image); `fast`:
/// the same function through polyphase stride-1 convolutions, separable filters and strided
/// filtering, several times faster on the CPU. Process-wide; `fast` unless LATENTKIT_IMPL=reference.
enum class Implementation { reference, fast };
template <>
struct OptionNames<Implementation> {
    static constexpr const char* names[] = {"reference", "fast"};
};
/// Chooses the implementation for everything computed afterwards (all threads).
void set_implementation(Implementation impl);
/// The implementation in use.
Implementation implementation();
/// "reference" or "fast".
const char* implementation_name(Implementation impl);

}  // namespace latentkit
