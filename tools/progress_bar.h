#pragma once
// A terminal progress bar on stderr (only when stderr is a terminal).
#include <chrono>
#include <cstdint>
#include <string>

namespace latentkit::tools {

/// Draws "label [####    ] 12/100  3.1/s  ETA 0:29" and redraws at most every 100 ms.
class ProgressBar {
public:
    ProgressBar(std::string label, int64_t total, std::string unit = "img");
    ~ProgressBar();
    /// Sets the number of finished items.
    void update(int64_t done);
    /// Sets a short text shown after the rate (e.g. the current loss).
    void set_note(std::string note) { note_ = std::move(note); }
    /// Draws the final state and ends the line.
    void finish();

private:
    void draw(bool force);
    std::string label_, unit_, note_;
    int64_t total_, done_ = 0;
    bool enabled_, finished_ = false;
    std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace latentkit::tools
