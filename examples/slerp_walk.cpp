// A looping walk through seeds along great circles in Z, written as an H.264 video.
// Usage: slerp_walk OUT.mp4 [FRAMES_PER_SEED] [MODEL]   (MODEL defaults to the bundled emoji model)
#include <cstdio>
#include <string>

#include "latentkit/interpolate.h"
#include "latentkit/io/bundled_model.h"
#include "latentkit/io/tensor_image.h"
#include "latentkit/io/video.h"
#include "latentkit/latent.h"
#include "latentkit/model_io.h"
#include "latentkit/networks.h"
#include "latentkit/render.h"

int main(int argc, char** argv) try {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s OUT.mp4 [FRAMES_PER_SEED] [MODEL]\n", argv[0]);
        return 2;
    }
    const int frames_per_seed = argc > 2 ? std::stoi(argv[2]) : 30;
    const std::string model_path = argc > 3 ? argv[3] : latentkit::io::default_model().path;

    const latentkit::Model model = latentkit::load_model(model_path);
    auto G = model.generator();
    const auto& cfg = G->config;
    torch::NoGradGuard no_grad;

    // Keyframes: the z of four seeds; the path goes around them and back to the first.
    const torch::Tensor keys = latentkit::z_from_seeds({1, 2, 3, 4}, cfg.z_dim);
    latentkit::PathOptions path;
    path.kind = latentkit::PathKind::spherical;
    path.frames_per_transition = frames_per_seed;
    path.loop = true;
    const int64_t frames = latentkit::path_frame_count(keys.size(0), path);

    // The video is written under a temporary name and appears only when finish() completes.
    auto video = latentkit::io::open_frame_sink(argv[1], cfg.img_resolution, cfg.img_resolution);
    const latentkit::Renderer renderer(G);
    latentkit::RenderSpec spec;
    spec.psi = 0.7;
    if (cfg.c_dim > 0) spec.class_index = 0;
    for (int64_t i = 0; i < frames; ++i) {
        spec.z = latentkit::path_frame(keys, path, i).unsqueeze(0);
        video->write(latentkit::io::images_from_batch(renderer.render(spec)).at(0));
    }
    video->finish();
    std::printf("%s: %lld frames from %s\n", argv[1], static_cast<long long>(frames), model_path.c_str());
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "slerp_walk: %s\n", e.what());
    return 1;
}
