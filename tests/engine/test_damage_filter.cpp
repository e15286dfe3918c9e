// The damage filter of continuous sources (src/ingest/damage_filter.hpp), driven with made-up
// packets and a made-up clock: what a silence followed by a pause, or by another encoder's stream,
// lets through. The players matrix (tests/players, the udp and http-ts sources) checks the same with
// real encoders and players.
#include "ingest/damage_filter.hpp"

#include <catch2/catch.hpp>

#include <memory>

namespace hlsrelay::test {
namespace {

constexpr int64_t kTicks = 90000;  // per second: MPEG-TS's clock

struct FormatDeleter {
    void operator()(AVFormatContext* f) const { avformat_free_context(f); }
};

struct Feed {
    std::unique_ptr<AVFormatContext, FormatDeleter> input{avformat_alloc_context()};
    DamageFilter filter;
    DamageFilter::Clock::time_point now = DamageFilter::Clock::now();
    std::vector<av::PacketPtr> out;
    static constexpr int kVideo = 0, kAudio = 1;

    Feed() {
        for (auto type : {AVMEDIA_TYPE_VIDEO, AVMEDIA_TYPE_AUDIO}) {
            AVStream* st = avformat_new_stream(input.get(), nullptr);
            REQUIRE(st);
            st->codecpar->codec_type = type;
            st->time_base = AVRational{1, static_cast<int>(kTicks)};
        }
    }
    // A packet of `stream` at media time `t` (seconds), arriving `after` seconds after the previous one.
    void push(int stream, double t, double after, bool key = false, bool corrupt = false) {
        now += std::chrono::microseconds(static_cast<int64_t>(after * 1e6));
        av::PacketPtr p = av::make_packet();
        p->stream_index = stream;
        p->dts = p->pts = static_cast<int64_t>(t * kTicks);
        p->flags = (key ? AV_PKT_FLAG_KEY : 0) | (corrupt ? AV_PKT_FLAG_CORRUPT : 0);
        filter.push(input.get(), p.get(), false, now, out);
    }
    // A live stream: 25 fps video (a keyframe each second) and audio every 40 ms, from `from` for `seconds`.
    void live(double from, double seconds) {
        for (double t = from; t < from + seconds - 1e-9; t += 0.04) {
            const bool key = std::fmod(t + 1e-9, 1.0) < 0.02;
            push(kVideo, t, 0.02, key);
            push(kAudio, t, 0.02);
        }
    }
    bool passed(int stream, double t) const {
        const auto ticks = static_cast<int64_t>(t * kTicks);
        for (const auto& p : out)
            if (p->stream_index == stream && p->dts == ticks) return true;
        return false;
    }
};

}  // namespace

TEST_CASE("damage filter: a pause in a live stream loses nothing") {
    Feed f;
    f.live(0, 3);
    const size_t before = f.out.size();
    f.push(Feed::kVideo, 3.0, 4.0, true);  // 4 s of silence, then the same timeline goes on
    f.push(Feed::kAudio, 3.0, 0.02);
    f.live(3.04, 1);
    CHECK(f.filter.take_dropped() == 0);
    CHECK(f.out.size() == before + 2 + 50);
    CHECK(f.passed(Feed::kVideo, 3.0));
}

TEST_CASE("damage filter: the cut-short frame before another encoder's stream is dropped, however late its video") {
    Feed f;
    f.live(0, 3);
    // The stream dies inside the frame at 3.0; 6 s later another encoder goes on at media time 9.
    // The demuxer hands over the cut-short frame when the new stream's first video PES starts.
    f.push(Feed::kAudio, 9.0, 6.0);
    for (int i = 1; i < 50; ++i) f.push(Feed::kAudio, 9.0 + 0.04 * i, 0.04);  // 2 s of audio first
    f.push(Feed::kVideo, 3.0, 0.04, false);  // the cut-short tail
    CHECK(f.filter.held() > 0);               // still judged: its stream's next packet has not come
    f.push(Feed::kVideo, 9.0, 0.5, true);     // the new stream's first keyframe
    CHECK(f.filter.held() == 0);
    CHECK_FALSE(f.passed(Feed::kVideo, 3.0));
    CHECK(f.passed(Feed::kVideo, 9.0));
    CHECK(f.passed(Feed::kAudio, 9.0));
    CHECK(f.filter.take_dropped() == 1);
}

TEST_CASE("damage filter: a held frame whose stream stays away is dropped, not vouched for") {
    Feed f;
    f.live(0, 2);
    f.push(Feed::kVideo, 2.0, 5.0, true);  // after a silence, one frame of the old timeline
    for (size_t i = 0; i < DamageFilter::kMaxHeld; ++i) f.push(Feed::kAudio, 8.0 + 0.02 * static_cast<double>(i), 0.01);
    CHECK(f.filter.held() < DamageFilter::kMaxHeld);
    CHECK_FALSE(f.passed(Feed::kVideo, 2.0));
    CHECK(f.passed(Feed::kAudio, 8.0));
    // The video waits for its next keyframe.
    f.push(Feed::kVideo, 13.04, 0.01, false);
    f.push(Feed::kVideo, 14.0, 0.01, true);
    CHECK_FALSE(f.passed(Feed::kVideo, 13.04));
    CHECK(f.passed(Feed::kVideo, 14.0));
}

TEST_CASE("damage filter: a corrupt packet is dropped and the video resumes at its next keyframe") {
    Feed f;
    f.live(0, 1);
    f.push(Feed::kVideo, 1.0, 0.02, true, true);
    f.push(Feed::kVideo, 1.04, 0.02);
    f.push(Feed::kAudio, 1.04, 0.02);
    f.push(Feed::kVideo, 2.0, 0.02, true);
    CHECK_FALSE(f.passed(Feed::kVideo, 1.0));
    CHECK_FALSE(f.passed(Feed::kVideo, 1.04));
    CHECK(f.passed(Feed::kAudio, 1.04));
    CHECK(f.passed(Feed::kVideo, 2.0));
    CHECK(f.filter.take_dropped() == 2);
}

}  // namespace hlsrelay::test
