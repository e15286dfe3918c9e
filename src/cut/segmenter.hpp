// Packets in, MPEG-TS or fMP4 segments out: maps the streams the output container can carry, repairs
// timestamps into one monotonic 90 kHz timeline, cuts at video keyframes (audio-only: on time) and
// muxes each segment into memory so that it starts with PAT/PMT (fMP4: a moof behind one init
// section) and, for video, a keyframe. Source segments that need no remux are cut as they are: MPEG-TS
// to MPEG-TS (ts_cutter), fMP4 to fMP4 (on moof boundaries, fmp4.hpp).
#pragma once

#include "common/av_util.hpp"
#include "cut/ts_cutter.hpp"

#include <hlsrelay/channel.hpp>
#include <hlsrelay/playlist.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hlsrelay {

// What a cutter hands the worker: everything publishing needs, so nothing downstream calls back.
struct CutSegment {
    std::string data;
    double duration = 0;
    bool discontinuity = false;
    bool keyframe_start = true;
    SystemClock::time_point program_date_time{};
    bool dated_by_source = false;  // program_date_time is on the source's clock (its PDT), not by arrival
    SegmentFormat format = SegmentFormat::ts;
    InitPtr init;  // fmp4: the init section the bytes need (the same pointer while it is unchanged)
    // LL-HLS: the segment is the parts published since its first one, in order; `data` is empty
    // (the worker holds the parts' bytes and joins them).
    bool from_parts = false;
};

// LL-HLS: a part of the segment being cut (see Segmenter::set_parts). The first part of a segment
// opens it: its discontinuity, date and init section are the segment's.
struct CutPart {
    std::string data;
    double duration = 0;
    bool independent = false;  // begins with a video keyframe (audio only: always)
    bool first = false;        // the first part of its segment
    bool last = false;         // the last part of its segment: the segment itself (Publish) comes right after
    bool discontinuity = false;
    SystemClock::time_point program_date_time{};
    bool dated_by_source = false;
    SegmentFormat format = SegmentFormat::ts;
    InitPtr init;
};

class Segmenter {
public:
    using Publish = std::function<void(CutSegment&&)>;
    using PublishPart = std::function<void(CutPart&&)>;

    // `max_segment_bytes`: the largest output segment held (ts::kMaxOutputSegmentBytes; smaller in tests).
    Segmenter(double segment_duration, Publish publish, size_t max_segment_bytes = ts::kMaxOutputSegmentBytes);
    ~Segmenter();
    Segmenter(const Segmenter&) = delete;
    Segmenter& operator=(const Segmenter&) = delete;

    // The streams of the packets that follow (a new demuxer). `discontinuity`: the source's timeline
    // breaks here (reconnect, EXT-X-DISCONTINUITY); the pending segment is published first.
    // `probed`: the context went through avformat_find_stream_info (its parameters are complete).
    void open_input(const AVFormatContext* input, bool discontinuity, bool probed = true);
    // Whether `input` has the streams of the current output (so it needs no probing or new muxer).
    bool same_layout(const AVFormatContext* input) const;
    // One packet from the last opened input. The packet is consumed (unreferenced).
    void write(AVPacket* packet);
    // The input ended: publish what is pending. The next input continues the same timeline unless
    // it is opened with `discontinuity`.
    void flush();
    // A finite source restarts (a looping file): keep timestamps continuous, no discontinuity tag.
    void restart_timeline();
    // One whole MPEG-TS source segment (an HLS client's download), cut at the TS level without a remux
    // when it can be: the common case of TS in and TS out. Returns false, leaving `data` untouched,
    // when it cannot (not MPEG-TS, several programs, a video codec whose keyframes it cannot find, a
    // stream it would have to drop); the caller then demuxes the segment with open_input()/write().
    // `independent`: the source promises that every segment starts with a keyframe
    // (EXT-X-INDEPENDENT-SEGMENTS), so an output segment may end with this one: it is published as
    // soon as the source segment that completes it has arrived.
    bool write_ts_segment(std::string& data, bool discontinuity, bool independent);
    // One whole fMP4 source segment with its init section (EXT-X-MAP), cut on fragment (moof)
    // boundaries without a remux when the output is fMP4 too: fragments whose reference track (video,
    // else the first audio track) starts with a sync sample begin output segments, the source's init
    // section is the output's (a new version, behind a discontinuity, when it changes). `data` is the
    // media segment, or the init section followed by it (as the HLS client demuxes it). Returns false,
    // leaving `data` untouched, when it cannot (TS output, encryption, a track it does not understand,
    // broken boxes: a note says why); the caller then demuxes the segment with open_input()/write().
    bool write_fmp4_segment(const std::string& init, std::string& data, bool discontinuity, bool independent);
    // The output's packaging (before the first input): MPEG-TS, or fMP4 with one init section.
    void set_container(Container container) { container_ = container; }
    Container container() const { return container_; }
    // Called at a source segment boundary: lets a hint of the source's target duration bound cuts.
    void set_target_hint(double seconds) { target_hint_ = seconds; }
    // How the source's media arrives: in bursts of up to `seconds` (a classic HLS source, a segment
    // at a time), or 0: as it plays (a continuous source, an LL-HLS source followed part by part).
    // Low-latency playlists hold players back by as much more (PART-HOLD-BACK), so that a player does
    // not run into the live edge between two bursts.
    void set_arrival_burst(double seconds) { arrival_burst_ = seconds; }
    double arrival_burst() const { return arrival_burst_; }
    // The EXT-X-PROGRAM-DATE-TIME of the next source segment, as the source playlist wrote it
    // (nullopt: it has none). Output segments then carry the dates of their media on the source's
    // clock: the source's first PTS of that segment is its date, and later media follows from there
    // until the timeline breaks. Without a source date a segment is dated by its arrival: its end
    // is no later than the moment it is published, never in the future. A source that calls this
    // (before each of its segments) is segmented: audio-only output is cut at its boundaries.
    void set_source_date(const std::optional<std::string>& date);

