// What Engine::read() hands out: a playlist, a segment or an init section, shared and never copied.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace hlsrelay {

// What Engine::read() counts in the channel's bytes_out (bytes handed to readers).
enum class Delivery {
    whole,    // the reader gets the whole resource (a GET, a C or Python read): counted in full
    headers,  // only its size and type are used (an HTTP HEAD request): not counted
};

// Bytes read from a channel: a playlist, a segment, a part of one (LL-HLS) or an init section. `data`
// is shared, never copied or modified; the resource is its bytes [offset, offset + length) (a part of
// a published segment is a range of the segment's bytes): read them through bytes().
struct Resource {
    std::shared_ptr<const std::string> data;
    std::string_view content_type;  // "application/vnd.apple.mpegurl", "video/mp2t", "video/iso.segment", ...
    bool immutable = false;         // segments and init sections never change; playlists do
    size_t offset = 0;
    size_t length = std::string::npos;  // npos: to the end of `data`

    std::string_view bytes() const {
        if (!data) return {};
        return std::string_view(*data).substr(std::min(offset, data->size()), length);
    }
};

// LL-HLS: where a media playlist stands (Engine::playlist_position), for blocking playlist reloads.
struct PlaylistPosition {
    bool low_latency = false;  // the channel cuts parts
    int target_duration = 0;   // 0: no playlist yet
    double part_target = 0;    // low latency: PART-TARGET
    int64_t last_msn = -1;     // the newest segment the playlist lists whole, -1: none
    int last_parts = 0;        // ... its parts (low latency)
    int64_t open_msn = -1;     // low latency: the segment being cut, whose parts it lists
    int open_parts = 0;        // ... how many of them
    int64_t next_part = -1;    // low latency: the number of the next part (its name: part_<number>)
    // Whether the playlist holds segment `msn` whole (part < 0), or its part `part` "or later"
    // (RFC 8216bis 6.2.5.2): a part past the last one of a whole segment means the next segment's
    // first part.
    bool holds(int64_t msn, int part) const {
        if (msn < last_msn || (msn == last_msn && (part < 0 || part < last_parts))) return true;
        if (part < 0) return false;
        if (msn == last_msn) return open_msn == msn + 1 && open_parts > 0;
        return msn == open_msn && part < open_parts;
    }
};

}  // namespace hlsrelay
