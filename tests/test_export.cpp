// latentkit export: rosinality .pt checkpoints in the layout of rosinality's own Generator and
// Discriminator (tests/data/export, made by tools/make_rosinality_manifest.py), read back to the
// same images, and refusals of what the format cannot hold.
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli_util.h"
#include "latentkit/atomic_file.h"
#include "latentkit/latent.h"
#include "latentkit/model_export.h"
#include "latentkit/model_io.h"
#include "latentkit/networks.h"
#include "pickle.h"
#include "test_util.h"

using namespace latentkit;
namespace fs = std::filesystem;

namespace {

// The keys and shapes of one state dict of a torch.save file, in file order.
std::vector<std::pair<std::string, std::vector<int64_t>>> state_dict_shapes(const std::string& path, const std::string& key) {
    auto bytes = std::make_shared<const std::string>(read_file(path));
    const auto doc = pickle::parse_torch_save(bytes, path);
    const pickle::Value* sd = doc->root->get(key);
    REQUIRE_MESSAGE(sd != nullptr, path << " has no " << key);
    std::vector<std::pair<std::string, std::vector<int64_t>>> out;
    for (size_t k = 0; k + 1 < sd->items.size(); k += 2) out.emplace_back(sd->items[k]->s, sd->items[k + 1]->sizes);
    return out;
}

torch::Tensor render(Generator& G, double psi) {
    torch::NoGradGuard no_grad;
    const torch::Tensor z = z_from_seeds({0, 1, 2, 3}, G.config.z_dim);
    return G.forward(z, {}, psi);
}

}  // namespace

TEST_CASE("export: a rosinality .pt has the keys and shapes of rosinality's own networks, and reads back to the same images") {
    lktest::TempDir dir;
    const std::string src = lktest::data_path("golden/tiny32.pkl"), pt = dir / "tiny32.pt";
    const auto r = lktest::run({"export", src, pt});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    CHECK(r.err.find("channel widths") != std::string::npos);  // tiny32's widths are not rosinality's table: said once
    std::ifstream in(lktest::data_path("export/rosinality_tiny32.json"));
    const auto manifest = nlohmann::json::parse(in);
    for (const std::string key : {"g_ema", "g", "d"}) {
        INFO(key);
        const std::string section = key == "g" ? "g_ema" : key;
        std::vector<std::pair<std::string, std::vector<int64_t>>> expected;
        for (const auto& e : manifest[section]) expected.emplace_back(e[0].get<std::string>(), e[1].get<std::vector<int64_t>>());
        CHECK(state_dict_shapes(pt, key) == expected);
    }
    const Model original = load_model(src), back = load_model(pt);
    REQUIRE(back.G_ema);
    REQUIRE(back.G);
    REQUIRE(back.D);
    for (double psi : {1.0, 0.7}) CHECK(lktest::max_abs_diff(render(*back.G_ema, psi), render(*original.G_ema, psi)) <= 1e-5);
    CHECK(lktest::max_abs_diff(render(*back.G, 1.0), render(*original.G, 1.0)) <= 1e-5);
    torch::NoGradGuard no_grad;
    const torch::Tensor img = render(*original.G_ema, 1.0);
    CHECK(lktest::max_abs_diff(back.D->forward(img, {}), original.D->forward(img, {})) <= 1e-4);

    // --g-ema-only, the convert name of the command, and an explicit format.
    REQUIRE(lktest::run({"convert", src, dir / "small.pt", "--g-ema-only"}).code == 0);
    CHECK(load_model(dir / "small.pt").G == nullptr);
    REQUIRE(lktest::run({"export", src, dir / "as_pt.bin", "--format", "pt"}).code == 0);
    CHECK(load_model(dir / "as_pt.bin").G_ema);
}

TEST_CASE("export: PyTorch itself reads an exported rosinality .pt with torch.load(weights_only=True), keys and shapes as rosinality's") {
    lktest::TempDir dir;
    const std::string pt = dir / "tiny32.pt";
    REQUIRE(lktest::run({"export", lktest::data_path("golden/tiny32.pkl"), pt}).code == 0);
    // Debian's python3-torch (scripts/setup.sh): the safe unpickler, which refuses anything but tensors and plain containers.
    const std::string py =
        "import json, sys, torch\n"
        "ck = torch.load(sys.argv[1], map_location='cpu', weights_only=True)\n"
        "out = {k: [[n, list(t.shape)] for n, t in v.items()] for k, v in ck.items() if isinstance(v, dict)}\n"
        "out['latent_avg'] = list(ck['latent_avg'].shape)\n"
        "json.dump(out, open(sys.argv[2], 'w'))\n";
    const int rc = std::system(("/usr/bin/python3 -c " + lktest::quote(py) + " " + lktest::quote(pt) + " " + lktest::quote(dir / "keys.json")).c_str());
    REQUIRE_MESSAGE(rc == 0, "needs /usr/bin/python3 with Debian's python3-torch (scripts/setup.sh installs it)");
    const auto got = nlohmann::json::parse(read_file(dir / "keys.json"));
    std::ifstream in(lktest::data_path("export/rosinality_tiny32.json"));
    const auto manifest = nlohmann::json::parse(in);
    CHECK(got["g_ema"] == manifest["g_ema"]);
    CHECK(got["g"] == manifest["g_ema"]);
    CHECK(got["d"] == manifest["d"]);
    CHECK(got["latent_avg"] == nlohmann::json::array({64}));
}

