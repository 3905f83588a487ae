#pragma once
// The sound card through PortAudio: playing a clip while the view follows it, and capturing the default
// input. Each throws Error with one line when there is no such device (a headless machine), and the
// viewer then runs without sound.
#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

#include "latentkit/io/audio.h"

namespace latentkit::viewer {

/// Plays a clip on the default output device from a position; the position follows what was played.
class AudioPlayer {
public:
    AudioPlayer(std::shared_ptr<const io::AudioClip> clip, double start_seconds);
    ~AudioPlayer();
    AudioPlayer(const AudioPlayer&) = delete;
    AudioPlayer& operator=(const AudioPlayer&) = delete;
    /// Seconds into the clip played so far.
    double position() const;
    /// Pauses or resumes.
    void pause(bool paused);
    /// PortAudio's thread: the next `frames` frames of sound.
    void fill(float* out, unsigned long frames);

private:
    std::shared_ptr<const io::AudioClip> clip_;
    std::atomic<size_t> next_{0};
    void* stream_ = nullptr;
};

/// Captures mono samples from the default input device.
class AudioCapture {
public:
    explicit AudioCapture(int sample_rate);
    ~AudioCapture();
    AudioCapture(const AudioCapture&) = delete;
    AudioCapture& operator=(const AudioCapture&) = delete;
    /// The samples captured since the last call.
    std::vector<float> take();
    /// PortAudio's thread: `frames` captured samples.
    void push(const float* in, unsigned long frames);

private:
    std::mutex mutex_;
    std::vector<float> samples_;
    void* stream_ = nullptr;
};

}  // namespace latentkit::viewer
