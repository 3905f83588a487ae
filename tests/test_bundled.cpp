// The bundled emoji model, the default-model fallback of the subcommands, the emoji dataset script,
// `generate --grid`, `nearest` and `convert --info`.
#include "test_util.h"
#include "cli_util.h"

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "latentkit/atomic_file.h"
#include "latentkit/io/bundled_model.h"
#include "latentkit/io/image.h"
#include "latentkit/png.h"
#include "latentkit/latent.h"
#include "latentkit/model_io.h"
#include "latentkit/networks.h"

namespace fs = std::filesystem;
using lktest::check_error;
using lktest::data_path;
using lktest::run;

namespace {

const std::string kFont = "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf";

// Unsets LATENTKIT_MODEL for one test (so that the bundled model is the default), restoring it after.
class NoModelEnv {
public:
    NoModelEnv() {
        if (const char* v = std::getenv("LATENTKIT_MODEL")) saved_ = v;
        unsetenv("LATENTKIT_MODEL");
    }
    ~NoModelEnv() {
        if (!saved_.empty()) setenv("LATENTKIT_MODEL", saved_.c_str(), 1);
        else unsetenv("LATENTKIT_MODEL");
    }

private:
    std::string saved_;
};

int shell(const std::string& command) { return std::system(command.c_str()); }

}  // namespace

TEST_CASE("bundled model: loads, carries its metadata, and generates varied emoji-sized images") {
    const NoModelEnv env;
    const auto found = latentkit::io::default_model();
    CHECK(found.origin == "bundled");
    REQUIRE(fs::exists(found.path));
    CHECK(fs::file_size(found.path) < 25u * 1024 * 1024);
    const latentkit::Model model = latentkit::load_model(found.path);
    REQUIRE(model.G_ema);
    CHECK_FALSE(model.G);
    CHECK_FALSE(model.D);
    for (const char* key : {"description", "training", "dataset", "licence"}) {
        INFO(key);
        CHECK(model.info.count(key) == 1);
    }
    auto G = model.generator();
    CHECK(G->config.img_resolution == 64);
    CHECK(G->config.img_channels == 3);
    torch::NoGradGuard no_grad;
    const torch::Tensor ws = latentkit::map_to_ws(*G, latentkit::z_from_seeds({0, 1, 2, 3}, G->config.z_dim), {});
    const torch::Tensor img = G->synthesis->forward(ws, {});
    REQUIRE(img.sizes() == torch::IntArrayRef{4, 3, 64, 64});
    CHECK(torch::isfinite(img).all().item<bool>());
    // A trained generator: images have structure (not flat) and differ from seed to seed.
    CHECK(img.flatten(1).std(1).min().item<double>() > 0.05);
    CHECK((img[0] - img[1]).abs().mean().item<double>() > 0.02);
}

TEST_CASE("cli: a subcommand without --model uses the bundled model and says so, and LATENTKIT_MODEL overrides it") {
    const NoModelEnv env;
    const lktest::TempDir d;
    auto r = run({"generate", "--seeds", "0-5", "--grid", "3x2", "--outdir", d / "g"});
    INFO(r.err);
    REQUIRE(r.code == 0);
    CHECK(r.err.find("no --model given: using the bundled model") != std::string::npos);
    const auto grid = latentkit::read_png(d / "g/grid.png");
    CHECK(grid.width == 3 * 64);
    CHECK(grid.height == 2 * 64);
    CHECK(std::distance(fs::directory_iterator(d / "g"), fs::directory_iterator()) == 1);

    r = run({"generate", "--seeds", "0-6", "--grid", "3x2", "--outdir", d / "h"});
    check_error(r, 2, "cannot hold 7 images");

    setenv("LATENTKIT_MODEL", data_path("golden/tiny32.pkl").c_str(), 1);
    r = run({"info"});
    CHECK(r.code == 0);
    CHECK(r.err.find("LATENTKIT_MODEL") != std::string::npos);
    CHECK(r.out.find("tiny32.pkl") != std::string::npos);
    setenv("LATENTKIT_MODEL", (d / "missing.pkl").c_str(), 1);
    check_error(run({"info"}), 1, "missing.pkl");
}

