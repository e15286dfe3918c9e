// HLS playlist (RFC 8216) parser for the engine's own HLS client: master and media playlists as plain data.
#pragma once

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <variant>
#include <vector>

namespace hlsrelay::m3u8 {

struct ByteRange {
    int64_t length = 0;
    int64_t offset = -1;  // -1: follows the previous range of the same URI
};

struct Key {
    std::string method;                         // "NONE", "AES-128", "SAMPLE-AES"
    std::string uri;                            // resolved absolute
    std::optional<std::array<uint8_t, 16>> iv;  // from IV=0x...; unset -> media sequence number as IV
    std::string keyformat;                      // "identity" when the tag has no KEYFORMAT (RFC 8216 4.3.2.4)
};

struct InitSection {  // EXT-X-MAP
    std::string uri;
    std::optional<ByteRange> byterange;  // an offset-less BYTERANGE starts at 0
};

// LL-HLS (RFC 8216bis 4.4.4.9): a part of a segment, listed before the segment's own line.
struct Part {
    std::string uri;  // resolved absolute
    double duration = 0;
    bool independent = false;  // INDEPENDENT=YES: starts with a sync sample
    bool gap = false;
    std::optional<ByteRange> byterange;  // offsets resolved
};

struct Segment {
    std::string uri;  // resolved absolute against the playlist URL
    double duration = 0;  // EXTINF
    std::string title;
    int64_t sequence = 0;  // media sequence number of this segment
    int64_t discontinuity_sequence = 0;
    bool discontinuity = false;  // EXT-X-DISCONTINUITY before this segment
    bool gap = false;
    std::optional<ByteRange> byterange;  // offsets resolved (never -1 after parsing)
    std::optional<Key> key;              // method != NONE only
    std::optional<InitSection> map;
    std::optional<std::string> program_date_time;  // as written; not carried over to later segments
    std::vector<Part> parts;  // LL-HLS: its parts, when the playlist still lists them
};

struct MediaPlaylist {
    int version = 1;
    double target_duration = 0;
    int64_t media_sequence = 0;
    int64_t discontinuity_sequence = 0;
    bool endlist = false;
    std::string playlist_type;  // "", "EVENT", "VOD"
    bool independent_segments = false;
    std::vector<Segment> segments;
    // LL-HLS (RFC 8216bis): EXT-X-SERVER-CONTROL's CAN-BLOCK-RELOAD, EXT-X-PART-INF's PART-TARGET, and
    // the segment being built: its parts listed after the last complete segment (uri empty, duration
    // 0, sequence the next one, with the tags that precede its parts: discontinuity, date, map, key).
    bool can_block_reload = false;
    double part_target = 0;
    std::optional<Segment> partial;
    // Why the parts cannot be followed (a malformed EXT-X-PART, parts without PART-TARGET), empty when
    // they can. The segments themselves stay usable: a client then reads the playlist as classic HLS.
    std::string part_problem;

    double total_duration() const {
        double total = 0;
        for (const auto& s : segments) total += s.duration;
        return total;
    }
};

struct Variant {
    std::string uri;
    int64_t bandwidth = 0;
    std::optional<int64_t> average_bandwidth;
    std::string codecs;
    int width = 0, height = 0;
    double frame_rate = 0;
    std::string audio_group, video_group;
    std::map<std::string, std::string> attributes;  // the tag's whole attribute list, as the source wrote it
};

struct Rendition {  // EXT-X-MEDIA
    std::string type, group_id, name, language, uri;
    bool is_default = false, autoselect = false;
    std::map<std::string, std::string> attributes;  // the tag's whole attribute list, as the source wrote it
};

struct MasterPlaylist {
    std::vector<Variant> variants;
    std::vector<Rendition> renditions;
    bool independent_segments = false;
};

struct Playlist {
    std::variant<MediaPlaylist, MasterPlaylist> value;

