// Audio features per video frame with aubio: onset detectors, the tempo tracker, a phase vocoder with a
// three-band filterbank, and the RMS level.
#include <aubio/aubio.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "latentkit/error.h"
#include "latentkit/io/audio.h"

namespace latentkit::io {
namespace {
constexpr unsigned kHop = 512, kWindow = 1024;
constexpr double kFloorDb = -60.0;  // levels below this count as silence
constexpr double kLatency = 0.1;    // seconds: events arrive this late at most (aubio's delay is about 4 hops)

size_t idx(AudioFeature f) { return static_cast<size_t>(f); }
}  // namespace

struct AudioAnalyzer::State {
    int sample_rate;
    double fps;
    fvec_t* hop = nullptr;
    fvec_t* onset_out = nullptr;
    fvec_t* bands = nullptr;
    cvec_t* spectrum = nullptr;
    aubio_onset_t* onset_all = nullptr;
    aubio_onset_t* onset_perc = nullptr;
    aubio_tempo_t* tempo = nullptr;
    aubio_pvoc_t* pvoc = nullptr;
    aubio_filterbank_t* filters = nullptr;
    size_t filled = 0;         // samples waiting in `hop`
    size_t hops = 0;           // hops analysed
    size_t next_frame = 0;     // first frame not yet taken
    // per frame: sums of the continuous measures and their hop counts; events by frame
    std::map<size_t, AudioFrame> sums;
    std::map<size_t, int> counts;
    std::map<size_t, AudioFrame> events;

    ~State() {
        if (filters) del_aubio_filterbank(filters);
        if (pvoc) del_aubio_pvoc(pvoc);
        if (tempo) del_aubio_tempo(tempo);
        if (onset_perc) del_aubio_onset(onset_perc);
        if (onset_all) del_aubio_onset(onset_all);
        if (spectrum) del_cvec(spectrum);
        if (bands) del_fvec(bands);
        if (onset_out) del_fvec(onset_out);
        if (hop) del_fvec(hop);
    }

    size_t frame_of(double seconds) const { return static_cast<size_t>(std::max(0.0, std::floor(seconds * fps + 1e-9))); }

    void mark(AudioFeature f, double seconds) { events[frame_of(seconds)][idx(f)] = 1.0f; }

