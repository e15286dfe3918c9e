// The channel registry and its loaders: IPTV M3U and JSON channel lists in, JSON out.
#pragma once
#define HLSRELAY_REGISTRY_HPP 1  // tests check that engine.hpp does not pull it in

#include <hlsrelay/channel.hpp>
#include <hlsrelay/json.hpp>
#include <hlsrelay/settings.hpp>
#include <hlsrelay/stream_id.hpp>
#include <hlsrelay/text.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace hlsrelay {

namespace detail {

// On a match, drops the prefix from `s`.
inline bool consume_prefix_icase(std::string_view& s, std::string_view prefix) {
    if (!starts_with_icase(s, prefix)) return false;
    s.remove_prefix(prefix.size());
    return true;
}

// A '%' not followed by two hex digits is kept as is: hand-written playlists are sloppy.
inline std::string percent_decode(std::string_view s) {
    const auto hex = hex_digit_value;
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
            out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
            i += 2;
        } else {
            out += s[i];
        }
    }
    return out;
}

// Players spell these three ways; one spelling keeps a channel from sending the header twice.
inline std::string normalize_header_name(std::string_view name) {
    name = trim(name);
    if (iequals(name, "user-agent")) return "User-Agent";
    if (iequals(name, "referer") || iequals(name, "referrer")) return "Referer";
    return std::string(name);
}

inline std::map<std::string, std::string> normalize_headers(const std::map<std::string, std::string>& in) {
    std::map<std::string, std::string> out;
    for (const auto& [name, value] : in) out[normalize_header_name(name)] = value;
    return out;
}

// Length of the valid UTF-8 sequence starting at s[i], or 0 if there is none.
inline std::size_t utf8_sequence_length(std::string_view s, std::size_t i) {
    auto byte = [&](std::size_t k) -> unsigned { return static_cast<unsigned char>(s[k]); };
    unsigned lead = byte(i);
    if (lead < 0x80) return 1;
    std::size_t len = 0;
    unsigned lo = 0x80, hi = 0xBF;  // the second byte's range excludes overlongs and surrogates
    if (lead >= 0xC2 && lead <= 0xDF) {
        len = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
        len = 3;
        if (lead == 0xE0) lo = 0xA0;
        if (lead == 0xED) hi = 0x9F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
        len = 4;
        if (lead == 0xF0) lo = 0x90;
        if (lead == 0xF4) hi = 0x8F;
    } else {
        return 0;
    }
    if (i + len > s.size() || byte(i + 1) < lo || byte(i + 1) > hi) return 0;
    for (std::size_t k = 2; k < len; ++k)
        if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
    return len;
}

// Names end up in JSON, which must be UTF-8 (nlohmann throws on anything else). Playlists in the wild
// are often Latin-1, so a byte that is not valid UTF-8 is read as Latin-1 rather than dropped.
inline std::string repair_utf8(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size();) {
        if (std::size_t len = utf8_sequence_length(s, i)) {
            out.append(s.substr(i, len));
            i += len;
        } else {
            auto b = static_cast<unsigned char>(s[i++]);
            out += static_cast<char>(0xC0 | (b >> 6));
            out += static_cast<char>(0x80 | (b & 0x3F));
        }
    }
    return out;
}

inline std::string variant_problem(std::string_view v) {
    if (renditions_for_variant(v)) return {};
    return "variant '" + repair_utf8(v) + "' is not \"highest\", \"lowest\" or a bandwidth in bits/s (1 to 12 digits)";
}

// RFC 9110 token characters: anything else could split or forge a request header.
inline bool is_header_name(std::string_view name) {
    return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
        return is_ascii_alnum(c) || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
    });
}

inline std::string headers_problem(const std::map<std::string, std::string>& headers) {
    for (const auto& [name, value] : headers) {
        if (!is_header_name(name)) return "header name '" + repair_utf8(name) + "' is not a valid HTTP header name";
        if (std::any_of(value.begin(), value.end(), [](char c) { return is_ascii_control(c) && c != '\t'; }))
            return "header '" + name + "' has control characters in its value";
    }
    return {};
}

// The guide attributes: bounded, no control characters (they are echoed into M3U lines), names of
// a-z 0-9 - _.
inline std::string attributes_problem(const ChannelConfig& c) {
    auto bad_text = [](std::string_view v) {
        return v.size() > kMaxAttributeBytes || std::any_of(v.begin(), v.end(), is_ascii_control);
    };
    for (auto [name, value] : {std::pair<const char*, const std::string*>{"tvg_id", &c.tvg_id}, {"tvg_name", &c.tvg_name},
                               {"chno", &c.chno}})
        if (bad_text(*value)) return std::string(name) + " is longer than " + std::to_string(kMaxAttributeBytes) + " bytes or has control characters";
    if (!(std::abs(c.tvg_shift) <= kMaxTvgShiftHours)) return "tvg_shift must be between -48 and 48 hours";
    if (c.provider.size() > 64 || !std::all_of(c.provider.begin(), c.provider.end(), [](char ch) {
            return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-';
        }))
        return "provider must be at most 64 characters of A-Z a-z 0-9 . _ -";
    if (c.attributes.size() > kMaxChannelAttributes)
        return "more than " + std::to_string(kMaxChannelAttributes) + " pass-through attributes";
    for (const auto& [name, value] : c.attributes) {
        if (name.empty() || name.size() > 64 || !std::all_of(name.begin(), name.end(), [](char ch) {
                return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_';
            }))
            return "attribute name '" + repair_utf8(name) + "' is not 1-64 of a-z 0-9 - _";
        if (bad_text(value)) return "attribute '" + name + "' is longer than " + std::to_string(kMaxAttributeBytes) + " bytes or has control characters";
    }
    return {};
}

