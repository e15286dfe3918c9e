// The engine restreaming real live sources made on loopback: an HLS origin, local files, faults.
#include "engine_fixture.hpp"
#include "ts_probe.hpp"

#include "common/av_util.hpp"

#include "ingest/m3u8.hpp"

#include <atomic>
#include <cmath>
#include <fstream>
#include <mutex>
#include <set>
#include <spawn.h>
#include <sys/wait.h>

extern char** environ;

namespace hlsrelay::test {

void run_ffmpeg(const std::vector<std::string>& args) {
    std::vector<std::string> all{"ffmpeg", "-hide_banner", "-loglevel", "error", "-y"};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = 0;
    if (posix_spawnp(&pid, "ffmpeg", nullptr, nullptr, argv.data(), environ) != 0)
        throw std::runtime_error("cannot run ffmpeg");
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) throw std::runtime_error("ffmpeg failed");
}

namespace {

std::string read_text(const Engine& e, const std::string& id, const std::string& name) {
    auto r = e.read(id, name);
    return r ? std::string(r->bytes()) : std::string();
}

m3u8::MediaPlaylist media_playlist(const Engine& e, const std::string& id) {
    return m3u8::parse(read_text(e, id, "index.m3u8"), "http://127.0.0.1/hls_streams/" + id + "/index.m3u8").media();
}

// All listed segments concatenated: what a player appends to its buffer.
std::string listed_bytes(const Engine& e, const std::string& id, const m3u8::MediaPlaylist& p) {
    std::string all;
    for (const auto& s : p.segments) {
        auto r = e.read(id, s.uri.substr(s.uri.rfind('/') + 1));
        if (r) all += std::string(r->bytes());
    }
    return all;
}

// Timestamps of each stream strictly increase, without holes longer than `max_gap` seconds.
void check_continuous(const TsProbe& probe, double max_gap) {
    REQUIRE(probe.ok);
    std::map<int, int64_t> last;
    for (const auto& p : probe.packets) {
        if (p.dts == AV_NOPTS_VALUE) continue;
        auto it = last.find(p.stream);
        if (it != last.end()) {
            INFO("stream " << p.stream << " dts " << it->second << " -> " << p.dts);
            CHECK(p.dts > it->second);
            CHECK(static_cast<double>(p.dts - it->second) / 90000.0 <= max_gap);
        }
        last[p.stream] = p.dts;
    }
}

std::string name_of(const m3u8::Segment& s) { return s.uri.substr(s.uri.rfind('/') + 1); }

}  // namespace

TEST_CASE("HLS source: keyframe-aligned segments of the configured duration, valid playlists") {
    LiveOrigin origin(live_media(), {.speed = 2.0});
    origin.start();
    Engine engine(quick_settings(2.0, 5));
    const auto c = engine.add_channel(channel("Live One", {origin.url()}));
    engine.start(c.id);
    REQUIRE(wait_until([&] { return engine.status(c.id).segments_published >= 4; }, std::chrono::seconds(20)));

    const auto st = engine.status(c.id);
    CHECK(st.state == ChannelState::Running);
    CHECK(st.stream.video_codec == "h264");
    CHECK(st.stream.width == 320);
    CHECK(st.stream.height == 240);
    CHECK(st.stream.codecs.find("avc1.") == 0);
    CHECK(st.stream.codecs.find("mp4a.40.2") != std::string::npos);
    CHECK(st.master_playlist_exists);
    CHECK(st.target_duration == 2);

    const std::string text = read_text(engine, c.id, "index.m3u8");
    CHECK(text.find("#EXT-X-ENDLIST") == std::string::npos);
    CHECK(text.find("#EXT-X-TARGETDURATION:2\n") != std::string::npos);
    CHECK(text.find("#EXT-X-PROGRAM-DATE-TIME:") != std::string::npos);
    const auto playlist = media_playlist(engine, c.id);
    REQUIRE(playlist.segments.size() >= 3);
    for (const auto& seg : playlist.segments) {
        INFO(seg.uri << " duration " << seg.duration);
        CHECK(std::lround(seg.duration) <= 2);
        CHECK(std::fabs(seg.duration - 2.0) <= 1.0 + 1e-6);  // within one GOP
        auto bytes = engine.read(c.id, name_of(seg));
        REQUIRE(bytes);
        CHECK(bytes->content_type == "video/mp2t");
        const TsProbe probe = probe_ts(std::string(bytes->bytes()));
        REQUIRE(probe.ok);
        CHECK(probe.starts_with_pat);
        CHECK(probe.video_streams == 1);
        CHECK(probe.audio_streams == 1);
        CHECK(probe.first_video_key());
    }
    // The source's GOP is 1 s and the segment duration 2 s: every full segment is exactly 2 GOPs.
    CHECK(std::fabs(playlist.segments.back().duration - 2.0) < 0.05);

    const std::string master = read_text(engine, c.id, "master.m3u8");
    const auto mp = m3u8::parse(master, "http://127.0.0.1/hls_streams/x/master.m3u8");
    REQUIRE(mp.is_master());
    REQUIRE(mp.master().variants.size() == 1);
    const auto& v = mp.master().variants[0];
    CHECK(v.bandwidth > 100000);
    CHECK(v.width == 320);
    CHECK(v.height == 240);
    CHECK(std::fabs(v.frame_rate - 25.0) < 0.01);
    CHECK(v.codecs == st.stream.codecs);
    CHECK(v.uri.ends_with("/index.m3u8"));

    // Listed segments played back to back: continuous timestamps in every stream.
    check_continuous(probe_ts(listed_bytes(engine, c.id, playlist)), 0.5);
}

