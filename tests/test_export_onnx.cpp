// latentkit export --format onnx: every exported graph is run by ONNX Runtime (npm onnxruntime-node,
// tests/tools/run_onnx.js) and compared with latentkit's own images, on the golden models of each family.
#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "cli_util.h"
#include "latentkit/atomic_file.h"
#include "latentkit/latent.h"
#include "latentkit/model_export.h"
#include "latentkit/model_io.h"
#include "latentkit/networks.h"
#include "test_util.h"

using namespace latentkit;
namespace fs = std::filesystem;

namespace {

using Tensors = std::map<std::string, torch::Tensor>;

// Runs `model` in ONNX Runtime on `inputs` (float32 or int64) and returns the named outputs.
Tensors run_onnx(const std::string& model, const Tensors& inputs, const std::vector<std::string>& outputs, const lktest::TempDir& dir) {
    nlohmann::json request;
    for (const auto& [name, t] : inputs) {
        const bool integer = t.scalar_type() == torch::kLong;
        const torch::Tensor c = t.contiguous();
        lktest::write_bytes(dir / (name + ".in"), std::string(static_cast<const char*>(c.data_ptr()), c.numel() * c.element_size()));
        request["inputs"][name] = {{"type", integer ? "int64" : "float32"}, {"dims", c.sizes().vec()}, {"file", name + ".in"}};
    }
    for (const auto& name : outputs) request["outputs"][name] = name + ".out";
    lktest::write_bytes(dir / "request.json", request.dump());
    const std::string script = std::string(LATENTKIT_SOURCE_DIR) + "/tests/tools/run_onnx.js";
    const std::string cmd = "node " + lktest::quote(script) + " " + lktest::quote(model) + " " + lktest::quote(dir / "request.json") + " > " +
                            lktest::quote(dir / "reply.json") + " 2> " + lktest::quote(dir / "error.txt");
    const int rc = std::system(cmd.c_str());
    REQUIRE_MESSAGE(rc == 0, "ONNX Runtime failed (node and `npm ci --ignore-scripts` needed): " << read_file(dir / "error.txt"));
    const auto reply = nlohmann::json::parse(read_file(dir / "reply.json"));
    Tensors out;
    for (const auto& name : outputs) {
        const std::string bytes = read_file(dir / (name + ".out"));
        const auto dims = reply["dims"][name].get<std::vector<int64_t>>();
        torch::Tensor t = torch::empty(dims, torch::kFloat32);
        REQUIRE(bytes.size() == static_cast<size_t>(t.numel()) * 4);
        std::memcpy(t.data_ptr(), bytes.data(), bytes.size());
        out[name] = t;
    }
    return out;
}

std::string export_onnx(const std::string& model, const lktest::TempDir& dir, const std::vector<std::string>& extra = {}) {
    const std::string out = dir / (fs::path(model).stem().string() + ".onnx");
    std::vector<std::string> args{"export", model, out};
    args.insert(args.end(), extra.begin(), extra.end());
    const auto r = lktest::run(args);
    REQUIRE_MESSAGE(r.code == 0, r.err);
    return out;
}

// One-hot labels for the first classes of a conditional model (empty for an unconditional one).
torch::Tensor labels(const GeneratorConfig& c, int64_t n) {
    if (c.c_dim == 0) return {};
    torch::Tensor out = torch::zeros({n, c.c_dim});
    for (int64_t k = 0; k < n; ++k) out[k][k % c.c_dim] = 1;
    return out;
}

Tensors full_inputs(const Generator& G, const torch::Tensor& z, double psi, int cutoff) {
    Tensors in{{"z", z}, {"psi", torch::full({1}, static_cast<float>(psi))}, {"truncation_cutoff", torch::full({1}, cutoff, torch::kLong)}};
    if (G.config.c_dim > 0) in["c"] = labels(G.config, z.size(0));
    if (G.config.family == GeneratorFamily::stylegan3) in["transform"] = G.named_buffers(true)["synthesis.input.transform"].detach();
    return in;
}

}  // namespace

