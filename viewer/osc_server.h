#pragma once
// OSC control (liblo): messages under /latentkit/ become viewer script lines, so every state field a
// script can set is reachable, e.g. /latentkit/psi 0.7 -> "psi 0.7", /latentkit/seed 3 0.5 -> "seed 3 0.5",
// /latentkit/direction/smile 1.5 -> "slider smile 1.5", /latentkit/gain/0 2 -> "audio-gain 0 2".
#include <deque>
#include <mutex>
#include <string>
#include <vector>

namespace latentkit::viewer {

/// The script line of an OSC message (`args` already as text); throws ArgumentError for an address outside
/// /latentkit/ or an empty command.
std::string osc_script_line(const std::string& address, const std::vector<std::string>& args);

/// A UDP OSC server on its own thread. liblo listens on every interface; unless `any_host`, messages from
/// other machines are dropped (and counted), so only this machine can steer the viewer.
class OscServer {
public:
    /// Throws Error naming the port when it cannot be opened.
    OscServer(int port, bool any_host);
    ~OscServer();
    OscServer(const OscServer&) = delete;
    OscServer& operator=(const OscServer&) = delete;
    /// Script lines received since the last call, oldest first; bad messages come back as "error TEXT".
    std::vector<std::string> take();
    /// One line for the UI: port, messages, dropped.
    std::string status() const;

    /// Called on liblo's thread for each message (`local`: it came from this machine).
    void receive(const std::string& address, const std::vector<std::string>& args, bool local);

private:
    void* server_ = nullptr;
    int port_;
    bool any_host_;
    mutable std::mutex mutex_;
    std::deque<std::string> lines_;
    long received_ = 0, dropped_ = 0;
};

}  // namespace latentkit::viewer
