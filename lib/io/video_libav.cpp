#include "latentkit/io/video.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>
}

#include <fmt/format.h>

#include <cstring>
#include <filesystem>
#include <mutex>

#include "latentkit/atomic_file.h"
#include "latentkit/error.h"
#include "libav_common.h"
#include "video_internal.h"

namespace latentkit::io {
namespace fs = std::filesystem;
namespace {

std::string lower_extension(const std::string& path) {
    std::string ext = fs::path(path).extension().string();
    for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return ext;
}

// Sends `frame` (null: flush) to an encoder and writes every packet it gives back to `stream`.
void encode_into(AVCodecContext* enc, AVFrame* frame, AVPacket* packet, AVStream* stream, AVFormatContext* fmt, const std::string& path) {
    int rc = avcodec_send_frame(enc, frame);
    if (rc < 0) throw IoError(path + ": encoding failed: " + av_error(rc));
    for (;;) {
        rc = avcodec_receive_packet(enc, packet);
        if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) return;
        if (rc < 0) throw IoError(path + ": encoding failed: " + av_error(rc));
        av_packet_rescale_ts(packet, enc->time_base, stream->time_base);
        packet->stream_index = stream->index;
        rc = av_interleaved_write_frame(fmt, packet);
        if (rc < 0) throw IoError(path + ": write failed: " + av_error(rc));
    }
}

// ------------------------------------------------------------------------------------------------
// Sound track: AAC, encoded in step with the video frames

class AudioTrack {
public:
    AudioTrack(AVFormatContext* fmt, std::shared_ptr<const AudioClip> clip, const std::string& path)
        : clip_(std::move(clip)), path_(path), fmt_(fmt) {
        const AVCodec* codec = avcodec_find_encoder(AV_CODEC_ID_AAC);
        if (!codec) throw IoError(path + ": this FFmpeg has no AAC encoder");
        small_last_ = (codec->capabilities & AV_CODEC_CAP_SMALL_LAST_FRAME) != 0;
        stream_ = avformat_new_stream(fmt, nullptr);
        enc_ = avcodec_alloc_context3(codec);
        frame_ = av_frame_alloc();
        packet_ = av_packet_alloc();
        if (!stream_ || !enc_ || !frame_ || !packet_) throw IoError(path + ": out of memory setting up the audio encoder");
        enc_->sample_fmt = AV_SAMPLE_FMT_FLTP;
        enc_->sample_rate = clip_->sample_rate;
        av_channel_layout_default(&enc_->ch_layout, clip_->channels);
        enc_->bit_rate = 192000;
        enc_->time_base = AVRational{1, clip_->sample_rate};
        if (fmt->oformat->flags & AVFMT_GLOBALHEADER) enc_->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
        int rc = avcodec_open2(enc_, codec, nullptr);
        if (rc >= 0) rc = avcodec_parameters_from_context(stream_->codecpar, enc_);
        if (rc < 0) throw IoError(path + ": cannot open the AAC encoder: " + av_error(rc));
        stream_->time_base = enc_->time_base;
        frame_size_ = enc_->frame_size > 0 ? enc_->frame_size : 1024;
    }
    ~AudioTrack() {
        av_frame_free(&frame_);
        av_packet_free(&packet_);
        avcodec_free_context(&enc_);
    }
    AudioTrack(const AudioTrack&) = delete;
    AudioTrack& operator=(const AudioTrack&) = delete;

    /// Encodes whole encoder frames up to sample `until` (silence past the clip's end).
    void encode_until(int64_t until) {
        while (next_ + frame_size_ <= until) encode_frame(frame_size_);
    }
    /// Encodes up to exactly `total` samples and drains the encoder.
    void finish(int64_t total) {
        encode_until(total);
        if (next_ < total) encode_frame(small_last_ ? static_cast<int>(total - next_) : frame_size_);
        send(nullptr);
    }

private:
    void encode_frame(int n) {
        frame_->nb_samples = n;
        frame_->format = AV_SAMPLE_FMT_FLTP;
        frame_->sample_rate = enc_->sample_rate;
        int rc = av_channel_layout_copy(&frame_->ch_layout, &enc_->ch_layout);
        if (rc >= 0) rc = av_frame_get_buffer(frame_, 0);
        if (rc < 0) throw IoError(path_ + ": audio frame buffer: " + av_error(rc));
        const int channels = clip_->channels;
        const auto available = static_cast<int64_t>(clip_->frames());
        for (int c = 0; c < channels; ++c) {
            auto* plane = reinterpret_cast<float*>(frame_->extended_data[c]);
            for (int i = 0; i < n; ++i) {
                const int64_t at = next_ + i;
                plane[i] = at < available ? clip_->samples[static_cast<size_t>(at * channels + c)] : 0.0f;
            }
        }
        frame_->pts = next_;
        next_ += n;
        send(frame_);
        av_frame_unref(frame_);
    }

