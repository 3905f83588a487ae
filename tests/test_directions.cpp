// Attribute directions: planted-direction recovery, PCA, closed-form factorisation, files, editing,
// scorers, and the directions / edit commands end to end.
#include "test_util.h"
#include "cli_util.h"

#include <fmt/format.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>

#include "latentkit/atomic_file.h"
#include "latentkit/directions.h"
#include "latentkit/editing.h"
#include "latentkit/error.h"
#include "latentkit/io/config.h"
#include "latentkit/io/face_align.h"
#include "latentkit/io/image.h"
#include "latentkit/png.h"
#include "latentkit/io/scorers.h"
#include "latentkit/io/video.h"
#include "latentkit/latent.h"
#include "latentkit/model_io.h"
#include "latentkit/networks.h"

using namespace latentkit;
namespace fs = std::filesystem;
using lktest::data_path;

namespace {

struct Planted {
    LabelledSamples s;
    std::vector<float> truth;
};

// Gaussian latents (with unequal spreads, like W) and scores that follow a known unit direction.
Planted planted(int64_t n, int64_t d, bool binary, double noise, uint64_t seed = 1) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> g;
    Planted p;
    p.truth.resize(static_cast<size_t>(d));
    double norm = 0;
    for (auto& v : p.truth) v = static_cast<float>(g(rng)), norm += double(v) * v;
    for (auto& v : p.truth) v = static_cast<float>(v / std::sqrt(norm));
    p.s.n = n;
    p.s.d = d;
    for (int64_t i = 0; i < n; ++i) {
        double dot = 0;
        for (int64_t k = 0; k < d; ++k) {
            const float x = static_cast<float>(g(rng) * (1.0 + 0.5 * (k % 3)) + 0.3);
            p.s.x.push_back(x);
            dot += x * p.truth[static_cast<size_t>(k)];
        }
        const double y = dot + noise * g(rng);
        p.s.y.push_back(binary ? (y > 0.3 ? 1.0 : 0.0) : y);
    }
    return p;
}

double cosine(const std::vector<float>& a, const std::vector<float>& b) {
    double ab = 0, aa = 0, bb = 0;
    for (size_t k = 0; k < a.size(); ++k) ab += double(a[k]) * b[k], aa += double(a[k]) * a[k], bb += double(b[k]) * b[k];
    return ab / std::sqrt(aa * bb);
}

const Model& tiny() {
    static const Model m = load_model(data_path("golden/tiny32.pkl"));
    return m;
}

}  // namespace

TEST_CASE("directions: each fitting method recovers a planted direction") {
    const Planted cont = planted(3000, 48, false, 0.3);
    FitOptions o;
    Direction d = fit_direction(cont.s, o);
    CHECK(cosine(d.vector, cont.truth) > 0.98);
    CHECK(d.stats.at("r2") > 0.8);
    CHECK(d.stats.at("samples") == 3000);
    CHECK(d.stats.at("validation") == 900);
    CHECK(d.scale > 0);

    const Planted bin = planted(3000, 48, true, 0.2);
    for (FitMethod m : {FitMethod::logistic, FitMethod::svm}) {
        CAPTURE(static_cast<int>(m));
        o.method = m;
        d = fit_direction(bin.s, o);
        CHECK(cosine(d.vector, bin.truth) > 0.98);
        CHECK(d.stats.at("accuracy") > 0.9);
    }
    // InterFaceGAN's recipe: continuous scores, keep the top and bottom 20% as the two classes.
    o.method = FitMethod::svm;
    o.keep_ratio = 0.2;
    d = fit_direction(cont.s, o);
    CHECK(cosine(d.vector, cont.truth) > 0.98);
    CHECK(d.stats.at("samples") == 1200);
    // A threshold turns scores into labels.
    o.keep_ratio.reset();
    o.method = FitMethod::logistic;
    o.threshold = 0.3;
    CHECK(cosine(fit_direction(cont.s, o).vector, cont.truth) > 0.98);
}