    bool is_master() const { return std::holds_alternative<MasterPlaylist>(value); }
    // Both throw std::bad_variant_access when asked for the other kind.
    const MediaPlaylist& media() const { return std::get<MediaPlaylist>(value); }
    MediaPlaylist& media() { return std::get<MediaPlaylist>(value); }
    const MasterPlaylist& master() const { return std::get<MasterPlaylist>(value); }
};

class ParseError : public std::runtime_error {
public:
    ParseError(int line, std::string msg)
        : std::runtime_error("line " + std::to_string(line) + ": " + msg), line_(line) {}
    int line() const { return line_; }

private:
    int line_;
};

// Caps that keep hostile input from costing more than a real playlist would.
inline constexpr int max_lines = 100000;
inline constexpr std::size_t max_segments = 20000;
// Each segment owns a copy of its key and map; without a cap one huge EXT-X-KEY line
// followed by 20000 tiny segments would expand a 1 MB playlist into gigabytes.
inline constexpr std::size_t max_segment_bytes = std::size_t{64} << 20;
// The longest EXTINF or EXT-X-TARGETDURATION taken (a day): a larger one is an error, so that every
// duration (and the sum of max_segments of them) stays a sane, finite wait for the client.
inline constexpr double max_duration_seconds = 86400;

namespace detail {

inline bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'; }
inline bool is_digit(char c) { return c >= '0' && c <= '9'; }
inline bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

inline std::string_view trim(std::string_view s) {
    while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
    return s;
}

// Error messages quote input; a fuzzer's megabyte-long token must not end up in a log line.
inline std::string clip(std::string_view s) {
    constexpr std::size_t limit = 64;
    if (s.size() <= limit) return std::string(s);
    return std::string(s.substr(0, limit)) + "...";
}

// RFC 8216 decimal-integer: digits only (from_chars alone would take a sign).
inline std::optional<int64_t> parse_int(std::string_view s) {
    s = trim(s);
    if (s.empty() || !is_digit(s.front())) return std::nullopt;
    int64_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
    return v;
}

// Decimal floating point; rejects inf/nan, hex and trailing junk. Sign is left to the caller.
inline std::optional<double> parse_number(std::string_view s) {
    s = trim(s);
    if (s.empty()) return std::nullopt;
    std::string_view digits = (s.front() == '-' || s.front() == '+') ? s.substr(1) : s;
    if (digits.empty() || !(is_digit(digits.front()) || digits.front() == '.')) return std::nullopt;
    double v = 0;
    // from_chars rejects a leading '+', so parse the unsigned part and reapply the sign.
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
    if (ec != std::errc() || end != digits.data() + digits.size() || !std::isfinite(v)) return std::nullopt;
    return s.front() == '-' ? -v : v;
}

// "<length>[@<offset>]"; offset -1 when absent. The end (offset + length) must fit in 64 bits.
inline std::optional<ByteRange> parse_byterange(std::string_view s) {
    s = trim(s);
    auto at = s.find('@');
    auto length = parse_int(s.substr(0, at));
    if (!length) return std::nullopt;
    ByteRange r;
    r.length = *length;
    if (at != std::string_view::npos) {
        auto offset = parse_int(s.substr(at + 1));
        if (!offset || *offset > std::numeric_limits<int64_t>::max() - r.length) return std::nullopt;
        r.offset = *offset;
    }
    return r;
}

inline int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// IV=0x<hex>: a 128-bit big-endian number, so fewer than 32 digits are right-aligned.
inline std::optional<std::array<uint8_t, 16>> parse_iv(std::string_view s) {
    s = trim(s);
    if (s.size() < 3 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X')) return std::nullopt;
    s.remove_prefix(2);
    if (s.size() > 32) return std::nullopt;
    std::array<uint8_t, 16> iv{};
    std::size_t nibble = 0;  // counted from the least significant end
    for (auto it = s.rbegin(); it != s.rend(); ++it, ++nibble) {
        int v = hex_value(*it);
        if (v < 0) return std::nullopt;
        auto& byte = iv[15 - nibble / 2];
        byte = static_cast<uint8_t>(byte | (nibble % 2 ? v << 4 : v));
    }
    return iv;
}

inline bool is_attribute_name_char(char c) { return is_alpha(c) || is_digit(c) || c == '-' || c == '_'; }

struct UriParts {
    std::string_view scheme, authority, path, query, fragment;
    bool has_scheme = false, has_authority = false, has_query = false, has_fragment = false;
};

// RFC 3986 appendix B, except that a scheme must be well formed so that "1080p:x.ts"-like
// paths stay relative instead of becoming a bogus scheme.
inline UriParts split_uri(std::string_view s) {
    UriParts p;
    std::size_t i = 0;
    auto stop = s.find_first_of(":/?#");
    if (stop != std::string_view::npos && s[stop] == ':' && stop > 0 && is_alpha(s[0])) {
        bool ok = true;
        for (std::size_t k = 1; k < stop && ok; ++k)
            ok = is_alpha(s[k]) || is_digit(s[k]) || s[k] == '+' || s[k] == '-' || s[k] == '.';
        if (ok) {
            p.scheme = s.substr(0, stop);
            p.has_scheme = true;
            i = stop + 1;
        }
    }
    if (s.substr(i).starts_with("//")) {
        i += 2;
        auto end = s.find_first_of("/?#", i);
        if (end == std::string_view::npos) end = s.size();
        p.authority = s.substr(i, end - i);
        p.has_authority = true;
        i = end;
    }
    auto end = s.find_first_of("?#", i);
    if (end == std::string_view::npos) end = s.size();
    p.path = s.substr(i, end - i);
    i = end;
    if (i < s.size() && s[i] == '?') {
        ++i;
        end = s.find('#', i);
        if (end == std::string_view::npos) end = s.size();
        p.query = s.substr(i, end - i);
        p.has_query = true;
        i = end;
    }
    if (i < s.size() && s[i] == '#') {
        p.fragment = s.substr(i + 1);
        p.has_fragment = true;
    }
    return p;
}

// RFC 3986 5.2.4. Linear: each pop only erases characters an earlier step appended.
inline std::string remove_dot_segments(std::string_view in) {
    std::string out;
    out.reserve(in.size());
    auto pop_last = [&out] {
        auto slash = out.rfind('/');
        out.erase(slash == std::string::npos ? 0 : slash);
    };
    while (!in.empty()) {
        if (in.starts_with("../")) {
            in.remove_prefix(3);
        } else if (in.starts_with("./")) {
            in.remove_prefix(2);
        } else if (in.starts_with("/./")) {
            in.remove_prefix(2);
        } else if (in == "/.") {
            in = "/";
        } else if (in.starts_with("/../")) {
            in.remove_prefix(3);
            pop_last();
        } else if (in == "/..") {
            in = "/";
            pop_last();
        } else if (in == "." || in == "..") {
            in = {};
        } else {
            auto end = in.find('/', in.front() == '/' ? 1 : 0);
            if (end == std::string_view::npos) end = in.size();
            out.append(in.substr(0, end));
            in.remove_prefix(end);
        }
    }
    return out;
}

}  // namespace detail

// Splits "NAME=value,NAME="quoted, value"" into a map; quotes are removed. Tolerates spaces
// around items and a trailing comma, which real servers emit; anything else malformed throws.
inline std::map<std::string, std::string> parse_attribute_list(std::string_view s) {
    using detail::clip;
    std::map<std::string, std::string> out;
    std::size_t i = 0;
    const std::size_t n = s.size();
    auto skip_space = [&] {
        while (i < n && (s[i] == ' ' || s[i] == '\t')) ++i;
    };
    skip_space();
    while (i < n) {
        const std::size_t name_start = i;
        while (i < n && detail::is_attribute_name_char(s[i])) ++i;
        if (i == name_start)
            throw std::invalid_argument("attribute name expected at column " + std::to_string(i + 1));
        std::string name(s.substr(name_start, i - name_start));
        skip_space();
        if (i >= n || s[i] != '=') throw std::invalid_argument("attribute " + clip(name) + " has no '='");
        ++i;
        skip_space();
        std::string value;
        if (i < n && s[i] == '"') {
            auto close = s.find('"', i + 1);
            if (close == std::string_view::npos)
                throw std::invalid_argument("attribute " + clip(name) + " has an unterminated quoted string");
            value.assign(s.substr(i + 1, close - i - 1));
            i = close + 1;
            skip_space();
            if (i < n && s[i] != ',')
                throw std::invalid_argument("attribute " + clip(name) + " has text after its quoted string");
        } else {
            const std::size_t value_start = i;
            while (i < n && s[i] != ',') {
                if (s[i] == '"') throw std::invalid_argument("attribute " + clip(name) + " has a stray quote");
                ++i;
            }
            value.assign(detail::trim(s.substr(value_start, i - value_start)));
            if (value.empty()) throw std::invalid_argument("attribute " + clip(name) + " has an empty value");
        }
        out.insert_or_assign(std::move(name), std::move(value));
        if (i < n) ++i;  // the comma
        skip_space();
    }
    return out;
}

// RFC 3986 5.2.2 (strict) with 5.2.3 merge and 5.3 recomposition. The fragment of the base is dropped.
inline std::string resolve_url(std::string_view base, std::string_view ref) {
    const auto b = detail::split_uri(base);
    const auto r = detail::split_uri(ref);
    std::string_view scheme, authority, query;
    bool has_scheme, has_authority, has_query;
    std::string path;
    if (r.has_scheme) {
        scheme = r.scheme, has_scheme = true;
        authority = r.authority, has_authority = r.has_authority;
        path = detail::remove_dot_segments(r.path);
        query = r.query, has_query = r.has_query;
    } else {
        scheme = b.scheme, has_scheme = b.has_scheme;
        if (r.has_authority) {
            authority = r.authority, has_authority = true;
            path = detail::remove_dot_segments(r.path);
            query = r.query, has_query = r.has_query;
        } else {
            authority = b.authority, has_authority = b.has_authority;
            if (r.path.empty()) {
                path.assign(b.path);
                if (r.has_query)
                    query = r.query, has_query = true;
                else
                    query = b.query, has_query = b.has_query;
            } else {
                if (r.path.front() == '/') {
                    path = detail::remove_dot_segments(r.path);
                } else {
                    std::string merged;
                    if (b.has_authority && b.path.empty()) {
                        merged = "/";
                    } else {
                        auto slash = b.path.rfind('/');
                        if (slash != std::string_view::npos) merged.assign(b.path.substr(0, slash + 1));
                    }
                    merged.append(r.path);
                    path = detail::remove_dot_segments(merged);
                }
                query = r.query, has_query = r.has_query;
            }
        }
    }
    std::string out;
    out.reserve(scheme.size() + authority.size() + path.size() + query.size() + r.fragment.size() + 6);
    if (has_scheme) out.append(scheme).append(":");
    if (has_authority) out.append("//").append(authority);
    out.append(path);
    if (has_query) out.append("?").append(query);
    if (r.has_fragment) out.append("#").append(r.fragment);
    return out;
}

// rule: "highest", "lowest", or a bandwidth in bit/s (the highest variant not above it, else the
// lowest). Ties go to the variant listed first. Throws std::invalid_argument on any other rule,
// even when there are no variants, so a bad setting is caught on the first playlist.
inline const Variant* select_variant(const MasterPlaylist& master, std::string_view rule) {
    rule = detail::trim(rule);
    enum class Mode { highest, lowest, at_most } mode;
    int64_t limit = 0;
    if (rule == "highest") {
        mode = Mode::highest;
    } else if (rule == "lowest") {
        mode = Mode::lowest;
    } else if (auto v = detail::parse_int(rule)) {
        mode = Mode::at_most;
        limit = *v;
    } else {
        throw std::invalid_argument("variant rule must be \"highest\", \"lowest\" or a bandwidth in bit/s, not \"" +
                                    detail::clip(rule) + "\"");
    }
    const Variant* highest = nullptr;
    const Variant* lowest = nullptr;
    const Variant* fitting = nullptr;
    for (const auto& v : master.variants) {
        if (!highest || v.bandwidth > highest->bandwidth) highest = &v;
        if (!lowest || v.bandwidth < lowest->bandwidth) lowest = &v;
        if (v.bandwidth <= limit && (!fitting || v.bandwidth > fitting->bandwidth)) fitting = &v;
    }
    switch (mode) {
        case Mode::highest: return highest;
        case Mode::lowest: return lowest;
        case Mode::at_most: return fitting ? fitting : lowest;
    }
    return nullptr;
}

namespace detail {

// Tags that only make sense in one kind of playlist; seeing both kinds is an error.
inline bool is_media_tag(std::string_view t) {
    static constexpr std::string_view tags[] = {
        "EXTINF", "EXT-X-TARGETDURATION", "EXT-X-MEDIA-SEQUENCE", "EXT-X-DISCONTINUITY-SEQUENCE",
        "EXT-X-ENDLIST", "EXT-X-PLAYLIST-TYPE", "EXT-X-I-FRAMES-ONLY", "EXT-X-BYTERANGE",
        "EXT-X-DISCONTINUITY", "EXT-X-KEY", "EXT-X-MAP", "EXT-X-PROGRAM-DATE-TIME", "EXT-X-GAP",
        "EXT-X-DATERANGE", "EXT-X-BITRATE", "EXT-X-PART", "EXT-X-PART-INF", "EXT-X-SERVER-CONTROL",
        "EXT-X-SKIP", "EXT-X-PRELOAD-HINT", "EXT-X-RENDITION-REPORT"};
    for (auto tag : tags)
        if (t == tag) return true;
    return false;
}

inline bool is_master_tag(std::string_view t) {
    static constexpr std::string_view tags[] = {"EXT-X-STREAM-INF", "EXT-X-MEDIA", "EXT-X-I-FRAME-STREAM-INF",
                                                "EXT-X-SESSION-DATA", "EXT-X-SESSION-KEY",
                                                "EXT-X-CONTENT-STEERING"};
    for (auto tag : tags)
        if (t == tag) return true;
    return false;
}

class Parser {
public:
    Parser(std::string_view text, std::string_view url) : text_(text), url_(url) {}