// What Registry::add refuses; the loaders check the same so that whatever they return can be added.
inline std::string channel_problem(const ChannelConfig& c) {
    if (c.id.empty() && c.name.empty()) return "a channel needs a name or an id";
    if (!c.id.empty() && !is_safe_slug(c.id))
        return "id '" + repair_utf8(c.id) + "' is not a safe stream id (1-64 of a-z 0-9 _ -, not starting with -)";
    if (c.urls.empty()) return "no source URL";
    for (const std::string& url : c.urls) {
        if (trim(url).empty()) return "a source URL is empty";
        if (std::any_of(url.begin(), url.end(), is_ascii_control)) return "a source URL contains control characters";
    }
    if (std::string p = headers_problem(c.headers); !p.empty()) return p;
    if (std::string p = overrides_problem(c.hls); !p.empty()) return p;
    if (std::string p = limits_problem(c.limits); !p.empty()) return p;
    if (std::string p = attributes_problem(c); !p.empty()) return p;
    return c.variant ? variant_problem(*c.variant) : std::string();
}

// Stricter than channel_problem, for text from files: what is neither a URL nor an absolute path is
// more likely a stray line than a source. Paths may contain spaces; URLs must encode them.
inline std::string source_problem(std::string_view url) {
    if (url.empty()) return "empty URL";
    if (std::any_of(url.begin(), url.end(), is_ascii_control)) return "URL contains control characters";
    if (url.front() == '/' || starts_with_icase(url, "file:")) return {};
    std::size_t sep = url.find("://");
    bool scheme = sep != std::string_view::npos && sep > 0 && sep + 3 < url.size() &&
                  ascii_lower(url.front()) >= 'a' && ascii_lower(url.front()) <= 'z' &&
                  std::all_of(url.begin(), url.begin() + static_cast<std::ptrdiff_t>(sep),
                              [](char c) { return is_ascii_alnum(c) || c == '+' || c == '-' || c == '.'; });
    if (!scheme) return "not a URL (scheme://...) or an absolute path: " + repair_utf8(redact_url(url));
    if (url.find(' ') != std::string_view::npos) return "URL contains spaces (encode them as %20): " + repair_utf8(redact_url(url));
    return {};
}

