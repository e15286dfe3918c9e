// LL-HLS: where each rendition of a presentation stands, for the EXT-X-RENDITION-REPORT tags that
// every rendition's playlist carries about the others (RFC 8216bis 4.4.5.4), so that a player
// switching renditions can make its first request a blocking one. Each rendition's worker writes
// its own position as it publishes and reads the others' as it renders: a report is as new as that
// rendition's last publication. Its lock is a leaf: taken under a worker's lock, it calls nothing.
#pragma once

#include <hlsrelay/playlist.hpp>

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hlsrelay {

class RenditionReports {
public:
    explicit RenditionReports(std::vector<std::string> ids)
        : ids_(std::move(ids)), last_(ids_.size(), std::pair<int64_t, int>{-1, -1}) {}

    // `id`'s newest segment (the one being cut when it has parts) and its newest part (-1: none).
    void set(std::string_view id, int64_t last_msn, int last_part) {
        std::lock_guard lock(mu_);
        for (std::size_t i = 0; i < ids_.size(); ++i)
            if (ids_[i] == id) last_[i] = {last_msn, last_part};
    }

    // The reports for every rendition but `self` that published something, in presentation order,
    // each URI `prefix` + its id + "/index.m3u8" (a rendition's own playlist: "../"; the top-level one: "").
    std::vector<RenditionReport> others(std::string_view self, std::string_view prefix) const {
        std::vector<RenditionReport> out;
        std::lock_guard lock(mu_);
        for (std::size_t i = 0; i < ids_.size(); ++i) {
            if (ids_[i] == self || last_[i].first < 0) continue;
            out.push_back({std::string(prefix) + ids_[i] + "/" + std::string(kMediaPlaylistName), last_[i].first, last_[i].second});
        }
        return out;
    }

private:
    const std::vector<std::string> ids_;
    mutable std::mutex mu_;
    std::vector<std::pair<int64_t, int>> last_;  // (last_msn, last_part), -1: nothing yet
};

}  // namespace hlsrelay
