// The engine as a network tuner for media servers and IPTV apps: the HDHomeRun documents Plex,
// Jellyfin, Emby and Channels DVR read (hdhomerun.hpp builds them), the channel numbers they show,
// and the M3U of continuous TS URLs that Kodi (IPTV Simple) and TiviMate load. Replies over an
// Engine, rows of the endpoint table (endpoints.hpp).
#pragma once

#include <hlsrelay/api.hpp>
#include <hlsrelay/hdhomerun.hpp>

#include <unistd.h>

#include <algorithm>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hlsrelay::api {

// "/stream/news.ts": a channel's continuous MPEG-TS (ts_stream.hpp), what lineups point at.
inline std::string ts_stream_path(std::string_view id) { return "/stream/" + std::string(id) + ".ts"; }

// An enabled channel of the lineup with its GuideNumber: its tvg-chno when valid and not taken by an earlier
// channel, else its position in the list (hdhomerun::assign_guide_numbers).
struct TunedChannel {
    ChannelConfig config;
    std::string guide_number;
};

inline std::vector<TunedChannel> tuned_channels(const Engine& engine) {
    std::vector<TunedChannel> out;
    std::vector<std::string> chno;
    for (ChannelConfig& c : engine.channels()) {
        if (!c.enabled) continue;  // a disabled channel is not offered (lineup, M3Us, GuideNumbers)
        chno.push_back(c.chno);
        out.push_back({std::move(c), {}});
    }
    const std::vector<std::string> numbers = hdhomerun::assign_guide_numbers(chno);
    for (std::size_t i = 0; i < out.size(); ++i) out[i].guide_number = numbers[i];
    return out;
}

// The channel id a GuideNumber names ("5", "5.1"), as HDHomeRun clients tune: /auto/v5.1.
inline std::optional<std::string> channel_for_guide_number(const Engine& engine, std::string_view number) {
    const auto wanted = hdhomerun::normalize_guide_number(number);
    if (!wanted) return std::nullopt;
    for (const TunedChannel& t : tuned_channels(engine))
        if (t.guide_number == *wanted) return t.config.id;
    return std::nullopt;
}

namespace detail {

inline std::string host_name() {
    char name[256] = {};
    if (::gethostname(name, sizeof name - 1) != 0 || !name[0]) return "hlsrelay";
    return name;
}

}  // namespace detail

// TunerCount when not configured: the streams the engine can hold at once, one per channel but at
// most a provider's connection limit for its channels (EngineSettings::providers); 1..255.
inline int tuner_count(const Engine& engine) {
    std::size_t count = engine.channels().size();
    for (const ProviderStatus& p : engine.providers())
        if (p.max_connections > 0 && p.channels > static_cast<std::size_t>(p.max_connections))
            count -= p.channels - static_cast<std::size_t>(p.max_connections);
    return static_cast<int>(std::clamp<std::size_t>(count, 1, 255));
}

// The device this engine presents: its id and auth derived from TunerSettings::seed (the host name
// when unset), so they are stable per install; TunerCount as configured, else tuner_count().
inline hdhomerun::Device tuner_device(const Engine& engine) {
    const TunerSettings& t = engine.settings().tuner;
    const int count = t.tuner_count > 0 ? t.tuner_count : tuner_count(engine);
    hdhomerun::Device d = hdhomerun::device_from_seed(t.seed.empty() ? detail::host_name() : t.seed, count);
    if (!t.device_id.empty()) {
        d.device_id = t.device_id;
        for (char& ch : d.device_id) ch = (ch >= 'a' && ch <= 'f') ? static_cast<char>(ch - 'a' + 'A') : ch;
    }
    d.friendly_name = t.name;
    return d;
}

// GET /discover.json
inline Reply discover(const Engine& engine, std::string_view base_url) {
    return guarded([&] {
        Reply r;
        r.body = hdhomerun::discover_json(tuner_device(engine), base_url);
        return r;
    });
}

// GET /lineup.json: every channel, URL its continuous TS. HD when its video is known to be 720 lines
// or more (a running channel's status).
inline Reply lineup(const Engine& engine, std::string_view base_url) {
    return guarded([&] {
        std::vector<hdhomerun::LineupEntry> entries;
        for (const TunedChannel& t : tuned_channels(engine)) {
            hdhomerun::LineupEntry e;
            e.guide_number = t.guide_number;
            e.guide_name = t.config.name;
            e.url = std::string(base_url) + ts_stream_path(t.config.id);
            if (engine.running(t.config.id)) {
                try {
                    e.hd = engine.status(t.config.id).stream.height >= 720;
                } catch (const Error&) {
                    // removed meanwhile
                }
            }
            entries.push_back(std::move(e));
        }
        Reply r;
        r.body = hdhomerun::lineup_json(entries);
        return r;
    });
}

// GET /lineup_status.json
inline Reply lineup_status() {
    Reply r;
    r.body = hdhomerun::lineup_status_json();
    return r;
}

