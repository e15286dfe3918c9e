// When to reload a live media playlist (classic HLS): RFC 8216 6.3.4's schedule, shifted later
// so that the reload lands just after the source is expected to publish its next segment.
//
// RFC 8216 6.3.4 lets a client reload a playlist that changed one target duration after it began
// the last load, half of it after one that did not change; it may always wait longer. With the
// first load at a random phase against the source's publications, every later reload keeps that
// phase, and a new segment waits half a target duration on average before it is seen. This class
// learns the phase and moves the reloads to it, only ever later than the RFC's earliest time.
//
// The model: a regular source publishes segment s when its end is reached in real time, at
// A + E(s), where E(s) is the sum of the EXTINF durations up to and including s, and A is an
// unknown constant. Each load brackets A: a load that began at b and did not list s says
// A > b - E(s); one that ended at e and listed s says A <= e - E(s). The window (max lower,
// min upper) narrows as loads land inside it: while it is wide, the next reload is aimed at its
// middle (a probe: it finds the segment or not, either way the window halves); once it is narrow,
// at its upper end plus a margin, which finds the segment just after it is published. A load that
// contradicts the window (jitter, a source clock that drifts against ours) drops the older bounds;
// when aimed reloads keep missing, the source is irregular and the plain RFC schedule stands for a
// while. A probe can miss, and so costs the RFC's half target duration for that one segment; the
// reload count per segment stays what the RFC allows (never sooner than its earliest time).
//
// Header-only and libav-free: tested on its own with made-up clocks (tests/unit/test_reload_phase.cpp).
#pragma once

#include <algorithm>
#include <cmath>
#include <chrono>
#include <cstdint>
#include <deque>
#include <utility>
#include <vector>

namespace hlsrelay {

class ReloadPhase {
public:
    using Clock = std::chrono::steady_clock;
    using Time = Clock::time_point;

    struct Segment {
        int64_t sequence;
        double duration;
    };

    // A window wider than kWide (seconds, or this fraction of the target duration if that is more)
    // is probed at its middle until it is as narrow as kNarrow; meanwhile, and until it loosens past
    // kWide again, reloads are aimed at its upper end (a probe can cost a segment its timeliness,
    // an aim at most the window's width).
    static constexpr double kNarrow = 0.04;
    static constexpr double kNarrowFraction = 0.02;
    static constexpr double kWide = 0.2;
    static constexpr double kWideFraction = 0.1;
    // Added to the window's upper end: jitter of the source's publication. Doubles on each miss of
    // an aimed reload (up to a quarter of the target duration), shrinks slowly on hits.
    static constexpr double kMinMargin = 0.03;
    // The source's clock may run apart from ours (and its EXTINF values round): each bound loosens
    // by this fraction of the media time since it was taken, so an old bound never pins the window
    // to where the phase was. 200 ppm: a 2 s segment's bound loosens by 0.4 ms a segment, and a
    // narrow window is probed again after a minute or so. A source that drifts faster contradicts
    // older bounds, which are then dropped.
    static constexpr double kDrift = 2e-4;
    // Bounds kept; past this, the oldest one that binds neither end of the window is dropped.
    static constexpr size_t kMaxBounds = 32;
    // Of the last kJudged aimed reloads, kIrregular misses make the source irregular: the RFC
    // schedule stands for the next kRestAfterIrregular changes, then learning starts again.
    static constexpr int kJudged = 8;
    static constexpr int kIrregular = 3;
    static constexpr int kRestAfterIrregular = 30;

    // After each load of the media playlist: when it began and ended, and the segments it listed
    // (in order). Loads that failed are not reported.
    void loaded(Time began, Time ended, const std::vector<Segment>& segments, double target_duration) {
        target_ = std::max(0.1, target_duration);
        if (segments.empty()) return;
        const int64_t newest = segments.back().sequence;
        if (!have_timeline_ || newest < newest_ || segments.front().sequence > newest_ + 1) {
            // First load, an origin restart or a gap in what was seen: a new timeline.
            restart_timeline(segments, began);
            return;
        }
        const bool aimed = aimed_;
        aimed_ = false;
        if (newest == newest_) {
            // Nothing new: the next segment is published after this load began.
            if (began > unlisted_since_) unlisted_since_ = began;
            if (aimed) judge(false);
            return;
        }
        // Segments newest_+1 .. newest are new. Extend the timeline with their durations.
        double end = end_of_newest_;
        double first_new_end = 0;
        for (const Segment& s : segments) {
            if (s.sequence <= newest_) continue;
            end += std::max(0.0, s.duration);
            if (s.sequence == newest_ + 1) first_new_end = end;
        }
        // newest_+1 was not listed by the load that began at unlisted_since_; newest was listed by this one.
        newest_ = newest;
        end_of_newest_ = end;
        add_bound(seconds(unlisted_since_) - first_new_end, seconds(ended) - end, end);
        if (aimed) judge(true);
        last_duration_ = std::max(0.0, segments.back().duration);
        unlisted_since_ = began;
        if (rest_ > 0) --rest_;
    }

