// One running channel: see channel_worker.hpp.
#include "engine/channel_worker.hpp"

#include "ingest/source.hpp"

#include <hlsrelay/stream_id.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
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

double seconds_between(SteadyClock::time_point a, SteadyClock::time_point b) {
    return std::chrono::duration<double>(b - a).count();
}

std::string format_seconds(double s) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f s", s);
    return buf;
}
}  // namespace

ChannelWorker::ChannelWorker(ChannelConfig channel, HlsSettings hls, const EngineSettings& engine,
                             int64_t first_sequence, std::shared_ptr<BufferPool> pool, Emit emit, Log log)
    : channel_(std::move(channel)), hls_(hls), engine_(engine), pool_(std::move(pool)), emit_(std::move(emit)),
      log_(std::move(log)),
      window_(hls.max_segments), next_sequence_(first_sequence) {
    if (!engine_.hls_dir.empty())
        mirror_ = std::make_unique<DiskMirror>(std::filesystem::path(engine_.hls_dir) / channel_.id);
}

ChannelWorker::~ChannelWorker() { stop(); }

void ChannelWorker::start() {
    // No ordering lock: nothing else changes the state before the thread exists (the housekeeping
    // thread only turns running into stalled and back), and the caller may be inside an event callback
    // of another channel, holding that subscriber's call lock.
    change_state(ChannelState::Starting);
    thread_ = std::thread([this] { run(); });
}

void ChannelWorker::request_stop() {
    interrupter_.request_stop();
    {
        std::lock_guard lock(sleep_mu_);
        stopping_ = true;
    }
    sleep_cv_.notify_all();
    {
        std::lock_guard lock(ready_mu_);
        finished_ = true;
    }
    ready_cv_.notify_all();
}

bool ChannelWorker::wait_ready(SteadyClock::time_point deadline) {
    std::unique_lock lock(ready_mu_);
    ready_cv_.wait_until(lock, deadline, [this] { return ready_ || finished_; });
    return ready_;
}

void ChannelWorker::stop() {
    request_stop();
    if (thread_.joinable()) thread_.join();
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
    std::mt19937 rng(std::random_device{}());
    std::vector<bool> permanent(channel_.urls.size(), false);
    int failures = 0;
    while (!interrupter_.stop_requested()) {
        const std::string url = channel_.urls[url_index_];
        const int64_t published_before = [this] { std::lock_guard l(out_mu_); return segments_published_; }();
        std::string error;
        bool is_permanent = false;
        try {
            run_source(segmenter, url);
        } catch (const av::SourceError& e) {
            error = e.what();
            is_permanent = e.permanent();
        } catch (const std::exception& e) {
            error = std::string("internal error: ") + e.what();
        }
        if (interrupter_.stop_requested()) break;
        // What was cut before the break is published: a playlist never loses what arrived.
        try {
            segmenter.flush();
        } catch (const std::exception& e) {
            log_(LogLevel::Warn, channel_.id, std::string("flush failed: ") + e.what());
        }
        if (error.empty()) error = "the source stopped without an error";
        const int64_t published_after = [this] { std::lock_guard l(out_mu_); return segments_published_; }();
        if (published_after > published_before) failures = 0;  // it worked for a while: start backoff over
        ++failures;
        permanent[url_index_] = is_permanent;
        count_failure();
        {
            std::lock_guard lock(status_mu_);
            url_index_ = (url_index_ + 1) % channel_.urls.size();
        }
        // The state first: the error is then the first warning of the new state (see warn()).
        if (std::all_of(permanent.begin(), permanent.end(), [](bool p) { return p; })) {
            set_state(ChannelState::Failed);  // no URL can ever work: wait for stop
            set_error(error, true);
            sleep(1e9);
            break;
        }
        set_state(ChannelState::Reconnecting);
        set_error(error, true);
        const double base = std::min(engine_.reconnect_max,
                                     engine_.reconnect_min * std::pow(2.0, std::min(failures - 1, 20)));
        const double delay = base * std::uniform_real_distribution<double>(0.75, 1.25)(rng);
        if (!sleep(delay)) break;
    }
    set_state(ChannelState::Stopped);
}

void ChannelWorker::run_source(Segmenter& segmenter, const std::string& url) {
    SourceContext ctx{.channel = channel_,
                      .url = url,
                      .interrupter = interrupter_,
                      .segmenter = segmenter,
                      .bytes_in = bytes_in_,
                      .pool = pool_.get(),
                      .read_timeout = engine_.read_timeout,
                      .stall_timeout = engine_.stall_timeout,
                      .live_start_segments = engine_.live_start_segments,
                      .limits = channel_.limits.apply(engine_.limits),
                      .segment_duration = hls_.segment_duration,
                      .sleep = [this](double s) { return sleep(s); },
                      .report = [this](const std::string& m) { set_error(m, true); },
                      .note = [this](const std::string& m) { add_source_note(m); },
                      .history = &history_};
    log_(LogLevel::Info, channel_.id, "opening " + redact_url(url));
    if (is_hls_url(url)) run_hls_source(ctx);
    else run_generic_source(ctx);
}

