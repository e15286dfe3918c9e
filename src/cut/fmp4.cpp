// A bounded ISO BMFF reader: see fmp4.hpp. Every read goes through Cursor, which checks it against
// the end of the box it is in; boxes are walked by explicit loops at known depths (no recursion).
#include "cut/fmp4.hpp"

#include <limits>

namespace hlsrelay::mp4 {

namespace {

// Reads big-endian fields within [pos, end) of `data`; a read past `end` sets `bad` and gives 0.
struct Cursor {
    std::string_view data;
    size_t pos, end;
    bool bad = false;
    bool need(size_t n) {
        if (bad || n > end - pos) {
            bad = true;
            return false;
        }
        return true;
    }
    uint32_t u32() {
        if (!need(4)) return 0;
        const auto* p = reinterpret_cast<const uint8_t*>(data.data()) + pos;
        pos += 4;
        return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3];
    }
    uint64_t u64() {
        const uint64_t hi = u32();
        return hi << 32 | u32();
    }
    void skip(size_t n) {
        if (need(n)) pos += n;
    }
};

uint64_t add(uint64_t a, uint64_t b) { return b > std::numeric_limits<uint64_t>::max() - a ? std::numeric_limits<uint64_t>::max() : a + b; }

void fail(std::string* why, std::string text) {
    if (why) *why = std::move(text);
}

// Calls `f(box)` for each box inside [begin, end); false if one is broken or `f` says stop with false.
template <class F>
bool each_box(std::string_view data, size_t begin, size_t end, F&& f) {
    size_t pos = begin;
    int count = 0;
    while (pos < end) {
        if (++count > 100000) return false;
        auto box = read_box(data, pos, end);
        if (!box) return false;
        if (!f(*box)) return false;
        pos = box->end();
    }
    return true;
}

// The first child of type `type` in `parent`; nullopt when there is none or the children are broken.
std::optional<Box> child(std::string_view data, const Box& parent, uint32_t type, size_t skip = 0) {
    std::optional<Box> found;
    const size_t begin = parent.payload() + skip;
    if (begin > parent.end()) return std::nullopt;
    const bool ok = each_box(data, begin, parent.end(), [&](const Box& b) {
        if (b.type == type && !found) found = b;
        return true;
    });
    if (!ok) return std::nullopt;
    return found;
}

}  // namespace

std::string fourcc_text(uint32_t type) {
    std::string s(4, '?');
    for (int i = 0; i < 4; ++i) {
        const char c = static_cast<char>((type >> (24 - 8 * i)) & 0xff);
        if (c >= 0x20 && c < 0x7f) s[static_cast<size_t>(i)] = c;
    }
    return s;
}

std::optional<Box> read_box(std::string_view data, size_t pos, size_t end) {
    if (end > data.size() || pos > end || end - pos < 8) return std::nullopt;
    Cursor c{data, pos, end};
    Box box;
    box.offset = pos;
    uint64_t size = c.u32();
    box.type = c.u32();
    box.header = 8;
    if (size == 1) {
        size = c.u64();
        box.header = 16;
        if (c.bad) return std::nullopt;
    } else if (size == 0) {
        size = end - pos;  // to the end of the parent
    }
    if (box.type == fourcc("uuid")) box.header += 16;
    if (size < box.header || size > end - pos) return std::nullopt;
    box.size = static_cast<size_t>(size);
    return box;
}

std::optional<std::vector<Box>> top_level_boxes(std::string_view data, size_t max) {
    std::vector<Box> boxes;
    size_t pos = 0;
    while (pos < data.size()) {
        if (boxes.size() >= max) return std::nullopt;
        auto box = read_box(data, pos, data.size());
        if (!box) return std::nullopt;
        boxes.push_back(*box);
        pos = box->end();
    }
    return boxes;
}

