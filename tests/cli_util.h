#pragma once
// Running the real latentkit command from tests (LATENTKIT_CLI).
#include <string>
#include <vector>

namespace lktest {

/// Exit code and output of one run.
struct Result {
    int code = -1;
    std::string out, err;
    /// Lines of stderr.
    std::vector<std::string> err_lines() const;
};

/// Shell-quotes one argument.
std::string quote(const std::string& s);

/// Runs latentkit with `args`, capturing stdout and stderr.
Result run(const std::vector<std::string>& args);

/// Checks the exit code and that stderr ends with exactly one error line containing `needle`.
void check_error(const Result& r, int code, const std::string& needle);

}  // namespace lktest
