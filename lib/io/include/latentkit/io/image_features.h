#pragma once
// Image feature vectors for `latentkit curate`: a built-in descriptor that needs no download, a model's
// discriminator, or any TorchScript image network (the reference's vgg16.pt); cached per file content.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "latentkit/io/dataset.h"
#include "latentkit/png.h"

namespace latentkit::io {

/// Turns RGB images into feature vectors of one length.
class FeatureExtractor {
public:
    virtual ~FeatureExtractor() = default;
    /// Changes whenever the features would (the network, its file): names the cache.
    virtual std::string key() const = 0;
    /// One line: what the features are.
    virtual std::string describe() const = 0;
    /// One vector per image (RGB, any size).
    virtual std::vector<std::vector<float>> compute(const std::vector<Image8>& images) = 0;
};

/// "" or "builtin": an HSV colour histogram, a HOG descriptor and an 8x8 thumbnail of the image at 64x64
/// (OpenCV; 2084 values). "D:MODEL": the mean activations of the last two blocks of MODEL's discriminator
/// (a path or URL). Anything else: a TorchScript image network by path or URL, called on [N, 3, 256, 256]
/// floats in 0..255 (with return_features=True when its forward has that argument, as the reference's
/// vgg16.pt), its output flattened (spatial maps averaged). Throws naming NET when it cannot be loaded.
std::unique_ptr<FeatureExtractor> make_feature_extractor(const std::string& net, const std::string& device = "cpu");

/// Features of every image of `source` (RGB on white), in its order, computed in batches; each file's are
/// kept in `cache_dir`/KEY/ under a hash of its bytes (empty `cache_dir`: no cache), so a second run
/// reads them back. `progress(done, total)` after each batch; false stops with CancelledError.
/// Throws IoError naming the member that cannot be decoded.
std::vector<std::vector<float>> source_features(const ImageSource& source, FeatureExtractor& extractor, const std::string& cache_dir,
                                                const std::function<bool(size_t, size_t)>& progress = {});

}  // namespace latentkit::io
