// Per-channel request bookkeeping for viewers, last request time and idle detection.
#include "activity.hpp"

#include <hlsrelay/playlist.hpp>

namespace hlsrelay::server {

void Activity::prune(Entry& e, Clock::time_point now) const {
    for (auto it = e.clients.begin(); it != e.clients.end();)
        it = now - it->second >= window_ ? e.clients.erase(it) : std::next(it);
}

void Activity::record_request(const std::string& channel, const std::string& client, Clock::time_point now) {
    std::lock_guard lock(mu_);
    Entry& e = entries_[channel];
    e.clients[client] = now;
    e.last_request_wall = std::chrono::system_clock::now();
    e.last_use = now;
    e.used = true;
    // Bounds the map by the clients of the last window (plus a second's worth): pruning walks every
    // client, so a channel with many viewers does it once a second, not on each of their requests.
    if (now - e.pruned_at >= std::chrono::seconds(1)) {
        prune(e, now);
        e.pruned_at = now;
    }
}

void Activity::touch(const std::string& channel, Clock::time_point now) {
    std::lock_guard lock(mu_);
    Entry& e = entries_[channel];
    e.last_use = now;
    e.used = true;
}

int Activity::viewers(const std::string& channel, Clock::time_point now) const {
    std::lock_guard lock(mu_);
    auto it = entries_.find(channel);
    if (it == entries_.end()) return 0;
    prune(it->second, now);
    return static_cast<int>(it->second.clients.size());
}

std::optional<std::string> Activity::last_request_at(const std::string& channel) const {
    std::lock_guard lock(mu_);
    auto it = entries_.find(channel);
    if (it == entries_.end() || !it->second.last_request_wall) return std::nullopt;
    return format_date_time(*it->second.last_request_wall);
}

void Activity::add_waiter(const std::string& channel) {
    std::lock_guard lock(mu_);
    ++entries_[channel].waiters;
}

void Activity::remove_waiter(const std::string& channel) {
    std::lock_guard lock(mu_);
    Entry& e = entries_[channel];
    if (e.waiters > 0) --e.waiters;
}

std::vector<std::string> Activity::idle_channels(const std::vector<std::string>& running, Clock::duration idle,
                                                 Clock::time_point now) {
    std::vector<std::string> out;
    std::lock_guard lock(mu_);
    for (const std::string& id : running) {
        Entry& e = entries_[id];
        if (!e.used) {
            e.used = true;
            e.last_use = now;
            continue;
        }
        if (e.waiters == 0 && now - e.last_use >= idle) out.push_back(id);
    }
    return out;
}

}  // namespace hlsrelay::server
