#pragma once
// One background thread at a time with a cancel flag, for the viewer's long jobs.
#include <atomic>
#include <functional>
#include <thread>

namespace latentkit::viewer {

/// Runs a function on its own thread; starting again cancels and joins the previous run.
class BackgroundTask {
public:
    BackgroundTask() = default;
    ~BackgroundTask() { stop(); }
    BackgroundTask(const BackgroundTask&) = delete;
    BackgroundTask& operator=(const BackgroundTask&) = delete;
    /// Stops the previous run, then runs `fn` on a new thread.
    void start(std::function<void()> fn) {
        stop();
        cancel_ = false;
        thread_ = std::thread(std::move(fn));
    }
    /// Asks the running function to stop (it polls cancelled()).
    void cancel() { cancel_ = true; }
    bool cancelled() const { return cancel_.load(); }
    /// Waits for the running function to return.
    void join() {
        if (thread_.joinable()) thread_.join();
    }
    /// Cancels and waits.
    void stop() {
        cancel();
        join();
    }

private:
    std::atomic<bool> cancel_{false};
    std::thread thread_;
};

}  // namespace latentkit::viewer
