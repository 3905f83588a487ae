#pragma once
// Audio: decoding any file FFmpeg reads (libav*) and measuring it per video frame with aubio (onsets,
// beats and tempo, loudness, three frequency bands) for audio-reactive morphs and the viewer.
#include <cstddef>
#include <string>
#include <vector>

#include "latentkit/audio_map.h"

namespace latentkit::io {

/// Decoded audio: float samples in -1..1, channels interleaved.
struct AudioClip {
    int sample_rate = 44100;
    int channels = 2;            ///< 1 or 2
    std::vector<float> samples;  ///< frames * channels
    std::string source;          ///< the file it came from
    /// Sample frames (samples per channel).
    size_t frames() const { return channels > 0 ? samples.size() / static_cast<size_t>(channels) : 0; }
    /// Length in seconds.
    double seconds() const { return sample_rate > 0 ? static_cast<double>(frames()) / sample_rate : 0.0; }
    /// One channel: the average of the channels.
    std::vector<float> mono() const;
};

/// Decodes the first audio stream of `path` at 44.1 kHz (mono files stay mono, others become stereo),
/// from `start` seconds for `duration` seconds (< 0: to the end). Throws IoError naming the file when it
/// is missing, unreadable, damaged or has no audio stream, ArgumentError when `start` is past its end.
AudioClip decode_audio(const std::string& path, double start = 0, double duration = -1);

/// Measures mono audio in hops of 512 samples and gathers the results per video frame. Events (onsets,
/// beats) are placed at the time aubio reports for them, which corrects for the detectors' delay.
class AudioAnalyzer {
public:
    AudioAnalyzer(int sample_rate, double fps);
    ~AudioAnalyzer();
    AudioAnalyzer(const AudioAnalyzer&) = delete;
    AudioAnalyzer& operator=(const AudioAnalyzer&) = delete;
    /// Analyses more samples (any count; the remainder waits for the next call).
    void push(const float* mono, size_t count);
    /// Frames whose measurements are complete: up to `seconds_analysed - latency` (live), or all of them
    /// when `final`. Unnormalised: levels in dB mapped 0..1, band energies raw; each frame once.
    std::vector<AudioFrame> take_frames(bool final = false);
    /// Seconds of audio analysed so far.
    double seconds() const;
    /// aubio's tempo estimate in beats per minute (0 before one is found).
    double tempo_bpm() const;

private:
    struct State;
    State* s_;
};

/// The features of a clip at `fps`: every continuous feature divided by its 99th percentile over the clip
/// (then clipped to 1), so a quiet recording moves as much as a loud one; events are 0 or 1.
AudioFeatures analyse_audio(const AudioClip& clip, double fps);

/// Scales continuous features live: divides by a running peak that falls by half in `half_life` seconds.
class RunningNormalizer {
public:
    explicit RunningNormalizer(double fps, double half_life = 10.0);
    AudioFrame operator()(AudioFrame frame);

private:
    double fall_;
    AudioFrame peak_{};
};

}  // namespace latentkit::io
