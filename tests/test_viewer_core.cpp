// The viewer's GL-free core: render worker, state and script lines, dispatcher, scripts.
#include "test_util.h"
#include "cli_util.h"
#include "viewer_test_util.h"

#include <sys/wait.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <torch/cuda.h>

#include "latentkit/atomic_file.h"
#include "latentkit/error.h"
#include "latentkit/png.h"
#include "latentkit/latent.h"
#include "dispatcher.h"
#include "error_text.h"
#include "files.h"
#include "latentkit/log.h"
#include "latentkit/npz.h"
#include "model_jobs.h"
#include "render_worker.h"
#include "script_runner.h"
#include "texture_storage.h"
#include "viewer_state.h"

using namespace latentkit;
using namespace latentkit::viewer;
namespace fs = std::filesystem;
using lktest::data_path;

using lktest::golden_seed42;
using lktest::max_diff;

TEST_CASE("viewer: seeds blend bilinearly between the four neighbouring integer positions") {
    auto b = blend_seeds(3, 0);
    REQUIRE(b.size() == 1);
    CHECK(b[0] == std::pair<uint32_t, double>{3, 1.0});
    b = blend_seeds(2.5, 0);
    REQUIRE(b.size() == 2);
    CHECK(b[0].first == 2);
    CHECK(b[1].first == 3);
    CHECK(b[0].second == doctest::Approx(0.5));
    b = blend_seeds(0.25, 1.5);
    REQUIRE(b.size() == 4);
    double total = 0;
    for (const auto& [seed, w] : b) total += w;
    CHECK(total == doctest::Approx(1.0));
    CHECK(b[0].first == 100);  // x 0, y 1
    CHECK(b[3].first == 201);  // x 1, y 2
}

