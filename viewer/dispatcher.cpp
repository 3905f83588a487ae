// The viewer's request dispatcher.
#include "dispatcher.h"
#include "error_text.h"

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <sstream>
#include <thread>
#include <utility>

#include "files.h"
#include "latentkit/blend.h"
#include "latentkit/error.h"
#include "latentkit/io/download.h"
#include "latentkit/model_io.h"
#include "latentkit/io/tensor_image.h"
#include "latentkit/npz.h"
#include "model_jobs.h"

namespace latentkit::viewer {

Dispatcher::Dispatcher(bool device_output) : device_output_(device_output) {}

DispatchEvents Dispatcher::step(ViewerState& s, double dt) {
    DispatchEvents events;
    tasks_.apply(s);
    for (auto& line : log_.take()) s.log.push_back(std::move(line));
    if (s.log.size() > kLogLines) s.log.erase(s.log.begin(), s.log.end() - kLogLines);
    take_render(s, events);
    for (const std::string& path : std::exchange(s.open_files, {})) open_file(s, path);
    run_jobs(s);
    refresh_browser(s);
    follow_projection(s, events);
    follow_morph(s, dt);
    send_render(s);
    return events;
}

bool Dispatcher::idle(const ViewerState& s) const {
    return have_sent_ && shown_id_ == last_sent_.id && !worker_.busy() && !tasks_.busy() && !s.computing && !s.job_request &&
           !s.project_request && !proj_snap_.running && !s.fit_marks && !s.morph_add && !s.morph_export && !export_state_.running &&
           s.direction_files.empty() && s.open_files.empty() && !s.save_projection && !s.blend_save_request &&
           s.curate_commands.empty();
}

void Dispatcher::drain(ViewerState& s) {
    while (tasks_.busy()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        tasks_.apply(s);
    }
}

void Dispatcher::refresh_browser(ViewerState& s) {
    if (!std::exchange(s.browse_refresh, false)) return;
    tasks_.run([dir = s.browse_dir]() -> StateChange {
        std::vector<FileEntry> entries = list_folder(dir);
        return [entries = std::move(entries)](ViewerState& st) { st.browse_entries = entries; };
    });
}

void Dispatcher::save_png(const std::string& path, Image8 image) {
    tasks_.run([path, image = std::move(image)]() -> StateChange {
        write_png(path, image);
        return [path](ViewerState& s) { s.status = "saved " + path; };
    });
}

void Dispatcher::open_file(ViewerState& s, const std::string& path) {
    switch (file_kind(path)) {
        case FileKind::model: s.model_path = s.model_input = path; break;
        case FileKind::directions: s.direction_files.push_back(path); break;
        case FileKind::photo: {
            s.project.target_path = path;
            s.project_request = s.project;
            break;
        }
        case FileKind::latent:
            tasks_.run([path, model = s.model]() -> StateChange {
                std::vector<float> ws = read_latent_file(path, model);
                return [path, ws = std::move(ws)](ViewerState& st) {
                    st.spec.ws = latent_tensor(st, ws);
                    st.status = "showing the latent of " + path;
                };
            });
            break;
        case FileKind::other:
            s.error = path + ": not a model, direction file (.json), latent (.npz) or photo";
            break;
    }
}

void Dispatcher::take_render(ViewerState& s, DispatchEvents& events) {
    std::optional<RenderResult> r = worker_.poll();
    if (!r) return;
    shown_id_ = r->id;
    if (r->model) {
        s.model = *r->model;
        remember_model(s, r->model->path);
    }
    s.render_ms = r->render_ms;
    if (r->error.empty()) {
        s.current_ws = r->ws;
        s.current_label = last_sent_.morph                ? "morph preview"
                        : last_sent_.spec.ws.defined()    ? "projected / loaded latent"
                                                          : fmt::format("seed {:.2f}, {:.2f}", sent_seed_.first, sent_seed_.second);
        const auto& edits = last_sent_.spec.edits;
        if (std::any_of(edits.begin(), edits.end(), [](const RenderEdit& e) { return e.strength != 0; })) s.current_label += " (edited)";
        s.error.clear();
    } else {
        s.error = r->error;
    }
    events.render = std::move(r);
}

// Saves the blend the view shows (the library's blend_models, as `latentkit blend`) on the task thread.
void Dispatcher::save_blend(ViewerState& s) {
    const std::string path = *std::exchange(s.blend_save_request, std::nullopt);
    if (s.blend_model.empty()) {
        s.error = "no blend to save: choose a second model in the Blend panel";
        return;
    }
    tasks_.run([path, base = s.model_path, detail = s.blend_model, options = s.blend]() -> StateChange {
        save_model(path, blend_models(io::load_model_location(base), io::load_model_location(detail), options));
        return [path](ViewerState& st) { st.status = "saved the blend to " + path; };
    });
}

// One Curate command on the task thread; its view comes back into the state.
void Dispatcher::run_curate(ViewerState& s, const std::string& line) {
    std::istringstream in(line);
    std::string cmd, arg;
    in >> cmd;
    std::getline(in >> std::ws, arg);
    const auto show = [](CurateView v, std::string status) -> StateChange {
        return [v = std::move(v), status = std::move(status)](ViewerState& st) {
            st.curate = v;
            ++st.curate_version;
            if (!status.empty()) st.status = status;
        };
    };
    if (cmd == "curate-open") {
        tasks_.run([this, arg, show]() -> StateChange {
            curate_ = std::make_shared<CurateSession>(arg);
            return show(curate_->view(), "curating " + arg);
        });
        return;
    }
    tasks_.run([this, cmd, arg, show, cells = s.curate.cells, threshold = s.curate_threshold]() -> StateChange {
        if (!curate_) throw ArgumentError("curate: open a folder or zip of images first");
        if (cmd == "curate-mark") {
            std::istringstream words(arg);
            size_t cell = 0;
            std::string label;
            if (!(words >> cell >> label) || cell >= cells.size() || (label != "1" && label != "0" && label != "skip"))
                throw ArgumentError("curate-mark CELL 1|0|skip (CELL: a shown image, 0 is the most uncertain)");
            return show(curate_->mark(cells[cell], label == "skip" ? -1 : std::stoi(label)), "");
        }
        if (cmd == "curate-load") return show(curate_->load_labels(arg), "labels from " + arg);
        if (cmd == "curate-save") {
            curate_->save_labels(arg);
            return [arg](ViewerState& st) { st.status = "saved the labels to " + arg; };
        }
        if (cmd == "curate-export") {
            std::istringstream words(arg);
            std::string dest;
            double t = threshold;
            words >> dest >> t;
            const size_t n = curate_->export_to(dest, t);
            return [dest, n](ViewerState& st) { st.status = fmt::format("wrote {} images to {}", n, dest); };
        }
        throw ArgumentError("script: unknown command '" + cmd + "'");
    });
}

void Dispatcher::run_jobs(ViewerState& s) {
    for (const std::string& line : std::exchange(s.curate_commands, {})) run_curate(s, line);
    if (s.blend_save_request) save_blend(s);
    if (s.job_request && s.model.w_dim > 0) {
        const DirectionsJob job = *std::exchange(s.job_request, std::nullopt);
        s.computing = true;
        tasks_.run([this, job, path = s.model_path, device = s.device]() -> StateChange {
            try {
                DirectionsResult r = run_directions_job(*store_.open(path, device), job);
                return [r = std::move(r)](ViewerState& st) {
                    st.computing = false;
                    if (r.kind == DirectionsJobKind::samples) {
                        st.label_seeds = r.seeds;
                        st.label_w = r.w;
                        st.label_marks.assign(r.seeds.size(), 0);
                        const int cols = grid_cols(r.images.size());
                        st.label_grid = io::tile_images(r.images, cols, static_cast<int>((r.images.size() + cols - 1) / cols));
                        ++st.label_grid_version;
                    } else {
                        add_direction_set(st, r.set, r.set.directions.front().source);
                        st.status = fmt::format("computed {} {} direction(s)", r.set.directions.size(), r.set.directions.front().source);
                    }
                };
            } catch (const std::exception& e) {
                return [message = error_text(e)](ViewerState& st) { st.computing = false, st.error = message; };
            }
        });
    }
    for (const std::string& spec : std::exchange(s.direction_files, {})) {
        tasks_.run([spec, model = s.model]() -> StateChange {
            DirectionSet set = read_direction_spec(spec, model);
            const std::string file = parse_direction_ref(spec).path;
            return [set = std::move(set), file](ViewerState& st) { add_direction_set(st, set, file), st.error.clear(); };
        });
    }
    if (std::exchange(s.fit_marks, false)) {
        tasks_.run([w = s.label_w, marks = s.label_marks, d = s.model.w_dim, name = s.label_name]() -> StateChange {
            DirectionSet set = fit_marked_direction(w, marks, d, name);
            return [set = std::move(set), name](ViewerState& st) {
                add_direction_set(st, set, "labels");
                st.status = "fitted '" + name + "' from the marks";
            };
        });
    }
}

void Dispatcher::follow_projection(ViewerState& s, DispatchEvents& events) {
    if (s.project_request) {
        ProjectionJob job = *std::exchange(s.project_request, std::nullopt);
        job.model_path = s.model_path;
        job.device = s.device;
        runner_.start(job);
    }
    if (std::exchange(s.cancel_projection, false)) runner_.cancel();
    if (ProjectionSnapshot snap = runner_.snapshot(); snap.version != proj_snap_.version) {
        proj_snap_ = std::move(snap);
        events.projection_changed = true;
    }
    if (std::exchange(s.use_projection, false)) {
        if (proj_snap_.done) s.spec.ws = latent_tensor(s, proj_snap_.ws);
        else s.error = "no finished projection to use";
    }
    if (std::exchange(s.save_projection, false)) {
        if (!proj_snap_.done) {
            s.error = "no finished projection to save";
            return;
        }
        tasks_.run([path = s.project_save, snap = proj_snap_]() -> StateChange {
            write_npz(path, {{"w", TensorData::from_floats({1, snap.num_ws, snap.w_dim}, snap.ws)}});
            return [path](ViewerState& st) { st.status = "saved " + path; };
        });
    }
}

void Dispatcher::follow_morph(ViewerState& s, double dt) {
    if (s.morph_add && (shown_id_ == last_sent_.id || !have_sent_)) {
        s.morph_add = false;
        add_morph_key(s);
    }
    if (s.morph_play && s.morph.w_keys.size() >= 2) {
        const double transitions = static_cast<double>(s.morph.w_keys.size()) - (s.morph.path.loop ? 0 : 1);
        const double seconds = transitions * static_cast<double>(s.morph.path.frames_per_transition) / std::max(1, s.morph_fps);
        s.morph_t = std::fmod(s.morph_t + dt / seconds, 1.0);
        s.morph_preview = true;
    }
    if (s.morph_export) {
        MorphExportJob job = *std::exchange(s.morph_export, std::nullopt);
        job.model_path = s.model_path;
        job.device = s.device;
        job.spec = morph_from(s);
        job.fps = s.morph_fps;
        exporter_.start(job);
    }
    if (std::exchange(s.cancel_export, false)) exporter_.cancel();
    export_state_ = exporter_.state();
}

void Dispatcher::send_render(ViewerState& s) {
    if (s.model_path.empty()) return;
    RenderRequest want = request_from(s);
    want.device_output = device_output_;
    if (have_sent_ && same_render(want, last_sent_)) return;
    want.id = next_id_++;
    worker_.submit(want);
    last_sent_ = std::move(want);
    sent_seed_ = {s.seed_x, s.seed_y};
    have_sent_ = true;
}

}  // namespace latentkit::viewer
