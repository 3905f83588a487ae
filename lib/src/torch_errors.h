#pragma once
// Internal: LibTorch's c10::Error does not leave the public API; it becomes a ComputeError saying
// which latentkit operation failed.
#include <c10/util/Exception.h>

#include <string>

#include "latentkit/error.h"

namespace latentkit::detail {

/// Runs `fn`; a c10::Error from it is rethrown as ComputeError("what: <LibTorch's first line>").
template <class F>
decltype(auto) guard_torch(const std::string& what, F&& fn) {
    try {
        return fn();
    } catch (const c10::Error& e) {
        std::string message = e.what_without_backtrace();
        if (const auto nl = message.find('\n'); nl != std::string::npos) message.resize(nl);
        throw ComputeError(what + ": " + message);
    }
}

}  // namespace latentkit::detail
