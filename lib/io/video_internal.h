#pragma once
// Internal: the libav-backed video file sink behind open_frame_sink.
#include <memory>
#include <string>

#include "latentkit/io/video.h"

namespace latentkit::io {

/// Opens an encoder for a video file path (.mp4, .mkv, .mov, .webm, .gif).
std::unique_ptr<FrameSink> open_video_file(const std::string& path, int width, int height, const VideoOptions& options);

}  // namespace latentkit::io
