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
#include <vector>

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
    std::string data;                    // the segment's bytes

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
    // removes them from disk); they are no longer reachable through find().
    std::vector<SegmentPtr> push(SegmentPtr segment, SteadyClock::time_point now) {
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

    // Everything, listed or in grace: for a stop that empties the window.
    std::vector<SegmentPtr> clear() {
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
};

}  // namespace hlsrelay
