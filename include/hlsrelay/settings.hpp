// The engine's settings, their defaults and the ranges they may take: one home, read by the engine,
// the loaders, the server's command line and the bindings.
#pragma once

#include <hlsrelay/channel.hpp>
#include <hlsrelay/log.hpp>
#include <hlsrelay/text.hpp>

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace hlsrelay {

// The network tuner the engine presents to media servers (an HDHomeRun, include/hlsrelay/tuner.hpp).
struct TunerSettings {
    std::string name = "hlsrelay";  // FriendlyName, as Plex and Jellyfin list the tuner
    std::string device_id;          // 8 hex digits valid by HDHomeRun's checksum; empty: derived from `seed`
    std::string seed;               // the device id, auth and UPnP UDN derive from it; empty: the host name
    int tuner_count = 0;            // TunerCount: streams a client may hold at once; 0: one per channel (1..255)
};

inline constexpr double kGuideRefreshInterval = 12 * 3600.0;  // seconds between two fetches of a good guide

struct EngineSettings {
    HlsSettings hls;                 // defaults for every channel
    std::string hls_dir;             // mirror segments and playlists to {hls_dir}/{id}/; empty: memory only
    double read_timeout = 10.0;      // seconds a blocking source read may take before it counts as stalled
    double stall_timeout = 0;        // HLS: playlist not advancing this long is a stall; 0: 3 target durations
    double reconnect_min = 0.5;      // first reconnect delay, seconds; doubles up to reconnect_max
    double reconnect_max = 30.0;
    FetchLimits limits;              // caps and deadlines of every upstream fetch (channels may override)
    int live_start_segments = 3;     // HLS: start this many segments back from the live edge (RFC 8216 6.3.3)
    LogLevel log_level = LogLevel::Warn;
    LogCallback log;                 // unset: log to stderr at log_level and above
    // Segments are large, short-lived allocations; the C library keeps what they free in its heaps.
    // Every this many seconds the engine hands free heap pages back to the OS (glibc's malloc_trim,
    // process-wide, releases free memory only). 0: never.
    double release_memory_interval = 10.0;
    // A channel's last_error is cleared (kept as previous_error) once the channel has been publishing
    // this many seconds without a new error. Repeated warnings of a channel are logged once per state
    // change and then summarised at most once per this interval too.
    double error_clear_after = 30.0;
    TunerSettings tuner;
    // XMLTV guides (GET /epg.xml): these http(s) URLs, then the url-tvg of every list loaded, fetched in
    // the background at start and every guide_refresh_interval seconds, filtered to the registry's
    // channels. Failed fetches are retried with backoff, keeping the previous guide.
    std::vector<std::string> guide_urls;
    double guide_refresh_interval = kGuideRefreshInterval;
    // Runtime channel management (add, update, remove, enable, disable) is recorded in this file and
    // applied again over every list loaded (include/hlsrelay/state.hpp); empty: changes last until exit.
    // Written atomically (temp file, fsync, rename) with mode 0600: it holds sources and headers.
    std::string state_file;
};

// The largest request body the management endpoints take (one channel as JSON); more is 413.
inline constexpr std::size_t kMaxApiBodyBytes = std::size_t{64} << 10;
// The largest state file (EngineSettings::state_file) the engine reads; a larger one is refused.
inline constexpr std::size_t kMaxStateFileBytes = std::size_t{16} << 20;

// Accepted ranges of HlsSettings, engine-wide (Engine refuses others) and per channel (HlsOverrides:
// the loaders and Registry::add/update).
inline constexpr double kMinSegmentDuration = 0.5, kMaxSegmentDuration = 60;
inline constexpr int kMinMaxSegments = 1, kMaxMaxSegments = 100;
inline constexpr double kMinCleanupInterval = 0.1, kMaxCleanupInterval = 3600;
// LL-HLS parts: a part is at most the segment duration (a longer setting is cut to it).
inline constexpr double kMinPartDuration = 0.1, kMaxPartDuration = 5;
// Accepted ranges of FetchLimits, engine-wide (Engine refuses others) and per channel (the loaders and
// Registry::add/update). A deadline may also be 0: automatic (see FetchLimits).
inline constexpr std::int64_t kMinMaxPlaylistBytes = std::int64_t{4} << 10, kMaxMaxPlaylistBytes = std::int64_t{1} << 30;
inline constexpr std::int64_t kMinMaxSegmentBytes = std::int64_t{64} << 10, kMaxMaxSegmentBytes = std::int64_t{4} << 30;
inline constexpr int kMinMaxRedirects = 0, kMaxMaxRedirects = 20;
inline constexpr double kMinFetchDeadline = 0.5, kMaxFetchDeadline = 3600;

// The problems below are "" when all is well, else one sentence naming the field.

inline std::string range_problem(std::string_view field, double value, double lo, double hi) {
    if (value >= lo && value <= hi) return {};  // written so that NaN fails
    return std::string(field) + " " + format_number(value) + " is outside [" + format_number(lo) + ", " +
           format_number(hi) + "]";
}

inline std::string renditions_problem(std::string_view renditions) {
    std::string why;
    if (parse_rendition_selection(renditions, &why)) return {};
    return why + ", not '" + std::string(renditions.substr(0, 80)) + "'";
}

inline std::string overrides_problem(const HlsOverrides& o) {
    std::string p;
    if (o.segment_duration) p = range_problem("segment_duration", *o.segment_duration, kMinSegmentDuration, kMaxSegmentDuration);
    if (p.empty() && o.max_segments) p = range_problem("max_segments", *o.max_segments, kMinMaxSegments, kMaxMaxSegments);
    if (p.empty() && o.cleanup_interval)
        p = range_problem("cleanup_interval", *o.cleanup_interval, kMinCleanupInterval, kMaxCleanupInterval);
    if (p.empty() && o.renditions) p = renditions_problem(*o.renditions);
    if (p.empty() && o.part_duration) p = range_problem("part_duration", *o.part_duration, kMinPartDuration, kMaxPartDuration);
    return p;
}

// The engine-wide HLS settings: every field checked as if a channel overrode it.
inline std::string hls_problem(const HlsSettings& h) {
    return overrides_problem(HlsOverrides{h.segment_duration, h.max_segments, h.cleanup_interval, h.container, h.renditions,
                                          h.low_latency, h.part_duration});
}

inline std::string deadline_problem(std::string_view field, double value) {
    if (value == 0) return {};
    std::string p = range_problem(field, value, kMinFetchDeadline, kMaxFetchDeadline);
    return p.empty() ? p : p + " (or 0: automatic)";
}

inline std::string limits_problem(const FetchLimitOverrides& o) {
    std::string p;
    if (o.max_playlist_bytes)
        p = range_problem("max_playlist_bytes", static_cast<double>(*o.max_playlist_bytes),
                          static_cast<double>(kMinMaxPlaylistBytes), static_cast<double>(kMaxMaxPlaylistBytes));
    if (p.empty() && o.max_segment_bytes)
        p = range_problem("max_segment_bytes", static_cast<double>(*o.max_segment_bytes),
                          static_cast<double>(kMinMaxSegmentBytes), static_cast<double>(kMaxMaxSegmentBytes));
    if (p.empty() && o.max_redirects) p = range_problem("max_redirects", *o.max_redirects, kMinMaxRedirects, kMaxMaxRedirects);
    if (p.empty() && o.playlist_deadline) p = deadline_problem("playlist_deadline", *o.playlist_deadline);
    if (p.empty() && o.segment_deadline) p = deadline_problem("segment_deadline", *o.segment_deadline);
    return p;
}

// The engine-wide settings: every field checked as if a channel overrode it.
inline std::string tuner_problem(const TunerSettings& t) {
    if (t.name.empty() || t.name.size() > 64 || std::any_of(t.name.begin(), t.name.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20; }))
        return "tuner name must be 1-64 bytes without control characters";
    if (t.tuner_count < 0 || t.tuner_count > 255) return "tuner_count must be within 0..255 (0: one per channel)";
    if (t.seed.size() > 256) return "tuner seed must be at most 256 bytes";
    if (!t.device_id.empty()) {
        bool hex = t.device_id.size() == 8;
        for (char c : t.device_id) hex = hex && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'));
        if (!hex) return "device_id must be 8 hex digits";
    }
    return {};
}

inline std::string limits_problem(const FetchLimits& l) {
    return limits_problem(FetchLimitOverrides{l.max_playlist_bytes, l.max_segment_bytes, l.max_redirects,
                                              l.playlist_deadline, l.segment_deadline});
}

}  // namespace hlsrelay
