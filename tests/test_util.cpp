#include "test_util.h"

#include <stdlib.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include "latentkit/atomic_file.h"
#include "latentkit/networks.h"
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

void write_click_track(const std::string& path, const std::vector<double>& clicks, double seconds, int channels) {
    const int rate = 44100;
    std::vector<float> x(static_cast<size_t>(seconds * rate), 0.0f);
    std::mt19937 gen(7);
    std::normal_distribution<float> noise(0, 1);
    for (double t : clicks)
        for (size_t n = 0; n < 2000; ++n) {
            const size_t at = static_cast<size_t>(t * rate) + n;
            if (at < x.size()) x[at] += 0.5f * std::exp(-static_cast<float>(n) / 300.0f) * noise(gen);
        }
    std::string data;
    for (float v : x)
        for (int c = 0; c < channels; ++c) {
            const auto s = static_cast<int16_t>(std::clamp(v, -1.0f, 1.0f) * 32767);
            data.append(reinterpret_cast<const char*>(&s), 2);
        }
    auto u32 = [](uint32_t v) { return std::string(reinterpret_cast<const char*>(&v), 4); };
    auto u16 = [](uint16_t v) { return std::string(reinterpret_cast<const char*>(&v), 2); };
    const std::string header = "RIFF" + u32(static_cast<uint32_t>(36 + data.size())) + "WAVEfmt " + u32(16) + u16(1) +
                               u16(static_cast<uint16_t>(channels)) + u32(rate) + u32(static_cast<uint32_t>(rate * channels * 2)) +
                               u16(static_cast<uint16_t>(channels * 2)) + u16(16) + "data" + u32(static_cast<uint32_t>(data.size()));
    lktest::write_bytes(path, header + data);
}


latentkit::Model finetuned_stand_in(const std::string& path) {
    latentkit::Model m = latentkit::load_model(data_path("golden/tiny32.pkl"));
    torch::manual_seed(5);
    torch::NoGradGuard no_grad;
    for (auto& p : m.G_ema->named_parameters(true))
        if (p.key().rfind("synthesis.", 0) == 0) p.value().add_(torch::randn_like(p.value()) * 0.2 * p.value().abs().mean().clamp_min(1e-3));
    for (auto& p : m.G_ema->named_parameters(true))
        if (p.key().rfind("mapping.", 0) == 0) p.value().mul_(1.05);
    latentkit::save_model(path, m);
    return latentkit::load_model(path);
}

}  // namespace lktest
