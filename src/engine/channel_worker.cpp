// One running channel: see channel_worker.hpp.
#include "engine/channel_worker.hpp"

#include "cut/ts_remux.hpp"

#include "ingest/source.hpp"

#include <hlsrelay/stream_id.hpp>

#include <algorithm>
#include <map>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <set>

namespace hlsrelay {

namespace {
std::string now_iso() { return format_date_time(SystemClock::now()); }

// A running channel whose newest segment is older than this many of its segment intervals (the
// target duration, or the source's cadence when it delivers segments in bursts, an HLS source with
// longer segments than ours) is "stalled", and never under kStalledMinSeconds.
constexpr double kStalledIntervals = 3;
constexpr double kStalledMinSeconds = 5;
// Publications closer than this belong to one burst (one source segment cut into several of ours);
// the median media time of the last kCadenceSamples bursts is the source's cadence.
constexpr double kBurstGapSeconds = 0.25;
constexpr std::size_t kCadenceSamples = 15;
// A presentation runs at most this many renditions (a hostile master may list thousands).
constexpr std::size_t kMaxRenditions = 24;
// The largest subtitle segment passed through (WebVTT cues of a few seconds are a few kB).
constexpr std::size_t kMaxSubtitleBytes = std::size_t{1} << 20;

double seconds_between(SteadyClock::time_point a, SteadyClock::time_point b) {
    return std::chrono::duration<double>(b - a).count();
}

std::string format_seconds(double s) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f s", s);
    return buf;
}
// A published segment as a reader gets it: its bytes shared (aliasing: they keep the segment alive),
// from its fd-backed buffer when it has one.
Resource segment_resource(const SegmentPtr& segment) {
    Resource r{nullptr, content_type_of(segment->format), true};
    if (segment->file)
        r.file = std::shared_ptr<const SegmentBytes>(segment, segment->file.get());
    else
        r.data = std::shared_ptr<const std::string>(segment, &segment->data);
    return r;
}
}  // namespace

ChannelWorker::ChannelWorker(ChannelConfig channel, HlsSettings hls, const EngineSettings& engine,
                             int64_t first_sequence, std::shared_ptr<BufferPool> pool, Emit emit, Log log)
    : channel_(std::move(channel)), hls_(hls), engine_(engine), pool_(std::move(pool)), emit_(std::move(emit)),
      log_(std::move(log)),
      window_(hls.max_segments), next_sequence_(first_sequence) {
    next_part_ = first_sequence > 0 && first_sequence < INT64_MAX / 1000 ? first_sequence * 1000 : 0;
    failover_ = FailoverPolicy(channel_.urls.size(), engine_.failover);
    if (!engine_.hls_dir.empty())
        mirror_ = std::make_unique<DiskMirror>(std::filesystem::path(engine_.hls_dir) / channel_.id);
}

ChannelWorker::ChannelWorker(ChannelConfig channel, HlsSettings hls, const EngineSettings& engine,
                             int64_t first_sequence, std::shared_ptr<BufferPool> pool, Emit emit, Log log,
                             RenditionRole role)
    : ChannelWorker(std::move(channel), hls, engine, first_sequence, std::move(pool), std::move(emit), std::move(log)) {
    role_ = std::move(role);
    role_url_ = role_->url;
    failover_ = FailoverPolicy(1, engine_.failover);  // one media playlist: reconnects only (the presentation fails over)
    if (role_->kind == RenditionKind::subtitles) format_ = SegmentFormat::webvtt;
    if (!engine_.hls_dir.empty())
        mirror_ = std::make_unique<DiskMirror>(std::filesystem::path(engine_.hls_dir) / channel_.id / role_->id);
}

ChannelWorker::~ChannelWorker() { stop(); }

std::vector<std::shared_ptr<ChannelWorker>> ChannelWorker::children() const {
    std::lock_guard lock(children_mu_);
    return children_;
}

void ChannelWorker::start() {
    // No ordering lock: nothing else changes the state before the thread exists (the housekeeping
    // thread only turns running into stalled and back), and the caller may be inside an event callback
    // of another channel, holding that subscriber's call lock.
    change_state(ChannelState::Starting);
    thread_ = std::thread([this] { run(); });
    if (!role_ && channel_.urls.size() > 1 && engine_.failover.failback_after > 0)
        probe_thread_ = std::thread([this] { probe_loop(); });
}

void ChannelWorker::request_stop() {
    {
        std::lock_guard lock(sleep_mu_);
        stopping_ = true;
        // Under the lock: take_leave() re-arms the source's interrupter under it too.
        interrupter_.request_stop();
        probe_interrupter_.request_stop();
    }
    sleep_cv_.notify_all();
    {
        std::lock_guard lock(ready_mu_);
        finished_ = true;
    }
    ready_cv_.notify_all();
    std::vector<std::shared_ptr<ChannelWorker>> kids;
    {
        std::lock_guard lock(children_mu_);
        stop_children_ = true;
        kids = children_;
    }
    for (const auto& kid : kids) kid->request_stop();
}

bool ChannelWorker::wait_ready(SteadyClock::time_point deadline) {
    std::unique_lock lock(ready_mu_);
    ready_cv_.wait_until(lock, deadline, [this] { return ready_ || finished_; });
    return ready_;
}

void ChannelWorker::stop() {
    request_stop();
    if (thread_.joinable()) thread_.join();
    if (probe_thread_.joinable()) probe_thread_.join();
    for (const auto& kid : children()) kid->stop();  // each empties its window and directory
    if (push_ && !role_) push_->close();  // pending uploads dropped, one in flight abandoned
    std::vector<SegmentPtr> gone;
    {
        std::lock_guard lock(out_mu_);
        gone = window_.clear();
        media_playlist_.reset();
        master_playlist_.reset();
    }
    if (mirror_) mirror_->remove_all();
}

bool ChannelWorker::sleep(double seconds) {
    std::unique_lock lock(sleep_mu_);
    if (seconds > 0)
        sleep_cv_.wait_for(lock, std::chrono::duration<double>(seconds), [this] { return stopping_; });
    return !stopping_;
}

bool ChannelWorker::stopping() {
    std::lock_guard lock(sleep_mu_);
    return stopping_;
}

bool ChannelWorker::source_sleep(double seconds) {
    std::unique_lock lock(sleep_mu_);
    if (seconds > 0)
        sleep_cv_.wait_for(lock, std::chrono::duration<double>(seconds), [this] { return stopping_ || leaving_; });
    return !stopping_ && !leaving_;
}

void ChannelWorker::maybe_leave() {
    if (role_) return;
    {
        std::lock_guard lock(failover_mu_);
        failover_.on_delivered();  // the URL playing works: its failures are forgotten
        if (failover_.active() == 0) {  // the primary plays already (a fail-back the worker took itself)
            failback_pending_ = false;
            return;
        }
    }
    if (!failback_pending_.load()) return;
    {
        std::lock_guard lock(sleep_mu_);
        if (leaving_ || stopping_) return;
        leaving_ = true;
        interrupter_.request_stop();  // the source returns at its next check, the segment just published is whole
    }
    sleep_cv_.notify_all();
}

bool ChannelWorker::take_leave() {
    std::lock_guard lock(sleep_mu_);
    if (!leaving_ || repoint_) return false;  // a rendition's repoint is taken by take_repoint()
    leaving_ = false;
    failback_pending_ = false;
    if (!stopping_) interrupter_.reset();  // request_stop() stops it under this lock
    return true;
}

void ChannelWorker::repoint(std::string url, std::string parent, int64_t generation, std::string why) {
    {
        std::lock_guard lock(sleep_mu_);
        if (stopping_) return;
        repoint_ = Repoint{std::move(url), std::move(parent), std::move(why), generation};
        leaving_ = true;
        interrupter_.request_stop();  // the source returns at its next check
    }
    sleep_cv_.notify_all();
}

std::optional<ChannelWorker::Repoint> ChannelWorker::take_repoint() {
    std::lock_guard lock(sleep_mu_);
    if (!repoint_) return std::nullopt;
    std::optional<Repoint> r = std::move(repoint_);
    repoint_.reset();
    leaving_ = false;
    if (!stopping_) interrupter_.reset();  // request_stop() stops it under this lock
    return r;
}

bool ChannelWorker::repoint_pending() {
    std::lock_guard lock(sleep_mu_);
    return repoint_.has_value();
}

bool ChannelWorker::apply_repoint(const Repoint& r) {
    pin_generation_ = r.generation;
    history_.forget_positions();
    {
        std::lock_guard lock(status_mu_);
        role_url_ = r.url;
    }
    if (!r.url.empty()) {
        pin_.url = r.url;
        pin_.parent = r.parent;
        log_(LogLevel::Info, channel_.id, "the presentation switched masters: now reading " + redact_url(r.url));
        return !stopping();
    }
    // No match in the master the presentation follows now: nothing to publish until the next switch.
    set_state(ChannelState::Reconnecting);
    set_error(r.why, true);
    while (!stopping() && !repoint_pending()) source_sleep(3600);
    return !stopping();
}

void ChannelWorker::probe_loop() {
    // A SourceContext of its own: the primary's URL, the probe's interrupter, no segmenter output.
    Segmenter unused(hls_.segment_duration, [](CutSegment&&) {});
    std::atomic<int64_t> bytes{0};
    ProbeMemory memory;
    int64_t period = -1;  // failovers() when `memory` was started: a new backup period starts it over
    for (;;) {
        auto now = SteadyClock::now();
        bool due;
        std::optional<SteadyClock::time_point> next;
        int64_t failovers;
        {
            std::lock_guard lock(failover_mu_);
            due = failover_.probe_due(now);
            next = failover_.next_probe(now);
            failovers = failover_.failovers();
        }
        {
            std::unique_lock lock(sleep_mu_);
            if (stopping_) return;
            if (!due) {  // polled at least every second: a failover starts the probing
                auto wait = std::chrono::duration_cast<SteadyClock::duration>(std::chrono::seconds(1));
                if (next) wait = std::clamp(*next - now, SteadyClock::duration(std::chrono::milliseconds(10)), wait);
                sleep_cv_.wait_for(lock, wait, [this] { return stopping_; });
                continue;
            }
        }
        if (failovers != period) {
            memory = ProbeMemory{};
            period = failovers;
        }
        SourceContext ctx = source_context(unused, channel_.urls.front(), &probe_interrupter_, &bytes);
        ctx.history = nullptr;
        ctx.sleep = [this](double seconds) { return sleep(seconds); };
        ctx.report = [](const std::string&) {};
        ctx.note = [](const std::string&) {};
        std::string why;
        const bool healthy = probe_source(ctx, memory, why);
        if (stopping()) return;
        bool failback;
        {
            std::lock_guard lock(failover_mu_);
            now = SteadyClock::now();
            if (failover_.failovers() != failovers) continue;  // the worker switched meanwhile
            failover_.on_probe(now, healthy);
            failback = failover_.failback_due(now);
        }
        log_(LogLevel::Debug, channel_.id,
             "probe of the primary source: " + (healthy ? std::string("healthy") : "not healthy: " + why));
        if (failback && !failback_pending_.exchange(true))
            log_(LogLevel::Info, channel_.id, "the primary source is healthy again: returning to it after the next segment");
    }
}

