// Private libav helpers: see av_util.hpp.
#include "av_util.hpp"

#include <hlsrelay/stream_id.hpp>

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace hlsrelay::av {

PacketPtr make_packet() {
    PacketPtr p(av_packet_alloc());
    if (!p) throw std::bad_alloc();
    return p;
}

std::string error_string(int errnum) {
    char buf[AV_ERROR_MAX_STRING_SIZE] = {};
    av_strerror(errnum, buf, sizeof buf);
    return buf;
}

Options::Options(const Options& other) { av_dict_copy(&dict_, other.dict_, 0); }

int Interrupter::check(void* opaque) {
    auto* self = static_cast<Interrupter*>(opaque);
    if (self->stop_.load(std::memory_order_relaxed)) return 1;
    if (now_ns() > self->deadline_.load(std::memory_order_relaxed)) {
        self->timed_out_.store(true, std::memory_order_relaxed);
        return 1;
    }
    return 0;
}

void add_source_options(Options& opts, const std::map<std::string, std::string>& headers,
                        double read_timeout_seconds) {
    std::string extra;
    for (const auto& [name, value] : headers) {
        if (name == "User-Agent") opts.set("user_agent", value);
        else if (name == "Referer") opts.set("referer", value);
        else extra += name + ": " + value + "\r\n";
    }
    if (!extra.empty()) opts.set("headers", extra);
    // The interrupt callback enforces the deadline; rw_timeout is a second line for protocols that
    // block inside a single poll without checking it.
    opts.set("rw_timeout", std::to_string(static_cast<int64_t>(read_timeout_seconds * 1e6)));
    opts.set("reconnect", "0");
    opts.set("seekable", "0");
}

[[noreturn]] void throw_av(const char* what, const std::string& redacted_url, int err, const Interrupter& irq,
                           double timeout_seconds) {
    if (irq.stop_requested()) throw SourceError("stopped");
    if (irq.timed_out()) {
        char buf[64];
        std::snprintf(buf, sizeof buf, " timed out after %.1f s", timeout_seconds);
        throw SourceError(std::string(what) + " " + redacted_url + buf);
    }
    int status = 0;
    switch (err) {
        case AVERROR_HTTP_BAD_REQUEST: status = 400; break;
        case AVERROR_HTTP_UNAUTHORIZED: status = 401; break;
        case AVERROR_HTTP_FORBIDDEN: status = 403; break;
        case AVERROR_HTTP_NOT_FOUND: status = 404; break;
        case AVERROR_HTTP_OTHER_4XX: status = 499; break;
        case AVERROR_HTTP_SERVER_ERROR: status = 500; break;
        default: break;
    }
    const bool permanent = err == AVERROR_PROTOCOL_NOT_FOUND || err == AVERROR_DEMUXER_NOT_FOUND;
    throw SourceError(std::string(what) + " " + redacted_url + ": " + error_string(err), permanent, status);
}

std::string fetch(const std::string& url, const std::map<std::string, std::string>& headers,
                  Interrupter& irq, double timeout_seconds, std::atomic<int64_t>* bytes_in,
                  std::string* final_url, const std::map<std::string, std::string>& extra_options,
                  BufferPool* pool) {
    Options opts;
    add_source_options(opts, headers, timeout_seconds);
    for (const auto& [key, value] : extra_options) opts.set(key.c_str(), value);
    AVIOInterruptCB cb = irq.callback();
    AVIOContext* raw = nullptr;
    irq.arm(std::chrono::duration<double>(timeout_seconds));
    int err = avio_open2(&raw, url.c_str(), AVIO_FLAG_READ, &cb, opts.get());
    if (err < 0) throw_av("cannot open", redact_url(url), err, irq, timeout_seconds);
    IoPtr io(raw);
    if (final_url) {
        uint8_t* location = nullptr;
        if (av_opt_get(io.get(), "location", AV_OPT_SEARCH_CHILDREN, &location) >= 0 && location) {
            *final_url = reinterpret_cast<const char*>(location);
            av_free(location);
        } else {
            *final_url = url;
        }
    }
    // The body is read straight into its final buffer: with a Content-Length one of exactly that
    // size (a segment's bytes are kept for its whole life in the window, so no slack capacity rides
    // along), from the pool when there is one. `filled` counts the bytes read; the string's size may
    // run ahead of it (recycled bytes about to be overwritten) and is cut back at the end.
    std::string body;
    const int64_t size = avio_size(io.get());
    const bool sized = size > 0 && size < (int64_t{1} << 30);
    if (sized) {
        if (pool && static_cast<size_t>(size) >= BufferPool::kMinSize) body = pool->take(static_cast<size_t>(size));
        else body.reserve(static_cast<size_t>(size));
    }
    constexpr size_t kChunk = 64 * 1024;
    size_t filled = 0;
    for (;;) {
        irq.arm(std::chrono::duration<double>(timeout_seconds));
        if (sized && filled >= static_cast<size_t>(size)) {
            // All that was announced arrived: a small read should find the end.
            unsigned char probe[4096];
            const int n = avio_read(io.get(), probe, sizeof probe);
            if (n == AVERROR_EOF || n == 0) break;
            if (n < 0) throw_av("read failed for", redact_url(url), n, irq, timeout_seconds);
            body.resize(filled);
            body.append(reinterpret_cast<const char*>(probe), static_cast<size_t>(n));
            filled += static_cast<size_t>(n);
            if (bytes_in) bytes_in->fetch_add(n, std::memory_order_relaxed);
            continue;
        }
        const size_t want = std::min(sized ? static_cast<size_t>(size) - filled : kChunk, kChunk);
        if (filled + want > body.capacity()) body.reserve(std::max(filled + want, body.capacity() * 2));
        if (filled + want > body.size()) body.resize(filled + want);
        const int n = avio_read(io.get(), reinterpret_cast<unsigned char*>(body.data() + filled), static_cast<int>(want));
        if (n == AVERROR_EOF || n == 0) break;
        if (n < 0) throw_av("read failed for", redact_url(url), n, irq, timeout_seconds);
        filled += static_cast<size_t>(n);
        if (bytes_in) bytes_in->fetch_add(n, std::memory_order_relaxed);
    }
    body.resize(filled);
    if (body.capacity() > body.size() + body.size() / 8 + 4096) body.shrink_to_fit();
    irq.disarm();
    // Decryption strips padding, so only a plain transfer can be checked against its length.
    const bool decrypted = url.rfind("crypto", 0) == 0;
    if (size > 0 && !decrypted && static_cast<int64_t>(body.size()) < size)
        throw SourceError("truncated response from " + redact_url(url) + ": " + std::to_string(body.size()) +
                          " of " + std::to_string(size) + " bytes");
    return body;
}

namespace {
constexpr int kIoBufferSize = 32 * 1024;

CustomIoPtr make_custom_io(void* opaque, int writable, int (*read)(void*, uint8_t*, int),
                           int (*write)(void*, uint8_t*, int), int64_t (*seek)(void*, int64_t, int)) {
    auto* buffer = static_cast<unsigned char*>(av_malloc(kIoBufferSize));
    if (!buffer) throw std::bad_alloc();
    AVIOContext* io = avio_alloc_context(buffer, kIoBufferSize, writable, opaque, read, write, seek);
    if (!io) {
        av_free(buffer);
        throw std::bad_alloc();
    }
    return CustomIoPtr(io);
}
}  // namespace

MemoryReader::MemoryReader(const std::string& bytes)
    : bytes_(bytes), io_(make_custom_io(this, 0, &MemoryReader::read, nullptr, &MemoryReader::seek)) {}

int MemoryReader::read(void* opaque, uint8_t* buf, int size) {
    auto* self = static_cast<MemoryReader*>(opaque);
    const size_t left = self->bytes_.size() - self->position_;
    if (left == 0) return AVERROR_EOF;
    const size_t n = std::min(left, static_cast<size_t>(size));
    std::memcpy(buf, self->bytes_.data() + self->position_, n);
    self->position_ += n;
    return static_cast<int>(n);
}

int64_t MemoryReader::seek(void* opaque, int64_t offset, int whence) {
    auto* self = static_cast<MemoryReader*>(opaque);
    const auto size = static_cast<int64_t>(self->bytes_.size());
    int64_t target = 0;
    switch (whence & ~AVSEEK_FORCE) {
        case AVSEEK_SIZE: return size;
        case SEEK_SET: target = offset; break;
        case SEEK_CUR: target = static_cast<int64_t>(self->position_) + offset; break;
        case SEEK_END: target = size + offset; break;
        default: return AVERROR(EINVAL);
    }
    if (target < 0 || target > size) return AVERROR(EINVAL);
    self->position_ = static_cast<size_t>(target);
    return target;
}

MemoryWriter::MemoryWriter() : io_(make_custom_io(this, 1, nullptr, &MemoryWriter::write, nullptr)) {}

int MemoryWriter::write(void* opaque, uint8_t* buf, int size) {
    static_cast<MemoryWriter*>(opaque)->out_.append(reinterpret_cast<const char*>(buf), static_cast<size_t>(size));
    return size;
}

std::string MemoryWriter::take() {
    avio_flush(io_.get());
    std::string out = std::move(out_);
    out_.clear();
    out_.reserve(out.size() + out.size() / 8);  // the next segment is about as large
    // The segment lives in the window for tens of seconds: no slack capacity goes with it.
    if (out.capacity() > out.size() + out.size() / 16 + 4096) out.shrink_to_fit();
    return out;
}

}  // namespace hlsrelay::av
