// Test helpers that read MPEG-TS bytes back through libavformat: see ts_probe.hpp.
#include "ts_probe.hpp"

#include "av_util.hpp"

#include <algorithm>
#include <sstream>

namespace hlsrelay::test {

bool TsProbe::first_video_key() const {
    for (const auto& p : packets)
        if (p.type == AVMEDIA_TYPE_VIDEO) return p.key;
    return true;
}

double TsProbe::video_span() const {
    const AVMediaType want = video_streams > 0 ? AVMEDIA_TYPE_VIDEO : AVMEDIA_TYPE_AUDIO;
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    for (const auto& p : packets) {
        if (p.type != want || p.pts == AV_NOPTS_VALUE) continue;
        lo = std::min(lo, p.pts);
        hi = std::max(hi, p.pts);
    }
    return hi >= lo ? static_cast<double>(hi - lo) / 90000.0 : 0;
}

TsProbe probe_ts(const std::string& bytes) {
    TsProbe out;
    if (bytes.size() >= 188 && static_cast<uint8_t>(bytes[0]) == 0x47)
        out.starts_with_pat = ((static_cast<uint8_t>(bytes[1]) & 0x1f) << 8 | static_cast<uint8_t>(bytes[2])) == 0;
    av::MemoryReader reader(bytes);
    AVFormatContext* raw = avformat_alloc_context();
    raw->pb = reader.io();
    raw->flags |= AVFMT_FLAG_CUSTOM_IO;
    int err = avformat_open_input(&raw, "", av_find_input_format("mpegts"), nullptr);
    if (err < 0) {
        out.error = "open: " + av::error_string(err);
        return out;
    }
    av::InputPtr in(raw);
    if ((err = avformat_find_stream_info(in.get(), nullptr)) < 0) {
        out.error = "find_stream_info: " + av::error_string(err);
        return out;
    }
    for (unsigned i = 0; i < in->nb_streams; ++i) {
        if (in->streams[i]->codecpar->codec_type == AVMEDIA_TYPE_VIDEO) ++out.video_streams;
        if (in->streams[i]->codecpar->codec_type == AVMEDIA_TYPE_AUDIO) ++out.audio_streams;
    }
    av::PacketPtr pkt = av::make_packet();
    while (av_read_frame(in.get(), pkt.get()) >= 0) {
        const AVStream* st = in->streams[pkt->stream_index];
        TsPacket p;
        p.stream = pkt->stream_index;
        p.type = st->codecpar->codec_type;
        const AVRational tb90{1, 90000};
        if (pkt->pts != AV_NOPTS_VALUE) p.pts = av_rescale_q(pkt->pts, st->time_base, tb90);
        if (pkt->dts != AV_NOPTS_VALUE) p.dts = av_rescale_q(pkt->dts, st->time_base, tb90);
        p.key = (pkt->flags & AV_PKT_FLAG_KEY) != 0;
        out.packets.push_back(p);
        av_packet_unref(pkt.get());
    }
    out.ok = true;
    return out;
}

std::vector<std::string> playlist_uris(const std::string& playlist) {
    std::vector<std::string> uris;
    std::istringstream in(playlist);
    std::string line;
    while (std::getline(in, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (!line.empty() && line[0] != '#') uris.push_back(line);
    }
    return uris;
}

}  // namespace hlsrelay::test
