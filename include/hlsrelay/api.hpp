// The replaced FastAPI design's endpoints as plain functions over an Engine: one definition of the
// JSON shapes, used by the demo server, the C API and the Python/FastAPI layer alike.
#pragma once

#include <hlsrelay/engine.hpp>
#include <hlsrelay/json.hpp>
#include <hlsrelay/playlist.hpp>
#include <hlsrelay/presentation.hpp>
#include <hlsrelay/registry.hpp>
#include <hlsrelay/state.hpp>
#include <hlsrelay/stream_id.hpp>
#include <hlsrelay/text.hpp>
#include <hlsrelay/window.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace hlsrelay::api {

struct Reply {
    int status = 200;
    nlohmann::ordered_json body;           // JSON replies
    std::string text;                      // non-JSON replies (the M3U)
    std::string content_type = "application/json";
    std::vector<std::pair<std::string, std::string>> headers;  // extra response headers (WWW-Authenticate)
    // A large non-JSON body shared rather than copied (the XMLTV guide); when set, it is the body.
    std::shared_ptr<const std::string> shared;
    // Invalid UTF-8 (a source's bytes in an error message) is replaced, never thrown.
    std::string dump() const {
        if (shared) return *shared;
        return content_type == "application/json" ? dump_json(body) : text;
    }
    // Bytes, not text: no charset, and Python gets bytes.
    bool binary() const { return content_type == "application/gzip"; }
};

inline Reply error(int status, std::string detail) {
    Reply r;
    r.status = status;
    r.body["detail"] = std::move(detail);
    return r;
}

inline Reply channel_not_found() { return error(404, "Channel not found"); }

inline nlohmann::ordered_json hls_config(const HlsSettings& h) {
    nlohmann::ordered_json j;
    // Whole seconds print as integers, as the replaced design's config did.
    auto number = [](double v) {
        return v == std::floor(v) ? nlohmann::ordered_json(static_cast<int64_t>(v)) : nlohmann::ordered_json(v);
    };
    j["segment_duration"] = number(h.segment_duration);
    j["max_segments"] = h.max_segments;
    j["cleanup_interval"] = number(h.cleanup_interval);
    j["container"] = to_string(h.container);
    j["renditions"] = h.renditions;
    j["low_latency"] = h.low_latency;
    j["part_duration"] = h.part_duration;
    return j;
}

// 503 for a start refused for want of a provider connection (ErrorCode::Unavailable's message).
inline Reply unavailable(std::string_view why) {
    Reply r = error(503, std::string(why));
    r.headers.emplace_back("Retry-After", std::to_string(static_cast<int>(kProviderReclaimIdle)));
    return r;
}

// Maps engine errors onto replies; anything else is a 500 with the message.
template <class F>
Reply guarded(F&& f) {
    try {
        return f();
    } catch (const Error& e) {
        if (e.code() == ErrorCode::NotFound) return channel_not_found();
        if (e.code() == ErrorCode::InvalidArgument) return error(400, e.what());
        if (e.code() == ErrorCode::Unavailable) return unavailable(e.what());  // a provider's connections are all in use
        if (e.code() == ErrorCode::Conflict) return error(409, e.what());
        return error(500, e.what());
    } catch (const std::exception& e) {
        return error(500, e.what());
    }
}

// GET /api/v1/channels/start-stream/{channel_name}
inline Reply start_stream(Engine& engine, std::string_view name) {
    return guarded([&] {
        const bool was_running = engine.find_channel(name) && engine.running(name);
        const ChannelConfig c = engine.start(name);
        Reply r;
        r.body["message"] = was_running ? "Stream for '" + c.id + "' is already running."
                                        : "Stream for '" + c.id + "' started.";
        r.body["channel"] = c.name;
        r.body["hls_url"] = hls_url_for(c.id);
        r.body["config"] = hls_config(engine.settings_for(c.id));
        return r;
    });
}

// GET /api/v1/channels/stop-stream/{channel_name}
inline Reply stop_stream(Engine& engine, std::string_view name) {
    return guarded([&] {
        const auto c = engine.find_channel(name);
        if (!c) return channel_not_found();
        const bool was_running = engine.running(c->id);
        engine.stop(c->id);
        Reply r;
        r.body["message"] = was_running ? "Stream for '" + c->id + "' stopped."
                                        : "Stream for '" + c->id + "' was not running; stopped.";
        return r;
    });
}

// How much of where a channel comes from a status reply shows. `redacted`: `source` and each
// `sources[].url` as redact_url gives them and every URL in `last_error`, `previous_error`,
// `disk_error`, `notes` and `push.last_error` redacted too. `hidden` (a request without the API token when one is set):
// `source`, every `sources[].url` and `push.url` are null and those URLs read "<url hidden>".
enum class Sources { redacted, hidden };

