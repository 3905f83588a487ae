// Few-label dataset curation.
#include "latentkit/io/curate.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

#include "latentkit/atomic_file.h"
#include "latentkit/error.h"
#include "latentkit/io/csv.h"

namespace latentkit::io {

Curator::Curator(const std::string& images) : source_(images) {
    if (source_.names.empty()) throw IoError(images + ": holds no images (png, jpg, jpeg, webp, bmp, tif, ppm, pgm)");
    labels_.assign(source_.names.size(), -1);
}

void Curator::compute_features(FeatureExtractor& extractor, const std::string& cache_dir, const std::function<bool(size_t, size_t)>& progress) {
    features_ = source_features(source_, extractor, cache_dir, progress);
}

void Curator::set_label(size_t image, int label) {
    if (image >= labels_.size() || label < -1 || label > 1) throw ArgumentError(fmt::format("no image {} or label {} out of -1..1", image, label));
    labels_[image] = label;
}

void Curator::read_labels(const std::string& csv) {
    std::map<std::string, size_t> index;
    for (size_t k = 0; k < source_.names.size(); ++k) index[source_.names[k]] = k;
    const auto rows = read_csv(csv);
    std::vector<int> labels(labels_.size(), -1);
    size_t read = 0;
    for (size_t r = 0; r < rows.size(); ++r) {
        const auto& row = rows[r];
        if (r == 0 && row.size() >= 2 && row[1] != "0" && row[1] != "1") continue;  // a header
        if (row.size() != 2) throw ArgumentError(fmt::format("{}: line {}: expected file,label", csv, r + 1));
        if (row[1] != "0" && row[1] != "1") throw ArgumentError(fmt::format("{}: line {}: the label must be 1 or 0, not '{}'", csv, r + 1, row[1]));
        const auto it = index.find(row[0]);
        if (it == index.end()) throw ArgumentError(fmt::format("{}: line {}: '{}' is not among the images of {}", csv, r + 1, row[0], source_.path));
        labels[it->second] = row[1] == "1";
        ++read;
    }
    if (read == 0) throw ArgumentError(csv + ": holds no labels");
    labels_ = std::move(labels);
}

void Curator::write_labels(const std::string& csv) const {
    std::string text = "file,label\n";
    for (size_t k = 0; k < labels_.size(); ++k)
        if (labels_[k] >= 0) text += csv_field(source_.names[k]) + "," + std::to_string(labels_[k]) + "\n";
    write_file_atomic(csv, text.data(), text.size());
}

std::pair<size_t, size_t> Curator::counts() const {
    return {static_cast<size_t>(std::count(labels_.begin(), labels_.end(), 1)), static_cast<size_t>(std::count(labels_.begin(), labels_.end(), 0))};
}

LabelledRows Curator::labelled_rows() const {
    if (features_.empty()) throw Error("curate: the features have not been computed");
    LabelledRows rows;
    rows.d = static_cast<int64_t>(features_.front().size());
    for (size_t k = 0; k < labels_.size(); ++k) {
        if (labels_[k] < 0) continue;
        rows.x.insert(rows.x.end(), features_[k].begin(), features_[k].end());
        rows.y.push_back(labels_[k]);
        ++rows.n;
    }
    return rows;
}

const std::vector<double>& Curator::fit(const std::string& where) {
    const auto [ones, zeros] = counts();
    if (ones == 0 || zeros == 0) throw ArgumentError(fmt::format("{}: every label is {}: label some images 1 and some 0", where, ones ? 1 : 0));
    const LinearClassifier c = LinearClassifier::fit(labelled_rows());
    std::vector<float> all;
    all.reserve(features_.size() * features_.front().size());
    for (const auto& f : features_) all.insert(all.end(), f.begin(), f.end());
    probabilities_ = c.probabilities(all, static_cast<int64_t>(features_.front().size()));
    return probabilities_;
}

std::pair<std::vector<double>, std::vector<int>> Curator::held_out(int folds) const {
    const LabelledRows rows = labelled_rows();
    return {cross_validated_probabilities(rows, folds, 0), rows.y};
}

std::vector<size_t> Curator::uncertain_first() const {
    std::vector<size_t> out;
    for (size_t k = 0; k < labels_.size(); ++k)
        if (labels_[k] < 0) out.push_back(k);
    if (!probabilities_.empty())
        std::stable_sort(out.begin(), out.end(), [&](size_t a, size_t b) { return std::abs(probabilities_[a] - 0.5) < std::abs(probabilities_[b] - 0.5); });
    return out;
}

size_t Curator::write_dataset(const std::string& dest, double threshold, const std::string& field_name) const {
    if (probabilities_.empty()) throw ArgumentError("fit the classifier before writing the chosen images");
    std::vector<size_t> order(labels_.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return probabilities_[a] > probabilities_[b]; });
    DatasetSink sink(dest, field_name);
    size_t chosen = 0;
    for (size_t k : order)
        if (labels_[k] >= 0 ? labels_[k] == 1 : probabilities_[k] >= threshold) sink.add(source_.names[k], source_.bytes(k)), ++chosen;
    sink.finish("{\"labels\": null}\n");
    return chosen;
}

}  // namespace latentkit::io
