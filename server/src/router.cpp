// The route table and the path rules: decode each segment once, refuse traversal, then match.
#include "router.hpp"

#include "http.hpp"

#include <hlsrelay/playlist.hpp>
#include <hlsrelay/presentation.hpp>
#include <hlsrelay/stream_id.hpp>
#include <hlsrelay/window.hpp>

#include <algorithm>
#include <optional>
#include <vector>

namespace hlsrelay::server {

namespace {

enum Method : unsigned { GET = 1, HEAD = 2, POST = 4, PATCH = 8, DELETE = 16 };

// A pattern segment: a literal, or a capture ("{}", "{channel_name}") of a non-empty segment.
struct Pattern {
    std::vector<std::string_view> segments;
    unsigned methods;
    RouteKind kind;
    api::Endpoint endpoint;
    const api::EndpointDef* api = nullptr;
};

using E = api::Endpoint;

// The server's own paths, then one per row of the API's endpoint table.
const std::vector<Pattern>& patterns() {
    static const std::vector<Pattern> table = [] {
        std::vector<Pattern> t{
            {{""}, GET | HEAD, RouteKind::index, E::status},
            {{"assets", kHlsJsAsset}, GET | HEAD, RouteKind::asset, E::status},
            {{"healthz"}, GET | HEAD, RouteKind::healthz, E::health},
            {{"metrics"}, GET | HEAD, RouteKind::metrics, E::status},
            {{"hls_streams", "{}", "{}"}, GET | HEAD, RouteKind::hls, E::media},
            // A rendition of a presentation: exactly one "<v|a|s><n>/" level before the file.
            {{"hls_streams", "{}", "{}", "{}"}, GET | HEAD, RouteKind::hls, E::media},
            {{"stream", "{}"}, GET | HEAD, RouteKind::ts_stream, E::media},
            {{"auto", "{}"}, GET | HEAD, RouteKind::tuner_auto, E::media},
        };
        for (const api::EndpointDef& d : api::endpoints()) {
            // State changes offer no HEAD: it must be safe.
            const unsigned methods = d.method == "POST"     ? POST
                                     : d.method == "PATCH"  ? PATCH
                                     : d.method == "DELETE" ? DELETE
                                     : d.allows_head()      ? GET | HEAD
                                                            : GET;
            t.push_back({api::path_segments(d.path), methods, RouteKind::endpoint, d.access, &d});
        }
        return t;
    }();
    return table;
}

std::string allow_header(unsigned methods, bool with_options) {
    std::string out;
    auto add = [&](unsigned bit, const char* name) {
        if (!(methods & bit)) return;
        if (!out.empty()) out += ", ";
        out += name;
    };
    add(GET, "GET");
    add(HEAD, "HEAD");
    add(POST, "POST");
    add(PATCH, "PATCH");
    add(DELETE, "DELETE");
    if (with_options) out += out.empty() ? "OPTIONS" : ", OPTIONS";
    return out;
}

Route error(int status, std::string detail) {
    Route r;
    r.status = status;
    r.detail = std::move(detail);
    return r;
}

// What a decoded segment may not be: a separator, a parent or current directory, or a control byte.
bool forbidden_segment(std::string_view s) {
    if (s == "." || s == "..") return true;
    return std::any_of(s.begin(), s.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return c == '/' || c == '\\' || u < 0x20 || u == 0x7f;
    });
}

// Origin-form from absolute-form ("http://host:port/path?q" -> "/path?q").
std::string_view origin_form(std::string_view target) {
    for (std::string_view scheme : {"http://", "https://"}) {
        if (target.size() >= scheme.size() && iequals(target.substr(0, scheme.size()), scheme)) {
            const std::size_t slash = target.find_first_of("/?", scheme.size());
            if (slash == std::string_view::npos) return "/";
            return target.substr(slash);
        }
    }
    return target;
}

bool valid_hls_file(std::string_view file) {
    if (file == kMasterPlaylistName) return true;
    if (const auto sub = split_rendition_path(file)) file = sub->file;  // a rendition has no master of its own
    return file == kMediaPlaylistName || Segment::parse_any_name(file).has_value() ||
           InitSection::parse_name(file).has_value() || parse_part_name(file).has_value();
}

}  // namespace

