// Photos (OpenCV decoding, EXIF orientation, truncation) and FFHQ face alignment (dlib).
#include "test_util.h"

#include <filesystem>

#include "latentkit/atomic_file.h"
#include "latentkit/error.h"
#include "latentkit/io/face_align.h"
#include "latentkit/io/image.h"
#include "latentkit/png.h"

using namespace latentkit;
namespace fs = std::filesystem;

namespace {
std::string opencv_data(const std::string& name) {
    const std::string p = std::string(LATENTKIT_OPENCV_DATA) + "/" + name;
    INFO("needs Debian's opencv-doc (scripts/setup.sh installs it): " << p);
    REQUIRE(fs::exists(p));
    return p;
}

uint8_t px(const Image8& im, int x, int y, int c) { return im.pixels[(size_t(y) * im.width + x) * im.channels + c]; }

// A JPEG APP1 segment holding only an EXIF orientation tag (big-endian TIFF).
std::string exif_segment(int orientation) {
    std::string tiff("MM\0\x2a\0\0\0\x08", 8);
    tiff += std::string("\0\x01", 2);                                                   // one entry
    tiff += std::string("\x01\x12\0\x03\0\0\0\x01", 8) + std::string(1, '\0') + char(orientation) + std::string(2, '\0');
    tiff += std::string(4, '\0');                                                       // no next IFD
    const std::string payload = std::string("Exif\0\0", 6) + tiff;
    const size_t len = payload.size() + 2;
    return std::string("\xFF\xE1", 2) + char(len >> 8) + char(len & 0xFF) + payload;
}
}  // namespace

TEST_CASE("image: a JPEG decodes as RGB, gray on request, with the EXIF orientation applied") {
    const std::string path = opencv_data("messi5.jpg");
    const Image8 rgb = io::read_image(path);
    CHECK(rgb.width == 548);
    CHECK(rgb.height == 342);
    CHECK(rgb.channels == 3);
    io::ReadImageOptions gray_opts;
    gray_opts.channels = 1;
    CHECK(io::read_image(path, gray_opts).channels == 1);

    const std::string bytes = read_file(path);
    CHECK(io::jpeg_exif_orientation(bytes) == 1);
    for (int orientation : {3, 6, 8}) {
        CAPTURE(orientation);
        const std::string tagged = bytes.substr(0, 2) + exif_segment(orientation) + bytes.substr(2);
        CHECK(io::jpeg_exif_orientation(tagged) == orientation);
        const Image8 turned = io::decode_image(tagged, "tagged.jpg");
        const int W = rgb.width, H = rgb.height;
        for (int c = 0; c < 3; ++c) {
            if (orientation == 3) {  // 180 degrees
                REQUIRE(turned.width == W);
                CHECK(px(turned, 0, 0, c) == px(rgb, W - 1, H - 1, c));
                CHECK(px(turned, 10, 20, c) == px(rgb, W - 11, H - 21, c));
            } else if (orientation == 6) {  // 90 degrees clockwise
                REQUIRE(turned.width == H);
                REQUIRE(turned.height == W);
                CHECK(px(turned, 0, 0, c) == px(rgb, 0, H - 1, c));
                CHECK(px(turned, 5, 7, c) == px(rgb, 7, H - 1 - 5, c));
            } else {  // 90 degrees counter-clockwise
                REQUIRE(turned.width == H);
                CHECK(px(turned, 0, 0, c) == px(rgb, W - 1, 0, c));
                CHECK(px(turned, 5, 7, c) == px(rgb, W - 1 - 7, 5, c));
            }
        }
    }
}

TEST_CASE("image: transparency is composited on the background colour") {
    lktest::TempDir dir;
    Image8 im{2, 1, 4, {10, 20, 30, 255, 10, 20, 30, 0}};
    write_png(dir / "a.png", im);
    io::ReadImageOptions o;
    o.background = {200, 100, 50};
    const Image8 out = io::read_image(dir / "a.png", o);
    REQUIRE(out.channels == 3);
    CHECK(std::vector<uint8_t>(out.pixels.begin(), out.pixels.end()) == std::vector<uint8_t>{10, 20, 30, 200, 100, 50});
}

