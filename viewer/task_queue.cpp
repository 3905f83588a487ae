// The viewer's task thread.
#include "task_queue.h"
#include "error_text.h"

#include <string>

#include "viewer_state.h"

namespace latentkit::viewer {

TaskQueue::TaskQueue() : thread_([this] { loop(); }) {}

TaskQueue::~TaskQueue() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stop_ = true;
    }
    wake_.notify_all();
    thread_.join();
}

void TaskQueue::run(std::function<StateChange()> task) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        queue_.push_back(std::move(task));
    }
    wake_.notify_all();
}

void TaskQueue::apply(ViewerState& s) {
    std::deque<StateChange> done;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        done.swap(done_);
    }
    for (auto& change : done)
        if (change) change(s);
}

bool TaskQueue::busy() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return !queue_.empty() || running_ > 0 || !done_.empty();
}

void TaskQueue::loop() {
    while (true) {
        std::function<StateChange()> task;
        {
            std::unique_lock<std::mutex> lock(mutex_);
            wake_.wait(lock, [this] { return stop_ || !queue_.empty(); });
            if (queue_.empty()) return;  // stopping, and everything queued has run
            task = std::move(queue_.front());
            queue_.pop_front();
            ++running_;
        }
        StateChange change;
        try {
            change = task();
        } catch (const std::exception& e) {
            change = [message = error_text(e)](ViewerState& s) { s.error = message; };
        }
        std::lock_guard<std::mutex> lock(mutex_);
        done_.push_back(std::move(change));
        --running_;
    }
}

}  // namespace latentkit::viewer