TEST_CASE("the window rotates and a removed segment stays fetchable for its grace only") {
    LiveOrigin origin(live_media(), {.speed = 1.0});
    origin.start();
    Engine engine(quick_settings(1.0, 2));
    const auto c = engine.add_channel(channel("Rotating", {origin.url()}));
    engine.start(c.id);
    REQUIRE(wait_until([&] { return engine.status(c.id).segments_published >= 3; }, std::chrono::seconds(20)));
    const auto before = media_playlist(engine, c.id);
    REQUIRE(before.segments.size() == 2);
    const auto oldest = before.segments.front();
    const double grace = oldest.duration + before.total_duration();  // RFC 8216 6.2.2
    REQUIRE(wait_until([&] { return media_playlist(engine, c.id).media_sequence > oldest.sequence; },
                       std::chrono::seconds(10)));
    const auto removed_at = std::chrono::steady_clock::now();
    CHECK(engine.read(c.id, name_of(oldest)));  // left the playlist, still served
    CHECK(media_playlist(engine, c.id).segments.size() == 2);
    std::this_thread::sleep_for(std::chrono::duration<double>(grace * 0.6));
    CHECK(engine.read(c.id, name_of(oldest)));
    std::this_thread::sleep_until(removed_at + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                                   std::chrono::duration<double>(grace + 1.0)));
    CHECK_FALSE(engine.read(c.id, name_of(oldest)));
    CHECK(engine.status(c.id).segment_count == 2);
}

TEST_CASE("playlists play back through libavformat's own HLS demuxer") {
    LiveOrigin origin(live_media(), {.speed = 2.0});
    origin.start();
    TempDir dir("hlsdemux");
    EngineSettings settings = quick_settings(1.0, 6);
    settings.hls_dir = dir.path.string();
    Engine engine(settings);
    const auto c = engine.add_channel(channel("Demuxed", {origin.url()}));
    engine.start(c.id);
    REQUIRE(wait_until([&] { return engine.status(c.id).segment_count >= 5; }, std::chrono::seconds(20)));

    const std::string master = (dir.path / c.id / "master.m3u8").string();
    AVFormatContext* raw = nullptr;
    REQUIRE(avformat_open_input(&raw, master.c_str(), nullptr, nullptr) == 0);
    av::InputPtr in(raw);
    REQUIRE(avformat_find_stream_info(in.get(), nullptr) >= 0);
    CHECK(std::string(in->iformat->name).find("hls") != std::string::npos);
    int video = 0, audio = 0;
    for (unsigned i = 0; i < in->nb_streams; ++i) {
        video += in->streams[i]->codecpar->codec_type == AVMEDIA_TYPE_VIDEO;
        audio += in->streams[i]->codecpar->codec_type == AVMEDIA_TYPE_AUDIO;
    }
    CHECK(video == 1);
    CHECK(audio == 1);
    av::PacketPtr pkt = av::make_packet();
    std::map<int, int64_t> last;
    int packets = 0, backwards = 0;
    while (packets < 150 && av_read_frame(in.get(), pkt.get()) >= 0) {
        if (pkt->dts != AV_NOPTS_VALUE) {
            auto it = last.find(pkt->stream_index);
            if (it != last.end() && pkt->dts <= it->second) ++backwards;
            last[pkt->stream_index] = pkt->dts;
        }
        ++packets;
        av_packet_unref(pkt.get());
    }
    CHECK(packets == 150);
    CHECK(backwards == 0);
}

