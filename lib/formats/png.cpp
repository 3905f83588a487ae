#include "latentkit/png.h"

#include <fmt/format.h>
#include <zlib.h>

#include <cstring>

#include "latentkit/atomic_file.h"
#include "latentkit/error.h"

namespace latentkit {
namespace {
const char kSignature[] = "\x89PNG\r\n\x1a\n";

void put_u32(std::string& out, uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<char>((v >> s) & 0xff));
}
uint32_t get_u32(const std::string& b, size_t pos) {
    return (uint32_t(uint8_t(b[pos])) << 24) | (uint32_t(uint8_t(b[pos + 1])) << 16) | (uint32_t(uint8_t(b[pos + 2])) << 8) |
           uint32_t(uint8_t(b[pos + 3]));
}
void put_chunk(std::string& out, const char* type, const std::string& data) {
    put_u32(out, static_cast<uint32_t>(data.size()));
    const size_t start = out.size();
    out.append(type, 4);
    out += data;
    const uint32_t crc = static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(out.data() + start), static_cast<uInt>(out.size() - start)));
    put_u32(out, crc);
}
int paeth(int a, int b, int c) {
    const int p = a + b - c, pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
    return (pa <= pb && pa <= pc) ? a : (pb <= pc ? b : c);
}
}  // namespace

std::string encode_png(const Image8& im) {
    static const uint8_t color_types[] = {0, 0, 4, 2, 6};
    if (im.channels < 1 || im.channels > 4 || im.width <= 0 || im.height <= 0 ||
        im.pixels.size() != size_t(im.width) * im.height * im.channels)
        throw ArgumentError("cannot encode PNG: bad image dimensions");
    const size_t stride = size_t(im.width) * im.channels;
    std::string raw;
    raw.reserve((stride + 1) * im.height);
    for (int y = 0; y < im.height; ++y) {
        raw.push_back('\0');
        raw.append(reinterpret_cast<const char*>(im.pixels.data() + y * stride), stride);
    }
    uLongf zlen = compressBound(static_cast<uLong>(raw.size()));
    std::string z(zlen, '\0');
    if (compress2(reinterpret_cast<Bytef*>(z.data()), &zlen, reinterpret_cast<const Bytef*>(raw.data()), static_cast<uLong>(raw.size()), 6) != Z_OK)
        throw IoError("PNG compression failed");
    z.resize(zlen);
    std::string out(kSignature, 8), ihdr;
    put_u32(ihdr, static_cast<uint32_t>(im.width));
    put_u32(ihdr, static_cast<uint32_t>(im.height));
    ihdr += std::string{'\x08', static_cast<char>(color_types[im.channels]), '\0', '\0', '\0'};
    put_chunk(out, "IHDR", ihdr);
    put_chunk(out, "IDAT", z);
    put_chunk(out, "IEND", "");
    return out;
}

void write_png(const std::string& path, const Image8& image) {
    const std::string bytes = encode_png(image);
    write_file_atomic(path, bytes.data(), bytes.size());
}

Image8 read_png(const std::string& path) { return decode_png(read_file(path), path); }

Image8 decode_png(const std::string& b, const std::string& name) {
    auto fail = [&](const std::string& what) { return IoError(name + ": not a readable PNG: " + what); };
    if (b.size() < 8 || b.compare(0, 8, std::string(kSignature, 8)) != 0) throw fail("bad signature");
    Image8 im;
    int color_type = -1;
    std::string idat;
    size_t pos = 8;
    while (pos + 12 <= b.size()) {
        const uint32_t len = get_u32(b, pos);
        if (len > b.size() - pos - 12) throw fail("chunk runs past the end (truncated?)");
        const std::string type = b.substr(pos + 4, 4);
        const size_t data = pos + 8;
        if (type == "IHDR") {
            if (len != 13) throw fail("bad IHDR");
            im.width = static_cast<int>(get_u32(b, data));
            im.height = static_cast<int>(get_u32(b, data + 4));
            color_type = uint8_t(b[data + 9]);
            if (uint8_t(b[data + 8]) != 8 || uint8_t(b[data + 12]) != 0) throw fail("only 8-bit non-interlaced PNGs are supported");
            static const int channels[] = {1, -1, 3, -1, 2, -1, 4};
            if (color_type > 6 || channels[color_type] < 0) throw fail("palette PNGs are not supported");
            im.channels = channels[color_type];
            if (im.width <= 0 || im.height <= 0 || int64_t(im.width) * im.height > (int64_t(1) << 28)) throw fail("bad dimensions");
        } else if (type == "IDAT") {
            idat.append(b, data, len);
        } else if (type == "IEND") {
            break;
        }
        pos = data + len + 4;
    }
    if (color_type < 0 || idat.empty()) throw fail("missing IHDR or IDAT");
    const size_t stride = size_t(im.width) * im.channels;
    // zlib expands at most about 1032:1: dimensions the image data cannot fill are damage, and must not
    // size an allocation.
    if ((stride + 1) * im.height > idat.size() * 1100 + 65536) throw fail("image data is too short for its dimensions");
    std::string raw((stride + 1) * im.height, '\0');
    uLongf rawlen = static_cast<uLongf>(raw.size());
    if (uncompress(reinterpret_cast<Bytef*>(raw.data()), &rawlen, reinterpret_cast<const Bytef*>(idat.data()), static_cast<uLong>(idat.size())) != Z_OK ||
        rawlen != raw.size())
        throw fail("image data is damaged");
    im.pixels.assign(stride * im.height, 0);
    const int bpp = im.channels;
    for (int y = 0; y < im.height; ++y) {
        const uint8_t filter = uint8_t(raw[y * (stride + 1)]);
        const uint8_t* src = reinterpret_cast<const uint8_t*>(raw.data()) + y * (stride + 1) + 1;
        uint8_t* row = im.pixels.data() + y * stride;
        const uint8_t* up = y > 0 ? row - stride : nullptr;
        for (size_t x = 0; x < stride; ++x) {
            const int a = x >= size_t(bpp) ? row[x - bpp] : 0, u = up ? up[x] : 0, c = (up && x >= size_t(bpp)) ? up[x - bpp] : 0;
            int v = src[x];
            switch (filter) {
                case 0: break;
                case 1: v += a; break;
                case 2: v += u; break;
                case 3: v += (a + u) / 2; break;
                case 4: v += paeth(a, u, c); break;
                default: throw fail("bad row filter");
            }
            row[x] = static_cast<uint8_t>(v);
        }
    }
    return im;
}

}  // namespace latentkit