TEST_CASE("export: ONNX Runtime renders an exported generator as latentkit does, for every family, seed and truncation") {
    if (!onnx_export_available()) LKTEST_SKIP("this build has no ONNX export (libonnx-dev)");
    torch::NoGradGuard no_grad;
    for (const std::string name : {"golden/tiny32.pkl", "golden/gray16.pkl", "formats/sg3t_32.pkl", "formats/sg3r_32.pkl",
                                   "variants/tf_cond16.pkl", "variants/sg3r_cond64.pkl"}) {
        INFO(name);
        lktest::TempDir dir;
        const std::string src = lktest::data_path(name), onnx = export_onnx(src, dir);
        const Model m = load_model(src);
        Generator& G = *m.G_ema;
        const torch::Tensor z = z_from_seeds({0, 1, 2, 3}, G.config.z_dim);
        for (double psi : {1.0, 0.6}) {
            INFO("psi " << psi);
            const torch::Tensor expected = G.forward(z, labels(G.config, 4), psi);
            const Tensors got = run_onnx(onnx, full_inputs(G, z, psi, G.synthesis->num_ws), {"img"}, dir);
            REQUIRE(got.at("img").sizes() == expected.sizes());
            const double diff = lktest::max_abs_diff(got.at("img"), expected);
            MESSAGE(name << " psi " << psi << ": largest difference " << diff);
            CHECK(diff <= 2e-4);
            CHECK(expected.abs().max().item<double>() > 0.05);  // a real image, not a blank one
        }
    }
}

TEST_CASE("export: ONNX Runtime renders StyleGAN2 generators of the 'orig' and 'resnet' architectures, with clamping, as latentkit does") {
    if (!onnx_export_available()) LKTEST_SKIP("this build has no ONNX export (libonnx-dev)");
    torch::NoGradGuard no_grad;
    torch::manual_seed(3);
    for (const Architecture arch : {Architecture::orig, Architecture::resnet}) {
        INFO(option_name(arch));
        GeneratorConfig c;
        c.z_dim = c.w_dim = 16;
        c.img_resolution = 16;
        c.mapping.num_layers = 2;
        c.synthesis.channel_base = 256;
        c.synthesis.channel_max = 32;
        c.synthesis.architecture = arch;
        c.synthesis.conv_clamp = 1.5;  // low enough to clip somewhere
        Model m;
        m.G_ema = std::make_shared<Generator>(c);
        for (auto& p : m.G_ema->named_parameters(true)) p.value().copy_(torch::randn_like(p.value()) * 0.7);
        m.G_ema->mapping->w_avg.copy_(torch::randn({c.w_dim}) * 0.3);
        m.G_ema->eval();
        lktest::TempDir dir;
        const std::string file = dir / (std::string(option_name(arch)) + ".safetensors");
        save_model(file, m);
        const std::string onnx = export_onnx(file, dir);
        const Model back = load_model(file);
        Generator& G = *back.G_ema;
        const torch::Tensor z = z_from_seeds({0, 1, 2, 3}, c.z_dim);
        const torch::Tensor expected = G.forward(z, {}, 0.7, 2);
        CHECK(lktest::max_abs_diff(run_onnx(onnx, full_inputs(G, z, 0.7, 2), {"img"}, dir).at("img"), expected) <= 2e-4);
        CHECK(expected.abs().max().item<double>() > 0.05);
    }
}

