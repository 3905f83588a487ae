// The viewer application: window, frame loop, script commands that need the window.
#include "app.h"
#include "error_text.h"

#include <glad/gl.h>
// glad's header first: it provides the GL declarations GLFW would otherwise include.
#define GLFW_INCLUDE_NONE
#include <GLFW/glfw3.h>
#include <backends/imgui_impl_glfw.h>
#include <backends/imgui_impl_opengl3.h>
#include <imgui.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "latentkit/atomic_file.h"
#include "latentkit/error.h"
#include "latentkit/io/bundled_model.h"
#include "panels.h"

namespace latentkit::viewer {
namespace fs = std::filesystem;

namespace {

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
        s.spec.psi = j.value("psi", 1.0);
        s.vsync = j.value("vsync", true);
    } catch (const std::exception&) {
        // No settings yet (or unreadable ones): defaults.
    }
}

void save_settings(const ViewerState& s) {
    try {
        fs::create_directories(settings_path().parent_path());
        const std::string text = nlohmann::json{{"recent_models", s.recent_models}, {"seed_x", s.seed_x}, {"seed_y", s.seed_y},
                                                {"psi", s.spec.psi}, {"vsync", s.vsync}}.dump(1);
        write_file_atomic(settings_path().string(), text.data(), text.size());
    } catch (const std::exception&) {
        // Settings are a convenience: failing to save them is not an error worth stopping for.
    }
}

Image8 read_window(int w, int h) {
    Image8 img{w, h, 3, std::vector<uint8_t>(static_cast<size_t>(w) * h * 3)};
    std::vector<uint8_t> flipped(img.pixels.size());
    glPixelStorei(GL_PACK_ALIGNMENT, 1);
    glReadBuffer(GL_BACK);
    glReadPixels(0, 0, w, h, GL_RGB, GL_UNSIGNED_BYTE, flipped.data());
    for (int y = 0; y < h; ++y) std::copy_n(&flipped[static_cast<size_t>(h - 1 - y) * w * 3], w * 3, &img.pixels[static_cast<size_t>(y) * w * 3]);
    return img;
}

double median(std::vector<double> v) {
    if (v.empty()) return 0.0;
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
    return v[v.size() / 2];
}

double peak_rss_mib() {
    std::FILE* f = std::fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    double kib = -1;
    while (std::fgets(line, sizeof(line), f))
        if (std::sscanf(line, "VmHWM: %lf kB", &kib) == 1) break;
    std::fclose(f);
    return kib < 0 ? -1 : kib / 1024;
}

}  // namespace

void App::write_state(const std::string& path) const {
    const ProjectionSnapshot& p = dispatcher_->projection();
    const MorphExportState& e = dispatcher_->export_state();
    const std::string text =
        nlohmann::json{{"error", s_.error}, {"model", s_.model_path}, {"family", s_.model.family}, {"resolution", s_.model.resolution},
                       {"device", s_.device}, {"upload", s_.upload}, {"seed_x", s_.seed_x}, {"seed_y", s_.seed_y}, {"psi", s_.spec.psi},
                       {"class", s_.spec.class_index.value_or(-1)}, {"directions", s_.directions.size()},
                       {"sliders", [&] {
                            std::vector<double> v;
                            for (const auto& d : s_.directions) v.push_back(d.strength);
                            return v;
                        }()},
                       {"audio", {{"source", s_.audio.source}, {"status", s_.audio.status}, {"time", s_.audio.time}}},
                       {"osc", s_.osc_status},
                       {"curate", {{"status", s_.curate.status}, {"ones", s_.curate.ones}, {"zeros", s_.curate.zeros},
                                   {"probabilities", s_.curate.probability}, {"names", s_.curate.names}}},
                       {"projection", {{"done", p.done}, {"error", p.error}, {"step", p.step}, {"alignment", p.alignment}}},
                       {"projected_latent", s_.spec.ws.defined()},
                       {"morph", {{"keys", s_.morph.w_keys.size()}, {"done", e.done}, {"error", e.error}, {"frames", e.frames}}},
                       {"model_loads", dispatcher_->models().loads()}, {"peak_rss_mib", peak_rss_mib()},
                       {"log", [&] {
                            std::vector<std::string> lines;
                            for (const auto& l : s_.log) lines.push_back(l.level + ": " + l.text);
                            return lines;
                        }()},
                       {"browse", [&] {
                            std::vector<std::string> names;
                            for (const auto& f : s_.browse_entries) names.push_back(f.name);
                            return names;
                        }()}}
            .dump(1);
    write_file_atomic(path, text.data(), text.size());
}

