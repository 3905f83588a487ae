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
#include "panels.h"
#include "latentkit/atomic_file.h"
#include "latentkit/error.h"
#include "latentkit/io/bundled_model.h"
#include "latentkit/npz.h"
#include "latentkit/png.h"
#include "latentkit/io/tensor_image.h"
#include "latentkit/device.h"
#include "morph_exporter.h"
#include "projection_runner.h"
#include "render_worker.h"
#include "texture_interop.h"
#include "viewer_state.h"

namespace fs = std::filesystem;
using namespace latentkit;
using namespace latentkit::viewer;

namespace {

struct Options {
    std::string model, screenshot, save_image, script, dump_state, device = "auto";
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

Image8 read_window(int w, int h) {
    Image8 img{w, h, 3, std::vector<uint8_t>(static_cast<size_t>(w) * h * 3)};
    std::vector<uint8_t> flipped(img.pixels.size());
    glPixelStorei(GL_PACK_ALIGNMENT, 1);
    glReadBuffer(GL_BACK);
    glReadPixels(0, 0, w, h, GL_RGB, GL_UNSIGNED_BYTE, flipped.data());
    for (int y = 0; y < h; ++y) std::copy_n(&flipped[static_cast<size_t>(h - 1 - y) * w * 3], w * 3, &img.pixels[static_cast<size_t>(y) * w * 3]);
    return img;
}

int run(const Options& o) {
    glfwSetErrorCallback([](int, const char*) {});
#ifdef GLFW_PLATFORM
    // GLFW 3.4 tries Wayland first, whose library prints its own complaint when there is no session.
    if (!std::getenv("WAYLAND_DISPLAY")) glfwInitHint(GLFW_PLATFORM, GLFW_PLATFORM_X11);
#endif
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
        CudaGlInterop interop;  // after the texture it registers, so it is released first
        RenderWorker worker;
        ProjectionRunner runner;
        GlImage proj_target(find_shader_dir()), proj_current(find_shader_dir()), label_grid(find_shader_dir());
        ProjectionSnapshot proj_snap;
        bool label_fresh = false;
        MorphExporter exporter;
        MorphExportState export_state;
        ViewerState s;
        if (o.script.empty() && o.screenshot.empty()) load_settings(s);
        if (!o.model.empty()) {
            s.model_path = s.model_input = o.model;
        } else if (s.model_path.empty()) {
            try {
                const io::DefaultModel d = io::default_model();
                s.model_path = s.model_input = d.path;
                std::fprintf(stderr, "latentkit-viewer: no model given: opening the %s model %s\n", d.origin.c_str(), d.path.c_str());
            } catch (const IoError& e) {
                std::fprintf(stderr, "latentkit-viewer: %s\n", e.what());
            }
        }
        s.device = o.device;
        const bool on_cuda = s.device.rfind("cuda", 0) == 0;
        s.upload = !on_cuda ? "host memory"
                 : interop.available() ? "CUDA-GL interop" : "host memory (CUDA-GL interop: " + interop.reason() + ")";
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
                        else if (cmd == "save-image" && image.empty()) throw Error(arg + ": no image to save" + (s.error.empty() ? "" : " (" + s.error + ")"));
                        else if (cmd == "save-image") write_png(arg, image.read_back());
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
                    if (r->device_image && !image.upload(*r->device_image, interop)) {
                        s.upload = "host memory (CUDA-GL interop: " + interop.reason() + ")";
                        std::fprintf(stderr, "latentkit-viewer: CUDA-GL interop is off (%s): uploading from host memory\n", interop.reason().c_str());
                        image.upload(r->device_image->to_host());
                    } else if (!r->device_image) {
                        image.upload(r->image);
                    }
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
                    write_npz(s.project_save, {{"w", TensorData::from_floats({1, proj_snap.num_ws, proj_snap.w_dim}, proj_snap.ws)}});
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
                job.translate_x = s.translate_x;
                job.translate_y = s.translate_y;
                job.rotate = s.rotate;
                for (const auto& k : s.morph_keys) job.keys.push_back(k.second);
                exporter.start(job);
            }
            if (s.cancel_export) exporter.cancel(), s.cancel_export = false;
            export_state = exporter.state();
            RenderRequest want = request_from(s);
            want.id = last_sent.id;
            want.device_output = interop.available();
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
                    write_png(s.capture_path, read_window(fb_w, fb_h));
                    s.status = "saved the window to " + s.capture_path;
                } catch (const std::exception& e) {
                    s.error = e.what();
                }
            }
            if (!pending_screenshot.empty()) {
                write_png(pending_screenshot, read_window(fb_w, fb_h));
                pending_screenshot.clear();
            }
            if (!o.screenshot.empty() && o.frames > 0 && frame == o.frames) {
                write_png(o.screenshot, read_window(fb_w, fb_h));
                quit = true;
            }
            if (!o.save_image.empty() && o.frames > 0 && frame == o.frames && !image.empty()) write_png(o.save_image, image.read_back());
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
            std::printf("viewer benchmark: %d frames, frame time median %.2f ms (%.1f FPS), render time median %.1f ms over %zu renders; "
                        "device %s, upload through %s\n", frame, median(bench_frame_ms), 1000.0 / std::max(1e-3, median(bench_frame_ms)),
                        median(bench_render_ms), bench_render_ms.size(), s.device.c_str(), s.upload.c_str());
        }
        if (!o.dump_state.empty()) {
            const std::string text = nlohmann::json{{"error", s.error}, {"model", s.model_path}, {"family", s.model.family},
                                                    {"resolution", s.model.resolution},
                                                    {"device", s.device}, {"upload", s.upload},
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
    CLI::App app{"latentkit-viewer: explore a StyleGAN2 or StyleGAN3 model live"};
    Options o;
    app.add_option("model", o.model, "Model file or http(s) URL to open (.pkl, .pt or .safetensors; default: $LATENTKIT_MODEL, else the bundled emoji model)");
    app.add_option("--screenshot", o.screenshot, "Save the window to this PNG after --frames frames, then exit");
    app.add_option("--save-image", o.save_image, "Save the generated image to this PNG after --frames frames");
    app.add_option("--frames", o.frames, "Frames to run before --screenshot / exit");
    app.add_option("--script", o.script, "Replay UI actions from this file, one per frame, then exit");
    app.add_option("--dump-state", o.dump_state, "Write the final state (error, model, seed) as JSON at exit");
    app.add_option("--device", o.device, "Where the model runs: auto (CUDA when LibTorch sees a GPU), cpu or cuda[:N]");
    app.add_flag("--benchmark", o.benchmark, "Animate through seeds without vsync and report frame and render times");
    app.add_option("--width", o.width, "Window width");
    app.add_option("--height", o.height, "Window height");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }
    if (o.benchmark && o.frames == 0) o.frames = 300;
    latentkit::configure_cpu_threads();
    try {
        o.device = resolve_device(o.device);  // before any window: a bad --device is one line and exit 1
        return run(o);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "latentkit-viewer: error: %s\n", e.what());
        return 1;
    }
}