// "http://h/live/News%20HD.m3u8?x" -> "News HD.m3u8"; a name for entries that come without one.
inline std::string name_from_url(std::string_view url) {
    std::string_view rest = url.substr(find_userinfo(url).host);
    rest = rest.substr(0, rest.find_first_of("?#|"));
    while (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
    if (std::size_t slash = rest.rfind('/'); slash != std::string_view::npos) rest.remove_prefix(slash + 1);
    std::string name = repair_utf8(trim(percent_decode(rest)));
    return name.empty() ? repair_utf8(redact_url(url)) : name;
}

// Splits Kodi's "URL|Name=Value&Name=Value" into the URL and its headers (percent-decoded). Returns
// one problem per item that is not Name=Value; the other items still apply.
inline std::vector<std::string> split_source(std::string_view text, std::string& url,
                                             std::map<std::string, std::string>& headers) {
    std::vector<std::string> problems;
    std::size_t bar = text.find('|');
    url = std::string(trim(text.substr(0, bar)));
    if (bar == std::string_view::npos) return problems;
    std::string_view items = text.substr(bar + 1);
    while (!items.empty()) {
        std::size_t amp = items.find('&');
        std::string_view item = trim(items.substr(0, amp));
        items = amp == std::string_view::npos ? std::string_view() : items.substr(amp + 1);
        if (item.empty()) continue;
        std::size_t eq = item.find('=');
        if (eq == std::string_view::npos || eq == 0) {
            problems.push_back("header '" + repair_utf8(item) + "' after '|' is not Name=Value; ignored");
            continue;
        }
        headers[normalize_header_name(percent_decode(item.substr(0, eq)))] = percent_decode(trim(item.substr(eq + 1)));
    }
    return problems;
}

inline void sort_issues(std::vector<LoadIssue>& issues) {
    std::stable_sort(issues.begin(), issues.end(), [](const LoadIssue& a, const LoadIssue& b) { return a.line < b.line; });
}

// ---- M3U ----

struct ExtInf {
    std::map<std::string, std::string> attributes;  // names lowercased
    std::string title;                              // after the first comma outside quotes
};

// "#EXTINF:" is already removed. Returns a problem, or empty on success.
inline std::string parse_extinf(std::string_view body, ExtInf& out) {
    std::size_t i = 0, n = body.size();
    auto skip_spaces = [&] {
        while (i < n && is_ascii_space(body[i])) ++i;
    };
    auto is_stop = [](char c) { return is_ascii_space(c) || c == ','; };
    // The duration ("-1"); some generators leave it out and start with an attribute.
    skip_spaces();
    std::size_t token_end = std::min(body.find_first_of(" \t,", i), n);
    if (body.substr(i, token_end - i).find('=') == std::string_view::npos) i = token_end;
    for (;;) {
        skip_spaces();
        if (i >= n) return "#EXTINF has no comma before the display name";
        if (body[i] == ',') {
            out.title = std::string(trim(body.substr(i + 1)));
            return {};
        }
        std::size_t key_start = i;
        while (i < n && !is_stop(body[i]) && body[i] != '=') ++i;
        std::string key = ascii_lower(body.substr(key_start, i - key_start));
        if (i >= n || body[i] != '=') continue;  // a bare word: nothing to keep
        ++i;
        std::string_view value;
        if (i < n && body[i] == '"') {
            std::size_t close = body.find('"', i + 1);
            if (close == std::string_view::npos) return "unterminated quote in #EXTINF attribute '" + repair_utf8(key) + "'";
            value = body.substr(i + 1, close - i - 1);
            i = close + 1;
        } else {
            std::size_t value_start = i;
            while (i < n && !is_stop(body[i])) ++i;
            value = body.substr(value_start, i - value_start);
        }
        out.attributes[key] = std::string(value);
    }
}

class M3uParser {
public:
    LoadReport run(std::string_view text) {
        if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
        for (int line_no = 1;; ++line_no) {
            std::size_t nl = text.find('\n');
            on_line(line_no, trim(text.substr(0, nl)));
            if (nl == std::string_view::npos) break;
            text.remove_prefix(nl + 1);
        }
        drop_dangling_extinf();
        sort_issues(report_.issues);
        return std::move(report_);
    }

private:
    // What the lines before a URL said about it.
    struct Pending {
        int extinf_line = 0;  // 0: no #EXTINF yet
        bool broken = false;  // the #EXTINF was malformed (and reported): its URL is consumed unused
        ExtInf extinf;
        std::string extgrp;
        std::map<std::string, std::string> headers;
        bool loop = false;
        std::vector<std::string> backups;
    };

    void issue(int line, std::string message) { report_.issues.push_back({line, std::move(message)}); }

    void on_line(int line_no, std::string_view line) {
        if (line.empty()) return;
        if (line.front() != '#') return on_url(line_no, line);
        std::string_view rest = line;
        if (consume_prefix_icase(rest, "#EXTINF:")) return on_extinf(line_no, rest);
        if (consume_prefix_icase(rest, "#EXTVLCOPT:")) return on_vlcopt(rest);
        if (consume_prefix_icase(rest, "#EXTHTTP:")) return on_exthttp(line_no, rest);
        if (consume_prefix_icase(rest, "#EXTGRP:")) {
            pending_.extgrp = std::string(trim(rest));
            return;
        }
        if (consume_prefix_icase(rest, "#EXTHLSRELAY-BACKUP:")) return on_backup(line_no, trim(rest));
        if (consume_prefix_icase(rest, "#EXTM3U")) return on_header(line_no, rest);
        // #EXTM3U, #KODIPROP and the like: nothing we use.
    }

    // "#EXTM3U url-tvg="http://a/epg.xml.gz,http://b/epg.xml" x-tvg-url=...": the list's guides.
    void on_header(int line_no, std::string_view rest) {
        ExtInf header;
        if (!parse_extinf(std::string(rest) + ",", header).empty()) return issue(line_no, "#EXTM3U attributes are malformed; ignored");
        for (const char* key : {"url-tvg", "x-tvg-url", "tvg-url"}) {
            const auto it = header.attributes.find(key);
            if (it == header.attributes.end()) continue;
            std::string_view list = it->second;
            while (!list.empty()) {
                const std::size_t comma = list.find(',');
                const std::string url(trim(list.substr(0, comma)));
                list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
                if (url.empty()) continue;
                if (!starts_with_icase(url, "http://") && !starts_with_icase(url, "https://")) {
                    issue(line_no, "guide URL is not http(s): " + repair_utf8(redact_url(url)) + "; ignored");
                    continue;
                }
                if (std::string p = source_problem(url); !p.empty()) {
                    issue(line_no, "guide " + p + "; ignored");
                    continue;
                }
                if (std::find(report_.guide_urls.begin(), report_.guide_urls.end(), url) == report_.guide_urls.end())
                    report_.guide_urls.push_back(url);
            }
        }
    }

    void drop_dangling_extinf() {
        if (pending_.extinf_line && !pending_.broken)
            issue(pending_.extinf_line, "#EXTINF is not followed by a URL; entry skipped");
        pending_ = {};
    }

    void on_extinf(int line_no, std::string_view body) {
        if (pending_.extinf_line) drop_dangling_extinf();
        pending_.extinf_line = line_no;
        if (std::string p = parse_extinf(body, pending_.extinf); !p.empty()) fail_entry(line_no, std::move(p));
    }

    void fail_entry(int line_no, std::string message) {
        issue(line_no, std::move(message) + "; entry skipped");
        pending_.broken = true;
    }

    void on_vlcopt(std::string_view option) {
        if (consume_prefix_icase(option, "http-user-agent=")) {
            pending_.headers["User-Agent"] = std::string(trim(option));
        } else if (consume_prefix_icase(option, "http-referrer=") || consume_prefix_icase(option, "http-referer=")) {
            pending_.headers["Referer"] = std::string(trim(option));
        } else if (consume_prefix_icase(option, "input-repeat=")) {
            auto repeat = parse_number<long>(option);
            pending_.loop = repeat && *repeat < 0;  // VLC: -1 repeats forever
        }
    }

    void on_exthttp(int line_no, std::string_view text) {
        nlohmann::json j = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
        bool ok = j.is_object() && std::all_of(j.begin(), j.end(), [](const nlohmann::json& v) { return v.is_string(); });
        if (!ok) return issue(line_no, "#EXTHTTP is not a JSON object of string values; ignored");
        for (const auto& [name, value] : j.items()) pending_.headers[normalize_header_name(name)] = value.get<std::string>();
    }

    void on_backup(int line_no, std::string_view text) {
        std::string url;
        std::map<std::string, std::string> ignored;
        split_source(text, url, ignored);
        if (text.find('|') != std::string_view::npos)
            issue(line_no, "headers after '|' on a backup URL are ignored: a channel's headers apply to all its sources");
        if (std::string p = source_problem(url); !p.empty()) return issue(line_no, "backup " + p + "; ignored");
        if (pending_.extinf_line) {
            if (!pending_.broken) pending_.backups.push_back(std::move(url));
        } else if (last_) {
            report_.channels[*last_].urls.push_back(std::move(url));
        } else {
            issue(line_no, "#EXTHLSRELAY-BACKUP has no channel before it; ignored");
        }
    }

    void on_url(int line_no, std::string_view text) {
        // Several URL lines under one #EXTINF: the first is the channel's, the others its backups (as
        // #EXTHLSRELAY-BACKUP lines). A URL line with no #EXTINF of its own after a channel that had
        // none either is a channel of its own (a plain list of URLs).
        if (!pending_.extinf_line && pending_.headers.empty() && last_ && last_had_extinf_) return on_backup(line_no, text);
        Pending entry = std::exchange(pending_, Pending{});
        last_.reset();
        last_had_extinf_ = entry.extinf_line != 0;
        if (entry.broken) return;
        int entry_line = entry.extinf_line ? entry.extinf_line : line_no;

        ChannelConfig c;
        std::string url;
        std::vector<std::string> header_problems = split_source(text, url, c.headers);
        if (std::string p = source_problem(url); !p.empty()) return issue(line_no, p + "; entry skipped");
        for (std::string& p : header_problems) issue(line_no, std::move(p));
        // The URL's own headers are the most specific, so they win over #EXTVLCOPT and #EXTHTTP.
        c.headers.merge(entry.headers);

        const auto& attrs = entry.extinf.attributes;
        auto attr = [&](const char* key) -> std::string {
            auto it = attrs.find(key);
            return it == attrs.end() ? std::string() : std::string(trim(it->second));
        };
        c.name = entry.extinf.title;
        if (c.name.empty()) c.name = attr("tvg-name");
        if (c.name.empty()) c.name = name_from_url(url);
        c.name = repair_utf8(c.name);
        c.group = attr("group-title");
        if (c.group.empty()) c.group = entry.extgrp;
        c.group = repair_utf8(c.group);
        c.logo = attr("tvg-logo");
        c.tvg_id = repair_utf8(attr("tvg-id"));
        c.tvg_name = repair_utf8(attr("tvg-name"));
        c.chno = repair_utf8(attr("tvg-chno"));
        if (attrs.count("hlsrelay-provider")) {
            ChannelConfig probe;
            probe.provider = attr("hlsrelay-provider");
            if (attributes_problem(probe).empty()) c.provider = std::move(probe.provider);
            else issue(entry_line, "hlsrelay-provider: " + attributes_problem(probe) + "; ignored");
        }
        if (attrs.count("tvg-shift")) {
            const auto shift = parse_number<double>(attr("tvg-shift"));
            if (shift && std::abs(*shift) <= kMaxTvgShiftHours)
                c.tvg_shift = *shift;
            else
                issue(entry_line, "tvg-shift '" + repair_utf8(attr("tvg-shift")) + "' is not a number of hours within 48; ignored");
        }
        for (const auto& [key, value] : attrs) {
            static constexpr std::string_view kUsed[] = {"tvg-id", "tvg-name", "tvg-chno", "tvg-shift", "tvg-logo", "group-title"};
            if (key.rfind("hlsrelay-", 0) == 0 || std::find(std::begin(kUsed), std::end(kUsed), key) != std::end(kUsed)) continue;
            ChannelConfig probe;
            probe.attributes[key] = repair_utf8(value);
            if (c.attributes.size() >= kMaxChannelAttributes || !attributes_problem(probe).empty()) {
                issue(entry_line, "attribute '" + repair_utf8(key.substr(0, 64)) + "' ignored (malformed, too long or too many)");
                continue;
            }
            c.attributes[key] = repair_utf8(value);
        }
        c.loop = entry.loop;
        c.urls.push_back(std::move(url));
        for (std::string& b : entry.backups) c.urls.push_back(std::move(b));

        if (attrs.count("hlsrelay-id")) {
            c.id = attr("hlsrelay-id");
            if (!is_safe_slug(c.id))
                return issue(entry_line, "hlsrelay-id '" + repair_utf8(c.id) +
                                             "' is not a safe stream id (1-64 of a-z 0-9 _ -, not starting with -); entry skipped");
        } else {
            std::string tvg_id = attr("tvg-id");
            c.id = is_safe_slug(tvg_id) ? tvg_id : slugify(c.name);
        }
        if (std::string p = read_overrides(attrs, c.hls, c.limits); !p.empty()) return issue(entry_line, p + "; entry skipped");
        if (auto it = attrs.find("hlsrelay-enabled"); it != attrs.end()) {
            const std::string v = ascii_lower(trim(it->second));
            if (v == "yes" || v == "true" || v == "on" || v == "1") c.enabled = true;
            else if (v == "no" || v == "false" || v == "off" || v == "0") c.enabled = false;
            else return issue(entry_line, "hlsrelay-enabled '" + repair_utf8(it->second) + "' is not yes or no; entry skipped");
        }
        if (std::string p = channel_problem(c); !p.empty()) return issue(entry_line, p + "; entry skipped");
        report_.channels.push_back(std::move(c));
        last_ = report_.channels.size() - 1;
    }

    static std::string container_field(const std::map<std::string, std::string>& attrs, const char* key,
                                       std::optional<Container>& field) {
        auto it = attrs.find(key);
        if (it == attrs.end()) return {};
        field = parse_container(ascii_lower(trim(it->second)));
        return field ? std::string() : std::string(key) + " '" + repair_utf8(it->second) + "' is not ts or fmp4";
    }

    static std::string read_overrides(const std::map<std::string, std::string>& attrs, HlsOverrides& hls,
                                      FetchLimitOverrides& limits) {
        auto number = [&](const char* key, auto& field) -> std::string {
            auto it = attrs.find(key);
            if (it == attrs.end()) return {};
            using T = typename std::remove_reference_t<decltype(field)>::value_type;
            field = parse_number<T>(it->second);
            if (field) return {};
            return std::string(key) + " '" + repair_utf8(it->second) + "' is not " +
                   (std::is_integral_v<T> ? "an integer" : "a number");
        };
        std::string p = number("hlsrelay-segment-duration", hls.segment_duration);
        if (p.empty()) p = number("hlsrelay-max-segments", hls.max_segments);
        if (p.empty()) p = number("hlsrelay-cleanup-interval", hls.cleanup_interval);
        if (p.empty()) p = container_field(attrs, "hlsrelay-container", hls.container);
        if (auto it = attrs.find("hlsrelay-renditions"); p.empty() && it != attrs.end())
            hls.renditions = std::string(trim(it->second));  // checked by channel_problem
        if (auto it = attrs.find("hlsrelay-low-latency"); p.empty() && it != attrs.end()) {
            const std::string v = ascii_lower(trim(it->second));
            if (v == "yes" || v == "true" || v == "on" || v == "1") hls.low_latency = true;
            else if (v == "no" || v == "false" || v == "off" || v == "0") hls.low_latency = false;
            else p = "hlsrelay-low-latency '" + repair_utf8(it->second) + "' is not yes or no";
        }
        if (p.empty()) p = number("hlsrelay-part-duration", hls.part_duration);
        if (p.empty()) p = number("hlsrelay-max-playlist-bytes", limits.max_playlist_bytes);
        if (p.empty()) p = number("hlsrelay-max-segment-bytes", limits.max_segment_bytes);
        if (p.empty()) p = number("hlsrelay-max-redirects", limits.max_redirects);
        if (p.empty()) p = number("hlsrelay-playlist-deadline", limits.playlist_deadline);
        if (p.empty()) p = number("hlsrelay-segment-deadline", limits.segment_deadline);
        return p;
    }

    LoadReport report_;
    Pending pending_;
    bool last_had_extinf_ = false;  // the channel last_ names came with an #EXTINF
    std::optional<std::size_t> last_;  // the channel an #EXTHLSRELAY-BACKUP line after its URL extends
};

// ---- JSON ----

struct EntrySkipped {
    std::string message;
};

inline const nlohmann::json* field(const nlohmann::json& obj, const char* key) {
    auto it = obj.find(key);
    return it == obj.end() || it->is_null() ? nullptr : &*it;  // null reads as absent
}

[[noreturn]] inline void wrong_type(std::string_view key, const char* expected) {
    throw EntrySkipped{"field '" + std::string(key) + "' must be " + expected};
}

inline std::optional<std::string> get_string(const nlohmann::json& obj, const char* key) {
    const nlohmann::json* v = field(obj, key);
    if (!v) return std::nullopt;
    if (!v->is_string()) wrong_type(key, "a string");
    return v->get<std::string>();
}

inline std::optional<bool> get_bool(const nlohmann::json& obj, const char* key) {
    const nlohmann::json* v = field(obj, key);
    if (!v) return std::nullopt;
    if (!v->is_boolean()) wrong_type(key, "true or false");
    return v->get<bool>();
}

inline std::optional<double> get_number(const nlohmann::json& obj, const char* key) {
    const nlohmann::json* v = field(obj, key);
    if (!v) return std::nullopt;
    if (!v->is_number()) wrong_type(key, "a number");
    return v->get<double>();
}

// Integers written as 5.0 are accepted: some generators only emit floating point.
inline std::optional<std::int64_t> get_integer(const nlohmann::json& obj, const char* key) {
    const nlohmann::json* v = field(obj, key);
    if (!v) return std::nullopt;
    constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
    if (v->is_number_unsigned()) return static_cast<std::int64_t>(std::min<std::uint64_t>(v->get<std::uint64_t>(), kMax));
    if (v->is_number_integer()) return v->get<std::int64_t>();
    if (v->is_number_float()) {
        double d = v->get<double>();
        if (std::trunc(d) == d && std::abs(d) < 9e15) return static_cast<std::int64_t>(d);
    }
    wrong_type(key, "an integer");
}

inline constexpr std::string_view kJsonFields[] = {"id", "name", "url", "urls", "logo", "group", "headers",
                                                   "user_agent", "referer", "loop", "realtime", "variant",
                                                   "segment_duration", "max_segments", "cleanup_interval",
                                                   "container", "renditions", "low_latency", "part_duration",
                                                   "max_playlist_bytes", "max_segment_bytes", "max_redirects",
                                                   "playlist_deadline", "segment_deadline", "tvg_id", "tvg_name",
                                                   "chno", "tvg_shift", "attributes", "provider", "enabled"};

// Throws EntrySkipped; problems that leave the entry usable go to `warnings`.
inline ChannelConfig channel_from_json(const nlohmann::json& obj, std::vector<std::string>& warnings) {
    if (!obj.is_object()) throw EntrySkipped{"not a JSON object"};
    ChannelConfig c;
    if (auto id = get_string(obj, "id"); id && !id->empty()) {
        if (!is_safe_slug(*id))
            throw EntrySkipped{"id '" + *id + "' is not a safe stream id (1-64 of a-z 0-9 _ -, not starting with -)"};
        c.id = std::move(*id);
    }
    if (auto name = get_string(obj, "name")) c.name = std::move(*name);
    if (c.name.empty()) throw EntrySkipped{"field 'name' is required"};

    const nlohmann::json* url = field(obj, "url");
    const nlohmann::json* urls = field(obj, "urls");
    if (url && urls) throw EntrySkipped{"give either 'url' or 'urls', not both"};
    std::vector<std::string> sources;
    if (url) {
        sources.push_back(*get_string(obj, "url"));
    } else if (urls) {
        if (!urls->is_array() || urls->empty()) wrong_type("urls", "a non-empty array of strings");
        for (const nlohmann::json& u : *urls) {
            if (!u.is_string()) wrong_type("urls", "a non-empty array of strings");
            sources.push_back(u.get<std::string>());
        }
    } else {
        throw EntrySkipped{"field 'url' or 'urls' is required"};
    }
    for (const std::string& s : sources) {
        std::string plain;
        for (std::string& p : split_source(s, plain, c.headers)) warnings.push_back(std::move(p));
        if (std::string p = source_problem(plain); !p.empty()) throw EntrySkipped{std::move(p)};
        c.urls.push_back(std::move(plain));
    }

    if (auto logo = get_string(obj, "logo")) c.logo = std::move(*logo);
    if (auto group = get_string(obj, "group")) c.group = std::move(*group);
    if (const nlohmann::json* headers = field(obj, "headers")) {
        if (!headers->is_object()) wrong_type("headers", "an object of strings");
        for (const auto& [name, value] : headers->items()) {
            if (!value.is_string()) wrong_type("headers." + name, "a string");
            c.headers[normalize_header_name(name)] = value.get<std::string>();
        }
    }
    // The shortcuts are the more specific spelling, so they win over "headers".
    if (auto ua = get_string(obj, "user_agent")) c.headers["User-Agent"] = std::move(*ua);
    if (auto referer = get_string(obj, "referer")) c.headers["Referer"] = std::move(*referer);
    if (auto loop = get_bool(obj, "loop")) c.loop = *loop;
    c.realtime = get_bool(obj, "realtime");
    if (const nlohmann::json* variant = field(obj, "variant")) {
        if (variant->is_string())
            c.variant = ascii_lower(variant->get<std::string>());
        else if (variant->is_number())
            c.variant = std::to_string(*get_integer(obj, "variant"));  // variant_problem refuses <= 0
        else
            wrong_type("variant", "\"highest\", \"lowest\" or a bandwidth");
    }
    c.hls.segment_duration = get_number(obj, "segment_duration");
    if (auto n = get_integer(obj, "max_segments")) {
        // Checked here because the narrowing to int below could wrap into the accepted range.
        if (*n < kMinMaxSegments || *n > kMaxMaxSegments)
            throw EntrySkipped{range_problem("max_segments", static_cast<double>(*n), kMinMaxSegments, kMaxMaxSegments)};
        c.hls.max_segments = static_cast<int>(*n);
    }
    c.hls.cleanup_interval = get_number(obj, "cleanup_interval");
    c.hls.low_latency = get_bool(obj, "low_latency");
    c.hls.part_duration = get_number(obj, "part_duration");
    if (auto container = get_string(obj, "container")) {
        c.hls.container = parse_container(ascii_lower(*container));
        if (!c.hls.container) throw EntrySkipped{"container '" + repair_utf8(*container) + "' is not \"ts\" or \"fmp4\""};
    }
    if (const nlohmann::json* renditions = field(obj, "renditions")) {
        // A string ("all", "max-height=720", "1080p,360p") or a list of heights (["1080p", "360p"]).
        if (renditions->is_string()) {
            c.hls.renditions = renditions->get<std::string>();
        } else if (renditions->is_array() && !renditions->empty()) {
            std::string list;
            for (const nlohmann::json& h : *renditions) {
                if (!h.is_string()) wrong_type("renditions", "a string or a non-empty array of heights like \"720p\"");
                list += (list.empty() ? "" : ",") + h.get<std::string>();
            }
            c.hls.renditions = std::move(list);
        } else {
            wrong_type("renditions", "a string or a non-empty array of heights like \"720p\"");
        }
    }
    c.limits.max_playlist_bytes = get_integer(obj, "max_playlist_bytes");
    c.limits.max_segment_bytes = get_integer(obj, "max_segment_bytes");
    if (auto n = get_integer(obj, "max_redirects")) {
        if (*n < kMinMaxRedirects || *n > kMaxMaxRedirects)  // before the narrowing, as for max_segments
            throw EntrySkipped{range_problem("max_redirects", static_cast<double>(*n), kMinMaxRedirects, kMaxMaxRedirects)};
        c.limits.max_redirects = static_cast<int>(*n);
    }
    c.limits.playlist_deadline = get_number(obj, "playlist_deadline");
    c.limits.segment_deadline = get_number(obj, "segment_deadline");
    if (auto v = get_string(obj, "tvg_id")) c.tvg_id = std::move(*v);
    if (auto v = get_string(obj, "tvg_name")) c.tvg_name = std::move(*v);
    if (auto v = get_string(obj, "provider")) c.provider = std::move(*v);
    if (const nlohmann::json* chno = field(obj, "chno")) {  // "5.1" or 5
        if (chno->is_string()) c.chno = chno->get<std::string>();
        else if (chno->is_number_integer() || chno->is_number_unsigned()) c.chno = std::to_string(*get_integer(obj, "chno"));
        else wrong_type("chno", "a string or an integer");
    }
    if (auto v = get_number(obj, "tvg_shift")) c.tvg_shift = *v;
    if (const nlohmann::json* attributes = field(obj, "attributes")) {
        if (!attributes->is_object()) wrong_type("attributes", "an object of strings");
        for (const auto& [name, value] : attributes->items()) {
            if (!value.is_string()) wrong_type("attributes." + name, "a string");
            c.attributes[ascii_lower(name)] = value.get<std::string>();
        }
    }
    if (auto enabled = get_bool(obj, "enabled")) c.enabled = *enabled;
    if (std::string p = channel_problem(c); !p.empty()) throw EntrySkipped{std::move(p)};

    for (const auto& [key, value] : obj.items())
        if (std::find(std::begin(kJsonFields), std::end(kJsonFields), key) == std::end(kJsonFields))
            warnings.push_back("unknown field '" + key + "' ignored");
    return c;
}

// nlohmann reports a byte offset; people want a line.
inline int line_of_byte(std::string_view text, std::size_t byte) {
    std::size_t end = byte == 0 ? 0 : std::min(byte - 1, text.size());
    if (byte > text.size())  // error at end of input: point at the last line that has something
        while (end > 0 && is_ascii_space(text[end - 1])) --end;
    return 1 + static_cast<int>(std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(end), '\n'));
}

}  // namespace detail

