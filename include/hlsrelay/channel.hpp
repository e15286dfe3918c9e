// What a channel is: its identity, its sources and its HLS settings. Plain data, no I/O.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace hlsrelay {

// Engine-wide HLS settings; the defaults are those of the replaced design.
struct HlsSettings {
    double segment_duration = 2.0;  // seconds; a segment is cut at the first keyframe after this
    int max_segments = 5;           // segments listed in the media playlist
    double cleanup_interval = 5.0;  // seconds between sweeps of the disk mirror
};

// Per-channel overrides of HlsSettings; unset fields take the engine's value.
struct HlsOverrides {
    std::optional<double> segment_duration;
    std::optional<int> max_segments;
    std::optional<double> cleanup_interval;

    HlsSettings apply(HlsSettings base) const {
        if (segment_duration) base.segment_duration = *segment_duration;
        if (max_segments) base.max_segments = *max_segments;
        if (cleanup_interval) base.cleanup_interval = *cleanup_interval;
        return base;
    }
    bool empty() const { return !segment_duration && !max_segments && !cleanup_interval; }
    bool operator==(const HlsOverrides&) const = default;
};

struct ChannelConfig {
    std::string id;                            // stream id: [a-z0-9_-]+, unique in a registry
    std::string name;                          // display name
    std::vector<std::string> urls;             // sources, tried in order on failure
    std::string logo;                          // tvg-logo
    std::string group;                         // group-title
    std::map<std::string, std::string> headers;  // HTTP headers for the source, e.g. User-Agent
    HlsOverrides hls;                          // per-channel HLS settings
    bool loop = false;                         // restart a finite source (file) at its end
    std::optional<bool> realtime;              // read at native rate; unset: on for local files
    std::string variant = "highest";           // HLS master playlists: "highest", "lowest" or a bandwidth

    bool operator==(const ChannelConfig&) const = default;
};

}  // namespace hlsrelay
