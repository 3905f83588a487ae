#pragma once
// Helpers for the tests: data paths, golden tensors, temporary folders, comparisons.
#include <torch/torch.h>
// glog (through LibTorch) and doctest both define CHECK macros: doctest's win in the tests.
#undef CHECK
#undef CHECK_EQ
#undef CHECK_NE
#undef CHECK_LE
#undef CHECK_LT
#undef CHECK_GE
#undef CHECK_GT
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "latentkit/model_io.h"
#include "latentkit/tensor_data.h"

/// Ends the running test case as skipped, saying why: CTest reports it as skipped, not passed (the
/// marker is its SKIP_REGULAR_EXPRESSION, tests/CMakeLists.txt).
#define LKTEST_SKIP(reason)                         \
    do {                                            \
        MESSAGE("LATENTKIT-SKIPPED: " << reason);   \
        return;                                     \
    } while (0)

namespace lktest {

/// Path of a file under tests/data.
std::string data_path(const std::string& name);
/// A golden tensor file under tests/data/golden.
const latentkit::TensorFile& golden(const std::string& file);
/// A golden tensor as a float32 torch tensor.
torch::Tensor golden_tensor(const std::string& file, const std::string& name);
/// Largest absolute difference.
double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b);

/// A fresh temporary folder, removed with everything in it on destruction.
class TempDir {
public:
    TempDir();
    ~TempDir();
    const std::string& path() const { return path_; }
    std::string operator/(const std::string& name) const { return path_ + "/" + name; }

private:
    std::string path_;
};

/// Writes bytes to a file (test fixtures).
void write_bytes(const std::string& path, const std::string& bytes);

/// tiny32 with its synthesis weights moved and its mapping scaled (a stand-in for a fine-tuned copy),
/// saved as `path` and read back.
latentkit::Model finetuned_stand_in(const std::string& path);

/// A 16-bit PCM WAV of `seconds` at 44.1 kHz: silence with a short decaying noise burst (a click, about
/// 30 ms) at each of `clicks` seconds.
void write_click_track(const std::string& path, const std::vector<double>& clicks, double seconds, int channels = 2);

}  // namespace lktest
