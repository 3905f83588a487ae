#pragma once
// Collective operations across the processes of a data-parallel run (c10d Gloo or NCCL), or no-ops for one process.
#include <torch/torch.h>

#include <memory>

#include "latentkit/train.h"

namespace latentkit::training {

/// How the processes exchange tensors.
enum class Backend { Gloo, Nccl };

/// The backend for `requested` (auto, gloo or nccl) and the training device: auto is NCCL on CUDA when
/// the build has it, else Gloo. Throws ArgumentError for an unknown name or NCCL without CUDA, Error
/// for NCCL in a build without it.
Backend choose_backend(DistBackend requested, const torch::Device& device);

/// A process group; with world_size 1 every operation returns at once.
class Collective {
public:
    /// Connects to the other processes (rendezvous through MASTER_ADDR:MASTER_PORT). NCCL makes
    /// `device` (CUDA) this process's current device. Throws Error when the build has no c10d or the
    /// rendezvous fails.
    Collective(const DistributedEnv& env, const torch::Device& device, Backend backend);
    ~Collective();
    /// Sums a tensor over all processes, in place (Gloo: staged through host memory; NCCL: on the GPU).
    void all_reduce_sum(torch::Tensor& t);
    /// Copies rank 0's tensor to every process, in place.
    void broadcast(torch::Tensor& t);
    /// How tensors travel between the processes.
    Backend backend() const { return backend_; }
    int rank() const { return env_.rank; }
    int world_size() const { return env_.world_size; }

private:
    struct State;
    DistributedEnv env_;
    Backend backend_;
    std::unique_ptr<State> s_;
};

}  // namespace latentkit::training
