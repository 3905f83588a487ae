#include "latentkit/io/npz.h"

#include <fmt/format.h>
#include <zlib.h>

#include <cstring>

#include "latentkit/atomic_file.h"
#include "latentkit/error.h"

namespace latentkit::io {
namespace {

constexpr uint64_t kMaxMemberBytes = uint64_t(1) << 34;

struct NpyType {
    const char* descr;
    DType dtype;
};
constexpr NpyType kNpyTypes[] = {{"<f4", DType::f32}, {"<f8", DType::f64}, {"<f2", DType::f16}, {"|u1", DType::u8}, {"|i1", DType::i8},
                                 {"<i2", DType::i16}, {"<i4", DType::i32}, {"<i8", DType::i64}, {"|b1", DType::boolean}};

template <class T>
T le(const std::string& b, size_t pos) {
    T v;
    std::memcpy(&v, b.data() + pos, sizeof(T));
    return v;
}
template <class T>
void put(std::string& out, T v) {
    out.append(reinterpret_cast<const char*>(&v), sizeof(T));
}

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

NamedArrays read_npz(const std::string& path) {
    const std::string b = read_file(path);
    auto fail = [&](const std::string& what) { return ModelFormatError(path + ": not a valid .npz file: " + what); };
    if (b.size() < 22) throw fail("too short");
    size_t eocd = std::string::npos;
    for (size_t p = b.size() - 22 + 1; p-- > 0 && b.size() - p <= 22 + 65535;)
        if (le<uint32_t>(b, p) == 0x06054b50u) {
            eocd = p;
            break;
        }
    if (eocd == std::string::npos) throw fail("no zip directory (truncated or not a zip)");
    uint64_t entries = le<uint16_t>(b, eocd + 10), cd_offset = le<uint32_t>(b, eocd + 16);
    if ((entries == 0xffff || cd_offset == 0xffffffffu) && eocd >= 20 && le<uint32_t>(b, eocd - 20) == 0x07064b50u) {
        const uint64_t z64 = le<uint64_t>(b, eocd - 12);
        if (z64 > b.size() - 56 || le<uint32_t>(b, z64) != 0x06064b50u) throw fail("bad zip64 directory");
        entries = le<uint64_t>(b, z64 + 32);
        cd_offset = le<uint64_t>(b, z64 + 48);
    }
    NamedArrays out;
    size_t p = cd_offset;
    for (uint64_t e = 0; e < entries; ++e) {
        if (p > b.size() || b.size() - p < 46 || le<uint32_t>(b, p) != 0x02014b50u) throw fail("damaged zip directory");
        const uint16_t method = le<uint16_t>(b, p + 10), name_len = le<uint16_t>(b, p + 28), extra_len = le<uint16_t>(b, p + 30),
                       comment_len = le<uint16_t>(b, p + 32);
        uint64_t csize = le<uint32_t>(b, p + 20), usize = le<uint32_t>(b, p + 24), local = le<uint32_t>(b, p + 42);
        if (b.size() - p - 46 < size_t(name_len) + extra_len + comment_len) throw fail("damaged zip directory");
        const std::string name = b.substr(p + 46, name_len);
        for (size_t x = p + 46 + name_len; x + 4 <= p + 46 + name_len + extra_len;) {
            const uint16_t id = le<uint16_t>(b, x), len = le<uint16_t>(b, x + 2);
            size_t q = x + 4;
            if (id == 1) {
                if (usize == 0xffffffffu && q + 8 <= x + 4 + len) usize = le<uint64_t>(b, q), q += 8;
                if (csize == 0xffffffffu && q + 8 <= x + 4 + len) csize = le<uint64_t>(b, q), q += 8;
                if (local == 0xffffffffu && q + 8 <= x + 4 + len) local = le<uint64_t>(b, q);
            }
            x += 4 + len;
        }
        p += 46 + name_len + extra_len + comment_len;
        if (local > b.size() || b.size() - local < 30 || le<uint32_t>(b, local) != 0x04034b50u) throw fail("damaged member " + name);
        const size_t data = local + 30 + le<uint16_t>(b, local + 26) + le<uint16_t>(b, local + 28);
        if (data > b.size() || csize > b.size() - data) throw fail("member " + name + " runs past the end (truncated?)");
        if (usize > kMaxMemberBytes) throw fail("member " + name + " is implausibly large");
        std::string member;
        if (method == 0) {
            if (csize != usize) throw fail("stored member sizes disagree");
            member = b.substr(data, csize);
        } else if (method == 8) {
            member.resize(usize);
            z_stream zs{};
            if (inflateInit2(&zs, -15) != Z_OK) throw fail("zlib init failed");
            zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(b.data() + data));
            zs.avail_in = static_cast<uInt>(csize);
            zs.next_out = reinterpret_cast<Bytef*>(member.data());
            zs.avail_out = static_cast<uInt>(usize);
            const int rc = inflate(&zs, Z_FINISH);
            const uint64_t produced = zs.total_out;
            inflateEnd(&zs);
            if (rc != Z_STREAM_END || produced != usize) throw fail("member " + name + " does not decompress");
        } else {
            throw fail(fmt::format("member {} uses compression method {}", name, method));
        }
        std::string key = name;
        if (key.size() > 4 && key.compare(key.size() - 4, 4, ".npy") == 0) key.resize(key.size() - 4);
        out.emplace_back(key, parse_npy(member, path + ":" + name));
    }
    return out;
}

void write_npz(const std::string& path, const NamedArrays& arrays) {
    std::string zip, directory;
    for (const auto& [key, array] : arrays) {
        const std::string name = key + ".npy";
        const std::string data = serialize_npy(array);
        const uint32_t crc = static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(data.size())));
        const uint32_t offset = static_cast<uint32_t>(zip.size());
        auto header = [&](std::string& out, bool central) {
            put<uint32_t>(out, central ? 0x02014b50u : 0x04034b50u);
            if (central) put<uint16_t>(out, 20);
            put<uint16_t>(out, 20);
            put<uint16_t>(out, 0);
            put<uint16_t>(out, 0);
            put<uint16_t>(out, 0);
            put<uint16_t>(out, 0x21);
            put<uint32_t>(out, crc);
            put<uint32_t>(out, static_cast<uint32_t>(data.size()));
            put<uint32_t>(out, static_cast<uint32_t>(data.size()));
            put<uint16_t>(out, static_cast<uint16_t>(name.size()));
            put<uint16_t>(out, 0);
            if (central) {
                put<uint16_t>(out, 0);
                put<uint16_t>(out, 0);
                put<uint16_t>(out, 0);
                put<uint32_t>(out, 0);
                put<uint32_t>(out, offset);
            }
            out += name;
        };
        header(zip, false);
        zip += data;
        header(directory, true);
    }
    const uint32_t cd_offset = static_cast<uint32_t>(zip.size());
    zip += directory;
    put<uint32_t>(zip, 0x06054b50u);
    put<uint16_t>(zip, 0);
    put<uint16_t>(zip, 0);
    put<uint16_t>(zip, static_cast<uint16_t>(arrays.size()));
    put<uint16_t>(zip, static_cast<uint16_t>(arrays.size()));
    put<uint32_t>(zip, static_cast<uint32_t>(directory.size()));
    put<uint32_t>(zip, cd_offset);
    put<uint16_t>(zip, 0);
    write_file_atomic(path, zip.data(), zip.size());
}

}  // namespace latentkit::io
