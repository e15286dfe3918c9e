// Sources libavformat reads itself: MPEG-TS over HTTP/UDP/SRT, RTMP, RTSP, local files (at their
// native rate and looped on request, so a demo or a test has a live source without a network).
#include "source.hpp"

#include <hlsrelay/stream_id.hpp>

#include <chrono>

namespace hlsrelay {

bool is_local_file(const std::string& url) {
    if (url.rfind("file:", 0) == 0) return true;
    return url.find("://") == std::string::npos && url.find(':') == std::string::npos;
}

namespace {
using Clock = std::chrono::steady_clock;

av::InputPtr open_source(SourceContext& ctx) {
    AVFormatContext* raw = avformat_alloc_context();
    if (!raw) throw std::bad_alloc();
    raw->interrupt_callback = ctx.interrupter.callback();
    av::Options opts;
    if (!is_local_file(ctx.url)) av::add_source_options(opts, ctx.channel.headers, ctx.read_timeout);
    ctx.interrupter.arm(std::chrono::duration<double>(ctx.read_timeout));
    int err = avformat_open_input(&raw, ctx.url.c_str(), nullptr, opts.get());  // frees raw on failure
    if (err < 0) av::throw_av("cannot open", redact_url(ctx.url), err, ctx.interrupter, ctx.read_timeout);
    av::InputPtr input(raw);
    ctx.interrupter.arm(std::chrono::duration<double>(ctx.read_timeout));
    if ((err = avformat_find_stream_info(input.get(), nullptr)) < 0)
        av::throw_av("cannot read the streams of", redact_url(ctx.url), err, ctx.interrupter, ctx.read_timeout);
    return input;
}
}  // namespace

void run_generic_source(SourceContext& ctx) {
    av::InputPtr input = open_source(ctx);
    if (input->iformat && std::string_view(input->iformat->name).find("hls") != std::string_view::npos) {
        // An HLS playlist behind a URL without .m3u8: our own client reads it, not libav's demuxer.
        input.reset();
        run_hls_source(ctx);
        return;
    }
    ctx.segmenter.open_input(input.get(), true, true);
    const bool realtime = ctx.channel.realtime.value_or(is_local_file(ctx.url));
    // Pacing: a packet is passed on no earlier than its timestamp says, measured from the first.
    Clock::time_point pace_start{};
    double pace_origin = -1;
    av::PacketPtr packet = av::make_packet();
    for (;;) {
        if (ctx.interrupter.stop_requested()) return;
        ctx.interrupter.arm(std::chrono::duration<double>(ctx.read_timeout));
        int err = av_read_frame(input.get(), packet.get());
        if (err == AVERROR(EAGAIN)) {
            if (!ctx.sleep(0.01)) return;
            continue;
        }
        if (err == AVERROR_EOF || (err < 0 && input->pb && avio_feof(input->pb) && !ctx.interrupter.timed_out() &&
                                   !ctx.interrupter.stop_requested())) {
            if (!ctx.channel.loop) throw av::SourceError("the source ended: " + redact_url(ctx.url));
            ctx.segmenter.restart_timeline();
            input = open_source(ctx);
            ctx.segmenter.open_input(input.get(), false, true);
            pace_origin = -1;
            continue;
        }
        if (err < 0) av::throw_av("read failed for", redact_url(ctx.url), err, ctx.interrupter, ctx.read_timeout);
        ctx.bytes_in.fetch_add(packet->size, std::memory_order_relaxed);
        if (realtime && packet->dts != AV_NOPTS_VALUE) {
            const AVStream* st = input->streams[packet->stream_index];
            const double t = static_cast<double>(packet->dts) * av_q2d(st->time_base);
            if (pace_origin < 0 || t < pace_origin - 1) {
                pace_origin = t;
                pace_start = Clock::now();
            }
            const double due = (t - pace_origin) - std::chrono::duration<double>(Clock::now() - pace_start).count();
            if (due > 0.002 && !ctx.sleep(due)) return;
        }
        ctx.segmenter.write(packet.get());
    }
}

}  // namespace hlsrelay
