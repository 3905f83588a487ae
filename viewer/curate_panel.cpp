// The Curate panel: a folder or zip, the images to label next (most uncertain first), marks by click or
// key, labels saved and loaded, the chosen images exported as a dataset.
#include <fmt/format.h>
#include <imgui.h>

#include <algorithm>

#include "panels.h"

namespace latentkit::viewer {
namespace {

void mark(ViewerState& s, size_t cell, const char* label) { s.curate_commands.push_back(fmt::format("curate-mark {} {}", cell, label)); }

// The grid: left click 1, right click 0, middle click skip; a border and the probability on each cell.
void draw_grid(ViewerState& s, const GlImage& grid) {
    const CurateView& v = s.curate;
    const int rows = static_cast<int>((v.cells.size() + kCurateColumns - 1) / kCurateColumns);
    const float side = kPanelWidth - 30;
    const ImVec2 size(side, side * static_cast<float>(rows) / kCurateColumns);
    ImGui::Image(reinterpret_cast<ImTextureID>(static_cast<intptr_t>(grid.texture())), size);
    const ImVec2 p0 = ImGui::GetItemRectMin();
    const float cw = size.x / kCurateColumns, ch = size.y / static_cast<float>(rows);
    if (ImGui::IsItemHovered()) {
        const ImVec2 m = ImGui::GetIO().MousePos;
        const int cx = std::clamp(static_cast<int>((m.x - p0.x) / cw), 0, kCurateColumns - 1), cy = std::clamp(static_cast<int>((m.y - p0.y) / ch), 0, rows - 1);
        const auto cell = static_cast<size_t>(cy * kCurateColumns + cx);
        if (cell < v.cells.size()) {
            ImGui::SetTooltip("%s", v.names[cell].c_str());
            if (ImGui::IsMouseClicked(ImGuiMouseButton_Left)) mark(s, cell, "1");
            if (ImGui::IsMouseClicked(ImGuiMouseButton_Right)) mark(s, cell, "0");
            if (ImGui::IsMouseClicked(ImGuiMouseButton_Middle)) mark(s, cell, "skip");
        }
    }
    ImDrawList* draw = ImGui::GetWindowDrawList();
    for (size_t k = 0; k < v.cells.size(); ++k) {
        const float x = p0.x + cw * static_cast<float>(k % kCurateColumns), y = p0.y + ch * static_cast<float>(k / kCurateColumns);
        if (v.probability[k] >= 0) draw->AddText(ImVec2(x + 3, y + 2), IM_COL32(255, 255, 255, 255), fmt::format("{:.2f}", v.probability[k]).c_str());
        if (k == 0) draw->AddRect(ImVec2(x + 1, y + 1), ImVec2(x + cw - 1, y + ch - 1), IM_COL32(240, 200, 60, 255), 0, 0, 2);
    }
}

}  // namespace

void draw_curate_panel(ViewerState& s, const GlImage& grid) {
    if (!ImGui::CollapsingHeader("Curate")) return;
    text_field("images", s.curate_input);
    ImGui::SameLine();
    if (ImGui::Button("Open##curate")) s.curate_commands.push_back("curate-open " + s.curate_input);
    if (s.curate.cells.empty()) {
        ImGui::TextDisabled("a folder or zip: label a few images, the rest are ranked");
        return;
    }
    ImGui::TextWrapped("%s", s.curate.status.c_str());
    ImGui::TextDisabled("click: 1, right click: 0, middle: skip; keys 1 / 0 / S mark the framed one");
    draw_grid(s, grid);
    if (ImGui::IsWindowFocused() && !ImGui::GetIO().WantTextInput) {
        const ImGuiIO& io = ImGui::GetIO();
        for (int k = 0; k < io.InputQueueCharacters.Size; ++k) {
            const ImWchar c = io.InputQueueCharacters[k];
            if (c == '1' || c == '0') mark(s, 0, c == '1' ? "1" : "0");
            if (c == 's' || c == 'S') mark(s, 0, "skip");
        }
    }
    text_field("labels", s.curate_labels);
    if (ImGui::Button("Save labels")) s.curate_commands.push_back("curate-save " + s.curate_labels);
    ImGui::SameLine();
    if (ImGui::Button("Load labels")) s.curate_commands.push_back("curate-load " + s.curate_labels);
    float t = static_cast<float>(s.curate_threshold);
    if (ImGui::SliderFloat("threshold", &t, 0.0f, 1.0f)) s.curate_threshold = t;
    text_field("dataset", s.curate_out);
    if (ImGui::Button("Export")) s.curate_commands.push_back(fmt::format("curate-export {} {}", s.curate_out, s.curate_threshold));
}

}  // namespace latentkit::viewer