    void send(AVFrame* frame) { encode_into(enc_, frame, packet_, stream_, fmt_, path_); }

    std::shared_ptr<const AudioClip> clip_;
    std::string path_;
    AVFormatContext* fmt_;
    AVStream* stream_ = nullptr;
    AVCodecContext* enc_ = nullptr;
    AVFrame* frame_ = nullptr;
    AVPacket* packet_ = nullptr;
    int frame_size_ = 1024;
    bool small_last_ = false;
    int64_t next_ = 0;
};

// ------------------------------------------------------------------------------------------------
// Video files

class VideoFileSink : public FrameSink {
public:
    VideoFileSink(const std::string& path, int width, int height, const VideoOptions& o) : path_(path), width_(width), height_(height) {
        try {
            open(o);
        } catch (...) {
            release();  // the destructor does not run for a constructor that throws
            throw;
        }
    }

    ~VideoFileSink() override { release(); }

    void open(const VideoOptions& o) {
        const std::string& path = path_;
        const int width = width_, height = height_;
        quiet_libav();
        const std::string ext = lower_extension(path);
        const char* codec_name = nullptr;
        AVPixelFormat pix = AV_PIX_FMT_YUV420P;
        int crf = o.crf;
        if (ext == ".mp4" || ext == ".mkv" || ext == ".mov") {
            codec_name = "libx264";
            if (crf < 0) crf = 18;
        } else if (ext == ".webm") {
            codec_name = "libvpx-vp9";
            if (crf < 0) crf = 32;
        } else if (ext == ".gif") {
            codec_name = "gif";
            pix = AV_PIX_FMT_RGB8;
        } else {
            throw ArgumentError(path + ": unknown video extension '" + ext + "' (use .mp4, .mkv, .mov, .webm, .gif, or a folder/)");
        }
        if (width < 1 || height < 1) throw ArgumentError(path + ": video frames must be at least 1x1");
        if (o.fps < 1 || o.fps > 1000) throw ArgumentError(fmt::format("{}: fps {} is out of range 1..1000", path, o.fps));
        enc_width_ = pix == AV_PIX_FMT_YUV420P ? (width + 1) / 2 * 2 : width;
        enc_height_ = pix == AV_PIX_FMT_YUV420P ? (height + 1) / 2 * 2 : height;

        temp_ = std::make_unique<AtomicFile>(path);
        const AVOutputFormat* format = av_guess_format(nullptr, path.c_str(), nullptr);
        if (!format) throw IoError(path + ": no container format for this extension in this FFmpeg");
        int rc = avformat_alloc_output_context2(&fmt_, format, nullptr, temp_->temp_path().c_str());
        if (rc < 0 || !fmt_) throw IoError(path + ": cannot set up the container: " + av_error(rc));
        open_encoder(codec_name, pix, crf, o);
        stream_->time_base = enc_->time_base;
        stream_->avg_frame_rate = enc_->framerate;
        if (o.audio) {
            if (ext != ".mp4" && ext != ".mkv" && ext != ".mov") throw ArgumentError(path + ": sound needs an .mp4, .mkv or .mov file");
            audio_ = std::make_unique<AudioTrack>(fmt_, o.audio, path);
            audio_rate_ = o.audio->sample_rate;
        }
        fps_ = o.fps;
        rc = avio_open(&fmt_->pb, temp_->temp_path().c_str(), AVIO_FLAG_WRITE);
        if (rc < 0) throw IoError(path + ": cannot write: " + av_error(rc));
        AVDictionary* mux = nullptr;
        if (ext == ".mp4" || ext == ".mov") av_dict_set(&mux, "movflags", "faststart", 0);
        rc = avformat_write_header(fmt_, &mux);
        av_dict_free(&mux);
        if (rc < 0) throw IoError(path + ": cannot write the container header: " + av_error(rc));
        frame_ = av_frame_alloc();
        packet_ = av_packet_alloc();
        if (!frame_ || !packet_) throw IoError(path + ": out of memory");
        frame_->format = pix;
        frame_->width = enc_width_;
        frame_->height = enc_height_;
        rc = av_frame_get_buffer(frame_, 0);
        if (rc < 0) throw IoError(path + ": frame buffer: " + av_error(rc));
        sws_ = sws_getContext(enc_width_, enc_height_, AV_PIX_FMT_RGB24, enc_width_, enc_height_, pix, SWS_BICUBIC, nullptr, nullptr, nullptr);
        if (!sws_) throw IoError(path + ": no RGB to " + std::string(av_get_pix_fmt_name(pix)) + " conversion");
        padded_.resize(size_t(enc_width_) * enc_height_ * 3);
    }

