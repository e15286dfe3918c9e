// A channel's status snapshot and its JSON form: the replaced design's fields first, then ours.
#pragma once

#include <hlsrelay/playlist.hpp>
#include <hlsrelay/stream_id.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hlsrelay {

// Values are only ever appended (the C ABI's hlsrelay_state mirrors them).
// Stalled: running, but the newest segment is older than the stall bound (see ChannelStatus).
enum class ChannelState { Idle, Starting, Running, Reconnecting, Stopped, Failed, Stalled };

// Every state, in enum order: for exporters that list them all (metrics, bindings, tests).
inline constexpr ChannelState kChannelStates[] = {ChannelState::Idle,         ChannelState::Starting,
                                                  ChannelState::Running,      ChannelState::Reconnecting,
                                                  ChannelState::Stopped,      ChannelState::Failed,
                                                  ChannelState::Stalled};

inline std::string_view to_string(ChannelState s) {
    switch (s) {
        case ChannelState::Idle: return "idle";
        case ChannelState::Starting: return "starting";
        case ChannelState::Running: return "running";
        case ChannelState::Reconnecting: return "reconnecting";
        case ChannelState::Stopped: return "stopped";
        case ChannelState::Failed: return "failed";
        case ChannelState::Stalled: return "stalled";
    }
    return "unknown";
}

// The replaced design's `process_status`: "running" or "stopped", plus our transitional states.
inline std::string_view process_status(ChannelState s) {
    return s == ChannelState::Idle ? "stopped" : to_string(s);
}

inline std::string hls_url_for(std::string_view stream_id) {
    return "/hls_streams/" + std::string(stream_id) + "/" + std::string(kMasterPlaylistName);
}

// One rendition of a presentation (ChannelStatus::renditions).
struct RenditionStatus {
    std::string id;                  // "v0", "a1", "s0": its directory
    std::string kind;                // "video", "audio", "subtitles"
    std::string name, language, group;  // EXT-X-MEDIA's NAME, LANGUAGE, GROUP-ID; empty: none
    std::string codecs;              // empty: not known yet
    int64_t bandwidth = 0;           // 0: not known yet
    int width = 0, height = 0;
    ChannelState state = ChannelState::Idle;
    double newest_segment_age_seconds = -1;  // -1 while there is none
    int64_t bytes_in = 0;
    int segment_count = 0;
    std::string last_error;
};

// One of a channel's source URLs (ChannelStatus::sources), in the channel's order: the first is the
// primary, the others its backups (see FailoverSettings).
struct SourceStatus {
    std::string url;                  // redacted (redact_url), as ChannelStatus::source
    std::string role;                 // "active" (playing or being tried), "standby" or "cooldown"
    int consecutive_failures = 0;     // connections that failed in a row (0 once it delivers)
    double cooldown_seconds_left = 0; // > 0 while it cools down after failing
};

// Pushing to an HTTP origin (EngineSettings::push_url): the channel's queue and what became of its requests.
struct PushStatus {
    std::string url;           // {push_url}/{id}, credentials redacted
    int64_t queued = 0;        // requests waiting or in flight (segments, init sections, playlists, deletions)
    int64_t queued_bytes = 0;  // of their bodies
    int64_t pushed = 0;        // requests that succeeded (PUT and DELETE; a DELETE answered 404 counts)
    int64_t retries = 0;       // attempts that failed and were tried again
    int64_t failed = 0;        // requests given up after PushSettings::attempts
    int64_t dropped = 0;       // requests dropped unsent: the queue was full, or the segment left the window first
    int64_t withheld = 0;      // playlist updates not sent because they named a segment not pushed
    std::string last_error;    // the newest failed attempt, "" when none
};

