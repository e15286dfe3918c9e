// XMLTV programme guides (EPG) for media servers: a small tolerant XML reader for the guides providers
// publish, and the merge of several guides into one for the channels hlsrelay serves (their ids, tvg-shift
// and logos). Header-only, no libav, no XML library.
//
// Guides come from providers nobody vouches for, so everything is bounded (Limits): input bytes, nesting,
// attributes, what is kept. The reader never recurses, scans each byte a bounded number of times, and
// answers malformed input with a partial guide and problems, or an error string; it throws nothing but
// std::bad_alloc.
//
// Memory: the input is only viewed, never copied. parse() keeps each channel and programme as its children
// re-serialised into one string per guide (Guide::text) plus 28 bytes of offsets per programme, not a DOM:
// about the size of the input (reserved once), or less. parse_for() keeps only what the wanted channels
// use. (Pathological input can grow by escaping, a bare "&" becoming "&amp;": Limits::max_kept_bytes bounds
// it.) filter() adds its output (reserved once from an upper bound, at most Limits::max_output_bytes plus a
// programme) and 4 bytes of index per programme it writes. Peak = input + kept + output. Measured on a
// 156 MB guide (3000 channels, 504k programmes) for 300 wanted channels: merge() (parse_for + filter) peaks
// at 190 MB RSS with the input counted, in 0.4 s; parse() + filter() at 313 MB (124 MB of kept text).
#pragma once

#include <hlsrelay/text.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace hlsrelay::xmltv {

// Every cap of the guide reader and of the merge, in one place; callers may override any of them.
struct Limits {
    std::size_t max_document_bytes = 256u << 20;  // a larger guide is refused (full provider guides reach 150 MB)
    std::size_t max_depth = 32;                   // element nesting, <tv> counted; deeper elements are dropped
    std::size_t max_attributes = 32;              // per element; the rest are dropped
    std::size_t max_attribute_bytes = 64u << 10;  // one attribute value as written; a longer one is dropped
    std::size_t max_name_bytes = 128;             // element and attribute names; longer ones are dropped
    std::size_t max_channel_bytes = 16u << 10;    // one <channel>'s children, re-serialised; a larger one is dropped
    std::size_t max_programme_bytes = 64u << 10;  // one <programme>, re-serialised; a larger one is dropped
    std::size_t max_channels = 100000;            // channels kept per guide (and distinct programme channel ids)
    std::size_t max_programmes = 200000;          // programmes kept per guide, and written by filter() in all
    std::size_t max_kept_bytes = 512u << 20;      // Guide::text per guide (never above 4 GiB: offsets are 32-bit)
    std::size_t max_output_bytes = 512u << 20;    // filter()'s document; programmes beyond it are left out
    std::size_t max_problems = 20;                // problem messages kept (all are counted)
};

// tvg-shift values beyond this many hours (a year) are refused: they are typos, not time zones.
inline constexpr double kMaxShiftHours = 24.0 * 366;

// A channel hlsrelay publishes, and how to find its guide.
struct GuideChannel {
    std::string id;          // the id hlsrelay publishes (tvg-id of the exported M3U); <channel id> and programme channel=
    std::string tvg_id;      // the id to look up in the guides (may be empty)
    std::string name;        // display name: matched (ASCII case, spaces trimmed/collapsed) against any <display-name>
    double shift_hours = 0;  // tvg-shift: added to start and stop of every programme (fractional, negative allowed)
    std::string logo;        // written as <icon src> when the guide's channel has no icon
};

// A range of Guide::text.
struct Span {
    std::uint32_t offset = 0;
    std::uint32_t length = 0;
};

// A guide's <channel>: its id, its display names (decoded), its children re-serialised (each on its own
// line, indented for a <channel> two spaces in).
struct Channel {
    std::string id;
    std::vector<std::string> display_names;
    Span body;
    std::uint32_t extras_at = 0;  // in body: after the leading display names, where filter() adds a name or icon
    bool has_icon = false;
};

// A guide's <programme>: start, stop, its other attributes (serialised, ` name="value"` each) and its
// children (serialised), one after the other in Guide::text from `offset`.
struct Programme {
    std::uint32_t channel = 0;  // index in Guide::programme_channels
    std::uint32_t offset = 0;
    std::uint32_t start_length = 0;
    std::uint32_t stop_length = 0;
    std::uint32_t attributes_length = 0;
    std::uint32_t body_length = 0;
    bool has_stop = false;
};

// One parsed guide. `error` set: nothing usable (too large, not XMLTV, UTF-16). Otherwise what could be
// read, with `problems`; `complete` is false when the document ended early (truncated).
struct Guide {
    std::string error;
    bool complete = false;
    std::vector<Channel> channels;                  // in document order; an id may repeat (the first counts)
    std::vector<std::string> programme_channels;    // the distinct channel= values of the kept programmes
    std::vector<Programme> programmes;              // in document order
    std::string text;                               // what Span and Programme offsets point into
    std::size_t channels_read = 0;                  // <channel> elements read, kept or not
    std::size_t programmes_read = 0;                // <programme> elements read, kept or not
    std::size_t problem_count = 0;
    std::vector<std::string> problems;              // the first Limits::max_problems, "line N: what"

    bool ok() const { return error.empty(); }
    std::string_view view(Span s) const { return std::string_view(text).substr(s.offset, s.length); }
    std::string_view start(const Programme& p) const { return std::string_view(text).substr(p.offset, p.start_length); }
    std::string_view stop(const Programme& p) const {
        return std::string_view(text).substr(std::size_t{p.offset} + p.start_length, p.stop_length);
    }
    std::string_view attributes(const Programme& p) const {
        return std::string_view(text).substr(std::size_t{p.offset} + p.start_length + p.stop_length, p.attributes_length);
    }
    std::string_view body(const Programme& p) const {
        return std::string_view(text).substr(std::size_t{p.offset} + p.start_length + p.stop_length + p.attributes_length,
                                             p.body_length);
    }
    std::string_view channel_id(const Programme& p) const { return programme_channels[p.channel]; }
};

// How one wanted channel was served.
struct ChannelMatch {
    enum class By { none, tvg_id, name };
    std::string id;          // GuideChannel::id
    By by = By::none;
    std::size_t guide = 0;   // index in the guides, when matched
    std::string source_id;   // the guide's channel id, when matched
    std::size_t programmes = 0;
};

// What filter()/merge() did, for a status page.
struct Report {
    std::size_t guides = 0;                  // guides given
    std::size_t guides_usable = 0;           // without an error
    std::size_t guide_channels_matched = 0;  // distinct guide channels that served a wanted channel
    std::size_t channels_written = 0;        // <channel> elements written (every wanted channel, duplicates aside)
    std::size_t programmes_in = 0;           // programmes in the guides (kept by the parser)
    std::size_t programmes_written = 0;
    std::size_t unparseable_times = 0;       // start/stop that a shift could not move (written unchanged)
    std::vector<ChannelMatch> channels;      // one per wanted channel, in order
    std::vector<std::string> unmatched;      // ids of wanted channels no guide knows
    std::size_t problem_count = 0;
    std::vector<std::string> problems;       // the first Limits::max_problems, the guides' own included
};

