// CUDA-GL interop through the CUDA runtime's graphics API (register, map, copy to the array, unmap).
#include "texture_interop.h"

#include <fmt/format.h>
#include <glad/gl.h>

#include <algorithm>

#include "render_worker.h"

#ifdef LATENTKIT_WITH_CUDA_GL
#include <cuda_gl_interop.h>
#include <cuda_runtime_api.h>
#endif

namespace latentkit::viewer {

#ifdef LATENTKIT_WITH_CUDA_GL

CudaGlInterop::CudaGlInterop() {
    int count = 0;
    if (const cudaError_t e = cudaGetDeviceCount(&count); e != cudaSuccess || count == 0) {
        const bool no_gpu = e == cudaErrorNoDevice || e == cudaErrorInsufficientDriver || count == 0;
        reason_ = no_gpu ? "no CUDA GPU and driver here" : fmt::format("CUDA: {}", cudaGetErrorString(e));
        cudaGetLastError();
        return;
    }
    unsigned gl_count = 0;
    std::vector<int> devices(static_cast<size_t>(count));
    if (const cudaError_t e = cudaGLGetDevices(&gl_count, devices.data(), static_cast<unsigned>(count), cudaGLDeviceListAll);
        e != cudaSuccess || gl_count == 0) {
        reason_ = fmt::format("the OpenGL context does not run on a CUDA device ({})", e != cudaSuccess ? cudaGetErrorString(e) : "none listed");
        cudaGetLastError();
        return;
    }
    gl_devices_.assign(devices.begin(), devices.begin() + gl_count);
    available_ = true;
}

void CudaGlInterop::release() {
    if (resource_) cudaGraphicsUnregisterResource(static_cast<cudaGraphicsResource_t>(resource_));
    resource_ = nullptr;
    texture_ = 0;
    width_ = height_ = 0;
}

bool CudaGlInterop::copy(const DeviceImage& image, unsigned texture) {
    if (!available_) return false;
    auto fail = [this](const std::string& why) {
        reason_ = why;
        release();
        available_ = false;
        cudaGetLastError();
        return false;
    };
    if (std::find(gl_devices_.begin(), gl_devices_.end(), image.device) == gl_devices_.end())
        return fail(fmt::format("the image is on cuda:{}, but OpenGL runs on cuda:{}", image.device, gl_devices_.front()));
    if (cudaError_t e = cudaSetDevice(image.device); e != cudaSuccess) return fail(fmt::format("cudaSetDevice: {}", cudaGetErrorString(e)));
    if (resource_ && (texture_ != texture || width_ != image.width || height_ != image.height)) release();
    if (!resource_) {
        cudaGraphicsResource_t r = nullptr;
        if (cudaError_t e = cudaGraphicsGLRegisterImage(&r, texture, GL_TEXTURE_2D, cudaGraphicsRegisterFlagsWriteDiscard); e != cudaSuccess)
            return fail(fmt::format("registering the texture: {}", cudaGetErrorString(e)));
        resource_ = r;
        texture_ = texture;
        width_ = image.width;
        height_ = image.height;
    }
    auto r = static_cast<cudaGraphicsResource_t>(resource_);
    if (cudaError_t e = cudaGraphicsMapResources(1, &r, nullptr); e != cudaSuccess)
        return fail(fmt::format("mapping the texture: {}", cudaGetErrorString(e)));
    cudaArray_t array = nullptr;
    const size_t row = static_cast<size_t>(image.width) * 4;
    cudaError_t e = cudaGraphicsSubResourceGetMappedArray(&array, r, 0, 0);
    if (e == cudaSuccess) e = cudaMemcpy2DToArray(array, 0, 0, image.data, row, row, static_cast<size_t>(image.height), cudaMemcpyDeviceToDevice);
    const cudaError_t unmap = cudaGraphicsUnmapResources(1, &r, nullptr);
    if (e != cudaSuccess) return fail(fmt::format("copying into the texture: {}", cudaGetErrorString(e)));
    if (unmap != cudaSuccess) return fail(fmt::format("unmapping the texture: {}", cudaGetErrorString(unmap)));
    return true;
}

#else

CudaGlInterop::CudaGlInterop() : reason_("built without the CUDA toolkit (LATENTKIT_CUDA_GL)") {}

void CudaGlInterop::release() {}

bool CudaGlInterop::copy(const DeviceImage&, unsigned) { return false; }

#endif

CudaGlInterop::~CudaGlInterop() { release(); }

}  // namespace latentkit::viewer
