#pragma once
// Progress reporting for long operations.
#include <cstdint>
#include <functional>
#include <string>

namespace latentkit {

/// One progress report: `step` of `total` done, plus a short free-form status text.
struct Progress {
    int64_t step = 0;
    int64_t total = 0;
    std::string status;
};

/// Called during long operations; return false to cancel (the operation throws CancelledError).
using ProgressFn = std::function<bool(const Progress&)>;

}  // namespace latentkit
