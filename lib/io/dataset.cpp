#include "latentkit/io/dataset.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>

#include "latentkit/atomic_file.h"
#include "latentkit/error.h"
#include "latentkit/io/config.h"
#include "latentkit/io/face_align.h"
#include "latentkit/png.h"
#include "latentkit/io/tensor_image.h"
#include "latentkit/io/video.h"
#include "latentkit/zip.h"

namespace latentkit::io {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string lower(std::string s) {
    for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return s;
}

bool is_image_name(const std::string& name) {
    static const char* exts[] = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".ppm", ".pgm"};
    const std::string ext = lower(fs::path(name).extension().string());
    return std::any_of(std::begin(exts), std::end(exts), [&](const char* e) { return ext == e; });
}

bool is_video_name(const std::string& name) {
    static const char* exts[] = {".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".gif"};
    const std::string ext = lower(fs::path(name).extension().string());
    return std::any_of(std::begin(exts), std::end(exts), [&](const char* e) { return ext == e; });
}

// Labels from dataset.json: name -> label values (integers become one-hot later).
struct Labels {
    std::map<std::string, json> by_name;
    bool present = false;
};

Labels parse_labels(const std::optional<std::string>& text, const std::string& where) {
    Labels l;
    if (!text) return l;
    json j;
    try {
        j = json::parse(*text);
    } catch (const json::exception& e) {
        throw ModelFormatError(where + ": dataset.json is not valid JSON: " + e.what());
    }
    if (!j.is_object() || !j.contains("labels") || j["labels"].is_null()) return l;
    if (!j["labels"].is_array()) throw ModelFormatError(where + ": dataset.json: \"labels\" must be a list of [name, label] pairs");
    for (const auto& pair : j["labels"]) {
        if (!pair.is_array() || pair.size() != 2 || !pair[0].is_string() || !(pair[1].is_number() || pair[1].is_array()))
            throw ModelFormatError(where + ": dataset.json: each label must be [name, number or list]");
        l.by_name[pair[0].get<std::string>()] = pair[1];
    }
    l.present = !l.by_name.empty();
    return l;
}

int png_channels(const std::string& bytes) {
    if (bytes.size() > 25 && bytes.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0) {
        const int ct = static_cast<uint8_t>(bytes[25]);
        return ct == 0 || ct == 4 ? 1 : 3;
    }
    return 3;
}

Image8 canvas(int w, int h, const std::array<uint8_t, 3>& bg) {
    Image8 c{w, h, 3, std::vector<uint8_t>(static_cast<size_t>(w) * h * 3)};
    for (size_t k = 0; k < c.pixels.size(); ++k) c.pixels[k] = bg[k % 3];
    return c;
}

std::string output_name(size_t index) { return fmt::format("{:05d}/img{:08d}.png", index / 1000, index); }

}  // namespace

// ------------------------------------------------------------------------------------------------
// DatasetSink

DatasetSink::DatasetSink(const std::string& dest, const std::string& field_name) : dest_(dest) {
    std::error_code ec;
    const bool to_zip = lower(fs::path(dest).extension().string()) == ".zip";
    if (!to_zip && fs::exists(dest, ec) && !(fs::is_directory(dest, ec) && fs::is_empty(dest, ec)))
        throw IoError(Message() << dest + ": already exists and is not an empty folder; choose another " << field(field_name));
    if (to_zip && fs::is_directory(dest, ec)) throw IoError(dest + ": is a folder");
    if (to_zip) {
        zip_ = std::make_unique<ZipWriter>(dest);
        return;
    }
    const fs::path parent = fs::absolute(dest).parent_path();
    fs::create_directories(parent, ec);
    temp_dir_ = (parent / (".tmp-" + fs::path(dest).filename().string() + "-" + std::to_string(std::random_device{}()))).string();
    if (!fs::create_directory(temp_dir_, ec)) throw IoError(dest + ": cannot create the output folder: " + ec.message());
}

DatasetSink::~DatasetSink() {
    std::error_code ec;
    if (!temp_dir_.empty()) fs::remove_all(temp_dir_, ec);
}

void DatasetSink::add(const std::string& name, const std::string& bytes) {
    if (zip_) {
        zip_->add(name, bytes);
        return;
    }
    std::error_code ec;
    fs::create_directories(fs::path(temp_dir_) / fs::path(name).parent_path(), ec);
    write_file_atomic((fs::path(temp_dir_) / name).string(), bytes.data(), bytes.size());
}

