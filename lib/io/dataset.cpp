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

// Where images come from: a folder or a zip, listed by relative name.
struct Source {
    std::string path;
    std::unique_ptr<ZipReader> zip;
    std::vector<std::string> names;        // image names, sorted
    std::vector<size_t> zip_index;         // for zips: member index of names[k]
    std::optional<std::string> dataset_json;

    explicit Source(const std::string& p) : path(p) {
        std::error_code ec;
        if (fs::is_directory(p, ec)) {
            std::vector<std::string> found;
            for (auto it = fs::recursive_directory_iterator(p, fs::directory_options::skip_permission_denied, ec);
                 !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
                if (!it->is_regular_file(ec)) continue;
                const std::string rel = fs::relative(it->path(), p, ec).generic_string();
                if (is_image_name(rel)) found.push_back(rel);
            }
            if (ec) throw IoError(fmt::format("{}: cannot list the folder: {}", p, ec.message()));
            std::sort(found.begin(), found.end());
            names = std::move(found);
            if (fs::exists(fs::path(p) / "dataset.json")) dataset_json = read_file((fs::path(p) / "dataset.json").string());
        } else if (fs::exists(p, ec)) {
            zip = std::make_unique<ZipReader>(p);
            std::vector<std::pair<std::string, size_t>> found;
            for (size_t k = 0; k < zip->entries().size(); ++k) {
                const std::string& n = zip->entries()[k].name;
                if (n == "dataset.json") dataset_json = zip->read(k);
                else if (!n.empty() && n.back() != '/' && is_image_name(n)) found.emplace_back(n, k);
            }
            std::sort(found.begin(), found.end());
            for (auto& [n, k] : found) {
                names.push_back(n);
                zip_index.push_back(k);
            }
        } else {
            throw IoError(p + ": no such file or folder");
        }
    }
    std::string bytes(size_t k) const { return zip ? zip->read(zip_index[k]) : read_file((fs::path(path) / names[k]).string()); }
    std::string member_name(size_t k) const { return path + (zip ? ":" : "/") + names[k]; }
};

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
// ImageDataset

struct ImageDataset::State {
    std::unique_ptr<Source> source;
    int resolution = 0, channels = 3, label_dim = 0;
    std::vector<std::vector<float>> labels;
};

ImageDataset::ImageDataset(const std::string& path, size_t max_images) : s_(std::make_unique<State>()) {
    s_->source = std::make_unique<Source>(path);
    Source& src = *s_->source;
    if (src.names.empty()) throw ModelFormatError(path + ": the dataset holds no images");
    if (max_images > 0 && src.names.size() > max_images) src.names.resize(max_images), src.zip_index.resize(std::min(src.zip_index.size(), max_images));
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
    const Source& src = *s_->source;
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
    if (t == "none") return DatasetTransform::none;
    if (t == "center-crop") return DatasetTransform::center_crop;
    if (t == "center-crop-wide") return DatasetTransform::center_crop_wide;
    if (t == "pad") return DatasetTransform::pad;
    if (t == "face-align") return DatasetTransform::face_align;
    throw ArgumentError("unknown transform '" + t + "' (none, center-crop, center-crop-wide, pad, face-align)");
}

uint64_t perceptual_hash(const Image8& image) {
    const Image8 small = convert_channels(resize_image(image, 9, 8, ResizeFilter::area), 1);
    uint64_t h = 0;
    for (int y = 0; y < 8; ++y)
        for (int x = 0; x < 8; ++x) h = (h << 1) | (small.pixels[y * 9 + x] < small.pixels[y * 9 + x + 1] ? 1u : 0u);
    return h;
}

