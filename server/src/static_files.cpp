// Reads a dashboard file and caches it by modification time and size (edits show up on reload).
#include "static_files.hpp"

#include <fstream>
#include <sstream>

namespace hlsrelay::server {

std::shared_ptr<const std::string> StaticFiles::get(const std::filesystem::path& path) {
    std::error_code ec;
    const auto mtime = std::filesystem::last_write_time(path, ec);
    if (ec) return nullptr;
    const auto size = std::filesystem::file_size(path, ec);
    if (ec) return nullptr;
    {
        std::lock_guard lock(mu_);
        auto it = cache_.find(path);
        if (it != cache_.end() && it->second.mtime == mtime && it->second.size == size) return it->second.data;
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) return nullptr;
    std::ostringstream text;
    text << in.rdbuf();
    auto data = std::make_shared<const std::string>(std::move(text).str());
    std::lock_guard lock(mu_);
    cache_[path] = Entry{mtime, size, data};
    return data;
}

}  // namespace hlsrelay::server