TEST_CASE("reconnect after an outage: discontinuity, rising media sequence, status shows it") {
    LiveOrigin origin(live_media(), {.speed = 1.0});
    origin.start();
    Engine engine(quick_settings(1.0, 4));
    const auto c = engine.add_channel(channel("Flaky", {origin.url()}));
    engine.start(c.id);
    REQUIRE(wait_until([&] { return engine.status(c.id).segments_published >= 3; }, std::chrono::seconds(20)));
    const int64_t sequence_before = media_playlist(engine, c.id).segments.back().sequence;

    origin.set_fault(LiveOrigin::Fault::Refuse);
    REQUIRE(wait_until([&] { return engine.status(c.id).state == ChannelState::Reconnecting; }, std::chrono::seconds(10)));
    const auto during = engine.status(c.id);
    CHECK(during.reconnects >= 1);
    CHECK_FALSE(during.last_error.empty());
    CHECK(engine.read(c.id, "index.m3u8"));  // the last window stays served during the outage

    origin.set_fault(LiveOrigin::Fault::None);
    REQUIRE(wait_until([&] { return read_text(engine, c.id, "index.m3u8").find("#EXT-X-DISCONTINUITY\n") != std::string::npos; },
                       std::chrono::seconds(15)));
    CHECK(engine.status(c.id).state == ChannelState::Running);
    auto p = media_playlist(engine, c.id);
    int64_t previous = -1;
    for (const auto& s : p.segments) {
        CHECK(s.sequence > previous);
        previous = s.sequence;
    }
    CHECK(p.segments.back().sequence > sequence_before);
    // Once the tagged segment scrolls out, the playlist counts it in EXT-X-DISCONTINUITY-SEQUENCE.
    REQUIRE(wait_until([&] { return media_playlist(engine, c.id).discontinuity_sequence == 1; }, std::chrono::seconds(15)));
    const std::string text = read_text(engine, c.id, "index.m3u8");
    CHECK(text.find("#EXT-X-DISCONTINUITY-SEQUENCE:1\n") != std::string::npos);
}

TEST_CASE("stop returns promptly while the source hangs") {
    LiveOrigin origin(live_media(), {.speed = 1.0});
    origin.start();
    EngineSettings settings = quick_settings();
    settings.read_timeout = 30;  // the hang outlives the test unless stop interrupts it
    Engine engine(settings);
    const auto c = engine.add_channel(channel("Hanging", {origin.url()}));

    SECTION("while opening") {
        origin.set_fault(LiveOrigin::Fault::Hang);
        engine.start(c.id);
        std::this_thread::sleep_for(std::chrono::milliseconds(700));
    }
    SECTION("in the middle of the stream") {
        engine.start(c.id);
        REQUIRE(wait_until([&] { return engine.status(c.id).segments_published >= 2; }, std::chrono::seconds(20)));
        origin.set_fault(LiveOrigin::Fault::Hang);
        std::this_thread::sleep_for(std::chrono::milliseconds(2500));
    }
    const auto t0 = std::chrono::steady_clock::now();
    engine.stop(c.id);
    const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    INFO("stop took " << took << " s");
    // Interrupted, not waited out: well under the 30 s the hang would hold a read (a generous bound
    // for a loaded machine or a sanitizer build; a stop that waits for the read timeout fails it).
    CHECK(took < settings.read_timeout / 3);
    CHECK(engine.status(c.id).state == ChannelState::Stopped);
    CHECK_FALSE(engine.read(c.id, "index.m3u8"));
    origin.set_fault(LiveOrigin::Fault::None);
}

TEST_CASE("a silent source is detected as stalled") {
    LiveOrigin origin(live_media(), {.speed = 1.0});
    origin.start();
    Engine engine(quick_settings());
    const auto c = engine.add_channel(channel("Stalling", {origin.url()}));
    engine.start(c.id);
    REQUIRE(wait_until([&] { return engine.status(c.id).segments_published >= 2; }, std::chrono::seconds(20)));
    origin.set_fault(LiveOrigin::Fault::Stall);
    REQUIRE(wait_until([&] { return engine.status(c.id).last_error.find("stalled") != std::string::npos; },
                       std::chrono::seconds(10)));
    CHECK(engine.status(c.id).reconnects >= 1);
    origin.set_fault(LiveOrigin::Fault::None);
    const int64_t published = engine.status(c.id).segments_published;
    REQUIRE(wait_until([&] { return engine.status(c.id).segments_published > published + 1; }, std::chrono::seconds(15)));
    CHECK(engine.status(c.id).state == ChannelState::Running);
}

