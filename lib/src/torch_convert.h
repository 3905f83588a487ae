#pragma once
// Conversions between file-level TensorData and torch tensors.
#include <torch/torch.h>

#include "latentkit/tensor_data.h"

namespace latentkit {

/// Copies file data into a new CPU tensor of the same dtype.
torch::Tensor to_torch(const TensorData& t);
/// Copies a tensor (any device) into contiguous CPU TensorData.
TensorData from_torch(const torch::Tensor& t);

}  // namespace latentkit