    void analyse_hop() {
        const double t = static_cast<double>(hops * kHop) / sample_rate;  // start of this hop
        aubio_onset_do(onset_all, hop, onset_out);
        if (onset_out->data[0] > 0) mark(AudioFeature::onset, aubio_onset_get_last_s(onset_all));
        aubio_onset_do(onset_perc, hop, onset_out);
        if (onset_out->data[0] > 0) mark(AudioFeature::percussive, aubio_onset_get_last_s(onset_perc));
        aubio_tempo_do(tempo, hop, onset_out);
        if (onset_out->data[0] > 0) mark(AudioFeature::beat, aubio_tempo_get_last_s(tempo));
        aubio_pvoc_do(pvoc, hop, spectrum);
        aubio_filterbank_do(filters, spectrum, bands);
        const double db = std::max<double>(kFloorDb, aubio_db_spl(hop));
        const size_t f = frame_of(t + 0.5 * kHop / sample_rate);
        AudioFrame& sum = sums[f];
        sum[idx(AudioFeature::loudness)] += static_cast<float>((db - kFloorDb) / -kFloorDb);
        sum[idx(AudioFeature::bass)] += bands->data[0];
        sum[idx(AudioFeature::mid)] += bands->data[1];
        sum[idx(AudioFeature::treble)] += bands->data[2];
        ++counts[f];
        ++hops;
    }
};

AudioAnalyzer::AudioAnalyzer(int sample_rate, double fps) : s_(new State) {
    s_->sample_rate = sample_rate;
    s_->fps = fps;
    if (sample_rate < 8000 || !(fps > 0)) {
        delete s_;
        throw ArgumentError(fmt::format("audio analysis: sample rate {} or frame rate {} out of range", sample_rate, fps));
    }
    const auto sr = static_cast<uint_t>(sample_rate);
    s_->hop = new_fvec(kHop);
    s_->onset_out = new_fvec(1);
    s_->bands = new_fvec(3);
    s_->spectrum = new_cvec(kWindow);
    s_->onset_all = new_aubio_onset("complex", kWindow, kHop, sr);
    s_->onset_perc = new_aubio_onset("hfc", kWindow, kHop, sr);
    s_->tempo = new_aubio_tempo("default", kWindow, kHop, sr);
    s_->pvoc = new_aubio_pvoc(kWindow, kHop);
    s_->filters = new_aubio_filterbank(3, kWindow);
    fvec_t* edges = new_fvec(5);
    const float hz[5] = {20, 100, 800, 5000, 16000};  // triangles peaking at 100 Hz, 800 Hz and 5 kHz
    for (int k = 0; k < 5; ++k) edges->data[k] = std::min<float>(hz[k], 0.49f * static_cast<float>(sample_rate));
    const bool ok = s_->onset_all && s_->onset_perc && s_->tempo && s_->pvoc && s_->filters &&
                    aubio_filterbank_set_triangle_bands(s_->filters, edges, static_cast<smpl_t>(sr)) == 0;
    del_fvec(edges);
    if (!ok) {
        delete s_;
        throw Error("audio analysis: aubio could not set up its detectors");
    }
}

AudioAnalyzer::~AudioAnalyzer() { delete s_; }

void AudioAnalyzer::push(const float* mono, size_t count) {
    for (size_t i = 0; i < count; ++i) {
        s_->hop->data[s_->filled++] = mono[i];
        if (s_->filled == kHop) {
            s_->analyse_hop();
            s_->filled = 0;
        }
    }
}

double AudioAnalyzer::seconds() const { return static_cast<double>(s_->hops * kHop + s_->filled) / s_->sample_rate; }

double AudioAnalyzer::tempo_bpm() const { return aubio_tempo_get_bpm(s_->tempo); }

std::vector<AudioFrame> AudioAnalyzer::take_frames(bool final) {
    State& s = *s_;
    const double analysed = static_cast<double>(s.hops * kHop) / s.sample_rate;
    const size_t end = final ? static_cast<size_t>(std::ceil(seconds() * s.fps - 1e-9)) : s.frame_of(std::max(0.0, analysed - kLatency));
    std::vector<AudioFrame> out;
    for (; s.next_frame < end; ++s.next_frame) {
        const size_t f = s.next_frame;
        AudioFrame frame{};
        if (const auto it = s.sums.find(f); it != s.sums.end()) {
            const float n = static_cast<float>(s.counts[f]);
            for (size_t k = 0; k < kAudioFeatureCount; ++k) frame[k] = it->second[k] / n;
        } else if (!out.empty()) {
            frame = out.back();  // frames shorter than a hop repeat the last measure
            frame[idx(AudioFeature::onset)] = frame[idx(AudioFeature::percussive)] = frame[idx(AudioFeature::beat)] = 0;
        }
        if (const auto it = s.events.find(f); it != s.events.end())
            for (AudioFeature e : {AudioFeature::onset, AudioFeature::percussive, AudioFeature::beat}) frame[idx(e)] = it->second[idx(e)];
        out.push_back(frame);
        s.sums.erase(f);
        s.counts.erase(f);
        s.events.erase(f);
    }
    return out;
}

AudioFeatures analyse_audio(const AudioClip& clip, double fps) {
    AudioAnalyzer analyzer(clip.sample_rate, fps);
    const std::vector<float> mono = clip.mono();
    analyzer.push(mono.data(), mono.size());
    AudioFeatures out;
    out.fps = fps;
    out.duration = clip.seconds();
    out.frames = analyzer.take_frames(true);
    out.tempo_bpm = analyzer.tempo_bpm();
    for (AudioFeature f : {AudioFeature::loudness, AudioFeature::bass, AudioFeature::mid, AudioFeature::treble}) {
        std::vector<float> v;
        for (const auto& fr : out.frames) v.push_back(fr[idx(f)]);
        if (v.empty()) continue;
        const size_t at = std::min(v.size() - 1, v.size() * 99 / 100);
        std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(at), v.end());
        const float p99 = v[at];
        for (auto& fr : out.frames) fr[idx(f)] = p99 > 0 ? std::min(1.0f, fr[idx(f)] / p99) : 0.0f;
    }
    return out;
}

}  // namespace latentkit::io