    Playlist run() {
        if (text_.starts_with("\xEF\xBB\xBF")) text_.remove_prefix(3);
        std::string_view line;
        if (!next_line(line) || !is_extm3u(trim(line))) throw ParseError(1, "not an HLS playlist: missing #EXTM3U");
        while (next_line(line)) {
            line = trim(line);
            if (line.empty()) continue;
            if (line.front() != '#')
                on_uri(line);
            else if (line.starts_with("#EXT"))
                on_tag(line.substr(1));
            // Other '#' lines are comments.
        }
        return finish();
    }

private:
    static bool is_extm3u(std::string_view first) {
        // IPTV lists put attributes after the tag ("#EXTM3U x-tvg-url=..."); still a playlist.
        return first.starts_with("#EXTM3U") && (first.size() == 7 || is_space(first[7]));
    }

    bool next_line(std::string_view& out) {
        if (pos_ >= text_.size()) return false;
        auto end = text_.find('\n', pos_);
        if (end == std::string_view::npos) end = text_.size();
        out = text_.substr(pos_, end - pos_);
        pos_ = end + 1;
        if (++line_ > max_lines) throw ParseError(line_, "playlist has more than " + std::to_string(max_lines) + " lines");
        return true;
    }

    [[noreturn]] void fail(std::string msg) const { throw ParseError(line_, std::move(msg)); }

