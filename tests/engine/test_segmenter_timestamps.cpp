// The remux path's timestamp repair on hostile timestamps: a container (any format libavformat
// probes) may hand over any int64_t, and the Segmenter's arithmetic on them must neither overflow
// (UBSan in the sanitizer build) nor turn them into absurd segment durations.
#include <catch2/catch.hpp>

#include "common/av_util.hpp"
#include "cut/segmenter.hpp"

#include <cstdint>
#include <limits>
#include <vector>

using namespace hlsrelay;

namespace {
// One MP2 audio stream in milliseconds, as a demuxer would describe it.
av::OutputPtr mp2_input() {
    av::OutputPtr ctx(avformat_alloc_context());  // freed with avformat_free_context: no I/O of its own
    REQUIRE(ctx);
    AVStream* st = avformat_new_stream(ctx.get(), nullptr);
    REQUIRE(st);
    st->time_base = {1, 1000};
    st->pts_wrap_bits = 64;
    st->codecpar->codec_type = AVMEDIA_TYPE_AUDIO;
    st->codecpar->codec_id = AV_CODEC_ID_MP2;
    st->codecpar->sample_rate = 48000;
    st->codecpar->ch_layout = AV_CHANNEL_LAYOUT_MONO;
    return ctx;
}

void write(Segmenter& s, int64_t dts, int64_t pts, int64_t duration) {
    av::PacketPtr p(av_packet_alloc());
    REQUIRE(p);
    REQUIRE(av_new_packet(p.get(), 96) == 0);
    p->stream_index = 0;
    p->dts = dts;
    p->pts = pts;
    p->duration = duration;
    p->flags |= AV_PKT_FLAG_KEY;
    s.write(p.get());
}
}  // namespace

TEST_CASE("segmenter: hostile timestamps (near INT64 limits, beyond 2^52) neither overflow nor stretch segments") {
    constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
    constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
    std::vector<double> durations;
    Segmenter segmenter(1.0, [&](CutSegment&& seg) { durations.push_back(seg.duration); });
    auto input = mp2_input();
    segmenter.open_input(input.get(), false);
    // 100 packets of 24 ms from 100 s on (so that the timeline offset is negative); every tenth one
    // carries a hostile timestamp or duration instead of its own.
    const int64_t start = 100000;
    for (int64_t i = 0; i < 100; ++i) {
        const int64_t dts = start + 24 * i;
        switch (i % 10) {
            case 3: write(segmenter, dts, kMax - 10, 24); break;                // PTS that overflows at 90 kHz
            case 5: write(segmenter, dts, kMin + 10, 24); break;                // and the other way
            case 7: write(segmenter, kMax - 10, kMax - 10, kMax); break;        // DTS and duration too
            case 8: write(segmenter, int64_t{1} << 60, int64_t{1} << 60, 24); break;  // beyond 2^52
            case 9: write(segmenter, dts, dts, int64_t{1} << 53); break;        // a duration of 285 years
            default: write(segmenter, dts, dts, 24); break;
        }
    }
    segmenter.flush();
    REQUIRE(durations.size() >= 2);
    double total = 0;
    for (double d : durations) {
        INFO("segment of " << d << " s");
        CHECK(d > 0);
        CHECK(d < 3);  // segments of about 1 s: a hostile PTS does not stretch one
        total += d;
    }
    CHECK(total == Approx(2.4).margin(0.3));  // the timeline continues through the hostile packets
}

TEST_CASE("segmenter: timestamps that never advance are cut by size, so memory stays bounded") {
    auto run = [](size_t cap) {
        std::vector<size_t> sizes;
        Segmenter segmenter(1.0, [&](CutSegment&& seg) { sizes.push_back(seg.data.size()); }, cap);
        auto input = mp2_input();
        segmenter.open_input(input.get(), false);
        // 2000 packets with one and the same timestamp: repaired to one tick (1/90000 s) apart, so
        // 2000 of them make 22 ms, far from a 1 s cut.
        for (int i = 0; i < 2000; ++i) write(segmenter, 5000, 5000, 0);
        segmenter.flush();
        return sizes;
    };
    CHECK(run(std::numeric_limits<size_t>::max()).size() == 1);  // the situation: without a cap, one segment takes everything
    const size_t cap = 32 * 1024;
    const auto sizes = run(cap);
    CHECK(sizes.size() >= 5);
    for (size_t n : sizes) CHECK(n <= 2 * cap);  // the cap counts payload; TS adds headers
}
