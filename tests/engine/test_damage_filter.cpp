// The damage filter of continuous sources (src/ingest/damage_filter.hpp), driven with made-up
// packets and a made-up clock: what a silence followed by a pause, or by another encoder's stream,
// lets through. The players matrix (tests/players, the udp and http-ts sources) checks the same with
// real encoders and players.
#include "ingest/damage_filter.hpp"

#include "../support/media.hpp"
#include "../support/ts_edit.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>

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

namespace {

// One encoder's MPEG-TS dies inside a video frame (its PES start and two more packets, as the
// players matrix's pump cuts it); a silence; another encoder's stream on a later clock. Read by
// libav's real MPEG-TS demuxer (and its H.264 parser, which hands a frame over only when the next
// starts), with a made-up clock that jumps over the silence when the reads cross into the new stream.
struct Restart {
    std::string bytes;
    size_t boundary = 0, pos = 0;
    double clock = 0;  // seconds: 10 ms per read, the silence at the boundary
    bool crossed = false;

    static int read(void* opaque, uint8_t* buf, int size) {
        auto* r = static_cast<Restart*>(opaque);
        if (r->pos >= r->bytes.size()) return AVERROR_EOF;
        if (r->pos == r->boundary && !r->crossed) {
            r->crossed = true;
            r->clock += 6.0;
        }
        size_t n = std::min<size_t>(static_cast<size_t>(size), r->bytes.size() - r->pos);
        if (r->pos < r->boundary) n = std::min(n, r->boundary - r->pos);  // never across the silence
        std::memcpy(buf, r->bytes.data() + r->pos, n);
        r->pos += n;
        r->clock += 0.01;
        return static_cast<int>(n);
    }
};

int pid_of(std::string_view pkt) { return ((static_cast<uint8_t>(pkt[1]) & 0x1F) << 8) | static_cast<uint8_t>(pkt[2]); }

}  // namespace

TEST_CASE("damage filter: behind the real demuxer, another encoder's stream after a cut-short frame decodes clean") {
    const auto& media = make_media(MediaSpec{.seconds = 12, .segment_seconds = 1.0, .name = "damage-restart"});
    std::ifstream in(media.single_file, std::ios::binary);
    std::stringstream buf;
    buf << in.rdbuf();
    const std::string all = buf.str();
    const TsScan scan = scan_ts(all);
    int video_pid = -1;
    for (const auto& [pid, type] : scan.stream_types)
        if (type == 0x1B) video_pid = pid;
    REQUIRE(video_pid > 0);

    // The frame the stream dies in: inside a GOP, or a keyframe; the new stream's first video packet
    // continues the old continuity counter by chance (no corrupt flag at all), or does not.
    const int cut_frame = GENERATE(150, 151);
    const bool counters_match = GENERATE(true, false);
    CAPTURE(cut_frame, counters_match);
    std::string old_stream;
    int frames = -1, tail = -1, last_cc = -1;
    for (size_t off = 0; off + 188 <= all.size(); off += 188) {
        const std::string_view pkt(all.data() + off, 188);
        const bool video = pid_of(pkt) == video_pid;
        if (video && (pkt[1] & 0x40) && ++frames == cut_frame) tail = 3;
        old_stream.append(pkt);
        if (video) last_cc = pkt[3] & 0x0F;
        if (video && tail > 0 && --tail == 0) break;
    }
    REQUIRE(tail == 0);
    std::string new_stream = shift_ts(all, 20 * 90000);  // the new encoder's clock: 20 s later
    int shift = -1;
    for (size_t off = 0; off + 188 <= new_stream.size(); off += 188) {
        if (pid_of(std::string_view(new_stream.data() + off, 188)) != video_pid) continue;
        const int cc = new_stream[off + 3] & 0x0F;
        if (shift < 0) shift = ((last_cc + (counters_match ? 1 : 2)) - cc) & 0x0F;
        new_stream[off + 3] = static_cast<char>((new_stream[off + 3] & 0xF0) | ((cc + shift) & 0x0F));
    }

    // What a clean read of the old stream gives: each frame's size by its timestamp.
    std::map<int64_t, int> whole;
    Restart r{old_stream + new_stream, old_stream.size()};
    {
        auto io = av::make_custom_io(&r, 0, &Restart::read, nullptr, nullptr);
        AVFormatContext* raw = avformat_alloc_context();
        raw->pb = io.get();
        raw->flags |= AVFMT_FLAG_CUSTOM_IO;
        raw->probesize = 64 * 1024;  // the probe stays well inside the old stream
        REQUIRE(avformat_open_input(&raw, nullptr, av_find_input_format("mpegts"), nullptr) == 0);
        av::InputPtr input(raw);
        REQUIRE(avformat_find_stream_info(input.get(), nullptr) >= 0);
        int video = -1;
        for (unsigned i = 0; i < input->nb_streams; ++i)
            if (input->streams[i]->codecpar->codec_type == AVMEDIA_TYPE_VIDEO) video = static_cast<int>(i);
        REQUIRE(video >= 0);
        const double tb = av_q2d(input->streams[video]->time_base);

        // The reference: the whole old stream, read alone.
        {
            Restart ref{all, all.size()};
            auto ref_io = av::make_custom_io(&ref, 0, &Restart::read, nullptr, nullptr);
            AVFormatContext* ref_raw = avformat_alloc_context();
            ref_raw->pb = ref_io.get();
            ref_raw->flags |= AVFMT_FLAG_CUSTOM_IO;
            REQUIRE(avformat_open_input(&ref_raw, nullptr, av_find_input_format("mpegts"), nullptr) == 0);
            av::InputPtr ref_input(ref_raw);
            av::PacketPtr p = av::make_packet();
            while (av_read_frame(ref_input.get(), p.get()) >= 0) {
                if (ref_input->streams[p->stream_index]->codecpar->codec_type == AVMEDIA_TYPE_VIDEO) whole[p->dts] = p->size;
                av_packet_unref(p.get());
            }
        }

        DamageFilter filter;
        std::vector<av::PacketPtr> ready;
        const auto start = DamageFilter::Clock::now();
        av::PacketPtr p = av::make_packet();
        int old_passed = 0, new_passed = 0, cut_short_passed = 0;
        bool new_started_clean = true;
        while (av_read_frame(input.get(), p.get()) >= 0) {
            const auto now = start + std::chrono::microseconds(static_cast<int64_t>(r.clock * 1e6));
            filter.push(input.get(), p.get(), false, now, ready);
            for (const auto& q : ready) {
                if (q->stream_index != video) continue;
                const double t = static_cast<double>(q->dts) * tb;
                if (t < 15) {
                    ++old_passed;
                    const auto it = whole.find(q->dts);
                    if (it == whole.end() || it->second != q->size) ++cut_short_passed;
                } else {
                    if (new_passed++ == 0 && !(q->flags & AV_PKT_FLAG_KEY)) new_started_clean = false;
                }
            }
            ready.clear();
        }
        CHECK(old_passed >= cut_frame - 2);  // at most the last whole frame lost besides the tail
        CHECK(cut_short_passed == 0);
        CHECK(new_passed > 200);
        CHECK(new_started_clean);
    }
}

}  // namespace hlsrelay::test
