// Training-mode forward and autograd against the reference training-side vectors (tiny32.train.safetensors).
#include "test_util.h"

#include "latentkit/latent.h"
#include "latentkit/model_io.h"
#include "latentkit/networks.h"

using namespace latentkit;
using lktest::golden_tensor;
using lktest::max_abs_diff;

namespace {
const char* kTrain = "tiny32.train.safetensors";
const char* kExp = "tiny32.expected.safetensors";

// |a - b| relative to the largest magnitude of b.
double rel_diff(const torch::Tensor& a, const torch::Tensor& b) {
    const double scale = std::max(b.abs().max().item<double>(), 1e-12);
    return max_abs_diff(a, b) / scale;
}

torch::Tensor param(torch::nn::Module& m, const std::string& name) {
    for (const auto& p : m.named_parameters(true))
        if (p.key() == name) return p.value();
    FAIL("no parameter " << name);
    return {};
}

Model load_for_training() {
    Model m = load_model(lktest::data_path("golden/tiny32.pkl"));
    m.G->train();
    m.D->train();
    return m;
}
}  // namespace

TEST_CASE("training golden: R1 gradient penalty") {
    Model m = load_for_training();
    torch::Tensor reals = golden_tensor(kExp, "img_psi1.0_const").requires_grad_(true);
    torch::Tensor logits = m.D->forward(reals, {});
    torch::Tensor grads = torch::autograd::grad({logits.sum()}, {reals}, {}, false, true)[0];
    CHECK(rel_diff(grads, golden_tensor(kTrain, "r1_grads")) <= 1e-4);
    CHECK(rel_diff(grads.square().sum({1, 2, 3}), golden_tensor(kTrain, "r1_penalty")) <= 1e-4);
}

TEST_CASE("training golden: path length gradients through the training generator") {
    Model m = load_for_training();
    const torch::Tensor z = golden_tensor(kExp, "z");
    torch::Tensor ws = m.G->mapping->forward(z, {}, 1.0, std::nullopt, true).detach().requires_grad_(true);
    torch::Tensor img = m.G->synthesis->forward(ws);
    torch::Tensor grad = torch::autograd::grad({(img * golden_tensor(kTrain, "pl_noise")).sum()}, {ws}, {}, false, true)[0];
    CHECK(max_abs_diff(ws, golden_tensor(kTrain, "pl_ws")) <= 1e-5);
    CHECK(rel_diff(grad.square().sum(2).mean(1).sqrt(), golden_tensor(kTrain, "pl_lengths")) <= 1e-4);
}

TEST_CASE("training golden: generator and discriminator losses and parameter gradients") {
    Model m = load_for_training();
    const torch::Tensor z = golden_tensor(kExp, "z");
    const torch::Tensor reals = golden_tensor(kExp, "img_psi1.0_const");
    const auto& train = lktest::golden(kTrain);

    torch::Tensor fake = m.G->forward(z, {}, 1.0);
    torch::Tensor loss_g = torch::softplus(-m.D->forward(fake, {})).sum();
    CHECK(rel_diff(loss_g.reshape({1}), golden_tensor(kTrain, "loss_G")) <= 1e-5);
    m.G->zero_grad();
    m.D->zero_grad();
    loss_g.backward();
    int checked = 0;
    for (const auto& [name, t] : train.tensors) {
        if (name.rfind("G_grad.", 0) != 0) continue;
        INFO(name);
        torch::Tensor g = param(*m.G, name.substr(7)).grad();
        REQUIRE(g.defined());
        CHECK(rel_diff(g, golden_tensor(kTrain, name)) <= 1e-4);
        ++checked;
    }
    CHECK(checked == 7);

    m.D->zero_grad();
    torch::Tensor loss_d = torch::softplus(m.D->forward(fake.detach(), {})).sum() + torch::softplus(-m.D->forward(reals, {})).sum();
    CHECK(rel_diff(loss_d.reshape({1}), golden_tensor(kTrain, "loss_D")) <= 1e-5);
    loss_d.backward();
    checked = 0;
    for (const auto& [name, t] : train.tensors) {
        if (name.rfind("D_grad.", 0) != 0) continue;
        INFO(name);
        torch::Tensor g = param(*m.D, name.substr(7)).grad();
        REQUIRE(g.defined());
        CHECK(rel_diff(g, golden_tensor(kTrain, name)) <= 1e-4);
        ++checked;
    }
    CHECK(checked == 7);
}

TEST_CASE("training mode updates w_avg unless told not to") {
    Model m = load_for_training();
    const torch::Tensor before = m.G->mapping->w_avg.clone();
    const torch::Tensor z = golden_tensor(kExp, "z");
    m.G->mapping->forward(z, {}, 1.0, std::nullopt, true);
    CHECK(max_abs_diff(before, m.G->mapping->w_avg) == 0.0);
    const torch::Tensor w = m.G->mapping->forward(z, {}, 1.0, std::nullopt, false).select(1, 0).detach();
    const torch::Tensor expected = w.mean(0).lerp(before, 0.995);
    CHECK(max_abs_diff(m.G->mapping->w_avg, expected) <= 1e-6);
}
