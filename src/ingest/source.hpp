// Sources: read a channel's URL and feed its packets to the segmenter. The engine's own HLS client
// for playlists; libavformat's demuxers for everything else (MPEG-TS over HTTP/UDP/SRT, RTMP, RTSP,
// files). Both return only when stopped and throw av::SourceError when the source fails.
#pragma once

#include "common/av_util.hpp"
#include "cut/segmenter.hpp"
#include "ingest/source_history.hpp"

#include <hlsrelay/channel.hpp>

#include <atomic>
#include <functional>
#include <optional>
#include <string>

namespace hlsrelay {

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
    FetchLimits limits;              // the engine's, with the channel's overrides applied
    double segment_duration = 2;     // the channel's output segment duration (continuous sources' stall bound)
    // Sleeps up to `seconds`; false when the channel is stopping.
    std::function<bool(double seconds)> sleep;
    // A problem the source survived (a failed reload, a skipped segment): shown as the last error.
    std::function<void(const std::string&)> report;
    // A lasting fact about what the output lacks (a source track not carried, e.g. an audio rendition
    // of a master playlist that is not followed): added once to the status notes, logged once as a
    // warning. Repeated calls with the same text do nothing.
    std::function<void(const std::string&)> note;
    // What earlier connections of this channel took (kept across reconnects and failovers).
    SourceHistory* history = nullptr;
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
void run_generic_source(SourceContext& ctx);

}  // namespace hlsrelay
