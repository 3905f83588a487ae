// Builds without aubio or libav*: audio cannot be decoded or analysed, and says so.
#include "latentkit/error.h"
#include "latentkit/io/audio.h"

namespace latentkit::io {

AudioClip decode_audio(const std::string& path, double, double) {
    throw IoError(path + ": this build of latentkit has no audio support (it needs aubio and FFmpeg's libav*)");
}

AudioFeatures analyse_audio(const AudioClip& clip, double) {
    throw IoError(clip.source + ": this build of latentkit has no audio support (it needs aubio and FFmpeg's libav*)");
}

struct AudioAnalyzer::State {};

AudioAnalyzer::AudioAnalyzer(int, double) : s_(nullptr) {
    throw IoError("this build of latentkit has no audio support (it needs aubio and FFmpeg's libav*)");
}
AudioAnalyzer::~AudioAnalyzer() = default;
void AudioAnalyzer::push(const float*, size_t) {}
std::vector<AudioFrame> AudioAnalyzer::take_frames(bool) { return {}; }
double AudioAnalyzer::seconds() const { return 0; }
double AudioAnalyzer::tempo_bpm() const { return 0; }

}  // namespace latentkit::io
