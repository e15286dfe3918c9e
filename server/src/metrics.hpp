// Prometheus text exposition of the channels' status, viewers and the server's response counts.
#pragma once

#include "activity.hpp"

#include <hlsrelay/status.hpp>

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

namespace hlsrelay::server {

// Responses sent, by status code; lock-free because every response bumps it.
class HttpCounters {
public:
    void count(int status) {
        if (status >= 100 && status < 600) counts_[static_cast<std::size_t>(status)].fetch_add(1, std::memory_order_relaxed);
    }
    uint64_t get(int status) const {
        return status >= 100 && status < 600 ? counts_[static_cast<std::size_t>(status)].load(std::memory_order_relaxed) : 0;
    }

private:
    std::array<std::atomic<uint64_t>, 600> counts_{};
};

std::string render_metrics(const std::vector<ChannelStatus>& channels, const Activity& activity,
                           const HttpCounters& http);

// Label values escape backslash, double quote and newline (Prometheus text format 0.0.4).
std::string escape_label(std::string_view value);

}  // namespace hlsrelay::server
