// Channel lists fetched by URL on a schedule (see list_fetcher.hpp).
#include "ingest/list_fetcher.hpp"

#include "common/av_util.hpp"
#include "ingest/http_client.hpp"
#include "ingest/scheduled_fetch.hpp"
#include "ingest/url_policy.hpp"

#include <hlsrelay/playlist.hpp>
#include <hlsrelay/stream_id.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <optional>
#include <stdexcept>
#include <utility>

namespace hlsrelay {

using fetch::Clock;
using fetch::seconds;

struct ListFetcher::Entry : fetch::Scheduled<ListSource> {
    using Scheduled::Scheduled;
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
    urls_ = fetch::distinct(settings_.urls);
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

void ListFetcher::log(LogLevel level, const std::string& message) const { fetch::log_line(settings_.log, level, message); }

void ListFetcher::publish(const std::vector<Entry>& entries) {
    std::vector<ListSource> sources = fetch::statuses(entries);
    std::lock_guard l(mu_);
    sources_.swap(sources);
}

void ListFetcher::fetch_loop() {
    std::vector<Entry> entries;
    const auto start = Clock::now();
    for (const std::string& u : urls_) entries.emplace_back(u, start);
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
            for (Entry& e : entries) e.due = std::min(e.due, e.allowed(now, min_interval));
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
    const auto attempted = e.attempt();
    try {
        fetch::require_remote(e.url, "a channel list");
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
        if (!outcome.error.empty()) throw fetch::Refused(outcome.error);
        ListSource& st = e.status;
        const std::string url = st.url, attempted_at = st.attempted_at;
        st = outcome.counts;
        st.url = url;
        st.attempted_at = attempted_at;
        st.bytes = bytes;
        e.succeeded(attempted, s.refresh_interval);
        log(LogLevel::Info, "channel list " + e.shown + ": " + std::to_string(bytes) + " bytes, " +
                                std::to_string(st.channels) + " channel(s): " + std::to_string(st.added) + " added, " +
                                std::to_string(st.updated) + " updated (" + std::to_string(st.restarted) +
                                " restarted), " + std::to_string(st.removed) + " removed, " +
                                std::to_string(st.issues) + " issue(s)");
    } catch (const std::exception& ex) {
        if (irq_->stop_requested()) return;  // "stopped": no failure of the provider's
        const std::string why = fetch::failure_text(ex, e.shown);
        const double delay = e.failed(attempted, why, s.retry_first, s.retry_max, s.refresh_interval);
        log(LogLevel::Warn, "channel list: " + why + (e.status.fetched_at.empty() ? "" : "; its channels are kept") +
                                "; retried in " + format_number(delay) + " s");
    }
}

}  // namespace hlsrelay