    // When to begin the next load, given the earliest time RFC 8216 6.3.4 allows.
    Time next_reload(Time earliest) {
        aimed_ = false;
        if (!have_timeline_ || rest_ > 0 || bounds_.empty() || last_duration_ <= 0) return earliest;
        const auto [lo, hi] = window();
        if (lo >= hi) return earliest;  // (cannot happen: add_bound keeps the window consistent)
        const double next_end = end_of_newest_ + last_duration_;
        const double width = hi - lo;
        const double e = seconds(earliest);
        double at = e;
        if (width > std::max(kWide, kWideFraction * target_)) probing_ = true;
        if (width <= std::max(kNarrow, kNarrowFraction * target_)) probing_ = false;
        bool aim = !probing_;
        if (probing_) {
            // A probe at the window's middle for the next segment. When the RFC's earliest time is
            // past that middle, a reload then still splits the window if it lands in its lower three
            // quarters. If not, the probe is for the segment after (that one segment comes up to a
            // target duration late, the price of learning) unless that would put two loads more than
            // two target durations apart: then the window is aimed at instead.
            const double mid = lo + width / 2;
            if (mid + next_end >= e || e <= lo + next_end + 0.75 * width)
                at = mid + next_end;
            else if (mid + next_end + last_duration_ <= e + target_)
                at = mid + next_end + last_duration_;
            else
                aim = true;
        }
        if (aim) {
            at = hi + next_end + margin_;
            // When the RFC's earliest time is well past the aim (the reloads run just before each
            // publication), the next segment is waited for once, and from then on each reload lands
            // just after a publication. Only when segments are as long as the target duration: with
            // shorter ones the RFC's spacing makes the phase slip every time whatever is done.
            const double slack = std::max(margin_, 0.02 * target_);
            if (at + slack < e && last_duration_ >= target_ - slack) at += last_duration_ * std::ceil((e - at) / last_duration_);
            aimed_ = at >= e;  // a reload the RFC pushes later than aimed proves nothing about the aim
        }
        return at > e ? from_seconds(at) : earliest;
    }

    // The phase is known well enough to aim at (the window no wider than kWide, not irregular).
    bool locked() const { return have_timeline_ && rest_ == 0 && width() <= std::max(kWide, kWideFraction * target_); }
    bool irregular() const { return rest_ > 0; }
    double margin() const { return margin_; }
    // The width of the window for the source's phase (seconds); huge before the first bound.
    double width() const {
        if (bounds_.empty()) return 1e18;
        const auto [lo, hi] = window();
        return hi - lo;
    }

private:
    struct Bound {
        double lo, hi;  // A in (lo, hi], in seconds of the epoch below ...
        double taken;   // ... as of this point of the media timeline (E of the newest segment then)
        double loose_lo(double now) const { return lo - kDrift * (now - taken); }
        double loose_hi(double now) const { return hi + kDrift * (now - taken); }
    };
    // The window for A now: the tightest of the loosened bounds.
    std::pair<double, double> window() const {
        double lo = -1e18, hi = 1e18;
        for (const Bound& b : bounds_) {
            lo = std::max(lo, b.loose_lo(end_of_newest_));
            hi = std::min(hi, b.loose_hi(end_of_newest_));
        }
        return {lo, hi};
    }

    void restart_timeline(const std::vector<Segment>& segments, Time began) {
        have_timeline_ = true;
        epoch_ = began;
        bounds_.clear();
        probing_ = true;
        newest_ = segments.back().sequence;
        end_of_newest_ = 0;  // E(newest) = 0: the timeline counts from the newest listed segment's end
        last_duration_ = std::max(0.0, segments.back().duration);
        unlisted_since_ = began;  // the next segment was not listed by this load
        aimed_ = false;
    }

    // A new bound, taken at media time `now` (the timeline is already extended to it).
    void add_bound(double lo, double hi, double now) {
        // A bound that contradicts older ones (jitter, drift beyond kDrift): the older ones go, oldest first.
        auto consistent = [&] {
            const auto [l, h] = window();
            return std::max(l, lo) < std::min(h, hi);
        };
        while (!bounds_.empty() && !consistent()) bounds_.pop_front();
        if (lo < hi) bounds_.push_back({lo, hi, now});
        if (bounds_.size() > kMaxBounds) {
            const auto [l, h] = window();
            for (auto it = bounds_.begin(); it != bounds_.end(); ++it)
                if (it->loose_lo(now) != l && it->loose_hi(now) != h) {
                    bounds_.erase(it);
                    break;
                }
            if (bounds_.size() > kMaxBounds) bounds_.pop_front();
        }
    }

    void judge(bool hit) {
        margin_ = hit ? std::max(kMinMargin, margin_ * 0.9) : std::min(target_ / 4, margin_ * 2 + 0.01);
        judged_.push_back(hit);
        if (judged_.size() > kJudged) judged_.erase(judged_.begin());
        if (std::count(judged_.begin(), judged_.end(), false) >= kIrregular) {
            rest_ = kRestAfterIrregular;
            judged_.clear();
            bounds_.clear();
            probing_ = true;
            margin_ = kMinMargin;
        }
    }

    double seconds(Time t) const { return std::chrono::duration<double>(t - epoch_).count(); }
    Time from_seconds(double s) const {
        return epoch_ + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
    }

    bool have_timeline_ = false;
    Time epoch_{};
    int64_t newest_ = -1;          // the newest segment listed so far
    double end_of_newest_ = 0;     // E(newest_)
    double last_duration_ = 0;     // its duration: the next one is expected as long
    Time unlisted_since_{};        // the latest load that began without listing newest_ + 1
    std::deque<Bound> bounds_;
    double target_ = 2;
    double margin_ = kMinMargin;
    bool aimed_ = false;           // the pending reload was aimed at a narrow window
    bool probing_ = true;          // the window is being narrowed (see kWide)
    std::vector<bool> judged_;     // hits and misses of the last aimed reloads
    int rest_ = 0;                 // changes left on the plain RFC schedule after irregularity
};

}  // namespace hlsrelay
