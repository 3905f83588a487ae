// Latent-space operations.
#include "test_util.h"

#include "latentkit/error.h"
#include "latentkit/latent.h"
#include "latentkit/model_io.h"
#include "latentkit/networks.h"
#include "ops.h"
#include "torch_convert.h"

using namespace latentkit;
using lktest::max_abs_diff;

TEST_CASE("lerp and slerp: exact endpoints, slerp stays on the sphere") {
    torch::manual_seed(3);
    const torch::Tensor a = torch::randn({4, 64}), b = torch::randn({4, 64});
    CHECK(max_abs_diff(lerp(a, b, 0.0), a) == 0.0);
    CHECK(max_abs_diff(lerp(a, b, 1.0), b) <= 1e-6);
    CHECK(max_abs_diff(lerp(a, b, 0.25), a * 0.75 + b * 0.25) <= 1e-6);
    CHECK(max_abs_diff(slerp(a, b, 0.0), a) <= 1e-5);
    CHECK(max_abs_diff(slerp(a, b, 1.0), b) <= 1e-5);
    const torch::Tensor an = a / a.norm(2, -1, true), bn = b / b.norm(2, -1, true);
    for (double t : {0.1, 0.5, 0.9}) CHECK(max_abs_diff(slerp(an, bn, t).norm(2, -1), torch::ones({4})) <= 1e-5);
    // the midpoint of two unit vectors is their normalised sum
    const torch::Tensor mid = slerp(an, bn, 0.5);
    CHECK(max_abs_diff(mid, (an + bn) / (an + bn).norm(2, -1, true)) <= 1e-5);
    // parallel vectors fall back to lerp instead of dividing by zero
    CHECK(max_abs_diff(slerp(a, a * 2, 0.5), a * 1.5) <= 1e-5);
}

TEST_CASE("style mixing, broadcast and truncation") {
    const torch::Tensor ws = torch::zeros({2, 6, 3}), src = torch::ones({2, 6, 3});
    const torch::Tensor m = mix_layers(ws, src, {1, 4});
    CHECK(m.select(1, 1).sum().item<float>() == 6.0f);
    CHECK(m.select(1, 4).sum().item<float>() == 6.0f);
    CHECK(m.sum().item<float>() == 12.0f);
    CHECK_THROWS_AS(mix_layers(ws, src, {6}), ArgumentError);
    CHECK_THROWS_AS(mix_layers(ws, torch::ones({2, 5, 3}), {0}), ShapeError);
    CHECK(broadcast_w(torch::ones({2, 3}), 6).sizes() == ws.sizes());
    const torch::Tensor avg = torch::full({3}, 2.0);
    const torch::Tensor t = truncate(src, avg, 0.5, 2);
    CHECK(t.select(1, 0).mean().item<float>() == doctest::Approx(1.5));
    CHECK(t.select(1, 5).mean().item<float>() == doctest::Approx(1.0));
}

TEST_CASE("class labels: one-hot for conditional models, errors otherwise") {
    CHECK_FALSE(class_labels(0, std::nullopt, 3).defined());
    CHECK_THROWS_AS(class_labels(0, 1, 3), ArgumentError);
    CHECK_THROWS_AS(class_labels(5, std::nullopt, 3), ArgumentError);
    CHECK_THROWS_AS(class_labels(5, 5, 3), ArgumentError);
    const torch::Tensor c = class_labels(5, 2, 3);
    CHECK(c.sizes() == torch::IntArrayRef({3, 5}));
    CHECK(c.sum().item<float>() == 3.0f);
    CHECK(c[1][2].item<float>() == 1.0f);
}

