// Audio: decoding and analysis (a click track made here), the audio map, audio-driven morphs in the
// library, and `latentkit morph --audio` end to end (streams checked with libavformat).
#include "test_util.h"
#include "cli_util.h"

extern "C" {
#include <libavformat/avformat.h>
}

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>

#include "latentkit/atomic_file.h"
#include "latentkit/audio_morph.h"
#include "latentkit/error.h"
#include "latentkit/io/audio.h"
#include "latentkit/io/video.h"
#include "latentkit/latent.h"
#include "latentkit/model_io.h"
#include "latentkit/networks.h"

using namespace latentkit;
namespace fs = std::filesystem;

namespace {
const std::vector<double> kClicks = {0.5, 1.3, 2.1, 2.9, 3.5};

size_t feature(AudioFeature f) { return static_cast<size_t>(f); }

// Streams of a media file: (codec name, duration in seconds).
std::vector<std::pair<std::string, double>> streams_of(const std::string& path) {
    AVFormatContext* fmt = nullptr;
    REQUIRE(avformat_open_input(&fmt, path.c_str(), nullptr, nullptr) == 0);
    REQUIRE(avformat_find_stream_info(fmt, nullptr) >= 0);
    std::vector<std::pair<std::string, double>> out;
    for (unsigned k = 0; k < fmt->nb_streams; ++k) {
        const AVStream* st = fmt->streams[k];
        out.emplace_back(avcodec_get_name(st->codecpar->codec_id), static_cast<double>(st->duration) * av_q2d(st->time_base));
    }
    avformat_close_input(&fmt);
    return out;
}

// Mean absolute change between consecutive frames (entry 0 is 0).
std::vector<double> frame_changes(const torch::Tensor& images) {
    std::vector<double> d(static_cast<size_t>(images.size(0)), 0.0);
    for (int64_t f = 1; f < images.size(0); ++f) d[static_cast<size_t>(f)] = (images[f] - images[f - 1]).abs().mean().item<double>();
    return d;
}

AudioLink pulse_link(AudioFeature feature, AudioTarget target, double gain, double decay, std::string direction = {}) {
    AudioLink l;
    l.feature = feature;
    l.target = target;
    l.gain = gain;
    l.decay = decay;
    l.direction = std::move(direction);
    return l;
}
}  // namespace

TEST_CASE("audio: analysis finds each click of a click track in its frame, decoding cuts excerpts") {
    lktest::TempDir dir;
    lktest::write_click_track(dir / "clicks.wav", kClicks, 4.0);
    const io::AudioClip clip = io::decode_audio(dir / "clicks.wav");
    CHECK(clip.sample_rate == 44100);
    CHECK(clip.channels == 2);
    CHECK(clip.frames() == 4 * 44100);
    const AudioFeatures f = io::analyse_audio(clip, 30);
    REQUIRE(f.frames.size() == 120);
    std::vector<int> hits;
    for (size_t k = 0; k < f.frames.size(); ++k)
        if (f.frames[k][feature(AudioFeature::percussive)] > 0) hits.push_back(static_cast<int>(k));
    REQUIRE(hits.size() == kClicks.size());
    for (size_t k = 0; k < kClicks.size(); ++k) {
        INFO("click at " << kClicks[k] << " s, onset in frame " << hits[k]);
        CHECK(std::abs(hits[k] - static_cast<int>(std::floor(kClicks[k] * 30))) <= 1);
    }
    // louder where the clicks are than in the silence between them
    CHECK(f.frames[15][feature(AudioFeature::loudness)] > 0.5f);
    CHECK(f.frames[25][feature(AudioFeature::loudness)] < 0.1f);

    const io::AudioClip part = io::decode_audio(dir / "clicks.wav", 1.0, 2.0);
    CHECK(part.frames() == 2 * 44100);
    CHECK(part.samples[static_cast<size_t>((1.3 - 1.0) * 44100) * 2 + 100] == clip.samples[static_cast<size_t>(1.3 * 44100) * 2 + 100]);
    lktest::write_click_track(dir / "mono.wav", kClicks, 1.0, 1);
    CHECK(io::decode_audio(dir / "mono.wav").channels == 1);
}

TEST_CASE("audio: a missing, damaged or silent-less file and a start past the end are one-line errors naming the file") {
    lktest::TempDir dir;
    CHECK_THROWS_WITH_AS(io::decode_audio(dir / "none.wav"), doctest::Contains("none.wav: cannot open"), IoError);
    lktest::write_bytes(dir / "junk.mp3", std::string(5000, '\x5a'));
    CHECK_THROWS_WITH_AS(io::decode_audio(dir / "junk.mp3"), doctest::Contains("junk.mp3: not a readable audio file"), IoError);
    {
        auto sink = io::open_frame_sink(dir / "silent.mp4", 16, 16);
        Image8 im;
        im.width = im.height = 16;
        im.channels = 3;
        im.pixels.assign(16 * 16 * 3, 100);
        for (int k = 0; k < 5; ++k) sink->write(im);
        sink->finish();
    }
    CHECK_THROWS_WITH_AS(io::decode_audio(dir / "silent.mp4"), doctest::Contains("silent.mp4: has no audio stream"), IoError);
    lktest::write_click_track(dir / "short.wav", {0.1}, 1.0);
    CHECK_THROWS_WITH_AS(io::decode_audio(dir / "short.wav", 5.0), doctest::Contains("past the end"), ArgumentError);
}

