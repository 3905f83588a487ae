// Face detection and landmarks with dlib; FFHQ-style crops with OpenCV. A build without either
// refuses face alignment in one line; centre crops and the FFHQ geometry need neither.
#include "latentkit/io/face_align.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "latentkit/error.h"
#include "latentkit/io/config.h"
#include "latentkit/io/image.h"

#define LATENTKIT_HAVE_FACE_ALIGN (LATENTKIT_HAVE_OPENCV && LATENTKIT_HAVE_DLIB)
#if LATENTKIT_HAVE_FACE_ALIGN
#include <dlib/image_processing.h>
#include <dlib/image_processing/frontal_face_detector.h>
#include <dlib/serialize.h>

#include <opencv2/imgproc.hpp>

#include "cv_image.h"
#endif

namespace latentkit::io {

#if LATENTKIT_HAVE_FACE_ALIGN
struct FaceDetector::State {
    dlib::frontal_face_detector detector = dlib::get_frontal_face_detector();
    dlib::shape_predictor predictor;
};
#else
struct FaceDetector::State {};

namespace {
Error no_face_align() {
    return Error("face alignment needs dlib and OpenCV, which this build of latentkit lacks");
}
}  // namespace
#endif

const char* default_landmark_model_path() { return "/usr/share/dlib/shape_predictor_68_face_landmarks.dat"; }

FaceDetector::FaceDetector(const std::string& landmark_model) : s_(std::make_unique<State>()) {
#if !LATENTKIT_HAVE_FACE_ALIGN
    (void)landmark_model;
    throw no_face_align();
#else
    if (!std::filesystem::is_regular_file(landmark_model))
        throw IoError(fmt::format("{}: landmark model not found (Debian: apt install libdlib-data)", landmark_model));
    try {
        dlib::deserialize(landmark_model) >> s_->predictor;
    } catch (const std::exception&) {
        throw IoError(fmt::format("{}: not a dlib shape predictor file", landmark_model));
    }
    if (s_->predictor.num_parts() != 68)
        throw IoError(fmt::format("{}: the landmark model has {} points, 68 are needed", landmark_model, s_->predictor.num_parts()));
#endif
}

FaceDetector::~FaceDetector() = default;

std::vector<Face> FaceDetector::detect(const Image8& image) const {
#if !LATENTKIT_HAVE_FACE_ALIGN
    (void)image;
    throw no_face_align();
#else
    const cv::Mat src = detail::as_mat(image);
    cv::Mat gray;
    if (image.channels == 1) gray = src;
    else cv::cvtColor(src, gray, image.channels == 4 ? cv::COLOR_RGBA2GRAY : cv::COLOR_RGB2GRAY);

    // The HOG detector finds faces of about 80 pixels and up; search a copy at most 1000 pixels
    // across, doubled once, so faces from about 40 pixels are found in reasonable time.
    const double scale = std::min(1.0, 1000.0 / std::max(gray.cols, gray.rows));
    cv::Mat small = gray;
    if (scale < 1.0) cv::resize(gray, small, cv::Size(), scale, scale, cv::INTER_AREA);
    cv::Mat up;
    cv::resize(small, up, cv::Size(), 2.0, 2.0, cv::INTER_LINEAR);
    dlib::array2d<unsigned char> dimg(up.rows, up.cols);
    for (int y = 0; y < up.rows; ++y)
        std::copy(up.ptr<unsigned char>(y), up.ptr<unsigned char>(y) + up.cols, &dimg[y][0]);
    const std::vector<dlib::rectangle> boxes = s_->detector(dimg);

    dlib::array2d<unsigned char> full(gray.rows, gray.cols);
    for (int y = 0; y < gray.rows; ++y)
        std::copy(gray.ptr<unsigned char>(y), gray.ptr<unsigned char>(y) + gray.cols, &full[y][0]);
    std::vector<Face> faces;
    const double back = 1.0 / (2.0 * scale);
    for (const auto& b : boxes) {
        const dlib::rectangle r(std::lround(b.left() * back), std::lround(b.top() * back), std::lround(b.right() * back),
                                std::lround(b.bottom() * back));
        const dlib::full_object_detection shape = s_->predictor(full, r);
        Face f;
        f.left = static_cast<int>(r.left());
        f.top = static_cast<int>(r.top());
        f.width = static_cast<int>(r.width());
        f.height = static_cast<int>(r.height());
        for (unsigned k = 0; k < 68; ++k) f.landmarks[k] = {static_cast<double>(shape.part(k).x()), static_cast<double>(shape.part(k).y())};
        faces.push_back(f);
    }
    std::stable_sort(faces.begin(), faces.end(), [](const Face& a, const Face& b) { return a.width * a.height > b.width * b.height; });
    return faces;
#endif
}

std::array<Point2, 4> ffhq_quad(const std::array<Point2, 68>& lm) {
    auto mean = [&](int from, int to) {
        Point2 m;
        for (int k = from; k < to; ++k) m.x += lm[k].x, m.y += lm[k].y;
        m.x /= (to - from), m.y /= (to - from);
        return m;
    };
    const Point2 eye_l = mean(36, 42), eye_r = mean(42, 48);
    const Point2 eye_avg{(eye_l.x + eye_r.x) / 2, (eye_l.y + eye_r.y) / 2};
    const Point2 eye_to_eye{eye_r.x - eye_l.x, eye_r.y - eye_l.y};
    const Point2 mouth_avg{(lm[48].x + lm[54].x) / 2, (lm[48].y + lm[54].y) / 2};
    const Point2 eye_to_mouth{mouth_avg.x - eye_avg.x, mouth_avg.y - eye_avg.y};
    // x: the face's horizontal axis, from the eye line and the eye-mouth line turned by 90 degrees.
    Point2 x{eye_to_eye.x + eye_to_mouth.y, eye_to_eye.y - eye_to_mouth.x};
    const double len = std::hypot(x.x, x.y);
    const double half = std::max(std::hypot(eye_to_eye.x, eye_to_eye.y) * 2.0, std::hypot(eye_to_mouth.x, eye_to_mouth.y) * 1.8);
    x = {x.x / len * half, x.y / len * half};
    const Point2 y{-x.y, x.x};
    const Point2 c{eye_avg.x + eye_to_mouth.x * 0.1, eye_avg.y + eye_to_mouth.y * 0.1};
    return {Point2{c.x - x.x - y.x, c.y - x.y - y.y}, Point2{c.x - x.x + y.x, c.y - x.y + y.y},
            Point2{c.x + x.x + y.x, c.y + x.y + y.y}, Point2{c.x + x.x - y.x, c.y + x.y - y.y}};
}

#if LATENTKIT_HAVE_FACE_ALIGN
namespace {
// Blurs the reflected padding of f toward its edges and fades it to the median colour (the FFHQ recipe).
void fade_padding(cv::Mat& f, const std::array<int, 4>& pad, double qsize) {
    const int w = f.cols, h = f.rows;
    const double pl = pad[0], pt = pad[1], pr = pad[2], pb = pad[3];
    cv::Mat mask(h, w, CV_32F);
    for (int yy = 0; yy < h; ++yy) {
        float* m = mask.ptr<float>(yy);
        const double my = 1.0 - std::min(yy / pt, (h - 1 - yy) / pb);
        for (int xx = 0; xx < w; ++xx) m[xx] = static_cast<float>(std::max(1.0 - std::min(xx / pl, (w - 1 - xx) / pr), my));
    }
    const double sigma = std::max(qsize * 0.02, 0.1);
    const int radius = static_cast<int>(4.0 * sigma + 0.5);
    cv::Mat blurred;
    cv::GaussianBlur(f, blurred, cv::Size(2 * radius + 1, 2 * radius + 1), sigma, sigma, cv::BORDER_REFLECT);
    std::vector<cv::Mat> ch, bch;
    cv::split(f, ch);
    cv::split(blurred, bch);
    cv::Mat wblur, wmed;
    cv::min(cv::max(mask * 3.0 + 1.0, 0.0), 1.0, wblur);
    cv::min(cv::max(mask, 0.0), 1.0, wmed);
    for (size_t c = 0; c < ch.size(); ++c) {
        ch[c] += (bch[c] - ch[c]).mul(wblur);
        std::vector<float> values(ch[c].begin<float>(), ch[c].end<float>());
        std::nth_element(values.begin(), values.begin() + values.size() / 2, values.end());
        const float median = values[values.size() / 2];
        ch[c] += (median - ch[c]).mul(wmed);
    }
    cv::merge(ch, f);
}
}  // namespace
#endif

Image8 crop_quad(const Image8& image, const std::array<Point2, 4>& quad_in, int size) {
    if (size < 1) throw ArgumentError("crop_quad: the size must be positive");
#if !LATENTKIT_HAVE_FACE_ALIGN
    (void)image, (void)quad_in;
    throw no_face_align();
#else
    std::array<Point2, 4> quad = quad_in;
    double qsize = std::hypot(quad[3].x - quad[0].x, quad[3].y - quad[0].y);
    cv::Mat img = detail::as_mat(image);

    const int shrink = static_cast<int>(std::floor(qsize / size * 0.5));
    if (shrink > 1) {
        cv::resize(img, img, cv::Size(std::max(1, img.cols / shrink), std::max(1, img.rows / shrink)), 0, 0, cv::INTER_AREA);
        for (auto& p : quad) p.x /= shrink, p.y /= shrink;
        qsize /= shrink;
    }
    double min_x = quad[0].x, max_x = quad[0].x, min_y = quad[0].y, max_y = quad[0].y;
    for (const auto& p : quad) min_x = std::min(min_x, p.x), max_x = std::max(max_x, p.x), min_y = std::min(min_y, p.y), max_y = std::max(max_y, p.y);
    const int border = std::max(static_cast<int>(std::lround(qsize * 0.1)), 3);

    // Crop to the quad's neighbourhood.
    int c0 = std::max(static_cast<int>(std::floor(min_x)) - border, 0), c1 = std::max(static_cast<int>(std::floor(min_y)) - border, 0);
    int c2 = std::min(static_cast<int>(std::ceil(max_x)) + border, img.cols), c3 = std::min(static_cast<int>(std::ceil(max_y)) + border, img.rows);
    if (c2 > c0 && c3 > c1 && (c2 - c0 < img.cols || c3 - c1 < img.rows)) {
        img = img(cv::Rect(c0, c1, c2 - c0, c3 - c1)).clone();
        for (auto& p : quad) p.x -= c0, p.y -= c1;
        min_x -= c0, max_x -= c0, min_y -= c1, max_y -= c1;
    }

    // Pad by reflection where the quad leaves the photo, blurring and fading the padding.
    std::array<int, 4> pad{std::max(-static_cast<int>(std::floor(min_x)) + border, 0), std::max(-static_cast<int>(std::floor(min_y)) + border, 0),
                           std::max(static_cast<int>(std::ceil(max_x)) - img.cols + border, 0),
                           std::max(static_cast<int>(std::ceil(max_y)) - img.rows + border, 0)};
    cv::Mat f;
    img.convertTo(f, CV_32F);
    if (*std::max_element(pad.begin(), pad.end()) > border - 4) {
        const int least = std::max(1, static_cast<int>(std::lround(qsize * 0.3)));
        for (auto& p : pad) p = std::max(p, least);
        cv::copyMakeBorder(f, f, pad[1], pad[3], pad[0], pad[2], f.cols >= 2 && f.rows >= 2 ? cv::BORDER_REFLECT_101 : cv::BORDER_REPLICATE);
        for (auto& p : quad) p.x += pad[0], p.y += pad[1];
        fade_padding(f, pad, qsize);
    }

    // Resample the quad at 4x the output size, then average down.
    const int transform = 4 * size;
    const double t = transform;
    const cv::Point2f dst[3] = {{-0.5f, -0.5f}, {-0.5f, static_cast<float>(t - 0.5)}, {static_cast<float>(t - 0.5), static_cast<float>(t - 0.5)}};
    const cv::Point2f src[3] = {{static_cast<float>(quad[0].x), static_cast<float>(quad[0].y)},
                                {static_cast<float>(quad[1].x), static_cast<float>(quad[1].y)},
                                {static_cast<float>(quad[2].x), static_cast<float>(quad[2].y)}};
    const cv::Mat A = cv::getAffineTransform(dst, src);
    cv::Mat warped;
    cv::warpAffine(f, warped, A, cv::Size(transform, transform), cv::INTER_LINEAR | cv::WARP_INVERSE_MAP, cv::BORDER_REFLECT_101);
    cv::Mat out;
    cv::resize(warped, out, cv::Size(size, size), 0, 0, cv::INTER_AREA);
    cv::Mat out8;
    out.convertTo(out8, CV_8U);  // rounds and saturates
    return detail::from_mat(out8);
#endif
}

bool face_alignment_available() { return LATENTKIT_HAVE_FACE_ALIGN != 0; }

std::unique_ptr<FaceDetector> make_face_detector(AlignMode mode, const std::string& landmark_model) {
    if (mode == AlignMode::face || (mode == AlignMode::automatic && face_alignment_available()))
        return std::make_unique<FaceDetector>(landmark_model);
    return nullptr;
}

AlignMode parse_align_mode(const std::string& text) {
    if (const auto m = option_from_name<AlignMode>(text)) return *m;
    if (text == "centre") return AlignMode::center;
    throw ArgumentError(fmt::format("unknown alignment '{}' (use auto, face, center or none)", text));
}

AlignedImage align_image(const Image8& image, const std::string& name, AlignMode mode, int size, const FaceDetector* detector,
                         int face_index) {
    if (mode == AlignMode::none && image.width != image.height)
        throw ArgumentError(Message() << name + ": " << field("align.mode") << fmt::format(" none needs a square image, this one is {}x{} (use ", image.width, image.height)
                                        << field("align.mode") << " center)");
    if (!LATENTKIT_HAVE_OPENCV && mode != AlignMode::face && std::min(image.width, image.height) != size)
        throw Error(fmt::format("{}: this {}x{} image would need resizing to {}x{}, and this build of latentkit has no OpenCV to "
                                "resize (give an image whose shorter side is {})", name, image.width, image.height, size, size, size));
    if (mode == AlignMode::none) return {resize_image(image, size, size), "resize"};
    if (mode == AlignMode::center) return {center_crop(image, size), "center crop"};
    if (!detector && mode == AlignMode::automatic) return {center_crop(image, size), "center crop (this build has no face detection)"};
    if (!detector) throw ArgumentError("face alignment needs a face detector");
    const std::vector<Face> faces = detector->detect(image);
    if (faces.empty()) {
        if (mode == AlignMode::automatic) return {center_crop(image, size), "center crop (no face found)"};
        throw Error(Message() << name + ": no face found (use " << field("align.mode") << " center or " << field("align.mode") << " none for other photos)");
    }
    if (face_index < 0 || face_index >= static_cast<int>(faces.size()))
        throw Error(Message() << name + ": " << field("align.face_index") << fmt::format(" {} asked for, but {} face(s) were found", face_index, faces.size()));
    return {crop_quad(image, ffhq_quad(faces[face_index].landmarks), size), fmt::format("face {} of {}", face_index + 1, faces.size())};
}

}  // namespace latentkit::io
