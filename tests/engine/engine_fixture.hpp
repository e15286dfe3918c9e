// Shared helpers of the engine suites: test media, engine settings for short tests, waiting.
#pragma once

#include "support/engine_settings.hpp"
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
