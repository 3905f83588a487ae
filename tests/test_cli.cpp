// End-to-end runs of the latentkit command on the golden models.
#include "test_util.h"
#include "cli_util.h"
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "latentkit/atomic_file.h"
#include "latentkit/io/config.h"
#include "latentkit/io/image.h"
#include "latentkit/png.h"
#include "latentkit/png.h"
#include "latentkit/io/video.h"
#include "latentkit/latent.h"

namespace fs = std::filesystem;
using lktest::data_path;
using lktest::Result;
using lktest::check_error;
using lktest::run;

namespace {
// PNG equals the reference 8-bit conversion of a golden image tensor, +-1.
void check_png(const std::string& png, const torch::Tensor& expected_img) {
    INFO(png);
    REQUIRE(fs::exists(png));
    const auto im = latentkit::read_png(png);
    const torch::Tensor ref = latentkit::to_uint8_nhwc(expected_img.unsqueeze(0))[0];
    REQUIRE(im.height == ref.size(0));
    REQUIRE(im.width == ref.size(1));
    REQUIRE(im.channels == ref.size(2));
    const torch::Tensor got = torch::from_blob(const_cast<uint8_t*>(im.pixels.data()), ref.sizes(), torch::kUInt8).to(torch::kInt32);
    CHECK((got - ref.to(torch::kInt32)).abs().max().item<int>() <= 1);
}

size_t count_files(const std::string& dir) {
    if (!fs::exists(dir)) return 0;
    return static_cast<size_t>(std::distance(fs::directory_iterator(dir), fs::directory_iterator()));
}

const std::vector<std::string> kSeedNames{"seed0000.png", "seed0001.png", "seed0042.png", "seed1000.png"};
}  // namespace

TEST_CASE("cli: info prints the architecture, also as JSON") {
    Result r = run({"info", data_path("golden/tiny32.pkl"), "--json"});
    REQUIRE(r.code == 0);
    const auto j = nlohmann::json::parse(r.out);
    CHECK(j["resolution"] == 32);
    CHECK(j["num_ws"] == 8);
    CHECK(j["z_dim"] == 64);
    CHECK(j["networks"].size() == 3);
    CHECK(j["parameters"]["G_ema"].get<int64_t>() > 0);
    r = run({"info", data_path("golden/gray16.G_ema.safetensors")});
    CHECK(r.code == 0);
    CHECK(r.out.find("bare state dict") != std::string::npos);
}

TEST_CASE("cli: generate reproduces the reference images from .pkl, bare and converted .safetensors") {
    lktest::TempDir dir;
    for (const std::string name : {"tiny32", "gray16"}) {
        const std::string exp = name + ".expected.safetensors";
        const torch::Tensor img1 = lktest::golden_tensor(exp, "img_psi1.0_const");
        const std::string converted = dir / (name + ".safetensors");
        REQUIRE(run({"convert", data_path("golden/" + name + ".pkl"), converted}).code == 0);
        for (const std::string model : {data_path("golden/" + name + ".pkl"), data_path("golden/" + name + ".G_ema.safetensors"), converted}) {
            INFO(model);
            const std::string out = dir / "out";
            fs::remove_all(out);
            Result r = run({"generate", "--model", model, "--seeds", "0-1,42,1000", "--batch", "3", "--outdir", out});
            REQUIRE_MESSAGE(r.code == 0, r.err);
            CHECK(count_files(out) == 4);
            for (size_t k = 0; k < 4; ++k) check_png(out + "/" + kSeedNames[k], img1[static_cast<int64_t>(k)]);
        }
        const std::string model = data_path("golden/" + name + ".pkl");
        REQUIRE(run({"generate", "-m", model, "-s", "0,1,42,1000", "--trunc", "0.7", "-o", dir / "t"}).code == 0);
        REQUIRE(run({"generate", "-m", model, "-s", "0,1,42,1000", "--noise-mode", "none", "-o", dir / "n"}).code == 0);
        for (size_t k = 0; k < 4; ++k) {
            check_png(dir / ("t/" + kSeedNames[k]), lktest::golden_tensor(exp, "img_psi0.7_const")[static_cast<int64_t>(k)]);
            check_png(dir / ("n/" + kSeedNames[k]), lktest::golden_tensor(exp, "img_psi1.0_nonoise")[static_cast<int64_t>(k)]);
        }
        fs::remove_all(dir / "t");
        fs::remove_all(dir / "n");
    }
}

