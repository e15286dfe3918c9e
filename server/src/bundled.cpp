// Locating bundled files relative to the executable or the source tree, and resolving relative sources.
#include "bundled.hpp"

#include <unistd.h>

#include <array>

#ifndef HLSRELAY_SOURCE_DIR
#define HLSRELAY_SOURCE_DIR "."
#endif
#ifndef HLSRELAY_DEFAULT_MEDIA_DIR
#define HLSRELAY_DEFAULT_MEDIA_DIR "media"
#endif

namespace hlsrelay::server {

namespace {
std::filesystem::path executable_dir() {
    std::array<char, 4096> buf{};
    const ssize_t n = ::readlink("/proc/self/exe", buf.data(), buf.size() - 1);
    if (n <= 0) return {};
    return std::filesystem::path(std::string(buf.data(), static_cast<std::size_t>(n))).parent_path();
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
    return s;
}
}  // namespace

std::filesystem::path bundled_path(std::string_view name) {
    std::error_code ec;
    if (const auto exe = executable_dir(); !exe.empty()) {
        auto installed = exe / ".." / "share" / "hlsrelay" / name;
        if (std::filesystem::exists(installed, ec)) return installed.lexically_normal();
    }
    return std::filesystem::path(HLSRELAY_SOURCE_DIR) / "server" / name;
}

std::filesystem::path default_channels_file() { return bundled_path("default-channels.m3u"); }
std::filesystem::path default_web_root() { return bundled_path("web"); }
std::filesystem::path default_media_dir() { return HLSRELAY_DEFAULT_MEDIA_DIR; }
std::filesystem::path demo_media_script() { return bundled_path("make-demo-media.sh"); }

std::string resolve_relative_sources(std::string_view m3u, const std::filesystem::path& base,
                                     std::vector<std::filesystem::path>& local_files) {
    std::string out;
    out.reserve(m3u.size() + 256);
    while (!m3u.empty()) {
        const std::size_t nl = m3u.find('\n');
        const std::string_view raw = m3u.substr(0, nl);
        m3u = nl == std::string_view::npos ? std::string_view() : m3u.substr(nl + 1);
        const std::string_view line = trim(raw);
        const bool source = !line.empty() && line.front() != '#';
        // Kodi-style "|Header=Value" suffixes stay with the source.
        const std::string_view path = line.substr(0, line.find('|'));
        if (source && path.find("://") == std::string_view::npos) {
            std::filesystem::path local;
            std::string_view rest = line.substr(path.size());
            if (path.rfind("file:", 0) == 0) {
                local = std::string(path.substr(5));
                out += raw;
            } else if (path.front() == '/') {
                local = std::string(path);
                out += raw;
            } else {
                local = (base / std::string(path)).lexically_normal();
                out += local.string();
                out += rest;
            }
            local_files.push_back(local);
        } else {
            out += raw;
        }
        if (nl != std::string_view::npos) out += '\n';
    }
    return out;
}

}  // namespace hlsrelay::server
