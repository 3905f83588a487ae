// Ctrl-C (SIGINT) and SIGTERM during long subcommands: the run stops at its next step, removes its
// temporary files, leaves existing files untouched, keeps what can be kept, and exits 130 with one line.
#include <fmt/format.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "cli_util.h"
#include "latentkit/atomic_file.h"
#include "latentkit/npz.h"
#include "latentkit/png.h"
#include "test_util.h"

using namespace latentkit;
namespace fs = std::filesystem;

namespace {
// Names in `dir` (recursively) that look like temporary files.
std::vector<std::string> temporaries(const std::string& dir) {
    std::vector<std::string> out;
    for (const auto& e : fs::recursive_directory_iterator(dir)) {
        const std::string name = e.path().filename().string();
        if (name.find(".tmp") != std::string::npos) out.push_back(e.path().string());
    }
    return out;
}
const std::string kModel = "golden/tiny32.pkl";
}  // namespace

TEST_CASE("interrupt: morph on SIGINT leaves no temporary file and the earlier video untouched") {
    lktest::TempDir d;
    const std::string out = d / "m.mp4";
    lktest::write_bytes(out, "earlier");
    const auto r = lktest::run_and_signal({"morph", "-m", lktest::data_path(kModel), "--seeds", "0,1,2", "--frames", "3000", "-o", out},
                                          "stderr:loaded", "INT");
    lktest::check_interrupted(r, "was not written");
    CHECK(read_file(out) == "earlier");
    CHECK(temporaries(d.path()).empty());
}

TEST_CASE("interrupt: generate on SIGTERM keeps the whole images written and no partial one") {
    lktest::TempDir d;
    const auto r = lktest::run_and_signal({"generate", "-m", lktest::data_path(kModel), "--seeds", "0-20000", "-o", d / "out"},
                                          d / "out/seed0000.png", "TERM");
    lktest::check_interrupted(r, "image(s) written to");
    int images = 0;
    for (const auto& e : fs::directory_iterator(d / "out")) {
        ++images;
        CHECK(read_png(e.path().string()).width == 32);  // every file is a whole PNG
    }
    CHECK(images >= 1);
    CHECK(images < 20001);
    CHECK(r.err.find(fmt::format("kept the {} of 20001", images)) != std::string::npos);
    CHECK(temporaries(d.path()).empty());
}

TEST_CASE("interrupt: project on SIGINT writes the latent so far, its images and video, marked interrupted") {
    lktest::TempDir d;
    const std::string target = d / "gen/seed0003.png";
    REQUIRE(lktest::run({"generate", "-m", lktest::data_path(kModel), "--seeds", "3", "-o", d / "gen"}).code == 0);
    const auto r = lktest::run_and_signal({"project", "-m", lktest::data_path(kModel), "-t", target, "--align", "none", "--loss", "pixel",
                                           "--steps", "100000", "--w-avg-samples", "1000", "--save-video", "-o", d / "p"},
                                          "stderr:projecting", "INT");
    lktest::check_interrupted(r, "interrupted_at_step");
    const auto info = nlohmann::json::parse(read_file(d / "p/projection.json"));
    REQUIRE(info.contains("interrupted_at_step"));
    const int steps = info["interrupted_at_step"].get<int>();
    CHECK(steps >= 1);
    CHECK(steps < 100000);
    CHECK(r.err.find(fmt::format("stopped at step {} of 100000", steps)) != std::string::npos);
    CHECK(read_npz(d / "p/projected_w.npz").size() == 1);
    CHECK(read_png(d / "p/proj.png").width == 32);
    CHECK(fs::file_size(d / "p/proj.mp4") > 0);
    CHECK(temporaries(d.path()).empty());
}

TEST_CASE("interrupt: dataset on SIGINT leaves no partial zip") {
    lktest::TempDir d;
    REQUIRE(lktest::run({"generate", "-m", lktest::data_path(kModel), "--seeds", "0-199", "-o", d / "src"}).code == 0);
    const auto r = lktest::run_and_signal({"dataset", "-s", d / "src", "-d", d / "ds.zip", "-r", "1024"}, "stderr:building", "INT");
    lktest::check_interrupted(r, "ds.zip was not written");
    CHECK_FALSE(fs::exists(d / "ds.zip"));
    CHECK(temporaries(d.path()).empty());
}
