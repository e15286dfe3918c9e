// Shared helpers of the engine suites: test media, engine settings for short tests, waiting.
#pragma once

#include "support/media.hpp"
#include "support/origin.hpp"

#include <hlsrelay/engine.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>

namespace hlsrelay::test {

// 1 s segments, 1 s GOPs, 320x240@25 H.264 + AAC: the live source of most tests.
inline const MediaSet& live_media() {
    MediaSpec spec;
    spec.seconds = 24;
    spec.segment_seconds = 1.0;
    spec.gop_frames = 25;
    spec.name = "live-1s";
    return make_media(spec);
}

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

// Polls `condition` every 50 ms until it holds or `timeout` passes; returns its last value.
inline bool wait_until(const std::function<bool()>& condition, std::chrono::duration<double> timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (condition()) return true;
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
}

inline ChannelConfig channel(std::string name, std::vector<std::string> urls) {
    ChannelConfig c;
    c.name = std::move(name);
    c.urls = std::move(urls);
    return c;
}

// A fresh, empty directory under the test media root, removed at the end of the scope.
struct TempDir {
    std::filesystem::path path;
    explicit TempDir(const std::string& name) {
        path = std::filesystem::path(media_root()) / ("tmp-" + name + "-" + std::to_string(::getpid()));
        std::filesystem::remove_all(path);
        std::filesystem::create_directories(path);
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
};

// Runs ffmpeg with `args` (a shell-free argument string is not needed: tests pass fixed arguments).
void run_ffmpeg(const std::vector<std::string>& args);

}  // namespace hlsrelay::test
