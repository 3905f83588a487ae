#include "train/distributed.h"

#include <fmt/format.h>

#include <chrono>
#include <cstdlib>
#include <string>

#include "latentkit/error.h"
#include "latentkit/log.h"

#if LATENTKIT_HAVE_C10D
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/version.h>
#endif
#if LATENTKIT_HAVE_NCCL
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace latentkit {

bool distributed_available() { return LATENTKIT_HAVE_C10D != 0; }

bool nccl_available() { return LATENTKIT_HAVE_NCCL != 0; }

std::string process_device(const std::string& device, const DistributedEnv& env) {
    const char* visible = std::getenv("CUDA_VISIBLE_DEVICES");
    const int count = device.rfind("cuda", 0) == 0 && env.world_size > 1 ? static_cast<int>(torch::cuda::device_count()) : 0;
    return training::map_process_device(device, env, count, visible && *visible);
}

namespace training {

std::string map_process_device(const std::string& device, const DistributedEnv& env, int visible_gpus, bool visible_set) {
    if (env.world_size == 1 || device.rfind("cuda", 0) != 0) return device;
    if (visible_gpus == 0) return device;  // the trainer reports the missing CUDA
    // One visible GPU per process through CUDA_VISIBLE_DEVICES: each was given its own.
    if (visible_set && visible_gpus == 1) return "cuda:0";
    if (env.local_rank >= visible_gpus)
        throw ArgumentError(Message() << field("TrainOptions.device")
                                                << fmt::format(" {}: LOCAL_RANK {} but only {} CUDA device(s) are visible (give each process its own "
                                                               "GPU with CUDA_VISIBLE_DEVICES)", device, env.local_rank, visible_gpus));
    const std::string own = fmt::format("cuda:{}", env.local_rank);
    if (device != "cuda" && device != own)
        log_warn(fmt::format("device {}: with several processes each takes GPU LOCAL_RANK, so this one uses {} (to place them yourself, "
                             "give each process its own GPU with CUDA_VISIBLE_DEVICES)", device, own));
    return own;
}

GlooBinding gloo_binding(const DistributedEnv& env, const char* ifname) {
    if (ifname && *ifname) {
        const std::string names(ifname);
        return {GlooBinding::Kind::interface, names.substr(0, names.find(','))};
    }
    const std::string& a = env.master_addr;
    if (a == "localhost" || a.rfind("127.", 0) == 0 || a == "::1") return {GlooBinding::Kind::hostname, a == "localhost" ? "127.0.0.1" : a};
    return {GlooBinding::Kind::node, ""};
}

}  // namespace training

DistributedEnv DistributedEnv::from_environment() {
    DistributedEnv e;
    auto number = [](const char* name, int fallback) {
        const char* v = std::getenv(name);
        if (!v || !*v) return fallback;
        char* end = nullptr;
        const long x = std::strtol(v, &end, 10);
        if (*end || x < 0 || x > 1000000) throw ArgumentError(fmt::format("environment variable {}='{}' is not a valid number", name, v));
        return static_cast<int>(x);
    };
    e.world_size = number("WORLD_SIZE", 1);
    e.rank = number("RANK", 0);
    e.local_rank = number("LOCAL_RANK", e.rank);
    e.master_port = number("MASTER_PORT", 29500);
    if (const char* a = std::getenv("MASTER_ADDR"); a && *a) e.master_addr = a;
    if (e.world_size < 1) throw ArgumentError("WORLD_SIZE must be at least 1");
    if (e.rank >= e.world_size) throw ArgumentError(fmt::format("RANK {} is not below WORLD_SIZE {}", e.rank, e.world_size));
    if (e.master_port < 1 || e.master_port > 65535) throw ArgumentError("MASTER_PORT must be 1 to 65535");
    return e;
}

namespace training {

Backend choose_backend(DistBackend requested, const torch::Device& device) {
    if (requested == DistBackend::gloo) return Backend::Gloo;
    if (requested == DistBackend::automatic) return device.is_cuda() && nccl_available() ? Backend::Nccl : Backend::Gloo;
    if (!device.is_cuda()) throw ArgumentError(Message() << field("TrainOptions.dist_backend") << " nccl needs a CUDA " << field("TrainOptions.device"));
    if (!nccl_available())
        throw Error(Message() << field("TrainOptions.dist_backend") << " nccl: this build of latentkit has no NCCL (LibTorch without it, or nccl.h not found at build time)");
    return Backend::Nccl;
}

#if LATENTKIT_HAVE_C10D
#if TORCH_VERSION_MAJOR >= 2
using GroupBase = c10d::Backend;  // the common base of ProcessGroupGloo and ProcessGroupNCCL
#else
using GroupBase = c10d::ProcessGroup;
#endif

struct Collective::State {
    torch::Device device{torch::kCPU};  // where tensors are exchanged
    c10::intrusive_ptr<c10d::Store> store;
    c10::intrusive_ptr<GroupBase> group;
};
#else
struct Collective::State {};
#endif

Collective::Collective(const DistributedEnv& env, [[maybe_unused]] const torch::Device& device, Backend backend)
    : env_(env), backend_(backend) {
    if (env.world_size == 1) return;
#if LATENTKIT_HAVE_C10D
    s_ = std::make_unique<State>();
    try {
        c10d::TCPStoreOptions o;
        o.port = static_cast<std::uint16_t>(env.master_port);
        o.isServer = env.rank == 0;
        o.numWorkers = static_cast<std::size_t>(env.world_size);
        o.waitWorkers = true;
        o.timeout = std::chrono::milliseconds(300000);
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
        // LibTorch 2.4+ asks for its libuv store backend by default; builds without libuv (Debian's) refuse it.
        try {
            s_->store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, o);
        } catch (const c10::Error& e) {
            if (std::string(e.what_without_backtrace()).find("libuv") == std::string::npos) throw;
            o.useLibUV = false;
            s_->store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, o);
        }
#else
        s_->store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, o);
#endif
        if (backend == Backend::Nccl) {
#if LATENTKIT_HAVE_NCCL
            const auto index = static_cast<c10::DeviceIndex>(device.has_index() ? device.index() : 0);
            c10::cuda::set_device(index);
            s_->device = torch::Device(torch::kCUDA, index);
            s_->group = c10::make_intrusive<c10d::ProcessGroupNCCL>(s_->store, env.rank, env.world_size);
#else
            throw Error("this build of latentkit has no NCCL");
#endif
        } else {
            // Each process listens on its own node's address (MASTER_ADDR is only where the store is).
            auto options = c10d::ProcessGroupGloo::Options::create();
            const GlooBinding bind = gloo_binding(env, std::getenv("GLOO_SOCKET_IFNAME"));
            options->devices.push_back(bind.kind == GlooBinding::Kind::interface ? c10d::ProcessGroupGloo::createDeviceForInterface(bind.value)
                                       : bind.kind == GlooBinding::Kind::hostname ? c10d::ProcessGroupGloo::createDeviceForHostname(bind.value)
                                                                                  : c10d::ProcessGroupGloo::createDefaultDevice());
            s_->group = c10::make_intrusive<c10d::ProcessGroupGloo>(s_->store, env.rank, env.world_size, options);
        }
    } catch (const std::exception& e) {
        const c10::Error* ce = dynamic_cast<const c10::Error*>(&e);
        throw Error(fmt::format("cannot join the process group at {}:{} as rank {} of {}: {}", env.master_addr, env.master_port, env.rank,
                                env.world_size, ce ? ce->what_without_backtrace() : e.what()));
    }
