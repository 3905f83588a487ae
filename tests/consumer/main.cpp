// Uses an installed latentkit as any program would: loads a model, maps a seed, renders and saves it.
// Usage: consumer MODEL OUT.png SEED
#include <latentkit/error.h>
#include <latentkit/latent.h>
#include <latentkit/model_io.h>
#include <latentkit/networks.h>
#include <latentkit/png.h>
#include <latentkit/io/tensor_image.h>

#include <cstdio>
#include <cstdlib>

int main(int argc, char** argv) {
    if (argc != 4) {
        std::fprintf(stderr, "usage: consumer MODEL OUT.png SEED\n");
        return 2;
    }
    try {
        const latentkit::Model model = latentkit::load_model(argv[1]);
        auto G = model.generator();
        torch::NoGradGuard no_grad;
        const torch::Tensor ws = latentkit::map_to_ws(*G, latentkit::z_from_seeds({static_cast<uint32_t>(std::atoi(argv[3]))}, G->config.z_dim), {}, 0.7);
        latentkit::write_png(argv[2], latentkit::io::images_from_batch(G->synthesis->forward(ws))[0]);
        std::printf("%s: %dx%d %s generator, seed %s -> %s\n", argv[1], G->config.img_resolution, G->config.img_resolution,
                    G->config.family_name(), argv[3], argv[2]);
        return 0;
    } catch (const latentkit::Error& e) {
        std::fprintf(stderr, "consumer: %s\n", e.what());
        return 1;
    }
}
