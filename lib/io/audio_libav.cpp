// Audio decoding through libavformat / libavcodec, resampled to 44.1 kHz float by libswresample.
extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libswresample/swresample.h>
}

#include <fmt/format.h>

#include <cmath>
#include <filesystem>

#include "latentkit/error.h"
#include "latentkit/io/audio.h"
#include "libav_common.h"

namespace latentkit::io {
namespace {
constexpr int kRate = 44100;

// Everything one decode holds, released on every way out.
struct Decoder {
    std::string path;
    AVFormatContext* fmt = nullptr;
    AVCodecContext* dec = nullptr;
    SwrContext* swr = nullptr;
    AVFrame* frame = nullptr;
    AVPacket* packet = nullptr;
    int stream = -1, channels = 2;
    ~Decoder() {
        swr_free(&swr);
        av_frame_free(&frame);
        av_packet_free(&packet);
        avcodec_free_context(&dec);
        avformat_close_input(&fmt);
    }

    void open() {
        quiet_libav();
        if (!std::filesystem::is_regular_file(path)) throw IoError(path + ": cannot open: no such file");
        int rc = avformat_open_input(&fmt, path.c_str(), nullptr, nullptr);
        if (rc >= 0) rc = avformat_find_stream_info(fmt, nullptr);
        if (rc < 0) throw IoError(path + ": not a readable audio file: " + av_error(rc));
        const AVCodec* codec = nullptr;
        stream = av_find_best_stream(fmt, AVMEDIA_TYPE_AUDIO, -1, -1, &codec, 0);
        if (stream < 0 || !codec) throw IoError(path + ": has no audio stream");
        dec = avcodec_alloc_context3(codec);
        if (!dec) throw IoError(path + ": out of memory");
        rc = avcodec_parameters_to_context(dec, fmt->streams[stream]->codecpar);
        if (rc >= 0) rc = avcodec_open2(dec, codec, nullptr);
        if (rc < 0) throw IoError(path + ": cannot open its audio decoder: " + av_error(rc));
        if (dec->ch_layout.nb_channels < 1 || dec->sample_rate < 1) throw IoError(path + ": the audio stream has no channels or rate");
        channels = dec->ch_layout.nb_channels == 1 ? 1 : 2;
        AVChannelLayout out_layout;
        av_channel_layout_default(&out_layout, channels);
        rc = swr_alloc_set_opts2(&swr, &out_layout, AV_SAMPLE_FMT_FLT, kRate, &dec->ch_layout, dec->sample_fmt, dec->sample_rate, 0, nullptr);
        if (rc >= 0) rc = swr_init(swr);
        if (rc < 0) throw IoError(path + ": cannot resample its audio: " + av_error(rc));
        frame = av_frame_alloc();
        packet = av_packet_alloc();
        if (!frame || !packet) throw IoError(path + ": out of memory");
    }

    // Resamples `in` (null: flush) and appends to `out`.
    void convert(const AVFrame* in, std::vector<float>& out) {
        const int in_count = in ? in->nb_samples : 0;
        const int room = swr_get_out_samples(swr, in_count);
        if (room <= 0) return;
        const size_t at = out.size();
        out.resize(at + static_cast<size_t>(room) * static_cast<size_t>(channels));
        uint8_t* dst[1] = {reinterpret_cast<uint8_t*>(out.data() + at)};
        const int got = swr_convert(swr, dst, room, in ? const_cast<const uint8_t**>(in->extended_data) : nullptr, in_count);
        if (got < 0) throw IoError(path + ": resampling failed: " + av_error(got));
        out.resize(at + static_cast<size_t>(got) * static_cast<size_t>(channels));
    }

    // Decodes until `limit` samples (per channel) are there, or to the end.
    void decode(std::vector<float>& out, size_t limit) {
        bool flushing = false;
        while (out.size() / static_cast<size_t>(channels) < limit) {
            int rc = avcodec_receive_frame(dec, frame);
            if (rc == 0) {
                convert(frame, out);
                av_frame_unref(frame);
                continue;
            }
            if (rc == AVERROR_EOF) break;
            if (rc != AVERROR(EAGAIN)) throw IoError(path + ": damaged audio data: " + av_error(rc));
            if (flushing) break;
            rc = av_read_frame(fmt, packet);
            if (rc == AVERROR_EOF) {
                flushing = true;
                avcodec_send_packet(dec, nullptr);
                continue;
            }
            if (rc < 0) throw IoError(path + ": read failed: " + av_error(rc));
            if (packet->stream_index == stream) {
                rc = avcodec_send_packet(dec, packet);
                if (rc < 0 && rc != AVERROR(EAGAIN) && rc != AVERROR_INVALIDDATA) {
                    av_packet_unref(packet);
                    throw IoError(path + ": damaged audio data: " + av_error(rc));
                }
            }
            av_packet_unref(packet);
        }
        convert(nullptr, out);
    }
};

}  // namespace

AudioClip decode_audio(const std::string& path, double start, double duration) {
    if (!std::isfinite(start) || start < 0) throw ArgumentError(fmt::format("{}: the start {} s must be 0 or more", path, start));
    if (!std::isfinite(duration) || duration == 0) throw ArgumentError(fmt::format("{}: the duration must be positive (or unset)", path));
    Decoder d;
    d.path = path;
    d.open();
    const auto first = static_cast<size_t>(std::llround(start * kRate));
    const size_t limit = duration > 0 ? first + static_cast<size_t>(std::llround(duration * kRate)) : SIZE_MAX;
    std::vector<float> all;
    d.decode(all, limit);
    AudioClip clip;
    clip.sample_rate = kRate;
    clip.channels = d.channels;
    clip.source = path;
    const size_t frames = all.size() / static_cast<size_t>(d.channels);
    if (frames == 0) throw IoError(path + ": has no audio samples");
    if (first >= frames)
        throw ArgumentError(fmt::format("{}: the start {:.2f} s is past the end of its audio ({:.2f} s)", path, start, double(frames) / kRate));
    const size_t end = std::min(frames, limit);
    clip.samples.assign(all.begin() + static_cast<std::ptrdiff_t>(first * static_cast<size_t>(d.channels)),
                        all.begin() + static_cast<std::ptrdiff_t>(end * static_cast<size_t>(d.channels)));
    return clip;
}

}  // namespace latentkit::io
