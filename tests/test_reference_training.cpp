// The trainer's path length, w_avg and ADA pipeline against what stylegan2-ada-pytorch's own loss.py
// and augment.py compute (tests/data/reference_training, made by tools/make_reference_training.py).
#include <fmt/format.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "latentkit/model_io.h"
#include "latentkit/networks.h"
#include "latentkit/tensor_data.h"
#include "test_util.h"
#include "torch_convert.h"
#include "train/augment.h"
#include "train/trainer.h"

using namespace latentkit;
using lktest::max_abs_diff;

namespace {

const TensorFile& expected() {
    static const TensorFile f = read_safetensors(lktest::data_path("reference_training/expected.safetensors"));
    return f;
}
torch::Tensor ref_tensor(const std::string& name) {
    const TensorData* t = expected().find(name);
    REQUIRE_MESSAGE(t != nullptr, "reference tensor " << name << " missing");
    return to_torch(*t).to(torch::kFloat32);
}
// How many reference tensors' names start with `prefix`.
int count_with_prefix(const std::string& prefix) {
    int n = 0;
    for (const auto& [name, t] : expected().tensors) n += name.rfind(prefix, 0) == 0 ? 1 : 0;
    return n;
}
const nlohmann::json& info() {
    static const nlohmann::json j = [] {
        std::ifstream in(lktest::data_path("reference_training/expected.json"));
        return nlohmann::json::parse(in);
    }();
    return j;
}
double rel_diff(const torch::Tensor& a, const torch::Tensor& b) {
    return max_abs_diff(a, b) / std::max(b.abs().max().item<double>(), 1e-12);
}
Model training_model() {
    Model m = load_model(lktest::data_path("reference_training/train16.pkl"));
    REQUIRE(m.G);
    m.G->train();
    for (auto& p : m.G->parameters()) p.set_requires_grad(true);
    return m;
}
SynthesisOptions const_noise() {
    SynthesisOptions so;
    so.noise_mode = NoiseMode::constant;
    return so;
}

}  // namespace

TEST_CASE("reference training: path length is taken with respect to the style-mixed ws, every layer") {
    Model m = training_model();
    const auto& pl = info()["pl"];
    const int64_t cutoff = pl["cutoff"].get<int64_t>();
    REQUIRE(cutoff > 0);
    REQUIRE(cutoff < m.G->synthesis->num_ws);  // the case mixes
    const training::GeneratorRun g = training::run_generator(*m.G, ref_tensor("pl.z"), {}, cutoff, ref_tensor("pl.mix_z"), const_noise());
    CHECK(max_abs_diff(g.ws, ref_tensor("pl.ws_mixed")) <= 1e-5);
    // pl.noise is the reference's randn_like draw; its pl_noise divides it by sqrt(H * W).
    const torch::Tensor noise = ref_tensor("pl.noise") / std::sqrt(double(g.img.size(2) * g.img.size(3)));
    const torch::Tensor lengths = training::path_lengths(g.img, g.ws, noise);
    CHECK(rel_diff(lengths, ref_tensor("pl.lengths")) <= 1e-4);
    // Every layer carries gradient: with the ws before mixing, the mixed layers would count zeros.
    const torch::Tensor pre_mix = m.G->mapping->forward(ref_tensor("pl.z"), {}, 1.0, std::nullopt, true);
    CHECK(max_abs_diff(pre_mix.narrow(1, 0, cutoff), g.ws.narrow(1, 0, cutoff).detach()) == 0.0);

    const torch::Tensor pl_mean = training::pl_mean_step(torch::full({}, pl["pl_mean_before"].get<double>()), lengths, pl["pl_decay"]);
    CHECK(std::abs(pl_mean.item<double>() - ref_tensor("pl.pl_mean_after").item<double>()) <= 1e-6);
    const torch::Tensor loss = (lengths - pl_mean).square() * pl["pl_weight"].get<double>();
    m.G->zero_grad();
    ((g.img.select(1, 0).select(1, 0).select(1, 0) * 0 + loss).mean() * pl["gain"].get<double>()).backward();
    int checked = 0;
    for (const auto& p : m.G->named_parameters(true)) {
        const std::string name = "pl.G_grad." + p.key();
        if (!expected().find(name)) continue;
        INFO(name);
        REQUIRE(p.value().grad().defined());
        const torch::Tensor expected_grad = ref_tensor(name);
        REQUIRE(p.value().numel() == expected_grad.numel());
        CHECK(rel_diff(p.value().grad().reshape(expected_grad.sizes()), expected_grad) <= 2e-4);
        ++checked;
    }
    CHECK(checked == count_with_prefix("pl.G_grad."));  // every parameter of G has its reference gradient
}

TEST_CASE("reference training: w_avg follows every training-mode mapping call of Gmain, Greg and Dmain") {
    Model m = training_model();
    torch::NoGradGuard no_grad;
    torch::Tensor w_avg = ref_tensor("wavg.before").clone();
    const int64_t no_mixing = m.G->synthesis->num_ws;
    for (const std::string phase : {"Gmain", "Greg", "Dmain"}) {
        torch::Tensor z = ref_tensor("wavg.z_" + phase);
        if (phase == "Greg") z = z.narrow(0, 0, z.size(0) / info()["wavg"]["pl_batch_shrink"].get<int64_t>());
        std::vector<torch::Tensor> means;
        training::run_generator(*m.G, z, {}, no_mixing, {}, const_noise(), &means);
        REQUIRE(means.size() == 1);
        training::update_w_avg(w_avg, means);
        INFO(phase);
        CHECK(max_abs_diff(w_avg, ref_tensor("wavg.after_" + phase)) <= 1e-6);
    }
    // The rule matters: one update per minibatch from Gmain alone ends elsewhere.
    CHECK(max_abs_diff(ref_tensor("wavg.after_Gmain"), ref_tensor("wavg.after_Dmain")) > 1e-4);
}