TEST_CASE("reference 8-bit conversion") {
    const torch::Tensor img = torch::tensor({-2.0f, -1.0f, 0.0f, 0.5f, 1.0f, 3.0f}).reshape({1, 1, 2, 3});
    const torch::Tensor u8 = to_uint8_nhwc(img);
    CHECK(u8.sizes() == torch::IntArrayRef({1, 2, 3, 1}));
    const std::vector<int> expected{0, 0, 128, 191, 255, 255};
    for (int k = 0; k < 6; ++k) CHECK(u8.flatten()[k].item<int>() == expected[static_cast<size_t>(k)]);

    // The device-keeping variant (the viewer's GPU path) does the same arithmetic, from fp16 too.
    const torch::Tensor rgb = torch::rand({2, 3, 5, 4}) * 2.4 - 1.2;
    const torch::Tensor kept = to_uint8_nhwc(rgb, true);
    CHECK(kept.device() == rgb.device());
    CHECK(kept.sizes() == torch::IntArrayRef({2, 5, 4, 3}));
    CHECK(torch::equal(kept, to_uint8_nhwc(rgb)));
    CHECK(torch::equal(to_uint8_nhwc(rgb.to(torch::kHalf), true), to_uint8_nhwc(rgb.to(torch::kHalf))));
    if (torch::cuda::is_available()) CHECK(torch::equal(to_uint8_nhwc(rgb.to(torch::kCUDA), true).cpu(), to_uint8_nhwc(rgb)));
}

TEST_CASE("conditional networks: label embedding in G, cmap projection in D") {
    GeneratorConfig gc;
    gc.z_dim = 8;
    gc.c_dim = 3;
    gc.w_dim = 8;
    gc.img_resolution = 8;
    gc.mapping.num_layers = 2;
    gc.synthesis.channel_base = 64;
    gc.synthesis.channel_max = 16;
    Generator G(gc);
    G.eval();
    torch::NoGradGuard no_grad;
    const torch::Tensor z = z_from_seeds({1, 1}, 8);
    const torch::Tensor c0 = class_labels(3, 0, 2), c1 = class_labels(3, 1, 2);
    CHECK(max_abs_diff(G.forward(z, c0), G.forward(z, c0)) == 0.0);
    CHECK(max_abs_diff(G.forward(z, c0), G.forward(z, c1)) > 1e-4);
    CHECK_THROWS_AS(G.forward(z, {}), ShapeError);

    DiscriminatorConfig dc;
    dc.c_dim = 3;
    dc.img_resolution = 8;
    dc.channel_base = 64;
    dc.channel_max = 16;
    dc.mbstd_group_size = 2;
    Discriminator D(dc);
    const torch::Tensor img = G.forward(z, c0);
    const torch::Tensor logits0 = D.forward(img, c0), logits1 = D.forward(img, c1);
    CHECK(logits0.sizes() == torch::IntArrayRef({2, 1}));
    CHECK(max_abs_diff(logits0, logits1) > 1e-6);
    CHECK_THROWS_AS(D.forward(torch::zeros({3, 3, 8, 8}), class_labels(3, 0, 3)), ShapeError);
}

TEST_CASE("every architecture builds, runs forward and backward, and round-trips through a file") {
    lktest::TempDir dir;
    for (const Architecture a : {Architecture::orig, Architecture::skip, Architecture::resnet}) {
        const std::string arch = option_name(a);
        INFO(arch);
        GeneratorConfig gc;
        gc.z_dim = 8;
        gc.w_dim = 8;
        gc.img_resolution = 16;
        gc.img_channels = 3;
        gc.mapping.num_layers = 2;
        gc.synthesis.channel_base = 128;
        gc.synthesis.channel_max = 16;
        gc.synthesis.architecture = a;
        gc.synthesis.conv_clamp = 256;
        DiscriminatorConfig dc;
        dc.img_resolution = 16;
        dc.channel_base = 128;
        dc.channel_max = 16;
        dc.architecture = a;
        dc.mbstd_group_size = 2;
        dc.freeze_layers = 2;
        Model m;
        m.G_ema = std::make_shared<Generator>(gc);
        m.D = std::make_shared<Discriminator>(dc);
        const torch::Tensor z = z_from_seeds({1, 2}, 8);
        m.G_ema->train();
        torch::Tensor img = m.G_ema->forward(z, {});
        CHECK(img.sizes() == torch::IntArrayRef({2, 3, 16, 16}));
        m.D->forward(img, {}).sum().backward();
        for (const auto& p : m.G_ema->parameters()) CHECK(p.grad().defined());
        CHECK(m.D->named_buffers().find("b16.fromrgb.weight") != nullptr);
        CHECK(m.D->named_parameters().find("b16.fromrgb.weight") == nullptr);
        CHECK(m.D->named_parameters().find("b16.conv1.weight") != nullptr);
        m.G_ema->eval();
        m.D->eval();
        save_model(dir / (arch + ".safetensors"), m);
        const Model back = load_model(dir / (arch + ".safetensors"));
        torch::NoGradGuard no_grad;
        CHECK(max_abs_diff(back.G_ema->forward(z, {}), m.G_ema->forward(z, {})) == 0.0);
        CHECK(max_abs_diff(back.D->forward(img.detach(), {}), m.D->forward(img.detach(), {})) == 0.0);
        CHECK(back.D->config.freeze_layers == 2);
        // a bare state dict of this generator infers the same architecture
        TensorFile bare;
        for (const auto& p : m.G_ema->named_parameters(true)) bare.tensors.emplace_back(p.key(), from_torch(p.value()));
        for (const auto& b : m.G_ema->named_buffers(true)) bare.tensors.emplace_back(b.key(), from_torch(b.value()));
        write_safetensors(dir / "bare.safetensors", bare);
        const Model inferred = load_model(dir / "bare.safetensors");
        CHECK(inferred.G_ema->config.to_kwargs_json() == m.G_ema->config.to_kwargs_json());
    }
}

