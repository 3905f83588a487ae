#pragma once
// numpy .npy / .npz files, e.g. the reference projector's projected_w.npz (key "w", [N, num_ws, w_dim]).
// Torch-free (latentkit_formats).
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "latentkit/tensor_data.h"

namespace latentkit {

/// Named arrays in file order.
using NamedArrays = std::vector<std::pair<std::string, TensorData>>;

/// Reads every array of a .npz (stored or deflated members); throws IoError / ModelFormatError naming the file.
NamedArrays read_npz(const std::string& path);
/// Parses .npz bytes as read_npz does; `source` names them in errors.
NamedArrays parse_npz(std::shared_ptr<const std::string> bytes, const std::string& source);
/// Reads the latents of a reference projected_w.npz: array 'w' of shape [N, num_ws, w_dim], N >= 1;
/// throws ShapeError naming the file when it is missing or has another shape.
TensorData read_projected_w(const std::string& path, int num_ws, int w_dim);
/// Writes arrays as an uncompressed .npz, as numpy.savez does, atomically.
void write_npz(const std::string& path, const NamedArrays& arrays);

/// Parses one .npy payload; `source` names it in errors.
TensorData parse_npy(const std::string& bytes, const std::string& source);
/// Serialises one array as .npy (format 1.0, little-endian, C order).
std::string serialize_npy(const TensorData& array);

}  // namespace latentkit
