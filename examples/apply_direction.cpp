// Find the main direction of variation in W (PCA, as GANSpace) and move a seed along it: a strip
// of images from strength -3 to +3.
// Usage: apply_direction OUT.png [SEED] [MODEL]   (MODEL defaults to the bundled emoji model)
#include <cstdio>
#include <string>
#include <vector>

#include "latentkit/directions.h"
#include "latentkit/editing.h"
#include "latentkit/io/bundled_model.h"
#include "latentkit/png.h"
#include "latentkit/io/tensor_image.h"
#include "latentkit/latent.h"
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
    auto G = model.generator();
    torch::NoGradGuard no_grad;

    // Principal components of 2,000 mapped latents; component 0 explains the most variance.
    std::vector<uint32_t> seeds(2000);
    for (uint32_t i = 0; i < seeds.size(); ++i) seeds[i] = i;
    const latentkit::DirectionSet pca = latentkit::pca_directions(*G, seeds, 1);
    const latentkit::Direction& direction = pca.directions.at(0);

    // The seed's W+ latent, moved by each strength (in standard deviations along the direction).
    const latentkit::Renderer renderer(G);
    latentkit::RenderSpec spec;
    spec.seeds = {seed};
    if (G->config.c_dim > 0) spec.class_index = 0;
    std::vector<latentkit::Image8> strip;
    for (double strength : {-3.0, -1.5, 0.0, 1.5, 3.0}) {
        spec.edits = {{direction.vector, direction.scale, strength}};
        strip.push_back(latentkit::io::images_from_batch(renderer.render(spec)).at(0));
    }
    latentkit::write_png(argv[1], latentkit::io::tile_images(strip, static_cast<int>(strip.size()), 1));
    std::printf("%s: seed %u along '%s', strengths -3..3\n", argv[1], seed, direction.name.c_str());
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "apply_direction: %s\n", e.what());
    return 1;
}
