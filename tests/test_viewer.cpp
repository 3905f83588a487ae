// The real viewer under Xvfb (and without a display): images, files, scripts, projection, labels, morphs.
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
using lktest::run_viewer;

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

TEST_CASE("viewer: the Curate panel ranks the unlabelled emoji most uncertain first, takes marks, saves labels and exports") {
    lktest::TempDir dir;
    const std::string script_py = std::string(LATENTKIT_SOURCE_DIR) + "/scripts/emoji_images.py";
    REQUIRE(std::system(("/usr/bin/python3 " + lktest::quote(script_py) + " " + lktest::quote(dir / "all") + " >/dev/null").c_str()) == 0);
    REQUIRE(std::system(("/usr/bin/python3 " + lktest::quote(script_py) + " --subset faces " + lktest::quote(dir / "faces") + " >/dev/null").c_str()) == 0);
    std::set<std::string> face_bytes;
    for (const auto& e : fs::directory_iterator(dir / "faces")) face_bytes.insert(read_file(e.path().string()));
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir / "all")) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    fs::create_directories(dir / "some");
    std::string labels = "file,label\n";
    int ones = 0, zeros = 0;
    for (size_t k = 0; k < names.size(); k += 8) {  // every 8th glyph: about 490, a dozen of them faces
        fs::copy_file(dir / ("all/" + names[k]), dir / ("some/" + names[k]));
        const bool face = face_bytes.count(read_file(dir / ("all/" + names[k]))) > 0;
        if (face ? ones < 6 : zeros < 6) labels += names[k] + (face ? ",1\n" : ",0\n"), ++(face ? ones : zeros);
    }
    REQUIRE(ones == 6);
    lktest::write_bytes(dir / "labels.csv", labels);
    const std::string script = "curate-open " + (dir / "some") + "\nsync\ncurate-load " + (dir / "labels.csv") + "\nsync\ncurate-mark 0 1\nsync\n" +
                               "curate-mark 0 skip\nsync\ncurate-save " + (dir / "saved.csv") + "\ncurate-export " + (dir / "chosen") +
                               " 0.5\nsync\nscreenshot " + (dir / "window.png") + "\nquit\n";
    write_file_atomic(dir / "script.txt", script.data(), script.size());
    const lktest::Result r = run_viewer({data_path("golden/tiny32.pkl"), "--script", dir / "script.txt", "--dump-state", dir / "state.json"});
    INFO("stderr: " << r.err);
    REQUIRE(r.code == 0);
    const auto state = nlohmann::json::parse(read_file(dir / "state.json"));
    INFO(state.dump());
    CHECK(state["error"] == "");
    CHECK(state["curate"]["ones"] == 7);  // 6 loaded + 1 marked
    CHECK(state["curate"]["zeros"] == 6);
    CHECK(state["curate"]["status"].get<std::string>().find("held-out accuracy") != std::string::npos);
    const auto p = state["curate"]["probabilities"].get<std::vector<double>>();
    REQUIRE(p.size() == 12);
    for (size_t k = 0; k + 1 < p.size(); ++k) CHECK(std::abs(p[k] - 0.5) <= std::abs(p[k + 1] - 0.5) + 1e-12);  // most uncertain first
    const std::string saved = read_file(dir / "saved.csv");
    CHECK(std::count(saved.begin(), saved.end(), '\n') == 1 + 13);
    CHECK(fs::exists(dir / "chosen/dataset.json"));
    CHECK(std::distance(fs::directory_iterator(dir / "chosen"), fs::directory_iterator()) >= 8);  // 7 labelled 1, the chosen ones, dataset.json
    CHECK(fs::exists(dir / "window.png"));
}
