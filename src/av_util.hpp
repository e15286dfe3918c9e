// Private libav helpers: RAII owners for every libav object we hold, error text, the interrupt
// callback that bounds every blocking call by a stop flag and a deadline, and memory AVIO.
#pragma once

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/dict.h>
#include <libavutil/opt.h>
}

#include "buffer_pool.hpp"

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>

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

// HTTP options for a source: headers, timeouts; used by avformat_open_input and avio_open2.
void add_source_options(Options& opts, const std::map<std::string, std::string>& headers,
                        double read_timeout_seconds);

// Reads a whole resource (playlist, key, segment) through avio under `interrupter`; throws
// SourceError. `bytes_in` counts what arrived. With `pool`, a body of known length is read into a
// recycled buffer of about its size.
std::string fetch(const std::string& url, const std::map<std::string, std::string>& headers,
                  Interrupter& interrupter, double timeout_seconds, std::atomic<int64_t>* bytes_in = nullptr,
                  std::string* final_url = nullptr, const std::map<std::string, std::string>& extra_options = {},
                  BufferPool* pool = nullptr);

// An AVIOContext reading from bytes owned by the caller (which must outlive it).
class MemoryReader {
public:
    explicit MemoryReader(const std::string& bytes);
    MemoryReader(const MemoryReader&) = delete;
    MemoryReader& operator=(const MemoryReader&) = delete;
    AVIOContext* io() { return io_.get(); }

private:
    static int read(void* opaque, uint8_t* buf, int size);
    static int64_t seek(void* opaque, int64_t offset, int whence);
    const std::string& bytes_;
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
class SourceError : public std::runtime_error {
public:
    SourceError(const std::string& what, bool permanent = false, int http_status = 0)
        : std::runtime_error(what), permanent_(permanent), http_status_(http_status) {}
    bool permanent() const { return permanent_; }
    int http_status() const { return http_status_; }

private:
    bool permanent_;
    int http_status_;
};

// Throws SourceError for a failed libav call: a timeout, a stop or libav's own reason.
[[noreturn]] void throw_av(const char* what, const std::string& redacted_url, int err, const Interrupter& irq,
                           double timeout_seconds);

}  // namespace hlsrelay::av
