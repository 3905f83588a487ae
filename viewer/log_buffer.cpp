// The viewer's log callback.
#include "log_buffer.h"

#include <cstdio>

#include "latentkit/log.h"
#include "viewer_state.h"

namespace latentkit::viewer {

LogBuffer::LogBuffer() {
    set_log_callback([this](LogLevel level, const std::string& text) {
        if (level == LogLevel::debug) return;
        const char* name = level == LogLevel::info ? "info" : level == LogLevel::warn ? "warning" : "error";
        if (level != LogLevel::info) std::fprintf(stderr, "latentkit-viewer: %s: %s\n", name, text.c_str());
        std::lock_guard<std::mutex> lock(mutex_);
        lines_.push_back({name, text});
        if (lines_.size() > kLogLines) lines_.erase(lines_.begin(), lines_.end() - kLogLines);
    });
}

LogBuffer::~LogBuffer() { set_log_callback(nullptr); }

std::vector<LogLine> LogBuffer::take() {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<LogLine> out;
    out.swap(lines_);
    return out;
}

}  // namespace latentkit::viewer