TEST_CASE("viewer: the render worker reproduces generate, keeps only the newest request, reports errors") {
    ModelStore store;
    RenderWorker worker(store);
    RenderRequest r;
    r.model_path = data_path("golden/tiny32.pkl");
    r.spec.seeds = {42};
    RenderResult res = worker.render_now(r);
    REQUIRE_MESSAGE(res.error.empty(), res.error);
    REQUIRE(res.model.has_value());
    CHECK(res.model->resolution == 32);
    CHECK(max_diff(res.image, golden_seed42()) <= 1);

    for (uint64_t id = 1; id <= 6; ++id) {
        r.id = id;
        r.spec.seeds = {static_cast<uint32_t>(id)};
        worker.submit(r);
    }
    std::optional<RenderResult> last;
    for (int k = 0; k < 2000 && (worker.busy() || !last || last->id != 6); ++k) {
        if (auto got = worker.poll()) last = std::move(got);
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    REQUIRE(last.has_value());
    CHECK(last->id == 6);
    CHECK(last->error.empty());

    // Layer view: a block's features instead of the output.
    RenderRequest layer = r;
    layer.spec.seeds = {42};
    layer.view_block = 1;  // 8x8
    RenderResult lr = worker.render_now(layer);
    REQUIRE_MESSAGE(lr.error.empty(), lr.error);
    CHECK(lr.image.width == 8);
    CHECK(lr.image.channels == 3);
    layer.view_channel = 5;
    lr = worker.render_now(layer);
    bool gray = true;
    for (size_t k = 0; k < lr.image.pixels.size(); k += 3) gray = gray && lr.image.pixels[k] == lr.image.pixels[k + 1] && lr.image.pixels[k] == lr.image.pixels[k + 2];
    CHECK(gray);
    const auto [lo, hi] = std::minmax_element(lr.image.pixels.begin(), lr.image.pixels.end());
    CHECK(int(*hi) - int(*lo) > 100);  // normalised to a visible range
    layer.view_channel = 100000;
    CHECK(worker.render_now(layer).error.find("channel 100000") != std::string::npos);
    layer.view_block = 9;
    CHECK(worker.render_now(layer).error.find("block 9") != std::string::npos);

    // Directions computed with the shared model equal the library's; the model was loaded once.
    const auto model = store.open(r.model_path, "cpu");
    const DirectionsResult pca = run_directions_job(*model, {DirectionsJobKind::pca, 3, 500});
    CHECK(pca.set.directions.size() == 3);
    CHECK(pca.set.model_fingerprint == res.model->fingerprint);
    CHECK(run_directions_job(*model, {DirectionsJobKind::sefa, 2, 0}).set.directions[1].name == "sefa1");
    CHECK_THROWS_AS(run_directions_job(*model, {DirectionsJobKind::samples, 0, 5000}), ArgumentError);
    CHECK(store.loads() == 1);

    // Device output: CUDA images stay on the device for CUDA-GL interop; on the CPU nothing changes.
    RenderRequest on_device = r;
    on_device.spec.seeds = {42};
    on_device.device_output = true;
    RenderResult dr = worker.render_now(on_device);
    REQUIRE_MESSAGE(dr.error.empty(), dr.error);
    CHECK_FALSE(dr.device_image);
    CHECK(max_diff(dr.image, golden_seed42()) <= 1);
    if (torch::cuda::is_available()) {
        on_device.device = "cuda";
        dr = worker.render_now(on_device);
        REQUIRE_MESSAGE(dr.error.empty(), dr.error);
        REQUIRE(dr.device_image);
        CHECK(dr.image.pixels.empty());
        CHECK(dr.device_image->width == 32);
        CHECK(max_diff(dr.device_image->to_host(), golden_seed42()) <= 1);
    } else {
        MESSAGE("no CUDA device: the device-image half of this test is skipped");
    }

    r.model_path = "/nonexistent/model.pkl";
    res = worker.render_now(r);
    CHECK(res.image.pixels.empty());
    CHECK(res.error.find("/nonexistent/model.pkl") != std::string::npos);
}

TEST_CASE("viewer: --device auto picks CUDA only when LibTorch sees a GPU, and cuda without one is refused") {
    CHECK(resolve_device("cpu") == "cpu");
    if (torch::cuda::is_available()) {
        CHECK(resolve_device("auto") == "cuda");
    } else {
        CHECK(resolve_device("auto") == "cpu");
        try {
            resolve_device("cuda:0");
            FAIL("cuda:0 was accepted without CUDA");
        } catch (const ArgumentError& e) {
            CHECK(error_text(e).rfind("--device cuda:0: no CUDA device", 0) == 0);  // the viewer's flag
        }
    }
    // Fields the viewer has a widget for are named by the widget.
    const ArgumentError lpips(Message() << "the LPIPS loss needs a VGG16 TorchScript file (" << field("Projector.lpips") << ")");
    CHECK(error_text(lpips) == "the LPIPS loss needs a VGG16 TorchScript file (Projection > vgg16.pt)");
    CHECK(std::string(lpips.what()) == "the LPIPS loss needs a VGG16 TorchScript file (Projector.lpips)");
    CHECK(error_text(std::runtime_error("two\nlines")) == "two");
}

TEST_CASE("viewer: script lines edit the state, and requests compare by content") {
    ViewerState s;
    CHECK(apply_script_line(s, "seed 3.5 2"));
    CHECK(s.seed_x == 3.5);
    CHECK(s.seed_y == 2);
    CHECK(apply_script_line(s, "psi 0.7"));
    CHECK(apply_script_line(s, "noise none"));
    CHECK(request_from(s).spec.noise_mode == NoiseMode::none);
    CHECK(apply_script_line(s, "noise random"));
    CHECK(request_from(s).spec.noise_seed == 0u);  // the viewer's random noise is seeded
    CHECK(apply_script_line(s, "noise none"));
    CHECK(apply_script_line(s, "mix 7 0 2 1"));
    CHECK(request_from(s).spec.mix_seed == 7u);
    CHECK(request_from(s).spec.mix_layers == std::vector<int>{0, 2, 1});
    CHECK(apply_script_line(s, "cutoff -1"));
    CHECK_FALSE(request_from(s).spec.cutoff);
    CHECK(request_from(s).spec.seed_blend == blend_seeds(3.5, 2));
    CHECK_THROWS_WITH_AS(apply_script_line(s, "noise custom"), doctest::Contains("const, random or none"), ArgumentError);
    CHECK_THROWS_WITH_AS(apply_script_line(s, "project a.png 10 sideways"), doctest::Contains("align must be none, center, face or auto"),
                         ArgumentError);
    CHECK(apply_script_line(s, "project a.png 10 center w+"));
    REQUIRE(s.project_request);
    CHECK(s.project_request->align == io::AlignMode::center);
    CHECK(s.project_request->options.space == LatentSpace::w_plus);
    CHECK(s.project_request->options.steps == 10);
    CHECK_FALSE(s.project_request->options.optimize_noise);
    CHECK_FALSE(apply_script_line(s, "dance"));
    CHECK_THROWS_AS(apply_script_line(s, "slider 0 1"), ArgumentError);
    CHECK_THROWS_AS(apply_script_line(s, "psi"), ArgumentError);
    const RenderRequest a = request_from(s);
    RenderRequest b = a;
    b.id = 99;
    CHECK(same_render(a, b));
    b.spec.psi = 0.5;
    CHECK_FALSE(same_render(a, b));
    b = a;
    b.spec.ws = torch::zeros({1, 2, 3});
    RenderRequest b2 = a;
    b2.spec.ws = torch::zeros({1, 2, 3});  // another tensor with the same values
    CHECK(same_render(b, b2));
    b2.spec.ws[0][1][2] = 1;
    CHECK_FALSE(same_render(b, b2));
    // Every field counts, down to a direction's scale.
    DirectionSlider d;
    d.direction.vector = {1, 0, 0};
    s.directions.push_back(d);
    const RenderRequest c = request_from(s);
    s.directions[0].direction.scale = 2;
    CHECK_FALSE(same_render(c, request_from(s)));
    const RenderRequest scaled = request_from(s);
    s.directions[0].direction.name = "renamed";  // not part of the image
    CHECK(same_render(scaled, request_from(s)));
    s.morph.w_keys = {torch::zeros({1, 1, 3}), torch::ones({1, 1, 3})};
    s.morph_labels = {"a", "b"};
    const RenderRequest no_preview = request_from(s);
    s.morph_preview = true;
    const RenderRequest preview = request_from(s);
    CHECK_FALSE(same_render(no_preview, preview));
    REQUIRE(preview.morph);
    CHECK_FALSE(preview.morph->render.mix_seed);  // keyframes hold their own mixing and edits
    s.morph.path.loop = true;
    CHECK_FALSE(same_render(preview, request_from(s)));
}

namespace {
// Steps the dispatcher until it is idle (at most a minute).
void settle(Dispatcher& d, ViewerState& s) {
    for (int k = 0; k < 12000; ++k) {
        d.step(s, 0.005);
        if (d.idle(s)) return;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    FAIL("the dispatcher did not settle");
}
}  // namespace

TEST_CASE("viewer: a live blend with a second model shows what `latentkit blend` makes, saves it, and turns off") {
    lktest::TempDir dir;
    const std::string base = data_path("golden/tiny32.pkl");
    lktest::finetuned_stand_in(dir / "detail.safetensors");
    ViewerState s;
    Dispatcher d;
    s.model_path = base;
    s.seed_x = 42;
    auto shown = [&]() {
        std::optional<Image8> image;
        for (int k = 0; k < 12000; ++k) {
            DispatchEvents e = d.step(s, 0.005);
            if (e.render && e.render->error.empty()) image = e.render->image;
            if (d.idle(s) && image) return *image;
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        FAIL("the dispatcher did not settle");
        return Image8{};
    };
    const Image8 plain = shown();
    REQUIRE(apply_script_line(s, "blend " + (dir / "detail.safetensors") + " 64"));
    CHECK(max_diff(shown(), plain) == 0);  // above the top resolution: the base exactly
    REQUIRE(apply_script_line(s, "blend " + (dir / "detail.safetensors") + " 16 1 detail"));
    const Image8 mixed = shown();
    CHECK(max_diff(mixed, plain) > 5);
    REQUIRE(apply_script_line(s, "blend-save " + (dir / "blend.safetensors")));
    settle(d, s);
    REQUIRE_MESSAGE(s.error.empty(), s.error);
    REQUIRE(lktest::run({"blend", base, dir / "detail.safetensors", dir / "cli.safetensors", "--from-res", "16", "--width", "1", "--mapping", "detail"}).code == 0);
    for (const char* file : {"blend.safetensors", "cli.safetensors"}) {
        REQUIRE(lktest::run({"generate", "-m", dir / file, "--seeds", "42", "-o", dir / (std::string(file) + ".out")}).code == 0);
        CHECK(max_diff(read_png(dir / (std::string(file) + ".out/seed0042.png")), mixed) == 0);  // saved = shown = the command's
    }
    REQUIRE(apply_script_line(s, "blend-off"));
    CHECK(max_diff(shown(), plain) == 0);  // the open model was not changed
    REQUIRE(apply_script_line(s, "blend " + (dir / "missing.pkl") + " 16"));
    settle(d, s);
    CHECK(s.error.find("missing.pkl") != std::string::npos);
}

TEST_CASE("viewer: the dispatcher without a window: one model for every job, results into the state, failures as messages") {
    lktest::TempDir dir;
    const std::string model = data_path("golden/tiny32.pkl");
    write_png(dir / "target.png", golden_seed42());
    ViewerState s;
    Dispatcher d;
    s.model_path = model;
    s.seed_x = 42;
    settle(d, s);
    CHECK(s.model.resolution == 32);
    CHECK(s.error.empty());
    CHECK(s.current_ws.size() == static_cast<size_t>(s.model.num_ws * s.model.w_dim));

    // Directions: computed, loaded from a file, a missing file reported while the rest keeps working.
    s.job_request = DirectionsJob{DirectionsJobKind::pca, 2, 500};
    settle(d, s);
    REQUIRE(s.directions.size() == 2);
    s.direction_files = {dir / "missing.json"};
    settle(d, s);
    CHECK(s.error.find("missing.json") != std::string::npos);
    CHECK(s.directions.size() == 2);
    s.directions[0].strength = 2;
    settle(d, s);
    CHECK(s.error.empty());  // the next image clears it

    // Labelling through the task thread.
    s.job_request = DirectionsJob{DirectionsJobKind::samples, 0, 8, 0, 1.0};
    settle(d, s);
    CHECK(s.label_grid_version == 1);
    CHECK(s.label_grid.width > 0);
    REQUIRE(s.label_seeds.size() == 8);
    s.label_marks = {1, 1, -1, -1, 0, 0, 0, 0};
    s.fit_marks = true;
    settle(d, s);
    CHECK(s.directions.size() == 3);

    // Projection, used and saved; a morph exported; still one load of the model.
    ProjectionJob job;
    job.target_path = dir / "target.png";
    job.align = io::AlignMode::none;
    job.options.steps = 5;
    job.options.w_avg_samples = 200;
    s.project_request = job;
    settle(d, s);
    REQUIRE_MESSAGE(d.projection().done, d.projection().error);
    s.use_projection = true;
    s.project_save = dir / "p.npz";
    s.save_projection = true;
    settle(d, s);
    CHECK(s.spec.ws.defined());
    CHECK(read_projected_w(dir / "p.npz", s.model.num_ws, s.model.w_dim).shape[0] == 1);
    s.morph_add = true;
    settle(d, s);
    s.spec.ws = torch::Tensor();
    settle(d, s);
    s.morph_add = true;
    settle(d, s);
    CHECK(s.morph_labels == std::vector<std::string>{"projected / loaded latent (edited)", "seed 42.00, 0.00 (edited)"});
    s.morph.path.frames_per_transition = 2;
    s.morph_export = MorphExportJob{"", dir / "frames/"};
    settle(d, s);
    CHECK(d.export_state().done);
    CHECK(fs::exists(dir / "frames/frame000002.png"));
    CHECK(d.models().loads() == 1);

    // Library messages reach the log panel.
    latentkit::log_warn("a warning from the library");
    d.step(s, 0.005);
    REQUIRE_FALSE(s.log.empty());
    CHECK(s.log.back().level == "warning");
    CHECK(s.log.back().text == "a warning from the library");

    // Files by kind, as a drop or the browser gives them.
    d.open_file(s, dir / "p.npz");
    settle(d, s);
    CHECK(s.spec.ws.defined());
    d.open_file(s, dir / "notes.txt");
    CHECK(s.error.find("notes.txt: not a model") != std::string::npos);
    d.open_file(s, dir / "target.png");
    REQUIRE(s.project_request);
    CHECK(s.project_request->target_path == dir / "target.png");
    s.project_request.reset();
    s.browse_dir = dir.path();
    s.browse_refresh = true;
    settle(d, s);
    std::vector<std::string> names;
    for (const auto& e : s.browse_entries) names.push_back(e.name);
    CHECK(names == std::vector<std::string>{"..", "frames", "p.npz", "target.png"});
    d.open_file(s, data_path("formats/rosi_32.pt"));
    settle(d, s);
    CHECK(s.model.path == data_path("formats/rosi_32.pt"));
    CHECK(d.models().loads() == 2);
}

TEST_CASE("viewer: scripts run one line a frame, wait, sync, and wait for file tasks") {
    ScriptRunner r = ScriptRunner::from_text("seed 1\n# a comment\nwait 2\nsync\npsi 0.5\n");
    CHECK(r.next(false, false) == std::optional<std::string>("seed 1"));
    CHECK_FALSE(r.next(false, false));  // wait 2
    CHECK_FALSE(r.next(false, false));
    CHECK_FALSE(r.next(false, false));
    CHECK_FALSE(r.next(false, false));  // sync: not idle
    CHECK_FALSE(r.next(true, false));   // sync passes
    CHECK_FALSE(r.next(true, true));    // a file task is still running
    CHECK(r.next(true, false) == std::optional<std::string>("psi 0.5"));
    CHECK(r.done());
    CHECK_THROWS_AS(ScriptRunner::from_text("wait x").next(true, false), ArgumentError);
    CHECK_THROWS_AS(ScriptRunner::from_file("/nonexistent/script.txt"), IoError);
    CHECK(file_kind("a/B.SafeTensors") == FileKind::model);
    CHECK(file_kind("x.jpeg") == FileKind::photo);
    CHECK(file_kind("x.npz") == FileKind::latent);
    CHECK(file_kind("x.json") == FileKind::directions);
    CHECK(file_kind("x.mp4") == FileKind::other);
}
