// The public engine: the registry, one ChannelWorker per running channel, housekeeping, events.
#include <hlsrelay/engine.hpp>

#include "engine/channel_worker.hpp"
#include "ingest/guide_fetcher.hpp"
#include "ingest/list_fetcher.hpp"
#include "ingest/url_policy.hpp"

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
#include <set>
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
    if (std::string p = failover_problem(s.failover); !p.empty()) bad(p);
    for (const std::string& url : s.guide_urls)
        if (!starts_with_icase(url, "http://") && !starts_with_icase(url, "https://"))
            bad("guide URL is not http(s): " + redact_url(url));
    if (std::string p = lists_problem(s.channel_lists, s.list_refresh_interval, s.max_list_bytes); !p.empty()) bad(p);
    {
        GuideFetcherSettings g;
        g.refresh_interval = s.guide_refresh_interval;
        if (std::string p = guide_fetcher_problem(g); !p.empty()) bad(p);
    }
    if (std::string p = providers_problem(s.providers); !p.empty()) bad(p);
    if (std::string p = push_problem(s.push_url, s.push); !p.empty()) bad(p);
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
    std::string provider_held;              // guarded by Impl::mu; the provider whose connection it holds
    bool on_demand = false;                 // guarded by Impl::mu; started with StartMode::on_demand
    // When a reader last asked for one of its files (steady clock ticks): idle on-demand channels of
    // a provider at its limit are reclaimed.
    std::atomic<int64_t> last_use{0};
    void touch() { last_use.store(SteadyClock::now().time_since_epoch().count(), std::memory_order_relaxed); }
};

// A provider's connections: the ids of the channels holding them, in the order they took them.
struct ProviderState {
    ProviderSettings settings;
    std::vector<std::string> holders;
    int64_t refused = 0, reclaimed = 0;
};

namespace {
// "host" and "host:port" of a URL, lowercase ("" when it has none: a path, a pipe).
std::pair<std::string, std::string> url_host(std::string_view url) {
    const std::size_t scheme = url.find("://");
    if (scheme == std::string_view::npos) return {};
    std::string_view rest = url.substr(scheme + 3);
    rest = rest.substr(0, rest.find_first_of("/?#"));
    if (const std::size_t at = rest.rfind('@'); at != std::string_view::npos) rest.remove_prefix(at + 1);
    std::string host_port(rest);
    std::transform(host_port.begin(), host_port.end(), host_port.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    std::string host = host_port;
    if (!host.empty() && host.front() == '[') host = host.substr(0, host.find(']') + 1);
    else host = host.substr(0, host.find(':'));
    return {host, host_port};
}
}  // namespace

struct Subscriber {
    std::mutex call;  // held while the callback runs, so unsubscribe can wait for it
    EventCallback callback;
    std::atomic<bool> active{true};
    std::atomic<std::thread::id> running_on{};
};

struct Engine::Impl {
    // The worker of a running channel (by id or display name); null for an unknown or stopped one.
    // touch: a reader asks for one of its files (ChannelSlot::last_use).
    std::shared_ptr<ChannelWorker> running_worker(std::string_view name, bool touch = false) {
        std::lock_guard lock(mu);
        const ChannelConfig* c = registry.find(name);
        if (!c) return nullptr;
        auto it = slots.find(c->id);
        if (it == slots.end()) return nullptr;
        if (touch && it->second->worker) it->second->touch();
        return it->second->worker;
    }

    EngineSettings settings;
    std::unique_ptr<Pusher> pusher;  // with a push_url: the engine's pool of push threads
    mutable std::mutex mu;
    Registry registry;
    std::map<std::string, std::shared_ptr<ChannelSlot>, std::less<>> slots;

    std::mutex subscribers_mu;
    std::map<SubscriptionId, std::shared_ptr<Subscriber>> subscribers;
    SubscriptionId next_subscription = 1;

    std::shared_ptr<BufferPool> pool = std::make_shared<BufferPool>();

