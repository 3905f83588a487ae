#pragma once
// latentkit morph --replay: a recording of the viewer's live session rendered again, with its sound.
#include <string>

#include "latentkit/io/image.h"
#include "latentkit/io/video.h"

namespace latentkit::tools {

/// What to replay, and how to write it.
struct ReplayJob {
    std::string recording;     ///< the viewer's recording (.json)
    std::string model;         ///< "" : the model the recording names
    std::string device = "cpu";
    std::string out;
    int size = 0;              ///< pixels per side (0: the model's resolution)
    io::ResizeFilter filter = io::ResizeFilter::automatic;
    io::VideoOptions video;    ///< fps, quality; the sound is the recording's
};

/// Renders the recording at video.fps: frame f shows the state recorded at or before f / fps, up to the
/// moment the recording stopped (frames 0 .. floor(duration * fps)).
void replay_recording(const ReplayJob& job);

}  // namespace latentkit::tools
