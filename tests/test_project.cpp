// Projection: the library projector on the golden tiny model, and `latentkit project` end to end.
#include "test_util.h"
#include "cli_util.h"

#include <fmt/format.h>
#include <torch/script.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "latentkit/atomic_file.h"
#include "latentkit/error.h"
#include "latentkit/io/config.h"
#include "latentkit/npz.h"
#include "latentkit/png.h"
#include "latentkit/io/video.h"
#include "latentkit/latent.h"
#include "latentkit/model_io.h"
#include "latentkit/networks.h"
#include "latentkit/projector.h"
#include "latentkit/rng.h"

using namespace latentkit;
namespace fs = std::filesystem;
using lktest::data_path;

namespace {

const Model& tiny() {
    static const Model m = load_model(data_path("golden/tiny32.pkl"));
    return m;
}

// Images the model makes from seeds, as 8-bit targets (float 0..255).
torch::Tensor targets_from_seeds(const std::vector<uint32_t>& seeds) {
    auto G = tiny().generator();
    torch::NoGradGuard no_grad;
    const torch::Tensor ws = map_to_ws(*G, z_from_seeds(seeds, G->config.z_dim), torch::Tensor());
    return (G->synthesis->forward(ws) * 127.5 + 128).clamp(0, 255).floor();
}

// A TorchScript module with the reference vgg16.pt call interface: normalised 4x4-pooled pixels.
void save_fake_vgg(const std::string& path, bool lpips_interface = true) {
    torch::jit::Module m("FakeVGG");
    if (lpips_interface)
        m.define(R"(
def forward(self, img, resize_images: bool = True, return_features: bool = False, return_lpips: bool = False):
    x = torch.avg_pool2d(img / 255.0, [4, 4]).flatten(1)
    return x / (torch.norm(x, 2, [1], True) + 1e-8)
)");
    else
        m.define(R"(
def forward(self, img):
    return img.flatten(1)
)");
    m.save(path);
}

ProjectorOptions quick(int steps) {
    ProjectorOptions o;
    o.steps = steps;
    o.w_avg_samples = 2000;
    o.loss = {0.0, 0.0, 1.0};
    return o;
}

double json_number(const std::string& file, const char* key) { return nlohmann::json::parse(read_file(file))[key].get<double>(); }

// PSNR of two 8-bit images.
double png_psnr(const std::string& a, const std::string& b) {
    const auto ia = read_png(a), ib = read_png(b);
    REQUIRE(ia.pixels.size() == ib.pixels.size());
    double se = 0;
    for (size_t k = 0; k < ia.pixels.size(); ++k) se += std::pow(double(ia.pixels[k]) - ib.pixels[k], 2);
    return 10 * std::log10(255.0 * 255.0 / std::max(se / ia.pixels.size(), 1e-10));
}

int max_png_diff(const std::string& a, const std::string& b) {
    const auto ia = read_png(a), ib = read_png(b);
    REQUIRE(ia.pixels.size() == ib.pixels.size());
    int d = 0;
    for (size_t k = 0; k < ia.pixels.size(); ++k) d = std::max(d, std::abs(int(ia.pixels[k]) - int(ib.pixels[k])));
    return d;
}

}  // namespace

TEST_CASE("project: W statistics follow the reference (numpy RandomState z's through the mapping)") {
    auto G = tiny().generator();
    const auto [mean, spread] = w_statistics(*G, 3, 123);
    NumpyRandomState rs(123);
    const auto z = rs.randn(3 * G->config.z_dim);
    torch::NoGradGuard no_grad;
    const torch::Tensor w = G->mapping->forward(torch::tensor(z, torch::kFloat64).reshape({3, -1}).to(torch::kFloat32), torch::Tensor())
                                .select(1, 0);
    CHECK(lktest::max_abs_diff(mean, w.mean(0, true)) < 1e-5);
    CHECK(spread == doctest::Approx(std::sqrt((w - w.mean(0, true)).square().sum().item<double>() / 3)).epsilon(1e-5));
}

