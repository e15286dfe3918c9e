// Watches a live HLS output the way a player and a cache in front of it would, and records every
// breach of the RFC 8216 contract it sees: polls the media playlist, fetches every newly listed
// segment, the oldest listed one on every poll, and every removed one at the start and near the end
// of its grace period (RFC 8216 6.2.2), and checks the timeline across segments.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace hlsrelay::test {

class OutputWatcher {
public:
    using Clock = std::chrono::steady_clock;
    // Returns the named file of the output ("index.m3u8", "seg_12.ts"), or null if it is not served.
    using Reader = std::function<std::shared_ptr<const std::string>(const std::string& file)>;

    struct Options {
        std::string name = "output";  // prefixes every violation
        double poll_interval = 0.1;   // seconds
        double max_gap = 1.0;         // seconds: the largest timestamp step between untagged segments
        std::string playlist = "index.m3u8";
    };

    struct Report {
        int64_t polls = 0;
        int64_t segments_seen = 0;      // distinct sequence numbers listed
        int64_t fetches = 0;
        int64_t dangling = 0;           // fetches of a listed (or in-grace) segment that failed
        int64_t violations = 0;         // all breaches, dangling ones included
        int64_t discontinuities = 0;    // newly listed segments with EXT-X-DISCONTINUITY (after the first poll)
        int64_t grace_checks = 0;       // removed segments fetched near the end of their grace
        int64_t late_checks_skipped = 0;// grace checks the poller reached too late to count (a slow machine)
        int64_t newest_sequence = -1;
    };

    // Does not start polling: start() does.
    explicit OutputWatcher(Reader read, Options options);
    OutputWatcher(Reader read) : OutputWatcher(std::move(read), Options{}) {}
    ~OutputWatcher();  // stop()
    OutputWatcher(const OutputWatcher&) = delete;
    OutputWatcher& operator=(const OutputWatcher&) = delete;

    void start();
    void stop();  // joins the poller; the report stays readable

    Report report() const;
    std::vector<std::string> violations() const;  // the first 100, each prefixed with the name
    // When the first segment newly listed at or after `t` was seen; nullopt if none yet.
    std::optional<Clock::time_point> first_new_segment_after(Clock::time_point t) const;
    // Newly listed segments seen since `t`, and how many of them carried EXT-X-DISCONTINUITY.
    int64_t new_segments_since(Clock::time_point t) const;
    int64_t discontinuities_since(Clock::time_point t) const;
    // The longest wait between two newly listed segments (or from `t` to the first) within [t, now].
    double longest_wait_since(Clock::time_point t) const;

private:
    struct Seen {
        std::string uri;
        double duration = 0;
        bool discontinuity = false;
        Clock::time_point last_listed{};
        double longest_playlist = 0;  // seconds: the longest playlist that listed it
        bool removed = false, grace_checked = false;
        bool scanned = false;
        std::map<int, std::pair<int64_t, int64_t>> spans;  // pid -> first/last DTS
        std::map<int, int> stream_types;
    };
    struct Arrival {
        Clock::time_point at;
        int64_t sequence;
        bool discontinuity;
    };

    void run();
    void poll_locked(Clock::time_point now);
    bool fetch_locked(int64_t seq, Seen& seen, const char* why);
    void check_timeline_locked(int64_t seq);
    void violation_locked(const std::string& what);

    const Reader read_;
    const Options opt_;

    mutable std::mutex mu_;
    std::condition_variable cv_;
    bool stopping_ = false;
    std::thread thread_;

    Report report_;
    std::vector<std::string> violations_;
    std::map<int64_t, Seen> seen_;
    std::vector<Arrival> arrivals_;
    bool any_playlist_ = false;
    int64_t last_media_sequence_ = -1, last_discontinuity_sequence_ = -1;
    int target_duration_ = 0;
    std::vector<int64_t> previous_listed_;
};

}  // namespace hlsrelay::test
