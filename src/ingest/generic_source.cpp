// Sources libavformat demuxes (MPEG-TS or any container, read at native rate and looped on request,
// so a demo or a test has a live source without a network):
//  - remote ones (http, https) through the engine's HTTP client: libavformat reads the streaming body
//    from a custom AVIOContext and may open nothing itself (protocol_whitelist ""), so no demuxer
//    (hls, concat, ...) follows a URL an upstream names;
//  - local ones the channel list names (a file, udp, srt, rtmp(s), rtsp(s)) with libav's own
//    protocols, limited to that scheme's (url::source_protocols);
//  - a body or file that turns out to be an HLS playlist goes to the engine's HLS client.
// Any other scheme is refused. A continuous source whose media time falls behind the clock by more
// than the stall bound is a stall ("source too slow"), so a trickle cannot keep a channel starting.
#include "ingest/source.hpp"

#include "ingest/damage_filter.hpp"
#include "ingest/http_client.hpp"
#include "ingest/url_policy.hpp"

#include <hlsrelay/stream_id.hpp>

#include <cerrno>
#include <cmath>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <utility>
#include <vector>

namespace hlsrelay {

bool is_local_file(const std::string& url) { return url::scheme_of(url) == "file"; }

std::string read_local_file(const std::string& url, int64_t max_bytes, const std::string& limit_name,
                            const std::string& what, std::optional<std::pair<int64_t, int64_t>> range) {
    const std::string path = url::local_path(url);
    const auto cap = static_cast<uint64_t>(std::max<int64_t>(0, max_bytes));
    auto too_large = [&] {
        return av::SourceError(what + " " + redact_url(url) + " exceeds " + limit_name + " (" + std::to_string(cap) +
                                   " bytes)",
                               false, 0, true);
    };
    std::ifstream in(path, std::ios::binary);
    if (!in) throw av::SourceError("cannot open " + redact_url(url) + ": " + std::strerror(errno));
    uint64_t want = UINT64_MAX;
    if (range) {
        if (range->first < 0 || range->second < range->first)
            throw av::SourceError("bad byte range for " + redact_url(url));
        want = static_cast<uint64_t>(range->second - range->first);
        if (want > cap) throw too_large();
        in.seekg(range->first);
        if (!in) throw av::SourceError("cannot seek in " + redact_url(url));
    } else {
        std::error_code ec;
        const auto size = std::filesystem::file_size(path, ec);  // fails for a FIFO or device: the loop caps it
        if (!ec && size > cap) throw too_large();
    }
    std::string out;
    char buf[64 * 1024];
    while (out.size() < want) {
        const auto n = static_cast<size_t>(std::min<uint64_t>(sizeof buf, want - out.size()));
        in.read(buf, static_cast<std::streamsize>(n));
        const auto got = static_cast<size_t>(in.gcount());
        if (got == 0) break;
        if (out.size() + got > cap) throw too_large();
        out.append(buf, got);
    }
    if (in.bad()) throw av::SourceError("read failed for " + redact_url(url));
    if (range && out.size() < want)
        throw av::SourceError("truncated byte range in " + redact_url(url) + ": " + std::to_string(out.size()) + " of " +
                              std::to_string(want) + " bytes");
    return out;
}

namespace {
using Clock = std::chrono::steady_clock;

bool starts_as_playlist(std::string_view bytes) {
    if (bytes.substr(0, 3) == "\xEF\xBB\xBF") bytes.remove_prefix(3);  // a UTF-8 byte order mark
    return bytes.substr(0, 7) == "#EXTM3U";
}

// Media time against the clock: a continuous source that falls behind by more than `limit` seconds
// (its packets' timestamps advance slower than real time) is too slow to keep a channel live.
class StallWatch {
public:
    explicit StallWatch(double limit) : limit_(limit) {}
    void restart() {
        started_ = false;
        streams_.clear();
        progress_ = 0;
    }
    // Progress is counted per stream (streams may carry timestamps far apart) and the furthest counts.
    void on_packet(int stream, double t) {
        if (!started_) {
            started_ = true;
            start_ = Clock::now();
        }
        auto [it, fresh] = streams_.try_emplace(stream, Stream{t, 0});
        if (fresh) return;
        Stream& s = it->second;
        const double d = t - s.last;
        if (d > 0) {
            if (d < 5) s.progress += d;  // a jump forward is a discontinuity, not progress
            s.last = t;
        } else if (d < -5) {
            s.last = t;  // timestamps went back (a reset or a wrap): count on from there
        }
        progress_ = std::max(progress_, s.progress);
    }
    void check() const {
        if (!started_) return;
        const double lag = std::chrono::duration<double>(Clock::now() - start_).count() - progress_;
        if (lag > limit_) {
            char buf[160];
            std::snprintf(buf, sizeof buf, "source too slow: its media time fell %.1f s behind the clock (limit %.1f s)",
                          lag, limit_);
            throw av::SourceError(buf);
        }
    }

private:
    struct Stream {
        double last = 0, progress = 0;
    };
    double limit_;
    bool started_ = false;
    Clock::time_point start_{};
    std::map<int, Stream> streams_;
    double progress_ = 0;
};

// The streaming body of a remote source as an AVIOContext. libav calls read() from C: errors are
// kept and rethrown by the caller once the libav call returns.
class HttpStream {
public:
    HttpStream(SourceContext& ctx, StallWatch& watch)
        : ctx_(ctx), watch_(watch), io_(av::make_custom_io(this, 0, &HttpStream::read, nullptr, nullptr)) {
        spec_.headers = &ctx.channel.headers;
        spec_.trusted_origin = ctx.url;
        spec_.what = "stream";
        spec_.read_timeout = ctx.read_timeout;
        spec_.max_redirects = ctx.limits.max_redirects;
        spec_.limit_name = "max_segment_bytes";
        // bytes_in counts demuxed packets, as for every other generic source.
    }
    HttpStream(const HttpStream&) = delete;
    HttpStream& operator=(const HttpStream&) = delete;

