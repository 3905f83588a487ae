#pragma once
// The images a model is trained and measured on, as the trainer and the metrics read them.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace latentkit {

/// Square 8-bit training images (and optional labels), in the reference dataset's layout.
class TrainingData {
public:
    virtual ~TrainingData() = default;
    /// Number of images.
    virtual size_t size() const = 0;
    /// Width and height of every image.
    virtual int resolution() const = 0;
    /// 1 (gray) or 3 (RGB).
    virtual int channels() const = 0;
    /// Label size (one-hot classes or label vectors); 0 when the data has no labels.
    virtual int label_dim() const = 0;
    /// Writes image `index` as channels x resolution x resolution bytes (CHW) to `out`.
    /// Thread-safe. Throws IoError / ModelFormatError naming the file when it is damaged.
    virtual void read_image(size_t index, uint8_t* out) const = 0;
    /// Label of image `index` (label_dim values).
    virtual std::vector<float> label(size_t index) const = 0;
    /// Where the data comes from (a path), for messages and snapshot metadata.
    virtual std::string name() const = 0;
};

}  // namespace latentkit
