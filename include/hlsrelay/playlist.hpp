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
// LL-HLS: the media playlist's delta update (RFC 8216bis 6.2.5.1), as Engine::read names it.
inline constexpr std::string_view kDeltaPlaylistName = "index.m3u8?_HLS_skip=YES";

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

// LL-HLS (RFC 8216bis): what a low-latency media playlist says beyond its segments.
struct RenditionReport {
    std::string uri;         // the other rendition's media playlist, relative to this one
    int64_t last_msn = -1;   // its newest segment (the one being cut when it has parts), -1: none
    int last_part = -1;      // its newest part of that segment, -1: none
};
struct LowLatency {
    double part_target = 0;                            // EXT-X-PART-INF:PART-TARGET
    const std::vector<PartPtr>* open_parts = nullptr;  // the parts of the segment being cut
    int64_t next_sequence = 0;                         // the number of the segment being cut
    int64_t next_part = 0;                             // the number of the next part (Part::number)
    bool skip = false;                                 // a delta update (_HLS_skip=YES)
    // The source's media comes in bursts this long (a classic HLS source's segments): PART-HOLD-BACK
    // is then at least that plus kBurstMargin, so that a player does not reach the live edge between
    // two bursts (part_hold_back_for).
    double burst = 0;
    std::vector<RenditionReport> reports;              // EXT-X-RENDITION-REPORT
};

// Seconds as the LL tags print them: at most 5 decimals, `up` rounding up (a target must not be
// exceeded by the durations printed under it).
inline std::string ll_seconds(double v, bool up = false) {
    const double scaled = v * 1e5;
    const double r = up ? std::ceil(scaled - 1e-6) : std::round(scaled);
    char buf[48];
    std::snprintf(buf, sizeof buf, "%.5f", r / 1e5);
    std::string out = buf;
    while (out.size() > 1 && out.back() == '0') out.pop_back();
    if (!out.empty() && out.back() == '.') out.pop_back();
    return out;
}

// LL-HLS: CAN-SKIP-UNTIL is six target durations (the least the spec allows), PART-HOLD-BACK three
// part targets (the least it allows; players start that far from the live edge), or, when the media
// comes in bursts, the longest burst and kBurstMargin to fetch the next one in.
inline constexpr double kBurstMargin = 1.0;
inline double skip_until_for(int target_duration) { return 6.0 * target_duration; }
inline double part_hold_back_for(double part_target, double burst = 0) {
    return burst > 0 ? std::max(3.0 * part_target, burst + kBurstMargin) : 3.0 * part_target;
}
// The part target of a channel whose source's media comes a segment at a time (a classic HLS source,
// `source_target` its target duration). A blocking reload for the next part waits until the next
// source segment is taken: a target duration later, one and a half when a reload finds nothing new
// (RFC 8216 6.3.4). Players give up on a blocking reload after three part targets (hls.js: the more
// of 3 PART-TARGET and 0.8 target durations), so parts are made long enough for that wait and half a
// second to fetch the segment. Short parts would buy nothing: they arrive together anyway.
inline double part_target_for_bursts(double source_target) { return (1.5 * source_target + 0.5) / 3.0; }
// RFC 8216bis 4.4.4.9: a part is at least 85 % of PART-TARGET unless it is INDEPENDENT=YES or the
// last of its segment.
inline constexpr double kMinPartShare = 0.85;

// How many of `listed` a delta update (_HLS_skip=YES) leaves out: the oldest segments that begin
// more than CAN-SKIP-UNTIL seconds before the end of the playlist (`open`: the seconds of parts
// listed after the last segment).
inline size_t skippable_segments(const std::deque<SegmentPtr>& listed, double skip_until, double open = 0) {
    double total = open;
    for (const auto& s : listed) total += s->duration;
    size_t n = 0;
    double start = 0;
    for (const auto& s : listed) {
        if (total - start <= skip_until) break;
        start += s->duration;
        ++n;
    }
    return n;
}