TEST_CASE("cli: generate --projected-w renders a numpy-written projected_w.npz") {
    lktest::TempDir dir;
    Result r = run({"generate", "-m", data_path("golden/tiny32.pkl"), "--projected-w", data_path("tiny32_projected_w.npz"), "-o", dir / "p"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    const torch::Tensor img1 = lktest::golden_tensor("tiny32.expected.safetensors", "img_psi1.0_const");
    for (int k = 0; k < 4; ++k) check_png(dir / ("p/proj0" + std::to_string(k) + ".png"), img1[k]);
}

TEST_CASE("cli: bad input gives one error line, the right exit code, and no output") {
    lktest::TempDir dir;
    const std::string model = data_path("golden/tiny32.pkl");
    const std::string out = dir / "out";
    check_error(run({"generate", "-m", dir / "missing.pkl", "-s", "1", "-o", out}), 1, "missing.pkl");
    check_error(run({"generate", "-m", model, "-s", "abc", "-o", out}), 2, "abc");
    check_error(run({"generate", "-m", model, "-s", " , ", "-o", out}), 2, "names no values");
    check_error(run({"generate", "-m", model, "-s", "4294967296", "-o", out}), 2, "4294967295");
    check_error(run({"generate", "-m", model, "-s", "5-2", "-o", out}), 2, "backwards");
    check_error(run({"generate", "-m", model, "-o", out}), 2, "--seeds or --projected-w");
    check_error(run({"generate", "-m", model, "-s", "1", "-o", out, "--bogus"}), 2, "bogus");
    check_error(run({"generate", "-m", model, "-s", "1", "-o", out, "--class", "2"}), 2, "unconditional");
    check_error(run({"generate", "-m", model, "-s", "1", "-o", out, "--class", "2"}), 2, "--class does not apply");
    for (const char* psi : {"nan", "inf", "-Infinity", "0.5,nan"})
        check_error(run({"generate", "-m", model, "-s", "1", "-o", out, "--trunc", psi}), 2, "not a finite number");
    check_error(run({"generate", "-m", model, "-s", "1", "-o", out, "--batch", "0"}), 2, "--batch: must be more than 0, not 0");
    check_error(run({"generate", "-m", model, "-s", "1", "-o", out, "--device", "gpu"}), 2, "--device: 'gpu' is not");
    check_error(run({"morph", "-m", model, "-s", "1,2", "-o", dir / "m.mp4", "--trunc", "nan"}), 2, "--trunc nan: not a finite number");
    check_error(run({"train", "--data", model, "--outdir", out, "--cfg", "paper9"}), 2, "--cfg: paper9 not in");
    check_error(run({"train", "--data", model, "--outdir", out, "--metrics", "fid10k"}), 2, "--metrics fid10k: unknown metric");
    check_error(run({"generate", "-m", model, "--projected-w", data_path("numpy_projected_w.npz"), "-o", out}), 1, "numpy_projected_w.npz");
    if (!torch::cuda::is_available()) check_error(run({"generate", "-m", model, "-s", "1", "-o", out, "--device", "cuda"}), 2, "--device cuda: no CUDA");
    // Library errors name their option as data; the tool writes it as its flag.
    latentkit::write_png(dir / "wide.png", latentkit::Image8{40, 30, 3, std::vector<uint8_t>(40 * 30 * 3, 128)});
    check_error(run({"project", "-m", model, "-t", dir / "wide.png", "--align", "none", "--steps", "1", "-o", dir / "p"}), 2,
                "wide.png: --align none needs a square image, this one is 40x30 (use --align center)");
    CHECK_FALSE(fs::exists(out));
    lktest::write_bytes(dir / "file", "x");
    check_error(run({"generate", "-m", model, "-s", "1", "-o", dir / "file"}), 1, "file");

    check_error(run({"convert", model, dir / "out.txt"}), 2, ".safetensors");
    lktest::write_bytes(dir / "junk.pkl", "\x80\x04junk");
    lktest::write_bytes(dir / "keep.safetensors", "precious");
    check_error(run({"convert", dir / "junk.pkl", dir / "keep.safetensors"}), 1, "junk.pkl");
    CHECK(latentkit::read_file(dir / "keep.safetensors") == "precious");
    CHECK(count_files(dir.path()) == 4);  // file, wide.png, junk.pkl, keep.safetensors: no temporary left over
    CHECK_FALSE(fs::exists(dir / "p"));

    check_error(run({"info", data_path("golden/README.md")}), 1, "README.md");
    check_error(run({}), 2, "subcommand");
}

TEST_CASE("cli: bench generate runs on a random paper256-width model") {
    Result r = run({"bench", "generate", "--random", "16", "--batch", "2", "--iters", "1", "--warmup", "0"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    CHECK(r.out.find("images/s") != std::string::npos);
}

TEST_CASE("cli: morph end to end on the tiny model, video and PNG frames") {
    lktest::TempDir dir;
    const std::string model = data_path("golden/tiny32.pkl");
    Result r = run({"morph", "-m", model, "-s", "0,1,42,1000", "--frames", "4", "--grid", "2x1", "-o", dir / "frames/"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    CHECK(count_files(dir / "frames") == 5);
    // frame 0 of the left cell is seed 0, of the right cell seed 42 (the reference images, +-1)
    const auto f0 = latentkit::read_png(dir / "frames/frame000000.png");
    CHECK(f0.width == 64);
    CHECK(f0.height == 32);
    const torch::Tensor img1 = lktest::golden_tensor("tiny32.expected.safetensors", "img_psi1.0_const");
    latentkit::write_png(dir / "left.png", [&] {
        latentkit::Image8 left;
        left.width = left.height = 32;
        left.channels = 3;
        for (int y = 0; y < 32; ++y)
            left.pixels.insert(left.pixels.end(), f0.pixels.begin() + y * 64 * 3, f0.pixels.begin() + y * 64 * 3 + 32 * 3);
        return left;
    }());
    check_png(dir / "left.png", img1[0]);

#if LATENTKIT_HAVE_OPENCV
    // --size: each cell resampled (Lanczos up) before the grid is put together.
    r = run({"morph", "-m", model, "-s", "0,1,42,1000", "--frames", "4", "--grid", "2x1", "--size", "96", "-o", dir / "big/"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    const auto b0 = latentkit::read_png(dir / "big/frame000000.png");
    CHECK(b0.width == 192);
    CHECK(b0.height == 96);
    const latentkit::Image8 up = latentkit::io::resize_image(latentkit::read_png(dir / "left.png"), 96, 96, latentkit::io::ResizeFilter::lanczos);
    int diff = 0;
    for (int y = 0; y < 96; ++y)
        for (int x = 0; x < 96 * 3; ++x) diff = std::max(diff, std::abs(int(b0.pixels[y * 192 * 3 + x]) - int(up.pixels[y * 96 * 3 + x])));
    CHECK(diff == 0);
    check_error(run({"morph", "-m", model, "-s", "1,2", "--size", "2", "-o", dir / "s.mp4"}), 2, "--size");
#endif

#if LATENTKIT_HAVE_LIBAV
    r = run({"morph", "-m", model, "-s", "1,2,3", "--kind", "cubic", "--loop", "--frames", "5", "--noise-loop", "--layers", "0-3",
             "-o", dir / "loop.mp4"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    latentkit::io::VideoReader reader(dir / "loop.mp4");
    latentkit::Image8 frame;
    int n = 0;
    while (reader.read(frame)) ++n;
    CHECK(n == 15);
    CHECK(reader.width() == 32);
    r = run({"morph", "-m", data_path("golden/gray16.pkl"), "-s", "1,2", "--kind", "slerp", "--frames", "3", "-o", dir / "g.webm"});
    CHECK_MESSAGE(r.code == 0, r.err);
    r = run({"morph", "-m", model, "--w", data_path("tiny32_projected_w.npz"), "--frames", "2", "-o", dir / "w.gif"});
    CHECK_MESSAGE(r.code == 0, r.err);
#endif
}

TEST_CASE("cli: morph refuses bad input without leaving output behind") {
    lktest::TempDir dir;
    const std::string model = data_path("golden/tiny32.pkl");
    check_error(run({"morph", "-m", model, "-s", "1,2", "-o", dir / "m.xyz"}), 2, "m.xyz");
    check_error(run({"morph", "-m", model, "-s", ",", "-o", dir / "m.mp4"}), 2, "no values");
    check_error(run({"morph", "-m", model, "-s", "1,2", "--frames", "0", "-o", dir / "m.mp4"}), 2, "--frames");
    check_error(run({"morph", "-m", model, "-s", "1", "-o", dir / "m.mp4"}), 2, "at least 2 keyframes");
    check_error(run({"morph", "-m", model, "-s", "1,2,3", "--grid", "2x1", "-o", dir / "m.mp4"}), 2, "split evenly");
    check_error(run({"morph", "-m", model, "--w", data_path("numpy_projected_w.npz"), "-o", dir / "m.mp4"}), 1, "numpy_projected_w.npz");
    check_error(run({"morph", "-m", model, "-s", "1,2", "--space", "z", "--w", data_path("tiny32_projected_w.npz"), "-o", dir / "m.mp4"}), 2,
                "--space w");
    check_error(run({"morph", "-m", model, "-s", "1,2", "--layers", "0-8", "-o", dir / "m.mp4"}), 2, "--layers");
    check_error(run({"morph", "-m", model, "-s", "1,2", "-o", "/nonexistent-folder/m.mp4"}), 1, "m.mp4");
    CHECK(count_files(dir.path()) == 0);
}

TEST_CASE("cli: style-mix writes the reference grid layout") {
    lktest::TempDir dir;
    const std::string model = data_path("golden/tiny32.pkl");
    Result r = run({"style-mix", "-m", model, "--rows", "1", "--cols", "0,42", "--styles", "0-3", "-o", dir / "grid.png"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    const auto grid = latentkit::read_png(dir / "grid.png");
    CHECK(grid.width == 96);
    CHECK(grid.height == 64);
    // the mix of row seed 1 with column seed 0 at layers 0-3 is the golden img_mixed, at cell (1, 1)
    latentkit::Image8 cell;
    cell.width = cell.height = 32;
    cell.channels = 3;
    for (int y = 32; y < 64; ++y)
        cell.pixels.insert(cell.pixels.end(), grid.pixels.begin() + (y * 96 + 32) * 3, grid.pixels.begin() + (y * 96 + 64) * 3);
    latentkit::write_png(dir / "cell.png", cell);
    check_png(dir / "cell.png", lktest::golden_tensor("tiny32.expected.safetensors", "img_mixed")[0]);
    check_error(run({"style-mix", "-m", model, "--rows", "1", "--cols", "2", "--styles", "9", "-o", dir / "g2.png"}), 2, "--styles");
    check_error(run({"style-mix", "-m", model, "--rows", "1", "--cols", "2", "-o", dir / "g2.jpg"}), 2, ".png");
}
