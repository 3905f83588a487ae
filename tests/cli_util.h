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

/// Starts latentkit with `args`, waits (at most 120 s) until `ready` holds: a file path exists and is
/// not empty, or "stderr:TEXT" appears in its stderr; then sends the signal `signal_name` ("INT" or
/// "TERM") and waits for the process to end.
Result run_and_signal(const std::vector<std::string>& args, const std::string& ready, const std::string& signal_name);

/// Checks an interrupted run: exit 130, no error line, and stderr ending with exactly one
/// "latentkit: interrupted: ..." line containing `needle`.
void check_interrupted(const Result& r, const std::string& needle);

/// Checks the exit code and that stderr ends with exactly one error line containing `needle`.
void check_error(const Result& r, int code, const std::string& needle);

}  // namespace lktest