std::optional<InitInfo> parse_init(std::string_view data, std::string* why) {
    auto top = top_level_boxes(data, 64);
    if (!top) return fail(why, "init section: broken box"), std::nullopt;
    const Box* moov = nullptr;
    for (const auto& b : *top)
        if (b.type == fourcc("moov")) moov = &b;
    if (!moov) return fail(why, "init section without moov"), std::nullopt;
    InitInfo info;
    std::vector<TrackInfo> trex;
    std::string problem;
    const bool ok = each_box(data, moov->payload(), moov->end(), [&](const Box& b) {
        if (b.type == fourcc("mvex")) {
            info.fragmented = true;
            return each_box(data, b.payload(), b.end(), [&](const Box& e) {
                if (e.type != fourcc("trex")) return true;
                Cursor c{data, e.payload(), e.end()};
                c.skip(4);
                TrackInfo t;
                t.id = c.u32();
                c.skip(4);
                t.default_duration = c.u32();
                t.default_size = c.u32();
                t.default_flags = c.u32();
                t.has_trex = true;
                if (c.bad || trex.size() >= 64) return false;
                trex.push_back(t);
                return true;
            });
        }
        if (b.type != fourcc("trak")) return true;
        if (info.tracks.size() >= 64) return false;
        TrackInfo t;
        auto tkhd = child(data, b, fourcc("tkhd"));
        auto mdia = child(data, b, fourcc("mdia"));
        if (!tkhd || !mdia) {
            problem = "a trak without tkhd or mdia";
            return false;
        }
        {
            Cursor c{data, tkhd->payload(), tkhd->end()};
            const uint32_t version = c.u32() >> 24;
            c.skip(version == 1 ? 16 : 8);
            t.id = c.u32();
            if (c.bad) return false;
        }
        auto mdhd = child(data, *mdia, fourcc("mdhd"));
        auto hdlr = child(data, *mdia, fourcc("hdlr"));
        auto minf = child(data, *mdia, fourcc("minf"));
        if (!mdhd || !hdlr || !minf) {
            problem = "a trak without mdhd, hdlr or minf";
            return false;
        }
        {
            Cursor c{data, mdhd->payload(), mdhd->end()};
            const uint32_t version = c.u32() >> 24;
            c.skip(version == 1 ? 16 : 8);
            t.timescale = c.u32();
            if (c.bad) return false;
        }
        {
            Cursor c{data, hdlr->payload(), hdlr->end()};
            c.skip(8);
            t.handler = c.u32();
            if (c.bad) return false;
        }
        auto stbl = child(data, *minf, fourcc("stbl"));
        auto stsd = stbl ? child(data, *stbl, fourcc("stsd")) : std::nullopt;
        if (!stsd) {
            problem = "a trak without stsd";
            return false;
        }
        {
            Cursor c{data, stsd->payload(), stsd->end()};
            c.skip(4);
            const uint32_t entries = c.u32();
            if (c.bad) return false;
            if (entries > 0) {
                auto entry = read_box(data, c.pos, stsd->end());
                if (!entry) return false;
                t.sample_entry = entry->type;
            }
        }
        info.tracks.push_back(t);
        return true;
    });
    if (!ok) return fail(why, problem.empty() ? "init section: broken moov" : "init section: " + problem), std::nullopt;
    for (const auto& x : trex) {
        for (auto& t : info.tracks)
            if (t.id == x.id) {
                t.default_duration = x.default_duration;
                t.default_size = x.default_size;
                t.default_flags = x.default_flags;
                t.has_trex = true;
            }
    }
    for (size_t i = 0; i < info.tracks.size() && info.reference < 0; ++i)
        if (info.tracks[i].video()) info.reference = static_cast<int>(i);
    for (size_t i = 0; i < info.tracks.size() && info.reference < 0; ++i)
        if (info.tracks[i].audio()) info.reference = static_cast<int>(i);
    if (info.reference < 0) return fail(why, "init section without an audio or video track"), std::nullopt;
    return info;
}

namespace {

// One traf: its tfhd, tfdt and truns. False (and `why`) when it cannot be passed.
bool parse_traf(std::string_view data, const Box& traf, const InitInfo& init, TrackRun& run, std::string& why) {
    auto tfhd = child(data, traf, fourcc("tfhd"));
    if (!tfhd) return why = "traf without tfhd", false;
    Cursor h{data, tfhd->payload(), tfhd->end()};
    const uint32_t tf_flags = h.u32() & 0xffffff;
    run.track_id = h.u32();
    const TrackInfo* track = init.find(run.track_id);
    if (!track) return why = "a fragment of track " + std::to_string(run.track_id) + " the init section lacks", false;
    if (tf_flags & 0x1) return why = "an absolute base-data-offset", false;
    if (tf_flags & 0x2) h.skip(4);
    uint32_t default_duration = track->default_duration, default_size = track->default_size,
             default_flags = track->default_flags;
    if (tf_flags & 0x8) default_duration = h.u32();
    if (tf_flags & 0x10) default_size = h.u32();
    if (tf_flags & 0x20) default_flags = h.u32();
    if (h.bad) return why = "a short tfhd", false;
    bool first_run = true;
    const bool ok = each_box(data, traf.payload(), traf.end(), [&](const Box& b) {
        if (b.type == fourcc("senc") || b.type == fourcc("saiz") || b.type == fourcc("saio")) {
            why = "encrypted samples";
            return false;
        }
        if (b.type == fourcc("tfdt")) {
            Cursor c{data, b.payload(), b.end()};
            const uint32_t version = c.u32() >> 24;
            run.decode_time = version == 1 ? c.u64() : c.u32();
            run.has_decode_time = !c.bad;
            return !c.bad;
        }
        if (b.type != fourcc("trun")) return true;
        Cursor c{data, b.payload(), b.end()};
        const uint32_t flags = c.u32() & 0xffffff;
        const uint32_t count = c.u32();
        if (flags & 0x1) c.skip(4);
        const bool has_first_flags = (flags & 0x4) != 0;
        const uint32_t first_flags = has_first_flags ? c.u32() : 0;
        if (c.bad) return false;
        const size_t record = 4 * ((flags & 0x100 ? 1 : 0) + (flags & 0x200 ? 1 : 0) + (flags & 0x400 ? 1 : 0) +
                                   (flags & 0x800 ? 1 : 0));
        if (record > 0 && count > (c.end - c.pos) / record) {
            why = "a trun with more samples than its box holds";
            return false;
        }
        if (record == 0) {  // every sample has the defaults: no loop over a count the bytes do not bound
            run.duration = add(run.duration, uint64_t(count) * default_duration);
            run.bytes = add(run.bytes, uint64_t(count) * default_size);
            if (first_run && count > 0) run.first_sync = sync_sample(has_first_flags ? first_flags : default_flags);
        } else {
            for (uint32_t i = 0; i < count; ++i) {
                const uint32_t d = flags & 0x100 ? c.u32() : default_duration;
                const uint32_t s = flags & 0x200 ? c.u32() : default_size;
                uint32_t f = flags & 0x400 ? c.u32() : default_flags;
                if (flags & 0x800) c.skip(4);
                if (i == 0 && has_first_flags) f = first_flags;
                if (i == 0 && first_run) run.first_sync = sync_sample(f);
                run.duration = add(run.duration, d);
                run.bytes = add(run.bytes, s);
            }
            if (c.bad) return false;
        }
        if (count > 0) first_run = false;
        run.samples = add(run.samples, count);
        return true;
    });
    if (!ok && why.empty()) why = "a broken traf";
    return ok;
}

}  // namespace