inline LoadReport parse_m3u(std::string_view text) { return detail::M3uParser().run(text); }

inline LoadReport parse_json(std::string_view text) {
    LoadReport report;
    nlohmann::json doc;
    try {
        doc = nlohmann::json::parse(text.begin(), text.end(), nullptr, true, /*ignore_comments=*/true);
    } catch (const nlohmann::json::parse_error& e) {
        std::string what = e.what();
        if (std::size_t tag = what.find("] "); what.rfind("[json.exception", 0) == 0 && tag != std::string::npos)
            what.erase(0, tag + 2);
        report.issues.push_back({detail::line_of_byte(text, e.byte), "invalid JSON: " + detail::repair_utf8(what)});
        return report;
    } catch (const nlohmann::json::out_of_range&) {  // 406: a number beyond a double (1e999); no position known
        report.issues.push_back({1, "invalid JSON: a number is out of range"});
        return report;
    }
    const nlohmann::json* list = &doc;
    if (doc.is_object() && doc.contains("channels")) list = &doc["channels"];
    if (doc.is_object() && doc.contains("guides")) {  // {"guides": ["http://.../epg.xml.gz"], "channels": [...]}
        const nlohmann::json& guides = doc["guides"];
        for (const nlohmann::json& g : guides.is_array() ? guides : nlohmann::json::array()) {
            const std::string url = g.is_string() ? g.get<std::string>() : std::string();
            if ((starts_with_icase(url, "http://") || starts_with_icase(url, "https://")) && detail::source_problem(url).empty()) {
                if (std::find(report.guide_urls.begin(), report.guide_urls.end(), url) == report.guide_urls.end())
                    report.guide_urls.push_back(url);
            } else {
                report.issues.push_back({1, "guides: an entry is not an http(s) URL; ignored"});
            }
        }
        if (!guides.is_array()) report.issues.push_back({1, "guides must be an array of http(s) URLs; ignored"});
    }
    if (!list->is_array()) {
        report.issues.push_back({1, "expected a JSON array of channels or {\"channels\": [...]}"});
        return report;
    }
    for (std::size_t i = 0; i < list->size(); ++i) {
        const nlohmann::json& entry = (*list)[i];
        int number = static_cast<int>(i + 1);
        std::string where = "JSON entry " + std::to_string(number) + " (line = entry number): ";
        std::vector<std::string> warnings;
        try {
            report.channels.push_back(detail::channel_from_json(entry, warnings));
        } catch (const detail::EntrySkipped& e) {
            warnings.push_back(e.message + "; entry skipped");
        }
        for (std::string& w : warnings) report.issues.push_back({number, where + w});
    }
    return report;
}