    // Provider connections, guarded by mu; provider_cv is notified (under mu) when one is released.
    std::map<std::string, ProviderState, std::less<>> providers;
    std::condition_variable provider_cv;

    // Caller holds mu. The provider whose connections the channel uses: its `provider` field, else
    // the first provider serving the host of its first URL; "" for none.
    std::string provider_for(const ChannelConfig& c) const {
        if (!c.provider.empty()) return c.provider;
        if (c.urls.empty()) return {};
        const auto [host, host_port] = url_host(c.urls.front());
        if (host.empty()) return {};
        for (const ProviderSettings& p : settings.providers)
            for (const std::string& h : p.hosts)
                if (h == host || h == host_port) return p.name;
        return {};
    }

    // Caller holds mu. Gives back the provider connection the slot holds, if any.
    void release_provider_locked(ChannelSlot& slot) {
        if (slot.provider_held.empty()) return;
        auto it = providers.find(slot.provider_held);
        if (it != providers.end())
            for (auto& [id, s] : slots)
                if (s.get() == &slot) std::erase(it->second.holders, id);
        slot.provider_held.clear();
        slot.on_demand = false;
        provider_cv.notify_all();
    }

    // Takes a connection of the channel's provider for it (nothing to take: no provider, no limit, or
    // it holds one already). At the limit: reclaims the connection of an on-demand channel idle for
    // kProviderReclaimIdle seconds (stopping it), else waits kProviderWait seconds for one, else throws
    // Unavailable. Caller holds neither mu nor any slot's control (a reclaim stops another channel).
    void acquire_provider(const ChannelConfig& c, const std::shared_ptr<ChannelSlot>& slot, StartMode mode) {
        const auto deadline = SteadyClock::now() + std::chrono::duration_cast<SteadyClock::duration>(
                                                       std::chrono::duration<double>(kProviderWait));
        std::unique_lock lock(mu);
        for (;;) {
            const std::string name = provider_for(c);
            auto it = providers.find(name);
            if (name.empty() || it == providers.end() || it->second.settings.max_connections == 0) return;
            if (slot->provider_held == name) return;  // running, or another start of it took one
            ProviderState& p = it->second;
            if (static_cast<int>(p.holders.size()) < p.settings.max_connections) {
                p.holders.push_back(c.id);
                slot->provider_held = name;
                slot->on_demand = mode == StartMode::on_demand;
                return;
            }
            // The on-demand holder idle longest, if idle long enough.
            const int64_t now = SteadyClock::now().time_since_epoch().count();
            const int64_t idle_ticks = std::chrono::duration_cast<SteadyClock::duration>(
                                           std::chrono::duration<double>(kProviderReclaimIdle)).count();
            std::shared_ptr<ChannelSlot> victim;
            std::string victim_id;
            for (const std::string& holder : p.holders) {
                auto s = slots.find(holder);
                if (s == slots.end() || !s->second->on_demand) continue;
                const int64_t used = s->second->last_use.load(std::memory_order_relaxed);
                if (now - used < idle_ticks) continue;
                if (!victim || used < victim->last_use.load(std::memory_order_relaxed)) {
                    victim = s->second;
                    victim_id = holder;
                }
            }
            if (victim) {
                ++p.reclaimed;
                lock.unlock();
                log(LogLevel::Info, victim_id, "stopped: idle, its connection of provider " + name + " goes to " + c.id);
                {
                    std::lock_guard control(victim->control);
                    stop(victim);
                }
                lock.lock();
                continue;
            }
            if (provider_cv.wait_until(lock, deadline) == std::cv_status::timeout) {
                // Once more after the deadline: a release may have come with it.
                if (static_cast<int>(p.holders.size()) < p.settings.max_connections) continue;
                ++p.refused;
                std::string holders;
                for (const std::string& h : p.holders) holders += (holders.empty() ? "" : ", ") + h;
                throw Error(ErrorCode::Unavailable, "provider " + name + ": " + std::to_string(p.holders.size()) + " of " +
                                                        std::to_string(p.settings.max_connections) +
                                                        " connections in use by " + holders);
            }
        }
    }

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