void ChannelWorker::set_state(ChannelState state) {
    std::lock_guard order(transition_mu_);
    change_state(state);
}

void ChannelWorker::change_state(ChannelState state) {
    {
        std::lock_guard lock(status_mu_);
        if (state_ == state) return;
        const auto now = SteadyClock::now();
        if (state == ChannelState::Running) {
            if (state_ != ChannelState::Stalled) running_since_ = now;
            healthy_since_ = now;
        }
        state_ = state;
    }
    if (state == ChannelState::Failed || state == ChannelState::Stopped) {
        {
            std::lock_guard lock(ready_mu_);
            finished_ = true;
        }
        ready_cv_.notify_all();
    }
    flush_warnings(true);
    Event e;
    e.type = EventType::StateChanged;
    e.channel = channel_.id;
    e.state = state;
    emit_(e);
}

void ChannelWorker::transition(ChannelState from, ChannelState to, const std::function<bool()>& still) {
    std::lock_guard order(transition_mu_);
    double age;
    {
        std::lock_guard lock(status_mu_);
        if (state_ != from || (still && !still())) return;
        age = seconds_between(last_publish_, SteadyClock::now());
        state_ = to;
        if (to == ChannelState::Running) healthy_since_ = SteadyClock::now();
    }
    flush_warnings(true);
    if (to == ChannelState::Stalled) warn("stalled: no new segment for " + format_seconds(age));
    Event e;
    e.type = EventType::StateChanged;
    e.channel = channel_.id;
    e.state = to;
    emit_(e);
}

void ChannelWorker::warn(const std::string& message) {
    const auto now = SteadyClock::now();
    std::string line;
    {
        std::lock_guard lock(warn_mu_);
        warn_latest_ = now;
        if (warn_armed_) {
            warn_armed_ = false;
            warn_repeats_ = 0;
            warn_varied_ = false;
            warn_since_ = now;
            warn_first_ = line = message;
        } else {
            ++warn_repeats_;
            if (message != warn_first_) warn_varied_ = true;
            warn_last_ = message;
        }
    }
    if (!line.empty()) log_(LogLevel::Warn, channel_.id, line);
    else flush_warnings(false);  // a summary if the interval is over
}

// rearm: a state change (the summary now, the next warning in full); otherwise only a summary that
// is due, or re-arming after a quiet interval.
void ChannelWorker::flush_warnings(bool rearm) {
    const auto now = SteadyClock::now();
    const double interval = engine_.error_clear_after;
    std::string line;
    {
        std::lock_guard lock(warn_mu_);
        const bool due = seconds_between(warn_since_, now) >= interval;
        if (warn_repeats_ > 0 && (rearm || due)) {
            const std::string span = format_seconds(seconds_between(warn_since_, now));
            line = warn_varied_ ? std::to_string(warn_repeats_) + " more warnings in " + span + ", the last: " + warn_last_
                                : warn_last_ + " (repeated " + std::to_string(warn_repeats_) + " times in " + span + ")";
            warn_repeats_ = 0;
            warn_varied_ = false;
            warn_first_ = warn_last_;
            warn_since_ = now;
        } else if (warn_repeats_ == 0 && !warn_armed_ && seconds_between(warn_latest_, now) >= interval) {
            warn_armed_ = true;  // quiet for a whole interval: the next warning is news again
        }
        if (rearm) warn_armed_ = true;
    }
    if (!line.empty()) log_(LogLevel::Warn, channel_.id, line);
}

void ChannelWorker::count_failure() {
    std::lock_guard lock(status_mu_);
    ++reconnect_attempts_;
    ++outage_attempts_;
    if (!in_outage_) {
        in_outage_ = true;
        outage_since_ = SteadyClock::now();
        ++reconnects_;
    }
}

void ChannelWorker::expire_error(SteadyClock::time_point now) {
    std::lock_guard lock(status_mu_);
    const double hold = engine_.error_clear_after;
    if (last_error_.empty() || state_ != ChannelState::Running) return;
    if (seconds_between(last_error_time_, now) < hold || seconds_between(healthy_since_, now) < hold) return;
    previous_error_ = std::move(last_error_);
    previous_error_at_ = std::move(last_error_at_);
    last_error_.clear();
    last_error_at_.clear();
}

void ChannelWorker::set_error(const std::string& message, bool emit_event) {
    {
        std::lock_guard lock(status_mu_);
        last_error_ = message;
        last_error_at_ = now_iso();
        last_error_time_ = SteadyClock::now();
    }
    warn(message);
    if (emit_event) {
        Event e;
        e.type = EventType::Error;
        e.channel = channel_.id;
        e.message = message;
        emit_(e);
    }
}

void ChannelWorker::add_source_note(const std::string& note) {
    {
        std::lock_guard lock(out_mu_);
        if (std::find(source_notes_.begin(), source_notes_.end(), note) != source_notes_.end()) return;
        if (source_notes_.size() >= 16) return;
        source_notes_.push_back(note);
        if (std::find(notes_.begin(), notes_.end(), note) == notes_.end()) notes_.push_back(note);
    }
    log_(LogLevel::Warn, channel_.id, note);
}

void ChannelWorker::run() {
    Segmenter segmenter(hls_.segment_duration, [this, &segmenter](CutSegment&& cut) { publish(std::move(cut), segmenter); });
    segmenter.set_buffer_pool(pool_.get());
    segmenter.set_container(hls_.container);
    // LL-HLS: parts for a channel's own media and for every audio and video rendition of a
    // presentation (its subtitles come whole); the presentation's worker itself cuts nothing.
    if (hls_.low_latency && !(role_ && role_->kind == RenditionKind::subtitles)) {
        // A part is never longer than a segment (PART-TARGET <= the target duration).
        const double part = std::min(hls_.part_duration, hls_.segment_duration);
        {
            std::lock_guard lock(out_mu_);
            part_target_ = part;
        }
        segmenter.set_parts(part, [this, &segmenter](CutPart&& p) { publish_part(std::move(p), segmenter); });
    }
    if (role_) {  // a rendition of a presentation: aligned on the source's segments and numbering
        segmenter.set_source_aligned(true);
        segmenter.set_shared_timeline([map = role_->map](int64_t proposed, int64_t source_dts, int64_t floor) {
            return map->timeline_offset(proposed, source_dts, floor);
        });
        pin_.url = role_->url;
        pin_.parent = role_->parent;
        pin_.aligned = true;
        pin_.start = [this](int64_t live, int64_t first, int64_t last) { return aligned_start(live, first, last); };
        pin_.continues = [this] { return continues_; };
        pin_.restarted = [this](int64_t live, int64_t first, int64_t last) { return aligned_restart(live, first, last); };
        pin_.begin = [this](int64_t sequence, double duration) {
            source_sequence_ = sequence;
            source_duration_ = duration;
            source_published_ = false;
        };
        pin_.end = [this, &segmenter](int64_t sequence, double duration) {
            if (!source_published_) publish_gap(sequence + offset_, duration, segmenter);
            source_sequence_ = -1;
        };
        if (role_->kind == RenditionKind::subtitles)
            pin_.passthrough = [this, &segmenter](std::string&& data, double duration, const std::optional<std::string>& date) {
                publish_subtitle(std::move(data), duration, date, segmenter);
            };
    }
    const std::vector<std::string> urls = role_ ? std::vector<std::string>{role_->url} : channel_.urls;
    std::mt19937 rng(std::random_device{}());
    int failures = 0;  // in a row on the URL tried: its backoff
    while (!stopping()) {
        if (role_) {  // the presentation switched masters: this rendition's new media playlist
            if (std::optional<Repoint> r = take_repoint()) {
                if (!apply_repoint(*r)) break;
                failures = 0;
                continue;
            }
        }
        if (!role_ && failback_pending_.exchange(false)) {  // due while the backup was failing: no need to reconnect it
            std::lock_guard lock(failover_mu_);
            if (failover_.active() != 0 && failover_.failback_due(SteadyClock::now())) {
                failover_.fail_back();
                history_.forget_positions();
                std::lock_guard status(status_mu_);
                url_index_ = 0;
            }
        }
        const std::size_t index = [this] { std::lock_guard l(failover_mu_); return failover_.active(); }();
        const std::string url = role_ ? pin_.url : urls[index % urls.size()];
        const int64_t published_before = [this] { std::lock_guard l(out_mu_); return segments_published_; }();
        std::string error;
        bool is_permanent = false, is_hard = false;
        try {
            if (role_) {
                run_source(segmenter, url, &pin_);
            } else if (is_hls_url(url)) {
                FirstLoad first;
                std::optional<Plan> p = plan(segmenter, url, &first);
                if (p && !p->roles.empty()) {
                    {
                        std::lock_guard lock(failover_mu_);
                        playing_ = index;
                    }
                    run_presentation(std::move(*p), segmenter);  // then follow_presentation() below
                    break;
                }
                run_source(segmenter, url, p ? &p->single : nullptr, &first);
            } else {
                run_source(segmenter, url, nullptr);
            }
        } catch (const av::SourceError& e) {
            error = e.what();
            is_permanent = e.permanent();
            const int status = e.http_status();
            is_hard = status == 401 || status == 403 || status == 404 || status == 410;
        } catch (const std::exception& e) {
            error = std::string("internal error: ") + e.what();
        }
        if (stopping()) break;
        // What was cut before the break is published: a playlist never loses what arrived. The next
        // connection opens its input with a discontinuity (a fail-back's too).
        try {
            segmenter.flush();
        } catch (const std::exception& e) {
            log_(LogLevel::Warn, channel_.id, std::string("flush failed: ") + e.what());
        }
        if (role_ && repoint_pending()) {  // left for another master: what that flush cut of the old one is not published
            source_sequence_ = -1;
            failures = 0;
            continue;
        }
        const bool left = take_leave();  // a fail-back: the backup was left on purpose (maybe by that flush)
        const int64_t published_after = [this] { std::lock_guard l(out_mu_); return segments_published_; }();
        const bool delivered = published_after > published_before;
        if (left) {
            {
                std::lock_guard lock(failover_mu_);
                if (delivered) failover_.on_delivered();
                failover_.fail_back();
                std::lock_guard status(status_mu_);
                url_index_ = failover_.active();
            }
            log_(LogLevel::Info, channel_.id, "leaving backup source " + std::to_string(index) + " for the primary " +
                                                  redact_url(urls.front()));
            history_.forget_positions();  // the primary starts at its live edge: the backup played meanwhile
            failures = 0;
            continue;  // at once: the primary answered healthy probes for failback_after
        }
        if (error.empty()) error = "the source stopped without an error";
        if (delivered) failures = 0;  // it worked for a while: start backoff over
        ++failures;
        count_failure();
        if (role_ && role_->failed) role_->failed(url, is_permanent, delivered, is_hard);  // the presentation decides
        FailoverPolicy::Decision d;
        {
            std::lock_guard lock(failover_mu_);
            d = failover_.on_failure(SteadyClock::now(), is_permanent, delivered, is_hard);
            std::lock_guard status(status_mu_);
            url_index_ = d.index;
        }
        if (d.switched) failback_pending_ = false;  // a fail-back due now was taken by on_failure
        // The state first: the error is then the first warning of the new state (see warn()).
        if (d.all_permanent) {
            set_state(ChannelState::Failed);  // no URL can ever work: wait for stop
            set_error(error, true);
            if (role_) {  // ... or for the presentation's switch to another master
                while (!stopping() && !repoint_pending()) source_sleep(3600);
                if (stopping()) break;
                continue;
            }
            sleep(1e9);
            break;
        }
        set_state(ChannelState::Reconnecting);
        set_error(error, true);
        double delay;
        if (d.switched) {  // another URL: try it soon (its own failures have their own count)
            log_(LogLevel::Info, channel_.id, "failing over from source " + std::to_string(index) + " to source " +
                                                  std::to_string(d.index) + " (" + redact_url(urls[d.index]) + ")");
            failures = 0;
            history_.forget_positions();
            delay = engine_.reconnect_min;
        } else {
            delay = std::min(engine_.reconnect_max, engine_.reconnect_min * std::pow(2.0, std::min(failures - 1, 20)));
        }
        delay *= std::uniform_real_distribution<double>(0.75, 1.25)(rng);
        // Every URL cools down: the one whose cooldown ends first is tried then, but no later than
        // reconnect_max from now (a channel whose every source failed comes back within reconnect_max
        // of the provider's return, as a channel without backups does; cooldowns only order the URLs).
        // Never a busy loop: the wait is at least the reconnect delay; stop cuts it short.
        delay = std::max(delay, std::min(d.wait, engine_.reconnect_max));
        if (role_) {  // a rendition: also cut short by the presentation's switch (repoint())
            source_sleep(delay);
            if (stopping()) break;
        } else if (!sleep(delay)) {
            break;
        }
    }
    if (!children().empty()) follow_presentation(segmenter);  // a presentation: until stop() (its children run on)
    set_state(ChannelState::Stopped);
}

