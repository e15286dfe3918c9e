// The public engine: the registry, one ChannelWorker per running channel, housekeeping, events.
#include <hlsrelay/engine.hpp>

#include "engine/channel_worker.hpp"
#include "ingest/guide_fetcher.hpp"

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <hlsrelay/hdhomerun.hpp>
#include <hlsrelay/registry.hpp>
#include <hlsrelay/state.hpp>
#include <hlsrelay/stream_id.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

namespace hlsrelay {

namespace {
void validate(const EngineSettings& s) {
    auto bad = [](const std::string& m) { throw Error(ErrorCode::InvalidArgument, m); };
    if (std::string p = hls_problem(s.hls); !p.empty()) bad(p);  // ranges (settings.hpp) and renditions
    if (!(s.read_timeout >= 0.1)) bad("read_timeout must be at least 0.1 s");
    if (!(s.reconnect_min > 0) || !(s.reconnect_max >= s.reconnect_min)) bad("reconnect delays must satisfy 0 < min <= max");
    if (s.live_start_segments < 1) bad("live_start_segments must be at least 1");
    if (!(s.release_memory_interval >= 0)) bad("release_memory_interval must not be negative");
    if (!(s.error_clear_after > 0 && s.error_clear_after <= 86400)) bad("error_clear_after must be within 0..86400 s");
    if (std::string p = limits_problem(s.limits); !p.empty()) bad("limits: " + p);
    if (std::string p = tuner_problem(s.tuner); !p.empty()) bad(p);
    for (const std::string& url : s.guide_urls)
        if (!starts_with_icase(url, "http://") && !starts_with_icase(url, "https://"))
            bad("guide URL is not http(s): " + redact_url(url));
    {
        GuideFetcherSettings g;
        g.refresh_interval = s.guide_refresh_interval;
        if (std::string p = guide_fetcher_problem(g); !p.empty()) bad(p);
    }
    if (!s.tuner.device_id.empty() && !hdhomerun::valid_device_id(s.tuner.device_id))
        bad("device_id " + s.tuner.device_id + " fails HDHomeRun's device id checksum (hdhomerun::valid_device_id)");
}

void validate(const HlsSettings& h) {
    EngineSettings s;
    s.hls = h;
    validate(s);
}
}  // namespace

// Start and stop of one channel are serialised by its slot's mutex, so a restart never overlaps the
// previous worker's shutdown (both would own the disk directory); other channels are not held up.
struct ChannelSlot {
    std::mutex control;
    std::shared_ptr<ChannelWorker> worker;  // guarded by Impl::mu
    int64_t next_sequence = 0;              // guarded by Impl::mu; keeps sequences rising across restarts
    ChannelStatus last;                     // guarded by Impl::mu; what a stopped channel reports
    SteadyClock::time_point stopped_at{};   // guarded by Impl::mu; when `last` was taken
};

struct Subscriber {
    std::mutex call;  // held while the callback runs, so unsubscribe can wait for it
    EventCallback callback;
    std::atomic<bool> active{true};
    std::atomic<std::thread::id> running_on{};
};

struct Engine::Impl {
    // The worker of a running channel (by id or display name); null for an unknown or stopped one.
    std::shared_ptr<ChannelWorker> running_worker(std::string_view name) {
        std::lock_guard lock(mu);
        const ChannelConfig* c = registry.find(name);
        if (!c) return nullptr;
        auto it = slots.find(c->id);
        return it == slots.end() ? nullptr : it->second->worker;
    }

    EngineSettings settings;
    mutable std::mutex mu;
    Registry registry;
    std::map<std::string, std::shared_ptr<ChannelSlot>, std::less<>> slots;

    std::mutex subscribers_mu;
    std::map<SubscriptionId, std::shared_ptr<Subscriber>> subscribers;
    SubscriptionId next_subscription = 1;

    std::shared_ptr<BufferPool> pool = std::make_shared<BufferPool>();