std::optional<MediaInfo> parse_media(std::string_view data, const InitInfo& init, std::string* why) {
    auto top = top_level_boxes(data);
    if (!top) return fail(why, "broken box"), std::nullopt;
    MediaInfo media;
    size_t pending_begin = std::numeric_limits<size_t>::max();  // emsg/prft kept with the next moof
    const Box* moof = nullptr;
    Fragment fragment;
    bool only_styp = true, leading_ok = false;
    size_t last_end = 0;
    bool contiguous = true;
    std::string problem;
    for (const auto& b : *top) {
        if (b.type == fourcc("moof")) {
            if (moof) return fail(why, "a moof without its mdat"), std::nullopt;
            moof = &b;
            fragment = Fragment{};
            fragment.begin = pending_begin != std::numeric_limits<size_t>::max() ? pending_begin : b.offset;
            pending_begin = std::numeric_limits<size_t>::max();
            if (media.fragments.empty()) {
                media.leading = fragment.begin;
                leading_ok = only_styp;
            } else if (fragment.begin != last_end) {
                contiguous = false;
            }
            int trafs = 0;
            const bool ok = each_box(data, b.payload(), b.end(), [&](const Box& t) {
                if (t.type != fourcc("traf")) return true;
                if (++trafs > 64) return false;
                TrackRun run;
                if (!parse_traf(data, t, init, run, problem)) return false;
                for (auto& r : fragment.runs)
                    if (r.track_id == run.track_id) {  // a second traf of a track: one run
                        r.duration = add(r.duration, run.duration);
                        r.bytes = add(r.bytes, run.bytes);
                        r.samples = add(r.samples, run.samples);
                        return true;
                    }
                fragment.runs.push_back(run);
                return true;
            });
            if (!ok) return fail(why, problem.empty() ? "broken moof" : problem), std::nullopt;
            continue;
        }
        if (b.type == fourcc("mdat")) {
            if (!moof) return fail(why, "an mdat without a moof"), std::nullopt;
            uint64_t bytes = 0;
            for (const auto& r : fragment.runs) bytes = add(bytes, r.bytes);
            if (bytes > b.size - b.header) return fail(why, "samples larger than their mdat"), std::nullopt;
            fragment.end = b.end();
            last_end = fragment.end;
            media.fragments.push_back(std::move(fragment));
            moof = nullptr;
            continue;
        }
        if (moof) continue;  // between a moof and its mdat
        if (b.type == fourcc("emsg") || b.type == fourcc("prft")) {
            if (pending_begin == std::numeric_limits<size_t>::max()) pending_begin = b.offset;
            continue;
        }
        // styp, and the sidx that index the segment as it is, may lead a segment that moves whole.
        if (b.type != fourcc("styp") && b.type != fourcc("sidx") && b.type != fourcc("free") && b.type != fourcc("skip"))
            only_styp = false;
        if (!media.fragments.empty()) contiguous = false;
        pending_begin = std::numeric_limits<size_t>::max();
    }
    if (moof) return fail(why, "a moof without its mdat"), std::nullopt;
    if (media.fragments.empty()) return fail(why, "no fragment"), std::nullopt;
    media.contiguous = contiguous && last_end == data.size() && leading_ok;
    return media;
}

}  // namespace hlsrelay::mp4