SourceContext ChannelWorker::source_context(Segmenter& segmenter, const std::string& url, av::Interrupter* irq,
                                            std::atomic<int64_t>* bytes) {
    return SourceContext{.channel = channel_,
                         .url = url,
                         .interrupter = irq ? *irq : interrupter_,
                         .segmenter = segmenter,
                         .bytes_in = bytes ? *bytes : bytes_in_,
                         .pool = pool_.get(),
                         .read_timeout = engine_.read_timeout,
                         .stall_timeout = engine_.stall_timeout,
                         .live_start_segments = engine_.live_start_segments,
                         .align_reloads = engine_.align_reloads,
                         .limits = channel_.limits.apply(engine_.limits),
                         .segment_duration = hls_.segment_duration,
                         .sleep = [this](double s) { return source_sleep(s); },
                         .report = [this](const std::string& m) { set_error(m, true); },
                         .note = [this](const std::string& m) { add_source_note(m); },
                         .history = &history_,
                         .pinned = nullptr};
}

void ChannelWorker::run_source(Segmenter& segmenter, const std::string& url, const PinnedPlaylist* pin, const FirstLoad* first) {
    SourceContext ctx = source_context(segmenter, url);
    ctx.pinned = pin;
    ctx.first = pin ? nullptr : first;
    log_(LogLevel::Info, channel_.id, "opening " + redact_url(pin ? pin->url : url));
    if (pin || is_hls_url(url)) run_hls_source(ctx);
    else run_generic_source(ctx);
}

std::optional<ChannelWorker::Plan> ChannelWorker::plan(Segmenter& segmenter, const std::string& url, FirstLoad* media) {
    SourceContext ctx = source_context(segmenter, url);
    std::string final_url;
    const auto began = std::chrono::steady_clock::now();
    m3u8::Playlist playlist = fetch_hls_playlist(ctx, url, url, final_url);
    if (!playlist.is_master()) {
        if (media) *media = FirstLoad{std::move(playlist.media()), final_url, began};
        return std::nullopt;
    }
    const m3u8::MasterPlaylist& master = playlist.master();
    if (master.variants.empty()) throw av::SourceError("master playlist " + redact_url(url) + " has no variants");
    std::string problem;
    std::optional<RenditionSelection> selection = parse_rendition_selection(hls_.renditions, &problem);
    if (!selection) {
        add_source_note("renditions: " + problem + "; every rendition is kept");
        selection = RenditionSelection{};
    }
    std::vector<VariantFacts> facts;
    for (const auto& v : master.variants) facts.push_back({v.bandwidth, v.height});
    std::vector<std::size_t> kept = select_variants(facts, *selection);
    auto attribute = [](const std::map<std::string, std::string>& a, const char* name) {
        auto it = a.find(name);
        return it == a.end() ? std::string() : it->second;
    };

    Plan plan;
    plan.master_url = final_url;
    plan.independent = master.independent_segments;
    std::map<std::string, int> role_of_uri;  // one child per media playlist, however many entries name it
    std::size_t counts[3] = {0, 0, 0};
    bool dropped = false;
    auto add_role = [&](RenditionKind kind, const std::string& uri, RenditionRole role) -> int {
        if (auto it = role_of_uri.find(uri); it != role_of_uri.end()) return it->second;
        if (plan.roles.size() >= kMaxRenditions) {
            dropped = true;
            return -1;
        }
        role.kind = kind;
        role.id = rendition_id(kind, counts[static_cast<int>(kind)]++);
        role.url = uri;
        role.parent = final_url;
        plan.roles.push_back(std::move(role));
        return role_of_uri[uri] = static_cast<int>(plan.roles.size() - 1);
    };
    std::vector<std::string> audio_groups, subtitle_groups, caption_groups;
    auto remember = [](std::vector<std::string>& groups, const std::string& g) {
        if (!g.empty() && std::find(groups.begin(), groups.end(), g) == groups.end()) groups.push_back(g);
    };
    int top_role = -1;
    int64_t top_bandwidth = -1;
    for (std::size_t k : kept) {
        const m3u8::Variant& v = master.variants[k];
        RenditionRole role;
        role.bandwidth = v.bandwidth;
        role.codecs = v.codecs;
        role.width = v.width;
        role.height = v.height;
        const int index = add_role(RenditionKind::video, v.uri, std::move(role));
        if (index < 0 || (index < static_cast<int>(plan.child_of_entry.size()) &&
                          std::find(plan.child_of_entry.begin(), plan.child_of_entry.end(), index) != plan.child_of_entry.end()))
            continue;  // dropped, or a variant listed twice
        PresentationEntry e;
        e.kind = RenditionKind::video;
        e.id = plan.roles[static_cast<std::size_t>(index)].id;
        e.bandwidth = v.bandwidth;
        e.average_bandwidth = v.average_bandwidth.value_or(0);
        e.codecs = v.codecs;
        e.width = v.width;
        e.height = v.height;
        e.frame_rate = v.frame_rate;
        e.audio_group = v.audio_group;
        e.subtitles_group = attribute(v.attributes, "SUBTITLES");
        e.closed_captions = attribute(v.attributes, "CLOSED-CAPTIONS");
        remember(audio_groups, e.audio_group);
        remember(subtitle_groups, e.subtitles_group);
        if (e.closed_captions != "NONE") remember(caption_groups, e.closed_captions);
        plan.entries.push_back(std::move(e));
        plan.child_of_entry.push_back(index);
        if (v.bandwidth > top_bandwidth) {
            top_bandwidth = v.bandwidth;
            top_role = index;
        }
    }
    bool separate = false;  // an audio or subtitle rendition with its own playlist
    for (const auto& r : master.renditions) {
        RenditionKind kind;
        const std::vector<std::string>* groups;
        if (r.type == "AUDIO") kind = RenditionKind::audio, groups = &audio_groups;
        else if (r.type == "SUBTITLES") kind = RenditionKind::subtitles, groups = &subtitle_groups;
        else if (r.type == "CLOSED-CAPTIONS") kind = RenditionKind::closed_captions, groups = &caption_groups;
        else continue;  // TYPE=VIDEO (other angles) is not mirrored
        if (std::find(groups->begin(), groups->end(), r.group_id) == groups->end()) continue;
        PresentationEntry e;
        e.kind = kind;
        e.group = r.group_id;
        e.name = r.name;
        e.language = r.language;
        e.assoc_language = attribute(r.attributes, "ASSOC-LANGUAGE");
        e.channels = attribute(r.attributes, "CHANNELS");
        e.characteristics = attribute(r.attributes, "CHARACTERISTICS");
        e.instream_id = attribute(r.attributes, "INSTREAM-ID");
        e.is_default = r.is_default;
        e.autoselect = r.autoselect;
        e.forced = attribute(r.attributes, "FORCED") == "YES";
        int index = -1;
        if (kind != RenditionKind::closed_captions && !r.uri.empty()) {
            RenditionRole role;
            role.name = r.name;
            role.language = r.language;
            role.group = r.group_id;
            role.is_default = r.is_default;
            index = add_role(kind, r.uri, std::move(role));
            if (index < 0) continue;
            e.id = plan.roles[static_cast<std::size_t>(index)].id;
            separate = true;
        }
        plan.entries.push_back(std::move(e));
        plan.child_of_entry.push_back(index);
    }
    if (dropped)
        add_source_note("the source lists more than " + std::to_string(kMaxRenditions) + " renditions: the rest are not in the output");
    if (top_role < 0) throw av::SourceError("master playlist " + redact_url(url) + " has no usable variant");
    if (plan.roles.size() == 1 && !separate) {
        // One variant, nothing beside it: a single-rendition channel reading that variant.
        plan.single.url = plan.roles.front().url;
        plan.single.parent = final_url;
        plan.roles.clear();
        plan.entries.clear();
        plan.child_of_entry.clear();
        return plan;
    }
    plan.roles[static_cast<std::size_t>(top_role)].top = true;
    return plan;
}

