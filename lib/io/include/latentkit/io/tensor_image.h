#pragma once
// Generator output tensors to 8-bit images, and image grids.
#include <torch/torch.h>

#include <vector>

#include "latentkit/png.h"

namespace latentkit::io {

/// Images of a batch [N, C, H, W] in the generator's range, converted as the reference does
/// ((img * 127.5 + 128) clamped to 0..255); 1-channel batches stay gray.
std::vector<Image8> images_from_batch(const torch::Tensor& img);

/// Images of a uint8 batch [N, H, W, C] (e.g. projection_uint8's).
std::vector<Image8> images_from_uint8(const torch::Tensor& u8);

/// An image as a float32 tensor [C, H, W] with values 0..255 (the layout generators produce).
torch::Tensor tensor_from_image(const Image8& image);

/// Lays images of one size out in a grid, row by row (`cols` wide); missing cells stay black.
Image8 tile_images(const std::vector<Image8>& images, int cols, int rows);

/// Copies `tile` into `canvas` with its top-left corner at (x, y); the channel counts must match.
void paste(Image8& canvas, const Image8& tile, int x, int y);

/// The same image with `channels` channels (gray <-> RGB).
Image8 convert_channels(const Image8& image, int channels);

}  // namespace latentkit::io
