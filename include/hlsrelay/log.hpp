// The engine's log levels and the callback that receives its log lines.
#pragma once

#include <hlsrelay/text.hpp>

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

}  // namespace hlsrelay