TEST_CASE("project: the loss falls, results are deterministic, and targets in a batch are independent") {
    auto G = tiny().generator();
    Projector projector(G, tiny().D);
    const torch::Tensor targets = targets_from_seeds({0, 42});
    ProjectorOptions o = quick(40);
    std::vector<double> losses;
    const auto a = projector.project(targets, o, [&](const ProjectionStep& s) {
        CHECK(s.loss.sizes() == torch::IntArrayRef{2});
        CHECK(s.images.size(0) == 2);
        losses.push_back(s.loss.sum().item<double>());
        return true;
    });
    REQUIRE(losses.size() == 40);
    CHECK(losses.back() < 0.5 * losses.front());
    CHECK(a.ws.sizes() == torch::IntArrayRef{2, 8, 64});
    CHECK(a.noise.size() == G->synthesis->noise_resolutions().size());
    CHECK(a.images.sizes() == targets.sizes());
    // The W result is one w broadcast to all layers.
    CHECK(lktest::max_abs_diff(a.ws.select(1, 0), a.ws.select(1, 7)) == 0.0);

    const auto b = projector.project(targets, o);
    CHECK(lktest::max_abs_diff(a.ws, b.ws) == 0.0);

    // Without random draws (fixed noise, no W noise) a target projected alone matches the same target in a batch:
    // each has its own optimiser state.
    o.optimize_noise = false;
    o.initial_noise_factor = 0;
    o.steps = 10;
    const auto pair = projector.project(targets, o);
    const auto alone = projector.project(targets.narrow(0, 1, 1), o);
    CHECK(lktest::max_abs_diff(pair.ws.narrow(0, 1, 1), alone.ws) < 1e-3);
    CHECK(pair.noise.empty());
}

TEST_CASE("project: W+ and LPIPS through a TorchScript module with the reference interface, and cancelling") {
    lktest::TempDir dir;
    save_fake_vgg(dir / "vgg.pt");
    auto lpips = std::make_shared<LpipsModel>(dir / "vgg.pt");
    Projector projector(tiny().generator(), nullptr, lpips);
    const torch::Tensor target = targets_from_seeds({7});
    ProjectorOptions o = quick(30);
    o.space = LatentSpace::w_plus;
    o.loss = {1.0, 0.0, 0.0};
    double first = -1;
    const auto r = projector.project(target, o, [&](const ProjectionStep& s) {
        if (first < 0) first = s.loss.item<double>();
        return true;
    });
    CHECK(r.loss.item<double>() < first);
    CHECK(lktest::max_abs_diff(r.ws.select(1, 0), r.ws.select(1, 7)) > 0.0);  // layers differ in W+

    int calls = 0;
    CHECK_THROWS_AS(projector.project(target, o, [&](const ProjectionStep&) { return ++calls < 3; }), CancelledError);
    CHECK(calls == 3);

    // Missing pieces are argument errors; wrong target shapes are shape errors.
    o.loss = {0.0, 1.0, 0.0};
    CHECK_THROWS_AS(projector.project(target, o), ArgumentError);  // no D
    Projector plain(tiny().generator());
    o.loss = {1.0, 0.0, 0.0};
    CHECK_THROWS_AS(plain.project(target, o), ArgumentError);  // no LPIPS model
    o.loss = {0.0, 0.0, 1.0};
    CHECK_THROWS_AS(plain.project(torch::zeros({1, 3, 16, 16}), o), ShapeError);
}

TEST_CASE("project: LPIPS files that are not TorchScript or lack the interface are refused, naming the file") {
    lktest::TempDir dir;
    lktest::write_bytes(dir / "junk.pt", "not a zip archive");
    CHECK_THROWS_WITH_AS(LpipsModel(dir / "junk.pt"), doctest::Contains("junk.pt: not a TorchScript module"), ModelFormatError);
    save_fake_vgg(dir / "plain.pt", false);
    CHECK_THROWS_WITH_AS(LpipsModel(dir / "plain.pt"), doctest::Contains("resize_images"), ModelFormatError);
}

TEST_CASE("project: LPIPS sees images above 256 pixels area-downsampled to 256, gray repeated to RGB") {
    lktest::TempDir dir;
    save_fake_vgg(dir / "vgg.pt");
    LpipsModel lpips(dir / "vgg.pt");
    const torch::Tensor big = torch::rand({2, 3, 512, 512}) * 255;
    const torch::Tensor small = torch::avg_pool2d(big, 2);  // area downsampling by 2
    CHECK(lktest::max_abs_diff(lpips.features(big), lpips.features(small)) < 1e-5);
    const torch::Tensor gray = torch::rand({1, 1, 64, 64}) * 255;
    CHECK(lktest::max_abs_diff(lpips.features(gray), lpips.features(gray.repeat({1, 3, 1, 1}))) < 1e-6);
}

