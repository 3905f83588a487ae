#pragma once
// A small HTTP/1.0 server on 127.0.0.1 for the download tests: serves fixed files, and can drop
// the connection halfway through a body.
#include <atomic>
#include <map>
#include <string>
#include <thread>

namespace lktest {

class HttpServer {
public:
    /// Serves `files` (URL path -> body) on a free port; paths in `drop` send half the body, then close.
    explicit HttpServer(std::map<std::string, std::string> files, std::map<std::string, bool> drop = {});
    ~HttpServer();
    /// "http://127.0.0.1:PORT" + path.
    std::string url(const std::string& path) const;
    /// Requests answered so far.
    int requests() const { return requests_; }

private:
    void serve();
    void answer(int fd);
    std::map<std::string, std::string> files_;
    std::map<std::string, bool> drop_;
    int listener_ = -1, port_ = 0;
    std::atomic<int> requests_{0};
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

}  // namespace lktest