struct ChannelStatus {
    // The replaced design's fields.
    std::string channel_name;
    std::string stream_id;
    ChannelState state = ChannelState::Idle;
    bool cleanup_running = false;
    int segment_count = 0;
    int max_segments = 0;
    bool master_playlist_exists = false;
    std::string hls_url;
    double estimated_buffer_seconds = 0;
    // Ours.
    // The newest problem, until the channel has published without a new one for
    // EngineSettings::error_clear_after seconds; then it moves to previous_error.
    std::string last_error;
    std::string last_error_at;         // ISO 8601, empty if none
    double last_error_age_seconds = -1;  // -1 while there is none
    std::string previous_error;        // the last error that was cleared, empty if none
    std::string previous_error_at;     // ISO 8601, empty if none
    int64_t reconnects = 0;          // outages: runs of failed attempts, each ended by publishing again
    int64_t reconnect_attempts = 0;  // failed attempts (each source connection that ended in an error)
    double uptime_seconds = 0;       // since the channel last (re)connected and ran
    std::string source;              // current source URL with credentials redacted
    int source_index = 0;            // into the channel's URL list
    double input_bitrate = 0;        // bits/s read from the source, recent
    double output_bitrate = 0;       // bits/s of the listed segments
    StreamInfo stream;
    double newest_segment_age_seconds = -1;  // -1 while there is none
    int64_t media_sequence = 0;
    int64_t discontinuity_sequence = 0;
    int64_t segments_published = 0;
    int64_t bytes_in = 0;
    int64_t bytes_out = 0;        // bytes delivered: of every playlist and segment handed out by Engine::read
    int64_t bytes_published = 0;  // bytes of the segments published
    int target_duration = 0;
    double segment_duration = 0;
    int64_t timestamp_repairs = 0;
    std::vector<std::string> notes;  // e.g. streams dropped because MPEG-TS cannot carry them
    std::string disk_error;          // the disk mirror's last failure; memory serving goes on
    std::string container = "ts";    // the output's packaging: "ts" or "fmp4"
    bool enabled = true;             // the channel's ChannelConfig::enabled (a disabled one cannot start)
    // The list's fields a dashboard finds and groups channels by (ChannelConfig's group, logo as given,
    // tvg_id; empty when absent). Its sources are `sources` (below).
    std::string group, logo, tvg_id;
    // A presentation's renditions (empty for a single-rendition channel, whose fields above are all
    // there is); the fields above then describe the highest video rendition.
    std::vector<RenditionStatus> renditions;
    std::string provider;  // the provider whose connection it holds or would use; "" for none
    // Every source URL of the channel (one for a channel without backups), and how many times the
    // channel switched between them (failovers and fail-backs).
    std::vector<SourceStatus> sources;
    int64_t failovers = 0;
    std::optional<PushStatus> push;  // set when the channel pushes to an origin
};

