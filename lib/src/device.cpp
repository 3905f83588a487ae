#include "latentkit/device.h"

#include <dlfcn.h>
#include <fmt/format.h>
#include <sched.h>
#include <torch/torch.h>

#include <optional>
#include <thread>

#include "latentkit/error.h"
#include "latentkit/log.h"

namespace latentkit {

c10::Device device_from_name(const std::string& text) {
    if (text == "auto") return torch::cuda::is_available() ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
    if (text == "cpu") return torch::Device(torch::kCPU);
    if (text.rfind("cuda", 0) != 0) throw ArgumentError(Message() << field("device") << " " + text + ": expected cpu, cuda, cuda:N or auto");
    if (!torch::cuda::is_available())
        throw ArgumentError(Message() << field("device") << " " + text + ": no CUDA device is available (this LibTorch has no CUDA, or no GPU is visible)");
    std::optional<torch::Device> device;
    try {
        device.emplace(text);
    } catch (const c10::Error&) {
        throw ArgumentError(Message() << field("device") << " " + text + ": not a device name");
    }
    if (device->has_index() && device->index() >= static_cast<int>(torch::cuda::device_count()))
        throw ArgumentError(Message() << field("device") << fmt::format(" {}: only {} CUDA device(s) are visible", text, torch::cuda::device_count()));
    return *device;
}

int configure_cpu_threads(int threads) {
    if (threads <= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        threads = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : static_cast<int>(std::thread::hardware_concurrency());
        threads = std::max(threads, 1);
    }
    torch::set_num_threads(threads);
    // OpenBLAS keeps its own pool; found by name, so any other BLAS is left as it is.
    using SetThreads = void (*)(int);
    if (auto set_blas = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) set_blas(1);
    log_debug(fmt::format("CPU threads: {} for LibTorch, 1 for OpenBLAS", threads));
    return threads;
}

}  // namespace latentkit
