// LL-HLS pieces without I/O: part names, the window's parts, the low-latency media playlist (RFC
// 8216bis 4.4.3.7-8, 4.4.4.9, 4.4.5.2-4, 6.2.5) and where a blocking reload may be answered.
#include <hlsrelay/playlist.hpp>
#include <hlsrelay/resource.hpp>
#include <hlsrelay/window.hpp>

#include <catch2/catch.hpp>

#include <sstream>

using namespace hlsrelay;
using namespace std::chrono_literals;

namespace {
// A published segment of `parts` parts of 0.5 s (the first independent), bytes "<seq>:<k>;" each.
SegmentPtr segment_of_parts(int64_t seq, int parts, SegmentFormat format = SegmentFormat::fmp4) {
    auto s = std::make_shared<Segment>();
    s->sequence = seq;
    s->format = format;
    for (int k = 0; k < parts; ++k) {
        const std::string bytes = std::to_string(seq) + ":" + std::to_string(k) + ";";
        s->parts.push_back(PartSpan{s->data.size(), bytes.size(), 0.5, k == 0, seq * 10 + k});
        s->data += bytes;
        s->duration += 0.5;
    }
    return s;
}

PartPtr open_part(int64_t seq, int index, SegmentFormat format = SegmentFormat::fmp4) {
    auto p = std::make_shared<Part>();
    p->sequence = seq;
    p->index = index;
    p->number = seq * 10 + index;
    p->duration = 0.5;
    p->independent = index == 0;
    p->format = format;
    p->data = "open" + std::to_string(index);
    return p;
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
}

int count_prefix(const std::string& text, const std::string& prefix) {
    int n = 0;
    for (const auto& l : lines_of(text)) n += l.rfind(prefix, 0) == 0;
    return n;
}
}  // namespace

TEST_CASE("part names round-trip, one name per part, nothing else parses", "[ll]") {
    CHECK(part_name(1796120346000, SegmentFormat::fmp4) == "part_1796120346000.m4s");
    CHECK(part_name(7, SegmentFormat::ts) == "part_7.ts");
    for (const auto& [n, f] : {std::pair{int64_t{0}, SegmentFormat::ts}, {int64_t{123456789012345}, SegmentFormat::fmp4}}) {
        const auto parsed = parse_part_name(part_name(n, f));
        REQUIRE(parsed);
        CHECK(parsed->first == n);
        CHECK(parsed->second == f);
    }
    for (const char* bad : {"part_01.ts", "part_1.vtt", "part_.ts", "part_-1.ts", "part_1.ts.ts", "seg_1.ts",
                            "part_1_2.ts", "part_1234567890123456789.ts", ""})
        CHECK_FALSE(parse_part_name(bad));
}

TEST_CASE("window: open parts until their segment is published, then ranges of its bytes", "[ll]") {
    Window w(3);
    const auto t0 = SteadyClock::time_point{} + 1000s;
    w.push_part(open_part(5, 0));
    w.push_part(open_part(5, 1));
    auto b = w.find_part(51, t0);
    REQUIRE(b.data);
    CHECK(b.data->substr(b.offset, b.length) == "open1");
    CHECK_FALSE(w.find_part(52, t0).data);
    CHECK_FALSE(w.find_part(40, t0).data);
    // The segment arrives: its parts are now ranges of it, the open ones are gone.
    w.push(segment_of_parts(5, 2), t0);
    CHECK(w.open_parts().empty());
    b = w.find_part(51, t0);
    REQUIRE(b.data);
    CHECK(b.data->substr(b.offset, b.length) == "5:1;");
    CHECK(b.format == SegmentFormat::fmp4);
    // A part of another segment drops the open parts of an abandoned one.
    w.push_part(open_part(6, 0));
    w.push_part(open_part(7, 0));
    REQUIRE(w.open_parts().size() == 1);
    CHECK(w.open_parts().front()->sequence == 7);
    // Parts leave with their segment (window, then grace).
    for (int64_t s = 8; s < 12; ++s) w.push(segment_of_parts(s, 2), t0);
    CHECK(w.find_part(50, t0).data);  // in grace
    w.expire(t0 + 60s);
    CHECK_FALSE(w.find_part(50, t0 + 60s).data);
}

