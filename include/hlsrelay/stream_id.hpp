// Stream ids derived from display names, and source URLs made safe to show in logs and status.
#pragma once

#include <hlsrelay/text.hpp>

#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace hlsrelay {

// A stream id names a directory under hls_dir and a path segment of /hls_streams/, so it is kept short.
inline constexpr std::size_t kMaxSlugLength = 64;

namespace detail {

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
        if (is_ascii_alnum(c)) {
            put(ascii_lower(c));
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

namespace detail {

// "100", "100.ts", "100.m3u8": the stream number that ends an Xtream-Codes URL.
inline bool is_stream_number(std::string_view s) {
    const std::size_t dot = s.find('.');
    const std::string_view number = s.substr(0, dot);
    if (number.empty() || !std::all_of(number.begin(), number.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return false;
    if (dot == std::string_view::npos) return true;
    const std::string_view ext = s.substr(dot + 1);
    return !ext.empty() && ext.size() <= 5 && std::all_of(ext.begin(), ext.end(), is_ascii_alnum);
}

// A URL path ("/a/b/c") with the Xtream-Codes credentials replaced by "***":
// /live|movie|series|timeshift/USER/PASS/<anything> and the bare /USER/PASS/<number>[.<ext>].
inline std::string redact_path(std::string_view path) {
    std::vector<std::string_view> segments;  // of "/a/b": "", "a", "b"
    for (std::size_t start = 0;;) {
        const std::size_t slash = path.find('/', start);
        segments.push_back(path.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start));
        if (slash == std::string_view::npos) break;
        start = slash + 1;
    }
    const std::size_t n = segments.size() - 1;  // segments after the leading ""
    bool xtream = false;
    if (n >= 4) {
        for (std::string_view kind : {"live", "movie", "series", "timeshift"})
            xtream = xtream || iequals(segments[1], kind);
        if (xtream) segments[2] = segments[3] = "***";
    }
    if (!xtream && n == 3 && !segments[1].empty() && !segments[2].empty() && is_stream_number(segments[3]))
        segments[1] = segments[2] = "***";
    std::string out;
    for (std::size_t i = 0; i < segments.size(); ++i) {
        if (i > 0) out += '/';
        out += segments[i];
    }
    return out;
}

inline bool is_scheme_char(char c) { return is_ascii_alnum(c) || c == '+' || c == '-' || c == '.'; }

}  // namespace detail

// A source URL as status, errors, logs and metrics show it: scheme://host[:port]/path with what may
// carry a secret removed. Precisely:
//  - userinfo becomes "***@" ("http://***@host/a.m3u8");
//  - a query becomes "?***" whatever it holds (username=, password=, token=, key=, signatures);
//  - a fragment and a Kodi-style "|Header=value&..." suffix are dropped;
//  - Xtream-Codes paths lose the user and password segments: /live/USER/PASS/100.m3u8 ->
//    /live/***/***/100.m3u8 (also movie, series, timeshift, with any number of segments after PASS),
//    and the bare /USER/PASS/100 (or 100.ts, 100.m3u8: a number, an optional short extension) ->
//    /***/***/100. A CDN path of the same shape is over-redacted, never the other way round.
// Something without "://" (a local path) is only cut at '?', '#' and '|'. Idempotent.
inline std::string redact_url(std::string_view url) {
    std::string out;
    const detail::UserInfo userinfo = detail::find_userinfo(url);
    std::string_view tail = url;  // from the host on (or the whole text when it is no URL)
    if (userinfo.host > userinfo.begin) {
        out.append(url.substr(0, userinfo.begin)).append("***@");
        tail = url.substr(userinfo.host);
    } else if (userinfo.begin > 0) {
        out.append(url.substr(0, userinfo.begin));
        tail = url.substr(userinfo.begin);
    }
    tail = tail.substr(0, tail.find('|'));  // Kodi-style "|User-Agent=..&Cookie=.." header suffix
    tail = tail.substr(0, tail.find('#'));
    const std::size_t query = tail.find('?');
    const std::string_view before_query = tail.substr(0, query);
    const std::size_t path = userinfo.begin > 0 ? before_query.find('/') : std::string_view::npos;
    out.append(before_query.substr(0, path));
    if (path != std::string_view::npos) out.append(detail::redact_path(before_query.substr(path)));
    if (query != std::string_view::npos && query + 1 < tail.size()) out.append("?***");
    return out;
}

// Free text (an error message) with every "scheme://..." URL in it redacted (redact_url) or, with
// `hide`, replaced by "<url hidden>". A URL runs to the next blank, quote or angle bracket; trailing
// punctuation (".,;:)]}!") stays outside it.
inline std::string scrub_urls(std::string_view text, bool hide = false) {
    std::string out;
    std::size_t copied = 0;
    for (std::size_t pos = text.find("://"); pos != std::string_view::npos; pos = text.find("://", pos)) {
        std::size_t begin = pos;
        while (begin > copied && detail::is_scheme_char(text[begin - 1])) --begin;
        std::size_t end = pos + 3;
        while (end < text.size() && std::string_view(" \t\r\n\"'<>`").find(text[end]) == std::string_view::npos) ++end;
        while (end > pos + 3 && std::string_view(".,;:)]}!").find(text[end - 1]) != std::string_view::npos) --end;
        out.append(text.substr(copied, begin - copied));
        out.append(hide ? std::string("<url hidden>") : redact_url(text.substr(begin, end - begin)));
        copied = pos = std::max(end, pos + 3);
    }
    out.append(text.substr(copied));
    return out;
}

}  // namespace hlsrelay
