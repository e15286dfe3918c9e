// What the engine tells its host while it runs: log lines and events.
#pragma once

#include <hlsrelay/status.hpp>
#include <hlsrelay/text.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace hlsrelay {

enum class LogLevel { Debug = 0, Info = 1, Warn = 2, Error = 3, Off = 4 };

inline const char* to_string(LogLevel level) {
    switch (level) {
        case LogLevel::Debug: return "debug";
        case LogLevel::Info: return "info";
        case LogLevel::Warn: return "warn";
        case LogLevel::Error: return "error";
        default: return "off";
    }
}

// What parse_log_level accepts, for messages.
inline constexpr std::string_view kLogLevelNames = "debug, info, warn, error or off";

// A level's name as to_string gives it, in any ASCII case; "warning" and "none" (off) too.
inline std::optional<LogLevel> parse_log_level(std::string_view name) {
    const std::string n = ascii_lower(name);
    for (LogLevel l : {LogLevel::Debug, LogLevel::Info, LogLevel::Warn, LogLevel::Error, LogLevel::Off})
        if (n == to_string(l)) return l;
    if (n == "warning") return LogLevel::Warn;
    if (n == "none") return LogLevel::Off;
    return std::nullopt;
}

using LogCallback = std::function<void(LogLevel, const std::string& channel, const std::string& message)>;

enum class EventType { StateChanged, SegmentPublished, Error };

struct Event {
    EventType type = EventType::StateChanged;
    std::string channel;                   // stream id
    ChannelState state = ChannelState::Idle;  // for StateChanged: the new state
    std::string message;                   // for Error: what went wrong (credentials redacted)
    int64_t sequence = -1;                 // for SegmentPublished
    double duration = 0;                   // for SegmentPublished
};
// Called from engine threads (a channel's worker, the engine's housekeeping thread, which reports
// "stalled" and the way back to "running", or the thread calling start()/update_channel()).
// One subscriber's callbacks never overlap. Keep it short: it must not call stop(),
// remove_channel(), update_channel() of a running channel or the Engine destructor (they wait for
// the worker that may be calling it), nor unsubscribe another subscriber whose callback may be
// waiting on this one; it may call start(), status(), read() and unsubscribe itself.
using EventCallback = std::function<void(const Event&)>;

}  // namespace hlsrelay