TEST_CASE("source requests carry the channel's HTTP headers, master playlists pick a variant") {
    LiveOrigin origin(live_media(), {.speed = 2.0});
    origin.start();
    Engine engine(quick_settings());
    auto config = channel("Variant", {origin.master_url()});
    config.headers = {{"User-Agent", "hlsrelay-test/1.0"}, {"Referer", "http://example.test/"}, {"X-Token", "abc"}};
    // One variant kept (renditions "all" would restream both: test_engine_renditions.cpp).
    SECTION("highest bandwidth") { config.hls.renditions = "highest"; }
    SECTION("lowest on request") { config.hls.renditions = "lowest"; }
    const auto c = engine.add_channel(config);
    engine.start(c.id);
    REQUIRE(wait_until([&] { return engine.status(c.id).segments_published >= 1; }, std::chrono::seconds(20)));
    const auto headers = origin.last_headers();
    CHECK(headers.at("user-agent") == "hlsrelay-test/1.0");
    CHECK(headers.at("referer") == "http://example.test/");
    CHECK(headers.at("x-token") == "abc");
    const auto requests = origin.requests();
    const bool low = std::count(requests.begin(), requests.end(), "GET /live/low.m3u8") > 0;
    const bool high = std::count(requests.begin(), requests.end(), "GET /live/index.m3u8") > 0;
    if (config.hls.renditions == "lowest") {
        CHECK(low);
        CHECK_FALSE(high);
    } else {
        CHECK(high);
        CHECK_FALSE(low);
    }
}

TEST_CASE("a looping local file is a live source at its native rate, continuous across the loop") {
    MediaSpec spec;
    spec.seconds = 3;
    spec.name = "short-3s";
    const MediaSet& media = make_media(spec);
    Engine engine(quick_settings(1.0, 8));
    auto config = channel("Loop", {media.single_file});
    config.loop = true;
    const auto c = engine.add_channel(config);
    const auto t0 = std::chrono::steady_clock::now();
    engine.start(c.id);
    REQUIRE(wait_until([&] { return engine.status(c.id).segments_published >= 6; }, std::chrono::seconds(20)));
    const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    CHECK(took > 4.0);  // 6 one-second segments need about 6 s of real time at native rate
    const auto p = media_playlist(engine, c.id);
    const std::string text = read_text(engine, c.id, "index.m3u8");
    CHECK(text.find("#EXT-X-DISCONTINUITY") == std::string::npos);
    check_continuous(probe_ts(listed_bytes(engine, c.id, p)), 0.5);
    CHECK(engine.status(c.id).reconnects == 0);
}

TEST_CASE("timestamps stay monotonic across the 33-bit wrap and source clock jumps") {
    const std::string root = media_root();
    const std::string wrap = root + "/wrap.ts", jump = root + "/jump.ts";
    const std::vector<std::string> lavfi{"-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25", "-f", "lavfi", "-i",
                                         "sine=frequency=440:sample_rate=48000", "-c:v", "libx264", "-preset",
                                         "ultrafast", "-g", "25", "-pix_fmt", "yuv420p", "-c:a", "aac"};
    if (!std::filesystem::exists(wrap)) {
        auto args = lavfi;
        // 2^33 / 90000 = 95443.7 s: the timestamps wrap about 2 s into the file.
        args.insert(args.end(), {"-t", "6", "-output_ts_offset", "95441.5", "-f", "mpegts", wrap + ".part"});
        run_ffmpeg(args);
        std::filesystem::rename(wrap + ".part", wrap);
    }
    if (!std::filesystem::exists(jump)) {
        std::string joined;
        for (const char* offset : {"100", "5000", "0"}) {  // forward 4900 s, then back to zero
            auto args = lavfi;
            const std::string part = root + "/jump-" + offset + ".ts";
            args.insert(args.end(), {"-t", "3", "-output_ts_offset", offset, "-f", "mpegts", part});
            run_ffmpeg(args);
            std::ifstream in(part, std::ios::binary);
            joined += std::string(std::istreambuf_iterator<char>(in), {});
        }
        std::ofstream(jump + ".part", std::ios::binary) << joined;
        std::filesystem::rename(jump + ".part", jump);
    }
    for (const std::string& file : {wrap, jump}) {
        INFO(file);
        Engine engine(quick_settings(1.0, 30));
        auto config = channel("Clock", {file});
        config.realtime = false;  // as fast as it reads: the test needs the timestamps, not the pace
        const auto c = engine.add_channel(config);
        engine.start(c.id);
        REQUIRE(wait_until([&] { return engine.status(c.id).reconnects >= 1; }, std::chrono::seconds(20)));
        engine.stop(c.id);
        engine.start(c.id);  // nothing left over from the first run
        REQUIRE(wait_until([&] { return engine.status(c.id).segments_published >= 4; }, std::chrono::seconds(20)));
        const auto p = media_playlist(engine, c.id);
        // Up to the first discontinuity (the file's end), one continuous timeline.
        std::string bytes;
        for (const auto& s : p.segments) {
            if (s.discontinuity) break;
            CHECK(s.duration > 0.2);
            CHECK(s.duration < 2.0);
            bytes += std::string(engine.read(c.id, name_of(s))->bytes());
        }
        check_continuous(probe_ts(bytes), 0.5);
    }
}

