// Interpolation paths and the morph renderer.
#include "test_util.h"

#include "latentkit/error.h"
#include "latentkit/interpolate.h"
#include "latentkit/latent.h"
#include "latentkit/model_io.h"
#include "latentkit/morph.h"

using namespace latentkit;
using lktest::max_abs_diff;

namespace {
torch::Tensor keys(int64_t k, std::vector<int64_t> shape = {5}) {
    torch::manual_seed(11);
    shape.insert(shape.begin(), k);
    return torch::randn(shape);
}
}  // namespace

TEST_CASE("paths: frame counts and exact keyframes for every kind") {
    const torch::Tensor k = keys(4, {3, 5});
    for (PathKind kind : {PathKind::linear, PathKind::spherical, PathKind::cubic})
        for (bool loop : {false, true}) {
            PathOptions o;
            o.kind = kind;
            o.loop = loop;
            o.frames_per_transition = 7;
            CHECK(path_frame_count(4, o) == (loop ? 28 : 22));
            for (int64_t i = 0; i < 4; ++i) {
                if (!loop && i == 3) {
                    CHECK(max_abs_diff(path_frame(k, o, 21), k[3]) <= 1e-5);
                    continue;
                }
                CHECK(max_abs_diff(path_frame(k, o, i * 7), k[i]) <= 1e-5);
            }
        }
    PathOptions o;
    CHECK_THROWS_AS(path_frame_count(1, o), ArgumentError);
    o.frames_per_transition = 0;
    CHECK_THROWS_AS(path_frame_count(3, o), ArgumentError);
    CHECK_FALSE(option_from_name<PathKind>("zigzag"));
    CHECK(option_from_name<PathKind>("linear") == PathKind::linear);  // an alias of lerp
    CHECK(option_from_name<Easing>("ease-in-out") == Easing::ease_in_out);
}

TEST_CASE("paths: lerp in W is a + t(b - a) and slerp stays on the sphere") {
    const torch::Tensor k = keys(2, {4, 6});
    PathOptions o;
    o.frames_per_transition = 10;
    for (int f = 0; f <= 10; ++f) CHECK(max_abs_diff(path_frame(k, o, f), k[0] + (k[1] - k[0]) * (f / 10.0)) <= 1e-6);
    o.kind = PathKind::spherical;
    const torch::Tensor unit = k / k.norm(2, -1, true);
    for (int f = 0; f <= 10; ++f) CHECK(max_abs_diff(path_frame(unit, o, f).norm(2, -1), torch::ones({4})) <= 1e-5);
    o.easing = Easing::ease_in_out;
    o.kind = PathKind::linear;
    CHECK(max_abs_diff(path_frame(k, o, 5), (k[0] + k[1]) * 0.5) <= 1e-6);
    CHECK(max_abs_diff(path_frame(k, o, 1), k[0] + (k[1] - k[0]) * 0.028) <= 1e-5);
}

TEST_CASE("paths: the cubic loop is closed and C1 at every keyframe, the seam included") {
    const torch::Tensor k = keys(5);
    PathOptions o;
    o.kind = PathKind::cubic;
    o.loop = true;
    const double h = 1e-4;
    for (int key = 0; key < 5; ++key) {
        const double u = key;
        const double before = key == 0 ? 5.0 : u;  // the seam: u = 5 is keyframe 0 again
        const torch::Tensor p_before = path_sample(k, o, before - h), p_at = path_sample(k, o, before == 5.0 ? 5.0 : u);
        const torch::Tensor p_after = path_sample(k, o, u + h);
        CHECK(max_abs_diff(p_at, k[key]) <= 1e-5);
        const torch::Tensor v_in = (p_at - p_before) / h, v_out = (p_after - k[key]) / h;
        CHECK(max_abs_diff(v_in, v_out) <= 1e-2 * std::max(1.0, v_out.abs().max().item<double>()));
    }
    CHECK(max_abs_diff(path_sample(k, o, 5.0), k[0]) <= 1e-5);
}