inline void apply(nlohmann::ordered_json& status, Sources sources) {
    const bool hide = sources == Sources::hidden;
    if (hide && status.contains("source")) status["source"] = nullptr;
    if (hide && status.contains("sources") && status["sources"].is_array())
        for (auto& source : status["sources"])
            if (source.is_object() && source.contains("url")) source["url"] = nullptr;
    for (const char* key : {"last_error", "previous_error", "disk_error"})
        if (status.contains(key) && status[key].is_string()) status[key] = scrub_urls(status[key].get<std::string>(), hide);
    if (status.contains("notes") && status["notes"].is_array())
        for (auto& note : status["notes"])
            if (note.is_string()) note = scrub_urls(note.get<std::string>(), hide);
    if (status.contains("push") && status["push"].is_object()) {  // the origin pushed to: as a source
        auto& push = status["push"];
        if (hide && push.contains("url")) push["url"] = nullptr;
        if (push.contains("last_error") && push["last_error"].is_string())
            push["last_error"] = scrub_urls(push["last_error"].get<std::string>(), hide);
    }
}

// GET /api/v1/channels/stream-status/{channel_name}
inline Reply stream_status(const Engine& engine, std::string_view name, Sources sources = Sources::redacted) {
    return guarded([&] {
        Reply r;
        r.body = to_json(engine.status(name));
        apply(r.body, sources);
        return r;
    });
}

// ---------------------------------------------------------------------------------------------------
// LL-HLS delivery directives on a media playlist request (RFC 8216bis 6.2.5): one reading of
// `?_HLS_msn=N&_HLS_part=M&_HLS_skip=YES` for every transport. A transport calls hls_playlist() when a
// request names a channel's media playlist; on `wait` it calls again when the channel publishes (its
// SegmentPublished and PartPublished events) and answers blocking_timeout() once `wait_seconds` have
// passed since the request came. Directives on a channel without low latency are ignored.
// A media playlist that takes the directives: a channel's "index.m3u8", or a presentation's
// rendition's ("v1/index.m3u8").
inline bool is_media_playlist(std::string_view file) {
    if (file == kMediaPlaylistName) return true;
    const auto sub = split_rendition_path(file);
    return sub && sub->file == kMediaPlaylistName;
}

struct PlaylistDirectives {
    std::optional<std::string> msn, part, skip;  // the raw query values (absent: not given)
};

struct PlaylistAnswer {
    enum class Kind { serve, wait, error };
    Kind kind = Kind::serve;
    std::string file;          // serve: the name to Engine::read (the delta update's for _HLS_skip)
    Reply error;               // error: the reply (400)
    int64_t msn = -1;          // wait: for segment msn ...
    int part = -1;             // ... (part >= 0: its part `part`)
    double wait_seconds = 0;   // wait: at most this long from the request (three target durations)
    // serve: how long a cache may keep the answer (RFC 8216bis appendix B.1: a blocking request's
    // playlist six target durations, since its URL names what it holds); 0: no-cache.
    int cache_seconds = 0;
};

inline Reply blocking_timeout() {
    Reply r = error(503, "The playlist did not reach the requested segment or part in time (three target durations)");
    r.headers.emplace_back("Retry-After", "1");
    return r;
}

