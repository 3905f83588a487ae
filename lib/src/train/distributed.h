#pragma once
// Collective operations across the processes of a data-parallel run (c10d Gloo), or no-ops for one process.
#include <torch/torch.h>

#include <memory>

#include "latentkit/train.h"

namespace latentkit::training {

/// A process group; with world_size 1 every operation returns at once.
class Collective {
public:
    /// Connects to the other processes (rendezvous through MASTER_ADDR:MASTER_PORT). Throws Error when
    /// the build has no c10d or the rendezvous fails.
    explicit Collective(const DistributedEnv& env);
    ~Collective();
    /// Sums a tensor over all processes, in place (staged through host memory).
    void all_reduce_sum(torch::Tensor& t);
    /// Copies rank 0's tensor to every process, in place.
    void broadcast(torch::Tensor& t);
    int rank() const { return env_.rank; }
    int world_size() const { return env_.world_size; }

private:
    struct State;
    DistributedEnv env_;
    std::unique_ptr<State> s_;
};

}  // namespace latentkit::training