GlfwSession::GlfwSession() {
    glfwSetErrorCallback([](int, const char*) {});
#ifdef GLFW_PLATFORM
    // GLFW 3.4 tries Wayland first, whose library prints its own complaint when there is no session.
    if (!std::getenv("WAYLAND_DISPLAY")) glfwInitHint(GLFW_PLATFORM, GLFW_PLATFORM_X11);
#endif
    if (!glfwInit()) throw Error("no display (set DISPLAY, or run it under xvfb-run)");
}

GlfwSession::~GlfwSession() { glfwTerminate(); }

Window::Window(int width, int height, const char* title) {
    glfwWindowHint(GLFW_CONTEXT_VERSION_MAJOR, 3);
    glfwWindowHint(GLFW_CONTEXT_VERSION_MINOR, 3);
    glfwWindowHint(GLFW_OPENGL_PROFILE, GLFW_OPENGL_CORE_PROFILE);
    glfwWindowHint(GLFW_OPENGL_FORWARD_COMPAT, GLFW_TRUE);
    window_ = glfwCreateWindow(width, height, title, nullptr, nullptr);
    if (!window_) throw Error("cannot create an OpenGL 3.3 core window on this display");
    glfwMakeContextCurrent(window_);
    if (!gladLoadGL(glfwGetProcAddress)) {
        glfwDestroyWindow(window_);
        throw Error("cannot load OpenGL functions");
    }
}

Window::~Window() { glfwDestroyWindow(window_); }

ImGuiSession::ImGuiSession(GLFWwindow* window, const char* ini_file) {
    IMGUI_CHECKVERSION();
    ImGui::CreateContext();
    ImGui::GetIO().IniFilename = ini_file;
    ImGui::StyleColorsDark();
    ImGui_ImplGlfw_InitForOpenGL(window, true);
    ImGui_ImplOpenGL3_Init("#version 330");
}

ImGuiSession::~ImGuiSession() {
    ImGui_ImplOpenGL3_Shutdown();
    ImGui_ImplGlfw_Shutdown();
    ImGui::DestroyContext();
}

App::App(const AppOptions& options)
    : o_(options),
      window_(o_.width, o_.height, "latentkit viewer"),
      ini_path_(o_.screenshot.empty() && o_.script.empty() ? (settings_path().parent_path() / "imgui.ini").string() : ""),
      imgui_(window_.get(), ini_path_.empty() ? nullptr : ini_path_.c_str()),
      image_(find_shader_dir()),
      proj_target_(find_shader_dir()),
      proj_current_(find_shader_dir()),
      label_grid_(find_shader_dir()),
      curate_grid_(find_shader_dir()) {
    glfwSetWindowUserPointer(window_.get(), this);
    glfwSetDropCallback(window_.get(), &App::on_drop);
    if (!o_.script.empty()) script_ = ScriptRunner::from_file(o_.script);
    if (o_.script.empty() && o_.screenshot.empty()) load_settings(s_);
    s_.device = o_.device;
    const bool on_cuda = s_.device.rfind("cuda", 0) == 0;
    s_.upload = !on_cuda ? "host memory" : interop_.available() ? "CUDA-GL interop" : "host memory (CUDA-GL interop: " + interop_.reason() + ")";
    dispatcher_ = std::make_unique<Dispatcher>(interop_.available());
    live_ = std::make_unique<LiveAudio>(dispatcher_->models());
    if (!o_.script.empty()) live_->set_fixed_step(1.0 / kLiveAudioFps);  // scripted runs: the same frames every time
    if (o_.osc_port > 0) osc_ = std::make_unique<OscServer>(o_.osc_port, o_.osc_any_host);
    if (!o_.audio_map.empty()) s_.audio_commands.push_back("audio-map " + o_.audio_map);
    if (!o_.audio.empty()) s_.audio_commands.push_back("audio " + o_.audio);
    open_initial_model();
}

void App::open_initial_model() {
    if (!o_.model.empty()) {
        s_.model_path = s_.model_input = o_.model;
        return;
    }
    if (!s_.model_path.empty()) return;
    try {
        const io::DefaultModel d = io::default_model();
        s_.model_path = s_.model_input = d.path;
        std::fprintf(stderr, "latentkit-viewer: no model given: opening the %s model %s\n", d.origin.c_str(), d.path.c_str());
    } catch (const IoError& e) {
        std::fprintf(stderr, "latentkit-viewer: %s\n", e.what());
    }
}

