// XMLTV guides (EPG) fetched from their providers and kept ready for the channels hlsrelay serves: the
// download side of include/hlsrelay/xmltv.hpp. Each guide URL is fetched with the engine's HttpClient
// (http/https only, caps, deadlines, redirects checked), a gzip FILE (epg.xml.gz) is inflated here with
// its own cap, the document is parsed keeping only what the wanted channels use (xmltv::parse_for), and
// the merged, filtered document is rebuilt, gzipped once and published for readers.
//
// Threads and ownership:
//  - the fetch thread owns the schedule, the HttpClient and the interrupter: it fetches the due URLs one
//    after the other, inflates and parses each, and swaps the new guide into the kept guides (guides_mu_);
//    it takes set_urls() / set_channels() / refresh_now() between two fetches;
//  - the build thread owns filtering: it runs xmltv::filter over the kept guides (under guides_mu_), gzips
//    the result and publishes both (mu_, for the swap of pointers). A build follows every fetched guide
//    (each is served once read, not after the slowest) and every change; requests made meanwhile coalesce;
//  - callers (any thread) only take mu_ for a copy or a flag: set_*() and refresh_now() return at once;
//    xml(), xml_gz(), sources() and report() never wait for a fetch or a build.
// mu_ and guides_mu_ are never held together; nothing blocks under mu_; under guides_mu_ only a filter
// runs (a fetched guide's swap may wait for it). A channel change made while a fetch is in flight (up to
// `deadline`) is re-filtered at once from the kept guides; a URL change waits for that fetch to end.
// The destructor asks both threads to stop (a fetch in flight is interrupted within the HTTP client's
// 100 ms poll; inflating and gzipping check the stop between 1 MiB slices; a parse or filter in progress
// runs to its end, under a second for the largest guides Limits allow) and joins them.
//
// Re-filtering without re-fetching: a guide is kept as parse_for() leaves it, i.e. only what the wanted
// channels at parse time use (a fraction of a full provider guide; the raw text is dropped after the
// parse). set_channels() re-filters those kept guides at once; when the new channels need a tvg-id or a
// name that a guide was not parsed for, that guide is fetched again too (no sooner than
// min_fetch_interval after its last fetch, and never ahead of a failing URL's backoff). Keeping whole
// guides instead would make every channel change free of network traffic at several times the memory.
//
// Errors are per URL, with the URL redacted (redact_url / scrub_urls): credentials in provider URLs are
// never logged, reported or exposed. A failed fetch keeps the URL's previous guide.
#pragma once

