// A channel of several renditions (a "presentation"): which variants of a multivariant source run
// (RenditionSelection), how each rendition is named ("v0", "a0", "s0": its directory), and the
// multivariant master.m3u8 that mirrors the source's, every URI pointing at our copy.
// Plain data and text, no I/O: every attribute value comes from an untrusted upstream, so the
// renderer re-quotes it and drops what is not a valid attribute value (no tag can be injected).
#pragma once

#include <hlsrelay/channel.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hlsrelay {

enum class RenditionKind { video, audio, subtitles, closed_captions };

inline const char* to_string(RenditionKind k) {
    switch (k) {
        case RenditionKind::video: return "video";
        case RenditionKind::audio: return "audio";
        case RenditionKind::subtitles: return "subtitles";
        case RenditionKind::closed_captions: return "closed-captions";
    }
    return "video";
}

// The directory of a rendition in a presentation: "v<k>", "a<k>", "s<k>" (k in source order).
inline std::string rendition_id(RenditionKind kind, std::size_t index) {
    const char letter = kind == RenditionKind::audio ? 'a' : kind == RenditionKind::subtitles ? 's' : 'v';
    return letter + std::to_string(index);
}

// "v0/seg_3.ts" -> {"v0", "seg_3.ts"}: exactly one directory level of a letter v/a/s and a number
// without leading zeros, then a plain file name. nullopt for anything else ("../x", "v01/x", "v0/a/b").
struct RenditionPath {
    std::string_view rendition, file;
};
inline std::optional<RenditionPath> split_rendition_path(std::string_view path) {
    const auto slash = path.find('/');
    if (slash == std::string_view::npos || slash < 2 || slash > 6) return std::nullopt;
    const std::string_view dir = path.substr(0, slash), file = path.substr(slash + 1);
    if (dir[0] != 'v' && dir[0] != 'a' && dir[0] != 's') return std::nullopt;
    for (std::size_t i = 1; i < dir.size(); ++i)
        if (dir[i] < '0' || dir[i] > '9') return std::nullopt;
    if (dir.size() > 2 && dir[1] == '0') return std::nullopt;
    if (file.empty() || file.find('/') != std::string_view::npos || file[0] == '.') return std::nullopt;
    return RenditionPath{dir, file};
}

// What selection needs of a variant.
struct VariantFacts {
    int64_t bandwidth = 0;
    int height = 0;  // 0: not declared
};

// The indices (in source order) of the variants `selection` keeps; never empty when `variants` is not.
// highest/lowest: by BANDWIDTH (ties: the first listed). max-height / max-bandwidth: every variant
// within the bound (a variant without a declared height counts as within it), else the lowest.
// A list of heights: the variants of those heights, else the highest.
inline std::vector<std::size_t> select_variants(const std::vector<VariantFacts>& variants, const RenditionSelection& selection) {
    std::vector<std::size_t> out;
    if (variants.empty()) return out;
    std::size_t highest = 0, lowest = 0;
    for (std::size_t i = 1; i < variants.size(); ++i) {
        if (variants[i].bandwidth > variants[highest].bandwidth) highest = i;
        if (variants[i].bandwidth < variants[lowest].bandwidth) lowest = i;
    }
    using Mode = RenditionSelection::Mode;
    switch (selection.mode) {
        case Mode::all:
            for (std::size_t i = 0; i < variants.size(); ++i) out.push_back(i);
            return out;
        case Mode::highest: return {highest};
        case Mode::lowest: return {lowest};
        case Mode::max_height:
        case Mode::max_bandwidth:
            for (std::size_t i = 0; i < variants.size(); ++i) {
                const int64_t v = selection.mode == Mode::max_height ? variants[i].height : variants[i].bandwidth;
                if (v <= selection.limit) out.push_back(i);
            }
            if (out.empty()) out.push_back(lowest);
            return out;
        case Mode::heights:
            for (std::size_t i = 0; i < variants.size(); ++i)
                if (std::find(selection.heights.begin(), selection.heights.end(), variants[i].height) != selection.heights.end())
                    out.push_back(i);
            if (out.empty()) out.push_back(highest);
            return out;
    }
    return out;
}