TEST_CASE("export: ONNX mapping and synthesis parts, truncation cutoff, noise inputs, batch sizes and StyleGAN3's transform") {
    if (!onnx_export_available()) LKTEST_SKIP("this build has no ONNX export (libonnx-dev)");
    torch::NoGradGuard no_grad;
    lktest::TempDir dir;
    const std::string src = lktest::data_path("golden/tiny32.pkl");
    const Model m = load_model(src);
    Generator& G = *m.G_ema;
    const torch::Tensor z = z_from_seeds({5, 6}, G.config.z_dim);
    SUBCASE("mapping with a cutoff, then synthesis") {
        const std::string mapping = export_onnx(src, dir, {"--part", "mapping"});
        const torch::Tensor ws = G.mapping->forward(z, {}, 0.5, 3);
        const Tensors got = run_onnx(mapping, full_inputs(G, z, 0.5, 3), {"ws"}, dir);
        CHECK(lktest::max_abs_diff(got.at("ws"), ws) <= 1e-5);
        CHECK(lktest::max_abs_diff(got.at("ws").select(1, 5), G.mapping->forward(z, {}).select(1, 5)) <= 1e-5);  // past the cutoff
        lktest::TempDir dir2;
        const std::string synthesis = export_onnx(src, dir2, {"--part", "synthesis"});
        const Tensors img = run_onnx(synthesis, {{"ws", ws}}, {"img"}, dir2);
        CHECK(lktest::max_abs_diff(img.at("img"), G.synthesis->forward(ws)) <= 2e-4);
    }
    SUBCASE("noise inputs: per image as NoiseMode::custom, or one map for the batch (the constant noise)") {
        const std::string onnx = export_onnx(src, dir, {"--noise-inputs"});
        const torch::Tensor ws = G.mapping->forward(z, {});
        Tensors in = full_inputs(G, z, 1.0, G.synthesis->num_ws), constant = in;
        SynthesisOptions so;
        so.noise_mode = NoiseMode::custom;
        const auto res = G.synthesis->noise_resolutions();
        const auto buffers = G.named_buffers(true);
        int layer = 0;
        for (size_t k = 0; k < res.size(); ++k) {
            const std::string name = "noise" + std::to_string(k);
            so.noise.push_back(torch::randn({2, 1, res[k], res[k]}));
            in[name] = so.noise.back();
            // The k-th noise layer in network order: b4.conv1, b8.conv0, b8.conv1, ...
            const int r = res[k];
            const std::string conv = r == 4 ? "conv1" : (layer++ % 2 == 0 ? "conv0" : "conv1");
            constant[name] = buffers[fmt::format("synthesis.b{}.{}.noise_const", r, conv)].reshape({1, 1, r, r});
        }
        CHECK(lktest::max_abs_diff(run_onnx(onnx, in, {"img"}, dir).at("img"), G.synthesis->forward(ws, so)) <= 2e-4);
        CHECK(lktest::max_abs_diff(run_onnx(onnx, constant, {"img"}, dir).at("img"), G.synthesis->forward(ws)) <= 2e-4);
    }
    SUBCASE("StyleGAN3: the user transform input (translate and rotate)") {
        const std::string sg3 = lktest::data_path("formats/sg3t_32.pkl");
        const Model m3 = load_model(sg3);
        Generator& G3 = *m3.G_ema;
        const std::string onnx = export_onnx(sg3, dir);
        const torch::Tensor z3 = z_from_seeds({7, 8, 9}, G3.config.z_dim);
        Tensors in = full_inputs(G3, z3, 0.8, G3.synthesis->num_ws);
        SynthesisOptions so;
        so.input_transform = stylegan3_transform(0.2, -0.1, 15);
        in["transform"] = so.input_transform;
        const torch::Tensor expected = G3.synthesis->forward(G3.mapping->forward(z3, {}, 0.8), so);
        CHECK(lktest::max_abs_diff(run_onnx(onnx, in, {"img"}, dir).at("img"), expected) <= 2e-4);
        CHECK(lktest::max_abs_diff(expected, G3.forward(z3, {}, 0.8)) > 0.01);  // the transform changes the image
    }
}

TEST_CASE("export: what ONNX export cannot do is refused in one line, and nothing is written") {
    if (!onnx_export_available()) LKTEST_SKIP("this build has no ONNX export (libonnx-dev)");
    lktest::TempDir dir;
    const std::string sg3 = lktest::data_path("formats/sg3t_32.pkl"), out = dir / "x.onnx";
    lktest::check_error(lktest::run({"export", sg3, out, "--noise-inputs"}), 2, "StyleGAN3 has no noise inputs");
    CHECK(!fs::exists(out));
    lktest::check_error(lktest::run({"export", sg3, dir / "x.pt", "--part", "mapping"}), 2, "apply to .onnx files only");
    lktest::check_error(lktest::run({"export", lktest::data_path("golden/tiny32.pkl"), out, "--part", "bogus"}), 2, "--part");
    CHECK(fs::is_empty(dir.path()));
}
