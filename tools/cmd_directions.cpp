// latentkit directions: sample latents (and score their images), fit directions from labels, PCA and
// closed-form factorisation.
#include <fmt/format.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "common.h"
#include "latentkit/atomic_file.h"
#include "latentkit/directions.h"
#include "latentkit/editing.h"
#include "latentkit/error.h"
#include "latentkit/npz.h"
#include "latentkit/png.h"
#include "latentkit/io/scorers.h"
#include "latentkit/io/tensor_image.h"
#include "latentkit/latent.h"
#include "latentkit/log.h"
#include "latentkit/networks.h"
#include "latentkit/stop.h"
#include "latentkit/render.h"
#include "latentkit/latent_files.h"
#include "progress_bar.h"

namespace latentkit::tools {
namespace fs = std::filesystem;
namespace {

// ----------------------------------------------------------------------------------- labels

std::vector<std::string> split_csv(const std::string& line) {
    std::vector<std::string> out;
    std::stringstream ss(line);
    for (std::string f; std::getline(ss, f, ',');) {
        const size_t a = f.find_first_not_of(" \t\r\""), b = f.find_last_not_of(" \t\r\"");
        out.push_back(a == std::string::npos ? "" : f.substr(a, b - a + 1));
    }
    if (!line.empty() && line.back() == ',') out.emplace_back();
    return out;
}

bool parse_number(const std::string& text, double& v) {
    if (text.empty()) return false;
    char* end = nullptr;
    v = std::strtod(text.c_str(), &end);
    return end == text.c_str() + text.size() && std::isfinite(v);
}

// Labels for the samples, from a CSV of seed,score (or index,score; a header names the columns).
std::vector<double> read_labels(const std::string& path, const std::string& column, const Samples& s, std::vector<int64_t>& rows) {
    std::ifstream in(path);
    if (!in) throw IoError(path + ": cannot open the labels file");
    std::string line;
    int line_no = 0, key_col = 0, score_col = 1;
    bool by_index = s.seeds.empty();
    std::map<uint32_t, int64_t> row_of_seed;
    for (size_t k = 0; k < s.seeds.size(); ++k) row_of_seed[s.seeds[k]] = static_cast<int64_t>(k);
    std::vector<double> labels;
    std::map<int64_t, int> seen;
    while (std::getline(in, line)) {
        ++line_no;
        if (line.find_first_not_of(" \t\r") == std::string::npos || line[0] == '#') continue;
        const auto f = split_csv(line);
        double v;
        if (labels.empty() && seen.empty() && !f.empty() && !parse_number(f[0], v)) {  // header
            by_index = f[0] == "index";
            if (!by_index && f[0] != "seed") throw ArgumentError(fmt::format("{}:{}: the first column must be 'seed' or 'index'", path, line_no));
            if (!column.empty()) {
                const auto it = std::find(f.begin(), f.end(), column);
                if (it == f.end()) throw ArgumentError(fmt::format("{}: has no column '{}' (columns: {})", path, column, fmt::join(f, ", ")));
                score_col = static_cast<int>(it - f.begin());
            }
            continue;
        }
        if (static_cast<int>(f.size()) <= std::max(key_col, score_col))
            throw ArgumentError(fmt::format("{}:{}: expected at least {} fields", path, line_no, score_col + 1));
        double key, score;
        if (!parse_number(f[key_col], key) || key < 0 || key != std::floor(key))
            throw ArgumentError(fmt::format("{}:{}: '{}' is not a {}", path, line_no, f[key_col], by_index ? "row index" : "seed"));
        if (!parse_number(f[score_col], score))
            throw ArgumentError(fmt::format("{}:{}: the score '{}' is not a number", path, line_no, f[score_col]));
        int64_t row;
        if (by_index) {
            if (key >= s.w.size(0)) throw ArgumentError(fmt::format("{}:{}: index {} is beyond the {} samples", path, line_no, key, s.w.size(0)));
            row = static_cast<int64_t>(key);
        } else {
            const auto it = row_of_seed.find(static_cast<uint32_t>(key));
            if (key > 4294967295.0 || it == row_of_seed.end())
                throw ArgumentError(fmt::format("{}:{}: seed {} is not among the samples", path, line_no, static_cast<uint64_t>(key)));
            row = it->second;
        }
        if (seen.count(row)) throw ArgumentError(fmt::format("{}:{}: {} {} is labelled twice (first on line {})", path, line_no,
                                                             by_index ? "index" : "seed", static_cast<uint64_t>(key), seen[row]));
        seen[row] = line_no;
        rows.push_back(row);
        labels.push_back(score);
    }
    if (labels.empty()) throw ArgumentError(path + ": holds no labels");
    return labels;
}

std::string csv_number(double v) { return fmt::format("{:.6g}", v); }

// ----------------------------------------------------------------------------------- sample

struct SampleOpts {
    std::string model, seeds = "0-999", out, labels, images, device = "cpu", classifier, classifier_range = "-1,1";
    std::vector<std::string> scorers;
    std::optional<int> classifier_size;
    int classifier_output = 0, batch = 16;
    double trunc = 1.0;
};

void run_sample(const SampleOpts& o) {
    const auto seeds = parse_seeds(o.seeds);
    std::vector<std::unique_ptr<io::ImageScorer>> scorers;
    for (const auto& n : o.scorers) scorers.push_back(std::make_unique<io::ImageScorer>(n));
    std::unique_ptr<ScriptScorer> classifier;
    if (!o.classifier.empty()) {
        classifier = std::make_unique<ScriptScorer>(o.classifier);
        classifier->set_input(o.classifier_range, o.classifier_size);
    }
    const bool scoring = !scorers.empty() || classifier;
    const std::string labels_path = !o.labels.empty() ? o.labels : fs::path(o.out).replace_extension(".csv").string();
    const torch::Device device = device_from_name(o.device);
    const Model model = load_model_arg(o.model);
    auto G = model.generator();
    G->to(device);
    G->eval();
    if (classifier) classifier->to(device);
    Samples s;
    s.seeds = seeds;
    s.fingerprint = model_fingerprint(*G);
    s.num_ws = G->config.num_ws();
    s.w = sample_w(*G, seeds, o.trunc);
    if (!o.images.empty()) ensure_output_dir(o.images);

    std::vector<std::vector<double>> scores(seeds.size());
    if (scoring || !o.images.empty()) {
        ProgressBar bar("render", static_cast<int64_t>(seeds.size()));
        torch::NoGradGuard no_grad;
        const Renderer renderer(G);
        for (size_t start = 0; start < seeds.size(); start += static_cast<size_t>(o.batch)) {
            if (stop_requested()) throw CancelledError(fmt::format("directions sample interrupted ({} of {} samples; {} was not written)", start, seeds.size(), o.out));
            const int64_t n = std::min<int64_t>(o.batch, static_cast<int64_t>(seeds.size() - start));
            RenderSpec spec;
            spec.ws = s.w.narrow(0, static_cast<int64_t>(start), n);  // w, broadcast to every layer
            const torch::Tensor img = renderer.render(spec);
            const auto images = io::images_from_batch(img);
            std::vector<double> cls;
            if (classifier) cls = classifier->score(img, o.classifier_output);
            for (int64_t k = 0; k < n; ++k) {
                const size_t i = start + static_cast<size_t>(k);
                if (!o.images.empty()) write_png((fs::path(o.images) / fmt::format("seed{:04d}.png", seeds[i])).string(), images[k]);
                for (const auto& sc : scorers) scores[i].push_back(sc->score(images[k]));
                if (classifier) scores[i].push_back(cls[static_cast<size_t>(k)]);
            }
            bar.update(static_cast<int64_t>(start) + n);
        }
        bar.finish();
    }
    write_samples(o.out, s);
    if (scoring) {
        std::string csv = "seed";
        for (const auto& sc : scorers) csv += "," + sc->name();
        if (classifier) csv += ",classifier";
        csv += "\n";
        for (size_t i = 0; i < seeds.size(); ++i) {
            csv += std::to_string(seeds[i]);
            for (double v : scores[i]) csv += "," + csv_number(v);
            csv += "\n";
        }
        write_file_atomic(labels_path, csv.data(), csv.size());
        log_info(fmt::format("wrote scores of {} samples to {}", seeds.size(), labels_path));
    }
    log_info(fmt::format("wrote {} latents to {}", seeds.size(), o.out));
}

// ----------------------------------------------------------------------------------- fit

struct FitOpts {
    std::string samples, labels, column, method = "ridge", name, out, layers, model;
    std::vector<std::string> orthogonal_to;
    std::optional<double> threshold, keep_ratio;
    double regularization = 1.0, validation = 0.3;
    uint64_t seed = 0;
};

std::optional<std::pair<int, int>> layer_range(const std::string& text, int num_ws) {
    if (text.empty()) return std::nullopt;
    const auto layers = parse_layers(text, num_ws > 0 ? num_ws : 1 << 20);
    const auto [lo, hi] = std::minmax_element(layers.begin(), layers.end());
    if (static_cast<int>(layers.size()) != *hi - *lo + 1) throw ArgumentError("--layers must be one range, e.g. 0-5");
    return std::make_pair(*lo, *hi);
}

void run_fit(const FitOpts& o) {
    const Samples s = read_samples(o.samples);
    std::vector<int64_t> rows;
    const std::vector<double> labels = read_labels(o.labels, o.column, s, rows);
    FitOptions fo;
    fo.method = parse_fit_method(o.method);
    fo.threshold = o.threshold;
    fo.keep_ratio = o.keep_ratio;
    fo.regularization = o.regularization;
    fo.validation_fraction = o.validation;
    fo.seed = o.seed;
    LabelledSamples ls;
    ls.n = static_cast<int64_t>(rows.size());
    ls.d = s.w.size(1);
    const torch::Tensor x = s.w.index_select(0, torch::tensor(rows, torch::kInt64)).contiguous();
    ls.x.assign(x.data_ptr<float>(), x.data_ptr<float>() + x.numel());
    ls.y = labels;
    DirectionSet set;
    set.w_dim = static_cast<int>(ls.d);
    set.num_ws = s.num_ws;
    set.model_fingerprint = s.fingerprint;
    Direction d = fit_direction(ls, fo);
    d.name = !o.name.empty() ? o.name : !o.column.empty() ? o.column : fs::path(o.labels).stem().string();
    d.layers = layer_range(o.layers, s.num_ws);
    if (!o.orthogonal_to.empty()) {
        std::vector<std::vector<float>> others;
        for (const auto& spec : o.orthogonal_to) {
            others.push_back(load_direction_ref(parse_direction_ref(spec), set.w_dim, set.model_fingerprint).directions.front().vector);
        }
        d.vector = orthogonalize(d.vector, others);
        d.stats["orthogonal_to"] = static_cast<double>(others.size());
        const torch::Tensor proj = s.w.matmul(torch::tensor(d.vector));
        d.scale = std::max(1e-12, proj.std(0, false).item<double>());
    }
    set.directions.push_back(d);
    save_directions(o.out, set);
    std::string quality;
    for (const char* key : {"accuracy", "r2", "train_accuracy", "train_r2"})
        if (d.stats.count(key)) quality += fmt::format(" {} {:.3f}", key, d.stats.at(key));
    log_info(fmt::format("{}: {} on {} samples ({} train, {} validation):{} -> {}", d.name, d.source, d.stats["samples"], d.stats["train"],
                         d.stats["validation"], quality, o.out));
}

// ----------------------------------------------------------------------------------- pca / sefa

struct PcaOpts {
    std::string model, out, device = "cpu", seeds = "0-99999", layers;
    int components = 20, batch = 1000;
    double trunc = 1.0;
};

void run_pca(const PcaOpts& o) {
    const auto seeds = parse_seeds(o.seeds);
    const Model model = load_model_arg(o.model);
    auto G = model.generator();
    G->to(device_from_name(o.device));
    G->eval();
    const auto layers = layer_range(o.layers, G->config.num_ws());
    ProgressBar bar("pca", static_cast<int64_t>(seeds.size()), "sample");
    DirectionSet set = pca_directions(*G, seeds, o.components, o.trunc, o.batch, [&](int64_t done) {
        bar.update(done);
        throw_if_stopped("directions pca (nothing was written)");
    });
    bar.finish();
    double explained = 0;
    for (auto& d : set.directions) {
        d.layers = layers;
        explained += d.stats["explained"];
    }
    save_directions(o.out, set);
    log_info(fmt::format("{} components of {} samples explain {:.1f}% of the W variance -> {}", set.directions.size(), seeds.size(),
                         100 * explained, o.out));
}

void run_sefa(const PcaOpts& o) {
    const Model model = load_model_arg(o.model);
    auto G = model.generator();
    G->eval();
    const std::vector<int> layers = o.layers.empty() ? std::vector<int>{} : parse_layers(o.layers, G->config.num_ws());
    DirectionSet set = sefa_directions(*G, layers, o.components, o.trunc);
    const auto range = layer_range(o.layers, set.num_ws);
    for (auto& d : set.directions) d.layers = range;
    save_directions(o.out, set);
    log_info(fmt::format("{} closed-form directions from {} style rows -> {}", set.directions.size(),
                         set.directions.front().stats["style_rows"], o.out));
}

}  // namespace

void register_directions(CLI::App& app) {
    auto* cmd = app.add_subcommand("directions", "Find attribute directions in W: sample, fit, pca, sefa");
    cmd->require_subcommand(1);

    auto so = std::make_shared<SampleOpts>();
    auto* sample = cmd->add_subcommand("sample", "Sample latents from seeds, optionally render and score their images");
    add_model_option(sample, so->model);
    add_seeds_option(sample, so->seeds, "Seeds of the samples");
    add_trunc_option(sample, so->trunc, "Truncation psi");
    sample->add_option("--images", so->images, "Also save the images here (seedNNNN.png), e.g. to label them by hand");
    sample->add_option("--score", so->scorers, "Built-in scorers: brightness, colorfulness, red, green, blue, face, smile, eyes")->delimiter(',');
    sample->add_option("--classifier", so->classifier, "TorchScript model that scores images ([N, K] output)");
    sample->add_option("--classifier-output", so->classifier_output, "Which output column of the classifier");
    sample->add_option("--classifier-range", so->classifier_range, "Input range the classifier expects: -1,1 or 0,1 or 0,255");
    sample->add_option("--classifier-size", so->classifier_size, "Resize images to this size for the classifier");
    sample->add_option("--batch", so->batch, "Images per batch")->check(above(0));
    add_device_option(sample, so->device);
    sample->add_option("--labels", so->labels, "Where the scores go (CSV; default: the output with .csv)");
    sample->add_option("--out,-o", so->out, "Samples file (.npz with w, seeds)")->required();
    sample->callback([so]() { run_sample(*so); });

    auto fo = std::make_shared<FitOpts>();
    auto* fit = cmd->add_subcommand("fit", "Fit a direction to labelled samples (ridge, logistic or svm)");
    fit->add_option("--samples", fo->samples, "Samples file from 'directions sample'")->required();
    fit->add_option("--labels", fo->labels, "CSV of seed,score (or index,score); a header names the columns")->required();
    fit->add_option("--column", fo->column, "Score column (by header name; default: the second column)");
    fit->add_option("--method", fo->method, "ridge (scores), logistic or svm (binary labels)")->check(CLI::IsMember({"ridge", "logistic", "svm"}));
    fit->add_option("--threshold", fo->threshold, "Binary methods: label = score > threshold");
    fit->add_option("--keep-ratio", fo->keep_ratio, "InterFaceGAN: keep this fraction at each end of the sorted scores");
    fit->add_option("--regularization", fo->regularization, "L2 regularisation strength");
    fit->add_option("--validation", fo->validation, "Fraction held out for validation");
    fit->add_option("--seed", fo->seed, "Seed of the train/validation split");
    fit->add_option("--orthogonal-to", fo->orthogonal_to, "Make the direction orthogonal to these (FILE or FILE#NAME)");
    fit->add_option("--layers", fo->layers, "W+ layer range the direction is meant for, e.g. 0-5");
    fit->add_option("--name", fo->name, "Direction name (default: the column or file name)");
    fit->add_option("--out,-o", fo->out, "Direction file (.json)")->required();
    fit->callback([fo]() { run_fit(*fo); });

    auto po = std::make_shared<PcaOpts>();
    auto* pca = cmd->add_subcommand("pca", "Principal components of sampled W (GANSpace)");
    add_model_option(pca, po->model);
    add_seeds_option(pca, po->seeds, "Seeds of the samples (default 0-99999)");
    pca->add_option("--components,-k", po->components, "Number of components");
    add_trunc_option(pca, po->trunc, "Truncation psi of the samples");
    pca->add_option("--layers", po->layers, "W+ layer range the directions are meant for");
    pca->add_option("--batch", po->batch, "Samples per batch")->check(above(0));
    add_device_option(pca, po->device);
    pca->add_option("--out,-o", po->out, "Direction file (.json)")->required();
    pca->callback([po]() { run_pca(*po); });

    auto fo2 = std::make_shared<PcaOpts>();
    fo2->components = 10;
    auto* sefa = cmd->add_subcommand("sefa", "Closed-form factorisation of the style weights (SeFa)");
    add_model_option(sefa, fo2->model);
    sefa->add_option("--layers", fo2->layers, "W+ layers whose style weights are used, e.g. 0-3 (default: all)");
    sefa->add_option("--components,-k", fo2->components, "Number of directions");
    sefa->add_option("--out,-o", fo2->out, "Direction file (.json)")->required();
    sefa->callback([fo2]() { run_sefa(*fo2); });
}

}  // namespace latentkit::tools