void DatasetSink::finish(const std::string& dataset_json) {
    add("dataset.json", dataset_json);
    if (zip_) {
        zip_->finish();
        return;
    }
    std::error_code ec;
    if (fs::exists(dest_, ec)) fs::remove(dest_, ec);  // the empty folder checked above
    fs::rename(temp_dir_, dest_, ec);
    if (ec) throw IoError(dest_ + ": cannot move the finished dataset into place: " + ec.message());
    temp_dir_.clear();
}

// ------------------------------------------------------------------------------------------------
// ImageSource

ImageSource::ImageSource(const std::string& p) : path(p) {
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
        for (auto it = fs::recursive_directory_iterator(p, fs::directory_options::skip_permission_denied, ec);
             !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
            if (!it->is_regular_file(ec)) continue;
            const std::string rel = fs::relative(it->path(), p, ec).generic_string();
            if (is_image_name(rel)) names.push_back(rel);
        }
        if (ec) throw IoError(fmt::format("{}: cannot list the folder: {}", p, ec.message()));
        std::sort(names.begin(), names.end());
        if (fs::exists(fs::path(p) / "dataset.json")) dataset_json = read_file((fs::path(p) / "dataset.json").string());
    } else if (fs::exists(p, ec)) {
        zip_ = std::make_shared<ZipReader>(p);
        std::vector<std::pair<std::string, size_t>> found;
        for (size_t k = 0; k < zip_->entries().size(); ++k) {
            const std::string& n = zip_->entries()[k].name;
            if (n == "dataset.json") dataset_json = zip_->read(k);
            else if (!n.empty() && n.back() != '/' && is_image_name(n)) found.emplace_back(n, k);
        }
        std::sort(found.begin(), found.end());
        for (auto& [n, k] : found) {
            names.push_back(n);
            zip_index_.push_back(k);
        }
    } else {
        throw IoError(p + ": no such file or folder");
    }
}

std::string ImageSource::bytes(size_t k) const { return zip_ ? zip_->read(zip_index_.at(k)) : read_file((fs::path(path) / names.at(k)).string()); }

std::string ImageSource::member_name(size_t k) const { return path + (zip_ ? ":" : "/") + names.at(k); }

Image8 ImageSource::read(size_t k, const ReadImageOptions& options) const { return decode_image(bytes(k), member_name(k), options); }

void ImageSource::keep_first(size_t n) {
    if (names.size() > n) names.resize(n);
    if (zip_index_.size() > n) zip_index_.resize(n);
}

// ------------------------------------------------------------------------------------------------
// ImageDataset

struct ImageDataset::State {
    std::unique_ptr<ImageSource> source;
    int resolution = 0, channels = 3, label_dim = 0;
    std::vector<std::vector<float>> labels;
};

ImageDataset::ImageDataset(const std::string& path, size_t max_images) : s_(std::make_unique<State>()) {
    s_->source = std::make_unique<ImageSource>(path);
    ImageSource& src = *s_->source;
    if (src.names.empty()) throw ModelFormatError(path + ": the dataset holds no images");
    if (max_images > 0) src.keep_first(max_images);
    const std::string first = src.bytes(0);
    s_->channels = png_channels(first);
    const Image8 img = decode_image(first, src.member_name(0), {s_->channels, {0, 0, 0}});
    if (img.width != img.height) throw ModelFormatError(fmt::format("{}: images must be square; {} is {}x{}", path, src.names[0], img.width, img.height));
    s_->resolution = img.width;
    const Labels labels = parse_labels(src.dataset_json, path);
    if (labels.present) {
        bool integer = true;
        int max_class = -1, dim = -1;
        for (const auto& n : src.names) {
            auto it = labels.by_name.find(n);
            if (it == labels.by_name.end()) throw ModelFormatError(path + ": dataset.json has no label for " + n);
            if (it->second.is_number_integer()) {
                if (it->second.get<int64_t>() < 0) throw ModelFormatError(path + ": dataset.json: negative class label for " + n);
                max_class = std::max<int>(max_class, static_cast<int>(it->second.get<int64_t>()));
            } else {
                integer = false;
                const int d = it->second.is_array() ? static_cast<int>(it->second.size()) : 1;
                if (dim >= 0 && d != dim) throw ModelFormatError(path + ": dataset.json: label sizes differ (" + n + ")");
                dim = d;
            }
        }
        s_->label_dim = integer ? max_class + 1 : dim;
        for (const auto& n : src.names) {
            const json& v = labels.by_name.at(n);
            std::vector<float> l(static_cast<size_t>(s_->label_dim), 0.0f);
            if (integer) l[static_cast<size_t>(v.get<int64_t>())] = 1;
            else if (v.is_array())
                for (size_t k = 0; k < v.size(); ++k) l[k] = v[k].get<float>();
            else l[0] = v.get<float>();
            s_->labels.push_back(std::move(l));
        }
    }
}

