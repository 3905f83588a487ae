// Recordings: the file format and the recorder.
#include "recording.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "latentkit/atomic_file.h"
#include "latentkit/error.h"

namespace latentkit::viewer {

namespace {
nlohmann::json slider_json(const DirectionSlider& d) {
    return {{"name", d.direction.name}, {"source", d.file}, {"vector", d.direction.vector}, {"scale", d.direction.scale},
            {"first_layer", d.first_layer}, {"last_layer", d.last_layer}};
}

DirectionSlider slider_from(const nlohmann::json& j) {
    DirectionSlider d;
    d.direction.name = j.at("name").get<std::string>();
    d.file = j.at("source").get<std::string>();
    d.direction.vector = j.at("vector").get<std::vector<float>>();
    d.direction.scale = j.at("scale").get<double>();
    d.first_layer = j.at("first_layer").get<int>();
    d.last_layer = j.at("last_layer").get<int>();
    return d;
}
}  // namespace

void save_recording(const std::string& path, const Recording& r) {
    nlohmann::json sliders = nlohmann::json::array();
    for (const auto& d : r.sliders) sliders.push_back(slider_json(d));
    nlohmann::json events = nlohmann::json::array();
    for (const auto& e : r.events) events.push_back({{"t", e.time}, {"lines", e.lines}});
    const std::string text = nlohmann::json{{"format", "latentkit-recording"}, {"version", 1}, {"model", r.model}, {"audio", r.audio},
                                            {"audio_start", r.audio_start}, {"duration", r.duration}, {"sliders", sliders}, {"events", events}}
                                 .dump(1) + "\n";
    write_file_atomic(path, text.data(), text.size());
}

Recording load_recording(const std::string& path) {
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(read_file(path));
    } catch (const nlohmann::json::exception& e) {
        throw ArgumentError(fmt::format("{}: not a recording (not JSON: {})", path, e.what()));
    }
    if (!j.is_object() || j.value("format", "") != "latentkit-recording") throw ArgumentError(path + ": not a latentkit recording");
    Recording r;
    try {
        r.model = j.at("model").get<std::string>();
        r.audio = j.at("audio").get<std::string>();
        r.audio_start = j.at("audio_start").get<double>();
        r.duration = j.at("duration").get<double>();
        for (const auto& d : j.at("sliders")) r.sliders.push_back(slider_from(d));
        for (const auto& e : j.at("events")) r.events.push_back({e.at("t").get<double>(), e.at("lines").get<std::vector<std::string>>()});
    } catch (const nlohmann::json::exception& e) {
        throw ArgumentError(fmt::format("{}: damaged recording: {}", path, e.what()));
    }
    if (!(r.duration >= 0) || !std::is_sorted(r.events.begin(), r.events.end(), [](const auto& a, const auto& b) { return a.time < b.time; }))
        throw ArgumentError(path + ": damaged recording: times out of order");
    if (!r.audio.empty() && std::filesystem::path(r.audio).is_relative())
        r.audio = (std::filesystem::path(path).parent_path() / r.audio).lexically_normal().string();
    return r;
}

std::string Recorder::start(const std::string& path, const ViewerState& s, const std::string& audio, double audio_start, double time) {
    rec_ = Recording{};
    rec_.model = std::filesystem::is_regular_file(s.model_path) ? std::filesystem::absolute(s.model_path).string() : s.model_path;
    rec_.audio = audio.empty() ? "" : std::filesystem::absolute(audio).string();
    rec_.audio_start = audio_start;
    rec_.sliders = s.directions;
    path_ = path;
    origin_ = time;
    last_.clear();
    frame(s, time);
    return s.spec.ws.defined() ? "a projected or loaded latent is shown: the recording replays the seed position, not it" : "";
}

void Recorder::frame(const ViewerState& s, double time) {
    if (path_.empty()) return;
    for (size_t k = rec_.sliders.size(); k < s.directions.size(); ++k) rec_.sliders.push_back(s.directions[k]);  // added while recording
    const std::vector<std::string> now = state_lines(s);
    RecordingEvent e{time - origin_, {}};
    for (size_t k = 0; k < now.size(); ++k)
        if (k >= last_.size() || now[k] != last_[k]) e.lines.push_back(now[k]);
    if (!e.lines.empty()) rec_.events.push_back(std::move(e));
    last_ = now;
}

std::string Recorder::stop(double time) {
    if (path_.empty()) return "";
    rec_.duration = std::max(0.0, time - origin_);
    const std::string path = std::exchange(path_, {});
    save_recording(path, rec_);
    return path;
}

}  // namespace latentkit::viewer
