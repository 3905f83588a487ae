// Video writing and reading through libav, and the other frame sinks.
#include "test_util.h"

#include <cmath>
#include <filesystem>

#include "latentkit/atomic_file.h"
#include "latentkit/error.h"
#include "latentkit/io/config.h"
#include "latentkit/png.h"
#include "latentkit/io/video.h"

using namespace latentkit;
namespace fs = std::filesystem;

namespace {
// Smooth moving colour pattern, like generator output.
Image8 pattern(int w, int h, int t) {
    Image8 im;
    im.width = w;
    im.height = h;
    im.channels = 3;
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            im.pixels.push_back(static_cast<uint8_t>(128 + 100 * std::sin(0.11 * x + 0.2 * t)));
            im.pixels.push_back(static_cast<uint8_t>(128 + 100 * std::cos(0.07 * y - 0.1 * t)));
            im.pixels.push_back(static_cast<uint8_t>((x + y + 3 * t) % 256 / 2 + 60));
        }
    return im;
}
double psnr(const Image8& a, const Image8& b) {
    double se = 0;
    for (size_t k = 0; k < a.pixels.size(); ++k) se += std::pow(double(a.pixels[k]) - double(b.pixels[k]), 2);
    const double mse = se / a.pixels.size();
    return mse == 0 ? 99.0 : 10 * std::log10(255.0 * 255.0 / mse);
}
}  // namespace

#if LATENTKIT_HAVE_LIBAV
TEST_CASE("video: H.264 and VP9 round trips keep frame count, size and quality") {
    lktest::TempDir dir;
    for (const std::string name : {"a.mp4", "b.webm", "c.mkv"}) {
        INFO(name);
        const int w = 96, h = 64, n = 24;
        io::VideoOptions vo;
        vo.fps = 24;
        auto sink = io::make_async(io::open_frame_sink(dir / name, w, h, vo));
        for (int t = 0; t < n; ++t) sink->write(pattern(w, h, t));
        sink->finish();
        io::VideoReader reader(dir / name);
        CHECK(reader.width() == w);
        CHECK(reader.height() == h);
        CHECK(reader.fps() == doctest::Approx(24.0));
        Image8 frame;
        int count = 0;
        double worst = 99;
        while (reader.read(frame)) worst = std::min(worst, psnr(frame, pattern(w, h, count++)));
        CHECK(count == n);
        CHECK(worst > 35.0);
    }
}

TEST_CASE("video: odd sizes are padded to even, and GIF works") {
    lktest::TempDir dir;
    auto sink = io::open_frame_sink(dir / "odd.mp4", 33, 17);
    for (int t = 0; t < 5; ++t) sink->write(pattern(33, 17, t));
    sink->finish();
    io::VideoReader r(dir / "odd.mp4");
    CHECK(r.width() == 34);
    CHECK(r.height() == 18);
    auto gif = io::open_frame_sink(dir / "x.gif", 20, 20);
    for (int t = 0; t < 3; ++t) gif->write(pattern(20, 20, t));
    gif->finish();
    io::VideoReader g(dir / "x.gif");
    Image8 f;
    int n = 0;
    while (g.read(f)) ++n;
    CHECK(n == 3);
}

TEST_CASE("video: reading real and damaged files") {
    lktest::TempDir dir;
    auto sink = io::open_frame_sink(dir / "v.mp4", 64, 64);
    for (int t = 0; t < 30; ++t) sink->write(pattern(64, 64, t));
    sink->finish();
    const std::string bytes = read_file(dir / "v.mp4");
    lktest::write_bytes(dir / "cut.mp4", bytes.substr(0, bytes.size() / 3));
    // A truncated file either fails to open or yields fewer frames; it never crashes.
    try {
        io::VideoReader r(dir / "cut.mp4");
        Image8 f;
        int n = 0;
        while (r.read(f)) ++n;
        CHECK(n < 30);
    } catch (const IoError& e) {
        CHECK(std::string(e.what()).find("cut.mp4") != std::string::npos);
    }
    lktest::write_bytes(dir / "junk.mp4", "not a video");
    CHECK_THROWS_WITH_AS(io::VideoReader(dir / "junk.mp4"), doctest::Contains("junk.mp4"), IoError);
    CHECK_THROWS_AS(io::VideoReader(dir / "missing.mp4"), IoError);
}
#endif

TEST_CASE("frame sinks: unknown extensions, abandoned videos and PNG folders") {
    lktest::TempDir dir;
    CHECK_THROWS_AS(io::open_frame_sink(dir / "x.avi9", 8, 8), ArgumentError);
    CHECK(fs::is_empty(dir.path()));
    CHECK_THROWS_AS(io::open_frame_sink("/nonexistent-folder/x.mp4", 8, 8), IoError);
    lktest::write_bytes(dir / "keep.mp4", "old");
    {
        auto sink = io::open_frame_sink(dir / "keep.mp4", 16, 16);
        sink->write(pattern(16, 16, 0));
        CHECK_THROWS_AS(sink->write(pattern(8, 8, 0)), ArgumentError);
    }  // abandoned without finish(): the old file stays, no temporary is left
    CHECK(read_file(dir / "keep.mp4") == "old");
    CHECK(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()) == 1);

    auto frames = io::open_frame_sink(dir / "frames/", 10, 6);
    for (int t = 0; t < 3; ++t) frames->write(pattern(10, 6, t));
    CHECK_FALSE(fs::exists(dir / "frames"));
    frames->finish();
    CHECK(read_png(dir / "frames/frame000002.png").pixels == pattern(10, 6, 2).pixels);
    CHECK_THROWS_AS(io::open_frame_sink(dir / "frames/", 10, 6), IoError);  // not mixed into existing frames
}
