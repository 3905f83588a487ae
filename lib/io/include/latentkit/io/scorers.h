#pragma once
// Built-in image scorers that need no download, for labelling sampled images: image statistics and
// OpenCV's Haar cascades from Debian's opencv-data.
#include <memory>
#include <string>
#include <vector>

#include "latentkit/png.h"

namespace latentkit::io {

/// Names of the built-in scorers: brightness, colorfulness, red, green, blue (continuous, 0..1 or
/// the Hasler-Suesstrunk colourfulness), face, smile, eyes (binary: 1 when the cascade finds one).
const std::vector<std::string>& builtin_scorer_names();

/// Where Debian's opencv-data installs the Haar cascades.
const char* default_cascade_dir();

/// One built-in scorer.
class ImageScorer {
public:
    /// Throws ArgumentError for an unknown name and IoError naming the cascade file when it is missing.
    explicit ImageScorer(const std::string& name, const std::string& cascade_dir = default_cascade_dir());
    ~ImageScorer();
    ImageScorer(const ImageScorer&) = delete;
    ImageScorer& operator=(const ImageScorer&) = delete;
    /// Whether the scores are 0/1 labels.
    bool binary() const;
    const std::string& name() const;
    /// The score of one RGB or gray image.
    double score(const Image8& image) const;

private:
    struct State;
    std::unique_ptr<State> s_;
};

}  // namespace latentkit::io
