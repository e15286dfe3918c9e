// What a channel is: its identity, its sources and its HLS settings. Plain data, no I/O.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace hlsrelay {

// The output's packaging: MPEG-TS segments, or fMP4/CMAF (an init section and .m4s segments).
enum class Container { ts, fmp4 };

inline const char* to_string(Container c) { return c == Container::fmp4 ? "fmp4" : "ts"; }
inline std::optional<Container> parse_container(std::string_view text) {
    if (text == "ts") return Container::ts;
    if (text == "fmp4") return Container::fmp4;
    return std::nullopt;
}

// Which renditions of a multivariant source a channel runs (HlsSettings::renditions, parsed).
struct RenditionSelection {
    enum class Mode { all, highest, lowest, max_height, max_bandwidth, heights };
    Mode mode = Mode::all;
    int64_t limit = 0;          // max_height: pixels; max_bandwidth: bits/s
    std::vector<int> heights;   // heights: the variants' heights to keep ("1080p,360p")
    bool operator==(const RenditionSelection&) const = default;
};

// "all" | "highest" | "lowest" | "max-height=<px>" | "max-bandwidth=<bits/s>" | "<h>p[,<h>p...]";
// nullopt (and `problem` says why) for anything else.
inline std::optional<RenditionSelection> parse_rendition_selection(std::string_view text, std::string* problem = nullptr) {
    auto fail = [&](const std::string& why) -> std::optional<RenditionSelection> {
        if (problem) *problem = why;
        return std::nullopt;
    };
    auto number = [](std::string_view digits, int64_t max) -> std::optional<int64_t> {
        if (digits.empty() || digits.size() > 12) return std::nullopt;
        int64_t v = 0;
        for (char c : digits) {
            if (c < '0' || c > '9') return std::nullopt;
            v = v * 10 + (c - '0');
        }
        if (v < 1 || v > max) return std::nullopt;
        return v;
    };
    const std::string expected =
        "renditions must be all, highest, lowest, max-height=<px>, max-bandwidth=<bits/s> or a list of heights like 1080p,360p";
    RenditionSelection s;
    if (text == "all") return s;
    if (text == "highest" || text == "lowest") {
        s.mode = text == "highest" ? RenditionSelection::Mode::highest : RenditionSelection::Mode::lowest;
        return s;
    }
    for (auto [prefix, mode, max] : {std::tuple{std::string_view("max-height="), RenditionSelection::Mode::max_height, int64_t{100000}},
                                     std::tuple{std::string_view("max-bandwidth="), RenditionSelection::Mode::max_bandwidth, int64_t{1} << 40}}) {
        if (text.substr(0, prefix.size()) == prefix) {
            auto v = number(text.substr(prefix.size()), max);
            if (!v) return fail(expected);
            s.mode = mode;
            s.limit = *v;
            return s;
        }
    }
    s.mode = RenditionSelection::Mode::heights;
    while (!text.empty()) {
        const auto comma = text.find(',');
        std::string_view item = text.substr(0, comma);
        if (item.size() < 2 || item.back() != 'p') return fail(expected);
        auto v = number(item.substr(0, item.size() - 1), 100000);
        if (!v || s.heights.size() >= 32) return fail(expected);
        s.heights.push_back(static_cast<int>(*v));
        if (comma == std::string_view::npos) break;
        text.remove_prefix(comma + 1);
        if (text.empty()) return fail(expected);
    }
    if (s.heights.empty()) return fail(expected);
    return s;
}

// Engine-wide HLS settings; the defaults are those of the replaced design.
struct HlsSettings {
    double segment_duration = 2.0;  // seconds; a segment is cut at the first keyframe after this
    int max_segments = 5;           // segments listed in the media playlist
    double cleanup_interval = 5.0;  // seconds between sweeps of the disk mirror
    Container container = Container::ts;
    // Which renditions of a multivariant source run: "all", "highest", "lowest", "max-height=<px>",
    // "max-bandwidth=<bits/s>" or a comma-separated list of heights ("1080p,360p"); the audio and
    // subtitle renditions of the kept variants' groups follow them.
    std::string renditions = "all";
    // LL-HLS (RFC 8216bis): segments are also cut into parts of at most `part_duration` seconds,
    // listed with EXT-X-PART and a preload hint, and media playlists answer blocking reloads
    // (_HLS_msn/_HLS_part) and delta updates (_HLS_skip). Parts are cut by the remux path, so a
    // low-latency channel remuxes what it would otherwise pass through. Single-rendition channels.
    bool low_latency = false;
    double part_duration = 1.0 / 3;
};