void ChannelWorker::run_presentation(Plan plan, Segmenter& segmenter) {
    std::size_t top = 0;
    for (std::size_t i = 0; i < plan.roles.size(); ++i)
        if (plan.roles[i].top) top = i;
    // Every rendition starts at the same source segment: the highest video variant's live start.
    SourceContext ctx = source_context(segmenter, plan.master_url);
    std::string final_url;
    const m3u8::Playlist first = fetch_hls_playlist(ctx, plan.roles[top].url, plan.master_url, final_url);
    if (first.is_master())
        throw av::SourceError("variant " + redact_url(plan.roles[top].url) + " is itself a master playlist", true);
    const auto& segs = first.media().segments;
    int64_t start = 0;
    if (!segs.empty()) {
        const std::size_t back = static_cast<std::size_t>(std::max(1, engine_.live_start_segments));
        start = segs[first.media().endlist || segs.size() <= back ? 0 : segs.size() - back].sequence;
    }
    const int64_t output_start = [this] { std::lock_guard l(out_mu_); return next_sequence_; }();
    auto map = std::make_shared<SequenceMap>(start, output_start);
    std::vector<std::string> ids;
    for (const auto& role : plan.roles) ids.push_back(role.id);
    auto reports = hls_.low_latency ? std::make_shared<RenditionReports>(std::move(ids)) : nullptr;
    std::vector<std::shared_ptr<ChannelWorker>> kids;
    if (channel_.urls.size() > 1) {  // backups: the top rendition's failures may switch the presentation
        std::lock_guard lock(failover_mu_);
        top_url_ = plan.roles[top].url;
        plan.roles[top].failed = [this](const std::string& url, bool permanent, bool delivered, bool hard) {
            on_top_failure(url, permanent, delivered, hard);
        };
    }
    for (auto& role : plan.roles) {
        role.map = map;
        role.reports = reports;
        const std::string id = role.id;
        const bool is_top = role.top;
        kids.push_back(std::make_shared<ChannelWorker>(
            channel_, hls_, engine_, output_start, pool_,
            [this, id, is_top](const Event& e) { on_child_event(id, is_top, e); },
            [this, id](LogLevel level, const std::string& channel, const std::string& message) {
                log_(level, channel, id + ": " + message);
            },
            role));
        kids.back()->push_ = push_;
        kids.back()->push_prefix_ = id + "/";
    }
    {
        std::lock_guard lock(children_mu_);
        if (stop_children_) return;
        children_ = kids;
        plan_ = std::move(plan);
        top_ = top;
    }
    log_(LogLevel::Info, channel_.id, "a presentation of " + std::to_string(kids.size()) + " renditions");
    for (const auto& kid : kids) kid->start();
    if (interrupter_.stop_requested()) {
        for (const auto& kid : kids) kid->request_stop();
    }
}

void ChannelWorker::on_top_failure(const std::string& url, bool permanent, bool delivered, bool hard) {
    std::size_t from = 0, to = 0;
    {
        std::lock_guard lock(failover_mu_);
        // A failure of a media playlist the presentation left, or while a switch is under way: stale.
        if (url != top_url_ || switch_to_) return;
        const auto now = SteadyClock::now();
        const FailoverPolicy::Decision d = failover_.on_failure(now, permanent, delivered, hard);
        {
            std::lock_guard status(status_mu_);
            url_index_ = d.index;
        }
        if (d.all_permanent || d.index == playing_) return;  // the renditions reconnect on their own
        if (d.switched) failback_pending_ = false;
        from = playing_;
        to = d.index;
        switch_to_ = to;
        switch_at_ = now + std::chrono::duration_cast<SteadyClock::duration>(std::chrono::duration<double>(d.wait));
    }
    log_(LogLevel::Info, channel_.id, "failing over from source " + std::to_string(from) + " to source " + std::to_string(to) +
                                          " (" + redact_url(channel_.urls[to]) + ")");
    sleep_cv_.notify_all();
}

void ChannelWorker::follow_presentation(Segmenter& segmenter) {
    if (channel_.urls.size() < 2) {  // nowhere to go: the renditions reconnect on their own
        sleep(1e9);
        return;
    }
    while (!stopping()) {
        std::optional<std::size_t> target;
        std::size_t from = 0;
        bool failback = false;
        {
            std::lock_guard lock(failover_mu_);
            const auto now = SteadyClock::now();
            from = playing_;
            if (switch_to_) {
                if (now >= switch_at_) target = switch_to_;
            } else if (failback_pending_.load()) {
                if (playing_ != 0 && failover_.failback_due(now)) {
                    target = 0;
                    failback = true;
                } else {
                    failback_pending_ = false;
                }
            }
        }
        if (!target) {  // polled: the top rendition's failures and the probe thread decide
            std::unique_lock lock(sleep_mu_);
            sleep_cv_.wait_for(lock, std::chrono::milliseconds(200), [this] { return stopping_; });
            continue;
        }
        if (failback)
            log_(LogLevel::Info, channel_.id, "leaving backup source " + std::to_string(from) + " for the primary " +
                                                  redact_url(channel_.urls.front()));
        std::string error;
        bool permanent = false;
        const bool ok = switch_presentation(*target, segmenter, error, permanent);
        if (stopping()) return;
        std::size_t next = 0;
        bool again = false;
        {
            std::lock_guard lock(failover_mu_);
            const auto now = SteadyClock::now();
            if (failback) {
                failback_pending_ = false;
                if (ok) {
                    failover_.fail_back();
                    playing_ = 0;
                } else {
                    failover_.on_probe(now, false);  // its master did not serve: healthy probes count again
                }
            } else {
                switch_to_.reset();
                if (ok) {
                    playing_ = *target;
                } else {
                    // That URL cools down (as a refused one does); the policy names the next, maybe later.
                    const FailoverPolicy::Decision d = failover_.on_failure(now, permanent, false, true);
                    if (!d.all_permanent && d.index != playing_) {
                        switch_to_ = next = d.index;
                        const double wait = std::max(d.wait, engine_.reconnect_min);
                        switch_at_ = now + std::chrono::duration_cast<SteadyClock::duration>(std::chrono::duration<double>(wait));
                        again = true;
                    }
                }
            }
            std::lock_guard status(status_mu_);
            url_index_ = failover_.active();
        }
        if (!ok) {
            set_error("failover to source " + std::to_string(*target) + " failed: " + error, true);
            if (again)
                log_(LogLevel::Info, channel_.id, "failing over from source " + std::to_string(*target) + " to source " +
                                                      std::to_string(next) + " (" + redact_url(channel_.urls[next]) + ")");
        } else {
            log_(LogLevel::Info, channel_.id, "the presentation follows the master of source " + std::to_string(*target) + " (" +
                                                  redact_url(channel_.urls[*target]) + ")");
        }
    }
}

namespace {
// The order in which video renditions are matched: the top one first, then by declared bandwidth.
std::vector<std::size_t> video_rank(const std::vector<RenditionRole>& roles) {
    std::vector<std::size_t> v;
    for (std::size_t i = 0; i < roles.size(); ++i)
        if (roles[i].kind == RenditionKind::video) v.push_back(i);
    std::stable_sort(v.begin(), v.end(), [&](std::size_t a, std::size_t b) {
        if (roles[a].top != roles[b].top) return roles[a].top;
        return roles[a].bandwidth > roles[b].bandwidth;
    });
    return v;
}

// For each running rendition, the new master's rendition it goes on with (-1: none).
std::vector<int> match_renditions(const std::vector<RenditionRole>& running, const std::vector<RenditionRole>& next) {
    std::vector<int> match(running.size(), -1);
    std::vector<bool> used(next.size(), false);
    const std::vector<std::size_t> a = video_rank(running), b = video_rank(next);
    for (std::size_t k = 0; k < a.size() && k < b.size(); ++k) {
        match[a[k]] = static_cast<int>(b[k]);
        used[b[k]] = true;
    }
    for (std::size_t i = 0; i < running.size(); ++i) {
        const RenditionRole& r = running[i];
        if (r.kind == RenditionKind::video) continue;
        int best = -1, best_score = 0;
        for (std::size_t j = 0; j < next.size(); ++j) {
            const RenditionRole& n = next[j];
            if (used[j] || n.kind != r.kind) continue;
            int score;
            if (r.kind == RenditionKind::audio) {  // by language, then name, then the default one
                const bool language = !r.language.empty() && r.language == n.language;
                const bool name = !r.name.empty() && r.name == n.name;
                const bool fallback = r.is_default && n.is_default;
                score = (language ? 4 : 0) + (name ? 2 : 0) + (fallback ? 1 : 0);
            } else {  // subtitles: by language
                score = r.language == n.language ? 1 : 0;
            }
            if (score > best_score) {
                best = static_cast<int>(j);
                best_score = score;
            }
        }
        if (best >= 0) {
            match[i] = best;
            used[static_cast<std::size_t>(best)] = true;
        }
    }
    return match;
}
}  // namespace

bool ChannelWorker::switch_presentation(std::size_t index, Segmenter& segmenter, std::string& error, bool& permanent) {
    const std::string& url = channel_.urls[index];
    Plan next;
    int64_t start = 0;
    try {
        // The same caps, deadlines and URL policy as the first plan(); stopped by the worker's interrupter.
        if (!is_hls_url(url))
            throw av::SourceError(redact_url(url) + " is not an HLS playlist: a presentation fails over to another master playlist");
        std::optional<Plan> p = plan(segmenter, url);
        if (!p) throw av::SourceError(redact_url(url) + " is a media playlist, not a master playlist");
        next = std::move(*p);
        if (next.roles.empty()) {  // one variant: the top video rendition's match
            RenditionRole only;
            only.kind = RenditionKind::video;
            only.id = rendition_id(RenditionKind::video, 0);
            only.url = next.single.url;
            only.parent = next.single.parent;
            only.top = true;
            next.roles.push_back(std::move(only));
        }
        const auto top = std::find_if(next.roles.begin(), next.roles.end(), [](const RenditionRole& r) { return r.top; });
        if (top == next.roles.end()) throw av::SourceError("master playlist " + redact_url(url) + " has no usable variant");
        // The new ladder's renditions start at its highest video variant's live start, as at the first plan.
        SourceContext ctx = source_context(segmenter, next.master_url);
        std::string final_url;
        const m3u8::Playlist first = fetch_hls_playlist(ctx, top->url, next.master_url, final_url);
        if (first.is_master()) throw av::SourceError("variant " + redact_url(top->url) + " is itself a master playlist");
        const auto& segs = first.media().segments;
        if (segs.empty()) throw av::SourceError("variant " + redact_url(top->url) + " lists no segments");
        const std::size_t back = static_cast<std::size_t>(std::max(1, engine_.live_start_segments));
        start = segs[first.media().endlist || segs.size() <= back ? 0 : segs.size() - back].sequence;
    } catch (const av::SourceError& e) {
        error = e.what();
        permanent = e.permanent();
        return false;
    } catch (const std::exception& e) {
        error = std::string("internal error: ") + e.what();
        return false;
    }
    if (stopping()) return false;
    std::vector<RenditionRole> running;
    std::vector<std::shared_ptr<ChannelWorker>> kids;
    {
        std::lock_guard lock(children_mu_);
        if (stop_children_ || !plan_ || children_.empty()) return false;
        running = plan_->roles;
        kids = children_;
    }
    const std::vector<int> match = match_renditions(running, next.roles);
    const int64_t generation = running.front().map->switch_source(start);
    {
        std::lock_guard lock(failover_mu_);
        for (std::size_t i = 0; i < running.size(); ++i)
            if (running[i].top && match[i] >= 0) top_url_ = next.roles[static_cast<std::size_t>(match[i])].url;
    }
    {
        std::lock_guard lock(children_mu_);
        if (stop_children_ || !plan_) return false;
        for (std::size_t i = 0; i < plan_->roles.size() && i < match.size(); ++i) {
            if (match[i] < 0) continue;
            plan_->roles[i].url = next.roles[static_cast<std::size_t>(match[i])].url;
            plan_->roles[i].parent = next.master_url;
        }
    }
    for (std::size_t i = 0; i < kids.size() && i < match.size(); ++i) {
        if (match[i] >= 0) {
            kids[i]->repoint(next.roles[static_cast<std::size_t>(match[i])].url, next.master_url, generation);
        } else {
            const std::string why = "the master of source " + std::to_string(index) +
                                    " has no rendition matching it: not delivering while the channel plays that source";
            log_(LogLevel::Warn, channel_.id, running[i].id + ": " + why);
            kids[i]->repoint({}, {}, generation, why);
        }
    }
    return true;
}

