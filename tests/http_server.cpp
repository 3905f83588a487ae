#include "http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>

namespace lktest {
namespace {
void send_all(int fd, const char* data, size_t n) {
    while (n > 0) {
        const ssize_t k = ::send(fd, data, n, MSG_NOSIGNAL);
        if (k <= 0) return;
        data += k;
        n -= static_cast<size_t>(k);
    }
}
}  // namespace

HttpServer::HttpServer(std::map<std::string, std::string> files, std::map<std::string, bool> drop)
    : files_(std::move(files)), drop_(std::move(drop)) {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (listener_ < 0 || ::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || ::listen(listener_, 8) != 0 ||
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
        throw std::runtime_error("test HTTP server: cannot listen on 127.0.0.1");
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
}

HttpServer::~HttpServer() {
    stop_ = true;
    thread_.join();
    ::close(listener_);
}

std::string HttpServer::url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port_) + path; }

void HttpServer::serve() {
    while (!stop_) {
        pollfd p{listener_, POLLIN, 0};
        if (::poll(&p, 1, 50) <= 0) continue;
        const int fd = ::accept(listener_, nullptr, nullptr);
        if (fd < 0) continue;
        answer(fd);
        ::close(fd);
    }
}

void HttpServer::answer(int fd) {
    std::string request;
    char buf[4096];
    while (request.find("\r\n\r\n") == std::string::npos) {
        const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
        if (n <= 0) return;
        request.append(buf, static_cast<size_t>(n));
    }
    ++requests_;
    const size_t a = request.find(' ') + 1, b = request.find(' ', a);
    const std::string path = request.substr(a, b - a);
    const auto it = files_.find(path);
    if (it == files_.end()) {
        const std::string r = "HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n";
        send_all(fd, r.data(), r.size());
        return;
    }
    const std::string& body = it->second;
    const std::string head = "HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n";
    send_all(fd, head.data(), head.size());
    send_all(fd, body.data(), drop_.count(path) ? body.size() / 2 : body.size());
}

}  // namespace lktest
