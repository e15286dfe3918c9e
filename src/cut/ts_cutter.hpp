// MPEG-TS in, MPEG-TS segments out, without a remux: whole source segments (as an HLS client
// downloads them) are cut into output segments at video keyframes (audio only: preferably at the
// source's own segment boundaries) by looking at TS packets and PES headers only. Elementary stream
// packets are copied, never rewritten (timestamps and PCR stay the source's); only the continuity
// counters of the PAT/PMT/SDT packets are renumbered, so that the tables a cut puts in front of a
// segment continue their PID's count. When an output segment is exactly one source segment its
// bytes are moved, not copied. After a break (start, discontinuity) an output segment starts clean:
// the tables, then the keyframe, and no PES tail whose start was not taken. A segment's duration is
// that of its media: the reference stream's first PTS to the end of its last frame (audio: the
// frames in the last PES, from their headers). No libav: this is plain byte parsing, fed whatever
// the network delivers, so it is fuzzed.
#pragma once

#include "common/buffer_pool.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace hlsrelay::ts {

constexpr size_t kPacketSize = 188;
constexpr int64_t kClock = 90000;           // PES timestamps tick at 90 kHz
constexpr int64_t kWrap = int64_t{1} << 33;  // and wrap at 2^33
// The largest source segment Cutter::feed takes: it keeps packet offsets in 32 bits.
constexpr size_t kMaxFeedBytes = 0xffffffff;
// The largest output segment either path (Cutter, Segmenter's remux) holds: a source whose
// timestamps never advance (or are missing) never reaches a cut by time, so past this size the
// pending segment is published as it is and the next one starts over. Real segments are far
// smaller (10 s at 50 Mbit/s: 62 MB).
constexpr size_t kMaxOutputSegmentBytes = size_t{256} << 20;

// (b - a) on the 33-bit circle, in [-2^32, 2^32).
int64_t ts_diff(int64_t a, int64_t b);

struct Stream {
    int pid = 0;
    int stream_type = 0;
    bool operator==(const Stream&) const = default;
};

// The single program of a transport stream, from its PAT and PMT.
struct Program {
    int pmt_pid = -1;
    int pcr_pid = -1;
    std::vector<Stream> streams;
    std::string pat, pmt;  // the last PAT and PMT packets (188 bytes each), re-sent where a cut needs them

    // The stream cuts are measured on: the first video stream of a type whose keyframes we can find
    // (H.264, HEVC, MPEG-1/2 video), else the first audio stream; -1 if neither.
    int reference_pid() const;
    bool reference_is_video() const;
    bool same_layout(const Program& other) const { return streams == other.streams; }
};

// Finds the program of `data` (its first PAT and the PMT that PAT points to). nullopt when `data` is
// not MPEG-TS, has several programs, or no complete PAT/PMT.
std::optional<Program> find_program(const std::string& data);

// What a master playlist says about a stream, read from the TS itself (PMT, H.264 SPS, audio frame
// headers) for the common case: H.264 video and AAC/MPEG/AC-3 audio. nullopt for anything else
// (the caller asks libavformat). Much cheaper than decoding frames, which matters when hundreds of
// channels start at once.
struct StreamParams {
    std::string codecs;       // RFC 6381, comma-separated: "avc1.64001f,mp4a.40.2"
    std::string video_codec;  // "h264", or empty for audio only
    int width = 0, height = 0;
    double frame_rate = 0;
    std::vector<std::string> audio_codecs;  // "aac", "mp3", "mp2", "ac3", "eac3"
};
std::optional<StreamParams> describe(const std::string& data, const Program& program);

// Width and height from an H.264 SPS NAL unit (header byte included, emulation prevention intact).
// False for a truncated SPS or one with a value outside its range (H.264 7.4.2.1.1).
bool h264_sps_size(const uint8_t* nal, size_t size, int& width, int& height);

// The earliest PTS (90 kHz) of the PES of `pid` in `data` (where its presentation starts: leading
// pictures of an open GOP come before the keyframe); nullopt if none carries one.
std::optional<int64_t> earliest_pts(const std::string& data, int pid);

// The duration in 90 kHz ticks of the audio frames in `es` (elementary stream bytes of one PES) of
// MPEG-TS stream type `stream_type`: AAC in ADTS (0x0f), MPEG audio (0x03, 0x04), AC-3 (0x81) and
// E-AC-3 (0x87), read from the frame headers. 0 when it cannot tell.
int64_t audio_duration(const uint8_t* es, size_t size, int stream_type);

struct Cut {
    std::string data;
    int64_t start_pts = 0;      // 90 kHz, the reference stream's earliest PTS in the cut
    double duration = 0;        // seconds
    bool keyframe_start = true; // starts with a video keyframe (false only on a forced cut)
    bool timeline_break = false;  // timestamps jump at its start (the caller tags a discontinuity)
    bool params_changed = false;  // new coding parameters start here (an H.264 SPS that differs)
};

