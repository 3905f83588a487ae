// What the allow-listed pickle globals build: dicts, sets, tensors, legacy torch storages, numpy values.
#include <cstring>

#include "pickle_machine.h"

namespace latentkit::pickle::detail {

// OrderedDict, EasyDict, dict: from nothing, a dict, or a sequence of pairs.
Value* Machine::reduce_dict(const std::string& g, const std::vector<Value*>& a) {
    Value* d = make(Kind::dict);
    if (a.empty()) return d;
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
    return d;
}

// set, frozenset and torch.Size (a tuple): from nothing or a sequence.
Value* Machine::reduce_sequence(const std::string& g, const std::vector<Value*>& a) {
    Value* s = make(g == "torch.Size" ? Kind::tuple : Kind::set);
    if (a.empty()) return s;
    if (a.size() != 1 || (a[0]->kind != Kind::list && a[0]->kind != Kind::tuple && a[0]->kind != Kind::set))
        fail(g + " argument is not a sequence");
    spend(a[0]->items.size());
    s->items = a[0]->items;
    return s;
}

// _codecs.encode(text, 'latin1'): how protocol 2 stores bytes; the text is UTF-8 of code points < 256.
Value* Machine::reduce_latin1(const std::vector<Value*>& a) {
    if (a.size() != 2 || a[0]->kind != Kind::string || a[1]->kind != Kind::string) fail("_codecs.encode arguments");
    if (a[1]->s != "latin1" && a[1]->s != "latin-1") fail("_codecs.encode with encoding " + a[1]->s);
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

// torch_utils.persistence._reconstruct_persistent_obj(meta): an object of meta's class with meta's state.
Value* Machine::reduce_persistent(const std::vector<Value*>& a) {
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

Value* Machine::reduce(Value* callable, Value* args) {
    if (callable->kind != Kind::global) fail("REDUCE on a value that is not an allowed global");
    if (args->kind != Kind::tuple) fail("REDUCE arguments are not a tuple");
    const std::string& g = callable->s;
    const auto& a = args->items;
    if (g == "collections.OrderedDict" || g == "dnnlib.util.EasyDict" || g == "dnnlib.EasyDict" || g == "builtins.dict") return reduce_dict(g, a);
    if (g == "builtins.set" || g == "builtins.frozenset" || g == "torch.Size") return reduce_sequence(g, a);
    if (g == "_codecs.encode") return reduce_latin1(a);
    if (g == "torch._utils._rebuild_tensor_v2" || g == "torch._utils._rebuild_tensor") return rebuild_tensor(a);
    if (g == "torch._utils._rebuild_parameter" || g == "torch._utils._rebuild_parameter_with_state") {
        if (a.empty() || a[0]->kind != Kind::tensor) fail(g + " without a tensor");
        return a[0];
    }
    if (g == "torch.storage._load_from_bytes") {
        if (legacy_) fail("nested _load_from_bytes");
        if (a.size() != 1 || a[0]->kind != Kind::bytes) fail("_load_from_bytes argument is not bytes");
        Value* storage = load_from_bytes(*a[0]);
        std::string().swap(a[0]->s);  // the payload has been copied into the storage: free it
        return storage;
    }
    if (g == "torch_utils.persistence._reconstruct_persistent_obj") return reduce_persistent(a);
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
    if (g == "numpy.core.numeric._frombuffer") return numpy_frombuffer(a);
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
    if (is_record_class(g)) {
        if (args->kind != Kind::tuple || !args->items.empty()) fail("cannot construct '" + g + "' with arguments");
        return make_str(Kind::object, g);
    }
    fail("cannot construct '" + g + "'");
}

void Machine::build(Value* obj, Value* state) {
    // (dict_state, slots_state): the slots of these classes are empty.
    if (state->kind == Kind::tuple && state->items.size() == 2 && state->items[1]->kind == Kind::none) state = state->items[0];
    if (obj->kind == Kind::dict || (obj->kind == Kind::object && is_record_class(obj->s))) {
        // Instance attributes (an OrderedDict's _metadata, a record's fields), kept apart from dict items.
        if (state->kind == Kind::none) return;
        if (state->kind != Kind::dict) fail("object state is not a dict");
        if (obj->state) fail("object state set twice");
        obj->state = state;
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
    if (!legacy_ && !zip_) fail("persistent id outside a torch.save file or tensor payload");
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
    if (zip_) return zip_storage(a, dtype);
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

// ('storage', type, key, location, numel): the bytes are the archive member PREFIX/data/KEY.
Value* Machine::zip_storage(const std::vector<Value*>& a, DType dtype) {
    const std::string& key = a[2]->s;
    const int64_t numel = as_int(a[4], "storage size");
    if (numel < 0 || numel > kMaxElements) fail("storage size out of range");
    Value*& st = zip_->by_key[key];
    if (st) {
        if (st->dtype != dtype || st->i != numel) fail("storage " + key + " used with two element types or sizes");
        return st;
    }
    const std::string member = zip_->prefix + "data/" + key;
    const int64_t index = zip_->zip.find(member);
    if (index < 0) fail("storage " + member + " is missing from the archive (damaged or incomplete file?)");
    const ZipEntry& entry = zip_->zip.entries()[static_cast<size_t>(index)];
    const uint64_t expected = static_cast<uint64_t>(numel) * dtype_size(dtype);
    if (entry.size != expected)
        fail(fmt::format("storage {} holds {} bytes, but its tensors need {} ({} elements)", member, entry.size, expected, numel));
    spend(static_cast<size_t>(expected / 64));
    st = make(Kind::storage);
    st->dtype = dtype;
    st->i = numel;
    st->storage_bytes = std::make_shared<const std::string>(zip_->zip.read(static_cast<size_t>(index)));
    return st;
}

Value* Machine::load_from_bytes(const Value& payload) {
    Value* result = legacy_stream(payload.s, "tensor payload");
    if (result->kind != Kind::storage) fail("tensor payload does not hold a storage");
    return result;
}

Value* Machine::legacy_stream(std::string_view bytes, const char* what) {
    LegacyStorages storages;
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
    if (magic->kind != Kind::big_integer || magic->s != kMagic) fail(std::string(what) + " is not a legacy torch.save stream");
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
    check_numpy_dtype(&dtype, "numpy scalar");
    const std::string& code = dtype.items[0]->s;
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

void Machine::check_numpy_dtype(const Value* dt, const char* what) const {
    if (dt->kind != Kind::object || dt->s != "numpy.dtype") fail(std::string(what) + ": dtype is not a numpy.dtype");
    // state = (version, byte order, subarray, names, fields, elsize, alignment, flags)
    if (dt->state && dt->state->kind == Kind::tuple && dt->state->items.size() > 1 && dt->state->items[1]->is_string(">"))
        fail(std::string(what) + ": big-endian numpy data is not supported");
    if (dt->state && dt->state->kind == Kind::tuple && dt->state->items.size() > 4 && dt->state->items[3]->kind != Kind::none)
        fail(std::string(what) + ": structured numpy dtypes are not supported");
}

DType Machine::numpy_dtype(const Value* dt, const char* what) const {
    check_numpy_dtype(dt, what);
    static const std::pair<const char*, DType> codes[] = {{"f2", DType::f16}, {"f4", DType::f32}, {"f8", DType::f64}, {"i1", DType::i8},
                                                          {"u1", DType::u8},  {"i2", DType::i16}, {"i4", DType::i32}, {"i8", DType::i64},
                                                          {"b1", DType::boolean}};
    const std::string& code = dt->items[0]->s;
    for (const auto& [c, d] : codes)
        if (code == c) return d;
    fail(std::string(what) + ": numpy type " + code + " is not supported");
}

void Machine::make_numpy_tensor(Value* obj, const std::vector<int64_t>& shape, DType dtype, const std::string& bytes, bool fortran) {
    int64_t numel = 1;
    for (int64_t d : shape) {
        if (d < 0 || (d > 0 && numel > kMaxElements / d)) fail("numpy array shape out of range");
        numel *= d;
    }
    if (bytes.size() != static_cast<size_t>(numel) * dtype_size(dtype)) fail("numpy array data size disagrees with its shape");
    Value* storage = make(Kind::storage);
    storage->dtype = dtype;
    storage->i = numel;
    storage->storage_bytes = std::make_shared<const std::string>(bytes);
    obj->kind = Kind::tensor;
    obj->dtype = dtype;
    obj->tensor_storage = storage;
    obj->sizes = shape;
    obj->strides.assign(shape.size(), 1);
    // C order: the last axis is contiguous; Fortran order: the first (to_tensor_data copies it to C order).
    const int n = static_cast<int>(shape.size());
    if (fortran)
        for (int k = 1; k < n; ++k) obj->strides[k] = obj->strides[k - 1] * shape[k - 1];
    else
        for (int k = n - 2; k >= 0; --k) obj->strides[k] = obj->strides[k + 1] * shape[k + 1];
}

void Machine::numpy_array(Value* obj, const Value& state) {
    // state = (version, shape, dtype, is_fortran, raw bytes)
    if (state.kind != Kind::tuple || state.items.size() != 5) fail("numpy array state");
    const auto& s = state.items;
    const std::vector<int64_t> shape = int_tuple(s[1], "array shape");
    const DType dtype = numpy_dtype(s[2], "numpy array");
    if (s[3]->kind != Kind::boolean) fail("numpy array order flag");
    if (s[4]->kind != Kind::bytes) fail("numpy array of Python objects is not supported");
    make_numpy_tensor(obj, shape, dtype, s[4]->s, s[3]->b);
}

// numpy's protocol-5 reduction: _frombuffer(buffer, dtype, shape, order) with the buffer in band.
Value* Machine::numpy_frombuffer(const std::vector<Value*>& a) {
    if (a.size() != 4 || a[0]->kind != Kind::bytes || a[3]->kind != Kind::string) fail("numpy _frombuffer arguments");
    if (!a[3]->is_string("C") && !a[3]->is_string("F")) fail("numpy _frombuffer order " + a[3]->s);
    Value* obj = make(Kind::tensor);
    make_numpy_tensor(obj, int_tuple(a[2], "array shape"), numpy_dtype(a[1], "numpy array"), a[0]->s, a[3]->is_string("F"));
    return obj;
}

}  // namespace latentkit::pickle::detail
