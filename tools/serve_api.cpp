// `latentkit serve`: the files it may open, and render requests from query parameters.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "common.h"
#include "files.h"
#include "latentkit/error.h"
#include "serve.h"

namespace latentkit::tools {

namespace fs = std::filesystem;

Catalog::Catalog(const ServeOptions& options) : o_(options) {
    if (o_.model.empty() && o_.models_dir.empty()) throw ArgumentError("give --model, --models or both");
    if (!o_.models_dir.empty() && !fs::is_directory(o_.models_dir)) throw IoError(o_.models_dir + ": not a folder (--models)");
    for (const auto& d : o_.directions)
        if (!fs::is_regular_file(d)) throw IoError(d + ": no such file (--directions)");
    refresh();
    if (models_.empty()) throw IoError(o_.models_dir + ": holds no model file (.pkl, .pt, .pth, .safetensors)");
}

namespace {
// The files under `dir` of `kind`, by their path relative to it ('/'-separated), sorted. Entries whose
// real path is outside the folder (symbolic links out) are left out, as are hidden ones.
std::vector<std::pair<std::string, std::string>> files_under(const std::string& dir, viewer::FileKind kind) {
    std::vector<std::pair<std::string, std::string>> out;
    if (dir.empty()) return out;
    std::error_code ec;
    const fs::path root = fs::canonical(dir, ec);
    if (ec) return out;
    const auto opts = fs::directory_options::skip_permission_denied;
    for (fs::recursive_directory_iterator it(root, opts, ec), end; !ec && it != end; it.increment(ec)) {
        const std::string name = it->path().filename().string();
        if (!name.empty() && name[0] == '.') {
            if (it->is_directory(ec)) it.disable_recursion_pending();
            continue;
        }
        if (it->is_directory(ec) || viewer::file_kind(name) != kind) continue;
        const fs::path real = fs::canonical(it->path(), ec);
        if (ec || !fs::is_regular_file(real)) continue;
        const auto rel = real.lexically_relative(root);
        if (rel.empty() || *rel.begin() == "..") continue;
        out.emplace_back(it->path().lexically_relative(root).generic_string(), real.string());
    }
    std::sort(out.begin(), out.end());
    return out;
}

const std::string* find_name(const std::vector<std::pair<std::string, std::string>>& list, const std::string& name) {
    for (const auto& [n, path] : list)
        if (n == name) return &path;
    return nullptr;
}
}  // namespace

void Catalog::refresh() {
    auto models = files_under(o_.models_dir, viewer::FileKind::model);
    auto directions = files_under(o_.models_dir, viewer::FileKind::directions);
    if (!o_.model.empty()) models.insert(models.begin(), {fs::path(o_.model).filename().string(), o_.model});
    for (const auto& d : o_.directions) directions.emplace_back(fs::path(d).filename().string(), d);
    std::lock_guard<std::mutex> lock(mutex_);
    directions.insert(directions.end(), made_.begin(), made_.end());
    models_ = std::move(models);
    directions_ = std::move(directions);
}

std::vector<std::string> Catalog::models() const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<std::string> out;
    for (const auto& m : models_) out.push_back(m.first);
    return out;
}

std::vector<std::string> Catalog::direction_files() const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<std::string> out;
    for (const auto& d : directions_) out.push_back(d.first);
    return out;
}

std::string Catalog::model_path(const std::string& name) const {
    std::lock_guard<std::mutex> lock(mutex_);
    if (models_.empty()) throw IoError("no model file is left to serve");
    if (name.empty()) return models_.front().second;
    if (const std::string* p = find_name(models_, name)) return *p;
    throw ArgumentError("model " + name + ": not one of the served models (GET /api/models lists them)");
}

std::string Catalog::direction_path(const std::string& name) const {
    std::lock_guard<std::mutex> lock(mutex_);
    if (const std::string* p = find_name(directions_, name)) return *p;
    throw ArgumentError("dir " + name + ": not one of the served direction files (GET /api/models lists them)");
}

void Catalog::add_direction(const std::string& name, const std::string& path) {
    std::lock_guard<std::mutex> lock(mutex_);
    made_.emplace_back(name, path);
    directions_.emplace_back(name, path);
}

std::optional<std::string> Query::get(const std::string& key) const {
    const auto [first, last] = params.equal_range(key);
    if (first == last) return std::nullopt;
    return std::prev(last)->second;
}

std::vector<std::string> Query::all(const std::string& key) const {
    std::vector<std::string> out;
    for (auto [it, last] = params.equal_range(key); it != last; ++it) out.push_back(it->second);
    return out;
}

void check_parameters(const Query& q, const std::vector<std::string>& extra) {
    static const std::vector<std::string> names{"model", "seed", "x",     "y",   "psi",   "cutoff",     "class", "noise", "noise_seed",
                                                "translate", "rotate", "mix", "mix_layers", "dir", "format", "client", "token"};
    std::vector<std::string> known = names;
    known.insert(known.end(), extra.begin(), extra.end());
    for (const auto& [key, value] : q.params)
        if (std::find(known.begin(), known.end(), key) == known.end())
            throw ArgumentError(fmt::format("{}: not a parameter here ({})", key, fmt::join(known, ", ")));
}