void ChannelWorker::publish(CutSegment&& cut, const Segmenter& segmenter) {
    // When the last reader lets go of the segment its buffer goes back to the pool.
    std::shared_ptr<Segment> segment(std::make_unique<Segment>().release(),
                                     [pool = pool_](Segment* s) {
                                         std::unique_ptr<Segment> owned(s);
                                         if (pool) pool->give(std::move(owned->data));
                                     });
    segment->duration = cut.duration;
    segment->discontinuity = cut.discontinuity;
    segment->keyframe_start = cut.keyframe_start;
    segment->program_date_time = cut.program_date_time;
    segment->format = cut.format;
    segment->init = std::move(cut.init);
    segment->data = std::move(cut.data);
    const auto now = SteadyClock::now();
    segment->published = now;
    {
        std::lock_guard lock(out_mu_);
        segment->sequence = next_sequence_++;
        if (segment->discontinuity) ++discontinuity_sequence_;
        segment->discontinuity_sequence = discontinuity_sequence_;
    }
    // The file is complete on disk before any playlist names it.
    if (mirror_) mirror_->write_segment(*segment);
    std::vector<SegmentPtr> gone;
    std::shared_ptr<const std::string> media, master;
    {
        std::lock_guard lock(out_mu_);
        gone = window_.push(segment, now);
        if (target_duration_ == 0) target_duration_ = segmenter.target_duration();
        media = media_playlist_ = std::make_shared<const std::string>(render_media_playlist(window_.listed(), target_duration_));
        StreamInfo info = segmenter.stream_info();
        info.peak_bandwidth = info_.peak_bandwidth;
        int64_t bytes = 0;
        double seconds = 0;
        for (const auto& s : window_.listed()) {
            bytes += static_cast<int64_t>(s->data.size());
            seconds += s->duration;
            if (s->duration >= 0.5)
                info.peak_bandwidth = std::max(info.peak_bandwidth, static_cast<int64_t>(static_cast<double>(s->data.size()) * 8 / s->duration));
        }
        info.average_bandwidth = seconds > 0 ? static_cast<int64_t>(static_cast<double>(bytes) * 8 / seconds) : 0;
        if (info.peak_bandwidth == 0) info.peak_bandwidth = info.average_bandwidth;
        if (!master_playlist_ || !(info == info_)) {
            info_ = info;
            master_playlist_ = std::make_shared<const std::string>(render_master_playlist(info_));
            master = master_playlist_;
        }
        ++segments_published_;
        bytes_published_ += static_cast<int64_t>(segment->data.size());
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
    remove_files(gone);
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
    Event e;
    e.type = EventType::SegmentPublished;
    e.channel = channel_.id;
    e.state = ChannelState::Running;
    e.sequence = segment->sequence;
    e.duration = segment->duration;
    emit_(e);
}

void ChannelWorker::remove_files(const std::vector<SegmentPtr>& gone) {
    if (!mirror_) return;
    for (const auto& s : gone) mirror_->remove_segment(*s);
}

void ChannelWorker::sweep() {
    const auto now = SteadyClock::now();
    std::vector<SegmentPtr> gone;
    std::set<std::string> keep;
    const bool sweep_disk =
        mirror_ && now - last_sweep_ >= std::chrono::duration<double>(std::max(0.1, hls_.cleanup_interval));
    {
        std::lock_guard lock(out_mu_);
        gone = window_.expire(now);
        if (sweep_disk) {
            for (const auto& s : window_.listed()) keep.insert(s->name());
            for (int64_t seq = next_sequence_ - window_.max_segments() - static_cast<int64_t>(window_.in_grace()) - 1;
                 seq < next_sequence_; ++seq)
                if (window_.find(seq, now)) keep.insert(Segment::segment_name(seq));
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
    if (state == ChannelState::Running) transition(ChannelState::Running, ChannelState::Stalled, stalled);
    else if (state == ChannelState::Stalled)
        transition(ChannelState::Stalled, ChannelState::Running, [&] { return !stalled(); });
    expire_error(now);
    flush_warnings(false);
}

int64_t ChannelWorker::next_sequence() const {
    std::lock_guard lock(out_mu_);
    return next_sequence_;
}

std::optional<Resource> ChannelWorker::read(std::string_view file, Delivery delivery) const {
    std::optional<Resource> r;
    {
        std::lock_guard lock(out_mu_);
        if (file == kMasterPlaylistName) {
            if (master_playlist_) r = Resource{master_playlist_, "application/vnd.apple.mpegurl", false};
        } else if (file == kMediaPlaylistName) {
            if (media_playlist_) r = Resource{media_playlist_, "application/vnd.apple.mpegurl", false};
        } else if (const auto named = Segment::parse_any_name(file)) {
            // Aliasing: the bytes keep their segment alive, nothing is copied.
            SegmentPtr segment = window_.find(named->first, SteadyClock::now());
            if (segment && !segment->gap && segment->format == named->second)
                r = Resource{std::shared_ptr<const std::string>(segment, &segment->data), content_type_of(segment->format), true};
        } else if (const auto version = InitSection::parse_name(file)) {
            if (InitPtr init = window_.find_init(*version, SteadyClock::now()))
                r = Resource{std::shared_ptr<const std::string>(init, &init->data), kInitContentType, true};
        }
    }
    if (r && delivery == Delivery::whole)
        bytes_delivered_.fetch_add(static_cast<int64_t>(r->data->size()), std::memory_order_relaxed);
    return r;
}

ChannelStatus ChannelWorker::status() const {
    ChannelStatus s;
    s.channel_name = channel_.name;
    s.stream_id = channel_.id;
    s.hls_url = hls_url_for(channel_.id);
    s.max_segments = hls_.max_segments;
    s.segment_duration = hls_.segment_duration;
    const auto now = SteadyClock::now();
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
        s.source = redact_url(channel_.urls[url_index_]);
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

}  // namespace hlsrelay
