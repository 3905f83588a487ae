#pragma once
// A data-only pickle reader for reference StyleGAN2-ADA snapshots. It builds a tree of values and
// never imports or executes anything: globals outside a fixed allow-list are refused.
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "latentkit/tensor_data.h"

namespace latentkit::pickle {

/// Kinds of value the reader builds.
enum class Kind { none, boolean, integer, big_integer, floating, string, bytes, list, tuple, dict, set, global, object, storage, tensor };

/// One value. Containers point into the owning Document's arena (cycles are harmless).
struct Value {
    Kind kind = Kind::none;
    bool b = false;
    int64_t i = 0;
    double f = 0.0;
    std::string s;              ///< string, bytes, big_integer (little-endian), global/object type name
    std::vector<Value*> items;  ///< list, tuple, set; dict as key, value, key, value, ...
    Value* state = nullptr;     ///< object: its state (for persistent objects, the module __dict__)
    std::shared_ptr<const std::string> storage_bytes;  ///< storage: raw little-endian elements
    DType dtype = DType::f32;   ///< storage and tensor element type
    Value* tensor_storage = nullptr;  ///< tensor: the storage
    int64_t storage_offset = 0;       ///< tensor: offset in elements
    std::vector<int64_t> sizes, strides;

    /// For a dict: the value under string key `key`, or nullptr.
    const Value* get(std::string_view key) const;
    /// True for a string equal to `text`.
    bool is_string(std::string_view text) const { return kind == Kind::string && s == text; }
};

/// A parsed pickle: the arena owning every value, and the root.
class Document {
public:
    Value* root = nullptr;
    /// Allocates a value in the arena.
    Value* make(Kind kind);
    /// Number of values allocated.
    size_t size() const { return arena_.size(); }

private:
    std::deque<Value> arena_;
};

/// Limits that keep hostile input bounded.
struct Limits {
    size_t max_values = 50'000'000;  ///< values allocated in total
    size_t max_mark_depth = 10'000;  ///< nested MARKs
};

/// Parses pickle bytes (protocols 0 to 5). `source` names the file in errors (ModelFormatError).
std::unique_ptr<Document> parse(std::string_view data, const std::string& source, const Limits& limits = {});

/// True for bytes that start like a legacy (pre-zip, PyTorch < 1.6) torch.save file.
bool is_legacy_torch_save(std::string_view data);

/// Parses a torch.save file, either PyTorch's zip format (ARCHIVE/data.pkl whose persistent ids name
/// the storages ARCHIVE/data/KEY) or the legacy format (magic number, protocol, system information,
/// the object, storage keys, raw storages). The root is the saved object; tensors hold their storages.
std::unique_ptr<Document> parse_torch_save(std::shared_ptr<const std::string> bytes, const std::string& source,
                                           const Limits& limits = {});

/// Copies a tensor value into dense, contiguous TensorData (validates bounds).
TensorData to_tensor_data(const Value& tensor, const std::string& source);

}  // namespace latentkit::pickle
