#pragma once
// Torch-free tensor data as read from files (safetensors, pickles, npy), plus the safetensors format.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace latentkit {

/// Element types found in model and latent files.
enum class DType { f16, bf16, f32, f64, i8, u8, i16, i32, i64, boolean };

/// Bytes per element.
size_t dtype_size(DType t);
/// The safetensors name of a dtype ("F32", "I64", ...).
const char* dtype_name(DType t);

/// A dense, C-contiguous, little-endian tensor whose bytes live in a shared buffer.
struct TensorData {
    DType dtype = DType::f32;
    std::vector<int64_t> shape;
    std::shared_ptr<const std::string> buffer;  ///< owns the bytes
    size_t offset = 0;                          ///< first byte in buffer
    /// Number of elements.
    int64_t numel() const;
    /// Number of bytes.
    size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype); }
    /// Pointer to the first element.
    const void* data() const { return buffer->data() + offset; }
    /// Makes a float32 tensor that owns a copy of `values`.
    static TensorData from_floats(std::vector<int64_t> shape, const std::vector<float>& values);
    /// Elements converted to float (float, integer and bool dtypes).
    std::vector<float> to_floats() const;
};

/// The contents of a .safetensors file: string metadata plus named tensors in file order.
struct TensorFile {
    std::map<std::string, std::string> metadata;
    std::vector<std::pair<std::string, TensorData>> tensors;
    /// The tensor called `name`, or nullptr.
    const TensorData* find(const std::string& name) const;
};

/// Parses safetensors bytes; `source` names the file in errors (ModelFormatError).
TensorFile parse_safetensors(std::shared_ptr<const std::string> bytes, const std::string& source);
/// Reads a .safetensors file.
TensorFile read_safetensors(const std::string& path);
/// Serialises to safetensors bytes (tensors sorted by name as the reference writer does).
std::string serialize_safetensors(const TensorFile& file);
/// Writes a .safetensors file atomically.
void write_safetensors(const std::string& path, const TensorFile& file);

}  // namespace latentkit
