// The fast CPU implementation against the reference formulation: every resampling op and layer kind,
// values and gradients, and the golden networks (issue: twice the reference's speed on the CPU).
#include "test_util.h"

#include <functional>

#include "latentkit/latent.h"
#include "latentkit/model_io.h"
#include "latentkit/networks.h"
#include "latentkit/device.h"
#include "ops.h"

using namespace latentkit;
using lktest::max_abs_diff;

namespace {
// Restores the implementation however a case ends.
struct ImplGuard {
    Implementation saved = implementation();
    ~ImplGuard() { set_implementation(saved); }
};

double rel_diff(const torch::Tensor& a, const torch::Tensor& b) {
    return max_abs_diff(a, b) / std::max(b.abs().max().item<double>(), 1e-12);
}

// Runs `fn` on fresh copies of `inputs` (requiring gradients) under one implementation; returns the
// output and the gradients of sum(output * probe) for each input.
std::vector<torch::Tensor> run(Implementation impl, const std::vector<torch::Tensor>& inputs,
                               const std::function<torch::Tensor(const std::vector<torch::Tensor>&)>& fn) {
    set_implementation(impl);
    std::vector<torch::Tensor> xs;
    for (const auto& x : inputs) xs.push_back(x.detach().clone().requires_grad_(true));
    const torch::Tensor y = fn(xs);
    const torch::Tensor probe = torch::sin(torch::arange(y.numel(), torch::kFloat32)).reshape(y.sizes());
    (y * probe).sum().backward();
    std::vector<torch::Tensor> out{y.detach()};
    for (const auto& x : xs) out.push_back(x.grad().defined() ? x.grad() : torch::zeros_like(x));  // unused inputs: no gradient
    return out;
}

void check_same(const std::string& what, const std::vector<torch::Tensor>& inputs,
                const std::function<torch::Tensor(const std::vector<torch::Tensor>&)>& fn) {
    INFO(what);
    ImplGuard guard;
    const auto ref = run(Implementation::reference, inputs, fn);
    const auto fast = run(Implementation::fast, inputs, fn);
    REQUIRE(ref[0].sizes() == fast[0].sizes());
    CHECK(rel_diff(fast[0], ref[0]) <= 1e-5);
    for (size_t k = 1; k < ref.size(); ++k) {
        INFO("gradient of input " << k - 1);
        CHECK(rel_diff(fast[k], ref[k]) <= 1e-5);
    }
}
}  // namespace

TEST_CASE("impl: resampling convolutions and filters agree with the reference formulation, values and gradients") {
    torch::manual_seed(1);
    const torch::Tensor f = ops::setup_filter({1, 3, 3, 1});
    const torch::Tensor rough = f + torch::rand({4, 4}) * 0.05;  // a 2-D filter that is not an outer product
    const torch::Tensor x = torch::randn({2, 6, 9, 9}), w3 = torch::randn({5, 6, 3, 3}), w1 = torch::randn({5, 6, 1, 1});
    for (const torch::Tensor& filter : {f, rough}) {
        check_same("up 2, 3x3", {x, w3}, [&](auto& v) { return ops::conv2d_resample(v[0], v[1], filter, 2, 1, 1, 1, false); });
        check_same("up 2, 3x3, flipped", {x, w3}, [&](auto& v) { return ops::conv2d_resample(v[0], v[1], filter, 2, 1, 1, 1, true); });
        check_same("up 2, 3x3, no padding", {x, w3}, [&](auto& v) { return ops::conv2d_resample(v[0], v[1], filter, 2, 1, 0, 1, false); });
        check_same("up 2, 1x1", {x, w1}, [&](auto& v) { return ops::conv2d_resample(v[0], v[1], filter, 2, 1, 0, 1, false); });
        check_same("down 2, 3x3", {x, w3}, [&](auto& v) { return ops::conv2d_resample(v[0], v[1], filter, 1, 2, 1, 1, true); });
        check_same("down 2, 1x1", {x, w1}, [&](auto& v) { return ops::conv2d_resample(v[0], v[1], filter, 1, 2, 0, 1, true); });
        check_same("upsample2d", {x}, [&](auto& v) { return ops::upsample2d(v[0], filter); });
        check_same("downsample2d", {x}, [&](auto& v) { return ops::downsample2d(v[0], filter); });
        check_same("upfirdn2d down 2 with padding", {x}, [&](auto& v) { return ops::upfirdn2d(v[0], filter, 1, 2, {2, 1, 1, 2}); });
    }
    const torch::Tensor wg = torch::randn({2 * 5, 6, 3, 3});  // grouped, as the fused modulated convolution
    check_same("up 2, grouped", {x.reshape({1, 12, 9, 9}), wg}, [&](auto& v) { return ops::conv2d_resample(v[0], v[1], f, 2, 1, 1, 2, false); });
    check_same("1x1 to 3 channels", {x, torch::randn({3, 6, 1, 1})}, [&](auto& v) { return ops::conv2d_resample(v[0], v[1], {}, 1, 1, 0, 1, true); });
    check_same("1-D filter, down 2", {x}, [&](auto& v) { return ops::upfirdn2d(v[0], torch::tensor({0.1f, 0.4f, 0.4f, 0.1f}), 1, 2, {1, 2, 1, 2}); });
}