    // XMLTV guides: made at the first guide URL or the first guide() call (an engine without guides
    // runs no guide threads). guide_mu guards both; the fetcher's own calls never block.
    mutable std::mutex guide_mu;
    mutable std::unique_ptr<GuideFetcher> guides;
    std::vector<std::string> list_guide_urls;  // from loaded lists, in order

    // Runtime management (state.hpp): the overlay is guarded by mu; writes of the state file are
    // serialised by state_mu, and a snapshot older than the one last written is not written.
    ChannelOverlay overlay;
    uint64_t overlay_version = 0;  // guarded by mu
    std::mutex state_mu;
    uint64_t state_written = 0;  // guarded by state_mu

    void load_state();
    std::vector<LoadIssue> apply_overlay_locked();
    void save_state();

    std::vector<xmltv::GuideChannel> wanted_guide_channels() const {
        std::vector<xmltv::GuideChannel> wanted;
        std::lock_guard lock(mu);
        for (const ChannelConfig& c : registry.list())
            if (c.enabled) wanted.push_back({c.id, c.tvg_id, c.tvg_name.empty() ? c.name : c.tvg_name, c.tvg_shift, c.logo});
        return wanted;
    }
    std::vector<std::string> guide_urls_locked() const {
        std::vector<std::string> urls = settings.guide_urls;
        for (const std::string& u : list_guide_urls)
            if (std::find(urls.begin(), urls.end(), u) == urls.end()) urls.push_back(u);
        return urls;
    }
    GuideFetcher& guide_fetcher_locked() const {
        if (!guides) {
            GuideFetcherSettings g;
            g.urls = guide_urls_locked();
            g.channels = wanted_guide_channels();
            g.refresh_interval = settings.guide_refresh_interval;
            g.log = [this](LogLevel level, const std::string&, const std::string& message) { log(level, "", "guide: " + message); };
            guides = std::make_unique<GuideFetcher>(std::move(g));
        }
        return *guides;
    }
    // The registry changed: the guide follows (at once, from the kept guides).
    void channels_changed() {
        std::lock_guard lock(guide_mu);
        if (guides) guides->set_channels(wanted_guide_channels());
    }

    std::mutex housekeeping_mu;
    std::condition_variable housekeeping_cv;
    bool quitting = false;
    std::thread housekeeper;

    void log(LogLevel level, const std::string& channel, const std::string& message) const {
        if (level < settings.log_level) return;
        if (settings.log) {
            settings.log(level, channel, message);
            return;
        }
        std::fprintf(stderr, "[hlsrelay] %s %s%s%s\n", to_string(level), channel.c_str(), channel.empty() ? "" : ": ",
                     message.c_str());
    }

    void emit(const Event& e) {
        std::vector<std::shared_ptr<Subscriber>> targets;
        {
            std::lock_guard lock(subscribers_mu);
            for (auto& [id, s] : subscribers) targets.push_back(s);
        }
        for (auto& s : targets) {
            // A callback that causes another event on its own thread (start() emits "starting")
            // gets it nested; other threads wait, so one subscriber's callbacks never overlap.
            if (s->running_on.load() == std::this_thread::get_id()) {
                invoke(*s, e);
                continue;
            }
            std::lock_guard call(s->call);
            if (!s->active) continue;
            s->running_on = std::this_thread::get_id();
            invoke(*s, e);
            s->running_on = std::thread::id{};
        }
    }

    void invoke(Subscriber& s, const Event& e) {
        if (!s.active) return;
        try {
            s.callback(e);
        } catch (const std::exception& ex) {
            log(LogLevel::Error, e.channel, std::string("event callback threw: ") + ex.what());
        } catch (...) {
            log(LogLevel::Error, e.channel, "event callback threw");
        }
    }

    // Caller holds mu.
    const ChannelConfig& lookup(std::string_view name) const {
        const ChannelConfig* c = registry.find(name);
        if (!c) throw Error(ErrorCode::NotFound, "Channel not found: " + std::string(name));
        return *c;
    }