TEST_CASE("directions: labels that cannot be fitted are refused with the reason") {
    Planted p = planted(40, 8, true, 0.1);
    FitOptions o;
    o.method = FitMethod::logistic;
    std::fill(p.s.y.begin(), p.s.y.end(), 1.0);
    CHECK_THROWS_WITH_AS(fit_direction(p.s, o), doctest::Contains("two classes"), ArgumentError);
    p = planted(5, 8, false, 0.1);
    CHECK_THROWS_WITH_AS(fit_direction(p.s, FitOptions{}), doctest::Contains("too few samples"), ArgumentError);
    p = planted(40, 8, false, 0.1);
    CHECK_THROWS_WITH_AS(fit_direction(p.s, o), doctest::Contains("not 0 or 1"), ArgumentError);
    p.s.y[3] = std::nan("");
    CHECK_THROWS_AS(fit_direction(p.s, FitOptions{}), ArgumentError);
}

TEST_CASE("directions: orthogonalisation leaves zero dot products") {
    const Planted a = planted(10, 16, false, 0, 1), b = planted(10, 16, false, 0, 2), c = planted(10, 16, false, 0, 3);
    const auto v = orthogonalize(c.truth, {a.truth, b.truth});
    CHECK(std::abs(cosine(v, a.truth)) < 1e-6);
    CHECK(std::abs(cosine(v, b.truth)) < 1e-6);
    double n = 0;
    for (float x : v) n += double(x) * x;
    CHECK(n == doctest::Approx(1.0).epsilon(1e-6));
    CHECK_THROWS_AS(orthogonalize(a.truth, {a.truth}), ArgumentError);
}

TEST_CASE("directions: incremental PCA gives orthonormal components, sorted variances, the planted axis") {
    const Planted p = planted(4000, 12, false, 0);
    PcaAccumulator whole(12), chunks(12);
    whole.add(p.s.x.data(), p.s.n);
    for (int64_t s = 0; s < p.s.n; s += 333) chunks.add(p.s.x.data() + s * 12, std::min<int64_t>(333, p.s.n - s));
    std::vector<float> mean, mean2;
    std::vector<std::vector<float>> comps, comps2;
    std::vector<double> vars, vars2;
    whole.solve(12, mean, comps, vars);
    chunks.solve(12, mean2, comps2, vars2);
    for (int i = 0; i < 12; ++i) {
        CHECK(vars2[i] == doctest::Approx(vars[i]).epsilon(1e-9));
        CHECK(mean2[i] == doctest::Approx(mean[i]).epsilon(1e-6));
        if (i > 0) CHECK(vars[i] <= vars[i - 1]);
        for (int j = 0; j < 12; ++j) CHECK(cosine(comps[i], comps[j]) == doctest::Approx(i == j ? 1.0 : 0.0).epsilon(1e-6));
    }
    double total = 0;
    for (double v : vars) total += v;
    CHECK(whole.total_variance() == doctest::Approx(total).epsilon(1e-9));
    CHECK(mean[0] == doctest::Approx(0.3).epsilon(0.1));
    // Dimensions 2, 5, 8, 11 have twice the spread of the others: the first component lies in them.
    double in_wide = 0;
    for (int k = 2; k < 12; k += 3) in_wide += double(comps[0][k]) * comps[0][k];
    CHECK(in_wide > 0.99);
}

TEST_CASE("directions: closed-form factorisation equals an independent eigensolver on the tiny model") {
    auto G = tiny().generator();
    CHECK(conv_layer_indices(*G) == std::vector<int>{0, 1, 2, 3, 4, 5, 6});
    const auto weights = style_weights(*G, {0, 1, 2});
    REQUIRE(weights.size() == 3);
    std::vector<std::vector<float>> rows;
    std::vector<torch::Tensor> normalised;
    for (const auto& w : weights) {
        CHECK(w.size(1) == 64);
        normalised.push_back(w / w.norm(2, 1, true));
        for (int64_t r = 0; r < w.size(0); ++r) rows.emplace_back(w[r].data_ptr<float>(), w[r].data_ptr<float>() + 64);
    }
    std::vector<std::vector<float>> vecs;
    std::vector<double> values;
    closed_form_directions(rows, 64, 5, vecs, values);
    const torch::Tensor a = torch::cat(normalised).to(torch::kFloat64);
    const auto [evals, evecs] = torch::linalg_eigh(a.t().matmul(a));  // ascending
    for (int k = 0; k < 5; ++k) {
        CHECK(values[k] == doctest::Approx(evals[63 - k].item<double>()).epsilon(1e-6));
        const torch::Tensor ref = evecs.select(1, 63 - k).to(torch::kFloat32);
        CHECK(std::abs(cosine(vecs[k], std::vector<float>(ref.data_ptr<float>(), ref.data_ptr<float>() + 64))) > 0.9999);
    }
}

