// Built with `pkg-config --cflags --libs latentkit` only: reads a PNG and writes it as a .npz array.
// Usage: pkgconfig_consumer IN.png OUT.npz
#include <latentkit/error.h>
#include <latentkit/npz.h>
#include <latentkit/png.h>

#include <cstdio>

int main(int argc, char** argv) {
    if (argc != 3) return 2;
    try {
        const latentkit::Image8 im = latentkit::read_png(argv[1]);
        std::vector<float> v(im.pixels.begin(), im.pixels.end());
        latentkit::write_npz(argv[2], {{"image", latentkit::TensorData::from_floats({im.height, im.width, im.channels}, v)}});
        std::printf("%s: %dx%dx%d -> %s\n", argv[1], im.width, im.height, im.channels, argv[2]);
        return 0;
    } catch (const latentkit::Error& e) {
        std::fprintf(stderr, "pkgconfig_consumer: %s\n", e.what());
        return 1;
    }
}
