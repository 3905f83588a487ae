#pragma once
// The viewer's file and fitting work, off the UI thread: tasks run in order on one thread, and what
// they found comes back as a change to the state, applied by the UI thread.
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace latentkit::viewer {

struct ViewerState;

/// Applies a task's result to the state (runs on the UI thread).
using StateChange = std::function<void(ViewerState&)>;

/// A queue of tasks on one background thread. A task that throws becomes a change setting
/// ViewerState::error to its message. The destructor runs what is queued before it returns, so
/// files asked for are written.
class TaskQueue {
public:
    TaskQueue();
    ~TaskQueue();
    TaskQueue(const TaskQueue&) = delete;
    TaskQueue& operator=(const TaskQueue&) = delete;
    /// Queues `task`.
    void run(std::function<StateChange()> task);
    /// Applies the changes of the tasks finished since the last call.
    void apply(ViewerState& s);
    /// True while tasks are queued, running or have changes to apply.
    bool busy() const;

private:
    void loop();
    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<std::function<StateChange()>> queue_;
    std::deque<StateChange> done_;
    int running_ = 0;
    bool stop_ = false;
    std::thread thread_;  // last: started after the rest exists
};

}  // namespace latentkit::viewer
