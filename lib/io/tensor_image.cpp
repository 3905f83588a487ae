#include "latentkit/io/tensor_image.h"

#include <cstring>

#include "latentkit/error.h"
#include "latentkit/latent.h"

namespace latentkit::io {

std::vector<Image8> images_from_batch(const torch::Tensor& img) { return images_from_uint8(to_uint8_nhwc(img)); }

std::vector<Image8> images_from_uint8(const torch::Tensor& batch) {
    const torch::Tensor u8 = batch.to(torch::kCPU, torch::kUInt8).contiguous();
    std::vector<Image8> out;
    for (int64_t k = 0; k < u8.size(0); ++k) {
        const torch::Tensor one = u8[k];
        Image8 im;
        im.height = static_cast<int>(one.size(0));
        im.width = static_cast<int>(one.size(1));
        im.channels = static_cast<int>(one.size(2));
        im.pixels.assign(one.data_ptr<uint8_t>(), one.data_ptr<uint8_t>() + one.numel());
        out.push_back(std::move(im));
    }
    return out;
}

torch::Tensor tensor_from_image(const Image8& image) {
    const auto bytes = torch::from_blob(const_cast<uint8_t*>(image.pixels.data()), {image.height, image.width, image.channels}, torch::kUInt8);
    return bytes.permute({2, 0, 1}).to(torch::kFloat32).contiguous();
}

void paste(Image8& canvas, const Image8& tile, int x, int y) {
    if (tile.channels != canvas.channels) throw ArgumentError("cannot paste images with different channel counts");
    for (int r = 0; r < tile.height && y + r < canvas.height; ++r) {
        if (y + r < 0 || x >= canvas.width) continue;
        const int n = std::min(tile.width, canvas.width - x);
        std::memcpy(canvas.pixels.data() + (size_t(y + r) * canvas.width + x) * canvas.channels,
                    tile.pixels.data() + size_t(r) * tile.width * tile.channels, size_t(n) * tile.channels);
    }
}

Image8 tile_images(const std::vector<Image8>& images, int cols, int rows) {
    if (images.empty() || cols < 1 || rows < 1) throw ArgumentError("an image grid needs images and a positive size");
    const Image8& first = images.front();
    Image8 canvas;
    canvas.width = first.width * cols;
    canvas.height = first.height * rows;
    canvas.channels = first.channels;
    canvas.pixels.assign(size_t(canvas.width) * canvas.height * canvas.channels, 0);
    for (size_t k = 0; k < images.size() && k < size_t(cols) * rows; ++k)
        paste(canvas, images[k], static_cast<int>(k % cols) * first.width, static_cast<int>(k / cols) * first.height);
    return canvas;
}

Image8 convert_channels(const Image8& im, int channels) {
    if (im.channels == channels) return im;
    if (!((im.channels == 1 && channels == 3) || (im.channels == 3 && channels == 1)))
        throw ArgumentError("only gray <-> RGB conversion is supported");
    Image8 out;
    out.width = im.width;
    out.height = im.height;
    out.channels = channels;
    const size_t n = size_t(im.width) * im.height;
    out.pixels.resize(n * channels);
    for (size_t p = 0; p < n; ++p) {
        if (channels == 3) {
            out.pixels[3 * p] = out.pixels[3 * p + 1] = out.pixels[3 * p + 2] = im.pixels[p];
        } else {
            const auto* c = &im.pixels[3 * p];
            out.pixels[p] = static_cast<uint8_t>((299 * c[0] + 587 * c[1] + 114 * c[2] + 500) / 1000);
        }
    }
    return out;
}

}  // namespace latentkit::io
