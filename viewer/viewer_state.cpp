// Viewer state: render requests, direction files, recent models, script commands.
#include "viewer_state.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <sstream>

#include "latentkit/error.h"
#include "latentkit/interpolate.h"

namespace latentkit::viewer {

RenderRequest request_from(const ViewerState& s) {
    RenderRequest r;
    r.model_path = s.model_path;
    r.device = s.device;
    r.seed_x = s.seed_x;
    r.seed_y = s.seed_y;
    r.psi = s.psi;
    r.cutoff = s.cutoff;
    r.noise_mode = s.noise_mode == 1 ? "random" : s.noise_mode == 2 ? "none" : "const";
    r.noise_seed = static_cast<uint32_t>(s.noise_seed);
    r.mix = s.mix;
    r.mix_seed = static_cast<uint32_t>(s.mix_seed);
    for (size_t k = 0; k < s.mix_layers.size(); ++k)
        if (s.mix_layers[k]) r.mix_layers.push_back(static_cast<int>(k));
    for (const auto& d : s.directions) r.edits.push_back({d.direction, d.strength, d.first_layer, d.last_layer});
    r.base_ws = s.base_ws;
    r.translate_x = s.translate_x;
    r.translate_y = s.translate_y;
    r.rotate = s.rotate;
    if (s.morph_preview && s.morph_keys.size() >= 2) r.base_ws = morph_preview_ws(s);
    if (s.layer_view) r.view_block = s.layer_block, r.view_channel = s.layer_channel;
    return r;
}

bool same_render(const RenderRequest& a, const RenderRequest& b) {
    if (a.model_path != b.model_path || a.device != b.device || a.seed_x != b.seed_x || a.seed_y != b.seed_y || a.psi != b.psi ||
        a.cutoff != b.cutoff || a.noise_mode != b.noise_mode || a.noise_seed != b.noise_seed || a.mix != b.mix || a.mix_seed != b.mix_seed ||
        a.mix_layers != b.mix_layers || a.base_ws != b.base_ws || a.view_block != b.view_block || a.view_channel != b.view_channel ||
        a.translate_x != b.translate_x || a.translate_y != b.translate_y || a.rotate != b.rotate || a.edits.size() != b.edits.size())
        return false;
    for (size_t k = 0; k < a.edits.size(); ++k) {
        const auto &x = a.edits[k], &y = b.edits[k];
        if (x.strength != y.strength || x.first_layer != y.first_layer || x.last_layer != y.last_layer || x.direction.vector != y.direction.vector)
            return false;
    }
    return true;
}

void add_direction_file(ViewerState& s, const std::string& spec) {
    const size_t hash = spec.rfind('#');
    const std::string path = hash == std::string::npos ? spec : spec.substr(0, hash);
    const DirectionSet set = load_directions(path);
    if (s.model.w_dim > 0) check_directions_fit(set, path, s.model.w_dim, s.model.fingerprint);
    if (hash == std::string::npos) {
        add_direction_set(s, set, path);
    } else {
        DirectionSet one = set;
        one.directions = {select_direction(set, spec.substr(hash + 1), path)};
        add_direction_set(s, one, path);
    }
}

void add_direction_set(ViewerState& s, const DirectionSet& set, const std::string& source) {
    for (const auto& d : set.directions) {
        DirectionSlider slider;
        slider.file = source;
        slider.direction = d;
        if (d.layers) slider.first_layer = d.layers->first, slider.last_layer = d.layers->second;
        s.directions.push_back(slider);
    }
}

void fit_marked_direction(ViewerState& s) {
    const int d = s.model.w_dim;
    int pos = 0, neg = 0;
    LabelledSamples ls;
    ls.d = d;
    for (size_t k = 0; k < s.label_marks.size(); ++k) {
        if (s.label_marks[k] == 0) continue;
        (s.label_marks[k] > 0 ? pos : neg) += 1;
        ls.x.insert(ls.x.end(), s.label_w.begin() + static_cast<std::ptrdiff_t>(k * d), s.label_w.begin() + static_cast<std::ptrdiff_t>((k + 1) * d));
        ls.y.push_back(s.label_marks[k] > 0 ? 1.0 : 0.0);
    }
    if (pos < 2 || neg < 2) throw ArgumentError(fmt::format("mark at least 2 positive and 2 negative samples ({} and {} so far)", pos, neg));
    ls.n = static_cast<int64_t>(ls.y.size());
    FitOptions o;
    o.method = FitMethod::logistic;
    o.validation_fraction = 0;  // a handful of hand labels: all of them train
    Direction dir = fit_direction(ls, o);
    dir.name = s.label_name.empty() ? "labels" : s.label_name;
    DirectionSet set;
    set.w_dim = d;
    set.directions.push_back(dir);
    add_direction_set(s, set, "labels");
}

std::vector<float> morph_preview_ws(const ViewerState& s) {
    if (s.morph_keys.size() < 2) return {};
    std::vector<torch::Tensor> keys;
    for (const auto& [label, ws] : s.morph_keys) keys.push_back(torch::tensor(ws));
    PathOptions o;
    o.kind = s.morph_cubic ? PathKind::cubic : PathKind::linear;
    o.loop = s.morph_loop;
    o.frames_per_transition = std::max(1, s.morph_frames);
    const double transitions = static_cast<double>(s.morph_keys.size()) - (s.morph_loop ? 0.0 : 1.0);
    const torch::Tensor w = path_sample(torch::stack(keys), o, std::clamp(s.morph_t, 0.0, 1.0) * transitions).contiguous();
    return std::vector<float>(w.data_ptr<float>(), w.data_ptr<float>() + w.numel());
}

void remember_model(ViewerState& s, const std::string& path) {
    auto& r = s.recent_models;
    r.erase(std::remove(r.begin(), r.end(), path), r.end());
    r.insert(r.begin(), path);
    if (r.size() > 8) r.resize(8);
}

bool apply_script_line(ViewerState& s, const std::string& line) {
    std::istringstream in(line);
    std::string cmd;
    in >> cmd;
    auto number = [&](const char* what) {
        double v;
        if (!(in >> v)) throw ArgumentError(fmt::format("script: '{}' needs {}", line, what));
        return v;
    };
    if (cmd == "seed") {
        s.seed_x = number("a seed");
        double y;
        s.seed_y = (in >> y) ? y : 0.0;
    } else if (cmd == "psi") {
        s.psi = number("a value");
    } else if (cmd == "translate") {
        s.translate_x = number("X and Y");
        s.translate_y = number("X and Y");
    } else if (cmd == "rotate") {
        s.rotate = number("degrees");
    } else if (cmd == "cutoff") {
        s.cutoff = static_cast<int>(number("a layer count"));
    } else if (cmd == "noise") {
        std::string mode;
        in >> mode;
        if (mode == "const") s.noise_mode = 0;
        else if (mode == "random") s.noise_mode = 1;
        else if (mode == "none") s.noise_mode = 2;
        else throw ArgumentError("script: noise must be const, random or none");
    } else if (cmd == "mix") {
        s.mix_seed = static_cast<int>(number("a seed"));
        s.mix = true;
        s.mix_layers.assign(static_cast<size_t>(std::max(s.model.num_ws, 32)), false);
        for (int l; in >> l;)
            if (l >= 0 && l < static_cast<int>(s.mix_layers.size())) s.mix_layers[static_cast<size_t>(l)] = true;
    } else if (cmd == "direction") {
        std::string spec;
        in >> spec;
        add_direction_file(s, spec);
    } else if (cmd == "slider") {
        const auto k = static_cast<size_t>(number("a slider index"));
        const double v = number("a strength");
        if (k >= s.directions.size()) throw ArgumentError(fmt::format("script: there is no slider {}", k));
        s.directions[k].strength = v;
    } else if (cmd == "compute") {
        DirectionsJob job;
        in >> job.kind;
        if (job.kind != "pca" && job.kind != "sefa") throw ArgumentError("script: compute pca|sefa COMPONENTS [SAMPLES]");
        job.components = static_cast<int>(number("a number of components"));
        int samples;
        if (in >> samples) job.samples = samples;
        s.job_request = job;
    } else if (cmd == "project") {
        ProjectionJob job;
        std::string align, space;
        in >> job.target_path;
        job.steps = static_cast<int>(number("a number of steps"));
        if (in >> align) job.align = align;
        if (in >> space) job.space = space;
        s.project_request = job;
    } else if (cmd == "use-projection") {
        s.use_projection = true;
    } else if (cmd == "seeds") {
        s.base_ws.clear();
    } else if (cmd == "label-samples") {
        s.label_first_seed = static_cast<int>(number("a first seed"));
        s.label_count = static_cast<int>(number("a count"));
        s.job_request = DirectionsJob{"samples", 0, s.label_count, s.label_first_seed, s.psi};
    } else if (cmd == "mark") {
        const auto seed = static_cast<uint32_t>(number("a seed"));
        std::string sign;
        in >> sign;
        const auto it = std::find(s.label_seeds.begin(), s.label_seeds.end(), seed);
        if (it == s.label_seeds.end()) throw ArgumentError(fmt::format("script: seed {} is not among the samples to label", seed));
        s.label_marks[static_cast<size_t>(it - s.label_seeds.begin())] = sign == "+" ? 1 : sign == "-" ? -1 : 0;
    } else if (cmd == "fit-marks") {
        std::string name;
        if (in >> name) s.label_name = name;
        s.fit_marks = true;
    } else if (cmd == "key") {
        s.morph_add = true;
    } else if (cmd == "morph-preview") {
        s.morph_t = number("a position 0..1");
        s.morph_preview = true;
    } else if (cmd == "export") {
        MorphExportJob job;
        in >> job.out;
        job.frames_per_transition = static_cast<int>(number("frames per transition"));
        s.morph_export = job;
    } else if (cmd == "layer") {
        s.layer_block = static_cast<int>(number("a block index"));
        int channel;
        s.layer_channel = (in >> channel) ? channel : -1;
        s.layer_view = s.layer_block >= 0;
    } else if (cmd == "model") {
        std::string path;
        std::getline(in >> std::ws, path);
        s.model_path = s.model_input = path;
    } else {
        return false;
    }
    return true;
}

}  // namespace latentkit::viewer
