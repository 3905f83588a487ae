#pragma once
// The model used when none is named: the emoji model that ships with latentkit, or the user's own
// default set through the LATENTKIT_MODEL environment variable.
#include <string>

namespace latentkit::io {

/// A default model and where it was found.
struct DefaultModel {
    std::string path;    ///< file to load
    std::string origin;  ///< "LATENTKIT_MODEL" or "bundled"
};

/// $LATENTKIT_MODEL when set, else the bundled models/emoji64.safetensors from the source tree or
/// the install prefix (share/latentkit/models); throws IoError saying where it looked when none exists.
DefaultModel default_model();

}  // namespace latentkit::io
