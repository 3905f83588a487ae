// Audio-reactive control: presets, the mapping file, and the frame-by-frame mapper.
#include "latentkit/audio_map.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "latentkit/atomic_file.h"
#include "latentkit/error.h"

namespace latentkit {
namespace {

AudioLink link(AudioFeature feature, AudioTarget target, double gain, double smooth, double decay, std::string direction = {}) {
    AudioLink l;
    l.feature = feature;
    l.target = target;
    l.gain = gain;
    l.smooth = smooth;
    l.decay = decay;
    l.direction = std::move(direction);
    return l;
}

template <class E>
E enum_field(const nlohmann::json& j, const char* key, E fallback, const std::string& where) {
    if (!j.contains(key)) return fallback;
    if (!j[key].is_string()) throw ArgumentError(fmt::format("{}: \"{}\" must be a string", where, key));
    const std::string name = j[key].get<std::string>();
    if (const auto v = option_from_name<E>(name)) return *v;
    throw ArgumentError(fmt::format("{}: unknown {} '{}' (use {})", where, key, name, option_choices<E>()));
}

double number_field(const nlohmann::json& j, const char* key, double fallback, const std::string& where, double min = -1e9) {
    if (!j.contains(key)) return fallback;
    if (!j[key].is_number()) throw ArgumentError(fmt::format("{}: \"{}\" must be a number", where, key));
    const double v = j[key].get<double>();
    if (!std::isfinite(v) || v < min) throw ArgumentError(fmt::format("{}: \"{}\" is {}, it must be at least {}", where, key, v, min));
    return v;
}

AudioLink parse_link(const nlohmann::json& j, const std::string& where) {
    if (!j.is_object()) throw ArgumentError(where + ": each link must be an object");
    static const char* known[] = {"feature", "target", "gain", "smooth", "decay", "threshold", "every", "direction"};
    for (const auto& [key, value] : j.items())
        if (std::find_if(std::begin(known), std::end(known), [&](const char* k) { return key == k; }) == std::end(known))
            throw ArgumentError(fmt::format("{}: unknown key \"{}\"", where, key));
    if (!j.contains("feature") || !j.contains("target")) throw ArgumentError(where + ": a link needs \"feature\" and \"target\"");
    AudioLink l;
    l.feature = enum_field(j, "feature", l.feature, where);
    l.target = enum_field(j, "target", l.target, where);
    l.gain = number_field(j, "gain", l.gain, where);
    l.smooth = number_field(j, "smooth", l.smooth, where, 0);
    l.decay = number_field(j, "decay", l.decay, where, 0);
    l.threshold = number_field(j, "threshold", l.threshold, where, 0);
    l.every = static_cast<int>(number_field(j, "every", l.every, where, 1));
    if (j.contains("direction")) {
        if (!j["direction"].is_string()) throw ArgumentError(where + ": \"direction\" must be a string");
        l.direction = j["direction"].get<std::string>();
    }
    if (l.target == AudioTarget::direction && l.direction.empty())
        throw ArgumentError(where + ": a direction link needs \"direction\" (a direction's name, or \"random\")");
    return l;
}

// Smoothstep: slow at both ends of a step.
double ease(double t) {
    t = std::clamp(t, 0.0, 1.0);
    return t * t * (3 - 2 * t);
}

bool counts_events(AudioTarget t) { return t == AudioTarget::step || t == AudioTarget::class_index; }

}  // namespace

AudioMap audio_map_preset(AudioPreset preset) {
    AudioMap m;
    switch (preset) {
        case AudioPreset::pulse:
            m.base_speed = 0.3;
            m.links = {link(AudioFeature::loudness, AudioTarget::speed, 1.0, 0.5, 0),
                       link(AudioFeature::percussive, AudioTarget::direction, 2.0, 0, 0.25, "random"),
                       link(AudioFeature::onset, AudioTarget::noise, 1.5, 0, 0.15)};
            break;
        case AudioPreset::motion:
            m.base_speed = 0.2;
            m.links = {link(AudioFeature::loudness, AudioTarget::speed, 2.0, 1.0, 0),
                       link(AudioFeature::bass, AudioTarget::psi, -0.3, 0.3, 0),
                       link(AudioFeature::treble, AudioTarget::direction, 1.5, 0.2, 0, "random")};
            break;
        case AudioPreset::beats: {
            AudioLink step = link(AudioFeature::beat, AudioTarget::step, 1.0, 0.15, 0);
            AudioLink cls = link(AudioFeature::beat, AudioTarget::class_index, 1.0, 0, 0);
            cls.every = 4;
            m.links = {step, link(AudioFeature::percussive, AudioTarget::direction, 1.5, 0, 0.2, "random"), cls};
            break;
        }
    }
    return m;
}

AudioMap parse_audio_map(const std::string& json_text, const std::string& source) {
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(json_text);
    } catch (const nlohmann::json::exception& e) {
        throw ArgumentError(fmt::format("{}: not JSON: {}", source, e.what()));
    }
    if (!j.is_object()) throw ArgumentError(source + ": an audio map is a JSON object with \"links\"");
    for (const auto& [key, value] : j.items())
        if (key != "base_speed" && key != "seed" && key != "links" && key != "format")
            throw ArgumentError(fmt::format("{}: unknown key \"{}\" (use base_speed, seed, links)", source, key));
    AudioMap m;
    m.base_speed = number_field(j, "base_speed", m.base_speed, source);
    m.seed = static_cast<uint32_t>(number_field(j, "seed", m.seed, source, 0));
    if (!j.contains("links") || !j["links"].is_array()) throw ArgumentError(source + ": \"links\" must be a list");
    for (size_t k = 0; k < j["links"].size(); ++k) m.links.push_back(parse_link(j["links"][k], fmt::format("{}: link {}", source, k)));
    return m;
}

