// PNG and npz files.
#include "test_util.h"

#include <filesystem>

#include "latentkit/atomic_file.h"
#include "latentkit/error.h"
#include "latentkit/npz.h"
#include "latentkit/png.h"

using namespace latentkit;

TEST_CASE("png: encode and decode round trip for 1, 2, 3 and 4 channels") {
    lktest::TempDir dir;
    for (int c : {1, 2, 3, 4}) {
        Image8 im;
        im.width = 7;
        im.height = 5;
        im.channels = c;
        for (int k = 0; k < 7 * 5 * c; ++k) im.pixels.push_back(static_cast<uint8_t>(k * 37 + 11));
        write_png(dir / "x.png", im);
        const Image8 back = read_png(dir / "x.png");
        CHECK(back.width == 7);
        CHECK(back.height == 5);
        CHECK(back.channels == c);
        CHECK(back.pixels == im.pixels);
    }
    const std::string bytes = read_file(dir / "x.png");
    lktest::write_bytes(dir / "cut.png", bytes.substr(0, bytes.size() / 2));
    CHECK_THROWS_AS(read_png(dir / "cut.png"), IoError);
}

TEST_CASE("png: a failed write leaves nothing behind") {
    Image8 im;
    im.width = im.height = 2;
    im.channels = 3;
    im.pixels.assign(12, 0);
    CHECK_THROWS_AS(write_png("/nonexistent-folder/x.png", im), IoError);
    lktest::TempDir dir;
    im.pixels.resize(5);
    CHECK_THROWS_AS(write_png(dir / "bad.png", im), ArgumentError);
    CHECK_FALSE(std::filesystem::exists(dir / "bad.png"));
}

TEST_CASE("npz: round trip of projected_w-shaped arrays") {
    lktest::TempDir dir;
    std::vector<float> values(2 * 8 * 4);
    for (size_t k = 0; k < values.size(); ++k) values[k] = static_cast<float>(k) * 0.5f - 3.0f;
    write_npz(dir / "w.npz", {{"w", TensorData::from_floats({2, 8, 4}, values)}});
    const auto arrays = read_npz(dir / "w.npz");
    REQUIRE(arrays.size() == 1);
    CHECK(arrays[0].first == "w");
    CHECK(arrays[0].second.shape == std::vector<int64_t>{2, 8, 4});
    CHECK(arrays[0].second.to_floats() == values);
}

TEST_CASE("npz: files written by numpy (savez and savez_compressed) are read") {
    // Made with numpy: np.savez('numpy_projected_w.npz', w=np.arange(2*8*64, dtype=np.float32).reshape(1, 16, 64) / 100)
    // and np.savez_compressed('numpy_compressed.npz', w=..., seeds=np.array([1, 2, 3])); see tests/data/README.md.
    const auto a = read_npz(lktest::data_path("numpy_projected_w.npz"));
    REQUIRE(a.size() == 1);
    CHECK(a[0].second.shape == std::vector<int64_t>{1, 16, 64});
    CHECK(a[0].second.to_floats()[1023] == doctest::Approx(10.23f));
    const auto b = read_npz(lktest::data_path("numpy_compressed.npz"));
    REQUIRE(b.size() == 2);
    CHECK(b[0].first == "w");
    CHECK(b[1].first == "seeds");
    CHECK(b[1].second.dtype == DType::i64);
    CHECK(b[1].second.to_floats() == std::vector<float>{1, 2, 3});
}

TEST_CASE("npz: damaged files fail with a message naming the file") {
    lktest::TempDir dir;
    const std::string bytes = read_file(lktest::data_path("numpy_compressed.npz"));
    for (size_t cut = 0; cut < bytes.size(); cut += 53) {
        lktest::write_bytes(dir / "cut.npz", bytes.substr(0, cut));
        CHECK_THROWS_WITH_AS(read_npz(dir / "cut.npz"), doctest::Contains("cut.npz"), latentkit::Error);
    }
    std::string corrupt = bytes;
    for (size_t k = 40; k < corrupt.size() - 30; k += 7) corrupt[k] = static_cast<char>(corrupt[k] ^ 0x5a);
    lktest::write_bytes(dir / "corrupt.npz", corrupt);
    CHECK_THROWS_AS(read_npz(dir / "corrupt.npz"), latentkit::Error);
}