Route route(std::string_view method, std::string_view target) {
    const bool options = method == "OPTIONS";
    unsigned method_bit = 0;
    if (method == "GET") method_bit = GET;
    if (method == "HEAD") method_bit = HEAD;
    if (method == "POST") method_bit = POST;
    if (method == "PATCH") method_bit = PATCH;
    if (method == "DELETE") method_bit = DELETE;

    if (target == "*") {
        if (!options) return error(400, "Invalid request target");
        Route r;
        r.kind = RouteKind::preflight;
        r.allow = allow_header(GET | HEAD | POST, true);
        return r;
    }
    target = origin_form(target);
    if (target.empty() || target.front() != '/') return error(400, "Invalid request target");
    if (const std::size_t hash = target.find('#'); hash != std::string_view::npos) target = target.substr(0, hash);

    std::string_view path = target, query;
    if (const std::size_t q = target.find('?'); q != std::string_view::npos) {
        path = target.substr(0, q);
        query = target.substr(q + 1);
    }

    Route r;
    while (!query.empty()) {
        const std::size_t amp = query.find('&');
        const std::string_view item = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
        if (item.empty()) continue;
        const std::size_t eq = item.find('=');
        auto name = percent_decode(item.substr(0, eq), true);
        auto value = percent_decode(eq == std::string_view::npos ? std::string_view() : item.substr(eq + 1), true);
        if (!name || !value) return error(400, "Malformed percent-encoding in query");
        r.query.emplace(std::move(*name), std::move(*value));  // emplace keeps the first
    }

    std::vector<std::string> segments;
    path.remove_prefix(1);
    for (;;) {
        const std::size_t slash = path.find('/');
        auto decoded = percent_decode(path.substr(0, slash));
        if (!decoded) return error(400, "Malformed percent-encoding in path");
        if (forbidden_segment(*decoded)) return error(400, "Invalid path");
        segments.push_back(std::move(*decoded));
        if (slash == std::string_view::npos) break;
        path.remove_prefix(slash + 1);
    }

    unsigned allowed = 0;
    bool media = false;
    for (const Pattern& p : patterns()) {
        if (p.segments.size() != segments.size()) continue;
        std::vector<const std::string*> captures;
        bool match = true;
        for (std::size_t i = 0; i < segments.size() && match; ++i) {
            if (p.segments[i] == "{}" || api::is_capture(p.segments[i])) {
                match = !segments[i].empty();
                captures.push_back(&segments[i]);
            } else {
                match = segments[i] == p.segments[i];
            }
        }
        if (!match) continue;
        allowed |= p.methods;
        media = media || p.endpoint == E::media;
        if (!(p.methods & method_bit) || options) continue;

        r.kind = p.kind;
        r.endpoint = p.endpoint;
        r.api = p.api;
        r.head = method_bit == HEAD;
        if (p.kind == RouteKind::asset) r.file = segments.back();
        if (!captures.empty()) r.channel = *captures.front();
        if (p.kind == RouteKind::hls) {
            r.file = captures.size() == 3 ? *captures[1] + "/" + *captures[2] : *captures.back();
            // Only registry ids name channels here: a display name or anything else is no file.
            if (!is_safe_slug(r.channel) || !valid_hls_file(r.file)) {
                Route e = error(404, "Not found");
                e.endpoint = E::media;  // readable cross-origin, like every HLS answer
                return e;
            }
        }
        if (p.kind == RouteKind::ts_stream || p.kind == RouteKind::tuner_auto) {
            // "/stream/news.ts": a registry id and ".ts"; "/auto/v5.1": "v" and a GuideNumber.
            const std::string& s = *captures.front();
            const bool ts = p.kind == RouteKind::ts_stream;
            const bool ok = ts ? s.size() > 3 && s.compare(s.size() - 3, 3, ".ts") == 0 && is_safe_slug(s.substr(0, s.size() - 3))
                               : s.size() > 1 && s.front() == 'v';
            if (!ok) {
                Route e = error(404, "Not found");
                e.endpoint = E::media;
                return e;
            }
            r.channel = ts ? s.substr(0, s.size() - 3) : s.substr(1);
        }
        return r;
    }
    if (allowed == 0) return error(404, "Not found");
    if (options) {
        r.kind = RouteKind::preflight;
        r.allow = allow_header(allowed, true);
        r.endpoint = media ? E::media : E::status;
        return r;
    }
    Route e = error(405, "Method Not Allowed");
    e.allow = allow_header(allowed, true);
    return e;
}

}  // namespace hlsrelay::server