    std::map<std::string, std::string> attributes(std::string_view tag, std::string_view value) const {
        try {
            return parse_attribute_list(value);
        } catch (const std::invalid_argument& e) {
            fail(std::string(tag) + " has a bad attribute list: " + e.what());
        }
    }

    void note_kind(std::string_view tag) {
        if (is_master_tag(tag)) {
            if (media_line_)
                fail("playlist mixes master and media tags: " + std::string(tag) + " here, " + std::string(media_tag_) +
                     " on line " + std::to_string(media_line_));
            if (!master_line_) master_line_ = line_, master_tag_ = tag;
        } else if (is_media_tag(tag)) {
            if (master_line_)
                fail("playlist mixes master and media tags: " + std::string(tag) + " here, " + std::string(master_tag_) +
                     " on line " + std::to_string(master_line_));
            if (!media_line_) media_line_ = line_, media_tag_ = tag;
        }
    }

    // A sequence number this close to the limit would overflow once segments are numbered.
    int64_t sequence_value(std::string_view tag, std::string_view value) const {
        auto v = parse_int(value);
        if (!v) fail(std::string(tag) + " is not a valid integer");
        if (*v > std::numeric_limits<int64_t>::max() - static_cast<int64_t>(max_segments)) fail(std::string(tag) + " is too large");
        return *v;
    }

