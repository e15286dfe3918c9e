// Owns the open connections: enforces --max-connections and --max-connections-per-client, reclaims
// idle keep-alive connections when full, and closes them all on shutdown.
#pragma once

#include <atomic>
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace hlsrelay::server {

class Connection;

// --max-connections-per-client: well under --max-connections (2048), well over what a player or a
// browser opens (6 per host), so one address cannot take every slot.
inline constexpr std::size_t kDefaultMaxConnectionsPerClient = 64;

class ConnectionManager {
public:
    // `max_per_client` 0: no per-client cap.
    explicit ConnectionManager(std::size_t max_connections, std::size_t max_per_client = 0)
        : max_(max_connections), max_per_client_(max_per_client) {}

    enum class Admission { started, client_full, server_full };

    // Starts `c` (from address `client`) unless a limit says no, then the caller drops it. A client
    // at its cap is refused without touching anyone else. When the server is full, the connection
    // idle longest between two requests (keep-alive) is closed to make room; with none idle the new
    // one is refused.
    Admission start(const std::shared_ptr<Connection>& c, const std::string& client);
    void remove(const std::shared_ptr<Connection>& c);
    // A connection being closed (lingering) no longer counts against its client's cap.
    void release_client(const std::shared_ptr<Connection>& c);
    void stop_all();  // asks every connection to close (asynchronously, on its io thread)
    // Closes every socket left and forgets them all; only once no io thread runs (none to race).
    void abort_all();
    std::size_t size() const;
    std::size_t count_for(const std::string& client) const;  // connections counted against `client`
    std::size_t idle_count() const;  // connections waiting for a next request
    bool full() const { return size() >= max_; }
    // Lock-free and approximate: at least half the slots are taken, so reclaiming idle connections
    // may soon matter (Connection then checks exactly whether it is idle).
    bool crowded() const { return count_.load(std::memory_order_relaxed) * 2 >= max_; }

private:
    struct Entry {
        std::string client;
        bool counted = true;  // against its client's cap
    };
    void uncount(Entry& e);  // with mu_ held

    const std::size_t max_;
    const std::size_t max_per_client_;
    mutable std::mutex mu_;  // connections live on different io threads, so add/remove race
    std::map<std::shared_ptr<Connection>, Entry> connections_;
    std::map<std::string, std::size_t> per_client_;
    std::atomic<std::size_t> count_{0};  // connections_.size(), for crowded()
};

}  // namespace hlsrelay::server
