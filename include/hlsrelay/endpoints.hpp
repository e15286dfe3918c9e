// The HTTP API's endpoints, defined once. Each row names an endpoint, its method and path, who may
// call it (api::check_request's rules) and the function over an Engine that answers it. The demo
// server routes by this table, the FastAPI router adds one route per row, and the C ABI
// (hlsrelay_api) and Python (Engine.api) call rows by name: an endpoint added here is served by all.
// What is not a row is transport plumbing: HLS files (api::hls_file), the dashboard, /healthz and
// /metrics of the demo server.
#pragma once

#include <hlsrelay/api.hpp>
#include <hlsrelay/tuner.hpp>

#include <functional>
#include <span>
#include <string>
#include <string_view>

namespace hlsrelay::api {

// What a transport passes to an endpoint besides the engine.
struct Call {
    std::string channel;                  // the path's {channel_name}, decoded ("" when it has none)
    std::string base_url;                 // "http://host:port" the client reached us at (absolute URLs)
    Sources sources = Sources::redacted;  // check_request's verdict: callers without the token see no sources
    // The transport's additions to each channel status it returns (the demo server's viewers and
    // last_request_at); may be empty.
    std::function<void(nlohmann::ordered_json&)> decorate_status;
    // The request body (POST, PATCH, DELETE): one channel as JSON for "channel-add" and
    // "channel-update", ignored by the others. A transport may cut it at kMaxApiBodyBytes + 1 bytes:
    // more than kMaxApiBodyBytes is answered 413.
    std::string body;
};

struct EndpointDef {
    std::string_view name;    // what Engine.api() and hlsrelay_api() take: "start-stream"
    std::string_view method;  // "GET" (then HEAD too, unless it changes state), "POST", "PATCH" or "DELETE"
    std::string_view path;    // "/api/v1/channels/start-stream/{channel_name}": literal segments and {channel_name}
    Endpoint access;          // the rules check_request applies (Host, cross-site, token)
    bool changes_state;       // starts or stops channels or writes the state file: not from an event
                              // callback, not on an event loop
    bool needs_base_url;      // its reply holds absolute URLs made from Call::base_url
    Reply (*answer)(Engine&, const Call&);

