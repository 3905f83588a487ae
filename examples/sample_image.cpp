// Sample one image from a seed and save it as a PNG.
// Usage: sample_image OUT.png [SEED] [MODEL]   (MODEL defaults to the bundled emoji model)
#include <cstdio>
#include <string>

#include "latentkit/io/bundled_model.h"
#include "latentkit/png.h"
#include "latentkit/io/tensor_image.h"
#include "latentkit/model_io.h"
#include "latentkit/networks.h"
#include "latentkit/render.h"

int main(int argc, char** argv) try {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s OUT.png [SEED] [MODEL]\n", argv[0]);
        return 2;
    }
    const uint32_t seed = argc > 2 ? static_cast<uint32_t>(std::stoul(argv[2])) : 0;
    const std::string model_path = argc > 3 ? argv[3] : latentkit::io::default_model().path;

    const latentkit::Model model = latentkit::load_model(model_path);
    const latentkit::Renderer renderer(model.generator());

    // Seed N gives the z of numpy.random.RandomState(N).randn(1, z_dim); mapped with psi 0.7 and synthesised.
    latentkit::RenderSpec spec;
    spec.seeds = {seed};
    spec.psi = 0.7;
    if (renderer.generator().config.c_dim > 0) spec.class_index = 0;
    const torch::Tensor img = renderer.render(spec);

    latentkit::write_png(argv[1], latentkit::io::images_from_batch(img).at(0));
    std::printf("%s: seed %u from %s\n", argv[1], seed, model_path.c_str());
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "sample_image: %s\n", e.what());
    return 1;
}
