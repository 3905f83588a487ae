// Images as the reference's tools make them: Pillow's anti-aliased Lanczos (dataset tool, projector
// target) and projector.py's proj.png (tests/data/reference_training, made by
// tools/make_reference_training.py).
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli_util.h"
#include "latentkit/atomic_file.h"
#include "latentkit/io/dataset.h"
#include "latentkit/io/image.h"
#include "latentkit/io/tensor_image.h"
#include "latentkit/model_io.h"
#include "latentkit/networks.h"
#include "latentkit/npz.h"
#include "latentkit/png.h"
#include "latentkit/projector.h"
#include "test_util.h"
#include "torch_convert.h"

using namespace latentkit;
namespace fs = std::filesystem;

namespace {

const std::string kPhotos = LATENTKIT_OPENCV_DATA;
std::string ref_path(const std::string& name) { return lktest::data_path("reference_training/" + name); }

// Largest difference of two 8-bit images of one shape.
int max_pixel_diff(const Image8& a, const Image8& b) {
    REQUIRE(a.width == b.width);
    REQUIRE(a.height == b.height);
    REQUIRE(a.channels == b.channels);
    int worst = 0;
    for (size_t k = 0; k < a.pixels.size(); ++k) worst = std::max(worst, std::abs(int(a.pixels[k]) - int(b.pixels[k])));
    return worst;
}

// What the reference projector writes as proj.png for a projected_w.npz: the model's constant noise.
Image8 proj_image(Generator& G, const std::string& npz) {
    torch::NoGradGuard no_grad;
    const TensorData w = read_projected_w(npz, G.synthesis->num_ws, G.config.w_dim);
    SynthesisOptions so;
    so.noise_mode = NoiseMode::constant;
    return io::images_from_uint8(projection_uint8(G.synthesis->forward(to_torch(w).to(torch::kFloat32), so)))[0];
}

}  // namespace

TEST_CASE("reference images: resize_image lanczos is Pillow's LANCZOS, pixel for pixel") {
    std::ifstream in(ref_path("expected.json"));
    const auto cases = nlohmann::json::parse(in)["resample"];
    REQUIRE(cases.size() == 5);
    for (const auto& c : cases) {
        const std::string source = c["source"].get<std::string>();
        const std::string path = fs::exists(ref_path("resample/" + source)) ? ref_path("resample/" + source) : kPhotos + "/" + source;
        io::ReadImageOptions ro;
        ro.channels = c["mode"] == "L" ? 1 : 3;
        const Image8 src = io::read_image(path, ro);
        const Image8 out = io::resize_image(src, c["size"][0].get<int>(), c["size"][1].get<int>(), io::ResizeFilter::lanczos);
        INFO(c.dump());
        CHECK(max_pixel_diff(out, read_png(ref_path("resample/" + c["file"].get<std::string>()))) == 0);
    }
}

TEST_CASE("reference images: the projector's target, and proj.png from the latent with the model's constant noise") {
    Model m = load_model(ref_path("train16.pkl"));
    REQUIRE(m.G_ema);
    const Image8 target = io::center_crop(io::read_image(kPhotos + "/graf1.png"), m.G_ema->config.img_resolution);
    CHECK(max_pixel_diff(target, read_png(ref_path("projection/target.png"))) == 0);
    CHECK(max_pixel_diff(proj_image(*m.G_ema, ref_path("projection/projected_w.npz")), read_png(ref_path("projection/proj.png"))) <= 1);
}

TEST_CASE("reference images: latentkit project writes the image its projected_w.npz gives, and the optimised-noise one on request") {
    lktest::TempDir dir;
    const std::vector<std::string> base{"project", "-m", ref_path("train16.pkl"), "-t", kPhotos + "/graf1.png", "--steps", "8",
                                        "--loss", "pixel", "--w-avg-samples", "300"};
    auto with = [&](std::vector<std::string> extra) {
        std::vector<std::string> args = base;
        args.insert(args.end(), extra.begin(), extra.end());
        return args;
    };
    const auto r = lktest::run(with({"--outdir", dir / "a"}));
    REQUIRE_MESSAGE(r.code == 0, r.err);
    Model m = load_model(ref_path("train16.pkl"));
    const Image8 proj = read_png(dir / "a/proj.png");
    CHECK(max_pixel_diff(proj, proj_image(*m.G_ema, dir / "a/projected_w.npz")) == 0);
    CHECK(max_pixel_diff(read_png(dir / "a/target.png"), read_png(ref_path("projection/target.png"))) == 0);
    CHECK_FALSE(fs::exists(dir / "a/projected_noise.npz"));

    const auto o = lktest::run(with({"--outdir", dir / "b", "--proj-with-optimized-noise"}));
    REQUIRE_MESSAGE(o.code == 0, o.err);
    const NamedArrays noise = read_npz(dir / "b/projected_noise.npz");
    REQUIRE(noise.size() == m.G_ema->synthesis->noise_resolutions().size());
    CHECK(noise[0].first == "synthesis.b4.conv1.noise_const");
    CHECK(noise[0].second.shape == std::vector<int64_t>{1, 1, 4, 4});
    // The same optimisation, rendered with its own noise instead of the model's.
    CHECK(max_pixel_diff(read_png(dir / "b/proj.png"), proj) > 0);
    CHECK(nlohmann::json::parse(read_file(dir / "b/projection.json"))["image_noise"] == "optimized (projected_noise.npz)");
}

TEST_CASE("reference images: the dataset tool resizes with Pillow's Lanczos by default, and --keep-unlabeled keeps unlabelled images") {
    lktest::TempDir dir;
    fs::create_directories(dir / "src");
    fs::copy_file(kPhotos + "/graf1.png", dir / "src/a.png");
    fs::copy_file(kPhotos + "/box.png", dir / "src/b.png");
    lktest::write_bytes(dir / "src/dataset.json", R"({"labels": [["a.png", 1]]})");
    REQUIRE(lktest::run({"dataset", "-s", dir / "src", "-d", dir / "skip.zip", "-r", "16"}).code == 0);
    const io::ImageDataset skipped(dir / "skip.zip");
    CHECK(skipped.size() == 1);
    CHECK(skipped.label_dim() == 2);
    std::vector<uint8_t> chw(3 * 16 * 16);
    skipped.read_image(0, chw.data());
    const Image8 expected = read_png(ref_path("projection/target.png"));  // graf1, centre square, Pillow LANCZOS to 16
    int worst = 0;
    for (int p = 0; p < 256; ++p)
        for (int c = 0; c < 3; ++c) worst = std::max(worst, std::abs(int(chw[c * 256 + p]) - int(expected.pixels[p * 3 + c])));
    CHECK(worst == 0);

    const auto r = lktest::run({"dataset", "-s", dir / "src", "-d", dir / "keep.zip", "-r", "16", "--keep-unlabeled"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    CHECK(r.err.find("written without labels") != std::string::npos);
    const io::ImageDataset kept(dir / "keep.zip");
    CHECK(kept.size() == 2);
    CHECK(kept.label_dim() == 0);
}