    // The id and control slot of a channel named by id or display name.
    std::pair<std::string, std::shared_ptr<ChannelSlot>> resolve(std::string_view name) {
        std::lock_guard lock(mu);
        std::string id = lookup(name).id;
        return {id, slot_for(id)};
    }

    std::shared_ptr<ChannelSlot> slot_for(const std::string& id) {
        auto& slot = slots[id];
        if (!slot) slot = std::make_shared<ChannelSlot>();
        return slot;
    }

    HlsSettings hls_for(const ChannelConfig& c) const { return c.hls_overrides().apply(settings.hls); }

    // What a status takes from the registry rather than the worker: enabled and the list's fields.
    static void set_listing(ChannelStatus& s, const ChannelConfig& c) {
        s.enabled = c.enabled;
        s.group = c.group;
        s.logo = c.logo;
        s.tvg_id = c.tvg_id;
        s.urls = c.urls;
    }
    static void move_listing(ChannelStatus& to, ChannelStatus& from) {
        to.enabled = from.enabled;
        to.group = std::move(from.group);
        to.logo = std::move(from.logo);
        to.tvg_id = std::move(from.tvg_id);
        to.urls = std::move(from.urls);
    }

    ChannelStatus idle_status(const ChannelConfig& c, const ChannelSlot* slot) const {
        ChannelStatus s = slot ? slot->last : ChannelStatus{};
        const HlsSettings h = hls_for(c);
        s.channel_name = c.name;
        s.stream_id = c.id;
        set_listing(s, c);
        s.hls_url = hls_url_for(c.id);
        s.max_segments = h.max_segments;
        s.segment_duration = h.segment_duration;
        s.cleanup_running = false;
        s.segment_count = 0;
        s.master_playlist_exists = false;
        s.estimated_buffer_seconds = 0;
        s.newest_segment_age_seconds = -1;
        s.uptime_seconds = 0;
        s.input_bitrate = s.output_bitrate = 0;
        if (slot && s.last_error_age_seconds >= 0)  // the error keeps ageing while the channel is stopped
            s.last_error_age_seconds += std::chrono::duration<double>(SteadyClock::now() - slot->stopped_at).count();
        if (s.state != ChannelState::Stopped && s.state != ChannelState::Failed) s.state = ChannelState::Idle;
        if (s.source.empty() && !c.urls.empty()) s.source = redact_url(c.urls.front());
        return s;
    }

    void start(const ChannelConfig& config, const std::shared_ptr<ChannelSlot>& slot) {
        // Caller holds slot->control, not mu.
        int64_t first;
        {
            std::lock_guard lock(mu);
            if (slot->worker) return;
            const int64_t clock_based = std::chrono::duration_cast<std::chrono::seconds>(
                                            SystemClock::now().time_since_epoch()).count();
            // Segment names are cached "forever" by players and proxies: never reuse one.
            first = std::max(slot->next_sequence, clock_based);
        }
        auto worker = std::make_shared<ChannelWorker>(
            config, hls_for(config), settings, first, pool, [this](const Event& e) { emit(e); },
            [this](LogLevel l, const std::string& ch, const std::string& m) { log(l, ch, m); });
        {
            std::lock_guard lock(mu);
            slot->worker = worker;
        }
        worker->start();
    }

    void stop(const std::shared_ptr<ChannelSlot>& slot) {
        // Caller holds slot->control, not mu.
        std::shared_ptr<ChannelWorker> worker;
        {
            std::lock_guard lock(mu);
            worker = slot->worker;
        }
        if (!worker) return;
        worker->stop();
        ChannelStatus last = worker->status();
        std::lock_guard lock(mu);
        slot->next_sequence = worker->next_sequence();
        slot->last = std::move(last);
        slot->stopped_at = SteadyClock::now();
        slot->worker.reset();
    }

