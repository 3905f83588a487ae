// Script replay.
#include "script_runner.h"

#include <fstream>
#include <sstream>

#include "latentkit/error.h"

namespace latentkit::viewer {

ScriptRunner ScriptRunner::from_file(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw IoError(path + ": cannot open the script");
    std::stringstream text;
    text << in.rdbuf();
    return from_text(text.str());
}

ScriptRunner ScriptRunner::from_text(const std::string& text) {
    ScriptRunner r;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        if (!line.empty() && line[0] != '#') r.lines_.push_back(line);
    return r;
}

std::optional<std::string> ScriptRunner::next(bool idle, bool tasks_busy) {
    if (wait_frames_ > 0) {
        --wait_frames_;
        return std::nullopt;
    }
    if (lines_.empty()) return std::nullopt;
    const std::string line = lines_.front();
    if (line == "sync") {
        if (idle) lines_.pop_front();
        return std::nullopt;
    }
    if (tasks_busy) return std::nullopt;
    lines_.pop_front();
    if (line.rfind("wait ", 0) == 0) {
        try {
            wait_frames_ = std::stoi(line.substr(5));
        } catch (const std::exception&) {
            throw ArgumentError("script: '" + line + "' needs a number of frames");
        }
        return std::nullopt;
    }
    return line;
}

}  // namespace latentkit::viewer
