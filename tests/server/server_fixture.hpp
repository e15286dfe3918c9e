// Shared pieces of the end-to-end server tests: an in-process server over a real engine, fed by a
// loopback live HLS origin or a local file, plus small waiting and HTTP helpers.
#pragma once

#include "log.hpp"
#include "server.hpp"
#include "support/engine_settings.hpp"
#include "support/http_get.hpp"
#include "support/media.hpp"
#include "support/origin.hpp"

#include <hlsrelay/engine.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <thread>

namespace hlsrelay::test {

// What `command` prints on stdout (stderr too when it says 2>&1).
inline std::string run_command(const std::string& command) {
    std::string out;
    FILE* pipe = ::popen(command.c_str(), "r");
    REQUIRE(pipe);
    char buf[4096];
    while (std::size_t n = std::fread(buf, 1, sizeof buf, pipe)) out.append(buf, n);
    ::pclose(pipe);
    return out;
}

// 1 s segments, 320x240@25 H.264 + AAC: short to make, quick to restream.
inline const MediaSet& server_media() {
    MediaSpec spec;
    spec.seconds = 12;
    spec.segment_seconds = 1.0;
    spec.gop_frames = 25;
    spec.name = "server-1s";
    return make_media(spec);
}

inline EngineSettings quick_engine_settings() { return quick_settings(1.0, 5); }

// A server on an ephemeral loopback port with two channels: "live" (from a LiveOrigin, display name
// "Live One") and "file" (a looping local file). Nothing runs until a test starts it.
struct ServerUnderTest {
    explicit ServerUnderTest(server::ServerConfig config = {}, EngineSettings settings = quick_engine_settings())
        : origin(server_media()), engine(std::move(settings)) {
        server::log::set_level(LogLevel::Warn);
        origin.start();
        ChannelConfig live;
        live.id = "live";
        live.name = "Live One";
        live.urls = {origin.url()};
        engine.add_channel(live);
        ChannelConfig file;
        file.id = "file";
        file.name = "Looping File";
        file.urls = {server_media().single_file};
        file.loop = true;
        engine.add_channel(file);
        config.address = "127.0.0.1";
        config.port = 0;
        server = std::make_unique<server::Server>(engine, config);
        server->start();
    }
    ~ServerUnderTest() {
        server->stop();
        engine.stop_all();
    }

    std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port()) + path; }
    uint16_t port() const { return server->port(); }

    HttpResponse get(const std::string& path, const std::string& method = "GET",
                     const std::map<std::string, std::string>& headers = {}) const {
        return http_get(url(path), std::chrono::seconds(15), method, headers);
    }
    nlohmann::json get_json(const std::string& path, int expected_status = 200, const std::string& method = "GET",
                            const std::map<std::string, std::string>& headers = {}) const {
        const HttpResponse r = get(path, method, headers);
        INFO(method << " " << path << " -> " << r.status << " " << r.body);
        REQUIRE(r.status == expected_status);
        REQUIRE(r.headers.at("content-type") == "application/json");
        return nlohmann::json::parse(r.body);
    }
    // Starts a channel through the API and waits for its master playlist to be served.
    void start_and_wait(const std::string& id) const {
        get_json("/api/v1/channels/start-stream/" + id);
        REQUIRE(engine.wait_ready(id, 20));
    }

    LiveOrigin origin;
    Engine engine;
    std::unique_ptr<server::Server> server;
};

}  // namespace hlsrelay::test
