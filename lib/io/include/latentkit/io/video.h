#pragma once
// Video files through FFmpeg's libav* libraries: writing MP4 (H.264), WebM (VP9), GIF or a folder of
// PNG frames from images in memory, and decoding video files back to images.
#include <cstdint>
#include <memory>
#include <string>

#include "latentkit/io/audio.h"
#include "latentkit/png.h"

namespace latentkit::io {

/// Encoder settings.
struct VideoOptions {
    int fps = 30;                    ///< frames per second
    int crf = -1;                    ///< quality (lower is better); -1: 18 for H.264, 32 for VP9
    std::string preset = "medium";   ///< x264 speed preset (ultrafast ... veryslow)
    /// A sound track (.mp4, .mkv, .mov: AAC at 192 kbit/s), cut or padded with silence to the video's
    /// length at finish(), so both streams end together. Other outputs refuse it (ArgumentError).
    std::shared_ptr<const AudioClip> audio;
};

/// Receives frames of one size (RGB, 3 channels) and turns them into a file or folder.
class FrameSink {
public:
    virtual ~FrameSink() = default;
    /// Adds one frame. Throws IoError on failure.
    virtual void write(const Image8& frame) = 0;
    /// Completes the output (flush, trailer, rename into place). Without finish() nothing is left behind.
    virtual void finish() = 0;
};

/// Opens a sink chosen by `path`: `.mp4`/`.mkv`/`.mov` (H.264, yuv420p), `.webm` (VP9, yuv420p), `.gif`
/// (8-bit RGB palette), or a folder of `frame000000.png` files when `path` ends in '/' or has no extension.
/// Odd widths or heights are padded to even for yuv420p by repeating the last column / row.
/// Throws ArgumentError for an unknown extension and IoError when the output cannot be created.
std::unique_ptr<FrameSink> open_frame_sink(const std::string& path, int width, int height, const VideoOptions& options = {});

/// Whether open_frame_sink writes `path` as a folder of PNG frames (it ends in '/' or has no extension).
bool is_frame_folder(const std::string& path);

/// Runs another sink on its own thread behind a short queue, so producing frames and encoding overlap.
/// An encoder error is rethrown by the next write() or by finish().
std::unique_ptr<FrameSink> make_async(std::unique_ptr<FrameSink> sink, size_t queue_frames = 8);

/// Decodes the first video stream of a file into RGB frames.
class VideoReader {
public:
    /// Opens `path`; throws IoError naming it when it is missing or not a decodable video.
    explicit VideoReader(const std::string& path);
    ~VideoReader();
    VideoReader(const VideoReader&) = delete;
    VideoReader& operator=(const VideoReader&) = delete;
    /// Decodes the next frame into `frame` (RGB); false at the end. Throws IoError on damaged data.
    bool read(Image8& frame);
    int width() const;
    int height() const;
    /// Frame rate from the container (0 when unknown).
    double fps() const;

private:
    struct State;
    std::unique_ptr<State> s_;
};

}  // namespace latentkit::io
