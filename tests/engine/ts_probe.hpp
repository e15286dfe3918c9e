// Test helpers that read MPEG-TS bytes back through libavformat: what a player would see.
#pragma once

extern "C" {
#include <libavformat/avformat.h>
}

#include <cstdint>
#include <string>
#include <vector>

namespace hlsrelay::test {

struct TsPacket {
    int stream = 0;
    AVMediaType type = AVMEDIA_TYPE_UNKNOWN;
    int64_t pts = AV_NOPTS_VALUE;  // 90 kHz
    int64_t dts = AV_NOPTS_VALUE;
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
};

TsProbe probe_ts(const std::string& bytes);
// Every listed segment URI of a media playlist, in order.
std::vector<std::string> playlist_uris(const std::string& playlist);

}  // namespace hlsrelay::test