    // Sends the request; false when the body is an HLS playlist (the HLS client takes the URL).
    bool open() {
        client_.open_stream(ctx_.url, spec_, ctx_.interrupter);
        const std::string type = url::detail::lowered(client_.stream_head().content_type);
        if (type.find("mpegurl") != std::string::npos) return false;
        char buf[16];
        while (prefix_.size() < sizeof buf) {
            const size_t n = client_.read_stream(buf, sizeof buf - prefix_.size(), ctx_.interrupter);
            if (n == 0) break;
            prefix_.append(buf, n);
        }
        return !starts_as_playlist(prefix_);
    }
    AVIOContext* io() { return io_.get(); }
    void rethrow() const {
        if (error_) std::rethrow_exception(error_);
    }

private:
    static int read(void* opaque, uint8_t* buf, int size) {
        auto* self = static_cast<HttpStream*>(opaque);
        try {
            if (size <= 0) return AVERROR(EINVAL);
            if (self->prefix_pos_ < self->prefix_.size()) {
                const size_t n = std::min(self->prefix_.size() - self->prefix_pos_, static_cast<size_t>(size));
                std::memcpy(buf, self->prefix_.data() + self->prefix_pos_, n);
                self->prefix_pos_ += n;
                return static_cast<int>(n);
            }
            // The bound the caller armed for its libav call (as libav's own protocols honour it).
            AVIOInterruptCB cb = self->ctx_.interrupter.callback();
            if (cb.callback(cb.opaque)) return AVERROR_EXIT;
            self->watch_.check();
            const size_t n = self->client_.read_stream(reinterpret_cast<char*>(buf), static_cast<size_t>(size),
                                                       self->ctx_.interrupter);
            return n == 0 ? AVERROR_EOF : static_cast<int>(n);
        } catch (...) {
            self->error_ = std::current_exception();
            return AVERROR_EXIT;
        }
    }

