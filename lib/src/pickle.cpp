#include "pickle.h"

#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <unordered_map>

#include "latentkit/error.h"

namespace latentkit::pickle {

const Value* Value::get(std::string_view key) const {
    if (kind != Kind::dict) return nullptr;
    for (size_t k = 0; k + 1 < items.size(); k += 2)
        if (items[k]->kind == Kind::string && items[k]->s == key) return items[k + 1];
    return nullptr;
}

Value* Document::make(Kind kind) {
    arena_.emplace_back();
    arena_.back().kind = kind;
    return &arena_.back();
}

namespace {

constexpr int64_t kMaxElements = int64_t(1) << 40;

struct StorageType {
    const char* name;
    DType dtype;
};
constexpr StorageType kStorageTypes[] = {
    {"torch.FloatStorage", DType::f32}, {"torch.DoubleStorage", DType::f64}, {"torch.HalfStorage", DType::f16},
    {"torch.BFloat16Storage", DType::bf16}, {"torch.LongStorage", DType::i64}, {"torch.IntStorage", DType::i32},
    {"torch.ShortStorage", DType::i16}, {"torch.CharStorage", DType::i8}, {"torch.ByteStorage", DType::u8},
    {"torch.BoolStorage", DType::boolean},
};

constexpr const char* kAllowedGlobals[] = {
    "collections.OrderedDict", "builtins.set", "builtins.frozenset", "builtins.object", "builtins.dict",
    "torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter",
    "torch._utils._rebuild_parameter_with_state", "torch.storage._load_from_bytes", "torch.Size",
    "torch_utils.persistence._reconstruct_persistent_obj", "numpy.core.multiarray.scalar", "numpy.dtype",
    "numpy.core.multiarray._reconstruct", "numpy.ndarray", "dnnlib.util.EasyDict", "dnnlib.EasyDict",
    "copyreg._reconstructor", "_codecs.encode",
};

// Legacy torch.save state shared by the pickles inside one _load_from_bytes payload.
struct LegacyStorages {
    std::unordered_map<std::string, Value*> by_key;
};

class Machine {
public:
    Machine(Document& doc, std::string_view data, const std::string& source, const Limits& limits, size_t budget,
            LegacyStorages* legacy)
        : doc_(doc), data_(data), source_(source), limits_(limits), budget_(budget), legacy_(legacy) {}

