// The rolling window and the playlists rendered from it, with explicit clocks: no I/O.
#include "ingest/m3u8.hpp"
#include <hlsrelay/channel.hpp>
#include <hlsrelay/playlist.hpp>
#include <hlsrelay/status.hpp>
#include <hlsrelay/window.hpp>

#include <catch2/catch.hpp>

using namespace hlsrelay;
using namespace std::chrono_literals;

namespace {
SegmentPtr make_segment(int64_t seq, double duration, bool discontinuity = false, int64_t dseq = 0) {
    auto s = std::make_shared<Segment>();
    s->sequence = seq;
    s->duration = duration;
    s->discontinuity = discontinuity;
    s->discontinuity_sequence = dseq;
    s->program_date_time = SystemClock::time_point{} + std::chrono::hours(24 * 365 * 56) + std::chrono::seconds(seq);
    s->data = "x";
    return s;
}
}  // namespace

TEST_CASE("window lists the newest N and keeps removed segments for their RFC 8216 grace") {
    Window w(3);
    const auto t0 = SteadyClock::time_point{} + 1000s;
    for (int i = 0; i < 3; ++i) CHECK(w.push(make_segment(i, 2.0), t0 + i * 2s).empty());
    REQUIRE(w.listed().size() == 3);
    CHECK(w.listed_duration() == Approx(6.0));
    // Segment 0 leaves when 3 arrives at t0+6s: grace = its 2 s + the 6 s playlist it was in.
    CHECK(w.push(make_segment(3, 2.0), t0 + 6s).empty());
    CHECK(w.listed().front()->sequence == 1);
    CHECK(w.find(0, t0 + 6s));
    CHECK(w.find(0, t0 + 13900ms));
    CHECK_FALSE(w.find(0, t0 + 14s));
    CHECK(w.in_grace() == 1);
    const auto gone = w.expire(t0 + 14s);
    REQUIRE(gone.size() == 1);
    CHECK(gone[0]->sequence == 0);
    CHECK(w.in_grace() == 0);
    CHECK_FALSE(w.find(42, t0));
    const auto all = w.clear();
    CHECK(all.size() == 3);
    CHECK(w.listed().empty());
}

TEST_CASE("a removed segment's grace counts the longest playlist that listed it, not the last one") {
    // RFC 8216 6.2.2. Long segments (a source without keyframes for a while) then short ones: segment 2
    // was listed in [0 (6 s), 1 (6 s), 2 (1 s)] = 13 s, but when it leaves the playlist is [2, 3, 4] = 3 s.
    Window w(3);
    const auto t0 = SteadyClock::time_point{} + 1000s;
    w.push(make_segment(0, 6.0), t0);
    w.push(make_segment(1, 6.0), t0 + 6s);
    w.push(make_segment(2, 1.0), t0 + 7s);
    w.push(make_segment(3, 1.0), t0 + 8s);
    w.push(make_segment(4, 1.0), t0 + 9s);
    w.push(make_segment(5, 1.0), t0 + 10s);  // 2 leaves: grace 1 s + 13 s
    CHECK(w.listed().front()->sequence == 3);
    CHECK(w.find(2, t0 + 23900ms));
    CHECK_FALSE(w.find(2, t0 + 24s));
    // 3 leaves at 11 s with 1 s + [1 (6 s), 2, 3] = 8 s of playlist: it expires at 20 s, before 0 and 1
    // (6 s + 13 s from 8 s and 9 s) and 2 (24 s) that left earlier.
    w.push(make_segment(6, 1.0), t0 + 11s);
    const auto gone = w.expire(t0 + 20s);
    REQUIRE(gone.size() == 1);
    CHECK(gone[0]->sequence == 3);
    CHECK(w.find(0, t0 + 20s));
    CHECK(w.find(2, t0 + 20s));
    CHECK(w.expire(t0 + 28s).size() == 3);
}

TEST_CASE("a reader keeps a segment alive after the window let it go") {
    Window w(1);
    const auto t0 = SteadyClock::time_point{} + 10s;
    w.push(make_segment(7, 1.0), t0);
    SegmentPtr held = w.find(7, t0);
    w.push(make_segment(8, 1.0), t0 + 1s);
    w.expire(t0 + 100s);
    CHECK_FALSE(w.find(7, t0 + 100s));
    CHECK(held->data == "x");  // still valid: shared, immutable
}

TEST_CASE("segment names round-trip and nothing else parses") {
    CHECK(Segment::segment_name(1795495587) == "seg_1795495587.ts");
    CHECK(Segment::parse_name("seg_1795495587.ts") == 1795495587);
    CHECK(Segment::parse_name("seg_0.ts") == 0);
    for (const char* bad : {"seg_.ts", "seg_01.ts", "seg_1.ts.tmp", "../seg_1.ts", "seg_-1.ts", "seg_1a.ts",
                            "index.m3u8", "seg_1234567890123456789.ts", ""})
        CHECK_FALSE(Segment::parse_name(bad));
}

