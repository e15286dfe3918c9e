// The numbering shared by the renditions of a presentation: output media sequence number = source
// media sequence number + one channel-wide offset, so the same output number covers the same time
// span in every rendition (the source's renditions are numbered alike in a conforming ladder). All
// renditions start at the same source number (chosen from the highest video variant's live edge);
// an origin that restarts its numbering is rebased once for all of them.
// It also holds the discontinuities, alike in every rendition, and the dates of a source that has them: an output number has one
// EXT-X-PROGRAM-DATE-TIME in every rendition (players such as Shaka line renditions up by their
// dates, and a rendition dated a second off the others is a gap or an overlap at every switch).
#pragma once

#include <hlsrelay/window.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>

namespace hlsrelay {

class SequenceMap {
public:
    struct Mapping {
        int64_t start = 0;   // the source number every rendition starts at (in this epoch)
        int64_t offset = 0;  // output = source + offset
        int64_t epoch = 0;   // rises with every rebase
    };

    SequenceMap(int64_t source_start, int64_t output_start)
        : mapping_{source_start, output_start - source_start, 0}, next_output_(output_start) {}

    Mapping current() const {
        std::lock_guard lock(mu_);
        return mapping_;
    }

    // A rendition that knew epoch `seen` saw the source's numbering go back, and would go on at
    // source number `proposed`. The first one to report a restart sets the new mapping (its proposal,
    // numbered after everything any rendition published); the others take that mapping.
    Mapping rebase(int64_t seen, int64_t proposed) {
        std::lock_guard lock(mu_);
        if (seen == mapping_.epoch) {
            ++mapping_.epoch;
            mapping_.start = proposed;
            mapping_.offset = next_output_ - proposed;
        }
        return mapping_;
    }

    // The presentation switched to another master (failover, fail-back): its renditions start over
    // at source number `source_start` of the new ladder, numbered right after everything any
    // rendition published, behind a discontinuity in every rendition; the new source's clock sets a
    // new shared timeline. Returns the new generation: what a rendition publishes for an older one
    // (the old source, until it leaves it) is not published (generation()).
    int64_t switch_source(int64_t source_start) {
        std::lock_guard lock(mu_);
        ++generation_;
        ++mapping_.epoch;
        mapping_.start = source_start;
        mapping_.offset = next_output_ - source_start;
        breaks_.insert(next_output_);
        timeline_offset_.reset();
        return generation_;
    }
    int64_t generation() const {
        std::lock_guard lock(mu_);
        return generation_;
    }

    // What a rendition may publish as output number `sequence`.
    struct Publication {
        bool discontinuity = false;  // EXT-X-DISCONTINUITY before it, in every rendition
        int64_t withhold_until = 0;  // > sequence: publish gaps up to this number, the break goes there
    };
    // A rendition publishes output number `sequence`; `wants_break`: its own timeline breaks before
    // it (a reconnect, a skipped segment, the source's discontinuity). Discontinuities are shared:
    // matching content must have matching discontinuity sequence numbers in every rendition (RFC 8216
    // 6.2.4), and players line renditions up by them. A break at a number no rendition has published
    // yet is put there for all; one at a number the others published already (a rendition back from
    // a lone outage, behind them) moves to the next number none has published, and the rendition
    // withholds what it has before that (gaps). Only the newest kDates numbers are kept.
    Publication publish(int64_t sequence, bool wants_break) {
        std::lock_guard lock(mu_);
        Publication p;
        if (wants_break && sequence < next_output_ && !breaks_.count(sequence)) {
            breaks_.insert(next_output_);
            p.withhold_until = next_output_;
            return p;
        }
        if (wants_break) breaks_.insert(sequence);
        p.discontinuity = breaks_.count(sequence) > 0;
        next_output_ = std::max(next_output_, sequence + 1);
        while (!breaks_.empty() && *breaks_.begin() < next_output_ - static_cast<int64_t>(kDates)) breaks_.erase(breaks_.begin());
        return p;
    }

    // The date of output number `sequence` in every rendition. The first rendition to publish it
    // dates it: its own date (`own`, by its source's PDT or by arrival) moved by `correction`, what
    // it learnt when it last took another's date (own dates of two renditions differ by when each
    // one's first segment arrived). The others take that date and learn the difference to their
    // own. Only the newest kDates numbers are kept.
    SystemClock::time_point date(int64_t sequence, SystemClock::time_point own, SystemClock::duration& correction) {
        std::lock_guard lock(mu_);
        if (const auto it = dates_.find(sequence); it != dates_.end()) {
            correction = it->second - own;
            return it->second;
        }
        const SystemClock::time_point date = own + correction;
        if (!dates_.empty() && sequence < dates_.begin()->first) return date;  // older than any kept
        dates_.emplace(sequence, date);
        while (dates_.size() > kDates) dates_.erase(dates_.begin());
        return date;
    }
    // The remux timeline's offset (output DTS = source DTS + offset, 90 kHz) of every rendition: the
    // first to ask sets it to its proposal; the others take it while it keeps their output going
    // forward (source_dts + offset >= floor). A rendition for which it would go back (the source's
    // clock restarted) sets its own proposal for everyone. See Segmenter::set_shared_timeline.
    int64_t timeline_offset(int64_t proposed, int64_t source_dts, int64_t floor) {
        std::lock_guard lock(mu_);
        if (timeline_offset_ && source_dts + *timeline_offset_ >= floor) return *timeline_offset_;
        timeline_offset_ = proposed;
        return proposed;
    }

    // The date some rendition gave `sequence`; the epoch (undated) when none did.
    SystemClock::time_point known_date(int64_t sequence) const {
        std::lock_guard lock(mu_);
        const auto it = dates_.find(sequence);
        return it == dates_.end() ? SystemClock::time_point{} : it->second;
    }
    static constexpr size_t kDates = 256;

private:
    mutable std::mutex mu_;
    Mapping mapping_;
    int64_t next_output_;
    int64_t generation_ = 0;  // switch_source()s
    std::map<int64_t, SystemClock::time_point> dates_;
    std::optional<int64_t> timeline_offset_;
    std::set<int64_t> breaks_;  // output numbers that start a discontinuity in every rendition
};

}  // namespace hlsrelay
