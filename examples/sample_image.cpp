// Sample one image from a seed and save it as a PNG.
// Usage: sample_image OUT.png [SEED] [MODEL]   (MODEL defaults to the bundled emoji model)
#include <cstdio>
#include <string>

#include "latentkit/io/bundled_model.h"
#include "latentkit/png.h"
#include "latentkit/io/tensor_image.h"
#include "latentkit/latent.h"
#include "latentkit/model_io.h"
#include "latentkit/networks.h"

int main(int argc, char** argv) try {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s OUT.png [SEED] [MODEL]\n", argv[0]);
        return 2;
    }
    const uint32_t seed = argc > 2 ? static_cast<uint32_t>(std::stoul(argv[2])) : 0;
    const std::string model_path = argc > 3 ? argv[3] : latentkit::io::default_model().path;

    const latentkit::Model model = latentkit::load_model(model_path);
    auto G = model.generator();
    torch::NoGradGuard no_grad;

    // Seed N gives the z of numpy.random.RandomState(N).randn(1, z_dim); map it (psi 0.7) and synthesise.
    const torch::Tensor z = latentkit::z_from_seeds({seed}, G->config.z_dim);
    const torch::Tensor c = latentkit::class_labels(G->config.c_dim, G->config.c_dim ? std::optional<int>(0) : std::nullopt, 1);
    const torch::Tensor ws = latentkit::map_to_ws(*G, z, c, 0.7);
    const torch::Tensor img = G->synthesis->forward(ws, {});

    latentkit::write_png(argv[1], latentkit::io::images_from_batch(img).at(0));
    std::printf("%s: seed %u from %s\n", argv[1], seed, model_path.c_str());
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "sample_image: %s\n", e.what());
    return 1;
}
