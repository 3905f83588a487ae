#pragma once
// Writing pickles of plain data (protocols 2 and 3): the opcodes, one call each, plus numpy arrays as
// numpy itself pickles them. The caller lays out the structure; nothing here runs or imports anything.
#include <cstdint>
#include <string>
#include <vector>

#include "latentkit/tensor_data.h"

namespace latentkit::pickle {

/// Appends pickle opcodes to a byte string.
class PickleWriter {
public:
    /// Starts a pickle of `protocol` (2: what torch.save writes; 3: adds bytes objects).
    explicit PickleWriter(int protocol = 3);
    void none();
    void boolean(bool v);
    void integer(int64_t v);
    void floating(double v);
    void text(const std::string& s);
    /// A bytes object (protocol 3).
    void bytes(const std::string& b);
    /// Pushes module.name (GLOBAL).
    void global(const std::string& module, const std::string& name);
    void mark();
    /// The items since the last mark as a tuple.
    void tuple();
    void empty_tuple();
    void int_tuple(const std::vector<int64_t>& values);
    void empty_dict();
    /// Adds the key/value pairs since the last mark to the dict below the mark.
    void setitems();
    void empty_list();
    /// Appends the items since the last mark to the list below the mark.
    void appends();
    /// callable(args): the callable, then an args tuple, were pushed.
    void reduce();
    /// cls.__new__(cls, *args): the class, then an args tuple, were pushed.
    void newobj();
    /// Sets the state (pushed last) of the object below it.
    void build();
    /// The object pushed last becomes a persistent id.
    void persistent_id();
    /// A float32 array as numpy pickles it (numpy.core.multiarray._reconstruct, then its state with
    /// the raw little-endian data; protocol 3).
    void numpy_array(const TensorData& t);
    /// Ends the pickle and returns its bytes.
    std::string finish();

private:
    void u32(uint32_t v);
    std::string out_;
    int protocol_;
};

}  // namespace latentkit::pickle
