// The viewer's live parts: OSC messages, state lines, the live audio clock and mapping, recordings, and
// end to end: a scripted session recorded under Xvfb and replayed by `morph --replay`, OSC over loopback.
#include "test_util.h"
#include "cli_util.h"
#include "viewer_test_util.h"

#include <fmt/format.h>
#include <lo/lo.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "latentkit/atomic_file.h"
#include "latentkit/error.h"
#include "latentkit/io/video.h"
#include "latentkit/png.h"
#include "live_audio.h"
#include "osc_server.h"
#include "recording.h"
#include "viewer_state.h"

using namespace latentkit;
using namespace latentkit::viewer;
namespace fs = std::filesystem;
using lktest::data_path;

namespace {
// A port for this test run (tests run in parallel processes).
int test_port(int offset) { return 20000 + static_cast<int>(getpid() % 20000) + offset; }

void send_osc(int port, const char* path, const char* types, float a, float b = 0) {
    lo_address to = lo_address_new("127.0.0.1", std::to_string(port).c_str());
    if (std::string(types) == "f") lo_send(to, path, "f", a);
    else if (std::string(types) == "ff") lo_send(to, path, "ff", a, b);
    else if (std::string(types) == "s") lo_send(to, path, "s", "abc");
    lo_address_free(to);
}

DirectionSlider slider(const std::string& name, int w_dim) {
    DirectionSlider d;
    d.direction.name = name;
    d.direction.vector.assign(static_cast<size_t>(w_dim), 0.0f);
    d.direction.vector[0] = 1;
    d.file = "test";
    return d;
}
}  // namespace

