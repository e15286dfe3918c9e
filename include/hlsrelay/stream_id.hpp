// Stream ids derived from display names, and source URLs made safe to show in logs and status.
#pragma once

#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>

namespace hlsrelay {

// A stream id names a directory under hls_dir and a path segment of /hls_streams/, so it is kept short.
inline constexpr std::size_t kMaxSlugLength = 64;

namespace detail {

inline bool is_ascii_alnum(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

inline char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// In "scheme://userinfo@host/...": where the userinfo starts and where the host starts (the two are
// equal when there is no userinfo; both 0 without "://"). The authority is taken up to the first '/'
// only, so a password with an unencoded '?', '#' or '|' still counts as userinfo: at worst a host is
// mistaken for userinfo, never a secret for a host.
struct UserInfo {
    std::size_t begin = 0;
    std::size_t host = 0;
};

inline UserInfo find_userinfo(std::string_view url) {
    std::size_t sep = url.find("://");
    if (sep == std::string_view::npos) return {};
    std::size_t begin = sep + 3;
    std::size_t path = std::min(url.find('/', begin), url.size());
    std::size_t at = url.substr(begin, path - begin).rfind('@');
    return {begin, at == std::string_view::npos ? begin : begin + at + 1};
}

}  // namespace detail

// "AT&T Sports 2" -> "at_and_t_sports_2". Longer results are cut to kMaxSlugLength.
inline std::string slugify(std::string_view display_name) {
    std::string out;
    bool gap = false;  // a '_' is owed before the next word character, unless nothing came before
    auto put = [&](char c) {
        if (gap && !out.empty()) out += '_';
        gap = false;
        out += c;
    };
    for (char c : display_name) {
        if (detail::is_ascii_alnum(c)) {
            put(detail::ascii_lower(c));
        } else if (c == '&') {
            // "&" reads as its own word, so it is separated on both sides even when glued to others.
            gap = true;
            for (char w : std::string_view("and")) put(w);
            gap = true;
        } else {
            gap = true;  // non-ASCII bytes included: ids stay plain ASCII
        }
    }
    if (out.size() > kMaxSlugLength) {
        out.resize(kMaxSlugLength);
        while (out.back() == '_') out.pop_back();  // the first character is alphanumeric, so this stops
    }
    return out.empty() ? "channel" : out;
}

inline bool is_safe_slug(std::string_view s) {
    if (s.empty() || s.size() > kMaxSlugLength || s.front() == '-') return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    });
}

// Keeps scheme, host and path; what may carry a secret (userinfo, query, fragment, header suffix) goes.
inline std::string redact_url(std::string_view url) {
    std::string out;
    detail::UserInfo userinfo = detail::find_userinfo(url);
    std::string_view tail = url;
    if (userinfo.host > userinfo.begin) {
        out.append(url.substr(0, userinfo.begin)).append("***@");
        tail = url.substr(userinfo.host);
    }
    tail = tail.substr(0, tail.find('|'));  // Kodi-style "|User-Agent=..&Cookie=.." header suffix
    tail = tail.substr(0, tail.find('#'));
    std::size_t query = tail.find('?');
    out.append(tail.substr(0, query));
    if (query != std::string_view::npos && query + 1 < tail.size()) out.append("?***");
    return out;
}

}  // namespace hlsrelay
