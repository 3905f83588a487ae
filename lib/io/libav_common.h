#pragma once
// Internal: what the libav-backed readers and writers (video and audio) share.
extern "C" {
#include <libavutil/error.h>
#include <libavutil/log.h>
}

#include <mutex>
#include <string>

namespace latentkit::io {

/// libav's text for an error code.
inline std::string av_error(int code) {
    char buf[AV_ERROR_MAX_STRING_SIZE] = {0};
    av_strerror(code, buf, sizeof(buf));
    return buf;
}

/// Silences libav's own logging: every failure becomes an exception carrying its text.
inline void quiet_libav() {
    static std::once_flag once;
    std::call_once(once, [] { av_log_set_level(AV_LOG_QUIET); });
}

}  // namespace latentkit::io