TEST_CASE("directions: files round trip and refuse other models, and editing moves only the chosen layers") {
    lktest::TempDir dir;
    auto G = tiny().generator();
    DirectionSet set;
    set.w_dim = 64;
    set.num_ws = 8;
    set.model_fingerprint = model_fingerprint(*G);
    Direction d;
    d.name = "brighter";
    d.source = "ridge";
    d.vector = planted(2, 64, false, 0).truth;
    d.scale = 0.5;
    d.layers = std::make_pair(2, 4);
    d.stats["r2"] = 0.75;
    set.directions.push_back(d);
    save_directions(dir / "d.json", set);
    const DirectionSet back = load_directions(dir / "d.json");
    REQUIRE(back.directions.size() == 1);
    CHECK(back.directions[0].vector == d.vector);
    CHECK(back.directions[0].layers == d.layers);
    CHECK(back.directions[0].stats.at("r2") == 0.75);
    CHECK(back.model_fingerprint == set.model_fingerprint);
    CHECK(&select_direction(back, "brighter", "d.json") == &back.directions[0]);
    CHECK(&select_direction(back, "0", "d.json") == &back.directions[0]);
    CHECK_THROWS_AS(select_direction(back, "smile", "d.json"), ArgumentError);

    // The same network from another file has the same fingerprint; another network does not.
    CHECK(model_fingerprint(*load_model(data_path("golden/tiny32.G_ema.safetensors")).generator()) == set.model_fingerprint);
    auto other = load_model(data_path("golden/gray16.pkl")).generator();
    CHECK(model_fingerprint(*other) != set.model_fingerprint);
    CHECK_NOTHROW(check_directions_fit(back, "d.json", 64, set.model_fingerprint));
    CHECK_THROWS_WITH_AS(check_directions_fit(back, "d.json", 64, "0123456789abcdef"), doctest::Contains("another model"), ModelFormatError);
    CHECK_NOTHROW(check_directions_fit(back, "d.json", 64, "0123456789abcdef", true));
    CHECK_THROWS_WITH_AS(check_directions_fit(back, "d.json", other->config.w_dim == 64 ? 65 : other->config.w_dim, set.model_fingerprint),
                         doctest::Contains("w_dim"), ShapeError);
    lktest::write_bytes(dir / "bad.json", "{\"format\": \"latentkit-directions\", \"version\": 1, \"model\": {\"w_dim\": 2}, "
                                          "\"directions\": [{\"name\": \"x\", \"vector\": [3, 4]}]}");
    CHECK_THROWS_WITH_AS(load_directions(dir / "bad.json"), doctest::Contains("not a unit vector"), ModelFormatError);
    lktest::write_bytes(dir / "junk.json", "[1, 2");
    CHECK_THROWS_WITH_AS(load_directions(dir / "junk.json"), doctest::Contains("junk.json"), ModelFormatError);

    const torch::Tensor ws = torch::randn({2, 8, 64});
    CHECK(lktest::max_abs_diff(apply_direction(ws, d, 0.0), ws) == 0.0);
    const torch::Tensor moved = apply_direction(ws, d, 2.0);
    const torch::Tensor step = torch::tensor(d.vector) * (2.0 * 0.5);
    for (int l = 0; l < 8; ++l) {
        const torch::Tensor delta = moved.select(1, l) - ws.select(1, l);
        CHECK(lktest::max_abs_diff(delta, l >= 2 && l <= 4 ? step.expand({2, 64}) : torch::zeros({2, 64})) < 1e-5);
    }
    const torch::Tensor only7 = apply_direction(ws, d, 1.0, {7});
    CHECK(lktest::max_abs_diff(only7.narrow(1, 0, 7), ws.narrow(1, 0, 7)) == 0.0);
}

