#include "common.h"

#include <fmt/format.h>
#include <torch/torch.h>
#include <unistd.h>

#include <filesystem>

#include "latentkit/error.h"
#include "latentkit/log.h"
#include "latentkit/networks.h"

namespace latentkit::tools {
namespace fs = std::filesystem;

std::vector<uint32_t> parse_seeds(const std::string& text) {
    std::vector<uint32_t> seeds;
    auto number = [&](const std::string& s) -> uint64_t {
        if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos || s.size() > 10)
            throw ArgumentError(fmt::format("--seeds: '{}' is not a seed (whole numbers 0 to 4294967295)", s));
        const uint64_t v = std::stoull(s);
        if (v > 0xffffffffull) throw ArgumentError(fmt::format("--seeds: {} is larger than 4294967295", s));
        return v;
    };
    size_t start = 0;
    while (start <= text.size()) {
        size_t end = text.find(',', start);
        if (end == std::string::npos) end = text.size();
        std::string part = text.substr(start, end - start);
        part.erase(0, part.find_first_not_of(" \t"));
        part.erase(part.find_last_not_of(" \t") + 1);
        if (!part.empty()) {
            const size_t dash = part.find('-', 1);
            if (dash == std::string::npos) {
                seeds.push_back(static_cast<uint32_t>(number(part)));
            } else {
                const uint64_t a = number(part.substr(0, dash)), b = number(part.substr(dash + 1));
                if (b < a) throw ArgumentError(fmt::format("--seeds: range '{}' runs backwards", part));
                if (b - a >= 1000000) throw ArgumentError(fmt::format("--seeds: range '{}' has more than a million seeds", part));
                for (uint64_t s = a; s <= b; ++s) seeds.push_back(static_cast<uint32_t>(s));
            }
        }
        start = end + 1;
    }
    if (seeds.empty()) throw ArgumentError(fmt::format("--seeds: '{}' names no seeds", text));
    return seeds;
}

c10::Device parse_device(const std::string& text) {
    if (text == "auto") return torch::cuda::is_available() ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
    if (text == "cpu") return torch::Device(torch::kCPU);
    if (text.rfind("cuda", 0) == 0) {
        if (!torch::cuda::is_available())
            throw ArgumentError("--device " + text + ": no CUDA device is available (this LibTorch has no CUDA, or no GPU is visible)");
        try {
            torch::Device d(text);
            if (d.has_index() && d.index() >= static_cast<int>(torch::cuda::device_count()))
                throw ArgumentError(fmt::format("--device {}: only {} CUDA device(s) are visible", text, torch::cuda::device_count()));
            return d;
        } catch (const c10::Error&) {
            throw ArgumentError("--device " + text + ": not a device name");
        }
    }
    throw ArgumentError("--device " + text + ": expected cpu, cuda, cuda:N or auto");
}

Model load_model_arg(const std::string& path) {
    Model m = load_model(path);
    log_info(fmt::format("loaded {} ({})", path, m.format));
    return m;
}

void ensure_output_dir(const std::string& dir) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) throw IoError(dir + ": cannot create output folder: " + ec.message());
    if (!fs::is_directory(dir)) throw IoError(dir + ": exists and is not a folder");
    if (::access(dir.c_str(), W_OK) != 0) throw IoError(dir + ": output folder is not writable");
}

}  // namespace latentkit::tools
