#pragma once
// CPU thread pools: LibTorch's and the BLAS under it.

namespace latentkit {

/// Sets the process's CPU threads: LibTorch's intra-op pool gets `threads` (0: one per CPU this
/// process may run on), and an OpenBLAS under LibTorch gets one thread, so that the two pools do not
/// compete for the same cores (LibTorch parallelises around its BLAS calls). Returns the LibTorch
/// thread count. Call it once, before the first computation.
int configure_cpu_threads(int threads = 0);

}  // namespace latentkit