#include <hlsrelay/log.hpp>
#include <hlsrelay/settings.hpp>
#include <hlsrelay/status.hpp>
#include <hlsrelay/xmltv.hpp>

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace hlsrelay {

class HttpClient;
namespace av {
class Interrupter;
}

// The defaults of GuideFetcherSettings, in one place.
inline constexpr int64_t kMaxGuideBytes = int64_t{256} << 20;  // a guide's body as fetched (a .gz file compressed)
inline constexpr double kGuideDeadline = 120;                  // seconds one whole fetch may take
inline constexpr double kGuideReadTimeout = 30;                // seconds one wait for the provider may take
inline constexpr int kGuideMaxRedirects = 5;
inline constexpr double kGuideRetryFirst = 60;                 // seconds before the first retry of a failed URL
inline constexpr double kGuideRetryMax = 3600;                 // the retry delay doubles up to this
inline constexpr double kGuideMinFetchInterval = 60;           // no URL is fetched more often, whatever asks

struct GuideFetcherSettings {
    std::vector<std::string> urls;              // in order of preference (duplicates are fetched once)
    std::vector<xmltv::GuideChannel> channels;  // the wanted channels (set_channels() replaces them)
    // Headers sent to each guide's own origin only (User-Agent and Referer to a redirect's too), as for
    // a channel's source.
    std::map<std::string, std::string> headers;
    double refresh_interval = kGuideRefreshInterval;
    double retry_first = kGuideRetryFirst;
    double retry_max = kGuideRetryMax;
    double min_fetch_interval = kGuideMinFetchInterval;
    int64_t max_bytes = kMaxGuideBytes;  // the body as the HTTP client returns it (after Content-Encoding)
    double deadline = kGuideDeadline;
    double read_timeout = kGuideReadTimeout;
    int max_redirects = kGuideMaxRedirects;
    // The reader's and the merge's caps. limits.max_document_bytes also caps what a gzip file inflates to
    // (the document the parser would refuse beyond it anyway): a gzip bomb fails at that cap.
    xmltv::Limits limits;
    LogCallback log;  // optional; lines name the guide by its redacted URL, channel ""
};

// "" when the settings are usable, else what is wrong with them.
std::string guide_fetcher_problem(const GuideFetcherSettings& s);

// GuideSource (one guide URL's status) is in <hlsrelay/status.hpp>.


class GuideFetcher {
public:
    // Starts both threads; every URL is fetched at once. Throws std::invalid_argument for bad settings
    // (guide_fetcher_problem).
    explicit GuideFetcher(GuideFetcherSettings settings);
    // Stops promptly, also while a fetch hangs (see the top of the file), and joins both threads.
    ~GuideFetcher();
    GuideFetcher(const GuideFetcher&) = delete;
    GuideFetcher& operator=(const GuideFetcher&) = delete;

    // The registry changed: the document is re-filtered for `wanted` in the background at once; URLs whose
    // kept guide lacks what the new channels need are fetched again (see the top of the file).
    void set_channels(std::vector<xmltv::GuideChannel> wanted);
    // The guide URLs changed: new ones are fetched at once, kept ones keep their guide and schedule,
    // removed ones are dropped with their guide.
    void set_urls(std::vector<std::string> urls);
    // Wakes the fetch thread to fetch every URL again, as soon as min_fetch_interval allows (a failing
    // URL too, ahead of its backoff). Returns at once.
    void refresh_now();

    // The current merged, filtered XMLTV document; never null (before the first fetch: the wanted
    // channels without programmes).
    std::shared_ptr<const std::string> xml() const;
    // The same document gzip-compressed (made once per build).
    std::shared_ptr<const std::string> xml_gz() const;
    // Per URL, in the order of the URLs.
    std::vector<GuideSource> sources() const;
    // What the last build did (xmltv::filter's report; "guide N" in its problems is the Nth URL).
    xmltv::Report report() const;
    // True once every change made before the call (construction, set_*, refresh_now) was taken by the
    // fetch thread, the fetches it made due at once are done and a build after them was published; false
    // after `timeout_seconds`. For tests, and for a first request that would rather wait for a guide.
    bool wait_built(double timeout_seconds) const;

private:
    struct Entry;
    struct Published {
        std::shared_ptr<const std::string> xml, xml_gz;
        std::shared_ptr<const xmltv::Report> report;
    };

    void fetch_loop();
    void build_loop();
    void fetch_entry(Entry& e, std::size_t index, HttpClient& client);
    void publish_sources(const std::vector<Entry>& entries);
    void request_build_locked();
    void log(LogLevel level, const std::string& message) const;

    const GuideFetcherSettings settings_;  // urls and channels: the initial ones only (see below)
    std::unique_ptr<av::Interrupter> irq_;  // the fetch thread's; stopped by the destructor

    // mu_ guards everything below up to guides_mu_.
    mutable std::mutex mu_;
    std::condition_variable fetch_cv_;  // the fetch thread waits on it: a change, stop, a fetch due
    std::condition_variable build_cv_;  // the build thread waits on it: a build requested, stop
    mutable std::condition_variable built_cv_;  // wait_built() waits on it
    bool stop_ = false;
    std::vector<std::string> urls_;                         // as last set
    std::shared_ptr<const std::vector<xmltv::GuideChannel>> wanted_;  // as last set
    uint64_t change_seq_ = 1;   // counts set_*, refresh_now and the construction
    uint64_t urls_seq_ = 1;     // change_seq_ of the last set_urls (or the construction)
    uint64_t wanted_seq_ = 1;   // change_seq_ of the last set_channels (or the construction)
    uint64_t refresh_seq_ = 0;  // change_seq_ of the last refresh_now
    uint64_t fetched_seq_ = 0;  // every change up to it taken by the fetch thread, its due fetches done
    uint64_t built_seq_ = 0;    // a build that started after fetched_seq_ reached this was published
    bool build_requested_ = false;
    bool fetching_ = false;     // the fetch thread is inside a fetch (it may take up to `deadline`)
    Published published_;
    std::vector<GuideSource> sources_;

    // The kept guides, one per URL in the order of the URLs (an entry without a guide holds an empty one
    // whose error says why). Written by the fetch thread, read by the build thread.
    mutable std::mutex guides_mu_;
    std::vector<xmltv::Guide> guides_;

    std::thread fetch_thread_, build_thread_;
};

}  // namespace hlsrelay