    // The guide URLs a loaded list names (its url-tvg) join the guides.
    void add_list_guide_urls(const std::vector<std::string>& urls) {
        std::lock_guard lock(guide_mu);
        bool new_url = false;
        for (const std::string& u : urls) {
            if (std::find(list_guide_urls.begin(), list_guide_urls.end(), u) != list_guide_urls.end()) continue;
            list_guide_urls.push_back(u);
            new_url = true;
        }
        if (guides) {
            guides->set_channels(wanted_guide_channels());
            if (new_url) guides->set_urls(guide_urls_locked());
        } else if (new_url) {
            guide_fetcher_locked();
        }
    }

    // Channel lists by URL (EngineSettings::channel_lists): the fetcher, made at construction when
    // there are lists and destroyed first by the destructor, and each list's channels.
    std::unique_ptr<ListFetcher> lists;
    // A list's channel as last taken from it: its registry id and the entry as the list gave it
    // (compared with the next fetch's, so a channel the list did not change keeps what the host did
    // to it, and one it changed is updated).
    // An entry whose tvg-id is a channel's of another list is `merged`: `id` is that channel, and
    // `contributed` the URLs the entry added to it as backups (taken back when the entry goes).
    struct ListedChannel {
        std::string id;
        ChannelConfig entry;
        bool merged = false;
        std::vector<std::string> contributed;
    };
    // origins_mu serialises reconciles and guards `origins`; taken before a slot's control and mu,
    // never under them.
    std::mutex origins_mu;
    std::map<std::string, std::map<std::string, ListedChannel>> origins;  // list URL -> list key -> channel
    std::map<std::string, std::vector<std::string>> list_ids;  // guarded by mu: list URL -> registry ids
    // Guarded by mu: the list each channel came from (a list URL, or "load N" for the Nth load(), a
    // file); none for a channel added over the API. Channels of different lists with the same
    // tvg-id are one: the first one taken keeps it, the others' URLs become its backups.
    std::map<std::string, std::string, std::less<>> list_of;
    uint64_t loads = 0;  // guarded by mu

    // Caller holds mu. The channel of another list than `list` with `c`'s tvg-id, first in order.
    const ChannelConfig* merge_target_locked(const ChannelConfig& c, const std::string& list) const {
        if (c.tvg_id.empty()) return nullptr;
        return registry.find_if([&](const ChannelConfig& t) {
            if (t.tvg_id != c.tvg_id) return false;
            const auto it = list_of.find(t.id);
            return it != list_of.end() && it->second != list;
        });
    }
    // Caller holds origins_mu. `c` (channel `id` as its own list gives it) with the backups the other
    // lists' merged entries contributed to it.
    ChannelConfig with_merged_backups(const std::string& id, ChannelConfig c) const {
        for (const auto& [list, entries] : origins)
            for (const auto& [key, l] : entries)
                if (l.merged && l.id == id) add_backups(c, l.contributed);
        return c;
    }

    // Caller holds mu. The channel whose id is exactly `id` (find() also matches names).
    const ChannelConfig* find_id(const std::string& id) const {
        const ChannelConfig* c = registry.find(id);
        return c && c->id == id ? c : nullptr;
    }

