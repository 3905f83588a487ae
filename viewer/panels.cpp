// The viewer's panels: Dear ImGui widgets that edit ViewerState and nothing else.
#include "panels.h"

#include <fmt/format.h>
#include <imgui.h>

#include <algorithm>
#include <filesystem>
#include <initializer_list>
#include <string>
#include <cmath>
#include <cstdio>


namespace latentkit::viewer {

namespace {

// A combo box over some values of an option enum, shown by their names in its name table.
template <class E>
void choice_combo(const char* label, E& value, std::initializer_list<E> choices) {
    if (!ImGui::BeginCombo(label, option_name(value))) return;
    for (E c : choices)
        if (ImGui::Selectable(option_name(c), c == value)) value = c;
    ImGui::EndCombo();
}

// A text field editing `value`; true when Enter was pressed in it.
void draw_projection_panel(ViewerState& s, const ProjectionSnapshot& p, const GlImage& target, const GlImage& current) {
    if (p.running) ImGui::SetNextItemOpen(true, ImGuiCond_Once);
    if (!ImGui::CollapsingHeader("Projection")) return;
    text_field("photo", s.project.target_path);
    text_field("vgg16.pt", s.project.vgg);
    choice_combo("align", s.project.align, {io::AlignMode::automatic, io::AlignMode::face, io::AlignMode::center, io::AlignMode::none});
    choice_combo("space", s.project.options.space, {LatentSpace::w, LatentSpace::w_plus});
    ImGui::SliderInt("steps", &s.project.options.steps, 10, 2000);
    if (!p.running) {
        if (ImGui::Button("Project")) s.project_request = s.project;
    } else if (ImGui::Button("Cancel")) {
        s.cancel_projection = true;
    }
    if (p.running || p.done || !p.error.empty()) {
        ImGui::ProgressBar(p.steps > 0 ? static_cast<float>(p.step) / p.steps : 0.0f, ImVec2(-1, 0),
                           fmt::format("step {}/{}  loss {:.4f}", p.step, p.steps, p.loss).c_str());
        if (!p.alignment.empty()) ImGui::TextDisabled("%s", p.alignment.c_str());
        if (!p.error.empty()) ImGui::TextColored(ImVec4(1.0f, 0.35f, 0.3f, 1.0f), "%s", p.error.c_str());
        const float side = (kPanelWidth - 30) / 2;
        if (!target.empty()) ImGui::Image(reinterpret_cast<ImTextureID>(static_cast<intptr_t>(target.texture())), ImVec2(side, side));
        if (!current.empty()) {
            ImGui::SameLine();
            ImGui::Image(reinterpret_cast<ImTextureID>(static_cast<intptr_t>(current.texture())), ImVec2(side, side));
        }
    }
    if (p.done) {
        if (ImGui::Button("Use as the current latent")) s.use_projection = true;
        text_field("save as", s.project_save);
        if (ImGui::Button("Save .npz")) s.save_projection = true;
    }
}


void draw_labelling_panel(ViewerState& s, const GlImage& grid, bool& fresh) {
    if (fresh) ImGui::SetNextItemOpen(true), fresh = false;  // new samples: show them
    if (!ImGui::CollapsingHeader("Labelling")) return;
    ImGui::SetNextItemWidth(120);
    ImGui::InputInt("first seed", &s.label_first_seed);
    ImGui::SameLine();
    ImGui::SetNextItemWidth(100);
    ImGui::InputInt("count", &s.label_count);
    s.label_first_seed = std::max(0, s.label_first_seed);
    s.label_count = std::clamp(s.label_count, 4, 64);
    ImGui::BeginDisabled(s.computing || s.model.w_dim == 0);
    if (ImGui::Button("Sample")) s.job_request = DirectionsJob{DirectionsJobKind::samples, 0, s.label_count, s.label_first_seed, s.spec.psi};
    ImGui::EndDisabled();
    if (grid.empty() || s.label_seeds.empty()) return;
    ImGui::TextDisabled("left click: positive, right click: negative, again: clear");
    const int cols = grid_cols(s.label_seeds.size());
    const int rows = static_cast<int>((s.label_seeds.size() + cols - 1) / cols);
    const float side = kPanelWidth - 30;
    const ImVec2 size(side, side * rows / cols);
    ImGui::Image(reinterpret_cast<ImTextureID>(static_cast<intptr_t>(grid.texture())), size);
    const ImVec2 p0 = ImGui::GetItemRectMin();
    const float cw = size.x / cols, ch = size.y / rows;
    if (ImGui::IsItemHovered() && (ImGui::IsMouseClicked(ImGuiMouseButton_Left) || ImGui::IsMouseClicked(ImGuiMouseButton_Right))) {
        const ImVec2 m = ImGui::GetIO().MousePos;
        const int cx = std::clamp(static_cast<int>((m.x - p0.x) / cw), 0, cols - 1), cy = std::clamp(static_cast<int>((m.y - p0.y) / ch), 0, rows - 1);
        const size_t k = static_cast<size_t>(cy * cols + cx);
        if (k < s.label_marks.size()) {
            const int want = ImGui::IsMouseClicked(ImGuiMouseButton_Left) ? 1 : -1;
            s.label_marks[k] = s.label_marks[k] == want ? 0 : want;
        }
    }
    ImDrawList* draw = ImGui::GetWindowDrawList();
    int pos = 0, neg = 0;
    for (size_t k = 0; k < s.label_marks.size(); ++k) {
        if (s.label_marks[k] == 0) continue;
        (s.label_marks[k] > 0 ? pos : neg) += 1;
        const float x = p0.x + cw * static_cast<float>(k % cols), y = p0.y + ch * static_cast<float>(k / cols);
        draw->AddRect(ImVec2(x + 1, y + 1), ImVec2(x + cw - 1, y + ch - 1), s.label_marks[k] > 0 ? IM_COL32(60, 220, 90, 255) : IM_COL32(230, 60, 60, 255), 0, 0, 3);
    }
    ImGui::Text("%d positive, %d negative", pos, neg);
    text_field("name", s.label_name);
    ImGui::BeginDisabled(pos < 2 || neg < 2);
    if (ImGui::Button("Fit direction")) s.fit_marks = true;
    ImGui::EndDisabled();
}

void draw_morph_panel(ViewerState& s, const MorphExportState& e) {
    if (!ImGui::CollapsingHeader("Morph")) return;
    if (ImGui::Button("Add the current latent")) s.morph_add = true;
    ImGui::SameLine();
    if (ImGui::Button("Clear")) s.morph.w_keys.clear(), s.morph_labels.clear(), s.morph_preview = false;
    int remove = -1;
    for (size_t k = 0; k < s.morph_labels.size(); ++k) {
        ImGui::PushID(static_cast<int>(k));
        if (ImGui::SmallButton("x")) remove = static_cast<int>(k);
        ImGui::SameLine();
        ImGui::Text("%zu: %s", k, s.morph_labels[k].c_str());
        ImGui::PopID();
    }
    if (remove >= 0) remove_morph_key(s, static_cast<size_t>(remove));
    bool cubic = s.morph.path.kind == PathKind::cubic;
    if (ImGui::Checkbox("cubic", &cubic)) s.morph.path.kind = cubic ? PathKind::cubic : PathKind::linear;
    ImGui::SameLine();
    ImGui::Checkbox("loop", &s.morph.path.loop);
    int frames = static_cast<int>(s.morph.path.frames_per_transition);
    if (ImGui::SliderInt("frames per key", &frames, 2, 600)) s.morph.path.frames_per_transition = frames;
    ImGui::SliderInt("fps", &s.morph_fps, 1, 120);
    ImGui::BeginDisabled(s.morph.w_keys.size() < 2);
    ImGui::Checkbox("preview", &s.morph_preview);
    ImGui::SameLine();
    ImGui::Checkbox("play", &s.morph_play);
    float t = static_cast<float>(s.morph_t);
    if (ImGui::SliderFloat("position", &t, 0.0f, 1.0f)) s.morph_t = t, s.morph_preview = true;
    text_field("video", s.morph_out);
    if (s.model.family == "StyleGAN3")
        ImGui::TextDisabled("frames use translate (%.3f, %.3f), rotate %.1f deg", s.spec.translate_x, s.spec.translate_y, s.spec.rotate);
    if (!e.running) {
        if (ImGui::Button("Export")) {
            MorphExportJob job;
            job.out = s.morph_out;
            s.morph_export = job;
        }
    } else if (ImGui::Button("Cancel export")) {
        s.cancel_export = true;
    }
    ImGui::EndDisabled();
    if (e.running || e.done || !e.error.empty())
        ImGui::ProgressBar(e.frames > 0 ? static_cast<float>(e.frame) / e.frames : 0.0f, ImVec2(-1, 0),
                           e.error.empty() ? fmt::format("{}/{} frames", e.frame, e.frames).c_str() : e.error.c_str());
}

void draw_model_panel(ViewerState& s) {
    if (!ImGui::CollapsingHeader("Model", ImGuiTreeNodeFlags_DefaultOpen)) return;
    if (text_field("path", s.model_input, ImGuiInputTextFlags_EnterReturnsTrue)) s.model_path = s.model_input;
    if (ImGui::Button("Open")) s.model_path = s.model_input;
    ImGui::SameLine();
    ImGui::TextDisabled("or drop a model file on the window");
    for (const auto& r : s.recent_models)
        if (ImGui::Selectable(r.c_str())) s.model_path = s.model_input = r;
    if (s.model.resolution > 0)
        ImGui::Text("%dx%d, %d channel(s), %d ws of %d, z %d, c %d\n%s, fingerprint %s", s.model.resolution, s.model.resolution, s.model.channels,
                    s.model.num_ws, s.model.w_dim, s.model.z_dim, s.model.c_dim, s.model.format.c_str(), s.model.fingerprint.c_str());
}

void draw_latent_panel(ViewerState& s) {
    if (!ImGui::CollapsingHeader("Latent", ImGuiTreeNodeFlags_DefaultOpen)) return;
    double step = 1.0;
    ImGui::InputScalar("seed x", ImGuiDataType_Double, &s.seed_x, &step, nullptr, "%.3f");
    ImGui::InputScalar("seed y", ImGuiDataType_Double, &s.seed_y, &step, nullptr, "%.3f");
    if (ImGui::Button("Snap")) s.seed_x = std::round(s.seed_x), s.seed_y = std::round(s.seed_y);
    ImGui::SameLine();
    ImGui::Checkbox("Animate", &s.animate);
    float speed = static_cast<float>(s.speed);
    if (ImGui::SliderFloat("speed", &speed, 0.01f, 5.0f, "%.2f seeds/s")) s.speed = speed;
    ImGui::TextDisabled("drag in the image to move through seeds");
    RenderSpec& spec = s.spec;
    float psi = static_cast<float>(spec.psi);
    if (ImGui::SliderFloat("truncation psi", &psi, -1.0f, 2.0f)) spec.psi = psi;
    int cutoff = spec.cutoff.value_or(-1);
    if (ImGui::SliderInt("cutoff", &cutoff, -1, std::max(1, s.model.num_ws), cutoff < 0 ? "all layers" : "%d"))
        spec.cutoff = cutoff >= 0 ? std::optional<int>(cutoff) : std::nullopt;
    if (s.model.c_dim > 0) {
        int c = spec.class_index.value_or(0);
        if (ImGui::SliderInt("class", &c, 0, s.model.c_dim - 1)) spec.class_index = c;
    }
    if (s.model.family == "StyleGAN3") {
        // As the stylegan3 visualizer: the input's translation and rotation (gen_images.py's options).
        float t[2] = {static_cast<float>(spec.translate_x), static_cast<float>(spec.translate_y)};
        if (ImGui::SliderFloat2("translate", t, -1.0f, 1.0f, "%.3f")) spec.translate_x = t[0], spec.translate_y = t[1];
        float rot = static_cast<float>(spec.rotate);
        if (ImGui::SliderFloat("rotate", &rot, -180.0f, 180.0f, "%.1f deg")) spec.rotate = rot;
        if (ImGui::Button("Reset transform")) spec.translate_x = spec.translate_y = spec.rotate = 0;
        ImGui::TextDisabled("StyleGAN3 has no noise inputs");
    } else {
        choice_combo("noise", spec.noise_mode, {NoiseMode::constant, NoiseMode::random, NoiseMode::none});
        if (spec.noise_mode == NoiseMode::random) {
            int seed = static_cast<int>(spec.noise_seed.value_or(0));
            if (ImGui::InputInt("noise seed", &seed) || !spec.noise_seed) spec.noise_seed = static_cast<uint32_t>(std::max(0, seed));
        }
    }
    if (spec.ws.defined()) {
        ImGui::TextColored(ImVec4(0.5f, 0.8f, 1.0f, 1.0f), "showing a projected or loaded latent");
        if (ImGui::Button("Back to seeds")) spec.ws = torch::Tensor();
    }
}

void draw_mixing_panel(ViewerState& s) {
    if (!ImGui::CollapsingHeader("Style mixing")) return;
    RenderSpec& spec = s.spec;
    bool mix = spec.mix_seed.has_value();
    if (ImGui::Checkbox("mix", &mix)) spec.mix_seed = mix ? std::optional<uint32_t>(1) : std::nullopt;
    if (!mix) return;
    int seed = static_cast<int>(*spec.mix_seed);
    if (ImGui::InputInt("mix seed", &seed)) spec.mix_seed = static_cast<uint32_t>(std::max(0, seed));
    auto& layers = spec.mix_layers;
    for (int l = 0; l < s.model.num_ws; ++l) {
        bool on = std::find(layers.begin(), layers.end(), l) != layers.end();
        if (l % 6) ImGui::SameLine();
        if (ImGui::Checkbox(fmt::format("{}##mix", l).c_str(), &on)) {
            if (on) layers.insert(std::upper_bound(layers.begin(), layers.end(), l), l);
            else layers.erase(std::remove(layers.begin(), layers.end(), l), layers.end());
        }
    }
}

void draw_directions_panel(ViewerState& s) {
    if (!ImGui::CollapsingHeader("Directions", ImGuiTreeNodeFlags_DefaultOpen)) return;
    text_field("file", s.direction_input);
    if (ImGui::Button("Load")) s.direction_files.push_back(s.direction_input);
    ImGui::SameLine();
    if (ImGui::Button("Reset all"))
        for (auto& d : s.directions) d.strength = 0;
    ImGui::SameLine();
    if (ImGui::Button("Remove all")) s.directions.clear();
    ImGui::SetNextItemWidth(120);
    ImGui::InputInt("k", &s.compute_components);
    ImGui::SameLine();
    ImGui::SetNextItemWidth(140);
    ImGui::InputInt("samples", &s.compute_samples, 1000);
    if (s.model.w_dim > 0) s.compute_components = std::clamp(s.compute_components, 1, s.model.w_dim);
    s.compute_samples = std::clamp(s.compute_samples, 2, 1000000);
    ImGui::BeginDisabled(s.computing || s.model.w_dim == 0);
    if (ImGui::Button("Compute PCA")) s.job_request = DirectionsJob{DirectionsJobKind::pca, s.compute_components, s.compute_samples, 0, 1.0};
    ImGui::SameLine();
    if (ImGui::Button("Compute closed-form")) s.job_request = DirectionsJob{DirectionsJobKind::sefa, s.compute_components, 0, 0, 1.0};
    ImGui::EndDisabled();
    if (s.computing) ImGui::TextDisabled("computing directions...");
    for (size_t k = 0; k < s.directions.size(); ++k) {
        auto& d = s.directions[k];
        ImGui::PushID(static_cast<int>(k));
        float v = static_cast<float>(d.strength);
        if (ImGui::SliderFloat(d.direction.name.c_str(), &v, static_cast<float>(d.direction.strength_min), static_cast<float>(d.direction.strength_max)))
            d.strength = v;
        int range[2] = {d.first_layer, d.last_layer < 0 ? std::max(0, s.model.num_ws - 1) : d.last_layer};
        if (ImGui::SliderInt2("layers", range, 0, std::max(0, s.model.num_ws - 1))) d.first_layer = range[0], d.last_layer = range[1];
        ImGui::PopID();
    }
}

// A second model whose fine layers replace the open model's from a resolution up (latentkit blend, live).
void draw_blend_panel(ViewerState& s) {
    if (!ImGui::CollapsingHeader("Blend")) return;
    text_field("detail model", s.blend_input);
    if (ImGui::Button("Blend with it")) s.blend_model = s.blend_input;
    ImGui::SameLine();
    if (ImGui::Button("Off")) s.blend_model.clear();
    if (s.blend_model.empty()) {
        ImGui::TextDisabled("coarse layers from the open model, fine layers from a second one of the same architecture");
        return;
    }
    ImGui::TextWrapped("detail: %s", s.blend_model.c_str());
    int log2_res = static_cast<int>(std::lround(std::log2(std::max(4, s.blend.from_resolution))));
    const int top = static_cast<int>(std::lround(std::log2(std::max(8, s.model.resolution)))) + 1;
    if (ImGui::SliderInt("from resolution", &log2_res, 2, top, fmt::format("{}", 1 << log2_res).c_str())) s.blend.from_resolution = 1 << log2_res;
    float width = static_cast<float>(s.blend.width);
    if (ImGui::SliderFloat("transition (octaves)", &width, 0.0f, 3.0f)) s.blend.width = width;
    bool detail_mapping = s.blend.mapping == BlendMapping::detail;
    if (ImGui::Checkbox("mapping from the detail model", &detail_mapping)) s.blend.mapping = detail_mapping ? BlendMapping::detail : BlendMapping::base;
    text_field("save as", s.blend_save);
    if (ImGui::Button("Save the blend")) s.blend_save_request = s.blend_save;
}

void draw_layer_panel(ViewerState& s) {
    if (!ImGui::CollapsingHeader("Layer view")) return;
    ImGui::Checkbox("show a layer instead of the output", &s.layer_view);
    int blocks = 0;
    for (int r = 4; r <= s.model.resolution && r > 0; r *= 2) ++blocks;
    ImGui::SliderInt("block", &s.layer_block, 0, std::max(0, blocks - 1), fmt::format("{}x{}", 4 << s.layer_block, 4 << s.layer_block).c_str());
    ImGui::InputInt("channel (-1: RGB of 0-2)", &s.layer_channel);
    s.layer_channel = std::max(-1, s.layer_channel);
    ImGui::TextDisabled("each channel is normalised by its own spread");
}

void draw_display_panel(ViewerState& s) {
    if (ImGui::CollapsingHeader("Display and capture")) {
        ImGui::Checkbox("nearest filtering", &s.nearest);
        float zoom = static_cast<float>(s.zoom);
        if (ImGui::SliderFloat("zoom", &zoom, 0.1f, 16.0f, "%.2f", ImGuiSliderFlags_Logarithmic)) s.zoom = zoom;
        if (ImGui::Button("Fit")) s.zoom = 1, s.pan_x = s.pan_y = 0;
        text_field("capture", s.capture_path);
        if (ImGui::Button("Save image")) s.capture_image = true;
        ImGui::SameLine();
        if (ImGui::Button("Save window")) s.capture_window = true;
    }
    if (ImGui::CollapsingHeader("Performance", ImGuiTreeNodeFlags_DefaultOpen)) {
        ImGui::Text("frame %.1f ms, render %.1f ms", s.frame_ms, s.render_ms);
        ImGui::TextWrapped("model on %s; image upload: %s", s.device.c_str(), s.upload.c_str());
        ImGui::Checkbox("vsync", &s.vsync);
        ImGui::SliderInt("FPS cap", &s.fps_cap, 10, 240);
    }
}

// A small file browser: folders to walk into, files of the kinds the viewer opens.
void draw_files_panel(ViewerState& s) {
    if (!ImGui::CollapsingHeader("Files")) return;
    namespace fs = std::filesystem;
    const fs::path dir = s.browse_dir.empty() ? fs::current_path() : fs::path(s.browse_dir);
    ImGui::TextWrapped("%s", dir.string().c_str());
    ImGui::BeginChild("files", ImVec2(0, 160), true);
    for (const auto& e : s.browse_entries) {
        if (!ImGui::Selectable(e.folder ? (e.name + "/").c_str() : e.name.c_str())) continue;
        const fs::path p = e.name == ".." ? dir.parent_path() : dir / e.name;
        if (e.folder) s.browse_dir = p.string(), s.browse_refresh = true;
        else s.open_files.push_back(p.string());
    }
    ImGui::EndChild();
    ImGui::TextDisabled("models, directions (.json), latents (.npz), photos");
}

void draw_log_panel(const ViewerState& s) {
    if (!ImGui::CollapsingHeader("Log")) return;
    ImGui::BeginChild("log", ImVec2(0, 140), true);
    for (const auto& l : s.log) {
        const ImVec4 colour = l.level == "error" ? ImVec4(1.0f, 0.35f, 0.3f, 1.0f) : l.level == "warning" ? ImVec4(1.0f, 0.8f, 0.3f, 1.0f)
                                                                                                  : ImVec4(0.8f, 0.8f, 0.8f, 1.0f);
        ImGui::PushStyleColor(ImGuiCol_Text, colour);
        ImGui::TextWrapped("%s", l.text.c_str());
        ImGui::PopStyleColor();
    }
    if (ImGui::GetScrollY() >= ImGui::GetScrollMaxY()) ImGui::SetScrollHereY(1.0f);
    ImGui::EndChild();
}

}  // namespace

bool text_field(const char* label, std::string& value, int flags) {
    char buf[1024];
    std::snprintf(buf, sizeof(buf), "%s", value.c_str());
    const bool entered = ImGui::InputText(label, buf, sizeof(buf), flags);
    value = buf;
    return entered;
}

void draw_panels(ViewerState& s, const ProjectionSnapshot& p, const GlImage& target, const GlImage& current, const GlImage& label_grid,
                 bool& label_fresh, const MorphExportState& export_state, const GlImage& curate_grid) {
    ImGui::SetNextWindowPos(ImVec2(0, 0), ImGuiCond_Always);
    ImGui::SetNextWindowSize(ImVec2(kPanelWidth, ImGui::GetIO().DisplaySize.y), ImGuiCond_Always);
    ImGui::Begin("latentkit", nullptr, ImGuiWindowFlags_NoMove | ImGuiWindowFlags_NoResize | ImGuiWindowFlags_NoCollapse);
    if (!s.error.empty()) {
        ImGui::PushStyleColor(ImGuiCol_Text, ImVec4(1.0f, 0.35f, 0.3f, 1.0f));
        ImGui::TextWrapped("%s", s.error.c_str());
        ImGui::PopStyleColor();
    }
    draw_model_panel(s);
    draw_latent_panel(s);
    draw_mixing_panel(s);
    draw_directions_panel(s);
    draw_projection_panel(s, p, target, current);
    draw_labelling_panel(s, label_grid, label_fresh);
    draw_curate_panel(s, curate_grid);
    draw_morph_panel(s, export_state);
    draw_audio_panel(s);
    draw_blend_panel(s);
    draw_layer_panel(s);
    draw_display_panel(s);
    draw_files_panel(s);
    draw_log_panel(s);
    if (!s.status.empty()) ImGui::TextDisabled("%s", s.status.c_str());
    ImGui::End();
}

}  // namespace latentkit::viewer
