// hlsrelay-server: loads a channel list into an Engine, serves it over HTTP until SIGINT/SIGTERM.
#include "bundled.hpp"
#include "log.hpp"
#include "options.hpp"
#include "server.hpp"

#include <hlsrelay/engine.hpp>

#include <hlsrelay/stream_id.hpp>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <system_error>
#include <thread>

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
    settings.push_url = o.push_url;
    settings.state_file = o.state;
    settings.limits = o.limits;
    settings.tuner = o.tuner;
    settings.providers = o.providers;
    settings.failover = o.failover;
    settings.align_reloads = o.align_reloads;
    settings.guide_urls = o.guide_urls;
    settings.guide_refresh_interval = o.guide_refresh_interval;
    // --channels: URLs are the engine's to fetch and refresh; files are read here, once.
    std::vector<std::string> files;
    for (const std::string& c : o.channels)
        (starts_with_icase(c, "http://") || starts_with_icase(c, "https://") ? settings.channel_lists : files).push_back(c);
    settings.list_refresh_interval = o.list_refresh_interval;
    settings.log_level = o.log_level;
    settings.log = [](LogLevel level, const std::string& channel, const std::string& message) {
        log::write(level, channel.empty() ? message : channel + ": " + message);
    };
    Engine engine(settings);

    std::vector<ChannelConfig> loaded;
    std::string list_names;
    auto take = [&](const std::string& name, const LoadReport& report) {
        for (const auto& issue : report.issues)
            log::warn(name + (issue.line > 0 ? ":" + std::to_string(issue.line) : std::string()) + ": " + issue.message);
        loaded.insert(loaded.end(), report.channels.begin(), report.channels.end());
        list_names += (list_names.empty() ? "" : ", ") + name;
    };
    if (o.channels.empty()) take(default_channels_file().string(), load_default_list(engine, o));
    for (const std::string& file : files) take(file, engine.load_file(file));
    // With --state, an empty registry may be what the operator made of the lists.
    if (loaded.empty() && settings.channel_lists.empty() && o.state.empty())
        throw std::runtime_error("no usable channel in " + list_names);
    if (!settings.channel_lists.empty()) {
        std::string shown;
        for (const std::string& url : settings.channel_lists) shown += (shown.empty() ? "" : ", ") + redact_url(url);
        log::info("channel list(s) by URL, fetched in the background every " + format_number(o.list_refresh_interval) +
                  " s: " + shown);
        // --autostart may name a channel of a URL list: their first fetch is waited for (bounded by
        // the fetch deadline); by default nothing of a --channels list starts, so nothing waits.
        if (o.autostart == Autostart::all || o.autostart == Autostart::listed) {
            const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(kListDeadline + 5);
            for (;;) {
                const auto lists = engine.list_sources();
                if (std::all_of(lists.begin(), lists.end(), [](const ListSource& l) { return !l.attempted_at.empty(); }) ||
                    std::chrono::steady_clock::now() > until)
                    break;
                std::this_thread::sleep_for(std::chrono::milliseconds(100));
            }
            loaded = engine.channels();
        }
    }

    // --autostart; by default the bundled list (the offline demo) starts, a --channels list does not.
    // Channels disabled (in the list or by the state file) are not started.
    std::vector<std::string> autostart;
    for (const std::string& id : channels_to_autostart(o, loaded)) {
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
    // A provider with more channels than connections: its channels cannot all run, so they run on
    // demand (unless channels are started at launch by name or all: then the starts past the limit fail).
    if (!config.on_demand && o.autostart != Autostart::all && o.autostart != Autostart::listed) {
        for (const ProviderStatus& p : engine.providers()) {
            if (p.max_connections == 0 || p.channels <= static_cast<std::size_t>(p.max_connections)) continue;
            config.on_demand = true;
            log::info("on demand: provider " + p.name + " has " + std::to_string(p.channels) + " channels for " +
                      std::to_string(p.max_connections) + " connection(s)");
        }
    }
    config.idle_timeout = std::chrono::milliseconds(static_cast<int64_t>(o.idle_timeout * 1000));
    config.api_token = o.api_token;
    config.web_root = o.web_root.empty() ? default_web_root() : fs::path(o.web_root);
    Server server(engine, config);
    try {
        server.start();
    } catch (const std::system_error& e) {
        throw std::runtime_error("cannot listen on " + o.address + ":" + std::to_string(o.port) + ": " + e.code().message());
    }
    for (const auto& id : autostart) {
        try {
            engine.start(id);
        } catch (const Error& e) {  // a provider at its limit: the others still start
            if (e.code() != ErrorCode::Unavailable) throw;
            log::warn("not started at launch: " + id + ": " + e.what());
        }
    }
    log::info(std::string("hlsrelay-server ") + version() + " serving " + std::to_string(engine.channels().size()) +
              " channel(s) at " + server.url() + (config.on_demand ? " (on demand)" : ""));
    if (!autostart.empty()) {
        std::string names;
        for (const auto& id : autostart) names += (names.empty() ? "" : ", ") + id;
        log::info("started at launch: " + names);
    } else if (!config.on_demand) {
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
