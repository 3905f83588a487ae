#pragma once
// CUDA-GL interop: copies an image that lies in CUDA device memory straight into an OpenGL texture,
// without a trip through host memory. Built when the CUDA toolkit is found (LATENTKIT_CUDA_GL);
// otherwise, or when the GL context is not on a CUDA device, it reports itself unavailable and the
// caller uploads from host memory.
#include <string>
#include <vector>

#include "texture_storage.h"

namespace latentkit::viewer {

/// Copies device images into one GL texture at a time. Needs the texture's GL context to be current.
class CudaGlInterop : public TextureInterop {
public:
    /// Probes the CUDA runtime and the current GL context.
    CudaGlInterop();
    ~CudaGlInterop() override;
    CudaGlInterop(const CudaGlInterop&) = delete;
    CudaGlInterop& operator=(const CudaGlInterop&) = delete;
    /// True while copies can be tried.
    bool available() const override { return available_; }
    /// Why it is unavailable: the probe's answer or the failure that turned it off.
    const std::string& reason() const override { return reason_; }
    /// Copies `image` into `texture` (GL_TEXTURE_2D, RGBA8, the image's size). On failure it returns
    /// false, says why in reason() and stays off, so the caller falls back to a host upload for good.
    bool copy(const DeviceImage& image, unsigned texture) override;
    /// Unregisters the texture; call before its storage is re-specified or deleted.
    void release() override;

private:
    bool available_ = false;
    std::string reason_;
    std::vector<int> gl_devices_;  // CUDA devices that drive the GL context
    void* resource_ = nullptr;     // the registered texture (cudaGraphicsResource_t)
    unsigned texture_ = 0;
    int width_ = 0, height_ = 0;
};

}  // namespace latentkit::viewer