inline PlaylistAnswer hls_playlist(const Engine& engine, std::string_view channel, std::string_view file,
                                   const PlaylistDirectives& d) {
    PlaylistAnswer a;
    a.file = std::string(file);
    const auto position = engine.playlist_position(channel, file);
    if (!position || !position->low_latency || position->target_duration == 0) return a;  // read() answers
    auto fail = [&](std::string why) {
        a.kind = PlaylistAnswer::Kind::error;
        a.error = error(400, std::move(why));
        return a;
    };
    auto integer = [](const std::string& v, int64_t max) -> std::optional<int64_t> {
        if (v.empty() || v.size() > 18 || v.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
        const int64_t n = std::stoll(v);
        return n <= max ? std::optional<int64_t>(n) : std::nullopt;
    };
    if (d.skip) {
        if (*d.skip != "YES" && *d.skip != "v2") return fail("_HLS_skip must be YES or v2");
        // The delta update of that playlist: "index.m3u8?_HLS_skip=YES", or a rendition's "v1/...".
        a.file = std::string(file.substr(0, file.size() - kMediaPlaylistName.size())) + std::string(kDeltaPlaylistName);
    }
    if (d.part && !d.msn) return fail("_HLS_part needs _HLS_msn");
    if (!d.msn) return a;
    const auto msn = integer(*d.msn, int64_t{1} << 53);
    if (!msn) return fail("_HLS_msn must be a decimal integer");
    std::optional<int64_t> part;
    if (d.part && !(part = integer(*d.part, 999))) return fail("_HLS_part must be a decimal integer below 1000");
    // 6.2.5.2: a request more than two segments past the playlist's last one (whole: parts are no
    // Media Segments) is refused at once.
    const int64_t last = position->last_msn;
    if (*msn > last + 2) return fail("_HLS_msn " + std::to_string(*msn) + " is more than two segments past the playlist's last (" + std::to_string(last) + ")");
    // ... and a part more than the Advance Part Limit (3 s of parts, at least 3) past the last part.
    const int limit = std::max(3, static_cast<int>(std::ceil(3.0 / std::max(0.01, position->part_target) - 1e-9)));
    if (part && *msn == position->open_msn && *part > position->open_parts - 1 + limit)
        return fail("_HLS_part " + std::to_string(*part) + " is more than " + std::to_string(limit) + " parts past the playlist's last");
    a.cache_seconds = 6 * position->target_duration;
    if (position->holds(*msn, part ? static_cast<int>(*part) : -1)) return a;
    a.kind = PlaylistAnswer::Kind::wait;
    a.msn = *msn;
    a.part = part ? static_cast<int>(*part) : -1;
    a.wait_seconds = 3.0 * position->target_duration;
    return a;
}

// ---------------------------------------------------------------------------------------------------
// GET/HEAD /hls_streams/{id}/{file}: one reading of an HLS file request for every transport (the demo
// server, FastAPI): registry ids only, the Range header, the LL-HLS directives, a preload hint's part
// asked for before it is complete, and the headers of each kind of file.

// One "bytes=a-b" range (RFC 9110 14.1.2) of a body of `size` bytes. `ignore`: send everything
// (absent, malformed, several ranges or another unit, as the RFC allows); `unsatisfiable`: 416.
struct ByteRange {
    enum Kind { ignore, satisfiable, unsatisfiable } kind = ignore;
    std::size_t first = 0, last = 0;  // inclusive, for satisfiable
};

inline ByteRange parse_range(std::string_view header, std::size_t size) {
    constexpr std::string_view unit = "bytes=";
    if (header.size() < unit.size() || ascii_lower(header.substr(0, unit.size())) != unit) return {};
    std::string_view spec = header.substr(unit.size());
    while (!spec.empty() && spec.front() == ' ') spec.remove_prefix(1);
    while (!spec.empty() && spec.back() == ' ') spec.remove_suffix(1);
    const std::size_t dash = spec.find('-');
    if (dash == std::string_view::npos || spec.find(',') != std::string_view::npos) return {};
    auto number = [](std::string_view digits) -> std::optional<std::size_t> {
        if (digits.empty() || digits.size() > 18) return std::nullopt;
        std::size_t v = 0;
        for (char c : digits) {
            if (c < '0' || c > '9') return std::nullopt;
            v = v * 10 + static_cast<std::size_t>(c - '0');
        }
        return v;
    };
    const std::string_view a = spec.substr(0, dash), b = spec.substr(dash + 1);
    ByteRange r{ByteRange::satisfiable, 0, size == 0 ? 0 : size - 1};
    if (a.empty()) {  // a suffix: the last n bytes
        const auto n = number(b);
        if (!n) return {};
        if (*n == 0 || size == 0) return {ByteRange::unsatisfiable};
        r.first = size - std::min(*n, size);
        return r;
    }
    const auto first = number(a);
    const auto last = b.empty() ? std::optional<std::size_t>(SIZE_MAX) : number(b);  // "a-": to the end
    if (!first || !last || *last < *first) return {};
    if (*first >= size) return {ByteRange::unsatisfiable};
    r.first = *first;
    r.last = std::min(*last, r.last);
    return r;
}

// The Cache-Control of HLS files: segments, parts and init sections never change; playlists do.
inline constexpr std::string_view kImmutableCacheControl = "public, max-age=86400, immutable";
inline constexpr std::string_view kPlaylistCacheControl = "no-cache";

struct FileRequest {
    std::string_view channel;                // the path's {id}: a registry id (display names are not files)
    std::string_view file;                   // "index.m3u8", "seg_7.ts", "v1/part_3.m4s", ...
    bool head = false;                       // HEAD: the headers only (bytes_out counts none)
    std::optional<std::string_view> range;   // the Range header
    PlaylistDirectives directives;           // a media playlist's _HLS_msn/_HLS_part/_HLS_skip
};

struct FileAnswer {
    enum class Kind {
        reply,     // send `reply` (an error: 400, 404, 416) with its headers
        resource,  // send resource.bytes() (already narrowed to the range) with `status` and `headers`
        wait,      // LL-HLS: ask again on each publication of the channel (its part, segment and state
                   // events); once `wait_seconds` have passed since the request, send blocking_timeout()
    };
    Kind kind = Kind::reply;
    Reply reply;
    Resource resource;
    int status = 200;  // 200 or 206
    std::vector<std::pair<std::string, std::string>> headers;  // Content-Type, Cache-Control, Accept-Ranges, Content-Range
    double wait_seconds = 0;
    bool channel_known = false;  // the request named a registry id (whatever else it answers)
};

// Of a presentation's renditions, the video rendition `asked` when it fails while another video
// rendition plays; else null. Fails: reconnecting, stalled or failed, or no new segment for two
// target durations `td`. Plays: healthy, with a segment of the last two target durations and, when
// `asked` is only old (not broken), one a target duration newer than `asked`'s newest. When the whole
// source is slow every rendition ages alike and none is refused: their ages then cross two target
// durations milliseconds apart, and a player must not be turned away from one rendition for that
// (players wait a slow source out).
inline const RenditionStatus* failing_video_rendition(const std::vector<RenditionStatus>& renditions,
                                                      std::string_view asked_id, double td) {
    auto broken = [](const RenditionStatus& r) {
        return r.state == ChannelState::Reconnecting || r.state == ChannelState::Stalled || r.state == ChannelState::Failed;
    };
    const RenditionStatus* asked = nullptr;
    for (const RenditionStatus& r : renditions)
        if (r.id == asked_id) asked = &r;
    if (!asked || asked->kind != "video" || td <= 0) return nullptr;
    const bool asked_broken = broken(*asked);
    if (!asked_broken && !(asked->newest_segment_age_seconds > 2.0 * td)) return nullptr;
    for (const RenditionStatus& r : renditions) {
        if (&r == asked || r.kind != "video" || broken(r) || r.newest_segment_age_seconds < 0 ||
            r.newest_segment_age_seconds > 2.0 * td)
            continue;
        if (asked_broken || r.newest_segment_age_seconds + td <= asked->newest_segment_age_seconds) return asked;
    }
    return nullptr;
}

// A presentation's rendition playlist ("v1/index.m3u8") while that rendition fails and another video
// rendition plays (failing_video_rendition): 503, not its playlist gone stale. A player sitting on it
// would stall until it came back (seen: Shaka, whose first choice was the failing variant); an error
// makes hls.js and Shaka play another rendition, as a 404 from the origin itself would.
inline std::optional<Reply> failing_rendition(const Engine& engine, std::string_view id, std::string_view file) {
    const auto sub = split_rendition_path(file);
    if (!sub || sub->file != kMediaPlaylistName) return std::nullopt;
    const auto position = engine.playlist_position(id, file);
    if (!position || position->target_duration <= 0) return std::nullopt;
    const ChannelStatus s = engine.status(id);
    const RenditionStatus* asked = failing_video_rendition(s.renditions, sub->rendition, position->target_duration);
    if (!asked) return std::nullopt;
    Reply e = error(503, "Rendition " + asked->id + " of '" + std::string(id) + "' is not getting new segments (" +
                             std::string(to_string(asked->state)) + "); its other renditions play");
    e.headers.emplace_back("Retry-After", std::to_string(position->target_duration));
    return e;
}

inline FileAnswer hls_file(const Engine& engine, const FileRequest& req, bool again = true) {
    FileAnswer a;
    auto answer = [&](Reply r) {
        a.kind = FileAnswer::Kind::reply;
        a.reply = std::move(r);
        return a;
    };
    auto wait = [&](double seconds) {
        a.kind = FileAnswer::Kind::wait;
        a.wait_seconds = seconds;
        return a;
    };
    // Engine::read also takes display names; a URL names a registry id only.
    if (!engine.has_id(req.channel)) return answer(channel_not_found());
    a.channel_known = true;
    const std::string_view id = req.channel;
    std::string file(req.file);
    int cache_seconds = 0;
    const auto& d = req.directives;
    if ((d.msn || d.part || d.skip) && is_media_playlist(file) && engine.running(id)) {
        PlaylistAnswer p = hls_playlist(engine, id, file, d);
        if (p.kind == PlaylistAnswer::Kind::error) return answer(std::move(p.error));
        if (p.kind == PlaylistAnswer::Kind::wait) return wait(p.wait_seconds);
        file = std::move(p.file);
        cache_seconds = p.cache_seconds;
    }
    if (auto failing = failing_rendition(engine, id, file)) return answer(std::move(*failing));
    if (auto res = engine.read(id, file, req.head ? Delivery::headers : Delivery::whole)) {
        a.kind = FileAnswer::Kind::resource;
        a.resource = std::move(*res);
        a.headers.emplace_back("Content-Type", std::string(a.resource.content_type));
        if (!a.resource.immutable) {
            // A blocking request's playlist may be cached: its URL names what it holds.
            a.headers.emplace_back("Cache-Control", cache_seconds > 0 ? "public, max-age=" + std::to_string(cache_seconds)
                                                                      : std::string(kPlaylistCacheControl));
            return a;
        }
        a.headers.emplace_back("Cache-Control", std::string(kImmutableCacheControl));
        a.headers.emplace_back("Accept-Ranges", "bytes");
        if (!req.range) return a;
        const std::size_t size = a.resource.bytes().size();
        const ByteRange br = parse_range(*req.range, size);
        if (br.kind == ByteRange::unsatisfiable) {
            Reply e = error(416, "Range not satisfiable");
            e.headers.emplace_back("Content-Range", "bytes */" + std::to_string(size));
            return answer(std::move(e));
        }
        if (br.kind == ByteRange::satisfiable) {
            a.status = 206;
            a.resource.offset += br.first;
            a.resource.length = br.last - br.first + 1;
            a.headers.emplace_back("Content-Range", "bytes " + std::to_string(br.first) + "-" + std::to_string(br.last) +
                                                        "/" + std::to_string(size));
        }
        return a;
    }
    // The part a preload hint names (EXT-X-PRELOAD-HINT), asked for before it is complete: held until
    // it is, at most three target durations, as a blocking reload for it would be.
    const auto sub = split_rendition_path(file);
    if (const auto part = parse_part_name(sub ? sub->file : std::string_view(file))) {
        const std::string playlist =
            sub ? std::string(sub->rendition) + "/" + std::string(kMediaPlaylistName) : std::string(kMediaPlaylistName);
        const auto p = engine.playlist_position(id, playlist);
        if (p && p->low_latency && p->target_duration > 0 && part->first == p->next_part) return wait(3.0 * p->target_duration);
        // Published between the read above and this look at the playlist (next_part has moved past
        // it): asked again, once, rather than a 404 for a part that now exists.
        if (again && p && p->low_latency && part->first < p->next_part && part->first >= p->next_part - 1)
            return hls_file(engine, req, false);
    }
    return answer(error(404, engine.running(id) ? "Not found" : "Stream not running"));
}

// GET /api/v1/channels/streams-status
inline Reply streams_status(const Engine& engine, Sources sources = Sources::redacted) {
    return guarded([&] {
        const auto all = engine.statuses();
        int running = 0;
        nlohmann::ordered_json streams = nlohmann::ordered_json::array();
        for (const auto& s : all) {
            if (s.cleanup_running) ++running;
            streams.push_back(to_json(s));
            apply(streams.back(), sources);
        }
        Reply r;
        r.body["total_channels"] = all.size();
        r.body["running_streams"] = running;
        r.body["active_cleanup_threads"] = running;
        r.body["hls_config"] = hls_config(engine.settings().hls);
        r.body["streams"] = std::move(streams);
        return r;
    });
}

// M3U attribute values cannot hold a double quote.
inline std::string m3u_attribute(std::string_view v) {
    std::string out;
    for (char c : v)
        if (c != '"' && c != '\n' && c != '\r') out += c;
    return out;
}

// A channel as GET /api/v1/channels lists it (and the management endpoints answer): the registry's
// entry without source credentials, its HLS URL, whether it runs and whether it is enabled.
inline nlohmann::ordered_json channel_entry(const Engine& engine, const ChannelConfig& c) {
    nlohmann::ordered_json j = to_json(c, false);
    j["enabled"] = c.enabled;
    j["hls_url"] = hls_url_for(c.id);
    j["running"] = engine.find_channel(c.id).has_value() && engine.running(c.id);
    return j;
}

// GET /api/v1/channels: the registry without source credentials.
inline Reply list_channels(const Engine& engine) {
    return guarded([&] {
        Reply r;
        nlohmann::ordered_json list = nlohmann::ordered_json::array();
        for (const auto& c : engine.channels()) list.push_back(channel_entry(engine, c));
        r.body["channels"] = std::move(list);
        return r;
    });
}

// GET /api/v1/providers: each provider's connection limit and the channels holding its connections.
inline Reply list_providers(const Engine& engine) {
    return guarded([&] {
        Reply r;
        nlohmann::ordered_json list = nlohmann::ordered_json::array();
        for (const ProviderStatus& p : engine.providers()) list.push_back(to_json(p));
        r.body["providers"] = std::move(list);
        return r;
    });
}

// GET /api/v1/lists: each channel list fetched by URL (EngineSettings::channel_lists), redacted.
inline Reply list_sources(const Engine& engine) {
    return guarded([&] {
        Reply r;
        nlohmann::ordered_json list = nlohmann::ordered_json::array();
        for (const ListSource& l : engine.list_sources()) list.push_back(to_json(l));
        r.body["lists"] = std::move(list);
        return r;
    });
}

// POST /api/v1/lists/refresh: fetch every channel list again (no list more often than every 30 s).
inline Reply refresh_lists(Engine& engine) {
    return guarded([&] {
        engine.refresh_lists();
        Reply r;
        r.body["message"] = "Channel lists are being fetched again.";
        return r;
    });
}

// ---------------------------------------------------------------------------------------------------
// Runtime channel management (control endpoints). A body is one channel as a JSON object with the
// fields of a JSON channel list entry (registry.hpp, detail::channel_from_json); unknown fields, bad
// JSON and wrong types are 400, a body over kMaxApiBodyBytes 413. With EngineSettings::state_file the
// changes are kept across restarts (state.hpp).

namespace detail {

// The body as a JSON object, or the error reply.
inline std::variant<nlohmann::json, Reply> channel_body(std::string_view body) {
    if (body.size() > kMaxApiBodyBytes)
        return error(413, "Request body too large: at most " + std::to_string(kMaxApiBodyBytes) + " bytes");
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(body.begin(), body.end());
    } catch (const nlohmann::json::parse_error& e) {
        std::string what = e.what();
        if (const std::size_t tag = what.find("] "); what.rfind("[json.exception", 0) == 0 && tag != std::string::npos)
            what.erase(0, tag + 2);
        return error(400, "invalid JSON body: " + hlsrelay::detail::repair_utf8(what));
    } catch (const std::exception&) {
        return error(400, "invalid JSON body: a number is out of range");
    }
    if (!j.is_object()) return error(400, "the body must be a JSON object of channel fields");
    for (const auto& [key, value] : j.items())
        if (std::find(std::begin(hlsrelay::detail::kJsonFields), std::end(hlsrelay::detail::kJsonFields), key) ==
            std::end(hlsrelay::detail::kJsonFields))
            return error(400, "unknown field '" + hlsrelay::detail::repair_utf8(key) + "'");
    return j;
}

// A channel from its JSON fields, as the list loaders read it; the error reply if they refuse it.
inline std::variant<ChannelConfig, Reply> channel_of(const nlohmann::json& j, std::vector<std::string>& warnings) {
    try {
        return hlsrelay::detail::channel_from_json(j, warnings);
    } catch (const hlsrelay::detail::EntrySkipped& e) {
        return error(400, hlsrelay::detail::repair_utf8(e.message));
    }
}

inline Reply channel_reply(const Engine& engine, const ChannelConfig& c, int status, const std::vector<std::string>& warnings) {
    Reply r;
    r.status = status;
    r.body = channel_entry(engine, c);
    if (!warnings.empty()) r.body["warnings"] = warnings;
    return r;
}

}  // namespace detail

