#include "latentkit/stop.h"

#include <atomic>

#include "latentkit/error.h"

namespace latentkit {

namespace {
std::atomic<bool> g_stop{false};
static_assert(std::atomic<bool>::is_always_lock_free, "the stop flag is set from a signal handler");
}  // namespace

void request_stop() noexcept { g_stop.store(true); }

bool stop_requested() noexcept { return g_stop.load(); }

void clear_stop() noexcept { g_stop.store(false); }

void throw_if_stopped(const std::string& what) {
    if (stop_requested()) throw CancelledError(what + " interrupted");
}

}  // namespace latentkit
