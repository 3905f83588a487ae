// The Audio panel: what drives the view, how strongly, and the recording.
#include <fmt/format.h>
#include <imgui.h>

#include "panels.h"

namespace latentkit::viewer {
namespace {

void draw_meters(const AudioView& a) {
    for (size_t k = 0; k < kAudioFeatureCount; ++k) {
        ImGui::ProgressBar(a.meter[k], ImVec2(120, 0), "");
        ImGui::SameLine();
        ImGui::TextUnformatted(OptionNames<AudioFeature>::names[k]);
    }
}

void draw_gains(ViewerState& s) {
    for (size_t k = 0; k < s.audio.links.size(); ++k) {
        float g = static_cast<float>(s.audio.gains[k]);
        ImGui::PushID(static_cast<int>(k));
        if (ImGui::SliderFloat(s.audio.links[k].c_str(), &g, -4.0f, 4.0f)) s.audio_commands.push_back(fmt::format("audio-gain {} {}", k, g));
        ImGui::PopID();
    }
}

}  // namespace

void draw_audio_panel(ViewerState& s) {
    if (!ImGui::CollapsingHeader("Audio and OSC")) return;
    text_field("sound file", s.audio_input);
    if (ImGui::Button("Play file")) s.audio_commands.push_back("audio " + s.audio_input);
    ImGui::SameLine();
    if (ImGui::Button("Input device")) s.audio_commands.push_back("audio-capture");
    ImGui::SameLine();
    if (ImGui::Button(s.audio.paused ? "Resume" : "Pause")) s.audio_commands.push_back(s.audio.paused ? "audio-play" : "audio-pause");
    ImGui::SameLine();
    if (ImGui::Button("Stop")) s.audio_commands.push_back("audio-stop");
    if (!s.audio.source.empty())
        ImGui::Text("%s  %.1f / %.1f s", s.audio.source.c_str(), s.audio.time, s.audio.duration);
    if (!s.audio.status.empty()) ImGui::TextWrapped("%s", s.audio.status.c_str());
    text_field("mapping", s.audio_map_input);
    ImGui::SameLine();
    if (ImGui::Button("Use")) s.audio_commands.push_back("audio-map " + s.audio_map_input);
    ImGui::TextDisabled("mapping: %s (pulse, motion, beats or a .json file)", s.audio.map.c_str());
    draw_gains(s);
    draw_meters(s.audio);
    text_field("recording", s.record_input);
    if (s.audio.recording.empty()) {
        if (ImGui::Button("Record")) s.audio_commands.push_back("record " + s.record_input);
    } else if (ImGui::Button("Stop recording")) {
        s.audio_commands.push_back("record-stop");
    }
    ImGui::TextDisabled("%s", s.osc_status.empty() ? "OSC is off (start with --osc PORT)" : s.osc_status.c_str());
}

}  // namespace latentkit::viewer