namespace detail {

inline bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
inline bool is_name_char(char c) { return is_ascii_alnum(c) || c == '_' || c == '-' || c == '.'; }

// Names we write back: ASCII XML names, no namespace prefix but "xml:" (XMLTV uses none; an undeclared
// prefix would make the output namespace-invalid).
inline bool is_plain_name(std::string_view n) {
    if (n.substr(0, 4) == "xml:") n.remove_prefix(4);
    if (n.empty() || !is_name_start(n.front())) return false;
    return std::all_of(n.begin(), n.end(), is_name_char);
}

inline bool is_xml_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

inline bool is_blank(std::string_view s) { return std::all_of(s.begin(), s.end(), is_xml_space); }

// Length of the valid UTF-8 sequence starting at s[i], or 0 if there is none (overlongs and surrogates
// are not valid).
inline std::size_t utf8_sequence_length(std::string_view s, std::size_t i) {
    auto byte = [&](std::size_t k) -> unsigned { return static_cast<unsigned char>(s[k]); };
    const unsigned lead = byte(i);
    if (lead < 0x80) return 1;
    std::size_t len = 0;
    unsigned lo = 0x80, hi = 0xBF;
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

inline void append_utf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

// The characters XML 1.0 allows.
inline bool is_xml_char(std::uint32_t cp) {
    return cp == 0x9 || cp == 0xA || cp == 0xD || (cp >= 0x20 && cp <= 0xD7FF) || (cp >= 0xE000 && cp <= 0xFFFD) ||
           (cp >= 0x10000 && cp <= 0x10FFFF);
}

// A byte that is not UTF-8 is read as windows-1252, what such bytes almost always are in guides (Latin-1
// would turn its quotes and dashes into C1 controls); its five holes map to the C1 code point, as WHATWG does.
inline std::uint32_t windows1252(unsigned char b) {
    static constexpr std::uint16_t kHigh[32] = {
        0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
        0x2039, 0x0152, 0x008D, 0x017D, 0x008F, 0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
        0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178};
    return b >= 0x80 && b < 0xA0 ? kHigh[b - 0x80] : b;
}

enum class Encoding { utf8, windows1252 };

// What decode() had to repair.
struct DecodeFlags {
    bool bad_bytes = false;      // bytes that are not UTF-8
    bool bad_chars = false;      // characters XML forbids (controls, U+FFFE, references to them)
    bool bad_reference = false;  // "&" that starts no known reference, kept as text
};

// Appends XML character data to `out`, decoded: the five predefined entities and numeric references (when
// `references`; not in CDATA), line ends normalised to "\n", bytes that are not UTF-8 read as windows-1252,
// characters XML forbids dropped (controls) or replaced (U+FFFD). The result is valid UTF-8 of XML
// characters. False when `out` would grow beyond `cap` bytes (it is then partial).
inline bool decode(std::string_view raw, bool references, Encoding encoding, std::size_t cap, std::string& out,
                   DecodeFlags& flags) {
    const std::size_t n = raw.size();
    std::size_t i = 0;
    while (i < n) {
        // A run of plain ASCII at once.
        std::size_t j = i;
        while (j < n) {
            const auto b = static_cast<unsigned char>(raw[j]);
            if (b >= 0x80 || (b < 0x20 && b != '\t' && b != '\n') || (b == '&' && references)) break;
            ++j;
        }
        if (j > i) {
            if (out.size() + (j - i) > cap) return false;
            out.append(raw.substr(i, j - i));
            i = j;
            continue;
        }
        const auto b = static_cast<unsigned char>(raw[i]);
        if (b == '&') {
            // A reference is short: look for its ';' within a few bytes only (no scan to the end of the text).
            std::uint32_t cp = 0;
            bool ok = false;
            const std::size_t semi = raw.substr(i + 1, 12).find(';');
            if (semi != std::string_view::npos) {
                const std::string_view name = raw.substr(i + 1, semi);
                if (name == "lt") cp = '<', ok = true;
                else if (name == "gt") cp = '>', ok = true;
                else if (name == "amp") cp = '&', ok = true;
                else if (name == "quot") cp = '"', ok = true;
                else if (name == "apos") cp = '\'', ok = true;
                else if (name.size() > 1 && name[0] == '#') {
                    const bool hex = name[1] == 'x';
                    const std::string_view digits = name.substr(hex ? 2 : 1);
                    ok = !digits.empty() && digits.size() <= 8;
                    std::uint64_t v = 0;
                    for (char c : digits) {
                        const int d = hex ? hex_digit_value(c) : (c >= '0' && c <= '9' ? c - '0' : -1);
                        if (d < 0) ok = false;
                        else v = v * (hex ? 16 : 10) + static_cast<std::uint64_t>(d);
                    }
                    if (ok) {
                        if (v > 0x10FFFF || !is_xml_char(static_cast<std::uint32_t>(v))) {
                            flags.bad_chars = true;
                            v = 0xFFFD;
                        }
                        cp = static_cast<std::uint32_t>(v);
                    }
                }
            }
            if (ok) {
                append_utf8(out, cp);
                i += semi + 2;
            } else {
                flags.bad_reference = true;
                out += '&';
                ++i;
            }
        } else if (b == '\r') {
            out += '\n';
            i += i + 1 < n && raw[i + 1] == '\n' ? 2 : 1;
        } else if (b < 0x20) {
            flags.bad_chars = true;  // a control character: dropped
            ++i;
        } else if (encoding == Encoding::windows1252) {
            append_utf8(out, windows1252(b));
            ++i;
        } else if (const std::size_t len = utf8_sequence_length(raw, i)) {
            // U+FFFE and U+FFFF are UTF-8 but not XML characters.
            if (len == 3 && b == 0xEF && static_cast<unsigned char>(raw[i + 1]) == 0xBF &&
                static_cast<unsigned char>(raw[i + 2]) >= 0xBE) {
                flags.bad_chars = true;
                append_utf8(out, 0xFFFD);
            } else {
                out.append(raw.substr(i, len));
            }
            i += len;
        } else {
            flags.bad_bytes = true;
            append_utf8(out, windows1252(b));
            ++i;
        }
        if (out.size() > cap) return false;
    }
    return out.size() <= cap;
}

// Text from a caller (names, ids, logos): made valid UTF-8 of XML characters, no references read.
inline std::string sanitize(std::string_view s) {
    std::string out;
    DecodeFlags flags;
    decode(s, false, Encoding::utf8, std::numeric_limits<std::size_t>::max(), out, flags);
    return out;
}

// `s` (decoded text) escaped for element content.
inline void escape_text(std::string& out, std::string_view s) {
    for (char c : s) {
        switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '\r': out += "&#13;"; break;
        default: out += c;
        }
    }
}

// `s` (decoded text) escaped for a double-quoted attribute value; tabs and line ends as references so that
// a reader's attribute normalisation keeps them.
inline void escape_attribute(std::string& out, std::string_view s) {
    for (char c : s) {
        switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&quot;"; break;
        case '\t': out += "&#9;"; break;
        case '\n': out += "&#10;"; break;
        case '\r': out += "&#13;"; break;
        default: out += c;
        }
    }
}

// For messages: about `max` bytes of hostile text, valid UTF-8, on one line.
inline std::string excerpt(std::string_view s, std::size_t max = 40) {
    std::size_t cut = std::min(max, s.size());
    // Not inside a UTF-8 sequence (it would read as a bad byte).
    for (int k = 0; k < 3 && cut < s.size() && cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80; ++k) --cut;
    std::string out = sanitize(s.substr(0, cut));
    for (char& c : out)
        if (c == '\n' || c == '\t') c = ' ';
    return cut < s.size() ? out + "..." : out;
}

// A display name as matched: ASCII case folded, spaces trimmed and collapsed.
inline std::string name_key(std::string_view name) {
    std::string out;
    bool space = false;
    for (char c : trim(name)) {
        if (is_ascii_space(c)) {
            space = true;
            continue;
        }
        if (space) out += ' ';
        space = false;
        out += ascii_lower(c);
    }
    return out;
}

