// `latentkit serve`: the HTTP routes (cpp-httplib) over the viewer's core.
#include <fmt/format.h>
#include <httplib.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>

#include "common.h"
#include "latentkit/atomic_file.h"
#include "latentkit/error.h"
#include "latentkit/io/image.h"
#include "latentkit/log.h"
#include "latentkit/npz.h"
#include "latentkit/png.h"
#include "latentkit/stop.h"
#include "latentkit/latent_files.h"
#include "model_jobs.h"
#include "morph_exporter.h"
#include "projection_runner.h"
#include "serve.h"

namespace latentkit::tools {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// The request parameter of each option field the library names in its errors.
constexpr std::pair<const char*, const char*> kFieldParameters[] = {
    {"RenderSpec.class_index", "class"}, {"model.path", "model"}, {"Projector.lpips", "vgg"}, {"align.mode", "align"}, {"device", "--device"},
};

std::string parameter_of(const std::string& field) {
    for (const auto& [name, param] : kFieldParameters)
        if (field == name) return param;
    return field;
}

// An error as the API reports it: one line, fields named by their parameters.
std::string error_line(const std::exception& e) { return first_line(e, parameter_of); }

void send_error(httplib::Response& res, int status, const std::string& message) {
    res.status = status;
    res.set_content(json{{"error", message}}.dump(), "application/json");
}

void send_json(httplib::Response& res, const json& j) { res.set_content(j.dump(), "application/json"); }

Query query_of(const httplib::Request& req) {
    Query q;
    for (const auto& [k, v] : req.params) q.params.emplace(k, v);
    return q;
}

json summary_json(const viewer::ModelSummary& m) {
    return {{"resolution", m.resolution}, {"channels", m.channels}, {"num_ws", m.num_ws}, {"w_dim", m.w_dim}, {"z_dim", m.z_dim},
            {"c_dim", m.c_dim},           {"family", m.family},     {"format", m.format}, {"fingerprint", m.fingerprint}};
}

}  // namespace

namespace {

bool loopback(const std::string& host) { return host == "127.0.0.1" || host == "localhost" || host == "::1"; }

// Every piece of the running server.
struct Server {
    ServeOptions o;
    Catalog catalog;
    viewer::ModelStore store;
    RenderQueue renders{store};
    viewer::ProjectionRunner projection{store};
    viewer::MorphExporter morph{store};
    std::string workdir;  // uploads and exports, removed at the end
    std::atomic<uint64_t> next_file{0};
    std::mutex mutex;
    std::string morph_video;  // the newest export's file
    httplib::Server http;