ImageDataset::~ImageDataset() = default;
size_t ImageDataset::size() const { return s_->source->names.size(); }
int ImageDataset::resolution() const { return s_->resolution; }
int ImageDataset::channels() const { return s_->channels; }
int ImageDataset::label_dim() const { return s_->label_dim; }
std::string ImageDataset::name() const { return s_->source->path; }
const std::string& ImageDataset::image_name(size_t index) const { return s_->source->names.at(index); }

void ImageDataset::read_image(size_t index, uint8_t* out) const {
    const ImageSource& src = *s_->source;
    const Image8 img = decode_image(src.bytes(index), src.member_name(index), {s_->channels, {0, 0, 0}});
    if (img.width != s_->resolution || img.height != s_->resolution)
        throw ModelFormatError(fmt::format("{}: is {}x{}, but the dataset's images are {}x{} (mixed resolutions)", src.member_name(index), img.width,
                                           img.height, s_->resolution, s_->resolution));
    const int c = s_->channels, n = s_->resolution * s_->resolution;
    for (int p = 0; p < n; ++p)
        for (int k = 0; k < c; ++k) out[static_cast<size_t>(k) * n + p] = img.pixels[static_cast<size_t>(p) * c + k];
}

std::vector<float> ImageDataset::label(size_t index) const {
    if (s_->labels.empty()) return {};
    return s_->labels.at(index);
}

// ------------------------------------------------------------------------------------------------
// Dataset tool

DatasetTransform parse_dataset_transform(const std::string& t) {
    if (const auto transform = option_from_name<DatasetTransform>(t)) return *transform;
    throw ArgumentError("unknown transform '" + t + "' (" + option_choices<DatasetTransform>() + ")");
}

uint64_t perceptual_hash(const Image8& image) {
    const Image8 small = convert_channels(resize_image(image, 9, 8, ResizeFilter::area), 1);
    uint64_t h = 0;
    for (int y = 0; y < 8; ++y)
        for (int x = 0; x < 8; ++x) h = (h << 1) | (small.pixels[y * 9 + x] < small.pixels[y * 9 + x + 1] ? 1u : 0u);
    return h;
}

namespace {

void check_dataset_options(const DatasetOptions& o) {
    if (!LATENTKIT_HAVE_OPENCV)
        throw Error("building a dataset resizes images, which needs OpenCV, and this build of latentkit has none "
                    "(build the dataset with a full build; training reads its zip without OpenCV)");
    const int r = o.resolution;
    if (r < 4 || (r & (r - 1)) != 0) throw ArgumentError(Message() << field("DatasetOptions.resolution") << fmt::format(" {} is not a power of two of at least 4", r));
    if (o.channels != 1 && o.channels != 3) throw ArgumentError(Message() << field("DatasetOptions.channels") << " must be 1 or 3");
    if (o.every_nth < 1) throw ArgumentError(Message() << field("DatasetOptions.every_nth") << " must be at least 1");
    if (o.dest.empty()) throw ArgumentError(Message() << "no " << field("DatasetOptions.dest") << " given");
}

// An image made square at the dataset's resolution by the transform, or nothing when it is dropped
// (counted in `sum`).
std::optional<Image8> square_image(const Image8& img, const std::string& name, const DatasetOptions& o, FaceDetector* detector,
                                   DatasetSummary& sum) {
    const int r = o.resolution;
    switch (o.transform) {
        case DatasetTransform::none:
            if (img.width != img.height) {
                ++sum.not_square;
                sum.unreadable.emplace_back(name, Message() << fmt::format("not square ({}x{}); use ", img.width, img.height) << field("DatasetOptions.transform") << " center-crop or pad");
                return std::nullopt;
            }
            return resize_image(img, r, r, o.filter);
        case DatasetTransform::center_crop: {
            const int s = std::min(img.width, img.height);
            return resize_image(crop_image(img, (img.width - s) / 2, (img.height - s) / 2, s, s), r, r, o.filter);
        }
        case DatasetTransform::center_crop_wide: {
            const int w = std::min(img.width, img.height * 2), h = std::max(w / 2, 1);
            const Image8 band = resize_image(crop_image(img, (img.width - w) / 2, (img.height - h) / 2, w, h), r, r / 2, o.filter);
            Image8 sq = canvas(r, r, o.background);
            paste(sq, band, 0, r / 4);
            return sq;
        }
        case DatasetTransform::pad: {
            const int s = std::max(img.width, img.height);
            Image8 c = canvas(s, s, o.background);
            paste(c, img, (s - img.width) / 2, (s - img.height) / 2);
            return resize_image(c, r, r, o.filter);
        }
        case DatasetTransform::face_align:
            try {
                return align_image(img, name, AlignMode::face, r, detector).image;
            } catch (const Error&) {
                ++sum.no_face;
                return std::nullopt;
            }
    }
    return std::nullopt;
}

// Squares, deduplicates and writes images one by one, keeping the labels of those kept.
class DatasetBuilder {
public:
    explicit DatasetBuilder(const DatasetOptions& o) : o_(o), sink_(o.dest) {
        if (o.transform == DatasetTransform::face_align)
            detector_ = std::make_unique<FaceDetector>(o.landmark_model.empty() ? default_landmark_model_path() : o.landmark_model);
    }

