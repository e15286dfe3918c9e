// Owns the open connections: enforces --max-connections and closes them all on shutdown.
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <set>

namespace hlsrelay::server {

class Connection;

class ConnectionManager {
public:
    explicit ConnectionManager(std::size_t max_connections) : max_(max_connections) {}

    // Starts `c` unless the limit is reached; false means the caller should drop it.
    bool start(const std::shared_ptr<Connection>& c);
    void remove(const std::shared_ptr<Connection>& c);
    void stop_all();  // asks every connection to close (asynchronously, on its strand)
    void clear();     // forgets them all, for when no io thread is left to close them
    std::size_t size() const;
    bool full() const { return size() >= max_; }

private:
    const std::size_t max_;
    mutable std::mutex mu_;  // connections live on different strands, so add/remove race
    std::set<std::shared_ptr<Connection>> connections_;
};

}  // namespace hlsrelay::server
