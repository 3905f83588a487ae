// latentkit bench audio: analysis time per minute of audio, and a morph rendered with audio against the
// same morph without.
#include <fmt/format.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <random>
#include <unistd.h>

#include "bench.h"
#include "common.h"
#include "latentkit/audio_morph.h"
#include "latentkit/error.h"
#include "latentkit/io/audio.h"
#include "latentkit/io/tensor_image.h"
#include "latentkit/io/video.h"

namespace latentkit::tools {
namespace {

// A minute of music-like stereo sound: a kick and a hi-hat at 120 bpm over a bass line and noise.
std::shared_ptr<io::AudioClip> synthetic_song(double seconds) {
    auto clip = std::make_shared<io::AudioClip>();
    const int rate = clip->sample_rate;
    const auto n = static_cast<size_t>(seconds * rate);
    std::mt19937 gen(1);
    std::normal_distribution<float> noise(0, 1);
    clip->samples.resize(n * 2);
    for (size_t i = 0; i < n; ++i) {
        const double t = static_cast<double>(i) / rate, beat = std::fmod(t, 0.5), half = std::fmod(t + 0.25, 0.5);
        double v = 0.3 * std::sin(2 * M_PI * (55 + 10 * std::floor(t / 2)) * t);             // bass
        v += 0.6 * std::exp(-beat / 0.05) * std::sin(2 * M_PI * 60 * beat);                    // kick
        v += 0.2 * std::exp(-half / 0.01) * noise(gen) + 0.01 * noise(gen);                   // hi-hat, floor
        clip->samples[2 * i] = clip->samples[2 * i + 1] = static_cast<float>(std::clamp(v, -1.0, 1.0));
    }
    clip->source = "synthetic";
    return clip;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Renders every frame of `r` into `path`; seconds taken.
template <class R>
double render_to(R& r, const std::string& path, int res, const io::VideoOptions& vo, const torch::Device& device) {
    const auto t0 = std::chrono::steady_clock::now();
    auto sink = io::make_async(io::open_frame_sink(path, res, res, vo));
    for (int64_t f = 0; f < r.frame_count(); f += r.frames_per_batch()) {
        const int64_t n = std::min<int64_t>(r.frames_per_batch(), r.frame_count() - f);
        const torch::Tensor img = r.render(f, n);
        sync(device);
        for (auto& im : io::images_from_batch(img)) sink->write(io::convert_channels(im, 3));
    }
    sink->finish();
    const double secs = seconds_since(t0);
    std::filesystem::remove(path);
    return secs;
}

}  // namespace

void bench_audio(const Opts& o, const AudioBenchOpts& a) {
    const auto t_song = std::chrono::steady_clock::now();
    const std::shared_ptr<io::AudioClip> clip =
        a.audio.empty() ? synthetic_song(60) : std::make_shared<io::AudioClip>(io::decode_audio(a.audio));
    const double decode = a.audio.empty() ? 0.0 : seconds_since(t_song);
    auto t0 = std::chrono::steady_clock::now();
    const AudioFeatures features = io::analyse_audio(*clip, a.fps);
    const double analysis = seconds_since(t0);

    const torch::Device device = device_from_name(o.device);
    std::string what;
    auto G = bench_generator_on(o, what, device);
    MorphSpec spec;
    spec.render.seeds = {1, 2, 3};
    if (G->config.c_dim > 0) spec.render.class_index = 0;
    spec.batch = o.batch;
    const int64_t frames = std::min<int64_t>(a.frames, static_cast<int64_t>(features.frames.size()));
    spec.path.frames_per_transition = static_cast<int>(frames / 2);
    MorphRenderer plain(G, spec);
    AudioFeatures part = features;
    part.frames.resize(static_cast<size_t>(plain.frame_count()));
    const AudioMap map = audio_map_preset(AudioPreset::pulse);
    AudioMorphRenderer reactive(G, spec, map, audio_controls(map, part));
    io::VideoOptions vo;
    vo.fps = static_cast<int>(a.fps);
    const std::string path = (std::filesystem::temp_directory_path() / fmt::format("latentkit-bench-audio-{}.mp4", ::getpid())).string();
    const int res = G->config.img_resolution;
    render_to(plain, path, res, vo, device);  // warm-up
    const double without = render_to(plain, path, res, vo, device);
    vo.audio = clip;
    const double with = render_to(reactive, path, res, vo, device);

    fmt::print("audio      {} ({:.1f} s, {} Hz, {} channels)\n", a.audio.empty() ? "synthetic song (kick, hi-hat, bass)" : a.audio,
               clip->seconds(), clip->sample_rate, clip->channels);
    if (!a.audio.empty()) fmt::print("decoding          {:.3f} s per minute of audio\n", decode * 60 / clip->seconds());
    fmt::print("analysis          {:.3f} s per minute of audio (aubio: 2 onset detectors, tempo, 3 bands; {} fps)\n",
               analysis * 60 / clip->seconds(), a.fps);
    fmt::print("model      {}\n", what);
    fmt::print("device     {}  threads {}  batch {}  frames {} at {}x{}\n", device.str(), torch::get_num_threads(), o.batch, plain.frame_count(), res, res);
    fmt::print("morph without audio   {:.2f} frames/s (MP4)\n", static_cast<double>(plain.frame_count()) / without);
    fmt::print("morph with audio      {:.2f} frames/s (pulse preset, MP4 with AAC)\n", static_cast<double>(reactive.frame_count()) / with);
    fmt::print("ratio                 {:.2f} (time with audio / time without)\n", with / without);
}

}  // namespace latentkit::tools