inline LoadReport parse_channels(std::string_view text) {
    std::string_view body = text;
    if (body.substr(0, 3) == "\xEF\xBB\xBF") body.remove_prefix(3);
    body = trim(body);
    if (!body.empty() && (body.front() == '[' || body.front() == '{')) return parse_json(text);
    return parse_m3u(text);
}

// Without sources, URLs are redacted and header values (cookies, tokens) become null; the result is
// for status pages and logs and does not load back.
inline nlohmann::json to_json(const ChannelConfig& c, bool include_sources) {
    nlohmann::json j = nlohmann::json::object();
    if (!c.id.empty()) j["id"] = c.id;
    j["name"] = c.name;
    nlohmann::json& urls = j["urls"] = nlohmann::json::array();
    for (const std::string& u : c.urls) urls.push_back(include_sources ? u : redact_url(u));
    if (!c.logo.empty()) j["logo"] = c.logo;
    if (!c.group.empty()) j["group"] = c.group;
    if (!c.headers.empty()) {
        nlohmann::json& headers = j["headers"] = nlohmann::json::object();
        for (const auto& [name, value] : c.headers) headers[name] = include_sources ? nlohmann::json(value) : nlohmann::json();
    }
    j["loop"] = c.loop;
    if (c.realtime) j["realtime"] = *c.realtime;
    if (c.variant) j["variant"] = *c.variant;
    if (c.hls.segment_duration) j["segment_duration"] = *c.hls.segment_duration;
    if (c.hls.max_segments) j["max_segments"] = *c.hls.max_segments;
    if (c.hls.cleanup_interval) j["cleanup_interval"] = *c.hls.cleanup_interval;
    if (c.hls.container) j["container"] = to_string(*c.hls.container);
    if (c.hls.renditions) j["renditions"] = *c.hls.renditions;
    if (c.hls.low_latency) j["low_latency"] = *c.hls.low_latency;
    if (c.hls.part_duration) j["part_duration"] = *c.hls.part_duration;
    if (c.limits.max_playlist_bytes) j["max_playlist_bytes"] = *c.limits.max_playlist_bytes;
    if (c.limits.max_segment_bytes) j["max_segment_bytes"] = *c.limits.max_segment_bytes;
    if (c.limits.max_redirects) j["max_redirects"] = *c.limits.max_redirects;
    if (c.limits.playlist_deadline) j["playlist_deadline"] = *c.limits.playlist_deadline;
    if (c.limits.segment_deadline) j["segment_deadline"] = *c.limits.segment_deadline;
    if (!c.tvg_id.empty()) j["tvg_id"] = c.tvg_id;
    if (!c.tvg_name.empty()) j["tvg_name"] = c.tvg_name;
    if (!c.chno.empty()) j["chno"] = c.chno;
    if (c.tvg_shift != 0) j["tvg_shift"] = c.tvg_shift;
    if (!c.attributes.empty()) j["attributes"] = c.attributes;
    if (!c.provider.empty()) j["provider"] = c.provider;
    if (!c.enabled) j["enabled"] = false;  // only when off: lists written before it read the same
    return j;
}

