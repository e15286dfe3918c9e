// Which URLs the engine may open, and for whom: the one home of the scheme and origin rules that
// keep a hostile upstream from reaching local files, other protocols or the channel's credentials.
// Pure functions over strings (no I/O, no libav), so every rule is unit-tested on its own.
//
//  - A channel list may name remote sources (http, https) and local ones (a file path or file:,
//    udp, srt, rtmp(s), rtsp(s)); anything else (concat:, subfile, data:, gopher, ...) is refused.
//  - A URI found in a playlist (variant, media playlist, segment, key, init section) or an HTTP
//    redirect must be http or https; only a playlist the channel list names as a local file may
//    name local files too (the operator wrote it).
//  - A channel list fetched by URL (EngineSettings::channel_lists) was not written by the operator
//    either: its sources may be what a list names except local files (check_listed_source).
//  - The channel's headers go to the channel's own origin only (see allowed_everywhere()).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace hlsrelay::url {

namespace detail {
inline char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }
inline bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
inline bool is_scheme_char(char c) {
    return is_alpha(c) || (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.';
}
inline std::string lowered(std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = lower(c);
    return out;
}
}  // namespace detail

// The scheme a URL would be opened with, lowercase. Conservative where libav's own detection is odd:
//  - no scheme (a plain path, "./x", "a b:c", a leading space), a DOS drive ("C:\x", "c:/x"): "file";
//  - "subfile,,start,0,end,9,,:/etc/passwd": "subfile" (libav's special form);
//  - a nested scheme "crypto+http://x": "crypto" (the protocol libav would run);
//  - "": "" (nothing to open).
// Only "http" and "https" are remote; everything else is refused wherever a remote upstream names it.
inline std::string scheme_of(std::string_view url) {
    if (url.empty()) return "";
    if (url.size() >= 8 && detail::lowered(url.substr(0, 8)) == "subfile,") return "subfile";
    std::size_t n = 0;
    while (n < url.size() && detail::is_scheme_char(url[n])) ++n;
    if (n == 0 || n == url.size() || url[n] != ':' || !detail::is_alpha(url[0])) return "file";
    if (n == 1) return "file";  // "C:\..." or "C:/...": a DOS path
    std::string scheme = detail::lowered(url.substr(0, n));
    if (const auto plus = scheme.find('+'); plus != std::string::npos) scheme.resize(plus);
    return scheme;
}

inline bool is_remote_scheme(std::string_view scheme) { return scheme == "http" || scheme == "https"; }
inline bool is_remote(std::string_view url) { return is_remote_scheme(scheme_of(url)); }

// scheme + host + effective port of an http(s) URL; what the header scope compares.
struct Origin {
    std::string scheme;  // "http" or "https"
    std::string host;    // lowercase; an IPv6 literal without its brackets
    uint16_t port = 0;   // 80 / 443 when the URL names none
    bool operator==(const Origin&) const = default;
    std::string text() const {
        const bool v6 = host.find(':') != std::string::npos;
        return scheme + "://" + (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
    }
};

// The parts of an http(s) URL the client needs. nullopt for another scheme or a malformed authority
// (no host, a port that is not 1..65535, an unterminated IPv6 literal).
struct Parts {
    Origin origin;
    std::string userinfo;   // "user:pass" as written (percent-encoded), "" when none
    std::string host_port;  // the Host header: host[:port] as written, without userinfo
    std::string target;     // path and query ("/" when empty), without the fragment
};

inline std::optional<Parts> split_http(std::string_view url) {
    const std::string scheme = scheme_of(url);
    if (!is_remote_scheme(scheme)) return std::nullopt;
    std::string_view rest = url.substr(scheme.size() + 1);
    if (rest.substr(0, 2) != "//") return std::nullopt;
    rest.remove_prefix(2);
    std::size_t end = rest.find_first_of("/?#");
    if (end == std::string_view::npos) end = rest.size();
    std::string_view authority = rest.substr(0, end);
    Parts p;
    p.origin.scheme = scheme;
    if (const auto at = authority.rfind('@'); at != std::string_view::npos) {
        p.userinfo = std::string(authority.substr(0, at));
        authority.remove_prefix(at + 1);
    }
    std::string_view host, port;
    if (!authority.empty() && authority.front() == '[') {
        const auto close = authority.find(']');
        if (close == std::string_view::npos) return std::nullopt;
        host = authority.substr(1, close - 1);
        const std::string_view after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') return std::nullopt;
            port = after.substr(1);
        }
    } else {
        const auto colon = authority.rfind(':');
        host = authority.substr(0, colon);
        if (colon != std::string_view::npos) port = authority.substr(colon + 1);
    }
    if (host.empty()) return std::nullopt;
    for (char c : host)
        if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f || c == '/' || c == '\\' || c == '@') return std::nullopt;
    if (port.empty()) {
        p.origin.port = scheme == "https" ? 443 : 80;
    } else {
        if (port.size() > 5) return std::nullopt;
        unsigned value = 0;
        for (char c : port) {
            if (c < '0' || c > '9') return std::nullopt;
            value = value * 10 + static_cast<unsigned>(c - '0');
        }
        if (value == 0 || value > 65535) return std::nullopt;
        p.origin.port = static_cast<uint16_t>(value);
    }
    p.origin.host = detail::lowered(host);
    p.host_port = std::string(authority);
    std::string_view target = rest.substr(end);
    if (const auto hash = target.find('#'); hash != std::string_view::npos) target = target.substr(0, hash);
    if (target.empty() || target.front() != '/') p.target = "/";
    for (char c : target) {
        const auto u = static_cast<unsigned char>(c);
        if (u <= 0x20 || u >= 0x7f) {  // would split the request line, or is not ASCII: percent-encoded
            static const char* hex = "0123456789ABCDEF";
            p.target += '%';
            p.target += hex[u >> 4];
            p.target += hex[u & 15];
        } else {
            p.target += c;
        }
    }
    return p;
}

