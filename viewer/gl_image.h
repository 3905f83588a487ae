#pragma once
// Showing an RGB image in a region of the window with an OpenGL 3.3 shader: fit, zoom, pan, nearest
// or linear filtering. Pixels come from host memory through a pixel buffer object, or from CUDA
// device memory through CudaGlInterop.
#include <string>

#include "latentkit/png.h"
#include "texture_storage.h"

namespace latentkit::viewer {

struct DeviceImage;

/// Where and how the image is drawn.
struct ImageView {
    double zoom = 1.0;            ///< 1 = fit the region
    double pan_x = 0, pan_y = 0;  ///< offset in region pixels
    bool nearest = false;         ///< nearest-neighbour filtering (else linear)
};

/// A texture and the program that draws it. Needs a current GL context.
class GlImage {
public:
    /// Compiles the shaders found in `shader_dir`; throws Error naming the file on failure.
    explicit GlImage(const std::string& shader_dir);
    ~GlImage();
    GlImage(const GlImage&) = delete;
    GlImage& operator=(const GlImage&) = delete;
    /// Uploads an RGB image (resizing the texture when its size changes).
    void upload(const Image8& image);
    /// Copies a device image in through CUDA-GL interop; false when the interop is off or failed
    /// (then upload image.to_host()).
    bool upload(const DeviceImage& image, TextureInterop& interop);
    /// Draws into the region (x, y, w, h; window pixels, origin top-left) of a window of fb_w x fb_h.
    void draw(int x, int y, int w, int h, int fb_w, int fb_h, const ImageView& view) const;
    /// The uploaded image read back from the texture.
    Image8 read_back() const;
    bool empty() const { return storage_.width() == 0; }
    int width() const { return storage_.width(); }
    int height() const { return storage_.height(); }
    /// The GL texture name (for Dear ImGui's Image widget).
    unsigned texture() const { return texture_; }

private:
    void allocate();
    unsigned program_ = 0, texture_ = 0, pbo_ = 0, vao_ = 0;
    TextureStorage storage_;  // size, and the interop registration released before any re-allocation
    int u_scale_ = -1, u_offset_ = -1;
};

/// Finds the shader folder: $LATENTKIT_SHADERS, the install path, or the source tree.
std::string find_shader_dir();

}  // namespace latentkit::viewer
