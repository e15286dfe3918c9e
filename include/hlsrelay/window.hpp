// The rolling window of one channel: the newest N published segments, plus the ones that left the
// playlist but must stay fetchable for their RFC 8216 6.2.2 grace period.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "hlsrelay/segment_bytes.hpp"

namespace hlsrelay {

using SteadyClock = std::chrono::steady_clock;
using SystemClock = std::chrono::system_clock;

// What a segment's bytes are, which names its file: MPEG-TS "seg_<n>.ts", fMP4/CMAF media
// "seg_<n>.m4s" (after an init section, see InitSection) or WebVTT "seg_<n>.vtt" (subtitles).
enum class SegmentFormat { ts, fmp4, webvtt };

inline std::string_view extension_of(SegmentFormat f) {
    switch (f) {
        case SegmentFormat::fmp4: return ".m4s";
        case SegmentFormat::webvtt: return ".vtt";
        default: return ".ts";
    }
}
inline std::string_view content_type_of(SegmentFormat f) {
    switch (f) {
        case SegmentFormat::fmp4: return "video/iso.segment";
        case SegmentFormat::webvtt: return "text/vtt";
        default: return "video/mp2t";
    }
}
inline constexpr std::string_view kInitContentType = "video/mp4";

// An fMP4 init section (ftyp + moov) shared by the segments that follow it. `version` names it
// ("init_<version>.mp4"); it rises by one each time a rendition's init section changes, so a name
// always means the same bytes (served immutable).
struct InitSection {
    int64_t version = 0;
    std::string data;
    std::string name() const { return init_name(version); }
    static std::string init_name(int64_t version) { return "init_" + std::to_string(version) + ".mp4"; }
    // Inverse of init_name(); nullopt for anything else (never throws).
    static std::optional<int64_t> parse_name(std::string_view name);
};
using InitPtr = std::shared_ptr<const InitSection>;

namespace detail {
// "<prefix><decimal><suffix>" with a canonical decimal of at most 18 digits.
inline std::optional<int64_t> parse_numbered(std::string_view name, std::string_view prefix, std::string_view suffix) {
    if (name.size() <= prefix.size() + suffix.size() || name.substr(0, prefix.size()) != prefix ||
        name.substr(name.size() - suffix.size()) != suffix)
        return std::nullopt;
    std::string_view digits = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
    if (digits.size() > 18) return std::nullopt;
    int64_t value = 0;
    for (char c : digits) {
        if (c < '0' || c > '9') return std::nullopt;
        value = value * 10 + (c - '0');
    }
    if (digits.size() > 1 && digits.front() == '0') return std::nullopt;  // one name per file
    return value;
}
}  // namespace detail

inline std::optional<int64_t> InitSection::parse_name(std::string_view name) {
    return detail::parse_numbered(name, "init_", ".mp4");
}

// LL-HLS: a part of a segment as a byte range of the segment's bytes (Segment::parts).
struct PartSpan {
    size_t offset = 0, length = 0;
    double duration = 0;
    bool independent = false;  // begins with a video keyframe (audio only: always)
    int64_t number = 0;        // names it (part_name)
};

// LL-HLS: a part of the segment still being cut, with its own bytes until that segment is
// published (then its bytes are the segment's: Segment::parts). The first part of a segment carries
// what the playlist says before the segment's parts: its discontinuity, date and init section.
// Parts are numbered in one run across segments, so that the preload hint for the next part names
// the right file whether that part ends up in the segment being cut or begins the next one.
struct Part {
    int64_t sequence = 0;  // its segment's media sequence number
    int index = 0;         // from 0 within its segment
    int64_t number = 0;    // names it (part_name)
    double duration = 0;
    bool independent = false;
    bool discontinuity = false;
    SystemClock::time_point program_date_time{};
    SegmentFormat format = SegmentFormat::ts;
    InitPtr init;
    std::string data;
    SteadyClock::time_point published{};
};
using PartPtr = std::shared_ptr<const Part>;

// "part_<number><ext>"
inline std::string part_name(int64_t number, SegmentFormat format) {
    return "part_" + std::to_string(number) + std::string(extension_of(format));
}
// Inverse of part_name(): number and format; nullopt for anything else (never throws).
inline std::optional<std::pair<int64_t, SegmentFormat>> parse_part_name(std::string_view name) {
    for (SegmentFormat f : {SegmentFormat::ts, SegmentFormat::fmp4})
        if (const auto n = detail::parse_numbered(name, "part_", extension_of(f))) return std::make_pair(*n, f);
    return std::nullopt;
}

// A published segment. Immutable once published and shared by reference, so a reader never sees a
// half-written or recycled buffer.
struct Segment {
    int64_t sequence = 0;                // media sequence number
    int64_t discontinuity_sequence = 0;  // discontinuity tags up to and including this segment's
    bool discontinuity = false;          // EXT-X-DISCONTINUITY precedes it
    bool keyframe_start = true;          // first video frame is a keyframe (false only on a forced cut)
    // EXT-X-GAP: a placeholder that keeps a rendition's media sequence aligned with its siblings
    // where its source lost a segment; it has no bytes and cannot be read.
    bool gap = false;
    SegmentFormat format = SegmentFormat::ts;
    InitPtr init;                        // fmp4: the init section these media bytes need
    double duration = 0;                 // seconds, from presentation timestamps
    // EXT-X-PROGRAM-DATE-TIME; the epoch (the default) is undated: the playlist names no date.
    SystemClock::time_point program_date_time{};
    SteadyClock::time_point published{};
    std::string data;                    // the segment's bytes, unless `file` holds them
    // Published by the engine: the bytes in an fd-backed buffer (sendfile), `data` then empty.
    std::shared_ptr<SegmentBytes> file = nullptr;
    std::vector<PartSpan> parts;         // LL-HLS: its parts, in order, as ranges of bytes()

