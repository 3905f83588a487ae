// PortAudio streams for the viewer's sound.
#include "audio_device.h"

#include <portaudio.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>

#include "latentkit/error.h"

namespace latentkit::viewer {
namespace {

// PortAudio, initialised once for the program's life. Its host APIs (ALSA, JACK) print their own
// complaints to stderr while probing a machine without sound; those lines are held back, and what
// matters comes back as an error.
PaError quiet_initialize() {
    std::fflush(stderr);
    const int saved = dup(2);
    const int null = open("/dev/null", O_WRONLY);
    if (saved >= 0 && null >= 0) dup2(null, 2);
    const PaError rc = Pa_Initialize();
    if (saved >= 0 && null >= 0) dup2(saved, 2);
    if (null >= 0) close(null);
    if (saved >= 0) close(saved);
    return rc;
}

void ensure_portaudio() {
    static const PaError rc = quiet_initialize();
    if (rc != paNoError) throw Error(std::string("no sound: PortAudio: ") + Pa_GetErrorText(rc));
}

void* open_stream(int inputs, int outputs, int rate, PaStreamCallback* cb, void* self, const char* what) {
    ensure_portaudio();
    const PaDeviceIndex device = inputs > 0 ? Pa_GetDefaultInputDevice() : Pa_GetDefaultOutputDevice();
    if (device == paNoDevice) throw Error(std::string("this machine has no ") + what);
    PaStream* stream = nullptr;
    PaError rc = Pa_OpenDefaultStream(&stream, inputs, outputs, paFloat32, rate, paFramesPerBufferUnspecified, cb, self);
    if (rc == paNoError) rc = Pa_StartStream(stream);
    if (rc != paNoError) {
        if (stream) Pa_CloseStream(stream);
        throw Error(std::string("cannot open the ") + what + ": " + Pa_GetErrorText(rc));
    }
    return stream;
}

int play_callback(const void*, void* out, unsigned long frames, const PaStreamCallbackTimeInfo*, PaStreamCallbackFlags, void* self) {
    static_cast<AudioPlayer*>(self)->fill(static_cast<float*>(out), frames);
    return paContinue;
}

int capture_callback(const void* in, void*, unsigned long frames, const PaStreamCallbackTimeInfo*, PaStreamCallbackFlags, void* self) {
    static_cast<AudioCapture*>(self)->push(static_cast<const float*>(in), frames);
    return paContinue;
}

void close_stream(void* stream) {
    if (!stream) return;
    Pa_StopStream(static_cast<PaStream*>(stream));
    Pa_CloseStream(static_cast<PaStream*>(stream));
}

}  // namespace

AudioPlayer::AudioPlayer(std::shared_ptr<const io::AudioClip> clip, double start_seconds) : clip_(std::move(clip)) {
    next_ = static_cast<size_t>(std::max(0.0, start_seconds) * clip_->sample_rate);
    stream_ = open_stream(0, clip_->channels, clip_->sample_rate, &play_callback, this, "sound output device");
}

AudioPlayer::~AudioPlayer() { close_stream(stream_); }

void AudioPlayer::fill(float* dst, unsigned long frames) {
    const size_t channels = static_cast<size_t>(clip_->channels);
    const size_t first = next_.load(), available = clip_->frames();
    const size_t n = first < available ? std::min<size_t>(frames, available - first) : 0;
    if (n > 0) std::memcpy(dst, clip_->samples.data() + first * channels, n * channels * sizeof(float));
    std::fill(dst + n * channels, dst + frames * channels, 0.0f);
    next_ = first + frames;
}

double AudioPlayer::position() const { return static_cast<double>(next_.load()) / clip_->sample_rate; }

void AudioPlayer::pause(bool paused) {
    if (paused) Pa_StopStream(static_cast<PaStream*>(stream_));
    else Pa_StartStream(static_cast<PaStream*>(stream_));
}

AudioCapture::AudioCapture(int sample_rate) {
    stream_ = open_stream(1, 0, sample_rate, &capture_callback, this, "sound input device");
}

AudioCapture::~AudioCapture() { close_stream(stream_); }

void AudioCapture::push(const float* src, unsigned long frames) {
    std::lock_guard lock(mutex_);
    if (src && samples_.size() < 10 * 44100) samples_.insert(samples_.end(), src, src + frames);
}

std::vector<float> AudioCapture::take() {
    std::lock_guard lock(mutex_);
    return std::exchange(samples_, {});
}

}  // namespace latentkit::viewer
