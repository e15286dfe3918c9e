// What a channel's sources handed over so far, kept by the channel worker across reconnects and
// failovers so that a source reopened after an outage never republishes what was already taken
// (a frozen origin that comes back with its last segments, an origin that restarts its sequence).
// Written and read only by the channel's worker thread.
#pragma once

#include <cstdint>
#include <string>

namespace hlsrelay {

struct SourceHistory {
    // Filled in by the HLS client (hls_source.cpp); see there for how it is used.
};

}  // namespace hlsrelay