// Days since 1970-01-01 of a proleptic Gregorian date, and back (H. Hinnant's civil algorithms): no
// mktime, no time zone database.
inline std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    const auto yoe = static_cast<unsigned>(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

struct Civil {
    std::int64_t year;
    unsigned month, day;
};

inline Civil civil_from_days(std::int64_t z) {
    z += 719468;
    const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const auto doe = static_cast<unsigned>(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    const unsigned d = doy - (153 * mp + 2) / 5 + 1;
    const unsigned m = mp < 10 ? mp + 3 : mp - 9;
    return {static_cast<std::int64_t>(yoe) + era * 400 + (m <= 2), m, d};
}

inline unsigned days_in_month(std::int64_t y, unsigned m) {
    static constexpr unsigned kDays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : kDays[m - 1];
}

// An XMLTV time taken apart: "YYYYMMDDhhmm[ss]" then an optional zone ("+hhmm", "-hh:mm", "+hh", "Z",
// "UTC", "GMT"), spaces before the zone optional.
struct Time {
    std::int64_t local_seconds = 0;  // since 1970-01-01 00:00 of the written (local) clock
    int offset_seconds = 0;          // the zone's offset from UTC
    bool has_seconds = false;
    std::string_view zone;           // everything after the digits, as written (spaces included)
};

inline std::optional<Time> parse_time_parts(std::string_view s) {
    s = trim(s);
    std::size_t digits = 0;
    while (digits < s.size() && s[digits] >= '0' && s[digits] <= '9') ++digits;
    if (digits != 12 && digits != 14) return std::nullopt;
    auto num = [&](std::size_t at, std::size_t len) {
        unsigned v = 0;
        for (std::size_t k = at; k < at + len; ++k) v = v * 10 + static_cast<unsigned>(s[k] - '0');
        return v;
    };
    const std::int64_t year = num(0, 4);
    const unsigned month = num(4, 2), day = num(6, 2), hour = num(8, 2), minute = num(10, 2);
    const unsigned second = digits == 14 ? num(12, 2) : 0;
    if (month < 1 || month > 12 || day < 1 || day > days_in_month(year, month) || hour > 23 || minute > 59 ||
        second > 60)
        return std::nullopt;
    Time t;
    t.has_seconds = digits == 14;
    t.zone = s.substr(digits);
    t.local_seconds = days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second;
    std::string_view z = trim(t.zone);
    if (z.empty() || z == "Z" || z == "UTC" || z == "GMT") return t;
    if (z[0] != '+' && z[0] != '-') return std::nullopt;
    const int sign = z[0] == '-' ? -1 : 1;
    z.remove_prefix(1);
    std::string zd;
    for (std::size_t k = 0; k < z.size(); ++k) {
        if (k == 2 && z[k] == ':' && z.size() == 5) continue;
        if (z[k] < '0' || z[k] > '9') return std::nullopt;
        zd += z[k];
    }
    if (zd.size() != 4 && zd.size() != 2) return std::nullopt;
    const int oh = (zd[0] - '0') * 10 + (zd[1] - '0');
    const int om = zd.size() == 4 ? (zd[2] - '0') * 10 + (zd[3] - '0') : 0;
    if (oh > 23 || om > 59) return std::nullopt;
    t.offset_seconds = sign * (oh * 3600 + om * 60);
    return t;
}

}  // namespace detail

// Seconds since the epoch (UTC) of an XMLTV time ("20261201120000 +0100", no zone = UTC); nullopt when
// it is not one.
inline std::optional<std::int64_t> parse_time(std::string_view xmltv_time) {
    const auto t = detail::parse_time_parts(xmltv_time);
    if (!t) return std::nullopt;
    return t->local_seconds - t->offset_seconds;
}

// The XMLTV time moved by `hours` on its own clock, its zone text kept as written: ("20261231233000 +0000",
// 1) -> "20270101003000 +0000". Seconds are written when the input had them or the shift needs them.
// nullopt when the time is not one (see parse_time), the shift is not finite or beyond kMaxShiftHours, or
// the result leaves years 0000-9999.
inline std::optional<std::string> shift_time(std::string_view xmltv_time, double hours) {
    const auto t = detail::parse_time_parts(xmltv_time);
    if (!t || !std::isfinite(hours) || std::abs(hours) > kMaxShiftHours) return std::nullopt;
    const std::int64_t shifted = t->local_seconds + static_cast<std::int64_t>(std::llround(hours * 3600));
    const std::int64_t days = (shifted >= 0 ? shifted : shifted - 86399) / 86400;
    const std::int64_t in_day = shifted - days * 86400;
    const detail::Civil c = detail::civil_from_days(days);
    if (c.year < 0 || c.year > 9999) return std::nullopt;
    const auto second = static_cast<unsigned>(in_day % 60);
    char buf[16];
    auto put = [&](std::size_t at, std::size_t len, std::uint64_t v) {
        for (std::size_t k = len; k-- > 0; v /= 10) buf[at + k] = static_cast<char>('0' + v % 10);
    };
    put(0, 4, static_cast<std::uint64_t>(c.year));
    put(4, 2, c.month);
    put(6, 2, c.day);
    put(8, 2, static_cast<std::uint64_t>(in_day / 3600));
    put(10, 2, static_cast<std::uint64_t>(in_day / 60 % 60));
    put(12, 2, second);
    const std::size_t digits = t->has_seconds || second != 0 ? 14 : 12;
    std::string out(buf, digits);
    out += t->zone;
    return out;
}

namespace detail {

// Reads XML as a flat sequence of tags and text, never recursing: start tags (with attributes, as
// written), end tags, text (raw: references undecoded; CDATA flagged). Comments, processing
// instructions and the DOCTYPE are skipped. A construct left open at the end (a comment, a quote, a
// tag) ends the document: `truncated` says why. A "<" that starts no markup is text.
class Tokenizer {
public:
    enum class Kind { start_tag, end_tag, text, end };
    struct Attribute {
        std::string_view name, value;
    };

    Tokenizer(std::string_view doc, std::size_t max_attributes) : doc_(doc), max_attributes_(max_attributes) {}

    // The current token.
    Kind kind = Kind::end;
    std::size_t position = 0;  // its first byte
    std::string_view name;     // start and end tags
    std::vector<Attribute> attributes;
    std::size_t attributes_dropped = 0;  // beyond max_attributes
    bool self_closing = false;
    bool malformed = false;     // a tag with stray bytes in it (read anyway)
    std::string_view text;      // text
    bool cdata = false;
    bool stray_lt = false;      // text with a "<" that starts no markup
    // After the declaration: its encoding pseudo-attribute (empty: none).
    std::string_view declared_encoding;
    // Why the document ended early, empty when it did not.
    std::string truncated;

    Kind next() {
        name = {};
        text = {};
        attributes.clear();
        attributes_dropped = 0;
        self_closing = malformed = cdata = stray_lt = false;
        const std::size_t n = doc_.size();
        while (p_ < n) {
            position = p_;
            if (doc_[p_] != '<' || !markup_at(p_)) return kind = scan_text();
            const char c = doc_[p_ + 1];
            if (c == '?') {
                const std::size_t e = doc_.find("?>", p_ + 2);
                if (e == std::string_view::npos) return stop("a processing instruction is not closed");
                const std::string_view pi = doc_.substr(p_ + 2, e - p_ - 2);
                if (!seen_markup_ && pi.substr(0, 4) == "xml " ) read_declaration(pi);
                seen_markup_ = true;
                p_ = e + 2;
                continue;
            }
            seen_markup_ = true;
            if (c == '!') {
                if (doc_.substr(p_, 4) == "<!--") {
                    const std::size_t e = doc_.find("-->", p_ + 4);
                    if (e == std::string_view::npos) return stop("a comment is not closed");
                    p_ = e + 3;
                    continue;
                }
                if (doc_.substr(p_, 9) == "<![CDATA[") {
                    const std::size_t e = doc_.find("]]>", p_ + 9);
                    if (e == std::string_view::npos) return stop("a CDATA section is not closed");
                    text = doc_.substr(p_ + 9, e - p_ - 9);
                    cdata = true;
                    p_ = e + 3;
                    return kind = Kind::text;
                }
                if (starts_with_icase(doc_.substr(p_), "<!DOCTYPE")) {
                    if (!skip_doctype()) return stop("the DOCTYPE is not closed");
                    continue;
                }
                const std::size_t e = doc_.find('>', p_ + 2);
                if (e == std::string_view::npos) return stop("a declaration is not closed");
                p_ = e + 1;
                continue;
            }
            return kind = c == '/' ? end_tag() : start_tag();
        }
        return kind = Kind::end;
    }

private:
    std::string_view doc_;
    std::size_t max_attributes_;
    std::size_t p_ = 0;
    bool seen_markup_ = false;

    Kind stop(const char* why) {
        truncated = why;
        p_ = doc_.size();
        return kind = Kind::end;
    }

    // Whether the "<" at j starts markup: a tag, an end tag, "<!" or "<?".
    bool markup_at(std::size_t j) const {
        if (j + 1 >= doc_.size()) return false;
        const char c = doc_[j + 1];
        if (c == '!' || c == '?' || is_name_start(c)) return true;
        return c == '/' && j + 2 < doc_.size() && is_name_start(doc_[j + 2]);
    }

    // Text up to the next markup (the "<" at p_, if any, starts none).
    Kind scan_text() {
        std::size_t j = p_;
        for (;;) {
            j = doc_.find('<', j);
            if (j == std::string_view::npos) {
                j = doc_.size();
                break;
            }
            if (markup_at(j)) break;
            stray_lt = true;
            ++j;
        }
        text = doc_.substr(p_, j - p_);
        p_ = j;
        return Kind::text;
    }

    void skip_space() {
        while (p_ < doc_.size() && is_xml_space(doc_[p_])) ++p_;
    }

    std::string_view scan_name() {
        const std::size_t b = p_;
        while (p_ < doc_.size() && (is_name_char(doc_[p_]) || doc_[p_] == ':')) ++p_;
        return doc_.substr(b, p_ - b);
    }

    Kind end_tag() {
        p_ += 2;
        name = scan_name();
        skip_space();
        if (p_ < doc_.size() && doc_[p_] != '>') {
            malformed = true;
            const std::size_t e = doc_.find('>', p_);
            if (e == std::string_view::npos) return stop("an end tag is not closed");
            p_ = e;
        }
        if (p_ >= doc_.size()) return stop("an end tag is not closed");
        ++p_;
        return Kind::end_tag;
    }

    Kind start_tag() {
        ++p_;
        name = scan_name();
        const std::size_t n = doc_.size();
        for (;;) {
            skip_space();
            if (p_ >= n) return stop("a start tag is not closed");
            const char c = doc_[p_];
            if (c == '>') {
                ++p_;
                return Kind::start_tag;
            }
            if (c == '/' && p_ + 1 < n && doc_[p_ + 1] == '>') {
                p_ += 2;
                self_closing = true;
                return Kind::start_tag;
            }
            if (c == '<') {  // "<a <b>": this tag ends here
                malformed = true;
                return Kind::start_tag;
            }
            if (!is_name_start(c) && c != ':') {
                malformed = true;
                ++p_;
                continue;
            }
            Attribute a;
            a.name = scan_name();
            skip_space();
            if (p_ < n && doc_[p_] == '=') {
                ++p_;
                skip_space();
                if (p_ >= n) return stop("a start tag is not closed");
                const char q = doc_[p_];
                if (q == '"' || q == '\'') {
                    const std::size_t e = doc_.find(q, p_ + 1);
                    if (e == std::string_view::npos) return stop("an attribute value's quote is not closed");
                    a.value = doc_.substr(p_ + 1, e - p_ - 1);
                    p_ = e + 1;
                } else {  // unquoted: tolerated, up to a space or '>'
                    malformed = true;
                    const std::size_t b = p_;
                    while (p_ < n && !is_xml_space(doc_[p_]) && doc_[p_] != '>') ++p_;
                    a.value = doc_.substr(b, p_ - b);
                }
            } else {
                malformed = true;  // an attribute without a value: kept as empty
            }
            if (attributes.size() < max_attributes_) attributes.push_back(a);
            else ++attributes_dropped;
        }
    }

    // The DOCTYPE with its internal subset, if any (quotes and brackets followed; entities there are not read).
    bool skip_doctype() {
        char quote = 0;
        std::size_t brackets = 0;
        for (std::size_t j = p_ + 9; j < doc_.size(); ++j) {
            const char c = doc_[j];
            if (quote) {
                if (c == quote) quote = 0;
            } else if (c == '"' || c == '\'') {
                quote = c;
            } else if (c == '[') {
                ++brackets;
            } else if (c == ']') {
                if (brackets) --brackets;
            } else if (c == '>' && brackets == 0) {
                p_ = j + 1;
                return true;
            }
        }
        return false;
    }

    void read_declaration(std::string_view pi) {
        const std::size_t at = pi.find("encoding");
        if (at == std::string_view::npos) return;
        std::string_view rest = pi.substr(at + 8);
        while (!rest.empty() && (is_xml_space(rest.front()) || rest.front() == '=')) rest.remove_prefix(1);
        if (rest.empty() || (rest.front() != '"' && rest.front() != '\'')) return;
        const std::size_t e = rest.find(rest.front(), 1);
        if (e != std::string_view::npos) declared_encoding = rest.substr(1, e - 1);
    }
};

// Which channels a parse keeps (parse_for): those whose id is a wanted tvg_id (ASCII case ignored) or whose
// display name is a wanted name, and the programmes of those ids.
struct Wanted {
    std::unordered_set<std::string> ids;    // lower-cased tvg_ids
    std::unordered_set<std::string> names;  // name_key()s

    explicit Wanted(const std::vector<GuideChannel>& channels) {
        for (const GuideChannel& c : channels) {
            if (!c.tvg_id.empty()) ids.insert(ascii_lower(c.tvg_id));
            std::string key = name_key(c.name);
            if (!key.empty()) names.insert(std::move(key));
        }
    }
    bool wants_id(std::string_view id) const { return ids.count(ascii_lower(id)) != 0; }
    bool wants_channel(std::string_view id, const std::vector<std::string>& display_names) const {
        if (wants_id(id)) return true;
        for (const std::string& n : display_names)
            if (names.count(name_key(n))) return true;
        return false;
    }
};

// Builds a Guide from the tokens: <tv> children <channel> and <programme> kept (re-serialised), everything
// else skipped by counting tags (no stack), bounded by Limits.
class GuideReader {
public:
    GuideReader(std::string_view doc, const Limits& limits, const Wanted* wanted, Guide& guide)
        : doc_(doc), limits_(limits), wanted_(wanted), g_(guide), tok_(doc, limits.max_attributes),
          kept_cap_(std::min<std::size_t>(limits.max_kept_bytes, std::numeric_limits<std::uint32_t>::max())) {}

    void run() {
        if (!check_start()) return;
        // Everything kept is about the input's size: one allocation, no doubling (pages untouched cost nothing).
        if (!wanted_) g_.text.reserve(std::min(doc_.size(), kept_cap_));
        while (!failed_) {
            const auto kind = tok_.next();
            if (kind == Tokenizer::Kind::end) break;
            if (tok_.stray_lt && first(kStrayLt)) note(tok_.position, "a '<' that starts no tag, read as text");
            if (tok_.malformed && first(kMalformed))
                note(tok_.position, "malformed tag <" + excerpt(tok_.name) + ">, read as far as possible");
            if (skip_ > 0 && !skipping(kind)) continue;
            dispatch(kind);
        }
        finish();
    }

private:
    enum class State { prolog, in_tv, in_item, after_tv };
    enum class Item { channel, programme };
    struct Frame {
        std::string_view name;
        bool children = false;
        bool text = false;
        std::size_t after_start = 0;  // size of the text right after the start tag
    };
    // Kinds of problem reported once per guide (they tend to repeat on every line).
    enum Once : unsigned {
        kStrayLt = 1, kMalformed = 2, kBadBytes = 4, kBadChars = 8, kBadReference = 16, kAttributes = 32,
        kAttributeSize = 64, kBadName = 128, kDepth = 256, kChannelCap = 512, kProgrammeCap = 1024,
        kKeptCap = 2048, kAfterRoot = 4096, kStrayEnd = 8192, kUnclosed = 16384, kIds = 32768, kItemText = 65536
    };

    std::string_view doc_;
    const Limits& limits_;
    const Wanted* wanted_;
    Guide& g_;
    Tokenizer tok_;
    std::size_t kept_cap_;
    Encoding encoding_ = Encoding::utf8;
    bool failed_ = false;
    unsigned reported_ = 0;
    std::size_t line_pos_ = 0, line_ = 1;  // lines counted incrementally, for messages

    State state_ = State::prolog;
    std::size_t skip_ = 0;          // tags still open in a skipped subtree
    std::string_view skip_anchor_;  // the skipped element, when it is a <channel> or <programme>

    Item item_ = Item::programme;
    std::vector<Frame> frames_;  // the open elements of the item, frames_[0] the item itself
    std::size_t item_start_ = 0;
    std::string pending_space_;  // whitespace not yet known to be content
    std::string scratch_;
    bool declaration_read_ = false;

    // The channel being read.
    std::string channel_id_;
    std::vector<std::string> names_;
    std::string name_text_;
    bool in_name_ = false;
    bool has_icon_ = false;
    std::optional<std::size_t> extras_at_;

    // The programme being read.
    Programme programme_;
    std::size_t body_start_ = 0;

    // Programme channel ids -> index in g_.programme_channels; channel ids seen -> kept (parse_for).
    std::unordered_map<std::string, std::uint32_t> programme_channel_index_;
    std::unordered_map<std::string, bool> channels_seen_;

    std::size_t line_of(std::size_t pos) {
        if (pos < line_pos_) line_pos_ = 0, line_ = 1;
        line_ += static_cast<std::size_t>(std::count(doc_.begin() + static_cast<std::ptrdiff_t>(line_pos_),
                                                     doc_.begin() + static_cast<std::ptrdiff_t>(pos), '\n'));
        line_pos_ = pos;
        return line_;
    }

    void note(std::size_t pos, const std::string& what) {
        ++g_.problem_count;
        if (g_.problems.size() < limits_.max_problems)
            g_.problems.push_back("line " + std::to_string(line_of(pos)) + ": " + what);
    }
    // Whether a problem of this kind is the guide's first (then it is to be noted; else it is only counted).
    bool first(unsigned kind) {
        if (reported_ & kind) {
            ++g_.problem_count;
            return false;
        }
        reported_ |= kind;
        return true;
    }

    bool check_start() {
        std::string_view d = doc_;
        if (d.size() > limits_.max_document_bytes) {
            g_.error = "guide is " + std::to_string(d.size()) + " bytes, more than the limit of " +
                       std::to_string(limits_.max_document_bytes);
            return false;
        }
        if (d.size() >= 2 && static_cast<unsigned char>(d[0]) == 0x1F && static_cast<unsigned char>(d[1]) == 0x8B) {
            g_.error = "guide is gzip-compressed; decompress it first";
            return false;
        }
        if (d.size() >= 2 && ((static_cast<unsigned char>(d[0]) == 0xFF && static_cast<unsigned char>(d[1]) == 0xFE) ||
                              (static_cast<unsigned char>(d[0]) == 0xFE && static_cast<unsigned char>(d[1]) == 0xFF))) {
            g_.error = "guide is UTF-16; only UTF-8 and windows-1252/ISO-8859-1 are read";
            return false;
        }
        if (d.substr(0, 3) == "\xEF\xBB\xBF") {  // a UTF-8 byte order mark: skip it
            doc_ = d.substr(3);
            tok_ = Tokenizer(doc_, limits_.max_attributes);
        }
        return true;
    }

    void fail(std::string why) {
        g_.error = std::move(why);
        failed_ = true;
    }

    void read_declaration() {
        if (declaration_read_) return;
        declaration_read_ = true;
        const std::string label = ascii_lower(trim(tok_.declared_encoding));
        if (label.empty() || label == "utf-8" || label == "utf8" || label == "us-ascii" || label == "ascii") return;
        if (label == "iso-8859-1" || label == "iso8859-1" || label == "latin1" || label == "latin-1" ||
            label == "windows-1252" || label == "cp1252") {
            encoding_ = Encoding::windows1252;
            return;
        }
        note(0, "encoding '" + excerpt(label) + "' is not supported; read as UTF-8");
    }

    // Decodes raw character data into scratch_, at most `cap` bytes; false when it is longer.
    bool decode_into_scratch(std::string_view raw, bool references, std::size_t cap) {
        scratch_.clear();
        DecodeFlags flags;
        const bool ok = decode(raw, references, encoding_, cap, scratch_, flags);
        if (flags.bad_bytes && first(kBadBytes)) note(tok_.position, "bytes that are not UTF-8, read as windows-1252");
        if (flags.bad_chars && first(kBadChars))
            note(tok_.position, "characters XML does not allow, dropped or replaced");
        if (flags.bad_reference && first(kBadReference))
            note(tok_.position, "an '&' that starts no known reference, read as text");
        return ok;
    }

    // A decoded attribute of the current tag; nullopt when absent (or refused: too long).
    std::optional<std::string> attribute(std::string_view want) {
        for (const auto& a : tok_.attributes) {
            if (a.name != want) continue;
            if (a.value.size() > limits_.max_attribute_bytes) {
                if (first(kAttributeSize))
                    note(tok_.position, "attribute " + excerpt(a.name) + " longer than " +
                                            std::to_string(limits_.max_attribute_bytes) + " bytes, dropped");
                return std::nullopt;
            }
            decode_into_scratch(a.value, true, std::numeric_limits<std::size_t>::max());
            return scratch_;
        }
        return std::nullopt;
    }

    // Appends the current tag's attributes but `except` (serialised, deduplicated, names checked).
    void append_attributes(std::initializer_list<std::string_view> except) {
        const auto& attrs = tok_.attributes;
        if (tok_.attributes_dropped && first(kAttributes))
            note(tok_.position, "more than " + std::to_string(limits_.max_attributes) + " attributes on <" +
                                    excerpt(tok_.name) + ">, the rest dropped");
        for (std::size_t k = 0; k < attrs.size(); ++k) {
            const auto& a = attrs[k];
            if (std::find(except.begin(), except.end(), a.name) != except.end()) continue;
            if (a.name == "xmlns" || a.name.substr(0, 6) == "xmlns:") continue;
            if (a.name.size() > limits_.max_name_bytes || !is_plain_name(a.name)) {
                if (first(kBadName)) note(tok_.position, "attribute name '" + excerpt(a.name) + "' not kept");
                continue;
            }
            bool duplicate = false;
            for (std::size_t e = 0; e < k && !duplicate; ++e) duplicate = attrs[e].name == a.name;
            if (duplicate) continue;
            if (a.value.size() > limits_.max_attribute_bytes) {
                if (first(kAttributeSize))
                    note(tok_.position, "attribute " + excerpt(a.name) + " longer than " +
                                            std::to_string(limits_.max_attribute_bytes) + " bytes, dropped");
                continue;
            }
            decode_into_scratch(a.value, true, std::numeric_limits<std::size_t>::max());
            g_.text += ' ';
            g_.text += a.name;
            g_.text += "=\"";
            escape_attribute(g_.text, scratch_);
            g_.text += '"';
        }
    }

    // Skips the subtree of the current start tag.
    void skip_current() {
        if (tok_.self_closing) return;
        skip_ = 1;
        skip_anchor_ = tok_.name == "channel" || tok_.name == "programme" ? tok_.name : std::string_view();
    }

    // A token while skipping: counted; false when it is consumed. An end tag of the skipped <channel> or
    // <programme>, of the item being read or of <tv> ends the skip whatever the count (they do not nest in
    // XMLTV, so this recovers from unclosed tags inside); so does a new <channel>/<programme> at top level.
    bool skipping(Tokenizer::Kind kind) {
        const std::string_view n = tok_.name;
        if (kind == Tokenizer::Kind::start_tag) {
            if (state_ == State::in_tv && (n == "channel" || n == "programme")) {
                skip_ = 0;
                return true;
            }
            if (!tok_.self_closing) ++skip_;
            return false;
        }
        if (kind != Tokenizer::Kind::end_tag) return false;
        if (!skip_anchor_.empty() && n == skip_anchor_) {
            skip_ = 0;
            return false;
        }
        if (n == "tv" || (state_ == State::in_item && !frames_.empty() && n == frames_[0].name)) {
            skip_ = 0;
            return true;
        }
        --skip_;
        return false;
    }

    void dispatch(Tokenizer::Kind kind) {
        switch (state_) {
        case State::prolog: return in_prolog(kind);
        case State::in_tv: return in_tv(kind);
        case State::in_item: return in_item(kind);
        case State::after_tv:
            if (kind == Tokenizer::Kind::start_tag) {
                if (first(kAfterRoot)) note(tok_.position, "content after </tv> ignored");
                skip_current();
            }
            return;
        }
    }

    void in_prolog(Tokenizer::Kind kind) {
        read_declaration();
        if (kind != Tokenizer::Kind::start_tag) return;
        if (tok_.name != "tv")
            return fail("not an XMLTV guide: the root element is <" + excerpt(tok_.name) + ">, not <tv>");
        state_ = tok_.self_closing ? State::after_tv : State::in_tv;
    }

    void in_tv(Tokenizer::Kind kind) {
        if (kind == Tokenizer::Kind::start_tag) {
            if (tok_.name == "channel") return begin_channel();
            if (tok_.name == "programme") return begin_programme();
            return skip_current();
        }
        if (kind == Tokenizer::Kind::end_tag) {
            if (tok_.name == "tv")
                state_ = State::after_tv;
            else if (first(kStrayEnd))
                note(tok_.position, "end tag </" + excerpt(tok_.name) + "> matches no open element, ignored");
        }
    }

    void begin_channel() {
        ++g_.channels_read;
        auto id = attribute("id");
        if (!id || id->empty()) {
            note(tok_.position, "a <channel> without an id, dropped");
            return skip_current();
        }
        if (g_.channels.size() >= limits_.max_channels) {
            if (first(kChannelCap))
                note(tok_.position, "more than " + std::to_string(limits_.max_channels) + " channels; the rest dropped");
            return skip_current();
        }
        channel_id_ = std::move(*id);
        names_.clear();
        in_name_ = has_icon_ = false;
        extras_at_.reset();
        item_ = Item::channel;
        begin_item();
    }

    void begin_programme() {
        ++g_.programmes_read;
        const auto channel = attribute("channel");
        if (!channel || channel->empty()) {
            note(tok_.position, "a <programme> without a channel, dropped");
            return skip_current();
        }
        const auto start = attribute("start");
        if (!start) {
            note(tok_.position, "a <programme> without a start time, dropped");
            return skip_current();
        }
        if (!keeps_programme_of(*channel)) return skip_current();
        if (g_.programmes.size() >= limits_.max_programmes) {
            if (first(kProgrammeCap))
                note(tok_.position,
                     "more than " + std::to_string(limits_.max_programmes) + " programmes; the rest dropped");
            return skip_current();
        }
        auto it = programme_channel_index_.find(*channel);
        if (it == programme_channel_index_.end()) {
            if (g_.programme_channels.size() >= limits_.max_channels) {
                if (first(kIds))
                    note(tok_.position, "programmes for more than " + std::to_string(limits_.max_channels) +
                                            " channel ids; the rest dropped");
                return skip_current();
            }
            it = programme_channel_index_.emplace(*channel, static_cast<std::uint32_t>(g_.programme_channels.size())).first;
            g_.programme_channels.push_back(*channel);
        }
        programme_ = Programme{};
        programme_.channel = it->second;
        item_ = Item::programme;
        item_start_ = g_.text.size();  // never above kept_cap_, itself below 4 GiB
        programme_.offset = static_cast<std::uint32_t>(item_start_);
        escape_attribute(g_.text, *start);
        programme_.start_length = static_cast<std::uint32_t>(g_.text.size() - item_start_);
        if (const auto stop = attribute("stop")) {
            programme_.has_stop = true;
            const std::size_t at = g_.text.size();
            escape_attribute(g_.text, *stop);
            programme_.stop_length = static_cast<std::uint32_t>(g_.text.size() - at);
        }
        const std::size_t attributes_at = g_.text.size();
        append_attributes({"start", "stop", "channel"});
        programme_.attributes_length = static_cast<std::uint32_t>(g_.text.size() - attributes_at);
        body_start_ = g_.text.size();
        begin_item();
    }

    // parse_for: a programme is kept when its channel is wanted, or when no <channel> of its id has been seen
    // yet (a guide that lists programmes first; finish() drops those whose channel turned out unwanted).
    bool keeps_programme_of(const std::string& id) const {
        if (!wanted_ || wanted_->wants_id(id)) return true;
        const auto it = channels_seen_.find(id);
        return it == channels_seen_.end() || it->second;
    }

    // The item's start tag has been read (and, for a programme, its attributes kept).
    void begin_item() {
        if (item_ == Item::channel) item_start_ = g_.text.size();
        frames_.clear();
        frames_.push_back({tok_.name, false, false, g_.text.size()});
        pending_space_.clear();
        state_ = State::in_item;
        if (tok_.self_closing) end_item();
        else check_size();
    }

    std::size_t item_cap() const {
        return item_ == Item::channel ? limits_.max_channel_bytes : limits_.max_programme_bytes;
    }

    // After every append: an item past its cap, or the guide past its cap, is dropped. False then.
    bool check_size() {
        const bool item_big = g_.text.size() - item_start_ > item_cap();
        if (!item_big && g_.text.size() <= kept_cap_) return true;
        abort_item(item_big);
        return false;
    }

    // Drops the item being read; the rest of it is skipped (its open elements' end tags, the item's own
    // ending the skip whatever the count).
    void abort_item(bool item_too_big) {
        const char* what = item_ == Item::channel ? "<channel>" : "<programme>";
        if (item_too_big)
            note(tok_.position,
                 std::string("a ") + what + " larger than " + std::to_string(item_cap()) + " bytes, dropped");
        else if (first(kKeptCap))
            note(tok_.position, "guide larger than " + std::to_string(kept_cap_) + " bytes kept; the rest dropped");
        g_.text.resize(item_start_);
        skip_ = frames_.size();
        skip_anchor_ = frames_[0].name;
        frames_.clear();
        pending_space_.clear();
        state_ = State::in_tv;
    }

    void append_indent(std::size_t level) {
        g_.text += '\n';
        g_.text.append(2 * (level + 1), ' ');
    }

    void in_item(Tokenizer::Kind kind) {
        if (kind == Tokenizer::Kind::text) return item_text();
        if (kind == Tokenizer::Kind::end_tag) return item_end_tag();
        const std::string_view n = tok_.name;
        if (n == "channel" || n == "programme") {  // XMLTV items do not nest: the open one was not closed
            if (first(kUnclosed))
                note(tok_.position, "<" + std::string(frames_[0].name) + "> not closed before <" + std::string(n) + ">");
            end_item_here();
            return in_tv(kind);
        }
        if (frames_.size() + 2 > limits_.max_depth) {  // <tv>, the open frames and this one
            if (first(kDepth))
                note(tok_.position,
                     "elements nested deeper than " + std::to_string(limits_.max_depth) + " levels, dropped");
            return skip_current();
        }
        if (n.size() > limits_.max_name_bytes || !is_plain_name(n)) {
            if (first(kBadName)) note(tok_.position, "element <" + excerpt(n) + "> not kept");
            return skip_current();
        }
        Frame& parent = frames_.back();
        pending_space_.clear();  // between elements: not content
        if (item_ == Item::channel && frames_.size() == 1 && n != "display-name" && !extras_at_)
            extras_at_ = g_.text.size();  // XMLTV's order: display-name+, icon*, url*
        if (!parent.text) append_indent(frames_.size());
        parent.children = true;
        if (item_ == Item::channel && frames_.size() == 1) {
            if (n == "icon") has_icon_ = true;
            if (n == "display-name" && tok_.self_closing) names_.emplace_back();
            if (n == "display-name" && !tok_.self_closing) {
                in_name_ = true;
                name_text_.clear();
            }
        }
        g_.text += '<';
        g_.text += n;
        append_attributes({});
        if (tok_.self_closing) {
            g_.text += "/>";
        } else {
            g_.text += '>';
            frames_.push_back({n, false, false, g_.text.size()});
        }
        check_size();
    }

    void item_text() {
        const std::size_t used = g_.text.size() - item_start_ + pending_space_.size();
        const std::size_t room = item_cap() > used ? item_cap() - used : 0;
        if (!decode_into_scratch(tok_.text, !tok_.cdata, room)) return abort_item(true);
        if (scratch_.empty()) return;
        if (frames_.size() == 1) {  // XMLTV has no text directly in a <channel> or <programme>
            if (!is_blank(scratch_) && first(kItemText))
                note(tok_.position, "text directly inside a <" + std::string(frames_[0].name) + "> dropped");
            return;
        }
        Frame& f = frames_.back();
        if (in_name_ && frames_.size() == 2) name_text_ += scratch_;
        if (!f.text && is_blank(scratch_)) {  // content only if no element follows before the end tag
            pending_space_ += scratch_;
            return;
        }
        escape_text(g_.text, pending_space_);
        pending_space_.clear();
        escape_text(g_.text, scratch_);
        f.text = true;
        check_size();
    }

    // Closes the open elements of the item and the item, where the item was not closed.
    void end_item_here() {
        while (frames_.size() > 1 && state_ == State::in_item) close_frame();
        if (state_ == State::in_item) end_item();
        skip_ = 0;
    }

    void item_end_tag() {
        const std::string_view n = tok_.name;
        std::size_t k = frames_.size();  // frames_[k - 1] is the element this tag closes
        while (k > 0 && frames_[k - 1].name != n) --k;
        if (k == 0) {
            if (n == "tv") {  // </tv> inside an item: the item ends here too
                if (first(kUnclosed)) note(tok_.position, "<" + std::string(frames_[0].name) + "> not closed before </tv>");
                end_item_here();
                return in_tv(Tokenizer::Kind::end_tag);
            }
            if (first(kStrayEnd)) note(tok_.position, "end tag </" + excerpt(n) + "> matches no open element, ignored");
            return;
        }
        if (k < frames_.size() && first(kUnclosed))
            note(tok_.position, "<" + excerpt(frames_.back().name) + "> not closed before </" + excerpt(n) + ">");
        const std::size_t left_open = k - 1;
        while (frames_.size() > std::max<std::size_t>(left_open, 1) && state_ == State::in_item) close_frame();
        if (state_ != State::in_item) {  // dropped on the way: what stays to skip is what this tag leaves open
            skip_ = left_open;
            return;
        }
        if (left_open == 0) end_item();
    }

    // Closes the innermost open element (not the item itself: end_item does).
    void close_frame() {
        const Frame f = frames_.back();
        if (!f.children) escape_text(g_.text, pending_space_);
        else if (!f.text) append_indent(frames_.size() - 1);
        pending_space_.clear();
        frames_.pop_back();
        if (g_.text.size() == f.after_start) {  // nothing inside: <x/>
            g_.text.back() = '/';
            g_.text += '>';
        } else {
            g_.text += "</";
            g_.text += f.name;
            g_.text += '>';
        }
        if (in_name_ && frames_.size() == 1) {
            in_name_ = false;
            names_.push_back(name_text_);
        }
        check_size();
    }

    void end_item() {
        pending_space_.clear();
        if (!check_size()) {
            skip_ = 0;  // the item's end (or self-closing start) tag is read: nothing is left to skip
            return;
        }
        frames_.clear();
        state_ = State::in_tv;
        if (item_ == Item::programme) {
            programme_.body_length = static_cast<std::uint32_t>(g_.text.size() - body_start_);
            g_.programmes.push_back(programme_);
            return;
        }
        const bool keep = !wanted_ || wanted_->wants_channel(channel_id_, names_);
        if (wanted_ && channels_seen_.size() < limits_.max_channels) {
            auto [it, inserted] = channels_seen_.emplace(channel_id_, keep);
            if (!inserted) it->second = it->second || keep;
        }
        if (!keep) {
            g_.text.resize(item_start_);
            return;
        }
        Channel c;
        c.id = std::move(channel_id_);
        c.display_names = std::move(names_);
        c.body = {static_cast<std::uint32_t>(item_start_), static_cast<std::uint32_t>(g_.text.size() - item_start_)};
        c.extras_at = static_cast<std::uint32_t>(extras_at_.value_or(g_.text.size()) - item_start_);
        c.has_icon = has_icon_;
        g_.channels.push_back(std::move(c));
    }

    void finish() {
        if (failed_) {
            g_.channels.clear();
            g_.programmes.clear();
            g_.programme_channels.clear();
            g_.text.clear();
            return;
        }
        if (!tok_.truncated.empty()) note(doc_.size(), "document truncated: " + tok_.truncated);
        switch (state_) {
        case State::prolog:
            g_.error = doc_.empty() ? "guide is empty" : "not an XMLTV guide: no <tv> element";
            return;
        case State::in_item:
            note(doc_.size(), std::string("document ends inside a <") + std::string(frames_[0].name) + ">, dropped");
            g_.text.resize(item_start_);
            frames_.clear();
            break;
        case State::in_tv:
            note(doc_.size(), "document ends before </tv>");
            break;
        case State::after_tv:
            g_.complete = tok_.truncated.empty();
            break;
        }
        if (wanted_) prune_pending();
    }

    // parse_for: drops the programmes kept before their <channel> was seen, whose channel turned out unwanted.
    void prune_pending() {
        std::vector<std::int64_t> remap(g_.programme_channels.size(), -1);
        std::vector<std::string> ids;
        for (std::size_t k = 0; k < g_.programme_channels.size(); ++k) {
            const std::string& id = g_.programme_channels[k];
            const auto it = channels_seen_.find(id);
            if (wanted_->wants_id(id) || it == channels_seen_.end() || it->second) {
                remap[k] = static_cast<std::int64_t>(ids.size());
                ids.push_back(id);
            }
        }
        if (ids.size() == g_.programme_channels.size()) return;
        std::size_t out = 0;
        for (const Programme& p : g_.programmes) {
            if (remap[p.channel] < 0) continue;
            Programme q = p;
            q.channel = static_cast<std::uint32_t>(remap[p.channel]);
            g_.programmes[out++] = q;
        }
        g_.programmes.resize(out);
        g_.programme_channels = std::move(ids);
    }
};

}  // namespace detail

// Reads one XMLTV document, keeping every channel and programme (up to Limits).
inline Guide parse(std::string_view xml, const Limits& limits = {}) {
    Guide g;
    detail::GuideReader(xml, limits, nullptr, g).run();
    return g;
}

// Reads one XMLTV document keeping only what `wanted` may use: channels whose id is one of their tvg_ids or
// whose display name is one of their names, and those channels' programmes. filter() over the result gives
// what it gives over parse()'s, with a fraction of the memory for a large guide.
inline Guide parse_for(std::string_view xml, const std::vector<GuideChannel>& wanted, const Limits& limits = {}) {
    Guide g;
    const detail::Wanted w(wanted);
    detail::GuideReader(xml, limits, &w, g).run();
    return g;
}

namespace detail {

inline void add_problem(Report& r, const Limits& limits, std::string what) {
    ++r.problem_count;
    if (r.problems.size() < limits.max_problems) r.problems.push_back(std::move(what));
}

// A guide channel as filter() finds it: its <channel> (if any) and its programmes (if any).
struct Source {
    std::int64_t channel = -1;     // index in Guide::channels
    std::int64_t programmes = -1;  // index in Guide::programme_channels
};

struct GuideIndex {
    std::unordered_map<std::string_view, Source> by_id;
    std::unordered_map<std::string, std::string_view> by_lower_id;
    std::unordered_map<std::string, std::size_t> by_name;  // -> index in Guide::channels (that <channel> serves)

    explicit GuideIndex(const Guide& g) {
        for (std::size_t k = 0; k < g.channels.size(); ++k) {
            const Channel& c = g.channels[k];
            auto [it, inserted] = by_id.emplace(c.id, Source{});
            if (it->second.channel < 0) it->second.channel = static_cast<std::int64_t>(k);
            by_lower_id.emplace(ascii_lower(c.id), it->first);
            for (const std::string& n : c.display_names) {
                std::string key = name_key(n);
                if (!key.empty()) by_name.emplace(std::move(key), k);
            }
        }
        for (std::size_t k = 0; k < g.programme_channels.size(); ++k) {
            auto [it, inserted] = by_id.emplace(g.programme_channels[k], Source{});
            it->second.programmes = static_cast<std::int64_t>(k);
            by_lower_id.emplace(ascii_lower(it->first), it->first);
        }
    }
};

}  // namespace detail

// The XMLTV document for `wanted` from `guides` (in order of preference): one <channel> per wanted channel
// (in order; a repeated id is written once), then their programmes (per channel, in guide order), written
// with the wanted channel's id and moved by its shift_hours. A wanted channel takes the guide channel whose
// id is its tvg_id (exactly, in the first guide that has it; else ignoring ASCII case), else the first
// whose display name matches its name. A guide channel may serve several wanted channels. Guide channels
// nobody wants are left out with their programmes. A wanted channel no guide knows is still listed, with
// its name as display name and its logo, and no programmes, so that clients show it. The guide's
// children of a <channel> are kept, the wanted name added as a further display name when it is none of
// them, the logo added when there is no icon. The output is UTF-8 XML; `report` says what happened.
// Takes a span so that guides are never copied (a guide can be as large as its document).
inline std::string filter(std::span<const Guide> guides, const std::vector<GuideChannel>& wanted, Report& report,
                          const Limits& limits = {}) {
    using detail::add_problem;
    report = Report{};
    report.guides = guides.size();
    for (std::size_t gi = 0; gi < guides.size(); ++gi) {
        const Guide& g = guides[gi];
        const std::string prefix = "guide " + std::to_string(gi + 1) + ": ";
        if (!g.ok()) {
            add_problem(report, limits, prefix + g.error);
            continue;
        }
        ++report.guides_usable;
        report.programmes_in += g.programmes.size();
        for (const std::string& p : g.problems) add_problem(report, limits, prefix + p);
        report.problem_count += g.problem_count - g.problems.size();
    }

    std::vector<detail::GuideIndex> indexes;
    indexes.reserve(guides.size());
    for (const Guide& g : guides) indexes.emplace_back(g);

    // Each wanted channel's guide channel.
    struct Match {
        std::size_t wanted;
        std::int64_t guide = -1;
        detail::Source source;
    };
    std::vector<Match> matches;
    std::unordered_set<std::string> ids_written;
    for (std::size_t w = 0; w < wanted.size(); ++w) {
        const GuideChannel& c = wanted[w];
        ChannelMatch cm;
        cm.id = detail::sanitize(c.id);
        if (cm.id.empty()) {
            add_problem(report, limits, "a wanted channel without an id ('" + detail::excerpt(c.name) + "'), left out");
            report.channels.push_back(std::move(cm));
            continue;
        }
        if (!ids_written.insert(cm.id).second) {
            add_problem(report, limits, "wanted channel id '" + detail::excerpt(cm.id) + "' repeated, written once");
            report.channels.push_back(std::move(cm));
            continue;
        }
        Match m{w, -1, {}};
        // By id: the first <channel> of that id; by name: the first <channel> of that name (its id may repeat).
        auto take = [&](std::size_t gi, std::string_view id, ChannelMatch::By by, std::int64_t channel = -1) {
            const auto it = indexes[gi].by_id.find(id);
            if (it == indexes[gi].by_id.end()) return;  // cannot happen: every index entry names a by_id key
            m.guide = static_cast<std::int64_t>(gi);
            m.source = it->second;
            if (channel >= 0) m.source.channel = channel;
            cm.by = by;
            cm.guide = gi;
            cm.source_id = std::string(id);
        };
        for (std::size_t gi = 0; gi < guides.size() && m.guide < 0 && !c.tvg_id.empty(); ++gi)
            if (auto it = indexes[gi].by_id.find(c.tvg_id); it != indexes[gi].by_id.end())
                take(gi, it->first, ChannelMatch::By::tvg_id);
        const std::string lower = ascii_lower(c.tvg_id);
        for (std::size_t gi = 0; gi < guides.size() && m.guide < 0 && !c.tvg_id.empty(); ++gi)
            if (auto it = indexes[gi].by_lower_id.find(lower); it != indexes[gi].by_lower_id.end())
                take(gi, it->second, ChannelMatch::By::tvg_id);
        const std::string key = detail::name_key(c.name);
        for (std::size_t gi = 0; gi < guides.size() && m.guide < 0 && !key.empty(); ++gi)
            if (auto it = indexes[gi].by_name.find(key); it != indexes[gi].by_name.end())
                take(gi, guides[gi].channels[it->second].id, ChannelMatch::By::name,
                     static_cast<std::int64_t>(it->second));
        if (m.guide < 0) report.unmatched.push_back(cm.id);
        if (c.shift_hours != 0 && (!std::isfinite(c.shift_hours) || std::abs(c.shift_hours) > kMaxShiftHours))
            add_problem(report, limits, "channel '" + detail::excerpt(cm.id) + "': shift of " +
                        format_number(c.shift_hours) + " hours refused, times left unshifted");
        report.channels.push_back(std::move(cm));
        matches.push_back(m);
    }
    {
        std::unordered_set<std::string> distinct;
        for (const Match& m : matches)
            if (m.guide >= 0)
                distinct.insert(std::to_string(m.guide) + '\n' + report.channels[m.wanted].source_id);
        report.guide_channels_matched = distinct.size();
    }

    // Programme lists of the guide channels used: per guide, the programmes of each used id, in order.
    std::vector<std::vector<std::vector<std::uint32_t>>> lists(guides.size());
    for (const Match& m : matches) {
        if (m.guide < 0 || m.source.programmes < 0) continue;
        auto& l = lists[static_cast<std::size_t>(m.guide)];
        if (l.empty()) l.resize(guides[static_cast<std::size_t>(m.guide)].programme_channels.size());
    }
    std::vector<std::vector<bool>> used(guides.size());
    for (const Match& m : matches)
        if (m.guide >= 0 && m.source.programmes >= 0) {
            auto& u = used[static_cast<std::size_t>(m.guide)];
            if (u.empty()) u.resize(guides[static_cast<std::size_t>(m.guide)].programme_channels.size());
            u[static_cast<std::size_t>(m.source.programmes)] = true;
        }
    for (std::size_t gi = 0; gi < guides.size(); ++gi) {
        if (used[gi].empty()) continue;
        const Guide& g = guides[gi];
        for (std::size_t k = 0; k < g.programmes.size(); ++k)
            if (used[gi][g.programmes[k].channel])
                lists[gi][g.programmes[k].channel].push_back(static_cast<std::uint32_t>(k));
    }

    // Each wanted id as an attribute value, escaped once.
    std::vector<std::string> id_attribute(wanted.size());
    for (const Match& m : matches) detail::escape_attribute(id_attribute[m.wanted], report.channels[m.wanted].id);

    // One reservation for the whole document (no doubling of a large string on the way): an upper bound
    // (escaping grows a byte to at most 6, a shifted time by 2 digits), itself bounded by the output cap.
    const std::size_t reserve_cap = limits.max_output_bytes + limits.max_programme_bytes + 1024;
    std::size_t estimate = 256;
    for (const Match& m : matches) {
        const GuideChannel& c = wanted[m.wanted];
        estimate += id_attribute[m.wanted].size() + 6 * (std::max(c.name.size(), c.id.size()) + c.logo.size()) + 128;
        if (m.guide < 0) continue;
        const Guide& g = guides[static_cast<std::size_t>(m.guide)];
        if (m.source.channel >= 0) estimate += g.channels[static_cast<std::size_t>(m.source.channel)].body.length;
        if (m.source.programmes < 0) continue;
        for (std::uint32_t k : lists[static_cast<std::size_t>(m.guide)][static_cast<std::size_t>(m.source.programmes)]) {
            const Programme& p = g.programmes[k];
            estimate += std::size_t{p.start_length} + p.stop_length + p.attributes_length + p.body_length +
                        id_attribute[m.wanted].size() + 64;
        }
        if (estimate > reserve_cap) break;
    }
    std::string out;
    out.reserve(std::min(estimate, reserve_cap));

    out += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE tv SYSTEM \"xmltv.dtd\">\n"
           "<tv generator-info-name=\"hlsrelay\">\n";
    for (const Match& m : matches) {
        const GuideChannel& c = wanted[m.wanted];
        const std::string& id = report.channels[m.wanted].id;
        const std::string name = detail::sanitize(trim(c.name));
        out += "  <channel id=\"";
        out += id_attribute[m.wanted];
        out += "\">";
        bool has_icon = false, has_name = false;
        std::string_view rest;  // the guide's children after its display names
        if (m.guide >= 0 && m.source.channel >= 0) {
            const Guide& g = guides[static_cast<std::size_t>(m.guide)];
            const Channel& gc = g.channels[static_cast<std::size_t>(m.source.channel)];
            const std::string_view body = g.view(gc.body);
            out += body.substr(0, gc.extras_at);
            rest = body.substr(gc.extras_at);
            has_icon = gc.has_icon;
            // Without a name of ours, the guide's names do.
            const std::string key = detail::name_key(name);
            for (const std::string& n : gc.display_names) has_name = has_name || key.empty() || detail::name_key(n) == key;
        }
        if (!has_name) {
            out += "\n    <display-name>";
            detail::escape_text(out, name.empty() ? id : name);
            out += "</display-name>";
        }
        if (!has_icon && !trim(c.logo).empty()) {
            out += "\n    <icon src=\"";
            detail::escape_attribute(out, detail::sanitize(trim(c.logo)));
            out += "\"/>";
        }
        out += rest;
        out += "\n  </channel>\n";
        ++report.channels_written;
    }

    bool capped = false;
    for (const Match& m : matches) {
        if (m.guide < 0 || m.source.programmes < 0 || capped) continue;
        const GuideChannel& c = wanted[m.wanted];
        ChannelMatch& cm = report.channels[m.wanted];
        const Guide& g = guides[static_cast<std::size_t>(m.guide)];
        const bool shift = c.shift_hours != 0 && std::isfinite(c.shift_hours) && std::abs(c.shift_hours) <= kMaxShiftHours;
        std::size_t bad_times = 0;
        std::string first_bad;
        std::string scratch;
        // Times are stored escaped; XMLTV times never need escaping, so a time that does is not one.
        auto write_time = [&](std::string_view t) {
            if (shift) {
                if (const auto moved = shift_time(t, c.shift_hours)) {
                    out += *moved;
                    return;
                }
                if (bad_times++ == 0) first_bad = std::string(t);
            }
            out += t;
        };
        for (std::uint32_t k : lists[static_cast<std::size_t>(m.guide)][static_cast<std::size_t>(m.source.programmes)]) {
            if (report.programmes_written >= limits.max_programmes || out.size() > limits.max_output_bytes) {
                add_problem(report, limits, "output limit reached (" + std::to_string(limits.max_programmes) +
                            " programmes or " + std::to_string(limits.max_output_bytes) +
                            " bytes); later programmes left out");
                capped = true;
                break;
            }
            const Programme& p = g.programmes[k];
            out += "  <programme start=\"";
            write_time(g.start(p));
            out += '"';
            if (p.has_stop) {
                out += " stop=\"";
                write_time(g.stop(p));
                out += '"';
            }
            out += " channel=\"";
            out += id_attribute[m.wanted];
            out += '"';
            out += g.attributes(p);
            const std::string_view body = g.body(p);
            if (body.empty()) {
                out += "/>\n";
            } else {
                out += '>';
                out += body;
                out += body.back() == '>' ? "\n  </programme>\n" : "</programme>\n";
            }
            ++cm.programmes;
            ++report.programmes_written;
        }
        if (bad_times) {
            report.unparseable_times += bad_times;
            add_problem(report, limits, "channel '" + detail::excerpt(cm.id) + "': " + std::to_string(bad_times) +
                        " times could not be shifted (e.g. '" + detail::excerpt(first_bad) + "'), written unchanged");
        }
    }
    out += "</tv>\n";
    return out;
}

// filter() of one guide.
inline std::string filter(const Guide& guide, const std::vector<GuideChannel>& wanted, Report& report,
                          const Limits& limits = {}) {
    return filter(std::span<const Guide>(&guide, 1), wanted, report, limits);
}

// parse_for() of each document, then filter(): the guide for `wanted` from raw XMLTV documents (in order of
// preference). Peak memory: the documents (the caller's) plus what the wanted channels use, plus the output.
inline std::string merge(const std::vector<std::string_view>& documents, const std::vector<GuideChannel>& wanted,
                         Report& report, const Limits& limits = {}) {
    std::vector<Guide> guides;
    guides.reserve(documents.size());
    report = Report{};
    for (std::string_view d : documents) guides.push_back(parse_for(d, wanted, limits));
    return filter(guides, wanted, report, limits);
}

}  // namespace hlsrelay::xmltv