TEST_CASE("one broken channel does not disturb the others, failover to the next URL") {
    LiveOrigin origin(live_media(), {.speed = 2.0});
    origin.start();
    Engine engine(quick_settings());
    const auto good = engine.add_channel(channel("Good", {origin.url()}));
    const auto dead = engine.add_channel(channel("Dead", {"http://127.0.0.1:9/none.m3u8"}));
    const auto failover = engine.add_channel(channel("Failover", {"http://127.0.0.1:9/none.m3u8", origin.url()}));
    const auto garbage = engine.add_channel(channel("Garbage", {"/nonexistent/file.ts"}));
    for (const auto& c : {good, dead, failover, garbage}) engine.start(c.id);
    REQUIRE(wait_until([&] { return engine.status(good.id).segments_published >= 4; }, std::chrono::seconds(20)));
    REQUIRE(wait_until([&] { return engine.status(failover.id).segments_published >= 1; }, std::chrono::seconds(20)));
    CHECK(engine.status(failover.id).source_index == 1);
    const auto d = engine.status(dead.id);
    CHECK(d.state == ChannelState::Reconnecting);
    CHECK(d.reconnects >= 1);
    CHECK(d.last_error.find("127.0.0.1:9") != std::string::npos);
    CHECK(engine.status(garbage.id).segments_published == 0);
    CHECK(engine.status(good.id).state == ChannelState::Running);
    const auto all = engine.statuses();
    CHECK(all.size() == 4);
}

TEST_CASE("a malformed playlist is a status with a reason") {
    LiveOrigin origin(live_media(), {.speed = 2.0});
    origin.start();
    origin.set_fault(LiveOrigin::Fault::Garbage);
    Engine engine(quick_settings());
    const auto c = engine.add_channel(channel("Malformed", {origin.url()}));
    engine.start(c.id);
    REQUIRE(wait_until([&] { return engine.status(c.id).reconnects >= 1; }, std::chrono::seconds(10)));
    const auto s = engine.status(c.id);
    INFO(s.last_error);
    CHECK(s.last_error.find("malformed playlist") != std::string::npos);
    CHECK(s.state == ChannelState::Reconnecting);
    origin.set_fault(LiveOrigin::Fault::None);
    REQUIRE(wait_until([&] { return engine.status(c.id).segments_published >= 1; }, std::chrono::seconds(15)));
}

TEST_CASE("segments that fail are retried, then skipped with a discontinuity") {
    LiveOrigin origin(live_media(), {.speed = 1.0});
    origin.start();
    Engine engine(quick_settings(1.0, 6));
    const auto c = engine.add_channel(channel("Lossy", {origin.url()}));
    engine.start(c.id);
    REQUIRE(wait_until([&] { return engine.status(c.id).segments_published >= 2; }, std::chrono::seconds(20)));
    origin.set_fault(LiveOrigin::Fault::TruncateSegments);
    REQUIRE(wait_until([&] { return engine.status(c.id).last_error.find("segment") != std::string::npos; },
                       std::chrono::seconds(10)));
    origin.set_fault(LiveOrigin::Fault::None);
    REQUIRE(wait_until([&] { return read_text(engine, c.id, "index.m3u8").find("#EXT-X-DISCONTINUITY\n") != std::string::npos; },
                       std::chrono::seconds(15)));
    const auto p = media_playlist(engine, c.id);
    for (const auto& s : p.segments) CHECK(probe_ts(std::string(engine.read(c.id, name_of(s))->bytes())).ok);
}

