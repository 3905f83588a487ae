#include "latentkit/npz.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstring>
#include <memory>

#include "latentkit/atomic_file.h"
#include "bytes.h"
#include "latentkit/error.h"
#include "latentkit/zip.h"

namespace latentkit {
namespace {


struct NpyType {
    const char* descr;
    DType dtype;
};
constexpr NpyType kNpyTypes[] = {{"<f4", DType::f32}, {"<f8", DType::f64}, {"<f2", DType::f16}, {"|u1", DType::u8}, {"|i1", DType::i8},
                                 {"<i2", DType::i16}, {"<i4", DType::i32}, {"<i8", DType::i64}, {"|b1", DType::boolean}};

using detail::le;
using detail::put;

// Value of `key` in a numpy header dict literal, as raw text up to the next top-level comma.
std::string header_field(const std::string& h, const std::string& key, const std::string& source) {
    const size_t k = h.find("'" + key + "'");
    if (k == std::string::npos) throw ModelFormatError(source + ": .npy header lacks '" + key + "'");
    size_t p = h.find(':', k);
    if (p == std::string::npos) throw ModelFormatError(source + ": malformed .npy header");
    ++p;
    while (p < h.size() && h[p] == ' ') ++p;
    size_t e = p;
    if (e < h.size() && h[e] == '(') {
        e = h.find(')', e);
        if (e == std::string::npos) throw ModelFormatError(source + ": malformed .npy shape");
        return h.substr(p, e - p + 1);
    }
    while (e < h.size() && h[e] != ',' && h[e] != '}') ++e;
    return h.substr(p, e - p);
}
}  // namespace

TensorData parse_npy(const std::string& b, const std::string& source) {
    auto fail = [&](const std::string& what) { return ModelFormatError(source + ": not a valid .npy array: " + what); };
    if (b.size() < 10 || b.compare(0, 6, "\x93NUMPY") != 0) throw fail("bad magic");
    const int major = uint8_t(b[6]);
    size_t header_len, start;
    if (major == 1) {
        header_len = le<uint16_t>(b, 8);
        start = 10;
    } else if (major == 2 || major == 3) {
        if (b.size() < 12) throw fail("truncated header");
        header_len = le<uint32_t>(b, 8);
        start = 12;
    } else {
        throw fail(fmt::format("format version {} is not supported", major));
    }
    if (header_len > b.size() - start) throw fail("header runs past the end");
    const std::string h = b.substr(start, header_len);
    std::string descr = header_field(h, "descr", source);
    if (descr.size() < 2 || descr.front() != '\'' || descr.back() != '\'') throw fail("bad descr");
    descr = descr.substr(1, descr.size() - 2);
    if (descr == "<u1" || descr == "<i1" || descr == "<b1") descr[0] = '|';
    TensorData t;
    bool found = false;
    for (const auto& nt : kNpyTypes)
        if (descr == nt.descr) {
            t.dtype = nt.dtype;
            found = true;
        }
    if (!found) throw fail("element type " + descr + " is not supported");
    if (header_field(h, "fortran_order", source).find("False") == std::string::npos) throw fail("Fortran-ordered arrays are not supported");
    const std::string shape = header_field(h, "shape", source);
    if (shape.size() < 2 || shape.front() != '(') throw fail("bad shape");
    size_t p = 1;
    int64_t numel = 1;
    while (p < shape.size()) {
        while (p < shape.size() && (shape[p] == ' ' || shape[p] == ',')) ++p;
        if (p >= shape.size() || shape[p] == ')') break;
        size_t used = 0;
        int64_t d = 0;
        try {
            d = std::stoll(shape.substr(p), &used);
        } catch (const std::exception&) {
            throw fail("bad shape");
        }
        if (d < 0 || (d > 0 && numel > (int64_t(1) << 40) / d)) throw fail("shape out of range");
        numel *= d;
        t.shape.push_back(d);
        p += used;
    }
    const size_t data = start + header_len;
    if (b.size() - data != static_cast<size_t>(numel) * dtype_size(t.dtype))
        throw fail(fmt::format("holds {} data bytes but its shape needs {}", b.size() - data, numel * dtype_size(t.dtype)));
    t.buffer = std::make_shared<const std::string>(b.substr(data));
    return t;
}

std::string serialize_npy(const TensorData& a) {
    const char* descr = nullptr;
    for (const auto& nt : kNpyTypes)
        if (nt.dtype == a.dtype) descr = nt.descr;
    if (!descr) throw ArgumentError("array type cannot be written as .npy");
    std::string shape = "(";
    for (size_t k = 0; k < a.shape.size(); ++k) shape += fmt::format("{}{}", k ? ", " : "", a.shape[k]);
    shape += a.shape.size() == 1 ? ",)" : ")";
    std::string h = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}", descr, shape);
    while ((10 + h.size() + 1) % 64 != 0) h.push_back(' ');
    h.push_back('\n');
    std::string out("\x93NUMPY\x01\x00", 8);
    put<uint16_t>(out, static_cast<uint16_t>(h.size()));
    out += h;
    out.append(static_cast<const char*>(a.data()), a.nbytes());
    return out;
}

NamedArrays read_npz(const std::string& path) { return parse_npz(std::make_shared<const std::string>(read_file(path)), path); }

NamedArrays parse_npz(std::shared_ptr<const std::string> bytes, const std::string& path) {
    std::unique_ptr<ZipReader> zip;
    try {
        zip = std::make_unique<ZipReader>(bytes, path);
    } catch (const ModelFormatError& e) {
        const std::string what = e.what(), prefix = path + ": not a valid zip archive: ";
        throw ModelFormatError(path + ": not a valid .npz file: " + (what.rfind(prefix, 0) == 0 ? what.substr(prefix.size()) : what));
    }
    NamedArrays out;
    for (size_t k = 0; k < zip->entries().size(); ++k) {
        std::string key = zip->entries()[k].name;
        const std::string member = zip->read(k);
        if (key.size() > 4 && key.compare(key.size() - 4, 4, ".npy") == 0) key.resize(key.size() - 4);
        out.emplace_back(key, parse_npy(member, path + ":" + zip->entries()[k].name));
    }
    return out;
}

TensorData read_projected_w(const std::string& path, int num_ws, int w_dim) {
    NamedArrays arrays = read_npz(path);
    for (auto& [name, a] : arrays) {
        if (name != "w") continue;
        const auto& s = a.shape;
        if (s.size() != 3 || s[1] != num_ws || s[2] != w_dim)
            throw ShapeError(fmt::format("{}: 'w' has shape [{}] but this model needs [N, {}, {}]", path, fmt::join(s, ", "), num_ws, w_dim));
        if (s[0] == 0) throw ShapeError(path + ": 'w' holds no latents");
        return std::move(a);
    }
    throw ShapeError(path + ": has no array named 'w' (expected the reference projected_w.npz)");
}

void write_npz(const std::string& path, const NamedArrays& arrays) {
    ZipWriter zip(path);
    for (const auto& [key, array] : arrays) zip.add(key + ".npy", serialize_npy(array));
    zip.finish();
}

}  // namespace latentkit
