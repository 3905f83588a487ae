#include "progress_bar.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>

namespace latentkit::tools {

ProgressBar::ProgressBar(std::string label, int64_t total, std::string unit)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total), enabled_(::isatty(2) != 0),
      start_(std::chrono::steady_clock::now()), last_draw_(start_) {}

ProgressBar::~ProgressBar() {
    if (enabled_ && !finished_ && done_ > 0) std::fputc('\n', stderr);
}

void ProgressBar::update(int64_t done) {
    done_ = done;
    draw(false);
}

void ProgressBar::finish() {
    if (finished_) return;
    draw(true);
    if (enabled_) std::fputc('\n', stderr);
    finished_ = true;
}

void ProgressBar::draw(bool force) {
    if (!enabled_) return;
    const auto now = std::chrono::steady_clock::now();
    if (!force && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    const double secs = std::chrono::duration<double>(now - start_).count();
    const double rate = secs > 0 ? done_ / secs : 0.0;
    const int width = 30;
    const int filled = total_ > 0 ? static_cast<int>(width * done_ / total_) : 0;
    std::string eta = "--:--";
    if (rate > 0 && total_ >= done_) {
        const auto left = static_cast<int64_t>((total_ - done_) / rate);
        eta = fmt::format("{}:{:02d}", left / 60, left % 60);
    }
    fmt::print(stderr, "\r{} [{}{}] {}/{}  {:.2f} {}/s  ETA {}  {}  ", label_, std::string(filled, '#'), std::string(width - filled, ' '),
               done_, total_, rate, unit_, eta, note_);
    std::fflush(stderr);
}

}  // namespace latentkit::tools
