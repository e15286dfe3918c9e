// Channel lists fetched by URL on a schedule (see list_fetcher.hpp).
#include "ingest/list_fetcher.hpp"

#include "common/av_util.hpp"
#include "ingest/http_client.hpp"
#include "ingest/url_policy.hpp"

#include <hlsrelay/playlist.hpp>
#include <hlsrelay/stream_id.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <optional>
#include <stdexcept>
#include <unordered_set>
#include <utility>

namespace hlsrelay {

namespace {

using Clock = std::chrono::steady_clock;

Clock::duration seconds(double s) {
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

std::string utc_text(Clock::time_point t) {
    const auto from_now = std::chrono::duration_cast<SystemClock::duration>(t - Clock::now());
    return format_date_time(SystemClock::now() + from_now);
}

// A refusal of ours (not the HTTP client's): its text names no unredacted URL.
class ListError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

}  // namespace

struct ListFetcher::Entry {
    std::string url;    // as given: may hold credentials, never shown
    std::string shown;  // redact_url(url)
    Clock::time_point due;
    std::optional<Clock::time_point> last_attempt;
    ListSource status;
};

ListFetcher::ListFetcher(ListFetcherSettings settings)
    : settings_(std::move(settings)), irq_(std::make_unique<av::Interrupter>()) {
    auto in = [](double v, double lo, double hi) { return std::isfinite(v) && v >= lo && v <= hi; };
    if (!in(settings_.refresh_interval, kMinListRefreshInterval, kMaxListRefreshInterval) ||
        !in(settings_.min_fetch_interval, 0, kMaxListRefreshInterval) || !in(settings_.retry_first, 0.001, kMaxListRefreshInterval) ||
        !in(settings_.retry_max, settings_.retry_first, kMaxListRefreshInterval) || settings_.max_bytes <= 0 ||
        !in(settings_.deadline, 0.001, kMaxListRefreshInterval) || !in(settings_.read_timeout, 0.001, kMaxListRefreshInterval) ||
        settings_.max_redirects < 0 || !settings_.on_fetched)
        throw std::invalid_argument("invalid list fetcher settings");
    std::unordered_set<std::string> seen;
    for (const std::string& u : settings_.urls)
        if (seen.insert(u).second) urls_.push_back(u);
    for (const std::string& u : urls_) {
        ListSource s;
        s.url = redact_url(u);
        sources_.push_back(std::move(s));
    }
    thread_ = std::thread([this] { fetch_loop(); });
}

ListFetcher::~ListFetcher() {
    {
        std::lock_guard l(mu_);
        stop_ = true;
    }
    irq_->request_stop();
    cv_.notify_all();
    thread_.join();
}

void ListFetcher::refresh_now() {
    {
        std::lock_guard l(mu_);
        ++refresh_seq_;
    }
    cv_.notify_all();
}

std::vector<ListSource> ListFetcher::sources() const {
    std::lock_guard l(mu_);
    return sources_;
}

void ListFetcher::log(LogLevel level, const std::string& message) const {
    if (!settings_.log) return;
    try {
        settings_.log(level, "", message);
    } catch (...) {
        // A logger that throws must not take our thread down.
    }
}

void ListFetcher::publish(const std::vector<Entry>& entries) {
    std::vector<ListSource> sources;
    sources.reserve(entries.size());
    for (const Entry& e : entries) {
        sources.push_back(e.status);
        sources.back().next_fetch_at = utc_text(e.due);
    }
    std::lock_guard l(mu_);
    sources_.swap(sources);
}

void ListFetcher::fetch_loop() {
    std::vector<Entry> entries;
    const auto start = Clock::now();
    for (const std::string& u : urls_) {
        Entry e;
        e.url = u;
        e.shown = redact_url(u);
        e.due = start;
        e.status.url = e.shown;
        entries.push_back(std::move(e));
    }
    // A refresh asked for waits at most this long after a list's last fetch.
    const double min_interval = std::min(settings_.min_fetch_interval, settings_.refresh_interval);
    uint64_t seen_refresh = 0;
    for (;;) {
        bool refresh = false;
        {
            std::unique_lock l(mu_);
            const auto pending = [&] { return stop_ || refresh_seq_ != seen_refresh; };
            std::optional<Clock::time_point> next;
            for (const Entry& e : entries) next = next ? std::min(*next, e.due) : e.due;
            if (next) cv_.wait_until(l, *next, pending);
            else cv_.wait(l, pending);
            if (stop_) return;
            refresh = refresh_seq_ != seen_refresh;
            seen_refresh = refresh_seq_;
        }
        const auto now = Clock::now();
        if (refresh)
            for (Entry& e : entries)
                e.due = std::min(e.due, e.last_attempt ? std::max(now, *e.last_attempt + seconds(min_interval)) : now);
        for (Entry& e : entries) {
            if (e.due > Clock::now()) continue;
            {
                std::lock_guard l(mu_);
                if (stop_) return;
            }
            fetch_entry(e);
        }
        publish(entries);
    }
}

void ListFetcher::fetch_entry(Entry& e) {
    const ListFetcherSettings& s = settings_;
    HttpClient client;  // one per fetch: lists are fetched hours apart
    const auto attempted = Clock::now();
    e.last_attempt = attempted;
    e.status.attempted_at = format_date_time(SystemClock::now());
    try {
        // The HTTP client refuses other schemes too; refused here first, with the reason said plainly.
        if (const std::string scheme = url::scheme_of(e.url); !url::is_remote_scheme(scheme))
            throw ListError("refused URI scheme '" + scheme + "' for a channel list (allowed: http, https)");
        FetchSpec spec;
        spec.trusted_origin = e.url;
        spec.what = "channel list";
        spec.max_bytes = s.max_bytes;
        spec.limit_name = "max_list_bytes";
        spec.read_timeout = s.read_timeout;
        spec.deadline = s.deadline;
        spec.deadline_name = "list deadline";
        spec.max_redirects = s.max_redirects;
        spec.accept_gzip = true;
        std::string body = client.get(e.url, spec, *irq_);
        const auto bytes = static_cast<int64_t>(body.size());
        if (irq_->stop_requested()) return;
        ListOutcome outcome = s.on_fetched(e.url, std::move(body));
        if (!outcome.error.empty()) throw ListError(outcome.error);
        ListSource& st = e.status;
        const std::string url = st.url, attempted_at = st.attempted_at;
        st = outcome.counts;
        st.url = url;
        st.attempted_at = attempted_at;
        st.fetched_at = attempted_at;
        st.last_error.clear();
        st.failures = 0;
        st.bytes = bytes;
        e.due = attempted + seconds(s.refresh_interval);
        log(LogLevel::Info, "channel list " + e.shown + ": " + std::to_string(bytes) + " bytes, " +
                                std::to_string(st.channels) + " channel(s): " + std::to_string(st.added) + " added, " +
                                std::to_string(st.updated) + " updated (" + std::to_string(st.restarted) +
                                " restarted), " + std::to_string(st.removed) + " removed, " +
                                std::to_string(st.issues) + " issue(s)");
    } catch (const std::exception& ex) {
        if (irq_->stop_requested()) return;  // "stopped": no failure of the provider's
        std::string why = scrub_urls(ex.what());
        if (why.find(e.shown) == std::string::npos) why = e.shown + ": " + why;
        ListSource& st = e.status;
        ++st.failures;
        double delay = s.retry_first;
        for (int k = 1; k < st.failures && delay < s.retry_max; ++k) delay *= 2;
        delay = std::min({delay, s.retry_max, s.refresh_interval});
        e.due = attempted + seconds(delay);
        st.last_error = why;
        log(LogLevel::Warn, "channel list: " + why + (st.fetched_at.empty() ? "" : "; its channels are kept") +
                                "; retried in " + format_number(delay) + " s");
    }
}

}  // namespace hlsrelay