    bool needs_channel() const { return path.find("{channel_name}") != std::string_view::npos; }
    bool allows_head() const { return method == "GET" && !changes_state; }
};

namespace detail {

inline Reply answer_start(Engine& e, const Call& c) { return start_stream(e, c.channel); }
inline Reply answer_stop(Engine& e, const Call& c) { return stop_stream(e, c.channel); }
inline Reply answer_status(Engine& e, const Call& c) {
    Reply r = stream_status(e, c.channel, c.sources);
    if (r.status == 200 && c.decorate_status) c.decorate_status(r.body);
    return r;
}
inline Reply answer_statuses(Engine& e, const Call& c) {
    Reply r = streams_status(e, c.sources);
    if (r.status == 200 && c.decorate_status && r.body.contains("streams"))
        for (auto& s : r.body["streams"]) c.decorate_status(s);
    return r;
}
inline Reply answer_m3u(Engine& e, const Call& c) { return static_hls_m3u(e, c.base_url, c.sources); }
inline Reply answer_discover(Engine& e, const Call& c) { return discover(e, c.base_url); }
inline Reply answer_lineup(Engine& e, const Call& c) { return lineup(e, c.base_url); }
inline Reply answer_lineup_status(Engine&, const Call&) { return lineup_status(); }
inline Reply answer_lineup_post(Engine&, const Call&) { return lineup_post(); }
inline Reply answer_device_xml(Engine& e, const Call& c) { return device_xml(e, c.base_url); }
inline Reply answer_playlist(Engine& e, const Call& c) { return playlist_m3u(e, c.base_url, c.sources); }
inline Reply answer_epg(Engine& e, const Call&) { return epg(e, false); }
inline Reply answer_epg_gz(Engine& e, const Call&) { return epg(e, true); }
inline Reply answer_guide(Engine& e, const Call& c) { return guide_status(e, c.sources); }
inline Reply answer_guide_refresh(Engine& e, const Call&) { return refresh_guide(e); }
inline Reply answer_channels(Engine& e, const Call&) { return list_channels(e); }
inline Reply answer_providers(Engine& e, const Call&) { return list_providers(e); }
inline Reply answer_lists(Engine& e, const Call&) { return list_sources(e); }
inline Reply answer_lists_refresh(Engine& e, const Call&) { return refresh_lists(e); }
inline Reply answer_channel_add(Engine& e, const Call& c) { return add_channel(e, c.body); }
inline Reply answer_channel_update(Engine& e, const Call& c) { return update_channel(e, c.channel, c.body); }
inline Reply answer_channel_remove(Engine& e, const Call& c) { return remove_channel(e, c.channel); }
inline Reply answer_channel_enable(Engine& e, const Call& c) { return set_channel_enabled(e, c.channel, true); }
inline Reply answer_channel_disable(Engine& e, const Call& c) { return set_channel_enabled(e, c.channel, false); }

}  // namespace detail

// Rows sharing a name are one endpoint reached by several paths (the replaced design's GET forms and
// the POST forms of start and stop); by name, the first row is meant.
inline std::span<const EndpointDef> endpoints() {
    using E = Endpoint;
    static constexpr EndpointDef table[] = {
        {"start-stream", "GET", "/api/v1/channels/start-stream/{channel_name}", E::control, true, false, detail::answer_start},
        {"stop-stream", "GET", "/api/v1/channels/stop-stream/{channel_name}", E::control, true, false, detail::answer_stop},
        {"start-stream", "POST", "/api/v1/channels/{channel_name}/start", E::control, true, false, detail::answer_start},
        {"stop-stream", "POST", "/api/v1/channels/{channel_name}/stop", E::control, true, false, detail::answer_stop},
        {"stream-status", "GET", "/api/v1/channels/stream-status/{channel_name}", E::status, false, false, detail::answer_status},
        {"streams-status", "GET", "/api/v1/channels/streams-status", E::status, false, false, detail::answer_statuses},
        {"static-hls-m3u", "GET", "/api/v1/channels/static-hls-m3u", E::status, false, true, detail::answer_m3u},
        {"channels", "GET", "/api/v1/channels", E::registry, false, false, detail::answer_channels},
        {"providers", "GET", "/api/v1/providers", E::status, false, false, detail::answer_providers},
        // Runtime channel management (api.hpp add_channel ...; kept in the state file when one is set).
        {"channel-add", "POST", "/api/v1/channels", E::control, true, false, detail::answer_channel_add},
        {"channel-update", "PATCH", "/api/v1/channels/{channel_name}", E::control, true, false, detail::answer_channel_update},
        {"channel-remove", "DELETE", "/api/v1/channels/{channel_name}", E::control, true, false, detail::answer_channel_remove},
        {"channel-enable", "POST", "/api/v1/channels/{channel_name}/enable", E::control, true, false, detail::answer_channel_enable},
        {"channel-disable", "POST", "/api/v1/channels/{channel_name}/disable", E::control, true, false, detail::answer_channel_disable},
        // The tuner (tuner.hpp): HDHomeRun's HTTP interface, and the M3U of continuous TS streams.
        {"discover", "GET", "/discover.json", E::status, false, true, detail::answer_discover},
        {"lineup", "GET", "/lineup.json", E::status, false, true, detail::answer_lineup},
        {"lineup-status", "GET", "/lineup_status.json", E::status, false, false, detail::answer_lineup_status},
        {"lineup-post", "POST", "/lineup.post", E::status, false, false, detail::answer_lineup_post},
        {"device-xml", "GET", "/device.xml", E::status, false, true, detail::answer_device_xml},
        {"playlist", "GET", "/playlist.m3u", E::status, false, true, detail::answer_playlist},
        // The XMLTV guide of the channels (Engine::guide) and its sources.
        {"epg", "GET", "/epg.xml", E::status, false, false, detail::answer_epg},
        {"epg-gz", "GET", "/epg.xml.gz", E::status, false, false, detail::answer_epg_gz},
        {"guide", "GET", "/api/v1/guide", E::status, false, false, detail::answer_guide},
        {"guide-refresh", "POST", "/api/v1/guide/refresh", E::control, false, false, detail::answer_guide_refresh},
        // Channel lists fetched by URL (Engine::list_sources) and a fetch of them now.
        {"lists", "GET", "/api/v1/lists", E::registry, false, false, detail::answer_lists},
        {"lists-refresh", "POST", "/api/v1/lists/refresh", E::control, false, false, detail::answer_lists_refresh},
    };
    return table;
}

inline const EndpointDef* find_endpoint(std::string_view name) {
    for (const EndpointDef& d : endpoints())
        if (d.name == name) return &d;
    return nullptr;
}

// "start-stream, stop-stream, ...": every endpoint name once, for error messages.
inline std::string endpoint_names() {
    std::string out;
    for (const EndpointDef& d : endpoints()) {
        if (find_endpoint(d.name) != &d) continue;
        if (!out.empty()) out += ", ";
        out += d.name;
    }
    return out;
}

// The path's segments after the leading '/': "/api/v1/channels" -> {"api", "v1", "channels"}.
inline std::vector<std::string_view> path_segments(std::string_view path) {
    std::vector<std::string_view> out;
    if (!path.empty() && path.front() == '/') path.remove_prefix(1);
    for (;;) {
        const std::size_t slash = path.find('/');
        out.push_back(path.substr(0, slash));
        if (slash == std::string_view::npos) return out;
        path.remove_prefix(slash + 1);
    }
}

// Whether a pattern segment captures ("{channel_name}").
inline bool is_capture(std::string_view segment) {
    return segment.size() > 2 && segment.front() == '{' && segment.back() == '}';
}

// Answers a call of `def` (an error reply for a missing channel; InvalidArgument-like misuse is the
// transport's to refuse first).
inline Reply call(Engine& engine, const EndpointDef& def, const Call& c) {
    if (def.needs_channel() && c.channel.empty()) return error(400, "Endpoint '" + std::string(def.name) + "' needs a channel");
    return def.answer(engine, c);
}

}  // namespace hlsrelay::api