DatasetSummary prepare_dataset(const DatasetOptions& o, const std::function<bool(size_t, size_t)>& progress) {
    if (!LATENTKIT_HAVE_OPENCV)
        throw Error("building a dataset resizes images, which needs OpenCV, and this build of latentkit has none "
                    "(build the dataset with a full build; training reads its zip without OpenCV)");
    const int r = o.resolution;
    if (r < 4 || (r & (r - 1)) != 0) throw ArgumentError(fmt::format("DatasetOptions.resolution {} is not a power of two of at least 4", r));
    if (o.channels != 1 && o.channels != 3) throw ArgumentError("DatasetOptions.channels must be 1 or 3");
    if (o.every_nth < 1) throw ArgumentError("DatasetOptions.every_nth must be at least 1");
    if (o.dest.empty()) throw ArgumentError("no DatasetOptions.dest given");
    const bool to_zip = lower(fs::path(o.dest).extension().string()) == ".zip";
    std::error_code ec;
    if (!to_zip && fs::exists(o.dest, ec) && !(fs::is_directory(o.dest, ec) && fs::is_empty(o.dest, ec)))
        throw IoError(o.dest + ": already exists and is not an empty folder; choose another DatasetOptions.dest");
    if (to_zip && fs::is_directory(o.dest, ec)) throw IoError(o.dest + ": is a folder");

    std::unique_ptr<FaceDetector> detector;
    if (o.transform == DatasetTransform::face_align)
        detector = std::make_unique<FaceDetector>(o.landmark_model.empty() ? default_landmark_model_path() : o.landmark_model);

    DatasetSummary sum;
    std::vector<uint64_t> hashes;
    std::vector<std::pair<std::string, json>> out_labels;
    std::map<std::string, int> class_index;

    // Output: zip writer or a temporary folder renamed at the end.
    std::unique_ptr<ZipWriter> zip;
    std::string temp_dir;
    if (to_zip) {
        zip = std::make_unique<ZipWriter>(o.dest);
    } else {
        const fs::path parent = fs::absolute(o.dest).parent_path();
        fs::create_directories(parent, ec);
        temp_dir = (parent / (".tmp-" + fs::path(o.dest).filename().string() + "-" + std::to_string(std::random_device{}()))).string();
        if (!fs::create_directory(temp_dir, ec)) throw IoError(o.dest + ": cannot create the output folder: " + ec.message());
    }
    struct Cleanup {
        std::string dir;
        ~Cleanup() {
            std::error_code e;
            if (!dir.empty()) fs::remove_all(dir, e);
        }
    } cleanup{temp_dir};

    auto emit = [&](Image8 img, const std::string& name, const std::optional<json>& label) {
        ++sum.examined;
        Image8 sq;
        switch (o.transform) {
            case DatasetTransform::none:
                if (img.width != img.height) {
                    ++sum.not_square;
                    sum.unreadable.emplace_back(name, fmt::format("not square ({}x{}); use DatasetOptions.transform center-crop or pad", img.width, img.height));
                    return;
                }
                sq = resize_image(img, r, r, o.filter);
                break;
            case DatasetTransform::center_crop: {
                const int s = std::min(img.width, img.height);
                sq = resize_image(crop_image(img, (img.width - s) / 2, (img.height - s) / 2, s, s), r, r, o.filter);
                break;
            }
            case DatasetTransform::center_crop_wide: {
                const int w = std::min(img.width, img.height * 2), h = std::max(w / 2, 1);
                const Image8 band = resize_image(crop_image(img, (img.width - w) / 2, (img.height - h) / 2, w, h), r, r / 2, o.filter);
                sq = canvas(r, r, o.background);
                paste(sq, band, 0, r / 4);
                break;
            }
            case DatasetTransform::pad: {
                const int s = std::max(img.width, img.height);
                Image8 c = canvas(s, s, o.background);
                paste(c, img, (s - img.width) / 2, (s - img.height) / 2);
                sq = resize_image(c, r, r, o.filter);
                break;
            }
            case DatasetTransform::face_align:
                try {
                    sq = align_image(img, name, AlignMode::face, r, detector.get()).image;
                } catch (const Error&) {
                    ++sum.no_face;
                    return;
                }
                break;
        }
        if (o.channels == 1) sq = convert_channels(sq, 1);
        if (o.dedupe_bits >= 0) {
            const uint64_t h = perceptual_hash(sq);
            for (uint64_t k : hashes)
                if (__builtin_popcountll(h ^ k) <= o.dedupe_bits) {
                    ++sum.duplicates;
                    return;
                }
            hashes.push_back(h);
        }
        if (o.max_images > 0 && sum.kept >= o.max_images) {
            ++sum.over_limit;
            return;
        }
        const std::string out = output_name(sum.kept);
        const std::string png = encode_png(sq);
        if (zip) {
            zip->add(out, png);
        } else {
            fs::create_directories(fs::path(temp_dir) / out.substr(0, 5), ec);
            write_file_atomic((fs::path(temp_dir) / out).string(), png.data(), png.size());
        }
        if (label) out_labels.emplace_back(out, *label);
        ++sum.kept;
    };
    auto cancelled = [&](size_t done, size_t total) { return progress && !progress(done, total); };
    const ReadImageOptions rgb{3, o.background};

    if (is_video_name(o.source) && !fs::is_directory(o.source, ec)) {
        if (o.labels_from_folders) throw ArgumentError("DatasetOptions.labels_from_folders needs a folder source, not a video");
        VideoReader video(o.source);
        const double fps = video.fps() > 0 ? video.fps() : 25;
        Image8 frame;
        int64_t f = 0, taken = 0;
        double next_time = o.start_s;
        while (true) {
            try {
                if (!video.read(frame)) break;
            } catch (const Error& e) {
                sum.unreadable.emplace_back(fmt::format("{} frame {}", o.source, f), e.what());
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
            emit(frame, fmt::format("{} frame {}", o.source, f - 1), std::nullopt);
            if (cancelled(static_cast<size_t>(taken), 0)) throw CancelledError(fmt::format("dataset preparation stopped: {} was not written", o.dest));
            if (o.max_images > 0 && sum.kept >= o.max_images) break;
        }
    } else {
        Source src(o.source);
        if (src.names.empty()) throw Error(o.source + ": no images found (png, jpg, jpeg, webp, bmp, tif)");
        Labels labels = o.labels_from_folders ? Labels{} : parse_labels(src.dataset_json, o.source);
        if (o.labels_from_folders) {
            std::vector<std::string> classes;
            for (const auto& n : src.names) {
                const auto slash = n.find('/');
                if (slash != std::string::npos) classes.push_back(n.substr(0, slash));
            }
            std::sort(classes.begin(), classes.end());
            classes.erase(std::unique(classes.begin(), classes.end()), classes.end());
            for (size_t k = 0; k < classes.size(); ++k) class_index[classes[k]] = static_cast<int>(k);
            sum.classes = classes;
            sum.label_dim = static_cast<int>(classes.size());
        }
        for (size_t k = 0; k < src.names.size(); ++k) {
            if (cancelled(k, src.names.size())) throw CancelledError(fmt::format("dataset preparation stopped: {} was not written", o.dest));
            if (o.max_images > 0 && sum.kept >= o.max_images) {
                sum.over_limit += src.names.size() - k;
                break;
            }
            std::optional<json> label;
            if (o.labels_from_folders) {
                const auto slash = src.names[k].find('/');
                if (slash == std::string::npos) {
                    sum.unreadable.emplace_back(src.member_name(k), "not inside a class folder (DatasetOptions.labels_from_folders)");
                    continue;
                }
                label = class_index.at(src.names[k].substr(0, slash));
            } else if (labels.present) {
                auto it = labels.by_name.find(src.names[k]);
                if (it != labels.by_name.end()) {
                    label = it->second;
                } else if (o.keep_unlabeled) {
                    ++sum.unlabeled;
                } else {
                    sum.unreadable.emplace_back(src.member_name(k), "has no label in dataset.json (DatasetOptions.keep_unlabeled keeps it)");
                    continue;
                }
            }
            Image8 img;
            try {
                img = decode_image(src.bytes(k), src.member_name(k), rgb);
            } catch (const Error& e) {
                std::string why = e.what();
                const std::string prefix = src.member_name(k) + ": ";
                if (why.rfind(prefix, 0) == 0) why = why.substr(prefix.size());
                sum.unreadable.emplace_back(src.member_name(k), why);
                continue;
            }
            emit(std::move(img), src.member_name(k), label);
        }
        if (progress) progress(src.names.size(), src.names.size());
    }
    if (sum.kept == 0) throw Error(o.source + ": no image was kept (" + std::to_string(sum.examined) + " examined); nothing written");
    if (sum.unlabeled > 0) out_labels.clear();  // as the reference: one image without a label, no labels at all
    if (sum.label_dim == 0 && !out_labels.empty()) {
        int max_class = -1;
        for (const auto& [n, l] : out_labels)
            if (l.is_number_integer()) max_class = std::max<int>(max_class, static_cast<int>(l.get<int64_t>()));
        sum.label_dim = max_class + 1;
    }
    json meta;
    if (out_labels.empty()) {
        meta["labels"] = nullptr;
    } else {
        meta["labels"] = json::array();
        for (const auto& [n, l] : out_labels) meta["labels"].push_back({n, l});
    }
    if (!sum.classes.empty()) meta["class_names"] = sum.classes;
    const std::string text = meta.dump();
    if (zip) {
        zip->add("dataset.json", text);
        zip->finish();
    } else {
        write_file_atomic((fs::path(temp_dir) / "dataset.json").string(), text.data(), text.size());
        if (fs::exists(o.dest, ec)) fs::remove(o.dest, ec);  // the empty folder checked above
        fs::rename(temp_dir, o.dest, ec);
        if (ec) throw IoError(o.dest + ": cannot move the finished dataset into place: " + ec.message());
        cleanup.dir.clear();
    }
    return sum;
}

}  // namespace latentkit::io