// POST /api/v1/channels: 201 with the channel as stored (its id assigned from the name when the
// body has none); 409 when the body's id is taken.
inline Reply add_channel(Engine& engine, std::string_view body) {
    return guarded([&] {
        auto parsed = detail::channel_body(body);
        if (auto* e = std::get_if<Reply>(&parsed)) return std::move(*e);
        std::vector<std::string> warnings;
        auto channel = detail::channel_of(std::get<nlohmann::json>(parsed), warnings);
        if (auto* e = std::get_if<Reply>(&channel)) return std::move(*e);
        ChannelConfig& c = std::get<ChannelConfig>(channel);
        if (!c.id.empty()) {
            if (const auto existing = engine.find_channel(c.id); existing && existing->id == c.id)
                return error(409, "A channel with id '" + c.id + "' exists");
        }
        const ChannelConfig added = engine.add_channel(std::move(c));
        return detail::channel_reply(engine, added, 201, warnings);
    });
}

// PATCH /api/v1/channels/{channel_name}: a JSON merge patch of the channel (apply_channel_patch: only
// the given fields change, null unsets one), validated as a list entry. The id cannot change.
inline Reply update_channel(Engine& engine, std::string_view name, std::string_view body) {
    return guarded([&] {
        auto parsed = detail::channel_body(body);
        if (auto* e = std::get_if<Reply>(&parsed)) return std::move(*e);
        const nlohmann::json& patch = std::get<nlohmann::json>(parsed);
        const auto current = engine.find_channel(name);
        if (!current) return channel_not_found();
        if (const auto it = patch.find("id"); it != patch.end() && !it->is_null() && *it != current->id)
            return error(400, "a channel's id cannot change (it is '" + current->id + "')");
        nlohmann::json merged = apply_channel_patch(to_json(*current, true), patch);
        merged["id"] = current->id;
        std::vector<std::string> warnings;
        auto channel = detail::channel_of(merged, warnings);
        if (auto* e = std::get_if<Reply>(&channel)) return std::move(*e);
        const ChannelConfig updated = engine.update_channel(current->id, std::move(std::get<ChannelConfig>(channel)));
        return detail::channel_reply(engine, updated, 200, warnings);
    });
}