    void on_tag(std::string_view tag_line) {
        auto colon = tag_line.find(':');
        std::string_view tag = tag_line.substr(0, colon);
        std::string_view value = colon == std::string_view::npos ? std::string_view{} : tag_line.substr(colon + 1);
        note_kind(tag);

        if (tag == "EXTINF") {
            if (pending_inf_line_) throw ParseError(pending_inf_line_, "EXTINF is not followed by a URI");
            auto comma = value.find(',');
            auto duration = parse_number(value.substr(0, comma));
            if (!duration) fail("EXTINF duration is not a number");
            if (*duration < 0) fail("EXTINF duration is negative");
            if (*duration > max_duration_seconds) fail("EXTINF duration exceeds " + std::to_string(static_cast<int>(max_duration_seconds)) + " s");
            pending_inf_line_ = line_;
            pending_duration_ = *duration;
            pending_title_ = comma == std::string_view::npos ? std::string_view{} : trim(value.substr(comma + 1));
        } else if (tag == "EXT-X-TARGETDURATION") {
            auto v = parse_number(value);
            if (!v || *v < 0) fail("EXT-X-TARGETDURATION is not a non-negative number");
            if (*v > max_duration_seconds)
                fail("EXT-X-TARGETDURATION exceeds " + std::to_string(static_cast<int>(max_duration_seconds)) + " s");
            media_.target_duration = *v;
            has_target_duration_ = true;
        } else if (tag == "EXT-X-MEDIA-SEQUENCE") {
            media_.media_sequence = sequence_value(tag, value);
        } else if (tag == "EXT-X-DISCONTINUITY-SEQUENCE") {
            media_.discontinuity_sequence = sequence_value(tag, value);
        } else if (tag == "EXT-X-ENDLIST") {
            media_.endlist = true;
        } else if (tag == "EXT-X-PLAYLIST-TYPE") {
            auto type = trim(value);
            if (type != "EVENT" && type != "VOD") fail("EXT-X-PLAYLIST-TYPE must be EVENT or VOD");
            media_.playlist_type.assign(type);
        } else if (tag == "EXT-X-BYTERANGE") {
            pending_range_ = parse_byterange(value);
            if (!pending_range_) fail("EXT-X-BYTERANGE is not <length>[@<offset>]");
            pending_range_line_ = line_;
        } else if (tag == "EXT-X-DISCONTINUITY") {
            pending_discontinuity_ = true;
        } else if (tag == "EXT-X-GAP") {
            pending_gap_ = true;
        } else if (tag == "EXT-X-PROGRAM-DATE-TIME") {
            auto v = trim(value);
            if (v.empty()) fail("EXT-X-PROGRAM-DATE-TIME has no date");
            pending_date_.assign(v);
            has_pending_date_ = true;
        } else if (tag == "EXT-X-KEY") {
            on_key(attributes(tag, value));
        } else if (tag == "EXT-X-MAP") {
            auto a = attributes(tag, value);
            auto uri = a.find("URI");
            if (uri == a.end()) fail("EXT-X-MAP without URI");
            InitSection map{resolve_url(url_, uri->second), std::nullopt};
            if (auto range = a.find("BYTERANGE"); range != a.end()) {
                map.byterange = parse_byterange(range->second);
                if (!map.byterange) fail("EXT-X-MAP BYTERANGE is not <length>[@<offset>]");
                // No previous range to continue from: an init section starts at 0 unless told.
                if (map.byterange->offset < 0) map.byterange->offset = 0;
            }
            map_ = std::move(map);
        } else if (tag == "EXT-X-STREAM-INF") {
            on_stream_inf(attributes(tag, value));
        } else if (tag == "EXT-X-MEDIA") {
            auto a = attributes(tag, value);
            Rendition r;
            auto get = [&a](const char* name) {
                auto it = a.find(name);
                return it == a.end() ? std::string() : it->second;
            };
            r.type = get("TYPE");
            r.group_id = get("GROUP-ID");
            r.name = get("NAME");
            r.language = get("LANGUAGE");
            if (auto uri = a.find("URI"); uri != a.end()) r.uri = resolve_url(url_, uri->second);
            r.is_default = get("DEFAULT") == "YES";
            r.autoselect = get("AUTOSELECT") == "YES";
            r.attributes = std::move(a);
            master_.renditions.push_back(std::move(r));
        } else if (tag == "EXT-X-PART") {
            on_part(value);
        } else if (tag == "EXT-X-PART-INF") {
            std::map<std::string, std::string> a;
            try {
                a = parse_attribute_list(value);
            } catch (const std::invalid_argument&) {
            }
            const double target = number_or(a, "PART-TARGET", -1);
            if (target > 0 && target <= max_duration_seconds)
                media_.part_target = target;
            else
                note_part_problem("EXT-X-PART-INF has no valid PART-TARGET");
        } else if (tag == "EXT-X-SERVER-CONTROL") {
            try {
                auto a = parse_attribute_list(value);
                media_.can_block_reload = a["CAN-BLOCK-RELOAD"] == "YES";
            } catch (const std::invalid_argument&) {
                media_.can_block_reload = false;
            }
        } else if (tag == "EXT-X-VERSION") {
            auto v = parse_int(value);
            if (!v || *v > std::numeric_limits<int>::max()) fail("EXT-X-VERSION is not a valid integer");
            media_.version = static_cast<int>(*v);
        } else if (tag == "EXT-X-INDEPENDENT-SEGMENTS") {
            media_.independent_segments = master_.independent_segments = true;
        }
        // Anything else (EXT-X-START, EXT-X-DATERANGE, vendor tags...) is ignored.
    }

