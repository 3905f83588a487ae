// latentkit nearest: how far generated samples are from their nearest training images, to tell
// a generator that makes new images from one that reproduces its training set.
#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "common.h"
#include "latentkit/atomic_file.h"
#include "latentkit/error.h"
#include "latentkit/io/dataset.h"
#include "latentkit/png.h"
#include "latentkit/io/tensor_image.h"
#include "latentkit/latent.h"
#include "latentkit/log.h"
#include "latentkit/metrics.h"
#include "latentkit/networks.h"
#include "latentkit/stop.h"
#include "latentkit/render.h"
#include "progress_bar.h"

namespace latentkit::tools {
namespace {

struct Opts {
    std::string model, data, seeds = "0-63", out, json, device = "cpu";
    RenderSpec spec;  // psi and noise
    int pairs_per_row = 8, reference = 64;
};

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const size_t h = v.size() / 2;
    return v.size() % 2 ? v[h] : 0.5 * (v[h - 1] + v[h]);
}

// Dataset image `index` as an interleaved (H x W x C) 8-bit image, the layout generated images have.
Image8 dataset_image(const io::ImageDataset& data, size_t index) {
    const int r = data.resolution(), ch = data.channels();
    std::vector<uint8_t> planar(static_cast<size_t>(r) * r * ch);
    data.read_image(index, planar.data());
    Image8 image{r, r, ch, std::vector<uint8_t>(planar.size())};
    for (int c = 0; c < ch; ++c)
        for (int p = 0; p < r * r; ++p) image.pixels[static_cast<size_t>(p) * ch + c] = planar[static_cast<size_t>(c) * r * r + p];
    return image;
}

// Every training image as one row of dim bytes.
std::vector<uint8_t> read_rows(const io::ImageDataset& data, int64_t dim) {
    std::vector<uint8_t> train;
    train.reserve(data.size() * static_cast<size_t>(dim));
    ProgressBar bar("read data", static_cast<int64_t>(data.size()));
    for (size_t i = 0; i < data.size(); ++i) {
        const Image8 image = dataset_image(data, i);
        train.insert(train.end(), image.pixels.begin(), image.pixels.end());
        if (i % 256 == 0) {
            bar.update(static_cast<int64_t>(i));
            throw_if_stopped("nearest (reading the dataset; nothing was written)");
        }
    }
    bar.finish();
    return train;
}

// The samples of the seeds, 16 at a time.
std::vector<Image8> render_samples(const std::shared_ptr<Generator>& G, const std::vector<uint32_t>& seeds, RenderSpec spec) {
    const Renderer renderer(G);
    std::vector<Image8> samples;
    for (size_t start = 0; start < seeds.size(); start += 16) {
        spec.seeds.assign(seeds.begin() + start, seeds.begin() + std::min(seeds.size(), start + 16));
        for (auto& image : io::images_from_batch(renderer.render(spec))) samples.push_back(std::move(image));
    }
    return samples;
}

// Reference scale: `count` training images spread evenly over the set, each against all the others.
NearestNeighbours reference_distances(const std::vector<uint8_t>& train, size_t images, int64_t dim, size_t count) {
    std::vector<uint8_t> ref_rows;
    std::vector<int64_t> ref_index;
    for (size_t k = 0; k < count; ++k) {
        const int64_t i = static_cast<int64_t>(k * images / count);
        ref_index.push_back(i);
        ref_rows.insert(ref_rows.end(), train.begin() + i * dim, train.begin() + (i + 1) * dim);
    }
    return count > 0 ? nearest_neighbours(ref_rows, train, dim, ref_index) : NearestNeighbours{};
}

void run(const Opts& o) {
    if (o.out.size() < 4 || o.out.compare(o.out.size() - 4, 4, ".png") != 0) throw ArgumentError(o.out + ": the pairs are written as .png");
    const std::vector<uint32_t> seeds = parse_seeds(o.seeds);
    const torch::Device device = device_from_name(o.device);
    const Model model = load_model_arg(o.model);
    auto G = model.generator();
    const auto& cfg = G->config;
    if (cfg.c_dim > 0) throw ArgumentError(model.path + ": nearest compares unconditional samples; this model is conditional");
    const io::ImageDataset data(o.data);
    if (data.resolution() != cfg.img_resolution || data.channels() != cfg.img_channels)
        throw ShapeError(fmt::format("{}: images are {}x{} with {} channel(s), the model makes {}x{} with {}", o.data, data.resolution(),
                                     data.resolution(), data.channels(), cfg.img_resolution, cfg.img_resolution, cfg.img_channels));

    const int64_t dim = static_cast<int64_t>(cfg.img_resolution) * cfg.img_resolution * cfg.img_channels;
    const std::vector<uint8_t> train = read_rows(data, dim);
    G->to(device);
    G->eval();
    const std::vector<Image8> samples = render_samples(G, seeds, o.spec);
    std::vector<uint8_t> queries;
    for (const auto& s : samples) queries.insert(queries.end(), s.pixels.begin(), s.pixels.end());
    const NearestNeighbours nn = nearest_neighbours(queries, train, dim);
    const size_t n_ref = std::min<size_t>(static_cast<size_t>(o.reference), data.size() > 1 ? data.size() : 0);
    const NearestNeighbours ref = reference_distances(train, data.size(), dim, n_ref);

    std::vector<Image8> cells;
    nlohmann::json report = {{"model", model.path}, {"data", o.data}, {"trunc", o.spec.psi}, {"samples", nlohmann::json::array()}};
    for (size_t k = 0; k < samples.size(); ++k) {
        cells.push_back(samples[k]);
        cells.push_back(dataset_image(data, nn.index[k]));
        const std::string& name = data.image_name(nn.index[k]);
        fmt::print("seed {:<6} nearest {:<28} rms {:6.2f}\n", seeds[k], name, nn.rms[k]);
        report["samples"].push_back({{"seed", seeds[k]}, {"nearest", name}, {"rms", nn.rms[k]}});
    }
    const double sample_median = median(nn.rms);
    const double sample_min = *std::min_element(nn.rms.begin(), nn.rms.end());
    fmt::print("samples          {}  median rms to the nearest training image {:.2f}  min {:.2f}  (0..255 pixel units)\n", samples.size(),
               sample_median, sample_min);
    report["median_rms"] = sample_median;
    report["min_rms"] = sample_min;
    if (n_ref > 0) {
        const double ref_median = median(ref.rms);
        fmt::print("training images  {}  median rms to the nearest other training image {:.2f}\n", n_ref, ref_median);
        report["training_reference"] = {{"images", n_ref}, {"median_rms", ref_median}};
    }

    const int cols = 2 * o.pairs_per_row;
    const int rows = static_cast<int>((cells.size() + cols - 1) / cols);
    write_png(o.out, io::tile_images(cells, cols, rows));
    if (!o.json.empty()) {
        const std::string text = report.dump(2) + "\n";
        write_file_atomic(o.json, text.data(), text.size());
    }
    log_info(fmt::format("wrote {} (each sample, then its nearest training image){}", o.out, o.json.empty() ? "" : " and " + o.json));
}

}  // namespace

void register_nearest(CLI::App& app) {
    auto o = std::make_shared<Opts>();
    auto* cmd = app.add_subcommand("nearest", "Pair each sample with its nearest training image (pixel RMS): a check for memorisation");
    add_model_option(cmd, o->model);
    cmd->add_option("--data", o->data, "Training dataset (folder or .zip, as `latentkit dataset` writes)")->required();
    add_seeds_option(cmd, o->seeds, "Seeds of the samples");
    add_trunc_option(cmd, o->spec.psi, "Truncation psi (1 = none)");
    add_render_options(cmd, o->spec, kNoiseMode);
    cmd->add_option("--reference", o->reference, "Training images compared with the rest of the set, for scale (0: none)")->check(at_least(0));
    cmd->add_option("--pairs-per-row", o->pairs_per_row, "Sample/neighbour pairs per row of the picture")->check(above(0));
    cmd->add_option("--json", o->json, "Also write the distances as JSON");
    add_device_option(cmd, o->device);
    cmd->add_option("--out,-o", o->out, "Picture of the pairs (.png)")->required();
    cmd->callback([o]() { run(*o); });
}

}  // namespace latentkit::tools
