#pragma once
// Where computations run: device names and the CPU thread pools.
#include <string>

namespace c10 {
struct Device;
}

namespace latentkit {

/// "cpu", "cuda", "cuda:N" or "auto" (CUDA when LibTorch sees a GPU, else the CPU) as a device.
/// Throws ArgumentError naming the text when it is none of these or asks for a GPU that is not there.
c10::Device device_from_name(const std::string& name);

/// Sets the process's CPU threads: LibTorch's intra-op pool gets `threads` (0: one per CPU this
/// process may run on), and an OpenBLAS under LibTorch gets one thread, so that the two pools do not
/// compete for the same cores (LibTorch parallelises around its BLAS calls). Returns the LibTorch
/// thread count. Call it once, before the first computation.
int configure_cpu_threads(int threads = 0);

}  // namespace latentkit
