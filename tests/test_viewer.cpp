// The viewer: render worker and state logic without a window, and the real viewer under Xvfb.
#include "test_util.h"
#include "cli_util.h"

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

namespace {

int max_diff(const Image8& a, const Image8& b) {
    REQUIRE(a.pixels.size() == b.pixels.size());
    int d = 0;
    for (size_t k = 0; k < a.pixels.size(); ++k) d = std::max(d, std::abs(int(a.pixels[k]) - int(b.pixels[k])));
    return d;
}

// The golden image of seed 42 (sample 2) in the reference 8-bit conversion, as RGB.
Image8 golden_seed42() {
    const torch::Tensor u8 = to_uint8_nhwc(lktest::golden_tensor("tiny32.expected.safetensors", "img_psi1.0_const").narrow(0, 2, 1))[0].contiguous();
    return Image8{32, 32, 3, std::vector<uint8_t>(u8.data_ptr<uint8_t>(), u8.data_ptr<uint8_t>() + u8.numel())};
}

// Runs the viewer under a virtual X server.
lktest::Result run_viewer(const std::vector<std::string>& args, bool display = true) {
    static const lktest::TempDir logs;
    std::string cmd = display ? "xvfb-run -a -s '-screen 0 1280x1024x24' " : "env -u DISPLAY -u WAYLAND_DISPLAY ";
    cmd += lktest::quote(LATENTKIT_VIEWER);
    for (const auto& a : args) cmd += " " + lktest::quote(a);
    cmd += " >" + lktest::quote(logs / "out") + " 2>" + lktest::quote(logs / "err");
    const int status = std::system(cmd.c_str());
    lktest::Result r;
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = read_file(logs / "out");
    r.err = read_file(logs / "err");
    return r;
}

}  // namespace

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

TEST_CASE("viewer: under Xvfb files dropped on the window open by kind, and a bad one is a message") {
    lktest::TempDir dir;
    const std::string model = data_path("golden/tiny32.pkl"), other = data_path("formats/sg3sg2_32.pkl");
    write_png(dir / "photo.png", golden_seed42());
    REQUIRE(lktest::run({"directions", "sefa", "-m", other, "-k", "2", "-o", dir / "sefa.json"}).code == 0);
    REQUIRE(lktest::run({"project", "-m", other, "-t", dir / "photo.png", "--align", "none", "--steps", "3", "-o", dir / "p"}).code == 0);
    latentkit::write_file_atomic(dir / "notes.txt", "x", 1);
    const std::string script = "sync\ndrop " + other + "\nsync\ndrop " + (dir / "sefa.json") + "\nsync\ndrop " + (dir / "photo.png") +
                               "\nsync\ndrop " + (dir / "p/projected_w.npz") + "\nsync\nbrowse " + dir.path() + "\nsync\ndrop " + (dir / "notes.txt") +
                               "\nwait 2\nquit\n";
    latentkit::write_file_atomic(dir / "script.txt", script.data(), script.size());
    const lktest::Result r = run_viewer({model, "--script", dir / "script.txt", "--dump-state", dir / "state.json"});
    INFO("stderr: " << r.err);
    REQUIRE(r.code == 0);
    const auto state = nlohmann::json::parse(read_file(dir / "state.json"));
    CHECK(state["model"] == other);
    CHECK(state["model_loads"] == 2);
    CHECK(state["directions"] == 2);
    CHECK(state["projection"]["done"] == true);
    CHECK(state["projected_latent"] == true);
    CHECK(state["error"].get<std::string>().find("notes.txt: not a model") != std::string::npos);
    CHECK(state["browse"] == std::vector<std::string>{"..", "p", "photo.png", "sefa.json"});
}