TEST_CASE("image: empty, truncated, missing and non-image files fail naming the file") {
    lktest::TempDir dir;
    const std::string jpeg = read_file(opencv_data("messi5.jpg"));
    lktest::write_bytes(dir / "cut.jpg", jpeg.substr(0, jpeg.size() / 2));
    lktest::write_bytes(dir / "empty.jpg", "");
    lktest::write_bytes(dir / "text.png", "hello, this is not an image\n");
    const std::string png = read_file(opencv_data("box.png"));
    lktest::write_bytes(dir / "cut.png", png.substr(0, png.size() / 2));
    for (const auto& [name, needle] : std::vector<std::pair<std::string, std::string>>{
             {"cut.jpg", "truncated"}, {"empty.jpg", "empty"}, {"text.png", "not an image"}, {"cut.png", "truncated"}, {"missing.jpg", "missing.jpg"}}) {
        CAPTURE(name);
        try {
            io::read_image(dir / name);
            FAIL("no error");
        } catch (const IoError& e) {
            CHECK(std::string(e.what()).find(dir / name) != std::string::npos);
            CHECK(std::string(e.what()).find(needle) != std::string::npos);
        }
    }
}

TEST_CASE("align: the FFHQ quad from synthetic landmarks, upright and turned") {
    std::array<io::Point2, 68> lm{};
    for (int k = 36; k < 42; ++k) lm[k] = {40, 50};  // left eye
    for (int k = 42; k < 48; ++k) lm[k] = {60, 50};  // right eye
    lm[48] = {42, 70};                               // mouth corners
    lm[54] = {58, 70};
    auto q = io::ffhq_quad(lm);
    // eye centre (50, 50), eye-to-mouth 20 down: half-size max(2 * 20, 1.8 * 20) = 40 around (50, 52).
    const double expected[4][2] = {{10, 12}, {10, 92}, {90, 92}, {90, 12}};
    for (int k = 0; k < 4; ++k) {
        CHECK(q[k].x == doctest::Approx(expected[k][0]));
        CHECK(q[k].y == doctest::Approx(expected[k][1]));
    }
    // The same face turned 90 degrees clockwise about the origin ((x, y) -> (-y, x)): the quad turns with it.
    std::array<io::Point2, 68> turned{};
    for (int k = 0; k < 68; ++k) turned[k] = {-lm[k].y, lm[k].x};
    auto t = io::ffhq_quad(turned);
    for (int k = 0; k < 4; ++k) {
        CHECK(t[k].x == doctest::Approx(-q[k].y));
        CHECK(t[k].y == doctest::Approx(q[k].x));
    }
}

TEST_CASE("align: crop_quad resamples an axis-aligned quad exactly and pads quads leaving the photo") {
    Image8 grad{100, 100, 3, {}};
    grad.pixels.resize(100 * 100 * 3);
    for (int y = 0; y < 100; ++y)
        for (int x = 0; x < 100; ++x) {
            grad.pixels[(y * 100 + x) * 3 + 0] = static_cast<uint8_t>(x);
            grad.pixels[(y * 100 + x) * 3 + 1] = static_cast<uint8_t>(y);
            grad.pixels[(y * 100 + x) * 3 + 2] = 128;
        }
    const Image8 out = io::crop_quad(grad, {io::Point2{20, 30}, io::Point2{20, 70}, io::Point2{60, 70}, io::Point2{60, 30}}, 40);
    REQUIRE(out.width == 40);
    REQUIRE(out.height == 40);
    for (int y : {0, 13, 39})
        for (int x : {0, 21, 39}) {
            CAPTURE(x);
            CAPTURE(y);
            CHECK(std::abs(px(out, x, y, 0) - (20 + x)) <= 1);
            CHECK(std::abs(px(out, x, y, 1) - (30 + y)) <= 1);
        }
    // Half the quad lies left of the photo: the output is complete and the inside part is unchanged.
    const Image8 padded = io::crop_quad(grad, {io::Point2{-40, 30}, io::Point2{-40, 70}, io::Point2{40, 70}, io::Point2{40, 30}}, 40);
    REQUIRE(padded.width == 40);
    CHECK(std::abs(px(padded, 30, 20, 0) - 20) <= 2);
    CHECK(std::abs(px(padded, 30, 20, 1) - 50) <= 2);
}

