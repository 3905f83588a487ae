// Networks and loaders against the reference StyleGAN2-ADA golden outputs (tests/data/golden/README.md).
#include "test_util.h"

#include <ATen/Context.h>

#include "latentkit/latent.h"
#include "latentkit/model_io.h"
#include "latentkit/networks.h"

using namespace latentkit;
using lktest::golden_tensor;
using lktest::max_abs_diff;

namespace {
constexpr double kWsTol = 1e-5, kImgTol = 1e-4;
const std::vector<uint32_t> kSeeds{0, 1, 42, 1000};

// Checks G_ema (and D / training G when present) against the expected tensors of one case.
void check_case(const std::string& name, const Model& m) {
    const std::string exp = name + ".expected.safetensors";
    INFO("case " << name << " from " << m.path);
    REQUIRE(m.G_ema);
    Generator& G = *m.G_ema;
    torch::NoGradGuard no_grad;
    const torch::Tensor z = z_from_seeds(kSeeds, G.config.z_dim);
    CHECK(max_abs_diff(z, golden_tensor(exp, "z")) <= kWsTol);

    const torch::Tensor ws1 = map_to_ws(G, z, {}, 1.0);
    CHECK(max_abs_diff(ws1, golden_tensor(exp, "ws_psi1.0")) <= kWsTol);
    CHECK(max_abs_diff(map_to_ws(G, z, {}, 0.7), golden_tensor(exp, "ws_psi0.7")) <= kWsTol);
    CHECK(max_abs_diff(map_to_ws(G, z, {}, 0.5, 2), golden_tensor(exp, "ws_psi0.5_cutoff2")) <= kWsTol);
    CHECK(max_abs_diff(truncate(ws1, G.mapping->w_avg, 0.5, 2), golden_tensor(exp, "ws_psi0.5_cutoff2")) <= kWsTol);

    SynthesisOptions constant, none;
    none.noise_mode = NoiseMode::none;
    CHECK(max_abs_diff(G.synthesis->forward(golden_tensor(exp, "ws_psi1.0"), constant), golden_tensor(exp, "img_psi1.0_const")) <= kImgTol);
    CHECK(max_abs_diff(G.synthesis->forward(golden_tensor(exp, "ws_psi0.7"), constant), golden_tensor(exp, "img_psi0.7_const")) <= kImgTol);
    CHECK(max_abs_diff(G.synthesis->forward(golden_tensor(exp, "ws_psi1.0"), none), golden_tensor(exp, "img_psi1.0_nonoise")) <= kImgTol);
    CHECK(max_abs_diff(G.forward(z, {}, 1.0), golden_tensor(exp, "img_psi1.0_const")) <= kImgTol);

    const torch::Tensor mixed = mix_layers(ws1.narrow(0, 1, 1), ws1.narrow(0, 0, 1), {0, 1, 2, 3});
    CHECK(max_abs_diff(mixed, golden_tensor(exp, "ws_mixed")) <= kWsTol);
    CHECK(max_abs_diff(G.synthesis->forward(mixed, constant), golden_tensor(exp, "img_mixed")) <= kImgTol);

    SynthesisOptions random;
    random.noise_mode = NoiseMode::random;
    const torch::Tensor r1 = G.synthesis->forward(ws1, random), r2 = G.synthesis->forward(ws1, random);
    CHECK(r1.sizes() == golden_tensor(exp, "img_psi1.0_const").sizes());
    CHECK(torch::isfinite(r1).all().item<bool>());
    CHECK(max_abs_diff(r1, r2) > 1e-3);

    if (m.D) CHECK(max_abs_diff(m.D->forward(golden_tensor(exp, "img_psi1.0_const"), {}), golden_tensor(exp, "D_logits")) <= kImgTol);
    if (m.G) CHECK(max_abs_diff(m.G->forward(z, {}, 1.0), golden_tensor(exp, "G_img_psi1.0_const")) <= kImgTol);
}
}  // namespace

TEST_CASE("golden: reference .pkl snapshots load and match the reference outputs") {
    for (const std::string name : {"tiny32", "gray16"}) {
        const Model m = load_model(lktest::data_path("golden/" + name + ".pkl"));
        CHECK(m.format == "stylegan2-ada pickle");
        REQUIRE(m.G);
        REQUIRE(m.D);
        REQUIRE(m.augment_p);
        CHECK(*m.augment_p == doctest::Approx(0.123).epsilon(1e-6));
        CHECK(m.training_set_kwargs.find("ImageFolderDataset") != std::string::npos);
        check_case(name, m);
    }
}

TEST_CASE("golden: bare G_ema .safetensors (architecture inferred from shapes) matches") {
    for (const std::string name : {"tiny32", "gray16"}) {
        const Model m = load_model(lktest::data_path("golden/" + name + ".G_ema.safetensors"));
        CHECK(m.format == "bare state dict");
        CHECK_FALSE(m.D);
        check_case(name, m);
    }
}

TEST_CASE("golden: .pkl -> latentkit .safetensors -> load gives identical outputs") {
    lktest::TempDir dir;
    for (const std::string name : {"tiny32", "gray16"}) {
        const Model original = load_model(lktest::data_path("golden/" + name + ".pkl"));
        const std::string out = dir / (name + ".safetensors");
        save_model(out, original);
        const Model m = load_model(out);
        CHECK(m.format == "latentkit safetensors");
        REQUIRE(m.augment_p);
        CHECK(*m.augment_p == doctest::Approx(*original.augment_p));
        CHECK(m.training_set_kwargs == original.training_set_kwargs);
        CHECK(m.G_ema->config.to_kwargs_json() == original.G_ema->config.to_kwargs_json());
        check_case(name, m);

        save_model(dir / "g_ema_only.safetensors", original, SaveOptions{true});
        const Model small = load_model(dir / "g_ema_only.safetensors");
        CHECK(small.G_ema);
        CHECK_FALSE(small.G);
        CHECK_FALSE(small.D);
    }
}