// POST /lineup.post (?scan=start|abort): the lineup is always complete, so a scan has nothing to do.
inline Reply lineup_post() {
    Reply r;
    r.content_type = "text/plain";
    return r;
}

// GET /device.xml: the UPnP description.
inline Reply device_xml(const Engine& engine, std::string_view base_url) {
    return guarded([&] {
        Reply r;
        r.content_type = "application/xml";
        r.text = hdhomerun::device_xml(tuner_device(engine), base_url);
        return r;
    });
}

// The exported M3U's first line: it names this server's guide (url-tvg, and x-tvg-url which some apps
// read instead), whose channel ids are the tvg-id of every line.
inline std::string m3u_header(std::string_view base_url) {
    const std::string guide = m3u_attribute(std::string(base_url) + "/epg.xml");
    return "#EXTM3U url-tvg=\"" + guide + "\" x-tvg-url=\"" + guide + "\"\n";
}

// GET /epg.xml and /epg.xml.gz: the XMLTV guide of the registry's channels (Engine::guide), shared.
inline Reply epg(const Engine& engine, bool gzip) {
    return guarded([&] {
        Reply r;
        r.content_type = gzip ? "application/gzip" : "application/xml";
        r.shared = engine.guide(gzip);
        return r;
    });
}

// GET /api/v1/guide: each guide URL's status (redacted; hidden from callers without the token).
inline Reply guide_status(const Engine& engine, Sources sources) {
    return guarded([&] {
        Reply r;
        nlohmann::ordered_json list = nlohmann::ordered_json::array();
        for (const GuideSource& g : engine.guide_sources()) {
            nlohmann::ordered_json j = to_json(g);
            if (sources == Sources::hidden) {
                j["url"] = nullptr;
                if (j["last_error"].is_string()) j["last_error"] = scrub_urls(j["last_error"].get<std::string>(), true);
            }
            list.push_back(std::move(j));
        }
        r.body["guide_url"] = "/epg.xml";
        r.body["sources"] = std::move(list);
        return r;
    });
}

// POST /api/v1/guide/refresh: fetch every guide again (no URL more often than once a minute).
inline Reply refresh_guide(Engine& engine) {
    return guarded([&] {
        engine.refresh_guides();
        Reply r;
        r.body["message"] = "Guides are being fetched again.";
        return r;
    });
}

// One #EXTINF line's attributes for a channel of an exported M3U: what IPTV apps rely on, with the
// list's pass-through attributes (catchup*, tvg-country, ...). tvg-id is the channel's id, which the
// exported guide uses too. URLs in pass-through values are hidden from callers without the token.
inline std::string m3u_extinf(const TunedChannel& t, Sources sources) {
    const ChannelConfig& c = t.config;
    std::string line = "#EXTINF:-1 tvg-id=\"" + m3u_attribute(c.id) + "\" tvg-name=\"" +
                       m3u_attribute(c.tvg_name.empty() ? c.name : c.tvg_name) + "\" tvg-chno=\"" +
                       m3u_attribute(t.guide_number) + "\" tvg-logo=\"" + m3u_attribute(c.logo) + "\" group-title=\"" +
                       m3u_attribute(c.group) + "\"";
    for (const auto& [name, value] : c.attributes)
        line += " " + m3u_attribute(name) + "=\"" + m3u_attribute(scrub_urls(value, sources == Sources::hidden)) + "\"";
    return line + "," + m3u_attribute(c.name) + "\n";
}

// An M3U of every channel (m3u_header, m3u_extinf), each URL `url_of(id)` made absolute against
// `base_url`.
inline Reply channels_m3u(const Engine& engine, std::string_view base_url, Sources sources,
                          std::string (*url_of)(std::string_view id)) {
    return guarded([&] {
        Reply r;
        r.content_type = "audio/x-mpegurl";
        r.text = m3u_header(base_url);
        for (const TunedChannel& t : tuned_channels(engine)) {
            r.text += m3u_extinf(t, sources);
            r.text += std::string(base_url) + url_of(t.config.id) + "\n";
        }
        return r;
    });
}

// GET /playlist.m3u: every channel's continuous TS URL, for IPTV apps (Kodi IPTV Simple, TiviMate)
// and DVRs that take an M3U (Channels DVR).
inline Reply playlist_m3u(const Engine& engine, std::string_view base_url, Sources sources) {
    return channels_m3u(engine, base_url, sources, ts_stream_path);
}

// GET /api/v1/channels/static-hls-m3u: every channel's HLS URL, absolute against `base_url`
// ("http://host:port", taken from the request's Host), with the attributes of /playlist.m3u.
inline Reply static_hls_m3u(const Engine& engine, std::string_view base_url, Sources sources = Sources::redacted) {
    return channels_m3u(engine, base_url, sources, hls_url_for);
}

}  // namespace hlsrelay::api