TEST_CASE("scorers: image statistics and Haar cascades") {
    Image8 flat{8, 8, 3, std::vector<uint8_t>(8 * 8 * 3, 0)};
    for (size_t k = 0; k < flat.pixels.size(); k += 3) flat.pixels[k] = 255, flat.pixels[k + 1] = 51;
    CHECK(io::ImageScorer("red").score(flat) == doctest::Approx(1.0));
    CHECK(io::ImageScorer("green").score(flat) == doctest::Approx(0.2));
    CHECK(io::ImageScorer("colorfulness").score(flat) == doctest::Approx(0.3 * std::hypot(255.0 - 51.0, 0.5 * (255.0 + 51.0))));  // no spread, only the mean term
    const Image8 gray{8, 8, 3, std::vector<uint8_t>(8 * 8 * 3, 128)};
    CHECK(io::ImageScorer("colorfulness").score(gray) == doctest::Approx(0.0));
    CHECK(io::ImageScorer("brightness").score(gray) == doctest::Approx(128.0 / 255));
    CHECK_THROWS_AS(io::ImageScorer("smiliness"), ArgumentError);
    CHECK_THROWS_AS(io::ImageScorer("face", "/nonexistent"), IoError);

    const io::ImageScorer face("face");
    CHECK(face.binary());
    const std::string photos = LATENTKIT_OPENCV_DATA;
    const io::FaceDetector detector;
    const auto aligned = io::align_image(io::read_image(photos + "/messi5.jpg"), "messi5.jpg", io::AlignMode::face, 256, &detector);
    CHECK(face.score(aligned.image) == 1.0);
    CHECK(face.score(io::center_crop(io::read_image(photos + "/baboon.jpg"), 256)) == 0.0);
    CHECK(face.score(gray) == 0.0);
}

// ---------------------------------------------------------------------------------------------