    std::string_view bytes() const { return file ? file->bytes() : std::string_view(data); }

    std::string name() const { return segment_name(sequence, format); }
    static std::string segment_name(int64_t sequence, SegmentFormat format = SegmentFormat::ts) {
        return "seg_" + std::to_string(sequence) + std::string(extension_of(format));
    }
    // Inverse of segment_name() for an MPEG-TS name; nullopt for anything else (never throws).
    static std::optional<int64_t> parse_name(std::string_view name) { return parse_name(name, SegmentFormat::ts); }
    static std::optional<int64_t> parse_name(std::string_view name, SegmentFormat format) {
        return detail::parse_numbered(name, "seg_", extension_of(format));
    }
    // Any segment name: its sequence number and format.
    static std::optional<std::pair<int64_t, SegmentFormat>> parse_any_name(std::string_view name) {
        for (SegmentFormat f : {SegmentFormat::ts, SegmentFormat::fmp4, SegmentFormat::webvtt})
            if (auto n = parse_name(name, f)) return std::make_pair(*n, f);
        return std::nullopt;
    }
};
using SegmentPtr = std::shared_ptr<const Segment>;

class Window {
public:
    explicit Window(int max_segments) : max_segments_(max_segments < 1 ? 1 : max_segments) {}

    // Publishes `segment` as the newest one. Returns the segments whose grace has ended (the caller
    // removes them from disk); they are no longer reachable through find(). The open parts (LL-HLS)
    // were this segment's: from now on its parts are ranges of its bytes.
    std::vector<SegmentPtr> push(SegmentPtr segment, SteadyClock::time_point now) {
        open_parts_.clear();
        listed_.push_back(std::move(segment));
        longest_.push_back(0);
        while (static_cast<int>(listed_.size()) > max_segments_) retire_oldest(now);
        const double total = listed_duration();  // the playlist served from now on
        for (double& l : longest_) l = std::max(l, total);
        return expire(now);
    }

    // Drops removed segments whose grace has ended and returns them. Graces differ (segment and
    // playlist durations vary), so a later entry may expire before an earlier one.
    std::vector<SegmentPtr> expire(SteadyClock::time_point now) {
        std::vector<SegmentPtr> gone;
        for (auto it = grace_.begin(); it != grace_.end();) {
            if (it->expires <= now) {
                gone.push_back(std::move(it->segment));
                it = grace_.erase(it);
            } else {
                ++it;
            }
        }
        return gone;
    }

