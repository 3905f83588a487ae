#pragma once
// Writing torch.save files (PyTorch's zip format) that `torch.load(..., weights_only=True)` reads: a
// pickle (protocol 2) of dicts, strings, numbers and float32 tensors, whose storages are the archive's
// data/N members. Torch-free (latentkit_formats); written to a temporary file and renamed.
#include <cstdint>
#include <memory>
#include <string>

#include "latentkit/tensor_data.h"

namespace latentkit {

/// Builds the saved object as a stream of values: scalars and tensors are items; begin_dict/end_dict
/// (and the ordered and tuple variants) bracket containers whose items alternate key, value (dicts) or
/// follow each other (tuples). Only what weights_only loading allows is offered.
class TorchSaveWriter {
public:
    /// Creates the temporary file next to `path`; throws IoError when the folder is not writable.
    explicit TorchSaveWriter(const std::string& path);
    ~TorchSaveWriter();
    TorchSaveWriter(const TorchSaveWriter&) = delete;
    TorchSaveWriter& operator=(const TorchSaveWriter&) = delete;

    void none();
    void boolean(bool v);
    void integer(int64_t v);
    void floating(double v);
    void string(const std::string& v);
    /// A float32 tensor (contiguous) with a storage of its own.
    void tensor(const TensorData& t);
    /// A dict ({}) or collections.OrderedDict (a state dict); items alternate key and value.
    void begin_dict(bool ordered = false);
    void end_dict();
    void begin_tuple();
    void end_tuple();
    /// Writes data.pkl, the storages and the version record, and renames the file into place.
    void finish();

private:
    struct State;
    std::unique_ptr<State> s_;
};

}  // namespace latentkit
