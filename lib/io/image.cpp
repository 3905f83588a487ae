// Photos through OpenCV: decoding, EXIF orientation, channel conversion and resampling. Without
// OpenCV: PNG through latentkit's own decoder, and no resampling.
#include "latentkit/io/image.h"

#include <fmt/format.h>

#include <algorithm>
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

namespace {

// Pillow's resampling (Resample.c) with its LANCZOS filter: a Lanczos-3 kernel stretched by the
// shrink factor (so it anti-aliases), weights normalised in double and rounded to 22-bit fixed point,
// a horizontal pass into 8 bits, then a vertical pass. Done the same way, the pixels are Pillow's.
constexpr int kPrecisionBits = 32 - 8 - 2;

double sinc(double x) {
    if (x == 0.0) return 1.0;
    x *= 3.14159265358979323846;
    return std::sin(x) / x;
}
double lanczos3(double x) { return (-3.0 <= x && x < 3.0) ? sinc(x) * sinc(x / 3) : 0.0; }

// For each output sample: the first input sample, how many follow, and their fixed-point weights.
struct Taps {
    int ksize = 0;
    std::vector<int> first, count;
    std::vector<int32_t> weights;  // ksize per output sample
};

Taps lanczos_taps(int in_size, int out_size) {
    const double scale = static_cast<double>(in_size) / out_size;
    const double filterscale = std::max(scale, 1.0), support = 3.0 * filterscale;
    Taps t;
    t.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
    t.weights.assign(static_cast<size_t>(t.ksize) * out_size, 0);
    std::vector<double> w(static_cast<size_t>(t.ksize));
    for (int xx = 0; xx < out_size; ++xx) {
        const double center = (xx + 0.5) * scale, ss = 1.0 / filterscale;
        const int xmin = std::max(static_cast<int>(center - support + 0.5), 0);
        const int n = std::min(static_cast<int>(center + support + 0.5), in_size) - xmin;
        double sum = 0;
        for (int x = 0; x < n; ++x) sum += (w[x] = lanczos3((x + xmin - center + 0.5) * ss));
        for (int x = 0; x < n; ++x) {
            const double k = (sum != 0.0 ? w[x] / sum : w[x]) * (1 << kPrecisionBits);
            t.weights[static_cast<size_t>(xx) * t.ksize + x] = static_cast<int32_t>(k < 0 ? -0.5 + k : 0.5 + k);
        }
        t.first.push_back(xmin);
        t.count.push_back(n);
    }
    return t;
}

uint8_t clip8(int32_t v) { return v < 0 ? 0 : static_cast<uint8_t>(std::min(v >> kPrecisionBits, 255)); }

// One pass along x (horizontal) or y: out has `out_size` samples along that axis.
Image8 lanczos_pass(const Image8& in, int out_size, bool horizontal) {
    const int c = in.channels;
    const Taps t = lanczos_taps(horizontal ? in.width : in.height, out_size);
    Image8 out{horizontal ? out_size : in.width, horizontal ? in.height : out_size, c, {}};
    out.pixels.resize(static_cast<size_t>(out.width) * out.height * c);
    const size_t step = horizontal ? static_cast<size_t>(c) : static_cast<size_t>(in.width) * c;
    for (int y = 0; y < out.height; ++y)
        for (int x = 0; x < out.width; ++x) {
            const int o = horizontal ? x : y;
            const int32_t* k = &t.weights[static_cast<size_t>(o) * t.ksize];
            const uint8_t* src = horizontal ? &in.pixels[(static_cast<size_t>(y) * in.width + t.first[o]) * c]
                                            : &in.pixels[(static_cast<size_t>(t.first[o]) * in.width + x) * c];
            for (int ch = 0; ch < c; ++ch) {
                int32_t acc = 1 << (kPrecisionBits - 1);
                for (int i = 0; i < t.count[o]; ++i) acc += static_cast<int32_t>(src[i * step + ch]) * k[i];
                out.pixels[(static_cast<size_t>(y) * out.width + x) * c + ch] = clip8(acc);
            }
        }
    return out;
}

Image8 resize_lanczos(const Image8& image, int width, int height) {
    Image8 out = width != image.width ? lanczos_pass(image, width, true) : image;
    return height != image.height ? lanczos_pass(out, height, false) : out;
}

}  // namespace

std::string encode_jpeg(const Image8& image, int quality) {
    if (image.channels != 1 && image.channels != 3) throw ArgumentError(fmt::format("JPEG holds gray or RGB images, not {} channels", image.channels));
#if LATENTKIT_HAVE_OPENCV
    cv::Mat m = detail::as_mat(image);
    if (image.channels == 3) cv::cvtColor(m, m, cv::COLOR_RGB2BGR);
    std::vector<uint8_t> out;
    if (!cv::imencode(".jpg", m, out, {cv::IMWRITE_JPEG_QUALITY, std::clamp(quality, 1, 100)})) throw Error("JPEG encoding failed");
    return std::string(out.begin(), out.end());
#else
    (void)quality;
    throw Error("this build of latentkit has no JPEG encoder (OpenCV was not found at build time): use PNG");
#endif
}

Image8 resize_image(const Image8& image, int width, int height, ResizeFilter filter) {
    if (width < 1 || height < 1) throw ArgumentError("resize_image: the size must be positive");
    if (image.width == width && image.height == height) return image;
    const bool shrink = width <= image.width && height <= image.height;
    if (filter == ResizeFilter::lanczos || (filter == ResizeFilter::automatic && !shrink)) return resize_lanczos(image, width, height);
#if LATENTKIT_HAVE_OPENCV
    const cv::Mat src = detail::as_mat(image);
    cv::Mat dst;
    cv::resize(src, dst, cv::Size(width, height), 0, 0, filter == ResizeFilter::lanczos4 ? cv::INTER_LANCZOS4 : cv::INTER_AREA);
    return detail::from_mat(dst);
#else
    throw Error(fmt::format("resizing a {}x{} image to {}x{} with the {} filter needs OpenCV, which this build of latentkit lacks "
                            "(the lanczos filter works without it)", image.width, image.height, width, height, option_name(filter)));
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
    return resize_image(crop_image(image, (image.width - s) / 2, (image.height - s) / 2, s, s), size, size, ResizeFilter::lanczos);
}

}  // namespace latentkit::io