    void housekeeping_loop() {
        std::unique_lock lock(housekeeping_mu);
        auto last_release = std::chrono::steady_clock::now();
        while (!quitting) {
            housekeeping_cv.wait_for(lock, std::chrono::milliseconds(250));
            if (quitting) break;
            lock.unlock();
            std::vector<std::shared_ptr<ChannelWorker>> workers;
            {
                std::lock_guard l(mu);
                for (auto& [id, slot] : slots)
                    if (slot->worker) workers.push_back(slot->worker);
            }
            for (auto& w : workers) w->sweep();
            // Spares for the segments the running channels are about to download; the rest is freed.
            pool->set_max_spares(4 + workers.size());
            pool->trim(std::chrono::seconds(2));
            const auto now = std::chrono::steady_clock::now();
            if (settings.release_memory_interval > 0 &&
                now - last_release >= std::chrono::duration<double>(settings.release_memory_interval)) {
                last_release = now;
#ifdef __GLIBC__
                malloc_trim(0);
#endif
            }
            lock.lock();
        }
    }
};

namespace {
// libav's lines can name a URL it was given (a local source, a TLS host): they reach stderr with
// every URL in them redacted, like the engine's own messages.
void scrubbed_av_log(void* avcl, int level, const char* fmt, va_list vl) {
    if (level > av_log_get_level()) return;
    thread_local int print_prefix = 1;
    char line[1024];
    av_log_format_line2(avcl, level, fmt, vl, line, sizeof line, &print_prefix);
    std::fputs(scrub_urls(line).c_str(), stderr);
}
}  // namespace

Engine::Engine(EngineSettings settings) : impl_(std::make_shared<Impl>()) {
    validate(settings);
    impl_->settings = std::move(settings);
    impl_->load_state();  // before any thread: a refused state file leaves nothing to join
    // libav's own log is process-wide and says little our errors do not. Quieten it only while it
    // is at libav's default, so a host that chose its own level keeps it.
    if (av_log_get_level() == AV_LOG_INFO) {
        av_log_set_level(impl_->settings.log_level == LogLevel::Debug ? AV_LOG_WARNING : AV_LOG_QUIET);
        av_log_set_callback(&scrubbed_av_log);
    }
    impl_->housekeeper = std::thread([impl = impl_.get()] { impl->housekeeping_loop(); });
    if (!impl_->settings.guide_urls.empty()) {
        std::lock_guard lock(impl_->guide_mu);
        impl_->guide_fetcher_locked();
    }
}

Engine::~Engine() {
    {
        std::lock_guard lock(impl_->guide_mu);
        impl_->guides.reset();  // stops its threads, a fetch in flight included
    }
    stop_all();
    {
        std::lock_guard lock(impl_->housekeeping_mu);
        impl_->quitting = true;
    }
    impl_->housekeeping_cv.notify_all();
    if (impl_->housekeeper.joinable()) impl_->housekeeper.join();
}

const EngineSettings& Engine::settings() const { return impl_->settings; }

LoadReport Engine::load(std::string_view text) {
    LoadReport parsed = parse_channels(text);
    LoadReport result;
    result.issues = parsed.issues;
    result.guide_urls = parsed.guide_urls;
    {
        std::lock_guard lock(impl_->mu);
        for (auto& c : parsed.channels) {
            // The runtime changes own the channels they added or removed: the list's copy yields.
            if (impl_->overlay.owns(c.id.empty() ? slugify(c.name) : c.id)) continue;
            try {
                if (!c.hls.empty()) validate(impl_->hls_for(c));
                result.channels.push_back(impl_->registry.add(std::move(c)));
            } catch (const std::exception& e) {
                result.issues.push_back({0, std::string("channel not added: ") + e.what()});
            }
        }
        for (LoadIssue& i : impl_->apply_overlay_locked()) result.issues.push_back(std::move(i));
    }
    std::lock_guard lock(impl_->guide_mu);
    bool new_url = false;
    for (const std::string& u : parsed.guide_urls) {
        if (std::find(impl_->list_guide_urls.begin(), impl_->list_guide_urls.end(), u) != impl_->list_guide_urls.end()) continue;
        impl_->list_guide_urls.push_back(u);
        new_url = true;
    }
    if (impl_->guides) {
        impl_->guides->set_channels(impl_->wanted_guide_channels());
        if (new_url) impl_->guides->set_urls(impl_->guide_urls_locked());
    } else if (new_url) {
        impl_->guide_fetcher_locked();
    }
    return result;
}

LoadReport Engine::load_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(ErrorCode::Io, "cannot read channel list " + path);
    std::ostringstream text;
    text << in.rdbuf();
    return load(text.str());
}

