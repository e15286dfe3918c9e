// Pushing to an HTTP origin: see pusher.hpp.
#include "publish/pusher.hpp"

#include "ingest/http_client.hpp"

#include <hlsrelay/playlist.hpp>
#include <hlsrelay/stream_id.hpp>

#include <algorithm>
#include <cmath>

namespace hlsrelay {

namespace {
using Clock = std::chrono::steady_clock;
constexpr std::size_t kMaxMissing = 4096;  // names remembered as not pushed (a window lists at most 100 per rendition)

// The files a playlist names: its URI lines and the URI="..." attributes of its tags (EXT-X-MAP).
std::vector<std::string> named_files(const std::string& text) {
    std::vector<std::string> names;
    std::size_t pos = 0;
    while (pos < text.size()) {
        std::size_t end = text.find('\n', pos);
        if (end == std::string::npos) end = text.size();
        std::string_view line(text.data() + pos, end - pos);
        pos = end + 1;
        while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
        if (line.empty()) continue;
        if (line.front() != '#') {
            names.emplace_back(line);
            continue;
        }
        const std::size_t uri = line.find("URI=\"");
        if (uri == std::string_view::npos) continue;
        const std::size_t close = line.find('"', uri + 5);
        if (close != std::string_view::npos) names.emplace_back(line.substr(uri + 5, close - uri - 5));
    }
    return names;
}

std::string_view content_type_of_name(std::string_view name) {
    if (name.ends_with(".m3u8")) return "application/vnd.apple.mpegurl";
    if (name.ends_with(".mp4")) return kInitContentType;
    if (name.ends_with(".m4s")) return content_type_of(SegmentFormat::fmp4);
    if (name.ends_with(".vtt")) return content_type_of(SegmentFormat::webvtt);
    return content_type_of(SegmentFormat::ts);
}
}  // namespace

struct Pusher::Core {
    PushSettings settings;
    Log log;
    std::mutex mu;
    std::condition_variable cv;
    std::vector<std::shared_ptr<PushQueue>> queues;  // open ones; a thread takes them in turn
    std::size_t cursor = 0;
    bool stop = false;
    std::vector<std::thread> threads;

