// The dashboard's files from --web-root, read once and re-read only when they change on disk.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace hlsrelay::server {

class StaticFiles {
public:
    // The bytes of `path`, shared so a response can send them without a copy; nullptr if unreadable.
    std::shared_ptr<const std::string> get(const std::filesystem::path& path);

private:
    struct Entry {
        std::filesystem::file_time_type mtime{};
        std::uintmax_t size = 0;
        std::shared_ptr<const std::string> data;
    };
    std::mutex mu_;
    std::map<std::filesystem::path, Entry> cache_;
};

}  // namespace hlsrelay::server
