// Command-line parsing: "--name value" and "--name=value", numbers checked against their ranges.
#include "options.hpp"

#include "log.hpp"

#include <hlsrelay/settings.hpp>
#include <hlsrelay/text.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <functional>
#include <map>

#ifndef HLSRELAY_VERSION
#define HLSRELAY_VERSION "unknown"
#endif

namespace hlsrelay::server {

const char* version() { return HLSRELAY_VERSION; }

std::string usage() {
    return R"(Usage: hlsrelay-server [options]

Restreams live TV channels into low-latency HLS and serves them with the hlsrelay HTTP API.

Options:
  --channels FILE|URL      channel list, M3U or JSON: a local file (read at launch) or an http(s) URL
                           such as a provider's get.php?username=..&type=m3u_plus (fetched in the
                           background and refreshed); repeatable (default: the bundled demo list)
  --list-refresh S         seconds between two fetches of each --channels URL (default: 21600)
  --listen ADDR:PORT       address to listen on (default: 127.0.0.1:8000; ":PORT" for all interfaces)
  --hls-dir DIR            also mirror playlists and segments to DIR/<id>/ (default: memory only)
  --push-url URL           also PUT segments and playlists to URL/<id>/ (an HTTP origin with WebDAV
                           PUT/DELETE, as CDNs ingest), DELETE old segments (default: none)
  --state FILE             keep the channels added, changed, disabled and removed over the API in
                           FILE and apply them again over the list at each start (default: none)
  --segment-duration S     target segment length in seconds (default: 2)
  --max-segments N         segments listed in each media playlist (default: 5)
  --container C            output segments: ts (MPEG-TS) or fmp4 (fMP4/CMAF: init section and .m4s);
                           a channel's "container" overrides it (default: ts)
  --renditions SEL         which renditions of a multivariant source run: all, highest, lowest,
                           max-height=PX, max-bandwidth=BITS or heights like 1080p,360p; a channel's
                           "renditions" overrides it (default: all)
  --low-latency            LL-HLS: cut parts, answer blocking playlist reloads and delta updates; a
                           channel's "low_latency" overrides it (default: off)
  --part-duration S        LL-HLS part length in seconds, at most the segment length; a channel's
                           "part_duration" overrides it (default: 0.333)
  --autostart WHAT         channels to start at launch: all, none, or a comma-separated list of ids
                           (default: all of the bundled demo list, none of a --channels list)
  --on-demand              start a channel when its playlist is requested, stop it when unwatched
  --idle-timeout S         on-demand: stop a channel nobody requested for S seconds (default: 60)
  --api-token T            require "Authorization: Bearer T" (or ?token=T) on control endpoints;
                           status endpoints then show sources only to requests with it
  --allowed-host NAME      accept requests with Host NAME (or NAME:PORT) besides IP addresses and
                           localhost; repeatable; '*' accepts any (turns off DNS-rebinding protection)
  --log-level L            debug, info, warn, error or off (default: info)
  --web-root DIR           dashboard files; hls.js from DIR/node_modules (default: bundled)
  --media-dir DIR          where the default list's relative sources live (default: <build>/media)
  --threads N              io threads (default: 2)
  --max-connections N      open connections at most; when full, the longest idle keep-alive one is
                           closed for a new one, else the new one is (default: 2048)
  --max-connections-per-client N
                           open connections per client address at most; 0 for no cap (default: 64)
  --read-timeout S         seconds to receive a whole request (default: 10)
  --keepalive-timeout S    seconds an idle keep-alive connection is kept (default: 15)
  --max-playlist-bytes N   refuse an upstream playlist larger than N bytes (default: 4194304)
  --max-segment-bytes N    refuse an upstream segment larger than N bytes (default: 67108864)
  --max-redirects N        HTTP redirects followed per upstream fetch (default: 5)
  --reload-schedule S      when source playlists are reloaded: aligned (just after a regular source
                           is expected to publish, learnt from when its playlist changes; channels of
                           one rendition with classic output) or rfc (RFC 8216's spacing from the
                           first load's phase); never sooner than the RFC allows (default: aligned)
  --failover-attempts N    failed connections in a row before a channel's URL cools down and the
                           next URL plays (default: 2)
  --failover-cooldown S    first cooldown of a failing URL, doubled at each repeat (default: 30)
  --failover-cooldown-max S
                           the longest cooldown (default: 600)
  --failover-probe-interval S
                           while a backup plays, seconds between probes of the primary (default: 15)
  --failback-after S       return to the primary once it has answered healthy probes for S seconds;
                           0: never (default: 60)
  --guide URL              an XMLTV guide (http/https, .xml or .xml.gz) for /epg.xml, besides the
                           url-tvg of the channel list; repeatable
  --guide-refresh S        seconds between two fetches of each guide (default: 43200)
  --tuner-name NAME        the HDHomeRun tuner's FriendlyName in Plex, Jellyfin... (default: hlsrelay)
  --tuner-count N          TunerCount: streams a client may hold at once; 0: one per channel, at most
                           each provider's limit for its channels (default: 0)
  --provider NAME=MAX[@HOST[,HOST...]]
                           an IPTV account allowing MAX connections (0: no limit) for the channels
                           whose first URL is on HOST (or host:port) or whose list entry names it
                           (JSON "provider", M3U hlsrelay-provider="NAME"); repeatable. A list with
                           more channels than a provider allows runs on demand
  --device-id HEX8         the tuner's DeviceID (valid by HDHomeRun's checksum) (default: derived from
                           --tuner-seed)
  --tuner-seed TEXT        what the DeviceID, DeviceAuth and UPnP UDN derive from (default: the host
                           name): keep it to keep the tuner's identity across reinstalls
  --help                   show this help and exit
  --version                show the version and exit
)";
}

