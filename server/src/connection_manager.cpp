// The set of live connections, shared by the acceptor and every connection's strand.
#include "connection_manager.hpp"

#include "connection.hpp"

namespace hlsrelay::server {

bool ConnectionManager::start(const std::shared_ptr<Connection>& c) {
    {
        std::lock_guard lock(mu_);
        if (connections_.size() >= max_) return false;
        connections_.insert(c);
    }
    c->start();
    return true;
}

void ConnectionManager::remove(const std::shared_ptr<Connection>& c) {
    std::lock_guard lock(mu_);
    connections_.erase(c);
}

void ConnectionManager::stop_all() {
    std::set<std::shared_ptr<Connection>> all;
    {
        std::lock_guard lock(mu_);
        all = connections_;  // each removes itself once closed on its strand
    }
    for (const auto& c : all) c->stop();
}

void ConnectionManager::clear() {
    std::lock_guard lock(mu_);
    connections_.clear();
}

std::size_t ConnectionManager::size() const {
    std::lock_guard lock(mu_);
    return connections_.size();
}

}  // namespace hlsrelay::server
