#include "pickle.h"

#include <fmt/format.h>

#include <cmath>
#include <cstring>

#include "latentkit/error.h"
#include "pickle_machine.h"

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

namespace detail {

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
    // numpy 2 renamed numpy.core to numpy._core; Python 2 pickles name builtins __builtin__.
    if (module.rfind("numpy._core.", 0) == 0) module = "numpy.core." + module.substr(12);
    if (module == "__builtin__") module = "builtins";
    const std::string full = module + "." + name;
    bool ok = is_record_class(full);
    for (const char* g : kAllowedGlobals) ok = ok || full == g;
    if (legacy_ || zip_)
        for (const auto& st : kStorageTypes) ok = ok || full == st.name;
    if (!ok) fail("refuses global '" + full + "': not an allowed data type (latentkit never runs code from model files)");
    return make_str(Kind::global, full);
}

Value* Machine::run() {
    for (;;) {
        op_pos_ = pos_;
        const uint8_t op = u8();
        if (op == opcode::STOP) {
            if (stack_.size() != 1 || !marks_.empty()) fail("STOP with a malformed stack");
            return stack_.back();
        }
        if (!(stack_op(op) || scalar_op(op) || text_op(op) || container_op(op) || memo_op(op) || object_op(op)))
            fail(fmt::format("unknown opcode 0x{:02x}", op));
    }
}

// Framing and the stack: PROTO, FRAME, MARK, POP, POP_MARK, DUP.
bool Machine::stack_op(uint8_t op) {
    switch (op) {
        case opcode::PROTO: {
            const uint8_t proto = u8();
            if (proto > 5) fail(fmt::format("pickle protocol {} is newer than 5", proto));
            break;
        }
        case opcode::FRAME: le<uint64_t>(); break;
        case opcode::MARK:
            if (marks_.size() >= limits_.max_mark_depth) fail("nesting too deep");
            marks_.push_back(stack_.size());
            break;
        case opcode::POP:
            if (above_mark() == 0 && !marks_.empty()) marks_.pop_back();  // POP of a bare MARK drops the mark
            else pop();
            break;
        case opcode::POP_MARK: pop_mark(); break;
        case opcode::DUP: stack_.push_back(top()); break;
        case opcode::NONE: stack_.push_back(make(Kind::none)); break;
        case opcode::NEWTRUE:
        case opcode::NEWFALSE: {
            Value* v = make(Kind::boolean);
            v->b = op == opcode::NEWTRUE;
            stack_.push_back(v);
            break;
        }
        default: return false;
    }
    return true;
}