TEST_CASE("export: what a rosinality .pt cannot hold is refused in one line, and nothing is written or replaced") {
    lktest::TempDir dir;
    const std::string out = dir / "out.pt";
    lktest::write_bytes(out, "earlier");
    lktest::check_error(lktest::run({"export", lktest::data_path("variants/sg3r_cond64.pkl"), out}), 1, "cannot hold a StyleGAN3 generator");
    lktest::check_error(lktest::run({"export", lktest::data_path("variants/sg3sg2_cond16.pkl"), out}), 1, "conditional");
    lktest::check_error(lktest::run({"export", lktest::data_path("golden/gray16.pkl"), out}), 1, "1-channel images");
    lktest::check_error(lktest::run({"export", lktest::data_path("golden/tiny32.pkl"), dir / "x.tflite"}), 2, "x.tflite: no export format");
    lktest::check_error(lktest::run({"export", lktest::data_path("golden/tiny32.pkl"), out, "--info", "a=b"}), 2, ".safetensors files only");
    CHECK(read_file(out) == "earlier");
    CHECK_FALSE(fs::exists(dir / "x.tflite"));
    int files = 0;
    for (const auto& e : fs::directory_iterator(dir.path())) files += e.is_regular_file() ? 1 : 0;
    CHECK(files == 1);  // no temporary file left behind
}

TEST_CASE("export: an NVIDIA .pkl in the data-only TensorFlow-era layout reads back to the same networks") {
    lktest::TempDir dir;
    for (const std::string name : {"golden/tiny32.pkl", "variants/tf_cond16.pkl", "golden/gray16.pkl"}) {
        INFO(name);
        const std::string src = lktest::data_path(name), pkl = dir / "out.pkl";
        const auto r = lktest::run({"export", src, pkl});
        REQUIRE_MESSAGE(r.code == 0, r.err);
        const std::string bytes = read_file(pkl);
        CHECK(bytes.find("dnnlib.tflib.network") != std::string::npos);
        CHECK(bytes.find("_reconstruct_persistent_obj") == std::string::npos);  // no Python source, no persistent classes
        const Model original = load_model(src), back = load_model(pkl);
        CHECK(back.format == "TensorFlow StyleGAN2 pickle");
        REQUIRE(back.G_ema);
        REQUIRE(back.G);
        REQUIRE(back.D);
        torch::NoGradGuard no_grad;
        const int c_dim = original.G_ema->config.c_dim;
        const torch::Tensor z = z_from_seeds({0, 1, 2, 3}, original.G_ema->config.z_dim);
        const torch::Tensor c = c_dim ? torch::zeros({4, c_dim}).index_fill_(1, torch::tensor({0}), 1.0) : torch::Tensor();
        for (double psi : {1.0, 0.7}) CHECK(lktest::max_abs_diff(back.G_ema->forward(z, c, psi), original.G_ema->forward(z, c, psi)) <= 1e-5);
        CHECK(lktest::max_abs_diff(back.G->forward(z, c, 1.0), original.G->forward(z, c, 1.0)) <= 1e-5);
        const torch::Tensor img = original.G_ema->forward(z, c, 1.0);
        CHECK(lktest::max_abs_diff(back.D->forward(img, c), original.D->forward(img, c)) <= 1e-4);
    }
}

TEST_CASE("export: what an NVIDIA .pkl cannot hold is refused in one line") {
    lktest::TempDir dir;
    const std::string out = dir / "out.pkl";
    lktest::check_error(lktest::run({"export", lktest::data_path("formats/sg3t_32.pkl"), out}), 1, "cannot hold a StyleGAN3 generator");
    lktest::check_error(lktest::run({"export", std::string(LATENTKIT_SOURCE_DIR) + "/models/emoji64.safetensors", out}), 1,
                        "without a discriminator");
    // A rosinality checkpoint whose stored blur kernels are not its resample_kernel's (the test file is perturbed).
    lktest::check_error(lktest::run({"export", lktest::data_path("formats/rosi_32.pt"), out}), 1, "resampling filter");
    lktest::check_error(lktest::run({"export", lktest::data_path("golden/tiny32.pkl"), out, "--g-ema-only"}), 2, "G, D and G_ema");
    CHECK_FALSE(fs::exists(out));
}
