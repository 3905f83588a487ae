#pragma once
// Few-label dataset curation: the features of every image of a folder or zip, labels for a few of them,
// a classifier refitted on demand, and the chosen images written as a new dataset. `latentkit curate`
// and the viewer's Curate panel both work through it.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "latentkit/classifier.h"
#include "latentkit/io/dataset.h"
#include "latentkit/io/image_features.h"

namespace latentkit::io {

/// The curation of one folder or zip.
class Curator {
public:
    /// Lists `images`; throws IoError when there are none.
    explicit Curator(const std::string& images);
    /// Computes (or reads from `cache_dir`) every image's features with `extractor` (source_features): needed
    /// before fit().
    void compute_features(FeatureExtractor& extractor, const std::string& cache_dir, const std::function<bool(size_t, size_t)>& progress = {});
    const ImageSource& source() const { return source_; }
    size_t size() const { return source_.names.size(); }
    /// Per image: 1, 0, or -1 (not labelled).
    const std::vector<int>& labels() const { return labels_; }
    void set_label(size_t image, int label);
    /// Reads `file,label` rows (a header line allowed); throws ArgumentError naming `csv` and the line for a
    /// file that is not among the images or a label that is not 1 or 0.
    void read_labels(const std::string& csv);
    /// Writes the labels as `file,label` rows (atomically).
    void write_labels(const std::string& csv) const;
    /// Labelled images with label 1 and with label 0.
    std::pair<size_t, size_t> counts() const;
    /// Fits the classifier to the labels and returns every image's probability of label 1. Throws
    /// ArgumentError (naming `where`) for labels of one class or fewer than 4.
    const std::vector<double>& fit(const std::string& where = "the labels");
    /// The last fit's probabilities (empty before one).
    const std::vector<double>& probabilities() const { return probabilities_; }
    /// Held-out probabilities of the labelled images (`folds`-fold, stratified) and their labels.
    std::pair<std::vector<double>, std::vector<int>> held_out(int folds) const;
    /// Unlabelled images, the most uncertain (probability nearest 0.5) first; in source order before a fit.
    std::vector<size_t> uncertain_first() const;
    /// Writes the images labelled 1 and the unlabelled ones with probability >= threshold, unchanged, with a
    /// dataset.json, as a folder or .zip (DatasetSink; `field_name` names the destination option in errors).
    /// Returns how many it wrote.
    size_t write_dataset(const std::string& dest, double threshold, const std::string& field_name) const;

private:
    LabelledRows labelled_rows() const;
    ImageSource source_;
    std::vector<std::vector<float>> features_;
    std::vector<int> labels_;
    std::vector<double> probabilities_;
};

}  // namespace latentkit::io
