// latentkit-viewer: explore a model live. Widgets edit ViewerState; the RenderWorker renders the
// newest request on its own thread; GlImage shows the result.
#include <glad/gl.h>
// glad's header first: it provides the GL declarations GLFW would otherwise include.
#define GLFW_INCLUDE_NONE
#include <GLFW/glfw3.h>
#include <backends/imgui_impl_glfw.h>
#include <backends/imgui_impl_opengl3.h>
#include <fmt/format.h>
#include <imgui.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "gl_image.h"
#include "latentkit/atomic_file.h"
#include "latentkit/error.h"
#include "latentkit/io/npz.h"
#include "latentkit/io/png.h"
#include "latentkit/io/tensor_image.h"
#include "morph_exporter.h"
#include "projection_runner.h"
#include "render_worker.h"
#include "viewer_state.h"

namespace fs = std::filesystem;
using namespace latentkit;
using namespace latentkit::viewer;

namespace {

struct Options {
    std::string model, screenshot, save_image, script, dump_state, device = "cpu";
    int frames = 0;
    bool benchmark = false;
    int width = 1280, height = 800;
};

fs::path settings_path() {
    const char* xdg = std::getenv("XDG_CONFIG_HOME");
    const char* home = std::getenv("HOME");
    const fs::path base = xdg && *xdg ? fs::path(xdg) : home ? fs::path(home) / ".config" : fs::temp_directory_path();
    return base / "latentkit" / "viewer.json";
}

void load_settings(ViewerState& s) {
    try {
        const auto j = nlohmann::json::parse(read_file(settings_path().string()));
        s.recent_models = j.value("recent_models", std::vector<std::string>{});
        s.seed_x = j.value("seed_x", 0.0);
        s.seed_y = j.value("seed_y", 0.0);
        s.psi = j.value("psi", 1.0);
        s.vsync = j.value("vsync", true);
    } catch (const std::exception&) {
        // No settings yet (or unreadable ones): defaults.
    }
}

void save_settings(const ViewerState& s) {
    try {
        fs::create_directories(settings_path().parent_path());
        const std::string text = nlohmann::json{{"recent_models", s.recent_models}, {"seed_x", s.seed_x}, {"seed_y", s.seed_y},
                                                {"psi", s.psi}, {"vsync", s.vsync}}.dump(1);
        write_file_atomic(settings_path().string(), text.data(), text.size());
    } catch (const std::exception&) {
        // Settings are a convenience: failing to save them is not an error worth stopping for.
    }
}

io::Image8 read_window(int w, int h) {
    io::Image8 img{w, h, 3, std::vector<uint8_t>(static_cast<size_t>(w) * h * 3)};
    std::vector<uint8_t> flipped(img.pixels.size());
    glPixelStorei(GL_PACK_ALIGNMENT, 1);
    glReadBuffer(GL_BACK);
    glReadPixels(0, 0, w, h, GL_RGB, GL_UNSIGNED_BYTE, flipped.data());
    for (int y = 0; y < h; ++y) std::copy_n(&flipped[static_cast<size_t>(h - 1 - y) * w * 3], w * 3, &img.pixels[static_cast<size_t>(y) * w * 3]);
    return img;
}

constexpr float kPanelWidth = 380.0f;

// The panels; each edits the state only.
void draw_projection_panel(ViewerState& s, const ProjectionSnapshot& p, const GlImage& target, const GlImage& current) {
    if (p.running) ImGui::SetNextItemOpen(true, ImGuiCond_Once);
    if (!ImGui::CollapsingHeader("Projection")) return;
    char buf[1024];
    std::snprintf(buf, sizeof(buf), "%s", s.project_target.c_str());
    if (ImGui::InputText("photo", buf, sizeof(buf))) s.project_target = buf;
    std::snprintf(buf, sizeof(buf), "%s", s.project_vgg.c_str());
    if (ImGui::InputText("vgg16.pt", buf, sizeof(buf))) s.project_vgg = buf;
    ImGui::Combo("align", &s.project_align, "auto\0face\0center\0none\0");
    ImGui::Combo("space", &s.project_space, "w\0w+\0");
    ImGui::SliderInt("steps", &s.project_steps, 10, 2000);
    if (!p.running) {
        if (ImGui::Button("Project")) {
            ProjectionJob job;
            job.target_path = s.project_target;
            job.vgg = s.project_vgg;
            job.align = std::array<const char*, 4>{"auto", "face", "center", "none"}[static_cast<size_t>(s.project_align)];
            job.space = s.project_space == 1 ? "w+" : "w";
            job.steps = s.project_steps;
            s.project_request = job;
        }
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
        std::snprintf(buf, sizeof(buf), "%s", s.project_save.c_str());
        if (ImGui::InputText("save as", buf, sizeof(buf))) s.project_save = buf;
        if (ImGui::Button("Save .npz")) s.save_projection = true;
    }
    if (!s.base_ws.empty() && ImGui::Button("Back to seeds")) s.base_ws.clear();
}

int grid_cols(size_t n) { return std::max(1, static_cast<int>(std::ceil(std::sqrt(static_cast<double>(n))))); }

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
    if (ImGui::Button("Sample")) s.job_request = DirectionsJob{"samples", 0, s.label_count, s.label_first_seed, s.psi};
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
    char buf[256];
    std::snprintf(buf, sizeof(buf), "%s", s.label_name.c_str());
    if (ImGui::InputText("name", buf, sizeof(buf))) s.label_name = buf;
    ImGui::BeginDisabled(pos < 2 || neg < 2);
    if (ImGui::Button("Fit direction")) s.fit_marks = true;
    ImGui::EndDisabled();
}