// DELETE /api/v1/channels/{channel_name}: stops it and removes it.
inline Reply remove_channel(Engine& engine, std::string_view name) {
    return guarded([&] {
        const auto current = engine.find_channel(name);
        if (!current) return channel_not_found();
        engine.remove_channel(current->id);
        Reply r;
        r.body["removed"] = current->id;
        return r;
    });
}

// POST /api/v1/channels/{channel_name}/enable and /disable (disabling stops it).
inline Reply set_channel_enabled(Engine& engine, std::string_view name, bool enabled) {
    return guarded([&] {
        const ChannelConfig c = engine.set_enabled(name, enabled);
        return detail::channel_reply(engine, c, 200, {});
    });
}

// ---------------------------------------------------------------------------------------------------
// Who may call what over HTTP: the rules the demo server and the FastAPI router both apply (one
// definition; the router of each only says which kind of endpoint a path is).

enum class Endpoint {
    media,     // /hls_streams/...: open to all, readable cross-origin (Access-Control-Allow-Origin: *)
    health,    // /healthz: open to all, no data
    status,    // status, metrics, the M3U, the dashboard: Host checked; sources hidden from requests
               // without the token when one is set
    registry,  // GET /api/v1/channels: Host checked, token required when set
    control,   // start/stop (GET and POST forms), channel management: Host checked, token required,
               // browser cross-site refused
};