TEST_CASE("media playlist: header, discontinuities and their sequence, no ENDLIST") {
    Window w(3);
    const auto t0 = SteadyClock::time_point{} + 10s;
    w.push(make_segment(10, 2.0, false, 0), t0);
    w.push(make_segment(11, 1.5, true, 1), t0);
    w.push(make_segment(12, 2.0, false, 1), t0);
    std::string text = render_media_playlist(w.listed(), 2);
    CHECK(text.rfind("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:10\n", 0) == 0);
    CHECK(text.find("#EXT-X-DISCONTINUITY-SEQUENCE") == std::string::npos);
    CHECK(text.find("#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:") != std::string::npos);
    {  // an undated segment (the epoch) has no date in the playlist; the dated ones keep theirs
        Window undated(2);
        auto s = std::make_shared<Segment>(*make_segment(20, 2.0));
        s->program_date_time = {};
        undated.push(make_segment(19, 2.0), t0);
        undated.push(s, t0);
        const std::string u = render_media_playlist(undated.listed(), 2);
        CHECK(u.find("#EXT-X-PROGRAM-DATE-TIME:") == u.rfind("#EXT-X-PROGRAM-DATE-TIME:"));
        CHECK(u.find("#EXT-X-PROGRAM-DATE-TIME:") < u.find("seg_19.ts"));
        CHECK(u.find("#EXTINF:2.000,\nseg_20.ts") != std::string::npos);
    }
    CHECK(text.find("#EXTINF:1.500,\nseg_11.ts\n") != std::string::npos);
    CHECK(text.find("ENDLIST") == std::string::npos);
    auto parsed = m3u8::parse(text, "http://h/a/index.m3u8").media();
    REQUIRE(parsed.segments.size() == 3);
    CHECK(parsed.segments[1].discontinuity);
    CHECK(parsed.segments[2].discontinuity_sequence == 1);

    // The tagged segment at the head: its tag stays and the header counts the ones before it.
    w.push(make_segment(13, 2.0, false, 1), t0);
    text = render_media_playlist(w.listed(), 2);
    CHECK(text.find("#EXT-X-DISCONTINUITY-SEQUENCE") == std::string::npos);
    CHECK(text.find("#EXT-X-MEDIA-SEQUENCE:11\n#EXT-X-DISCONTINUITY\n") != std::string::npos);
    // Once it scrolled out, the header carries it.
    w.push(make_segment(14, 2.0, false, 1), t0);
    text = render_media_playlist(w.listed(), 2);
    CHECK(text.find("#EXT-X-DISCONTINUITY-SEQUENCE:1\n") != std::string::npos);
    CHECK(text.find("#EXT-X-DISCONTINUITY\n") == std::string::npos);
    parsed = m3u8::parse(text, "http://h/a/index.m3u8").media();
    CHECK(parsed.discontinuity_sequence == 1);
    CHECK(parsed.media_sequence == 12);
}

TEST_CASE("master playlist carries what was measured on the stream") {
    StreamInfo info;
    info.codecs = "avc1.64001f,mp4a.40.2";
    info.width = 1280;
    info.height = 720;
    info.frame_rate = 29.97;
    info.peak_bandwidth = 2'800'000;
    info.average_bandwidth = 2'500'000;
    const std::string text = render_master_playlist(info);
    auto p = m3u8::parse(text, "http://h/hls_streams/x/master.m3u8");
    REQUIRE(p.is_master());
    const auto& v = p.master().variants.at(0);
    CHECK(v.bandwidth == 2'800'000);
    CHECK(v.average_bandwidth == 2'500'000);
    CHECK(v.codecs == "avc1.64001f,mp4a.40.2");
    CHECK(v.width == 1280);
    CHECK(v.height == 720);
    CHECK(v.frame_rate == Approx(29.97));
    CHECK(v.uri == "http://h/hls_streams/x/index.m3u8");
}

