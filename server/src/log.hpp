// The server's log: one line per message on stderr with time and level, filtered by --log-level.
#pragma once

#include <hlsrelay/engine.hpp>

#include <optional>
#include <string_view>

namespace hlsrelay::server::log {

void set_level(LogLevel level);
LogLevel level();
bool enabled(LogLevel level);
void write(LogLevel level, std::string_view message);

inline void debug(std::string_view m) { if (enabled(LogLevel::Debug)) write(LogLevel::Debug, m); }
inline void info(std::string_view m) { write(LogLevel::Info, m); }
inline void warn(std::string_view m) { write(LogLevel::Warn, m); }
inline void error(std::string_view m) { write(LogLevel::Error, m); }

// "debug", "info", "warn"/"warning", "error", "off"; nullopt otherwise.
std::optional<LogLevel> parse_level(std::string_view name);

}  // namespace hlsrelay::server::log