TEST_CASE("cli: generate with several --trunc values renders each seed at each psi") {
    const lktest::TempDir d;
    const std::string model = data_path("golden/tiny32.pkl");
    auto r = run({"generate", "-m", model, "--seeds", "3,9", "--trunc", "0,0.5,1", "--outdir", d / "sweep"});
    INFO(r.err);
    REQUIRE(r.code == 0);
    REQUIRE(run({"generate", "-m", model, "--seeds", "9", "--trunc", "0.5", "--outdir", d / "one"}).code == 0);
    const auto a0 = latentkit::read_png(d / "sweep/seed0003-psi0.00.png");
    const auto b0 = latentkit::read_png(d / "sweep/seed0009-psi0.00.png");
    const auto b5 = latentkit::read_png(d / "sweep/seed0009-psi0.50.png");
    const auto b1 = latentkit::read_png(d / "sweep/seed0009-psi1.00.png");
    CHECK(a0.pixels == b0.pixels);  // psi 0 is the average w, whatever the seed
    CHECK(b5.pixels == latentkit::read_png(d / "one/seed0009.png").pixels);
    CHECK(b5.pixels != b1.pixels);
    r = run({"generate", "-m", model, "--seeds", "3,9", "--trunc", "0,1", "--grid", "2x2", "--outdir", d / "grid"});
    REQUIRE(r.code == 0);
    const auto grid = latentkit::read_png(d / "grid/grid.png");
    CHECK(grid.width == 64);
    CHECK(grid.height == 64);
    check_error(run({"generate", "-m", model, "--projected-w", data_path("tiny32_projected_w.npz"), "--trunc", "0,1", "--outdir", d / "x"}),
                2, "several --trunc");
}

TEST_CASE("cli: convert --info stores metadata that info shows") {
    const lktest::TempDir d;
    const std::string out = d / "m.safetensors";
    REQUIRE(run({"convert", data_path("golden/tiny32.pkl"), out, "--g-ema-only", "--info", "description=tiny test model", "--info",
                 "licence=CC0-1.0"})
                .code == 0);
    const latentkit::Model model = latentkit::load_model(out);
    CHECK(model.info.at("description") == "tiny test model");
    CHECK(model.info.at("licence") == "CC0-1.0");
    check_error(run({"convert", data_path("golden/tiny32.pkl"), d / "n.safetensors", "--info", "no-equals-sign"}), 2, "KEY=VALUE");
    CHECK_FALSE(fs::exists(d / "n.safetensors"));
}

TEST_CASE("cli: nearest finds a training image that is a sample, and refuses a dataset of another size") {
    const lktest::TempDir d;
    const std::string model = data_path("golden/tiny32.pkl");
    // A "training set" made of the model's own samples for seeds 0-3: those seeds must match exactly.
    REQUIRE(run({"generate", "-m", model, "--seeds", "0-3", "--outdir", d / "src"}).code == 0);
    REQUIRE(run({"dataset", "-s", d / "src", "-d", d / "data.zip", "-r", "32", "--transform", "none"}).code == 0);
    auto r = run({"nearest", "-m", model, "--data", d / "data.zip", "--seeds", "0-5", "--out", d / "nn.png", "--json", d / "nn.json",
                  "--pairs-per-row", "3"});
    INFO(r.err);
    REQUIRE(r.code == 0);
    const auto report = nlohmann::json::parse(latentkit::read_file(d / "nn.json"));
    REQUIRE(report["samples"].size() == 6);
    for (int k = 0; k < 4; ++k) CHECK(report["samples"][k]["rms"].get<double>() < 1.0);
    for (int k = 4; k < 6; ++k) CHECK(report["samples"][k]["rms"].get<double>() > 1.0);
    CHECK(report["training_reference"]["images"] == 4);
    const auto pairs = latentkit::read_png(d / "nn.png");
    CHECK(pairs.width == 6 * 32);
    CHECK(pairs.height == 2 * 32);

    REQUIRE(run({"dataset", "-s", d / "src", "-d", d / "small.zip", "-r", "16", "--transform", "none"}).code == 0);
    check_error(run({"nearest", "-m", model, "--data", d / "small.zip", "--out", d / "bad.png"}), 1, "small.zip");
    CHECK_FALSE(fs::exists(d / "bad.png"));
}

