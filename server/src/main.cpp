// hlsrelay-server: loads a channel list into an Engine, serves it over HTTP until SIGINT/SIGTERM.
#include "bundled.hpp"
#include "log.hpp"
#include "options.hpp"
#include "server.hpp"

#include <hlsrelay/engine.hpp>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <system_error>

namespace {

using namespace hlsrelay;
using namespace hlsrelay::server;
namespace fs = std::filesystem;

std::string read_text(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read channel list " + path.string());
    std::ostringstream text;
    text << in.rdbuf();
    return std::move(text).str();
}

// The bundled list: its relative sources live in the media dir, which the set-up fills.
LoadReport load_default_list(Engine& engine, const Options& o) {
    const fs::path list = default_channels_file();
    const fs::path media = fs::absolute(o.media_dir.empty() ? default_media_dir() : fs::path(o.media_dir));
    std::vector<fs::path> local;
    const std::string text = resolve_relative_sources(read_text(list), media, local);
    for (const fs::path& file : local) {
        std::error_code ec;
        if (!fs::exists(file, ec))
            throw std::runtime_error("demo media " + file.string() + " is missing; generate it with:\n  " +
                                     demo_media_script().string() + " " + file.string() +
                                     "\n(or pass --channels FILE, or --media-dir DIR where it exists)");
    }
    log::info("loading the default channel list " + list.string() + " (media in " + media.string() + ")");
    return engine.load(text);
}

int run(const Options& o) {
    log::set_level(o.log_level);

    // Blocked before any thread exists, so every thread inherits the mask and only sigwait sees them.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);

    EngineSettings settings;
    settings.hls.segment_duration = o.segment_duration;
    settings.hls.max_segments = o.max_segments;
    settings.hls.container = o.container;
    settings.hls.renditions = o.renditions;
    settings.hls.low_latency = o.low_latency;
    settings.hls.part_duration = o.part_duration;
    settings.hls_dir = o.hls_dir;
    settings.state_file = o.state;
    settings.limits = o.limits;
    settings.tuner = o.tuner;
    settings.guide_urls = o.guide_urls;
    settings.guide_refresh_interval = o.guide_refresh_interval;
    settings.log_level = o.log_level;
    settings.log = [](LogLevel level, const std::string& channel, const std::string& message) {
        log::write(level, channel.empty() ? message : channel + ": " + message);
    };
    Engine engine(settings);

    const LoadReport report = o.channels.empty() ? load_default_list(engine, o) : engine.load_file(o.channels);
    const std::string list_name = o.channels.empty() ? default_channels_file().string() : o.channels;
    for (const auto& issue : report.issues)
        log::warn(list_name + (issue.line > 0 ? ":" + std::to_string(issue.line) : std::string()) + ": " + issue.message);
    // With --state, an empty registry may be what the operator made of the list.
    if (report.channels.empty() && o.state.empty()) throw std::runtime_error("no usable channel in " + list_name);

    // --autostart; by default the bundled list (the offline demo) starts, a --channels list does not.
    // Channels disabled (in the list or by the state file) are not started.
    std::vector<std::string> autostart;
    for (const std::string& id : channels_to_autostart(o, report.channels)) {
        if (const auto c = engine.find_channel(id); c && !c->enabled) {
            log::info("not started at launch: " + c->id + " is disabled");
            continue;
        }
        autostart.push_back(id);
    }

    ServerConfig config;
    config.address = o.address;
    config.port = o.port;
    config.threads = o.threads;
    config.max_connections = o.max_connections;
    config.max_connections_per_client = o.max_connections_per_client;
    config.allowed_hosts = o.allowed_hosts;
    config.timeouts.read = std::chrono::milliseconds(static_cast<int64_t>(o.read_timeout * 1000));
    config.timeouts.keep_alive = std::chrono::milliseconds(static_cast<int64_t>(o.keepalive_timeout * 1000));
    config.on_demand = o.on_demand;
    config.idle_timeout = std::chrono::milliseconds(static_cast<int64_t>(o.idle_timeout * 1000));
    config.api_token = o.api_token;
    config.web_root = o.web_root.empty() ? default_web_root() : fs::path(o.web_root);
    Server server(engine, config);
    try {
        server.start();
    } catch (const std::system_error& e) {
        throw std::runtime_error("cannot listen on " + o.address + ":" + std::to_string(o.port) + ": " + e.code().message());
    }
    for (const auto& id : autostart) engine.start(id);
    log::info(std::string("hlsrelay-server ") + version() + " serving " + std::to_string(engine.channels().size()) +
              " channel(s) at " + server.url() + (o.on_demand ? " (on demand)" : ""));
    if (!autostart.empty()) {
        std::string names;
        for (const auto& id : autostart) names += (names.empty() ? "" : ", ") + id;
        log::info("started at launch: " + names);
    } else if (!o.on_demand) {
        log::info("no channel started at launch: start them from the dashboard or the API, or pass --autostart all");
    }

    int signal = 0;
    sigwait(&signals, &signal);
    log::info(std::string("received ") + (signal == SIGINT ? "SIGINT" : "SIGTERM") + ": stopping");
    server.stop();
    engine.stop_all();
    log::info("stopped");
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    const ParsedOptions parsed = parse_options(std::vector<std::string>(argv + 1, argv + argc));
    if (!parsed.options) {
        std::fputs(parsed.output.c_str(), parsed.exit_code == 0 ? stdout : stderr);
        return parsed.exit_code;
    }
    try {
        return run(*parsed.options);
    } catch (const std::exception& e) {
        log::error(e.what());
        return 1;
    }
}