    // Source-aligned cutting (the renditions of a presentation): every source segment becomes exactly
    // one output segment. No cut by time inside a source segment; the caller flush()es after each
    // one, and the target duration is the source's (set_target_hint before the first segment).
    void set_source_aligned(bool on) { aligned_ = on; }
    bool source_aligned() const { return aligned_; }
    // The remux path's timeline shared by the renditions of a presentation: at a rebase it asks
    // for the offset (output = source + offset, 90 kHz) given its own proposal, the source DTS it
    // rebases at and the lowest output DTS it may continue at (INT64_MIN before any output), and
    // takes the answer. So one source instant has one output time in every rendition, also after
    // one rendition alone lost its source for a while (SequenceMap::timeline_offset).
    using SharedTimeline = std::function<int64_t(int64_t proposed, int64_t source_dts, int64_t floor)>;
    void set_shared_timeline(SharedTimeline f) { shared_timeline_ = std::move(f); }
    // The next break the caller asks for (write_ts_segment, write_fmp4_segment or open_input with
    // `discontinuity`) starts the cutting over as usual but does not mark the output discontinuous: a
    // rendition of a presentation going on after a lone reconnect or a lost source segment, whose
    // timestamps are still the source's, as its siblings' are (what it missed is published as gaps).
    // A break the segmenter finds itself (a new layout or init section, a jump in the source's clock,
    // a change between passthrough and remux) is marked all the same.
    void continue_timeline() { continue_timeline_ = true; }
    // LL-HLS (before the first input): segments are also cut into parts of at most `part_target`
    // seconds, on frame boundaries of the reference track, each handed to `publish_part` as soon as
    // it is muxed; the segment that follows them (CutSegment::from_parts) is their bytes joined. Parts
    // come from the remux path only: with parts on, source segments are not passed through.
    void set_parts(double part_target, PublishPart publish_part) {
        part_target_ = part_target;
        publish_part_ = std::move(publish_part);
    }
    double part_target() const { return part_target_; }
    // Before the first part: parts of at least `seconds` (at most a segment), for a source whose media
    // comes a segment at a time (part_target_for_bursts). Ignored once a part was cut: a playlist's
    // PART-TARGET does not change under its players.
    void raise_part_target(double seconds) {
        if (part_target_ > 0 && !parts_cut_) part_target_ = std::max(part_target_, std::min(seconds, segment_duration_));
    }
    // LL-HLS sources, whose parts are demuxed one by one as they arrive: a source part ended. The open
    // part is finished now when it is long enough to stand as a part (kMinPartShare of the target),
    // rather than when the first frame of the next source part comes, a part's duration later.
    void end_source_part();

    bool passthrough() const { return passthrough_; }
    void set_buffer_pool(BufferPool* pool) { pool_ = pool; }
    int target_duration() const { return target_duration_; }  // 0 until the first segment
    const StreamInfo& stream_info() const { return info_; }
    const std::vector<std::string>& notes() const { return notes_; }
    int64_t timestamp_repairs() const { return repairs_; }
    int64_t bytes_out() const { return bytes_out_; }

private:
    struct Track;
    struct Fmp4Cut;
    void open_muxer(const AVFormatContext* input, const std::vector<int>& kept);
    void start_segment(int64_t pts, bool keyframe);
    void finish_segment(int64_t end_pts);
    void finish_part(int64_t end_pts, bool last = false);
    std::string take_muxed();
    void update_info(const AVFormatContext* input, const std::vector<int>& kept, bool probed);
    bool timestamps(Track& t, const AVPacket* p, int64_t& dts, int64_t& pts);
    bool probe_passthrough(const std::string& data, const ts::Program& program);
    void apply(ts::StreamParams&& params);
    void emit(CutSegment&& seg);
    void publish_cut(ts::Cut&& cut);
    void leave_passthrough();
    void leave_ts_passthrough();
    void finish_fmp4();
    bool probe_fmp4(const std::string& init, std::string_view media);
    void set_init(std::string bytes);
    void note(std::string text);
    double cut_limit() const;
    SystemClock::time_point date_of(int64_t pts, double duration, bool ts33);
    bool last_date_from_source_ = false;  // what the last date_of went by
    int64_t next_timeline_start() const;