AudioMap load_audio_map(const std::string& path) { return parse_audio_map(read_file(path), path); }

std::string audio_map_json(const AudioMap& map) {
    nlohmann::json links = nlohmann::json::array();
    for (const auto& l : map.links) {
        nlohmann::json j = {{"feature", option_name(l.feature)}, {"target", option_name(l.target)}, {"gain", l.gain}};
        if (l.smooth != 0) j["smooth"] = l.smooth;
        if (l.decay != 0) j["decay"] = l.decay;
        if (counts_events(l.target)) {
            j["threshold"] = l.threshold;
            j["every"] = l.every;
        }
        if (!l.direction.empty()) j["direction"] = l.direction;
        links.push_back(j);
    }
    return nlohmann::json{{"base_speed", map.base_speed}, {"seed", map.seed}, {"links", links}}.dump(2) + "\n";
}

AudioMapper::AudioMapper(AudioMap map, double fps) : map_(std::move(map)), dt_(1.0 / fps) {
    if (!(fps > 0)) throw ArgumentError("audio mapping: fps must be positive");
    level_.assign(map_.links.size(), 0.0);
    last_.assign(map_.links.size(), 0.0f);
    events_.assign(map_.links.size(), 0);
    since_step_.assign(map_.links.size(), 0);
}

void AudioMapper::set_gain(size_t index, double gain) {
    if (index >= map_.links.size()) throw ArgumentError(fmt::format("audio mapping: there is no link {} (it has {})", index, map_.links.size()));
    map_.links[index].gain = gain;
}

std::vector<size_t> AudioMapper::direction_links() const {
    std::vector<size_t> out;
    for (size_t k = 0; k < map_.links.size(); ++k)
        if (map_.links[k].target == AudioTarget::direction) out.push_back(k);
    return out;
}

AudioControl AudioMapper::step(const AudioFrame& frame) {
    AudioControl c;
    c.speed = map_.base_speed;
    double step_position = 0;
    for (size_t k = 0; k < map_.links.size(); ++k) {
        const AudioLink& l = map_.links[k];
        const float x = frame[static_cast<size_t>(l.feature)];
        if (counts_events(l.target)) {
            const bool rising = x >= l.threshold && last_[k] < l.threshold;
            last_[k] = x;
            if (rising && ++events_[k] % l.every == 0) since_step_[k] = 0;
            else ++since_step_[k];
            const int count = events_[k] / l.every;
            if (l.target == AudioTarget::class_index) {
                c.class_steps += count;
            } else if (count > 0) {
                const double phase = l.smooth > 0 ? ease(since_step_[k] * dt_ / l.smooth) : 1.0;
                step_position += l.gain * (count - 1 + phase);
            }
            continue;
        }
        double& y = level_[k];
        if (l.decay > 0) y = std::max<double>(x, y * std::exp(-dt_ / l.decay));
        else if (l.smooth > 0) y += (x - y) * (1 - std::exp(-dt_ / l.smooth));
        else y = x;
        const double v = l.gain * y;
        switch (l.target) {
            case AudioTarget::speed: c.speed += v; break;
            case AudioTarget::psi: c.psi += v; break;
            case AudioTarget::noise: c.noise += v; break;
            case AudioTarget::direction: c.directions.push_back(v); break;
            default: break;
        }
    }
    c.steps = step_position;
    return c;
}

std::vector<AudioControl> audio_controls(const AudioMap& map, const AudioFeatures& features) {
    AudioMapper mapper(map, features.fps);
    std::vector<AudioControl> out;
    out.reserve(features.frames.size());
    for (const auto& f : features.frames) out.push_back(mapper.step(f));
    return out;
}

std::vector<double> audio_path_positions(const std::vector<AudioControl>& controls, double transitions) {
    double total = 0;
    for (const auto& c : controls) total += std::max(0.0, c.speed);
    const double scale = total > 0 ? transitions / total : 0.0;
    std::vector<double> out;
    out.reserve(controls.size());
    double travelled = 0;
    for (const auto& c : controls) {
        double p = transitions > 0 ? std::fmod(travelled * scale + c.steps, transitions) : 0.0;
        if (p < 0) p += transitions;
        out.push_back(p);
        travelled += std::max(0.0, c.speed);
    }
    return out;
}

}  // namespace latentkit