    ListOutcome reconcile_list(const std::string& url, std::string_view text);
    std::pair<ChannelConfig, bool> update_channel(std::string_view name, ChannelConfig changes, bool by_operator = false);
    void remove_id(const std::string& id);
    void start_lists();

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
    }
    static void move_listing(ChannelStatus& to, ChannelStatus& from) {
        to.enabled = from.enabled;
        to.group = std::move(from.group);
        to.logo = std::move(from.logo);
        to.tvg_id = std::move(from.tvg_id);
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
        s.provider = provider_for(c);
        // Not running: every URL stands by (failures as the last run left them, no cooldown).
        std::vector<SourceStatus> sources;
        for (std::size_t i = 0; i < c.urls.size(); ++i)
            sources.push_back(SourceStatus{redact_url(c.urls[i]), "standby",
                                           i < s.sources.size() ? s.sources[i].consecutive_failures : 0, 0});
        s.sources = std::move(sources);
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
        if (pusher) {
            std::string base = settings.push_url;
            while (!base.empty() && base.back() == '/') base.pop_back();
            worker->set_push(pusher->open(base + "/" + config.id, config.id));
        }
        {
            std::lock_guard lock(mu);
            slot->worker = worker;
        }
        worker->start();
    }

    // keep_provider: a restart keeps the provider connection the channel holds.
    void stop(const std::shared_ptr<ChannelSlot>& slot, bool keep_provider = false) {
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
        if (!keep_provider) release_provider_locked(*slot);
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
    for (const ProviderSettings& p : impl_->settings.providers) impl_->providers[p.name].settings = p;
    impl_->load_state();  // before any thread: a refused state file leaves nothing to join
    // libav's own log is process-wide and says little our errors do not. Quieten it only while it
    // is at libav's default, so a host that chose its own level keeps it.
    if (av_log_get_level() == AV_LOG_INFO) {
        av_log_set_level(impl_->settings.log_level == LogLevel::Debug ? AV_LOG_WARNING : AV_LOG_QUIET);
        av_log_set_callback(&scrubbed_av_log);
    }
    if (!impl_->settings.push_url.empty())
        impl_->pusher = std::make_unique<Pusher>(impl_->settings.push, [impl = impl_.get()](LogLevel l, const std::string& ch,
                                                                                            const std::string& m) { impl->log(l, ch, m); });
    impl_->housekeeper = std::thread([impl = impl_.get()] { impl->housekeeping_loop(); });
    if (!impl_->settings.guide_urls.empty()) {
        std::lock_guard lock(impl_->guide_mu);
        impl_->guide_fetcher_locked();
    }
    impl_->start_lists();
}

Engine::~Engine() {
    impl_->lists.reset();  // stops its thread, a fetch or a reconcile in flight included
    {
        std::lock_guard lock(impl_->guide_mu);
        impl_->guides.reset();  // stops its threads, a fetch in flight included
    }
    stop_all();
    impl_->pusher.reset();  // every channel closed its queue: the threads end
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
    std::vector<std::pair<std::string, std::string>> notes;  // logged once mu is released
    {
        std::lock_guard lock(impl_->mu);
        const std::string list = "load " + std::to_string(++impl_->loads);
        for (auto& c : parsed.channels) {
            // The runtime changes own the channels they added or removed: the list's copy yields.
            if (impl_->overlay.owns(c.id.empty() ? slugify(c.name) : c.id)) continue;
            try {
                if (!c.hls.empty()) validate(impl_->hls_for(c));
                if (const ChannelConfig* target = impl_->merge_target_locked(c, list)) {
                    // Another list's channel (a running one takes its new backups at its next start).
                    ChannelConfig merged = *target;
                    if (!add_backups(merged, c.urls).empty()) {
                        notes.emplace_back(merged.id, "the sources of '" + c.name + "' (tvg-id " + c.tvg_id +
                                                          ") from another list are its backups now");
                        const std::string id = merged.id;  // not a view of what is moved
                        impl_->registry.update(id, std::move(merged));
                    }
                    continue;
                }
                result.channels.push_back(impl_->registry.add(std::move(c)));
                impl_->list_of[result.channels.back().id] = list;
            } catch (const std::exception& e) {
                result.issues.push_back({0, std::string("channel not added: ") + e.what()});
            }
        }
        for (LoadIssue& i : impl_->apply_overlay_locked()) result.issues.push_back(std::move(i));
    }
    for (const auto& [id, note] : notes) impl_->log(LogLevel::Info, id, note);
    impl_->add_list_guide_urls(parsed.guide_urls);
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
    const ChannelConfig updated = impl_->update_channel(name, std::move(changes), true).first;
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

bool Engine::has_id(std::string_view id) const {
    std::lock_guard lock(impl_->mu);
    return impl_->registry.find_id(id) != nullptr;
}

std::optional<ChannelConfig> Engine::find_channel(std::string_view name) const {
    std::lock_guard lock(impl_->mu);
    const ChannelConfig* c = impl_->registry.find(name);
    if (!c) return std::nullopt;
    return *c;
}

ChannelConfig Engine::start(std::string_view name, StartMode mode) {
    std::shared_ptr<ChannelSlot> slot;
    ChannelConfig config;
    {
        std::lock_guard lock(impl_->mu);
        config = impl_->lookup(name);
        slot = impl_->slot_for(config.id);
    }
    if (!config.enabled)  // before taking a provider connection for it
        throw Error(ErrorCode::Conflict, "Channel '" + config.id + "' is disabled: enable it before starting it");
    slot->touch();  // a start is a use: an on-demand channel is not reclaimed before its first read
    // Before the control lock: a reclaim stops another channel, under that one's control lock.
    impl_->acquire_provider(config, slot, mode);
    std::lock_guard control(slot->control);
    // A connection taken for a start that does not happen goes back (a failure below, or a removal).
    auto give_back = [&] {
        std::lock_guard lock(impl_->mu);
        if (!slot->worker) impl_->release_provider_locked(*slot);
    };
    try {
        {
            std::lock_guard lock(impl_->mu);  // it may have been removed or updated meanwhile
            const ChannelConfig* current = impl_->registry.find(config.id);
            if (!current) throw Error(ErrorCode::NotFound, "Channel not found: " + std::string(name));
            config = *current;
        }
        if (!config.enabled)
            throw Error(ErrorCode::Conflict, "Channel '" + config.id + "' is disabled: enable it before starting it");
        impl_->start(config, slot);
    } catch (...) {
        give_back();
        throw;
    }
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
    std::string provider;
    std::string display_name;
    ChannelStatus listing;
    {
        std::lock_guard lock(impl_->mu);
        const ChannelConfig& c = impl_->lookup(name);
        auto it = impl_->slots.find(c.id);
        if (it == impl_->slots.end() || !it->second->worker)
            return impl_->idle_status(c, it == impl_->slots.end() ? nullptr : it->second.get());
        worker = it->second->worker;
        provider = impl_->provider_for(c);
        display_name = c.name;
        Impl::set_listing(listing, c);
    }
    ChannelStatus s = worker->status();
    Impl::move_listing(s, listing);
    s.provider = std::move(provider);
    s.channel_name = std::move(display_name);  // a metadata update keeps the worker and its config
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
        s.provider = std::move(out[index].provider);
        s.channel_name = std::move(out[index].channel_name);  // a metadata update keeps the worker
        out[index] = std::move(s);
    }
    return out;
}

std::vector<ProviderStatus> Engine::providers() const {
    std::vector<ProviderStatus> out;
    std::lock_guard lock(impl_->mu);
    for (const ProviderSettings& settings : impl_->settings.providers) {
        const ProviderState& p = impl_->providers.at(settings.name);
        ProviderStatus s;
        s.name = settings.name;
        s.max_connections = settings.max_connections;
        s.holders = p.holders;
        for (const std::string& h : p.holders) {
            auto it = impl_->slots.find(h);
            if (it != impl_->slots.end() && it->second->on_demand) s.on_demand.push_back(h);
        }
        for (const ChannelConfig& c : impl_->registry.list())
            if (impl_->provider_for(c) == settings.name) ++s.channels;
        s.refused = p.refused;
        s.reclaimed = p.reclaimed;
        out.push_back(std::move(s));
    }
    return out;
}

HlsSettings Engine::settings_for(std::string_view name) const {
    std::lock_guard lock(impl_->mu);
    return impl_->hls_for(impl_->lookup(name));
}

std::optional<Resource> Engine::read(std::string_view name, std::string_view file, Delivery delivery) const {
    const std::shared_ptr<ChannelWorker> worker = impl_->running_worker(name, true);
    if (!worker) return std::nullopt;
    return worker->read(file, delivery);
}

std::optional<Resource> Engine::read_ts_segment(std::string_view name, int64_t msn) const {
    const std::shared_ptr<ChannelWorker> worker = impl_->running_worker(name, true);
    if (!worker) return std::nullopt;
    return worker->read_ts(msn);
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
    const std::shared_ptr<ChannelWorker> worker = playlist_worker(impl_->running_worker(name, true), file);
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

// ---------------------------------------------------------------------------------------------------
// Updates and channel lists by URL.

// Updates a channel (everything but its id); a running channel restarts only when its source changed
// (same_source): a guide or lineup attribute alone keeps it running. Returns the channel as stored
// and whether it restarted.
std::pair<ChannelConfig, bool> Engine::Impl::update_channel(std::string_view name, ChannelConfig changes, bool by_operator) {
    if (!changes.hls.empty()) validate(changes.hls.apply(settings.hls));
    auto [id, slot] = resolve(name);
    bool restart = false, other_provider = false, was_on_demand = false;
    ChannelConfig before, updated;
    {
        std::lock_guard control(slot->control);
        bool was_running;
        {
            std::lock_guard lock(mu);
            const ChannelConfig* current = registry.find(id);
            if (!current) throw Error(ErrorCode::NotFound, "Channel not found: " + id);
            before = *current;
            changes.id = id;
            try {
                if (!registry.update(id, std::move(changes))) throw Error(ErrorCode::NotFound, "Channel not found: " + id);
            } catch (const std::invalid_argument& e) {
                throw Error(ErrorCode::InvalidArgument, e.what());
            }
            updated = *registry.find(id);
            was_running = slot->worker != nullptr;
            was_on_demand = slot->on_demand;
            other_provider = !slot->provider_held.empty() && slot->provider_held != provider_for(updated);
            if (by_operator) {  // kept in the overlay (and the state file): list refreshes do not undo it
                overlay.record_update(before, updated);
                ++overlay_version;
            }
        }
        channels_changed();
        restart = was_running && (!same_source(before, updated) || other_provider || !updated.enabled);
        if (restart && !updated.enabled) {
            stop(slot);  // a channel disabled by the update stays stopped
            return {updated, false};
        }
        if (restart && !other_provider) {
            stop(slot, true);  // on the provider connection it holds
            start(updated, slot);
        } else if (restart) {
            stop(slot);
        }
    }
    if (restart && other_provider) {
        // Now a channel of another provider: a start there, which may find it full (outside the
        // control lock, as Engine::start: a reclaim stops another channel).
        try {
            acquire_provider(updated, slot, was_on_demand ? StartMode::on_demand : StartMode::manual);
            std::lock_guard control(slot->control);
            try {
                start(updated, slot);
            } catch (...) {
                std::lock_guard lock(mu);
                if (!slot->worker) release_provider_locked(*slot);
                throw;
            }
        } catch (const Error& e) {
            log(LogLevel::Warn, id, std::string("stopped by the update, not restarted: ") + e.what());
        }
    }
    return {updated, restart};
}

// Removes the channel whose id is `id` (stopped first); nothing when there is none.
void Engine::Impl::remove_id(const std::string& id) {
    std::shared_ptr<ChannelSlot> slot;
    {
        std::lock_guard lock(mu);
        if (!find_id(id)) return;
        slot = slot_for(id);
    }
    std::lock_guard control(slot->control);
    stop(slot);
    std::lock_guard lock(mu);
    registry.remove(id);
    slots.erase(id);
    list_of.erase(id);
}

// One good fetch of list `url`, reconciled with the registry. A list's channels are keyed by the id
// the list gives them (hlsrelay-id, a safe tvg-id, else the slug of the name; JSON: id, else the slug;
// a repeated key gets _2, _3 in list order, as the registry would): new keys are added, keys gone are
// removed (only this list's channels), changed entries update their channel (restarting it only when
// its source changed). A list without a usable channel, or one that would remove every channel it
// has in the registry and keep none, is refused and changes nothing.
ListOutcome Engine::Impl::reconcile_list(const std::string& url, std::string_view text) {
    ListOutcome out;
    LoadReport parsed = parse_channels(text);
    out.counts.issues = parsed.issues.size();
    std::vector<std::pair<std::string, ChannelConfig>> wanted;
    std::set<std::string> keys;
    for (ChannelConfig& c : parsed.channels) {
        try {
            if (!c.hls.empty()) validate(hls_for(c));
            for (const std::string& source : c.urls)
                if (std::string p = url::check_listed_source(source); !p.empty()) throw std::invalid_argument(p);
        } catch (const std::exception& e) {
            ++out.counts.issues;
            log(LogLevel::Warn, "", "channel list " + redact_url(url) + ": entry '" + c.name + "' skipped: " + scrub_urls(e.what()));
            continue;
        }
        const std::string base = c.id.empty() ? slugify(c.name) : c.id;
        std::string key = base;
        for (int n = 2; keys.count(key); ++n) key = base + "_" + std::to_string(n);
        keys.insert(key);
        wanted.emplace_back(std::move(key), std::move(c));
    }
    if (wanted.empty()) {
        out.error = "the list has no usable channel";
        if (!parsed.issues.empty()) out.error += " (" + scrub_urls(parsed.issues.front().message) + ")";
        out.error += "; the lineup is kept";
        return out;
    }

    std::lock_guard serial(origins_mu);
    auto& listed = origins[url];
    enum class Kind { add, update, remove, merge, remerge };
    struct Op {
        Kind kind;
        std::string key;
        ChannelConfig entry;
    };
    std::vector<Op> ops;
    {
        std::lock_guard lock(mu);
        std::size_t present = 0, kept = 0;
        for (const auto& [key, l] : listed)
            if (find_id(l.id)) {
                ++present;
                kept += keys.count(key);
            }
        if (present > 0 && kept == 0) {
            out.error = "the list would remove all " + std::to_string(present) +
                        " of its channels and keep none; refused as a provider error, the lineup is kept";
            return out;
        }
        for (auto& [key, c] : wanted) {
            auto it = listed.find(key);
            if (it == listed.end() || !find_id(it->second.id))
                ops.push_back({merge_target_locked(c, url) ? Kind::merge : Kind::add, key, std::move(c)});
            else if (!(it->second.entry == c))
                ops.push_back({it->second.merged ? Kind::remerge : Kind::update, key, std::move(c)});
        }
        for (const auto& [key, l] : listed)
            if (!keys.count(key)) ops.push_back({Kind::remove, key, {}});
    }
    for (Op& op : ops) {
        try {
            if (op.kind == Kind::merge || op.kind == Kind::remerge || (op.kind == Kind::remove && listed[op.key].merged)) {
                // Another list's channel: this entry's URLs are its backups (none of its own channel).
                const ListedChannel before = op.kind == Kind::merge ? ListedChannel{} : listed[op.key];
                std::string target;
                ChannelConfig changed;
                {
                    std::lock_guard lock(mu);
                    const ChannelConfig* t = op.kind == Kind::merge ? merge_target_locked(op.entry, url) : find_id(before.id);
                    if (t) {
                        target = t->id;
                        changed = *t;
                    }
                }
                if (target.empty() && op.kind == Kind::merge) continue;  // gone meanwhile: taken as its own next time
                remove_backups(changed, before.contributed);
                std::vector<std::string> added;
                if (op.kind != Kind::remove) added = add_backups(changed, op.entry.urls);
                bool restarted = false;
                if (!target.empty() && (!before.contributed.empty() || !added.empty()))
                    restarted = update_channel(target, std::move(changed)).second;
                if (op.kind == Kind::remove) {
                    listed.erase(op.key);
                } else {
                    if (op.kind == Kind::merge && !added.empty())
                        log(LogLevel::Info, target, "the sources of '" + op.entry.name + "' (tvg-id " + op.entry.tvg_id +
                                                        ") from list " + redact_url(url) + " are its backups now");
                    listed[op.key] = {target, std::move(op.entry), true, std::move(added)};
                }
                ++out.counts.updated;
                out.counts.restarted += restarted;
            } else if (op.kind == Kind::remove) {
                const std::string id = listed[op.key].id;
                listed.erase(op.key);
                bool was_present;
                {
                    std::lock_guard lock(mu);
                    was_present = find_id(id) != nullptr;
                }
                remove_id(id);
                out.counts.removed += was_present;
            } else if (op.kind == Kind::update) {
                // The list's entry, with the backups other lists' entries gave the channel.
                const bool restarted = update_channel(listed[op.key].id, with_merged_backups(listed[op.key].id, op.entry)).second;
                listed[op.key].entry = std::move(op.entry);
                ++out.counts.updated;
                out.counts.restarted += restarted;
            } else {
                std::string id;
                {
                    std::lock_guard lock(mu);
                    id = registry.add(op.entry).id;
                    list_of[id] = url;
                }
                listed[op.key] = {id, std::move(op.entry), false, {}};
                ++out.counts.added;
            }
        } catch (const Error& e) {
            if (e.code() != ErrorCode::NotFound) ++out.counts.issues;  // removed meanwhile: added back next time
            log(LogLevel::Warn, "", "channel list " + redact_url(url) + ": " + scrub_urls(e.what()));
        } catch (const std::exception& e) {
            ++out.counts.issues;
            log(LogLevel::Warn, "", "channel list " + redact_url(url) + ": channel not taken: " + scrub_urls(e.what()));
        }
    }
    {
        std::lock_guard lock(mu);
        // The operator's changes (the overlay: channels removed, fields changed) win over the list's.
        for (const LoadIssue& i : apply_overlay_locked()) log(LogLevel::Warn, "", i.message);
        std::vector<std::string> ids;
        for (const auto& [key, l] : listed)
            if (find_id(l.id)) ids.push_back(l.id);
        out.counts.channels = ids.size();
        list_ids[url] = std::move(ids);
    }
    channels_changed();
    add_list_guide_urls(parsed.guide_urls);
    return out;
}

void Engine::Impl::start_lists() {
    if (settings.channel_lists.empty()) return;
    ListFetcherSettings l;
    l.urls = settings.channel_lists;
    l.refresh_interval = settings.list_refresh_interval;
    l.max_bytes = settings.max_list_bytes;
    l.max_redirects = settings.limits.max_redirects;
    l.on_fetched = [this](const std::string& url, std::string body) { return reconcile_list(url, body); };
    l.log = [this](LogLevel level, const std::string&, const std::string& message) { log(level, "", message); };
    lists = std::make_unique<ListFetcher>(std::move(l));
}

std::vector<ListSource> Engine::list_sources() const {
    if (!impl_->lists) return {};
    std::vector<ListSource> out = impl_->lists->sources();
    const std::vector<std::string>& urls = impl_->lists->urls();
    std::lock_guard lock(impl_->mu);
    for (std::size_t i = 0; i < out.size() && i < urls.size(); ++i) {
        auto it = impl_->list_ids.find(urls[i]);
        std::size_t n = 0;
        if (it != impl_->list_ids.end())
            for (const std::string& id : it->second) n += impl_->find_id(id) != nullptr;
        out[i].channels = n;
    }
    return out;
}

void Engine::refresh_lists() {
    if (impl_->lists) impl_->lists->refresh_now();
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
