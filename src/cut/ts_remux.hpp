// The continuous TS of a channel that is not a plain MPEG-TS one (Engine::read_ts_segment): a
// published fMP4 segment, or a presentation's video and audio renditions' segments of one media
// sequence number, remuxed (codec copy, never re-encoded) into one MPEG-TS segment in memory.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace hlsrelay {

struct RemuxInput {
    const std::string* init = nullptr;   // fMP4: its init section; null for MPEG-TS bytes
    std::string_view media;              // the segment's bytes
    bool video_only = false;             // take its video streams alone (the audio comes from another input)
};

// The inputs' video and audio streams, in input order, muxed into one MPEG-TS: PAT/PMT first, then
// the packets interleaved by DTS, timestamps kept (plus the muxer's constant delay). Throws
// std::runtime_error with the reason (no stream it can carry, a demuxer or muxer failure).
std::string remux_to_ts(const std::vector<RemuxInput>& inputs);

// Rewrites the continuity counters of the 188-byte packets in `ts` so that each PID continues from
// next[pid] (a PID absent from `next` keeps its own first counter), and leaves in `next` the counter
// each PID's following payload packet must carry. Packets without payload keep theirs (ISO 13818-1
// 2.4.3.3); the null PID is left alone. Bytes that are not whole sync'd packets are left as they are.
void continue_counters(std::string& ts, std::map<int, int>& next);

}  // namespace hlsrelay
