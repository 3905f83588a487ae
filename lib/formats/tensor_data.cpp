#include "latentkit/tensor_data.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>

#include "latentkit/atomic_file.h"
#include "latentkit/error.h"

namespace latentkit {
namespace {

constexpr uint64_t kMaxHeaderBytes = 100ull << 20;
constexpr int64_t kMaxElements = int64_t(1) << 40;

struct DTypeInfo {
    DType type;
    const char* name;
    size_t size;
};
constexpr DTypeInfo kDTypes[] = {
    {DType::f16, "F16", 2},  {DType::bf16, "BF16", 2}, {DType::f32, "F32", 4}, {DType::f64, "F64", 8},
    {DType::i8, "I8", 1},    {DType::u8, "U8", 1},     {DType::i16, "I16", 2}, {DType::i32, "I32", 4},
    {DType::i64, "I64", 8},  {DType::boolean, "BOOL", 1},
};

float half_to_float(uint16_t h) {
    const uint32_t sign = (h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ffu, bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else {
            exp = 127 - 15 + 1;
            while (!(mant & 0x400u)) {
                mant <<= 1;
                --exp;
            }
            bits = sign | (exp << 23) | ((mant & 0x3ffu) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

template <class T>
T load(const char* p) {
    T v;
    std::memcpy(&v, p, sizeof(T));
    return v;
}

}  // namespace

size_t dtype_size(DType t) {
    for (const auto& d : kDTypes)
        if (d.type == t) return d.size;
    return 1;
}

const char* dtype_name(DType t) {
    for (const auto& d : kDTypes)
        if (d.type == t) return d.name;
    return "?";
}

int64_t TensorData::numel() const {
    int64_t n = 1;
    for (int64_t s : shape) n *= s;
    return n;
}

TensorData TensorData::from_floats(std::vector<int64_t> shape, const std::vector<float>& values) {
    TensorData t;
    t.dtype = DType::f32;
    t.shape = std::move(shape);
    if (static_cast<size_t>(t.numel()) != values.size()) throw ShapeError("tensor shape does not match its values");
    t.buffer = std::make_shared<const std::string>(reinterpret_cast<const char*>(values.data()), values.size() * 4);
    return t;
}

std::vector<float> TensorData::to_floats() const {
    const int64_t n = numel();
    std::vector<float> out(static_cast<size_t>(n));
    const char* p = static_cast<const char*>(data());
    for (int64_t i = 0; i < n; ++i) {
        float v = 0;
        switch (dtype) {
            case DType::f16: v = half_to_float(load<uint16_t>(p + 2 * i)); break;
            case DType::bf16: {
                uint32_t bits = uint32_t(load<uint16_t>(p + 2 * i)) << 16;
                std::memcpy(&v, &bits, 4);
                break;
            }
            case DType::f32: v = load<float>(p + 4 * i); break;
            case DType::f64: v = static_cast<float>(load<double>(p + 8 * i)); break;
            case DType::i8: v = load<int8_t>(p + i); break;
            case DType::u8: v = load<uint8_t>(p + i); break;
            case DType::i16: v = load<int16_t>(p + 2 * i); break;
            case DType::i32: v = static_cast<float>(load<int32_t>(p + 4 * i)); break;
            case DType::i64: v = static_cast<float>(load<int64_t>(p + 8 * i)); break;
            case DType::boolean: v = p[i] ? 1.f : 0.f; break;
        }
        out[static_cast<size_t>(i)] = v;
    }
    return out;
}

const TensorData* TensorFile::find(const std::string& name) const {
    for (const auto& [n, t] : tensors)
        if (n == name) return &t;
    return nullptr;
}

TensorFile parse_safetensors(std::shared_ptr<const std::string> bytes, const std::string& source) {
    auto fail = [&](const std::string& what) { return ModelFormatError(source + ": not a valid safetensors file: " + what); };
    const std::string& data = *bytes;
    if (data.size() < 8) throw fail("shorter than its 8-byte header length");
    const uint64_t header_len = load<uint64_t>(data.data());
    if (header_len > kMaxHeaderBytes) throw fail(fmt::format("header length {} is implausible", header_len));
    if (header_len > data.size() - 8) throw fail(fmt::format("header length {} runs past the end of the file ({} bytes)", header_len, data.size()));
    const size_t data_start = 8 + header_len;
    const size_t data_len = data.size() - data_start;

    nlohmann::json header;
    try {
        header = nlohmann::json::parse(
            data.begin() + 8, data.begin() + static_cast<std::ptrdiff_t>(data_start),
            [](int depth, nlohmann::json::parse_event_t, nlohmann::json&) {
                if (depth > 4) throw std::runtime_error("header nests too deeply");
                return true;
            });
    } catch (const std::exception& e) {
        throw fail(std::string("header is not valid JSON (") + e.what() + ")");
    }
    if (!header.is_object()) throw fail("header is not a JSON object");

    TensorFile file;
    std::vector<std::pair<size_t, size_t>> ranges;
    for (auto it = header.begin(); it != header.end(); ++it) {
        const std::string& name = it.key();
        const auto& v = it.value();
        if (name == "__metadata__") {
            if (!v.is_object()) throw fail("__metadata__ is not an object");
            for (auto m = v.begin(); m != v.end(); ++m) {
                if (!m.value().is_string()) throw fail("metadata value '" + m.key() + "' is not a string");
                file.metadata[m.key()] = m.value().get<std::string>();
            }
            continue;
        }
        if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets"))
            throw fail("entry '" + name + "' lacks dtype, shape or data_offsets");
        const auto& jd = v["dtype"];
        const auto& js = v["shape"];
        const auto& jo = v["data_offsets"];
        if (!jd.is_string() || !js.is_array() || !jo.is_array() || jo.size() != 2)
            throw fail("entry '" + name + "' has malformed fields");
        TensorData t;
        bool known = false;
        for (const auto& d : kDTypes)
            if (jd.get<std::string>() == d.name) {
                t.dtype = d.type;
                known = true;
            }
        if (!known) throw fail("entry '" + name + "' has unsupported dtype " + jd.get<std::string>());
        int64_t numel = 1;
        for (const auto& s : js) {
            if (!s.is_number_unsigned()) throw fail("entry '" + name + "' has a bad dimension");
            const uint64_t d = s.get<uint64_t>();
            if (d > static_cast<uint64_t>(kMaxElements) || (d > 0 && numel > kMaxElements / static_cast<int64_t>(d)))
                throw fail("entry '" + name + "' is implausibly large");
            numel *= static_cast<int64_t>(d);
            t.shape.push_back(static_cast<int64_t>(d));
        }
        if (!jo[0].is_number_unsigned() || !jo[1].is_number_unsigned()) throw fail("entry '" + name + "' has bad offsets");
        const uint64_t begin = jo[0].get<uint64_t>(), end = jo[1].get<uint64_t>();
        if (begin > end || end > data_len)
            throw fail(fmt::format("entry '{}' spans bytes {}..{} but the data section has {} bytes", name, begin, end, data_len));
        if (end - begin != static_cast<uint64_t>(numel) * dtype_size(t.dtype))
            throw fail(fmt::format("entry '{}' has {} bytes for shape of {} elements", name, end - begin, numel));
        t.buffer = bytes;
        t.offset = data_start + begin;
        ranges.emplace_back(begin, end);
        file.tensors.emplace_back(name, std::move(t));
    }
    std::sort(ranges.begin(), ranges.end());
    for (size_t i = 1; i < ranges.size(); ++i)
        if (ranges[i].first < ranges[i - 1].second) throw fail("tensor data ranges overlap");
    return file;
}

TensorFile read_safetensors(const std::string& path) {
    return parse_safetensors(std::make_shared<const std::string>(read_file(path)), path);
}

std::string serialize_safetensors(const TensorFile& file) {
    std::vector<const std::pair<std::string, TensorData>*> order;
    for (const auto& e : file.tensors) order.push_back(&e);
    std::sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->first < b->first; });
    nlohmann::ordered_json header = nlohmann::ordered_json::object();
    if (!file.metadata.empty()) header["__metadata__"] = file.metadata;
    size_t offset = 0;
    for (const auto* e : order) {
        const size_t n = e->second.nbytes();
        header[e->first] = {{"dtype", dtype_name(e->second.dtype)}, {"shape", e->second.shape}, {"data_offsets", {offset, offset + n}}};
        offset += n;
    }
    std::string h = header.dump();
    while ((8 + h.size()) % 8 != 0) h.push_back(' ');
    std::string out;
    out.reserve(8 + h.size() + offset);
    const uint64_t len = h.size();
    out.append(reinterpret_cast<const char*>(&len), 8);
    out += h;
    for (const auto* e : order) out.append(static_cast<const char*>(e->second.data()), e->second.nbytes());
    return out;
}

void write_safetensors(const std::string& path, const TensorFile& file) {
    const std::string bytes = serialize_safetensors(file);
    write_file_atomic(path, bytes.data(), bytes.size());
}

}  // namespace latentkit