TEST_CASE("cli: directions sample, fit, pca, sefa and edit end to end") {
    lktest::TempDir dir;
    const std::string model = data_path("golden/tiny32.pkl");
    lktest::Result r = lktest::run({"directions", "sample", "-m", model, "--seeds", "0-199", "--score", "brightness,red", "--images",
                                    dir / "img", "-o", dir / "s.npz"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    CHECK(fs::exists(dir / "img/seed0199.png"));
    const std::string csv = read_file(dir / "s.csv");
    CHECK(csv.rfind("seed,brightness,red\n0,", 0) == 0);
    // numpy reads the samples: 200 latents of 64 values and their seeds.
    const std::string py = "import numpy, sys; d = numpy.load(sys.argv[1]); "
                           "sys.exit(0 if d['w'].shape == (200, 64) and list(d['seeds'][:3]) == [0, 1, 2] else 3)";
    CHECK(std::system(("/usr/bin/python3 -c " + lktest::quote(py) + " " + lktest::quote(dir / "s.npz")).c_str()) == 0);

    r = lktest::run({"directions", "fit", "--samples", dir / "s.npz", "--labels", dir / "s.csv", "--column", "brightness", "-o", dir / "b.json"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    const auto b = nlohmann::json::parse(read_file(dir / "b.json"));
    CHECK(b["directions"][0]["name"] == "brightness");
    CHECK(b["directions"][0]["stats"]["r2"].get<double>() > 0.3);
    r = lktest::run({"directions", "fit", "--samples", dir / "s.npz", "--labels", dir / "s.csv", "--column", "red", "--method", "svm",
                     "--keep-ratio", "0.25", "--orthogonal-to", dir / "b.json", "--layers", "0-3", "-o", dir / "r.json"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    const auto red = load_directions(dir / "r.json").directions[0];
    CHECK(std::abs(cosine(red.vector, load_directions(dir / "b.json").directions[0].vector)) < 1e-5);
    CHECK(red.layers == std::make_pair(0, 3));
    r = lktest::run({"directions", "pca", "-m", model, "--seeds", "0-2999", "-k", "4", "-o", dir / "pca.json"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    CHECK(load_directions(dir / "pca.json").directions.size() == 4);
    r = lktest::run({"directions", "sefa", "-m", model, "--layers", "0-2", "-k", "3", "-o", dir / "sefa.json"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    CHECK(load_directions(dir / "sefa.json").directions[2].name == "sefa2");

    // A grid: rows are latents, columns strengths; strength 0 is the unedited image.
    r = lktest::run({"edit", "-m", model, "--seeds", "5,6", "-d", dir / "b.json", "-d", dir / "pca.json#1@0.5", "--strengths", "-2,0,2", "-o",
                     dir / "grid.png", "--save-w", dir / "edited.npz"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    const auto grid = read_png(dir / "grid.png");
    CHECK(grid.width == 96);
    CHECK(grid.height == 64);
    REQUIRE(lktest::run({"generate", "-m", model, "--seeds", "6", "-o", dir / "gen"}).code == 0);
    const auto plain = read_png(dir / "gen/seed0006.png");
    int diff = 0;
    for (int y = 0; y < 32; ++y)
        for (int x = 0; x < 32 * 3; ++x) diff = std::max(diff, std::abs(int(grid.pixels[((32 + y) * 96) * 3 + 32 * 3 + x]) - int(plain.pixels[y * 96 + x])));
    CHECK(diff <= 1);
    r = lktest::run({"generate", "-m", model, "--projected-w", dir / "edited.npz", "-o", dir / "regen"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    CHECK(fs::exists(dir / "regen/proj05.png"));  // 2 latents x 3 strengths
    if (LATENTKIT_HAVE_LIBAV) {
        r = lktest::run({"edit", "-m", model, "--w", dir / "edited.npz", "-d", dir / "sefa.json#0", "--frames", "5", "-o", dir / "sweep.mp4"});
        REQUIRE_MESSAGE(r.code == 0, r.err);
        io::VideoReader v(dir / "sweep.mp4");
        CHECK(v.width() == 6 * 32);
    }
}

TEST_CASE("cli: directions and edit refuse bad labels and foreign direction files, saying which") {
    lktest::TempDir dir;
    const std::string model = data_path("golden/tiny32.pkl");
    REQUIRE(lktest::run({"directions", "sample", "-m", model, "--seeds", "0-19", "-o", dir / "s.npz"}).code == 0);
    auto fit = [&](const std::string& csv, std::vector<std::string> extra = {}) {
        lktest::write_bytes(dir / "l.csv", csv);
        std::vector<std::string> args{"directions", "fit", "--samples", dir / "s.npz", "--labels", dir / "l.csv", "-o", dir / "d.json"};
        args.insert(args.end(), extra.begin(), extra.end());
        return lktest::run(args);
    };
    std::string good = "seed,score\n";
    for (int s = 0; s < 20; ++s) good += fmt::format("{},{}\n", s, s % 2);
    lktest::check_error(fit("seed,score\n0,1\n77,0\n"), 2, "l.csv:3: seed 77 is not among the samples");
    lktest::check_error(fit("seed,score\n0,1\n1,high\n"), 2, "l.csv:3: the score 'high' is not a number");
    lktest::check_error(fit("0,1\n1\n"), 2, "l.csv:2: expected at least 2 fields");
    lktest::check_error(fit("seed,score\n0,1\n1,1\n2,1\n3,1\n4,1\n5,1\n6,1\n", {"--method", "logistic"}), 2, "two classes");
    lktest::check_error(fit("seed,score\n0,1\n1,0\n2,1\n"), 2, "too few samples");
    lktest::check_error(fit(good, {"--column", "age"}), 2, "has no column 'age'");
    CHECK_FALSE(fs::exists(dir / "d.json"));
    REQUIRE(fit(good, {"--method", "logistic"}).code == 0);

    // The direction file names another model: refused, unless --any-model.
    auto j = nlohmann::json::parse(read_file(dir / "d.json"));
    j["model"]["fingerprint"] = "0000000000000000";
    lktest::write_bytes(dir / "other.json", j.dump());
    lktest::check_error(lktest::run({"edit", "-m", model, "--seeds", "1", "-d", dir / "other.json", "-o", dir / "e.png"}), 1,
                        "other.json: the directions were made for another model");
    CHECK(lktest::run({"edit", "-m", model, "--seeds", "1", "-d", dir / "other.json", "--any-model", "-o", dir / "e.png"}).code == 0);
    lktest::check_error(lktest::run({"edit", "-m", data_path("golden/gray16.pkl"), "--seeds", "1", "-d", dir / "d.json", "-o", dir / "g.png"}),
                        1, "d.json: the directions are for w_dim 64");
    lktest::check_error(lktest::run({"edit", "-m", model, "--seeds", "1", "-d", dir / "d.json#9", "-o", dir / "g.png"}), 2, "has no direction '9'");
    CHECK_FALSE(fs::exists(dir / "g.png"));
}
