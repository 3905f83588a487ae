#include "latentkit/io/bundled_model.h"

#include <cstdlib>
#include <filesystem>

#include "latentkit/error.h"

namespace latentkit::io {

DefaultModel default_model() {
    if (const char* env = std::getenv("LATENTKIT_MODEL"); env && *env) {
        if (!std::filesystem::is_regular_file(env))
            throw IoError(std::string(env) + ": LATENTKIT_MODEL names no file");
        return {env, "LATENTKIT_MODEL"};
    }
    for (const char* candidate : {LATENTKIT_SOURCE_MODEL, LATENTKIT_INSTALLED_MODEL})
        if (std::filesystem::is_regular_file(candidate)) return {candidate, "bundled"};
    throw IoError(Message() << std::string("no model given and the bundled model is missing (looked for ") + LATENTKIT_SOURCE_MODEL + " and " +
                                      LATENTKIT_INSTALLED_MODEL + "): give a model file (" << field("model.path") << ")");
}

}  // namespace latentkit::io
