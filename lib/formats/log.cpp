#include "latentkit/log.h"

#include <mutex>

namespace latentkit {
namespace {
std::mutex g_log_mutex;
LogFn g_log_fn;
}  // namespace

void set_log_callback(LogFn fn) {
    std::lock_guard<std::mutex> lock(g_log_mutex);
    g_log_fn = std::move(fn);
}

void log_message(LogLevel level, const std::string& message) {
    std::lock_guard<std::mutex> lock(g_log_mutex);
    if (g_log_fn) g_log_fn(level, message);
}

}  // namespace latentkit
