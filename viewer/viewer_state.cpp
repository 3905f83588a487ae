// Viewer state: render requests, direction files, recent models, script commands.
#include "viewer_state.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <sstream>

#include "latentkit/error.h"

namespace latentkit::viewer {

int grid_cols(size_t n) { return std::max(1, static_cast<int>(std::ceil(std::sqrt(static_cast<double>(n))))); }

RenderRequest request_from(const ViewerState& s) {
    RenderRequest r;
    r.model_path = s.model_path;
    r.device = s.device;
    r.spec = s.spec;
    if (!r.spec.ws.defined()) r.spec.seed_blend = blend_seeds(s.seed_x, s.seed_y);
    for (const auto& d : s.directions) r.spec.edits.push_back({d.direction.vector, d.direction.scale, d.strength, d.first_layer, d.last_layer});
    if (s.morph_preview && s.morph.w_keys.size() >= 2) {
        r.morph = morph_from(s);
        r.morph_t = s.morph_t;
    }
    if (s.layer_view) r.view_block = s.layer_block, r.view_channel = s.layer_channel;
    if (!s.blend_model.empty()) r.blend_model = s.blend_model, r.blend = s.blend;
    return r;
}

MorphSpec morph_from(const ViewerState& s) {
    MorphSpec m = s.morph;
    m.render = s.spec;
    m.render.ws = torch::Tensor();
    m.render.mix_seed.reset();
    m.render.mix_layers.clear();
    return m;
}

torch::Tensor latent_tensor(const ViewerState& s, const std::vector<float>& ws) {
    if (s.model.w_dim == 0 || static_cast<int64_t>(ws.size()) != static_cast<int64_t>(s.model.num_ws) * s.model.w_dim)
        throw ShapeError(fmt::format("the latent ({} values) does not fit the open model ({} x {})", ws.size(), s.model.num_ws, s.model.w_dim));
    return torch::tensor(ws).reshape({1, s.model.num_ws, s.model.w_dim});
}

void add_morph_key(ViewerState& s) {
    if (s.current_ws.empty()) {
        s.error = "nothing rendered yet to add as a keyframe";
        return;
    }
    s.morph.w_keys.push_back(latent_tensor(s, s.current_ws));
    s.morph_labels.push_back(s.current_label);
}

void remove_morph_key(ViewerState& s, size_t k) {
    if (k >= s.morph.w_keys.size()) return;
    s.morph.w_keys.erase(s.morph.w_keys.begin() + static_cast<std::ptrdiff_t>(k));
    s.morph_labels.erase(s.morph_labels.begin() + static_cast<std::ptrdiff_t>(k));
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

void remember_model(ViewerState& s, const std::string& path) {
    auto& r = s.recent_models;
    r.erase(std::remove(r.begin(), r.end(), path), r.end());
    r.insert(r.begin(), path);
    if (r.size() > 8) r.resize(8);
}

namespace {

// One script line being read: its command, then its arguments.
struct ScriptLine {
    std::istringstream in;
    std::string text, cmd;
    explicit ScriptLine(const std::string& line) : in(line), text(line) { in >> cmd; }
    double number(const char* what) {
        double v;
        if (!(in >> v)) throw ArgumentError(fmt::format("script: '{}' needs {}", text, what));
        return v;
    }
    std::string word() {
        std::string w;
        in >> w;
        return w;
    }
    // An option value by its name in the option's name table.
    template <class E>
    E choice(const std::string& name, const char* what) {
        if (const auto v = option_from_name<E>(name)) return *v;
        throw ArgumentError(fmt::format("script: {} must be {}, not '{}'", what, option_choices<E>(), name));
    }
};

// seed, psi, class, translate, rotate, cutoff, noise, mix, layer, seeds, model
bool apply_latent_line(ViewerState& s, ScriptLine& l) {
    if (l.cmd == "seed") {
        s.seed_x = l.number("a seed");
        double y;
        s.seed_y = (l.in >> y) ? y : 0.0;
    } else if (l.cmd == "psi") {
        s.spec.psi = l.number("a value");
    } else if (l.cmd == "class") {
        s.spec.class_index = static_cast<int>(l.number("a class index"));
    } else if (l.cmd == "translate") {
        s.spec.translate_x = l.number("X and Y");
        s.spec.translate_y = l.number("X and Y");
    } else if (l.cmd == "rotate") {
        s.spec.rotate = l.number("degrees");
    } else if (l.cmd == "cutoff") {
        const int cutoff = static_cast<int>(l.number("a layer count"));
        s.spec.cutoff = cutoff >= 0 ? std::optional<int>(cutoff) : std::nullopt;
    } else if (l.cmd == "noise") {
        const NoiseMode m = l.choice<NoiseMode>(l.word(), "noise");
        if (m == NoiseMode::custom) throw ArgumentError("script: noise must be const, random or none");
        s.spec.noise_mode = m;
        if (m == NoiseMode::random && !s.spec.noise_seed) s.spec.noise_seed = 0;
    } else if (l.cmd == "noise-seed") {
        s.spec.noise_seed = static_cast<uint32_t>(l.number("a seed"));
    } else if (l.cmd == "noise-gain") {
        const double g = l.number("a gain");
        s.spec.noise_gain = g == 1.0 ? std::vector<float>{} : std::vector<float>{static_cast<float>(g)};
    } else if (l.cmd == "unmix") {
        s.spec.mix_seed.reset();
        s.spec.mix_layers.clear();
    } else if (l.cmd == "mix") {
        s.spec.mix_seed = static_cast<uint32_t>(l.number("a seed"));
        s.spec.mix_layers.clear();
        for (int k; l.in >> k;)
            if (k >= 0) s.spec.mix_layers.push_back(k);
    } else if (l.cmd == "layer") {
        s.layer_block = static_cast<int>(l.number("a block index"));
        int channel;
        s.layer_channel = (l.in >> channel) ? channel : -1;
        s.layer_view = s.layer_block >= 0;
    } else if (l.cmd == "seeds") {
        s.spec.ws = torch::Tensor();
    } else if (l.cmd == "model") {
        std::string path;
        std::getline(l.in >> std::ws, path);
        s.model_path = s.model_input = path;
    } else {
        return false;
    }
    return true;
}

// A slider by index or by its direction's name.
size_t slider_index(const ViewerState& s, const std::string& which) {
    for (size_t k = 0; k < s.directions.size(); ++k)
        if (s.directions[k].direction.name == which) return k;
    size_t k = 0;
    try {
        size_t used = 0;
        k = std::stoul(which, &used);
        if (used != which.size()) throw std::invalid_argument(which);
    } catch (const std::exception&) {
        throw ArgumentError(fmt::format("script: there is no slider '{}'", which));
    }
    if (k >= s.directions.size()) throw ArgumentError(fmt::format("script: there is no slider {}", k));
    return k;
}

// direction, slider, compute, label-samples, mark, fit-marks
bool apply_directions_line(ViewerState& s, ScriptLine& l) {
    if (l.cmd == "direction") {
        s.direction_files.push_back(l.word());
    } else if (l.cmd == "slider") {
        const std::string which = l.word();
        const double v = l.number("a strength");
        s.directions[slider_index(s, which)].strength = v;
    } else if (l.cmd == "compute") {
        DirectionsJob job;
        job.kind = l.choice<DirectionsJobKind>(l.word(), "compute");
        if (job.kind == DirectionsJobKind::samples) throw ArgumentError("script: compute pca|sefa COMPONENTS [SAMPLES]");
        job.components = static_cast<int>(l.number("a number of components"));
        int samples;
        if (l.in >> samples) job.samples = samples;
        s.job_request = job;
    } else if (l.cmd == "label-samples") {
        s.label_first_seed = static_cast<int>(l.number("a first seed"));
        s.label_count = static_cast<int>(l.number("a count"));
        s.job_request = DirectionsJob{DirectionsJobKind::samples, 0, s.label_count, s.label_first_seed, s.spec.psi};
    } else if (l.cmd == "mark") {
        const auto seed = static_cast<uint32_t>(l.number("a seed"));
        const std::string sign = l.word();
        const auto it = std::find(s.label_seeds.begin(), s.label_seeds.end(), seed);
        if (it == s.label_seeds.end()) throw ArgumentError(fmt::format("script: seed {} is not among the samples to label", seed));
        s.label_marks[static_cast<size_t>(it - s.label_seeds.begin())] = sign == "+" ? 1 : sign == "-" ? -1 : 0;
    } else if (l.cmd == "fit-marks") {
        if (std::string name = l.word(); !name.empty()) s.label_name = name;
        s.fit_marks = true;
    } else {
        return false;
    }
    return true;
}

// project, save-projection, use-projection, key, morph-preview, export, browse, open
bool apply_job_line(ViewerState& s, ScriptLine& l) {
    if (l.cmd == "project") {
        ProjectionJob job = s.project;
        job.target_path = l.word();
        job.options.steps = static_cast<int>(l.number("a number of steps"));
        if (std::string align = l.word(); !align.empty()) job.align = l.choice<io::AlignMode>(align, "align");
        if (std::string space = l.word(); !space.empty()) job.options.space = l.choice<LatentSpace>(space, "space");
        s.project_request = job;
    } else if (l.cmd == "save-projection") {
        s.project_save = l.word();
        s.save_projection = true;
    } else if (l.cmd == "use-projection") {
        s.use_projection = true;
    } else if (l.cmd == "key") {
        s.morph_add = true;
    } else if (l.cmd == "morph-preview") {
        s.morph_t = l.number("a position 0..1");
        s.morph_preview = true;
    } else if (l.cmd == "export") {
        MorphExportJob job;
        job.out = l.word();
        s.morph.path.frames_per_transition = static_cast<int>(l.number("frames per transition"));
        s.morph_export = job;
    } else if (l.cmd == "blend") {
        s.blend_model = l.word();
        s.blend.from_resolution = static_cast<int>(l.number("a resolution"));
        double width;
        s.blend.width = (l.in >> width) ? width : 0.0;
        if (std::string m = l.word(); !m.empty()) s.blend.mapping = l.choice<BlendMapping>(m, "blend mapping");
    } else if (l.cmd == "blend-off") {
        s.blend_model.clear();
    } else if (l.cmd == "blend-save") {
        s.blend_save_request = l.word();
    } else if (l.cmd == "browse") {
        std::getline(l.in >> std::ws, s.browse_dir);
        s.browse_refresh = true;
    } else if (l.cmd == "open") {
        std::string path;
        std::getline(l.in >> std::ws, path);
        s.open_files.push_back(path);
    } else {
        return false;
    }
    return true;
}

// Lines LiveAudio runs: audio, audio-capture, audio-stop, audio-pause, audio-play, audio-map, audio-gain,
// record, record-stop, random-direction.
bool queue_audio_line(ViewerState& s, const ScriptLine& l) {
    static const char* commands[] = {"audio", "audio-capture", "audio-stop", "audio-pause", "audio-play", "audio-map",
                                     "audio-gain", "record", "record-stop", "random-direction"};
    if (std::find(std::begin(commands), std::end(commands), l.cmd) == std::end(commands)) return false;
    s.audio_commands.push_back(l.text);
    return true;
}

// Lines the Curate panel's session runs (curate-open, curate-mark, curate-load, curate-save, curate-export).
bool queue_curate_line(ViewerState& s, const ScriptLine& l) {
    if (l.cmd.rfind("curate-", 0) != 0) return false;
    s.curate_commands.push_back(l.text);
    return true;
}

std::string number_text(double v) { return fmt::format("{}", v); }

}  // namespace

bool apply_script_line(ViewerState& s, const std::string& line) {
    ScriptLine l(line);
    return apply_latent_line(s, l) || apply_directions_line(s, l) || apply_job_line(s, l) || queue_audio_line(s, l) || queue_curate_line(s, l);
}

std::vector<std::string> state_lines(const ViewerState& s) {
    const RenderSpec& r = s.spec;
    std::vector<std::string> out;
    out.push_back("seed " + number_text(s.seed_x) + " " + number_text(s.seed_y));
    out.push_back("psi " + number_text(r.psi));
    out.push_back("cutoff " + std::to_string(r.cutoff.value_or(-1)));
    if (r.class_index) out.push_back("class " + std::to_string(*r.class_index));
    out.push_back(std::string("noise ") + option_name(r.noise_mode));
    if (r.noise_seed) out.push_back("noise-seed " + std::to_string(*r.noise_seed));
    out.push_back("noise-gain " + number_text(r.noise_gain.empty() ? 1.0 : r.noise_gain.front()));
    out.push_back("translate " + number_text(r.translate_x) + " " + number_text(r.translate_y));
    out.push_back("rotate " + number_text(r.rotate));
    if (r.mix_seed) {
        std::string mix = "mix " + std::to_string(*r.mix_seed);
        for (int k : r.mix_layers) mix += " " + std::to_string(k);
        out.push_back(mix);
    } else {
        out.push_back("unmix");
    }
    for (size_t k = 0; k < s.directions.size(); ++k) out.push_back("slider " + std::to_string(k) + " " + number_text(s.directions[k].strength));
    return out;
}

}  // namespace latentkit::viewer
