// Which of a channel's source URLs to play: per URL consecutive failures and cooldowns, the choice
// after a failure, and when to return to the primary (fail-back). Pure (no libav, no threads, no
// clock of its own: every call is given `now`), so it is tested with a fake clock; the channel worker
// holds one under its lock. Settings: FailoverSettings (include/hlsrelay/settings.hpp).
#pragma once

#include <hlsrelay/settings.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace hlsrelay {

class FailoverPolicy {
public:
    using Clock = std::chrono::steady_clock;
    using TimePoint = Clock::time_point;

    enum class Role { active, standby, cooldown };

    struct UrlView {
        Role role = Role::standby;
        int consecutive_failures = 0;
        double cooldown_left = 0;  // seconds, 0 when not cooling down
    };

    // What to do after a failure: connect to `index`, no earlier than `wait` seconds from now
    // (> 0 only when every URL cools down: until the first cooldown ends).
    struct Decision {
        std::size_t index = 0;
        double wait = 0;
        bool switched = false;       // `index` is another URL than the one that failed
        bool all_permanent = false;  // every URL failed permanently: the channel has failed
    };

    FailoverPolicy(std::size_t urls, FailoverSettings settings)
        : settings_(settings), urls_(std::max<std::size_t>(1, urls)) {}

    std::size_t size() const { return urls_.size(); }
    std::size_t active() const { return active_; }
    int64_t failovers() const { return failovers_; }

    // The active URL delivered (published output): its failures and cooldown history are forgotten.
    void on_delivered() {
        Url& u = urls_[active_];
        u.consecutive = u.attempts = u.level = 0;
        u.permanent = false;
    }

    // The active URL's connection ended in an error. `permanent`: no retry can help (a refused
    // scheme; every URL so: the channel fails). `hard`: the URL is refused for now (HTTP 401, 403,
    // 404, 410): it cools down at once, without counting as permanent. `delivered`: it published
    // before failing (it worked for a while: the failure starts a new run). Chooses the URL to
    // connect to next.
    Decision on_failure(TimePoint now, bool permanent, bool delivered, bool hard = false) {
        if (delivered) on_delivered();
        const std::size_t failed = active_;
        Url& u = urls_[failed];
        ++u.consecutive;
        ++u.attempts;
        u.permanent = permanent;
        Decision d;
        if (std::all_of(urls_.begin(), urls_.end(), [](const Url& x) { return x.permanent; })) {
            d.index = failed;
            d.all_permanent = true;
            return d;
        }
        if (urls_.size() == 1) {  // nowhere to go: reconnect (with the worker's backoff)
            d.index = failed;
            return d;
        }
        if (permanent || hard || u.attempts >= settings_.attempts_per_url) start_cooldown(u, now);
        // A healthy primary whose fail-back is due is taken now rather than another backup.
        if (failed != 0 && failback_due(now)) {
            switch_to(0);
            d.index = 0;
            d.switched = true;
            return d;
        }
        if (!cooling(u, now)) {  // it has attempts left: again (after the worker's backoff)
            d.index = failed;
            return d;
        }
        // The next URL (in list order, after the one that failed) that does not cool down.
        for (std::size_t step = 0; step < urls_.size(); ++step) {
            const std::size_t i = (failed + 1 + step) % urls_.size();
            if (!cooling(urls_[i], now)) {
                d.index = i;
                break;
            }
            if (step + 1 == urls_.size()) {  // every URL cools down: the one that is over first
                std::size_t best = 0;
                for (std::size_t j = 1; j < urls_.size(); ++j)
                    if (urls_[j].cooldown_until < urls_[best].cooldown_until) best = j;
                d.index = best;
                d.wait = std::max(0.0, seconds(urls_[best].cooldown_until - now));
            }
        }
        d.switched = d.index != failed;
        if (d.switched) switch_to(d.index);
        return d;
    }

    // Fail-back: whether the primary should be probed now (a backup plays, fail-back is on, the
    // primary's cooldown is over and the last probe is probe_interval old).
    bool probe_due(TimePoint now) const {
        if (!probing()) return false;
        return !cooling(urls_[0], now) && (!last_probe_ || now >= *last_probe_ + duration(settings_.probe_interval));
    }
    // When probe_due() may become true (for a wait), or nullopt when no probing is wanted.
    std::optional<TimePoint> next_probe(TimePoint now) const {
        if (!probing()) return std::nullopt;
        TimePoint t = now;
        if (cooling(urls_[0], now)) t = urls_[0].cooldown_until;
        if (last_probe_) t = std::max(t, *last_probe_ + duration(settings_.probe_interval));
        return t;
    }
    // A probe of the primary answered. A probe that was not healthy starts the count over.
    void on_probe(TimePoint now, bool healthy) {
        last_probe_ = now;
        if (!healthy) {
            healthy_since_.reset();
            healthy_latest_.reset();
            return;
        }
        if (!healthy_since_) healthy_since_ = now;
        healthy_latest_ = now;
    }
    // The primary has answered healthy probes for failback_after seconds while a backup plays.
    bool failback_due(TimePoint /*now*/) const {
        if (!probing() || !healthy_since_ || !healthy_latest_) return false;
        return *healthy_latest_ - *healthy_since_ >= duration(settings_.failback_after);
    }
    // The worker left the backup: the primary plays again.
    void fail_back() {
        if (active_ != 0) switch_to(0);
    }

    UrlView view(std::size_t i, TimePoint now) const {
        const Url& u = urls_[i];
        UrlView v;
        v.consecutive_failures = u.consecutive;
        v.cooldown_left = cooling(u, now) ? seconds(u.cooldown_until - now) : 0;
        v.role = i == active_ ? Role::active : v.cooldown_left > 0 ? Role::cooldown : Role::standby;
        return v;
    }

    // The cooldown a URL gets at its n-th cooldown in a row (n from 0).
    double cooldown_for(int n) const {
        return std::min(settings_.cooldown_max, settings_.cooldown * std::pow(2.0, std::min(n, 30)));
    }

private:
    struct Url {
        int consecutive = 0;  // failures in a row (status)
        int attempts = 0;     // failures since its last cooldown (or delivery)
        int level = 0;        // cooldowns in a row: the next one lasts cooldown * 2^level
        bool permanent = false;
        TimePoint cooldown_until{};
    };

    static double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }
    static Clock::duration duration(double s) {
        return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
    }
    static bool cooling(const Url& u, TimePoint now) { return now < u.cooldown_until; }
    bool probing() const { return active_ != 0 && settings_.failback_after > 0 && urls_.size() > 1; }

    void start_cooldown(Url& u, TimePoint now) {
        u.cooldown_until = now + duration(cooldown_for(u.level));
        ++u.level;
        u.attempts = 0;
    }
    void switch_to(std::size_t i) {
        active_ = i;
        ++failovers_;
        last_probe_.reset();
        healthy_since_.reset();
        healthy_latest_.reset();
    }

    FailoverSettings settings_;
    std::vector<Url> urls_;
    std::size_t active_ = 0;
    int64_t failovers_ = 0;
    std::optional<TimePoint> last_probe_, healthy_since_, healthy_latest_;
};

inline std::string_view to_string(FailoverPolicy::Role r) {
    switch (r) {
        case FailoverPolicy::Role::active: return "active";
        case FailoverPolicy::Role::standby: return "standby";
        case FailoverPolicy::Role::cooldown: return "cooldown";
    }
    return "standby";
}

}  // namespace hlsrelay
