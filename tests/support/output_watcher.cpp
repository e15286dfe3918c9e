// The live-output watcher of the fault-injection tests and the soak: RFC 8216 validity as observed.
#include "support/output_watcher.hpp"

#include "support/ts_edit.hpp"

#include "ingest/m3u8.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

namespace hlsrelay::test {
namespace {

std::string file_of(const std::string& uri) {
    const size_t slash = uri.rfind('/');
    return slash == std::string::npos ? uri : uri.substr(slash + 1);
}

std::string fmt(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f", v);
    return buf;
}

constexpr std::size_t kMaxViolations = 100;

}  // namespace

OutputWatcher::OutputWatcher(Reader read, Options options) : read_(std::move(read)), opt_(std::move(options)) {}

OutputWatcher::~OutputWatcher() { stop(); }

void OutputWatcher::start() {
    std::lock_guard lock(mu_);
    if (thread_.joinable()) return;
    stopping_ = false;
    thread_ = std::thread([this] { run(); });
}

void OutputWatcher::stop() {
    {
        std::lock_guard lock(mu_);
        if (!thread_.joinable()) return;
        stopping_ = true;
    }
    cv_.notify_all();
    thread_.join();
}

void OutputWatcher::run() {
    std::unique_lock lock(mu_);
    const auto interval = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(opt_.poll_interval));
    while (!stopping_) {
        poll_locked(Clock::now());
        cv_.wait_for(lock, interval, [&] { return stopping_; });
    }
}

void OutputWatcher::violation_locked(const std::string& what) {
    ++report_.violations;
    if (violations_.size() < kMaxViolations) violations_.push_back(opt_.name + ": " + what);
}

bool OutputWatcher::fetch_locked(int64_t seq, Seen& seen, const char* why) {
    ++report_.fetches;
    auto data = read_(file_of(seen.uri));
    if (!data) {
        ++report_.dangling;
        violation_locked(std::string("dangling reference: ") + why + " segment " + std::to_string(seq) + " (" +
                         file_of(seen.uri) + ") is not served");
        return false;
    }
    if (!seen.scanned) {
        seen.scanned = true;
        const TsScan scan = scan_ts(*data);
        if (!scan.aligned) violation_locked("segment " + std::to_string(seq) + " is not whole 188-byte TS packets");
        for (const auto& [pid, span] : scan.pids) seen.spans[pid] = {span.first, span.last};
        seen.stream_types = scan.stream_types;
    }
    return true;
}

// An untagged boundary must continue the timeline: the same streams, each one's DTS rising by at most
// max_gap (RFC 8216 4.3.2.3: a change of timestamps or encoding needs EXT-X-DISCONTINUITY).
void OutputWatcher::check_timeline_locked(int64_t seq) {
    auto cur = seen_.find(seq);
    auto prev = seen_.find(seq - 1);
    if (cur == seen_.end() || prev == seen_.end() || !cur->second.scanned || !prev->second.scanned) return;
    if (cur->second.discontinuity) return;
    const std::string where = "segments " + std::to_string(seq - 1) + " -> " + std::to_string(seq);
    if (!prev->second.stream_types.empty() && !cur->second.stream_types.empty() &&
        prev->second.stream_types != cur->second.stream_types)
        violation_locked(where + ": the streams (PMT) change without EXT-X-DISCONTINUITY");
    for (const auto& [pid, span] : cur->second.spans) {
        auto p = prev->second.spans.find(pid);
        if (p == prev->second.spans.end() || p->second.second < 0 || span.first < 0) continue;
        const int64_t d = ts_diff(p->second.second, span.first);
        if (d <= 0 || static_cast<double>(d) > opt_.max_gap * 90000.0)
            violation_locked(where + ": PID " + std::to_string(pid) + " timestamps step by " +
                             fmt(static_cast<double>(d) / 90000.0) + " s without EXT-X-DISCONTINUITY");
    }
}