void ChannelWorker::on_child_event(const std::string& id, bool top, const Event& e) {
    switch (e.type) {
        case EventType::StateChanged:
            // The channel's state is its highest video rendition's; the others show in their rows.
            if (top && e.state != ChannelState::Stopped && e.state != ChannelState::Idle) set_state(e.state);
            break;
        case EventType::Error: {
            Event forwarded = e;
            forwarded.message = id + ": " + e.message;
            emit_(forwarded);
            break;
        }
        case EventType::SegmentPublished:
            refresh_master();
            if (top) emit_(e);
            break;
        case EventType::PartPublished: {
            // Every rendition's parts are told (a host waking blocked reloads of any rendition's
            // playlist on them); Event::rendition says whose, empty for the top-level playlist's.
            Event forwarded = e;
            if (!top) forwarded.rendition = id;
            emit_(forwarded);
            break;
        }
        default:
            break;
    }
}

void ChannelWorker::refresh_master() {
    // One at a time: the renditions publish from their own threads, and a playlist never goes back.
    std::lock_guard serial(refresh_mu_);
    std::vector<std::shared_ptr<ChannelWorker>> kids;
    std::vector<PresentationEntry> entries;
    std::vector<int> child_of_entry;
    std::size_t top = 0;
    bool independent = false;
    {
        std::lock_guard lock(children_mu_);
        if (!plan_ || children_.empty()) return;
        kids = children_;
        entries = plan_->entries;
        child_of_entry = plan_->child_of_entry;
        top = top_;
        independent = plan_->independent;
    }
    std::shared_ptr<const std::string> index, mirrored;
    {
        std::lock_guard lock(kids[top]->out_mu_);
        index = kids[top]->prefixed_playlist_;
        mirrored = kids[top]->prefixed_mirror_ ? kids[top]->prefixed_mirror_ : index;
    }
    if (!index) return;  // the highest video rendition has nothing yet
    // Values the source omits are measured on the renditions' streams.
    for (std::size_t i = 0; i < entries.size(); ++i) {
        PresentationEntry& e = entries[i];
        if (e.kind != RenditionKind::video || child_of_entry[i] < 0) continue;
        const StreamInfo info = kids[static_cast<std::size_t>(child_of_entry[i])]->stream_info();
        if (e.average_bandwidth <= 0) {
            e.average_bandwidth = info.average_bandwidth;
            // RFC 8216 4.3.4.2: BANDWIDTH is the peak; a source that declared less than was measured
            // gets the measured peak, so that AVERAGE-BANDWIDTH never exceeds it.
            if (e.average_bandwidth > e.bandwidth) e.bandwidth = std::max(info.peak_bandwidth, e.average_bandwidth);
        }
        if (e.width <= 0 || e.height <= 0) {
            e.width = info.width;
            e.height = info.height;
        }
        if (e.frame_rate <= 0) e.frame_rate = info.frame_rate;
        if (presentation_detail::codecs(e.codecs).empty()) {  // none, or none the master could carry
            std::string codecs = info.codecs;
            for (std::size_t j = 0; j < entries.size(); ++j) {  // the audio its group adds
                if (entries[j].kind != RenditionKind::audio || entries[j].group != e.audio_group || child_of_entry[j] < 0) continue;
                const std::string audio = kids[static_cast<std::size_t>(child_of_entry[j])]->stream_info().codecs;
                if (!audio.empty() && codecs.find(audio) == std::string::npos) codecs += (codecs.empty() ? "" : ",") + audio;
                break;
            }
            e.codecs = codecs;
        }
    }
    std::string text = render_presentation_master(entries, 3, independent);
    std::shared_ptr<const std::string> master;
    {
        std::lock_guard lock(out_mu_);
        if (!master_playlist_ || *master_playlist_ != text)
            master = master_playlist_ = std::make_shared<const std::string>(std::move(text));
        media_playlist_ = index;
    }
    if (mirror_) {  // after the rendition's own files: the segments and playlist it names exist
        mirror_->write_playlist(kMediaPlaylistName, *mirrored);
        if (master) mirror_->write_playlist(kMasterPlaylistName, *master);
    }
    if (push_) {  // queued after the renditions' own uploads, so sent after them
        push_->put_playlist(std::string(kMediaPlaylistName), mirrored);
        if (master) push_->put_playlist(std::string(kMasterPlaylistName), master);
    }
    {
        std::lock_guard lock(ready_mu_);
        ready_ = true;
    }
    ready_cv_.notify_all();
}

int64_t ChannelWorker::aligned_start(int64_t live_start, int64_t first, int64_t last) {
    const SequenceMap::Mapping m = role_->map->current();
    epoch_ = m.epoch;
    // The first connection to the master the presentation switched to starts over in its mapping
    // (SequenceMap::switch_source), behind the switch's discontinuity.
    const bool switched = generation_ != pin_generation_;
    generation_ = pin_generation_;
    int64_t want;
    continues_ = false;
    if (published_any_ && !switched) {
        want = next_sequence_ - offset_;  // go on where this rendition left off
    } else {
        offset_ = m.offset;
        want = m.start;
    }
    const int64_t span = std::max<int64_t>(10, last - first + 1);
    if (want < first - span || want > last + span) {
        add_source_note(role_->id + ": its media sequence numbers are not aligned with the highest video variant's; "
                        "it is numbered on its own");
        offset_ = next_sequence_ - live_start;
        return live_start;
    }
    continues_ = published_any_ && !switched;  // in the presentation's numbering: its timeline too (PinnedPlaylist::continues)
    return std::max(want, first);  // what left the playlist meanwhile becomes gaps
}

int64_t ChannelWorker::aligned_restart(int64_t live_start, int64_t first, int64_t last) {
    const SequenceMap::Mapping m = role_->map->rebase(epoch_, live_start);
    epoch_ = m.epoch;
    const int64_t span = std::max<int64_t>(10, last - first + 1);
    if (m.start < first - span || m.start > last + span) {
        offset_ = next_sequence_ - live_start;
        return live_start;
    }
    offset_ = m.offset;
    return std::max(m.start, first);
}

std::shared_ptr<Segment> ChannelWorker::new_segment() {
    // When the last reader lets go of the segment its buffer goes back to the pool.
    return std::shared_ptr<Segment>(std::make_unique<Segment>().release(), [pool = pool_](Segment* s) {
        std::unique_ptr<Segment> owned(s);
        if (pool) {
            pool->give(std::move(owned->data));
            pool->give_file(std::move(owned->file));
        }
    });
}

void ChannelWorker::publish_gap(int64_t sequence, double duration, const Segmenter& segmenter) {
    if (sequence < next_sequence_) return;
    // A long outage: only what a playlist can still list is filled in.
    int64_t from = std::max(next_sequence_, sequence - window_.max_segments());
    for (int64_t n = from; n <= sequence; ++n) {
        auto gap = new_segment();
        gap->sequence = n;
        gap->gap = true;
        gap->format = format_;
        gap->duration = std::max(0.001, duration);
        // The date the other renditions gave this number, if any (a gap teaches nothing).
        gap->program_date_time = role_->map->known_date(n);
        publish_segment(std::move(gap), segmenter);
    }
}

void ChannelWorker::publish_subtitle(std::string&& data, double duration, const std::optional<std::string>& date,
                                     const Segmenter& segmenter) {
    if (data.size() > kMaxSubtitleBytes) {
        set_error("a subtitle segment of " + std::to_string(data.size()) + " bytes was skipped (at most " +
                      std::to_string(kMaxSubtitleBytes) + ")",
                  true);
        return;  // a gap (PinnedPlaylist::end)
    }
    CutSegment cut;
    cut.data = std::move(data);
    cut.duration = std::max(0.001, duration);
    cut.format = SegmentFormat::webvtt;
    // Dated by its own PDT when the source gives it one, else as its siblings dated the number (publish).
    if (const auto when = date ? parse_date_time(*date) : std::nullopt) {
        cut.program_date_time = *when;
        cut.dated_by_source = true;
    }
    longest_subtitle_ = std::max(longest_subtitle_, cut.duration);
    publish(std::move(cut), segmenter);
}

void ChannelWorker::publish(CutSegment&& cut, const Segmenter& segmenter) {
    std::shared_ptr<Segment> segment = new_segment();
    if (role_) {
        // Aligned: this source segment's output number; anything else it yields (a second cut when
        // it exceeds the largest output segment) would break the numbering and is dropped.
        if (source_sequence_ < 0 || source_published_) {
            add_source_note(role_->id + ": a source segment exceeded the largest output segment: its tail was dropped to keep the renditions aligned");
            return;
        }
        source_published_ = true;
        const int64_t sequence = source_sequence_ + offset_;
        if (sequence < next_sequence_) return;  // published already (a source that went back)
        if (sequence > next_sequence_) publish_gap(sequence - 1, source_duration_, segmenter);  // what never came
        segment->sequence = sequence;
    }
    segment->duration = cut.duration;
    segment->discontinuity = cut.discontinuity;
    segment->keyframe_start = cut.keyframe_start;
    // A rendition is dated only on its source's clock, and then alike in every rendition
    // (SequenceMap::date). Dates by arrival, each rendition's own, put Shaka's live edge where the
    // newest segment ends and left it so little of the window that switches fell out of it (it
    // stalled on every forced switch); undated renditions are lined up by their numbers.
    if (role_) {
        segment->program_date_time = cut.dated_by_source
                                         ? role_->map->date(segment->sequence, cut.program_date_time, date_correction_)
                                         : role_->map->known_date(segment->sequence);
    } else {
        segment->program_date_time = cut.program_date_time;
    }
    segment->format = cut.format;
    segment->init = std::move(cut.init);
    if (cut.from_parts) {
        // The segment is its parts' bytes joined; from now on each part is a range of them. Only
        // the worker changes the open parts, so it reads them without the lock; its last part was
        // held back for this moment (publish_part).
        std::vector<PartPtr> parts = window_.open_parts();
        if (held_last_part_ && (parts.empty() || parts.front()->sequence == held_last_part_->sequence))
            parts.push_back(std::move(held_last_part_));
        held_last_part_.reset();
        size_t total = 0;
        for (const auto& p : parts) total += p->data.size();
        if (auto file = pool_ && total ? pool_->take_file(total) : nullptr) {
            // Joined straight into the fd-backed buffer it is served from.
            size_t at = 0;
            for (const auto& p : parts) {
                segment->parts.push_back(PartSpan{at, p->data.size(), p->duration, p->independent, p->number});
                if (!p->data.empty()) std::memcpy(file->data() + at, p->data.data(), p->data.size());
                at += p->data.size();
            }
            file->resize(at);
            segment->file = std::move(file);
        } else {
            segment->data.reserve(total);
            for (const auto& p : parts) {
                segment->parts.push_back(PartSpan{segment->data.size(), p->data.size(), p->duration, p->independent, p->number});
                segment->data += p->data;
            }
        }
        if (segment->parts.empty()) return;  // its parts were dropped (see publish_part): nothing to list
        if (const auto& first = parts.front(); first->program_date_time != SystemClock::time_point{})
            segment->program_date_time = first->program_date_time;  // as its first part said
    } else if (auto file = pool_ && !cut.data.empty() ? pool_->take_file(cut.data.size()) : nullptr) {
        // One copy into the fd-backed buffer it is served from (sendfile: no copy per request); the
        // cut's buffer goes back to the pool at once for the next download.
        file->assign(cut.data);
        segment->file = std::move(file);
        pool_->give(std::move(cut.data));
    } else {
        segment->data = std::move(cut.data);
    }
    format_ = segment->format;
    publish_segment(std::move(segment), segmenter);
    maybe_leave();
}