TEST_CASE("viewer: under Xvfb it shows generate's image, follows a scripted slider, and shows load errors") {
    lktest::TempDir dir;
    const std::string model = data_path("golden/tiny32.pkl");
    REQUIRE(lktest::run({"directions", "pca", "-m", model, "--seeds", "0-999", "-k", "2", "-o", dir / "pca.json"}).code == 0);
    const std::string script = "seed 42\nsync\nwait 2\nsave-image " + (dir / "a.png") + "\nscreenshot " + (dir / "window.png") +
                               "\ndirection " + (dir / "pca.json#0") + "\nslider 0 3\nsync\nwait 2\nsave-image " + (dir / "b.png") + "\ncompute sefa 2\nsync\nquit\n";
    latentkit::write_file_atomic(dir / "script.txt", script.data(), script.size());
    lktest::Result r = run_viewer({model, "--script", dir / "script.txt", "--dump-state", dir / "state.json"});
    INFO("stderr: " << r.err);
    REQUIRE(r.code == 0);
    const Image8 a = read_png(dir / "a.png");
    CHECK(max_diff(a, golden_seed42()) <= 1);  // the image the viewer shows is generate's image
    const Image8 b = read_png(dir / "b.png");
    CHECK(max_diff(a, b) > 10);  // the slider moved it
    const Image8 w = read_png(dir / "window.png");
    CHECK(w.width == 1280);
    CHECK(w.height == 800);
    std::set<uint32_t> colours;
    for (size_t k = 0; k + 2 < w.pixels.size(); k += 3 * 97) colours.insert(w.pixels[k] << 16 | w.pixels[k + 1] << 8 | w.pixels[k + 2]);
    CHECK(colours.size() > 20);  // panels and image, not a blank window
    const auto state = nlohmann::json::parse(read_file(dir / "state.json"));
    CHECK(state["directions"] == 3);  // the loaded one and two computed
    if (!torch::cuda::is_available()) {
        CHECK(state["device"] == "cpu");  // auto without a GPU
        CHECK(state["upload"] == "host memory");
    } else {
        CHECK(state["device"] == "cuda");
        CHECK(state["upload"].get<std::string>().find("CUDA-GL interop") != std::string::npos);
    }

    // A model that cannot be loaded: the error is shown in the window, the viewer keeps running.
    const std::string broken = "sync\nwait 2\nscreenshot " + (dir / "broken.png") + "\nquit\n";
    latentkit::write_file_atomic(dir / "broken.txt", broken.data(), broken.size());
    r = run_viewer({dir / "missing.pkl", "--script", dir / "broken.txt", "--dump-state", dir / "broken.json"});
    CHECK(r.code == 0);
    CHECK(nlohmann::json::parse(read_file(dir / "broken.json"))["error"].get<std::string>().find("missing.pkl") != std::string::npos);
    CHECK(fs::exists(dir / "broken.png"));
}

