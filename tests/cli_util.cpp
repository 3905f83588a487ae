// Running the latentkit command from tests.
#include "test_util.h"
#include "cli_util.h"

#include <sys/wait.h>

#include <sstream>

#include "latentkit/atomic_file.h"

namespace lktest {

std::vector<std::string> Result::err_lines() const {
    std::vector<std::string> lines;
    std::istringstream in(err);
    for (std::string l; std::getline(in, l);) lines.push_back(l);
    return lines;
}

std::string quote(const std::string& s) {
    std::string q = "'";
    for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
}

Result run(const std::vector<std::string>& args) {
    static const lktest::TempDir logs;
    std::string cmd = quote(LATENTKIT_CLI);
    for (const auto& a : args) cmd += " " + quote(a);
    cmd += " >" + quote(logs / "out") + " 2>" + quote(logs / "err");
    const int status = std::system(cmd.c_str());
    Result r;
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = latentkit::read_file(logs / "out");
    r.err = latentkit::read_file(logs / "err");
    return r;
}

Result run_and_signal(const std::vector<std::string>& args, const std::string& ready, const std::string& signal_name) {
    const lktest::TempDir logs;
    std::string cmd = quote(LATENTKIT_CLI);
    for (const auto& a : args) cmd += " " + quote(a);
    const std::string wait_for = ready.rfind("stderr:", 0) == 0 ? "! grep -qF -- " + quote(ready.substr(7)) + " " + quote(logs / "err")
                                                                 : "[ ! -s " + quote(ready) + " ]";
    const std::string line = "(" + cmd + " >" + quote(logs / "out") + " 2>" + quote(logs / "err") + " & pid=$!; i=0; while " + wait_for +
                             " && [ $i -lt 1200 ] && kill -0 $pid 2>/dev/null; do sleep 0.1; i=$((i+1)); done; kill -" + signal_name +
                             " $pid; wait $pid)";
    const int status = std::system(line.c_str());
    Result r;
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = latentkit::read_file(logs / "out");
    r.err = latentkit::read_file(logs / "err");
    return r;
}

void check_interrupted(const Result& r, const std::string& needle) {
    INFO("stderr: " << r.err);
    CHECK(r.code == 130);
    const auto lines = r.err_lines();
    REQUIRE_FALSE(lines.empty());
    int marked = 0;
    for (const auto& l : lines) {
        marked += l.rfind("latentkit: interrupted: ", 0) == 0;
        CHECK(l.rfind("latentkit: error", 0) == std::string::npos);
    }
    CHECK(marked == 1);
    CHECK(lines.back().rfind("latentkit: interrupted: ", 0) == 0);
    CHECK(lines.back().find(needle) != std::string::npos);
}

// One error line, last, naming `needle`.
void check_error(const Result& r, int code, const std::string& needle) {
    INFO("stderr: " << r.err);
    CHECK(r.code == code);
    const auto lines = r.err_lines();
    REQUIRE_FALSE(lines.empty());
    int error_lines = 0;
    for (const auto& l : lines) error_lines += l.rfind("latentkit: ", 0) == 0 && l.find("error") != std::string::npos;
    CHECK(error_lines == 1);
    CHECK(lines.back().find(needle) != std::string::npos);
}


}  // namespace lktest
