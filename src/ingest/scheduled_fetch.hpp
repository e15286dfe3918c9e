// What the background fetchers of documents by URL (guide_fetcher: XMLTV guides; list_fetcher:
// channel lists) share: one URL's place in the schedule, its retry backoff, the published status,
// the plain refusal of a non-http(s) URL, the redacted failure text and a logger that cannot throw.
// Each fetcher keeps its own thread, its parsing and what it does with a good fetch. Internal to
// src/ingest.
#pragma once

#include "ingest/url_policy.hpp"

#include <hlsrelay/log.hpp>
#include <hlsrelay/playlist.hpp>
#include <hlsrelay/stream_id.hpp>

#include <algorithm>
#include <chrono>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace hlsrelay::fetch {

using Clock = std::chrono::steady_clock;

inline Clock::duration seconds(double s) {
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

// A steady-clock instant as ISO-8601 UTC (the status's next_fetch_at).
inline std::string utc_text(Clock::time_point t) {
    const auto from_now = std::chrono::duration_cast<SystemClock::duration>(t - Clock::now());
    return format_date_time(SystemClock::now() + from_now);
}

// A refusal of the fetcher's own (not the HTTP client's): its text names no unredacted URL.
class Refused : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// One URL as a fetch thread schedules it; `Status` is its public row (GuideSource, ListSource: url,
// attempted_at, next_fetch_at, failures, last_error). Only the fetch thread touches it.
template <class Status>
struct Scheduled {
    std::string url;    // as given: may hold credentials, never shown
    std::string shown;  // redact_url(url)
    Clock::time_point due;
    std::optional<Clock::time_point> last_attempt;
    Status status;

    Scheduled(std::string u, Clock::time_point when) : url(std::move(u)), shown(redact_url(url)), due(when) {
        status.url = shown;
    }

    // A fetch begins: when, for the backoff and the status.
    Clock::time_point attempt() {
        const auto now = Clock::now();
        last_attempt = now;
        status.attempted_at = format_date_time(SystemClock::now());
        return now;
    }
    // The earliest a refresh asked for at `now` may fetch it: `min_interval` after its last fetch.
    Clock::time_point allowed(Clock::time_point now, double min_interval) const {
        return last_attempt ? std::max(now, *last_attempt + seconds(min_interval)) : now;
    }
    // A good fetch started at `attempted`: the next one a refresh interval later.
    void succeeded(Clock::time_point attempted, double refresh_interval) {
        status.fetched_at = status.attempted_at;
        status.last_error.clear();
        status.failures = 0;
        due = attempted + seconds(refresh_interval);
    }
    // A failed one: `why` (redacted, see failure_text) kept, retried after `retry_first` doubled per
    // failure in a row up to `retry_max` (and `cap`). Returns the delay.
    double failed(Clock::time_point attempted, std::string why, double retry_first, double retry_max,
                  double cap = 1e300) {
        ++status.failures;
        double delay = retry_first;
        for (int k = 1; k < status.failures && delay < retry_max; ++k) delay *= 2;
        delay = std::min({delay, retry_max, cap});
        due = attempted + seconds(delay);
        status.last_error = std::move(why);
        return delay;
    }
};

// `urls` without repeats, in order.
inline std::vector<std::string> distinct(const std::vector<std::string>& urls) {
    std::vector<std::string> out;
    for (const std::string& u : urls)
        if (std::find(out.begin(), out.end(), u) == out.end()) out.push_back(u);
    return out;
}

// The public rows of `entries` (Scheduled<Status> or derived), each with its next fetch.
template <class Entry>
auto statuses(const std::vector<Entry>& entries) {
    std::vector<decltype(Entry::status)> out;
    out.reserve(entries.size());
    for (const Entry& e : entries) {
        out.push_back(e.status);
        out.back().next_fetch_at = utc_text(e.due);
    }
    return out;
}

// The HTTP client refuses other schemes too; refused first here, with the reason said plainly.
inline void require_remote(const std::string& url, const std::string& what) {
    if (const std::string scheme = url::scheme_of(url); !url::is_remote_scheme(scheme))
        throw Refused("refused URI scheme '" + scheme + "' for " + what + " (allowed: http, https)");
}

// Why a fetch of `shown` failed, with every URL in it redacted, naming the URL once.
inline std::string failure_text(const std::exception& e, const std::string& shown) {
    std::string why = scrub_urls(e.what());
    if (why.find(shown) == std::string::npos) why = shown + ": " + why;
    return why;
}

// A log line through an optional callback that must not take the fetch thread down.
inline void log_line(const LogCallback& log, LogLevel level, const std::string& message) {
    if (!log) return;
    try {
        log(level, "", message);
    } catch (...) {
    }
}

}  // namespace hlsrelay::fetch