// The live media playlist. `target_duration` is fixed for the channel's life; no ENDLIST while live.
// `prefix` goes before every URI (a playlist served from another directory than its segments).
// fMP4 segments get EXT-X-MAP before the first one and wherever the init section changes (and after
// every discontinuity, RFC 8216 4.3.2.5); gap segments get EXT-X-GAP. With `ll` (LL-HLS), the
// server-control and part-info tags, the parts of the segments in the last three target durations
// and of the segment being cut, a preload hint for the next part and the rendition reports.
inline std::string render_media_playlist(const std::deque<SegmentPtr>& listed, int target_duration,
                                         std::string_view prefix = {}, const LowLatency* ll = nullptr) {
    bool map = false;
    for (const auto& s : listed) map = map || s->init;
    const std::vector<PartPtr> no_parts;
    const std::vector<PartPtr>& open = ll && ll->open_parts ? *ll->open_parts : no_parts;
    for (const auto& p : open) map = map || p->init;
    std::string out;
    out.reserve(160 + listed.size() * (ll ? 480 : 96));
    // EXT-X-SKIP needs version 9; EXT-X-MAP without EXT-X-I-FRAMES-ONLY version 6.
    out += ll ? "#EXTM3U\n#EXT-X-VERSION:9\n" : map ? "#EXTM3U\n#EXT-X-VERSION:6\n" : "#EXTM3U\n#EXT-X-VERSION:3\n";
    out += "#EXT-X-TARGETDURATION:";
    out += std::to_string(target_duration);
    out += '\n';
    if (ll) {
        // The hold-back follows the part target as printed (rounded up), so that it is 3x that one.
        const double part_target = std::stod(ll_seconds(ll->part_target, true));
        out += "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=" + ll_seconds(skip_until_for(target_duration)) +
               ",PART-HOLD-BACK=" + ll_seconds(part_hold_back_for(part_target, ll->burst), true) + '\n';
        out += "#EXT-X-PART-INF:PART-TARGET=" + ll_seconds(part_target, true) + '\n';
    }
    out += "#EXT-X-MEDIA-SEQUENCE:";
    const int64_t first_sequence = listed.empty() ? (ll ? ll->next_sequence : 0) : listed.front()->sequence;
    out += std::to_string(first_sequence);
    out += '\n';
    int64_t discontinuity_sequence = 0;  // of the segment being written
    if (!listed.empty()) {
        const auto& first = *listed.front();
        discontinuity_sequence = first.discontinuity_sequence - (first.discontinuity ? 1 : 0);
        if (discontinuity_sequence > 0) out += "#EXT-X-DISCONTINUITY-SEQUENCE:" + std::to_string(discontinuity_sequence) + '\n';
    }
    double open_seconds = 0;
    for (const auto& p : open) open_seconds += p->duration;
    const size_t skipped = ll && ll->skip ? skippable_segments(listed, skip_until_for(target_duration), open_seconds) : 0;
    if (skipped > 0) out += "#EXT-X-SKIP:SKIPPED-SEGMENTS=" + std::to_string(skipped) + '\n';
    // Parts are listed for the segments that lie wholly in the last three target durations of the
    // playlist (RFC 8216bis 4.4.4.9: older parts should leave it; a segment's parts go together).
    double total = 0;
    for (const auto& s : listed) total += s->duration;
    for (const auto& p : open) total += p->duration;
    const double parts_from = total - 3.0 * target_duration;
    char extinf[64];
    const InitSection* mapped = nullptr;
    auto opening = [&](bool discontinuity, const InitPtr& init, SystemClock::time_point date) {
        if (discontinuity) out += "#EXT-X-DISCONTINUITY\n";
        if (init && (init.get() != mapped || discontinuity)) {
            out += "#EXT-X-MAP:URI=\"";
            out += prefix;
            out += init->name();
            out += "\"\n";
            mapped = init.get();
        }
        if (date != SystemClock::time_point{}) {
            out += "#EXT-X-PROGRAM-DATE-TIME:";
            out += format_date_time(date);
            out += '\n';
        }
    };
    auto part_line = [&](const PartSpan& p, SegmentFormat format) {
        out += "#EXT-X-PART:DURATION=" + ll_seconds(p.duration) + ",URI=\"";
        out += prefix;
        out += part_name(p.number, format);
        out += p.independent ? "\",INDEPENDENT=YES\n" : "\"\n";
    };
    double start = 0;
    size_t i = 0;
    for (const auto& s : listed) {
        const double end = start + s->duration;
        if (i++ < skipped) {  // a delta update leaves it out; what it says is still in force after it
            if (s->init) mapped = nullptr;
            start = end;
            continue;
        }
        opening(s->discontinuity, s->init, s->program_date_time);
        if (ll && start >= parts_from - 1e-9)
            for (const PartSpan& p : s->parts) part_line(p, s->format);
        std::snprintf(extinf, sizeof extinf, "#EXTINF:%.3f,\n", s->duration);
        out += extinf;
        if (s->gap) out += "#EXT-X-GAP\n";
        out += prefix;
        out += s->name();
        out += '\n';
        start = end;
    }
    if (ll) {
        SegmentFormat format = listed.empty() ? SegmentFormat::ts : listed.back()->format;
        for (const auto& p : open) {
            if (p->index == 0) opening(p->discontinuity, p->init, p->program_date_time);
            part_line(PartSpan{0, p->data.size(), p->duration, p->independent, p->number}, p->format);
            format = p->format;
        }
        out += "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"";
        out += prefix;
        out += part_name(ll->next_part, format);
        out += "\"\n";
        for (const auto& r : ll->reports) {
            out += "#EXT-X-RENDITION-REPORT:URI=\"" + r.uri + "\"";
            if (r.last_msn >= 0) out += ",LAST-MSN=" + std::to_string(r.last_msn);
            if (r.last_part >= 0) out += ",LAST-PART=" + std::to_string(r.last_part);
            out += '\n';
        }
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