TEST_CASE("events report state changes and published segments, unsubscribe ends them") {
    LiveOrigin origin(live_media(), {.speed = 2.0});
    origin.start();
    Engine engine(quick_settings());
    std::mutex mu;
    std::vector<Event> events;
    const auto id = engine.subscribe([&](const Event& e) {
        std::lock_guard lock(mu);
        events.push_back(e);
    });
    const auto c = engine.add_channel(channel("Evented", {origin.url()}));
    engine.start(c.id);
    REQUIRE(wait_until([&] {
        std::lock_guard lock(mu);
        return std::count_if(events.begin(), events.end(), [](const Event& e) { return e.type == EventType::SegmentPublished; }) >= 2;
    }, std::chrono::seconds(20)));
    engine.unsubscribe(id);
    size_t seen;
    {
        std::lock_guard lock(mu);
        seen = events.size();
        REQUIRE(events.size() >= 3);
        CHECK(events[0].type == EventType::StateChanged);
        CHECK(events[0].state == ChannelState::Starting);
        CHECK(events[0].channel == c.id);
        auto running = std::find_if(events.begin(), events.end(), [](const Event& e) {
            return e.type == EventType::StateChanged && e.state == ChannelState::Running;
        });
        CHECK(running != events.end());
        auto seg = std::find_if(events.begin(), events.end(), [](const Event& e) { return e.type == EventType::SegmentPublished; });
        REQUIRE(seg != events.end());
        CHECK(seg->duration > 0.5);
        CHECK(engine.read(c.id, Segment::segment_name(seg->sequence)));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    std::lock_guard lock(mu);
    CHECK(events.size() == seen);
}

TEST_CASE("the disk mirror: complete files before playlists name them, cleaned on stop, failures reported") {
    LiveOrigin origin(live_media(), {.speed = 2.0});
    origin.start();
    TempDir dir("mirror");
    SECTION("a working disk") {
        EngineSettings settings = quick_settings(1.0, 3);
        settings.hls_dir = dir.path.string();
        Engine engine(settings);
        const auto c = engine.add_channel(channel("Mirrored", {origin.url()}));
        engine.start(c.id);
        const auto channel_dir = dir.path / c.id;
        // Until 40 listed files were checked (bounded: a loaded machine may take a while to start).
        int checks = 0;
        const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        while (checks < 40 && std::chrono::steady_clock::now() < until) {
            std::ifstream in(channel_dir / "index.m3u8");
            const std::string text((std::istreambuf_iterator<char>(in)), {});
            for (const auto& uri : playlist_uris(text)) {
                std::error_code ec;
                const auto size = std::filesystem::file_size(channel_dir / uri, ec);
                // Grace: a file may go only after it left the playlist by its grace period.
                CHECK_FALSE(ec);
                CHECK(size > 0);
                CHECK(size % 188 == 0);
                ++checks;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(30));
        }
        CHECK(checks >= 40);
        // Files leave the disk after the same grace as in memory: whatever is on disk can be read
        // from memory too, and a segment gone from memory is gone from disk.
        std::ifstream in(channel_dir / "index.m3u8");
        const std::string first = playlist_uris(std::string((std::istreambuf_iterator<char>(in)), {})).front();
        REQUIRE(wait_until([&] { return !engine.read(c.id, first); }, std::chrono::seconds(15)));
        CHECK(wait_until([&] { return !std::filesystem::exists(channel_dir / first); }, std::chrono::seconds(15)));
        // One file may be between its expiry and the sweep that removes it, at any moment.
        CHECK(wait_until([&] {
            int unreadable = 0;
            for (const auto& e : std::filesystem::directory_iterator(channel_dir)) {
                const std::string name = e.path().filename().string();
                if (Segment::parse_name(name) && !engine.read(c.id, name)) ++unreadable;
            }
            return unreadable <= 1;
        }, std::chrono::seconds(15)));
        CHECK(std::filesystem::exists(channel_dir / "master.m3u8"));
        CHECK(engine.status(c.id).disk_error.empty());
        engine.stop(c.id);
        CHECK_FALSE(std::filesystem::exists(channel_dir));
    }
    SECTION("a disk that fails: reported in the status, memory serving goes on") {
        std::ofstream(dir.path / "blocker") << "a file where the directory should be";
        EngineSettings settings = quick_settings();
        settings.hls_dir = (dir.path / "blocker").string();
        Engine engine(settings);
        const auto c = engine.add_channel(channel("Broken Disk", {origin.url()}));
        engine.start(c.id);
        REQUIRE(wait_until([&] { return engine.status(c.id).segments_published >= 2; }, std::chrono::seconds(20)));
        const auto s = engine.status(c.id);
        CHECK_FALSE(s.disk_error.empty());
        CHECK(s.state == ChannelState::Running);
        CHECK(engine.read(c.id, "index.m3u8"));
    }
}

TEST_CASE("the engine's registry and control: names, errors, restarts keep sequences rising") {
    LiveOrigin origin(live_media(), {.speed = 2.0});
    origin.start();
    Engine engine(quick_settings());
    const auto report = engine.load("#EXTM3U\n#EXTINF:-1 tvg-logo=\"l.png\" group-title=\"News\",&pictures\n" + origin.url() +
                                    "\n#EXTINF:-1,Broken line without url\n#EXTINF:-1,7x Music\n" + origin.url() + "\n");
    REQUIRE(report.channels.size() == 2);
    CHECK(report.channels[0].id == "and_pictures");
    CHECK(report.channels[1].id == "7x_music");
    CHECK_FALSE(report.issues.empty());
    CHECK_THROWS_AS(engine.start("nope"), Error);
    try {
        engine.status("nope");
        FAIL("status of an unknown channel must throw");
    } catch (const Error& e) {
        CHECK(e.code() == ErrorCode::NotFound);
    }
    engine.start("&pictures");  // by display name
    CHECK(engine.running("and_pictures"));
    engine.start("and_pictures");  // starting a running channel keeps it running
    REQUIRE(wait_until([&] { return engine.status("and_pictures").segments_published >= 2; }, std::chrono::seconds(20)));
    const int64_t last = media_playlist(engine, "and_pictures").segments.back().sequence;
    engine.stop("and_pictures");
    CHECK_FALSE(engine.running("and_pictures"));
    CHECK(process_status(engine.status("and_pictures").state) == "stopped");
    engine.start("and_pictures");
    REQUIRE(wait_until([&] { return engine.status("and_pictures").segments_published >= 1; }, std::chrono::seconds(20)));
    CHECK(media_playlist(engine, "and_pictures").segments.front().sequence > last);
    engine.update_channel("and_pictures", [&] {
        auto changed = *engine.find_channel("and_pictures");
        changed.hls.max_segments = 3;
        return changed;
    }());
    CHECK(engine.running("and_pictures"));
    CHECK(engine.status("and_pictures").max_segments == 3);
    engine.remove_channel("and_pictures");
    CHECK_FALSE(engine.find_channel("and_pictures"));
    CHECK(engine.channels().size() == 1);
}

}  // namespace hlsrelay::test