void draw_morph_panel(ViewerState& s, const MorphExportState& e) {
    if (!ImGui::CollapsingHeader("Morph")) return;
    if (ImGui::Button("Add the current latent")) s.morph_add = true;
    ImGui::SameLine();
    if (ImGui::Button("Clear")) s.morph_keys.clear(), s.morph_preview = false;
    int remove = -1;
    for (size_t k = 0; k < s.morph_keys.size(); ++k) {
        ImGui::PushID(static_cast<int>(k));
        if (ImGui::SmallButton("x")) remove = static_cast<int>(k);
        ImGui::SameLine();
        ImGui::Text("%zu: %s", k, s.morph_keys[k].first.c_str());
        ImGui::PopID();
    }
    if (remove >= 0) s.morph_keys.erase(s.morph_keys.begin() + remove);
    ImGui::Checkbox("cubic", &s.morph_cubic);
    ImGui::SameLine();
    ImGui::Checkbox("loop", &s.morph_loop);
    ImGui::SliderInt("frames per key", &s.morph_frames, 2, 600);
    ImGui::SliderInt("fps", &s.morph_fps, 1, 120);
    ImGui::BeginDisabled(s.morph_keys.size() < 2);
    ImGui::Checkbox("preview", &s.morph_preview);
    ImGui::SameLine();
    ImGui::Checkbox("play", &s.morph_play);
    float t = static_cast<float>(s.morph_t);
    if (ImGui::SliderFloat("position", &t, 0.0f, 1.0f)) s.morph_t = t, s.morph_preview = true;
    char buf[1024];
    std::snprintf(buf, sizeof(buf), "%s", s.morph_out.c_str());
    if (ImGui::InputText("video", buf, sizeof(buf))) s.morph_out = buf;
    if (!e.running) {
        if (ImGui::Button("Export")) {
            MorphExportJob job;
            job.out = s.morph_out;
            job.frames_per_transition = s.morph_frames;
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

void draw_panels(ViewerState& s, GlImage& image, const ProjectionSnapshot& p, const GlImage& target, const GlImage& current,
                 const GlImage& label_grid, bool& label_fresh, const MorphExportState& export_state) {
    ImGui::SetNextWindowPos(ImVec2(0, 0), ImGuiCond_Always);
    ImGui::SetNextWindowSize(ImVec2(kPanelWidth, ImGui::GetIO().DisplaySize.y), ImGuiCond_Always);
    ImGui::Begin("latentkit", nullptr, ImGuiWindowFlags_NoMove | ImGuiWindowFlags_NoResize | ImGuiWindowFlags_NoCollapse);
    if (!s.error.empty()) {
        ImGui::PushStyleColor(ImGuiCol_Text, ImVec4(1.0f, 0.35f, 0.3f, 1.0f));
        ImGui::TextWrapped("%s", s.error.c_str());
        ImGui::PopStyleColor();
    }
    if (ImGui::CollapsingHeader("Model", ImGuiTreeNodeFlags_DefaultOpen)) {
        char buf[1024];
        std::snprintf(buf, sizeof(buf), "%s", s.model_input.c_str());
        if (ImGui::InputText("path", buf, sizeof(buf), ImGuiInputTextFlags_EnterReturnsTrue)) s.model_path = buf;
        s.model_input = buf;
        if (ImGui::Button("Open")) s.model_path = s.model_input;
        for (const auto& r : s.recent_models)
            if (ImGui::Selectable(r.c_str())) s.model_path = s.model_input = r;
        if (s.model.resolution > 0)
            ImGui::Text("%dx%d, %d channel(s), %d ws of %d, z %d, c %d\n%s, fingerprint %s", s.model.resolution, s.model.resolution, s.model.channels,
                        s.model.num_ws, s.model.w_dim, s.model.z_dim, s.model.c_dim, s.model.format.c_str(), s.model.fingerprint.c_str());
    }
    if (ImGui::CollapsingHeader("Latent", ImGuiTreeNodeFlags_DefaultOpen)) {
        double step = 1.0;
        ImGui::InputScalar("seed x", ImGuiDataType_Double, &s.seed_x, &step, nullptr, "%.3f");
        ImGui::InputScalar("seed y", ImGuiDataType_Double, &s.seed_y, &step, nullptr, "%.3f");
        if (ImGui::Button("Snap")) s.seed_x = std::round(s.seed_x), s.seed_y = std::round(s.seed_y);
        ImGui::SameLine();
        ImGui::Checkbox("Animate", &s.animate);
        float speed = static_cast<float>(s.speed);
        if (ImGui::SliderFloat("speed", &speed, 0.01f, 5.0f, "%.2f seeds/s")) s.speed = speed;
        ImGui::TextDisabled("drag in the image to move through seeds");
        float psi = static_cast<float>(s.psi);
        if (ImGui::SliderFloat("truncation psi", &psi, -1.0f, 2.0f)) s.psi = psi;
        ImGui::SliderInt("cutoff", &s.cutoff, -1, std::max(1, s.model.num_ws), s.cutoff < 0 ? "all layers" : "%d");
        ImGui::Combo("noise", &s.noise_mode, "const\0random\0none\0");
        if (s.noise_mode == 1) ImGui::InputInt("noise seed", &s.noise_seed);
    }
    if (ImGui::CollapsingHeader("Style mixing")) {
        ImGui::Checkbox("mix", &s.mix);
        ImGui::InputInt("mix seed", &s.mix_seed);
        if (s.mix_layers.size() != static_cast<size_t>(s.model.num_ws)) s.mix_layers.assign(static_cast<size_t>(std::max(0, s.model.num_ws)), false);
        for (size_t l = 0; l < s.mix_layers.size(); ++l) {
            bool on = s.mix_layers[l];
            if (l % 6) ImGui::SameLine();
            if (ImGui::Checkbox(fmt::format("{}##mix", l).c_str(), &on)) s.mix_layers[l] = on;
        }
    }
    if (ImGui::CollapsingHeader("Directions", ImGuiTreeNodeFlags_DefaultOpen)) {
        char buf[1024];
        std::snprintf(buf, sizeof(buf), "%s", s.direction_input.c_str());
        ImGui::InputText("file", buf, sizeof(buf));
        s.direction_input = buf;
        if (ImGui::Button("Load")) {
            try {
                add_direction_file(s, s.direction_input);
                s.error.clear();
            } catch (const std::exception& e) {
                s.error = e.what();
            }
        }
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
        if (ImGui::Button("Compute PCA")) s.job_request = DirectionsJob{"pca", s.compute_components, s.compute_samples, 0, 1.0};
        ImGui::SameLine();
        if (ImGui::Button("Compute closed-form")) s.job_request = DirectionsJob{"sefa", s.compute_components, 0, 0, 1.0};
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
    if (!s.base_ws.empty()) ImGui::TextColored(ImVec4(0.5f, 0.8f, 1.0f, 1.0f), "showing a projected latent (Projection: Back to seeds)");
    draw_projection_panel(s, p, target, current);
    draw_labelling_panel(s, label_grid, label_fresh);
    draw_morph_panel(s, export_state);
    if (ImGui::CollapsingHeader("Layer view")) {
        ImGui::Checkbox("show a layer instead of the output", &s.layer_view);
        int blocks = 0;
        for (int r = 4; r <= s.model.resolution && r > 0; r *= 2) ++blocks;
        ImGui::SliderInt("block", &s.layer_block, 0, std::max(0, blocks - 1), fmt::format("{}x{}", 4 << s.layer_block, 4 << s.layer_block).c_str());
        ImGui::InputInt("channel (-1: RGB of 0-2)", &s.layer_channel);
        s.layer_channel = std::max(-1, s.layer_channel);
        ImGui::TextDisabled("each channel is normalised by its own spread");
    }
    if (ImGui::CollapsingHeader("Display and capture")) {
        ImGui::Checkbox("nearest filtering", &s.nearest);
        float zoom = static_cast<float>(s.zoom);
        if (ImGui::SliderFloat("zoom", &zoom, 0.1f, 16.0f, "%.2f", ImGuiSliderFlags_Logarithmic)) s.zoom = zoom;
        if (ImGui::Button("Fit")) s.zoom = 1, s.pan_x = s.pan_y = 0;
        char buf[1024];
        std::snprintf(buf, sizeof(buf), "%s", s.capture_path.c_str());
        ImGui::InputText("capture", buf, sizeof(buf));
        s.capture_path = buf;
        if (ImGui::Button("Save image")) {
            try {
                io::write_png(s.capture_path, image.read_back());
                s.status = "saved " + s.capture_path;
            } catch (const std::exception& e) {
                s.error = e.what();
            }
        }
        ImGui::SameLine();
        if (ImGui::Button("Save window")) s.capture_window = true;
    }
    if (ImGui::CollapsingHeader("Performance", ImGuiTreeNodeFlags_DefaultOpen)) {
        ImGui::Text("frame %.1f ms, render %.1f ms", s.frame_ms, s.render_ms);
        ImGui::Checkbox("vsync", &s.vsync);
        ImGui::SliderInt("FPS cap", &s.fps_cap, 10, 240);
    }
    if (!s.status.empty()) ImGui::TextDisabled("%s", s.status.c_str());
    ImGui::End();
}

int run(const Options& o) {
    glfwSetErrorCallback([](int, const char*) {});
    if (!glfwInit()) {
        std::fprintf(stderr, "latentkit-viewer: error: no display (set DISPLAY, or run it under xvfb-run)\n");
        return 1;
    }
    glfwWindowHint(GLFW_CONTEXT_VERSION_MAJOR, 3);
    glfwWindowHint(GLFW_CONTEXT_VERSION_MINOR, 3);
    glfwWindowHint(GLFW_OPENGL_PROFILE, GLFW_OPENGL_CORE_PROFILE);
    glfwWindowHint(GLFW_OPENGL_FORWARD_COMPAT, GLFW_TRUE);
    GLFWwindow* window = glfwCreateWindow(o.width, o.height, "latentkit viewer", nullptr, nullptr);
    if (!window) {
        glfwTerminate();
        std::fprintf(stderr, "latentkit-viewer: error: cannot create an OpenGL 3.3 core window on this display\n");
        return 1;
    }
    glfwMakeContextCurrent(window);
    if (!gladLoadGL(glfwGetProcAddress)) {
        std::fprintf(stderr, "latentkit-viewer: error: cannot load OpenGL functions\n");
        return 1;
    }
    IMGUI_CHECKVERSION();
    ImGui::CreateContext();
    static std::string ini = (settings_path().parent_path() / "imgui.ini").string();
    ImGui::GetIO().IniFilename = o.screenshot.empty() && o.script.empty() ? ini.c_str() : nullptr;
    ImGui::StyleColorsDark();
    ImGui_ImplGlfw_InitForOpenGL(window, true);
    ImGui_ImplOpenGL3_Init("#version 330");

    int rc = 0;
    {
        GlImage image(find_shader_dir());
        RenderWorker worker;
        ProjectionRunner runner;
        GlImage proj_target(find_shader_dir()), proj_current(find_shader_dir()), label_grid(find_shader_dir());
        ProjectionSnapshot proj_snap;
        bool label_fresh = false;
        MorphExporter exporter;
        MorphExportState export_state;
        ViewerState s;
        if (o.script.empty() && o.screenshot.empty()) load_settings(s);
        if (!o.model.empty()) s.model_path = s.model_input = o.model;
        s.device = o.device;
        std::deque<std::string> script;
        if (!o.script.empty()) {
            std::ifstream in(o.script);
            if (!in) throw IoError(o.script + ": cannot open the script");
            for (std::string line; std::getline(in, line);)
                if (!line.empty() && line[0] != '#') script.push_back(line);
        }
        RenderRequest last_sent;
        bool have_sent = false;
        uint64_t next_id = 1, shown_id = 0;
        int frame = 0, wait_frames = 0;
        bool quit = false;
        std::string pending_screenshot;
        std::vector<double> bench_frame_ms, bench_render_ms;
        auto last = std::chrono::steady_clock::now();
        while (!glfwWindowShouldClose(window) && !quit) {
            glfwPollEvents();
            const auto now = std::chrono::steady_clock::now();
            const double dt = std::chrono::duration<double>(now - last).count();
            last = now;
            s.frame_ms = dt * 1000.0;
            if (s.animate || o.benchmark) s.seed_x += s.speed * dt * (o.benchmark ? 4 : 1);

            // Script: one command per frame; "sync" waits for the newest request to be shown.
            if (wait_frames > 0) {
                --wait_frames;
            } else if (!script.empty()) {
                const std::string line = script.front();
                const bool synced = have_sent && shown_id == last_sent.id && !worker.busy() && !s.computing && !s.job_request &&
                                    !s.project_request && !proj_snap.running && !s.fit_marks && !s.morph_add && !s.morph_export &&
                                    !export_state.running;
                if (line == "sync") {
                    if (synced) script.pop_front();
                } else {
                    script.pop_front();
                    std::istringstream in(line);
                    std::string cmd, arg;
                    in >> cmd >> arg;
                    try {
                        if (cmd == "wait") wait_frames = std::stoi(arg);
                        else if (cmd == "screenshot") pending_screenshot = arg;  // taken after this frame is drawn
                        else if (cmd == "save-image") io::write_png(arg, image.read_back());
                        else if (cmd == "save-projection") s.project_save = arg, s.save_projection = true;
                        else if (cmd == "quit") quit = true;
                        else if (!apply_script_line(s, line)) throw ArgumentError("script: unknown command '" + cmd + "'");
                    } catch (const std::exception& e) {
                        std::fprintf(stderr, "latentkit-viewer: error: %s\n", e.what());
                        rc = 1;
                        quit = true;
                    }
                }
            }

            if (auto r = worker.poll()) {
                shown_id = r->id;
                if (r->model) {
                    s.model = *r->model;
                    remember_model(s, r->model->path);
                }
                s.render_ms = r->render_ms;
                if (r->error.empty()) {
                    s.current_ws = r->ws;
                    s.current_label = !last_sent.base_ws.empty() ? "projected / previewed latent" : fmt::format("seed {:.2f}, {:.2f}", last_sent.seed_x, last_sent.seed_y);
                    if (!last_sent.edits.empty()) s.current_label += " (edited)";
                    image.upload(r->image);
                    s.error.clear();
                } else {
                    s.error = r->error;
                }
                if (o.benchmark) bench_render_ms.push_back(r->render_ms);
            }
            if (s.job_request && s.model.w_dim > 0) {
                worker.submit_job(*s.job_request);
                s.job_request.reset();
                s.computing = true;
            }
            if (auto j = worker.poll_job()) {
                s.computing = false;
                if (j->error.empty() && j->kind == "samples") {
                    s.label_seeds = j->seeds;
                    s.label_w = j->w;
                    s.label_marks.assign(j->seeds.size(), 0);
                    const int cols = grid_cols(j->images.size());
                    label_grid.upload(io::tile_images(j->images, cols, static_cast<int>((j->images.size() + cols - 1) / cols)));
                    label_fresh = true;
                } else if (j->error.empty()) {
                    add_direction_set(s, j->set, j->set.directions.front().source);
                    s.status = fmt::format("computed {} {} direction(s)", j->set.directions.size(), j->set.directions.front().source);
                } else {
                    s.error = j->error;
                }
            }
            // Projection: start, cancel, follow, use and save.
            if (s.project_request) {
                ProjectionJob job = *s.project_request;
                s.project_request.reset();
                job.model_path = s.model_path;
                job.device = s.device;
                runner.start(job);
                proj_snap = runner.snapshot();
            }
            if (s.cancel_projection) runner.cancel(), s.cancel_projection = false;
            if (const ProjectionSnapshot snap = runner.snapshot(); snap.version != proj_snap.version) {
                if (!snap.target.pixels.empty()) proj_target.upload(snap.target);
                if (!snap.current.pixels.empty()) proj_current.upload(snap.current);
                proj_snap = snap;
            }
            if (s.use_projection) {
                if (proj_snap.done) s.base_ws = proj_snap.ws;
                else s.error = "no finished projection to use";
                s.use_projection = false;
            }
            if (s.save_projection) {
                s.save_projection = false;
                try {
                    if (!proj_snap.done) throw Error("no finished projection to save");
                    io::write_npz(s.project_save, {{"w", TensorData::from_floats({1, proj_snap.num_ws, proj_snap.w_dim}, proj_snap.ws)}});
                    s.status = "saved " + s.project_save;
                } catch (const std::exception& e) {
                    s.error = e.what();
                }
            }
            if (s.fit_marks) {
                s.fit_marks = false;
                try {
                    fit_marked_direction(s);
                    s.status = "fitted '" + s.label_name + "' from the marks";
                } catch (const std::exception& e) {
                    s.error = e.what();
                }
            }
            // Morph: keyframes from the image on screen, playback, export.
            if (s.morph_add && (shown_id == last_sent.id || !have_sent)) {
                s.morph_add = false;
                if (s.current_ws.empty()) s.error = "nothing rendered yet to add as a keyframe";
                else s.morph_keys.emplace_back(s.current_label, s.current_ws);
            }
            if (s.morph_play && s.morph_keys.size() >= 2) {
                const double seconds = static_cast<double>(s.morph_keys.size() - (s.morph_loop ? 0 : 1)) * s.morph_frames / std::max(1, s.morph_fps);
                s.morph_t = std::fmod(s.morph_t + dt / seconds, 1.0);
                s.morph_preview = true;
            }
            if (s.morph_export) {
                MorphExportJob job = *s.morph_export;
                s.morph_export.reset();
                job.model_path = s.model_path;
                job.device = s.device;
                job.cubic = s.morph_cubic;
                job.loop = s.morph_loop;
                job.fps = s.morph_fps;
                for (const auto& k : s.morph_keys) job.keys.push_back(k.second);
                exporter.start(job);
            }
            if (s.cancel_export) exporter.cancel(), s.cancel_export = false;
            export_state = exporter.state();
            RenderRequest want = request_from(s);
            want.id = last_sent.id;
            const bool changed = !have_sent || !same_render(want, last_sent);
            if (changed && !s.model_path.empty()) {
                want.id = next_id++;
                worker.submit(want);
                last_sent = want;
                have_sent = true;
            }

            ImGui_ImplOpenGL3_NewFrame();
            ImGui_ImplGlfw_NewFrame();
            ImGui::NewFrame();
            draw_panels(s, image, proj_snap, proj_target, proj_current, label_grid, label_fresh, export_state);
            // Dragging in the image moves through seeds; the wheel zooms; the right button pans.
            ImGuiIO& io = ImGui::GetIO();
            if (!io.WantCaptureMouse && io.MousePos.x > kPanelWidth) {
                if (ImGui::IsMouseDown(ImGuiMouseButton_Left)) s.seed_x -= io.MouseDelta.x * 0.01, s.seed_y -= io.MouseDelta.y * 0.01;
                if (ImGui::IsMouseDown(ImGuiMouseButton_Right)) s.pan_x += io.MouseDelta.x, s.pan_y += io.MouseDelta.y;
                if (io.MouseWheel != 0) s.zoom = std::clamp(s.zoom * std::pow(1.1, io.MouseWheel), 0.1, 16.0);
            }
            ImGui::Render();
            int fb_w, fb_h;
            glfwGetFramebufferSize(window, &fb_w, &fb_h);
            glViewport(0, 0, fb_w, fb_h);
            glClearColor(0.08f, 0.08f, 0.09f, 1.0f);
            glClear(GL_COLOR_BUFFER_BIT);
            const int panel = static_cast<int>(kPanelWidth);
            image.draw(panel, 0, fb_w - panel, fb_h, fb_w, fb_h, ImageView{s.zoom, s.pan_x, s.pan_y, s.nearest});
            ImGui_ImplOpenGL3_RenderDrawData(ImGui::GetDrawData());
            ++frame;
            if (s.capture_window) {
                s.capture_window = false;
                try {
                    io::write_png(s.capture_path, read_window(fb_w, fb_h));
                    s.status = "saved the window to " + s.capture_path;
                } catch (const std::exception& e) {
                    s.error = e.what();
                }
            }
            if (!pending_screenshot.empty()) {
                io::write_png(pending_screenshot, read_window(fb_w, fb_h));
                pending_screenshot.clear();
            }
            if (!o.screenshot.empty() && o.frames > 0 && frame == o.frames) {
                io::write_png(o.screenshot, read_window(fb_w, fb_h));
                quit = true;
            }
            if (!o.save_image.empty() && o.frames > 0 && frame == o.frames && !image.empty()) io::write_png(o.save_image, image.read_back());
            if (o.frames > 0 && frame >= o.frames && o.script.empty()) quit = true;
            glfwSwapInterval(s.vsync && !o.benchmark ? 1 : 0);
            glfwSwapBuffers(window);
            if (o.benchmark && frame > 2) bench_frame_ms.push_back(s.frame_ms);
            if (!s.vsync && s.fps_cap > 0 && !o.benchmark) {
                const double budget = 1.0 / s.fps_cap - std::chrono::duration<double>(std::chrono::steady_clock::now() - now).count();
                if (budget > 0) std::this_thread::sleep_for(std::chrono::duration<double>(budget));
            }
            if (o.script.size() && script.empty() && !quit && o.frames == 0) quit = true;
        }
        if (o.benchmark) {
            auto median = [](std::vector<double> v) {
                if (v.empty()) return 0.0;
                std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
                return v[v.size() / 2];
            };
            std::printf("viewer benchmark: %d frames, frame time median %.2f ms (%.1f FPS), render time median %.1f ms over %zu renders\n", frame,
                        median(bench_frame_ms), 1000.0 / std::max(1e-3, median(bench_frame_ms)), median(bench_render_ms), bench_render_ms.size());
        }
        if (!o.dump_state.empty()) {
            const std::string text = nlohmann::json{{"error", s.error}, {"model", s.model_path}, {"resolution", s.model.resolution},
                                                    {"seed_x", s.seed_x}, {"directions", s.directions.size()},
                                                    {"projection", {{"done", proj_snap.done}, {"error", proj_snap.error}, {"step", proj_snap.step},
                                                                    {"alignment", proj_snap.alignment}}},
                                                    {"projected_latent", !s.base_ws.empty()},
                                                    {"morph", {{"keys", s.morph_keys.size()}, {"done", export_state.done}, {"error", export_state.error},
                                                               {"frames", export_state.frames}}}}.dump(1);
            write_file_atomic(o.dump_state, text.data(), text.size());
        }
        if (o.script.empty() && o.screenshot.empty() && !o.benchmark) save_settings(s);
    }
    ImGui_ImplOpenGL3_Shutdown();
    ImGui_ImplGlfw_Shutdown();
    ImGui::DestroyContext();
    glfwDestroyWindow(window);
    glfwTerminate();
    return rc;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"latentkit-viewer: explore a StyleGAN2-ADA model live"};
    Options o;
    app.add_option("model", o.model, "Model file to open (.pkl or .safetensors)");
    app.add_option("--screenshot", o.screenshot, "Save the window to this PNG after --frames frames, then exit");
    app.add_option("--save-image", o.save_image, "Save the generated image to this PNG after --frames frames");
    app.add_option("--frames", o.frames, "Frames to run before --screenshot / exit");
    app.add_option("--script", o.script, "Replay UI actions from this file, one per frame, then exit");
    app.add_option("--dump-state", o.dump_state, "Write the final state (error, model, seed) as JSON at exit");
    app.add_option("--device", o.device, "Where the model runs: cpu or cuda[:N] (needs a LibTorch with CUDA)");
    app.add_flag("--benchmark", o.benchmark, "Animate through seeds without vsync and report frame and render times");
    app.add_option("--width", o.width, "Window width");
    app.add_option("--height", o.height, "Window height");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }
    if (o.benchmark && o.frames == 0) o.frames = 300;
    try {
        return run(o);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "latentkit-viewer: error: %s\n", e.what());
        return 1;
    }
}