void OutputWatcher::poll_locked(Clock::time_point now) {
    ++report_.polls;
    auto text = read_(opt_.playlist);
    if (!text) {
        if (any_playlist_) violation_locked("the playlist is not served");
        return;
    }
    m3u8::MediaPlaylist p;
    try {
        auto parsed = m3u8::parse(*text, "http://127.0.0.1/out/" + opt_.playlist);
        if (parsed.is_master()) {
            violation_locked("the media playlist parses as a master playlist");
            return;
        }
        p = parsed.media();
    } catch (const std::exception& e) {
        violation_locked(std::string("the playlist does not parse: ") + e.what());
        return;
    }
    const bool first_poll = !any_playlist_;
    any_playlist_ = true;
    if (p.endlist) violation_locked("EXT-X-ENDLIST in a live playlist");
    const int td = static_cast<int>(std::lround(p.target_duration));
    if (target_duration_ == 0) target_duration_ = td;
    if (td != target_duration_)
        violation_locked("EXT-X-TARGETDURATION changed from " + std::to_string(target_duration_) + " to " +
                         std::to_string(td));
    if (p.media_sequence < last_media_sequence_)
        violation_locked("EXT-X-MEDIA-SEQUENCE went back from " + std::to_string(last_media_sequence_) + " to " +
                         std::to_string(p.media_sequence));
    // RFC 8216 6.2.2: the discontinuity sequence counts the tags of the segments that left the playlist.
    if (last_media_sequence_ >= 0 && p.media_sequence >= last_media_sequence_) {
        int64_t expected = last_discontinuity_sequence_;
        bool known = true;
        for (int64_t s = last_media_sequence_; s < p.media_sequence; ++s) {
            auto it = seen_.find(s);
            if (it == seen_.end()) {
                known = false;
                break;
            }
            expected += it->second.discontinuity;
        }
        if (known && p.discontinuity_sequence != expected)
            violation_locked("EXT-X-DISCONTINUITY-SEQUENCE is " + std::to_string(p.discontinuity_sequence) +
                             ", expected " + std::to_string(expected));
    }
    if (p.discontinuity_sequence < last_discontinuity_sequence_)
        violation_locked("EXT-X-DISCONTINUITY-SEQUENCE went back");
    last_media_sequence_ = p.media_sequence;
    last_discontinuity_sequence_ = p.discontinuity_sequence;
    if (p.segments.empty()) return;

    const double total = p.total_duration();
    std::vector<int64_t> listed;
    std::vector<int64_t> fresh_ones;
    for (const auto& s : p.segments) {
        listed.push_back(s.sequence);
        if (std::lround(s.duration) > td && !seen_.count(s.sequence))
            violation_locked("segment " + std::to_string(s.sequence) + " lasts " + fmt(s.duration) +
                             " s, over EXT-X-TARGETDURATION " + std::to_string(td));
        auto [it, fresh] = seen_.try_emplace(s.sequence);
        Seen& seen = it->second;
        if (fresh) {
            seen.uri = s.uri;
            seen.duration = s.duration;
            seen.discontinuity = s.discontinuity;
            ++report_.segments_seen;
            report_.newest_sequence = std::max(report_.newest_sequence, s.sequence);
            if (!first_poll) {
                arrivals_.push_back({now, s.sequence, s.discontinuity});
                report_.discontinuities += s.discontinuity;
            }
        } else {
            if (seen.removed) violation_locked("segment " + std::to_string(s.sequence) + " was listed again after it left");
            if (seen.uri != s.uri || std::fabs(seen.duration - s.duration) > 1e-6 || seen.discontinuity != s.discontinuity)
                violation_locked("segment " + std::to_string(s.sequence) + " changed (URI, duration or tag) while listed");
        }
        seen.last_listed = now;
        seen.longest_playlist = std::max(seen.longest_playlist, total);
        if (fresh) {
            fetch_locked(s.sequence, seen, "newly listed");
            fresh_ones.push_back(s.sequence);
        }
    }
    for (int64_t s : fresh_ones) check_timeline_locked(s);
    // The oldest and the newest listed: a player that joins now fetches one of these first.
    fetch_locked(listed.front(), seen_[listed.front()], "oldest listed");
    if (listed.size() > 1) fetch_locked(listed.back(), seen_[listed.back()], "newest listed");

    // Segments that left the playlist: served at once, and still near the end of their grace period.
    for (int64_t s : previous_listed_) {
        if (s >= p.media_sequence) continue;
        auto it = seen_.find(s);
        if (it == seen_.end() || it->second.removed) continue;
        it->second.removed = true;
        fetch_locked(s, it->second, "just removed");
    }
    previous_listed_ = listed;
    for (auto it = seen_.begin(); it != seen_.end();) {
        Seen& seen = it->second;
        if (seen.removed && !seen.grace_checked) {
            // It left after last_listed; RFC 8216 6.2.2 keeps it for its duration plus the playlist's.
            const double grace = seen.duration + seen.longest_playlist;
            const auto check_at = seen.last_listed + std::chrono::duration_cast<Clock::duration>(
                                                         std::chrono::duration<double>(std::max(0.0, grace - 0.2 - 2 * opt_.poll_interval)));
            const auto latest = seen.last_listed + std::chrono::duration_cast<Clock::duration>(
                                                       std::chrono::duration<double>(std::max(0.0, grace - 0.1)));
            if (now >= check_at) {
                seen.grace_checked = true;
                if (now <= latest) {
                    ++report_.grace_checks;
                    fetch_locked(it->first, seen, "in-grace");
                } else {
                    ++report_.late_checks_skipped;
                }
            }
        }
        // Forget what is long gone; keep the one before the oldest listed for the timeline check.
        if (seen.grace_checked && it->first + 2 < p.media_sequence) {
            it = seen_.erase(it);
        } else {
            ++it;
        }
    }
}

OutputWatcher::Report OutputWatcher::report() const {
    std::lock_guard lock(mu_);
    return report_;
}

std::vector<std::string> OutputWatcher::violations() const {
    std::lock_guard lock(mu_);
    return violations_;
}

std::optional<OutputWatcher::Clock::time_point> OutputWatcher::first_new_segment_after(Clock::time_point t) const {
    std::lock_guard lock(mu_);
    for (const auto& a : arrivals_)
        if (a.at >= t) return a.at;
    return std::nullopt;
}

int64_t OutputWatcher::new_segments_since(Clock::time_point t) const {
    std::lock_guard lock(mu_);
    return std::count_if(arrivals_.begin(), arrivals_.end(), [&](const Arrival& a) { return a.at >= t; });
}

int64_t OutputWatcher::discontinuities_since(Clock::time_point t) const {
    std::lock_guard lock(mu_);
    return std::count_if(arrivals_.begin(), arrivals_.end(), [&](const Arrival& a) { return a.at >= t && a.discontinuity; });
}

double OutputWatcher::longest_wait_since(Clock::time_point t) const {
    std::lock_guard lock(mu_);
    auto last = t;
    double longest = 0;
    for (const auto& a : arrivals_) {
        if (a.at < t) continue;
        longest = std::max(longest, std::chrono::duration<double>(a.at - last).count());
        last = a.at;
    }
    return std::max(longest, std::chrono::duration<double>(Clock::now() - last).count());
}

}  // namespace hlsrelay::test
