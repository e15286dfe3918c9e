// Private libav helpers: RAII owners for every libav object we hold, error text, the interrupt
// callback that bounds every blocking call by a stop flag and a deadline, and memory AVIO.
#pragma once

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/dict.h>
#include <libavutil/opt.h>
}

#include "common/buffer_pool.hpp"

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <string_view>

namespace hlsrelay::av {

struct InputDeleter { void operator()(AVFormatContext* c) const { avformat_close_input(&c); } };
struct OutputDeleter { void operator()(AVFormatContext* c) const { avformat_free_context(c); } };
struct PacketDeleter { void operator()(AVPacket* p) const { av_packet_free(&p); } };
struct DictDeleter { void operator()(AVDictionary* d) const { av_dict_free(&d); } };
struct IoDeleter { void operator()(AVIOContext* c) const { avio_closep(&c); } };
// A custom AVIOContext: its buffer belongs to it (libav may have replaced the one we gave).
struct CustomIoDeleter {
    void operator()(AVIOContext* c) const {
        if (c) av_freep(&c->buffer);
        avio_context_free(&c);
    }
};

using InputPtr = std::unique_ptr<AVFormatContext, InputDeleter>;
using OutputPtr = std::unique_ptr<AVFormatContext, OutputDeleter>;
using PacketPtr = std::unique_ptr<AVPacket, PacketDeleter>;
using IoPtr = std::unique_ptr<AVIOContext, IoDeleter>;
using CustomIoPtr = std::unique_ptr<AVIOContext, CustomIoDeleter>;

PacketPtr make_packet();
std::string error_string(int errnum);

// An AVDictionary of options owned by RAII; libav functions take `AVDictionary**`.
class Options {
public:
    Options() = default;
    Options(const Options& other);
    Options& operator=(const Options&) = delete;
    ~Options() { av_dict_free(&dict_); }
    void set(const char* key, const std::string& value) { av_dict_set(&dict_, key, value.c_str(), 0); }
    AVDictionary** get() { return &dict_; }

private:
    AVDictionary* dict_ = nullptr;
};

// Bounds blocking libav calls. Each worker owns one and installs callback() in every context it
// opens; the worker arms a deadline before a blocking call and any thread may request stop.
class Interrupter {
public:
    void request_stop() { stop_.store(true, std::memory_order_relaxed); }
    bool stop_requested() const { return stop_.load(std::memory_order_relaxed); }
    // Armed again after a deliberate stop of one connection (a channel leaving a backup source).
    void reset() {
        stop_.store(false, std::memory_order_relaxed);
        timed_out_.store(false, std::memory_order_relaxed);
        disarm();
    }
    void arm(std::chrono::duration<double> timeout) {
        timed_out_.store(false, std::memory_order_relaxed);
        deadline_.store(now_ns() + static_cast<int64_t>(timeout.count() * 1e9), std::memory_order_relaxed);
    }
    void disarm() { deadline_.store(INT64_MAX, std::memory_order_relaxed); }
    bool timed_out() const { return timed_out_.load(std::memory_order_relaxed); }
    AVIOInterruptCB callback() { return AVIOInterruptCB{&Interrupter::check, this}; }

private:
    static int check(void* opaque);
    static int64_t now_ns() {
        return std::chrono::duration_cast<std::chrono::nanoseconds>(
                   std::chrono::steady_clock::now().time_since_epoch()).count();
    }
    std::atomic<bool> stop_{false};
    std::atomic<bool> timed_out_{false};
    std::atomic<int64_t> deadline_{INT64_MAX};
};

// Options for a source libavformat opens itself (a local file, udp, srt, rtmp, rtsp): the protocols
// it may open (`protocol_whitelist`, from url::source_protocols(); nested demuxers inherit it), the
// headers and timeouts. Every avformat_open_input / avio_open2 of the engine passes a whitelist.
void add_source_options(Options& opts, const std::map<std::string, std::string>& headers,
                        double read_timeout_seconds, const std::string& protocol_whitelist);

// HLS METHOD=AES-128: decrypts `data` in place (AES-128-CBC with `key` and `iv`, 16 bytes each) and
// strips its PKCS#7 padding; throws SourceError for a length that is not whole blocks or bad padding.
void decrypt_aes128_cbc(std::string& data, const std::string& key, const uint8_t (&iv)[16]);

// A custom AVIOContext with its own buffer, calling `read` (and `write`, `seek` when given) on `opaque`.
CustomIoPtr make_custom_io(void* opaque, int writable, int (*read)(void*, uint8_t*, int),
                           int (*write)(void*, uint8_t*, int), int64_t (*seek)(void*, int64_t, int));

// An AVIOContext reading from bytes owned by the caller (which must outlive it).
class MemoryReader {
public:
    explicit MemoryReader(std::string_view bytes);
    MemoryReader(const MemoryReader&) = delete;
    MemoryReader& operator=(const MemoryReader&) = delete;
    AVIOContext* io() { return io_.get(); }

private:
    static int read(void* opaque, uint8_t* buf, int size);
    static int64_t seek(void* opaque, int64_t offset, int whence);
    std::string_view bytes_;
    size_t position_ = 0;
    CustomIoPtr io_;
};

// An AVIOContext appending to a string: the muxer writes a segment into it.
class MemoryWriter {
public:
    MemoryWriter();
    MemoryWriter(const MemoryWriter&) = delete;
    MemoryWriter& operator=(const MemoryWriter&) = delete;
    AVIOContext* io() { return io_.get(); }
    // Flushes the context and hands over everything written since the last take().
    std::string take();
    size_t pending() { avio_flush(io_.get()); return out_.size(); }

private:
    static int write(void* opaque, uint8_t* buf, int size);
    std::string out_;
    CustomIoPtr io_;
};

// Why a source failed; `permanent` means retrying the same URL cannot help.
// `limit`: a cap or a total deadline stopped it, so fetching the same thing again at once costs as
// much again (a segment is skipped rather than retried).
class SourceError : public std::runtime_error {
public:
    SourceError(const std::string& what, bool permanent = false, int http_status = 0, bool limit = false)
        : std::runtime_error(what), permanent_(permanent), http_status_(http_status), limit_(limit) {}
    bool permanent() const { return permanent_; }
    int http_status() const { return http_status_; }
    bool limit() const { return limit_; }

private:
    bool permanent_;
    int http_status_;
    bool limit_;
};

// Throws SourceError for a failed libav call: a timeout, a stop or libav's own reason.
[[noreturn]] void throw_av(const char* what, const std::string& redacted_url, int err, const Interrupter& irq,
                           double timeout_seconds);

}  // namespace hlsrelay::av