TEST_CASE("paths: select_layers moves only the chosen layers") {
    const torch::Tensor a = torch::zeros({2, 6, 3}), b = torch::ones({2, 6, 3});
    const torch::Tensor m = select_layers(b, a, {0, 1});
    CHECK(m.sum().item<float>() == 12.0f);
    CHECK(m.select(1, 2).sum().item<float>() == 0.0f);
    CHECK_THROWS_AS(select_layers(b, a, {6}), ArgumentError);
}

TEST_CASE("morph renderer: keyframes, grids, held layers and looping noise") {
    const Model m = load_model(lktest::data_path("golden/tiny32.pkl"));
    auto G = m.G_ema;
    const torch::Tensor ws = lktest::golden_tensor("tiny32.expected.safetensors", "ws_psi1.0");
    MorphSpec spec;
    spec.render.seeds = {0, 1, 42, 1000};
    spec.path.frames_per_transition = 4;
    MorphRenderer r(G, spec);
    CHECK(r.frame_count() == 13);
    CHECK(max_abs_diff(r.latents(0, 1)[0], ws[0]) <= 1e-5);
    CHECK(max_abs_diff(r.latents(8, 1)[0], ws[2]) <= 1e-5);
    CHECK(max_abs_diff(r.latents(2, 1)[0], (ws[0] + ws[1]) * 0.5) <= 1e-5);
    CHECK(max_abs_diff(r.render(0, 1), lktest::golden_tensor("tiny32.expected.safetensors", "img_psi1.0_const").narrow(0, 0, 1)) <= 1e-4);

    spec.cells = 2;  // cells get seeds {0, 1} and {42, 1000}
    spec.layers = {0, 1, 2};
    MorphRenderer grid(G, spec);
    CHECK(grid.frame_count() == 5);
    const torch::Tensor l = grid.latents(2, 1);
    CHECK(l.size(0) == 2);
    CHECK(max_abs_diff(l[1].narrow(0, 3, 5), grid.latents(0, 1)[1].narrow(0, 3, 5)) == 0.0);  // held at the keyframe
    CHECK(max_abs_diff(l[1].narrow(0, 3, 5), ws[2].narrow(0, 3, 5)) <= 1e-5);
    CHECK(max_abs_diff(l[1].narrow(0, 0, 3), ((ws[2] + ws[3]) * 0.5).narrow(0, 0, 3)) <= 1e-5);

    spec.cells = 3;
    CHECK_THROWS_AS(MorphRenderer(G, spec), ArgumentError);

    MorphSpec noisy;
    noisy.render.seeds = {5, 5};
    noisy.path.frames_per_transition = 6;
    noisy.path.loop = true;
    noisy.loop_noise = true;
    MorphRenderer n(G, noisy);
    const torch::Tensor frames = n.render(0, n.frame_count());
    CHECK(max_abs_diff(frames[0], frames[1]) > 1e-3);  // same latent, moving noise
    CHECK(max_abs_diff(frames[0], n.render(0, 1)[0]) <= 1e-4);  // deterministic (up to batching)

    // The render spec's edits act on every frame, after the path.
    MorphSpec plain;
    plain.render.seeds = {0, 1};
    plain.path.frames_per_transition = 4;
    MorphSpec edited = plain;
    RenderEdit e;
    e.vector.assign(static_cast<size_t>(G->config.w_dim), 0.0f);
    e.vector[3] = 1.0f;
    e.strength = 2.0;
    e.scale = 1.5;
    edited.render.edits = {e};
    MorphRenderer pr(G, plain), er(G, edited);
    const torch::Tensor moved = er.latents(2, 1) - pr.latents(2, 1);
    CHECK(max_abs_diff(moved.select(2, 3), torch::full_like(moved.select(2, 3), 3.0)) <= 1e-5);
    CHECK(moved.narrow(2, 4, moved.size(2) - 4).abs().max().item<double>() <= 1e-6);
}