ChannelConfig Engine::add_channel(ChannelConfig channel) {
    if (!channel.hls.empty()) validate(channel.hls.apply(impl_->settings.hls));
    ChannelConfig added;
    {
        std::lock_guard lock(impl_->mu);
        try {
            added = impl_->registry.add(std::move(channel));
        } catch (const std::invalid_argument& e) {
            throw Error(ErrorCode::InvalidArgument, e.what());
        }
        impl_->overlay.record_add(added);
        ++impl_->overlay_version;
    }
    impl_->channels_changed();
    impl_->save_state();
    return added;
}

ChannelConfig Engine::update_channel(std::string_view name, ChannelConfig changes) {
    if (!changes.hls.empty()) validate(changes.hls.apply(impl_->settings.hls));
    auto [id, slot] = impl_->resolve(name);
    std::lock_guard control(slot->control);
    bool was_running;
    ChannelConfig updated, before;
    {
        std::lock_guard lock(impl_->mu);
        if (!impl_->registry.find(id)) throw Error(ErrorCode::NotFound, "Channel not found: " + id);
        before = *impl_->registry.find(id);
        changes.id = id;
        try {
            if (!impl_->registry.update(id, std::move(changes))) throw Error(ErrorCode::NotFound, "Channel not found: " + id);
        } catch (const std::invalid_argument& e) {
            throw Error(ErrorCode::InvalidArgument, e.what());
        }
        updated = *impl_->registry.find(id);
        was_running = slot->worker != nullptr;
        impl_->overlay.record_update(before, updated);
        ++impl_->overlay_version;
    }
    impl_->channels_changed();
    if (was_running) {
        impl_->stop(slot);
        if (updated.enabled) impl_->start(updated, slot);  // a channel disabled by the update stays stopped
    }
    impl_->save_state();
    return updated;
}

void Engine::remove_channel(std::string_view name) {
    auto [id, slot] = impl_->resolve(name);
    std::lock_guard control(slot->control);
    impl_->stop(slot);
    {
        std::lock_guard lock(impl_->mu);
        impl_->registry.remove(id);
        impl_->slots.erase(id);
        impl_->overlay.record_remove(id);
        ++impl_->overlay_version;
    }
    impl_->channels_changed();
    impl_->save_state();
}

ChannelConfig Engine::set_enabled(std::string_view name, bool enabled) {
    auto [id, slot] = impl_->resolve(name);
    std::lock_guard control(slot->control);
    ChannelConfig updated;
    {
        std::lock_guard lock(impl_->mu);
        const ChannelConfig* current = impl_->registry.find_id(id);
        if (!current) throw Error(ErrorCode::NotFound, "Channel not found: " + id);
        const ChannelConfig before = *current;
        updated = before;
        updated.enabled = enabled;
        if (!(updated == before)) {
            impl_->registry.update(id, updated);
            impl_->overlay.record_update(before, updated);
            ++impl_->overlay_version;
        }
    }
    if (!enabled) impl_->stop(slot);
    impl_->channels_changed();
    impl_->save_state();
    return updated;
}

std::shared_ptr<const std::string> Engine::guide(bool gzip) const {
    std::lock_guard lock(impl_->guide_mu);
    GuideFetcher& g = impl_->guide_fetcher_locked();
    return gzip ? g.xml_gz() : g.xml();
}

