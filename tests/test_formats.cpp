// The other StyleGAN2-family files people have (tests/data/formats/README.md): TensorFlow-era pickles,
// stylegan3-repo snapshots, rosinality checkpoints; from the original file and from converted safetensors.
#include "test_util.h"

#include "latentkit/atomic_file.h"
#include "latentkit/error.h"
#include "latentkit/latent.h"
#include "latentkit/model_io.h"
#include "latentkit/networks.h"
#include "latentkit/zip.h"

using namespace latentkit;
using lktest::max_abs_diff;

namespace {
constexpr double kWsTol = 1e-5, kImgTol = 1e-4;
const std::vector<uint32_t> kSeeds{0, 1, 42, 1000};

torch::Tensor expected(const std::string& name, const std::string& tensor) {
    return lktest::golden_tensor("../formats/" + name + ".expected.safetensors", tensor);
}

std::string format_file(const std::string& name) { return lktest::data_path("formats/" + name); }

// Mapping, truncation, cutoff, images in each noise mode, D logits and the training G of one case.
void check_stylegan2_case(const std::string& name, const Model& m) {
    INFO("case " << name << " from " << m.path);
    REQUIRE(m.G_ema);
    REQUIRE(m.D);
    Generator& G = *m.G_ema;
    torch::NoGradGuard no_grad;
    const torch::Tensor z = z_from_seeds(kSeeds, G.config.z_dim);
    CHECK(max_abs_diff(z, expected(name, "z")) <= kWsTol);
    const torch::Tensor ws1 = map_to_ws(G, z, {}, 1.0);
    CHECK(max_abs_diff(ws1, expected(name, "ws_psi1.0")) <= kWsTol);
    CHECK(max_abs_diff(map_to_ws(G, z, {}, 0.7), expected(name, "ws_psi0.7")) <= kWsTol);
    SynthesisOptions constant, none;
    none.noise_mode = NoiseMode::none;
    CHECK(max_abs_diff(G.synthesis->forward(expected(name, "ws_psi1.0"), constant), expected(name, "img_psi1.0_const")) <= kImgTol);
    CHECK(max_abs_diff(G.synthesis->forward(expected(name, "ws_psi0.7"), constant), expected(name, "img_psi0.7_const")) <= kImgTol);
    CHECK(max_abs_diff(G.forward(z, {}, 1.0), expected(name, "img_psi1.0_const")) <= kImgTol);
    CHECK(max_abs_diff(m.D->forward(expected(name, "img_psi1.0_const"), {}), expected(name, "D_logits")) <= kImgTol);
    if (name.rfind("rosi", 0) == 0) {
        CHECK(max_abs_diff(G.mapping->w_avg, expected(name, "latent_avg")) == 0.0);
        return;  // rosinality's cases have no cutoff, no-noise or training-G outputs
    }
    CHECK(max_abs_diff(map_to_ws(G, z, {}, 0.5, 2), expected(name, "ws_psi0.5_cutoff2")) <= kWsTol);
    CHECK(max_abs_diff(G.synthesis->forward(expected(name, "ws_psi1.0"), none), expected(name, "img_psi1.0_nonoise")) <= kImgTol);
    REQUIRE(m.G);
    CHECK(max_abs_diff(m.G->forward(z, {}, 1.0), expected(name, "G_img_psi1.0")) <= kImgTol);
}

struct Case {
    const char* name;
    const char* file;
    const char* format;
};
const Case kCases[] = {{"tf_tiny32", "tf_tiny32.pkl", "TensorFlow StyleGAN2 pickle"},
                       {"sg3sg2_32", "sg3sg2_32.pkl", "stylegan3-repo pickle"},
                       {"rosi_32", "rosi_32.pt", "rosinality checkpoint"}};
}  // namespace

TEST_CASE("formats: TensorFlow, stylegan3-repo and rosinality files match their reference outputs") {
    for (const Case& c : kCases) {
        const Model m = load_model(format_file(c.file));
        CHECK(m.format == c.format);
        CHECK_FALSE(m.config_source.empty());
        REQUIRE(m.augment_p.has_value() == (std::string(c.name) != "tf_tiny32"));
        check_stylegan2_case(c.name, m);
    }
}

TEST_CASE("formats: each kind converted to latentkit safetensors gives the same outputs") {
    lktest::TempDir dir;
    for (const Case& c : kCases) {
        const Model original = load_model(format_file(c.file));
        save_model(dir / (std::string(c.name) + ".safetensors"), original);
        const Model m = load_model(dir / (std::string(c.name) + ".safetensors"));
        CHECK(m.format == "latentkit safetensors");
        CHECK(m.converted_from == c.format);
        CHECK(m.G_ema->config.to_kwargs_json() == original.G_ema->config.to_kwargs_json());
        check_stylegan2_case(c.name, m);
    }
}

TEST_CASE("formats: the configurations come from each file's own rules") {
    const Model tf = load_model(format_file("tf_tiny32.pkl"));
    CHECK(tf.G_ema->config.synthesis.channel_base == 1024);  // fmap_base 512 * 2
    CHECK(tf.G_ema->config.synthesis.channel_max == 32);
    CHECK(tf.G_ema->config.mapping.w_avg_beta == 0.995);
    CHECK(tf.D->config.mbstd_group_size == 4);

    const Model sg3 = load_model(format_file("sg3sg2_32.pkl"));
    const auto& g = sg3.G_ema->config;
    CHECK(g.synthesis.num_fp16_res == 4);  // the stylegan3 repo's defaults where the file says nothing
    CHECK(g.synthesis.conv_clamp == 256.0);
    CHECK(g.mapping.w_avg_beta == 0.998);
    CHECK(g.synthesis.fused_modconv_default == "inference_only");
    CHECK(sg3.D->config.num_fp16_res == 4);
    CHECK(sg3.D->config.conv_clamp == 256.0);

    const Model rosi = load_model(format_file("rosi_32.pt"));
    CHECK_FALSE(rosi.G_ema->config.synthesis.conv_clamp.has_value());
    CHECK(rosi.G_ema->config.channels_at(32) == 32);
    CHECK(rosi.D->config.mbstd_group_size == 4);
    CHECK(rosi.notes.empty());  // the file has latent_avg
}
