#pragma once
// The pickle virtual machine behind pickle::parse (internal to the format readers).
#include <fmt/format.h>

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "latentkit/error.h"
#include "latentkit/zip.h"
#include "pickle.h"
#include "pickle_opcodes.h"

namespace latentkit::pickle::detail {

inline constexpr int64_t kMaxElements = int64_t(1) << 40;

struct StorageType {
    const char* name;
    DType dtype;
};
inline constexpr StorageType kStorageTypes[] = {
    {"torch.FloatStorage", DType::f32}, {"torch.DoubleStorage", DType::f64}, {"torch.HalfStorage", DType::f16},
    {"torch.BFloat16Storage", DType::bf16}, {"torch.LongStorage", DType::i64}, {"torch.IntStorage", DType::i32},
    {"torch.ShortStorage", DType::i16}, {"torch.CharStorage", DType::i8}, {"torch.ByteStorage", DType::u8},
    {"torch.BoolStorage", DType::boolean},
};

inline constexpr const char* kAllowedGlobals[] = {
    "collections.OrderedDict", "builtins.set", "builtins.frozenset", "builtins.object", "builtins.dict",
    "torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter",
    "torch._utils._rebuild_parameter_with_state", "torch.storage._load_from_bytes", "torch.Size",
    "torch_utils.persistence._reconstruct_persistent_obj", "numpy.core.multiarray.scalar", "numpy.dtype",
    "numpy.core.multiarray._reconstruct", "numpy.ndarray", "dnnlib.util.EasyDict", "dnnlib.EasyDict",
    "copyreg._reconstructor", "_codecs.encode", "numpy.core.numeric._frombuffer",
};

// Classes whose instances are plain records: NEWOBJ with no arguments, then BUILD with a dict state
// (their attributes). Nothing of theirs is run; TensorFlow networks' build_module_src is never read.
inline constexpr const char* kRecordClasses[] = {"dnnlib.tflib.network.Network", "argparse.Namespace"};

inline bool is_record_class(const std::string& name) {
    for (const char* c : kRecordClasses)
        if (name == c) return true;
    return false;
}

// Legacy torch.save state shared by the pickles inside one legacy stream (a _load_from_bytes payload
// or a whole legacy torch.save file).
struct LegacyStorages {
    std::unordered_map<std::string, Value*> by_key;
};

// The storages of a torch.save zip archive: persistent ids name members PREFIX/data/KEY.
struct ZipStorages {
    const ZipReader& zip;
    std::string prefix;
    std::unordered_map<std::string, Value*> by_key;
};

// Runs one pickle stream over `data`, building values in `doc`. Globals are checked against the
// allow-list; allowed callables are interpreted by reduce()/newobj()/build(), never executed.
class Machine {
public:
    Machine(Document& doc, std::string_view data, const std::string& source, const Limits& limits, size_t budget,
            LegacyStorages* legacy, ZipStorages* zip = nullptr)
        : doc_(doc), data_(data), source_(source), limits_(limits), budget_(budget), legacy_(legacy), zip_(zip) {}