// Never throws on bytes that are not UTF-8 (they are replaced), unlike a plain dump().
inline std::string to_json_text(const std::vector<ChannelConfig>& channels, bool include_sources) {
    nlohmann::json list = nlohmann::json::array();
    for (const ChannelConfig& c : channels) list.push_back(to_json(c, include_sources));
    nlohmann::json doc = {{"channels", std::move(list)}};
    return dump_json(doc, 2) + "\n";
}

// Another list's entry for the same channel (the same tvg-id): its URLs become `c`'s backups, after
// the ones `c` has, without repeats, up to kMaxMergedSources URLs in all. Returns those added.
inline std::vector<std::string> add_backups(ChannelConfig& c, const std::vector<std::string>& urls) {
    std::vector<std::string> added;
    for (const std::string& u : urls) {
        if (c.urls.size() >= kMaxMergedSources) break;
        if (std::find(c.urls.begin(), c.urls.end(), u) != c.urls.end()) continue;
        c.urls.push_back(u);
        added.push_back(u);
    }
    return added;
}
// Takes back what add_backups added (never the channel's own first URL).
inline void remove_backups(ChannelConfig& c, const std::vector<std::string>& added) {
    for (const std::string& u : added) {
        const auto from = c.urls.begin() + (c.urls.empty() ? 0 : 1);
        if (const auto it = std::find(from, c.urls.end(), u); it != c.urls.end()) c.urls.erase(it);
    }
}

