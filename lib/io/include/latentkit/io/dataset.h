#pragma once
// Training datasets in the reference StyleGAN2-ADA layout (a folder or zip of uncompressed PNGs named
// 00000/img00000000.png plus dataset.json with {"labels": [[name, label], ...]}): reading them for
// training, and building them from folders, zips and videos.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "latentkit/error.h"
#include "latentkit/io/image.h"
#include "latentkit/training_data.h"

namespace latentkit {
class ZipReader;
class ZipWriter;
}

namespace latentkit::io {

/// The images of a folder (searched recursively) or a zip, by relative name in sorted order, and the
/// dataset.json beside them.
struct ImageSource {
    /// Lists `path`; throws IoError naming it when it is missing or cannot be listed (ZipError for a
    /// damaged zip).
    explicit ImageSource(const std::string& path);
    std::string path;
    std::vector<std::string> names;           ///< png, jpg, jpeg, webp, bmp, tif(f), ppm, pgm
    std::optional<std::string> dataset_json;  ///< its text, when there is one
    /// The file bytes of image k.
    std::string bytes(size_t k) const;
    /// "FOLDER/NAME" or "ZIP:NAME", for messages.
    std::string member_name(size_t k) const;
    /// Image k decoded (throws naming member_name(k)).
    Image8 read(size_t k, const ReadImageOptions& options = {}) const;
    /// Keeps only the first n images.
    void keep_first(size_t n);

private:
    std::shared_ptr<ZipReader> zip_;
    std::vector<size_t> zip_index_;
};

/// Where a new dataset's files go: a zip archive, or a temporary folder renamed into place by finish().
/// Destroyed unfinished, it leaves nothing behind.
class DatasetSink {
public:
    /// Refuses (IoError, naming the option `field_name`) a destination that exists and is not an empty folder.
    explicit DatasetSink(const std::string& dest, const std::string& field_name = "DatasetOptions.dest");
    ~DatasetSink();
    DatasetSink(const DatasetSink&) = delete;
    DatasetSink& operator=(const DatasetSink&) = delete;
    /// Adds a file (name relative to the dataset).
    void add(const std::string& name, const std::string& bytes);
    /// Adds dataset.json and puts the dataset in place.
    void finish(const std::string& dataset_json);

private:
    std::string dest_, temp_dir_;
    std::unique_ptr<ZipWriter> zip_;
};

/// A folder or zip of equally sized square images (any format OpenCV reads), with optional
/// dataset.json labels: integer class labels become one-hot vectors, lists are used as they are.
class ImageDataset : public TrainingData {
public:
    /// Lists the images and reads the labels; the first image fixes resolution and channels (PNG gray
    /// stays gray). Throws IoError / ModelFormatError naming the path when it is missing, empty,
    /// not square, or dataset.json is malformed.
    explicit ImageDataset(const std::string& path, size_t max_images = 0);
    ~ImageDataset() override;
    size_t size() const override;
    int resolution() const override;
    int channels() const override;
    int label_dim() const override;
    /// Throws ModelFormatError naming the member when it is unreadable or of another size.
    void read_image(size_t index, uint8_t* out) const override;
    std::vector<float> label(size_t index) const override;
    std::string name() const override;
    /// Name of image `index` inside the dataset.
    const std::string& image_name(size_t index) const;

private:
    struct State;
    std::unique_ptr<State> s_;
};

/// How a source image is made square.
enum class DatasetTransform {
    none,               ///< must already be square; resized
    center_crop,        ///< largest centred square
    center_crop_wide,   ///< centred 2:1 crop, letterboxed into the square (the reference's center-crop-wide)
    pad,                ///< whole image letterboxed on the background colour
    face_align          ///< FFHQ face alignment (dlib landmarks); images without a face are skipped
};
}  // namespace latentkit::io
namespace latentkit {
template <>
struct OptionNames<io::DatasetTransform> {
    static constexpr const char* names[] = {"none", "center-crop", "center-crop-wide", "pad", "face-align"};
};
}  // namespace latentkit
namespace latentkit::io {

/// Parses none, center-crop, center-crop-wide, pad, face-align; throws ArgumentError otherwise.
DatasetTransform parse_dataset_transform(const std::string& text);

/// Settings of the dataset tool.
struct DatasetOptions {
    std::string source;                 ///< folder (searched recursively), .zip, or video file
    std::string dest;                   ///< .zip, or a folder
    int resolution = 0;                 ///< output width and height (power of two)
    DatasetTransform transform = DatasetTransform::center_crop;
    ResizeFilter filter = ResizeFilter::lanczos;   ///< the reference dataset tool's (Pillow LANCZOS)
    int channels = 3;                   ///< 1 (gray) or 3 (RGB)
    std::array<uint8_t, 3> background{0, 0, 0};  ///< for transparency and padding
    bool labels_from_folders = false;   ///< class = first sub-folder name (sorted), else dataset.json
    bool keep_unlabeled = false;        ///< keep images that dataset.json gives no label and write no labels at all (the
                                        ///< reference's rule); by default such images are skipped and listed
    size_t max_images = 0;              ///< 0: no limit
    int dedupe_bits = -1;               ///< drop images whose 64-bit dHash is within this many bits of a kept one (-1: off)
    double video_fps = 0;               ///< video: frames per second to take (0: use every_nth)
    int every_nth = 1;                  ///< video: every n-th frame
    double start_s = 0, end_s = -1;     ///< video: time range in seconds (end < 0: to the end)
    std::string landmark_model;         ///< face-align: dlib model ("" = Debian's libdlib-data)
};

/// What the dataset tool kept and dropped, and why.
struct DatasetSummary {
    size_t examined = 0, kept = 0, duplicates = 0, no_face = 0, not_square = 0, over_limit = 0;
    size_t unlabeled = 0;  ///< kept without a label (keep_unlabeled): the dataset then has no labels
    std::vector<std::pair<std::string, Message>> unreadable;  ///< (file, reason)
    std::vector<std::string> classes;                             ///< folder-label names, by index
    int label_dim = 0;
};

/// Builds a dataset; unreadable inputs are skipped and listed, never fatal. Writes atomically (a zip
/// through a temporary file; a folder only when it does not exist or is empty). `progress(done, total)`
/// may return false to cancel (CancelledError; nothing is left behind). Throws Error for bad options,
/// an unusable source, or when no image is kept.
DatasetSummary prepare_dataset(const DatasetOptions& options, const std::function<bool(size_t, size_t)>& progress = {});

/// 64-bit difference hash of an image (9x8 gray, horizontal gradients).
uint64_t perceptual_hash(const Image8& image);

}  // namespace latentkit::io
