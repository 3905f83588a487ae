#include "torch_convert.h"

#include "latentkit/error.h"

namespace latentkit {
namespace {
torch::Dtype torch_dtype(DType d) {
    switch (d) {
        case DType::f16: return torch::kHalf;
        case DType::bf16: return torch::kBFloat16;
        case DType::f32: return torch::kFloat32;
        case DType::f64: return torch::kFloat64;
        case DType::i8: return torch::kInt8;
        case DType::u8: return torch::kUInt8;
        case DType::i16: return torch::kInt16;
        case DType::i32: return torch::kInt32;
        case DType::i64: return torch::kInt64;
        case DType::boolean: return torch::kBool;
    }
    return torch::kFloat32;
}
}  // namespace

torch::Tensor to_torch(const TensorData& t) {
    auto out = torch::empty(t.shape, torch::TensorOptions().dtype(torch_dtype(t.dtype)));
    if (t.nbytes() > 0) std::memcpy(out.data_ptr(), t.data(), t.nbytes());
    return out;
}

TensorData from_torch(const torch::Tensor& tensor) {
    torch::Tensor c = tensor.detach().to(torch::kCPU).contiguous();
    TensorData t;
    bool found = false;
    for (DType d : {DType::f16, DType::bf16, DType::f32, DType::f64, DType::i8, DType::u8, DType::i16, DType::i32, DType::i64, DType::boolean})
        if (torch_dtype(d) == c.scalar_type()) {
            t.dtype = d;
            found = true;
        }
    if (!found) throw ArgumentError("tensor type cannot be stored");
    t.shape = c.sizes().vec();
    t.buffer = std::make_shared<const std::string>(static_cast<const char*>(c.data_ptr()), t.nbytes());
    return t;
}

}  // namespace latentkit