namespace {
// A finite number, or ArgumentError naming the parameter.
double number(const std::string& key, const std::string& text) {
    size_t used = 0;
    double v = 0;
    try {
        v = std::stod(text, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    if (used == 0 || used != text.size() || !std::isfinite(v)) throw ArgumentError(fmt::format("{}={}: not a finite number", key, text));
    return v;
}

int64_t integer(const std::string& key, const std::string& text, int64_t lo, int64_t hi) {
    const double v = number(key, text);
    if (v != std::floor(v) || v < static_cast<double>(lo) || v > static_cast<double>(hi))
        throw ArgumentError(fmt::format("{}={}: expected a whole number from {} to {}", key, text, lo, hi));
    return static_cast<int64_t>(v);
}

}  // namespace

int64_t integer_param(const Query& q, const std::string& key, int64_t fallback, int64_t lo, int64_t hi) {
    const auto v = q.get(key);
    return v ? integer(key, *v, lo, hi) : fallback;
}

namespace {
// seed, or x and y: where the latent comes from.
void read_latent(const Query& q, RenderSpec& spec) {
    if (const auto seed = q.get("seed")) {
        if (q.get("x") || q.get("y")) throw ArgumentError("give seed or x and y, not both");
        spec.seeds = {static_cast<uint32_t>(integer("seed", *seed, 0, 4294967295LL))};
        return;
    }
    const double x = q.get("x") ? number("x", *q.get("x")) : 0.0, y = q.get("y") ? number("y", *q.get("y")) : 0.0;
    if (std::abs(x) > 1e9 || std::abs(y) > 1e9) throw ArgumentError("x and y must be within 1e9");
    spec.seed_blend = viewer::blend_seeds(x, y);
}

// psi, cutoff, class, noise, noise_seed, translate, rotate, mix, mix_layers.
void read_settings(const Query& q, const viewer::ModelSummary& model, RenderSpec& spec) {
    if (const auto v = q.get("psi")) spec.psi = number("psi", *v);
    if (const auto v = q.get("cutoff")) spec.cutoff = static_cast<int>(integer("cutoff", *v, 0, model.num_ws));
    if (const auto v = q.get("class")) {
        if (model.c_dim == 0) throw ArgumentError("class: this model is unconditional");
        spec.class_index = static_cast<int>(integer("class", *v, 0, model.c_dim - 1));
    }
    if (const auto v = q.get("noise")) {
        const auto m = option_from_name<NoiseMode>(*v);
        if (!m || *m == NoiseMode::custom) throw ArgumentError("noise=" + *v + ": expected const, random or none");
        spec.noise_mode = *m;
    }
    if (const auto v = q.get("noise_seed")) spec.noise_seed = static_cast<uint32_t>(integer("noise_seed", *v, 0, 4294967295LL));
    if (const auto v = q.get("translate")) {
        const size_t comma = v->find(',');
        if (comma == std::string::npos) throw ArgumentError("translate=" + *v + ": expected X,Y");
        spec.translate_x = number("translate", v->substr(0, comma));
        spec.translate_y = number("translate", v->substr(comma + 1));
    }
    if (const auto v = q.get("rotate")) spec.rotate = number("rotate", *v);
    if ((spec.translate_x != 0 || spec.translate_y != 0 || spec.rotate != 0) && model.family != "StyleGAN3")
        throw ArgumentError("translate and rotate move a StyleGAN3 network's input; this model is " + model.family);
    if (const auto v = q.get("mix")) {
        spec.mix_seed = static_cast<uint32_t>(integer("mix", *v, 0, 4294967295LL));
        spec.mix_layers = parse_layers(q.get("mix_layers").value_or("0-" + std::to_string(model.num_ws - 1)), model.num_ws, "mix_layers");
    }
}

// Each dir=FILE#NAME@STRENGTH as an edit.
void read_edits(const Query& q, const Catalog& catalog, const viewer::ModelSummary& model, RenderSpec& spec) {
    const auto dirs = q.all("dir");
    if (dirs.size() > 64) throw ArgumentError("at most 64 dir parameters");
    for (const auto& text : dirs) {
        DirectionRef ref = parse_direction_ref(text, true);
        if (ref.selector.empty()) throw ArgumentError("dir=" + text + ": name one direction (FILE#NAME@STRENGTH)");
        if (!std::isfinite(ref.weight)) throw ArgumentError("dir=" + text + ": the strength is not a finite number");
        ref.path = catalog.direction_path(ref.path);
        const DirectionSet set = load_direction_ref(ref, model.w_dim, model.fingerprint);
        const Direction& d = set.directions.front();
        RenderEdit e{d.vector, d.scale, ref.weight};
        if (d.layers) e.first_layer = d.layers->first, e.last_layer = d.layers->second;
        spec.edits.push_back(std::move(e));
    }
}
}  // namespace

RenderSpec render_settings(const Query& q, const Catalog& catalog, const viewer::ModelSummary& model) {
    RenderSpec spec;
    read_settings(q, model, spec);
    read_edits(q, catalog, model, spec);
    return spec;
}

viewer::RenderRequest render_request(const Query& q, const Catalog& catalog, const std::string& device, const viewer::ModelSummary& model) {
    check_parameters(q);
    viewer::RenderRequest r;
    r.model_path = catalog.model_path(q.get("model").value_or(""));
    r.device = device;
    r.spec = render_settings(q, catalog, model);
    read_latent(q, r.spec);
    return r;
}

std::optional<viewer::RenderResult> RenderQueue::render(const viewer::RenderRequest& request, const std::string& client) {
    uint64_t ticket = 0;
    if (!client.empty()) {
        std::lock_guard<std::mutex> lock(clients_mutex_);
        ticket = newest_[client] = ++next_;
    }
    std::lock_guard<std::mutex> turn(render_mutex_);
    if (!client.empty()) {
        std::lock_guard<std::mutex> lock(clients_mutex_);
        if (newest_[client] != ticket) return std::nullopt;  // a newer one waits behind this
        newest_.erase(client);
    }
    return worker_.render_now(request);
}

}  // namespace latentkit::tools
