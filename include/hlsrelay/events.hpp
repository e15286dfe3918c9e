// What the engine tells its host while it runs: events (log lines: log.hpp).
#pragma once

#include <hlsrelay/status.hpp>

#include <cstdint>
#include <functional>
#include <string>

namespace hlsrelay {

// PartPublished: LL-HLS channels, a part of the segment being cut (`sequence`, `part`).
enum class EventType { StateChanged, SegmentPublished, Error, PartPublished };

struct Event {
    EventType type = EventType::StateChanged;
    std::string channel;                   // stream id
    ChannelState state = ChannelState::Idle;  // for StateChanged: the new state
    std::string message;                   // for Error: what went wrong (credentials redacted)
    int64_t sequence = -1;                 // for SegmentPublished
    double duration = 0;                   // for SegmentPublished and PartPublished
    int part = -1;                         // for PartPublished: its index in segment `sequence`
    // For PartPublished in a presentation: the rendition ("v1", "a0") whose media playlist
    // ("v1/index.m3u8") has the part; empty for the top-level index.m3u8 (the highest video rendition).
    std::string rendition;
};
// Called from engine threads (a channel's worker, the engine's housekeeping thread, which reports
// "stalled" and the way back to "running", or the thread calling start()/update_channel()).
// One subscriber's callbacks never overlap. Keep it short: it must not call stop(),
// remove_channel(), update_channel() of a running channel or the Engine destructor (they wait for
// the worker that may be calling it), nor unsubscribe another subscriber whose callback may be
// waiting on this one; it may call start(), status(), read() and unsubscribe itself.
using EventCallback = std::function<void(const Event&)>;

}  // namespace hlsrelay