    Value* run();
    size_t position() const { return pos_; }
    /// Reads a legacy torch.save stream (magic, protocol, system info, object, storage keys, storage
    /// data) over `bytes` and returns its object; `what` names the stream in errors.
    Value* legacy_stream(std::string_view bytes, const char* what);

private:
    // One group of opcodes each: true when `op` belongs to the group and was executed.
    bool stack_op(uint8_t op);
    bool scalar_op(uint8_t op);
    bool text_op(uint8_t op);
    bool container_op(uint8_t op);
    bool memo_op(uint8_t op);
    bool object_op(uint8_t op);
    // What REDUCE builds for the allow-listed callables (pickle_objects.cpp).
    Value* reduce_dict(const std::string& g, const std::vector<Value*>& a);
    Value* reduce_sequence(const std::string& g, const std::vector<Value*>& a);
    Value* reduce_latin1(const std::vector<Value*>& a);
    Value* reduce_persistent(const std::vector<Value*>& a);
    [[noreturn]] void fail(const std::string& what) const {
        throw ModelFormatError(fmt::format("{}: unsupported or damaged pickle at byte {}: {}", source_, op_pos_, what));
    }
    void need(size_t n) const {
        if (n > data_.size() - pos_) fail("data ends early (truncated file?)");
    }
    uint8_t u8() { need(1); return static_cast<uint8_t>(data_[pos_++]); }
    template <class T>
    T le() {
        need(sizeof(T));
        T v;
        std::memcpy(&v, data_.data() + pos_, sizeof(T));
        pos_ += sizeof(T);
        return v;
    }
    std::string bytes(uint64_t n) {
        need(n);
        std::string s(data_.substr(pos_, n));
        pos_ += n;
        return s;
    }
    std::string line() {
        const size_t end = data_.find('\n', pos_);
        if (end == std::string_view::npos) fail("text field has no end of line");
        std::string s(data_.substr(pos_, end - pos_));
        pos_ = end + 1;
        return s;
    }
    Value* make(Kind k) {
        if (doc_.size() >= limits_.max_values) fail("too many values");
        return doc_.make(k);
    }
    void spend(size_t n) {
        if (n > budget_) fail("too much work for the file's size (hostile input?)");
        budget_ -= n;
    }
    // Items above the innermost MARK: no opcode may take items from below it.
    size_t above_mark() const { return stack_.size() - (marks_.empty() ? 0 : marks_.back()); }
    Value* pop() {
        if (above_mark() == 0) fail("stack underflow");
        Value* v = stack_.back();
        stack_.pop_back();
        return v;
    }
    Value* top() {
        if (above_mark() == 0) fail("stack underflow");
        return stack_.back();
    }
    std::vector<Value*> pop_mark() {
        if (marks_.empty()) fail("no MARK on the stack");
        const size_t m = marks_.back();
        marks_.pop_back();
        std::vector<Value*> items(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
        stack_.resize(m);
        spend(items.size());
        return items;
    }
    Value* make_int(int64_t v) {
        Value* x = make(Kind::integer);
        x->i = v;
        return x;
    }
    Value* make_str(Kind k, std::string s) {
        Value* x = make(k);
        x->s = std::move(s);
        return x;
    }
    Value* make_long(const std::string& le_bytes);
    Value* make_global(std::string module, const std::string& name);
    Value* reduce(Value* callable, Value* args);
    Value* newobj(Value* cls, Value* args);
    void build(Value* obj, Value* state);
    Value* persistent_load(Value* pid);
    Value* zip_storage(const std::vector<Value*>& pid, DType dtype);
    Value* load_from_bytes(const Value& payload);
    Value* rebuild_tensor(const std::vector<Value*>& a);
    Value* numpy_scalar(const Value& dtype, const Value& data);
    void numpy_array(Value* obj, const Value& state);
    Value* numpy_frombuffer(const std::vector<Value*>& args);
    void check_numpy_dtype(const Value* dtype, const char* what) const;  // refuses big-endian and structured types
    DType numpy_dtype(const Value* dtype, const char* what) const;
    void make_numpy_tensor(Value* obj, const std::vector<int64_t>& shape, DType dtype, const std::string& bytes, bool fortran);
    int64_t as_int(const Value* v, const char* what) const {
        if (v->kind != Kind::integer) fail(std::string(what) + " is not an integer");
        return v->i;
    }
    std::vector<int64_t> int_tuple(const Value* v, const char* what) const {
        if (v->kind != Kind::tuple && v->kind != Kind::list) fail(std::string(what) + " is not a tuple");
        std::vector<int64_t> out;
        for (const Value* x : v->items) out.push_back(as_int(x, what));
        return out;
    }

    Document& doc_;
    std::string_view data_;
    const std::string& source_;
    const Limits& limits_;
    size_t budget_;
    LegacyStorages* legacy_;
    ZipStorages* zip_;
    size_t pos_ = 0, op_pos_ = 0;
    std::vector<Value*> stack_;
    std::vector<size_t> marks_;
    std::unordered_map<uint64_t, Value*> memo_;
};

}  // namespace latentkit::pickle::detail
