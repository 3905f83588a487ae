#pragma once
// Face detection (dlib's HOG frontal face detector), 68-point landmarks (dlib's shape predictor, the
// model shipped in Debian's libdlib-data) and FFHQ-style alignment, plus the target preparation used
// by projection: face alignment, centre crop or none.
#include <array>
#include <memory>
#include <string>
#include <vector>

#include "latentkit/option_names.h"
#include "latentkit/png.h"

namespace latentkit::io {

/// A 2-D point in pixel coordinates (x right, y down).
struct Point2 {
    double x = 0, y = 0;
};

/// One detected face: its box and its 68 landmarks in the iBUG 300-W order.
struct Face {
    int left = 0, top = 0, width = 0, height = 0;
    std::array<Point2, 68> landmarks{};
};

/// Where Debian's libdlib-data installs the 68-point landmark model.
const char* default_landmark_model_path();

/// Finds faces and their landmarks.
class FaceDetector {
public:
    /// Loads the landmark model; throws IoError naming the file when it is missing or not a dlib shape predictor.
    explicit FaceDetector(const std::string& landmark_model = default_landmark_model_path());
    ~FaceDetector();
    FaceDetector(const FaceDetector&) = delete;
    FaceDetector& operator=(const FaceDetector&) = delete;

    /// Faces in an RGB or gray image, largest first (faces down to about 40 pixels across are found).
    std::vector<Face> detect(const Image8& image) const;

private:
    struct State;
    std::unique_ptr<State> s_;
};

/// The FFHQ crop for a face: corners of the oriented square (top-left, bottom-left, bottom-right,
/// top-right) defined by the eye and mouth landmarks, as in the recipe used to build FFHQ.
std::array<Point2, 4> ffhq_quad(const std::array<Point2, 68>& landmarks);

/// Crops `quad` out of `image` to a size x size RGB image: parts outside the photo are filled by
/// reflection, blurred and faded toward the median colour, as the FFHQ recipe does.
Image8 crop_quad(const Image8& image, const std::array<Point2, 4>& quad, int size);

/// How a photo is made into a square target.
enum class AlignMode {
    none,    ///< used as it is (it must be square), only resized
    center,  ///< largest centred square (the reference projector)
    face,    ///< FFHQ face alignment; fails when no face is found
    automatic  ///< face alignment when a face is found, else centre crop
};
}  // namespace latentkit::io
namespace latentkit {
template <>
struct OptionNames<io::AlignMode> {
    static constexpr const char* names[] = {"none", "center", "face", "auto"};
};
}  // namespace latentkit
namespace latentkit::io {

/// Parses "none", "center", "face" or "auto"; throws ArgumentError otherwise.
AlignMode parse_align_mode(const std::string& text);

/// A prepared target and how it was made.
struct AlignedImage {
    Image8 image;        ///< size x size
    std::string method;  ///< "face 1 of 2", "center crop", "resize"
};

/// Whether this build can detect faces (dlib and OpenCV).
bool face_alignment_available();

/// The detector `mode` needs: none for none and center, and for auto in a build without face
/// detection (auto then centre-crops); otherwise loads `landmark_model` (throws as FaceDetector does).
std::unique_ptr<FaceDetector> make_face_detector(AlignMode mode, const std::string& landmark_model = default_landmark_model_path());

/// Prepares `image` (named `name` in messages) as a size x size target. `detector` is needed for
/// face mode, and used by auto mode when given (without it auto centre-crops); `face_index` picks
/// among the faces, largest first. Throws Error when face mode finds no face or fewer than face_index + 1.
AlignedImage align_image(const Image8& image, const std::string& name, AlignMode mode, int size,
                         const FaceDetector* detector = nullptr, int face_index = 0);

}  // namespace latentkit::io