TEST_CASE("live: OSC messages become script lines, bad ones become error lines, and the server keeps listening") {
    CHECK(osc_script_line("/latentkit/psi", {"0.7"}) == "psi 0.7");
    CHECK(osc_script_line("/latentkit/direction/smile", {"1.5"}) == "slider smile 1.5");
    CHECK(osc_script_line("/latentkit/gain/2", {"0.5"}) == "audio-gain 2 0.5");
    CHECK_THROWS_WITH_AS(osc_script_line("/other/psi", {}), doctest::Contains("not under /latentkit/"), ArgumentError);
    CHECK_THROWS_AS(osc_script_line("/latentkit/", {}), ArgumentError);

    const int port = test_port(0);
    OscServer server(port, false);
    CHECK_THROWS_WITH_AS(OscServer(port, false), doctest::Contains("cannot listen on UDP port"), Error);
    send_osc(port, "/latentkit/psi", "f", 0.5f);
    send_osc(port, "/nowhere", "f", 1);
    send_osc(port, "/latentkit/seed", "ff", 3, 0.5f);
    send_osc(port, "/latentkit/psi", "s", 0);
    send_osc(port, "/latentkit/direction/smile", "f", 1.5f);
    send_osc(port, "/latentkit/gain/0", "f", 2);
    std::vector<std::string> lines;
    for (int k = 0; k < 100 && lines.size() < 6; ++k) {
        for (auto& l : server.take()) lines.push_back(l);
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    REQUIRE(lines.size() == 6);
    CHECK(lines[0] == "psi 0.5");
    CHECK(lines[1].rfind("error OSC: '/nowhere' is not under /latentkit/", 0) == 0);
    CHECK(lines[2] == "seed 3 0.5");
    CHECK(lines[3] == "psi abc");
    ViewerState s;
    s.directions.push_back(slider("smile", 4));
    CHECK(apply_script_line(s, lines[0]));
    CHECK(apply_script_line(s, lines[2]));
    CHECK_THROWS_AS(apply_script_line(s, lines[3]), ArgumentError);
    CHECK(apply_script_line(s, lines[4]));
    CHECK(apply_script_line(s, lines[5]));
    CHECK(s.spec.psi == 0.5);
    CHECK(s.seed_x == 3);
    CHECK(s.seed_y == 0.5);
    CHECK(s.directions[0].strength == 1.5);
    CHECK(s.audio_commands == std::vector<std::string>{"audio-gain 0 2"});
    CHECK(server.status().find("6 messages") != std::string::npos);
}

TEST_CASE("live: the state's lines rebuild the same render request") {
    ViewerState a;
    a.seed_x = 2.25;
    a.seed_y = -1.0 / 3;
    a.spec.psi = 0.1 + 0.2;
    a.spec.cutoff = 4;
    a.spec.noise_mode = NoiseMode::random;
    a.spec.noise_seed = 9;
    a.spec.noise_gain = {1.7f};
    a.spec.mix_seed = 5;
    a.spec.mix_layers = {1, 3};
    a.spec.translate_x = 0.125;
    a.spec.rotate = 10;
    a.directions = {slider("a", 4), slider("b", 4)};
    a.directions[1].strength = -2.5;
    ViewerState b;
    b.directions = a.directions;
    b.directions[1].strength = 0;
    for (const auto& line : state_lines(a)) REQUIRE(apply_script_line(b, line));
    CHECK(same_render(request_from(a), request_from(b)));
    apply_script_line(b, "unmix");
    CHECK_FALSE(same_render(request_from(a), request_from(b)));
}

TEST_CASE("live: a sound file moves the state on a fixed clock, stopping restores it, no device is said in one line") {
    lktest::TempDir dir;
    lktest::write_click_track(dir / "clicks.wav", {0.5}, 2.0);
    ModelStore models;
    LiveAudio live(models);
    live.set_fixed_step(1.0 / kLiveAudioFps);
    ViewerState s;
    s.model_path = data_path("golden/tiny32.pkl");
    s.spec.psi = 0.7;
    s.audio_commands = {"audio-map pulse", "audio " + (dir / "clicks.wav")};
    live.step(s, 0);
    REQUIRE(s.error.empty());
    CHECK(s.audio.source == dir / "clicks.wav");
    CHECK_FALSE(s.audio.status.empty());  // playing, or no output device: silent
    for (int k = 0; k < 31; ++k) live.step(s, 0);  // to just after the click
    CHECK(s.audio.time == doctest::Approx(32.0 / 60));
    CHECK(s.seed_x > 0);  // the pulse preset's drift
    REQUIRE(s.directions.size() == 1);
    CHECK(s.directions[0].direction.name == "random");
    CHECK(s.directions[0].strength > 1.0);  // the percussive pulse
    CHECK(s.audio.meter[static_cast<size_t>(AudioFeature::loudness)] > 0);
    const double seed = s.seed_x;
    s.audio_commands = {"audio-stop"};
    live.step(s, 0);
    CHECK(s.directions[0].strength == doctest::Approx(0.0).epsilon(1e-9));
    CHECK(s.spec.psi == doctest::Approx(0.7));
    CHECK(s.seed_x == seed);  // where the sound took it
    CHECK(s.audio.source.empty());

    s.audio_commands = {"audio " + (dir / "missing.wav")};
    live.step(s, 0);
    CHECK(s.error.find("missing.wav: cannot open") != std::string::npos);
    s.error.clear();
    s.audio_commands = {"audio-capture"};
    live.step(s, 0);
    if (!s.error.empty()) CHECK(s.error.find("input device") != std::string::npos);  // a machine without one
}

TEST_CASE("live: a recording without sound keeps the frames' time, and one across a new sound never goes back") {
    lktest::TempDir dir;
    lktest::write_click_track(dir / "clicks.wav", {0.2}, 1.0);
    ModelStore models;
    LiveAudio live(models);
    live.set_fixed_step(1.0 / kLiveAudioFps);
    ViewerState s;
    s.model_path = data_path("golden/tiny32.pkl");
    s.audio_commands = {"record " + (dir / "silent.json")};
    for (int k = 0; k < 30; ++k) {
        if (k == 15) s.spec.psi = 0.5;
        if (k == 20) s.audio_commands = {"audio " + (dir / "clicks.wav")};
        live.step(s, 0);
    }
    s.audio_commands = {"record-stop"};
    live.step(s, 0);
    const Recording r = load_recording(dir / "silent.json");  // refused if times went back
    CHECK(r.audio.empty());
    CHECK(r.duration == doctest::Approx(30.0 / 60).epsilon(0.05));
    REQUIRE(r.events.size() >= 2);
    const auto psi = std::find_if(r.events.begin(), r.events.end(), [](const RecordingEvent& e) {
        return std::find(e.lines.begin(), e.lines.end(), "psi 0.5") != e.lines.end();
    });
    REQUIRE(psi != r.events.end());
    CHECK(psi->time == doctest::Approx(15.0 / 60).epsilon(0.1));
}

TEST_CASE("live: recordings round-trip, and damaged ones are refused naming the file") {
    lktest::TempDir dir;
    Recording r;
    r.model = "m.pkl";
    r.audio = "/abs/song.wav";
    r.audio_start = 1.5;
    r.duration = 2;
    r.sliders = {slider("x", 3)};
    r.events = {{0, {"seed 1 0", "psi 0.7"}}, {0.5, {"slider 0 2"}}};
    save_recording(dir / "r.json", r);
    const Recording back = load_recording(dir / "r.json");
    CHECK(back.model == "m.pkl");
    CHECK(back.audio == "/abs/song.wav");
    CHECK(back.audio_start == 1.5);
    REQUIRE(back.events.size() == 2);
    CHECK(back.events[1].lines == std::vector<std::string>{"slider 0 2"});
    CHECK(back.sliders[0].direction.vector == r.sliders[0].direction.vector);
    lktest::write_bytes(dir / "bad.json", "{\"format\": \"latentkit-recording\", \"model\": 3}");
    CHECK_THROWS_WITH_AS(load_recording(dir / "bad.json"), doctest::Contains("bad.json: damaged recording"), ArgumentError);
    lktest::write_bytes(dir / "other.json", "[1, 2]");
    CHECK_THROWS_WITH_AS(load_recording(dir / "other.json"), doctest::Contains("other.json: not a latentkit recording"), ArgumentError);
}

TEST_CASE("live: a session recorded under Xvfb replays to the frames the viewer showed, with its sound") {
    lktest::TempDir dir;
    lktest::write_click_track(dir / "clicks.wav", {0.3, 0.9, 1.4}, 3.0);
    const std::string script = "sync\naudio " + (dir / "clicks.wav") + "\nrecord " + (dir / "rec.json") + "\nwait 30\naudio-pause\nsync\nsave-image " +
                               (dir / "a.png") + "\naudio-play\nwait 60\naudio-pause\nsync\nsave-image " + (dir / "b.png") + "\nrecord-stop\nquit\n";
    write_file_atomic(dir / "script.txt", script.data(), script.size());
    const lktest::Result r = lktest::run_viewer({data_path("golden/tiny32.pkl"), "--script", dir / "script.txt", "--dump-state", dir / "state.json"});
    INFO("stderr: " << r.err);
    REQUIRE(r.code == 0);
    CHECK(r.err.find("jack") == std::string::npos);  // the sound system's probing stays quiet
    REQUIRE(fs::exists(dir / "rec.json"));
    auto cli = lktest::run({"morph", "--replay", dir / "rec.json", "--fps", "60", "--out", dir / "frames/"});
    INFO("replay: " << cli.err);
    REQUIRE(cli.code == 0);
    std::vector<Image8> frames;
    for (int f = 0; fs::exists(dir / fmt::format("frames/frame{:06d}.png", f)); ++f) frames.push_back(read_png(dir / fmt::format("frames/frame{:06d}.png", f)));
    REQUIRE(frames.size() > 90);
    int at_a = -1, at_b = -1;
    const Image8 a = read_png(dir / "a.png"), b = read_png(dir / "b.png");
    for (size_t f = 0; f < frames.size(); ++f) {
        if (at_a < 0 && lktest::max_diff(frames[f], a) == 0) at_a = static_cast<int>(f);
        if (lktest::max_diff(frames[f], b) == 0) at_b = static_cast<int>(f);
    }
    CHECK(at_a >= 28);
    CHECK(at_b >= at_a + 60);
    CHECK(at_b == static_cast<int>(frames.size()) - 1);  // the last frame is the moment the recording stopped
    CHECK(lktest::max_diff(a, b) > 10);                   // the sound moved the view between them

    cli = lktest::run({"morph", "--replay", dir / "rec.json", "--out", dir / "replay.mp4"});
    REQUIRE(cli.code == 0);
    io::VideoReader reader(dir / "replay.mp4");
    CHECK(reader.fps() == doctest::Approx(30));
    cli = lktest::run({"morph", "--replay", dir / "script.txt", "--out", dir / "x.mp4"});
    lktest::check_error(cli, 2, "script.txt: not a recording");
    CHECK_FALSE(fs::exists(dir / "x.mp4"));
}

TEST_CASE("live: OSC messages over loopback steer a scripted viewer run, a bad one is shown and it keeps listening") {
    lktest::TempDir dir;
    const int port = test_port(1);
    const std::string script = "wait 400\nquit\n";
    write_file_atomic(dir / "script.txt", script.data(), script.size());
    std::atomic<bool> done{false};
    std::thread sender([&] {
        while (!done) {
            send_osc(port, "/latentkit/nothing", "f", 1);
            send_osc(port, "/latentkit/psi", "f", 0.42f);
            send_osc(port, "/latentkit/seed", "ff", 5, 0);
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
    });
    const lktest::Result r = lktest::run_viewer({data_path("golden/tiny32.pkl"), "--osc", std::to_string(port), "--script", dir / "script.txt",
                                                 "--dump-state", dir / "state.json"});
    done = true;
    sender.join();
    INFO("stderr: " << r.err);
    REQUIRE(r.code == 0);
    const auto state = nlohmann::json::parse(read_file(dir / "state.json"));
    CHECK(state["psi"].get<double>() == doctest::Approx(0.42));
    CHECK(state["seed_x"].get<double>() == 5);
    CHECK(state["error"].get<std::string>().find("unknown command 'nothing'") != std::string::npos);
    CHECK(state["osc"].get<std::string>().find("this machine only") != std::string::npos);
}