void App::on_drop(GLFWwindow* window, int count, const char** paths) {
    auto* app = static_cast<App*>(glfwGetWindowUserPointer(window));
    for (int k = 0; k < count; ++k) app->s_.open_files.emplace_back(paths[k]);
}

int App::run() {
    auto last = std::chrono::steady_clock::now();
    while (!glfwWindowShouldClose(window_.get()) && !quit_) {
        glfwPollEvents();
        const auto now = std::chrono::steady_clock::now();
        const double dt = std::chrono::duration<double>(now - last).count();
        last = now;
        s_.frame_ms = dt * 1000.0;
        if (s_.animate || o_.benchmark) s_.seed_x += s_.speed * dt * (o_.benchmark ? 4 : 1);
        run_script();
        take_osc();
        live_->step(s_, dt);
        show(dispatcher_->step(s_, dt));
        int fb_w, fb_h;
        glfwGetFramebufferSize(window_.get(), &fb_w, &fb_h);
        draw(fb_w, fb_h);
        after_frame(fb_w, fb_h);
        glfwSwapInterval(s_.vsync && !o_.benchmark ? 1 : 0);
        glfwSwapBuffers(window_.get());
        if (o_.benchmark && frame_ > 2) bench_frame_ms_.push_back(s_.frame_ms);
        if (!s_.vsync && s_.fps_cap > 0 && !o_.benchmark) {
            const double budget = 1.0 / s_.fps_cap - std::chrono::duration<double>(std::chrono::steady_clock::now() - now).count();
            if (budget > 0) std::this_thread::sleep_for(std::chrono::duration<double>(budget));
        }
        if (!o_.script.empty() && script_.done() && o_.frames == 0) quit_ = true;
    }
    finish();
    return rc_;
}

void App::run_script() {
    try {
        const std::optional<std::string> line = script_.next(dispatcher_->idle(s_), dispatcher_->tasks_busy());
        if (!line || run_app_command(*line)) return;
        if (!apply_script_line(s_, *line)) throw ArgumentError("script: unknown command '" + line->substr(0, line->find(' ')) + "'");
    } catch (const std::exception& e) {
        std::fprintf(stderr, "latentkit-viewer: error: %s\n", error_text(e).c_str());
        rc_ = 1;
        quit_ = true;
    }
}

// OSC messages, as script lines: a bad one is an error on screen, and the server keeps listening.
void App::take_osc() {
    if (!osc_) return;
    for (const std::string& line : osc_->take()) {
        try {
            if (line.rfind("error ", 0) == 0) throw ArgumentError(line.substr(6));
            if (!run_app_command(line) && !apply_script_line(s_, line))
                throw ArgumentError("OSC: unknown command '" + line.substr(0, line.find(' ')) + "'");
        } catch (const std::exception& e) {
            s_.error = error_text(e);
            s_.log.push_back({"error", s_.error});
        }
    }
    s_.osc_status = osc_->status();
}

bool App::run_app_command(const std::string& line) {
    const size_t space = line.find(' ');
    const std::string cmd = line.substr(0, space), arg = space == std::string::npos ? "" : line.substr(space + 1);
    if (cmd == "screenshot") {
        pending_screenshot_ = arg;  // taken after this frame is drawn
    } else if (cmd == "save-image") {
        if (image_.empty()) throw Error(arg + ": no image to save" + (s_.error.empty() ? "" : " (" + s_.error + ")"));
        dispatcher_->save_png(arg, image_.read_back());
    } else if (cmd == "drop") {
        const char* path = arg.c_str();
        on_drop(window_.get(), 1, &path);
    } else if (cmd == "quit") {
        quit_ = true;
    } else {
        return false;
    }
    return true;
}