// Per-channel overrides of HlsSettings; unset fields take the engine's value.
struct HlsOverrides {
    std::optional<double> segment_duration;
    std::optional<int> max_segments;
    std::optional<double> cleanup_interval;
    std::optional<Container> container;
    std::optional<std::string> renditions;
    std::optional<bool> low_latency;
    std::optional<double> part_duration;

    HlsSettings apply(HlsSettings base) const {
        if (segment_duration) base.segment_duration = *segment_duration;
        if (max_segments) base.max_segments = *max_segments;
        if (cleanup_interval) base.cleanup_interval = *cleanup_interval;
        if (container) base.container = *container;
        if (renditions) base.renditions = *renditions;
        if (low_latency) base.low_latency = *low_latency;
        if (part_duration) base.part_duration = *part_duration;
        return base;
    }
    bool empty() const {
        return !segment_duration && !max_segments && !cleanup_interval && !container && !renditions && !low_latency &&
               !part_duration;
    }
    bool operator==(const HlsOverrides&) const = default;
};

// Bounds on what one fetch from an upstream may cost: every byte an upstream sends is untrusted, so
// each playlist, segment, key and init section is capped in size (after any gzip/deflate decoding)
// and in total time, besides the per-read timeout (EngineSettings::read_timeout). Exceeding one
// aborts that fetch with an error in the channel's status. docs/security.md lists them.
struct FetchLimits {
    int64_t max_playlist_bytes = int64_t{4} << 20;   // a media or multivariant playlist
    int64_t max_segment_bytes = int64_t{64} << 20;   // a media segment, an init section or a key
    int max_redirects = 5;                           // HTTP redirects followed per fetch
    // Total time one fetch may take, from connect to last byte (a trickling upstream is a stall).
    // 0: automatic: a playlist gets one target duration (at least 2 s; read_timeout before the first
    // playlist told the target), a segment three target durations (at least 6 s).
    double playlist_deadline = 0;
    double segment_deadline = 0;
};

// Per-channel overrides of FetchLimits; unset fields take the engine's value.
struct FetchLimitOverrides {
    std::optional<int64_t> max_playlist_bytes;
    std::optional<int64_t> max_segment_bytes;
    std::optional<int> max_redirects;
    std::optional<double> playlist_deadline;
    std::optional<double> segment_deadline;

    FetchLimits apply(FetchLimits base) const {
        if (max_playlist_bytes) base.max_playlist_bytes = *max_playlist_bytes;
        if (max_segment_bytes) base.max_segment_bytes = *max_segment_bytes;
        if (max_redirects) base.max_redirects = *max_redirects;
        if (playlist_deadline) base.playlist_deadline = *playlist_deadline;
        if (segment_deadline) base.segment_deadline = *segment_deadline;
        return base;
    }
    bool empty() const {
        return !max_playlist_bytes && !max_segment_bytes && !max_redirects && !playlist_deadline && !segment_deadline;
    }
    bool operator==(const FetchLimitOverrides&) const = default;
};

