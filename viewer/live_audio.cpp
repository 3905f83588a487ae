// The viewer's live audio: commands, clock, features, mapping onto the state, recording.
#include "live_audio.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <sstream>

#include "audio_device.h"
#include "latentkit/audio_morph.h"
#include "latentkit/error.h"
#include "latentkit/networks.h"

namespace latentkit::viewer {
namespace {
const std::string kRandom = "random";

DirectionSlider* slider_named(ViewerState& s, const std::string& name) {
    for (auto& d : s.directions)
        if (d.direction.name == name) return &d;
    return nullptr;
}
}  // namespace

LiveAudio::LiveAudio(ModelStore& models) : models_(models), map_(audio_map_preset(AudioPreset::pulse)) {}

LiveAudio::~LiveAudio() = default;

void LiveAudio::step(ViewerState& s, double dt) {
    for (const std::string& line : std::exchange(s.audio_commands, {})) {
        try {
            run(s, line);
        } catch (const std::exception& e) {
            s.error = e.what();
        }
    }
    try {
        const double before = time_;
        const bool had_source = clip_ || capture_;
        advance(s, dt);
        // the recording's clock: the sound's position while it plays, else the frames' time
        record_clock_ += had_source && (clip_ || capture_) ? std::max(0.0, time_ - before) : (fixed_step_ > 0 ? fixed_step_ : dt);
        recorder_.frame(s, record_clock_);
    } catch (const std::exception& e) {
        s.error = e.what();
        stop(s);
    }
    report(s);
}

void LiveAudio::finish(ViewerState& s) {
    if (recorder_.active()) s.status = "recorded " + recorder_.stop(record_clock_);
}

void LiveAudio::run(ViewerState& s, const std::string& line) {
    std::istringstream in(line);
    std::string cmd, word;
    in >> cmd;
    if (cmd == "audio") {
        std::getline(in >> std::ws, word);
        double start = 0;
        // "audio FILE START": a number after the last space is the start
        if (const size_t sp = word.rfind(' '); sp != std::string::npos) {
            std::istringstream num(word.substr(sp + 1));
            if (num >> start && num.eof()) word = word.substr(0, sp);
            else start = 0;
        }
        open_file(s, word, start);
    } else if (cmd == "audio-capture") {
        open_capture(s);
    } else if (cmd == "audio-stop") {
        stop(s);
    } else if (cmd == "audio-pause" || cmd == "audio-play") {
        paused_ = cmd == "audio-pause";
        if (player_) player_->pause(paused_);
    } else if (cmd == "audio-map") {
        std::getline(in >> std::ws, word);
        set_map(s, word);
    } else if (cmd == "audio-gain") {
        size_t k;
        double g;
        if (!(in >> k >> g)) throw ArgumentError("script: audio-gain LINK GAIN");
        if (k >= map_.links.size()) throw ArgumentError(fmt::format("audio-gain: the mapping has no link {}", k));
        map_.links[k].gain = g;
        if (mapper_) mapper_->set_gain(k, g);
    } else if (cmd == "record") {
        std::getline(in >> std::ws, word);
        if (word.empty()) throw ArgumentError("script: record FILE");
        // time 0 of the recording is the sound's position now
        const std::string note = recorder_.start(word, s, clip_ ? file_ : "", start_ + (clip_ ? time_ : 0.0), record_clock_);
        if (!note.empty()) s.log.push_back({"warning", note});
        s.status = "recording to " + word;
    } else if (cmd == "record-stop") {
        const std::string path = recorder_.stop(record_clock_);
        if (!path.empty()) s.status = "recorded " + path;
    } else if (cmd == "random-direction") {
        uint32_t seed = map_.seed;
        if (in >> word && !(std::istringstream(word) >> seed)) throw ArgumentError("script: random-direction SEED");
        add_random_direction(s, seed);
    }
}

void LiveAudio::open_file(ViewerState& s, const std::string& path, double start) {
    stop(s);
    clip_ = std::make_shared<io::AudioClip>(io::decode_audio(path, start));
    features_ = io::analyse_audio(*clip_, kLiveAudioFps);
    file_ = path;
    start_ = start;
    time_ = 0;
    mapped_ = 0;
    mapper_ = std::make_unique<AudioMapper>(map_, kLiveAudioFps);
    try {
        player_ = std::make_unique<AudioPlayer>(clip_, 0.0);
        if (paused_) player_->pause(true);
        status_ = "playing";
    } catch (const Error& e) {
        status_ = std::string(e.what()) + ": the file drives the view silently";
    }
}

void LiveAudio::open_capture(ViewerState& s) {
    stop(s);
    try {
        capture_ = std::make_unique<AudioCapture>(44100);
    } catch (const Error& e) {
        status_ = e.what();
        throw;
    }
    analyzer_ = std::make_unique<io::AudioAnalyzer>(44100, kLiveAudioFps);
    normalizer_.emplace(kLiveAudioFps);
    mapper_ = std::make_unique<AudioMapper>(map_, kLiveAudioFps);
    time_ = 0;
    status_ = "listening to the input device";
}

void LiveAudio::stop(ViewerState& s) {
    if (mapper_) {
        remove_offsets(s);
    }
    player_.reset();
    capture_.reset();
    analyzer_.reset();
    clip_.reset();
    mapper_.reset();
    applied_ = AudioControl{};
    file_.clear();
    status_.clear();
    meter_ = AudioFrame{};
}

// Takes the mapping's psi, noise and direction offsets back out of the state; the steps and class
// changes it made stay where they went.
void LiveAudio::remove_offsets(ViewerState& s) {
    AudioControl neutral = applied_;
    neutral.speed = neutral.psi = neutral.noise = 0;
    std::fill(neutral.directions.begin(), neutral.directions.end(), 0.0);
    apply(s, neutral, 0);
}

void LiveAudio::set_map(ViewerState& s, const std::string& name) {
    AudioMap map = option_from_name<AudioPreset>(name) ? audio_map_preset(*option_from_name<AudioPreset>(name)) : load_audio_map(name);
    if (mapper_) {
        remove_offsets(s);
        applied_ = AudioControl{};
        mapper_ = std::make_unique<AudioMapper>(map, kLiveAudioFps);
    }
    map_ = std::move(map);
    map_name_ = name;
}

void LiveAudio::add_random_direction(ViewerState& s, uint32_t seed) {
    if (s.model_path.empty()) throw Error("open a model first: the random direction is drawn in its W space");
    const auto model = models_.open(s.model_path, s.device);
    DirectionSlider slider;
    slider.file = kRandom;
    slider.direction = random_direction(*model->G, seed, s.spec.class_index);
    s.directions.push_back(slider);
}

void LiveAudio::advance(ViewerState& s, double dt) {
    const double frame = 1.0 / kLiveAudioFps;
    if (clip_) {
        double t = time_;
        if (player_) t = player_->position();
        else if (!paused_) t = time_ + (fixed_step_ > 0 ? fixed_step_ : dt);
        time_ = std::min(t, clip_->seconds());
        const auto target = std::min(features_.frames.size(), static_cast<size_t>(std::floor(time_ * kLiveAudioFps + 1e-9)));
        for (; mapped_ < target; ++mapped_) {
            meter_ = features_.frames[mapped_];
            apply(s, mapper_->step(meter_), frame);
        }
        if (time_ >= clip_->seconds()) status_ = "finished";
    } else if (capture_) {
        const std::vector<float> samples = capture_->take();
        analyzer_->push(samples.data(), samples.size());
        for (const AudioFrame& f : analyzer_->take_frames()) {
            meter_ = (*normalizer_)(f);
            apply(s, mapper_->step(meter_), frame);
        }
        time_ = analyzer_->seconds();
    }
}

// Moves the state by the change from the controls it holds now to `c`: the user's own values (and OSC's)
// stay the base the sound adds to.
void LiveAudio::apply(ViewerState& s, const AudioControl& c, double seconds) {
    const std::vector<size_t> direction_links = mapper_ ? mapper_->direction_links() : std::vector<size_t>{};
    s.seed_x += c.speed * s.speed * seconds + (c.steps - applied_.steps);
    s.spec.psi += c.psi - applied_.psi;
    const bool noise_linked = std::any_of(map_.links.begin(), map_.links.end(), [](const AudioLink& l) { return l.target == AudioTarget::noise; });
    if (noise_linked) s.spec.noise_gain = c.noise == 0 ? std::vector<float>{} : std::vector<float>{static_cast<float>(1.0 + c.noise)};
    for (size_t j = 0; j < direction_links.size() && j < c.directions.size(); ++j) {
        const std::string& name = map_.links[direction_links[j]].direction;
        DirectionSlider* slider = slider_named(s, name);
        if (!slider && name == kRandom && !s.model_path.empty()) {
            add_random_direction(s, map_.seed);
            slider = &s.directions.back();
        }
        if (slider) slider->strength += c.directions[j] - (j < applied_.directions.size() ? applied_.directions[j] : 0.0);
    }
    if (s.model.c_dim > 0 && s.spec.class_index) {
        const int moved = c.class_steps - applied_.class_steps;
        s.spec.class_index = ((*s.spec.class_index + moved) % s.model.c_dim + s.model.c_dim) % s.model.c_dim;
    }
    applied_ = c;
}

void LiveAudio::report(ViewerState& s) const {
    AudioView& v = s.audio;
    v.source = clip_ ? file_ : capture_ ? "input device" : "";
    v.status = status_;
    v.time = time_;
    v.duration = clip_ ? clip_->seconds() : 0;
    v.paused = paused_;
    v.meter = meter_;
    v.map = map_name_;
    v.links.clear();
    v.gains.clear();
    for (const auto& l : map_.links) {
        v.links.push_back(fmt::format("{} -> {}{}", option_name(l.feature), option_name(l.target), l.direction.empty() ? "" : " " + l.direction));
        v.gains.push_back(l.gain);
    }
    v.recording = recorder_.active() ? "recording" : "";
}

}  // namespace latentkit::viewer
