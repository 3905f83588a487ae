// Directions jobs, hand-label fits and the files the viewer reads.
#include "model_jobs.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include "latentkit/editing.h"
#include "latentkit/error.h"
#include "latentkit/io/tensor_image.h"
#include "latentkit/latent.h"
#include "latentkit/networks.h"
#include "latentkit/npz.h"
#include "latentkit/render.h"

namespace latentkit::viewer {

namespace {

// Latents and thumbnails of consecutive seeds, for labelling.
void sample_for_labels(const std::shared_ptr<Generator>& G, const DirectionsJob& job, DirectionsResult& out) {
    if (job.samples < 1 || job.samples > 1024 || job.first_seed < 0) throw ArgumentError("1 to 1024 samples from a seed >= 0");
    for (int k = 0; k < job.samples; ++k) out.seeds.push_back(static_cast<uint32_t>(job.first_seed + k));
    const torch::Tensor w = sample_w(*G, out.seeds, job.psi).contiguous();
    out.w.assign(w.data_ptr<float>(), w.data_ptr<float>() + w.numel());
    RenderSpec spec;
    spec.ws = w;  // w, broadcast to every layer
    const torch::Tensor img = Renderer(G).render(spec);
    for (auto& im : io::images_from_batch(img.to(torch::kCPU))) out.images.push_back(io::convert_channels(im, 3));
}

}  // namespace

DirectionsResult run_directions_job(const OpenModel& model, const DirectionsJob& job) {
    DirectionsResult out;
    out.kind = job.kind;
    Generator& G = *model.G;
    switch (job.kind) {
        case DirectionsJobKind::samples: sample_for_labels(model.G, job, out); break;
        case DirectionsJobKind::pca: {
            std::vector<uint32_t> seeds(static_cast<size_t>(std::max(job.samples, 0)));
            for (size_t k = 0; k < seeds.size(); ++k) seeds[k] = static_cast<uint32_t>(k);
            out.set = pca_directions(G, seeds, job.components);
            break;
        }
        case DirectionsJobKind::sefa: out.set = sefa_directions(G, {}, job.components); break;
    }
    return out;
}

DirectionSet fit_marked_direction(const std::vector<float>& w, const std::vector<int>& marks, int w_dim, const std::string& name) {
    int pos = 0, neg = 0;
    LabelledSamples ls;
    ls.d = w_dim;
    for (size_t k = 0; k < marks.size(); ++k) {
        if (marks[k] == 0) continue;
        if ((k + 1) * static_cast<size_t>(w_dim) > w.size()) throw ArgumentError("the marks do not match the samples");
        (marks[k] > 0 ? pos : neg) += 1;
        ls.x.insert(ls.x.end(), w.begin() + static_cast<std::ptrdiff_t>(k * w_dim), w.begin() + static_cast<std::ptrdiff_t>((k + 1) * w_dim));
        ls.y.push_back(marks[k] > 0 ? 1.0 : 0.0);
    }
    if (pos < 2 || neg < 2) throw ArgumentError(fmt::format("mark at least 2 positive and 2 negative samples ({} and {} so far)", pos, neg));
    ls.n = static_cast<int64_t>(ls.y.size());
    FitOptions o;
    o.method = FitMethod::logistic;
    o.validation_fraction = 0;  // a handful of hand labels: all of them train
    Direction dir = fit_direction(ls, o);
    dir.name = name.empty() ? "labels" : name;
    DirectionSet set;
    set.w_dim = w_dim;
    set.directions.push_back(dir);
    return set;
}

DirectionSet read_direction_spec(const std::string& spec, const ModelSummary& model) {
    return load_direction_ref(parse_direction_ref(spec), model.w_dim, model.fingerprint);
}

std::vector<float> read_latent_file(const std::string& path, const ModelSummary& model) {
    if (model.w_dim == 0) throw ArgumentError(path + ": open a model before a latent");
    const std::vector<float> all = read_projected_w(path, model.num_ws, model.w_dim).to_floats();
    return std::vector<float>(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(model.num_ws) * model.w_dim);
}

}  // namespace latentkit::viewer
