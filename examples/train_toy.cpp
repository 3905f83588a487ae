// A minimal training loop: a toy dataset made in memory (coloured discs on a gray background,
// 16x16), a tiny generator and discriminator, a short run that writes a snapshot, and one sample
// generated from that snapshot.
// Usage: train_toy OUTDIR [KIMG]
#include <cmath>
#include <cstdio>
#include <string>

#include "latentkit/png.h"
#include "latentkit/io/tensor_image.h"
#include "latentkit/latent.h"
#include "latentkit/model_io.h"
#include "latentkit/networks.h"
#include "latentkit/train.h"
#include "latentkit/render.h"

namespace {

// TrainingData is the trainer's only view of the images: size, shape and the pixels of image i
// (uint8, channel-major C x H x W). Here each image is drawn on demand from its index.
class ToyDiscs : public latentkit::TrainingData {
public:
    size_t size() const override { return 512; }
    int resolution() const override { return 16; }
    int channels() const override { return 3; }
    int label_dim() const override { return 0; }
    std::vector<float> label(size_t) const override { return {}; }
    std::string name() const override { return "toy discs"; }

    void read_image(size_t index, uint8_t* out) const override {
        const double cx = 4 + index % 8, cy = 4 + (index / 8) % 8, radius = 2.5 + (index % 3);
        const uint8_t color[3] = {static_cast<uint8_t>(60 + 60 * (index % 4)), static_cast<uint8_t>(200 - 40 * (index % 5)),
                                  static_cast<uint8_t>(40 + 50 * (index % 3))};
        for (int c = 0; c < 3; ++c)
            for (int y = 0; y < 16; ++y)
                for (int x = 0; x < 16; ++x)
                    out[(c * 16 + y) * 16 + x] = std::hypot(x - cx, y - cy) <= radius ? color[c] : 128;
    }
};

}  // namespace

int main(int argc, char** argv) try {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s OUTDIR [KIMG]\n", argv[0]);
        return 2;
    }
    latentkit::TrainOptions options;
    options.outdir = argv[1];
    options.kimg = argc > 2 ? std::stod(argv[2]) : 0.128;
    options.tick_kimg = options.kimg / 2;
    options.batch = 8;
    options.gamma = 0.05;
    options.channel_base = 256;  // 32 channels at 4x4 and 8x8, 16 at 16x16: tiny, for a quick run
    options.channel_max = 32;
    options.z_dim = options.w_dim = 32;
    options.map_layers = 2;

    latentkit::TrainCallbacks callbacks;
    callbacks.tick = [](const latentkit::TickStats& t) {
        std::printf("tick %d  kimg %.3f  G %.3f  D %.3f  %.1f s/kimg%s\n", t.tick, t.kimg, t.loss_g, t.loss_d, t.sec_per_kimg,
                    t.snapshot.empty() ? "" : ("  -> " + t.snapshot).c_str());
    };
    callbacks.write_image = [](const std::string& path, int width, int height, int channels, const std::vector<uint8_t>& pixels) {
        latentkit::write_png(path, latentkit::Image8{width, height, channels, pixels});
    };
    latentkit::train(ToyDiscs{}, options, callbacks);

    // The snapshot is a model file like any other: load its G_ema and sample seed 0.
    const std::string snapshot = latentkit::latest_snapshot(options.outdir);
    const latentkit::Model model = latentkit::load_model(snapshot);
    latentkit::RenderSpec spec;
    spec.seeds = {0};
    const std::string sample = options.outdir + "/sample.png";
    latentkit::write_png(sample, latentkit::io::images_from_batch(latentkit::Renderer(model.generator()).render(spec)).at(0));
    std::printf("%s: trained %.3f kimg; %s\n", snapshot.c_str(), options.kimg, sample.c_str());
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "train_toy: %s\n", e.what());
    return 1;
}