TEST_CASE("synthesis: block outputs can be captured, lowest resolution first, without changing the image") {
    const latentkit::Model m = latentkit::load_model(lktest::data_path("golden/tiny32.pkl"));
    auto G = m.generator();
    torch::NoGradGuard no_grad;
    const torch::Tensor ws = lktest::golden_tensor("tiny32.expected.safetensors", "ws_psi1.0").narrow(0, 0, 2);
    std::vector<torch::Tensor> blocks;
    latentkit::SynthesisOptions so;
    so.block_outputs = &blocks;
    const torch::Tensor img = G->synthesis->forward(ws, so);
    REQUIRE(blocks.size() == 4);
    for (size_t k = 0; k < blocks.size(); ++k) {
        CHECK(blocks[k].size(0) == 2);
        CHECK(blocks[k].size(2) == (4 << k));
    }
    CHECK(lktest::max_abs_diff(img, G->synthesis->forward(ws)) < 1e-5);
}

TEST_CASE("ops: CPU convolutions with odd channel counts agree with double precision (oneDNN checked first)") {
    torch::manual_seed(5);
    const torch::Tensor f = ops::setup_filter({1, 3, 3, 1});
    for (int64_t channels : {33, 64, 65}) {
        INFO("input channels " << channels);
        const torch::Tensor x = torch::randn({4, channels, 4, 4}), w = torch::randn({8, channels, 3, 3});
        for (const auto& [up, down] : {std::pair<int64_t, int64_t>{1, 1}, {2, 1}, {1, 2}}) {
            const torch::Tensor y = ops::conv2d_resample(x, w, f, up, down, 1);
            const torch::Tensor ref = ops::conv2d_resample(x.to(torch::kDouble), w.to(torch::kDouble), f.to(torch::kDouble), up, down, 1);
            CHECK(max_abs_diff(y.to(torch::kDouble), ref) <= 1e-5 * ref.abs().max().item<double>());
        }
    }
}

