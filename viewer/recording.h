#pragma once
// Recordings of a live performance: the audio position and, at each frame where something changed, the
// script lines that set what is shown. `latentkit morph --replay` renders them again, with the sound.
#include <string>
#include <vector>

#include "viewer_state.h"

namespace latentkit::viewer {

/// The lines that changed at one moment.
struct RecordingEvent {
    double time = 0;                 ///< seconds into the audio (or since the recording began)
    std::vector<std::string> lines;  ///< script lines (state_lines), applied in order
};

/// A recording file (JSON, "format": "latentkit-recording").
struct Recording {
    std::string model;               ///< the model shown
    std::string audio;               ///< the sound file ("" : the input device or none, replayed silent)
    double audio_start = 0;          ///< seconds into `audio` where time 0 is
    double duration = 0;             ///< seconds recorded
    std::vector<DirectionSlider> sliders;  ///< the sliders' directions (vectors included), in order
    std::vector<RecordingEvent> events;
};

/// Writes a recording atomically.
void save_recording(const std::string& path, const Recording& recording);
/// Reads a recording; throws IoError / ArgumentError naming the file and the problem.
Recording load_recording(const std::string& path);

/// Records a live session: setup from the sliders at the start, then the changed lines of each frame.
class Recorder {
public:
    /// Starts recording the state `s` at time `time` of a clock that never goes back; the sound is `audio`
    /// from `audio_start` seconds on.
    /// Returns a note when something shown cannot be replayed (a projected latent), else "".
    std::string start(const std::string& path, const ViewerState& s, const std::string& audio, double audio_start, double time);
    /// Adds the lines that changed since the last frame (nothing when not recording).
    void frame(const ViewerState& s, double time);
    /// Writes the file and stops; returns its path ("" when not recording).
    std::string stop(double time);
    bool active() const { return !path_.empty(); }

private:
    std::string path_;
    Recording rec_;
    double origin_ = 0;
    std::vector<std::string> last_;
};

}  // namespace latentkit::viewer