TEST_CASE("emoji_images.py extracts every glyph of the real font, and the dataset command turns them into a training set") {
    if (!fs::exists(kFont)) {
        LKTEST_SKIP(kFont << " is not installed (Debian package fonts-noto-color-emoji)");
    }
    const lktest::TempDir d;
    const std::string script = std::string(LATENTKIT_SOURCE_DIR) + "/scripts/emoji_images.py";
    REQUIRE(shell("python3 " + lktest::quote(script) + " " + lktest::quote(d / "emoji") + " > /dev/null") == 0);
    size_t count = 0;
    for (const auto& e : fs::directory_iterator(d / "emoji")) count += e.path().extension() == ".png";
    CHECK(count > 3000);
    const auto first = latentkit::io::read_image(fs::directory_iterator(d / "emoji")->path());
    CHECK(first.height == 128);
    CHECK(first.width >= 128);
    // An existing folder is never written into.
    CHECK(shell("python3 " + lktest::quote(script) + " " + lktest::quote(d / "emoji") + " 2> /dev/null") != 0);
    // A truncated font is refused and leaves nothing behind.
    const std::string bytes = latentkit::read_file(kFont);
    lktest::write_bytes(d / "cut.ttf", bytes.substr(0, bytes.size() / 3));
    CHECK(shell("python3 " + lktest::quote(script) + " " + lktest::quote(d / "cut.ttf") + " " + lktest::quote(d / "cut") + " 2> /dev/null") !=
          0);
    CHECK_FALSE(fs::exists(d / "cut"));

    // --help prints the usage and writes nothing; an unknown option is refused.
    CHECK(shell("cd " + lktest::quote(d.path()) + " && python3 " + lktest::quote(script) + " --help > /dev/null") == 0);
    CHECK_FALSE(fs::exists(d / "--help"));
    CHECK(shell("python3 " + lktest::quote(script) + " --bogus " + lktest::quote(d / "b") + " 2> /dev/null") != 0);
    CHECK_FALSE(fs::exists(d / "b"));
    // --subset faces: the yellow faces only (the bundled model's data), named by code point.
    if (fs::exists("/usr/share/unicode/emoji/emoji-test.txt")) {
        REQUIRE(shell("python3 " + lktest::quote(script) + " --subset faces " + lktest::quote(d / "faces") + " > /dev/null") == 0);
        size_t faces = 0;
        for (const auto& e : fs::directory_iterator(d / "faces")) faces += e.path().extension() == ".png";
        CHECK(faces >= 90);
        CHECK(faces <= 140);
        CHECK(fs::exists(d / "faces/u1f600.png"));      // grinning face
        CHECK_FALSE(fs::exists(d / "faces/u1f921.png"));  // clown face: face-costume is left out
    } else {
        MESSAGE("unicode-data is not installed: --subset faces is not checked");
    }

    const auto r = run({"dataset", "-s", d / "emoji", "-d", d / "emoji.zip", "-r", "64", "--transform", "pad", "--background",
                        "255,255,255", "--max-images", "24"});
    INFO(r.err);
    REQUIRE(r.code == 0);
    REQUIRE(run({"nearest", "-m", data_path("golden/tiny32.pkl"), "--data", d / "emoji.zip", "--out", d / "x.png"}).code == 1);
}
