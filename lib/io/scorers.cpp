// Built-in image scorers: statistics with OpenCV, and Haar cascades (face, smile, eyes).
#include "latentkit/io/scorers.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "latentkit/error.h"
#include "latentkit/io/config.h"

#if LATENTKIT_HAVE_OPENCV
#include <opencv2/imgproc.hpp>
#include <opencv2/objdetect.hpp>

#include "cv_image.h"
#endif

namespace latentkit::io {

const std::vector<std::string>& builtin_scorer_names() {
    static const std::vector<std::string> names{"brightness", "colorfulness", "red", "green", "blue", "face", "smile", "eyes"};
    return names;
}

const char* default_cascade_dir() { return "/usr/share/opencv4/haarcascades"; }

#if LATENTKIT_HAVE_OPENCV
struct ImageScorer::State {
    std::string name;
    cv::CascadeClassifier face, part;
};
#else
struct ImageScorer::State {
    std::string name;
};
#endif

#if LATENTKIT_HAVE_OPENCV
namespace {
void load_cascade(cv::CascadeClassifier& c, const std::string& dir, const std::string& file) {
    const std::string path = (std::filesystem::path(dir) / file).string();
    if (!std::filesystem::is_regular_file(path)) throw IoError(fmt::format("{}: Haar cascade not found (Debian: apt install opencv-data)", path));
    if (!c.load(path)) throw IoError(fmt::format("{}: not a Haar cascade OpenCV can load", path));
}

cv::Mat rgb_of(const Image8& image) {
    cv::Mat m = detail::as_mat(image);
    if (image.channels == 1) cv::cvtColor(m, m, cv::COLOR_GRAY2RGB);
    else if (image.channels == 4) cv::cvtColor(m, m, cv::COLOR_RGBA2RGB);
    return m;
}

// Cascades are trained on faces of 24+ pixels in photos: look at small images enlarged to 256.
cv::Mat gray_for_detection(const Image8& image) {
    cv::Mat gray;
    cv::cvtColor(rgb_of(image), gray, cv::COLOR_RGB2GRAY);
    if (std::max(gray.cols, gray.rows) < 256) {
        const double f = 256.0 / std::max(gray.cols, gray.rows);
        cv::resize(gray, gray, cv::Size(), f, f, cv::INTER_CUBIC);
    }
    cv::equalizeHist(gray, gray);
    return gray;
}
}  // namespace
#endif

ImageScorer::ImageScorer(const std::string& name, const std::string& cascade_dir) : s_(std::make_unique<State>()) {
    const auto& names = builtin_scorer_names();
    if (std::find(names.begin(), names.end(), name) == names.end())
        throw ArgumentError(fmt::format("unknown scorer '{}' (built-in: {})", name, fmt::join(names, ", ")));
    s_->name = name;
#if !LATENTKIT_HAVE_OPENCV
    (void)cascade_dir;
    throw Error(fmt::format("scorer '{}': the built-in scorers need OpenCV, which this build of latentkit lacks", name));
#else
    if (name == "face" || name == "smile" || name == "eyes") load_cascade(s_->face, cascade_dir, "haarcascade_frontalface_default.xml");
    if (name == "smile") load_cascade(s_->part, cascade_dir, "haarcascade_smile.xml");
    if (name == "eyes") load_cascade(s_->part, cascade_dir, "haarcascade_eye.xml");
#endif
}

ImageScorer::~ImageScorer() = default;

bool ImageScorer::binary() const { return s_->name == "face" || s_->name == "smile" || s_->name == "eyes"; }

const std::string& ImageScorer::name() const { return s_->name; }

double ImageScorer::score(const Image8& image) const {
#if !LATENTKIT_HAVE_OPENCV
    (void)image;
    return 0.0;  // not reached: the constructor throws
#else
    const std::string& n = s_->name;
    if (n == "brightness" || n == "red" || n == "green" || n == "blue") {
        cv::Mat m = rgb_of(image);
        if (n == "brightness") cv::cvtColor(m, m, cv::COLOR_RGB2GRAY);
        const cv::Scalar mean = cv::mean(m);
        return mean[n == "green" ? 1 : n == "blue" ? 2 : 0] / 255.0;
    }
    if (n == "colorfulness") {  // Hasler and Suesstrunk (2003)
        cv::Mat f;
        rgb_of(image).convertTo(f, CV_64F);
        std::vector<cv::Mat> ch;
        cv::split(f, ch);
        const cv::Mat rg = ch[0] - ch[1], yb = 0.5 * (ch[0] + ch[1]) - ch[2];
        cv::Scalar m_rg, s_rg, m_yb, s_yb;
        cv::meanStdDev(rg, m_rg, s_rg);
        cv::meanStdDev(yb, m_yb, s_yb);
        return std::hypot(s_rg[0], s_yb[0]) + 0.3 * std::hypot(m_rg[0], m_yb[0]);
    }
    const cv::Mat gray = gray_for_detection(image);
    std::vector<cv::Rect> faces;
    s_->face.detectMultiScale(gray, faces, 1.1, 4, 0, cv::Size(gray.cols / 5, gray.rows / 5));
    if (n == "face") return faces.empty() ? 0.0 : 1.0;
    if (faces.empty()) return 0.0;
    const cv::Rect face = *std::max_element(faces.begin(), faces.end(), [](const cv::Rect& a, const cv::Rect& b) { return a.area() < b.area(); });
    std::vector<cv::Rect> parts;
    if (n == "smile") {
        const cv::Mat lower = gray(cv::Rect(face.x, face.y + face.height / 2, face.width, face.height / 2));
        s_->part.detectMultiScale(lower, parts, 1.1, 20, 0, cv::Size(face.width / 4, face.height / 10));
        return parts.empty() ? 0.0 : 1.0;
    }
    const cv::Mat upper = gray(cv::Rect(face.x, face.y, face.width, face.height / 2 + 1));
    s_->part.detectMultiScale(upper, parts, 1.1, 6, 0, cv::Size(face.width / 10, face.width / 10));
    return parts.size() >= 2 ? 1.0 : 0.0;
#endif
}

}  // namespace latentkit::io
