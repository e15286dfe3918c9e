// What Engine::read() hands out: a playlist, a segment or an init section, shared and never copied.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace hlsrelay {

// What Engine::read() counts in the channel's bytes_out (bytes handed to readers).
enum class Delivery {
    whole,    // the reader gets the whole resource (a GET, a C or Python read): counted in full
    headers,  // only its size and type are used (an HTTP HEAD request): not counted
};

// Bytes read from a channel: a playlist or a segment. `data` is shared, never copied or modified.
struct Resource {
    std::shared_ptr<const std::string> data;
    std::string_view content_type;  // "application/vnd.apple.mpegurl", "video/mp2t", "video/iso.segment", ...
    bool immutable = false;         // segments and init sections never change; playlists do
};

}  // namespace hlsrelay
