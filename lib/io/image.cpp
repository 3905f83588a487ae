// Photos through OpenCV: decoding, EXIF orientation, channel conversion and resampling. Without
// OpenCV: PNG through latentkit's own decoder, and no resampling.
#include "latentkit/io/image.h"

#include <fmt/format.h>

#include <cmath>
#include <cstring>

#include "latentkit/atomic_file.h"
#include "latentkit/error.h"
#include "latentkit/io/config.h"
#include "latentkit/io/tensor_image.h"

#if LATENTKIT_HAVE_OPENCV
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "cv_image.h"
#endif

namespace latentkit::io {
namespace {

uint32_t read_u16(const unsigned char* p, bool le) { return le ? p[0] | (p[1] << 8) : (p[0] << 8) | p[1]; }
uint32_t read_u32(const unsigned char* p, bool le) {
    return le ? p[0] | (p[1] << 8) | (p[2] << 16) | (uint32_t(p[3]) << 24) : (uint32_t(p[0]) << 24) | (p[1] << 16) | (p[2] << 8) | p[3];
}

int orientation_from_tiff(const unsigned char* t, size_t n) {
    if (n < 8) return 1;
    bool le;
    if (t[0] == 'I' && t[1] == 'I') le = true;
    else if (t[0] == 'M' && t[1] == 'M') le = false;
    else return 1;
    if (read_u16(t + 2, le) != 42) return 1;
    const uint32_t ifd = read_u32(t + 4, le);
    if (ifd + 2 > n) return 1;
    const uint32_t count = read_u16(t + ifd, le);
    for (uint32_t k = 0; k < count; ++k) {
        const size_t e = ifd + 2 + size_t(k) * 12;
        if (e + 12 > n) break;
        if (read_u16(t + e, le) == 0x0112 && read_u16(t + e + 2, le) == 3) {
            const int v = static_cast<int>(read_u16(t + e + 8, le));
            return v >= 1 && v <= 8 ? v : 1;
        }
    }
    return 1;
}

#if LATENTKIT_HAVE_OPENCV
cv::Mat apply_orientation(const cv::Mat& m, int orientation) {
    cv::Mat out;
    switch (orientation) {
        case 2: cv::flip(m, out, 1); break;
        case 3: cv::flip(m, out, -1); break;
        case 4: cv::flip(m, out, 0); break;
        case 5: cv::transpose(m, out); break;
        case 6: cv::rotate(m, out, cv::ROTATE_90_CLOCKWISE); break;
        case 7: cv::transpose(m, out); cv::flip(out, out, -1); break;
        case 8: cv::rotate(m, out, cv::ROTATE_90_COUNTERCLOCKWISE); break;
        default: out = m;
    }
    return out;
}
#endif

bool is_jpeg(const std::string& b) { return b.size() >= 3 && (unsigned char)b[0] == 0xFF && (unsigned char)b[1] == 0xD8; }
bool is_png(const std::string& b) { return b.size() >= 8 && b.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0; }

// libjpeg and libpng fill in missing data of a cut-off file instead of failing; detect that here.
void check_complete(const std::string& b, const std::string& name) {
    if (is_jpeg(b)) {
        const size_t sos = b.rfind("\xFF\xDA");
        const size_t eoi = b.rfind("\xFF\xD9");
        if (sos == std::string::npos || eoi == std::string::npos || eoi < sos)
            throw IoError(fmt::format("{}: the JPEG data is truncated (no end-of-image marker)", name));
    } else if (is_png(b)) {
        if (b.rfind("IEND") == std::string::npos) throw IoError(fmt::format("{}: the PNG data is truncated (no IEND chunk)", name));
    }
}

}  // namespace

int jpeg_exif_orientation(const std::string& bytes) {
    if (!is_jpeg(bytes)) return 1;
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
    size_t pos = 2;
    while (pos + 4 <= bytes.size()) {
        if (p[pos] != 0xFF) return 1;
        const unsigned char marker = p[pos + 1];
        if (marker == 0xD8 || (marker >= 0xD0 && marker <= 0xD7) || marker == 0x01 || marker == 0xFF) {
            pos += marker == 0xFF ? 1 : 2;
            continue;
        }
        if (marker == 0xDA || marker == 0xD9) return 1;
        const size_t len = read_u16(p + pos + 2, false);
        if (len < 2 || pos + 2 + len > bytes.size()) return 1;
        if (marker == 0xE1 && len >= 8 && std::memcmp(p + pos + 4, "Exif\0\0", 6) == 0)
            return orientation_from_tiff(p + pos + 10, len - 8);
        pos += 2 + len;
    }
    return 1;
}

Image8 decode_image(const std::string& bytes, const std::string& name, const ReadImageOptions& options) {
    if (options.channels != 1 && options.channels != 3) throw ArgumentError("images can be read with 1 or 3 channels");
    if (bytes.empty()) throw IoError(fmt::format("{}: the file is empty", name));
    check_complete(bytes, name);
#if LATENTKIT_HAVE_OPENCV
    cv::Mat raw;
    try {
        const cv::Mat buf(1, static_cast<int>(bytes.size()), CV_8UC1, const_cast<char*>(bytes.data()));
        raw = cv::imdecode(buf, cv::IMREAD_UNCHANGED);
    } catch (const cv::Exception& e) {
        throw IoError(fmt::format("{}: not a decodable image ({})", name, e.err));
    }
    if (raw.empty() || raw.cols < 1 || raw.rows < 1) throw IoError(fmt::format("{}: not an image file OpenCV can decode", name));
    raw = apply_orientation(raw, jpeg_exif_orientation(bytes));

    cv::Mat m8;
    switch (raw.depth()) {
        case CV_8U: m8 = raw; break;
        case CV_16U: raw.convertTo(m8, CV_8U, 1.0 / 257.0); break;
        case CV_32F:
        case CV_64F: raw.convertTo(m8, CV_8U, 255.0); break;
        default: raw.convertTo(m8, CV_8U); break;
    }
    cv::Mat rgb;
    switch (m8.channels()) {
        case 1: cv::cvtColor(m8, rgb, cv::COLOR_GRAY2RGB); break;
        case 3: cv::cvtColor(m8, rgb, cv::COLOR_BGR2RGB); break;
        case 4: {
            cv::Mat rgba, f;
            cv::cvtColor(m8, rgba, cv::COLOR_BGRA2RGBA);
            rgba.convertTo(f, CV_32F, 1.0 / 255.0);
            std::vector<cv::Mat> ch;
            cv::split(f, ch);
            std::vector<cv::Mat> out(3);
            for (int c = 0; c < 3; ++c) out[c] = ch[c].mul(ch[3]) + (1.0f - ch[3]) * (options.background[c] / 255.0f);
            cv::Mat merged;
            cv::merge(out, merged);
            merged.convertTo(rgb, CV_8U, 255.0);
            break;
        }
        default: throw IoError(fmt::format("{}: images with {} channels are not supported", name, m8.channels()));
    }
    if (options.channels == 1) {
        cv::Mat gray;
        cv::cvtColor(rgb, gray, cv::COLOR_RGB2GRAY);
        return detail::from_mat(gray);
    }
    return detail::from_mat(rgb);
#else
    if (!is_png(bytes)) throw IoError(fmt::format("{}: this build of latentkit has no OpenCV and reads PNG images only", name));
    const Image8 png = decode_png(bytes, name);
    if (png.channels == 1 || png.channels == 3) return convert_channels(png, options.channels);
    // Gray+alpha and RGBA: composited on the background colour.
    const size_t n = size_t(png.width) * png.height;
    const int colour = png.channels - 1;
    Image8 rgb{png.width, png.height, 3, std::vector<uint8_t>(n * 3)};
    for (size_t p = 0; p < n; ++p) {
        const uint8_t* px = &png.pixels[p * png.channels];
        const float a = px[colour] / 255.0f;
        for (int c = 0; c < 3; ++c)
            rgb.pixels[p * 3 + c] = static_cast<uint8_t>(std::lround((px[colour == 1 ? 0 : c] * a + options.background[c] * (1.0f - a))));
    }
    return convert_channels(rgb, options.channels);
#endif
}

Image8 read_image(const std::string& path, const ReadImageOptions& options) {
    return decode_image(read_file(path), path, options);
}

Image8 resize_image(const Image8& image, int width, int height, ResizeFilter filter) {
    if (width < 1 || height < 1) throw ArgumentError("resize_image: the size must be positive");
    if (image.width == width && image.height == height) return image;
#if LATENTKIT_HAVE_OPENCV
    const cv::Mat src = detail::as_mat(image);
    cv::Mat dst;
    const bool shrink = width <= image.width && height <= image.height;
    const int mode = filter == ResizeFilter::lanczos ? cv::INTER_LANCZOS4 : filter == ResizeFilter::area ? cv::INTER_AREA
                     : shrink ? cv::INTER_AREA : cv::INTER_LANCZOS4;
    cv::resize(src, dst, cv::Size(width, height), 0, 0, mode);
    return detail::from_mat(dst);
#else
    (void)filter;
    throw Error(fmt::format("resizing a {}x{} image to {}x{} needs OpenCV, which this build of latentkit lacks "
                            "(give images of the size wanted)", image.width, image.height, width, height));
#endif
}

Image8 crop_image(const Image8& image, int x, int y, int w, int h) {
    if (x < 0 || y < 0 || w < 1 || h < 1 || x + w > image.width || y + h > image.height)
        throw ArgumentError(fmt::format("crop_image: {}x{} at ({}, {}) does not lie inside the {}x{} image", w, h, x, y, image.width, image.height));
    const size_t c = static_cast<size_t>(image.channels);
    Image8 out{w, h, image.channels, std::vector<uint8_t>(static_cast<size_t>(w) * h * c)};
    for (int row = 0; row < h; ++row)
        std::copy_n(&image.pixels[(static_cast<size_t>(row + y) * image.width + x) * c], w * c, &out.pixels[static_cast<size_t>(row) * w * c]);
    return out;
}

Image8 center_crop(const Image8& image, int size) {
    const int s = std::min(image.width, image.height);
    return resize_image(crop_image(image, (image.width - s) / 2, (image.height - s) / 2, s, s), size, size);
}

}  // namespace latentkit::io