// Channels by stream id, in insertion order. Not thread-safe: the engine serializes access. Pointers
// and references it hands out are invalidated by the next add, update or remove.
class Registry {
public:
    // Throws std::invalid_argument when the channel cannot be stored; see detail::channel_problem.
    const ChannelConfig& add(ChannelConfig c) {
        normalize(c);
        c.id = unique_id(c.id.empty() ? slugify(c.name) : c.id);
        if (c.name.empty()) c.name = c.id;
        index_.emplace(c.id, channels_.size());
        channels_.push_back(std::move(c));
        return channels_.back();
    }

    // Adds every channel of a loader's report; report.channels becomes the stored channels (with
    // their final ids) and channels that could not be added move to report.issues with line 0.
    void add_all(LoadReport& report) {
        std::vector<ChannelConfig> added;
        for (ChannelConfig& c : report.channels) {
            try {
                added.push_back(add(std::move(c)));
            } catch (const std::invalid_argument& e) {
                report.issues.push_back({0, e.what()});
            }
        }
        report.channels = std::move(added);
    }

    // Replaces everything but the id (c.id is ignored). False if there is no such id; throws
    // std::invalid_argument like add. An empty name becomes the id, as in add.
    bool update(std::string_view id, ChannelConfig c) {
        auto it = index_.find(id);
        if (it == index_.end()) return false;
        c.id = it->first;
        normalize(c);
        if (c.name.empty()) c.name = c.id;
        channels_[it->second] = std::move(c);
        return true;
    }