    void emit(const Image8& img, const std::string& name, const std::optional<json>& label) {
        ++sum.examined;
        std::optional<Image8> sq = square_image(img, name, o_, detector_.get(), sum);
        if (!sq) return;
        if (o_.channels == 1) *sq = convert_channels(*sq, 1);
        if (duplicate(*sq)) return;
        if (full()) {
            ++sum.over_limit;
            return;
        }
        const std::string out = output_name(sum.kept);
        sink_.add(out, encode_png(*sq));
        if (label) labels_.emplace_back(out, *label);
        ++sum.kept;
    }
    bool full() const { return o_.max_images > 0 && sum.kept >= o_.max_images; }
    // dataset.json, then the dataset in place.
    void finish() {
        if (sum.kept == 0) throw Error(o_.source + ": no image was kept (" + std::to_string(sum.examined) + " examined); nothing written");
        if (sum.unlabeled > 0) labels_.clear();  // as the reference: one image without a label, no labels at all
        if (sum.label_dim == 0 && !labels_.empty()) {
            int max_class = -1;
            for (const auto& [n, l] : labels_)
                if (l.is_number_integer()) max_class = std::max<int>(max_class, static_cast<int>(l.get<int64_t>()));
            sum.label_dim = max_class + 1;
        }
        json meta;
        meta["labels"] = nullptr;
        if (!labels_.empty()) {
            meta["labels"] = json::array();
            for (const auto& [n, l] : labels_) meta["labels"].push_back({n, l});
        }
        if (!sum.classes.empty()) meta["class_names"] = sum.classes;
        sink_.finish(meta.dump());
    }

    DatasetSummary sum;

private:
    bool duplicate(const Image8& sq) {
        if (o_.dedupe_bits < 0) return false;
        const uint64_t h = perceptual_hash(sq);
        for (uint64_t k : hashes_)
            if (__builtin_popcountll(h ^ k) <= o_.dedupe_bits) {
                ++sum.duplicates;
                return true;
            }
        hashes_.push_back(h);
        return false;
    }