TEST_CASE("audio map: presets and files round-trip, bad maps are refused naming the problem") {
    for (AudioPreset p : {AudioPreset::pulse, AudioPreset::motion, AudioPreset::beats}) {
        const AudioMap m = audio_map_preset(p);
        const AudioMap back = parse_audio_map(audio_map_json(m), "preset");
        REQUIRE(back.links.size() == m.links.size());
        CHECK(audio_map_json(back) == audio_map_json(m));
    }
    const auto bad = [](const std::string& text, const std::string& needle) {
        INFO(text);
        CHECK_THROWS_WITH_AS(parse_audio_map(text, "m.json"), doctest::Contains(needle.c_str()), ArgumentError);
    };
    bad("{", "m.json: not JSON");
    bad(R"({"links": [{"feature": "volume", "target": "speed"}]})", "unknown feature 'volume'");
    bad(R"({"links": [{"feature": "beat", "target": "direction"}]})", "needs \"direction\"");
    bad(R"({"links": [{"feature": "beat", "target": "psi", "smooth": -1}]})", "\"smooth\" is -1");
    bad(R"({"links": [{"feature": "beat", "target": "psi", "gian": 2}]})", "unknown key \"gian\"");
    bad(R"({"speed": 1, "links": []})", "unknown key \"speed\"");
    bad(R"({"base_speed": 1})", "\"links\" must be a list");
}

TEST_CASE("audio map: a decaying pulse, smoothing, eased steps and class changes every N events") {
    AudioMap m;
    m.links = {pulse_link(AudioFeature::percussive, AudioTarget::noise, 2.0, 0.1)};
    AudioLink smooth = pulse_link(AudioFeature::loudness, AudioTarget::psi, 1.0, 0);
    smooth.smooth = 0.5;
    AudioLink step = pulse_link(AudioFeature::beat, AudioTarget::step, 1.0, 0);
    step.smooth = 0.1;
    AudioLink cls = pulse_link(AudioFeature::beat, AudioTarget::class_index, 1.0, 0);
    cls.every = 2;
    m.links.push_back(smooth);
    m.links.push_back(step);
    m.links.push_back(cls);
    AudioFeatures f;
    f.fps = 10;
    f.frames.assign(30, AudioFrame{});
    f.frames[5][feature(AudioFeature::percussive)] = 1;
    for (int k = 0; k < 30; ++k) f.frames[static_cast<size_t>(k)][feature(AudioFeature::loudness)] = 1;
    for (int k : {10, 20, 25}) f.frames[static_cast<size_t>(k)][feature(AudioFeature::beat)] = 1;
    const auto c = audio_controls(m, f);
    CHECK(c[4].noise == 0);
    CHECK(c[5].noise == doctest::Approx(2.0));
    CHECK(c[6].noise == doctest::Approx(2.0 * std::exp(-1.0)));  // 0.1 s later, time constant 0.1 s
    CHECK(c[0].psi == doctest::Approx(1 - std::exp(-0.2)));        // smoothed towards 1 over 0.5 s
    CHECK(c[29].psi > 0.99);
    CHECK(c[9].steps == 0);
    CHECK(c[10].steps == 0);  // a step starts where the last one ended ...
    CHECK(c[11].steps == 1);  // ... and takes `smooth` seconds (one frame here)
    CHECK(c[21].steps == 2);
    CHECK(c[26].steps == 3);
    CHECK(c[19].class_steps == 0);
    CHECK(c[20].class_steps == 1);  // every second beat
    CHECK(c[29].class_steps == 1);
    // speed links travel the path once; steps add one transition each, wrapping around
    std::vector<AudioControl> moving(4);
    for (auto& x : moving) x.speed = 1;
    CHECK(audio_path_positions(moving, 2.0) == std::vector<double>{0, 0.5, 1.0, 1.5});
    moving[3].steps = 1;
    CHECK(audio_path_positions(moving, 2.0)[3] == doctest::Approx(0.5));
}

