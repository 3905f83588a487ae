#pragma once
// The viewer's Curate panel without GL: a folder or zip, labels given one image at a time, the classifier
// refitted after each and the images re-ranked (most uncertain first, so each label helps most). It runs
// on the task thread; the state gets a grid of the next images to label.
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "latentkit/io/curate.h"
#include "latentkit/png.h"

namespace latentkit::viewer {

/// What the panel shows: the next images to label.
struct CurateView {
    std::vector<size_t> cells;       ///< image index per grid cell
    std::vector<std::string> names;  ///< their names
    std::vector<double> probability; ///< per cell (-1 before the first fit)
    Image8 grid;                     ///< thumbnails, kCurateColumns wide
    size_t images = 0, ones = 0, zeros = 0;
    std::string status;              ///< one line: counts, held-out accuracy, or why there is no fit yet
};

/// Thumbnails per row of the grid, and cells shown.
constexpr int kCurateColumns = 4;
constexpr size_t kCurateCells = 12;

/// One curation; every call may be slow (run it on the task thread).
class CurateSession {
public:
    /// Lists `images` and computes their features (built-in, cached in the download cache).
    explicit CurateSession(const std::string& images);
    /// Labels image `index` 1 or 0, or skips it (-1: shown after every other unlabelled one), refits when
    /// both classes have at least 2 labels, and returns the new view.
    CurateView mark(size_t index, int label);
    /// Reads or writes LABELS.csv (`file,label`).
    CurateView load_labels(const std::string& csv);
    void save_labels(const std::string& csv) const;
    /// Writes the chosen images (labelled 1, or unlabelled at or above `threshold`) as a dataset.
    size_t export_to(const std::string& dest, double threshold) const;
    /// The view now.
    CurateView view() const;

private:
    void refit();
    std::unique_ptr<io::FeatureExtractor> extractor_;
    std::unique_ptr<io::Curator> curator_;
    std::set<size_t> skipped_;
    std::string fit_note_;
};

}  // namespace latentkit::viewer
