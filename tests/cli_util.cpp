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
