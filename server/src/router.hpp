// The pure part of request handling: method + target in, the route (or the error) out. No engine
// calls, no I/O, so every path rule (decoding, traversal, 404 versus 405) is testable on its own.
#pragma once

#include <hlsrelay/endpoints.hpp>

#include <map>
#include <string>
#include <string_view>

namespace hlsrelay::server {

enum class RouteKind {
    error,             // status/detail/allow say what to answer
    preflight,         // OPTIONS on a known path: 204 with the CORS headers
    index,             // GET /
    asset,             // GET /assets/<name>: name is one of the files the dashboard needs
    healthz,
    metrics,
    hls,               // GET /hls_streams/{id}/{file}: channel = id, file = playlist or segment name
    ts_stream,         // GET /stream/{id}.ts: channel = id (a channel's continuous MPEG-TS)
    tuner_auto,        // GET /auto/v{GuideNumber} (HDHomeRun): channel = the GuideNumber
    endpoint,          // a row of the API's endpoint table (hlsrelay/endpoints.hpp): `api` says which
};

struct Route {
    RouteKind kind = RouteKind::error;
    int status = 404;            // for error
    std::string detail;          // for error
    std::string allow;           // for error 405 and preflight: the methods the path accepts
    const api::EndpointDef* api = nullptr;  // for endpoint
    std::string channel;         // decoded {channel_name} or {id}
    std::string file;            // hls: "master.m3u8", "index.m3u8" or "seg_<n>.ts"; asset: its name
    bool head = false;           // a HEAD request: answer like GET without the body
    // Which rules of api::check_request apply (Host, cross-site, token, CORS); for preflight: media
    // when the path is HLS delivery (the only cross-origin grant), status otherwise.
    api::Endpoint endpoint = api::Endpoint::status;
    std::map<std::string, std::string> query;  // decoded; the first value of a repeated name wins
};

// The files under /assets/ that the dashboard loads; nothing else is ever served from --web-root.
inline constexpr std::string_view kHlsJsAsset = "hls.min.js";

// Decodes and checks `target` and finds its route. Rules: each path segment is percent-decoded once
// (a malformed escape is 400) and then must not contain '/', '\\', NUL or other control characters,
// nor be "." or ".." (400); HLS ids must be safe stream ids and file names must be playlists or
// segment names (404). Unknown paths are 404; known paths with another method are 405 with `allow`.
Route route(std::string_view method, std::string_view target);

}  // namespace hlsrelay::server