TEST_CASE("viewer: a projection run from the viewer equals the command's and becomes the current latent") {
    lktest::TempDir dir;
    const std::string model = data_path("golden/tiny32.pkl");
    REQUIRE(lktest::run({"generate", "-m", model, "--seeds", "3", "-o", dir / "gen"}).code == 0);
    const std::string target = dir / "gen/seed0003.png";
    lktest::Result r = lktest::run({"project", "-m", model, "-t", target, "--align", "none", "--steps", "20", "--fixed-noise", "-o", dir / "cli"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    const std::string script = "project " + target + " 20 none w\nsync\nuse-projection\nsync\nwait 2\nsave-image " + (dir / "v.png") +
                               "\nsave-projection " + (dir / "v.npz") + "\nwait 1\nquit\n";
    latentkit::write_file_atomic(dir / "script.txt", script.data(), script.size());
    r = run_viewer({model, "--script", dir / "script.txt", "--dump-state", dir / "state.json"});
    INFO("stderr: " << r.err);
    REQUIRE(r.code == 0);
    const auto state = nlohmann::json::parse(read_file(dir / "state.json"));
    CHECK(state["projection"]["done"] == true);
    CHECK(state["projection"]["alignment"] == "resize");
    CHECK(state["projected_latent"] == true);
    CHECK(max_diff(read_png(dir / "v.png"), read_png(dir / "cli/proj.png")) <= 1);
    r = lktest::run({"generate", "-m", model, "--projected-w", dir / "v.npz", "-o", dir / "regen"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    CHECK(max_diff(read_png(dir / "regen/proj00.png"), read_png(dir / "cli/proj.png")) <= 1);
}

TEST_CASE("viewer: labelling marks in a sample grid become a direction slider") {
    ViewerState s;
    s.model.w_dim = 3;
    s.label_seeds = {0, 1, 2, 3, 4};
    s.label_w = {1, 0, 0, 2, 0, 1, -1, 0, 0, -2, 1, 0, 0, 5, 5};
    s.label_marks = {1, 1, -1, -1, 0};
    CHECK(apply_script_line(s, "fit-marks x"));
    CHECK(s.fit_marks);
    const DirectionSet set = fit_marked_direction(s.label_w, s.label_marks, 3, s.label_name);
    REQUIRE(set.directions.size() == 1);
    CHECK(set.directions[0].name == "x");
    CHECK(set.directions[0].vector[0] > 0.9);  // positives have x > 0
    CHECK_THROWS_AS(apply_script_line(s, "mark 9 +"), ArgumentError);
    CHECK_THROWS_WITH_AS(fit_marked_direction(s.label_w, {1, 0, -1, -1, 0}, 3, "x"), doctest::Contains("at least 2 positive"), ArgumentError);

    lktest::TempDir dir;
    const std::string script = "seed 7\nsync\nwait 2\nsave-image " + (dir / "before.png") +
                               "\nlabel-samples 0 8\nsync\nmark 0 +\nmark 1 +\nmark 2 -\nmark 3 -\nfit-marks mine\nsync\nslider 0 3\nsync\n"
                               "wait 2\nsave-image " + (dir / "after.png") + "\nscreenshot " + (dir / "window.png") + "\nquit\n";
    latentkit::write_file_atomic(dir / "script.txt", script.data(), script.size());
    const lktest::Result r = run_viewer({data_path("golden/tiny32.pkl"), "--script", dir / "script.txt", "--dump-state", dir / "state.json"});
    INFO("stderr: " << r.err);
    REQUIRE(r.code == 0);
    const auto state = nlohmann::json::parse(read_file(dir / "state.json"));
    CHECK(state["error"] == "");
    CHECK(state["directions"] == 1);
    CHECK(max_diff(read_png(dir / "before.png"), read_png(dir / "after.png")) > 10);
}

TEST_CASE("viewer: morph keyframes from the screen, preview and export") {
    lktest::TempDir dir;
    const std::string model = data_path("golden/tiny32.pkl");
    REQUIRE(lktest::run({"generate", "-m", model, "--seeds", "1,2", "-o", dir / "gen"}).code == 0);
    const std::string script = "seed 1\nsync\nkey\nseed 2\nsync\nkey\nexport " + (dir / "frames/") + " 4\nsync\nmorph-preview 0.5\nsync\nwait 2\n"
                               "save-image " + (dir / "mid.png") + "\nquit\n";
    latentkit::write_file_atomic(dir / "script.txt", script.data(), script.size());
    const lktest::Result r = run_viewer({model, "--script", dir / "script.txt", "--dump-state", dir / "state.json"});
    INFO("stderr: " << r.err);
    REQUIRE(r.code == 0);
    const auto state = nlohmann::json::parse(read_file(dir / "state.json"));
    CHECK(state["morph"]["keys"] == 2);
    CHECK(state["morph"]["done"] == true);
    CHECK(state["morph"]["frames"] == 5);
    CHECK(max_diff(read_png(dir / "frames/frame000000.png"), read_png(dir / "gen/seed0001.png")) <= 1);
    CHECK(max_diff(read_png(dir / "frames/frame000004.png"), read_png(dir / "gen/seed0002.png")) <= 1);
    CHECK(max_diff(read_png(dir / "mid.png"), read_png(dir / "frames/frame000002.png")) <= 1);
}

TEST_CASE("viewer: without a display it says so in one line and exits 1") {
    const lktest::Result r = run_viewer({"--frames", "1"}, false);
    CHECK(r.code == 1);
    CHECK(r.err == "latentkit-viewer: error: no display (set DISPLAY, or run it under xvfb-run)\n");
    if (!torch::cuda::is_available()) {  // a --device it cannot use is refused before any window
        const lktest::Result c = run_viewer({"--device", "cuda", "--frames", "1"}, false);
        CHECK(c.code == 1);
        CHECK(c.err == "latentkit-viewer: error: --device cuda: no CUDA device is available (this LibTorch has no CUDA, or no GPU is visible)\n");
    }
}

TEST_CASE("viewer: without a model argument or a remembered one it opens the bundled model and says so") {
    lktest::TempDir dir;
    std::string saved_model, saved_xdg;
    if (const char* v = std::getenv("LATENTKIT_MODEL")) saved_model = v;
    if (const char* v = std::getenv("XDG_CONFIG_HOME")) saved_xdg = v;
    unsetenv("LATENTKIT_MODEL");
    setenv("XDG_CONFIG_HOME", (dir / "config").c_str(), 1);  // no remembered model
    const std::string script = "sync\nwait 2\nsave-image " + (dir / "a.png") + "\nquit\n";
    latentkit::write_file_atomic(dir / "script.txt", script.data(), script.size());
    const lktest::Result r = run_viewer({"--script", dir / "script.txt", "--dump-state", dir / "state.json"});
    if (!saved_model.empty()) setenv("LATENTKIT_MODEL", saved_model.c_str(), 1);
    if (!saved_xdg.empty()) setenv("XDG_CONFIG_HOME", saved_xdg.c_str(), 1);
    else unsetenv("XDG_CONFIG_HOME");
    INFO("stderr: " << r.err);
    REQUIRE(r.code == 0);
    CHECK(r.err.find("no model given: opening the bundled model") != std::string::npos);
    const auto state = nlohmann::json::parse(read_file(dir / "state.json"));
    CHECK(state["error"].get<std::string>().empty());
    CHECK(state["model"].get<std::string>().find("emoji64.safetensors") != std::string::npos);
    const Image8 a = read_png(dir / "a.png");
    CHECK(a.width == 64);
    CHECK(a.height == 64);
}

TEST_CASE("viewer: opens each other kind of model file and shows generate's image") {
    lktest::TempDir dir;
    for (const std::string file : {"tf_tiny32.pkl", "sg3sg2_32.pkl", "rosi_32.pt"}) {
        INFO(file);
        const std::string png = dir / (file + ".png");
        const std::string script = "seed 42\nsync\nwait 2\nsave-image " + png + "\nquit\n";
        latentkit::write_file_atomic(dir / "script.txt", script.data(), script.size());
        const lktest::Result r = run_viewer({data_path("formats/" + file), "--script", dir / "script.txt"});
        INFO("stderr: " << r.err);
        REQUIRE(r.code == 0);
        const std::string exp = "../formats/" + fs::path(file).stem().string() + ".expected.safetensors";
        const torch::Tensor u8 = to_uint8_nhwc(lktest::golden_tensor(exp, "img_psi1.0_const").narrow(0, 2, 1))[0].contiguous();
        CHECK(max_diff(read_png(png), Image8{32, 32, 3, std::vector<uint8_t>(u8.data_ptr<uint8_t>(), u8.data_ptr<uint8_t>() + u8.numel())}) <= 1);
    }
}

TEST_CASE("viewer: a StyleGAN3 model with the translate and rotate controls, layer view and morph export") {
    lktest::TempDir dir;
    const std::string script = "seed 42\nsync\nwait 2\nsave-image " + (dir / "a.png") + "\npsi 0.7\ntranslate 0.125 -0.25\nrotate 17.2\nsync\nwait 2\n" +
                               "save-image " + (dir / "b.png") + "\nscreenshot " + (dir / "window.png") + "\nkey\nseed 1\nsync\nkey\nexport " +
                               (dir / "morph/") + " 3\nlayer 5\nsync\nwait 2\nsave-image " + (dir / "layer.png") + "\nsync\nquit\n";
    latentkit::write_file_atomic(dir / "script.txt", script.data(), script.size());
    const lktest::Result r = run_viewer({data_path("formats/sg3t_32.pkl"), "--script", dir / "script.txt", "--dump-state", dir / "state.json"});
    INFO("stderr: " << r.err);
    REQUIRE(r.code == 0);
    auto sample = [](const char* tensor) {
        const torch::Tensor u8 = to_uint8_nhwc(lktest::golden_tensor("../formats/sg3t_32.expected.safetensors", tensor).narrow(0, 2, 1))[0].contiguous();
        return Image8{32, 32, 3, std::vector<uint8_t>(u8.data_ptr<uint8_t>(), u8.data_ptr<uint8_t>() + u8.numel())};
    };
    CHECK(max_diff(read_png(dir / "a.png"), sample("img_psi1.0")) <= 1);
    CHECK(max_diff(read_png(dir / "b.png"), sample("img_psi0.7_transformed")) <= 1);  // gen_images.py's transform
    CHECK(read_png(dir / "layer.png").width > 0);
    const Image8 w = read_png(dir / "window.png");  // the window with the StyleGAN3 controls
    CHECK(w.width == 1280);
    std::set<uint32_t> colours;
    for (size_t k = 0; k + 2 < w.pixels.size(); k += 3 * 97) colours.insert(w.pixels[k] << 16 | w.pixels[k + 1] << 8 | w.pixels[k + 2]);
    CHECK(colours.size() > 20);
    const auto state = nlohmann::json::parse(read_file(dir / "state.json"));
    CHECK(state["family"] == "StyleGAN3");
    CHECK(state["error"] == "");
    CHECK(state["morph"]["done"] == true);
    CHECK(fs::exists(dir / "morph/frame000002.png"));
    CHECK(max_diff(read_png(dir / "morph/frame000000.png"), read_png(dir / "b.png")) <= 1);  // the export keeps the transform
}

TEST_CASE("viewer: a texture's CUDA registration is released before every re-allocation, host uploads included") {
    using namespace latentkit::viewer;
    // A stand-in for CudaGlInterop that knows whether it holds a registration.
    struct StandIn : TextureInterop {
        std::string why = "stand-in";
        bool registered = false;
        int copies = 0, releases = 0;
        bool available() const override { return true; }
        const std::string& reason() const override { return why; }
        bool copy(const DeviceImage&, unsigned) override {
            ++copies;
            registered = true;
            return true;
        }
        void release() override {
            if (registered) ++releases;
            registered = false;
        }
    } interop;
    int reallocations = 0, stale = 0;
    {
        TextureStorage storage;
        // What GlImage::upload does for each kind of image (GL calls aside).
        auto allocate_if_needed = [&](int w, int h) {
            if (!storage.prepare(w, h)) return;
            ++reallocations;
            if (interop.registered) ++stale;  // glTexImage2D under a live registration
        };
        auto device_upload = [&](int w, int h) {
            allocate_if_needed(w, h);
            DeviceImage image;
            image.width = w;
            image.height = h;
            if (interop.copy(image, 1)) storage.registered(&interop);
        };
        device_upload(64, 64);
        allocate_if_needed(64, 64);    // a host image of the same size: written into the storage, no release
        CHECK(interop.registered);
        allocate_if_needed(128, 128);  // a host image of another size: the storage is re-specified
        CHECK_FALSE(interop.registered);
        device_upload(128, 128);
        device_upload(32, 32);
        CHECK(interop.registered);
    }
    CHECK(reallocations == 3);
    CHECK(stale == 0);
    CHECK(interop.releases == 3);  // at 128 (host), at 32 (device) and when the texture goes
    CHECK_FALSE(interop.registered);

    Dispatcher d(true);
    CHECK(d.device_output());
    d.stop_device_output();
    CHECK_FALSE(d.device_output());
}
