#pragma once
// The viewer application: GLFW window, OpenGL context and Dear ImGui, each held by an object that
// shuts it down on every way out; a frame function; the dispatcher doing the work.
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "dispatcher.h"
#include "gl_image.h"
#include "live_audio.h"
#include "osc_server.h"
#include "script_runner.h"
#include "texture_interop.h"
#include "viewer_state.h"

struct GLFWwindow;

namespace latentkit::viewer {

/// The viewer's command line.
struct AppOptions {
    std::string model, screenshot, save_image, script, dump_state, device = "auto";
    std::string audio, audio_map;  ///< a sound file to play at start, and its mapping (preset or file)
    int osc_port = 0;              ///< OSC control on this UDP port (0: off)
    bool osc_any_host = false;     ///< take OSC messages from other machines too
    int frames = 0;          ///< frames before --screenshot / exit (0: until closed)
    bool benchmark = false;  ///< animate without vsync and report frame and render times
    int width = 1280, height = 800;
};

/// GLFW itself (init / terminate).
class GlfwSession {
public:
    GlfwSession();  ///< throws Error when there is no display
    ~GlfwSession();
    GlfwSession(const GlfwSession&) = delete;
    GlfwSession& operator=(const GlfwSession&) = delete;
};

/// An OpenGL 3.3 core window, current on this thread, with the GL functions loaded.
class Window {
public:
    Window(int width, int height, const char* title);  ///< throws Error
    ~Window();
    Window(const Window&) = delete;
    Window& operator=(const Window&) = delete;
    GLFWwindow* get() const { return window_; }

private:
    GLFWwindow* window_ = nullptr;
};

/// Dear ImGui with its GLFW and OpenGL 3 backends.
class ImGuiSession {
public:
    ImGuiSession(GLFWwindow* window, const char* ini_file);
    ~ImGuiSession();
    ImGuiSession(const ImGuiSession&) = delete;
    ImGuiSession& operator=(const ImGuiSession&) = delete;
};

/// The running viewer.
class App {
public:
    explicit App(const AppOptions& options);
    /// Runs until the window closes, the script ends or --frames are done; returns the exit code.
    int run();
    /// GLFW's drop callback: the dropped files are opened by kind (the script's "drop" calls it too).
    static void on_drop(GLFWwindow* window, int count, const char** paths);

private:
    void open_initial_model();
    void run_script();
    void take_osc();
    bool run_app_command(const std::string& line);
    void show(const DispatchEvents& events);
    void draw(int fb_w, int fb_h);
    void after_frame(int fb_w, int fb_h);
    void finish();
    void write_state(const std::string& path) const;

    AppOptions o_;
    GlfwSession glfw_;
    Window window_;
    std::string ini_path_;
    ImGuiSession imgui_;
    // GL objects: after the context they need, so they go first.
    GlImage image_, proj_target_, proj_current_, label_grid_, curate_grid_;
    CudaGlInterop interop_;  // after the texture it registers, so it is released first
    ViewerState s_;
    std::unique_ptr<Dispatcher> dispatcher_;
    std::unique_ptr<LiveAudio> live_;
    std::unique_ptr<OscServer> osc_;
    ScriptRunner script_;
    int frame_ = 0, label_version_ = 0, curate_version_ = 0, rc_ = 0;
    bool quit_ = false, label_fresh_ = false;
    std::string pending_screenshot_;
    std::vector<double> bench_frame_ms_, bench_render_ms_;
};

}  // namespace latentkit::viewer