    Value* run();
    size_t position() const { return pos_; }

private:
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
    Value* pop() {
        if (stack_.empty()) fail("stack underflow");
        Value* v = stack_.back();
        stack_.pop_back();
        return v;
    }
    Value* top() {
        if (stack_.empty()) fail("stack underflow");
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
    Value* load_from_bytes(const Value& payload);
    Value* rebuild_tensor(const std::vector<Value*>& a);
    Value* numpy_scalar(const Value& dtype, const Value& data);
    void numpy_array(Value* obj, const Value& state);
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
    size_t pos_ = 0, op_pos_ = 0;
    std::vector<Value*> stack_;
    std::vector<size_t> marks_;
    std::unordered_map<uint64_t, Value*> memo_;
};

Value* Machine::make_long(const std::string& b) {
    if (b.size() <= 8) {
        uint64_t u = 0;
        for (size_t k = 0; k < b.size(); ++k) u |= uint64_t(uint8_t(b[k])) << (8 * k);
        if (!b.empty() && b.size() < 8 && (uint8_t(b.back()) & 0x80)) u |= ~uint64_t(0) << (8 * b.size());
        return make_int(static_cast<int64_t>(u));
    }
    return make_str(Kind::big_integer, b);
}

Value* Machine::make_global(std::string module, const std::string& name) {
    if (module == "numpy._core.multiarray") module = "numpy.core.multiarray";
    if (module == "__builtin__") module = "builtins";
    const std::string full = module + "." + name;
    bool ok = false;
    for (const char* g : kAllowedGlobals) ok = ok || full == g;
    if (legacy_)
        for (const auto& st : kStorageTypes) ok = ok || full == st.name;
    if (!ok) {
        if (module.rfind("dnnlib.tflib", 0) == 0)
            throw ModelFormatError(source_ + ": a TensorFlow StyleGAN/StyleGAN2 pickle: not supported; latentkit reads "
                                            "StyleGAN2-ADA PyTorch snapshots (convert with the reference's legacy.py)");
        fail("refuses global '" + full + "': not an allowed data type (latentkit never runs code from model files)");
    }
    return make_str(Kind::global, full);
}

Value* Machine::run() {
    for (;;) {
        op_pos_ = pos_;
        const uint8_t op = u8();
        switch (op) {
            case 0x80: {  // PROTO
                const uint8_t proto = u8();
                if (proto > 5) fail(fmt::format("pickle protocol {} is newer than 5", proto));
                break;
            }
            case 0x95: le<uint64_t>(); break;  // FRAME
            case '.':                           // STOP
                if (stack_.size() != 1 || !marks_.empty()) fail("STOP with a malformed stack");
                return stack_.back();
            case '(':
                if (marks_.size() >= limits_.max_mark_depth) fail("nesting too deep");
                marks_.push_back(stack_.size());
                break;
            case '0': pop(); break;
            case '1': pop_mark(); break;
            case '2': stack_.push_back(top()); break;
            case 'N': stack_.push_back(make(Kind::none)); break;
            case 0x88:
            case 0x89: {
                Value* v = make(Kind::boolean);
                v->b = op == 0x88;
                stack_.push_back(v);
                break;
            }
            case 'J': stack_.push_back(make_int(le<int32_t>())); break;
            case 'K': stack_.push_back(make_int(u8())); break;
            case 'M': stack_.push_back(make_int(le<uint16_t>())); break;
            case 0x8a: stack_.push_back(make_long(bytes(u8()))); break;
            case 0x8b: {
                const int32_t n = le<int32_t>();
                if (n < 0) fail("negative length");
                stack_.push_back(make_long(bytes(static_cast<uint64_t>(n))));
                break;
            }
            case 'I': {
                const std::string t = line();
                if (t == "00" || t == "01") {
                    Value* v = make(Kind::boolean);
                    v->b = t == "01";
                    stack_.push_back(v);
                } else {
                    try {
                        stack_.push_back(make_int(std::stoll(t)));
                    } catch (const std::exception&) {
                        fail("bad INT text");
                    }
                }
                break;
            }
            case 'L': {
                std::string t = line();
                if (!t.empty() && t.back() == 'L') t.pop_back();
                try {
                    stack_.push_back(make_int(std::stoll(t)));
                } catch (const std::exception&) {
                    fail("LONG text out of range");
                }
                break;
            }
            case 'F': {
                const std::string t = line();
                Value* v = make(Kind::floating);
                try {
                    v->f = std::stod(t);
                } catch (const std::exception&) {
                    fail("bad FLOAT text");
                }
                stack_.push_back(v);
                break;
            }
            case 'G': {
                uint64_t u = 0;
                for (int k = 0; k < 8; ++k) u = (u << 8) | u8();
                Value* v = make(Kind::floating);
                std::memcpy(&v->f, &u, 8);
                stack_.push_back(v);
                break;
            }
            case 'X': stack_.push_back(make_str(Kind::string, bytes(le<uint32_t>()))); break;
            case 0x8c: stack_.push_back(make_str(Kind::string, bytes(u8()))); break;
            case 0x8d: stack_.push_back(make_str(Kind::string, bytes(le<uint64_t>()))); break;
            case 'V': stack_.push_back(make_str(Kind::string, line())); break;
            case 'B': stack_.push_back(make_str(Kind::bytes, bytes(le<uint32_t>()))); break;
            case 'C': stack_.push_back(make_str(Kind::bytes, bytes(u8()))); break;
            case 0x8e:
            case 0x96: stack_.push_back(make_str(Kind::bytes, bytes(le<uint64_t>()))); break;
            case 'T': {
                const int32_t n = le<int32_t>();
                if (n < 0) fail("negative length");
                stack_.push_back(make_str(Kind::string, bytes(static_cast<uint64_t>(n))));
                break;
            }
            case 'U': stack_.push_back(make_str(Kind::string, bytes(u8()))); break;
            case 'S': {
                std::string t = line();
                if (t.size() < 2 || (t.front() != '\'' && t.front() != '"') || t.back() != t.front()) fail("bad STRING text");
                stack_.push_back(make_str(Kind::string, t.substr(1, t.size() - 2)));
                break;
            }
            case 0x98: top(); break;  // READONLY_BUFFER
            case 0x97: fail("out-of-band buffers are not supported");
            case ']': stack_.push_back(make(Kind::list)); break;
            case ')': stack_.push_back(make(Kind::tuple)); break;
            case '}': stack_.push_back(make(Kind::dict)); break;
            case 0x8f: stack_.push_back(make(Kind::set)); break;
            case 'l':
            case 't':
            case 0x91: {
                Value* v = make(op == 'l' ? Kind::list : op == 't' ? Kind::tuple : Kind::set);
                v->items = pop_mark();
                stack_.push_back(v);
                break;
            }
            case 0x85:
            case 0x86:
            case 0x87: {
                const size_t n = op - 0x84u;
                if (stack_.size() < n) fail("stack underflow");
                Value* v = make(Kind::tuple);
                v->items.assign(stack_.end() - static_cast<std::ptrdiff_t>(n), stack_.end());
                stack_.resize(stack_.size() - n);
                stack_.push_back(v);
                break;
            }
            case 'd': {
                Value* v = make(Kind::dict);
                v->items = pop_mark();
                if (v->items.size() % 2) fail("odd number of dict items");
                stack_.push_back(v);
                break;
            }
            case 'a': {
                Value* x = pop();
                Value* l = top();
                if (l->kind != Kind::list) fail("APPEND to a non-list");
                spend(1);
                l->items.push_back(x);
                break;
            }
            case 'e': {
                auto xs = pop_mark();
                Value* l = top();
                if (l->kind != Kind::list) fail("APPENDS to a non-list");
                l->items.insert(l->items.end(), xs.begin(), xs.end());
                break;
            }
            case 0x90: {
                auto xs = pop_mark();
                Value* s = top();
                if (s->kind != Kind::set) fail("ADDITEMS to a non-set");
                s->items.insert(s->items.end(), xs.begin(), xs.end());
                break;
            }
            case 's': {
                Value* v = pop();
                Value* k = pop();
                Value* d = top();
                if (d->kind != Kind::dict) fail("SETITEM on a non-dict");
                spend(2);
                d->items.push_back(k);
                d->items.push_back(v);
                break;
            }
            case 'u': {
                auto xs = pop_mark();
                Value* d = top();
                if (d->kind != Kind::dict) fail("SETITEMS on a non-dict");
                if (xs.size() % 2) fail("odd number of dict items");
                d->items.insert(d->items.end(), xs.begin(), xs.end());
                break;
            }
            case 'p': {
                const std::string t = line();
                try {
                    memo_[std::stoull(t)] = top();
                } catch (const std::logic_error&) {
                    fail("bad PUT index");
                }
                break;
            }
            case 'q': memo_[u8()] = top(); break;
            case 'r': memo_[le<uint32_t>()] = top(); break;
            case 0x94: memo_[memo_.size()] = top(); break;
            case 'g':
            case 'h':
            case 'j': {
                uint64_t idx = 0;
                if (op == 'g') {
                    try {
                        idx = std::stoull(line());
                    } catch (const std::logic_error&) {
                        fail("bad GET index");
                    }
                } else {
                    idx = op == 'h' ? u8() : le<uint32_t>();
                }
                auto it = memo_.find(idx);
                if (it == memo_.end()) fail(fmt::format("memo entry {} is missing", idx));
                stack_.push_back(it->second);
                break;
            }
            case 'c': {
                std::string module = line();
                const std::string name = line();
                stack_.push_back(make_global(std::move(module), name));
                break;
            }
            case 0x93: {
                Value* name = pop();
                Value* module = pop();
                if (name->kind != Kind::string || module->kind != Kind::string) fail("STACK_GLOBAL needs two strings");
                stack_.push_back(make_global(module->s, name->s));
                break;
            }
            case 'R': {
                Value* args = pop();
                Value* callable = pop();
                stack_.push_back(reduce(callable, args));
                break;
            }
            case 0x81: {
                Value* args = pop();
                Value* cls = pop();
                stack_.push_back(newobj(cls, args));
                break;
            }
            case 0x92: {
                Value* kwargs = pop();
                Value* args = pop();
                Value* cls = pop();
                if (kwargs->kind != Kind::dict || !kwargs->items.empty()) fail("NEWOBJ_EX with keyword arguments");
                stack_.push_back(newobj(cls, args));
                break;
            }
            case 'b': {
                Value* state = pop();
                build(top(), state);
                break;
            }
            case 'P': stack_.push_back(persistent_load(make_str(Kind::string, line()))); break;
            case 'Q': stack_.push_back(persistent_load(pop())); break;
            case 'i':
            case 'o':
            case 0x82:
            case 0x83:
            case 0x84: fail(fmt::format("opcode 0x{:02x} (class instantiation / extension registry) is not allowed", op));
            default: fail(fmt::format("unknown opcode 0x{:02x}", op));
        }
    }
}

Value* Machine::reduce(Value* callable, Value* args) {
    if (callable->kind != Kind::global) fail("REDUCE on a value that is not an allowed global");
    if (args->kind != Kind::tuple) fail("REDUCE arguments are not a tuple");
    const std::string& g = callable->s;
    const auto& a = args->items;
    if (g == "collections.OrderedDict" || g == "dnnlib.util.EasyDict" || g == "dnnlib.EasyDict" || g == "builtins.dict") {
        Value* d = make(Kind::dict);
        if (!a.empty()) {
            if (a.size() != 1) fail(g + " takes one argument");
            if (a[0]->kind == Kind::dict) {
                spend(a[0]->items.size());
                d->items = a[0]->items;
            } else if (a[0]->kind == Kind::list || a[0]->kind == Kind::tuple) {
                spend(a[0]->items.size() * 2);
                for (Value* pair : a[0]->items) {
                    if ((pair->kind != Kind::tuple && pair->kind != Kind::list) || pair->items.size() != 2) fail(g + " items are not pairs");
                    d->items.push_back(pair->items[0]);
                    d->items.push_back(pair->items[1]);
                }
            } else {
                fail(g + " argument is not a mapping");
            }
        }
        return d;
    }
    if (g == "builtins.set" || g == "builtins.frozenset" || g == "torch.Size") {
        Value* s = make(g == "torch.Size" ? Kind::tuple : Kind::set);
        if (!a.empty()) {
            if (a.size() != 1 || (a[0]->kind != Kind::list && a[0]->kind != Kind::tuple && a[0]->kind != Kind::set))
                fail(g + " argument is not a sequence");
            spend(a[0]->items.size());
            s->items = a[0]->items;
        }
        return s;
    }
    if (g == "_codecs.encode") {
        if (a.size() != 2 || a[0]->kind != Kind::string || a[1]->kind != Kind::string) fail("_codecs.encode arguments");
        if (a[1]->s != "latin1" && a[1]->s != "latin-1") fail("_codecs.encode with encoding " + a[1]->s);
        // The text is UTF-8 of code points < 256: map each back to one byte.
        std::string out;
        const std::string& t = a[0]->s;
        for (size_t k = 0; k < t.size(); ++k) {
            const auto c = static_cast<uint8_t>(t[k]);
            if (c < 0x80) {
                out.push_back(static_cast<char>(c));
            } else if ((c & 0xe0) == 0xc0 && k + 1 < t.size() && c <= 0xc3) {
                out.push_back(static_cast<char>(((c & 0x03) << 6) | (static_cast<uint8_t>(t[k + 1]) & 0x3f)));
                ++k;
            } else {
                fail("_codecs.encode text is not latin-1");
            }
        }
        return make_str(Kind::bytes, std::move(out));
    }
    if (g == "torch._utils._rebuild_tensor_v2" || g == "torch._utils._rebuild_tensor") return rebuild_tensor(a);
    if (g == "torch._utils._rebuild_parameter" || g == "torch._utils._rebuild_parameter_with_state") {
        if (a.empty() || a[0]->kind != Kind::tensor) fail(g + " without a tensor");
        return a[0];
    }
    if (g == "torch.storage._load_from_bytes") {
        if (legacy_) fail("nested _load_from_bytes");
        if (a.size() != 1 || a[0]->kind != Kind::bytes) fail("_load_from_bytes argument is not bytes");
        return load_from_bytes(*a[0]);
    }
    if (g == "torch_utils.persistence._reconstruct_persistent_obj") {
        if (a.size() != 1 || a[0]->kind != Kind::dict) fail("_reconstruct_persistent_obj argument is not a dict");
        const Value* meta = a[0];
        const Value* type = meta->get("type");
        const Value* cls = meta->get("class_name");
        Value* state = const_cast<Value*>(meta->get("state"));
        if (!type || !type->is_string("class") || !cls || cls->kind != Kind::string || !state)
            fail("persistent object metadata lacks type/class_name/state");
        Value* obj = make_str(Kind::object, cls->s);
        obj->state = state;
        obj->items.push_back(a[0]);
        return obj;
    }
    if (g == "numpy.dtype") {
        if (a.empty() || a[0]->kind != Kind::string) fail("numpy.dtype without a type code");
        Value* obj = make_str(Kind::object, g);
        obj->items.push_back(a[0]);
        return obj;
    }
    if (g == "numpy.core.multiarray.scalar") {
        if (a.size() != 2) fail("numpy scalar arguments");
        return numpy_scalar(*a[0], *a[1]);
    }
    if (g == "numpy.core.multiarray._reconstruct") {
        if (a.empty() || a[0]->kind != Kind::global || a[0]->s != "numpy.ndarray") fail("_reconstruct of a non-ndarray");
        return make_str(Kind::object, "numpy.ndarray");
    }
    if (g == "copyreg._reconstructor") {
        if (a.size() != 3 || a[0]->kind != Kind::global) fail("copyreg._reconstructor arguments");
        return newobj(a[0], make(Kind::tuple));
    }
    fail("cannot call '" + g + "'");
}

Value* Machine::newobj(Value* cls, Value* args) {
    if (cls->kind != Kind::global) fail("NEWOBJ on a value that is not an allowed class");
    const std::string& g = cls->s;
    if (g == "collections.OrderedDict" || g == "dnnlib.util.EasyDict" || g == "dnnlib.EasyDict" || g == "builtins.dict")
        return make(Kind::dict);
    if (g == "builtins.set") return make(Kind::set);
    if (g == "torch.Size") return reduce(cls, args);
    fail("cannot construct '" + g + "'");
}

void Machine::build(Value* obj, Value* state) {
    if (obj->kind == Kind::dict) {
        // EasyDict and friends: a dict state merges in as items; (dict_state, slots) as well.
        if (state->kind == Kind::none) return;
        if (state->kind == Kind::tuple && state->items.size() == 2) state = state->items[0];
        if (state->kind == Kind::none) return;
        if (state->kind != Kind::dict) fail("dict state is not a dict");
        spend(state->items.size());
        obj->items.insert(obj->items.end(), state->items.begin(), state->items.end());
        return;
    }
    if (obj->kind == Kind::object && obj->s == "numpy.dtype") {
        obj->state = state;
        return;
    }
    if (obj->kind == Kind::object && obj->s == "numpy.ndarray") {
        numpy_array(obj, *state);
        return;
    }
    fail("cannot set the state of this value");
}

Value* Machine::persistent_load(Value* pid) {
    if (!legacy_) fail("persistent id outside a torch storage payload");
    if (pid->kind != Kind::tuple || pid->items.size() < 5 || !pid->items[0]->is_string("storage"))
        fail("persistent id is not a storage reference");
    const auto& a = pid->items;
    if (a[1]->kind != Kind::global) fail("storage type is not a torch storage class");
    DType dtype = DType::f32;
    bool found = false;
    for (const auto& st : kStorageTypes)
        if (a[1]->s == st.name) {
            dtype = st.dtype;
            found = true;
        }
    if (!found) fail("unknown storage type " + a[1]->s);
    if (a[2]->kind != Kind::string) fail("storage key is not a string");
    const int64_t numel = as_int(a[4], "storage size");
    if (numel < 0 || numel > kMaxElements) fail("storage size out of range");
    Value*& root = legacy_->by_key[a[2]->s];
    if (!root) {
        root = make(Kind::storage);
        root->dtype = dtype;
        root->i = numel;
    } else if (root->dtype != dtype) {
        fail("storage used with two element types");
    }
    if (a.size() > 5 && a[5]->kind == Kind::tuple) {
        // View of a larger storage: (view_key, offset, size).
        const auto& v = a[5]->items;
        if (v.size() != 3) fail("storage view metadata");
        const int64_t off = as_int(v[1], "view offset"), size = as_int(v[2], "view size");
        Value* view = make(Kind::storage);
        view->dtype = dtype;
        view->i = size;
        view->tensor_storage = root;
        view->storage_offset = off;
        return view;
    }
    return root;
}

Value* Machine::load_from_bytes(const Value& payload) {
    LegacyStorages storages;
    const std::string_view bytes(payload.s);
    size_t pos = 0;
    auto next = [&]() {
        Machine m(doc_, bytes.substr(pos), source_, limits_, budget_, &storages);
        Value* v = m.run();
        pos += m.position();
        budget_ = m.budget_;
        return v;
    };
    const Value* magic = next();
    static const std::string kMagic("\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 10);
    if (magic->kind != Kind::big_integer || magic->s != kMagic) fail("tensor payload is not a legacy torch.save stream");
    const Value* version = next();
    if (version->kind != Kind::integer || version->i != 1001) fail("unsupported torch.save protocol version");
    const Value* sys_info = next();
    const Value* little = sys_info->get("little_endian");
    if (little && little->kind == Kind::boolean && !little->b) fail("big-endian tensor data is not supported");
    Value* result = next();
    const Value* keys = next();
    if (keys->kind != Kind::list) fail("storage key list missing");
    for (const Value* key : keys->items) {
        if (key->kind != Kind::string) fail("storage key is not a string");
        auto it = storages.by_key.find(key->s);
        if (it == storages.by_key.end()) fail("storage key without a storage");
        Value* st = it->second;
        if (bytes.size() - pos < 8) fail("tensor data ends early (truncated file?)");
        int64_t numel;
        std::memcpy(&numel, bytes.data() + pos, 8);
        pos += 8;
        if (numel != st->i) fail("stored element count disagrees with the storage header");
        const size_t nbytes = static_cast<size_t>(numel) * dtype_size(st->dtype);
        if (nbytes > bytes.size() - pos) fail("tensor data ends early (truncated file?)");
        st->storage_bytes = std::make_shared<const std::string>(bytes.substr(pos, nbytes));
        pos += nbytes;
    }
    if (result->kind != Kind::storage) fail("tensor payload does not hold a storage");
    return result;
}

Value* Machine::rebuild_tensor(const std::vector<Value*>& a) {
    if (a.size() < 4 || a[0]->kind != Kind::storage) fail("_rebuild_tensor arguments");
    Value* t = make(Kind::tensor);
    t->tensor_storage = a[0];
    t->dtype = a[0]->dtype;
    t->storage_offset = as_int(a[1], "tensor offset");
    t->sizes = int_tuple(a[2], "tensor size");
    t->strides = int_tuple(a[3], "tensor stride");
    if (t->sizes.size() != t->strides.size()) fail("tensor size and stride differ in length");
    return t;
}

Value* Machine::numpy_scalar(const Value& dtype, const Value& data) {
    if (dtype.kind != Kind::object || dtype.s != "numpy.dtype" || data.kind != Kind::bytes) fail("numpy scalar arguments");
    const std::string& code = dtype.items[0]->s;
    if (dtype.state && dtype.state->kind == Kind::tuple && dtype.state->items.size() > 1 && dtype.state->items[1]->is_string(">"))
        fail("big-endian numpy scalar");
    const std::string& b = data.s;
    auto expect = [&](size_t n) {
        if (b.size() != n) fail("numpy scalar of " + code + " has " + std::to_string(b.size()) + " bytes");
    };
    Value* v = nullptr;
    if (code == "f8" || code == "f4" || code == "f2") {
        v = make(Kind::floating);
        if (code == "f8") {
            expect(8);
            std::memcpy(&v->f, b.data(), 8);
        } else if (code == "f4") {
            expect(4);
            float f;
            std::memcpy(&f, b.data(), 4);
            v->f = f;
        } else {
            expect(2);
            TensorData t;
            t.dtype = DType::f16;
            t.shape = {1};
            t.buffer = std::make_shared<const std::string>(b);
            v->f = t.to_floats()[0];
        }
    } else if (code == "b1") {
        expect(1);
        v = make(Kind::boolean);
        v->b = b[0] != 0;
    } else if (code.size() == 2 && (code[0] == 'i' || code[0] == 'u') && (code[1] == '1' || code[1] == '2' || code[1] == '4' || code[1] == '8')) {
        const size_t n = static_cast<size_t>(code[1] - '0');
        expect(n);
        uint64_t u = 0;
        std::memcpy(&u, b.data(), n);
        if (code[0] == 'i' && n < 8 && (u >> (8 * n - 1)) & 1) u |= ~uint64_t(0) << (8 * n);
        v = make_int(static_cast<int64_t>(u));
    } else {
        fail("numpy scalar type " + code + " is not supported");
    }
    return v;
}

void Machine::numpy_array(Value* obj, const Value& state) {
    // state = (version, shape, dtype, is_fortran, raw bytes)
    if (state.kind != Kind::tuple || state.items.size() != 5) fail("numpy array state");
    const auto& s = state.items;
    const std::vector<int64_t> shape = int_tuple(s[1], "array shape");
    const Value* dt = s[2];
    if (dt->kind != Kind::object || dt->s != "numpy.dtype") fail("numpy array dtype");
    if (s[3]->kind != Kind::boolean || s[3]->b) fail("Fortran-ordered numpy arrays are not supported");
    if (s[4]->kind != Kind::bytes) fail("numpy array of Python objects is not supported");
    static const std::pair<const char*, DType> codes[] = {{"f2", DType::f16}, {"f4", DType::f32}, {"f8", DType::f64}, {"i1", DType::i8},
                                                          {"u1", DType::u8},  {"i2", DType::i16}, {"i4", DType::i32}, {"i8", DType::i64},
                                                          {"b1", DType::boolean}};
    bool found = false;
    DType dtype = DType::f32;
    for (const auto& [c, d] : codes)
        if (dt->items[0]->s == c) {
            dtype = d;
            found = true;
        }
    if (!found) fail("numpy array type " + dt->items[0]->s + " is not supported");
    int64_t numel = 1;
    for (int64_t d : shape) {
        if (d < 0 || (d > 0 && numel > kMaxElements / d)) fail("numpy array shape out of range");
        numel *= d;
    }
    if (s[4]->s.size() != static_cast<size_t>(numel) * dtype_size(dtype)) fail("numpy array data size disagrees with its shape");
    Value* storage = make(Kind::storage);
    storage->dtype = dtype;
    storage->i = numel;
    storage->storage_bytes = std::make_shared<const std::string>(s[4]->s);
    obj->kind = Kind::tensor;
    obj->dtype = dtype;
    obj->tensor_storage = storage;
    obj->sizes = shape;
    obj->strides.assign(shape.size(), 1);
    for (int k = static_cast<int>(shape.size()) - 2; k >= 0; --k) obj->strides[k] = obj->strides[k + 1] * shape[k + 1];
}

}  // namespace

std::unique_ptr<Document> parse(std::string_view data, const std::string& source, const Limits& limits) {
    auto doc = std::make_unique<Document>();
    Machine m(*doc, data, source, limits, 64 * data.size() + (1u << 20), nullptr);
    doc->root = m.run();
    return doc;
}

TensorData to_tensor_data(const Value& t, const std::string& source) {
    auto fail = [&](const std::string& what) { return ModelFormatError(source + ": bad tensor: " + what); };
    if (t.kind != Kind::tensor || !t.tensor_storage) throw fail("not a tensor");
    const Value* st = t.tensor_storage;
    int64_t base = t.storage_offset;
    if (st->tensor_storage) {  // storage view
        base += st->storage_offset;
        st = st->tensor_storage;
    }
    if (!st->storage_bytes) throw fail("its storage has no data");
    const int64_t storage_numel = st->i;
    int64_t numel = 1, last = base;
    for (size_t k = 0; k < t.sizes.size(); ++k) {
        const int64_t size = t.sizes[k], stride = t.strides[k];
        if (size < 0 || stride < 0) throw fail("negative size or stride");
        if (size > 0 && numel > kMaxElements / size) throw fail("too many elements");
        numel *= size;
        if (size > 0) {
            if (stride > kMaxElements) throw fail("stride out of range");
            last += (size - 1) * stride;
        }
    }
    if (base < 0 || (numel > 0 && last >= storage_numel)) throw fail("it reaches past the end of its storage");
    TensorData out;
    out.dtype = st->dtype;
    out.shape = t.sizes;
    const size_t es = dtype_size(st->dtype);
    std::string bytes(static_cast<size_t>(numel) * es, '\0');
    const char* src = st->storage_bytes->data();
    std::vector<int64_t> idx(t.sizes.size(), 0);
    for (int64_t n = 0; n < numel; ++n) {
        int64_t off = base;
        for (size_t k = 0; k < idx.size(); ++k) off += idx[k] * t.strides[k];
        std::memcpy(&bytes[static_cast<size_t>(n) * es], src + off * static_cast<int64_t>(es), es);
        for (int k = static_cast<int>(idx.size()) - 1; k >= 0; --k) {
            if (++idx[k] < t.sizes[k]) break;
            idx[k] = 0;
        }
    }
    out.buffer = std::make_shared<const std::string>(std::move(bytes));
    return out;
}

}  // namespace latentkit::pickle
