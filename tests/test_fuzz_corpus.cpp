// Replays the fuzzers' corpora (fuzz/corpus) through the same entry points as the libFuzzer targets.
#include "test_util.h"

#include <filesystem>

#include "../fuzz/targets.h"
#include "latentkit/atomic_file.h"

namespace {
int replay(const std::string& dir, void (*fn)(const uint8_t*, size_t)) {
    int n = 0;
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
        if (!entry.is_regular_file()) continue;
        INFO(entry.path().string());
        const std::string bytes = latentkit::read_file(entry.path().string());
        CHECK_NOTHROW(fn(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
        ++n;
    }
    return n;
}
}  // namespace

TEST_CASE("fuzz corpus replay: pickle reader") {
    CHECK(replay(std::string(LATENTKIT_FUZZ_CORPUS) + "/pickle", latentkit::fuzz::pickle_one) >= 2);
}

TEST_CASE("fuzz corpus replay: safetensors reader") {
    CHECK(replay(std::string(LATENTKIT_FUZZ_CORPUS) + "/safetensors", latentkit::fuzz::safetensors_one) >= 2);
}

TEST_CASE("fuzz corpus replay: torch.save reader (zip and legacy)") {
    CHECK(replay(std::string(LATENTKIT_FUZZ_CORPUS) + "/torch_save", latentkit::fuzz::torch_save_one) >= 2);
}

TEST_CASE("fuzz corpus replay: zip reader") {
    CHECK(replay(std::string(LATENTKIT_FUZZ_CORPUS) + "/zip", latentkit::fuzz::zip_one) >= 2);
}

TEST_CASE("fuzz corpus replay: PNG decoder") {
    CHECK(replay(std::string(LATENTKIT_FUZZ_CORPUS) + "/png", latentkit::fuzz::png_one) >= 2);
}

TEST_CASE("fuzz corpus replay: numpy .npz reader") {
    CHECK(replay(std::string(LATENTKIT_FUZZ_CORPUS) + "/npz", latentkit::fuzz::npz_one) >= 2);
}