// One line of our master playlist: a kept variant (EXT-X-STREAM-INF, kind video), a kept audio or
// subtitle rendition, or a closed-captions declaration (EXT-X-MEDIA without URI, id empty; so is an
// audio rendition the variants carry in their own segments).
// Strings are as the source wrote them (or measured); render_presentation_master cleans them.
struct PresentationEntry {
    RenditionKind kind = RenditionKind::video;
    std::string id;  // "v0", "a1", "s0"; the URI is "<id>/index.m3u8"
    // EXT-X-STREAM-INF
    int64_t bandwidth = 0, average_bandwidth = 0;
    std::string codecs;
    int width = 0, height = 0;
    double frame_rate = 0;
    std::string audio_group, subtitles_group;
    std::string closed_captions;  // a GROUP-ID, or "NONE" (the enumerated value), or empty
    // EXT-X-MEDIA
    std::string group, name, language, assoc_language, channels, characteristics, instream_id;
    bool is_default = false, autoselect = false, forced = false;
};

namespace presentation_detail {
// A quoted-string's content (RFC 8216 4.2: no double quote, CR or LF): control characters and quotes
// dropped, at most `max` bytes, cut on a UTF-8 character boundary.
inline std::string quoted_text(std::string_view v, std::size_t max = 256) {
    std::string out;
    for (char c : v) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f || c == '"') continue;
        out += c;
    }
    if (out.size() > max) {
        std::size_t cut = max;
        while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xc0) == 0x80) --cut;
        out.resize(cut);
    }
    return out;
}
// Only the characters `allowed` accepts, at most `max` bytes; empty when anything else is there.
template <class Allowed>
inline std::string token(std::string_view v, std::size_t max, Allowed allowed) {
    if (v.size() > max) return {};
    for (char c : v)
        if (!allowed(c)) return {};
    return std::string(v);
}
inline bool alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }
inline std::string codecs(std::string_view v) {
    return token(v, 512, [](char c) { return alnum(c) || c == '.' || c == ',' || c == '-' || c == '_' || c == '+'; });
}
inline std::string language(std::string_view v) { return token(v, 35, [](char c) { return alnum(c) || c == '-'; }); }
inline std::string channels(std::string_view v) { return token(v, 32, [](char c) { return alnum(c) || c == '/' || c == '-'; }); }
inline std::string characteristics(std::string_view v) {
    return token(v, 256, [](char c) { return alnum(c) || c == '.' || c == ',' || c == '-' || c == '_'; });
}
// CC1..CC4, SERVICE1..SERVICE63; empty otherwise.
inline std::string instream_id(std::string_view v) {
    auto number = [](std::string_view d, int lo, int hi) {
        if (d.empty() || d.size() > 2 || (d.size() == 2 && d[0] == '0')) return false;
        int n = 0;
        for (char c : d) {
            if (c < '0' || c > '9') return false;
            n = n * 10 + (c - '0');
        }
        return n >= lo && n <= hi;
    };
    if (v.substr(0, 2) == "CC" && number(v.substr(2), 1, 4)) return std::string(v);
    if (v.substr(0, 7) == "SERVICE" && number(v.substr(7), 1, 63)) return std::string(v);
    return {};
}
inline void quoted(std::string& out, const char* name, std::string_view value) {
    out += ',';
    out += name;
    out += "=\"";
    out += value;
    out += '"';
}
}  // namespace presentation_detail