    static double number_or(const std::map<std::string, std::string>& a, const char* name, double fallback) {
        const auto it = a.find(name);
        if (it == a.end()) return fallback;
        const auto v = parse_number(it->second);
        return v ? *v : fallback;
    }

    // The first problem with the parts is kept; the parts are then not followed (see MediaPlaylist).
    void note_part_problem(std::string what) {
        if (media_.part_problem.empty()) media_.part_problem = "line " + std::to_string(line_) + ": " + std::move(what);
    }

    // EXT-X-PART: lenient, unlike the segment tags. A malformed part only stops the parts from being
    // followed; the segments still play.
    void on_part(std::string_view value) {
        std::map<std::string, std::string> a;
        try {
            a = parse_attribute_list(value);
        } catch (const std::invalid_argument& e) {
            return note_part_problem(std::string("EXT-X-PART has a bad attribute list: ") + e.what());
        }
        if (++parts_ > max_segments) fail("playlist has more than " + std::to_string(max_segments) + " parts");
        Part part;
        auto uri = a.find("URI");
        const double duration = number_or(a, "DURATION", -1);
        if (uri == a.end() || uri->second.empty()) return note_part_problem("EXT-X-PART without URI");
        if (duration < 0 || duration > max_duration_seconds) return note_part_problem("EXT-X-PART without a valid DURATION");
        part.uri = resolve_url(url_, uri->second);
        part.duration = duration;
        part.independent = a["INDEPENDENT"] == "YES";
        part.gap = a["GAP"] == "YES";
        if (auto range = a.find("BYTERANGE"); range != a.end()) {
            part.byterange = parse_byterange(range->second);
            if (!part.byterange) return note_part_problem("EXT-X-PART BYTERANGE is not <length>[@<offset>]");
            if (part.byterange->offset < 0) {  // follows the previous part's range of the same URI
                const Part* prev = pending_parts_.empty() ? nullptr : &pending_parts_.back();
                if (!prev || !prev->byterange || prev->uri != part.uri)
                    return note_part_problem("EXT-X-PART BYTERANGE has no offset and no previous range of its URI");
                const int64_t end = prev->byterange->offset + prev->byterange->length;
                if (part.byterange->length > std::numeric_limits<int64_t>::max() - end)
                    return note_part_problem("EXT-X-PART BYTERANGE offset overflows");
                part.byterange->offset = end;
            }
        }
        bytes_ += part.uri.size() + sizeof(Part);
        if (bytes_ > max_segment_bytes) fail("playlist is too large: segment data exceeds 64 MiB");
        pending_parts_.push_back(std::move(part));
    }

