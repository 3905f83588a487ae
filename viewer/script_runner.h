#pragma once
// Replays a viewer script (one command per frame) through the same state and dispatcher as the UI.
#include <deque>
#include <optional>
#include <string>

namespace latentkit::viewer {

/// The lines of a script and where it is. "wait N" skips N frames; "sync" waits until the dispatcher
/// is idle; every other line waits until the file tasks of earlier lines are done.
class ScriptRunner {
public:
    ScriptRunner() = default;
    /// Reads a script file (blank lines and lines starting with '#' are skipped); throws IoError.
    static ScriptRunner from_file(const std::string& path);
    /// A script from text, one command per line.
    static ScriptRunner from_text(const std::string& text);
    /// The command to run this frame, if one is due. `idle`: nothing queued or running anywhere;
    /// `tasks_busy`: file tasks are queued or running.
    std::optional<std::string> next(bool idle, bool tasks_busy);
    /// True when every line has run.
    bool done() const { return lines_.empty() && wait_frames_ == 0; }

private:
    std::deque<std::string> lines_;
    int wait_frames_ = 0;
};

}  // namespace latentkit::viewer
