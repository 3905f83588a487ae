#include "latentkit/threads.h"

#include <dlfcn.h>
#include <fmt/format.h>
#include <sched.h>
#include <torch/torch.h>

#include <thread>

#include "latentkit/log.h"

namespace latentkit {

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