struct ChannelConfig {
    std::string id;                            // stream id: [a-z0-9_-]+, unique in a registry
    std::string name;                          // display name
    std::vector<std::string> urls;             // sources, tried in order on failure
    std::string logo;                          // tvg-logo
    std::string group;                         // group-title
    std::map<std::string, std::string> headers;  // HTTP headers for the source, e.g. User-Agent
    HlsOverrides hls;                          // per-channel HLS settings
    bool loop = false;                         // restart a finite source (a file, an HLS playlist with EXT-X-ENDLIST) at its end
    std::optional<bool> realtime;              // read at native rate; unset: on for local files
    // Legacy (before renditions): "highest", "lowest" or a bandwidth in bits/s. A channel that sets it
    // and not hls.renditions keeps one variant: see renditions_for_variant.
    std::optional<std::string> variant;
    FetchLimitOverrides limits;                // per-channel fetch caps and deadlines
    // Guide and tuner attributes of IPTV lists, passed on to the exported M3U, the HDHomeRun lineup
    // and the XMLTV guide.
    std::string tvg_id;                        // tvg-id: the channel's id in the XMLTV guides
    std::string tvg_name;                      // tvg-name: its name there, when not the display name
    std::string chno;                          // tvg-chno: its channel number ("5", "5.1"), as given
    double tvg_shift = 0;                      // tvg-shift: hours added to the guide's times for it
    // Other #EXTINF attributes, passed through as given (catchup, catchup-days, catchup-source,
    // tvg-country, tvg-language, ...): lowercased names, at most kMaxChannelAttributes.
    std::map<std::string, std::string> attributes;
    // The provider (EngineSettings::providers) whose connections it uses; empty: the one serving the
    // host of its first URL, if any.
    std::string provider;
    // A disabled channel stays in the registry (and in GET /api/v1/channels) but cannot be started and
    // is left out of the tuner lineup, the exported M3Us and the guide. JSON "enabled": false; M3U
    // hlsrelay-enabled="no".
    bool enabled = true;

    // The HLS overrides the engine applies: hls, with the legacy `variant` read as hls.renditions
    // when that is unset.
    HlsOverrides hls_overrides() const;

    bool operator==(const ChannelConfig&) const = default;
};

// The legacy `variant` as a renditions selection: "highest" and "lowest" keep that one variant; a
// bandwidth N becomes "max-bandwidth=N" (the variants of at most N bits/s). nullopt for anything else.
inline std::optional<std::string> renditions_for_variant(std::string_view variant) {
    if (variant == "highest" || variant == "lowest") return std::string(variant);
    const bool bandwidth = !variant.empty() && variant.size() <= 12 &&
                           variant.find_first_not_of("0123456789") == std::string_view::npos &&
                           variant.find_first_not_of('0') != std::string_view::npos;
    if (!bandwidth) return std::nullopt;
    return "max-bandwidth=" + std::string(variant.substr(variant.find_first_not_of('0')));
}

inline HlsOverrides ChannelConfig::hls_overrides() const {
    HlsOverrides o = hls;
    if (!o.renditions && variant) o.renditions = renditions_for_variant(*variant);
    return o;
}

// Whether two versions of a channel differ only in what the worker does not use: the guide and
// lineup metadata (name, logo, group, tvg-id, tvg-name, chno, tvg-shift, attributes). A running
// channel updated to such a version keeps running; any other difference (sources, headers, HLS and
// fetch overrides, any field added later) restarts it. Written as "everything but the metadata" so
// that a new field counts as a source change until it is listed here.
inline bool same_source(ChannelConfig a, ChannelConfig b) {
    for (ChannelConfig* c : {&a, &b}) {
        c->name.clear();
        c->logo.clear();
        c->group.clear();
        c->tvg_id.clear();
        c->tvg_name.clear();
        c->chno.clear();
        c->tvg_shift = 0;
        c->attributes.clear();
    }
    return a == b;
}

// What loading a channel list gave: the channels and what was wrong with the rest.
struct LoadIssue {
    int line = 0;  // 1-based; for JSON the entry's index + 1 (JSON values carry no line); 0: no line
    std::string message;
    bool operator==(const LoadIssue&) const = default;
};

// Caps on the pass-through attributes of a channel (ChannelConfig::attributes, tvg-*): a list from
// a provider is untrusted and its attributes are echoed into every exported M3U.
inline constexpr std::size_t kMaxChannelAttributes = 32;
inline constexpr std::size_t kMaxAttributeBytes = 2048;
inline constexpr double kMaxTvgShiftHours = 48;

struct LoadReport {
    std::vector<ChannelConfig> channels;  // the valid entries, in file order
    std::vector<LoadIssue> issues;        // sorted by line
    // XMLTV guide URLs the list names (M3U: url-tvg / x-tvg-url of #EXTM3U, comma-separated; JSON:
    // "guides"), in order, duplicates removed.
    std::vector<std::string> guide_urls;
};

}  // namespace hlsrelay
