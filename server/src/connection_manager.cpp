// The set of live connections, shared by the acceptor and every connection's io thread.
#include "connection_manager.hpp"

#include "connection.hpp"

#include <cstdint>
#include <vector>

namespace hlsrelay::server {

void ConnectionManager::uncount(Entry& e) {
    if (!e.counted) return;
    e.counted = false;
    const auto it = per_client_.find(e.client);
    if (it != per_client_.end() && --it->second == 0) per_client_.erase(it);
}

ConnectionManager::Admission ConnectionManager::start(const std::shared_ptr<Connection>& c, const std::string& client) {
    std::shared_ptr<Connection> evicted;
    {
        std::lock_guard lock(mu_);
        if (max_per_client_ > 0) {
            const auto it = per_client_.find(client);
            if (it != per_client_.end() && it->second >= max_per_client_) return Admission::client_full;
        }
        if (connections_.size() >= max_) {
            // Only when full, so a linear scan: the oldest connection waiting for a next request.
            auto oldest = connections_.end();
            int64_t oldest_since = 0;
            for (auto it = connections_.begin(); it != connections_.end(); ++it) {
                const int64_t since = it->first->idle_since();
                if (since != 0 && (oldest_since == 0 || since < oldest_since)) {
                    oldest = it;
                    oldest_since = since;
                }
            }
            if (oldest == connections_.end()) return Admission::server_full;
            evicted = oldest->first;
            uncount(oldest->second);
            connections_.erase(oldest);  // its own remove() once closed finds nothing
        }
        connections_.emplace(c, Entry{client});
        ++per_client_[client];
        count_.store(connections_.size(), std::memory_order_relaxed);
    }
    if (evicted) evicted->stop();
    c->start();
    return Admission::started;
}

void ConnectionManager::remove(const std::shared_ptr<Connection>& c) {
    std::lock_guard lock(mu_);
    const auto it = connections_.find(c);
    if (it == connections_.end()) return;
    uncount(it->second);
    connections_.erase(it);
    count_.store(connections_.size(), std::memory_order_relaxed);
}

void ConnectionManager::release_client(const std::shared_ptr<Connection>& c) {
    std::lock_guard lock(mu_);
    const auto it = connections_.find(c);
    if (it != connections_.end()) uncount(it->second);
}

void ConnectionManager::stop_all() {
    std::vector<std::shared_ptr<Connection>> all;
    {
        std::lock_guard lock(mu_);
        for (const auto& [c, entry] : connections_) all.push_back(c);  // each removes itself once closed
    }
    for (const auto& c : all) c->stop();
}

void ConnectionManager::abort_all() {
    std::vector<std::shared_ptr<Connection>> all;
    {
        std::lock_guard lock(mu_);
        for (const auto& [c, entry] : connections_) all.push_back(c);
        connections_.clear();
        per_client_.clear();
        count_.store(0, std::memory_order_relaxed);
    }
    for (const auto& c : all) c->abort();
}

std::size_t ConnectionManager::size() const {
    std::lock_guard lock(mu_);
    return connections_.size();
}

std::size_t ConnectionManager::idle_count() const {
    std::lock_guard lock(mu_);
    std::size_t n = 0;
    for (const auto& [c, entry] : connections_) n += c->idle_since() != 0 ? 1 : 0;
    return n;
}

std::size_t ConnectionManager::count_for(const std::string& client) const {
    std::lock_guard lock(mu_);
    const auto it = per_client_.find(client);
    return it == per_client_.end() ? 0 : it->second;
}

}  // namespace hlsrelay::server
