// XMLTV guides fetched, inflated, parsed for the wanted channels and merged (see guide_fetcher.hpp).
#include "ingest/guide_fetcher.hpp"

#include "common/av_util.hpp"
#include "ingest/http_client.hpp"
#include "ingest/http_framing.hpp"
#include "ingest/scheduled_fetch.hpp"
#include "ingest/url_policy.hpp"

#include <hlsrelay/playlist.hpp>
#include <hlsrelay/stream_id.hpp>

#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <new>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <utility>

namespace hlsrelay {

namespace {

using fetch::Clock;
using fetch::seconds;

constexpr std::size_t kSlice = std::size_t{1} << 20;  // inflated / gzipped per stop check
constexpr double kMaxSettingSeconds = 366 * 86400.0;  // any interval beyond a year is a typo

// A stop requested while a guide was inflated or gzipped.
struct Stopped {};

bool starts_with_bytes(std::string_view s, std::string_view magic) { return s.substr(0, magic.size()) == magic; }

// A gzip FILE (epg.xml.gz served without Content-Encoding, or inside one): inflated with the document's cap,
// so a bomb fails at the cap whatever its compressed size. Concatenated members are read as one file.
std::string inflate_gzip_file(std::string_view body, uint64_t cap, const av::Interrupter& irq) {
    std::string out;
    // One reservation from the trailer's ISIZE (the last member's size mod 4 GiB): a hint, bounded by the cap
    // and by a plausible ratio, so a lying trailer costs nothing.
    if (body.size() >= 18) {
        const auto byte = [&](std::size_t k) { return uint64_t{static_cast<unsigned char>(body[body.size() - 4 + k])}; };
        const uint64_t isize = byte(0) | byte(1) << 8 | byte(2) << 16 | byte(3) << 24;
        out.reserve(static_cast<std::size_t>(std::min({isize, cap, uint64_t{body.size()} * 64})));
    }
    try {
        http::Inflater inflater(http::Inflater::Kind::Gzip, cap);
        for (std::size_t pos = 0; pos < body.size(); pos += kSlice) {
            if (irq.stop_requested()) throw Stopped{};
            inflater.feed(body.substr(pos, kSlice), out);
        }
        inflater.finish();
    } catch (const http::CapExceeded& e) {
        throw fetch::Refused("gzip file inflates to more than max_document_bytes (" + std::to_string(e.cap()) + " bytes)");
    } catch (const http::FramingError& e) {
        throw fetch::Refused(std::string("bad gzip file: ") + e.what());
    }
    return out;
}

// zlib's deflate stream, ended however the compression ends.
class GzipWriter {
public:
    GzipWriter() {
        if (deflateInit2(&z_, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
            throw std::bad_alloc();
    }
    ~GzipWriter() { deflateEnd(&z_); }
    GzipWriter(const GzipWriter&) = delete;
    GzipWriter& operator=(const GzipWriter&) = delete;

    // `in` gzip-compressed; throws Stopped when `irq` is stopped between two slices.
    std::string compress(std::string_view in, const av::Interrupter& irq) {
        std::string out;
        out.reserve(in.size() / 8 + 1024);
        unsigned char buf[1 << 16];
        std::size_t pos = 0;
        int ret = Z_OK;
        do {
            if (irq.stop_requested()) throw Stopped{};
            const std::size_t n = std::min(kSlice, in.size() - pos);
            z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data() + pos));
            z_.avail_in = static_cast<uInt>(n);
            pos += n;
            const int flush = pos == in.size() ? Z_FINISH : Z_NO_FLUSH;
            do {
                z_.next_out = buf;
                z_.avail_out = sizeof buf;
                ret = deflate(&z_, flush);
                if (ret == Z_STREAM_ERROR) throw std::runtime_error("gzip of the guide failed");
                out.append(reinterpret_cast<const char*>(buf), sizeof buf - z_.avail_out);
            } while (z_.avail_out == 0);
        } while (pos < in.size() || ret != Z_STREAM_END);
        return out;
    }

private:
    z_stream z_{};
};

// Whether a guide parsed for `covered` holds everything `wanted` may use (xmltv::parse_for keeps by these
// very keys: lower-cased tvg-ids and name keys).
bool covers(const xmltv::detail::Wanted& covered, const xmltv::detail::Wanted& wanted) {
    for (const std::string& id : wanted.ids)
        if (!covered.ids.count(id)) return false;
    for (const std::string& name : wanted.names)
        if (!covered.names.count(name)) return false;
    return true;
}

xmltv::Guide not_fetched(std::string why) {
    xmltv::Guide g;
    g.error = std::move(why);
    return g;
}

}  // namespace

// A guide URL as the fetch thread schedules it. Only the fetch thread touches entries.
struct GuideFetcher::Entry : fetch::Scheduled<GuideSource> {
    using Scheduled::Scheduled;
    std::optional<xmltv::detail::Wanted> covered;  // the channels the kept guide was parsed for
};

std::string guide_fetcher_problem(const GuideFetcherSettings& s) {
    auto in = [](double v, double lo, double hi) { return std::isfinite(v) && v >= lo && v <= hi; };
    if (!in(s.refresh_interval, 1, kMaxSettingSeconds)) return "guide refresh_interval must be within 1 s..366 days";
    if (!in(s.retry_first, 1, kMaxSettingSeconds) || !in(s.retry_max, s.retry_first, kMaxSettingSeconds))
        return "guide retry delays must be within 1 s..366 days, retry_first <= retry_max";
    if (!in(s.min_fetch_interval, 0, kMaxSettingSeconds)) return "guide min_fetch_interval must be within 0..366 days";
    if (s.max_bytes <= 0) return "guide max_bytes must be positive";
    if (!in(s.deadline, 0.001, kMaxSettingSeconds) || !in(s.read_timeout, 0.001, kMaxSettingSeconds))
        return "guide deadline and read_timeout must be positive";
    if (s.max_redirects < 0 || s.max_redirects > 20) return "guide max_redirects must be within 0..20";
    if (s.limits.max_document_bytes == 0) return "guide limits.max_document_bytes must be positive";
    return {};
}

GuideFetcher::GuideFetcher(GuideFetcherSettings settings)
    : settings_(std::move(settings)), irq_(std::make_unique<av::Interrupter>()) {
    if (std::string p = guide_fetcher_problem(settings_); !p.empty()) throw std::invalid_argument(p);
    urls_ = fetch::distinct(settings_.urls);
    wanted_ = std::make_shared<const std::vector<xmltv::GuideChannel>>(settings_.channels);
    for (const std::string& u : urls_) {
        GuideSource s;
        s.url = redact_url(u);
        sources_.push_back(std::move(s));
    }
    // Before the first fetch: the wanted channels without programmes (cheap: no guide to filter).
    auto report = std::make_shared<xmltv::Report>();
    auto xml = std::make_shared<const std::string>(xmltv::filter(std::span<const xmltv::Guide>(), *wanted_, *report,
                                                                 settings_.limits));
    published_.xml_gz = std::make_shared<const std::string>(GzipWriter().compress(*xml, *irq_));
    published_.xml = std::move(xml);
    published_.report = std::move(report);
    fetch_thread_ = std::thread([this] { fetch_loop(); });
    try {
        build_thread_ = std::thread([this] { build_loop(); });
    } catch (...) {
        {
            std::lock_guard l(mu_);
            stop_ = true;
        }
        irq_->request_stop();
        fetch_cv_.notify_all();
        fetch_thread_.join();
        throw;
    }
}

GuideFetcher::~GuideFetcher() {
    {
        std::lock_guard l(mu_);
        stop_ = true;
    }
    irq_->request_stop();
    fetch_cv_.notify_all();
    build_cv_.notify_all();
    built_cv_.notify_all();
    fetch_thread_.join();
    build_thread_.join();
}

void GuideFetcher::set_channels(std::vector<xmltv::GuideChannel> wanted) {
    auto w = std::make_shared<const std::vector<xmltv::GuideChannel>>(std::move(wanted));
    std::shared_ptr<const std::vector<xmltv::GuideChannel>> old;  // freed outside the lock
    {
        std::lock_guard l(mu_);
        old = std::exchange(wanted_, std::move(w));
        wanted_seq_ = ++change_seq_;
        // The fetch thread takes the change when it is free; while it is inside a fetch (up to `deadline`),
        // the kept guides are re-filtered now.
        if (fetching_) request_build_locked();
    }
    fetch_cv_.notify_all();
}

void GuideFetcher::set_urls(std::vector<std::string> urls) {
    urls = fetch::distinct(urls);
    {
        std::lock_guard l(mu_);
        urls_.swap(urls);
        urls_seq_ = ++change_seq_;
    }
    fetch_cv_.notify_all();
}

void GuideFetcher::refresh_now() {
    {
        std::lock_guard l(mu_);
        refresh_seq_ = ++change_seq_;
    }
    fetch_cv_.notify_all();
}

std::shared_ptr<const std::string> GuideFetcher::xml() const {
    std::lock_guard l(mu_);
    return published_.xml;
}

std::shared_ptr<const std::string> GuideFetcher::xml_gz() const {
    std::lock_guard l(mu_);
    return published_.xml_gz;
}

std::vector<GuideSource> GuideFetcher::sources() const {
    std::lock_guard l(mu_);
    return sources_;
}

xmltv::Report GuideFetcher::report() const {
    std::shared_ptr<const xmltv::Report> r;
    {
        std::lock_guard l(mu_);
        r = published_.report;
    }
    return *r;
}

bool GuideFetcher::wait_built(double timeout_seconds) const {
    std::unique_lock l(mu_);
    const uint64_t want = change_seq_;
    const auto timeout = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::duration<double>(std::clamp(timeout_seconds, 0.0, kMaxSettingSeconds)));
    built_cv_.wait_for(l, timeout, [&] { return built_seq_ >= want || stop_; });
    return built_seq_ >= want;
}