TEST_CASE("audio morph: frame-to-frame change peaks within one frame of each click") {
    lktest::TempDir dir;
    lktest::write_click_track(dir / "clicks.wav", kClicks, 4.0);
    const AudioFeatures f = io::analyse_audio(io::decode_audio(dir / "clicks.wav"), 30);
    AudioMap map;
    map.links = {pulse_link(AudioFeature::percussive, AudioTarget::direction, 3.0, 0.15, "random")};
    const Model model = load_model(lktest::data_path("golden/tiny32.pkl"));
    MorphSpec spec;
    spec.render.seeds = {1, 2};
    AudioMorphRenderer r(model.G_ema, spec, map, audio_controls(map, f));
    REQUIRE(r.frame_count() == 120);
    const std::vector<double> d = frame_changes(r.render(0, r.frame_count()));
    // the frames of largest change are the clicks' frames, one each
    std::vector<size_t> order(d.size());
    for (size_t k = 0; k < order.size(); ++k) order[k] = k;
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return d[a] > d[b]; });
    std::vector<size_t> top(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(kClicks.size()));
    std::sort(top.begin(), top.end());
    for (size_t k = 0; k < kClicks.size(); ++k) {
        INFO("click at " << kClicks[k] << " s; peak at frame " << top[k]);
        CHECK(std::abs(static_cast<double>(top[k]) - std::floor(kClicks[k] * 30)) <= 1.0);
    }
    CHECK(d[top[0]] > 5 * d[static_cast<size_t>(0.9 * 30)]);  // a clear peak over the decay between clicks
}

TEST_CASE("audio morph: psi, noise, class and named directions follow the controls") {
    const Model model = load_model(lktest::data_path("variants/sg3sg2_cond16.pkl"));
    auto G = model.G_ema;
    REQUIRE(G->config.c_dim > 1);
    MorphSpec spec;
    spec.render.seeds = {3, 4};  // no speed: the frames stay at the first
    spec.render.class_index = 0;
    spec.render.psi = 0.8;
    AudioMap map;
    map.links = {pulse_link(AudioFeature::beat, AudioTarget::class_index, 1, 0), pulse_link(AudioFeature::bass, AudioTarget::psi, 1, 0),
                 pulse_link(AudioFeature::onset, AudioTarget::noise, 1, 0), pulse_link(AudioFeature::treble, AudioTarget::direction, 1, 0, "d")};
    std::vector<AudioControl> c(3);
    c[1].class_steps = 1;
    c[2].psi = -0.3;
    c[2].noise = 1.0;
    for (auto& x : c) x.directions = {0.0};
    c[2].directions = {2.0};
    Direction d;
    d.name = "d";
    d.vector.assign(static_cast<size_t>(G->config.w_dim), 0.0f);
    d.vector[0] = 1;
    d.scale = 0.5;
    AudioMorphRenderer r(G, spec, map, c, {d});
    const torch::Tensor ws = r.latents(0, 3);
    const torch::Tensor z = z_from_seeds({3}, G->config.z_dim);
    CHECK(lktest::max_abs_diff(ws[0], map_to_ws(*G, z, class_labels(G->config.c_dim, 0, 1), 0.8)[0]) < 1e-5);
    CHECK(lktest::max_abs_diff(ws[1], map_to_ws(*G, z, class_labels(G->config.c_dim, 1, 1), 0.8)[0]) < 1e-5);
    torch::Tensor expected = map_to_ws(*G, z, class_labels(G->config.c_dim, 0, 1), 0.5)[0];
    expected.select(1, 0).add_(1.0);  // strength 2 x scale 0.5 along the first axis
    CHECK(lktest::max_abs_diff(ws[2], expected) < 1e-5);
    const torch::Tensor img = r.render(0, 3);
    RenderSpec plain;
    plain.ws = ws.narrow(0, 2, 1);
    CHECK(lktest::max_abs_diff(img[2], Renderer(G).render(plain)[0]) > 1e-3);  // the noise is twice as strong
    plain.noise_gain = {2.0f};
    CHECK(lktest::max_abs_diff(img[2], Renderer(G).render(plain)[0]) < 1e-5);
    CHECK(r.notes().empty());

    map.links = {pulse_link(AudioFeature::beat, AudioTarget::direction, 1, 0, "smile")};
    CHECK_THROWS_WITH_AS(AudioMorphRenderer(G, spec, map, c, {d}), doctest::Contains("direction 'smile'"), ArgumentError);
}