struct HttpPolicy {
    std::string api_token;                   // empty: no token (control endpoints open to same-site callers)
    std::vector<std::string> allowed_hosts;  // names accepted in Host besides IP literals and localhost;
                                             // "name" (any port) or "name:port"; "*" accepts any Host
};

// What of a request the rules look at. Header values as received; nullopt when absent.
struct HttpRequestView {
    Endpoint endpoint = Endpoint::status;
    std::optional<std::string_view> host;            // Host
    std::optional<std::string_view> origin;          // Origin
    std::optional<std::string_view> sec_fetch_site;  // Sec-Fetch-Site
    std::optional<std::string_view> authorization;   // Authorization
    std::optional<std::string_view> query_token;     // the decoded ?token= value
};

struct HttpVerdict {
    std::optional<Reply> refusal;         // answer this instead of serving the request
    bool authenticated = false;           // no token is set, or the request carries it
    Sources sources = Sources::redacted;  // for status replies
    bool cors = false;                    // send Access-Control-Allow-Origin: * (media only)
};

namespace detail {

// Compares without an early exit so that response timing does not reveal how much of a guess matched.
inline bool same_secret(std::string_view given, std::string_view secret) {
    if (given.size() != secret.size()) return false;
    unsigned char diff = 0;
    for (std::size_t i = 0; i < given.size(); ++i) diff |= static_cast<unsigned char>(given[i] ^ secret[i]);
    return diff == 0;
}

// "name[:port]" or "[v6]:port" -> lowercased name (brackets kept) and port ("" when absent);
// nullopt when malformed.
inline std::optional<std::pair<std::string, std::string>> split_authority(std::string_view a) {
    std::string_view name = a, port;
    if (!a.empty() && a.front() == '[') {
        const std::size_t close = a.find(']');
        if (close == std::string_view::npos) return std::nullopt;
        name = a.substr(0, close + 1);
        const std::string_view rest = a.substr(close + 1);
        if (!rest.empty() && rest.front() != ':') return std::nullopt;
        if (!rest.empty()) port = rest.substr(1);
    } else if (const std::size_t colon = a.rfind(':'); colon != std::string_view::npos) {
        name = a.substr(0, colon);
        port = a.substr(colon + 1);
        if (name.find(':') != std::string_view::npos) return std::nullopt;
    }
    if (name.empty() || port.size() > 5 ||
        !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return std::nullopt;
    return std::make_pair(ascii_lower(name), std::string(port));
}

inline bool is_ipv4_literal(std::string_view s) {
    int parts = 0;
    for (std::size_t start = 0;;) {
        const std::size_t dot = s.find('.', start);
        const std::string_view part = s.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
        if (part.empty() || part.size() > 3 || !std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
            std::stoi(std::string(part)) > 255)
            return false;
        ++parts;
        if (dot == std::string_view::npos) break;
        start = dot + 1;
    }
    return parts == 4;
}

// "[::1]", "[fe80::1%25eth0]": a bracketed IPv6 literal.
inline bool is_ipv6_literal(std::string_view s) {
    if (s.size() < 4 || s.front() != '[' || s.back() != ']') return false;
    s = s.substr(1, s.size() - 2);
    s = s.substr(0, s.find('%'));  // zone id
    return s.find(':') != std::string_view::npos && std::all_of(s.begin(), s.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == ':' || c == '.';
           });
}

inline bool allowed_name(const HttpPolicy& policy, const std::string& name, const std::string& port) {
    for (const std::string& entry : policy.allowed_hosts) {
        const std::string e = ascii_lower(entry);
        if (e == "*" || e == name || (!port.empty() && e == name + ":" + port)) return true;
    }
    return false;
}

// DNS rebinding: a browser tricked into sending our loopback address a request under the attacker's
// name sends that name as Host. Accepted: no Host at all (HTTP/1.0 clients), IP literals, localhost,
// and the configured names.
inline bool host_allowed(const HttpPolicy& policy, std::optional<std::string_view> host) {
    if (!host) return true;
    const auto a = split_authority(*host);
    if (!a) return false;
    const auto& [name, port] = *a;
    return is_ipv4_literal(name) || is_ipv6_literal(name) || name == "localhost" || allowed_name(policy, name, port);
}

// Whether an Origin header names this server: the request's own Host (a missing port meaning the
// scheme's default) or a configured name. "null" and anything unparsable are foreign.
inline bool same_origin(const HttpPolicy& policy, std::string_view origin, std::optional<std::string_view> host) {
    std::string_view rest;
    std::string default_port;
    for (auto [scheme, port] : {std::pair<std::string_view, const char*>{"http://", "80"}, {"https://", "443"}}) {
        if (origin.size() > scheme.size() && ascii_lower(origin.substr(0, scheme.size())) == scheme) {
            rest = origin.substr(scheme.size());
            default_port = port;
        }
    }
    if (rest.empty() || rest.find_first_of("/?#@") != std::string_view::npos) return false;
    const auto o = split_authority(rest);
    if (!o) return false;
    const std::string& oport = o->second.empty() ? default_port : o->second;
    if (host) {
        if (const auto h = split_authority(*host)) {
            const std::string& hport = h->second.empty() ? default_port : h->second;
            if (h->first == o->first && hport == oport) return true;
        }
    }
    for (const std::string& entry : policy.allowed_hosts) {
        const std::string e = ascii_lower(entry);
        if (e != "*" && (e == o->first || e == o->first + ":" + oport)) return true;
    }
    return false;
}

inline bool bearer_matches(std::optional<std::string_view> authorization, std::string_view token) {
    constexpr std::string_view scheme = "bearer ";
    if (!authorization || authorization->size() <= scheme.size() || ascii_lower(authorization->substr(0, scheme.size())) != scheme)
        return false;
    std::string_view given = authorization->substr(scheme.size());
    while (!given.empty() && given.front() == ' ') given.remove_prefix(1);
    return same_secret(given, token);
}

}  // namespace detail

