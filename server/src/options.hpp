// hlsrelay-server's command line: parsing, validation and --help text (kept apart from main for tests).
#pragma once

#include "connection_manager.hpp"

#include <hlsrelay/engine.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace hlsrelay::server {

// Which channels start with the server (--autostart). By default the bundled demo list starts (its
// one channel is a local file) and a --channels list does not (its sources are remote and cost
// bandwidth): its channels start from the dashboard, the API, or on demand.
enum class Autostart {
    list_default,  // no --autostart: all of the bundled list, none of a --channels list
    all,
    none,
    listed,  // Options::autostart_ids
};

struct Options {
    // --channels (repeatable), in order: local files (M3U or JSON, loaded at launch) and http(s) URLs
    // (EngineSettings::channel_lists: fetched and refreshed by the engine). Empty: the bundled list.
    std::vector<std::string> channels;
    double list_refresh_interval = kListRefreshInterval;  // --list-refresh
    std::string address = "127.0.0.1";
    uint16_t port = 8000;
    std::string hls_dir;  // empty: memory only
    std::string push_url;  // empty: no push to an origin
    std::string state;    // --state FILE: EngineSettings::state_file (runtime channel changes kept)
    double segment_duration = HlsSettings{}.segment_duration;
    int max_segments = HlsSettings{}.max_segments;
    Container container = HlsSettings{}.container;      // --container
    std::string renditions = HlsSettings{}.renditions;  // --renditions
    bool low_latency = HlsSettings{}.low_latency;       // --low-latency
    double part_duration = HlsSettings{}.part_duration; // --part-duration
    bool on_demand = false;
    bool align_reloads = EngineSettings{}.align_reloads;  // --reload-schedule aligned|rfc
    Autostart autostart = Autostart::list_default;
    std::vector<std::string> autostart_ids;  // Autostart::listed: stream ids or names, in the given order
    double idle_timeout = 60;
    std::string api_token;
    LogLevel log_level = LogLevel::Info;
    std::string web_root;   // empty: the bundled dashboard
    std::string media_dir;  // empty: the build tree's media/ (relative sources of the default list)
    int threads = 2;
    std::size_t max_connections = 2048;
    std::size_t max_connections_per_client = kDefaultMaxConnectionsPerClient;  // 0: no cap
    std::vector<std::string> allowed_hosts;  // --allowed-host, repeatable
    double read_timeout = 10;
    double keepalive_timeout = 15;
    FetchLimits limits;  // --max-playlist-bytes, --max-segment-bytes, --max-redirects: EngineSettings::limits
    std::vector<std::string> guide_urls;                  // --guide (repeatable): EngineSettings::guide_urls
    double guide_refresh_interval = kGuideRefreshInterval;  // --guide-refresh
    std::vector<ProviderSettings> providers;  // --provider (repeatable): EngineSettings::providers
    TunerSettings tuner;  // --tuner-name, --tuner-count, --device-id, --tuner-seed: EngineSettings::tuner
    FailoverSettings failover;  // --failover-attempts, --failover-cooldown, --failback-after...: EngineSettings::failover
};

struct ParsedOptions {
    std::optional<Options> options;  // set when the server should run
    int exit_code = 0;               // otherwise: exit with this after printing `output`
    std::string output;              // --help/--version text (stdout) or an error (stderr)
};

// `args` excludes the program name.
ParsedOptions parse_options(const std::vector<std::string>& args);

std::string usage();

// The ids of the channels to start at launch, in list order for "all" and in the given order for a
// list; throws std::runtime_error naming a listed channel that is not in `loaded`.
std::vector<std::string> channels_to_autostart(const Options& o, const std::vector<ChannelConfig>& loaded);

// PROJECT_VERSION, e.g. "0.1.0".
const char* version();

// "ADDR:PORT", "[V6ADDR]:PORT" or ":PORT" (all interfaces); false if malformed.
bool parse_listen(const std::string& text, std::string& address, uint16_t& port);

}  // namespace hlsrelay::server