TEST_CASE("ops: channels-last activations (fp16 blocks on CUDA) give the results of contiguous ones") {
    torch::manual_seed(3);
    const torch::Tensor f = ops::setup_filter({1, 3, 3, 1});
    const torch::Tensor x = torch::randn({2, 6, 8, 8});
    const torch::Tensor xl = x.contiguous(torch::MemoryFormat::ChannelsLast);
    REQUIRE(xl.is_contiguous(torch::MemoryFormat::ChannelsLast));
    REQUIRE_FALSE(xl.is_contiguous());
    auto same = [](const torch::Tensor& a, const torch::Tensor& b) {
        REQUIRE(a.sizes() == b.sizes());
        return max_abs_diff(a.contiguous(), b.contiguous());
    };
    const torch::Tensor b = torch::randn({6});
    CHECK(same(ops::bias_act(x, b, Activation::lrelu, std::nullopt, 256.0), ops::bias_act(xl, b, Activation::lrelu, std::nullopt, 256.0)) == 0);
    CHECK(same(ops::upfirdn2d(x, f, 2, 1, {2, 1, 2, 1}), ops::upfirdn2d(xl, f, 2, 1, {2, 1, 2, 1})) < 1e-5);
    CHECK(same(ops::downsample2d(x, f), ops::downsample2d(xl, f)) < 1e-5);
    const torch::Tensor w = torch::randn({5, 6, 3, 3});
    for (const auto& [up, down] : {std::pair<int64_t, int64_t>{1, 1}, {2, 1}, {1, 2}})
        CHECK(same(ops::conv2d_resample(x, w, f, up, down, 1), ops::conv2d_resample(xl, w, f, up, down, 1)) < 1e-4);
    const torch::Tensor styles = torch::randn({2, 6});
    for (bool fused : {false, true})
        for (int64_t up : {1, 2})
            CHECK(same(ops::modulated_conv2d(x, w, styles, {}, up, 1, f, true, true, fused),
                       ops::modulated_conv2d(xl, w, styles, {}, up, 1, f, true, true, fused)) < 1e-4);
}

TEST_CASE("ops: another dtype and device, in channels-last and contiguous layouts, agree with float32 on the CPU") {
    torch::manual_seed(4);
    const torch::Tensor f = ops::setup_filter({1, 3, 3, 1});
    const torch::Tensor x = torch::randn({2, 6, 8, 8}), b = torch::randn({6}), w = torch::randn({5, 6, 3, 3}), styles = torch::randn({2, 6});
    // Largest difference relative to the largest magnitude of the float32 result.
    auto rel = [](const torch::Tensor& got, const torch::Tensor& ref) {
        REQUIRE(got.sizes() == ref.sizes());
        return max_abs_diff(got, ref) / std::max(1e-6, ref.abs().max().item<double>());
    };
    // Activations in `dtype` on `device` as the fp16 blocks pass them (conv weights cast to the
    // activations' dtype, filters, styles and modulated weights in float32).
    auto check = [&](const torch::Device& device, torch::ScalarType dtype, double tol) {
        const torch::Tensor xd = x.to(device, dtype), bd = b.to(device, dtype), wd = w.to(device, dtype);
        const torch::Tensor fd = f.to(device), sd = styles.to(device), wf = w.to(device);
        for (const torch::Tensor& in : {xd, xd.contiguous(torch::MemoryFormat::ChannelsLast)}) {
            INFO(device.str() << " " << dtype << ", channels-last input: " << !in.is_contiguous());
            CHECK(rel(ops::bias_act(in, bd, Activation::lrelu, std::nullopt, 256.0), ops::bias_act(x, b, Activation::lrelu, std::nullopt, 256.0)) < tol);
            CHECK(rel(ops::upfirdn2d(in, fd, 2, 1, {2, 1, 2, 1}), ops::upfirdn2d(x, f, 2, 1, {2, 1, 2, 1})) < tol);
            CHECK(rel(ops::downsample2d(in, fd), ops::downsample2d(x, f)) < tol);
            for (const auto& [up, down] : {std::pair<int64_t, int64_t>{1, 1}, {2, 1}, {1, 2}})
                CHECK(rel(ops::conv2d_resample(in, wd, fd, up, down, 1), ops::conv2d_resample(x, w, f, up, down, 1)) < tol);
            for (bool fused : {false, true})
                for (int64_t up : {1, 2})
                    CHECK(rel(ops::modulated_conv2d(in, wf, sd, {}, up, 1, fd, true, true, fused),
                              ops::modulated_conv2d(x, w, styles, {}, up, 1, f, true, true, fused)) < tol);
        }
    };
    check(torch::kCPU, torch::kDouble, 1e-5);  // the same paths where every machine can run them
    if (torch::cuda::is_available()) check(torch::kCUDA, torch::kHalf, 5e-3);  // the fp16 blocks
    else MESSAGE("no CUDA device: fp16 not compared");
}