// None, booleans, integers and floats.
bool Machine::scalar_op(uint8_t op) {
    switch (op) {
        case opcode::BININT: stack_.push_back(make_int(le<int32_t>())); break;
        case opcode::BININT1: stack_.push_back(make_int(u8())); break;
        case opcode::BININT2: stack_.push_back(make_int(le<uint16_t>())); break;
        case opcode::LONG1: stack_.push_back(make_long(bytes(u8()))); break;
        case opcode::LONG4: {
            const int32_t n = le<int32_t>();
            if (n < 0) fail("negative length");
            stack_.push_back(make_long(bytes(static_cast<uint64_t>(n))));
            break;
        }
        case opcode::INT: {
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
        case opcode::LONG: {
            std::string t = line();
            if (!t.empty() && t.back() == 'L') t.pop_back();
            try {
                stack_.push_back(make_int(std::stoll(t)));
            } catch (const std::exception&) {
                fail("LONG text out of range");
            }
            break;
        }
        case opcode::FLOAT: {
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
        case opcode::BINFLOAT: {
            uint64_t u = 0;
            for (int k = 0; k < 8; ++k) u = (u << 8) | u8();
            Value* v = make(Kind::floating);
            std::memcpy(&v->f, &u, 8);
            stack_.push_back(v);
            break;
        }
        default: return false;
    }
    return true;
}

// Strings and bytes, and buffers (refused out of band).
bool Machine::text_op(uint8_t op) {
    switch (op) {
        case opcode::BINUNICODE: stack_.push_back(make_str(Kind::string, bytes(le<uint32_t>()))); break;
        case opcode::SHORT_BINUNICODE: stack_.push_back(make_str(Kind::string, bytes(u8()))); break;
        case opcode::BINUNICODE8: stack_.push_back(make_str(Kind::string, bytes(le<uint64_t>()))); break;
        case opcode::UNICODE: stack_.push_back(make_str(Kind::string, line())); break;
        case opcode::BINBYTES: stack_.push_back(make_str(Kind::bytes, bytes(le<uint32_t>()))); break;
        case opcode::SHORT_BINBYTES: stack_.push_back(make_str(Kind::bytes, bytes(u8()))); break;
        case opcode::BINBYTES8:
        case opcode::BYTEARRAY8: stack_.push_back(make_str(Kind::bytes, bytes(le<uint64_t>()))); break;
        case opcode::BINSTRING: {
            const int32_t n = le<int32_t>();
            if (n < 0) fail("negative length");
            stack_.push_back(make_str(Kind::string, bytes(static_cast<uint64_t>(n))));
            break;
        }
        case opcode::SHORT_BINSTRING: stack_.push_back(make_str(Kind::string, bytes(u8()))); break;
        case opcode::STRING: {
            std::string t = line();
            if (t.size() < 2 || (t.front() != '\'' && t.front() != '"') || t.back() != t.front()) fail("bad STRING text");
            stack_.push_back(make_str(Kind::string, t.substr(1, t.size() - 2)));
            break;
        }
        case opcode::READONLY_BUFFER: top(); break;
        case opcode::NEXT_BUFFER: fail("out-of-band buffers are not supported");
        default: return false;
    }
    return true;
}

// Lists, tuples, dicts and sets: empty ones, built from marked items, and added to.
bool Machine::container_op(uint8_t op) {
    switch (op) {
        case opcode::EMPTY_LIST: stack_.push_back(make(Kind::list)); break;
        case opcode::EMPTY_TUPLE: stack_.push_back(make(Kind::tuple)); break;
        case opcode::EMPTY_DICT: stack_.push_back(make(Kind::dict)); break;
        case opcode::EMPTY_SET: stack_.push_back(make(Kind::set)); break;
        case opcode::LIST:
        case opcode::TUPLE:
        case opcode::FROZENSET: {
            Value* v = make(op == opcode::LIST ? Kind::list : op == opcode::TUPLE ? Kind::tuple : Kind::set);
            v->items = pop_mark();
            stack_.push_back(v);
            break;
        }
        case opcode::TUPLE1:
        case opcode::TUPLE2:
        case opcode::TUPLE3: {
            const size_t n = op - opcode::TUPLE1 + 1u;
            if (above_mark() < n) fail("stack underflow");
            Value* v = make(Kind::tuple);
            v->items.assign(stack_.end() - static_cast<std::ptrdiff_t>(n), stack_.end());
            stack_.resize(stack_.size() - n);
            stack_.push_back(v);
            break;
        }
        case opcode::DICT: {
            Value* v = make(Kind::dict);
            v->items = pop_mark();
            if (v->items.size() % 2) fail("odd number of dict items");
            stack_.push_back(v);
            break;
        }
        case opcode::APPEND: {
            Value* x = pop();
            Value* l = top();
            if (l->kind != Kind::list) fail("APPEND to a non-list");
            spend(1);
            l->items.push_back(x);
            break;
        }
        case opcode::APPENDS: {
            auto xs = pop_mark();
            Value* l = top();
            if (l->kind != Kind::list) fail("APPENDS to a non-list");
            l->items.insert(l->items.end(), xs.begin(), xs.end());
            break;
        }
        case opcode::ADDITEMS: {
            auto xs = pop_mark();
            Value* s = top();
            if (s->kind != Kind::set) fail("ADDITEMS to a non-set");
            s->items.insert(s->items.end(), xs.begin(), xs.end());
            break;
        }
        case opcode::SETITEM: {
            Value* v = pop();
            Value* k = pop();
            Value* d = top();
            if (d->kind != Kind::dict) fail("SETITEM on a non-dict");
            spend(2);
            d->items.push_back(k);
            d->items.push_back(v);
            break;
        }
        case opcode::SETITEMS: {
            auto xs = pop_mark();
            Value* d = top();
            if (d->kind != Kind::dict) fail("SETITEMS on a non-dict");
            if (xs.size() % 2) fail("odd number of dict items");
            d->items.insert(d->items.end(), xs.begin(), xs.end());
            break;
        }
        default: return false;
    }
    return true;
}

// The memo: PUT, BINPUT, LONG_BINPUT, MEMOIZE and the GETs.
bool Machine::memo_op(uint8_t op) {
    switch (op) {
        case opcode::PUT: {
            const std::string t = line();
            try {
                memo_[std::stoull(t)] = top();
            } catch (const std::logic_error&) {
                fail("bad PUT index");
            }
            break;
        }
        case opcode::BINPUT: memo_[u8()] = top(); break;
        case opcode::LONG_BINPUT: memo_[le<uint32_t>()] = top(); break;
        case opcode::MEMOIZE: memo_[memo_.size()] = top(); break;
        case opcode::GET:
        case opcode::BINGET:
        case opcode::LONG_BINGET: {
            uint64_t idx = 0;
            if (op == opcode::GET) {
                try {
                    idx = std::stoull(line());
                } catch (const std::logic_error&) {
                    fail("bad GET index");
                }
            } else {
                idx = op == opcode::BINGET ? u8() : le<uint32_t>();
            }
            auto it = memo_.find(idx);
            if (it == memo_.end()) fail(fmt::format("memo entry {} is missing", idx));
            stack_.push_back(it->second);
            break;
        }
        default: return false;
    }
    return true;
}

// Globals (checked against the allow-list), REDUCE, NEWOBJ, BUILD, persistent ids; class
// instantiation and the extension registry are refused.
bool Machine::object_op(uint8_t op) {
    switch (op) {
        case opcode::GLOBAL: {
            std::string module = line();
            const std::string name = line();
            stack_.push_back(make_global(std::move(module), name));
            break;
        }
        case opcode::STACK_GLOBAL: {
            Value* name = pop();
            Value* module = pop();
            if (name->kind != Kind::string || module->kind != Kind::string) fail("STACK_GLOBAL needs two strings");
            stack_.push_back(make_global(module->s, name->s));
            break;
        }
        case opcode::REDUCE: {
            Value* args = pop();
            Value* callable = pop();
            stack_.push_back(reduce(callable, args));
            break;
        }
        case opcode::NEWOBJ: {
            Value* args = pop();
            Value* cls = pop();
            stack_.push_back(newobj(cls, args));
            break;
        }
        case opcode::NEWOBJ_EX: {
            Value* kwargs = pop();
            Value* args = pop();
            Value* cls = pop();
            if (kwargs->kind != Kind::dict || !kwargs->items.empty()) fail("NEWOBJ_EX with keyword arguments");
            stack_.push_back(newobj(cls, args));
            break;
        }
        case opcode::BUILD: {
            Value* state = pop();
            build(top(), state);
            break;
        }
        case opcode::PERSID: stack_.push_back(persistent_load(make_str(Kind::string, line()))); break;
        case opcode::BINPERSID: stack_.push_back(persistent_load(pop())); break;
        case opcode::INST:
        case opcode::OBJ:
        case opcode::EXT1:
        case opcode::EXT2:
        case opcode::EXT4: fail(fmt::format("opcode 0x{:02x} (class instantiation / extension registry) is not allowed", op));
        default: return false;
    }
    return true;
}

}  // namespace detail

std::unique_ptr<Document> parse(std::string_view data, const std::string& source, const Limits& limits) {
    auto doc = std::make_unique<Document>();
    detail::Machine m(*doc, data, source, limits, 64 * data.size() + (1u << 20), nullptr);
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
        if (size > 0 && numel > detail::kMaxElements / size) throw fail("too many elements");
        numel *= size;
        if (size > 0) {
            if (stride > detail::kMaxElements) throw fail("stride out of range");
            last += (size - 1) * stride;
        }
    }
    if (base < 0 || (numel > 0 && last >= storage_numel)) throw fail("it reaches past the end of its storage");
    TensorData out;
    out.dtype = st->dtype;
    out.shape = t.sizes;
    const size_t es = dtype_size(st->dtype);
    bool contiguous = true;
    for (int64_t k = static_cast<int64_t>(t.sizes.size()) - 1, expect = 1; k >= 0; --k) {
        if (t.sizes[k] != 1 && t.strides[k] != expect) contiguous = false;
        expect *= t.sizes[k];
    }
    if (contiguous) {  // share the storage's bytes
        out.buffer = st->storage_bytes;
        out.offset = static_cast<size_t>(base) * es;
        return out;
    }
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