// The rules, in order: Host (421, DNS rebinding) on everything but media and health; browser
// cross-site requests (403) on control endpoints, by Sec-Fetch-Site (cross-site, same-site) or an
// Origin that is not the server's own; the token (401) on registry and control endpoints. Clients
// that send neither Origin nor Sec-Fetch-Site (curl, players, scripts) pass the cross-site rule.
inline HttpVerdict check_request(const HttpPolicy& policy, const HttpRequestView& req) {
    HttpVerdict v;
    v.cors = req.endpoint == Endpoint::media;
    v.authenticated = policy.api_token.empty() || detail::bearer_matches(req.authorization, policy.api_token) ||
                      (req.query_token && detail::same_secret(*req.query_token, policy.api_token));
    v.sources = v.authenticated ? Sources::redacted : Sources::hidden;
    if (req.endpoint == Endpoint::media || req.endpoint == Endpoint::health) return v;
    if (!detail::host_allowed(policy, req.host)) {
        v.refusal = error(421, "Misdirected request: the Host header is neither an IP address, localhost nor an allowed "
                               "name of this server (see --allowed-host, HLSRELAY_ALLOWED_HOSTS)");
        return v;
    }
    if (req.endpoint == Endpoint::control) {
        const bool cross_site = req.sec_fetch_site && (ascii_lower(*req.sec_fetch_site) == "cross-site" ||
                                                       ascii_lower(*req.sec_fetch_site) == "same-site");
        if (cross_site || (req.origin && !detail::same_origin(policy, *req.origin, req.host))) {
            v.refusal = error(403, "Cross-site request refused: control endpoints accept requests from this server's "
                                   "own pages and from non-browser clients only");
            return v;
        }
    }
    if ((req.endpoint == Endpoint::control || req.endpoint == Endpoint::registry) && !v.authenticated) {
        v.refusal = error(401, "Not authenticated");
        v.refusal->headers.emplace_back("WWW-Authenticate", "Bearer");
    }
    return v;
}

inline std::string_view to_string(Endpoint e) {
    switch (e) {
        case Endpoint::media: return "media";
        case Endpoint::health: return "health";
        case Endpoint::status: return "status";
        case Endpoint::registry: return "registry";
        case Endpoint::control: return "control";
    }
    return "status";
}

inline std::optional<Endpoint> endpoint_from_name(std::string_view name) {
    if (name == "media") return Endpoint::media;
    if (name == "health") return Endpoint::health;
    if (name == "status") return Endpoint::status;
    if (name == "registry") return Endpoint::registry;
    if (name == "control") return Endpoint::control;
    return std::nullopt;
}

}  // namespace hlsrelay::api