    SourceContext& ctx_;
    StallWatch& watch_;
    FetchSpec spec_;
    HttpClient client_;
    std::string prefix_;  // the first bytes, read to tell a playlist from media; served first
    size_t prefix_pos_ = 0;
    std::exception_ptr error_;
    av::CustomIoPtr io_;
};

// An open source: the demuxer and, for a remote one, the stream under it (destroyed after it).
struct Opened {
    std::unique_ptr<HttpStream> stream;
    av::InputPtr input;
    bool hls = false;  // an HLS playlist: the HLS client reads it instead

    void reset() {  // the demuxer first: it reads from the stream's AVIOContext
        input.reset();
        stream.reset();
        hls = false;
    }
    // After a failed libav call: the stream's own error (a timeout, "stopped", a refused redirect, ...).
    void rethrow() const {
        if (stream) stream->rethrow();
    }
};

Opened open_source(SourceContext& ctx, StallWatch& watch) {
    Opened o;
    const std::string scheme = url::scheme_of(ctx.url);
    const auto protocols = url::source_protocols(scheme);
    if (!protocols) throw av::SourceError(url::check_source(ctx.url), true);
    const bool remote = url::is_remote_scheme(scheme);
    if (remote) {
        o.stream = std::make_unique<HttpStream>(ctx, watch);
        if (!o.stream->open()) {
            o.hls = true;
            return o;
        }
    } else if (scheme == "file") {
        std::ifstream in(url::local_path(ctx.url), std::ios::binary);
        char head[16] = {};
        in.read(head, sizeof head);
        if (starts_as_playlist(std::string_view(head, static_cast<size_t>(std::max<std::streamsize>(0, in.gcount()))))) {
            o.hls = true;
            return o;
        }
    }
    AVFormatContext* raw = avformat_alloc_context();
    if (!raw) throw std::bad_alloc();
    raw->interrupt_callback = ctx.interrupter.callback();
    av::Options opts;
    if (remote) {
        raw->pb = o.stream->io();
        raw->flags |= AVFMT_FLAG_CUSTOM_IO;
        opts.set("protocol_whitelist", "");  // the bytes come from our client; libav opens nothing
    } else if (scheme == "file") {
        opts.set("protocol_whitelist", *protocols);
    } else {
        av::add_source_options(opts, ctx.channel.headers, ctx.read_timeout, *protocols);
    }
    ctx.interrupter.arm(std::chrono::duration<double>(ctx.read_timeout));
    int err = avformat_open_input(&raw, ctx.url.c_str(), nullptr, opts.get());  // frees raw on failure
    if (err < 0) {
        o.rethrow();
        av::throw_av("cannot open", redact_url(ctx.url), err, ctx.interrupter, ctx.read_timeout);
    }
    o.input.reset(raw);
    if (o.input->iformat && std::string_view(o.input->iformat->name).find("hls") != std::string_view::npos) {
        o.hls = true;  // an HLS playlist behind a URL without .m3u8
        return o;
    }
    ctx.interrupter.arm(std::chrono::duration<double>(ctx.read_timeout));
    if ((err = avformat_find_stream_info(o.input.get(), nullptr)) < 0) {
        o.rethrow();
        av::throw_av("cannot read the streams of", redact_url(ctx.url), err, ctx.interrupter, ctx.read_timeout);
    }
    return o;
}
}  // namespace

void run_generic_source(SourceContext& ctx) {
    const double stall_limit =
        ctx.stall_timeout > 0 ? ctx.stall_timeout : std::max(ctx.read_timeout, 3 * std::max(0.5, ctx.segment_duration));
    StallWatch watch(stall_limit);
    Opened source = open_source(ctx, watch);
    if (source.hls) {
        source.reset();
        run_hls_source(ctx);
        return;
    }
    ctx.segmenter.open_input(source.input.get(), true, true);
    const bool realtime = ctx.channel.realtime.value_or(is_local_file(ctx.url));
    // Pacing: a packet is passed on no earlier than its timestamp says, measured from the first.
    Clock::time_point pace_start{};
    double pace_origin = -1;
    // How long the source may stay silent: read_timeout, or the stall bound when that is shorter.
    const double silence_limit = std::min(ctx.read_timeout, stall_limit);
    Clock::time_point last_data = Clock::now();
    // Live network sources only: a local file's last packets are whole, and it is read again when it loops.
    const bool filter_damage = !is_local_file(ctx.url);
    DamageFilter damage;
    std::vector<av::PacketPtr> ready;  // what the filter lets through, in order
    int64_t dropped_unreported = 0;
    Clock::time_point last_damage_report{};
    av::PacketPtr packet = av::make_packet();
    for (;;) {
        if (ctx.interrupter.stop_requested()) return;
        watch.check();
        ctx.interrupter.arm(std::chrono::duration<double>(silence_limit));
        int err = av_read_frame(source.input.get(), packet.get());
        if (err < 0) source.rethrow();
        if (ctx.interrupter.timed_out() && !ctx.interrupter.stop_requested()) {
            // The deadline passed while the source was silent. libav may still hand over what its
            // parsers held (a success): that is no sign of life, so the source fails now, not after
            // a second full timeout, and says how long it has really been silent.
            av_packet_unref(packet.get());
            char buf[96];
            std::snprintf(buf, sizeof buf, " timed out: no data for %.1f s (read_timeout %.1f s)",
                          std::chrono::duration<double>(Clock::now() - last_data).count(), silence_limit);
            throw av::SourceError("read from " + redact_url(ctx.url) + buf);
        }
        if (err >= 0) last_data = Clock::now();
        if (err == AVERROR(EAGAIN)) {
            if (!ctx.sleep(0.01)) return;
            continue;
        }
        AVFormatContext* input = source.input.get();
        if (err == AVERROR_EOF || (err < 0 && input->pb && avio_feof(input->pb) && !ctx.interrupter.timed_out() &&
                                   !ctx.interrupter.stop_requested())) {
            if (!ctx.channel.loop) throw av::SourceError("the source ended: " + redact_url(ctx.url));
            ctx.segmenter.restart_timeline();
            source.reset();
            source = open_source(ctx, watch);
            if (source.hls) throw av::SourceError("the source " + redact_url(ctx.url) + " turned into an HLS playlist");
            ctx.segmenter.open_input(source.input.get(), false, true);
            pace_origin = -1;
            watch.restart();
            continue;
        }
        if (err < 0) av::throw_av("read failed for", redact_url(ctx.url), err, ctx.interrupter, ctx.read_timeout);
        ctx.bytes_in.fetch_add(packet->size, std::memory_order_relaxed);
        if (packet->dts != AV_NOPTS_VALUE) {
            const AVStream* st = input->streams[packet->stream_index];
            const double t = static_cast<double>(packet->dts) * av_q2d(st->time_base);
            watch.on_packet(packet->stream_index, t);
            if (realtime) {
                if (pace_origin < 0 || t < pace_origin - 1) {
                    pace_origin = t;
                    pace_start = Clock::now();
                }
                const double due = (t - pace_origin) - std::chrono::duration<double>(Clock::now() - pace_start).count();
                if (due > 0.002 && !ctx.sleep(due)) return;
            }
        }
        if (filter_damage) {
            const bool broken = input->pb && (input->pb->eof_reached || input->pb->error);
            damage.push(input, packet.get(), broken, Clock::now(), ready);
            if (const int64_t dropped = damage.take_dropped(); dropped > 0) {
                dropped_unreported += dropped;
                const auto now = Clock::now();
                if (now - last_damage_report > std::chrono::seconds(10)) {  // said once, not per frame
                    last_damage_report = now;
                    ctx.report("the source lost data: " + std::to_string(std::exchange(dropped_unreported, 0)) +
                               " damaged or cut-short packets dropped (video resumes at its next keyframe)");
                }
            }
            for (auto& p : ready) ctx.segmenter.write(p.get());
            ready.clear();
            continue;
        }
        ctx.segmenter.write(packet.get());
    }
}

}  // namespace hlsrelay