std::vector<GuideSource> Engine::guide_sources() const {
    std::lock_guard lock(impl_->guide_mu);
    return impl_->guides ? impl_->guides->sources() : std::vector<GuideSource>{};
}

void Engine::refresh_guides() {
    std::lock_guard lock(impl_->guide_mu);
    if (impl_->guides) impl_->guides->refresh_now();
}

std::vector<ChannelConfig> Engine::channels() const {
    std::lock_guard lock(impl_->mu);
    return impl_->registry.list();
}

std::optional<ChannelConfig> Engine::find_channel(std::string_view name) const {
    std::lock_guard lock(impl_->mu);
    const ChannelConfig* c = impl_->registry.find(name);
    if (!c) return std::nullopt;
    return *c;
}

ChannelConfig Engine::start(std::string_view name) {
    std::shared_ptr<ChannelSlot> slot;
    ChannelConfig config;
    {
        std::lock_guard lock(impl_->mu);
        config = impl_->lookup(name);
        slot = impl_->slot_for(config.id);
    }
    std::lock_guard control(slot->control);
    {
        std::lock_guard lock(impl_->mu);  // it may have been removed or updated meanwhile
        const ChannelConfig* current = impl_->registry.find(config.id);
        if (!current) throw Error(ErrorCode::NotFound, "Channel not found: " + std::string(name));
        config = *current;
    }
    if (!config.enabled)
        throw Error(ErrorCode::Conflict, "Channel '" + config.id + "' is disabled: enable it before starting it");
    impl_->start(config, slot);
    return config;
}

void Engine::stop(std::string_view name) {
    auto slot = impl_->resolve(name).second;
    std::lock_guard control(slot->control);
    impl_->stop(slot);
}

void Engine::stop_all() {
    std::vector<std::shared_ptr<ChannelSlot>> slots;
    {
        std::lock_guard lock(impl_->mu);
        for (auto& [id, slot] : impl_->slots) slots.push_back(slot);
    }
    // Ask every worker to stop first, then wait: n hung sources take one timeout, not n.
    {
        std::lock_guard lock(impl_->mu);
        for (auto& s : slots)
            if (s->worker) s->worker->request_stop();
    }
    for (auto& s : slots) {
        std::lock_guard control(s->control);
        impl_->stop(s);
    }
}

bool Engine::running(std::string_view name) const {
    std::lock_guard lock(impl_->mu);
    const ChannelConfig& c = impl_->lookup(name);
    auto it = impl_->slots.find(c.id);
    return it != impl_->slots.end() && it->second->worker != nullptr;
}

ChannelStatus Engine::status(std::string_view name) const {
    std::shared_ptr<ChannelWorker> worker;
    ChannelStatus listing;
    {
        std::lock_guard lock(impl_->mu);
        const ChannelConfig& c = impl_->lookup(name);
        auto it = impl_->slots.find(c.id);
        if (it == impl_->slots.end() || !it->second->worker)
            return impl_->idle_status(c, it == impl_->slots.end() ? nullptr : it->second.get());
        worker = it->second->worker;
        Impl::set_listing(listing, c);
    }
    ChannelStatus s = worker->status();
    Impl::move_listing(s, listing);
    return s;
}

std::vector<ChannelStatus> Engine::statuses() const {
    std::vector<ChannelStatus> out;
    std::vector<std::pair<size_t, std::shared_ptr<ChannelWorker>>> running;
    {
        std::lock_guard lock(impl_->mu);
        for (const auto& c : impl_->registry.list()) {
            auto it = impl_->slots.find(c.id);
            if (it != impl_->slots.end() && it->second->worker) running.emplace_back(out.size(), it->second->worker);
            out.push_back(impl_->idle_status(c, it == impl_->slots.end() ? nullptr : it->second.get()));
        }
    }
    for (auto& [index, worker] : running) {
        ChannelStatus s = worker->status();
        Impl::move_listing(s, out[index]);
        out[index] = std::move(s);
    }
    return out;
}

