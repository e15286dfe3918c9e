// The continuous TS (api::TsStream over Engine::read_ts_segment) of a channel packaged as fMP4: each
// segment remuxed into MPEG-TS once and shared by every viewer, the stream decoding cleanly across
// segment boundaries (PAT/PMT and a keyframe first, continuity counters and timestamps running on);
// a TS channel's chunks stay its window's own buffers. Presentations: test_engine_renditions.cpp.
#include "engine_fixture.hpp"
#include "ts_probe.hpp"

#include <hlsrelay/ts_stream.hpp>

#include <thread>

namespace hlsrelay::test {
namespace {

// `n` chunks of a stream in a row (fewer when the channel ends or a minute passes).
std::vector<Resource> read_chunks(api::TsStream& ts, std::size_t n) {
    std::vector<Resource> out;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (out.size() < n && std::chrono::steady_clock::now() < deadline) {
        if (auto r = ts.wait_next(5)) out.push_back(std::move(*r));
        else if (ts.ended()) break;
    }
    return out;
}

}  // namespace

TEST_CASE("ts stream: an fMP4 channel streams as continuous TS, each segment remuxed once for all viewers", "[ts-stream]") {
    LiveOrigin origin(live_media(), {.speed = 2.0});
    origin.start();
    EngineSettings settings = quick_settings(1.0, 6);
    settings.hls.container = Container::fmp4;
    Engine engine(settings);
    const auto c = engine.add_channel(channel("Fmp4 tuner", {origin.url()}));
    CHECK_FALSE(api::ts_stream_refusal(engine, c.id));  // fMP4 is no reason to refuse any more
    CHECK(api::ts_stream_refusal(engine, "nope")->status == 404);
    engine.start(c.id);
    REQUIRE(engine.wait_ready(c.id, 30));

    api::TsStream viewer(engine, c.id);
    const std::vector<Resource> chunks = read_chunks(viewer, 4);
    REQUIRE(chunks.size() == 4);
    CHECK(viewer.skipped() == 0);
    std::string stream;
    for (const Resource& r : chunks) {
        CHECK(r.content_type == "video/mp2t");
        const TsLayout layout = scan_ts(std::string(r.bytes()));
        REQUIRE_FALSE(layout.pat_at.empty());
        CHECK(layout.pat_at.front() <= 1);  // PAT/PMT begin every segment (right behind libav's SDT)
        REQUIRE_FALSE(layout.pmt_at.empty());
        CHECK(layout.pmt_at.front() == layout.pat_at.front() + 1);
        CHECK(layout.first_video_clean == 1);  // ... then a keyframe with its parameter sets
        stream += r.bytes();
    }
    INFO(ts_stream_problems(stream, 1, 1));
    CHECK(ts_stream_problems(stream, 1, 1).empty());  // counters and timestamps run on across segments
    const std::string errors = decode_errors(stream);
    INFO(errors);
    CHECK(errors.empty());

    // Shared: viewers of the same segment get the one buffer, made once even when they ask together.
    const auto p = engine.playlist_position(c.id, "index.m3u8");
    REQUIRE(p);
    REQUIRE(engine.wait_playlist(c.id, "index.m3u8", p->last_msn + 1, -1, 30));
    const int64_t fresh = p->last_msn + 1;  // nobody read it yet
    std::optional<Resource> one, two;
    std::thread t1([&] { one = engine.read_ts_segment(c.id, fresh); });
    std::thread t2([&] { two = engine.read_ts_segment(c.id, fresh); });
    t1.join();
    t2.join();
    REQUIRE(one);
    REQUIRE(two);
    CHECK(one->bytes().data() == two->bytes().data());
    api::TsStream late(engine, c.id);  // a second viewer joining at the newest segment
    const auto first = late.next();
    REQUIRE(first);
    const auto newest = engine.playlist_position(c.id, "index.m3u8");
    REQUIRE(newest);
    if (const auto again = engine.read_ts_segment(c.id, newest->last_msn); again && newest->last_msn == fresh)
        CHECK(again->bytes().data() == first->bytes().data());
    // The fMP4 output itself is untouched: its segments are still .m4s.
    CHECK_FALSE(engine.read(c.id, Segment::segment_name(fresh)));
    CHECK(engine.read(c.id, Segment::segment_name(fresh, SegmentFormat::fmp4)));
    engine.stop(c.id);
    CHECK_FALSE(engine.read_ts_segment(c.id, fresh));
}

TEST_CASE("ts stream: a TS channel's chunks are its window's own buffers, no remux", "[ts-stream]") {
    LiveOrigin origin(live_media(), {.speed = 2.0});
    origin.start();
    Engine engine(quick_settings(1.0, 6));
    const auto c = engine.add_channel(channel("Ts tuner", {origin.url()}));
    engine.start(c.id);
    REQUIRE(engine.wait_ready(c.id, 30));
    REQUIRE(wait_until([&] {
        const auto p = engine.playlist_position(c.id, "index.m3u8");
        return p && p->last_msn >= 0;
    }, std::chrono::seconds(30)));
    const int64_t msn = engine.playlist_position(c.id, "index.m3u8")->last_msn;
    const auto derived = engine.read_ts_segment(c.id, msn);
    const auto own = engine.read(c.id, Segment::segment_name(msn));
    REQUIRE(derived);
    REQUIRE(own);
    CHECK(derived->bytes().data() == own->bytes().data());
    api::TsStream viewer(engine, c.id);
    const std::vector<Resource> chunks = read_chunks(viewer, 3);
    REQUIRE(chunks.size() == 3);
    std::string stream;
    for (const Resource& r : chunks) stream += r.bytes();
    const std::string errors = decode_errors(stream);
    INFO(errors);
    CHECK(errors.empty());
    engine.stop(c.id);
}

}  // namespace hlsrelay::test
