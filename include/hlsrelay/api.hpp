// The replaced FastAPI design's endpoints as plain functions over an Engine: one definition of the
// JSON shapes, used by the demo server, the C API and the Python/FastAPI layer alike.
#pragma once

#include <hlsrelay/engine.hpp>
#include <hlsrelay/registry.hpp>

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

namespace hlsrelay::api {

struct Reply {
    int status = 200;
    nlohmann::ordered_json body;           // JSON replies
    std::string text;                      // non-JSON replies (the M3U)
    std::string content_type = "application/json";
    // Invalid UTF-8 (a source's bytes in an error message) is replaced, never thrown.
    std::string dump() const {
        return content_type == "application/json" ? body.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace)
                                                  : text;
    }
};

inline Reply error(int status, std::string detail) {
    Reply r;
    r.status = status;
    r.body["detail"] = std::move(detail);
    return r;
}

inline Reply channel_not_found() { return error(404, "Channel not found"); }

inline nlohmann::ordered_json hls_config(const HlsSettings& h) {
    nlohmann::ordered_json j;
    // Whole seconds print as integers, as the replaced design's config did.
    auto number = [](double v) {
        return v == std::floor(v) ? nlohmann::ordered_json(static_cast<int64_t>(v)) : nlohmann::ordered_json(v);
    };
    j["segment_duration"] = number(h.segment_duration);
    j["max_segments"] = h.max_segments;
    j["cleanup_interval"] = number(h.cleanup_interval);
    return j;
}

// Maps engine errors onto replies; anything else is a 500 with the message.
template <class F>
Reply guarded(F&& f) {
    try {
        return f();
    } catch (const Error& e) {
        if (e.code() == ErrorCode::NotFound) return channel_not_found();
        if (e.code() == ErrorCode::InvalidArgument) return error(400, e.what());
        return error(500, e.what());
    } catch (const std::exception& e) {
        return error(500, e.what());
    }
}

// GET /api/v1/channels/start-stream/{channel_name}
inline Reply start_stream(Engine& engine, std::string_view name) {
    return guarded([&] {
        const bool was_running = engine.find_channel(name) && engine.running(name);
        const ChannelConfig c = engine.start(name);
        Reply r;
        r.body["message"] = was_running ? "Stream for '" + c.id + "' is already running."
                                        : "Stream for '" + c.id + "' started.";
        r.body["channel"] = c.name;
        r.body["hls_url"] = hls_url_for(c.id);
        r.body["config"] = hls_config(engine.settings_for(c.id));
        return r;
    });
}

// GET /api/v1/channels/stop-stream/{channel_name}
inline Reply stop_stream(Engine& engine, std::string_view name) {
    return guarded([&] {
        const auto c = engine.find_channel(name);
        if (!c) return channel_not_found();
        const bool was_running = engine.running(c->id);
        engine.stop(c->id);
        Reply r;
        r.body["message"] = was_running ? "Stream for '" + c->id + "' stopped."
                                        : "Stream for '" + c->id + "' was not running; stopped.";
        return r;
    });
}

// GET /api/v1/channels/stream-status/{channel_name}
inline Reply stream_status(const Engine& engine, std::string_view name) {
    return guarded([&] {
        Reply r;
        r.body = to_json(engine.status(name));
        return r;
    });
}

// GET /api/v1/channels/streams-status
inline Reply streams_status(const Engine& engine) {
    return guarded([&] {
        const auto all = engine.statuses();
        int running = 0;
        nlohmann::ordered_json streams = nlohmann::ordered_json::array();
        for (const auto& s : all) {
            if (s.cleanup_running) ++running;
            streams.push_back(to_json(s));
        }
        Reply r;
        r.body["total_channels"] = all.size();
        r.body["running_streams"] = running;
        r.body["active_cleanup_threads"] = running;
        r.body["hls_config"] = hls_config(engine.settings().hls);
        r.body["streams"] = std::move(streams);
        return r;
    });
}

// M3U attribute values cannot hold a double quote.
inline std::string m3u_attribute(std::string_view v) {
    std::string out;
    for (char c : v)
        if (c != '"' && c != '\n' && c != '\r') out += c;
    return out;
}

// GET /api/v1/channels/static-hls-m3u: every channel's HLS URL, absolute against `base_url`
// ("http://host:port", taken from the request's Host).
inline Reply static_hls_m3u(const Engine& engine, std::string_view base_url) {
    return guarded([&] {
        Reply r;
        r.content_type = "audio/x-mpegurl";
        r.text = "#EXTM3U\n";
        for (const auto& c : engine.channels()) {
            r.text += "#EXTINF:-1 tvg-id=\"" + m3u_attribute(c.id) + "\" tvg-name=\"" + m3u_attribute(c.name) +
                      "\" tvg-logo=\"" + m3u_attribute(c.logo) + "\" group-title=\"" + m3u_attribute(c.group) +
                      "\"," + m3u_attribute(c.name) + "\n";
            r.text += std::string(base_url) + hls_url_for(c.id) + "\n";
        }
        return r;
    });
}

// GET /api/v1/channels: the registry without source credentials.
inline Reply list_channels(const Engine& engine) {
    return guarded([&] {
        Reply r;
        nlohmann::ordered_json list = nlohmann::ordered_json::array();
        for (const auto& c : engine.channels()) {
            nlohmann::ordered_json j = to_json(c, false);
            j["hls_url"] = hls_url_for(c.id);
            j["running"] = engine.running(c.id);
            list.push_back(std::move(j));
        }
        r.body["channels"] = std::move(list);
        return r;
    });
}

}  // namespace hlsrelay::api
