#include <fmt/format.h>
#include <stdlib.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <mutex>
#include <thread>

#include "latentkit/error.h"
#include "latentkit/io/config.h"
#include "latentkit/io/video.h"
#include "video_internal.h"

namespace latentkit::io {
namespace fs = std::filesystem;
namespace {

// ------------------------------------------------------------------------------------------------
// A folder of PNG frames, written into a temporary folder and renamed into place on finish.

class PngFolderSink : public FrameSink {
public:
    PngFolderSink(const std::string& path, int width, int height) : width_(width), height_(height) {
        std::string p = path;
        while (p.size() > 1 && p.back() == '/') p.pop_back();
        path_ = p;
        std::error_code ec;
        if (fs::exists(path_) && !(fs::is_directory(path_) && fs::is_empty(path_, ec)))
            throw IoError(path_ + ": exists and is not an empty folder (frames are not mixed into existing files)");
        const fs::path parent = fs::absolute(path_).parent_path();
        std::string tmpl = (parent / (fs::path(path_).filename().string() + ".tmp-XXXXXX")).string();
        if (!::mkdtemp(tmpl.data())) throw IoError(path_ + ": cannot create the output folder: " + std::strerror(errno));
        temp_ = tmpl;
        fs::permissions(temp_, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec | fs::perms::others_read |
                                   fs::perms::others_exec);
    }
    ~PngFolderSink() override {
        if (!finished_) {
            std::error_code ec;
            fs::remove_all(temp_, ec);
        }
    }
    void write(const Image8& im) override {
        if (im.width != width_ || im.height != height_) throw ArgumentError(path_ + ": frames differ in size");
        write_png((fs::path(temp_) / fmt::format("frame{:06d}.png", count_++)).string(), im);
    }
    void finish() override {
        if (finished_) return;
        std::error_code ec;
        if (fs::exists(path_)) fs::remove(path_, ec);
        fs::rename(temp_, path_, ec);
        if (ec) throw IoError(path_ + ": cannot move the frames into place: " + ec.message());
        finished_ = true;
    }

private:
    std::string path_, temp_;
    int width_, height_;
    int64_t count_ = 0;
    bool finished_ = false;
};

// ------------------------------------------------------------------------------------------------

class AsyncSink : public FrameSink {
public:
    AsyncSink(std::unique_ptr<FrameSink> inner, size_t capacity) : inner_(std::move(inner)), capacity_(std::max<size_t>(capacity, 1)) {
        worker_ = std::thread([this] { run(); });
    }
    ~AsyncSink() override {
        {
            std::lock_guard<std::mutex> lock(m_);
            stop_ = true;
            queue_.clear();
        }
        cv_.notify_all();
        if (worker_.joinable()) worker_.join();
    }
    void write(const Image8& frame) override {
        std::unique_lock<std::mutex> lock(m_);
        cv_.wait(lock, [&] { return queue_.size() < capacity_ || error_; });
        if (error_) std::rethrow_exception(error_);
        queue_.push_back(frame);
        cv_.notify_all();
    }
    void finish() override {
        {
            std::unique_lock<std::mutex> lock(m_);
            cv_.notify_all();
            cv_.wait(lock, [&] { return (queue_.empty() && !busy_) || error_; });
            if (error_) std::rethrow_exception(error_);
            stop_ = true;
        }
        cv_.notify_all();
        worker_.join();
        inner_->finish();
    }

private:
    void run() {
        for (;;) {
            Image8 frame;
            {
                std::unique_lock<std::mutex> lock(m_);
                cv_.wait(lock, [&] { return !queue_.empty() || stop_; });
                if (stop_ && queue_.empty()) return;
                frame = std::move(queue_.front());
                queue_.pop_front();
                busy_ = true;
            }
            cv_.notify_all();
            try {
                inner_->write(frame);
            } catch (...) {
                std::lock_guard<std::mutex> lock(m_);
                error_ = std::current_exception();
            }
            {
                std::lock_guard<std::mutex> lock(m_);
                busy_ = false;
                if (error_) stop_ = true;
            }
            cv_.notify_all();
            if (error_) return;
        }
    }

    std::unique_ptr<FrameSink> inner_;
    size_t capacity_;
    std::mutex m_;
    std::condition_variable cv_;
    std::deque<Image8> queue_;
    bool stop_ = false, busy_ = false;
    std::exception_ptr error_;
    std::thread worker_;
};

}  // namespace

bool is_frame_folder(const std::string& path) { return !path.empty() && (path.back() == '/' || fs::path(path).extension().empty()); }

std::unique_ptr<FrameSink> open_frame_sink(const std::string& path, int width, int height, const VideoOptions& options) {
    if (path.empty()) throw ArgumentError("no output path given");
    if (is_frame_folder(path)) {
        if (options.audio) throw ArgumentError(path + ": a folder of frames cannot hold sound: write .mp4, .mkv or .mov");
        return std::make_unique<PngFolderSink>(path, width, height);
    }
    return open_video_file(path, width, height, options);
}

std::unique_ptr<FrameSink> make_async(std::unique_ptr<FrameSink> sink, size_t queue_frames) {
    return std::make_unique<AsyncSink>(std::move(sink), queue_frames);
}


#if !LATENTKIT_HAVE_LIBAV
std::unique_ptr<FrameSink> open_video_file(const std::string& path, int, int, const VideoOptions&) {
    throw IoError(path + ": this build of latentkit has no FFmpeg (libav*) support: write a folder/ of PNG frames instead");
}
#endif

}  // namespace latentkit::io