TEST_CASE("low-latency media playlist: control tags, parts of the last three target durations, hint", "[ll]") {
    Window w(6);
    const auto t0 = SteadyClock::time_point{} + 1000s;
    auto init = std::make_shared<InitSection>();
    init->version = 0;
    init->data = "init";
    for (int64_t s = 10; s < 16; ++s) {
        auto seg = std::const_pointer_cast<Segment>(segment_of_parts(s, 4));  // 2 s segments
        seg->init = init;
        w.push(seg, t0);
    }
    w.push_part(open_part(16, 0));
    w.push_part(open_part(16, 1));
    LowLatency ll;
    ll.part_target = 0.5;
    ll.open_parts = &w.open_parts();
    ll.next_sequence = 16;
    ll.next_part = 162;
    const std::string text = render_media_playlist(w.listed(), 2, {}, &ll);
    INFO(text);
    CHECK(text.find("#EXT-X-VERSION:9\n") != std::string::npos);
    CHECK(text.find("#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12,PART-HOLD-BACK=1.5\n") != std::string::npos);
    CHECK(text.find("#EXT-X-PART-INF:PART-TARGET=0.5\n") != std::string::npos);
    CHECK(text.find("#EXT-X-MEDIA-SEQUENCE:10\n") != std::string::npos);
    // A source whose media comes a 2 s segment at a time: players are held back by the burst and a
    // margin to fetch the next one, or 3 part targets when those are more.
    LowLatency bursty = ll;
    bursty.burst = 2.0;
    CHECK(render_media_playlist(w.listed(), 2, {}, &bursty).find(",PART-HOLD-BACK=3\n") != std::string::npos);
    bursty.part_target = part_target_for_bursts(2.0);
    CHECK(render_media_playlist(w.listed(), 2, {}, &bursty).find(",PART-HOLD-BACK=3.50001\n") != std::string::npos);
    // 13 s listed (6 x 2 s + 1 s of open parts): parts for the segments wholly in its last 6 s (14, 15)
    // and the open segment's.
    CHECK(count_prefix(text, "#EXT-X-PART:") == 4 + 4 + 2);
    CHECK(text.find("part_13") == std::string::npos);
    CHECK(text.find("#EXT-X-PART:DURATION=0.5,URI=\"part_140.m4s\",INDEPENDENT=YES\n#EXT-X-PART:DURATION=0.5,URI=\"part_141.m4s\"\n") !=
          std::string::npos);
    // A segment's parts come before its EXTINF; the open segment's after the last one, then the hint.
    CHECK(text.find("part_153.m4s\"\n#EXTINF:2.000,\nseg_15.m4s\n") != std::string::npos);
    const auto l = lines_of(text);
    REQUIRE(l.size() >= 3);
    CHECK(l[l.size() - 3] == "#EXT-X-PART:DURATION=0.5,URI=\"part_160.m4s\",INDEPENDENT=YES");
    CHECK(l[l.size() - 2] == "#EXT-X-PART:DURATION=0.5,URI=\"part_161.m4s\"");
    CHECK(l.back() == "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part_162.m4s\"");
    CHECK(count_prefix(text, "#EXT-X-MAP:") == 1);

    SECTION("the hint names the next part by its number, whichever segment it ends up in") {
        LowLatency none = ll;
        const std::vector<PartPtr> empty;
        none.open_parts = &empty;
        none.next_part = 160;
        const std::string t = render_media_playlist(w.listed(), 2, {}, &none);
        CHECK(lines_of(t).back() == "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part_160.m4s\"");
    }
    SECTION("a delta update skips what starts more than CAN-SKIP-UNTIL before the end, keeping its MAP") {
        LowLatency delta = ll;
        delta.skip = true;
        const std::string t = render_media_playlist(w.listed(), 2, {}, &delta);
        INFO(t);
        // 13 s in all, skip boundary 12 s: only segment 10 (starting 13 s before the end) is left out.
        CHECK(skippable_segments(w.listed(), 12, 1.0) == 1);
        CHECK(skippable_segments(w.listed(), 12) == 0);
        CHECK(t.find("#EXT-X-SKIP:SKIPPED-SEGMENTS=1\n#EXT-X-MAP:URI=\"init_0.mp4\"\n") != std::string::npos);
        CHECK(t.find("seg_10.m4s") == std::string::npos);
        CHECK(t.find("seg_11.m4s") != std::string::npos);
        CHECK(t.find("#EXT-X-MEDIA-SEQUENCE:10\n") != std::string::npos);  // the full playlist's, as the spec asks
        CHECK(lines_of(t).back() == lines_of(text).back());
    }
    SECTION("without low latency nothing of it appears") {
        const std::string plain = render_media_playlist(w.listed(), 2);
        CHECK(plain.find("#EXT-X-PART") == std::string::npos);
        CHECK(plain.find("PRELOAD-HINT") == std::string::npos);
        CHECK(plain.find("SERVER-CONTROL") == std::string::npos);
        CHECK(plain.find("#EXT-X-VERSION:6\n") != std::string::npos);
    }
}

