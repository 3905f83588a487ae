#pragma once
// PNG files for 8-bit images (gray, RGB, RGBA), with zlib only. Torch-free (latentkit_formats).
#include <string>

#include "latentkit/image8.h"

namespace latentkit {

/// Encodes an image as PNG bytes (channels 1, 3 or 4).
std::string encode_png(const Image8& image);
/// Writes a PNG atomically (temporary file, then rename).
void write_png(const std::string& path, const Image8& image);
/// Reads a non-interlaced 8-bit gray / gray+alpha / RGB / RGBA PNG; throws IoError naming the file.
Image8 read_png(const std::string& path);
/// Decodes PNG bytes as read_png does; `name` is used in error messages.
Image8 decode_png(const std::string& bytes, const std::string& name);

}  // namespace latentkit