    double segment_duration_;
    Publish publish_;
    av::OutputPtr muxer_;
    std::unique_ptr<av::MemoryWriter> writer_;
    std::vector<Track> tracks_;           // output streams
    std::vector<int> input_to_track_;     // input stream index -> track, -1 dropped
    std::vector<std::pair<int, int>> layout_;  // (media type, codec id) per track
    int reference_ = -1;                  // the track cuts are measured on: video, else first audio
    bool has_video_ = false;

    size_t max_segment_bytes_;
    size_t segment_bytes_ = 0;     // packet bytes muxed into the open segment
    bool segment_open_ = false;
    bool segment_keyframe_ = true;
    bool pending_discontinuity_ = false;
    bool need_rebase_ = true;
    bool keep_anchor_ = false;
    bool any_output_ = false;
    bool first_in_muxer_ = true;
    int64_t segment_start_ = 0;    // 90 kHz pts of the segment's first reference packet
    int64_t media_start_ = 0;      // the earliest reference PTS in the segment (open GOPs lead)
    int64_t reference_end_ = 0;    // 90 kHz end of the last reference packet
    int64_t last_key_pts_ = INT64_MIN;
    double last_gop_ = 0;
    int64_t offset_ = 0;           // added to source timestamps (90 kHz)
    int64_t timeline_end_ = 0;     // max end over all tracks (90 kHz)
    SystemClock::time_point anchor_wall_{};
    int64_t anchor_pts_ = 0;
    int64_t presentation_end_ = 0;  // max PTS + duration over all tracks (90 kHz)
    int64_t reorder_ = 0;           // the largest PTS - DTS seen (B-frames), at most a second
    // The source's clock: the date of a source PTS (33-bit in passthrough, the output's in the remux).
    struct SourceDate {
        SystemClock::time_point wall{};
        int64_t pts = 0;
    };
    std::optional<SourceDate> source_date_, previous_source_date_;
    std::optional<SystemClock::time_point> next_source_date_;   // set_source_date, not yet placed
    std::optional<SystemClock::time_point> await_source_date_;  // remux: placed at the next reference packet
    bool date_from_segment_ = false;  // remux: source_date_ belongs to the source segment being read
    bool aligned_ = false;          // set_source_aligned
    bool continue_timeline_ = false;  // continue_timeline: the next caller's break is not marked
    // LL-HLS parts (set_parts): the open part and what the open segment's first part said.
    double part_target_ = 0;
    double arrival_burst_ = 0;      // set_arrival_burst
    bool parts_cut_ = false;        // a part was handed to publish_part_
    PublishPart publish_part_;
    int64_t part_start_ = 0;        // 90 kHz pts where the open part's media starts
    bool part_independent_ = false;
    bool part_fresh_ = false;       // end_source_part() finished a part: the next frame says if it is independent
    int parts_in_segment_ = 0;
    double parts_duration_ = 0;     // of the open segment's published parts
    bool segment_discontinuity_ = false;
    SystemClock::time_point segment_date_{};
    bool segment_dated_by_source_ = false;
    SharedTimeline shared_timeline_;  // set_shared_timeline
    bool segmented_ = false;        // the source comes in segments (set_source_date): its boundaries are cuts

    std::unique_ptr<ts::Cutter> cutter_;  // the TS passthrough path, while it is in use
    std::unique_ptr<Fmp4Cut> fmp4_;       // the fMP4 passthrough path, while it is in use
    bool passthrough_ = false;            // one of them is
    Container container_ = Container::ts;
    InitPtr init_;                        // fMP4 output: the init section of the segments
    int64_t init_version_ = 0;
    bool muxer_init_pending_ = false;     // fMP4 remux: the muxer's next bytes begin with its init section
    BufferPool* pool_ = nullptr;

    int target_duration_ = 0;
    double target_hint_ = 0;
    StreamInfo info_;
    std::vector<std::string> notes_;
    int64_t repairs_ = 0;
    int64_t bytes_out_ = 0;
};

// EXT-X-PROGRAM-DATE-TIME's ISO 8601 date ("2026-11-30T17:00:00.123Z", "+01:00" or "+0100" for
// a zone); nullopt when it is not one.
std::optional<SystemClock::time_point> parse_date_time(const std::string& text);

// RFC 6381 codec strings for the master playlist ("avc1.64001f", "mp4a.40.2"); empty if unknown.
std::string rfc6381_codec(const AVCodecParameters* par);

}  // namespace hlsrelay
