// Project a photo into a model (W space, pixel loss) and save the latent as projected_w.npz.
// Usage: project_image IMAGE OUT.npz [STEPS] [MODEL]   (MODEL defaults to the bundled emoji model)
#include <cstdio>
#include <string>

#include "latentkit/io/bundled_model.h"
#include "latentkit/io/face_align.h"
#include "latentkit/io/image.h"
#include "latentkit/npz.h"
#include "latentkit/io/tensor_image.h"
#include "latentkit/model_io.h"
#include "latentkit/networks.h"
#include "latentkit/projector.h"

int main(int argc, char** argv) try {
    if (argc < 3) {
        std::fprintf(stderr, "usage: %s IMAGE OUT.npz [STEPS] [MODEL]\n", argv[0]);
        return 2;
    }
    const int steps = argc > 3 ? std::stoi(argv[3]) : 200;
    const std::string model_path = argc > 4 ? argv[4] : latentkit::io::default_model().path;

    const latentkit::Model model = latentkit::load_model(model_path);
    auto G = model.generator();
    const auto& cfg = G->config;

    // The target: the photo's centred square at the model's resolution, as a [1, C, R, R] tensor in 0..255.
    latentkit::io::ReadImageOptions read;
    read.channels = cfg.img_channels;
    const latentkit::Image8 photo = latentkit::io::read_image(argv[1], read);
    const auto target = latentkit::io::align_image(photo, argv[1], latentkit::io::AlignMode::center, cfg.img_resolution);
    const torch::Tensor targets = latentkit::io::tensor_from_image(target.image).unsqueeze(0);

    // Optimise one w (the reference projector's schedule) against the mean squared pixel error.
    latentkit::ProjectorOptions options;
    options.steps = steps;
    options.loss = {0.0, 0.0, 1.0};
    latentkit::Projector projector(G);
    const latentkit::ProjectionResult result = projector.project(targets, options, [&](const latentkit::ProjectionStep& s) {
        if (s.step % 50 == 0 || s.step == s.steps) std::printf("step %d/%d  loss %.4f\n", s.step, s.steps, s.loss[0].item<double>());
        return true;
    });

    // Save as the reference's projected_w.npz: key "w", float32 [1, num_ws, w_dim].
    const torch::Tensor w = result.ws.to(torch::kFloat32).contiguous();
    latentkit::write_npz(argv[2], {{"w", latentkit::TensorData::from_floats(
                                                  w.sizes().vec(), std::vector<float>(w.data_ptr<float>(), w.data_ptr<float>() + w.numel()))}});
    std::printf("%s: PSNR %.2f dB after %d steps\n", argv[2], latentkit::psnr(result.images, targets)[0].item<double>(), steps);
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "project_image: %s\n", e.what());
    return 1;
}