HlsSettings Engine::settings_for(std::string_view name) const {
    std::lock_guard lock(impl_->mu);
    return impl_->hls_for(impl_->lookup(name));
}

std::optional<Resource> Engine::read(std::string_view name, std::string_view file, Delivery delivery) const {
    const std::shared_ptr<ChannelWorker> worker = impl_->running_worker(name);
    if (!worker) return std::nullopt;
    return worker->read(file, delivery);
}

// The worker whose position the media playlist `file` follows (ChannelWorker::playlist_owner), held.
static std::shared_ptr<ChannelWorker> playlist_worker(std::shared_ptr<ChannelWorker> worker, std::string_view file) {
    if (!worker) return nullptr;
    if (auto owner = worker->playlist_owner(file)) return owner;
    return file == kMediaPlaylistName ? worker : nullptr;
}

std::optional<PlaylistPosition> Engine::playlist_position(std::string_view name, std::string_view file) const {
    const std::shared_ptr<ChannelWorker> worker = playlist_worker(impl_->running_worker(name), file);
    if (!worker) return std::nullopt;
    return worker->position();
}

bool Engine::wait_playlist(std::string_view name, std::string_view file, int64_t msn, int part, double timeout_seconds) const {
    if (!(timeout_seconds >= 0)) throw Error(ErrorCode::InvalidArgument, "wait_playlist: the timeout must be a number >= 0");
    const auto deadline = SteadyClock::now() + std::chrono::duration_cast<SteadyClock::duration>(
                                                   std::chrono::duration<double>(std::min(timeout_seconds, 1e9)));
    const std::shared_ptr<ChannelWorker> worker = playlist_worker(impl_->running_worker(name), file);
    if (!worker) return false;
    return worker->wait_position(msn, part, deadline);
}

bool Engine::wait_ready(std::string_view name, double timeout_seconds) const {
    if (!(timeout_seconds >= 0)) throw Error(ErrorCode::InvalidArgument, "wait_ready: the timeout must be a number >= 0");
    // A deadline past any real wait, without overflowing the clock.
    const auto deadline = SteadyClock::now() + std::chrono::duration_cast<SteadyClock::duration>(
                                                   std::chrono::duration<double>(std::min(timeout_seconds, 1e9)));
    const std::shared_ptr<ChannelWorker> worker = impl_->running_worker(name);
    if (!worker) return false;
    return worker->wait_ready(deadline);
}

Engine::SubscriptionId Engine::subscribe(EventCallback callback) {
    if (!callback) throw Error(ErrorCode::InvalidArgument, "empty event callback");
    auto s = std::make_shared<Subscriber>();
    s->callback = std::move(callback);
    std::lock_guard lock(impl_->subscribers_mu);
    const SubscriptionId id = impl_->next_subscription++;
    impl_->subscribers[id] = std::move(s);
    return id;
}

void Engine::unsubscribe(SubscriptionId id) {
    std::shared_ptr<Subscriber> s;
    {
        std::lock_guard lock(impl_->subscribers_mu);
        auto it = impl_->subscribers.find(id);
        if (it == impl_->subscribers.end()) return;
        s = std::move(it->second);
        impl_->subscribers.erase(it);
    }
    if (s->running_on == std::this_thread::get_id()) {  // from inside its own callback
        s->active = false;
        return;
    }
    std::lock_guard call(s->call);  // waits for a call in flight
    s->active = false;
}

// ---- Runtime management kept in EngineSettings::state_file (state.hpp) ----

