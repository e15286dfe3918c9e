#include "cut/ts_remux.hpp"

#include "common/av_util.hpp"

#include <memory>
#include <stdexcept>

namespace hlsrelay {

namespace {
constexpr AVRational kTimeBase90k{1, 90000};

[[noreturn]] void fail(const std::string& what, int err) {
    throw std::runtime_error(what + ": " + av::error_string(err));
}

// One input opened from memory (the bytes outlive it).
struct OpenInput {
    std::string joined;  // fMP4: init section + media segment
    std::unique_ptr<av::MemoryReader> reader;
    av::InputPtr ctx;
};

void open_input(OpenInput& in, const RemuxInput& source) {
    std::string_view bytes = source.media;
    if (source.init) {
        in.joined.reserve(source.init->size() + source.media.size());
        in.joined.append(*source.init).append(source.media);
        bytes = in.joined;
    }
    in.reader = std::make_unique<av::MemoryReader>(bytes);
    AVFormatContext* raw = avformat_alloc_context();
    if (!raw) throw std::bad_alloc();
    raw->pb = in.reader->io();
    raw->flags |= AVFMT_FLAG_CUSTOM_IO;
    av::Options opts;
    opts.set("protocol_whitelist", "");  // bytes from memory: nothing else may be opened
    const int err = avformat_open_input(&raw, "", av_find_input_format(source.init ? "mp4" : "mpegts"), opts.get());
    if (err < 0) fail(source.init ? "cannot read the fMP4 segment" : "cannot read the TS segment", err);  // raw freed
    in.ctx.reset(raw);
    if (!source.init) {
        const int e = avformat_find_stream_info(in.ctx.get(), nullptr);
        if (e < 0) fail("cannot read the TS segment's streams", e);
    }
}
}  // namespace

std::string remux_to_ts(const std::vector<RemuxInput>& inputs) {
    std::vector<OpenInput> opened(inputs.size());
    for (size_t i = 0; i < inputs.size(); ++i) open_input(opened[i], inputs[i]);

    av::MemoryWriter writer;
    AVFormatContext* raw = nullptr;
    int err = avformat_alloc_output_context2(&raw, nullptr, "mpegts", nullptr);
    if (err < 0 || !raw) fail("cannot create the MPEG-TS muxer", err);
    av::OutputPtr muxer(raw);
    muxer->pb = writer.io();
    muxer->flags |= AVFMT_FLAG_CUSTOM_IO;
    muxer->max_interleave_delta = 0;  // every stream's packets in DTS order, however long one lags
    muxer->avoid_negative_ts = AVFMT_AVOID_NEG_TS_DISABLED;  // the same timestamps whatever the segment

    // map[i][s]: input i's stream s -> output stream, -1: left out.
    std::vector<std::vector<int>> map(inputs.size());
    for (size_t i = 0; i < inputs.size(); ++i) {
        AVFormatContext* ctx = opened[i].ctx.get();
        map[i].assign(ctx->nb_streams, -1);
        for (unsigned s = 0; s < ctx->nb_streams; ++s) {
            const AVStream* in = ctx->streams[s];
            const AVMediaType type = in->codecpar->codec_type;
            if (type != AVMEDIA_TYPE_VIDEO && type != AVMEDIA_TYPE_AUDIO) continue;
            if (inputs[i].video_only && type != AVMEDIA_TYPE_VIDEO) continue;
            if (in->codecpar->codec_id == AV_CODEC_ID_NONE) continue;
            AVStream* out = avformat_new_stream(muxer.get(), nullptr);
            if (!out) throw std::bad_alloc();
            if ((err = avcodec_parameters_copy(out->codecpar, in->codecpar)) < 0) fail("cannot copy codec parameters", err);
            out->codecpar->codec_tag = 0;
            out->time_base = kTimeBase90k;
            out->disposition = in->disposition;
            if (AVDictionaryEntry* lang = av_dict_get(in->metadata, "language", nullptr, 0))
                av_dict_set(&out->metadata, "language", lang->value, 0);
            map[i][s] = out->index;
        }
    }
    if (muxer->nb_streams == 0) throw std::runtime_error("no video or audio stream to carry");
    av::Options opts;
    if ((err = avformat_write_header(muxer.get(), opts.get())) < 0) fail("cannot start the MPEG-TS muxer", err);

    av::PacketPtr packet = av::make_packet();
    for (size_t i = 0; i < inputs.size(); ++i) {
        AVFormatContext* ctx = opened[i].ctx.get();
        while ((err = av_read_frame(ctx, packet.get())) >= 0) {
            const int s = packet->stream_index;
            const int o = s >= 0 && static_cast<size_t>(s) < map[i].size() ? map[i][static_cast<size_t>(s)] : -1;
            if (o < 0 || (packet->dts == AV_NOPTS_VALUE && packet->pts == AV_NOPTS_VALUE)) {
                av_packet_unref(packet.get());
                continue;
            }
            av_packet_rescale_ts(packet.get(), ctx->streams[s]->time_base, muxer->streams[o]->time_base);
            packet->stream_index = o;
            packet->pos = -1;
            if ((err = av_interleaved_write_frame(muxer.get(), packet.get())) < 0) fail("cannot mux a packet", err);
        }
        if (err != AVERROR_EOF) fail("cannot read a packet", err);
    }
    if ((err = av_write_trailer(muxer.get())) < 0) fail("cannot finish the MPEG-TS segment", err);
    std::string out = writer.take();
    if (out.empty()) throw std::runtime_error("the segment has no packets");
    return out;
}

void continue_counters(std::string& ts, std::map<int, int>& next) {
    constexpr size_t kPacket = 188;
    for (size_t at = 0; at + kPacket <= ts.size(); at += kPacket) {
        auto* p = reinterpret_cast<unsigned char*>(ts.data() + at);
        if (p[0] != 0x47) return;
        const int pid = ((p[1] & 0x1f) << 8) | p[2];
        if (pid == 0x1fff) continue;
        const bool payload = (p[3] & 0x10) != 0;
        const int own = p[3] & 0x0f;
        if (!payload) continue;
        auto it = next.find(pid);
        const int cc = it == next.end() ? own : it->second;
        p[3] = static_cast<unsigned char>((p[3] & 0xf0) | cc);
        next[pid] = (cc + 1) & 0x0f;
    }
}

}  // namespace hlsrelay