    bool remove(std::string_view id) {
        auto it = index_.find(id);
        if (it == index_.end()) return false;
        std::size_t pos = it->second;
        index_.erase(it);
        channels_.erase(channels_.begin() + static_cast<std::ptrdiff_t>(pos));
        for (auto& [key, at] : index_)
            if (at > pos) --at;
        return true;
    }

    // By exact id, then exact display name, then display name ignoring ASCII case, then as a name
    // whose slug is an id. The first match in insertion order wins.
    const ChannelConfig* find(std::string_view id_or_name) const {
        if (id_or_name.empty()) return nullptr;
        if (auto it = index_.find(id_or_name); it != index_.end()) return &channels_[it->second];
        for (const ChannelConfig& c : channels_)
            if (c.name == id_or_name) return &c;
        for (const ChannelConfig& c : channels_)
            if (iequals(c.name, id_or_name)) return &c;
        if (auto it = index_.find(slugify(id_or_name)); it != index_.end()) return &channels_[it->second];
        return nullptr;
    }

    // The first channel, in insertion order, for which `pred` holds.
    template <class Pred>
    const ChannelConfig* find_if(Pred pred) const {
        for (const ChannelConfig& c : channels_)
            if (pred(c)) return &c;
        return nullptr;
    }

    // By exact id only.
    const ChannelConfig* find_id(std::string_view id) const {
        const auto it = index_.find(id);
        return it == index_.end() ? nullptr : &channels_[it->second];
    }

    std::vector<ChannelConfig> list() const { return channels_; }
    std::size_t size() const { return channels_.size(); }
    bool empty() const { return channels_.empty(); }

private:
    // Names and groups end up in JSON, so bytes that are not UTF-8 are repaired rather than refused.
    static void normalize(ChannelConfig& c) {
        c.name = detail::repair_utf8(c.name);
        c.group = detail::repair_utf8(c.group);
        c.headers = detail::normalize_headers(c.headers);
        if (std::string p = detail::channel_problem(c); !p.empty()) {
            std::string label = c.name.empty() ? c.id : c.name;
            throw std::invalid_argument("invalid channel '" + detail::repair_utf8(label) + "': " + p);
        }
    }

    // Appends "_2", "_3", ... to a taken id, shortening it to stay within kMaxSlugLength.
    std::string unique_id(const std::string& base) const {
        if (!index_.count(base)) return base;
        for (std::size_t n = 2;; ++n) {
            std::string suffix = "_" + std::to_string(n);
            std::string candidate = base.substr(0, kMaxSlugLength - suffix.size()) + suffix;
            if (!index_.count(candidate)) return candidate;
        }
    }

    std::vector<ChannelConfig> channels_;
    std::map<std::string, std::size_t, std::less<>> index_;  // id -> position in channels_
};

}  // namespace hlsrelay
