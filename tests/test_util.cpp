#include "test_util.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "latentkit/atomic_file.h"
#include "torch_convert.h"

namespace lktest {

std::string data_path(const std::string& name) { return std::string(LATENTKIT_TEST_DATA) + "/" + name; }

const latentkit::TensorFile& golden(const std::string& file) {
    static std::map<std::string, latentkit::TensorFile> cache;
    auto it = cache.find(file);
    if (it == cache.end()) it = cache.emplace(file, latentkit::read_safetensors(data_path("golden/" + file))).first;
    return it->second;
}

torch::Tensor golden_tensor(const std::string& file, const std::string& name) {
    const latentkit::TensorData* t = golden(file).find(name);
    REQUIRE_MESSAGE(t != nullptr, "golden tensor " << name << " missing in " << file);
    return latentkit::to_torch(*t).to(torch::kFloat32);
}

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
    REQUIRE(a.sizes() == b.sizes());
    if (a.numel() == 0) return 0.0;
    return (a.detach().to(torch::kCPU, torch::kFloat64) - b.detach().to(torch::kCPU, torch::kFloat64)).abs().max().item<double>();
}

TempDir::TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "latentkit-test-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path_ = tmpl;
}

TempDir::~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

void write_bytes(const std::string& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    REQUIRE(out.good());
}

}  // namespace lktest
