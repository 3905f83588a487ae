#pragma once
// Collective operations across the processes of a data-parallel run (c10d Gloo or NCCL), or no-ops for one process.
#include <torch/torch.h>

#include <memory>
#include <string>

#include "latentkit/train.h"

namespace latentkit::training {

/// How the processes exchange tensors.
enum class Backend { Gloo, Nccl };

/// The backend for `requested` (auto, gloo or nccl) and the training device: auto is NCCL on CUDA when
/// the build has it, else Gloo. Throws ArgumentError for an unknown name or NCCL without CUDA, Error
/// for NCCL in a build without it.
Backend choose_backend(DistBackend requested, const torch::Device& device);

/// process_device's rule, given how many GPUs this process sees and whether CUDA_VISIBLE_DEVICES is set:
/// with several processes every CUDA device name becomes cuda:LOCAL_RANK (an explicit other index is
/// overridden, with a warning), or cuda:0 when each process was given one GPU of its own.
std::string map_process_device(const std::string& device, const DistributedEnv& env, int visible_gpus, bool visible_set);

/// Where this process's Gloo transport listens: the interface GLOO_SOCKET_IFNAME names (the first of a
/// list), the loopback address when MASTER_ADDR is loopback (a run on one machine), else this node's
/// own address (its hostname's, as torch.distributed does).
struct GlooBinding {
    enum class Kind { interface, hostname, node } kind;
    std::string value;
};
GlooBinding gloo_binding(const DistributedEnv& env, const char* ifname);

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
