// Private libav helpers: see av_util.hpp.
#include "common/av_util.hpp"

extern "C" {
#include <libavutil/aes.h>
}

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
                        double read_timeout_seconds, const std::string& protocol_whitelist) {
    opts.set("protocol_whitelist", protocol_whitelist);
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
}

namespace {
struct AesDeleter {
    void operator()(AVAES* a) const { av_free(a); }
};
}  // namespace

void decrypt_aes128_cbc(std::string& data, const std::string& key, const uint8_t (&iv)[16]) {
    if (key.size() != 16) throw SourceError("an AES-128 key has 16 bytes, not " + std::to_string(key.size()));
    if (data.empty() || data.size() % 16 != 0)
        throw SourceError("an AES-128 encrypted segment of " + std::to_string(data.size()) +
                          " bytes is not a whole number of 16-byte blocks");
    std::unique_ptr<AVAES, AesDeleter> aes(av_aes_alloc());
    if (!aes) throw std::bad_alloc();
    if (av_aes_init(aes.get(), reinterpret_cast<const uint8_t*>(key.data()), 128, 1) < 0)
        throw SourceError("cannot set up AES-128 decryption");
    uint8_t chain[16];
    std::memcpy(chain, iv, sizeof chain);
    auto* bytes = reinterpret_cast<uint8_t*>(data.data());
    // In place, in runs that fit av_aes_crypt's int block count; the chain carries across runs.
    constexpr size_t kBlocksPerRun = size_t{1} << 20;
    for (size_t block = 0, blocks = data.size() / 16; block < blocks; block += kBlocksPerRun) {
        const size_t run = std::min(kBlocksPerRun, blocks - block);
        av_aes_crypt(aes.get(), bytes + block * 16, bytes + block * 16, static_cast<int>(run), chain, 1);
    }
    // PKCS#7: the last byte says how many bytes of padding, each of that value (1..16).
    const auto pad = static_cast<uint8_t>(data.back());
    if (pad == 0 || pad > 16) throw SourceError("bad AES-128 padding (wrong key or IV?)");
    for (size_t i = data.size() - pad; i < data.size(); ++i)
        if (static_cast<uint8_t>(data[i]) != pad) throw SourceError("bad AES-128 padding (wrong key or IV?)");
    data.resize(data.size() - pad);
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

namespace {
constexpr int kIoBufferSize = 32 * 1024;
}  // namespace

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

MemoryReader::MemoryReader(std::string_view bytes)
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