    // The video stream and its encoder (codec options as the reference tools choose them).
    void open_encoder(const char* codec_name, AVPixelFormat pix, int crf, const VideoOptions& o) {
        const std::string& path = path_;
        const AVCodec* codec = avcodec_find_encoder_by_name(codec_name);
        if (!codec) throw IoError(path + ": this FFmpeg has no " + std::string(codec_name) + " encoder");
        stream_ = avformat_new_stream(fmt_, nullptr);
        enc_ = avcodec_alloc_context3(codec);
        if (!stream_ || !enc_) throw IoError(path + ": out of memory setting up the encoder");
        enc_->width = enc_width_;
        enc_->height = enc_height_;
        enc_->pix_fmt = pix;
        enc_->time_base = AVRational{1, o.fps};
        enc_->framerate = AVRational{o.fps, 1};
        enc_->gop_size = 2 * o.fps;
        enc_->thread_count = 0;
        if (fmt_->oformat->flags & AVFMT_GLOBALHEADER) enc_->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
        AVDictionary* opts = nullptr;
        if (std::string(codec_name) == "libx264") {
            av_dict_set(&opts, "preset", o.preset.c_str(), 0);
            av_dict_set(&opts, "crf", std::to_string(crf).c_str(), 0);
        } else if (std::string(codec_name) == "libvpx-vp9") {
            enc_->bit_rate = 0;
            av_dict_set(&opts, "crf", std::to_string(crf).c_str(), 0);
            av_dict_set(&opts, "deadline", "good", 0);
            av_dict_set(&opts, "cpu-used", "4", 0);
            av_dict_set(&opts, "row-mt", "1", 0);
        }
        int rc = avcodec_open2(enc_, codec, &opts);
        av_dict_free(&opts);
        if (rc < 0) throw IoError(path + ": cannot open the " + std::string(codec_name) + " encoder: " + av_error(rc));
        rc = avcodec_parameters_from_context(stream_->codecpar, enc_);
        if (rc < 0) throw IoError(path + ": encoder parameters: " + av_error(rc));
    }

    void release() {
        audio_.reset();
        sws_freeContext(sws_);
        sws_ = nullptr;
        av_frame_free(&frame_);
        av_packet_free(&packet_);
        avcodec_free_context(&enc_);
        if (fmt_) {
            if (fmt_->pb) avio_closep(&fmt_->pb);
            avformat_free_context(fmt_);
            fmt_ = nullptr;
        }
    }

    void write(const Image8& im) override {
        if (finished_) throw IoError(path_ + ": frame written after finish");
        if (im.width != width_ || im.height != height_ || im.channels != 3)
            throw ArgumentError(fmt::format("{}: frame is {}x{}x{}, the video is {}x{}x3", path_, im.width, im.height, im.channels, width_, height_));
        for (int y = 0; y < enc_height_; ++y) {
            const uint8_t* src = im.pixels.data() + size_t(std::min(y, height_ - 1)) * width_ * 3;
            uint8_t* dst = padded_.data() + size_t(y) * enc_width_ * 3;
            std::memcpy(dst, src, size_t(width_) * 3);
            for (int x = width_; x < enc_width_; ++x) std::memcpy(dst + x * 3, src + (width_ - 1) * 3, 3);
        }
        int rc = av_frame_make_writable(frame_);
        if (rc < 0) throw IoError(path_ + ": frame buffer: " + av_error(rc));
        const uint8_t* src_planes[1] = {padded_.data()};
        const int src_stride[1] = {enc_width_ * 3};
        sws_scale(sws_, src_planes, src_stride, 0, enc_height_, frame_->data, frame_->linesize);
        frame_->pts = next_pts_++;
        encode(frame_);
        if (audio_) audio_->encode_until(audio_samples(next_pts_));
    }

    void finish() override {
        if (finished_) return;
        encode(nullptr);
        if (audio_) audio_->finish(audio_samples(next_pts_));
        int rc = av_write_trailer(fmt_);
        if (rc < 0) throw IoError(path_ + ": cannot finish the file: " + av_error(rc));
        avio_closep(&fmt_->pb);
        temp_->commit();
        finished_ = true;
    }

private:
    // Sound samples that last as long as `frames` video frames.
    int64_t audio_samples(int64_t frames) const { return av_rescale(frames, audio_rate_, fps_); }

    void encode(AVFrame* frame) { encode_into(enc_, frame, packet_, stream_, fmt_, path_); }

    std::string path_;
    int width_, height_, enc_width_ = 0, enc_height_ = 0;
    std::unique_ptr<AtomicFile> temp_;
    AVFormatContext* fmt_ = nullptr;
    AVStream* stream_ = nullptr;
    AVCodecContext* enc_ = nullptr;
    AVFrame* frame_ = nullptr;
    AVPacket* packet_ = nullptr;
    SwsContext* sws_ = nullptr;
    std::vector<uint8_t> padded_;
    int64_t next_pts_ = 0;
    bool finished_ = false;
    std::unique_ptr<AudioTrack> audio_;
    int audio_rate_ = 0, fps_ = 30;
};

}  // namespace