#else
    throw Error("this build of latentkit has no c10d (LibTorch without distributed support): WORLD_SIZE must be 1");
#endif
}

Collective::~Collective() {
#if LATENTKIT_HAVE_NCCL && (TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4))
    // LibTorch 2.4+ warns when an NCCL group is destroyed without being shut down.
    if (s_ && s_->group) {
        if (auto* nccl = dynamic_cast<c10d::ProcessGroupNCCL*>(s_->group.get())) {
            try {
                nccl->shutdown();
            } catch (const std::exception&) {
            }
        }
    }
#endif
}

void Collective::all_reduce_sum(torch::Tensor& t) {
    if (env_.world_size == 1) return;
#if LATENTKIT_HAVE_C10D
    std::vector<torch::Tensor> v{t.to(s_->device).contiguous()};
    c10d::AllreduceOptions o;
    o.reduceOp = c10d::ReduceOp::SUM;
    s_->group->allreduce(v, o)->wait();
    if (!v[0].is_same(t)) t.copy_(v[0]);
#endif
}

void Collective::broadcast(torch::Tensor& t) {
    if (env_.world_size == 1) return;
#if LATENTKIT_HAVE_C10D
    std::vector<torch::Tensor> v{t.to(s_->device).contiguous()};
    s_->group->broadcast(v)->wait();
    if (!v[0].is_same(t)) t.copy_(v[0]);
#endif
}

}  // namespace training
}  // namespace latentkit
