#pragma once
// Helpers the viewer's tests share: pixel differences and the golden image of tiny32's seed 42.
#include <algorithm>
#include <cstdlib>

#include <sys/wait.h>

#include "cli_util.h"
#include "latentkit/atomic_file.h"
#include "test_util.h"
#include "latentkit/latent.h"
#include "latentkit/png.h"

namespace lktest {

/// The largest difference of two images' 8-bit values (same size required).
inline int max_diff(const latentkit::Image8& a, const latentkit::Image8& b) {
    REQUIRE(a.pixels.size() == b.pixels.size());
    int d = 0;
    for (size_t k = 0; k < a.pixels.size(); ++k) d = std::max(d, std::abs(int(a.pixels[k]) - int(b.pixels[k])));
    return d;
}

/// The golden image of seed 42 (sample 2) in the reference 8-bit conversion, as RGB.
inline latentkit::Image8 golden_seed42() {
    const torch::Tensor u8 =
        latentkit::to_uint8_nhwc(golden_tensor("tiny32.expected.safetensors", "img_psi1.0_const").narrow(0, 2, 1))[0].contiguous();
    return latentkit::Image8{32, 32, 3, std::vector<uint8_t>(u8.data_ptr<uint8_t>(), u8.data_ptr<uint8_t>() + u8.numel())};
}

/// Runs the real viewer (LATENTKIT_VIEWER) under a virtual X server, or without a display.
inline Result run_viewer(const std::vector<std::string>& args, bool display = true) {
    static const TempDir logs;
    std::string cmd = display ? "xvfb-run -a -s '-screen 0 1280x1024x24' " : "env -u DISPLAY -u WAYLAND_DISPLAY ";
    cmd += quote(LATENTKIT_VIEWER);
    for (const auto& a : args) cmd += " " + quote(a);
    cmd += " >" + quote(logs / "out") + " 2>" + quote(logs / "err");
    const int status = std::system(cmd.c_str());
    Result r;
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = latentkit::read_file(logs / "out");
    r.err = latentkit::read_file(logs / "err");
    return r;
}

}  // namespace lktest
