// The engine's settings, their defaults and the ranges they may take: one home, read by the engine,
// the loaders, the server's command line and the bindings.
#pragma once

#include <hlsrelay/channel.hpp>
#include <hlsrelay/log.hpp>
#include <hlsrelay/stream_id.hpp>
#include <hlsrelay/text.hpp>

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hlsrelay {

// The network tuner the engine presents to media servers (an HDHomeRun, include/hlsrelay/tuner.hpp).
struct TunerSettings {
    std::string name = "hlsrelay";  // FriendlyName, as Plex and Jellyfin list the tuner
    std::string device_id;          // 8 hex digits valid by HDHomeRun's checksum; empty: derived from `seed`
    std::string seed;               // the device id, auth and UPnP UDN derive from it; empty: the host name
    int tuner_count = 0;            // TunerCount: streams a client may hold at once; 0: one per channel, at most a provider's limit for its channels (tuner_count())
};

// An IPTV account: its channels share `max_connections` upstream connections (a running channel holds
// one). A channel belongs to the provider its `provider` field names, else to the first provider one
// of whose `hosts` is the host (or host:port) of the channel's first URL; else to none (no limit).
struct ProviderSettings {
    std::string name;                // as channels' `provider` fields and the status name it
    int max_connections = 0;         // 0: no limit
    std::vector<std::string> hosts;  // "line.example.tv" or "line.example.tv:8080", lowercase
};

// A start past a provider's limit first reclaims the connection of an on-demand channel nobody has
// read for kProviderReclaimIdle seconds, else waits up to kProviderWait seconds for one to be
// released, else fails (ErrorCode::Unavailable: HTTP 503 naming the channels holding them).
inline constexpr double kProviderReclaimIdle = 10.0;
inline constexpr double kProviderWait = 3.0;
// Seconds a viewer's first request to a channel it starts on demand (its playlist, its continuous TS)
// waits for the channel's first segment before a 503: the demo server's and FastAPI's.
inline constexpr double kOnDemandWait = 10.0;
inline constexpr int kMaxProviderConnections = 10000;
// The continuous TS of a channel that is not plain MPEG-TS (fMP4, a presentation): each segment is
// remuxed once and shared by every viewer (Engine::read_ts_segment). A channel keeps its newest
// kTsViewSegments such segments, made on the first viewer's read and dropped kTsViewIdle seconds after
// the last one (or when the channel stops).
inline constexpr int kTsViewSegments = 4;
inline constexpr double kTsViewIdle = 30.0;
// Failover across a channel's source URLs (ChannelConfig::urls; src/engine/failover.hpp applies it).
// A URL that failed `attempts_per_url` times in a row, or was refused (HTTP 401/403/404/410, a refused
// scheme), cools down `cooldown` seconds (doubled at each repeat, up to `cooldown_max`) while the next
// URL plays; when every URL cools down, the one whose cooldown ends first is tried when it ends. While
// a backup plays, the primary (the first URL) is probed every `probe_interval` seconds once its cooldown
// is over; after `failback_after` seconds of healthy probes the channel returns to it at a segment
// boundary (0: never fail back). A channel with one URL only reconnects with backoff, as ever.
struct FailoverSettings {
    int attempts_per_url = 2;
    double cooldown = 30.0;
    double cooldown_max = 600.0;
    double probe_interval = 15.0;
    double failback_after = 60.0;
};

inline constexpr int kMinAttemptsPerUrl = 1, kMaxAttemptsPerUrl = 100;
inline constexpr double kMinFailoverSeconds = 0.1, kMaxFailoverSeconds = 86400;

inline constexpr double kGuideRefreshInterval = 12 * 3600.0;  // seconds between two fetches of a good guide

// Channel lists fetched by URL (EngineSettings::channel_lists): how often, how large, how long.
inline constexpr double kListRefreshInterval = 6 * 3600.0;  // seconds between two fetches of a good list
inline constexpr double kMinListRefreshInterval = 1, kMaxListRefreshInterval = 366 * 86400.0;
inline constexpr double kListMinFetchInterval = 30;  // no list is fetched more often (at most refresh interval)
inline constexpr double kListRetryFirst = 60;        // first retry of a failed list; doubles up to kListRetryMax
inline constexpr double kListRetryMax = 3600;        // (a retry never waits longer than the refresh interval)
inline constexpr double kListDeadline = 120;         // seconds one whole list fetch may take
inline constexpr double kListReadTimeout = 30;       // seconds one wait for the provider may take
// A provider's m3u_plus (live, films and series) runs to tens of MiB: the body as decoded.
inline constexpr std::int64_t kMaxListBytes = std::int64_t{64} << 20;
inline constexpr std::int64_t kMinMaxListBytes = std::int64_t{4} << 10, kMaxMaxListBytes = std::int64_t{1} << 30;
// Channels of different lists with one tvg-id are one channel, the others' URLs its backups: up to
// this many URLs in all (a list cannot grow another's channel without bound).
inline constexpr std::size_t kMaxMergedSources = 16;

// Pushing what a channel publishes to an HTTP origin (EngineSettings::push_url), as `ffmpeg -f hls
// -method PUT` does: segments (and fMP4 init sections) are PUT when published, playlists after the
// segments they name, segments that left the window DELETEd after their RFC 8216 grace. A small
// engine-wide pool of kPushThreads threads serves every channel's queue, one request of a channel at a
// time (its order is the order of publishing). A channel's queue holds at most max_queue_items requests
// and max_queue_bytes of bodies; past that its oldest pending segment is dropped (and the playlists
// naming it are held back until it has left the window), so a slow or dead origin never stalls ingest.
// A request that fails (no answer, a timeout, a 5xx, 408 or 429) is tried up to `attempts` times,
// waiting retry_first seconds doubled each time up to retry_max; each attempt may take read_timeout
// seconds per wait (connecting included) and `deadline` seconds in all.
struct PushSettings {
    int max_queue_items = 256;
    std::int64_t max_queue_bytes = std::int64_t{64} << 20;
    int attempts = 4;
    double retry_first = 0.5;
    double retry_max = 8;
    double read_timeout = 5;
    double deadline = 30;
};
inline constexpr int kPushThreads = 4;
inline constexpr int kMinPushQueueItems = 4, kMaxPushQueueItems = 100000;
inline constexpr std::int64_t kMinPushQueueBytes = std::int64_t{1} << 20, kMaxPushQueueBytes = std::int64_t{16} << 30;
inline constexpr int kMinPushAttempts = 1, kMaxPushAttempts = 20;
inline constexpr double kMinPushSeconds = 0.05, kMaxPushSeconds = 3600;
// The largest response body to a PUT or DELETE that is read (and dropped) to keep the connection.
inline constexpr std::int64_t kMaxPushResponseBytes = std::int64_t{64} << 10;

struct EngineSettings {
    HlsSettings hls;                 // defaults for every channel
    std::string hls_dir;             // mirror segments and playlists to {hls_dir}/{id}/; empty: memory only
    // PUT segments and playlists to {push_url}/{id}/ (http:// or https://; user:pass@ in it becomes
    // Basic auth and never shows in status or logs); empty: no push. See PushSettings.
    std::string push_url;
    PushSettings push;               // the push queues' limits, retries and deadlines
    double read_timeout = 10.0;      // seconds a blocking source read may take before it counts as stalled
    double stall_timeout = 0;        // HLS: playlist not advancing this long is a stall; 0: 3 target durations
    double reconnect_min = 0.5;      // first reconnect delay, seconds; doubles up to reconnect_max
    double reconnect_max = 30.0;
    FetchLimits limits;              // caps and deadlines of every upstream fetch (channels may override)
    int live_start_segments = 3;     // HLS: start this many segments back from the live edge (RFC 8216 6.3.3)
    // HLS: reload a regular source's playlist just after it is expected to publish (its phase learnt
    // from when the playlist changes; never sooner than RFC 8216 6.3.4 allows). false: the RFC's
    // own schedule, a new segment seen half a target duration late on average. Classic HLS output
    // of a single-rendition channel only: a presentation's renditions and low-latency channels keep
    // the RFC's schedule (a probe while the phase is learnt delays one segment, which would part the
    // renditions for a moment and raise PART-HOLD-BACK).
    bool align_reloads = true;
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
    std::vector<ProviderSettings> providers;  // connection limits per IPTV account
    // Channel lists (M3U or JSON) by http(s) URL, e.g. a provider's get.php?...&type=m3u_plus: fetched
    // in the background at start, every list_refresh_interval seconds and on Engine::refresh_lists(),
    // with the HTTP client and URL policy of every upstream fetch, capped at max_list_bytes. Each good
    // fetch is reconciled with the registry (channels added, updated, removed; see Engine::list_sources);
    // a failed or empty fetch changes nothing. Local files are loaded by the host (Engine::load_file).
    std::vector<std::string> channel_lists;
    double list_refresh_interval = kListRefreshInterval;
    std::int64_t max_list_bytes = kMaxListBytes;
    FailoverSettings failover;       // across a channel's URLs (primary and backups)
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

// EngineSettings::channel_lists, list_refresh_interval and max_list_bytes.
inline std::string lists_problem(const std::vector<std::string>& lists, double refresh_interval, std::int64_t max_bytes) {
    for (const std::string& url : lists)
        if (!starts_with_icase(url, "http://") && !starts_with_icase(url, "https://"))
            return "channel list URL is not http(s) (load local files with load_file): " + redact_url(url);
    if (std::string p = range_problem("list_refresh_interval", refresh_interval, kMinListRefreshInterval, kMaxListRefreshInterval);
        !p.empty())
        return p;
    return range_problem("max_list_bytes", static_cast<double>(max_bytes), static_cast<double>(kMinMaxListBytes),
                         static_cast<double>(kMaxMaxListBytes));
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

inline std::string failover_problem(const FailoverSettings& f) {
    std::string p = range_problem("failover attempts_per_url", f.attempts_per_url, kMinAttemptsPerUrl, kMaxAttemptsPerUrl);
    if (p.empty()) p = range_problem("failover cooldown", f.cooldown, kMinFailoverSeconds, kMaxFailoverSeconds);
    if (p.empty()) p = range_problem("failover cooldown_max", f.cooldown_max, f.cooldown, kMaxFailoverSeconds);
    if (p.empty()) p = range_problem("failover probe_interval", f.probe_interval, kMinFailoverSeconds, kMaxFailoverSeconds);
    if (p.empty() && f.failback_after != 0) {
        p = range_problem("failover failback_after", f.failback_after, kMinFailoverSeconds, kMaxFailoverSeconds);
        if (!p.empty()) p += " (or 0: never)";
    }
    return p;
}

inline std::string limits_problem(const FetchLimits& l) {
    return limits_problem(FetchLimitOverrides{l.max_playlist_bytes, l.max_segment_bytes, l.max_redirects,
                                              l.playlist_deadline, l.segment_deadline});
}

// EngineSettings::push_url ("" is no push) and PushSettings.
inline std::string push_problem(std::string_view url, const PushSettings& p) {
    if (!url.empty()) {
        const bool http = starts_with_icase(url, "http://"), https = starts_with_icase(url, "https://");
        const std::string_view rest = url.substr(http ? 7 : https ? 8 : 0);
        if ((!http && !https) || rest.empty() || rest.front() == '/' || rest.find_first_of(" \t\r\n?#") != std::string_view::npos)
            return "push_url must be an http:// or https:// URL without query or spaces, not '" +
                   redact_url(url.substr(0, 200)) + "'";
    }
    std::string q = range_problem("push max_queue_items", p.max_queue_items, kMinPushQueueItems, kMaxPushQueueItems);
    if (q.empty())
        q = range_problem("push max_queue_bytes", static_cast<double>(p.max_queue_bytes), static_cast<double>(kMinPushQueueBytes),
                          static_cast<double>(kMaxPushQueueBytes));
    if (q.empty()) q = range_problem("push attempts", p.attempts, kMinPushAttempts, kMaxPushAttempts);
    if (q.empty()) q = range_problem("push retry_first", p.retry_first, kMinPushSeconds, kMaxPushSeconds);
    if (q.empty()) q = range_problem("push retry_max", p.retry_max, p.retry_first, kMaxPushSeconds);
    if (q.empty()) q = range_problem("push read_timeout", p.read_timeout, kMinPushSeconds, kMaxPushSeconds);
    if (q.empty()) q = range_problem("push deadline", p.deadline, kMinFetchDeadline, kMaxFetchDeadline);
    return q;
}

// Providers: names 1-64 bytes of [A-Za-z0-9._-], unique; limits within 0..kMaxProviderConnections;
// hosts non-empty without '/', '@' or spaces.
inline std::string providers_problem(const std::vector<ProviderSettings>& providers) {
    for (std::size_t i = 0; i < providers.size(); ++i) {
        const ProviderSettings& p = providers[i];
        const bool good_name = !p.name.empty() && p.name.size() <= 64 &&
                               std::all_of(p.name.begin(), p.name.end(), [](char c) {
                                   return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                                          c == '.' || c == '_' || c == '-';
                               });
        if (!good_name) return "provider name '" + p.name.substr(0, 64) + "' must be 1-64 characters of A-Z a-z 0-9 . _ -";
        for (std::size_t j = 0; j < i; ++j)
            if (providers[j].name == p.name) return "provider " + p.name + " is given twice";
        if (p.max_connections < 0 || p.max_connections > kMaxProviderConnections)
            return "provider " + p.name + ": max_connections must be within 0.." + std::to_string(kMaxProviderConnections) +
                   " (0: no limit)";
        for (const std::string& h : p.hosts)
            if (h.empty() || h.size() > 255 || h.find_first_of("/@ \t?#") != std::string::npos)
                return "provider " + p.name + ": '" + h.substr(0, 80) + "' is not a host or host:port";
    }
    return {};
}

// The command-line and C form of a provider: "NAME=MAX" or "NAME=MAX@HOST[,HOST...]", e.g.
// "acme=2@line.acme.tv,backup.acme.tv:8080". nullopt (and *why) when malformed; the values are then
// checked by providers_problem.
inline std::optional<ProviderSettings> parse_provider(std::string_view text, std::string* why = nullptr) {
    auto fail = [&](std::string m) -> std::optional<ProviderSettings> {
        if (why) *why = std::move(m);
        return std::nullopt;
    };
    const std::size_t eq = text.find('=');
    if (eq == std::string_view::npos || eq == 0) return fail("a provider is NAME=MAX[@HOST[,HOST...]]");
    ProviderSettings p;
    p.name = std::string(text.substr(0, eq));
    std::string_view rest = text.substr(eq + 1);
    const std::size_t at = rest.find('@');
    const std::string_view max = rest.substr(0, at);
    if (max.empty() || max.size() > 6 || max.find_first_not_of("0123456789") != std::string_view::npos)
        return fail("provider " + p.name + ": the connection limit must be a number, not '" + std::string(max.substr(0, 20)) + "'");
    p.max_connections = std::stoi(std::string(max));
    if (at != std::string_view::npos) {
        std::string_view hosts = rest.substr(at + 1);
        for (;;) {
            const std::size_t comma = hosts.find(',');
            std::string h(hosts.substr(0, comma));
            std::transform(h.begin(), h.end(), h.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
            if (h.empty()) return fail("provider " + p.name + ": an empty host");
            p.hosts.push_back(std::move(h));
            if (comma == std::string_view::npos) break;
            hosts.remove_prefix(comma + 1);
        }
    }
    return p;
}

}  // namespace hlsrelay