TEST_CASE("golden: the case configurations are recovered from _init_kwargs") {
    const Model t = load_model(lktest::data_path("golden/tiny32.pkl"));
    const auto& c = t.G_ema->config;
    CHECK(c.z_dim == 64);
    CHECK(c.w_dim == 64);
    CHECK(c.img_resolution == 32);
    CHECK(c.num_ws() == 8);
    CHECK(c.synthesis.channel_base == 1024);
    CHECK(c.synthesis.channel_max == 64);
    CHECK(c.synthesis.conv_clamp == 256.0);
    CHECK(t.D->config.mbstd_group_size == 4);
    const Model g = load_model(lktest::data_path("golden/gray16.pkl"));
    CHECK(g.G_ema->config.img_channels == 1);
    CHECK(g.G_ema->config.mapping.num_layers == 3);
    CHECK(g.G_ema->config.num_ws() == 6);
    CHECK(g.D->config.mbstd_group_size == 1);
}

TEST_CASE("golden: the same snapshot re-pickled with protocols 2 and 5 loads and matches") {
    for (const std::string file : {"gray16_protocol2.pkl", "gray16_protocol5.pkl"}) {
        const Model m = load_model(lktest::data_path(file));
        REQUIRE(m.G);
        REQUIRE(m.D);
        check_case("gray16", m);
    }
}

TEST_CASE("golden: on CUDA (float32, TF32 off) the networks match the reference outputs") {
    if (!torch::cuda::is_available()) {
        LKTEST_SKIP("no CUDA device: nothing to compare");
    }
    // cuDNN's TF32 convolutions round to 10 mantissa bits; the reference numbers need full float32.
    // The settings come back however the case ends (a failed REQUIRE throws).
    struct NoTf32 {
        at::Context& ctx = at::globalContext();
        const bool conv = ctx.allowTF32CuDNN(), matmul = ctx.allowTF32CuBLAS();
        NoTf32() {
            ctx.setAllowTF32CuDNN(false);
            ctx.setAllowTF32CuBLAS(false);
        }
        ~NoTf32() {
            ctx.setAllowTF32CuDNN(conv);
            ctx.setAllowTF32CuBLAS(matmul);
        }
    } const no_tf32;
    const torch::Device cuda(torch::kCUDA);
    // Other kernels and summation orders than the CPU's: an order of magnitude more room.
    constexpr double kCudaWsTol = 1e-4, kCudaImgTol = 1e-3;
    for (const std::string name : {"tiny32", "gray16"}) {
        INFO("case " << name);
        const std::string exp = name + ".expected.safetensors";
        const Model m = load_model(lktest::data_path("golden/" + name + ".pkl"));
        REQUIRE(m.G_ema);
        REQUIRE(m.D);
        Generator& G = *m.G_ema;
        G.to(cuda);
        m.D->to(cuda);
        torch::NoGradGuard no_grad;
        const torch::Tensor z = z_from_seeds(kSeeds, G.config.z_dim).to(cuda);
        const torch::Tensor ws1 = map_to_ws(G, z, {}, 1.0);
        CHECK(ws1.is_cuda());
        CHECK(max_abs_diff(ws1, golden_tensor(exp, "ws_psi1.0")) <= kCudaWsTol);
        CHECK(max_abs_diff(map_to_ws(G, z, {}, 0.5, 2), golden_tensor(exp, "ws_psi0.5_cutoff2")) <= kCudaWsTol);
        SynthesisOptions constant, none;
        none.noise_mode = NoiseMode::none;
        const torch::Tensor img = G.synthesis->forward(golden_tensor(exp, "ws_psi1.0").to(cuda), constant);
        CHECK(img.is_cuda());
        CHECK(max_abs_diff(img, golden_tensor(exp, "img_psi1.0_const")) <= kCudaImgTol);
        CHECK(max_abs_diff(G.synthesis->forward(golden_tensor(exp, "ws_psi1.0").to(cuda), none), golden_tensor(exp, "img_psi1.0_nonoise")) <= kCudaImgTol);
        CHECK(max_abs_diff(G.forward(z, {}, 1.0), golden_tensor(exp, "img_psi1.0_const")) <= kCudaImgTol);
        CHECK(max_abs_diff(m.D->forward(golden_tensor(exp, "img_psi1.0_const").to(cuda), {}), golden_tensor(exp, "D_logits")) <= kCudaImgTol);
    }
}

TEST_CASE("golden: on CUDA an fp16 channels-last last block still returns contiguous float32 images, as the reference") {
    if (!torch::cuda::is_available()) {
        LKTEST_SKIP("no CUDA device: fp16 blocks run on CUDA only");
    }
    GeneratorConfig gc;
    gc.z_dim = gc.w_dim = 32;
    gc.img_resolution = 32;
    gc.img_channels = 3;
    gc.mapping.num_layers = 2;
    gc.synthesis.channel_base = 512;
    gc.synthesis.channel_max = 32;
    gc.synthesis.num_fp16_res = 2;
    gc.synthesis.conv_clamp = 256;
    gc.synthesis.fp16_channels_last = true;
    gc.validate();
    Generator G(gc);
    G.to(torch::Device(torch::kCUDA));
    torch::NoGradGuard no_grad;
    const torch::Tensor img = G.forward(torch::randn({2, 32}).cuda(), {}, 1.0);
    CHECK(img.element_size() == 4);
    CHECK(img.is_floating_point());
    CHECK(img.is_contiguous());
}