std::unique_ptr<FrameSink> open_video_file(const std::string& path, int width, int height, const VideoOptions& options) {
    return std::make_unique<VideoFileSink>(path, width, height, options);
}

// ------------------------------------------------------------------------------------------------
// Reader

struct VideoReader::State {
    std::string path;
    AVFormatContext* fmt = nullptr;
    AVCodecContext* dec = nullptr;
    AVFrame* frame = nullptr;
    AVPacket* packet = nullptr;
    SwsContext* sws = nullptr;
    int stream = -1;
    bool flushing = false, done = false;
    ~State() {
        sws_freeContext(sws);
        av_frame_free(&frame);
        av_packet_free(&packet);
        avcodec_free_context(&dec);
        avformat_close_input(&fmt);
    }
};

VideoReader::VideoReader(const std::string& path) : s_(std::make_unique<State>()) {
    quiet_libav();
    s_->path = path;
    if (!fs::exists(path)) throw IoError(path + ": cannot open: no such file");
    int rc = avformat_open_input(&s_->fmt, path.c_str(), nullptr, nullptr);
    if (rc < 0) throw IoError(path + ": not a readable video: " + av_error(rc));
    rc = avformat_find_stream_info(s_->fmt, nullptr);
    if (rc < 0) throw IoError(path + ": not a readable video: " + av_error(rc));
    const AVCodec* codec = nullptr;
    s_->stream = av_find_best_stream(s_->fmt, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
    if (s_->stream < 0 || !codec) throw IoError(path + ": has no decodable video stream");
    s_->dec = avcodec_alloc_context3(codec);
    if (!s_->dec) throw IoError(path + ": out of memory");
    rc = avcodec_parameters_to_context(s_->dec, s_->fmt->streams[s_->stream]->codecpar);
    if (rc >= 0) rc = avcodec_open2(s_->dec, codec, nullptr);
    if (rc < 0) throw IoError(path + ": cannot open its decoder: " + av_error(rc));
    if (s_->dec->width <= 0 || s_->dec->height <= 0) throw IoError(path + ": video has no frame size");
    s_->frame = av_frame_alloc();
    s_->packet = av_packet_alloc();
    if (!s_->frame || !s_->packet) throw IoError(path + ": out of memory");
}

VideoReader::~VideoReader() = default;

int VideoReader::width() const { return s_->dec->width; }
int VideoReader::height() const { return s_->dec->height; }
double VideoReader::fps() const {
    const AVStream* st = s_->fmt->streams[s_->stream];
    const AVRational r = st->r_frame_rate.den && st->r_frame_rate.num ? st->r_frame_rate : st->avg_frame_rate;
    return r.den ? av_q2d(r) : 0.0;
}

bool VideoReader::read(Image8& out) {
    auto& s = *s_;
    while (!s.done) {
        int rc = avcodec_receive_frame(s.dec, s.frame);
        if (rc == 0) {
            const int w = s.frame->width, h = s.frame->height;
            s.sws = sws_getCachedContext(s.sws, w, h, static_cast<AVPixelFormat>(s.frame->format), w, h, AV_PIX_FMT_RGB24, SWS_BICUBIC,
                                         nullptr, nullptr, nullptr);
            if (!s.sws) throw IoError(s.path + ": unsupported pixel format");
            out.width = w;
            out.height = h;
            out.channels = 3;
            out.pixels.resize(size_t(w) * h * 3);
            uint8_t* dst[1] = {out.pixels.data()};
            const int stride[1] = {w * 3};
            sws_scale(s.sws, s.frame->data, s.frame->linesize, 0, h, dst, stride);
            av_frame_unref(s.frame);
            return true;
        }
        if (rc == AVERROR_EOF) {
            s.done = true;
            break;
        }
        if (rc != AVERROR(EAGAIN)) throw IoError(s.path + ": damaged video data: " + av_error(rc));
        if (s.flushing) {
            s.done = true;
            break;
        }
        rc = av_read_frame(s.fmt, s.packet);
        if (rc == AVERROR_EOF) {
            s.flushing = true;
            avcodec_send_packet(s.dec, nullptr);
            continue;
        }
        if (rc < 0) throw IoError(s.path + ": read failed: " + av_error(rc));
        if (s.packet->stream_index == s.stream) {
            rc = avcodec_send_packet(s.dec, s.packet);
            if (rc < 0 && rc != AVERROR(EAGAIN)) {
                av_packet_unref(s.packet);
                throw IoError(s.path + ": damaged video data: " + av_error(rc));
            }
        }
        av_packet_unref(s.packet);
    }
    return false;
}

}  // namespace latentkit::io
