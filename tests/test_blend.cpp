// Model blending (layer swapping): the library and `latentkit blend`.
#include "test_util.h"
#include "cli_util.h"

#include <torch/torch.h>

#include <filesystem>

#include "latentkit/blend.h"
#include "latentkit/error.h"
#include "latentkit/latent.h"
#include "latentkit/model_io.h"
#include "latentkit/networks.h"

using namespace latentkit;

namespace {
torch::Tensor images(Generator& G, const torch::Tensor& ws) {
    torch::NoGradGuard no_grad;
    return G.synthesis->forward(ws);
}
}  // namespace

TEST_CASE("blend: above the top resolution gives the base, at 4 the detail's synthesis, between lies between, refusals") {
    lktest::TempDir dir;
    const Model base = load_model(lktest::data_path("golden/tiny32.pkl"));
    const Model detail = lktest::finetuned_stand_in(dir / "detail.safetensors");
    const torch::Tensor z = z_from_seeds({0, 1, 2}, base.G_ema->config.z_dim);
    const torch::Tensor ws = map_to_ws(*base.G_ema, z, {}, 1.0);
    const torch::Tensor base_img = images(*base.G_ema, ws), detail_img = images(*detail.G_ema, ws);

    BlendOptions o;
    o.from_resolution = 64;
    Model b = blend_models(base, detail, o);
    CHECK(lktest::max_abs_diff(images(*b.G_ema, ws), base_img) == 0.0);
    CHECK(lktest::max_abs_diff(map_to_ws(*b.G_ema, z, {}, 1.0), ws) == 0.0);  // the base's mapping

    o.from_resolution = 4;
    b = blend_models(base, detail, o);
    CHECK(lktest::max_abs_diff(images(*b.G_ema, ws), detail_img) == 0.0);
    o.mapping = BlendMapping::detail;
    b = blend_models(base, detail, o);
    CHECK(lktest::max_abs_diff(map_to_ws(*b.G_ema, z, {}, 1.0), map_to_ws(*detail.G_ema, z, {}, 1.0)) == 0.0);

    o = BlendOptions{};
    o.from_resolution = 16;
    o.width = 1;
    CHECK(blend_weight(8, o) == 0.0);
    CHECK(blend_weight(16, o) == 0.5);
    CHECK(blend_weight(32, o) == 1.0);
    b = blend_models(base, detail, o);
    const torch::Tensor mid = images(*b.G_ema, ws);
    const double apart = lktest::max_abs_diff(base_img, detail_img);
    CHECK(apart > 0.05);
    CHECK(lktest::max_abs_diff(mid, base_img) < apart);
    CHECK(lktest::max_abs_diff(mid, detail_img) < apart);
    CHECK(lktest::max_abs_diff(mid, base_img) > 1e-4);

    const Model gray = load_model(lktest::data_path("golden/gray16.pkl"));
    CHECK_THROWS_WITH_AS(blend_models(base, gray, o), doctest::Contains("differ in architecture or shape"), ArgumentError);
    o.width = -1;
    CHECK_THROWS_AS(blend_models(base, detail, o), ArgumentError);
}

TEST_CASE("cli: blend writes the blended model, refuses other architectures in one line") {
    lktest::TempDir dir;
    const std::string base = lktest::data_path("golden/tiny32.pkl");
    const Model detail = lktest::finetuned_stand_in(dir / "detail.safetensors");
    REQUIRE(lktest::run({"blend", base, dir / "detail.safetensors", dir / "blend.safetensors", "--from-res", "16", "--width", "1"}).code == 0);
    BlendOptions o;
    o.from_resolution = 16;
    o.width = 1;
    const Model expected = blend_models(load_model(base), detail, o), written = load_model(dir / "blend.safetensors");
    const torch::Tensor z = z_from_seeds({3, 4}, 64);
    torch::NoGradGuard no_grad;
    CHECK(lktest::max_abs_diff(written.G_ema->forward(z, {}), expected.G_ema->forward(z, {})) == 0.0);
    lktest::check_error(lktest::run({"blend", base, lktest::data_path("golden/gray16.pkl"), dir / "x.safetensors", "--from-res", "8"}), 2,
                        "differ in architecture or shape");
    CHECK_FALSE(std::filesystem::exists(dir / "x.safetensors"));
    lktest::check_error(lktest::run({"blend", base, dir / "detail.safetensors", dir / "x.pkl", "--from-res", "8"}), 1, "x.pkl");
}
