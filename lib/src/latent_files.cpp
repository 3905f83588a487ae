#include "latentkit/latent_files.h"

#include <cstring>

#include "latentkit/error.h"
#include "latentkit/model_config.h"
#include "latentkit/npz.h"
#include "torch_convert.h"

namespace latentkit {

namespace {
TensorData raw_array(DType dtype, std::vector<int64_t> shape, std::string bytes) {
    TensorData t;
    t.dtype = dtype;
    t.shape = std::move(shape);
    t.buffer = std::make_shared<const std::string>(std::move(bytes));
    return t;
}
}  // namespace

torch::Tensor read_latents(const std::string& path, const GeneratorConfig& config) {
    return to_torch(read_projected_w(path, config.num_ws(), config.w_dim)).to(torch::kFloat32);
}

void write_latents(const std::string& path, const torch::Tensor& ws) {
    write_npz(path, {{"w", from_torch(ws.to(torch::kCPU, torch::kFloat32))}});
}

void write_samples(const std::string& path, const Samples& s) {
    const torch::Tensor w = s.w.to(torch::kCPU, torch::kFloat32).contiguous();
    std::string seeds(s.seeds.size() * sizeof(int64_t), '\0');
    for (size_t k = 0; k < s.seeds.size(); ++k) {
        const int64_t v = s.seeds[k];
        std::memcpy(&seeds[k * sizeof(int64_t)], &v, sizeof(v));
    }
    const int64_t num_ws = s.num_ws;
    write_npz(path, {{"w", from_torch(w)},
                         {"seeds", raw_array(DType::i64, {static_cast<int64_t>(s.seeds.size())}, seeds)},
                         {"fingerprint", raw_array(DType::u8, {static_cast<int64_t>(s.fingerprint.size())}, s.fingerprint)},
                         {"num_ws", raw_array(DType::i64, {}, std::string(reinterpret_cast<const char*>(&num_ws), sizeof(num_ws)))}});
}

Samples read_samples(const std::string& path) {
    Samples s;
    const TensorData *w = nullptr, *seeds = nullptr;
    const auto arrays = read_npz(path);
    for (const auto& [name, a] : arrays) {
        if (name == "w") w = &a;
        else if (name == "seeds") seeds = &a;
        else if (name == "fingerprint" && a.dtype == DType::u8) s.fingerprint.assign(static_cast<const char*>(a.data()), a.nbytes());
        else if (name == "num_ws" && a.dtype == DType::i64 && a.numel() == 1) s.num_ws = static_cast<int>(*static_cast<const int64_t*>(a.data()));
    }
    if (!w || w->shape.size() != 2 || w->shape[0] < 1)
        throw ModelFormatError(path + ": not a samples file (needs 'w' [N, w_dim]; write one with latentkit directions sample)");
    s.w = to_torch(*w).to(torch::kFloat32);
    if (seeds) {
        if (seeds->dtype != DType::i64 || seeds->numel() != w->shape[0]) throw ModelFormatError(path + ": 'seeds' does not match 'w'");
        const auto* p = static_cast<const int64_t*>(seeds->data());
        for (int64_t k = 0; k < seeds->numel(); ++k) s.seeds.push_back(static_cast<uint32_t>(p[k]));
    }
    return s;
}


}  // namespace latentkit
