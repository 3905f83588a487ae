#pragma once
// Photos in any format OpenCV decodes, with EXIF orientation, and the resampling used to prepare
// projection targets and datasets. A build without OpenCV reads PNG only and cannot resample.
#include <array>
#include <cstdint>
#include <string>

#include "latentkit/option_names.h"
#include "latentkit/png.h"

namespace latentkit::io {

/// How read_image converts what it decodes.
struct ReadImageOptions {
    int channels = 3;                               ///< 1 (gray) or 3 (RGB)
    std::array<uint8_t, 3> background{255, 255, 255};  ///< RGB that transparent pixels are composited on
};

/// Reads a JPEG, PNG, WebP, TIFF, BMP, ... file: applies the EXIF orientation, converts 16-bit to
/// 8-bit and gray / RGB / RGBA to `options.channels`. Throws IoError naming the file when it is
/// missing, empty, truncated or not a decodable image (without OpenCV: not an 8-bit PNG).
Image8 read_image(const std::string& path, const ReadImageOptions& options = {});

/// Decodes image bytes as read_image does; `name` is used in error messages.
Image8 decode_image(const std::string& bytes, const std::string& name, const ReadImageOptions& options = {});

/// A gray or RGB image as JPEG bytes (quality 1-100). Throws Error in a build without OpenCV.
std::string encode_jpeg(const Image8& image, int quality = 92);

/// The EXIF orientation (1-8) stored in JPEG bytes, 1 when there is none.
int jpeg_exif_orientation(const std::string& bytes);

/// Resampling filter of resize_image.
enum class ResizeFilter {
    automatic,  ///< area averaging when shrinking, lanczos when enlarging
    lanczos,    ///< the reference's: Pillow's anti-aliased Lanczos-3 (LANCZOS), pixel for pixel; needs no OpenCV
    area,       ///< box / area averaging (OpenCV INTER_AREA)
    lanczos4    ///< OpenCV's Lanczos-4 (INTER_LANCZOS4), not anti-aliased when shrinking
};
}  // namespace latentkit::io
namespace latentkit {
template <>
struct OptionNames<io::ResizeFilter> {
    static constexpr const char* names[] = {"auto", "lanczos", "area", "lanczos4"};
};
}  // namespace latentkit
namespace latentkit::io {
/// Resizes an image (automatic: area averaging when shrinking and lanczos when enlarging). Without
/// OpenCV only lanczos works; area and lanczos4 throw Error.
Image8 resize_image(const Image8& image, int width, int height, ResizeFilter filter = ResizeFilter::automatic);

/// The w x h rectangle with its top-left corner at (x, y), which must lie inside the image.
Image8 crop_image(const Image8& image, int x, int y, int w, int h);

/// The largest centred square, resized to size x size with lanczos (the reference projector's preparation).
Image8 center_crop(const Image8& image, int size);

}  // namespace latentkit::io