void GuideFetcher::request_build_locked() {
    build_requested_ = true;
    build_cv_.notify_one();
}

void GuideFetcher::log(LogLevel level, const std::string& message) const { fetch::log_line(settings_.log, level, message); }

void GuideFetcher::publish_sources(const std::vector<Entry>& entries) {
    std::vector<GuideSource> sources = fetch::statuses(entries);
    std::lock_guard l(mu_);
    sources_.swap(sources);
}

void GuideFetcher::fetch_loop() {
    HttpClient client;  // one connection kept alive between guides of one origin
    std::vector<Entry> entries;
    uint64_t taken_seq = 0, seen_urls = 0, seen_wanted = 0, seen_refresh = 0;
    for (;;) {
        std::optional<std::vector<std::string>> urls;
        std::shared_ptr<const std::vector<xmltv::GuideChannel>> wanted;
        bool refresh = false;
        {
            std::unique_lock l(mu_);
            const auto pending = [&] { return stop_ || change_seq_ != taken_seq; };
            std::optional<Clock::time_point> next;
            for (const Entry& e : entries) next = next ? std::min(*next, e.due) : e.due;
            if (next) fetch_cv_.wait_until(l, *next, pending);
            else fetch_cv_.wait(l, pending);
            if (stop_) return;
            taken_seq = change_seq_;
            if (urls_seq_ != seen_urls) urls = urls_;
            if (wanted_seq_ != seen_wanted) wanted = wanted_;
            refresh = refresh_seq_ != seen_refresh;
            seen_urls = urls_seq_;
            seen_wanted = wanted_seq_;
            seen_refresh = refresh_seq_;
        }
        const auto now = Clock::now();
        // The earliest a healthy URL may be fetched again.
        const auto allowed = [&](const Entry& e) { return e.allowed(now, settings_.min_fetch_interval); };
        bool changed = urls || wanted || refresh;
        if (urls) {
            // Kept URLs keep their entry and guide; new ones are fetched now; removed ones are dropped.
            std::vector<Entry> next_entries;
            std::vector<xmltv::Guide> next_guides;
            std::vector<bool> kept(entries.size(), false);
            std::lock_guard g(guides_mu_);
            for (const std::string& u : *urls) {
                std::size_t k = 0;
                while (k < entries.size() && (kept[k] || entries[k].url != u)) ++k;
                if (k < entries.size()) {
                    kept[k] = true;
                    next_guides.push_back(std::move(guides_[k]));
                    next_entries.push_back(std::move(entries[k]));
                    continue;
                }
                next_entries.emplace_back(u, now);
                next_guides.push_back(not_fetched("not fetched yet"));
            }
            entries.swap(next_entries);
            guides_.swap(next_guides);
        }
        if (wanted) {
            // A guide parsed for other channels may lack what the new ones need: fetched again (a failing URL
            // stays on its backoff: never sooner because the channels changed).
            const xmltv::detail::Wanted need(*wanted);
            for (Entry& e : entries)
                if (e.covered && !covers(*e.covered, need) && e.status.failures == 0) e.due = std::min(e.due, allowed(e));
        }
        if (refresh)
            for (Entry& e : entries) e.due = std::min(e.due, allowed(e));

        bool interrupted = false;
        for (std::size_t i = 0; i < entries.size(); ++i) {
            if (entries[i].due > Clock::now()) continue;
            {
                std::lock_guard l(mu_);
                if (stop_) return;
                if (change_seq_ != taken_seq) {  // taken first: it may drop or reorder URLs, or want other channels
                    interrupted = true;
                    break;
                }
                fetching_ = true;
            }
            fetch_entry(entries[i], i, client);
            changed = true;
            publish_sources(entries);
            bool more = false;  // another fetch follows in this round
            for (std::size_t j = i + 1; j < entries.size() && !more; ++j) more = entries[j].due <= Clock::now();
            std::lock_guard l(mu_);
            fetching_ = false;
            if (stop_) return;
            if (more) request_build_locked();  // each guide is served once read, not after the slowest
        }
        if (!changed) continue;
        publish_sources(entries);
        std::lock_guard l(mu_);
        if (!interrupted) fetched_seq_ = taken_seq;
        request_build_locked();
    }
}

