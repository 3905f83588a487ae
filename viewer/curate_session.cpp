// The Curate panel's work: labels, refits, the grid of the next images.
#include "curate_session.h"

#include <fmt/format.h>

#include <algorithm>

#include "latentkit/classifier.h"
#include "latentkit/error.h"
#include "latentkit/io/download.h"
#include "latentkit/io/image.h"
#include "latentkit/io/tensor_image.h"

namespace latentkit::viewer {

CurateSession::CurateSession(const std::string& images) : extractor_(io::make_feature_extractor("builtin")) {
    curator_ = std::make_unique<io::Curator>(images);
    curator_->compute_features(*extractor_, io::cache_dir() + "/features");
}

CurateView CurateSession::mark(size_t index, int label) {
    if (index >= curator_->size()) throw ArgumentError(fmt::format("curate: there is no image {}", index));
    if (label < 0) {
        skipped_.insert(index);
    } else {
        skipped_.erase(index);
        curator_->set_label(index, label);
        refit();
    }
    return view();
}

CurateView CurateSession::load_labels(const std::string& csv) {
    curator_->read_labels(csv);
    refit();
    return view();
}

void CurateSession::save_labels(const std::string& csv) const { curator_->write_labels(csv); }

size_t CurateSession::export_to(const std::string& dest, double threshold) const {
    return curator_->write_dataset(dest, threshold, "curate_out");
}

// A fit needs two labels of each kind; the held-out accuracy (up to 5 folds) says how far to trust it.
void CurateSession::refit() {
    const auto [ones, zeros] = curator_->counts();
    if (ones < 2 || zeros < 2) {
        fit_note_ = "label at least 2 images of each kind to rank the rest";
        return;
    }
    curator_->fit();
    const int folds = static_cast<int>(std::min<size_t>(5, std::min(ones, zeros)));
    const auto [held, labels] = curator_->held_out(folds);
    fit_note_ = fmt::format("held-out accuracy {:.2f} ({} folds)", precision_recall(held, labels, {0.5})[0].accuracy, folds);
}

CurateView CurateSession::view() const {
    CurateView v;
    v.images = curator_->size();
    std::tie(v.ones, v.zeros) = curator_->counts();
    std::vector<size_t> order = curator_->uncertain_first();
    std::stable_partition(order.begin(), order.end(), [&](size_t k) { return !skipped_.count(k); });
    std::vector<Image8> thumbs;
    for (size_t k = 0; k < order.size() && v.cells.size() < kCurateCells; ++k) {
        const size_t i = order[k];
        v.cells.push_back(i);
        v.names.push_back(curator_->source().names[i]);
        v.probability.push_back(curator_->probabilities().empty() ? -1.0 : curator_->probabilities()[i]);
        Image8 im = io::convert_channels(curator_->source().read(i), 3);
        thumbs.push_back(io::resize_image(im, 64, 64));
    }
    const int rows = static_cast<int>((thumbs.size() + kCurateColumns - 1) / kCurateColumns);
    if (!thumbs.empty()) v.grid = io::tile_images(thumbs, kCurateColumns, rows);
    v.status = fmt::format("{} images, {} labelled 1, {} labelled 0; {}", v.images, v.ones, v.zeros, fit_note_.empty() ? "no labels yet" : fit_note_);
    return v;
}

}  // namespace latentkit::viewer
