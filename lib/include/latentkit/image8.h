#pragma once
// 8-bit images as the file readers and writers exchange them.
#include <cstdint>
#include <vector>

namespace latentkit {

/// An 8-bit image, rows of width * channels bytes (gray, gray + alpha, RGB or RGBA).
struct Image8 {
    int width = 0, height = 0, channels = 0;
    std::vector<uint8_t> pixels;
};

}  // namespace latentkit