inline nlohmann::ordered_json to_json(const ChannelStatus& s) {
    auto round3 = [](double v) { return std::round(v * 1000.0) / 1000.0; };
    nlohmann::ordered_json j;
    j["channel_name"] = s.channel_name;
    j["stream_id"] = s.stream_id;
    j["process_status"] = process_status(s.state);
    j["cleanup_running"] = s.cleanup_running;
    j["segment_count"] = s.segment_count;
    j["max_segments"] = s.max_segments;
    j["master_playlist_exists"] = s.master_playlist_exists;
    j["hls_url"] = s.hls_url;
    j["estimated_buffer_seconds"] = round3(s.estimated_buffer_seconds);
    j["state"] = to_string(s.state);
    // URLs are redacted where status is made; once more here (idempotent), so that no JSON status,
    // whoever asks (HTTP, C ABI, Python), can show a credential that slipped into a message.
    j["last_error"] = s.last_error.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(scrub_urls(s.last_error));
    j["last_error_at"] = s.last_error_at.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(s.last_error_at);
    j["last_error_age_seconds"] = s.last_error_age_seconds < 0 ? nlohmann::ordered_json(nullptr)
                                                               : nlohmann::ordered_json(round3(s.last_error_age_seconds));
    j["previous_error"] =
        s.previous_error.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(scrub_urls(s.previous_error));
    j["previous_error_at"] =
        s.previous_error_at.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(s.previous_error_at);
    j["reconnects"] = s.reconnects;
    j["reconnect_attempts"] = s.reconnect_attempts;
    j["uptime_seconds"] = round3(s.uptime_seconds);
    j["source"] = redact_url(s.source);
    j["source_index"] = s.source_index;
    j["provider"] = s.provider.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(s.provider);
    j["input_bitrate"] = std::llround(s.input_bitrate);
    j["output_bitrate"] = std::llround(s.output_bitrate);
    j["codecs"] = s.stream.codecs;
    j["video_codec"] = s.stream.video_codec;
    j["audio_codecs"] = s.stream.audio_codecs;
    j["resolution"] = s.stream.width > 0 ? nlohmann::ordered_json(std::to_string(s.stream.width) + "x" +
                                                                   std::to_string(s.stream.height))
                                         : nlohmann::ordered_json(nullptr);
    j["frame_rate"] = round3(s.stream.frame_rate);
    j["newest_segment_age_seconds"] =
        s.newest_segment_age_seconds < 0 ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(round3(s.newest_segment_age_seconds));
    j["media_sequence"] = s.media_sequence;
    j["discontinuity_sequence"] = s.discontinuity_sequence;
    j["segments_published"] = s.segments_published;
    j["bytes_in"] = s.bytes_in;
    j["bytes_out"] = s.bytes_out;
    j["bytes_published"] = s.bytes_published;
    j["target_duration"] = s.target_duration;
    j["segment_duration"] = s.segment_duration;
    j["timestamp_repairs"] = s.timestamp_repairs;
    j["notes"] = s.notes;
    j["disk_error"] = s.disk_error.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(s.disk_error);
    j["container"] = s.container;
    j["enabled"] = s.enabled;
    auto text_or_null = [](const std::string& v) { return v.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(v); };
    j["group"] = text_or_null(s.group);
    j["logo"] = text_or_null(s.logo);
    j["tvg_id"] = text_or_null(s.tvg_id);
    nlohmann::ordered_json renditions = nlohmann::ordered_json::array();
    for (const RenditionStatus& r : s.renditions) {
        nlohmann::ordered_json o;
        o["id"] = r.id;
        o["kind"] = r.kind;
        o["name"] = text_or_null(r.name);
        o["language"] = text_or_null(r.language);
        o["group"] = text_or_null(r.group);
        o["codecs"] = text_or_null(r.codecs);
        o["bandwidth"] = r.bandwidth > 0 ? nlohmann::ordered_json(r.bandwidth) : nlohmann::ordered_json(nullptr);
        o["resolution"] = r.width > 0 && r.height > 0
                              ? nlohmann::ordered_json(std::to_string(r.width) + "x" + std::to_string(r.height))
                              : nlohmann::ordered_json(nullptr);
        o["state"] = to_string(r.state);
        o["newest_segment_age_seconds"] = r.newest_segment_age_seconds < 0 ? nlohmann::ordered_json(nullptr)
                                                                           : nlohmann::ordered_json(round3(r.newest_segment_age_seconds));
        o["bytes_in"] = r.bytes_in;
        o["segment_count"] = r.segment_count;
        o["last_error"] = r.last_error.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(scrub_urls(r.last_error));
        renditions.push_back(std::move(o));
    }
    j["renditions"] = std::move(renditions);
    nlohmann::ordered_json sources = nlohmann::ordered_json::array();
    for (std::size_t i = 0; i < s.sources.size(); ++i) {
        const SourceStatus& src = s.sources[i];
        nlohmann::ordered_json o;
        o["index"] = i;
        o["url"] = redact_url(src.url);
        o["role"] = src.role;
        o["consecutive_failures"] = src.consecutive_failures;
        o["cooldown_seconds_left"] = round3(src.cooldown_seconds_left);
        sources.push_back(std::move(o));
    }
    j["sources"] = std::move(sources);
    j["failovers"] = s.failovers;
    if (s.push) {
        const PushStatus& p = *s.push;
        nlohmann::ordered_json o;
        o["url"] = redact_url(p.url);
        o["queued"] = p.queued;
        o["queued_bytes"] = p.queued_bytes;
        o["pushed"] = p.pushed;
        o["retries"] = p.retries;
        o["failed"] = p.failed;
        o["dropped"] = p.dropped;
        o["withheld"] = p.withheld;
        o["last_error"] = p.last_error.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(scrub_urls(p.last_error));
        j["push"] = std::move(o);
    } else {
        j["push"] = nullptr;
    }
    return j;
}