TEST_CASE("project: pivotal tuning brings the tuned copy closer and leaves the model unchanged") {
    auto G = tiny().generator();
    const torch::Tensor before = G->synthesis->parameters().front().clone();
    Projector projector(G, tiny().D);
    const torch::Tensor target = targets_from_seeds({3});
    const auto r = projector.project(target, quick(30));
    TuningOptions t;
    t.steps = 40;
    t.learning_rate = 3e-3;
    t.loss = {0.0, 1.0, 1.0};
    const auto tuned = projector.tune(r, target, t);
    torch::NoGradGuard no_grad;
    SynthesisOptions so;
    so.noise_mode = NoiseMode::custom;
    so.noise = r.noise;
    const torch::Tensor img = tuned->synthesis->forward(r.ws, so);
    CHECK(psnr(img, target).item<double>() > psnr(r.images, target).item<double>() + 1.0);
    // One target: the copy's constant noise is the optimised noise.
    CHECK(lktest::max_abs_diff(tuned->synthesis->forward(r.ws), img) < 1e-5);
    CHECK(lktest::max_abs_diff(G->synthesis->parameters().front(), before) == 0.0);
}

// ---------------------------------------------------------------------------------------------

TEST_CASE("cli: project round trip in W and W+, outputs that numpy, generate and morph read") {
    lktest::TempDir dir;
    const std::string model = data_path("golden/tiny32.pkl");
    REQUIRE(lktest::run({"generate", "-m", model, "--seeds", "0-8", "-o", dir / "gen"}).code == 0);
    const std::string target = dir / "gen/seed0000.png";
    // Threshold: the projection must be far closer to the target than any other sample of the model.
    double nearest_other = 0;
    for (int s = 1; s <= 8; ++s) nearest_other = std::max(nearest_other, png_psnr(target, dir / fmt::format("gen/seed{:04d}.png", s)));
    INFO("PSNR of the nearest other sample: " << nearest_other);

    const std::vector<std::string> common{"project", "-m", model, "-t", target, "--align", "none", "--loss", "pixel",
                                          "--steps", "300", "--fixed-noise", "--w-avg-samples", "2000"};
    auto with = [&](std::vector<std::string> extra) {
        std::vector<std::string> args = common;
        args.insert(args.end(), extra.begin(), extra.end());
        return args;
    };
    lktest::Result r = lktest::run(with({"-o", dir / "w"}));
    REQUIRE_MESSAGE(r.code == 0, r.err);
    r = lktest::run(with({"-o", dir / "wp", "--space", "w+"}));
    REQUIRE_MESSAGE(r.code == 0, r.err);
    const double psnr_w = json_number(dir / "w/projection.json", "psnr_db");
    const double psnr_wp = json_number(dir / "wp/projection.json", "psnr_db");
    INFO("W: " << psnr_w << " dB, W+: " << psnr_wp << " dB");
    CHECK(psnr_w > nearest_other + 6.0);
    CHECK(psnr_wp > psnr_w);
    CHECK(std::abs(png_psnr(dir / "w/proj.png", target) - psnr_w) < 0.01);  // the report matches the files
    for (const char* f : {"target.png", "proj.png", "projected_w.npz", "projection.json"}) CHECK(fs::exists(fs::path(dir / "w") / f));

    // A real numpy file: Debian's numpy reads it with the reference's shape and dtype.
    const std::string py = "import numpy, sys; w = numpy.load(sys.argv[1])['w']; "
                           "sys.exit(0 if w.shape == (1, 8, 64) and w.dtype == numpy.float32 else 3)";
    const int rc = std::system(("/usr/bin/python3 -c " + lktest::quote(py) + " " + lktest::quote(dir / "w/projected_w.npz")).c_str());
    CHECK_MESSAGE(rc == 0, "needs /usr/bin/python3 with python3-numpy (scripts/setup.sh installs it)");

    // With the model's constant noise, generate --projected-w reproduces proj.png.
    REQUIRE(lktest::run({"generate", "-m", model, "--projected-w", dir / "w/projected_w.npz", "-o", dir / "regen"}).code == 0);
    CHECK(max_png_diff(dir / "regen/proj00.png", dir / "w/proj.png") <= 1);
    // And morph takes it as a keyframe.
    r = lktest::run({"morph", "-m", model, "--w", dir / "w/projected_w.npz", "--w", dir / "wp/projected_w.npz", "--frames", "3", "-o",
                     dir / "frames/"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    CHECK(fs::exists(dir / "frames/frame000000.png"));
    CHECK(max_png_diff(dir / "frames/frame000000.png", dir / "w/proj.png") <= 1);
}

TEST_CASE("cli: project several targets with a progress video, face alignment and pivotal tuning") {
    lktest::TempDir dir;
    const std::string model = data_path("golden/tiny32.pkl");
    const std::string photos = LATENTKIT_OPENCV_DATA;
    REQUIRE(fs::exists(photos + "/messi5.jpg"));
    const std::string video = LATENTKIT_HAVE_LIBAV ? "--save-video" : "--fixed-noise";
    lktest::Result r = lktest::run({"project", "-m", model, "-t", photos + "/messi5.jpg", "-t", photos + "/baboon.jpg", "--steps", "10",
                                    "--w-avg-samples", "500", "--batch", "2", video, "--video-every", "5", "-o", dir / "two"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    CHECK(nlohmann::json::parse(read_file(dir / "two/messi5/projection.json"))["alignment"] == "face 1 of 1");
    CHECK(nlohmann::json::parse(read_file(dir / "two/baboon/projection.json"))["alignment"] == "center crop (no face found)");
    CHECK(nlohmann::json::parse(read_file(dir / "two/baboon/projection.json"))["loss"] == "discriminator=1");
    if (LATENTKIT_HAVE_LIBAV) {
        io::VideoReader v(dir / "two/messi5/proj.mp4");
        CHECK(v.width() == 64);
        CHECK(v.height() == 32);
        Image8 frame;
        int frames = 0;
        while (v.read(frame)) ++frames;
        CHECK(frames == 2);
    }

    r = lktest::run({"project", "-m", model, "-t", dir / "two/messi5/target.png", "--align", "none", "--steps", "20", "--w-avg-samples",
                     "500", "--tune-generator", "30", "--tune-lr", "0.003", "-o", dir / "tuned"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    const auto info = nlohmann::json::parse(read_file(dir / "tuned/projection.json"));
    CHECK(info["tuned_psnr_db"].get<double>() > info["psnr_db"].get<double>());
    // The tuned model with its default (constant) noise renders proj_tuned.png from the projected latent.
    r = lktest::run({"generate", "-m", dir / "tuned/tuned.safetensors", "--projected-w", dir / "tuned/projected_w.npz", "-o", dir / "regen"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    CHECK(max_png_diff(dir / "regen/proj00.png", dir / "tuned/proj_tuned.png") <= 1);
}

TEST_CASE("cli: project --target-dir projects a folder in order, writes an index, goes on where it stopped, refuses bad images") {
    lktest::TempDir dir;
    const std::string model = data_path("golden/tiny32.pkl");
    const std::string photos = LATENTKIT_OPENCV_DATA;
    fs::create_directories(dir / "photos/more");
    fs::copy_file(photos + "/baboon.jpg", dir / "photos/baboon.jpg");
    fs::copy_file(photos + "/butterfly.jpg", dir / "photos/more/butterfly.jpg");
    fs::copy_file(photos + "/fruits.jpg", dir / "photos/fruits.jpg");
    lktest::write_bytes(dir / "photos/notes.txt", "not an image");
    const std::vector<std::string> args{"project", "-m", model, "--target-dir", dir / "photos", "--steps", "4", "--w-avg-samples", "200",
                                        "--batch", "2", "--align", "center", "-o", dir / "out"};
    lktest::Result r = lktest::run(args);
    REQUIRE_MESSAGE(r.code == 0, r.err);
    const std::string index = read_file(dir / "out/index.csv");
    CHECK(index.rfind("file,loss,psnr_db,output\nbaboon.jpg,", 0) == 0);
    CHECK(index.find("\nfruits.jpg,") != std::string::npos);
    CHECK(index.find("\nmore/butterfly.jpg,") != std::string::npos);
    CHECK(index.find(",more/butterfly\n") != std::string::npos);
    for (const char* out : {"baboon", "fruits", "more/butterfly"}) {
        CHECK(fs::exists(dir / fmt::format("out/{}/projected_w.npz", out)));
        CHECK(fs::exists(dir / fmt::format("out/{}/proj.png", out)));
    }
    const std::string butterfly_w = read_file(dir / "out/more/butterfly/projected_w.npz");
    // a second run finds everything done; after one result is lost it projects only that one
    r = lktest::run(args);
    REQUIRE(r.code == 0);
    CHECK(r.err.find("3 images, 3 already projected") != std::string::npos);
    fs::remove(dir / "out/fruits/projection.json");
    r = lktest::run(args);
    REQUIRE(r.code == 0);
    CHECK(r.err.find("3 images, 2 already projected") != std::string::npos);
    CHECK(fs::exists(dir / "out/fruits/projection.json"));
    CHECK(read_file(dir / "out/more/butterfly/projected_w.npz") == butterfly_w);

    const std::string jpeg = read_file(photos + "/messi5.jpg");
    lktest::write_bytes(dir / "photos/cut.jpg", jpeg.substr(0, jpeg.size() / 3));
    r = lktest::run({"project", "-m", model, "--target-dir", dir / "photos", "--steps", "2", "-o", dir / "other"});
    lktest::check_error(r, 1, "cut.jpg: the JPEG data is truncated");
    CHECK_FALSE(fs::exists(dir / "other"));
    lktest::check_error(lktest::run({"project", "-m", model, "--target-dir", dir / "nowhere", "-o", dir / "other"}), 1, "nowhere: no such folder");
    lktest::check_error(lktest::run({"project", "-m", model, "-t", photos + "/baboon.jpg", "--target-dir", dir / "photos", "-o", dir / "other"}), 2,
                        "--target images or one --target-dir");
}

TEST_CASE("cli: project refuses bad input with one line, exit 1, and leaves earlier results alone") {
    lktest::TempDir dir;
    const std::string model = data_path("golden/tiny32.pkl");
    const std::string jpeg = read_file(std::string(LATENTKIT_OPENCV_DATA) + "/messi5.jpg");
    lktest::write_bytes(dir / "cut.jpg", jpeg.substr(0, jpeg.size() / 3));
    lktest::write_bytes(dir / "empty.png", "");
    lktest::write_bytes(dir / "junk.pt", "junk");
    save_fake_vgg(dir / "plain.pt", false);
    fs::create_directories(dir / "out");
    lktest::write_bytes(dir / "out/proj.png", "earlier result");
    const std::vector<std::string> base{"project", "-m", model, "--steps", "2", "--w-avg-samples", "100", "-o", dir / "out"};
    auto with = [&](std::vector<std::string> extra) {
        std::vector<std::string> args = base;
        args.insert(args.end(), extra.begin(), extra.end());
        return args;
    };
    lktest::check_error(lktest::run(with({"-t", dir / "cut.jpg"})), 1, "cut.jpg: the JPEG data is truncated");
    lktest::check_error(lktest::run(with({"-t", dir / "empty.png"})), 1, "empty.png: the file is empty");
    lktest::check_error(lktest::run(with({"-t", dir / "missing.jpg"})), 1, "missing.jpg");
    const std::string baboon = std::string(LATENTKIT_OPENCV_DATA) + "/baboon.jpg";
    lktest::check_error(lktest::run(with({"-t", baboon, "--align", "face"})), 1, "baboon.jpg: no face found");
    lktest::check_error(lktest::run(with({"-t", baboon, "--vgg", dir / "junk.pt"})), 1, "junk.pt: not a TorchScript module");
    lktest::check_error(lktest::run(with({"-t", baboon, "--vgg", dir / "plain.pt"})), 1, "return_lpips");
    lktest::check_error(lktest::run({"project", "-m", data_path("golden/tiny32.G_ema.safetensors"), "-t", baboon, "--loss", "discriminator",
                                     "-o", dir / "out"}),
                        1, "holds no discriminator");
    lktest::check_error(lktest::run(with({"-t", baboon, "--loss", "lpips"})), 2, "--vgg");
    lktest::check_error(lktest::run(with({"-t", baboon, "--loss", "pixel=x"})), 2, "pixel=x");
    CHECK(read_file(dir / "out/proj.png") == "earlier result");
    CHECK(std::distance(fs::directory_iterator(dir / "out"), fs::directory_iterator()) == 1);
}

TEST_CASE("cli: align writes face crops, and refuses photos without a face") {
    lktest::TempDir dir;
    const std::string photos = LATENTKIT_OPENCV_DATA;
    lktest::Result r = lktest::run({"align", "-i", photos + "/messi5.jpg", "--size", "128", "-o", dir / "out"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    const auto im = read_png(dir / "out/messi5.png");
    CHECK(im.width == 128);
    CHECK(im.height == 128);
    CHECK(r.err.find("face 1 of 1") != std::string::npos);
    lktest::check_error(lktest::run({"align", "-i", photos + "/messi5.jpg", "-i", photos + "/baboon.jpg", "-o", dir / "none"}), 1,
                        "baboon.jpg: no face found");
    CHECK_FALSE(fs::exists(dir / "none"));
}