    explicit Server(const ServeOptions& options) : o(options), catalog(options) {}
    std::shared_ptr<const viewer::OpenModel> model(const Query& q) { return store.open(catalog.model_path(q.get("model").value_or("")), o.device); }
    std::string work_file(const std::string& stem, const std::string& ext) {
        return (fs::path(workdir) / fmt::format("{}-{}{}", stem, ++next_file, ext)).string();
    }
};

// Runs a route: library errors become 400 (bad input) or 500 (the server's side), never a crash.
httplib::Server::Handler guarded(std::function<void(const httplib::Request&, httplib::Response&)> fn) {
    return [fn = std::move(fn)](const httplib::Request& req, httplib::Response& res) {
        try {
            fn(req, res);
        } catch (const ArgumentError& e) {
            send_error(res, 400, error_line(e));
        } catch (const ShapeError& e) {
            send_error(res, 400, error_line(e));
        } catch (const std::exception& e) {
            send_error(res, 500, error_line(e));
        }
    };
}

// The page (web/): its files, and latentkit-page.json telling it to use this server's API.
void route_page(Server& s) {
    const std::string dir = web_dir();
    if (!s.http.set_mount_point("/", dir)) throw IoError(dir + ": the page's folder cannot be served");
    s.http.Get("/latentkit-page.json", [](const httplib::Request&, httplib::Response& res) { send_json(res, {{"mode", "server"}}); });
}

void route_models(Server& s) {
    s.http.Get("/api/models", guarded([&s](const httplib::Request& req, httplib::Response& res) {
        s.catalog.refresh();
        const Query q = query_of(req);
        const auto m = s.model(q);
        send_json(res, {{"models", s.catalog.models()},
                        {"directions", s.catalog.direction_files()},
                        {"model", q.get("model").value_or(s.catalog.models().front())},
                        {"summary", summary_json(m->summary)}});
    }));
    s.http.Post("/api/directions/compute", guarded([&s](const httplib::Request& req, httplib::Response& res) {
        const Query q = query_of(req);
        viewer::DirectionsJob job;
        const auto kind = option_from_name<viewer::DirectionsJobKind>(q.get("kind").value_or("pca"));
        if (!kind || *kind == viewer::DirectionsJobKind::samples) throw ArgumentError("kind: expected pca or sefa");
        job.kind = *kind;
        job.components = static_cast<int>(integer_param(q, "components", 8, 1, 64));
        job.samples = static_cast<int>(integer_param(q, "samples", 10000, 100, 1000000));
        const auto model = s.model(q);
        const viewer::DirectionsResult r = viewer::run_directions_job(*model, job);
        const std::string name = fmt::format("computed-{}-{}.json", option_name(job.kind), ++s.next_file);
        const std::string path = s.work_file("directions", ".json");
        save_directions(path, r.set);
        s.catalog.add_direction(name, path);
        send_json(res, {{"file", name}, {"directions", r.set.directions.size()}});
    }));
    s.http.Get("/api/directions", guarded([&s](const httplib::Request& req, httplib::Response& res) {
        const auto file = query_of(req).get("file");
        if (!file) throw ArgumentError("file: which direction file (GET /api/models lists them)");
        DirectionRef ref;
        ref.path = s.catalog.direction_path(*file);
        const DirectionSet set = load_direction_ref(ref, 0, "");
        json list = json::array();
        for (const auto& d : set.directions)
            list.push_back({{"name", d.name}, {"source", d.source}, {"scale", d.scale}, {"min", d.strength_min}, {"max", d.strength_max},
                            {"layers", d.layers ? json{d.layers->first, d.layers->second} : json()}});
        send_json(res, {{"file", *file}, {"w_dim", set.w_dim}, {"fingerprint", set.model_fingerprint}, {"directions", list}});
    }));
}

// A latent posted as a projected_w.npz (its first one), or an undefined tensor for an empty body.
torch::Tensor posted_latent(Server& s, const httplib::Request& req, const GeneratorConfig& cfg) {
    if (req.body.empty()) return {};
    const std::string path = s.work_file("latent", ".npz");
    write_file_atomic(path, req.body.data(), req.body.size());
    try {
        torch::Tensor ws = read_latents(path, cfg).narrow(0, 0, 1);
        fs::remove(path);
        return ws;
    } catch (const Error& e) {
        fs::remove(path);
        throw ArgumentError(std::string("the posted latent: ") + e.what());
    }
}

void route_render(Server& s) {
    const auto render = guarded([&s](const httplib::Request& req, httplib::Response& res) {
        const Query q = query_of(req);
        const std::string format = q.get("format").value_or("png");
        if (format != "png" && format != "jpeg") throw ArgumentError("format=" + format + ": expected png or jpeg");
        const auto model = s.model(q);
        viewer::RenderRequest r = render_request(q, s.catalog, s.o.device, model->summary);
        if (torch::Tensor ws = posted_latent(s, req, model->G->config); ws.defined()) {
            if (q.get("seed") || q.get("x") || q.get("y")) throw ArgumentError("give a seed or post a latent, not both");
            r.spec.ws = ws;
            r.spec.seed_blend.clear();
        }
        const auto result = s.renders.render(r, q.get("client").value_or(""));
        if (!result) return send_error(res, 409, "superseded by a newer request of this client");
        if (!result->error.empty()) return send_error(res, 400, result->error);
        res.set_header("X-Render-Ms", fmt::format("{:.1f}", result->render_ms));
        res.set_header("Cache-Control", "no-store");
        if (format == "png") res.set_content(encode_png(result->image), "image/png");
        else res.set_content(io::encode_jpeg(result->image, 92), "image/jpeg");
    });
    s.http.Get("/api/render", render);
    s.http.Post("/api/render", render);
}

json projection_json(const viewer::ProjectionSnapshot& p) {
    return {{"running", p.running}, {"done", p.done}, {"step", p.step}, {"steps", p.steps}, {"loss", p.loss}, {"error", p.error},
            {"alignment", p.alignment}, {"version", p.version}};
}

void route_projection(Server& s) {
    s.http.Post("/api/project", guarded([&s](const httplib::Request& req, httplib::Response& res) {
        if (!req.has_file("photo")) throw ArgumentError("photo: upload the photo as multipart form data, field 'photo'");
        const auto& photo = req.get_file_value("photo");
        try {
            io::decode_image(photo.content, photo.filename.empty() ? "photo" : photo.filename);
        } catch (const IoError& e) {  // the request's fault: 400
            throw ArgumentError(std::string("photo: ") + e.what());
        }
        const Query q = query_of(req);
        viewer::ProjectionJob job;
        job.model_path = s.catalog.model_path(q.get("model").value_or(""));
        job.device = s.o.device;
        job.target_path = s.work_file("photo", ".img");
        write_file_atomic(job.target_path, photo.content.data(), photo.content.size());
        job.options.steps = static_cast<int>(integer_param(q, "steps", job.options.steps, 1, 5000));
        if (const auto v = q.get("space")) {
            const auto space = option_from_name<LatentSpace>(*v);
            if (!space) throw ArgumentError("space=" + *v + ": expected " + option_choices<LatentSpace>());
            job.options.space = *space;
        }
        if (const auto v = q.get("align")) {
            const auto align = option_from_name<io::AlignMode>(*v);
            if (!align) throw ArgumentError("align=" + *v + ": expected " + option_choices<io::AlignMode>());
            job.align = *align;
        }
        s.projection.start(job);
        send_json(res, projection_json(s.projection.snapshot()));
    }));
    s.http.Get("/api/project", guarded([&s](const httplib::Request&, httplib::Response& res) { send_json(res, projection_json(s.projection.snapshot())); }));
    s.http.Post("/api/project/cancel", guarded([&s](const httplib::Request&, httplib::Response& res) {
        s.projection.cancel();
        send_json(res, projection_json(s.projection.snapshot()));
    }));
    s.http.Get("/api/project/image", guarded([&s](const httplib::Request& req, httplib::Response& res) {
        const viewer::ProjectionSnapshot p = s.projection.snapshot();
        const std::string which = query_of(req).get("which").value_or("current");
        if (which != "current" && which != "target") throw ArgumentError("which=" + which + ": expected current or target");
        const Image8& image = which == "target" ? p.target : p.current;
        if (image.pixels.empty()) return send_error(res, 404, "no " + which + " image yet");
        res.set_content(encode_png(image), "image/png");
    }));
    s.http.Get("/api/project/latent", guarded([&s](const httplib::Request&, httplib::Response& res) {
        const viewer::ProjectionSnapshot p = s.projection.snapshot();
        if (!p.done) return send_error(res, 404, "no finished projection");
        const std::string path = s.work_file("projected_w", ".npz");
        write_npz(path, {{"w", TensorData::from_floats({1, p.num_ws, p.w_dim}, p.ws)}});
        res.set_header("Content-Disposition", "attachment; filename=\"projected_w.npz\"");
        res.set_content(read_file(path), "application/octet-stream");
        fs::remove(path);
    }));
}

json morph_json(const viewer::MorphExportState& m) {
    return {{"running", m.running}, {"done", m.done}, {"frame", m.frame}, {"frames", m.frames}, {"error", m.error}};
}

void route_morph(Server& s) {
    s.http.Post("/api/morph", guarded([&s](const httplib::Request& req, httplib::Response& res) {
        const Query q = query_of(req);
        check_parameters(q, {"seeds", "frames", "fps", "kind", "loop"});
        if (q.get("seed") || q.get("x") || q.get("y")) throw ArgumentError("a morph's keyframes are seeds=, not seed, x or y");
        const auto seeds = q.get("seeds");
        if (!seeds) throw ArgumentError("seeds: the keyframe seeds, e.g. seeds=1,2,3");
        viewer::MorphExportJob job;
        job.spec.render.seeds = parse_seeds(*seeds, "seeds");
        if (job.spec.render.seeds.size() < 2 || job.spec.render.seeds.size() > 64) throw ArgumentError("seeds: 2 to 64 keyframes");
        job.spec.path.frames_per_transition = integer_param(q, "frames", 30, 1, 600);
        job.fps = static_cast<int>(integer_param(q, "fps", 30, 1, 120));
        if (const auto v = q.get("kind")) {
            const auto kind = option_from_name<PathKind>(*v);
            if (!kind) throw ArgumentError("kind=" + *v + ": expected " + option_choices<PathKind>());
            job.spec.path.kind = *kind;
            job.spec.space_z = *kind == PathKind::spherical;
        }
        job.spec.path.loop = q.get("loop").value_or("0") == "1";
        const auto model = s.model(q);
        const auto keys = job.spec.render.seeds;
        job.spec.render = render_settings(q, s.catalog, model->summary);
        job.spec.render.seeds = keys;
        job.model_path = s.catalog.model_path(q.get("model").value_or(""));
        job.device = s.o.device;
        job.out = s.work_file("morph", ".mp4");
        {
            std::lock_guard<std::mutex> lock(s.mutex);
            s.morph_video = job.out;
        }
        s.morph.start(job);
        send_json(res, morph_json(s.morph.state()));
    }));
    s.http.Get("/api/morph", guarded([&s](const httplib::Request&, httplib::Response& res) { send_json(res, morph_json(s.morph.state())); }));
    s.http.Get("/api/morph/video", guarded([&s](const httplib::Request&, httplib::Response& res) {
        if (!s.morph.state().done) return send_error(res, 404, "no finished morph");
        std::lock_guard<std::mutex> lock(s.mutex);
        res.set_header("Content-Disposition", "attachment; filename=\"morph.mp4\"");
        res.set_content(read_file(s.morph_video), "video/mp4");
    }));
}

// Every API request needs the token when one is set: "Authorization: Bearer TOKEN" or token=TOKEN. The
// page's own files hold nothing secret.
bool authorised(const ServeOptions& o, const httplib::Request& req) {
    if (o.token.empty() || req.path.rfind("/api/", 0) != 0) return true;
    const std::string header = req.get_header_value("Authorization");
    const std::string given = header.rfind("Bearer ", 0) == 0 ? header.substr(7) : req.get_param_value("token");
    if (given.size() != o.token.size()) return false;
    unsigned diff = 0;  // the same time whatever the first wrong character
    for (size_t k = 0; k < given.size(); ++k) diff |= static_cast<unsigned char>(given[k] ^ o.token[k]);
    return diff == 0;
}

void configure(Server& s) {
    s.http.new_task_queue = [threads = s.o.threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
    s.http.set_payload_max_length(static_cast<size_t>(s.o.max_upload_mib) << 20);
    s.http.set_tcp_nodelay(true);  // small answers without the 40 ms of Nagle and delayed ACKs
    s.http.set_read_timeout(30, 0);
    s.http.set_write_timeout(30, 0);
    s.http.set_pre_routing_handler([&s](const httplib::Request& req, httplib::Response& res) {
        if (authorised(s.o, req)) return httplib::Server::HandlerResponse::Unhandled;
        send_error(res, 401, "this server needs its token: Authorization: Bearer TOKEN, or token=TOKEN");
        return httplib::Server::HandlerResponse::Handled;
    });
    s.http.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty()) return;
        const int status = res.status;
        send_error(res, status, status == 404 ? req.path + ": no such route" : status == 413 ? "the request is too large" : "bad request");
    });
    s.http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        try {
            std::rethrow_exception(ep);
        } catch (const std::exception& e) {
            send_error(res, 500, error_line(e));
        } catch (...) {
            send_error(res, 500, "unknown error");
        }
    });
    route_page(s);
    route_models(s);
    route_render(s);
    route_projection(s);
    route_morph(s);
}

