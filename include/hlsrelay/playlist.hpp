// Renders the HLS playlists of a channel (RFC 8216): the multivariant `master.m3u8` that players
// open first and the live media playlist over the window's listed segments.
#pragma once

#include <hlsrelay/window.hpp>

#include <cmath>
#include <cstdio>
#include <ctime>
#include <string>
#include <vector>

namespace hlsrelay {

inline constexpr std::string_view kMasterPlaylistName = "master.m3u8";
inline constexpr std::string_view kMediaPlaylistName = "index.m3u8";

// What the master playlist says about the one variant: taken from the stream itself.
struct StreamInfo {
    std::string codecs;          // RFC 6381, e.g. "avc1.64001f,mp4a.40.2"
    std::string video_codec;     // libav names, e.g. "h264"
    std::vector<std::string> audio_codecs;
    int width = 0, height = 0;
    double frame_rate = 0;
    int64_t peak_bandwidth = 0;     // bits/s of the largest segment
    int64_t average_bandwidth = 0;  // bits/s over the listed segments
    bool operator==(const StreamInfo&) const = default;
};

// "2026-11-24T04:32:30.123Z"
inline std::string format_date_time(SystemClock::time_point t) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
    const std::time_t secs = static_cast<std::time_t>(ms / 1000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[96];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
    return buf;
}

// RFC 8216 4.3.3.1: every EXTINF rounded to the nearest integer must be <= the target duration.
inline int target_duration_for(double segment_seconds) {
    return std::max(1, static_cast<int>(std::lround(segment_seconds)));
}

// The live media playlist. `target_duration` is fixed for the channel's life; no ENDLIST while live.
// `prefix` goes before every URI (a playlist served from another directory than its segments).
// fMP4 segments get EXT-X-MAP before the first one and wherever the init section changes (and after
// every discontinuity, RFC 8216 4.3.2.5); gap segments get EXT-X-GAP.
inline std::string render_media_playlist(const std::deque<SegmentPtr>& listed, int target_duration,
                                         std::string_view prefix = {}) {
    bool map = false;
    for (const auto& s : listed) map = map || s->init;
    std::string out;
    out.reserve(160 + listed.size() * 96);
    out += map ? "#EXTM3U\n#EXT-X-VERSION:6\n" : "#EXTM3U\n#EXT-X-VERSION:3\n";
    out += "#EXT-X-TARGETDURATION:";
    out += std::to_string(target_duration);
    out += "\n#EXT-X-MEDIA-SEQUENCE:";
    out += std::to_string(listed.empty() ? 0 : listed.front()->sequence);
    out += '\n';
    if (!listed.empty()) {
        const auto& first = *listed.front();
        const int64_t header = first.discontinuity_sequence - (first.discontinuity ? 1 : 0);
        if (header > 0) out += "#EXT-X-DISCONTINUITY-SEQUENCE:" + std::to_string(header) + '\n';
    }
    char extinf[64];
    const InitSection* mapped = nullptr;
    for (const auto& s : listed) {
        if (s->discontinuity) out += "#EXT-X-DISCONTINUITY\n";
        if (s->init && (s->init.get() != mapped || s->discontinuity)) {
            out += "#EXT-X-MAP:URI=\"";
            out += prefix;
            out += s->init->name();
            out += "\"\n";
            mapped = s->init.get();
        }
        if (s->program_date_time != SystemClock::time_point{}) {
            out += "#EXT-X-PROGRAM-DATE-TIME:";
            out += format_date_time(s->program_date_time);
        }
        std::snprintf(extinf, sizeof extinf, "\n#EXTINF:%.3f,\n", s->duration);
        out += extinf;
        if (s->gap) out += "#EXT-X-GAP\n";
        out += prefix;
        out += s->name();
        out += '\n';
    }
    return out;
}

// The multivariant playlist: one variant, described by what was measured on the stream.
inline std::string render_master_playlist(const StreamInfo& info) {
    std::string out = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-STREAM-INF:BANDWIDTH=";
    out += std::to_string(std::max<int64_t>(info.peak_bandwidth, 1));
    if (info.average_bandwidth > 0) out += ",AVERAGE-BANDWIDTH=" + std::to_string(info.average_bandwidth);
    if (!info.codecs.empty()) out += ",CODECS=\"" + info.codecs + "\"";
    if (info.width > 0 && info.height > 0)
        out += ",RESOLUTION=" + std::to_string(info.width) + "x" + std::to_string(info.height);
    if (info.frame_rate > 0) {
        char fr[32];
        std::snprintf(fr, sizeof fr, ",FRAME-RATE=%.3f", info.frame_rate);
        out += fr;
    }
    out += '\n';
    out += kMediaPlaylistName;
    out += '\n';
    return out;
}

}  // namespace hlsrelay