void ChannelWorker::publish_part(CutPart&& cut, const Segmenter& segmenter) {
    held_last_part_.reset();  // a segment's last part that publish() never took: that segment was dropped
    held_part_event_.reset();
    auto part = std::make_shared<Part>();
    part->duration = cut.duration;
    part->independent = cut.independent;
    part->discontinuity = cut.discontinuity;
    part->program_date_time = cut.program_date_time;
    part->format = cut.format;
    part->init = std::move(cut.init);
    part->data = std::move(cut.data);
    part->published = SteadyClock::now();
    int64_t sequence = next_sequence_;
    if (role_) {
        // A rendition's part belongs to the source segment being cut, numbered as publish() will
        // number it; what never came before it is published as gaps first, so that the open parts
        // always follow the last listed segment. A segment publish() will drop has no parts either.
        sequence = source_sequence_ + offset_;
        if (source_sequence_ < 0 || source_published_ || sequence < next_sequence_) return;
        if (generation_ != role_->map->generation()) return;  // the old master's, after a switch
        if (sequence > next_sequence_) publish_gap(sequence - 1, source_duration_, segmenter);
        // Its first part is dated as the segment will be, alike in every rendition (SequenceMap::date).
        if (cut.first)
            part->program_date_time = cut.dated_by_source ? role_->map->date(sequence, cut.program_date_time, date_correction_)
                                                          : role_->map->known_date(sequence);
    }
    {
        std::lock_guard lock(out_mu_);
        part->sequence = sequence;
        // Parts of another segment, or of this one when a first part comes again (a segment that was
        // never published): gone.
        const auto& open = window_.open_parts();
        if (!open.empty() && (open.front()->sequence != sequence || cut.first)) window_.drop_open_parts();
        part->index = static_cast<int>(window_.open_parts().size());
        part->number = next_part_++;
        if (!cut.last) {
            window_.push_part(part);
            arrival_burst_ = segmenter.arrival_burst();
            if (part_target_ > 0) part_target_ = segmenter.part_target();  // raised for a bursty source
            render_playlists_locked();
        }
    }
    Event e;
    e.type = EventType::PartPublished;
    e.channel = channel_.id;
    e.state = ChannelState::Running;
    e.sequence = part->sequence;
    e.part = part->index;
    e.duration = part->duration;
    if (cut.last) {
        // A segment's last part is listed with the segment, which publish() has next: listed alone,
        // after the open parts, it would stand there shorter than 85 % of PART-TARGET (the rest of a
        // segment usually is) and neither independent nor, as far as a reader can tell, last
        // (RFC 8216bis 4.4.4.9). Nor may a blocking reload count it before a playlist lists it.
        held_last_part_ = std::move(part);
        held_part_event_ = e;
        return;
    }
    report_position();
    wake_position_waiters();
    emit_(e);
}

void ChannelWorker::render_playlists_locked() {
    if (target_duration_ == 0) return;  // no segment yet: no playlist (parts wait for the first one)
    LowLatency ll;
    const LowLatency* low = nullptr;
    if (part_target_ > 0) {
        ll.part_target = part_target_;
        ll.open_parts = &window_.open_parts();
        ll.next_sequence = next_sequence_;
        ll.next_part = next_part_;
        ll.burst = arrival_burst_;
        if (role_ && role_->reports) ll.reports = role_->reports->others(role_->id, "../");
        low = &ll;
    }
    auto render = [&](std::string_view prefix) {
        return std::make_shared<const std::string>(render_media_playlist(window_.listed(), target_duration_, prefix, low));
    };
    media_playlist_ = render({});
    if (low) {
        ll.skip = true;
        delta_playlist_ = render({});
        ll.skip = false;
    }
    if (role_ && role_->top) {  // the top-level index.m3u8: this one's, one directory up
        const std::string prefix = role_->id + "/";
        if (low && role_->reports) ll.reports = role_->reports->others(role_->id, "");
        prefixed_playlist_ = render(prefix);
        if (low) {
            ll.skip = true;
            prefixed_delta_ = render(prefix);
        }
    }
}

void ChannelWorker::report_position() {
    if (!role_ || !role_->reports) return;
    const PlaylistPosition p = position();
    if (p.open_parts > 0)
        role_->reports->set(role_->id, p.open_msn, p.open_parts - 1);
    else
        role_->reports->set(role_->id, p.last_msn, p.last_parts > 0 ? p.last_parts - 1 : -1);
}

std::shared_ptr<ChannelWorker> ChannelWorker::playlist_owner(std::string_view file) const {
    if (const auto sub = split_rendition_path(file)) {
        if (sub->file != kMediaPlaylistName) return nullptr;
        for (const auto& kid : children())
            if (kid->role_ && kid->role_->id == sub->rendition) return kid;
        return nullptr;
    }
    if (file != kMediaPlaylistName) return nullptr;
    std::lock_guard lock(children_mu_);
    return children_.empty() ? nullptr : children_[top_];
}

PlaylistPosition ChannelWorker::position() const {
    std::lock_guard lock(out_mu_);
    PlaylistPosition p;
    p.low_latency = part_target_ > 0;
    p.part_target = part_target_;
    if (!media_playlist_) return p;
    p.target_duration = target_duration_;
    if (const auto newest = window_.newest()) {
        p.last_msn = newest->sequence;
        p.last_parts = static_cast<int>(newest->parts.size());
    }
    if (p.low_latency) {
        p.open_msn = next_sequence_;
        const auto& open = window_.open_parts();
        if (!open.empty() && open.front()->sequence == next_sequence_) p.open_parts = static_cast<int>(open.size());
        p.next_part = next_part_;
    }
    return p;
}

void ChannelWorker::wake_position_waiters() {
    {
        std::lock_guard lock(ready_mu_);  // wait_position() checks its condition under it
    }
    ready_cv_.notify_all();
}

bool ChannelWorker::wait_position(int64_t msn, int part, SteadyClock::time_point deadline) {
    std::unique_lock lock(ready_mu_);
    ready_cv_.wait_until(lock, deadline, [&] { return finished_ || position().holds(msn, part); });
    return position().holds(msn, part);
}

void ChannelWorker::publish_segment(std::shared_ptr<Segment> segment, const Segmenter& segmenter) {
    const auto now = SteadyClock::now();
    segment->published = now;
    if (role_) {
        // Cut from the master the presentation left (until this rendition leaves it): not published.
        if (generation_ != role_->map->generation()) return;
        // Discontinuities go where every rendition has them (SequenceMap::publish).
        const SequenceMap::Publication p = role_->map->publish(segment->sequence, segment->discontinuity && segment->sequence >= withhold_until_);
        if (p.withhold_until > segment->sequence) {
            log_(LogLevel::Info, channel_.id,
                 "its discontinuity at " + std::to_string(segment->sequence) +
                     " moves to " + std::to_string(p.withhold_until) + ", where the other renditions have it too; gaps until then");
            withhold_until_ = p.withhold_until;
            return publish_segment(std::move(segment), segmenter);
        }
        if (segment->sequence < withhold_until_ && !segment->gap) {
            segment->gap = true;
            if (pool_) {
                pool_->give(std::move(segment->data));
                pool_->give_file(std::move(segment->file));
            }
            segment->data.clear();
            segment->file.reset();
            segment->parts.clear();  // ranges of the bytes just dropped
        }
        segment->discontinuity = p.discontinuity;
        published_any_ = true;
    }
    {
        std::lock_guard lock(out_mu_);
        if (!role_) segment->sequence = next_sequence_;
        next_sequence_ = segment->sequence + 1;
        if (segment->discontinuity) ++discontinuity_sequence_;
        segment->discontinuity_sequence = discontinuity_sequence_;
    }
    // The file is complete on disk before any playlist names it.
    if (mirror_ && !segment->gap) mirror_->write_segment(*segment);
    if (push_ && !segment->gap) push_->put_segment(segment, push_prefix_);  // queued before any playlist naming it
    std::vector<SegmentPtr> gone;
    std::shared_ptr<const std::string> media, master;
    {
        std::lock_guard lock(out_mu_);
        gone = window_.push(segment, now);
        arrival_burst_ = segmenter.arrival_burst();
        if (part_target_ > 0) part_target_ = segmenter.part_target();  // raised for a bursty source
        if (target_duration_ == 0) target_duration_ = segmenter.target_duration();
        if (segment->format == SegmentFormat::webvtt)  // subtitles pass the segmenter by
            target_duration_ = std::max(target_duration_, target_duration_for(longest_subtitle_));
        if (target_duration_ == 0) target_duration_ = target_duration_for(std::max(hls_.segment_duration, segment->duration));
        render_playlists_locked();
        media = media_playlist_;
        if (part_target_ > 0) {
            // The disk mirror holds whole segments only: its playlists list no parts.
            if (mirror_ || push_) media = std::make_shared<const std::string>(render_media_playlist(window_.listed(), target_duration_));
            if (role_ && role_->top)
                prefixed_mirror_ = std::make_shared<const std::string>(render_media_playlist(window_.listed(), target_duration_, role_->id + "/"));
        }
        StreamInfo info = segmenter.stream_info();
        info.peak_bandwidth = info_.peak_bandwidth;
        int64_t bytes = 0;
        double seconds = 0;
        for (const auto& s : window_.listed()) {
            if (s->gap) continue;
            bytes += static_cast<int64_t>(s->bytes().size());
            seconds += s->duration;
            if (s->duration >= 0.5)
                info.peak_bandwidth = std::max(info.peak_bandwidth, static_cast<int64_t>(static_cast<double>(s->bytes().size()) * 8 / s->duration));
        }
        info.average_bandwidth = seconds > 0 ? static_cast<int64_t>(static_cast<double>(bytes) * 8 / seconds) : 0;
        if (info.peak_bandwidth == 0) info.peak_bandwidth = info.average_bandwidth;
        if (!master_playlist_ || !(info == info_)) {
            info_ = info;
            master_playlist_ = std::make_shared<const std::string>(render_master_playlist(info_));
            master = master_playlist_;
        }
        ++segments_published_;
        bytes_published_ += static_cast<int64_t>(segment->bytes().size());
        timestamp_repairs_ = segmenter.timestamp_repairs();
        notes_ = segmenter.notes();
        for (const auto& n : source_notes_)
            if (std::find(notes_.begin(), notes_.end(), n) == notes_.end()) notes_.push_back(n);
        input_samples_.emplace_back(now, bytes_in_.load(std::memory_order_relaxed));
        while (input_samples_.size() > 2 && now - input_samples_.front().first > std::chrono::seconds(12))
            input_samples_.pop_front();
    }
    if (mirror_) {
        mirror_->write_playlist(kMediaPlaylistName, *media);
        if (master) mirror_->write_playlist(kMasterPlaylistName, *master);
    }
    if (push_) {
        push_->put_playlist(push_prefix_ + std::string(kMediaPlaylistName), media);
        // A rendition's master is none of the origin's business: its presentation pushes the master.
        if (master && !role_) push_->put_playlist(std::string(kMasterPlaylistName), master);
    }
    remove_files(gone);
    report_position();
    if (part_target_ > 0) wake_position_waiters();
    if (segment->gap) return;  // a placeholder: nothing arrived, the state and the cadence stay
    if (master) {
        {
            std::lock_guard lock(ready_mu_);
            ready_ = true;
        }
        ready_cv_.notify_all();
    }
    std::string recovered;
    {
        std::lock_guard lock(status_mu_);
        // The source's cadence: the media time that arrives in one burst (a live source delivers N s
        // of media every N s; an HLS source delivers a whole source segment at once).
        if (last_publish_ == SteadyClock::time_point{} || seconds_between(last_publish_, now) >= kBurstGapSeconds) {
            if (burst_media_ > 0) {
                burst_samples_.push_back(burst_media_);
                if (burst_samples_.size() > kCadenceSamples) burst_samples_.pop_front();
            }
            burst_media_ = 0;
        }
        burst_media_ += segment->duration;
        last_publish_ = now;
        std::vector<double> samples(burst_samples_.begin(), burst_samples_.end());
        samples.push_back(burst_media_);
        std::nth_element(samples.begin(), samples.begin() + static_cast<std::ptrdiff_t>(samples.size() / 2), samples.end());
        const double cadence = samples[samples.size() / 2];
        stall_after_ = std::max(kStalledMinSeconds,
                                kStalledIntervals * std::max(static_cast<double>(segmenter.target_duration()), cadence));
        if (in_outage_) {
            in_outage_ = false;
            recovered = "recovered after " + format_seconds(seconds_between(outage_since_, now)) + " outage (" +
                        std::to_string(outage_attempts_) + (outage_attempts_ == 1 ? " attempt)" : " attempts)");
            outage_attempts_ = 0;
        }
    }
    set_state(ChannelState::Running);
    // Ends a warned-about outage: logged at the warnings' level, so whoever saw the outage sees its end.
    if (!recovered.empty()) log_(LogLevel::Warn, channel_.id, recovered);
    // The PartPublished of its last part (held with it, publish_part) now that a playlist lists it.
    if (held_part_event_ && held_part_event_->sequence == segment->sequence && !segment->gap) {
        emit_(*held_part_event_);
        held_part_event_.reset();
    }
    Event e;
    e.type = EventType::SegmentPublished;
    e.channel = channel_.id;
    e.state = ChannelState::Running;
    e.sequence = segment->sequence;
    e.duration = segment->duration;
    emit_(e);
}

