// What Engine::read() hands out: a playlist, a segment or an init section, shared and never copied.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "hlsrelay/segment_bytes.hpp"

namespace hlsrelay {

// What Engine::read() counts in the channel's bytes_out (bytes handed to readers).
enum class Delivery {
    whole,    // the reader gets the whole resource (a GET, a C or Python read): counted in full
    headers,  // only its size and type are used (an HTTP HEAD request): not counted
};

// Bytes read from a channel: a playlist, a segment, a part of one (LL-HLS) or an init section. `data`
// is shared, never copied or modified; the resource is its bytes [offset, offset + length) (a part of
// a published segment is a range of the segment's bytes): read them through bytes(). A published
// segment (or a part of one) has its bytes in `file` instead (fd-backed, for sendfile; `data` null).
struct Resource {
    std::shared_ptr<const std::string> data;
    std::string_view content_type;  // "application/vnd.apple.mpegurl", "video/mp2t", "video/iso.segment", ...
    bool immutable = false;         // segments and init sections never change; playlists do
    size_t offset = 0;
    size_t length = std::string::npos;  // npos: to the end of `data`
    std::shared_ptr<const SegmentBytes> file = nullptr;  // set: the bytes are file->bytes() [offset, offset + length)

    std::string_view bytes() const {
        const std::string_view all = file ? file->bytes() : data ? std::string_view(*data) : std::string_view();
        return all.substr(std::min(offset, all.size()), length);
    }
    // Whether it holds bytes (a null Resource has neither `data` nor `file`).
    bool held() const { return data || file; }
    // What keeps the bytes alive: hold it as long as bytes() is used.
    std::shared_ptr<const void> owner() const {
        if (file) return file;
        return data;
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
