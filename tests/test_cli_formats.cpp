// Every command end to end on each kind of model file of tests/data/formats: TensorFlow-era pickle,
// stylegan3-repo snapshot, rosinality checkpoint.
#include "test_util.h"
#include "cli_util.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "latentkit/atomic_file.h"
#include "latentkit/png.h"
#include "latentkit/latent.h"

namespace fs = std::filesystem;
using lktest::run;

namespace {
// The PNG equals the reference 8-bit conversion of the expected image of sample `k`, +-1.
void check_sample(const std::string& png, const std::string& expected_file, const char* tensor, int64_t k) {
    INFO(png);
    REQUIRE(fs::exists(png));
    const auto im = latentkit::read_png(png);
    const torch::Tensor ref = latentkit::to_uint8_nhwc(lktest::golden_tensor(expected_file, tensor).narrow(0, k, 1))[0].to(torch::kInt32);
    REQUIRE(im.pixels.size() == static_cast<size_t>(ref.numel()));
    const torch::Tensor got = torch::tensor(std::vector<int>(im.pixels.begin(), im.pixels.end())).reshape(ref.sizes());
    CHECK((got - ref).abs().max().item<int>() <= 1);
}

void every_command(const std::string& file, const std::string& format, bool stylegan3 = false) {
    lktest::TempDir dir;
    const std::string model = lktest::data_path("formats/" + file);
    const std::string exp = "../formats/" + fs::path(file).stem().string() + ".expected.safetensors";
    const char* const_img = stylegan3 ? "img_psi1.0" : "img_psi1.0_const";
    INFO(model);

    lktest::Result r = run({"info", model, "--json"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    const auto info = nlohmann::json::parse(r.out);
    CHECK(info["format"] == format);
    CHECK(info["configuration"].get<std::string>().size() > 10);

    r = run({"generate", "-m", model, "--seeds", "0,1,42,1000", "-o", dir / "gen"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    check_sample(dir / "gen/seed0042.png", exp, const_img, 2);
    r = run({"generate", "-m", model, "--seeds", "1000", "--trunc", "0.7", "-o", dir / "gen07"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    check_sample(dir / "gen07/seed1000.png", exp, stylegan3 ? "img_psi0.7" : "img_psi0.7_const", 3);

    r = run({"convert", model, dir / "converted.safetensors"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    r = run({"info", dir / "converted.safetensors", "--json"});
    REQUIRE(r.code == 0);
    CHECK(nlohmann::json::parse(r.out)["converted_from"] == format);
    r = run({"generate", "-m", dir / "converted.safetensors", "--seeds", "42", "-o", dir / "conv"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    check_sample(dir / "conv/seed0042.png", exp, const_img, 2);

    r = run({"morph", "-m", model, "--seeds", "1,2,3", "--kind", "cubic", "--loop", "--frames", "2", "-o", dir / "frames/"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    CHECK(fs::exists(dir / "frames/frame000005.png"));
    r = run({"style-mix", "-m", model, "--rows", "1,2", "--cols", "3", "--styles", "0-3", "--out", dir / "mix.png"});
    REQUIRE_MESSAGE(r.code == 0, r.err);

    r = run({"project", "-m", model, "-t", dir / "gen/seed0000.png", "--align", "none", "--loss", "pixel", "--steps", "30",
             "--w-avg-samples", "500", "-o", dir / "proj"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    CHECK(fs::exists(dir / "proj/projected_w.npz"));
    r = run({"project", "-m", model, "-t", dir / "gen/seed0000.png", "--align", "none", "--loss", "pixel", "--steps", "10",
             "--w-avg-samples", "500", "--space", "w+", "-o", dir / "projp"});
    REQUIRE_MESSAGE(r.code == 0, r.err);

    r = run({"directions", "sample", "-m", model, "--seeds", "0-99", "--score", "brightness", "-o", dir / "s.npz"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    r = run({"directions", "fit", "--samples", dir / "s.npz", "--labels", dir / "s.csv", "--column", "brightness", "-o", dir / "b.json"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    r = run({"directions", "pca", "-m", model, "--seeds", "0-499", "-k", "2", "-o", dir / "pca.json"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    r = run({"directions", "sefa", "-m", model, "-k", "2", "-o", dir / "sefa.json"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    r = run({"edit", "-m", model, "--w", dir / "proj/projected_w.npz", "-d", dir / "b.json", "-d", dir / "pca.json#1", "--strengths", "-1,0,1",
             "-o", dir / "edit.png"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    CHECK(latentkit::read_png(dir / "edit.png").width == 3 * 32);

    r = run({"nearest", "-m", model, "--data", dir / "gen", "--seeds", "0-1", "--out", dir / "nearest.png"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    r = run({"bench", "generate", "-m", model, "--iters", "1", "--warmup", "0"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
}
}  // namespace

TEST_CASE("cli formats: every command on a TensorFlow-era pickle") { every_command("tf_tiny32.pkl", "TensorFlow StyleGAN2 pickle"); }

TEST_CASE("cli formats: every command on a stylegan3-repo StyleGAN2 snapshot") { every_command("sg3sg2_32.pkl", "stylegan3-repo pickle"); }

TEST_CASE("cli formats: every command on a rosinality checkpoint") { every_command("rosi_32.pt", "rosinality checkpoint"); }

TEST_CASE("cli formats: every command on a StyleGAN3-T snapshot, with gen_images.py's --translate and --rotate") {
    every_command("sg3t_32.pkl", "stylegan3-repo pickle", true);
    lktest::TempDir dir;
    const std::string model = lktest::data_path("formats/sg3t_32.pkl");
    const std::string exp = "../formats/sg3t_32.expected.safetensors";
    lktest::Result r = run({"generate", "-m", model, "--seeds", "0,1,42,1000", "--trunc", "0.7", "--translate", "0.125,-0.25", "--rotate", "17.2",
                            "--noise-mode", "random", "-o", dir / "moved"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    CHECK(r.err.find("StyleGAN3 networks have no noise inputs") != std::string::npos);  // said, not refused
    for (int64_t k = 0; k < 4; ++k)
        check_sample(dir / ("moved/" + std::vector<std::string>{"seed0000.png", "seed0001.png", "seed0042.png", "seed1000.png"}[k]), exp,
                     "img_psi0.7_transformed", k);
    r = run({"morph", "-m", model, "--seeds", "1,2", "--frames", "2", "--rotate", "30", "--noise-loop", "-o", dir / "frames/"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    r = run({"morph", "-m", model, "--seeds", "1-4", "--kind", "slerp", "--grid", "2x1", "--layers", "0-5", "--frames", "2", "-o", dir / "grid/"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    CHECK(latentkit::read_png(dir / "grid/frame000000.png").width == 64);
    r = run({"info", model});
    CHECK(r.out.find("StyleGAN3-T") != std::string::npos);
    lktest::check_error(run({"generate", "-m", lktest::data_path("golden/tiny32.pkl"), "--seeds", "1", "--rotate", "10", "-o", dir / "sg2"}), 2,
                        "this is a StyleGAN2 model");
    CHECK_FALSE(fs::exists(dir / "sg2"));
    REQUIRE(run({"dataset", "--source", dir / "moved", "--dest", dir / "data.zip", "--resolution", "32"}).code == 0);
    lktest::check_error(run({"train", "--data", dir / "data.zip", "--resume", model, "--outdir", dir / "run", "--kimg", "1"}), 1,
                        "a StyleGAN3 model: latentkit trains StyleGAN2 networks only");
    r = run({"bench", "generate", "--random", "32", "--arch", "stylegan3-r", "--iters", "1", "--warmup", "0"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    CHECK(r.out.find("StyleGAN3-R") != std::string::npos);
}
