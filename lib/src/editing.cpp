// Latent editing: fingerprints, sampling, style weights, directions applied to latents, TorchScript scorers.
#include "latentkit/editing.h"

#include <fmt/format.h>
#include <torch/script.h>

#include "latentkit/error.h"
#include "latentkit/latent.h"
#include "latentkit/networks.h"

namespace latentkit {

std::string model_fingerprint(Generator& G) {
    uint64_t h = 1469598103934665603ull;
    auto mix = [&](const void* data, size_t n) {
        const auto* p = static_cast<const unsigned char*>(data);
        for (size_t k = 0; k < n; ++k) h = (h ^ p[k]) * 1099511628211ull;
    };
    const int dims[5] = {G.config.z_dim, G.config.c_dim, G.config.w_dim, G.config.num_ws(), G.config.img_resolution};
    mix(dims, sizeof(dims));
    for (const auto& p : G.mapping->named_parameters(true)) {
        mix(p.key().data(), p.key().size());
        const torch::Tensor t = p.value().detach().to(torch::kCPU, torch::kFloat32).contiguous();
        mix(t.data_ptr<float>(), static_cast<size_t>(t.numel()) * sizeof(float));
    }
    return fmt::format("{:016x}", h);
}

torch::Tensor sample_w(Generator& G, const std::vector<uint32_t>& seeds, double truncation_psi, int batch) {
    if (batch < 1) throw ArgumentError("the batch must be at least 1");
    const auto device = device_of(*G.mapping);
    std::vector<torch::Tensor> out;
    for (size_t start = 0; start < seeds.size(); start += static_cast<size_t>(batch)) {
        const std::vector<uint32_t> chunk(seeds.begin() + static_cast<std::ptrdiff_t>(start),
                                          seeds.begin() + static_cast<std::ptrdiff_t>(std::min(seeds.size(), start + batch)));
        torch::Tensor c = class_labels(G.config.c_dim, G.config.c_dim ? std::optional<int>(0) : std::nullopt, static_cast<int64_t>(chunk.size()));
        if (c.defined()) c = c.to(device);
        out.push_back(map_to_ws(G, z_from_seeds(chunk, G.config.z_dim).to(device), c, truncation_psi).select(1, 0).to(torch::kCPU));
    }
    if (out.empty()) return torch::zeros({0, G.config.w_dim});
    return torch::cat(out).contiguous();
}

std::vector<int> conv_layer_indices(const Generator& G) {
    std::vector<int> out;
    for (const StyleLayer& layer : G.synthesis->style_layers()) out.push_back(layer.ws_index);
    return out;
}

std::vector<torch::Tensor> style_weights(Generator& G, const std::vector<int>& layers) {
    std::vector<torch::Tensor> out;
    for (const StyleLayer& layer : G.synthesis->style_layers())
        if (layers.empty() || std::find(layers.begin(), layers.end(), layer.ws_index) != layers.end())
            out.push_back(layer.affine_weight.detach().to(torch::kCPU, torch::kFloat32));
    if (out.empty()) throw ArgumentError("none of the chosen layers is a convolution layer");
    return out;
}

DirectionSet pca_directions(Generator& G, const std::vector<uint32_t>& seeds, int k, double psi, int batch,
                            const std::function<void(int64_t)>& progress) {
    const int d = G.config.w_dim;
    if (k < 1 || k > d) throw ArgumentError(fmt::format("the number of components must be between 1 and {}", d));
    if (seeds.size() < 2) throw ArgumentError("PCA needs at least 2 samples");
    if (batch < 1) throw ArgumentError("the batch must be at least 1");
    PcaAccumulator acc(d);
    for (size_t start = 0; start < seeds.size(); start += static_cast<size_t>(batch)) {
        const std::vector<uint32_t> chunk(seeds.begin() + static_cast<std::ptrdiff_t>(start),
                                          seeds.begin() + static_cast<std::ptrdiff_t>(std::min(seeds.size(), start + batch)));
        const torch::Tensor w = sample_w(G, chunk, psi, batch).contiguous();
        acc.add(w.data_ptr<float>(), w.size(0));
        if (progress) progress(acc.count());
    }
    DirectionSet set;
    set.w_dim = d;
    set.num_ws = G.config.num_ws();
    set.model_fingerprint = model_fingerprint(G);
    std::vector<std::vector<float>> comps;
    std::vector<double> vars;
    acc.solve(k, set.w_mean, comps, vars);
    const double total = acc.total_variance();
    for (size_t j = 0; j < comps.size(); ++j) {
        Direction dir;
        dir.name = fmt::format("pca{}", j);
        dir.source = "pca";
        dir.vector = comps[j];
        dir.scale = std::sqrt(std::max(vars[j], 1e-12));
        dir.stats = {{"variance", vars[j]}, {"explained", total > 0 ? vars[j] / total : 0.0}, {"samples", static_cast<double>(acc.count())}};
        set.directions.push_back(dir);
    }
    return set;
}

DirectionSet sefa_directions(Generator& G, const std::vector<int>& layers, int k, double psi) {
    const int d = G.config.w_dim;
    if (k < 1 || k > d) throw ArgumentError(fmt::format("the number of directions must be between 1 and {}", d));
    std::vector<std::vector<float>> rows;
    for (const auto& wgt : style_weights(G, layers)) {
        const torch::Tensor t = wgt.contiguous();
        for (int64_t r = 0; r < t.size(0); ++r) rows.emplace_back(t[r].data_ptr<float>(), t[r].data_ptr<float>() + d);
    }
    std::vector<std::vector<float>> vecs;
    std::vector<double> values;
    closed_form_directions(rows, d, k, vecs, values);
    std::vector<uint32_t> seeds(2000);
    for (uint32_t j = 0; j < seeds.size(); ++j) seeds[j] = j;
    const torch::Tensor w = sample_w(G, seeds, psi);
    DirectionSet set;
    set.w_dim = d;
    set.num_ws = G.config.num_ws();
    set.model_fingerprint = model_fingerprint(G);
    for (size_t j = 0; j < vecs.size(); ++j) {
        Direction dir;
        dir.name = fmt::format("sefa{}", j);
        dir.source = "sefa";
        dir.vector = vecs[j];
        dir.scale = std::max(1e-12, w.matmul(torch::tensor(vecs[j])).std(0, false).item<double>());
        dir.stats = {{"eigenvalue", values[j]}, {"style_rows", static_cast<double>(rows.size())}};
        set.directions.push_back(dir);
    }
    return set;
}

torch::Tensor apply_direction(const torch::Tensor& ws, const Direction& d, double strength, const std::vector<int>& layers) {
    if (ws.dim() != 3 || ws.size(2) != static_cast<int64_t>(d.vector.size()))
        throw ShapeError(fmt::format("direction '{}' has {} values, the latents are {}", d.name, d.vector.size(), fmt::join(ws.sizes(), "x")));
    if (strength == 0) return ws;
    const torch::Tensor v = torch::tensor(d.vector).to(ws.device(), ws.scalar_type()) * (strength * d.scale);
    torch::Tensor mask = torch::zeros({ws.size(1)}, ws.options());
    if (!layers.empty()) {
        for (int l : layers) {
            if (l < 0 || l >= ws.size(1)) throw ArgumentError(fmt::format("layer {} is out of range (0-{})", l, ws.size(1) - 1));
            mask[l] = 1;
        }
    } else if (d.layers) {
        for (int l = d.layers->first; l <= std::min<int>(d.layers->second, static_cast<int>(ws.size(1)) - 1); ++l) mask[l] = 1;
    } else {
        mask.fill_(1);
    }
    return ws + mask.view({1, -1, 1}) * v.view({1, 1, -1});
}

// ---------------------------------------------------------------------------------------------

struct ScriptScorer::State {
    std::string path;
    torch::jit::Module module;
    double lo = -1, hi = 1;
    std::optional<int> size;
};

ScriptScorer::ScriptScorer(const std::string& path) : s_(std::make_unique<State>()) {
    s_->path = path;
    try {
        s_->module = torch::jit::load(path, torch::kCPU);
    } catch (const std::exception&) {
        throw ModelFormatError(fmt::format("{}: not a TorchScript module", path));
    }
    s_->module.eval();
}

ScriptScorer::~ScriptScorer() = default;

void ScriptScorer::set_input(const std::string& range, std::optional<int> size) {
    if (range == "-1,1") s_->lo = -1, s_->hi = 1;
    else if (range == "0,1") s_->lo = 0, s_->hi = 1;
    else if (range == "0,255") s_->lo = 0, s_->hi = 255;
    else throw ArgumentError("classifier input range " + range + ": use -1,1 or 0,1 or 0,255");
    if (size && *size < 1) throw ArgumentError("the classifier input size must be positive");
    s_->size = size;
}

std::vector<double> ScriptScorer::score(const torch::Tensor& images, int index) {
    torch::NoGradGuard no_grad;
    torch::Tensor x = (images.clamp(-1, 1) + 1) * (0.5 * (s_->hi - s_->lo)) + s_->lo;
    if (s_->size && (x.size(2) != *s_->size || x.size(3) != *s_->size))
        x = torch::nn::functional::interpolate(x, torch::nn::functional::InterpolateFuncOptions()
                                                      .size(std::vector<int64_t>{*s_->size, *s_->size})
                                                      .mode(torch::kBilinear)
                                                      .align_corners(false));
    torch::Tensor out;
    try {
        out = s_->module.forward({x}).toTensor();
    } catch (const c10::Error& e) {
        throw ModelFormatError(fmt::format("{}: running the classifier failed: {}", s_->path, e.what_without_backtrace()));
    }
    if (out.dim() == 1) out = out.unsqueeze(1);
    if (out.dim() != 2 || out.size(0) != x.size(0))
        throw ModelFormatError(fmt::format("{}: the classifier must return [N] or [N, K] scores", s_->path));
    if (index < 0 || index >= out.size(1))
        throw ArgumentError(fmt::format("{}: output index {} asked for, the classifier has {} output(s)", s_->path, index, out.size(1)));
    const torch::Tensor col = out.select(1, index).to(torch::kCPU, torch::kFloat64).contiguous();
    return std::vector<double>(col.data_ptr<double>(), col.data_ptr<double>() + col.numel());
}

void ScriptScorer::to(const torch::Device& device) { s_->module.to(device); }

}  // namespace latentkit