TEST_CASE("status JSON: the replaced design's fields first, in order") {
    ChannelStatus s;
    s.channel_name = "&pictures";
    s.stream_id = "and_pictures";
    s.state = ChannelState::Running;
    s.cleanup_running = true;
    s.segment_count = 5;
    s.max_segments = 5;
    s.master_playlist_exists = true;
    s.hls_url = hls_url_for("and_pictures");
    s.estimated_buffer_seconds = 10.0004;
    const auto j = to_json(s);
    std::vector<std::string> keys;
    for (auto it = j.begin(); it != j.end(); ++it) keys.push_back(it.key());
    const std::vector<std::string> replaced{"channel_name", "stream_id", "process_status", "cleanup_running",
                                            "segment_count", "max_segments", "master_playlist_exists", "hls_url",
                                            "estimated_buffer_seconds"};
    REQUIRE(keys.size() > replaced.size());
    CHECK(std::vector<std::string>(keys.begin(), keys.begin() + static_cast<long>(replaced.size())) == replaced);
    CHECK(j["process_status"] == "running");
    CHECK(j["hls_url"] == "/hls_streams/and_pictures/master.m3u8");
    CHECK(j["estimated_buffer_seconds"] == 10.0);
    CHECK(j["last_error"].is_null());
    s.state = ChannelState::Idle;
    CHECK(to_json(s)["process_status"] == "stopped");
    CHECK(to_json(s)["state"] == "idle");
    s.state = ChannelState::Stalled;  // running, but no new segment: both fields say so
    CHECK(to_json(s)["process_status"] == "stalled");
    CHECK(to_json(s)["state"] == "stalled");
}

TEST_CASE("segment and init names: one name per file and format", "[window]") {
    CHECK(Segment::segment_name(7, SegmentFormat::fmp4) == "seg_7.m4s");
    CHECK(Segment::segment_name(7, SegmentFormat::webvtt) == "seg_7.vtt");
    CHECK(Segment::parse_any_name("seg_7.m4s") == std::make_pair(int64_t{7}, SegmentFormat::fmp4));
    CHECK(Segment::parse_any_name("seg_7.vtt") == std::make_pair(int64_t{7}, SegmentFormat::webvtt));
    CHECK_FALSE(Segment::parse_any_name("seg_07.m4s"));
    CHECK_FALSE(Segment::parse_any_name("seg_7.mp4"));
    CHECK(InitSection::init_name(3) == "init_3.mp4");
    CHECK(InitSection::parse_name("init_3.mp4") == 3);
    for (const char* bad : {"init_.mp4", "init_03.mp4", "init_3.m4s", "init_-1.mp4", "xinit_3.mp4"})
        CHECK_FALSE(InitSection::parse_name(bad));
}

TEST_CASE("media playlist: EXT-X-MAP where the init section changes and after discontinuities, EXT-X-GAP", "[window]") {
    auto init0 = std::make_shared<InitSection>(InitSection{0, "moov0"});
    auto init1 = std::make_shared<InitSection>(InitSection{1, "moov1"});
    Window w(5);
    const auto now = SteadyClock::now();
    auto seg = [&](int64_t n, InitPtr init, bool disc, bool gap) {
        auto s = std::make_shared<Segment>();
        s->sequence = n;
        s->duration = 2;
        s->format = SegmentFormat::fmp4;
        s->init = std::move(init);
        s->discontinuity = disc;
        s->discontinuity_sequence = disc ? 1 : 0;
        s->gap = gap;
        s->data = gap ? "" : "x";
        w.push(s, now);
    };
    seg(10, init0, false, false);
    seg(11, init0, false, true);
    seg(12, init1, true, false);
    const std::string text = render_media_playlist(w.listed(), 2, "v0/");
    CHECK(text.find("#EXT-X-VERSION:6\n") != std::string::npos);
    CHECK(text.find("#EXT-X-MAP:URI=\"v0/init_0.mp4\"") < text.find("v0/seg_10.m4s"));
    CHECK(text.find("#EXT-X-MAP:URI=\"v0/init_0.mp4\"", text.find("v0/seg_10.m4s")) == std::string::npos);
    CHECK(text.find("#EXT-X-GAP\nv0/seg_11.m4s") != std::string::npos);
    CHECK(text.find("#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"v0/init_1.mp4\"") != std::string::npos);
    CHECK(w.find_init(1, now) == init1);
    CHECK_FALSE(w.find_init(2, now));
}

TEST_CASE("rendition selections parse, and everything else is refused with the reason", "[window]") {
    using M = RenditionSelection::Mode;
    CHECK(parse_rendition_selection("all")->mode == M::all);
    CHECK(parse_rendition_selection("highest")->mode == M::highest);
    CHECK(parse_rendition_selection("lowest")->mode == M::lowest);
    CHECK(parse_rendition_selection("max-height=720")->limit == 720);
    CHECK(parse_rendition_selection("max-bandwidth=3000000")->mode == M::max_bandwidth);
    CHECK(parse_rendition_selection("1080p,360p")->heights == std::vector<int>{1080, 360});
    for (const char* bad : {"", "ALL", "max-height=", "max-height=0", "max-height=-5", "720", "720p,", ",720p", "p",
                            "max-bandwidth=99999999999999", "1080p;360p"}) {
        std::string why;
        CHECK_FALSE(parse_rendition_selection(bad, &why));
        CHECK_FALSE(why.empty());
    }
}
