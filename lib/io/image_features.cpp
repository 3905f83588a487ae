// Feature extractors for `curate` (built-in OpenCV descriptor, a discriminator, TorchScript) and the
// per-file feature cache.
#include "latentkit/io/image_features.h"

#include <fmt/format.h>
#include <torch/script.h>

#include <filesystem>
#include <cstring>
#include <fstream>

#include "latentkit/atomic_file.h"
#include "latentkit/device.h"
#include "latentkit/error.h"
#include "latentkit/io/config.h"
#include "latentkit/io/download.h"
#include "latentkit/io/image.h"
#include "latentkit/io/tensor_image.h"
#include "latentkit/model_io.h"
#include "latentkit/networks.h"
#include "latentkit/stop.h"
#if LATENTKIT_HAVE_OPENCV
#include <opencv2/imgproc.hpp>
#include <opencv2/objdetect.hpp>

#include "cv_image.h"
#endif

namespace latentkit::io {
namespace fs = std::filesystem;
namespace {

// FNV-1a, 64 bits: stable across builds and machines (the cache's file names).
uint64_t fnv1a(const std::string& bytes, uint64_t h = 1469598103934665603ull) {
    for (unsigned char c : bytes) h = (h ^ c) * 1099511628211ull;
    return h;
}

// A file's identity for cache keys: its path, size and modification time.
std::string file_stamp(const std::string& path) {
    std::error_code ec;
    const auto size = fs::file_size(path, ec);
    const auto time = fs::last_write_time(path, ec).time_since_epoch().count();
    return fmt::format("{:016x}", fnv1a(fmt::format("{}|{}|{}", fs::absolute(path).string(), size, time)));
}

// RGB images at one size as a float batch [N, 3, size, size] in 0..255.
torch::Tensor batch_255(const std::vector<Image8>& images, int size) {
    std::vector<torch::Tensor> rows;
    for (const auto& im : images) {
        Image8 rgb = convert_channels(im, 3);
        if (rgb.width != size || rgb.height != size) rgb = resize_image(rgb, size, size);
        rows.push_back(tensor_from_image(rgb));
    }
    return torch::stack(rows);
}

std::vector<std::vector<float>> rows_of(const torch::Tensor& t) {
    const torch::Tensor c = t.to(torch::kCPU, torch::kFloat32).contiguous();
    std::vector<std::vector<float>> out;
    for (int64_t i = 0; i < c.size(0); ++i) out.emplace_back(c[i].data_ptr<float>(), c[i].data_ptr<float>() + c.size(1));
    return out;
}

#if LATENTKIT_HAVE_OPENCV
class BuiltinFeatures : public FeatureExtractor {
public:
    std::string key() const override { return "builtin-v1"; }
    std::string describe() const override { return "built-in: HSV colour histogram (8x4x4), HOG (64x64, 9 bins) and an 8x8 thumbnail"; }
    std::vector<std::vector<float>> compute(const std::vector<Image8>& images) override {
        std::vector<std::vector<float>> out;
        for (const auto& im : images) out.push_back(one(convert_channels(im, 3)));
        return out;
    }

private:
    std::vector<float> one(const Image8& rgb) {
        cv::Mat small;
        cv::resize(detail::as_mat(rgb), small, cv::Size(64, 64), 0, 0, cv::INTER_AREA);
        std::vector<float> f;
        cv::Mat hsv;
        cv::cvtColor(small, hsv, cv::COLOR_RGB2HSV);
        std::vector<float> hist(128, 0.0f);
        for (int y = 0; y < 64; ++y)
            for (int x = 0; x < 64; ++x) {
                const cv::Vec3b p = hsv.at<cv::Vec3b>(y, x);
                hist[static_cast<size_t>(std::min(7, p[0] * 8 / 180) * 16 + (p[1] / 64) * 4 + p[2] / 64)] += 1.0f / 4096;
            }
        f.insert(f.end(), hist.begin(), hist.end());
        cv::Mat gray;
        cv::cvtColor(small, gray, cv::COLOR_RGB2GRAY);
        std::vector<float> hog;
        hog_.compute(gray, hog);
        f.insert(f.end(), hog.begin(), hog.end());
        cv::Mat thumb;
        cv::resize(small, thumb, cv::Size(8, 8), 0, 0, cv::INTER_AREA);
        for (int k = 0; k < 8 * 8 * 3; ++k) f.push_back(thumb.data[k] / 255.0f);
        return f;
    }
    cv::HOGDescriptor hog_{cv::Size(64, 64), cv::Size(16, 16), cv::Size(8, 8), cv::Size(8, 8), 9};
};
#endif

class DiscriminatorFeatures : public FeatureExtractor {
public:
    DiscriminatorFeatures(const std::string& location, const torch::Device& device) : location_(location), device_(device) {
        Model m = load_model_location(location);
        if (!m.D) throw ModelFormatError(location + ": holds no discriminator (D:MODEL needs a training snapshot)");
        D_ = m.D;
        D_->to(device_);
        D_->eval();
        key_ = "D-" + (is_url(location) ? fmt::format("{:016x}", fnv1a(location)) : file_stamp(location));
    }
    std::string key() const override { return key_; }
    std::string describe() const override { return "the discriminator of " + location_ + " (mean activations of its last two blocks)"; }
    std::vector<std::vector<float>> compute(const std::vector<Image8>& images) override {
        torch::NoGradGuard no_grad;
        const int res = D_->config.img_resolution;
        torch::Tensor x = batch_255(images, res) / 127.5 - 1;
        if (D_->config.img_channels == 1) x = x.mean(1, true);
        const std::vector<torch::Tensor> blocks = D_->features(x.to(device_));
        std::vector<torch::Tensor> pooled;
        for (size_t k = blocks.size() >= 2 ? blocks.size() - 2 : 0; k < blocks.size(); ++k) pooled.push_back(blocks[k].mean({2, 3}));
        return rows_of(torch::cat(pooled, 1));
    }

private:
    std::string location_, key_;
    torch::Device device_;
    std::shared_ptr<Discriminator> D_;
};

class TorchScriptFeatures : public FeatureExtractor {
public:
    TorchScriptFeatures(const std::string& location, const torch::Device& device) : location_(location), device_(device) {
        const std::string path = is_url(location) ? cached_download(location) : location;
        if (!fs::is_regular_file(path)) throw IoError(location + ": no such file");
        try {
            module_ = torch::jit::load(path, torch::kCPU);
        } catch (const c10::Error&) {
            throw ModelFormatError(location + ": not a TorchScript module (give a .pt file saved by torch.jit.save, D:MODEL, or leave --features out)");
        }
        module_.to(device_);
        module_.eval();
        const auto& args = module_.get_method("forward").function().getSchema().arguments();
        for (const auto& a : args) with_features_ |= a.name() == "return_features";
        key_ = "ts-" + (is_url(location) ? fmt::format("{:016x}", fnv1a(location)) : file_stamp(path));
    }
    std::string key() const override { return key_; }
    std::string describe() const override { return "the TorchScript network " + location_; }
    std::vector<std::vector<float>> compute(const std::vector<Image8>& images) override {
        torch::NoGradGuard no_grad;
        std::vector<c10::IValue> in{batch_255(images, 256).to(device_)};
        std::unordered_map<std::string, c10::IValue> kwargs;
        if (with_features_) kwargs["return_features"] = true;
        torch::Tensor out;
        try {
            out = module_.forward(in, kwargs).toTensor();
        } catch (const c10::Error& e) {
            throw ModelFormatError(location_ + ": running it on [N, 3, 256, 256] images failed: " + std::string(e.what_without_backtrace()).substr(0, 200));
        }
        if (out.dim() == 4) out = out.mean({2, 3});
        return rows_of(out.reshape({out.size(0), -1}));
    }

private:
    std::string location_, key_;
    torch::Device device_;
    torch::jit::Module module_;
    bool with_features_ = false;
};

}  // namespace

std::unique_ptr<FeatureExtractor> make_feature_extractor(const std::string& net, const std::string& device) {
    const torch::Device d(device);
    if (net.empty() || net == "builtin") {
#if LATENTKIT_HAVE_OPENCV
        return std::make_unique<BuiltinFeatures>();
#else
        throw Error("the built-in features need OpenCV, which this build of latentkit lacks: give --features NET");
#endif
    }
    if (net.rfind("D:", 0) == 0) return std::make_unique<DiscriminatorFeatures>(net.substr(2), d);
    return std::make_unique<TorchScriptFeatures>(net, d);
}

std::vector<std::vector<float>> source_features(const ImageSource& source, FeatureExtractor& extractor, const std::string& cache_dir,
                                                const std::function<bool(size_t, size_t)>& progress) {
    const size_t n = source.names.size(), batch = 16;
    const fs::path dir = cache_dir.empty() ? fs::path() : fs::path(cache_dir) / extractor.key();
    if (!dir.empty()) fs::create_directories(dir);
    std::vector<std::vector<float>> out(n);
    for (size_t start = 0; start < n; start += batch) {
        if (stop_requested() || (progress && !progress(start, n))) throw CancelledError(fmt::format("stopped after the features of {} of {} images", start, n));
        std::vector<size_t> todo;
        std::vector<Image8> images;
        std::vector<std::string> files;
        for (size_t k = start; k < std::min(n, start + batch); ++k) {
            const std::string bytes = source.bytes(k);
            const std::string file = dir.empty() ? "" : (dir / fmt::format("{:016x}.f32", fnv1a(bytes))).string();
            if (!file.empty() && fs::exists(file)) {
                const std::string raw = read_file(file);
                out[k].resize(raw.size() / sizeof(float));
                std::memcpy(out[k].data(), raw.data(), out[k].size() * sizeof(float));
                continue;
            }
            images.push_back(decode_image(bytes, source.member_name(k)));
            todo.push_back(k), files.push_back(file);
        }
        if (images.empty()) continue;
        const std::vector<std::vector<float>> f = extractor.compute(images);
        for (size_t j = 0; j < todo.size(); ++j) {
            out[todo[j]] = f[j];
            if (!files[j].empty()) write_file_atomic(files[j], reinterpret_cast<const char*>(f[j].data()), f[j].size() * sizeof(float));
        }
    }
    if (progress) progress(n, n);
    return out;
}

}  // namespace latentkit::io