TEST_CASE("impl: the fused modulated convolution + bias + activation equals the reference's two steps") {
    torch::manual_seed(2);
    const torch::Tensor f = ops::setup_filter({1, 3, 3, 1});
    for (int64_t n : {1, 3}) {
        for (int64_t up : {1, 2}) {
            INFO("batch " << n << ", up " << up);
            const torch::Tensor x = torch::randn({n, 8, 6, 6}), w = torch::randn({7, 8, 3, 3}), s = torch::randn({n, 8}) + 1;
            const torch::Tensor b = torch::randn({7}), noise = torch::randn({n, 1, 6 * up, 6 * up});
            auto layer = [&](bool demodulate, Activation act, double gain, std::optional<double> clamp, bool with_noise) {
                return [=](const std::vector<torch::Tensor>& v) {
                    const torch::Tensor nz = with_noise ? v[4] : torch::Tensor();
                    if (implementation() == Implementation::fast)
                        return ops::modulated_conv2d_bias_act(v[0], v[1], v[2], nz, up, 1, f, demodulate, up == 1, v[3], act, gain, clamp);
                    const torch::Tensor y = ops::modulated_conv2d(v[0], v[1], v[2], nz, up, 1, f, demodulate, up == 1, n == 1);
                    return ops::bias_act(y, v[3], act, gain, clamp);
                };
            };
            check_same("demodulated lrelu, noise, clamp", {x, w, s, b, noise}, layer(true, Activation::lrelu, std::sqrt(2.0), 0.5, true));
            check_same("demodulated lrelu, resnet gain", {x, w, s, b, noise}, layer(true, Activation::lrelu, std::sqrt(2.0) * std::sqrt(0.5), std::nullopt, false));
            check_same("not demodulated, linear", {x, w, s, b, noise}, layer(false, Activation::linear, 1.0, 0.3, false));
            check_same("demodulated tanh (not folded)", {x, w, s, b, noise}, layer(true, Activation::tanh, 1.0, std::nullopt, true));
        }
    }
}

TEST_CASE("impl: the golden networks under both implementations, inference and training gradients") {
    ImplGuard guard;
    const Model m = load_model(lktest::data_path("golden/tiny32.pkl"));
    const std::string exp = "tiny32.expected.safetensors";
    const torch::Tensor ws = lktest::golden_tensor(exp, "ws_psi1.0"), img = lktest::golden_tensor(exp, "img_psi1.0_const");
    for (const auto impl : {Implementation::reference, Implementation::fast}) {
        INFO(implementation_name(impl));
        set_implementation(impl);
        torch::NoGradGuard no_grad;
        CHECK(max_abs_diff(m.G_ema->synthesis->forward(ws), img) <= 1e-4);
        CHECK(max_abs_diff(m.D->forward(img, {}), lktest::golden_tensor(exp, "D_logits")) <= 1e-4);
    }
    // Training mode: a batch through G (shared-weight modulation) and D, gradients for ws and the weights.
    m.G->train();
    m.D->train();
    auto grads = [&](Implementation impl) {
        set_implementation(impl);
        const torch::Tensor w = ws.clone().requires_grad_(true);
        m.G->zero_grad();
        m.D->zero_grad();
        const torch::Tensor logits = m.D->forward(m.G->synthesis->forward(w), {});
        torch::nn::functional::softplus(-logits).sum().backward();
        std::vector<torch::Tensor> out{logits.detach(), w.grad().clone()};
        for (const auto& p : m.G->synthesis->parameters()) out.push_back(p.grad().clone());
        for (const auto& p : m.D->parameters()) out.push_back(p.grad().clone());
        return out;
    };
    const auto ref = grads(Implementation::reference), fast = grads(Implementation::fast);
    REQUIRE(ref.size() == fast.size());
    for (size_t k = 0; k < ref.size(); ++k) {
        INFO("tensor " << k);
        CHECK(rel_diff(fast[k], ref[k]) <= 1e-4);
    }
}

TEST_CASE("impl: the fast path's weight cache follows changes to the weights") {
    ImplGuard guard;
    set_implementation(Implementation::fast);
    const Model m = load_model(lktest::data_path("golden/tiny32.pkl"));
    const torch::Tensor ws = lktest::golden_tensor("tiny32.expected.safetensors", "ws_psi1.0");
    torch::NoGradGuard no_grad;
    const torch::Tensor before = m.G_ema->synthesis->forward(ws);
    for (auto& p : m.G_ema->synthesis->named_parameters(true))
        if (p.key().find("conv0.weight") != std::string::npos) p.value().mul_(-1.5);  // in place: the same storage, a new version
    const torch::Tensor fast = m.G_ema->synthesis->forward(ws);
    set_implementation(Implementation::reference);
    const torch::Tensor reference = m.G_ema->synthesis->forward(ws);
    CHECK(max_abs_diff(fast, before) > 1e-3);
    CHECK(max_abs_diff(fast, reference) <= 1e-5);
}

TEST_CASE("impl: CPU threads are configured once per CPU, or as asked") {
    const int saved = torch::get_num_threads();
    CHECK(configure_cpu_threads(1) == 1);
    CHECK(torch::get_num_threads() == 1);
    const int all = configure_cpu_threads();
    CHECK(all >= 1);
    CHECK(torch::get_num_threads() == all);
    torch::set_num_threads(saved);
}