bool parse_listen(const std::string& text, std::string& address, uint16_t& port) {
    const std::size_t colon = text.rfind(':');
    if (colon == std::string::npos) return false;
    std::string host = text.substr(0, colon);
    const std::string port_text = text.substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    else if (host.find(':') != std::string::npos) return false;  // a bare IPv6 address needs brackets
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
    if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() || value > 65535)
        return false;
    address = host.empty() ? "0.0.0.0" : host;
    port = static_cast<uint16_t>(value);
    return true;
}

namespace {
template <typename T>
bool parse_number(const std::string& text, T& out) {
    const char* begin = text.data();
    const char* end = begin + text.size();
    const auto [ptr, ec] = std::from_chars(begin, end, out);
    if constexpr (std::is_floating_point_v<T>) {
        if (!std::isfinite(out)) return false;
    }
    return !text.empty() && ec == std::errc() && ptr == end;
}
}  // namespace

ParsedOptions parse_options(const std::vector<std::string>& args) {
    Options o;
    ParsedOptions result;
    auto fail = [&](const std::string& message) {
        result.options.reset();
        result.exit_code = 2;
        result.output = "hlsrelay-server: " + message + "\nTry 'hlsrelay-server --help'.\n";
        return result;
    };

    using Setter = std::function<std::string(const std::string&)>;  // returns a problem or ""
    auto number_in = [](auto& field, double lo, double hi, const char* what) -> Setter {
        return [&field, lo, hi, what](const std::string& v) -> std::string {
            std::remove_reference_t<decltype(field)> n{};
            if (!parse_number(v, n) || static_cast<double>(n) < lo || static_cast<double>(n) > hi)
                return std::string(what) + " must be a number within " + format_number(lo) + ".." + format_number(hi) + ", not '" + v + "'";
            field = n;
            return {};
        };
    };
    auto text = [](std::string& field) -> Setter {
        return [&field](const std::string& v) -> std::string {
            if (v.empty()) return "an empty value is not allowed";
            field = v;
            return {};
        };
    };
    const std::map<std::string, Setter> with_value = {
        {"--channels",
         [&](const std::string& v) -> std::string {
             if (v.empty()) return "an empty value is not allowed";
             o.channels.push_back(v);
             return {};
         }},
        {"--list-refresh", number_in(o.list_refresh_interval, 60, kMaxListRefreshInterval, "--list-refresh")},
        {"--listen",
         [&](const std::string& v) -> std::string {
             return parse_listen(v, o.address, o.port) ? "" : "--listen wants ADDR:PORT, not '" + v + "'";
         }},
        {"--hls-dir", text(o.hls_dir)},
        {"--push-url",
         [&](const std::string& v) -> std::string {
             std::string p = push_problem(v, PushSettings{});
             if (v.empty()) p = "an empty value is not allowed";
             if (p.rfind("push_url ", 0) == 0) p = p.substr(9);  // "--push-url: must be ..."
             if (!p.empty()) return p;
             o.push_url = v;
             return {};
         }},
        {"--state", text(o.state)},
        {"--segment-duration", number_in(o.segment_duration, kMinSegmentDuration, kMaxSegmentDuration, "--segment-duration")},
        {"--max-segments", number_in(o.max_segments, kMinMaxSegments, kMaxMaxSegments, "--max-segments")},
        {"--container",
         [&](const std::string& v) -> std::string {
             const auto c = parse_container(v);
             if (!c) return "--container wants ts or fmp4, not '" + v + "'";
             o.container = *c;
             return {};
         }},
        {"--renditions",
         [&](const std::string& v) -> std::string {
             if (std::string p = renditions_problem(v); !p.empty()) return p;
             o.renditions = v;
             return {};
         }},
        {"--part-duration", number_in(o.part_duration, kMinPartDuration, kMaxPartDuration, "--part-duration")},
        {"--idle-timeout", number_in(o.idle_timeout, 0.1, 86400, "--idle-timeout")},
        {"--api-token", text(o.api_token)},
        {"--autostart",
         [&](const std::string& v) -> std::string {
             o.autostart_ids.clear();
             if (v == "all" || v == "none") {
                 o.autostart = v == "all" ? Autostart::all : Autostart::none;
                 return {};
             }
             for (std::size_t start = 0;;) {
                 const std::size_t comma = v.find(',', start);
                 const std::string id = v.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
                 if (id.empty()) return "--autostart wants all, none or a comma-separated list of ids, not '" + v + "'";
                 o.autostart_ids.push_back(id);
                 if (comma == std::string::npos) break;
                 start = comma + 1;
             }
             o.autostart = Autostart::listed;
             return {};
         }},
        {"--log-level",
         [&](const std::string& v) -> std::string {
             const auto level = log::parse_level(v);
             if (!level) return "--log-level wants " + std::string(kLogLevelNames) + ", not '" + v + "'";
             o.log_level = *level;
             return {};
         }},
        {"--web-root", text(o.web_root)},
        {"--media-dir", text(o.media_dir)},
        {"--threads", number_in(o.threads, 1, 64, "--threads")},
        {"--max-connections", number_in(o.max_connections, 1, 1000000, "--max-connections")},
        {"--max-connections-per-client",
         number_in(o.max_connections_per_client, 0, 1000000, "--max-connections-per-client")},
        {"--allowed-host",
         [&](const std::string& v) -> std::string {
             const bool ok = !v.empty() && v.size() <= 255 && std::all_of(v.begin(), v.end(), [](char c) {
                 return is_ascii_alnum(c) || c == '.' || c == '-' || c == ':' || c == '[' || c == ']' || c == '_' || c == '*';
             });
             if (!ok) return "--allowed-host wants a host name, NAME:PORT or '*', not '" + v + "'";
             o.allowed_hosts.push_back(v);
             return {};
         }},
        {"--read-timeout", number_in(o.read_timeout, 0.1, 3600, "--read-timeout")},
        {"--keepalive-timeout", number_in(o.keepalive_timeout, 0.1, 3600, "--keepalive-timeout")},
        {"--max-playlist-bytes", number_in(o.limits.max_playlist_bytes, static_cast<double>(kMinMaxPlaylistBytes),
                                           static_cast<double>(kMaxMaxPlaylistBytes), "--max-playlist-bytes")},
        {"--max-segment-bytes", number_in(o.limits.max_segment_bytes, static_cast<double>(kMinMaxSegmentBytes),
                                          static_cast<double>(kMaxMaxSegmentBytes), "--max-segment-bytes")},
        {"--max-redirects", number_in(o.limits.max_redirects, kMinMaxRedirects, kMaxMaxRedirects, "--max-redirects")},
        {"--guide",
         [&](const std::string& v) -> std::string {
             if (!starts_with_icase(v, "http://") && !starts_with_icase(v, "https://"))
                 return "--guide wants an http(s) URL of an XMLTV guide";
             o.guide_urls.push_back(v);
             return {};
         }},
        {"--failover-attempts", number_in(o.failover.attempts_per_url, kMinAttemptsPerUrl, kMaxAttemptsPerUrl, "--failover-attempts")},
        {"--failover-cooldown", number_in(o.failover.cooldown, kMinFailoverSeconds, kMaxFailoverSeconds, "--failover-cooldown")},
        {"--failover-cooldown-max",
         number_in(o.failover.cooldown_max, kMinFailoverSeconds, kMaxFailoverSeconds, "--failover-cooldown-max")},
        {"--failover-probe-interval",
         number_in(o.failover.probe_interval, kMinFailoverSeconds, kMaxFailoverSeconds, "--failover-probe-interval")},
        {"--failback-after", number_in(o.failover.failback_after, 0, kMaxFailoverSeconds, "--failback-after")},
        {"--reload-schedule",
         [&o](const std::string& v) -> std::string {
             if (v != "aligned" && v != "rfc") return "--reload-schedule wants aligned or rfc, not '" + v + "'";
             o.align_reloads = v == "aligned";
             return "";
         }},
        {"--guide-refresh", number_in(o.guide_refresh_interval, 60, 366 * 86400.0, "--guide-refresh")},
        {"--provider",
         [&](const std::string& v) -> std::string {
             std::string why;
             auto p = parse_provider(v, &why);
             if (!p) return why;
             std::vector<ProviderSettings> all = o.providers;
             all.push_back(*p);
             if (std::string problem = providers_problem(all); !problem.empty()) return problem;
             o.providers = std::move(all);
             return {};
         }},
        {"--tuner-name", text(o.tuner.name)},
        {"--tuner-count", number_in(o.tuner.tuner_count, 0, 255, "--tuner-count")},
        {"--device-id", text(o.tuner.device_id)},
        {"--tuner-seed", text(o.tuner.seed)},
    };

    for (std::size_t i = 0; i < args.size(); ++i) {
        std::string name = args[i];
        std::optional<std::string> value;
        if (const std::size_t eq = name.find('='); name.rfind("--", 0) == 0 && eq != std::string::npos) {
            value = name.substr(eq + 1);
            name.resize(eq);
        }
        if (name == "--help" || name == "-h") {
            result.output = usage();
            return result;
        }
        if (name == "--version") {
            result.output = std::string("hlsrelay-server ") + version() + "\n";
            return result;
        }
        if (name == "--on-demand") {
            if (value) return fail("--on-demand takes no value");
            o.on_demand = true;
            continue;
        }
        if (name == "--low-latency") {
            if (value) return fail("--low-latency takes no value");
            o.low_latency = true;
            continue;
        }
        auto it = with_value.find(name);
        if (it == with_value.end()) return fail("unknown option '" + name + "'");
        if (!value) {
            if (i + 1 >= args.size()) return fail(name + " needs a value");
            value = args[++i];
        }
        if (std::string problem = it->second(*value); !problem.empty()) return fail(name + ": " + problem);
    }
    if (std::string problem = failover_problem(o.failover); !problem.empty()) return fail(problem);
    if (o.on_demand && (o.autostart == Autostart::all || o.autostart == Autostart::listed))
        return fail("--autostart and --on-demand exclude each other (on demand, a channel starts when it is watched)");
    result.options = std::move(o);
    return result;
}

std::vector<std::string> channels_to_autostart(const Options& o, const std::vector<ChannelConfig>& loaded) {
    std::vector<std::string> ids;
    Autostart mode = o.autostart;
    if (mode == Autostart::list_default) mode = o.channels.empty() && !o.on_demand ? Autostart::all : Autostart::none;
    if (mode == Autostart::all)
        for (const auto& c : loaded) ids.push_back(c.id);
    if (mode != Autostart::listed) return ids;
    for (const std::string& wanted : o.autostart_ids) {
        auto it = std::find_if(loaded.begin(), loaded.end(), [&](const ChannelConfig& c) { return c.id == wanted; });
        if (it == loaded.end())
            it = std::find_if(loaded.begin(), loaded.end(), [&](const ChannelConfig& c) { return c.name == wanted; });
        if (it == loaded.end()) throw std::runtime_error("--autostart: no channel '" + wanted + "' in the channel list");
        if (std::find(ids.begin(), ids.end(), it->id) == ids.end()) ids.push_back(it->id);
    }
    return ids;
}

}  // namespace hlsrelay::server
