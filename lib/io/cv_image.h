#pragma once
// Private: views between Image8 and cv::Mat for the OpenCV-based parts of the I/O layer.
#include <opencv2/core.hpp>

#include "latentkit/png.h"

namespace latentkit::io::detail {

/// A cv::Mat sharing the image's pixels (no copy); channel order stays as in the image.
inline cv::Mat as_mat(Image8& image) {
    return cv::Mat(image.height, image.width, CV_8UC(image.channels), image.pixels.data());
}
inline cv::Mat as_mat(const Image8& image) { return as_mat(const_cast<Image8&>(image)).clone(); }

/// Copies an 8-bit continuous or strided Mat into an Image8.
inline Image8 from_mat(const cv::Mat& mat) {
    Image8 out;
    out.width = mat.cols;
    out.height = mat.rows;
    out.channels = mat.channels();
    out.pixels.resize(static_cast<size_t>(out.width) * out.height * out.channels);
    cv::Mat view(out.height, out.width, CV_8UC(out.channels), out.pixels.data());
    mat.copyTo(view);
    return out;
}

}  // namespace latentkit::io::detail
