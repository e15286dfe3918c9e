// A channel as one continuous MPEG-TS stream (GET /stream/{id}.ts, and HDHomeRun's /auto/v{n}): what
// media servers and IPTV apps tune to. The first chunk is the newest whole segment, which starts at a
// keyframe (segments are cut there), so a viewer never joins mid-GOP; then each segment as it is
// published, in order. Every channel can be streamed so: a TS channel's chunks are its window's own
// buffers; an fMP4 channel's segments, and a presentation's (its top video rendition with the default
// audio rendition), are remuxed into TS once per segment and shared by every viewer
// (Engine::read_ts_segment). A chunk is a Resource (shared, not copied) and nothing is queued per
// viewer. A viewer that falls so far behind that its next segment left the window skips ahead to the
// newest one, so a slow client costs no memory; transports also drop a client whose write outlasts
// their deadline. A segment that cannot be read as TS (a gap, a failed remux) is skipped.
//
// Over the Engine's public reads only (playlist_position, read_ts_segment, wait_playlist); libav-free.
#pragma once

#include <hlsrelay/api.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace hlsrelay::api {

// Whether `channel` can be streamed as continuous TS: nullopt when it can, else the reply to send
// (404 for an unknown channel). Every known channel can: fMP4 and presentations are remuxed (see
// Engine::read_ts_segment); an audio-only one streams audio alone. What the MPEG-TS muxer cannot carry
// (a codec TS has no mapping for) shows per segment: each is skipped with a logged warning, the
// stream then stays silent rather than refused.
inline std::optional<Reply> ts_stream_refusal(const Engine& engine, std::string_view channel) {
    const auto c = engine.find_channel(channel);
    if (!c || c->id != channel) return channel_not_found();
    return std::nullopt;
}

class TsStream {
public:
    TsStream(const Engine& engine, std::string channel) : engine_(&engine), id_(std::move(channel)) {}

    // The next chunk if it is published already: the segment after the last one given (the newest
    // whole segment at first), or, when that one left the window, the newest (skipped() counts the
    // ones passed over). nullopt: nothing new yet, or the channel is not running (see ended()).
    std::optional<Resource> next() {
        const auto p = engine_->playlist_position(id_, kMediaPlaylistName);
        if (!p || p->last_msn < 0) return std::nullopt;
        if (next_ < 0) next_ = p->last_msn;
        if (next_ > p->last_msn) return std::nullopt;
        for (int attempt = 0; attempt < 2; ++attempt) {
            if (auto r = engine_->read_ts_segment(id_, next_)) {
                ++next_;
                ++sent_;
                return r;
            }
            // Gone from the window (behind it), never listed (a gap) or not made (a failed remux, or a
            // presentation's audio not there yet): the newest one instead, when there is a newer one.
            const auto now = engine_->playlist_position(id_, kMediaPlaylistName);
            if (!now || now->last_msn <= next_) return std::nullopt;
            skipped_ += now->last_msn - next_;
            next_ = now->last_msn;
        }
        return std::nullopt;
    }

    // As next(), waiting for the publication up to `timeout_seconds` (a thread's transport: the C ABI,
    // Python). Not from an event callback.
    std::optional<Resource> wait_next(double timeout_seconds) {
        if (auto r = next()) return r;
        // The one after when the next one is published already but could not be read yet (a
        // presentation's audio following its video): no spinning on it.
        int64_t want = next_ < 0 ? 0 : next_;
        if (const auto p = engine_->playlist_position(id_, kMediaPlaylistName); p && p->last_msn >= want) want = p->last_msn + 1;
        if (!engine_->wait_playlist(id_, kMediaPlaylistName, want, -1, timeout_seconds)) return std::nullopt;
        return next();
    }

    // Points the stream at `engine` (the same engine): for a transport that holds the engine through
    // a handle it re-acquires on each call (Python), so no call uses a pointer it no longer owns.
    void rebind(const Engine& engine) { engine_ = &engine; }

    // The channel stopped or failed: no chunk will come.
    bool ended() const { return !engine_->running(id_); }
    const std::string& channel() const { return id_; }
    int64_t sent() const { return sent_; }
    int64_t skipped() const { return skipped_; }

private:
    const Engine* engine_;
    std::string id_;
    int64_t next_ = -1;  // the sequence number of the next segment to give; -1: none given yet
    int64_t sent_ = 0, skipped_ = 0;
};

}  // namespace hlsrelay::api
