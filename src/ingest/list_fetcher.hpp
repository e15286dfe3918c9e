// Channel lists (M3U or JSON) fetched by URL in the background (EngineSettings::channel_lists): the
// download side of Engine's list sources, modelled on the guide fetcher (guide_fetcher.hpp). Each URL
// is fetched with the engine's HttpClient (http/https only, the body capped after Content-Encoding,
// a total deadline besides the per-read timeout, redirects checked by url_policy), at start, every
// refresh_interval and on refresh_now(); a failed URL is retried with a doubling delay (never later
// than its next regular fetch). What to do with a fetched body is the owner's: `on_fetched` runs on
// the fetch thread and says whether the list was good (the engine parses and reconciles it there; a
// list it refuses counts as a failed fetch, so the previous lineup stays).
//
// One thread owns the schedule, the client and the interrupter; callers only take mu_ for a flag or a
// copy (refresh_now() and sources() return at once). The destructor stops the thread promptly, a
// fetch in flight included (the HTTP client polls the stop every 100 ms), and waits for an
// on_fetched call in progress to return. URLs are shown redacted in every status and log line.
#pragma once

#include <hlsrelay/log.hpp>
#include <hlsrelay/settings.hpp>
#include <hlsrelay/status.hpp>

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace hlsrelay {

namespace av {
class Interrupter;
}

// What the owner made of a fetched list: error "" when it was taken (then the counts say what it
// changed), else why it was refused (redacted).
struct ListOutcome {
    std::string error;
    ListSource counts;  // added, updated, restarted, removed, skipped, channels
};

struct ListFetcherSettings {
    std::vector<std::string> urls;  // duplicates are fetched once
    double refresh_interval = kListRefreshInterval;
    double min_fetch_interval = kListMinFetchInterval;  // refresh_now() waits this long after a fetch
    double retry_first = kListRetryFirst;
    double retry_max = kListRetryMax;
    int64_t max_bytes = kMaxListBytes;
    double deadline = kListDeadline;
    double read_timeout = kListReadTimeout;
    int max_redirects = 5;
    // Called on the fetch thread with the URL as given and the body; must not call back into the
    // fetcher's destructor.
    std::function<ListOutcome(const std::string& url, std::string body)> on_fetched;
    LogCallback log;  // optional; lines name the list by its redacted URL, channel ""
};

class ListFetcher {
public:
    // Starts the thread; every URL is fetched at once. Throws std::invalid_argument for bad settings.
    explicit ListFetcher(ListFetcherSettings settings);
    ~ListFetcher();
    ListFetcher(const ListFetcher&) = delete;
    ListFetcher& operator=(const ListFetcher&) = delete;

    // Fetch every list again as soon as min_fetch_interval allows (a failing one too, ahead of its
    // backoff). Returns at once.
    void refresh_now();
    // Per URL, in the order of the URLs (channels: as of the last fetch; the engine fills in the
    // current count).
    std::vector<ListSource> sources() const;
    const std::vector<std::string>& urls() const { return urls_; }

private:
    struct Entry;
    void fetch_loop();
    void fetch_entry(Entry& e);
    void publish(const std::vector<Entry>& entries);
    void log(LogLevel level, const std::string& message) const;

    const ListFetcherSettings settings_;
    std::vector<std::string> urls_;  // distinct, in order
    std::unique_ptr<av::Interrupter> irq_;

    mutable std::mutex mu_;
    std::condition_variable cv_;
    bool stop_ = false;
    uint64_t refresh_seq_ = 0;
    std::vector<ListSource> sources_;
    std::thread thread_;
};

}  // namespace hlsrelay