void GuideFetcher::fetch_entry(Entry& e, std::size_t index, HttpClient& client) {
    const GuideFetcherSettings& s = settings_;
    const auto attempted = e.attempt();
    std::atomic<int64_t> transferred{0};
    try {
        fetch::require_remote(e.url, "a guide");
        FetchSpec spec;
        spec.headers = s.headers.empty() ? nullptr : &s.headers;
        spec.trusted_origin = e.url;
        spec.what = "guide";
        spec.max_bytes = s.max_bytes;
        spec.limit_name = "guide max_bytes";
        spec.read_timeout = s.read_timeout;
        spec.deadline = s.deadline;
        spec.deadline_name = "guide deadline";
        spec.max_redirects = s.max_redirects;
        spec.accept_gzip = true;
        spec.bytes_in = &transferred;
        std::string document = client.get(e.url, spec, *irq_);
        const auto body_bytes = static_cast<int64_t>(document.size());
        const bool gzip_file = starts_with_bytes(document, "\x1f\x8b");
        if (gzip_file) {
            std::string inflated = inflate_gzip_file(document, s.limits.max_document_bytes, *irq_);
            std::string().swap(document);  // the compressed bytes go before the parse
            document.swap(inflated);
        } else if (starts_with_bytes(document, std::string_view("PK\x03\x04", 4))) {
            throw fetch::Refused("guide is a zip archive; only XML and gzip files are read");
        }
        const auto document_bytes = static_cast<int64_t>(document.size());
        std::shared_ptr<const std::vector<xmltv::GuideChannel>> wanted;
        {
            std::lock_guard l(mu_);
            wanted = wanted_;  // the newest channels: a change made during the download is parsed for
        }
        xmltv::Guide guide = xmltv::parse_for(document, *wanted, s.limits);
        std::string().swap(document);  // only the kept subset stays
        if (!guide.ok()) throw fetch::Refused(guide.error);
        guide.text.shrink_to_fit();
        guide.programmes.shrink_to_fit();

        GuideSource& st = e.status;
        e.succeeded(attempted, s.refresh_interval);
        st.has_guide = true;
        st.gzip_file = gzip_file;
        st.complete = guide.complete;
        st.bytes = std::max(transferred.load(), body_bytes);
        st.document_bytes = document_bytes;
        st.channels = guide.channels.size();
        st.programmes = guide.programmes.size();
        st.problems = guide.problem_count;
        e.covered.emplace(*wanted);
        {
            std::lock_guard g(guides_mu_);
            std::swap(guides_[index], guide);  // the previous guide is freed outside the lock
        }
        log(LogLevel::Info, "XMLTV guide " + e.shown + ": " + std::to_string(document_bytes) + " bytes" +
                                (gzip_file ? " (gzip file)" : "") + (st.complete ? "" : ", truncated") + "; kept " +
                                std::to_string(st.channels) + " channel(s) and " + std::to_string(st.programmes) +
                                " programme(s) for the wanted channels");
    } catch (const Stopped&) {
        return;
    } catch (const std::exception& ex) {
        if (irq_->stop_requested()) return;  // "stopped": no failure of the provider's
        // The client's messages name the URL redacted; scrubbed again in case anything else named it.
        const std::string why = fetch::failure_text(ex, e.shown);
        const double delay = e.failed(attempted, why, s.retry_first, s.retry_max);
        const GuideSource& st = e.status;
        if (!st.has_guide) {
            std::lock_guard g(guides_mu_);
            guides_[index] = not_fetched(why);
        }
        log(LogLevel::Warn, "XMLTV guide: " + why + (st.has_guide ? "; its previous guide is kept" : "") +
                                "; retried in " + format_number(delay) + " s");
    }
}

