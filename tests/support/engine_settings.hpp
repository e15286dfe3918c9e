// Helpers every suite that runs a real engine shares: short-test engine settings and polling.
#pragma once

#include <hlsrelay/engine.hpp>

#include <chrono>
#include <functional>
#include <thread>

namespace hlsrelay::test {

// Short segments, quick reconnects and stall detection, no log output: tests stay fast.
inline EngineSettings quick_settings(double segment_duration = 1.0, int max_segments = 5) {
    EngineSettings s;
    s.hls.segment_duration = segment_duration;
    s.hls.max_segments = max_segments;
    s.hls.cleanup_interval = 0.5;
    s.read_timeout = 2.0;
    s.reconnect_min = 0.2;
    s.reconnect_max = 1.0;
    s.log_level = LogLevel::Off;
    return s;
}

// quick_settings with quick failover (one attempt per URL, short cooldowns, probes and fail-back) and a
// window that keeps every segment of a test.
inline EngineSettings quick_failover_settings() {
    EngineSettings s = quick_settings(1.0, 100);
    s.failover.attempts_per_url = 1;
    s.failover.cooldown = 0.5;
    s.failover.cooldown_max = 1.0;
    s.failover.probe_interval = 0.3;
    s.failover.failback_after = 1.5;
    return s;
}

// Polls `condition` every 50 ms until it holds or `timeout` passes; returns its last value.
inline bool wait_until(const std::function<bool()>& condition, std::chrono::duration<double> timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (condition()) return true;
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
}

}  // namespace hlsrelay::test