TEST_CASE("LL seconds print at most 5 decimals, targets rounded up", "[ll]") {
    CHECK(ll_seconds(1.0 / 3) == "0.33333");
    CHECK(ll_seconds(1.0 / 3, true) == "0.33334");
    CHECK(ll_seconds(1.0, true) == "1");
    CHECK(ll_seconds(0.5) == "0.5");
    CHECK(ll_seconds(12) == "12");
    CHECK(part_hold_back_for(1.0 / 3) >= 3 * (1.0 / 3));
}

TEST_CASE("LL over a source that comes a segment at a time: blocking reloads outlast the wait for the next", "[ll]") {
    for (const double td : {1.0, 2.0, 4.0, 6.0, 10.0}) {
        CAPTURE(td);
        const double pt = part_target_for_bursts(td);
        // hls.js gives up on a blocking reload after max(3 part targets, 0.8 target durations); the
        // next part comes with the next source segment: at most 1.5 target durations later (a reload
        // that found nothing waits half a target duration more), and its fetch.
        CHECK(std::max(3 * pt, 0.8 * td) >= 1.5 * td + 0.5 - 1e-9);
        // The hold-back covers a burst of up to two target durations with the margin.
        CHECK(part_hold_back_for(pt, 2 * td) >= 2 * td + kBurstMargin - 1e-9);
        CHECK(part_hold_back_for(pt, td) >= 3 * pt);
    }
    CHECK(part_hold_back_for(0.5, 0) == Approx(1.5));  // a continuous source: three part targets
}

TEST_CASE("blocking reload: a playlist holds a segment, a part, or the next segment's first part", "[ll]") {
    PlaylistPosition p;
    p.low_latency = true;
    p.target_duration = 2;
    p.last_msn = 20;
    p.last_parts = 6;
    p.open_msn = 21;
    p.open_parts = 2;
    CHECK(p.holds(19, -1));
    CHECK(p.holds(20, -1));
    CHECK_FALSE(p.holds(21, -1));  // not whole yet
    CHECK(p.holds(20, 5));
    CHECK(p.holds(21, 0));
    CHECK(p.holds(21, 1));
    CHECK_FALSE(p.holds(21, 2));
    CHECK_FALSE(p.holds(22, 0));
    // Part 6 of segment 20 (which had six): the request means segment 21's first part, which is out.
    CHECK(p.holds(20, 6));
    p.open_parts = 0;
    CHECK_FALSE(p.holds(20, 6));
    CHECK_FALSE(p.holds(20, 7));
    CHECK(p.holds(20, 5));
}