    void on_key(const std::map<std::string, std::string>& a) {
        auto method = a.find("METHOD");
        if (method == a.end()) fail("EXT-X-KEY without METHOD");
        auto format = a.find("KEYFORMAT");
        std::optional<Key> key;
        if (method->second != "NONE") {
            auto uri = a.find("URI");
            if (uri == a.end()) fail("EXT-X-KEY without URI");
            key.emplace();
            key->method = method->second;
            key->uri = resolve_url(url_, uri->second);
            if (auto iv = a.find("IV"); iv != a.end()) {
                key->iv = parse_iv(iv->second);
                if (!key->iv) fail("EXT-X-KEY IV is not a 128-bit hexadecimal number");
            }
            key->keyformat = format == a.end() ? "identity" : format->second;
        }
        // Several EXT-X-KEY tags in a row describe the same segments in different key systems
        // (multi-DRM). Keep the identity one, the only kind a client can use without a CDM.
        const bool identity = format == a.end() || format->second == "identity";
        if (!key_group_open_) {
            key_group_open_ = true;
            identity_in_group_ = false;
        } else if (identity_in_group_ && !identity) {
            return;
        }
        identity_in_group_ = identity_in_group_ || identity;
        key_ = std::move(key);
    }

    void on_stream_inf(const std::map<std::string, std::string>& a) {
        if (pending_variant_line_) throw ParseError(pending_variant_line_, "EXT-X-STREAM-INF is not followed by a URI");
        auto bandwidth = a.find("BANDWIDTH");
        if (bandwidth == a.end()) fail("EXT-X-STREAM-INF without BANDWIDTH");
        Variant v;
        auto bw = parse_int(bandwidth->second);
        if (!bw) fail("EXT-X-STREAM-INF BANDWIDTH is not a valid integer");
        v.bandwidth = *bw;
        if (auto it = a.find("AVERAGE-BANDWIDTH"); it != a.end()) {
            v.average_bandwidth = parse_int(it->second);
            if (!v.average_bandwidth) fail("EXT-X-STREAM-INF AVERAGE-BANDWIDTH is not a valid integer");
        }
        if (auto it = a.find("CODECS"); it != a.end()) v.codecs = it->second;
        if (auto it = a.find("RESOLUTION"); it != a.end()) {
            std::string_view res = it->second;
            auto x = res.find_first_of("xX");
            auto w = parse_int(res.substr(0, x));
            auto h = x == std::string_view::npos ? std::nullopt : parse_int(res.substr(x + 1));
            constexpr int64_t int_max = std::numeric_limits<int>::max();
            if (!w || !h || *w > int_max || *h > int_max) fail("EXT-X-STREAM-INF RESOLUTION is not <width>x<height>");
            v.width = static_cast<int>(*w);
            v.height = static_cast<int>(*h);
        }
        if (auto it = a.find("FRAME-RATE"); it != a.end()) {
            auto rate = parse_number(it->second);
            if (!rate || *rate < 0) fail("EXT-X-STREAM-INF FRAME-RATE is not a non-negative number");
            v.frame_rate = *rate;
        }
        if (auto it = a.find("AUDIO"); it != a.end()) v.audio_group = it->second;
        if (auto it = a.find("VIDEO"); it != a.end()) v.video_group = it->second;
        v.attributes = a;
        pending_variant_ = std::move(v);
        pending_variant_line_ = line_;
    }

