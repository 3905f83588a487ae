#pragma once
// The library's log messages for the viewer's log panel: collected from any thread, taken by the UI.
#include <mutex>
#include <vector>

namespace latentkit::viewer {

struct LogLine;

/// Installs itself as the library's log callback while it exists (info and above; warnings and
/// errors are also printed to stderr).
class LogBuffer {
public:
    LogBuffer();
    ~LogBuffer();
    LogBuffer(const LogBuffer&) = delete;
    LogBuffer& operator=(const LogBuffer&) = delete;
    /// The lines logged since the last call.
    std::vector<LogLine> take();

private:
    std::mutex mutex_;
    std::vector<LogLine> lines_;
};

}  // namespace latentkit::viewer