// The multivariant playlist of a presentation: the EXT-X-MEDIA lines (audio, subtitles, closed
// captions), then one EXT-X-STREAM-INF per kept variant, each URI "<id>/index.m3u8".
// `version`: EXT-X-VERSION (the media playlists declare what they need; 3 is enough here unless
// INSTREAM-ID SERVICEn asks for 7, which the renderer raises it to).
inline std::string render_presentation_master(const std::vector<PresentationEntry>& entries, int version = 3,
                                              bool independent_segments = false) {
    namespace d = presentation_detail;
    std::string media, variants;
    bool service = false;
    for (const auto& e : entries) {
        if (e.kind == RenditionKind::video) {
            variants += "#EXT-X-STREAM-INF:BANDWIDTH=" + std::to_string(std::max<int64_t>(e.bandwidth, 1));
            if (e.average_bandwidth > 0) variants += ",AVERAGE-BANDWIDTH=" + std::to_string(e.average_bandwidth);
            if (const std::string c = d::codecs(e.codecs); !c.empty()) d::quoted(variants, "CODECS", c);
            if (e.width > 0 && e.height > 0)
                variants += ",RESOLUTION=" + std::to_string(e.width) + "x" + std::to_string(e.height);
            if (e.frame_rate > 0 && e.frame_rate < 1000) {
                char fr[32];
                std::snprintf(fr, sizeof fr, ",FRAME-RATE=%.3f", e.frame_rate);
                variants += fr;
            }
            if (const std::string g = d::quoted_text(e.audio_group); !g.empty()) d::quoted(variants, "AUDIO", g);
            if (const std::string g = d::quoted_text(e.subtitles_group); !g.empty()) d::quoted(variants, "SUBTITLES", g);
            if (e.closed_captions == "NONE") variants += ",CLOSED-CAPTIONS=NONE";
            else if (const std::string g = d::quoted_text(e.closed_captions); !g.empty()) d::quoted(variants, "CLOSED-CAPTIONS", g);
            variants += '\n';
            variants += e.id + "/index.m3u8\n";
            continue;
        }
        const std::string group = d::quoted_text(e.group);
        if (group.empty()) continue;  // GROUP-ID is required
        std::string instream;
        if (e.kind == RenditionKind::closed_captions) {
            instream = d::instream_id(e.instream_id);
            if (instream.empty()) continue;  // INSTREAM-ID is required for closed captions
            service = service || instream[0] == 'S';
        }
        std::string name = d::quoted_text(e.name);
        if (name.empty()) name = !e.id.empty() ? e.id : !instream.empty() ? instream : group;
        media += "#EXT-X-MEDIA:TYPE=";
        media += e.kind == RenditionKind::audio ? "AUDIO" : e.kind == RenditionKind::subtitles ? "SUBTITLES" : "CLOSED-CAPTIONS";
        d::quoted(media, "GROUP-ID", group);
        d::quoted(media, "NAME", name);
        if (const std::string l = d::language(e.language); !l.empty()) d::quoted(media, "LANGUAGE", l);
        if (const std::string l = d::language(e.assoc_language); !l.empty()) d::quoted(media, "ASSOC-LANGUAGE", l);
        media += e.is_default ? ",DEFAULT=YES" : ",DEFAULT=NO";
        // RFC 8216 4.3.4.1: AUTOSELECT must be YES when DEFAULT is.
        media += e.autoselect || e.is_default ? ",AUTOSELECT=YES" : ",AUTOSELECT=NO";
        if (e.kind == RenditionKind::subtitles && e.forced) media += ",FORCED=YES";
        if (const std::string c = d::characteristics(e.characteristics); !c.empty()) d::quoted(media, "CHARACTERISTICS", c);
        if (e.kind == RenditionKind::audio)
            if (const std::string c = d::channels(e.channels); !c.empty()) d::quoted(media, "CHANNELS", c);
        if (e.kind == RenditionKind::closed_captions) d::quoted(media, "INSTREAM-ID", instream);
        else if (!e.id.empty()) d::quoted(media, "URI", e.id + "/index.m3u8");  // else: in the variants' own segments
        media += '\n';
    }
    if (service) version = std::max(version, 7);
    std::string out = "#EXTM3U\n#EXT-X-VERSION:" + std::to_string(version) + "\n";
    if (independent_segments) out += "#EXT-X-INDEPENDENT-SEGMENTS\n";
    return out + media + variants;
}

}  // namespace hlsrelay