struct FeedStats {
    int64_t bad_packets = 0;     // lost sync, transport errors: dropped
    bool started_with_key = false;
};

class Cutter {
public:
    using Emit = std::function<void(Cut&&)>;

    // `pool`, if any, provides the buffers of joined segments and takes back the source buffers
    // that were copied.
    // `max_cut_bytes`: see kMaxOutputSegmentBytes (smaller in tests).
    Cutter(double segment_duration, Emit emit, BufferPool* pool = nullptr,
           size_t max_cut_bytes = kMaxOutputSegmentBytes);

    // Use `program` from now on. A cut in progress is emitted first.
    void set_program(Program program);
    const std::optional<Program>& program() const { return program_; }

    // One complete source segment. `discontinuity`: the timeline breaks before it (what is pending is
    // emitted first and the next output starts at a keyframe). `end_is_boundary`: the next source
    // segment is expected to start with a keyframe, so the pending cut may end with this one.
    // `target_limit`: the longest allowed output segment in seconds (target duration + 0.5).
    // At most kMaxFeedBytes of `data` (a larger one is dropped, counted as bad packets).
    FeedStats feed(std::string&& data, bool discontinuity, bool end_is_boundary, double target_limit);
    // Emits what is pending (the source ended or switches to another path).
    void flush();
    bool pending() const { return open_; }

private:
    struct PesInfo {
        bool has_pts = false;
        int64_t pts = 0, dts = 0;
        bool key = false;
        int64_t duration = 0;  // 90 kHz; audio: from the frame headers, 0 if unknown
        std::string sps;  // H.264: the SPS NAL unit in front of the picture, if any
        bool params = false;  // a keyframe carrying its parameter sets (H.264 SPS, HEVC VPS/SPS, MPEG-2 sequence header)
    };
    struct Pending {
        std::string data;                 // bytes materialized so far
        std::vector<uint32_t> packets;    // packet offsets in the current source buffer, not yet copied
        int64_t start_pts = 0, end_pts = 0;  // from the opening keyframe: what cut decisions measure
        // The media of the reference stream in the cut: its earliest PTS (leading pictures of an open
        // GOP precede the keyframe) to the end of its latest frame. What the cut says it lasts.
        int64_t media_start = 0, media_end = 0;
        bool has_media = false;
        bool keyframe_start = true, timeline_break = false, params_changed = false;
        bool whole_source = false;        // exactly the current source buffer's packets, in order, so far
        bool clean_start = false;         // the first after a break: PES tails and early audio dropped
    };

    PesInfo inspect_pes(const std::string& data, size_t offset, const std::vector<size_t>& packets,
                        size_t index) const;
    void open_cut(int64_t pts, bool key, bool timeline_break);
    void close_cut(int64_t end_pts);  // the open cut becomes the finishing one
    void add_packet(Pending& p, uint32_t offset);
    void materialize(Pending& p, const std::string& source);
    void emit(Pending&& p, std::string* source);
    bool is_kept_pid(int pid) const;
    void renumber_tables(std::string& data);
    int64_t pes_duration(const std::string& data, const std::vector<size_t>& packets, size_t index) const;
    int stream_type_of(int pid) const;

    double segment_duration_;
    Emit emit_;
    BufferPool* pool_;
    size_t max_cut_bytes_;
    std::optional<Program> program_;
    int reference_pid_ = -1;
    bool reference_video_ = false;

    bool open_ = false;
    Pending cut_;                     // the output segment being filled
    std::optional<Pending> finishing_;  // a closed cut still taking the tails of PES that began in it
    std::vector<int> tail_pids_;      // the PIDs whose PES tails still go to finishing_

    bool need_key_ = true;            // drop until the next keyframe (start, discontinuity)
    int keys_without_params_ = 0;     // keyframes passed over at a start because they lacked their parameter sets
    bool pending_break_ = false;
    int64_t last_dts_ = 0;
    bool have_dts_ = false;
    int64_t frame_ticks_ = 0;         // the reference stream's frame duration, 90 kHz
    int64_t last_key_pts_ = 0;
    bool have_key_ = false;
    double last_gop_ = 0;
    int key_start_streak_ = 0;
    std::string last_sps_;        // source segments in a row that began with a keyframe
    double last_source_span_ = 0;     // seconds of reference stream in the last source segment
    std::string* source_ = nullptr;  // the buffer being fed (feed()'s own)
    std::vector<int> unsynced_pids_;  // after a break: PIDs whose packets wait for a PES start
    std::vector<std::pair<int, int>> table_cc_;  // PAT/PMT/SDT PID -> the next continuity counter out
};

}  // namespace hlsrelay::ts
