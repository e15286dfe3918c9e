// HDHomeRun emulation: the documents a network TV tuner serves (discover.json, lineup.json,
// lineup_status.json, device.xml), so Plex, Jellyfin, Emby and Channels DVR take hlsrelay for a
// SiliconDust HDTC-2US and tune its channels by HTTP GET of a stream URL. No libav, no I/O.
//
// Where the rules come from (read, not copied):
//  - the device id checksum: libhdhomerun hdhomerun_discover.c, hdhomerun_discover_validate_device_id
//    (a nibble lookup table, the XOR of all eight terms is 0), and hdhomerun_discover_is_legacy (the
//    id prefixes of old tuners that have no HTTP API);
//  - discover.json / lineup.json fields: what Jellyfin reads (src/Jellyfin.LiveTv/TunerHosts/HdHomerun:
//    DiscoverResponse.cs, Channels.cs, HdHomerunHost.cs, and its test fixtures copied from real
//    devices), what real devices send, and the emulators Plex accepts (Threadfin/xTeVe hdhr.go,
//    tvhProxy, Dispatcharr apps/hdhr).
#pragma once

#include <hlsrelay/text.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace hlsrelay::hdhomerun {

// What an HDHomeRun EXTEND (HDTC-2US) reports. Jellyfin turns on its transcode profiles for any
// ModelNumber containing "hdtc" and then may append "?transcode=<profile>" to a lineup URL, so
// stream URLs must not carry a query of their own and must ignore that one.
inline constexpr std::string_view kModelNumber = "HDTC-2US";
inline constexpr std::string_view kFirmwareName = "hdhomeruntc_atsc";
// Real devices leave Manufacturer out of discover.json; the emulators Plex accepts send it, and
// device.xml's <manufacturer> is how UPnP clients recognise a SiliconDust tuner, so it stays the
// real vendor's name.
inline constexpr std::string_view kManufacturer = "Silicondust";

// libhdhomerun's wildcard id ("any device"); it passes the checksum, so it is refused separately.
inline constexpr std::uint32_t kWildcardDeviceId = 0xFFFFFFFFu;