void App::show(const DispatchEvents& events) {
    if (const auto& r = events.render; r && r->error.empty()) {
        if (r->device_image && !image_.upload(*r->device_image, interop_)) {
            s_.upload = "host memory (CUDA-GL interop: " + interop_.reason() + ")";
            std::fprintf(stderr, "latentkit-viewer: CUDA-GL interop is off (%s): uploading from host memory\n", interop_.reason().c_str());
            image_.upload(r->device_image->to_host());
            dispatcher_->stop_device_output();  // from now on the worker hands back host images
        } else if (!r->device_image) {
            image_.upload(r->image);
        }
    }
    if (events.render && o_.benchmark) bench_render_ms_.push_back(events.render->render_ms);
    if (events.projection_changed) {
        const ProjectionSnapshot& p = dispatcher_->projection();
        if (!p.target.pixels.empty()) proj_target_.upload(p.target);
        if (!p.current.pixels.empty()) proj_current_.upload(p.current);
    }
    if (s_.curate_version != curate_version_) {
        curate_version_ = s_.curate_version;
        if (!s_.curate.grid.pixels.empty()) curate_grid_.upload(s_.curate.grid);
    }
    if (s_.label_grid_version != label_version_) {
        label_version_ = s_.label_grid_version;
        label_grid_.upload(s_.label_grid);
        label_fresh_ = true;
    }
}

void App::draw(int fb_w, int fb_h) {
    ImGui_ImplOpenGL3_NewFrame();
    ImGui_ImplGlfw_NewFrame();
    ImGui::NewFrame();
    draw_panels(s_, dispatcher_->projection(), proj_target_, proj_current_, label_grid_, label_fresh_, dispatcher_->export_state(), curate_grid_);
    // Dragging in the image moves through seeds; the wheel zooms; the right button pans.
    ImGuiIO& io = ImGui::GetIO();
    if (!io.WantCaptureMouse && io.MousePos.x > kPanelWidth) {
        if (ImGui::IsMouseDown(ImGuiMouseButton_Left)) s_.seed_x -= io.MouseDelta.x * 0.01, s_.seed_y -= io.MouseDelta.y * 0.01;
        if (ImGui::IsMouseDown(ImGuiMouseButton_Right)) s_.pan_x += io.MouseDelta.x, s_.pan_y += io.MouseDelta.y;
        if (io.MouseWheel != 0) s_.zoom = std::clamp(s_.zoom * std::pow(1.1, io.MouseWheel), 0.1, 16.0);
    }
    ImGui::Render();
    glViewport(0, 0, fb_w, fb_h);
    glClearColor(0.08f, 0.08f, 0.09f, 1.0f);
    glClear(GL_COLOR_BUFFER_BIT);
    const int panel = static_cast<int>(kPanelWidth);
    image_.draw(panel, 0, fb_w - panel, fb_h, fb_w, fb_h, ImageView{s_.zoom, s_.pan_x, s_.pan_y, s_.nearest});
    ImGui_ImplOpenGL3_RenderDrawData(ImGui::GetDrawData());
    ++frame_;
}

void App::after_frame(int fb_w, int fb_h) {
    if (std::exchange(s_.capture_window, false)) dispatcher_->save_png(s_.capture_path, read_window(fb_w, fb_h));
    if (std::exchange(s_.capture_image, false)) {
        if (image_.empty()) s_.error = "no image to save yet";
        else dispatcher_->save_png(s_.capture_path, image_.read_back());
    }
    if (!pending_screenshot_.empty()) dispatcher_->save_png(std::exchange(pending_screenshot_, {}), read_window(fb_w, fb_h));
    const bool last_frame = o_.frames > 0 && frame_ == o_.frames;
    if (last_frame && !o_.screenshot.empty()) dispatcher_->save_png(o_.screenshot, read_window(fb_w, fb_h)), quit_ = true;
    if (last_frame && !o_.save_image.empty() && !image_.empty()) dispatcher_->save_png(o_.save_image, image_.read_back());
    if (o_.frames > 0 && frame_ >= o_.frames && o_.script.empty()) quit_ = true;
}

void App::finish() {
    if (o_.benchmark)
        std::printf("viewer benchmark: %d frames, frame time median %.2f ms (%.1f FPS), render time median %.1f ms over %zu renders; "
                    "device %s, upload through %s\n", frame_, median(bench_frame_ms_), 1000.0 / std::max(1e-3, median(bench_frame_ms_)),
                    median(bench_render_ms_), bench_render_ms_.size(), s_.device.c_str(), s_.upload.c_str());
    live_->finish(s_);       // a recording in progress is written
    dispatcher_->drain(s_);  // queued writes finish and report
    if (!o_.dump_state.empty()) write_state(o_.dump_state);
    dispatcher_.reset();
    if (o_.script.empty() && o_.screenshot.empty() && !o_.benchmark) save_settings(s_);
}

}  // namespace latentkit::viewer