namespace {

[[noreturn]] void state_io_error(const std::string& path, const std::string& what) {
    throw Error(ErrorCode::Io, "state file " + path + ": " + what + ": " + std::strerror(errno));
}

// Writes `text` to `path` so that a crash leaves the old file or the new one, never a mix: a temp
// file beside it, fsync, rename over, fsync of the directory. Mode 0600: it holds sources and headers.
void write_atomically(const std::string& path, const std::string& text) {
    const std::string temp = path + ".tmp";
    const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) state_io_error(path, "cannot create " + temp);
    struct Closer {
        int fd;
        ~Closer() { if (fd >= 0) ::close(fd); }
    } closer{fd};
    for (std::size_t done = 0; done < text.size();) {
        const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            ::unlink(temp.c_str());
            state_io_error(path, "cannot write " + temp);
        }
        done += static_cast<std::size_t>(n);
    }
    if (::fsync(fd) != 0) {
        ::unlink(temp.c_str());
        state_io_error(path, "cannot sync " + temp);
    }
    closer.fd = -1;
    if (::close(fd) != 0) {
        ::unlink(temp.c_str());
        state_io_error(path, "cannot close " + temp);
    }
    if (::rename(temp.c_str(), path.c_str()) != 0) {
        ::unlink(temp.c_str());
        state_io_error(path, "cannot rename " + temp + " over it");
    }
    std::string dir = std::filesystem::path(path).parent_path().string();
    if (dir.empty()) dir = ".";
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        ::fsync(dfd);  // the rename itself; best effort (some file systems refuse it)
        ::close(dfd);
    }
}

}  // namespace

// At construction: reads the state file (a missing one is an empty overlay) and applies it to the
// empty registry, which adds the channels it added. A file that cannot be read or is not a state
// file is refused with InvalidArgument naming it: the engine would otherwise overwrite it at the
// first change and lose what it held.
void Engine::Impl::load_state() {
    const std::string& path = settings.state_file;
    if (path.empty()) return;
    std::error_code ec;
    if (!std::filesystem::exists(path, ec) && !ec) return;
    const auto size = std::filesystem::file_size(path, ec);
    std::ifstream in(path, std::ios::binary);
    if (ec || !in) throw Error(ErrorCode::InvalidArgument, "state file " + path + " cannot be read; fix its permissions or remove it");
    if (size > kMaxStateFileBytes)
        throw Error(ErrorCode::InvalidArgument, "state file " + path + " is larger than " +
                                                    std::to_string(kMaxStateFileBytes >> 20) + " MiB; it is not one this engine wrote");
    std::string text(static_cast<std::size_t>(size) + 1, '\0');  // one more: a file grown meanwhile shows
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<std::size_t>(in.gcount()));
    if (text.size() > size)
        throw Error(ErrorCode::InvalidArgument, "state file " + path + " is larger than " +
                                                    std::to_string(kMaxStateFileBytes >> 20) + " MiB; it is not one this engine wrote");
    try {
        overlay = ChannelOverlay::from_text(text);
    } catch (const std::invalid_argument& e) {
        throw Error(ErrorCode::InvalidArgument, "state file " + path + " is corrupt (" + e.what() +
                                                    "); fix it or move it away to start without the runtime changes");
    }
    std::lock_guard lock(mu);
    for (const LoadIssue& i : apply_overlay_locked()) log(LogLevel::Warn, "", i.message);
}

// Caller holds mu. Applies the overlay over the registry (idempotent): after a list was loaded, the
// runtime changes win again.
std::vector<LoadIssue> Engine::Impl::apply_overlay_locked() {
    if (overlay.empty()) return {};
    return overlay.apply(registry);
}

// After a change: writes the overlay if a state file is set. Throws Error(Io) when it cannot: the
// change is made in memory but would not survive a restart, which the caller must hear of.
void Engine::Impl::save_state() {
    if (settings.state_file.empty()) return;
    std::string text;
    uint64_t version;
    {
        std::lock_guard lock(mu);
        text = overlay.to_text();
        version = overlay_version;
    }
    std::lock_guard lock(state_mu);
    if (version <= state_written) return;  // a newer snapshot was written meanwhile
    try {
        write_atomically(settings.state_file, text);
    } catch (const Error& e) {
        log(LogLevel::Error, "", std::string("the change is made but not saved: ") + e.what());
        throw Error(ErrorCode::Io, std::string("the change is made but not saved: ") + e.what());
    }
    state_written = version;
}

}  // namespace hlsrelay