// One XMLTV guide URL's status (Engine::guide_sources, GET /api/v1/guide): fetched in the background.
struct GuideSource {
    std::string url;          // redacted (redact_url)
    std::string last_error;   // redacted; "" when the last fetch succeeded (or none was tried yet)
    std::string fetched_at;   // ISO-8601 UTC of the last good fetch, "" if none
    std::string attempted_at; // ISO-8601 UTC of the last fetch tried, "" if none
    std::string next_fetch_at;  // ISO-8601 UTC of the next scheduled fetch (as of this status)
    int failures = 0;         // consecutive failed fetches
    bool has_guide = false;   // a guide of this URL is in use (possibly from before the last error)
    bool gzip_file = false;   // that guide came as a gzip file (inflated here)
    bool complete = false;    // and was read to its end (false: truncated, what could be read is used)
    int64_t bytes = 0;        // its body as transferred
    int64_t document_bytes = 0;  // its XML document (inflated)
    std::size_t channels = 0, programmes = 0;  // kept from it for the wanted channels
    std::size_t problems = 0;  // problems the reader noted in it
};

inline nlohmann::ordered_json to_json(const GuideSource& g) {
    auto text = [](const std::string& s) { return s.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(s); };
    nlohmann::ordered_json j;
    j["url"] = g.url;
    j["last_error"] = text(g.last_error);
    j["fetched_at"] = text(g.fetched_at);
    j["attempted_at"] = text(g.attempted_at);
    j["next_fetch_at"] = text(g.next_fetch_at);
    j["failures"] = g.failures;
    j["has_guide"] = g.has_guide;
    j["gzip_file"] = g.gzip_file;
    j["complete"] = g.complete;
    j["bytes"] = g.bytes;
    j["document_bytes"] = g.document_bytes;
    j["channels"] = g.channels;
    j["programmes"] = g.programmes;
    j["problems"] = g.problems;
    return j;
}

// One provider's connections (Engine::providers, GET /api/v1/providers).
struct ProviderStatus {
    std::string name;
    int max_connections = 0;              // 0: no limit
    std::vector<std::string> holders;     // ids of the channels holding its connections, oldest first
    std::vector<std::string> on_demand;   // of those, the ones started on demand (reclaimable when idle)
    std::size_t channels = 0;             // channels of the registry that use it
    int64_t refused = 0;                  // starts refused for want of a connection
    int64_t reclaimed = 0;                // idle on-demand channels stopped to make room
};

inline nlohmann::ordered_json to_json(const ProviderStatus& p) {
    nlohmann::ordered_json j;
    j["name"] = p.name;
    j["max_connections"] = p.max_connections == 0 ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(p.max_connections);
    j["in_use"] = p.holders.size();
    j["holders"] = p.holders;
    j["on_demand"] = p.on_demand;
    j["channels"] = p.channels;
    j["refused"] = p.refused;
    j["reclaimed"] = p.reclaimed;
    return j;
}

// One channel list's status (Engine::list_sources, GET /api/v1/lists): fetched by URL in the background.
struct ListSource {
    std::string url;            // redacted (redact_url)
    std::string last_error;     // redacted; "" when the last fetch succeeded (or none was tried yet)
    std::string fetched_at;     // ISO-8601 UTC of the last good fetch (reconciled), "" if none
    std::string attempted_at;   // ISO-8601 UTC of the last fetch tried, "" if none
    std::string next_fetch_at;  // ISO-8601 UTC of the next scheduled fetch (as of this status)
    int failures = 0;           // consecutive failed fetches
    std::size_t channels = 0;   // channels of this list in the registry now
    int64_t bytes = 0;          // the last good list's body
    // What the last good fetch changed: channels added, updated (restarted: those of them running
    // whose source changed), removed, and the problems the parser noted (entries skipped included).
    std::size_t added = 0, updated = 0, restarted = 0, removed = 0, issues = 0;
};

inline nlohmann::ordered_json to_json(const ListSource& l) {
    auto text = [](const std::string& s) { return s.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(s); };
    nlohmann::ordered_json j;
    j["url"] = l.url;
    j["last_error"] = text(l.last_error);
    j["fetched_at"] = text(l.fetched_at);
    j["attempted_at"] = text(l.attempted_at);
    j["next_fetch_at"] = text(l.next_fetch_at);
    j["failures"] = l.failures;
    j["channels"] = l.channels;
    j["bytes"] = l.bytes;
    j["added"] = l.added;
    j["updated"] = l.updated;
    j["restarted"] = l.restarted;
    j["removed"] = l.removed;
    j["issues"] = l.issues;
    return j;
}

}  // namespace hlsrelay