TEST_CASE("align: a real photo with a face is aligned, and one without gives a clear result") {
    const io::FaceDetector detector;
    const Image8 messi = io::read_image(opencv_data("messi5.jpg"));
    const auto faces = detector.detect(messi);
    REQUIRE(faces.size() >= 1);
    // The face in messi5.jpg is in the upper middle of the photo, about 40-80 pixels across.
    CHECK(faces[0].width >= 30);
    CHECK(faces[0].width <= 120);
    CHECK(faces[0].left > 150);
    CHECK(faces[0].left + faces[0].width < 400);
    const auto& lm = faces[0].landmarks;
    CHECK(lm[36].x < lm[45].x);  // left eye corner left of the right one
    CHECK(lm[30].y > lm[27].y);  // nose tip below the nose bridge
    CHECK(lm[57].y > lm[33].y);  // lower lip below the nose

    const auto aligned = io::align_image(messi, "messi5.jpg", io::AlignMode::face, 64, &detector);
    CHECK(aligned.image.width == 64);
    CHECK(aligned.image.height == 64);
    CHECK(aligned.method.rfind("face 1 of", 0) == 0);

    const Image8 baboon = io::read_image(opencv_data("baboon.jpg"));
    CHECK(detector.detect(baboon).empty());
    CHECK_THROWS_WITH_AS(io::align_image(baboon, "baboon.jpg", io::AlignMode::face, 64, &detector),
                         doctest::Contains("baboon.jpg: no face found"), Error);
    const auto fallback = io::align_image(baboon, "baboon.jpg", io::AlignMode::automatic, 64, &detector);
    CHECK(fallback.method == "center crop (no face found)");
    CHECK(fallback.image.width == 64);
    const auto resized = io::align_image(baboon, "baboon.jpg", io::AlignMode::none, 64);  // square: a plain resize
    CHECK(resized.method == "resize");
    CHECK(resized.image.width == 64);
    try {
        io::align_image(messi, "messi5.jpg", io::AlignMode::none, 64);
        FAIL("a non-square photo with alignment none was accepted");
    } catch (const ArgumentError& e) {  // the option is named as data, for each front end to name its way
        CHECK(e.message().fields() == std::vector<std::string>{"align.mode", "align.mode"});
        CHECK(e.message().render([](const std::string&) { return std::string("ALIGN"); }) ==
              "messi5.jpg: ALIGN none needs a square image, this one is 548x342 (use ALIGN center)");
    }
    CHECK_THROWS_AS(io::FaceDetector(opencv_data("box.png")), IoError);

    // This build has dlib and OpenCV: auto and face get a detector, centre and none do not.
    CHECK(io::face_alignment_available());
    CHECK(io::make_face_detector(io::AlignMode::automatic) != nullptr);
    CHECK(io::make_face_detector(io::AlignMode::face) != nullptr);
    CHECK(io::make_face_detector(io::AlignMode::center) == nullptr);
    CHECK(io::make_face_detector(io::AlignMode::none) == nullptr);
    // Auto without a detector (a build without face detection) centre-crops and says why; face refuses.
    const auto no_detector = io::align_image(messi, "messi5.jpg", io::AlignMode::automatic, 64, nullptr);
    CHECK(no_detector.method == "center crop (this build has no face detection)");
    CHECK(no_detector.image.pixels == io::center_crop(messi, 64).pixels);
    CHECK_THROWS_AS(io::align_image(messi, "messi5.jpg", io::AlignMode::face, 64, nullptr), ArgumentError);
}

TEST_CASE("image: crop_image copies the rectangle for any channel count and refuses one leaving the image") {
    for (int c : {1, 3, 4}) {
        Image8 im{5, 4, c, {}};
        for (int k = 0; k < 5 * 4 * c; ++k) im.pixels.push_back(static_cast<uint8_t>(k));
        const Image8 part = io::crop_image(im, 1, 2, 3, 2);
        REQUIRE(part.width == 3);
        REQUIRE(part.height == 2);
        REQUIRE(part.channels == c);
        for (int y = 0; y < 2; ++y)
            for (int x = 0; x < 3; ++x)
                for (int ch = 0; ch < c; ++ch) CHECK(px(part, x, y, ch) == px(im, x + 1, y + 2, ch));
        CHECK_THROWS_AS(io::crop_image(im, 3, 0, 3, 1), ArgumentError);
        CHECK_THROWS_AS(io::crop_image(im, 0, 3, 1, 2), ArgumentError);
        CHECK_THROWS_AS(io::crop_image(im, -1, 0, 1, 1), ArgumentError);
        CHECK_THROWS_AS(io::crop_image(im, 0, 0, 0, 1), ArgumentError);
    }
}