void ChannelWorker::remove_files(const std::vector<SegmentPtr>& gone) {
    // After the grace the window gives them (RFC 8216 6.2.2), on disk and on the origin alike.
    for (const auto& s : gone) {
        if (mirror_) mirror_->remove_segment(*s);
        if (push_) push_->remove_segment(*s, push_prefix_);
    }
}

void ChannelWorker::sweep() {
    const auto kids = children();
    for (const auto& kid : kids) kid->sweep();
    const auto now = SteadyClock::now();
    {
        // The continuous TS's segments, once nobody reads them (never waiting for a remux under way).
        std::unique_lock lock(ts_mu_, std::try_to_lock);
        if (lock && !ts_cache_.empty() && now - ts_last_read_ >= std::chrono::duration<double>(kTsViewIdle)) ts_cache_.clear();
    }
    std::vector<SegmentPtr> gone;
    std::set<std::string> keep;
    const bool sweep_disk =
        mirror_ && now - last_sweep_ >= std::chrono::duration<double>(std::max(0.1, hls_.cleanup_interval));
    {
        std::lock_guard lock(out_mu_);
        gone = window_.expire(now);
        if (sweep_disk) {
            for (const auto& s : window_.listed()) {
                keep.insert(s->name());
                if (s->init) keep.insert(s->init->name());
            }
            for (int64_t seq = next_sequence_ - window_.max_segments() - static_cast<int64_t>(window_.in_grace()) - 1;
                 seq < next_sequence_; ++seq)
                if (SegmentPtr found = window_.find(seq, now)) {
                    keep.insert(found->name());
                    if (found->init) keep.insert(found->init->name());
                }
        }
    }
    remove_files(gone);
    if (sweep_disk) {
        last_sweep_ = now;
        mirror_->sweep(keep);
    }
    // Stalled: running by the source's account, but no new segment for the stall bound.
    auto stalled = [this] {  // caller holds status_mu_
        return stall_after_ > 0 && seconds_between(last_publish_, SteadyClock::now()) > stall_after_;
    };
    ChannelState state;
    {
        std::lock_guard lock(status_mu_);
        state = state_;
    }
    if (!kids.empty()) {
        // A presentation's state is its highest video rendition's (which sweeps its own).
    } else if (state == ChannelState::Running) transition(ChannelState::Running, ChannelState::Stalled, stalled);
    else if (state == ChannelState::Stalled)
        transition(ChannelState::Stalled, ChannelState::Running, [&] { return !stalled(); });
    expire_error(now);
    flush_warnings(false);
}

int64_t ChannelWorker::next_sequence() const {
    int64_t next;
    {
        std::lock_guard lock(out_mu_);
        next = next_sequence_;
    }
    for (const auto& kid : children()) next = std::max(next, kid->next_sequence());
    return next;
}

StreamInfo ChannelWorker::stream_info() const {
    std::lock_guard lock(out_mu_);
    return info_;
}

RenditionStatus ChannelWorker::rendition_status() const {
    RenditionStatus r;
    if (role_) {
        r.id = role_->id;
        r.kind = to_string(role_->kind);
        r.name = role_->name;
        r.language = role_->language;
        r.group = role_->group;
        r.codecs = role_->codecs;
        r.bandwidth = role_->bandwidth;
        r.width = role_->width;
        r.height = role_->height;
    }
    {
        std::lock_guard lock(status_mu_);
        r.state = state_;
        r.last_error = last_error_;
    }
    r.bytes_in = bytes_in_.load(std::memory_order_relaxed);
    std::lock_guard lock(out_mu_);
    if (r.codecs.empty()) r.codecs = info_.codecs;
    if (r.bandwidth <= 0) r.bandwidth = info_.peak_bandwidth;
    if (r.width <= 0 || r.height <= 0) {
        r.width = info_.width;
        r.height = info_.height;
    }
    r.segment_count = static_cast<int>(window_.listed().size());
    if (!window_.listed().empty())
        r.newest_segment_age_seconds = std::chrono::duration<double>(SteadyClock::now() - window_.newest()->published).count();
    return r;
}

std::optional<Resource> ChannelWorker::read(std::string_view file, Delivery delivery) const {
    if (const auto sub = split_rendition_path(file)) {  // "v0/seg_12.ts": a rendition's own file
        for (const auto& kid : children())
            if (kid->role_ && kid->role_->id == sub->rendition) return kid->read(sub->file, delivery);
        return std::nullopt;
    }
    if (file == kMediaPlaylistName || file == kDeltaPlaylistName) {
        // A presentation's top-level media playlist is its highest video rendition's, read there so
        // that a blocking reload woken by that rendition reads what woke it.
        if (const auto top = playlist_owner(kMediaPlaylistName)) {
            std::optional<Resource> r;
            {
                std::lock_guard lock(top->out_mu_);
                const auto& text = file == kMediaPlaylistName ? top->prefixed_playlist_ : top->prefixed_delta_;
                if (text) r = Resource{text, "application/vnd.apple.mpegurl", false};
            }
            if (r && delivery == Delivery::whole)
                bytes_delivered_.fetch_add(static_cast<int64_t>(r->bytes().size()), std::memory_order_relaxed);
            return r;
        }
    }
    std::optional<Resource> r;
    {
        std::lock_guard lock(out_mu_);
        if (file == kMasterPlaylistName) {
            if (master_playlist_) r = Resource{master_playlist_, "application/vnd.apple.mpegurl", false};
        } else if (file == kMediaPlaylistName) {
            if (media_playlist_) r = Resource{media_playlist_, "application/vnd.apple.mpegurl", false};
        } else if (file == kDeltaPlaylistName) {
            if (delta_playlist_) r = Resource{delta_playlist_, "application/vnd.apple.mpegurl", false};
        } else if (const auto part = parse_part_name(file)) {
            const auto [number, format] = *part;
            const Window::PartBytes b = window_.find_part(number, SteadyClock::now());
            if (b && format == b.format) r = Resource{b.data, content_type_of(format), true, b.offset, b.length, b.file};
        } else if (const auto named = Segment::parse_any_name(file)) {
            // Aliasing: the bytes keep their segment alive, nothing is copied.
            SegmentPtr segment = window_.find(named->first, SteadyClock::now());
            if (segment && !segment->gap && segment->format == named->second)
                r = segment_resource(segment);
        } else if (const auto version = InitSection::parse_name(file)) {
            if (InitPtr init = window_.find_init(*version, SteadyClock::now()))
                r = Resource{std::shared_ptr<const std::string>(init, &init->data), kInitContentType, true};
        }
    }
    if (r && delivery == Delivery::whole)
        bytes_delivered_.fetch_add(static_cast<int64_t>(r->bytes().size()), std::memory_order_relaxed);
    return r;
}

SegmentPtr ChannelWorker::find_segment(int64_t msn) const {
    std::lock_guard lock(out_mu_);
    SegmentPtr s = window_.find(msn, SteadyClock::now());
    return s && !s->gap ? s : nullptr;
}

