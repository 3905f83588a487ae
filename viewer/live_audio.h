#pragma once
// The viewer's live audio: a file (played on the sound card when there is one, else on a silent clock) or
// the input device, measured per frame and mapped through an AudioMap onto the state, the same mapping
// `morph --audio` renders with. It also runs the recorder.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "latentkit/audio_map.h"
#include "latentkit/io/audio.h"
#include "model_store.h"
#include "recording.h"
#include "viewer_state.h"

namespace latentkit::viewer {

class AudioPlayer;
class AudioCapture;

/// Feature frames per second of the live analysis.
constexpr double kLiveAudioFps = 60;

/// Runs the state's audio commands and moves the state with the sound, once a frame.
class LiveAudio {
public:
    explicit LiveAudio(ModelStore& models);
    ~LiveAudio();
    /// Advance the audio clock by exactly this many seconds a frame instead of by the time passed (scripted
    /// runs: the same frames every time). 0: real time.
    void set_fixed_step(double seconds) { fixed_step_ = seconds; }
    /// One frame: commands, then the clock, the features, the mapping and the recorder. `dt`: seconds
    /// since the last frame. Errors go to s.error.
    void step(ViewerState& s, double dt);
    /// Writes a recording in progress (at exit).
    void finish(ViewerState& s);

private:
    void run(ViewerState& s, const std::string& line);
    void open_file(ViewerState& s, const std::string& path, double start);
    void open_capture(ViewerState& s);
    void stop(ViewerState& s);
    void set_map(ViewerState& s, const std::string& name);
    void remove_offsets(ViewerState& s);
    void add_random_direction(ViewerState& s, uint32_t seed);
    void advance(ViewerState& s, double dt);
    void apply(ViewerState& s, const AudioControl& c, double seconds);
    void report(ViewerState& s) const;

    ModelStore& models_;
    double fixed_step_ = 0;
    AudioMap map_;
    std::string map_name_ = "pulse";
    std::unique_ptr<AudioMapper> mapper_;
    std::shared_ptr<io::AudioClip> clip_;       // the file playing
    std::string file_;
    double start_ = 0;                          // seconds into the file of the clip's start
    AudioFeatures features_;
    std::unique_ptr<AudioPlayer> player_;
    std::unique_ptr<AudioCapture> capture_;
    std::unique_ptr<io::AudioAnalyzer> analyzer_;
    std::optional<io::RunningNormalizer> normalizer_;
    double time_ = 0;                           // seconds into the clip (or since capture began)
    double record_clock_ = 0;                   // never goes back: the recordings' time
    size_t mapped_ = 0;                         // feature frames given to the mapper
    bool paused_ = false;
    std::string status_;
    AudioFrame meter_{};
    AudioControl applied_;                      // what the state holds of the mapping now
    Recorder recorder_;
};

}  // namespace latentkit::viewer
