// Audio helpers that need no decoder or analysis library.
#include <algorithm>
#include <cmath>

#include "latentkit/io/audio.h"

namespace latentkit::io {

std::vector<float> AudioClip::mono() const {
    std::vector<float> out(frames());
    for (size_t i = 0; i < out.size(); ++i) {
        float sum = 0;
        for (int c = 0; c < channels; ++c) sum += samples[i * static_cast<size_t>(channels) + static_cast<size_t>(c)];
        out[i] = sum / static_cast<float>(channels);
    }
    return out;
}

RunningNormalizer::RunningNormalizer(double fps, double half_life) : fall_(std::pow(0.5, 1.0 / (fps * half_life))) {}

AudioFrame RunningNormalizer::operator()(AudioFrame frame) {
    for (AudioFeature f : {AudioFeature::loudness, AudioFeature::bass, AudioFeature::mid, AudioFeature::treble}) {
        float& peak = peak_[static_cast<size_t>(f)];
        peak = std::max(frame[static_cast<size_t>(f)], static_cast<float>(peak * fall_));
        frame[static_cast<size_t>(f)] = peak > 0 ? std::min(1.0f, frame[static_cast<size_t>(f)] / peak) : 0.0f;
    }
    return frame;
}

}  // namespace latentkit::io
