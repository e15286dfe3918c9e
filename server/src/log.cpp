// Log lines go out whole (one write under a lock) so that io threads and engine threads never interleave.
#include "log.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>

#include <hlsrelay/playlist.hpp>

namespace hlsrelay::server::log {

namespace {
std::atomic<LogLevel> g_level{LogLevel::Info};
std::mutex g_mu;
}  // namespace

void set_level(LogLevel l) { g_level = l; }
LogLevel level() { return g_level; }
bool enabled(LogLevel l) { return l != LogLevel::Off && l >= g_level.load(); }

void write(LogLevel l, std::string_view message) {
    if (!enabled(l)) return;
    std::string line = format_date_time(std::chrono::system_clock::now());
    line += ' ';
    line += to_string(l);
    line += ' ';
    line += message;
    line += '\n';
    std::lock_guard lock(g_mu);
    std::fwrite(line.data(), 1, line.size(), stderr);
    std::fflush(stderr);
}

std::optional<LogLevel> parse_level(std::string_view name) { return parse_log_level(name); }

}  // namespace hlsrelay::server::log