namespace hlsrelay::test {

TEST_CASE("AES-128 encrypted HLS is decrypted (AES-128-CBC in the engine, key over the same client)") {
    const std::filesystem::path dir = std::filesystem::path(media_root()) / "aes128";
    if (!std::filesystem::exists(dir / "index.m3u8")) {
        std::filesystem::create_directories(dir);
        std::ofstream(dir / "key.bin", std::ios::binary) << std::string("0123456789abcdef");
        // Key URI as the playlist names it, then where ffmpeg reads it; no IV: the sequence number is.
        std::ofstream(dir / "key.info") << "key.bin\n" << (dir / "key.bin").string() << "\n";
        run_ffmpeg({"-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25", "-f", "lavfi", "-i",
                    "sine=frequency=440:sample_rate=48000", "-t", "4", "-c:v", "libx264", "-preset", "ultrafast",
                    "-g", "25", "-pix_fmt", "yuv420p", "-c:a", "aac", "-f", "hls", "-hls_time", "1",
                    "-hls_list_size", "0", "-hls_key_info_file", (dir / "key.info").string(),
                    "-hls_segment_filename", (dir / "s%d.ts").string(), (dir / "index.m3u8.part").string()});
        std::filesystem::rename(dir / "index.m3u8.part", dir / "index.m3u8");
    }
    std::ifstream in(dir / "index.m3u8");
    const std::string source((std::istreambuf_iterator<char>(in)), {});
    REQUIRE(source.find("#EXT-X-KEY:METHOD=AES-128") != std::string::npos);

    Engine engine(quick_settings(1.0, 5));
    const auto c = engine.add_channel(channel("Encrypted", {(dir / "index.m3u8").string()}));
    engine.start(c.id);
    const bool published = wait_until([&] { return engine.status(c.id).segments_published >= 2; }, std::chrono::seconds(20));
    INFO("last error: " << engine.status(c.id).last_error);
    REQUIRE(published);
    const auto p = media_playlist(engine, c.id);
    for (const auto& s : p.segments) {
        const TsProbe probe = probe_ts(std::string(engine.read(c.id, name_of(s))->bytes()));
        CHECK(probe.ok);
        CHECK(probe.video_streams == 1);
        CHECK(probe.first_video_key());
        CHECK(probe.packets.size() > 20);
    }
    CHECK(engine.status(c.id).last_error.empty());
}

}  // namespace hlsrelay::test

