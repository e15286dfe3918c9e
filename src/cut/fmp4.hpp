// A bounded ISO BMFF (fragmented MP4, CMAF) reader for the fMP4 passthrough: the tracks of an init
// section (ftyp + moov) and the fragments (moof + mdat) of a media segment, with what cutting needs:
// the decode time, duration and first-sample sync flag of each fragment per track. Plain byte
// parsing without libav: every box size is checked against its parent before a read, 64-bit sizes
// are taken, nesting is followed to a fixed depth only, and sample loops are bounded by the bytes
// of their box. Garbage gives nullopt and a reason, never a crash.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hlsrelay::mp4 {

constexpr uint32_t fourcc(const char (&s)[5]) {
    return uint32_t(uint8_t(s[0])) << 24 | uint32_t(uint8_t(s[1])) << 16 | uint32_t(uint8_t(s[2])) << 8 |
           uint32_t(uint8_t(s[3]));
}
std::string fourcc_text(uint32_t type);  // printable: "moof", "\x00..." as "?"

// One box: `offset` of its first byte, `header` bytes of size/type (8, 16 with a 64-bit size, +16 for
// 'uuid'), `size` in all (a size of 0 means "to the end of the parent").
struct Box {
    uint32_t type = 0;
    size_t offset = 0, header = 0, size = 0;
    size_t payload() const { return offset + header; }
    size_t end() const { return offset + size; }
};

// The box at `pos` in `data[0, end)`; nullopt when its header or size does not fit.
std::optional<Box> read_box(std::string_view data, size_t pos, size_t end);
// The top-level boxes of `data`, in order; nullopt if any is broken (or there are more than `max`).
std::optional<std::vector<Box>> top_level_boxes(std::string_view data, size_t max = 100000);

struct TrackInfo {
    uint32_t id = 0;
    uint32_t timescale = 0;      // mdhd
    uint32_t handler = 0;        // hdlr: 'vide', 'soun', ...
    uint32_t sample_entry = 0;   // the first stsd entry: 'avc1', 'hvc1', 'mp4a', 'encv', ...
    // trex defaults
    uint32_t default_duration = 0, default_size = 0, default_flags = 0;
    bool has_trex = false;
    bool video() const { return handler == fourcc("vide"); }
    bool audio() const { return handler == fourcc("soun"); }
};

struct InitInfo {
    std::vector<TrackInfo> tracks;
    int reference = -1;      // index in tracks: the first video track, else the first audio track
    bool fragmented = false; // moov has an mvex
    const TrackInfo* find(uint32_t id) const {
        for (const auto& t : tracks)
            if (t.id == id) return &t;
        return nullptr;
    }
};

// Parses an init section. Nullopt (and `why`) when it is not one this reader understands.
std::optional<InitInfo> parse_init(std::string_view data, std::string* why = nullptr);

struct TrackRun {
    uint32_t track_id = 0;
    uint64_t decode_time = 0;   // tfdt
    bool has_decode_time = false;
    uint64_t duration = 0;      // sum of the sample durations, in the track's timescale
    uint64_t samples = 0;
    uint64_t bytes = 0;         // sum of the sample sizes
    bool first_sync = false;    // the first sample is a sync sample
};

// One fragment: [begin, end) of the segment holds moof ... mdat (with the emsg/prft boxes right
// before its moof).
struct Fragment {
    size_t begin = 0, end = 0;
    std::vector<TrackRun> runs;
    const TrackRun* run(uint32_t track_id) const {
        for (const auto& r : runs)
            if (r.track_id == track_id) return &r;
        return nullptr;
    }
};

struct MediaInfo {
    std::vector<Fragment> fragments;
    size_t leading = 0;  // bytes before the first fragment
    // The fragments follow each other and reach the end of the data, and what leads them is only
    // styp, sidx, free or skip: the segment is valid as a whole as it is (a sidx indexes it so).
    bool contiguous = false;
};

// Parses a media segment against its init section. Nullopt (and `why`) for broken boxes, encrypted
// samples, a track the init does not describe, an absolute base-data-offset (the bytes could not
// move), or sample sizes beyond the mdat.
std::optional<MediaInfo> parse_media(std::string_view data, const InitInfo& init, std::string* why = nullptr);

// Whether sample flags (ISO/IEC 14496-12 8.8.3.1) mark a sync sample.
constexpr bool sync_sample(uint32_t flags) {
    const uint32_t depends_on = (flags >> 24) & 3;
    const bool non_sync = (flags >> 16) & 1;
    return !non_sync && depends_on != 1;
}

}  // namespace hlsrelay::mp4