inline std::optional<Origin> origin_of(std::string_view url) {
    auto p = split_http(url);
    if (!p) return std::nullopt;
    return p->origin;
}

// Both http(s) with the same scheme, host (case-insensitive) and effective port.
inline bool same_origin(std::string_view a, std::string_view b) {
    const auto oa = origin_of(a), ob = origin_of(b);
    return oa && ob && *oa == *ob;
}

// Headers that travel to every origin (CDNs check them); all others only to the channel's own.
inline bool allowed_everywhere(std::string_view header_name) {
    const std::string n = detail::lowered(header_name);
    return n == "user-agent" || n == "referer";
}

// Schemes a channel list may name, and the libav protocols each needs (its protocol_whitelist).
// nullopt: refused. http/https are read by the engine's own client, so libav gets no protocol.
inline std::optional<std::string> source_protocols(std::string_view scheme) {
    if (scheme == "http" || scheme == "https") return std::string();
    if (scheme == "file") return std::string("file");
    if (scheme == "udp") return std::string("udp");
    if (scheme == "srt") return std::string("srt");
    if (scheme == "rtmp") return std::string("rtmp,tcp");
    if (scheme == "rtmps") return std::string("rtmps,tls,tcp");
    // RTSP is a demuxer that opens its own control and media connections.
    if (scheme == "rtsp") return std::string("rtsp,rtp,udp,tcp");
    if (scheme == "rtsps") return std::string("rtsps,rtp,udp,tcp,tls");
    return std::nullopt;
}

// The error for a channel-list URL with a refused scheme; "" when allowed.
inline std::string check_source(std::string_view url) {
    const std::string scheme = scheme_of(url);
    if (source_protocols(scheme)) return "";
    return "refused URI scheme '" + scheme + "' in the channel list (allowed: http, https, a file, udp, srt, " +
           "rtmp, rtmps, rtsp, rtsps)";
}

// The error for a source named by a channel list fetched by URL ("" when allowed): as check_source,
// but never a local file (a file path or file:), which only the operator's own lists may name.
inline std::string check_listed_source(std::string_view url) {
    if (!url.empty() && url.front() == '/') return "a list fetched by URL may not name a local file";
    const std::string scheme = scheme_of(url);
    if (scheme == "file") return "a list fetched by URL may not name a local file";
    return check_source(url);
}

// The error for a URI a playlist names ("" when allowed): http(s) always; a local file only when the
// playlist naming it (`parent`) is itself a local file, i.e. the channel list named it.
inline std::string check_playlist_uri(std::string_view uri, std::string_view parent) {
    const std::string scheme = scheme_of(uri);
    if (is_remote_scheme(scheme)) return "";
    if (scheme == "file" && scheme_of(parent) == "file") return "";
    return "refused URI scheme '" + scheme + "' in playlist";
}

// The error for an HTTP redirect target ("" when allowed): http or https only.
inline std::string check_redirect(std::string_view target) {
    const std::string scheme = scheme_of(target);
    if (is_remote_scheme(scheme)) return "";
    return "refused redirect to URI scheme '" + scheme + "'";
}

// The path a local-file URL names: "file:/x" and "file:///x" -> "/x" (as libav's file protocol reads
// them), a plain path as it is.
inline std::string local_path(std::string_view url) {
    if (url.size() >= 5 && detail::lowered(url.substr(0, 5)) == "file:") {
        url.remove_prefix(5);
        if (url.substr(0, 3) == "///") url.remove_prefix(2);
    }
    return std::string(url);
}

}  // namespace hlsrelay::url