void GuideFetcher::build_loop() {
    for (;;) {
        std::shared_ptr<const std::vector<xmltv::GuideChannel>> wanted;
        uint64_t target = 0;
        {
            std::unique_lock l(mu_);
            build_cv_.wait(l, [&] { return stop_ || build_requested_; });
            if (stop_) return;
            build_requested_ = false;
            wanted = wanted_;
            target = fetched_seq_;
        }
        Published next;
        try {
            auto report = std::make_shared<xmltv::Report>();
            std::string xml;
            {
                std::lock_guard g(guides_mu_);
                xml = xmltv::filter(guides_, *wanted, *report, settings_.limits);
            }
            next.xml_gz = std::make_shared<const std::string>(GzipWriter().compress(xml, *irq_));
            next.xml = std::make_shared<const std::string>(std::move(xml));
            next.report = std::move(report);
        } catch (const Stopped&) {
            return;
        } catch (const std::exception& e) {
            // Out of memory for the document: the previous one stays served.
            log(LogLevel::Error, std::string("guide build failed, the previous guide is kept: ") + e.what());
        }
        {
            std::lock_guard l(mu_);
            if (next.xml) std::swap(published_, next);  // the old document is freed below, outside the lock
            built_seq_ = std::max(built_seq_, target);
        }
        built_cv_.notify_all();
    }
}

}  // namespace hlsrelay
