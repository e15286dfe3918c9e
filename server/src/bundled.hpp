// Where the bundled files are (default channel list, dashboard, demo media) for a build tree or an
// install, and how the default list's relative sources become paths.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace hlsrelay::server {

// The first of <exe>/../share/hlsrelay/<name> (an install) and <source>/server/<name> that exists;
// the latter if neither does.
std::filesystem::path bundled_path(std::string_view name);

std::filesystem::path default_channels_file();  // default-channels.m3u
std::filesystem::path default_web_root();       // web/
std::filesystem::path default_media_dir();      // <build>/media
std::filesystem::path demo_media_script();      // make-demo-media.sh

// Rewrites the source lines of an M3U list that are relative paths (neither "scheme://" nor "/...")
// into paths under `base`: the registry only accepts URLs and absolute paths. Every local source
// (absolute, file: or rewritten) is appended to `local_files`.
std::string resolve_relative_sources(std::string_view m3u, const std::filesystem::path& base,
                                     std::vector<std::filesystem::path>& local_files);

}  // namespace hlsrelay::server