namespace detail {

// libhdhomerun's table for the nibbles at even positions (counted from the most significant one).
// It is a permutation of 0..15, so for any seven digits exactly one eighth makes the id valid.
inline constexpr std::array<std::uint8_t, 16> kChecksumTable = {0xA, 0x5, 0xF, 0x6, 0x7, 0xC, 0x1, 0xB,
                                                                0x9, 0x2, 0x8, 0xD, 0x4, 0x3, 0xE, 0x0};

inline constexpr std::uint64_t kFnvOffset = 0xcbf29ce484222325ull;
inline constexpr std::uint64_t kFnvPrime = 0x100000001b3ull;

inline std::uint64_t fnv1a64(std::string_view bytes, std::uint64_t hash = kFnvOffset) {
    for (char c : bytes) {
        hash ^= static_cast<unsigned char>(c);
        hash *= kFnvPrime;
    }
    return hash;
}

// SplitMix64: spreads FNV's weakly mixed low bits over the whole word, and gives a stream of words.
inline std::uint64_t mix64(std::uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

inline std::uint64_t next_word(std::uint64_t& state) {
    state += 0x9e3779b97f4a7c15ull;
    return mix64(state);
}

// Ids of tuners older than the HTTP API (hdhomerun_discover_is_legacy): a client that believes one
// would drive it over the UDP control protocol instead of fetching discover.json.
inline bool is_legacy_prefix(std::uint32_t id) {
    switch (id >> 20) {
        case 0x100: case 0x101: case 0x102: case 0x103: case 0x111: case 0x120: case 0x121: case 0x122:
            return true;
        default:
            return false;
    }
}

inline std::string hex(std::uint64_t value, int digits, bool upper) {
    const char* alphabet = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    std::string out(static_cast<std::size_t>(digits), '0');
    for (int i = digits - 1; i >= 0; --i, value >>= 4) out[static_cast<std::size_t>(i)] = alphabet[value & 0xF];
    return out;
}

inline bool all_digits(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Dotted quad only: four decimal parts 0..255 without leading zeros (which some parsers read as octal).
inline bool is_ipv4(std::string_view s) {
    for (int part = 0; part < 4; ++part) {
        std::size_t end = part < 3 ? s.find('.') : s.size();
        if (end == std::string_view::npos) return false;
        std::string_view digits = s.substr(0, end);
        if (!all_digits(digits) || digits.size() > 3 || (digits.size() > 1 && digits[0] == '0')) return false;
        if (std::stoi(std::string(digits)) > 255) return false;
        s.remove_prefix(part < 3 ? end + 1 : end);
    }
    return s.empty();
}

// Colon-separated groups of 1-4 hex digits; the last may be a dotted quad (two groups' worth).
inline bool ipv6_groups(std::string_view s, bool quad_allowed, int& groups) {
    groups = 0;
    if (s.empty()) return true;
    while (true) {
        std::size_t colon = s.find(':');
        std::string_view group = s.substr(0, colon);
        if (colon == std::string_view::npos && quad_allowed && group.find('.') != std::string_view::npos) {
            if (!is_ipv4(group)) return false;
            groups += 2;
            return true;
        }
        if (group.empty() || group.size() > 4 ||
            !std::all_of(group.begin(), group.end(), [](char c) { return hex_digit_value(c) >= 0; }))
            return false;
        ++groups;
        if (colon == std::string_view::npos) return true;
        s.remove_prefix(colon + 1);
    }
}

// RFC 4291 text form without a zone ("%eth0" has no business in a Host header).
inline bool is_ipv6(std::string_view s) {
    if (s.size() < 2 || s.size() > 45) return false;
    int left = 0;
    int right = 0;
    std::size_t gap = s.find("::");
    if (gap == std::string_view::npos) return ipv6_groups(s, true, left) && left == 8;
    if (s.find("::", gap + 1) != std::string_view::npos) return false;
    return ipv6_groups(s.substr(0, gap), false, left) && ipv6_groups(s.substr(gap + 2), true, right) &&
           left + right <= 7;
}

// DNS-style name: labels of letters, digits, '-' and '_' (container names use it), 1-63 characters,
// not starting or ending with '-'. A name whose last label is all digits must be a dotted quad
// (no top-level domain is numeric), so "1.2.3" and "999.1.1.1" are refused.
inline bool is_host_name(std::string_view s) {
    if (s.empty() || s.size() > 253) return false;
    std::string_view last;
    for (std::string_view rest = s;;) {
        std::size_t dot = rest.find('.');
        std::string_view label = rest.substr(0, dot);
        if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
        for (char c : label)
            if (!is_ascii_alnum(c) && c != '-' && c != '_') return false;
        last = label;
        if (dot == std::string_view::npos) break;
        rest.remove_prefix(dot + 1);
    }
    return !all_digits(last) || is_ipv4(s);
}

// Length of the well-formed UTF-8 sequence at the start of `s` and its code point; 0 when it is not
// one (truncated, overlong, surrogate, above U+10FFFF). `bad` then says how many bytes to replace.
inline std::size_t utf8_sequence(std::string_view s, char32_t& code, std::size_t& bad) {
    auto byte = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
    unsigned char b0 = byte(0);
    bad = 1;
    if (b0 < 0x80) {
        code = b0;
        return 1;
    }
    std::size_t length = 0;
    unsigned char low = 0x80;
    unsigned char high = 0xBF;
    if (b0 >= 0xC2 && b0 <= 0xDF) length = 2;
    else if (b0 >= 0xE0 && b0 <= 0xEF) {
        length = 3;
        if (b0 == 0xE0) low = 0xA0;
        if (b0 == 0xED) high = 0x9F;  // no surrogates
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        length = 4;
        if (b0 == 0xF0) low = 0x90;
        if (b0 == 0xF4) high = 0x8F;  // nothing above U+10FFFF
    } else {
        return 0;
    }
    code = static_cast<char32_t>(b0 & (0xFF >> (length + 1)));
    for (std::size_t i = 1; i < length; ++i) {
        if (i >= s.size()) return 0;
        unsigned char b = byte(i);
        if (b < (i == 1 ? low : 0x80) || b > (i == 1 ? high : 0xBF)) return 0;
        code = (code << 6) | (b & 0x3F);
        bad = i + 1;
    }
    return length;
}

}  // namespace detail

// Text for XML element content or a quoted attribute. Markup characters become entities; what
// XML 1.0 cannot carry at all (bytes that are not UTF-8, control characters other than tab/LF/CR,
// U+FFFE/U+FFFF) becomes U+FFFD, like hlsrelay::dump_json does for JSON. Tab/LF/CR are written as
// character references so a parser does not normalise them away.
inline std::string xml_escape(std::string_view text) {
    std::string out;
    out.reserve(text.size() + text.size() / 8);
    constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
    while (!text.empty()) {
        char32_t code = 0;
        std::size_t bad = 1;
        std::size_t length = detail::utf8_sequence(text, code, bad);
        if (length == 0) {
            out += kReplacement;
            text.remove_prefix(bad);
            continue;
        }
        switch (code) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            case '\'': out += "&apos;"; break;
            case '\t': out += "&#9;"; break;
            case '\n': out += "&#10;"; break;
            case '\r': out += "&#13;"; break;
            default:
                if (code < 0x20 || code == 0xFFFE || code == 0xFFFF) out += kReplacement;
                else out.append(text.substr(0, length));
        }
        text.remove_prefix(length);
    }
    return out;
}

// ---- device ids -------------------------------------------------------------------------------

// The XOR of the eight checksum terms of `id` (libhdhomerun's rule): 0 for a well-formed id.
inline std::uint8_t device_id_checksum(std::uint32_t id) {
    unsigned sum = 0;
    for (int shift = 28; shift >= 0; shift -= 4) {
        unsigned nibble = (id >> shift) & 0xFu;
        // Even positions from the top (shifts 28, 20, 12, 4) go through the table.
        sum ^= (shift % 8 == 4) ? detail::kChecksumTable[nibble] : nibble;
    }
    return static_cast<std::uint8_t>(sum);
}

// `id` with its last hex digit replaced by the one that makes the checksum 0. The last digit is
// XORed in as it is, so it is simply the XOR of the other seven terms.
inline std::uint32_t with_check_digit(std::uint32_t id) {
    id &= 0xFFFFFFF0u;
    return id | device_id_checksum(id);
}

// Exactly eight hex digits, either case.
inline std::optional<std::uint32_t> parse_device_id(std::string_view hex8) {
    if (hex8.size() != 8) return std::nullopt;
    std::uint32_t id = 0;
    for (char c : hex8) {
        int v = hex_digit_value(c);
        if (v < 0) return std::nullopt;
        id = (id << 4) | static_cast<std::uint32_t>(v);
    }
    return id;
}

// An id a real device could have: libhdhomerun's checksum holds, and it is neither the wildcard
// FFFFFFFF nor 00000000 (both pass the checksum, neither names a device).
inline bool valid_device_id(std::uint32_t id) {
    return device_id_checksum(id) == 0 && id != kWildcardDeviceId && id != 0;
}

inline bool valid_device_id(std::string_view hex8) {
    std::optional<std::uint32_t> id = parse_device_id(hex8);
    return id && valid_device_id(*id);
}

// A stable DeviceID for this install: eight uppercase hex digits, valid, "1" first like every real
// HDHomeRun id, never a legacy prefix nor the wildcard. Clients key the tuner (and its channel
// mapping) by DeviceID, so it must never change for one install: the caller passes a seed it keeps,
// e.g. a random string persisted with its settings. The id space is 2^24, so two installs on one
// network collide with a chance of about 1 in 16 million. Changing this derivation re-identifies
// every install's tuner: the tests pin its output.
inline std::string device_id_from_seed(std::string_view seed) {
    std::uint64_t state = detail::fnv1a64(seed);
    while (true) {
        std::uint64_t word = detail::next_word(state);
        auto id = with_check_digit(0x10000000u | (static_cast<std::uint32_t>(word & 0xFFFFFFu) << 4));
        if (!detail::is_legacy_prefix(id)) return detail::hex(id, 8, true);
    }
}

// A stable DeviceAuth for the same seed: 24 characters of libhdhomerun's base64url alphabet, the
// length real devices report. It authorises nothing here (SiliconDust's cloud checks real ones);
// clients only store and echo it. Derived with its own salt, so it does not give the id away.
inline std::string device_auth_from_seed(std::string_view seed) {
    constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::uint64_t state = detail::fnv1a64(seed, detail::fnv1a64("hlsrelay hdhomerun DeviceAuth"));
    std::string out;
    while (out.size() < 24) {
        std::uint64_t word = detail::next_word(state);
        for (int i = 0; i < 10 && out.size() < 24; ++i, word >>= 6) out += kAlphabet[word & 0x3F];
    }
    return out;
}

// The UPnP UDN's UUID for a device id: the id's eight digits first (so it is recognisable), the rest
// hashed from it, marked as an RFC 9562 version 8 (vendor-defined) UUID. Same id, same UUID.
inline std::string device_uuid(std::string_view device_id) {
    std::uint64_t state = detail::fnv1a64(device_id, detail::fnv1a64("hlsrelay hdhomerun UDN"));
    std::uint64_t a = detail::next_word(state);
    std::uint64_t b = detail::next_word(state);
    std::optional<std::uint32_t> id = parse_device_id(device_id);
    std::uint64_t first = id ? *id : (a >> 32);
    return detail::hex(first, 8, false) + '-' + detail::hex((a >> 16) & 0xFFFF, 4, false) + '-' +
           detail::hex(0x8000 | (a & 0x0FFF), 4, false) + '-' + detail::hex(0x8000 | (b >> 50), 4, false) + '-' +
           detail::hex(b & 0xFFFFFFFFFFFFull, 12, false);
}

// ---- the documents ------------------------------------------------------------------------------

struct Device {
    std::string friendly_name = "hlsrelay";
    std::string manufacturer = std::string(kManufacturer);
    std::string model_number = std::string(kModelNumber);
    std::string firmware_name = std::string(kFirmwareName);
    std::string firmware_version = "20200101";
    std::string device_id;    // device_id_from_seed
    std::string device_auth;  // device_auth_from_seed
    int tuner_count = 2;      // an HDTC-2US has two; clients cap concurrent streams at it
};

// A Device whose id and auth token come from `seed` (see device_id_from_seed).
inline Device device_from_seed(std::string_view seed, int tuner_count = 2) {
    Device device;
    device.device_id = device_id_from_seed(seed);
    device.device_auth = device_auth_from_seed(seed);
    device.tuner_count = tuner_count;
    return device;
}

struct LineupEntry {
    std::string guide_number;  // "5" or "5.1" (assign_guide_numbers); a string, never a number
    std::string guide_name;
    std::string url;           // absolute URL of a continuous MPEG-TS stream, without a query
    bool hd = false;
    bool favorite = false;
    std::string video_codec;   // "H264", "MPEG2", "HEVC" as devices spell them; empty: left out
    std::string audio_codec;   // "AAC", "AC3", "EAC3", "MPEG"; empty: left out
};

namespace detail {

inline std::string_view without_trailing_slashes(std::string_view url) {
    while (!url.empty() && url.back() == '/') url.remove_suffix(1);
    return url;
}

}  // namespace detail

// GET /discover.json. The fields and order of a real device's reply (BaseURL without a trailing
// slash, LineupURL absolute, TunerCount a number), plus Manufacturer (see kManufacturer). Fields
// only some models send (Legacy, ConditionalAccess, StorageURL, UpgradeAvailable) are left out:
// Legacy makes Jellyfin drive the tuner over UDP, ConditionalAccess marks a CableCARD tuner.
// TunerCount is kept within 1..255 (one byte in the UDP discovery reply; 0 would mean no tuner).
inline nlohmann::ordered_json discover_json(const Device& device, std::string_view base_url) {
    std::string base(detail::without_trailing_slashes(base_url));
    nlohmann::ordered_json j;
    j["FriendlyName"] = device.friendly_name;
    j["Manufacturer"] = device.manufacturer;
    j["ModelNumber"] = device.model_number;
    j["FirmwareName"] = device.firmware_name;
    j["FirmwareVersion"] = device.firmware_version;
    j["DeviceID"] = device.device_id;
    j["DeviceAuth"] = device.device_auth;
    j["BaseURL"] = base;
    j["LineupURL"] = base + "/lineup.json";
    j["TunerCount"] = std::clamp(device.tuner_count, 1, 255);
    return j;
}

// GET /lineup.json: an array in list order. HD and Favorite appear as 1 when true and are left out
// otherwise, as real devices do (Jellyfin reads them as booleans from 0/1; DRM is never sent, since
// Jellyfin drops channels marked DRM).
inline nlohmann::ordered_json lineup_json(const std::vector<LineupEntry>& entries) {
    nlohmann::ordered_json lineup = nlohmann::ordered_json::array();
    for (const LineupEntry& e : entries) {
        nlohmann::ordered_json j;
        j["GuideNumber"] = e.guide_number;
        j["GuideName"] = e.guide_name;
        if (!e.video_codec.empty()) j["VideoCodec"] = e.video_codec;
        if (!e.audio_codec.empty()) j["AudioCodec"] = e.audio_codec;
        if (e.hd) j["HD"] = 1;
        if (e.favorite) j["Favorite"] = 1;
        j["URL"] = e.url;
        lineup.push_back(std::move(j));
    }
    return lineup;
}

// GET /lineup_status.json: idle, a scan may be started (Plex then POSTs /lineup.post?scan=start and
// polls this until ScanInProgress is 0; the lineup is always complete, so the scan is a no-op).
inline nlohmann::ordered_json lineup_status_json() {
    nlohmann::ordered_json j;
    j["ScanInProgress"] = 0;
    j["ScanPossible"] = 1;
    j["Source"] = "Cable";
    j["SourceList"] = nlohmann::ordered_json::array({"Cable"});
    return j;
}

// GET /device.xml: the UPnP root device description SSDP points at. Every value is escaped: the
// friendly name is user-chosen and base_url usually comes from the request's Host header.
inline std::string device_xml(const Device& device, std::string_view base_url) {
    std::string x;
    x += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
    x += "<root xmlns=\"urn:schemas-upnp-org:device-1-0\">\n";
    x += "  <specVersion>\n    <major>1</major>\n    <minor>0</minor>\n  </specVersion>\n";
    x += "  <URLBase>" + xml_escape(detail::without_trailing_slashes(base_url)) + "</URLBase>\n";
    x += "  <device>\n";
    x += "    <deviceType>urn:schemas-upnp-org:device:MediaServer:1</deviceType>\n";
    x += "    <friendlyName>" + xml_escape(device.friendly_name) + "</friendlyName>\n";
    x += "    <manufacturer>" + xml_escape(device.manufacturer) + "</manufacturer>\n";
    x += "    <modelName>" + xml_escape(device.model_number) + "</modelName>\n";
    x += "    <modelNumber>" + xml_escape(device.model_number) + "</modelNumber>\n";
    x += "    <serialNumber>" + xml_escape(device.device_id) + "</serialNumber>\n";
    x += "    <UDN>uuid:" + xml_escape(device_uuid(device.device_id)) + "</UDN>\n";
    x += "  </device>\n";
    x += "</root>\n";
    return x;
}

// "scheme://host[:port]" from a Host header, or nullopt unless it is plainly a host: a DNS name,
// a dotted-quad IPv4 address or a bracketed IPv6 address (no zone), then optionally ':' and a port
// 1..65535. No userinfo, path, query, spaces or markup. Lowercased. Scheme "http" or "https" only.
// On nullopt the caller falls back to its listen address.
inline std::optional<std::string> base_url_from_host(std::string_view host_header, std::string_view scheme = "http") {
    std::string lower_scheme = ascii_lower(scheme);
    if (lower_scheme != "http" && lower_scheme != "https") return std::nullopt;
    std::string_view hostport = trim(host_header);
    if (hostport.empty() || hostport.size() > 300) return std::nullopt;

    std::string_view host;
    std::string_view rest;
    if (hostport.front() == '[') {
        std::size_t close = hostport.find(']');
        if (close == std::string_view::npos || !detail::is_ipv6(hostport.substr(1, close - 1))) return std::nullopt;
        host = hostport.substr(0, close + 1);
        rest = hostport.substr(close + 1);
    } else {
        std::size_t colon = hostport.find(':');
        host = hostport.substr(0, colon);
        rest = colon == std::string_view::npos ? std::string_view() : hostport.substr(colon);
        if (!detail::is_host_name(host)) return std::nullopt;
    }

    std::string out = lower_scheme + "://" + ascii_lower(host);
    if (!rest.empty()) {
        std::string_view digits = rest.substr(1);
        if (rest.front() != ':' || !detail::all_digits(digits) || digits.size() > 5) return std::nullopt;
        int port = std::stoi(std::string(digits));
        if (port < 1 || port > 65535) return std::nullopt;
        out += ':' + std::to_string(port);
    }
    return out;
}

// ---- guide numbers ------------------------------------------------------------------------------

// A tvg-chno as a GuideNumber: digits, optionally '.' and digits ("5", "5.1"), spaces around it
// ignored, the leading zeros of the major number dropped ("007" -> "7"). Channel 0, signs,
// exponents and more than six digits on either side are not channel numbers: nullopt.
inline std::optional<std::string> normalize_guide_number(std::string_view text) {
    text = trim(text);
    std::size_t dot = text.find('.');
    std::string_view major = text.substr(0, dot);
    std::string_view minor = dot == std::string_view::npos ? std::string_view() : text.substr(dot + 1);
    if (!detail::all_digits(major)) return std::nullopt;
    if (dot != std::string_view::npos && !detail::all_digits(minor)) return std::nullopt;
    while (!major.empty() && major.front() == '0') major.remove_prefix(1);
    if (major.empty() || major.size() > 6 || minor.size() > 6) return std::nullopt;
    std::string out(major);
    if (dot != std::string_view::npos) out.append(".").append(minor);
    return out;
}

// One GuideNumber per channel, in list order, all different. A channel keeps its own tvg-chno when
// it is a valid number (normalize_guide_number) and no earlier channel claimed the same; any other
// channel gets its 1-based position in the list, or the next whole number above it that no channel
// has, so adding channels at the end never renumbers the ones before.
inline std::vector<std::string> assign_guide_numbers(const std::vector<std::string>& chno_or_empty) {
    std::vector<std::string> numbers(chno_or_empty.size());
    std::unordered_set<std::string> taken;
    // Whole numbers in use, as "the next candidate after n" links (union-find with path halving),
    // so a run of taken numbers is skipped in near-constant time, not walked once per channel.
    std::unordered_map<std::uint64_t, std::uint64_t> next_after;
    auto take_whole = [&](std::uint64_t n) { next_after.emplace(n, n + 1); };
    auto first_free = [&](std::uint64_t n) {
        for (auto it = next_after.find(n); it != next_after.end(); it = next_after.find(n)) {
            auto further = next_after.find(it->second);
            if (further != next_after.end()) it->second = further->second;
            n = it->second;
        }
        return n;
    };

    for (std::size_t i = 0; i < chno_or_empty.size(); ++i) {
        std::optional<std::string> own = normalize_guide_number(chno_or_empty[i]);
        if (!own || !taken.insert(*own).second) continue;
        numbers[i] = *own;
        if (own->find('.') == std::string::npos) take_whole(std::stoull(*own));
    }
    for (std::size_t i = 0; i < numbers.size(); ++i) {
        if (!numbers[i].empty()) continue;
        std::uint64_t n = first_free(static_cast<std::uint64_t>(i) + 1);
        take_whole(n);
        numbers[i] = std::to_string(n);
        taken.insert(numbers[i]);
    }
    return numbers;
}

}  // namespace hlsrelay::hdhomerun