namespace hlsrelay::test {

TEST_CASE("a non-TS container: H.264 and AAC remuxed into MPEG-TS, unsupported subtitles dropped with a note") {
    const std::filesystem::path dir = std::filesystem::path(media_root()) / "mkv";
    const auto file = dir / "with-subs.mkv";
    if (!std::filesystem::exists(file)) {
        std::filesystem::create_directories(dir);
        std::ofstream(dir / "subs.srt") << "1\n00:00:00,000 --> 00:00:02,000\nhello\n\n2\n00:00:02,000 --> 00:00:04,000\nworld\n";
        run_ffmpeg({"-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25", "-f", "lavfi", "-i",
                    "sine=frequency=440:sample_rate=48000", "-i", (dir / "subs.srt").string(), "-t", "4", "-map", "0:v",
                    "-map", "1:a", "-map", "2:s", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt",
                    "yuv420p", "-c:a", "aac", "-c:s", "srt", (dir / "part.mkv").string()});
        std::filesystem::rename(dir / "part.mkv", file);
    }
    Engine engine(quick_settings(1.0, 5));
    auto config = channel("Matroska", {file.string()});
    config.loop = true;
    const auto c = engine.add_channel(config);
    engine.start(c.id);
    REQUIRE(wait_until([&] { return engine.status(c.id).segments_published >= 2; }, std::chrono::seconds(20)));
    const auto s = engine.status(c.id);
    REQUIRE(s.notes.size() == 1);
    CHECK(s.notes[0].find("subtitle subrip") != std::string::npos);
    CHECK(s.notes[0].find("MPEG-TS cannot carry it") != std::string::npos);
    CHECK(s.stream.codecs.find("avc1.") == 0);
    CHECK(s.stream.audio_codecs == std::vector<std::string>{"aac"});
    const auto p = media_playlist(engine, c.id);
    for (const auto& seg : p.segments) {
        const TsProbe probe = probe_ts(std::string(engine.read(c.id, name_of(seg))->bytes()));
        REQUIRE(probe.ok);
        CHECK(probe.starts_with_pat);
        CHECK(probe.video_streams == 1);
        CHECK(probe.audio_streams == 1);
        CHECK(probe.first_video_key());
    }
}

}  // namespace hlsrelay::test

namespace hlsrelay::test {

TEST_CASE("a callback may start another channel and read status without deadlocking") {
    LiveOrigin origin(live_media(), {.speed = 2.0});
    origin.start();
    Engine engine(quick_settings());
    const auto first = engine.add_channel(channel("First", {origin.url()}));
    const auto second = engine.add_channel(channel("Second", {origin.url()}));
    std::atomic<int> nested{0};
    engine.subscribe([&](const Event& e) {
        if (e.channel == first.id && e.type == EventType::SegmentPublished && nested.load() == 0) {
            nested = 1;
            engine.start(second.id);  // emits "starting" on this very thread
            (void)engine.status(second.id);
            nested = 2;
        }
    });
    engine.start(first.id);
    REQUIRE(wait_until([&] { return nested.load() == 2; }, std::chrono::seconds(20)));
    REQUIRE(wait_until([&] { return engine.status(second.id).segments_published >= 1; }, std::chrono::seconds(20)));
}

}  // namespace hlsrelay::test
