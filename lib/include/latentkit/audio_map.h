#pragma once
// Audio-reactive control: audio features per video frame, a mapping (AudioMap, JSON) from features to what
// a morph or the viewer changes, and the mapper that turns one into the other frame by frame. The same
// mapper drives `morph --audio` and the viewer's live audio. No LibTorch and no libav here: latentkit_io
// decodes and analyses the audio (latentkit/io/audio.h).
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "latentkit/option_names.h"

namespace latentkit {

/// What the analysis measures per video frame.
enum class AudioFeature {
    loudness,    ///< RMS level in dB, normalised (continuous)
    onset,       ///< onsets of every kind (aubio's "complex" detector): 1 in the frame holding one
    percussive,  ///< percussive onsets (aubio's "hfc", high-frequency content): 1 in the frame holding one
    beat,        ///< beats (aubio's tempo tracker): 1 in the frame holding one
    bass,        ///< energy in a band around 100 Hz, normalised (continuous)
    mid,         ///< energy in a band around 800 Hz, normalised (continuous)
    treble       ///< energy in a band around 5 kHz, normalised (continuous)
};
template <>
struct OptionNames<AudioFeature> {
    static constexpr const char* names[] = {"loudness", "onset", "percussive", "beat", "bass", "mid", "treble"};
};
/// Number of AudioFeature values.
constexpr size_t kAudioFeatureCount = 7;

/// One video frame's features, indexed by AudioFeature, each 0..1.
using AudioFrame = std::array<float, kAudioFeatureCount>;

/// The features of a stretch of audio, one entry per video frame.
struct AudioFeatures {
    double fps = 30;        ///< video frames per second
    double start = 0;       ///< seconds into the file of frame 0
    double duration = 0;    ///< seconds of audio analysed
    double tempo_bpm = 0;   ///< aubio's tempo estimate at the end (0: none found)
    std::vector<AudioFrame> frames;
};

/// What a link moves.
enum class AudioTarget {
    speed,        ///< movement along the morph path (or through seeds, live)
    step,         ///< one keyframe (live: one seed) forward on every `every`-th event
    psi,          ///< added to the truncation psi
    noise,        ///< noise amplitude: the noise is multiplied by 1 + value (StyleGAN2 only)
    direction,    ///< strength along a direction (by name, or "random")
    class_index   ///< the next class on every `every`-th event (conditional models only)
};
template <>
struct OptionNames<AudioTarget> {
    static constexpr const char* names[] = {"speed", "step", "psi", "noise", "direction", "class"};
};

/// One feature driving one target: value = gain * feature, shaped in time.
struct AudioLink {
    AudioFeature feature = AudioFeature::loudness;
    AudioTarget target = AudioTarget::speed;
    double gain = 1.0;
    double smooth = 0.0;     ///< seconds: time constant of exponential smoothing (0: none); step: seconds each step takes
    double decay = 0.0;      ///< seconds: rises at once, then falls with this time constant (a pulse; 0: follows the feature)
    double threshold = 0.5;  ///< step and class: an event is the feature rising through this
    int every = 1;           ///< step and class: act on every N-th event
    std::string direction;   ///< direction target: a direction's name, or "random" (a random unit direction)
};

/// A mapping from audio features to targets, as written in an --audio-map JSON file.
struct AudioMap {
    double base_speed = 0.0;  ///< speed when there is no sound (added to the speed links)
    uint32_t seed = 0;        ///< seed of the "random" direction
    std::vector<AudioLink> links;
};

/// The bundled mappings.
enum class AudioPreset {
    pulse,   ///< drift with the loudness; percussive hits push along a random direction, onsets swell the noise
    motion,  ///< travel fast when it is loud; the bass lowers truncation; the treble sways along a direction
    beats    ///< one keyframe per beat; hits push along a direction; a new class every 4 beats (conditional)
};
template <>
struct OptionNames<AudioPreset> {
    static constexpr const char* names[] = {"pulse", "motion", "beats"};
};

/// The mapping of a preset.
AudioMap audio_map_preset(AudioPreset preset);
/// Parses a mapping (JSON); throws ArgumentError naming `source` and the problem.
AudioMap parse_audio_map(const std::string& json_text, const std::string& source);
/// Reads a mapping file; throws IoError / ArgumentError naming `path`.
AudioMap load_audio_map(const std::string& path);
/// The mapping as JSON (what parse_audio_map reads back).
std::string audio_map_json(const AudioMap& map);

/// What the mapping asks of one frame.
struct AudioControl {
    double speed = 0;          ///< movement this frame: base_speed plus the speed links
    double steps = 0;          ///< keyframe steps so far, the latest one eased in (fractional while it moves)
    double psi = 0;            ///< added to the truncation psi
    double noise = 0;          ///< the noise is multiplied by 1 + noise
    std::vector<double> directions;  ///< per direction link (in link order): strength
    int class_steps = 0;       ///< class changes so far
};

/// Turns features into controls one frame at a time, keeping the smoothing and the event counts.
class AudioMapper {
public:
    /// `fps`: frames per second of the features it will be given.
    AudioMapper(AudioMap map, double fps);
    /// The controls of the next frame.
    AudioControl step(const AudioFrame& frame);
    /// The mapping (gains can be changed live with set_gain).
    const AudioMap& map() const { return map_; }
    /// Changes the gain of link `index`; throws ArgumentError when there is no such link.
    void set_gain(size_t index, double gain);
    /// Indices of the direction links, in order (AudioControl::directions follows it).
    std::vector<size_t> direction_links() const;

private:
    AudioMap map_;
    double dt_;
    std::vector<double> level_;   ///< per link: smoothed / decaying value
    std::vector<float> last_;     ///< per link: the feature's previous value (event edges)
    std::vector<int> events_;     ///< per link: events so far
    std::vector<int> since_step_; ///< per step link: frames since its last step
};

/// Runs a mapper over every frame of `features`.
std::vector<AudioControl> audio_controls(const AudioMap& map, const AudioFeatures& features);

/// Position along a morph path of `transitions` keyframe transitions, per frame: the speed is scaled so
/// that the speed links travel the path once over all frames, each step adds one transition (eased), and
/// positions past the end wrap around to the start. In transitions, 0 <= position < transitions.
std::vector<double> audio_path_positions(const std::vector<AudioControl>& controls, double transitions);

}  // namespace latentkit