    const DatasetOptions& o_;
    DatasetSink sink_;
    std::unique_ptr<FaceDetector> detector_;
    std::vector<uint64_t> hashes_;
    std::vector<std::pair<std::string, json>> labels_;
};

using Progress = std::function<bool(size_t, size_t)>;

[[noreturn]] void stopped(const DatasetOptions& o) { throw CancelledError(fmt::format("dataset preparation stopped: {} was not written", o.dest)); }

// Frames of a video: every nth, or at --video-fps, between start and end.
void read_video(const DatasetOptions& o, DatasetBuilder& b, const Progress& progress) {
    if (o.labels_from_folders) throw ArgumentError(Message() << field("DatasetOptions.labels_from_folders") << " needs a folder source, not a video");
    VideoReader video(o.source);
    const double fps = video.fps() > 0 ? video.fps() : 25;
    Image8 frame;
    int64_t f = 0, taken = 0;
    double next_time = o.start_s;
    while (true) {
        try {
            if (!video.read(frame)) break;
        } catch (const Error& e) {
            b.sum.unreadable.emplace_back(fmt::format("{} frame {}", o.source, f), e.message());
            break;
        }
        const double t = f / fps;
        ++f;
        if (t + 1e-9 < o.start_s) continue;
        if (o.end_s >= 0 && t > o.end_s + 1e-9) break;
        bool take;
        if (o.video_fps > 0) {
            take = t + 1e-9 >= next_time;
            if (take) next_time += 1.0 / o.video_fps;
        } else {
            take = (f - 1 - static_cast<int64_t>(std::ceil(o.start_s * fps - 1e-9))) % o.every_nth == 0;
        }
        if (!take) continue;
        ++taken;
        b.emit(frame, fmt::format("{} frame {}", o.source, f - 1), std::nullopt);
        if (progress && !progress(static_cast<size_t>(taken), 0)) stopped(o);
        if (b.full()) break;
    }
}

// Class folders as labels: their sorted names, numbered.
std::map<std::string, int> folder_classes(const ImageSource& src, DatasetSummary& sum) {
    std::vector<std::string> classes;
    for (const auto& n : src.names) {
        const auto slash = n.find('/');
        if (slash != std::string::npos) classes.push_back(n.substr(0, slash));
    }
    std::sort(classes.begin(), classes.end());
    classes.erase(std::unique(classes.begin(), classes.end()), classes.end());
    std::map<std::string, int> index;
    for (size_t k = 0; k < classes.size(); ++k) index[classes[k]] = static_cast<int>(k);
    sum.classes = classes;
    sum.label_dim = static_cast<int>(classes.size());
    return index;
}

// The label of image k: its class folder, its dataset.json entry, or none; false when the image is skipped.
bool image_label(const DatasetOptions& o, const ImageSource& src, size_t k, const Labels& labels, const std::map<std::string, int>& classes,
                 DatasetSummary& sum, std::optional<json>& label) {
    if (o.labels_from_folders) {
        const auto slash = src.names[k].find('/');
        if (slash == std::string::npos) {
            sum.unreadable.emplace_back(src.member_name(k), Message() << "not inside a class folder (" << field("DatasetOptions.labels_from_folders") << ")");
            return false;
        }
        label = classes.at(src.names[k].substr(0, slash));
        return true;
    }
    if (!labels.present) return true;
    auto it = labels.by_name.find(src.names[k]);
    if (it != labels.by_name.end()) {
        label = it->second;
    } else if (o.keep_unlabeled) {
        ++sum.unlabeled;
    } else {
        sum.unreadable.emplace_back(src.member_name(k), Message() << "has no label in dataset.json (" << field("DatasetOptions.keep_unlabeled") << " keeps it)");
        return false;
    }
    return true;
}

// The images of a folder or zip, with their labels.
void read_images(const DatasetOptions& o, DatasetBuilder& b, const Progress& progress) {
    ImageSource src(o.source);
    if (src.names.empty()) throw Error(o.source + ": no images found (png, jpg, jpeg, webp, bmp, tif)");
    const Labels labels = o.labels_from_folders ? Labels{} : parse_labels(src.dataset_json, o.source);
    const std::map<std::string, int> classes = o.labels_from_folders ? folder_classes(src, b.sum) : std::map<std::string, int>{};
    const ReadImageOptions rgb{3, o.background};
    for (size_t k = 0; k < src.names.size(); ++k) {
        if (progress && !progress(k, src.names.size())) stopped(o);
        if (b.full()) {
            b.sum.over_limit += src.names.size() - k;
            break;
        }
        std::optional<json> label;
        if (!image_label(o, src, k, labels, classes, b.sum, label)) continue;
        Image8 img;
        try {
            img = decode_image(src.bytes(k), src.member_name(k), rgb);
        } catch (const Error& e) {
            std::string why = e.what();
            const std::string prefix = src.member_name(k) + ": ";
            if (why.rfind(prefix, 0) == 0) why = why.substr(prefix.size());
            b.sum.unreadable.emplace_back(src.member_name(k), why);
            continue;
        }
        b.emit(img, src.member_name(k), label);
    }
    if (progress) progress(src.names.size(), src.names.size());
}

}  // namespace

DatasetSummary prepare_dataset(const DatasetOptions& o, const std::function<bool(size_t, size_t)>& progress) {
    check_dataset_options(o);
    DatasetBuilder builder(o);
    std::error_code ec;
    if (is_video_name(o.source) && !fs::is_directory(o.source, ec)) read_video(o, builder, progress);
    else read_images(o, builder, progress);
    builder.finish();
    return builder.sum;
}

}  // namespace latentkit::io
