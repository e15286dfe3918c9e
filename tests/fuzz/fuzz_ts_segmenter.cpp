// libFuzzer target: corrupted MPEG-TS through the engine's ingest path for HLS sources. Each source
// segment the engine fetches is demuxed from memory (av::MemoryReader + libavformat's mpegts demuxer)
// and its packets go to the Segmenter, which repairs timestamps, cuts and muxes output segments. This
// target repeats that sequence (src/ingest/hls_source.cpp, demux()) over the public interfaces of av_util and
// the Segmenter, without threads, sockets or timers, so that libFuzzer runs it thousands of times a
// second; a test replays the corpus through the same code in the normal and sanitizer builds.
//
// Input: byte 0 holds flags (bit 0: the second source segment follows a discontinuity; bit 1: the
// timeline restarts between them, as a looping file does; bit 2: each segment is first offered to the
// TS passthrough, Segmenter::write_ts_segment, as the HLS source does, and demuxed only when it
// declines; bit 3: the source says EXT-X-INDEPENDENT-SEGMENTS), bytes 1-2 where the rest is split
// into two source segments. Output segments must be whole MPEG-TS packets that start with a sync byte. Exceptions
// are the Segmenter's way to refuse a source, as in the worker; crashes, sanitizer reports and
// malformed output are the failures.
#include "common/av_util.hpp"
#include "cut/segmenter.hpp"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

namespace {

void check(const hlsrelay::CutSegment& s) {
    if (s.data.empty() || s.data.size() % 188 != 0 || static_cast<unsigned char>(s.data[0]) != 0x47) std::abort();
    if (!std::isfinite(s.duration) || s.duration < 0) std::abort();
}

// One source segment: what the HLS source does with a fetched segment's bytes.
void demux(hlsrelay::Segmenter& segmenter, const std::string& data, bool discontinuity, bool& probed_once) {
    hlsrelay::av::MemoryReader reader(data);
    AVFormatContext* raw = avformat_alloc_context();
    if (!raw) return;
    raw->pb = reader.io();
    raw->flags |= AVFMT_FLAG_CUSTOM_IO;
    const AVInputFormat* format = data.size() >= 188 && data[0] == 0x47 ? av_find_input_format("mpegts") : nullptr;
    if (avformat_open_input(&raw, "", format, nullptr) < 0) return;  // frees raw on failure
    hlsrelay::av::InputPtr input(raw);
    const bool probe = discontinuity || !probed_once || !segmenter.same_layout(input.get());
    if (probe) {
        if (avformat_find_stream_info(input.get(), nullptr) < 0) return;
        probed_once = true;
    }
    segmenter.open_input(input.get(), discontinuity, probe);
    hlsrelay::av::PacketPtr packet = hlsrelay::av::make_packet();
    while (av_read_frame(input.get(), packet.get()) >= 0) segmenter.write(packet.get());
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    av_log_set_level(AV_LOG_QUIET);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 3) return 0;
    const uint8_t flags = data[0];
    const std::string body(reinterpret_cast<const char*>(data) + 3, size - 3);
    const std::size_t split = body.empty() ? 0 : (static_cast<std::size_t>(data[1]) << 8 | data[2]) % (body.size() + 1);
    const std::string first = body.substr(0, split), second = body.substr(split);

    hlsrelay::Segmenter segmenter(1.0, [](hlsrelay::CutSegment&& s) { check(s); });
    bool probed_once = false;
    // As the channel worker does: a source that throws (SourceError, or the muxer refusing the
    // streams) ends this connection; what was cut is flushed and the next source opens with a
    // discontinuity on the same Segmenter.
    bool failed = false;
    auto attempt = [&](const std::string& bytes, bool discontinuity) {
        try {
            if (flags & 4) {  // src/ingest/hls_source.cpp: MPEG-TS is cut as it is, anything else demuxed
                std::string copy = bytes;
                if (segmenter.write_ts_segment(copy, discontinuity || failed, (flags & 8) != 0)) {
                    failed = false;
                    return;
                }
            }
            demux(segmenter, bytes, discontinuity || failed, probed_once);
            failed = false;
        } catch (const std::exception&) {
            failed = true;
            try {
                segmenter.flush();
            } catch (const std::exception&) {
            }
        }
    };
    attempt(first, true);
    if (flags & 2) segmenter.restart_timeline();
    if (!second.empty()) attempt(second, (flags & 1) != 0);
    try {
        segmenter.flush();
    } catch (const std::exception&) {
    }
    return 0;
}
