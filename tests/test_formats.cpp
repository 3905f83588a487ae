// The other StyleGAN2-family files people have (tests/data/formats/README.md): TensorFlow-era pickles,
// stylegan3-repo snapshots, rosinality checkpoints; from the original file and from converted safetensors.
#include "test_util.h"

#include <array>

#include "latentkit/atomic_file.h"
#include "latentkit/error.h"
#include "latentkit/latent.h"
#include "latentkit/model_io.h"
#include "latentkit/networks.h"
#include "latentkit/zip.h"

using namespace latentkit;
using lktest::max_abs_diff;
using namespace std::string_literals;

namespace {
constexpr double kWsTol = 1e-5, kImgTol = 1e-4;
const std::vector<uint32_t> kSeeds{0, 1, 42, 1000};

// Cases are "NAME" (formats/) or "variants/NAME" (tests/data/variants: other configurations).
std::string expected_file(const std::string& name) {
    return name.find('/') == std::string::npos ? "../formats/" + name + ".expected.safetensors" : "../" + name + ".expected.safetensors";
}

torch::Tensor expected(const std::string& name, const std::string& tensor) { return lktest::golden_tensor(expected_file(name), tensor); }

// The labels of a conditional case, undefined for an unconditional one.
torch::Tensor expected_labels(const std::string& name) {
    const TensorData* c = lktest::golden(expected_file(name)).find("c");
    return c && c->numel() > 0 ? expected(name, "c") : torch::Tensor();
}

std::string format_file(const std::string& name) { return lktest::data_path("formats/" + name); }

// Mapping, truncation, cutoff, images in each noise mode, D logits and the training G of one case.
void check_stylegan2_case(const std::string& name, const Model& m) {
    INFO("case " << name << " from " << m.path);
    REQUIRE(m.G_ema);
    REQUIRE(m.D);
    Generator& G = *m.G_ema;
    torch::NoGradGuard no_grad;
    const torch::Tensor z = z_from_seeds(kSeeds, G.config.z_dim), c = expected_labels(name);
    CHECK(max_abs_diff(z, expected(name, "z")) <= kWsTol);
    const torch::Tensor ws1 = map_to_ws(G, z, c, 1.0);
    CHECK(max_abs_diff(ws1, expected(name, "ws_psi1.0")) <= kWsTol);
    CHECK(max_abs_diff(map_to_ws(G, z, c, 0.7), expected(name, "ws_psi0.7")) <= kWsTol);
    SynthesisOptions constant, none;
    none.noise_mode = NoiseMode::none;
    CHECK(max_abs_diff(G.synthesis->forward(expected(name, "ws_psi1.0"), constant), expected(name, "img_psi1.0_const")) <= kImgTol);
    CHECK(max_abs_diff(G.synthesis->forward(expected(name, "ws_psi0.7"), constant), expected(name, "img_psi0.7_const")) <= kImgTol);
    CHECK(max_abs_diff(G.forward(z, c, 1.0), expected(name, "img_psi1.0_const")) <= kImgTol);
    CHECK(max_abs_diff(m.D->forward(expected(name, "img_psi1.0_const"), c), expected(name, "D_logits")) <= kImgTol);
    if (name.find("rosi") != std::string::npos) {
        CHECK(max_abs_diff(G.mapping->w_avg, expected(name, "latent_avg")) <= kWsTol);
        return;  // rosinality's cases have no cutoff, no-noise or training-G outputs
    }
    CHECK(max_abs_diff(map_to_ws(G, z, c, 0.5, 2), expected(name, "ws_psi0.5_cutoff2")) <= kWsTol);
    CHECK(max_abs_diff(G.synthesis->forward(expected(name, "ws_psi1.0"), none), expected(name, "img_psi1.0_nonoise")) <= kImgTol);
    REQUIRE(m.G);
    CHECK(max_abs_diff(m.G->forward(z, c, 1.0), expected(name, "G_img_psi1.0")) <= kImgTol);
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

    // Architecture and activation are enums, written and read by their reference names.
    GeneratorConfig c = tf.G_ema->config;
    c.synthesis.activation = Activation::swish;
    c.synthesis.architecture = Architecture::resnet;
    const std::string text = c.to_kwargs_json();
    CHECK(text.find("\"swish\"") != std::string::npos);
    CHECK(text.find("\"resnet\"") != std::string::npos);
    const GeneratorConfig back = GeneratorConfig::from_kwargs_json(text, "c.json");
    CHECK(back.synthesis.activation == Activation::swish);
    CHECK(back.synthesis.architecture == Architecture::resnet);
    std::string bad = text;
    bad.replace(bad.find("\"resnet\""), 8, "\"resnot\"");
    CHECK_THROWS_WITH_AS(GeneratorConfig::from_kwargs_json(bad, "c.json"), doctest::Contains("c.json"), ModelFormatError);
}

TEST_CASE("formats: newer writers: protocol 5 with numpy _frombuffer arrays, numpy 2 names, PyTorch 2.x module attributes") {
    // numpy's own protocol-5 arrays (in-band BYTEARRAY8 buffers) in a TensorFlow-era pickle.
    check_stylegan2_case("tf_tiny32", load_model(lktest::data_path("tf_tiny32_protocol5.pkl")));
    // numpy._core.* globals and the hook dicts PyTorch 2.x modules carry, in a stylegan3-repo snapshot.
    const Model m = load_model(lktest::data_path("sg3sg2_32_protocol5_numpy2_torch2.pkl"));
    CHECK(m.format == "stylegan3-repo pickle");
    check_stylegan2_case("sg3sg2_32", m);
}

TEST_CASE("formats: legacy torch.save files and bare state dicts saved by torch.save") {
    const Model legacy = load_model(lktest::data_path("rosi_32_legacy.pt"));  // PyTorch < 1.6 format
    CHECK(legacy.format == "rosinality checkpoint");
    check_stylegan2_case("rosi_32", legacy);

    const Model sd = load_model(lktest::data_path("tiny32_G_ema_state_dict.pt"));
    CHECK(sd.format == "torch.save state dict");
    torch::NoGradGuard no_grad;
    const std::string exp = "tiny32.expected.safetensors";
    CHECK(max_abs_diff(sd.G_ema->synthesis->forward(lktest::golden_tensor(exp, "ws_psi1.0")), lktest::golden_tensor(exp, "img_psi1.0_const")) <=
          kImgTol);
}

TEST_CASE("formats: damaged and unexpected files get a one-line error naming the file and the problem") {
    auto refused = [](const std::string& path, const std::string& what) {
        INFO(path);
        try {
            load_model(path);
            FAIL("loaded");
        } catch (const Error& e) {
            const std::string message = e.what();
            CHECK(message.find(path) == 0);
            CHECK(message.find(what) != std::string::npos);
            CHECK(message.find('\n') == std::string::npos);
        }
    };
    const std::string h = lktest::data_path("hostile/");
    refused(h + "tf_wrong_shape.pkl", "TensorFlow variable 'synthesis/8x8/Conv0_up/weight' gives shape [31, 32, 3, 3]");
    refused(h + "tf_unknown_kwarg.pkl", "unknown TensorFlow kwarg 'fancy_new_option'");
    refused(h + "tf_version3.pkl", "version 3 is older than 4");
    refused(h + "rosi_args_tensor.pt", "args.size holds a tensor, not plain data");
    refused(h + "rosi_args_size.pt", "args.size is 64, but the networks' tensors say 32");

    lktest::TempDir dir;
    {  // a checkpoint with one storage left out of the archive
        const ZipReader zip(format_file("rosi_32.pt"));
        ZipWriter out(dir / "missing.pt");
        for (size_t k = 0; k < zip.entries().size(); ++k)
            if (zip.entries()[k].name != "rosi_32/data/5") out.add(zip.entries()[k].name, zip.read(k));
        out.finish();
    }
    refused(dir / "missing.pt", "storage rosi_32/data/5 is missing from the archive");
    const std::string whole = read_file(format_file("rosi_32.pt"));
    lktest::write_bytes(dir / "cut.pt", whole.substr(0, whole.size() / 2));
    refused(dir / "cut.pt", "truncated");
    {  // a torch.save file of something else: what it holds is named
        ZipWriter out(dir / "other.pt");
        out.add("archive/data.pkl", "\x80\x02}q\x00(X\x07\x00\x00\x00weightsK\x01X\x04\x00\x00\x00stepK\x07u."s);
        out.finish();
    }
    refused(dir / "other.pt", "a torch.save file holding a dict with keys 'weights', 'step'");
    {  // a zip that is not a torch.save file at all
        ZipWriter out(dir / "dataset.zip");
        out.add("dataset.json", "{}");
        out.finish();
    }
    refused(dir / "dataset.zip", "not a torch.save file");
}

TEST_CASE("formats: other configurations of each kind: conditional, resnet/orig/skip, other widths, no latent_avg") {
    const Model tf = load_model(lktest::data_path("variants/tf_cond16.pkl"));
    CHECK(tf.G_ema->config.c_dim == 3);
    CHECK(tf.G_ema->config.synthesis.architecture == Architecture::resnet);
    CHECK(tf.D->config.architecture == Architecture::skip);
    check_stylegan2_case("variants/tf_cond16", tf);

    const Model sg3 = load_model(lktest::data_path("variants/sg3sg2_cond16.pkl"));
    CHECK(sg3.format == "stylegan3-repo pickle");
    CHECK(sg3.G_ema->config.synthesis.architecture == Architecture::orig);
    CHECK(sg3.G_ema->config.synthesis.fused_modconv_default == "true");
    check_stylegan2_case("variants/sg3sg2_cond16", sg3);

    const Model rosi = load_model(lktest::data_path("variants/rosi_64.pt"));
    CHECK_FALSE(rosi.G);
    CHECK(rosi.G_ema->config.img_resolution == 64);
    CHECK(rosi.G_ema->config.mapping.num_layers == 4);
    REQUIRE(rosi.notes.size() == 1);
    CHECK(rosi.notes[0].find("no latent_avg") != std::string::npos);
    check_stylegan2_case("variants/rosi_64", rosi);
    lktest::TempDir dir;  // the note survives conversion
    save_model(dir / "r.safetensors", rosi);
    CHECK(load_model(dir / "r.safetensors").notes == rosi.notes);
}

namespace {
// A StyleGAN3 case: mapping, truncation, images, the gen_images.py transform, D logits, the training G.
// `moved` holds gen_images.py's translate and rotate of the case's transformed image.
void check_stylegan3_case(const std::string& name, const Model& m, std::array<double, 3> moved = {0.125, -0.25, 17.2}) {
    INFO("case " << name << " from " << m.path);
    REQUIRE(m.G_ema);
    REQUIRE(m.G);
    REQUIRE(m.D);
    Generator& G = *m.G_ema;
    CHECK(G.config.family == GeneratorFamily::stylegan3);
    torch::NoGradGuard no_grad;
    const torch::Tensor z = z_from_seeds(kSeeds, G.config.z_dim), c = expected_labels(name);
    CHECK(max_abs_diff(z, expected(name, "z")) <= kWsTol);
    CHECK(max_abs_diff(map_to_ws(G, z, c, 1.0), expected(name, "ws_psi1.0")) <= kWsTol);
    CHECK(max_abs_diff(map_to_ws(G, z, c, 0.7), expected(name, "ws_psi0.7")) <= kWsTol);
    CHECK(max_abs_diff(map_to_ws(G, z, c, 0.5, 2), expected(name, "ws_psi0.5_cutoff2")) <= kWsTol);
    CHECK(max_abs_diff(G.synthesis->forward(expected(name, "ws_psi1.0")), expected(name, "img_psi1.0")) <= kImgTol);
    CHECK(max_abs_diff(G.synthesis->forward(expected(name, "ws_psi0.7")), expected(name, "img_psi0.7")) <= kImgTol);
    CHECK(max_abs_diff(G.forward(z, c, 1.0), expected(name, "img_psi1.0")) <= kImgTol);
    SynthesisOptions transformed;
    transformed.input_transform = stylegan3_transform(moved[0], moved[1], moved[2]);
    CHECK(max_abs_diff(G.synthesis->forward(expected(name, "ws_psi0.7"), transformed), expected(name, "img_psi0.7_transformed")) <=
          kImgTol);
    CHECK(max_abs_diff(m.D->forward(expected(name, "img_psi1.0"), c), expected(name, "D_logits")) <= kImgTol);
    CHECK(max_abs_diff(m.G->forward(z, c, 1.0), expected(name, "G_img_psi1.0")) <= kImgTol);
}
}  // namespace

TEST_CASE("formats: StyleGAN3-T and -R snapshots match the stylegan3 repo, also converted to safetensors") {
    lktest::TempDir dir;
    for (const std::string name : {"sg3t_32", "sg3r_32"}) {
        const Model m = load_model(format_file(name + ".pkl"));
        CHECK(m.format == "stylegan3-repo pickle");
        CHECK(m.G_ema->config.num_ws() == 16);
        check_stylegan3_case(name, m);
        save_model(dir / (name + ".safetensors"), m);
        const Model converted = load_model(dir / (name + ".safetensors"));
        CHECK(converted.G_ema->config.to_kwargs_json() == m.G_ema->config.to_kwargs_json());
        check_stylegan3_case(name, converted);
    }
    const Model r = load_model(format_file("sg3r_32.pkl"));
    CHECK(r.G_ema->config.stylegan3.use_radial_filters);
    CHECK(r.G_ema->config.stylegan3.conv_kernel == 1);
    CHECK(r.D->config.conv_clamp == 256.0);  // the stylegan3 repo's discriminator defaults
}

TEST_CASE("formats: a conditional StyleGAN3-R at 64x64 written with protocol 5, and latentkit's filter design") {
    const Model m = load_model(lktest::data_path("variants/sg3r_cond64.pkl"));
    CHECK(m.G_ema->config.c_dim == 4);
    CHECK(m.G_ema->config.stylegan3.num_layers == 8);
    check_stylegan3_case("variants/sg3r_cond64", m, {-0.2, 0.1, 0.3 * 180 / 3.14159265358979323846});

    // A network built from its configuration alone designs its filters as the stylegan3 repo (scipy) does.
    for (const std::string kind : {"t", "r"}) {
        GeneratorConfig c = m.G_ema->config;
        c.c_dim = 0;
        c.stylegan3.conv_kernel = kind == "t" ? 3 : 1;
        c.stylegan3.use_radial_filters = kind == "r";
        Generator G(c);
        int compared = 0;
        for (const auto& b : G.synthesis->named_buffers(true)) {
            if (b.key().find("_filter") == std::string::npos) continue;
            INFO(kind << " " << b.key());
            CHECK(max_abs_diff(b.value(), expected("variants/sg3_filters", kind + "." + b.key())) <= 1e-6);
            ++compared;
        }
        CHECK(compared == static_cast<int>(lktest::golden(expected_file("variants/sg3_filters")).tensors.size() / 2));
    }
}

TEST_CASE("formats: StyleGAN3 on CUDA: float32 matches the reference, fp16 layers stay close") {
    if (!torch::cuda::is_available()) {
        LKTEST_SKIP("no CUDA device: nothing to compare");
    }
    const torch::Device cuda(torch::kCUDA);
    torch::NoGradGuard no_grad;
    for (const std::string name : {"sg3t_32", "sg3r_32"}) {
        INFO(name);
        const Model m = load_model(format_file(name + ".pkl"));
        m.G_ema->to(cuda);
        SynthesisOptions fp32;
        fp32.force_fp32 = true;
        const torch::Tensor ws = expected(name, "ws_psi1.0").to(cuda), ref = expected(name, "img_psi1.0");
        CHECK(max_abs_diff(m.G_ema->synthesis->forward(ws, fp32), ref) <= 1e-3);
        const torch::Tensor half = m.G_ema->synthesis->forward(ws);  // num_fp16_res layers in fp16, as the reference on CUDA
        CHECK(half.is_floating_point());
        CHECK(half.element_size() == 4);
        CHECK(max_abs_diff(half, ref) <= 5e-2 * ref.abs().max().item<double>() + 1e-3);
    }
}