    void on_uri(std::string_view uri) {
        if (pending_variant_line_) {
            pending_variant_.uri = resolve_url(url_, uri);
            master_.variants.push_back(std::move(pending_variant_));
            pending_variant_ = Variant{};
            pending_variant_line_ = 0;
            return;
        }
        if (!pending_inf_line_) fail(master_line_ ? "URI without a preceding EXT-X-STREAM-INF" : "URI without a preceding EXTINF");
        if (media_.segments.size() >= max_segments)
            fail("playlist has more than " + std::to_string(max_segments) + " segments");

        Segment s;
        s.uri = resolve_url(url_, uri);
        s.duration = pending_duration_;
        s.title.assign(pending_title_);
        s.discontinuity = pending_discontinuity_;
        s.gap = pending_gap_;
        if (has_pending_date_) s.program_date_time = std::move(pending_date_);
        if (pending_range_) {
            ByteRange r = *pending_range_;
            if (r.offset < 0) {
                const Segment* prev = media_.segments.empty() ? nullptr : &media_.segments.back();
                if (!prev || !prev->byterange || prev->uri != s.uri)
                    throw ParseError(pending_range_line_,
                                     "EXT-X-BYTERANGE has no offset and the previous segment is not a range of the same URI");
                // The previous range's end fits (parse_byterange, or this check for it); this one's must too.
                const int64_t end = prev->byterange->offset + prev->byterange->length;
                if (r.length > std::numeric_limits<int64_t>::max() - end)
                    throw ParseError(pending_range_line_, "EXT-X-BYTERANGE offset overflows");
                r.offset = end;
            }
            s.byterange = r;
        }
        s.key = key_;
        s.map = map_;
        s.parts = std::move(pending_parts_);
        pending_parts_.clear();

        bytes_ += s.uri.size() + s.title.size() + (s.program_date_time ? s.program_date_time->size() : 0);
        if (s.key) bytes_ += s.key->method.size() + s.key->uri.size() + s.key->keyformat.size();
        if (s.map) bytes_ += s.map->uri.size();
        if (bytes_ > max_segment_bytes) fail("playlist is too large: segment data exceeds 64 MiB");

        media_.segments.push_back(std::move(s));
        pending_inf_line_ = 0;
        pending_title_ = {};
        pending_discontinuity_ = pending_gap_ = has_pending_date_ = false;
        pending_date_.clear();
        pending_range_.reset();
        key_group_open_ = false;
    }

    Playlist finish() {
        if (pending_inf_line_) throw ParseError(pending_inf_line_, "EXTINF is not followed by a URI");
        if (pending_variant_line_) throw ParseError(pending_variant_line_, "EXT-X-STREAM-INF is not followed by a URI");
        if (master_line_) {
            if (master_.variants.empty()) fail("master playlist has no EXT-X-STREAM-INF");
            return Playlist{std::move(master_)};
        }
        if (!has_target_duration_) fail("missing EXT-X-TARGETDURATION");
        // Every EXT-X-DISCONTINUITY bumps the number, the first segment's included: that keeps a
        // segment's number stable across reloads of a live window (RFC 8216 6.2.2).
        int64_t sequence = media_.media_sequence;
        int64_t discontinuity = media_.discontinuity_sequence;
        for (auto& s : media_.segments) {
            if (s.discontinuity) ++discontinuity;
            s.sequence = sequence++;
            s.discontinuity_sequence = discontinuity;
        }
        if (!pending_parts_.empty()) {  // the segment being built
            Segment& s = media_.partial.emplace();
            s.sequence = sequence;
            s.discontinuity = pending_discontinuity_;
            s.discontinuity_sequence = discontinuity + (pending_discontinuity_ ? 1 : 0);
            if (has_pending_date_) s.program_date_time = pending_date_;
            s.key = key_;
            s.map = map_;
            s.parts = std::move(pending_parts_);
        }
        if (media_.part_target <= 0 && (media_.partial || std::any_of(media_.segments.begin(), media_.segments.end(),
                                                                        [](const Segment& s) { return !s.parts.empty(); })))
            note_part_problem("EXT-X-PART without EXT-X-PART-INF");
        return Playlist{std::move(media_)};
    }

    std::string_view text_;
    std::string_view url_;
    std::size_t pos_ = 0;
    int line_ = 0;

    int media_line_ = 0, master_line_ = 0;  // first tag of each kind, for the mixing error
    std::string_view media_tag_, master_tag_;

    MediaPlaylist media_;
    MasterPlaylist master_;
    bool has_target_duration_ = false;

    // State for the segment whose URI line has not arrived yet.
    int pending_inf_line_ = 0;
    double pending_duration_ = 0;
    std::string_view pending_title_;
    bool pending_discontinuity_ = false, pending_gap_ = false, has_pending_date_ = false;
    std::string pending_date_;
    std::optional<ByteRange> pending_range_;
    int pending_range_line_ = 0;
    std::vector<Part> pending_parts_;  // LL-HLS: the parts of the segment whose line has not come yet
    std::size_t parts_ = 0;

    // State that carries over to every following segment.
    std::optional<Key> key_;
    bool key_group_open_ = false, identity_in_group_ = false;
    std::optional<InitSection> map_;
    std::size_t bytes_ = 0;

    Variant pending_variant_;
    int pending_variant_line_ = 0;
};

}  // namespace detail

// Parses a master or media playlist fetched from playlist_url; every URI comes out resolved
// against it. Throws ParseError carrying the 1-based line of the problem.
inline Playlist parse(std::string_view text, std::string_view playlist_url) {
    return detail::Parser(text, playlist_url).run();
}

}  // namespace hlsrelay::m3u8