TEST_CASE("reference training: the ADA pipeline for fixed parameters and for a seed") {
    const torch::Tensor input = ref_tensor("aug.input");
    auto spec_of = [](const nlohmann::json& kwargs) {
        training::AugmentSpec s;
        for (const auto& [k, v] : kwargs.items()) {
            double* field = k == "xflip" ? &s.xflip : k == "rotate90" ? &s.rotate90 : k == "xint" ? &s.xint : k == "scale" ? &s.scale
                          : k == "rotate" ? &s.rotate : k == "aniso" ? &s.aniso : k == "xfrac" ? &s.xfrac : k == "brightness" ? &s.brightness
                          : k == "contrast" ? &s.contrast : k == "lumaflip" ? &s.lumaflip : k == "hue" ? &s.hue : k == "saturation" ? &s.saturation
                          : nullptr;
            REQUIRE_MESSAGE(field, "unknown augmentation " << k);
            *field = v.get<double>();
        }
        return s;
    };
    int cases = 0;
    for (const auto& [name, c] : info()["augment"]["percentile_cases"].items()) {
        const training::AugmentPipe pipe(spec_of(c["kwargs"]));
        for (const auto& pct : c["percentiles"]) {
            const std::string key = fmt::format("aug.{}_pct{}", name, pct.dump());
            INFO(key);
            CHECK(max_abs_diff(pipe(input, 1.0, pct.get<double>()), ref_tensor(key)) <= 1e-4);
            ++cases;
        }
    }
    CHECK(cases == 15);
    // The sym6 round trip is exact: an image that stays in place comes back unchanged, and an integer
    // shift moves pixels without blurring them (away from the reflected border).
    const training::AugmentPipe rot90(spec_of({{"rotate90", 1}}));
    CHECK(max_abs_diff(rot90(input, 1.0, 0.1), input) <= 1e-5);
    const torch::Tensor shifted = ref_tensor("aug.xint_pct0.95");  // 2 pixels right and down on 16x16
    CHECK(max_abs_diff(shifted.narrow(2, 6, 6).narrow(3, 6, 6), input.narrow(2, 4, 6).narrow(3, 4, 6)) <= 1e-5);

    const auto& seeded = info()["augment"]["seeded"];
    const training::AugmentPipe pipe(spec_of(seeded["kwargs"]));
    torch::manual_seed(seeded["seed"].get<uint64_t>());
    CHECK(max_abs_diff(pipe(input, seeded["p"].get<double>()), ref_tensor("aug.bgc_seed11_p0.5")) <= 1e-4);
}

TEST_CASE("reference training: R1 through the geometric augmentations has a second derivative") {
    const torch::Tensor x = ref_tensor("aug.input").clone().requires_grad_(true);
    const training::AugmentPipe pipe(training::AugmentSpec::preset(AugmentPipeline::bg));
    torch::manual_seed(3);
    const torch::Tensor y = pipe(x, 0.8);
    const torch::Tensor g = torch::autograd::grad({(y * y).sum()}, {x}, {}, true, true)[0];
    const torch::Tensor gg = torch::autograd::grad({g.square().sum()}, {x})[0];
    CHECK(gg.abs().sum().item<double>() > 0);
    CHECK(torch::isfinite(gg).all().item<bool>());
}

TEST_CASE("reference training: gradients add up over accumulation rounds, each chunk's mean loss times the gain") {
    Model m = load_model(lktest::data_path("reference_training/train16.pkl"));
    REQUIRE(m.G);
    REQUIRE(m.D);
    m.G->train();
    m.D->train();
    const int64_t no_mixing = m.G->synthesis->num_ws;
    auto compare = [&](torch::nn::Module& net, const std::string& prefix) {
        int checked = 0;
        for (const auto& p : net.named_parameters(true)) {
            const std::string name = prefix + p.key();
            if (!expected().find(name)) continue;
            INFO(name);
            REQUIRE(p.value().grad().defined());
            const torch::Tensor want = ref_tensor(name);
            CHECK(rel_diff(p.value().grad().reshape(want.sizes()), want) <= 1e-4);
            ++checked;
        }
        return checked;
    };
    training::set_requires_grad(*m.G, true);
    training::set_requires_grad(*m.D, false);
    for (int r = 0; r < 2; ++r) {
        const auto g = training::run_generator(*m.G, ref_tensor(fmt::format("gscale.z{}", r)), {}, no_mixing, {}, const_noise());
        training::chunk_objective(torch::softplus(-m.D->forward(g.img, {})), 1.0).backward();
    }
    CHECK(compare(*m.G, "gscale.G_grad.") == count_with_prefix("gscale.G_grad."));
    training::set_requires_grad(*m.G, false);
    training::set_requires_grad(*m.D, true);
    for (int r = 0; r < 2; ++r) {
        const torch::Tensor fake = training::run_generator(*m.G, ref_tensor(fmt::format("gscale.z{}", r)), {}, no_mixing, {}, const_noise()).img;
        const torch::Tensor real = ref_tensor(fmt::format("gscale.real{}", r));
        (training::chunk_objective(torch::softplus(m.D->forward(fake, {})), 1.0) +
         training::chunk_objective(torch::softplus(-m.D->forward(real, {})), 1.0)).backward();
    }
    CHECK(compare(*m.D, "gscale.D_grad.") == count_with_prefix("gscale.D_grad."));
}
