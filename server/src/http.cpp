// HTTP/1.x helpers: header lookup, keep-alive rules, response heads, percent-decoding, dates.
#include "http.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <ctime>

namespace hlsrelay::server {

namespace {
char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// Whether a comma-separated header value lists `token` (case-insensitive), e.g. "keep-alive, Upgrade".
bool has_token(std::string_view list, std::string_view token) {
    while (!list.empty()) {
        const std::size_t comma = list.find(',');
        std::string_view item = list.substr(0, comma);
        while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
        while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
        if (iequals(item, token)) return true;
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
    }
    return false;
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}
}  // namespace

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return lower(x) == lower(y); });
}

std::optional<std::string_view> Request::header(std::string_view name) const {
    for (const auto& h : headers)
        if (iequals(h.name, name)) return std::string_view(h.value);
    return std::nullopt;
}


bool Request::keep_alive() const {
    const auto connection = header("Connection");
    if (version_major == 1 && version_minor == 0) return connection && has_token(*connection, "keep-alive");
    return !(connection && has_token(*connection, "close"));
}

std::string_view reason_phrase(int status) {
    switch (status) {
        case 200: return "OK";
        case 204: return "No Content";
        case 206: return "Partial Content";
        case 400: return "Bad Request";
        case 401: return "Unauthorized";
        case 403: return "Forbidden";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 408: return "Request Timeout";
        case 411: return "Length Required";
        case 413: return "Content Too Large";
        case 414: return "URI Too Long";
        case 416: return "Range Not Satisfiable";
        case 421: return "Misdirected Request";
        case 431: return "Request Header Fields Too Large";
        case 500: return "Internal Server Error";
        case 501: return "Not Implemented";
        case 502: return "Bad Gateway";
        case 503: return "Service Unavailable";
        case 505: return "HTTP Version Not Supported";
        default: return "Unknown";
    }
}

std::string serialize_head(const Response& r, bool keep_alive, bool http10) {
    std::string out;
    out.reserve(256 + r.headers.size() * 48);
    out += "HTTP/1.1 ";  // RFC 9110 6.2: the highest 1.x version we conform to, even to 1.0 clients
    out += std::to_string(r.status);
    out += ' ';
    out += reason_phrase(r.status);
    out += "\r\nDate: ";
    out += http_date();
    // Players may be served from elsewhere: HLS delivery is readable cross-origin. Control and status
    // endpoints are not (a web page the operator visits must not read or drive them).
    if (r.cors)
        out += "\r\nAccess-Control-Allow-Origin: *\r\nAccess-Control-Expose-Headers: Content-Length, Content-Range, Accept-Ranges";
    for (const auto& h : r.headers) {
        out += "\r\n";
        out += h.name;
        out += ": ";
        out += h.value;
    }
    if (r.status != 204 && r.status >= 200 && !r.stream) {
        out += "\r\nContent-Length: ";
        out += std::to_string(r.payload().size());
    }
    if (!keep_alive)
        out += "\r\nConnection: close";
    else if (http10)
        out += "\r\nConnection: keep-alive";
    out += "\r\n\r\n";
    return out;
}

std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%') {
            if (i + 2 >= s.size()) return std::nullopt;
            const int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
            if (hi < 0 || lo < 0) return std::nullopt;
            out += static_cast<char>(hi * 16 + lo);
            i += 2;
        } else if (plus_is_space && s[i] == '+') {
            out += ' ';
        } else {
            out += s[i];
        }
    }
    return out;
}

std::string http_date() {
    // Formatted once per second per io thread: every response carries it.
    thread_local std::time_t cached_at = -1;
    thread_local std::string cached;
    const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    if (now != cached_at) {
        std::tm tm{};
        gmtime_r(&now, &tm);
        char buf[64];
        const std::size_t n = std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        cached.assign(buf, n);
        cached_at = now;
    }
    return cached;
}

}  // namespace hlsrelay::server