    // LL-HLS: a part of the segment being cut. A part of another segment than the open parts' drops
    // them (that segment was abandoned).
    void push_part(PartPtr part) {
        if (!open_parts_.empty() && open_parts_.front()->sequence != part->sequence) open_parts_.clear();
        open_parts_.push_back(std::move(part));
    }
    const std::vector<PartPtr>& open_parts() const { return open_parts_; }
    void drop_open_parts() { open_parts_.clear(); }

    // A part's bytes: of the segment being cut, or a range of a listed segment or of a removed one
    // still in its grace period. Empty when there is no such part.
    struct PartBytes {
        std::shared_ptr<const std::string> data;
        std::shared_ptr<const SegmentBytes> file = nullptr;  // instead of `data`: a range of a published segment's file
        size_t offset = 0, length = 0;
        SegmentFormat format = SegmentFormat::ts;
        explicit operator bool() const { return data || file; }
    };
    PartBytes find_part(int64_t number, SteadyClock::time_point now) const {
        for (const auto& p : open_parts_)
            if (p->number == number) return {std::shared_ptr<const std::string>(p, &p->data), nullptr, 0, p->data.size(), p->format};
        auto in = [&](const SegmentPtr& s) -> PartBytes {
            for (const PartSpan& span : s->parts)
                if (span.number == number) {
                    if (s->file) return {nullptr, std::shared_ptr<const SegmentBytes>(s, s->file.get()), span.offset, span.length, s->format};
                    return {std::shared_ptr<const std::string>(s, &s->data), nullptr, span.offset, span.length, s->format};
                }
            return {};
        };
        for (auto it = listed_.rbegin(); it != listed_.rend(); ++it)
            if (auto b = in(*it)) return b;
        for (const auto& g : grace_)
            if (g.expires > now)
                if (auto b = in(g.segment)) return b;
        return {};
    }

    // Everything, listed or in grace: for a stop that empties the window.
    std::vector<SegmentPtr> clear() {
        open_parts_.clear();
        std::vector<SegmentPtr> all;
        for (auto& g : grace_) all.push_back(std::move(g.segment));
        for (auto& s : listed_) all.push_back(std::move(s));
        grace_.clear();
        listed_.clear();
        longest_.clear();
        return all;
    }

    // A listed segment, or a removed one still in its grace period.
    SegmentPtr find(int64_t sequence, SteadyClock::time_point now) const {
        for (const auto& s : listed_)
            if (s->sequence == sequence) return s;
        for (const auto& g : grace_)
            if (g.segment->sequence == sequence && g.expires > now) return g.segment;
        return nullptr;
    }

    // The init section `version` of a listed segment, or of a removed one still in its grace period.
    InitPtr find_init(int64_t version, SteadyClock::time_point now) const {
        for (const auto& s : listed_)
            if (s->init && s->init->version == version) return s->init;
        for (const auto& g : grace_)
            if (g.segment->init && g.segment->init->version == version && g.expires > now) return g.segment->init;
        return nullptr;
    }

    const std::deque<SegmentPtr>& listed() const { return listed_; }
    size_t in_grace() const { return grace_.size(); }
    int max_segments() const { return max_segments_; }

    double listed_duration() const {
        double total = 0;
        for (const auto& s : listed_) total += s->duration;
        return total;
    }
    SegmentPtr newest() const { return listed_.empty() ? nullptr : listed_.back(); }

private:
    struct Retired {
        SegmentPtr segment;
        SteadyClock::time_point expires;
    };

    // RFC 8216 6.2.2: a removed segment stays available for its own duration plus the duration of
    // the longest playlist that contained it. That is not always the last one: after long segments
    // left, the playlist is shorter than one that listed them together with this one.
    void retire_oldest(SteadyClock::time_point now) {
        const double playlist_duration = longest_.front();
        SegmentPtr oldest = std::move(listed_.front());
        listed_.pop_front();
        longest_.pop_front();
        const auto grace = std::chrono::duration<double>(oldest->duration + playlist_duration);
        grace_.push_back({std::move(oldest), now + std::chrono::duration_cast<SteadyClock::duration>(grace)});
    }

    int max_segments_;
    std::deque<SegmentPtr> listed_;
    std::deque<double> longest_;  // per listed segment: seconds of the longest playlist that listed it
    std::deque<Retired> grace_;   // in retirement order, not necessarily in expiry order
    std::vector<PartPtr> open_parts_;  // LL-HLS: the parts of the segment being cut
};

}  // namespace hlsrelay
