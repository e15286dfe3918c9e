// Renders /metrics: one HELP/TYPE block per family, then a sample per channel (or status code).
#include "metrics.hpp"

#include <cmath>
#include <cstdio>
#include <functional>

namespace hlsrelay::server {

std::string escape_label(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (char c : value) {
        if (c == '\\') out += "\\\\";
        else if (c == '"') out += "\\\"";
        else if (c == '\n') out += "\\n";
        else out += c;
    }
    return out;
}

namespace {
std::string number(double v) {
    if (std::isnan(v)) return "NaN";
    if (v == std::floor(v) && std::abs(v) < 1e15) return std::to_string(static_cast<int64_t>(v));
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.6g", v);
    return buf;
}

void family(std::string& out, const char* name, const char* type, const char* help) {
    out += "# HELP ";
    out += name;
    out += ' ';
    out += help;
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += type;
    out += '\n';
}

void sample(std::string& out, const char* name, const std::string& labels, double value) {
    out += name;
    out += '{';
    out += labels;
    out += "} ";
    out += number(value);
    out += '\n';
}
}  // namespace

std::string render_metrics(const std::vector<ChannelStatus>& channels, const Activity& activity,
                           const HttpCounters& http) {
    std::string out;
    auto per_channel = [&](const char* name, const char* type, const char* help,
                           const std::function<std::optional<double>(const ChannelStatus&)>& value) {
        family(out, name, type, help);
        for (const auto& s : channels)
            if (auto v = value(s)) sample(out, name, "channel=\"" + escape_label(s.stream_id) + "\"", *v);
    };

    family(out, "hlsrelay_channel_state", "gauge", "1 for the channel's current state, 0 for the others.");
    for (const auto& s : channels) {
        for (ChannelState st : kChannelStates) {
            sample(out, "hlsrelay_channel_state",
                   "channel=\"" + escape_label(s.stream_id) + "\",state=\"" + std::string(to_string(st)) + "\"",
                   st == s.state ? 1 : 0);
        }
    }
    per_channel("hlsrelay_channel_segments", "gauge", "Segments listed in the media playlist.",
                [](const ChannelStatus& s) { return static_cast<double>(s.segment_count); });
    per_channel("hlsrelay_channel_reconnects_total", "counter",
                "Source outages: runs of failed connection attempts, each ended by publishing again.",
                [](const ChannelStatus& s) { return static_cast<double>(s.reconnects); });
    per_channel("hlsrelay_channel_reconnect_attempts_total", "counter",
                "Failed source connection attempts (several per outage while the source stays down).",
                [](const ChannelStatus& s) { return static_cast<double>(s.reconnect_attempts); });
    per_channel("hlsrelay_channel_bytes_in_total", "counter", "Bytes read from the source.",
                [](const ChannelStatus& s) { return static_cast<double>(s.bytes_in); });
    per_channel("hlsrelay_channel_bytes_out_total", "counter",
                "Bytes delivered to clients: playlists and segments handed out (HEAD requests not counted).",
                [](const ChannelStatus& s) { return static_cast<double>(s.bytes_out); });
    per_channel("hlsrelay_channel_bytes_published_total", "counter", "Bytes of segments published.",
                [](const ChannelStatus& s) { return static_cast<double>(s.bytes_published); });
    per_channel("hlsrelay_channel_newest_segment_age_seconds", "gauge",
                "Seconds since the newest segment was published (absent while there is none).",
                [](const ChannelStatus& s) -> std::optional<double> {
                    if (s.newest_segment_age_seconds < 0) return std::nullopt;
                    return s.newest_segment_age_seconds;
                });
    per_channel("hlsrelay_channel_viewers", "gauge", "Distinct client addresses that fetched the channel's HLS in the last 30 s.",
                [&](const ChannelStatus& s) { return static_cast<double>(activity.viewers(s.stream_id)); });

    family(out, "hlsrelay_http_requests_total", "counter", "HTTP responses sent, by status code.");
    for (int code = 100; code < 600; ++code)
        if (const uint64_t n = http.get(code)) sample(out, "hlsrelay_http_requests_total", "code=\"" + std::to_string(code) + "\"", static_cast<double>(n));
    return out;
}

}  // namespace hlsrelay::server