TEST_CASE("cli: morph --audio renders as long as the sound, carries it, and refuses bad audio without writing") {
    lktest::TempDir dir;
    lktest::write_click_track(dir / "clicks.wav", kClicks, 4.0);
    const std::string model = lktest::data_path("golden/tiny32.pkl");
    auto r = lktest::run({"morph", "--model", model, "--seeds", "1,2,3", "--audio", dir / "clicks.wav", "--audio-preset", "beats", "--fps", "24",
                          "--preset", "ultrafast", "--out", dir / "song.mp4"});
    REQUIRE(r.code == 0);
    auto streams = streams_of(dir / "song.mp4");
    REQUIRE(streams.size() == 2);
    CHECK(streams[0].first == "h264");
    CHECK(streams[1].first == "aac");
    CHECK(streams[0].second == doctest::Approx(4.0).epsilon(0.001));
    CHECK(std::abs(streams[0].second - streams[1].second) <= 1.0 / 24);
    io::VideoReader reader(dir / "song.mp4");
    Image8 frame;
    int frames = 0;
    while (reader.read(frame)) ++frames;
    CHECK(frames == 96);

    // an excerpt, a grid, StyleGAN3, a map file
    lktest::write_bytes(dir / "map.json", audio_map_json(audio_map_preset(AudioPreset::motion)));
    r = lktest::run({"morph", "--model", lktest::data_path("formats/sg3t_32.pkl"), "--seeds", "1,2,3,4", "--grid", "2x1", "--audio", dir / "clicks.wav",
                     "--start", "1", "--duration", "1.5", "--audio-map", dir / "map.json", "--preset", "ultrafast", "--out", dir / "sg3.mkv"});
    REQUIRE(r.code == 0);
    streams = streams_of(dir / "sg3.mkv");
    REQUIRE(streams.size() == 2);
    io::VideoReader sg3(dir / "sg3.mkv");
    CHECK(sg3.width() == 64);
    frames = 0;
    while (sg3.read(frame)) ++frames;
    CHECK(frames == 45);

    lktest::write_bytes(dir / "junk.mp3", std::string(5000, '\x5a'));
    r = lktest::run({"morph", "--model", model, "--seeds", "1,2", "--audio", dir / "junk.mp3", "--out", dir / "bad.mp4"});
    lktest::check_error(r, 1, "junk.mp3: not a readable audio file");
    CHECK_FALSE(fs::exists(dir / "bad.mp4"));
    r = lktest::run({"morph", "--model", model, "--seeds", "1,2", "--frames", "3", "--out", dir / "silent.mp4"});
    REQUIRE(r.code == 0);
    r = lktest::run({"morph", "--model", model, "--seeds", "1,2", "--audio", dir / "silent.mp4", "--out", dir / "bad.mp4"});
    lktest::check_error(r, 1, "silent.mp4: has no audio stream");
    CHECK_FALSE(fs::exists(dir / "bad.mp4"));
    r = lktest::run({"morph", "--model", model, "--seeds", "1,2", "--audio", dir / "song.mp4", "--duration", "0.5", "--out", dir / "again.mp4"});
    CHECK(r.code == 0);  // the sound of a video latentkit wrote
    r = lktest::run({"morph", "--model", model, "--seeds", "1,2", "--audio", dir / "clicks.wav", "--out", dir / "bad.gif"});
    lktest::check_error(r, 2, "bad.gif: sound needs an .mp4, .mkv or .mov file");
    CHECK_FALSE(fs::exists(dir / "bad.gif"));
    lktest::write_bytes(dir / "badmap.json", R"({"links": [{"feature": "beat", "target": "warp"}]})");
    r = lktest::run({"morph", "--model", model, "--seeds", "1,2", "--audio", dir / "clicks.wav", "--audio-map", dir / "badmap.json", "--out", dir / "x.mp4"});
    lktest::check_error(r, 2, "badmap.json: link 0: unknown target 'warp'");
    CHECK_FALSE(fs::exists(dir / "x.mp4"));
    r = lktest::run({"morph", "--model", model, "--seeds", "1,2", "--start", "2", "--out", dir / "x.mp4"});
    lktest::check_error(r, 2, "go with --audio");

    r = lktest::run({"bench", "audio", "--model", model, "--audio", dir / "clicks.wav", "--frames", "6"});
    REQUIRE(r.code == 0);
    CHECK(r.out.find("analysis ") != std::string::npos);
    CHECK(r.out.find("morph with audio") != std::string::npos);
    CHECK(r.out.find("ratio") != std::string::npos);
}

TEST_CASE("interrupt: morph --audio on SIGINT leaves no temporary file and the earlier video untouched") {
    lktest::TempDir dir;
    lktest::write_click_track(dir / "long.wav", {1, 2, 3}, 120.0);
    const std::string out = dir / "song.mp4";
    lktest::write_bytes(out, "earlier");
    const auto r = lktest::run_and_signal({"morph", "-m", lktest::data_path("golden/tiny32.pkl"), "--seeds", "0,1,2", "--audio", dir / "long.wav", "-o", out},
                                          "stderr:percussive onsets", "INT");
    lktest::check_interrupted(r, "was not written");
    CHECK(latentkit::read_file(out) == "earlier");
    for (const auto& e : fs::directory_iterator(dir.path())) CHECK(e.path().filename().string().find(".tmp") == std::string::npos);
}