    void run();
    void perform(PushQueue& q, PushQueue::Job& job, HttpClient& client, bool& ok, int& status, std::string& error);
};

std::string_view PushQueue::Job::body() const {
    if (kind == Delete) return {};
    if (text) return *text;
    if (init) return init->data;
    if (segment) return segment->bytes();
    return {};
}

Pusher::Pusher(PushSettings settings, Log log) : core_(std::make_shared<Core>()) {
    core_->settings = settings;
    core_->log = std::move(log);
}

Pusher::~Pusher() {
    std::vector<std::shared_ptr<PushQueue>> queues;
    {
        std::lock_guard lock(core_->mu);
        core_->stop = true;
        queues = core_->queues;
        for (const auto& q : queues) {
            q->closed_ = true;
            q->irq_.request_stop();
        }
    }
    core_->cv.notify_all();
    for (auto& t : core_->threads)
        if (t.joinable()) t.join();
    std::lock_guard lock(core_->mu);
    core_->queues.clear();  // a queue still open holds the core: no cycle outlives the pusher
}

std::shared_ptr<PushQueue> Pusher::open(const std::string& base_url, const std::string& id) {
    auto q = std::make_shared<PushQueue>(PushQueue::Key{}, core_, base_url, id);
    std::lock_guard lock(core_->mu);
    q->stats_.url = base_url;
    if (core_->stop) {
        q->closed_ = true;
        return q;
    }
    core_->queues.push_back(q);
    // The pool starts with the first channel that pushes.
    while (core_->threads.size() < static_cast<std::size_t>(kPushThreads))
        core_->threads.emplace_back([core = core_.get()] { core->run(); });
    return q;
}

PushQueue::PushQueue(Key, std::shared_ptr<Pusher::Core> core, std::string base_url, std::string id)
    : core_(std::move(core)), base_url_(std::move(base_url)), id_(std::move(id)) {}

void PushQueue::put_segment(const SegmentPtr& segment, const std::string& prefix) {
    if (!segment || segment->gap) return;
    {
        std::lock_guard lock(core_->mu);
        if (closed_) return;
        if (segment->init && inits_.insert(prefix + segment->init->name()).second) {
            Job init;
            init.name = prefix + segment->init->name();
            init.init = segment->init;
            init.content_type = kInitContentType;
            enqueue_locked(std::move(init));
        }
        Job job;
        job.name = prefix + segment->name();
        job.segment = segment;
        job.content_type = content_type_of(segment->format);
        enqueue_locked(std::move(job));
    }
    core_->cv.notify_all();
}

void PushQueue::put_playlist(const std::string& name, std::shared_ptr<const std::string> text) {
    if (!text) return;
    Job job;
    job.name = name;
    job.names = named_files(*text);
    // A rendition's playlist ("v0/index.m3u8") names its files relative to its own directory.
    if (const std::size_t slash = name.rfind('/'); slash != std::string::npos)
        for (std::string& f : job.names) f = name.substr(0, slash + 1) + f;
    job.text = std::move(text);
    job.content_type = "application/vnd.apple.mpegurl";
    {
        std::lock_guard lock(core_->mu);
        if (closed_) return;
        // At most two versions of a playlist wait: the older keeps its place (so a backlog still moves
        // the origin's playlist on as it drains), the newer is replaced by each newer one, queued last.
        int versions = 0;
        auto newer = pending_.end();
        for (auto it = pending_.begin(); it != pending_.end(); ++it)
            if (it->playlist() && it->name == name) {
                ++versions;
                newer = it;
            }
        if (versions >= 2) {
            pending_bytes_ -= static_cast<int64_t>(newer->body().size());
            pending_.erase(newer);
        }
        enqueue_locked(std::move(job));
    }
    core_->cv.notify_all();
}

void PushQueue::remove_segment(const Segment& segment, const std::string& prefix) {
    if (segment.gap) return;
    const std::string name = prefix + segment.name();
    {
        std::lock_guard lock(core_->mu);
        if (closed_ || missing_.count(name)) return;  // never reached the origin
        for (auto it = pending_.begin(); it != pending_.end(); ++it)
            if (it->media() && it->name == name) {  // too late to be worth sending
                pending_bytes_ -= static_cast<int64_t>(it->body().size());
                pending_.erase(it);
                ++stats_.dropped;
                mark_missing_locked(name);
                return;
            }
        Job job;
        job.kind = Job::Delete;
        job.name = name;
        enqueue_locked(std::move(job));
    }
    core_->cv.notify_all();
}

void PushQueue::enqueue_locked(Job job) {
    pending_bytes_ += static_cast<int64_t>(job.body().size());
    pending_.push_back(std::move(job));
    trim_locked();
}

// Over a limit: the oldest pending segment (or init section) goes first, then the oldest deletion.
// Playlists stay (two per name at most); a dropped file is marked missing, which withholds every
// playlist naming it, so the origin never lists a file it does not have.
void PushQueue::trim_locked() {
    const PushSettings& s = core_->settings;
    while (static_cast<int64_t>(pending_.size()) > s.max_queue_items || pending_bytes_ > s.max_queue_bytes) {
        auto victim = std::find_if(pending_.begin(), pending_.end(), [](const Job& j) { return j.media(); });
        if (victim == pending_.end())
            victim = std::find_if(pending_.begin(), pending_.end(), [](const Job& j) { return j.kind == Job::Delete; });
        if (victim == pending_.end()) break;
        if (victim->media()) mark_missing_locked(victim->name);
        if (victim->init) inits_.erase(victim->name);  // queued again with the next segment that needs it
        pending_bytes_ -= static_cast<int64_t>(victim->body().size());
        pending_.erase(victim);
        ++stats_.dropped;
    }
}

void PushQueue::mark_missing_locked(const std::string& name) {
    if (!missing_.insert(name).second) return;
    missing_order_.push_back(name);
    while (missing_order_.size() > kMaxMissing) {
        missing_.erase(missing_order_.front());
        missing_order_.pop_front();
    }
}

void PushQueue::close() {
    std::unique_lock lock(core_->mu);
    closed_ = true;
    pending_.clear();
    pending_bytes_ = 0;
    irq_.request_stop();
    core_->cv.wait(lock, [this] { return !busy_; });
    auto& qs = core_->queues;
    qs.erase(std::remove_if(qs.begin(), qs.end(), [this](const std::shared_ptr<PushQueue>& q) { return q.get() == this; }),
             qs.end());
}

PushStatus PushQueue::status() const {
    std::lock_guard lock(core_->mu);
    PushStatus s = stats_;
    s.queued = static_cast<int64_t>(pending_.size()) + (busy_ ? 1 : 0);
    s.queued_bytes = pending_bytes_ + inflight_bytes_;
    return s;
}

void Pusher::Core::perform(PushQueue& q, PushQueue::Job& job, HttpClient& client, bool& ok, int& status,
                           std::string& error) {
    FetchSpec spec;
    spec.method = job.kind == PushQueue::Job::Put ? "PUT" : "DELETE";
    spec.body = job.body();
    spec.content_type = job.content_type.empty() ? std::string(content_type_of_name(job.name)) : job.content_type;
    spec.what = "push";
    spec.max_bytes = kMaxPushResponseBytes;
    spec.limit_name = "the push response cap";
    spec.read_timeout = settings.read_timeout;
    spec.deadline = settings.deadline;
    spec.deadline_name = "push deadline";
    spec.max_redirects = 0;
    const std::string url = q.base_url_ + "/" + job.name;
    try {
        client.send(url, spec, q.irq_);
        ok = true;
    } catch (const av::SourceError& e) {
        status = e.http_status();
        // Already gone is what a DELETE wants.
        ok = job.kind == PushQueue::Job::Delete && (status == 404 || status == 410);
        if (!ok) error = spec.method + " " + job.name + ": " + e.what();
    } catch (const std::exception& e) {
        ok = false;
        error = spec.method + " " + job.name + ": " + e.what();
    }
}

void Pusher::Core::run() {
    HttpClient client;  // one keep-alive connection per thread (usually one origin for all)
    std::unique_lock lock(mu);
    while (!stop) {
        const auto now = Clock::now();
        std::shared_ptr<PushQueue> q;
        auto next = Clock::time_point::max();
        const std::size_t n = queues.size();
        for (std::size_t i = 0; i < n; ++i) {
            const auto& c = queues[(cursor + i) % n];
            if (c->busy_ || c->pending_.empty()) continue;
            const auto when = c->pending_.front().not_before;
            if (when <= now) {
                q = c;
                cursor = (cursor + i + 1) % n;
                break;
            }
            next = std::min(next, when);
        }
        if (!q) {
            if (next == Clock::time_point::max()) cv.wait(lock);
            else cv.wait_until(lock, next);
            continue;
        }
        PushQueue::Job job = std::move(q->pending_.front());
        q->pending_.pop_front();
        const auto size = static_cast<int64_t>(job.body().size());
        q->pending_bytes_ -= size;
        if (job.playlist() && std::any_of(job.names.begin(), job.names.end(),
                                          [&](const std::string& f) { return q->missing_.count(f) > 0; })) {
            ++q->stats_.withheld;  // names a file the origin does not have: the next one will do
            // A master naming this playlist must wait too, unless an earlier version is there.
            if (!q->playlists_pushed_.count(job.name)) q->mark_missing_locked(job.name);
            continue;
        }
        q->busy_ = true;
        q->inflight_bytes_ = size;
        lock.unlock();
        bool ok = false;
        int status = 0;
        std::string error;
        perform(*q, job, client, ok, status, error);
        std::string log_message;
        LogLevel log_level = LogLevel::Warn;
        lock.lock();
        q->busy_ = false;
        q->inflight_bytes_ = 0;
        if (!q->closed_) {
            if (ok) {
                ++q->stats_.pushed;
                if (job.playlist()) q->playlists_pushed_.insert(job.name);
                if (q->missing_.erase(job.name)) {
                    auto& order = q->missing_order_;
                    order.erase(std::remove(order.begin(), order.end(), job.name), order.end());
                }
                if (q->failing_) {
                    q->failing_ = false;
                    log_level = LogLevel::Info;
                    log_message = "pushing to " + redact_url(q->base_url_) + " works again";
                }
            } else {
                q->stats_.last_error = error;
                const bool retriable = status == 0 || status >= 500 || status == 408 || status == 429;
                if (retriable && ++job.attempts < settings.attempts) {
                    ++q->stats_.retries;
                    const double wait = std::min(settings.retry_max, settings.retry_first * std::pow(2.0, job.attempts - 1));
                    job.not_before = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(wait));
                    q->pending_bytes_ += size;
                    q->pending_.push_front(std::move(job));  // its place: nothing after it may overtake it
                } else {
                    ++q->stats_.failed;
                    if (job.media() || (job.playlist() && !q->playlists_pushed_.count(job.name)))
                        q->mark_missing_locked(job.name);
                    if (job.init) q->inits_.erase(job.name);
                    if (!q->failing_) {
                        q->failing_ = true;
                        log_message = "pushing to the origin fails (counted in status push.failed): " + error;
                    }
                }
            }
        }
        cv.notify_all();
        if (!log_message.empty() && log) {
            const std::string id = q->id_;
            lock.unlock();
            log(log_level, id, scrub_urls(log_message));
            lock.lock();
        }
    }
}

}  // namespace hlsrelay
