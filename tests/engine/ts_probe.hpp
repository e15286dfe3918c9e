// Test helpers that read MPEG-TS bytes back through libavformat: what a player would see.
#pragma once

extern "C" {
#include <libavformat/avformat.h>
}

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace hlsrelay::test {

struct TsPacket {
    int stream = 0;
    AVMediaType type = AVMEDIA_TYPE_UNKNOWN;
    int64_t pts = AV_NOPTS_VALUE;  // 90 kHz
    int64_t dts = AV_NOPTS_VALUE;
    int64_t duration = 0;  // 90 kHz, as the demuxer tells it (AAC: 1024 samples)
    bool key = false;
};

struct TsProbe {
    bool ok = false;
    std::string error;
    bool starts_with_pat = false;  // first TS packet is PID 0
    int video_streams = 0, audio_streams = 0;
    std::vector<TsPacket> packets;
    // The first video packet's key flag (true when there is no video).
    bool first_video_key() const;
    // Presentation span of the video (or first audio) stream in seconds.
    double video_span() const;
    // The media of the video (or, audio only, the first audio) stream: first PTS to the end of its
    // last frame (the last PTS plus that frame's duration), in seconds; 0 when there is none.
    double media_duration() const;
    // First and last DTS (90 kHz) of stream `stream`; AV_NOPTS_VALUE when it has none.
    int64_t first_dts(int stream) const;
    int64_t last_dts(int stream) const;
};

// The same bytes at the TS packet level, as a strict player's demuxer checks them.
struct TsLayout {
    int packets = 0;
    int pmt_pid = -1;
    std::vector<int> pat_at, pmt_at;        // packet indices of the PAT and PMT packets
    int cc_errors = 0;                       // continuity counter breaks, every PID (RFC-less: ISO 13818-1 2.4.3.3)
    std::vector<std::string> cc_error_text;  // "pid 256 at packet 40: 3 after 1" (the first few)
    std::map<int, bool> first_has_pusi;      // per elementary PID: does its first packet start a PES?
    int first_pes_pid = -1;                  // the PID of the first packet that is not PAT/PMT/SDT
    // Whether the first video PES (H.264 or HEVC, by the PMT) is a keyframe with its parameter sets:
    // H.264 SPS + PPS + IDR, HEVC VPS + SPS + PPS + IRAP. -1: no video PES; 0: no; 1: yes.
    int first_video_clean = -1;
};
TsLayout scan_ts(const std::string& bytes);

TsProbe probe_ts(const std::string& bytes);
// `ffmpeg -v error -i <bytes> -f null -` on the bytes (written to a file under the media root):
// what it prints (empty: decoded cleanly), or why it could not run.
std::string decode_errors(const std::string& bytes);

// What is wrong with a continuous TS (api::TsStream's chunks joined, as a player reads them); empty:
// nothing. Checks: a PAT first (or right behind libav's SDT), no continuity counter break anywhere,
// `video` video and `audio` audio streams, the video (else audio) DTS rising by at most one second at
// each step across the whole stream, segment boundaries included.
std::string ts_stream_problems(const std::string& stream, int video, int audio);

// Every listed segment URI of a media playlist, in order.
std::vector<std::string> playlist_uris(const std::string& playlist);

}  // namespace hlsrelay::test