// Listens until a stop is requested; the work folder goes with the server.
void listen(Server& s) {
    const int port = s.o.port == 0 ? s.http.bind_to_any_port(s.o.host) : (s.http.bind_to_port(s.o.host, s.o.port) ? s.o.port : -1);
    if (port < 0) throw IoError(fmt::format("{}:{}: cannot listen there (the port is in use, or the address is not this machine's)", s.o.host, s.o.port));
    log_info(fmt::format("listening on http://{}:{}/ ({}, model {})", s.o.host, port, s.o.device, s.catalog.models().front()));
    std::thread watch([&s] {
        while (!stop_requested() && !s.http.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
        while (!stop_requested()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
        s.http.stop();
    });
    s.http.listen_after_bind();
    request_stop();  // ends the watcher when listening ended by itself
    watch.join();
    s.projection.cancel();
    s.morph.cancel();
    s.projection.wait();
    s.morph.wait();
}

}  // namespace

void run_server(const ServeOptions& options) {
    if (!loopback(options.host) && options.token.empty())
        throw ArgumentError("--host " + options.host + ": serving beyond this machine needs --token (or use an SSH tunnel to 127.0.0.1)");
    Server s(options);
    s.workdir = (fs::temp_directory_path() / fmt::format("latentkit-serve-{}", ::getpid())).string();
    fs::create_directories(s.workdir);
    try {
        configure(s);
        listen(s);
    } catch (...) {
        std::error_code ec;
        fs::remove_all(s.workdir, ec);
        throw;
    }
    std::error_code ec;
    fs::remove_all(s.workdir, ec);
    clear_stop();
    log_info("server stopped");
}

}  // namespace latentkit::tools