std::shared_ptr<ChannelWorker> ChannelWorker::default_audio() const {
    std::lock_guard lock(children_mu_);
    if (!plan_ || children_.empty()) return nullptr;
    const Plan& p = *plan_;
    std::string group;
    for (std::size_t e = 0; e < p.entries.size() && e < p.child_of_entry.size(); ++e)
        if (p.child_of_entry[e] == static_cast<int>(top_) && p.entries[e].kind == RenditionKind::video) {
            group = p.entries[e].audio_group;
            break;
        }
    if (group.empty()) return nullptr;  // the variant carries its own audio, if any
    // The group's DEFAULT rendition, else its first. One without a URI is the variant's own audio.
    int chosen = -1;
    bool found = false;
    for (std::size_t e = 0; e < p.entries.size() && e < p.child_of_entry.size(); ++e) {
        const PresentationEntry& entry = p.entries[e];
        if (entry.kind != RenditionKind::audio || entry.group != group) continue;
        if (!found || entry.is_default) chosen = p.child_of_entry[e];
        if (entry.is_default) break;
        found = true;
    }
    if (chosen < 0 || static_cast<std::size_t>(chosen) >= children_.size()) return nullptr;
    return children_[static_cast<std::size_t>(chosen)];
}

ChannelWorker::TsInputs ChannelWorker::ts_inputs(int64_t msn) const {
    TsInputs in;
    const auto top = playlist_owner(kMediaPlaylistName);
    if (!top) {
        SegmentPtr s = find_segment(msn);
        if (!s) return in;
        if (s->format == SegmentFormat::ts) in.direct = std::move(s);
        else if (s->format == SegmentFormat::fmp4 && s->init) in.segments.push_back(std::move(s));
        return in;
    }
    SegmentPtr video = top->find_segment(msn);
    if (!video || video->format == SegmentFormat::webvtt || (video->format == SegmentFormat::fmp4 && !video->init)) return in;
    if (const auto audio = default_audio()) {
        SegmentPtr a = audio->find_segment(msn);
        if (!a || a->format == SegmentFormat::webvtt || (a->format == SegmentFormat::fmp4 && !a->init)) return in;  // not yet
        in.segments = {std::move(video), std::move(a)};
        in.audio_apart = true;
    } else if (video->format == SegmentFormat::ts) {
        in.direct = std::move(video);  // the variant as it is: nothing to remux
    } else {
        in.segments.push_back(std::move(video));
    }
    return in;
}

std::shared_ptr<const std::string> ChannelWorker::derive_ts_locked(int64_t msn, const TsInputs& in) const {
    TsDerived d;
    d.msn = msn;
    // The counters go on from the previous segment's when it was made and nothing broke in between.
    if (!in.segments.front()->discontinuity)
        for (const TsDerived& c : ts_cache_)
            if (c.msn == msn - 1 && c.bytes) d.next_cc = c.next_cc;
    std::vector<RemuxInput> inputs;
    for (std::size_t i = 0; i < in.segments.size(); ++i) {
        const Segment& s = *in.segments[i];
        inputs.push_back(RemuxInput{s.format == SegmentFormat::fmp4 ? &s.init->data : nullptr, s.bytes(),
                                    in.audio_apart && i == 0});
    }
    try {
        std::string bytes = remux_to_ts(inputs);
        continue_counters(bytes, d.next_cc);
        d.bytes = std::make_shared<const std::string>(std::move(bytes));
    } catch (const std::exception& e) {
        d.next_cc.clear();
        log_(LogLevel::Warn, channel_.id,
             "continuous TS: segment " + std::to_string(msn) + " could not be remuxed, skipped: " + e.what());
    }
    std::shared_ptr<const std::string> bytes = d.bytes;
    auto at = std::find_if(ts_cache_.begin(), ts_cache_.end(), [&](const TsDerived& c) { return c.msn > msn; });
    ts_cache_.insert(at, std::move(d));
    while (static_cast<int>(ts_cache_.size()) > kTsViewSegments) ts_cache_.pop_front();
    return bytes;
}

std::optional<Resource> ChannelWorker::read_ts(int64_t msn) const {
    const TsInputs in = ts_inputs(msn);
    if (in.direct) {
        bytes_delivered_.fetch_add(static_cast<int64_t>(in.direct->bytes().size()), std::memory_order_relaxed);
        return segment_resource(in.direct);
    }
    if (in.segments.empty()) return std::nullopt;
    std::shared_ptr<const std::string> bytes;
    {
        std::lock_guard lock(ts_mu_);
        ts_last_read_ = SteadyClock::now();
        const auto cached = [&](int64_t n) -> const TsDerived* {
            for (const TsDerived& c : ts_cache_)
                if (c.msn == n) return &c;
            return nullptr;
        };
        if (const TsDerived* made = cached(msn)) {
            bytes = made->bytes;
        } else {
            // A reader that joined ahead of the others (or a skip): the segments between the newest
            // one made and this one first, when they are few, so that the counters run on.
            int64_t newest = -1;
            for (const TsDerived& c : ts_cache_)
                if (c.msn < msn) newest = std::max(newest, c.msn);
            if (newest >= 0 && msn - newest <= kTsViewSegments)
                for (int64_t n = newest + 1; n < msn; ++n) {
                    const TsInputs between = ts_inputs(n);
                    if (between.segments.empty()) break;
                    derive_ts_locked(n, between);
                }
            bytes = derive_ts_locked(msn, in);
        }
    }
    if (!bytes) return std::nullopt;
    bytes_delivered_.fetch_add(static_cast<int64_t>(bytes->size()), std::memory_order_relaxed);
    return Resource{bytes, content_type_of(SegmentFormat::ts), true};
}

ChannelStatus ChannelWorker::own_status() const {
    ChannelStatus s;
    s.channel_name = channel_.name;
    s.stream_id = channel_.id;
    s.hls_url = hls_url_for(channel_.id);
    s.max_segments = hls_.max_segments;
    s.segment_duration = hls_.segment_duration;
    s.container = to_string(hls_.container);
    const auto now = SteadyClock::now();
    if (!role_) {
        std::lock_guard lock(failover_mu_);
        s.failovers = failover_.failovers();
        for (std::size_t i = 0; i < channel_.urls.size() && i < failover_.size(); ++i) {
            const FailoverPolicy::UrlView v = failover_.view(i, now);
            s.sources.push_back(SourceStatus{redact_url(channel_.urls[i]), std::string(to_string(v.role)),
                                             v.consecutive_failures, v.cooldown_left});
        }
    }
    {
        std::lock_guard lock(status_mu_);
        s.state = state_;
        s.last_error = last_error_;
        s.last_error_at = last_error_at_;
        if (!last_error_.empty()) s.last_error_age_seconds = seconds_between(last_error_time_, now);
        s.previous_error = previous_error_;
        s.previous_error_at = previous_error_at_;
        s.reconnects = reconnects_;
        s.reconnect_attempts = reconnect_attempts_;
        s.source_index = static_cast<int>(url_index_);
        s.source = redact_url(role_ ? role_url_ : channel_.urls[url_index_ % channel_.urls.size()]);
        if (state_ == ChannelState::Running || state_ == ChannelState::Stalled)
            s.uptime_seconds = std::chrono::duration<double>(now - running_since_).count();
    }
    s.cleanup_running = s.state != ChannelState::Stopped && s.state != ChannelState::Idle;
    s.bytes_in = bytes_in_.load(std::memory_order_relaxed);
    std::lock_guard lock(out_mu_);
    s.segment_count = static_cast<int>(window_.listed().size());
    s.master_playlist_exists = master_playlist_ != nullptr;
    s.estimated_buffer_seconds = window_.listed_duration();
    s.stream = info_;
    s.target_duration = target_duration_;
    s.segments_published = segments_published_;
    s.bytes_out = bytes_delivered_.load(std::memory_order_relaxed);
    s.bytes_published = bytes_published_;
    s.timestamp_repairs = timestamp_repairs_;
    s.notes = notes_;
    if (mirror_) s.disk_error = mirror_->error();
    if (push_ && !role_) s.push = push_->status();
    if (!window_.listed().empty()) {
        s.media_sequence = window_.listed().front()->sequence;
        s.discontinuity_sequence = window_.listed().front()->discontinuity_sequence -
                                   (window_.listed().front()->discontinuity ? 1 : 0);
        s.newest_segment_age_seconds = std::chrono::duration<double>(now - window_.newest()->published).count();
        s.output_bitrate = s.estimated_buffer_seconds > 0
                               ? static_cast<double>(info_.average_bandwidth) : 0;
    }
    if (input_samples_.size() >= 2) {
        const auto& [t0, b0] = input_samples_.front();
        const auto& [t1, b1] = input_samples_.back();
        const double dt = std::chrono::duration<double>(t1 - t0).count();
        if (dt > 0) s.input_bitrate = static_cast<double>(b1 - b0) * 8 / dt;
    }
    return s;
}

ChannelStatus ChannelWorker::status() const {
    ChannelStatus s = own_status();
    std::vector<std::shared_ptr<ChannelWorker>> kids;
    std::size_t top;
    {
        std::lock_guard lock(children_mu_);
        kids = children_;
        top = top_;
    }
    if (kids.empty()) return s;
    // A presentation: the top-level fields describe the highest video rendition.
    const ChannelStatus t = kids[top]->own_status();
    s.segment_count = t.segment_count;
    s.estimated_buffer_seconds = t.estimated_buffer_seconds;
    s.stream = t.stream;
    s.newest_segment_age_seconds = t.newest_segment_age_seconds;
    s.media_sequence = t.media_sequence;
    s.discontinuity_sequence = t.discontinuity_sequence;
    s.segments_published = t.segments_published;
    s.bytes_published = t.bytes_published;
    s.target_duration = t.target_duration;
    s.timestamp_repairs = t.timestamp_repairs;
    s.output_bitrate = t.output_bitrate;
    s.input_bitrate = t.input_bitrate;
    s.uptime_seconds = t.uptime_seconds;
    s.reconnects += t.reconnects;
    s.reconnect_attempts += t.reconnect_attempts;
    if (s.last_error.empty()) {
        s.last_error = t.last_error;
        s.last_error_at = t.last_error_at;
        s.last_error_age_seconds = t.last_error_age_seconds;
    }
    if (s.previous_error.empty()) {
        s.previous_error = t.previous_error;
        s.previous_error_at = t.previous_error_at;
    }
    for (const auto& n : t.notes)
        if (std::find(s.notes.begin(), s.notes.end(), n) == s.notes.end()) s.notes.push_back(n);
    for (std::size_t i = 0; i < kids.size(); ++i) {
        if (i != top) {
            const ChannelStatus k = kids[i]->own_status();
            for (const auto& n : k.notes) {
                const std::string note = kids[i]->role_->id + ": " + n;
                if (n.rfind(kids[i]->role_->id + ":", 0) == 0) {
                    if (std::find(s.notes.begin(), s.notes.end(), n) == s.notes.end()) s.notes.push_back(n);
                } else if (std::find(s.notes.begin(), s.notes.end(), note) == s.notes.end()) {
                    s.notes.push_back(note);
                }
            }
            s.bytes_in += k.bytes_in;
            s.bytes_out += k.bytes_out;
            if (s.disk_error.empty()) s.disk_error = k.disk_error;
        } else {
            s.bytes_in += t.bytes_in;
            s.bytes_out += t.bytes_out;
            if (s.disk_error.empty()) s.disk_error = t.disk_error;
        }
        s.renditions.push_back(kids[i]->rendition_status());
    }
    return s;
}

}  // namespace hlsrelay
