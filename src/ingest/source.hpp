// Sources: read a channel's URL and feed its packets to the segmenter. The engine's own HLS client
// for playlists; libavformat's demuxers for everything else (MPEG-TS over HTTP/UDP/SRT, RTMP, RTSP,
// files). Both return only when stopped and throw av::SourceError when the source fails.
#pragma once

#include "common/av_util.hpp"
#include "cut/segmenter.hpp"
#include "ingest/m3u8.hpp"
#include "ingest/source_history.hpp"

#include <hlsrelay/channel.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <optional>
#include <string>

namespace hlsrelay {

// One rendition of a presentation (or the one variant a single-rendition channel keeps of a
// multivariant source): the HLS client reads this media playlist only, as the master named it.
// With `aligned`, every source segment becomes one output segment, numbered after the source's
// media sequence number (the worker maps it), and the hooks below tell the worker where each
// source segment starts and which ones will not come.
struct PinnedPlaylist {
    std::string url;     // the media playlist (absolute)
    std::string parent;  // the master's final URL: `url` is checked against it
    bool aligned = false;
    // The source media sequence number to start at: `live_start` is the client's own choice (near
    // the live edge, or right after the last segment taken); [first, last] is what the playlist lists.
    std::function<int64_t(int64_t live_start, int64_t first, int64_t last)> start;
    // Asked right after `start`: whether the rendition published before in the same numbering, so
    // this connection goes on on the presentation's timeline (Segmenter::continue_timeline) rather
    // than breaking it. Unset: never.
    std::function<bool()> continues;
    // A source segment's bytes go to the segmenter next (aligned: one output segment, flushed after).
    std::function<void(int64_t sequence, double duration)> begin;
    // ... and they have been cut (the segmenter was flushed): a source segment that yielded no
    // output segment (lost after its retries, skipped, undecodable) is a gap.
    std::function<void(int64_t sequence, double duration)> end;
    // The source's numbering went back (an origin restart): returns where to go on in the new
    // numbering (the same for every rendition of the channel), given the client's own choice.
    std::function<int64_t(int64_t live_start, int64_t first, int64_t last)> restarted;
    // Set: the segments are not cut but handed over whole, byte for byte (WebVTT subtitles).
    // date: the segment's EXT-X-PROGRAM-DATE-TIME as the source wrote it, if it has one.
    std::function<void(std::string&& data, double duration, const std::optional<std::string>& date)> passthrough;
};

// The channel's playlist as the worker already loaded it (to tell a master from a media playlist):
// the HLS client starts from it rather than loading it again at once, a reload the source would
// see sooner than RFC 8216 6.3.4 allows.
struct FirstLoad {
    std::optional<m3u8::MediaPlaylist> playlist;  // set: a media playlist
    std::string final_url;                        // after redirects
    std::chrono::steady_clock::time_point began;  // when its load began
};

struct SourceContext {
    const ChannelConfig& channel;
    std::string url;
    av::Interrupter& interrupter;
    Segmenter& segmenter;
    std::atomic<int64_t>& bytes_in;
    BufferPool* pool = nullptr;      // recycled segment buffers
    double read_timeout = 10;
    double stall_timeout = 0;        // 0: three target durations, at least read_timeout
    int live_start_segments = 3;
    bool align_reloads = true;       // EngineSettings::align_reloads
    FetchLimits limits;              // the engine's, with the channel's overrides applied
    double segment_duration = 2;     // the channel's output segment duration (continuous sources' stall bound)
    // Sleeps up to `seconds`; false when the channel is stopping.
    std::function<bool(double seconds)> sleep;
    // A problem the source survived (a failed reload, a skipped segment): shown as the last error.
    std::function<void(const std::string&)> report;
    // A lasting fact about what the output lacks (a source track not carried): added once to the status notes, logged once as a
    // warning. Repeated calls with the same text do nothing.
    std::function<void(const std::string&)> note;
    // What earlier connections of this channel took (kept across reconnects and failovers).
    SourceHistory* history = nullptr;
    // Set: read this media playlist instead of the channel's URL (see PinnedPlaylist).
    const PinnedPlaylist* pinned = nullptr;
    // Set (with a playlist): the channel's own media playlist, just loaded (not with `pinned`).
    const FirstLoad* first = nullptr;
};

// True when the URL names an HLS playlist (by its path), so the HLS client reads it.
bool is_hls_url(const std::string& url);
// A file path or file: URL (url::scheme_of() is "file").
bool is_local_file(const std::string& url);

// Reads a local file (a playlist, segment or key the channel list's own local playlist names) with
// plain C++ I/O, no libav protocol: at most `max_bytes` (else SourceError "<what> <path> exceeds
// <limit_name> (N bytes)"), optionally the byte range [first, last).
std::string read_local_file(const std::string& url, int64_t max_bytes, const std::string& limit_name,
                            const std::string& what, std::optional<std::pair<int64_t, int64_t>> range = std::nullopt);

void run_hls_source(SourceContext& ctx);
// One playlist fetched and parsed as the HLS client does (URL policy, caps, deadlines, the channel's
// headers): `parent` names the playlist that named `url` (the channel's URL for the first one).
// Throws av::SourceError.
m3u8::Playlist fetch_hls_playlist(SourceContext& ctx, const std::string& url, const std::string& parent,
                                  std::string& final_url);
void run_generic_source(SourceContext& ctx);

// Fail-back: a probe of a channel's primary URL (ctx.url) while a backup plays, through the same
// client, URL policy, caps and deadlines as the source, stopped by ctx.interrupter. An HLS URL is
// healthy when its playlist (a master's first variant) parses, lists segments, has not ended and its
// last segment advances between probes (or advanced within three target durations); another http(s)
// URL when it answers with a few KB within read_timeout. Other schemes are not probed (false). `why`:
// the reason of an unhealthy answer. `memory` carries the last segment seen from probe to probe.
struct ProbeMemory {
    int64_t last_sequence = -1;
    std::chrono::steady_clock::time_point advanced_at{};
};
bool probe_source(SourceContext& ctx, ProbeMemory& memory, std::string& why);

}  // namespace hlsrelay
