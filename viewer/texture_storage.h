#pragma once
// A texture's storage and the interop registration that refers to it, without GL: whoever re-specifies
// the storage releases the registration first, so a later device copy never maps a stale one. GlImage
// follows it for host and device uploads alike; tests follow it with a stand-in interop.
#include <string>

namespace latentkit::viewer {

struct DeviceImage;

/// Copies device images into a GL texture (CudaGlInterop, or a stand-in in tests).
class TextureInterop {
public:
    virtual ~TextureInterop() = default;
    /// True while copies can be tried.
    virtual bool available() const = 0;
    /// Why it is unavailable.
    virtual const std::string& reason() const = 0;
    /// Copies `image` into `texture` (registering it when needed); false on failure, after which it stays off.
    virtual bool copy(const DeviceImage& image, unsigned texture) = 0;
    /// Unregisters the texture; called before its storage is re-specified or deleted.
    virtual void release() = 0;
};

/// The storage size of one texture and the interop that registered it.
class TextureStorage {
public:
    TextureStorage() = default;
    TextureStorage(const TextureStorage&) = delete;
    TextureStorage& operator=(const TextureStorage&) = delete;
    ~TextureStorage() { release(); }
    /// Before an upload of width x height: true when the storage must be (re)allocated, in which case
    /// the registration, if any, has been released and the new size recorded.
    bool prepare(int width, int height) {
        if (width == width_ && height == height_) return false;
        release();
        width_ = width;
        height_ = height;
        return true;
    }
    /// A device copy through `interop` registered the texture's current storage.
    void registered(TextureInterop* interop) { interop_ = interop; }
    /// Releases the registration (before the texture is deleted).
    void release() {
        if (interop_) interop_->release();
        interop_ = nullptr;
    }
    int width() const { return width_; }
    int height() const { return height_; }

private:
    int width_ = 0, height_ = 0;
    TextureInterop* interop_ = nullptr;
};

}  // namespace latentkit::viewer
