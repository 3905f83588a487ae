// OSC control through liblo.
#include "osc_server.h"

#include <fmt/format.h>
#include <lo/lo.h>

#include <cstring>

#include "latentkit/error.h"

namespace latentkit::viewer {
namespace {
constexpr const char* kPrefix = "/latentkit/";
constexpr size_t kMaxQueued = 1000;

std::string arg_text(char type, const lo_arg* a) {
    switch (type) {
        case LO_FLOAT: return fmt::format("{}", a->f);
        case LO_DOUBLE: return fmt::format("{}", a->d);
        case LO_INT32: return std::to_string(a->i);
        case LO_INT64: return std::to_string(a->h);
        case LO_STRING:
        case LO_SYMBOL: return &a->s;
        case LO_TRUE: return "1";
        case LO_FALSE: return "0";
        default: throw ArgumentError(fmt::format("OSC: argument type '{}' is not supported (use numbers or strings)", type));
    }
}

// Whether a sender's address is this machine (IPv4 or IPv6 loopback).
bool is_loopback(lo_message msg) {
    const lo_address from = lo_message_get_source(msg);
    const char* host = from ? lo_address_get_hostname(from) : nullptr;
    if (!host) return false;
    return std::strncmp(host, "127.", 4) == 0 || std::strcmp(host, "::1") == 0 || std::strcmp(host, "::ffff:127.0.0.1") == 0 ||
           std::strcmp(host, "localhost") == 0;
}

int on_message(const char* path, const char* types, lo_arg** argv, int argc, lo_message msg, void* self) {
    auto* server = static_cast<OscServer*>(self);
    std::vector<std::string> args;
    try {
        for (int k = 0; k < argc; ++k) args.push_back(arg_text(types[k], argv[k]));
        server->receive(path, args, is_loopback(msg));
    } catch (const std::exception& e) {
        server->receive("", {e.what()}, is_loopback(msg));
    }
    return 0;
}
}  // namespace

std::string osc_script_line(const std::string& address, const std::vector<std::string>& args) {
    if (address.rfind(kPrefix, 0) != 0) throw ArgumentError(fmt::format("OSC: '{}' is not under {}", address, kPrefix));
    std::string rest = address.substr(std::strlen(kPrefix));
    std::string line;
    if (rest.rfind("direction/", 0) == 0) line = "slider " + rest.substr(10);
    else if (rest.rfind("gain/", 0) == 0) line = "audio-gain " + rest.substr(5);
    else line = rest;
    if (line.empty() || line.find('/') != std::string::npos) throw ArgumentError(fmt::format("OSC: '{}' names no command", address));
    for (const auto& a : args) line += " " + a;
    return line;
}

OscServer::OscServer(int port, bool any_host) : port_(port), any_host_(any_host) {
    if (port < 1 || port > 65535) throw ArgumentError(fmt::format("--osc {}: a port is 1..65535", port));
    const std::string text = std::to_string(port);
    server_ = lo_server_thread_new(text.c_str(), [](int, const char*, const char*) {});
    if (!server_) throw Error(fmt::format("--osc {}: cannot listen on UDP port {} (in use?)", port, port));
    lo_server_thread_add_method(static_cast<lo_server_thread>(server_), nullptr, nullptr, &on_message, this);
    lo_server_thread_start(static_cast<lo_server_thread>(server_));
}

OscServer::~OscServer() { lo_server_thread_free(static_cast<lo_server_thread>(server_)); }

void OscServer::receive(const std::string& address, const std::vector<std::string>& args, bool local) {
    std::lock_guard lock(mutex_);
    if (!local && !any_host_) {
        ++dropped_;
        return;
    }
    ++received_;
    if (lines_.size() >= kMaxQueued) lines_.pop_front();
    try {
        lines_.push_back(address.empty() ? "error " + args.front() : osc_script_line(address, args));
    } catch (const std::exception& e) {
        lines_.push_back(std::string("error ") + e.what());
    }
}

std::vector<std::string> OscServer::take() {
    std::lock_guard lock(mutex_);
    std::vector<std::string> out(lines_.begin(), lines_.end());
    lines_.clear();
    return out;
}

std::string OscServer::status() const {
    std::lock_guard lock(mutex_);
    return fmt::format("OSC on UDP port {}{}: {} messages{}", port_, any_host_ ? " (any host)" : " (this machine only)", received_,
                       dropped_ ? fmt::format(", {} from other hosts dropped", dropped_) : "");
}

}  // namespace latentkit::viewer
