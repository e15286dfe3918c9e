// The HLS ingest's promises to viewers: a segment the source served once is never published twice
// (a frozen origin that comes back after a reconnect with its last segments, an origin that
// restarts its numbering and serves them again), and a multivariant source whose audio is a
// separate rendition (EXT-X-MEDIA TYPE=AUDIO with a URI) keeps that audio: restreamed as a rendition
// of its own beside the video, which goes on when the audio alone stalls.
#include "engine_fixture.hpp"
#include "support/scripted_origin.hpp"
#include "ts_probe.hpp"

#include "common/av_util.hpp"

#include "ingest/m3u8.hpp"

#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <sstream>

namespace hlsrelay::test {
namespace {

using Fault = LiveOrigin::Fault;

// Reads every segment the channel lists while it runs, as a player following the playlist would.
class Collector {
public:
    Collector(const Engine& engine, std::string id) : engine_(engine), id_(std::move(id)) {
        thread_ = std::thread([this] { run(); });
    }
    ~Collector() { stop(); }
    void stop() {
        stop_ = true;
        if (thread_.joinable()) thread_.join();
    }
    std::size_t count() const {
        std::lock_guard lock(mu_);
        return segments_.size();
    }
    std::vector<std::pair<std::string, std::string>> segments() const {
        std::lock_guard lock(mu_);
        return segments_;
    }

private:
    void run() {
        while (!stop_) {
            if (auto playlist = engine_.read(id_, "index.m3u8")) {
                for (const auto& uri : playlist_uris(std::string(playlist->bytes()))) {
                    if (seen_.count(uri)) continue;
                    auto seg = engine_.read(id_, uri);
                    if (!seg) continue;
                    seen_.insert(uri);
                    std::lock_guard lock(mu_);
                    segments_.emplace_back(uri, std::string(seg->bytes()));
                }
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the polling rate of a player, not a wait
        }
    }
    const Engine& engine_;
    const std::string id_;
    std::atomic<bool> stop_{false};
    std::set<std::string> seen_;
    mutable std::mutex mu_;
    std::vector<std::pair<std::string, std::string>> segments_;
    std::thread thread_;
};

// The payload of every video packet in an MPEG-TS segment: what a viewer sees, whatever timestamps
// the segmenter gave it.
std::vector<std::string> video_payloads(const std::string& ts) {
    std::vector<std::string> out;
    av::MemoryReader reader(ts);
    AVFormatContext* raw = avformat_alloc_context();
    raw->pb = reader.io();
    raw->flags |= AVFMT_FLAG_CUSTOM_IO;
    if (avformat_open_input(&raw, "", av_find_input_format("mpegts"), nullptr) < 0) return out;
    av::InputPtr in(raw);
    av::PacketPtr pkt = av::make_packet();
    while (av_read_frame(in.get(), pkt.get()) >= 0) {
        if (in->streams[pkt->stream_index]->codecpar->codec_type == AVMEDIA_TYPE_VIDEO && pkt->size > 0)
            out.emplace_back(reinterpret_cast<const char*>(pkt->data), static_cast<std::size_t>(pkt->size));
        av_packet_unref(pkt.get());
    }
    return out;
}

// Video frames that appear in more than one published segment (each named once per replay).
std::vector<std::string> replayed_frames(const std::vector<std::pair<std::string, std::string>>& segments) {
    std::map<std::string, std::string> first_seen;  // frame payload -> segment name
    std::set<std::string> replays;
    for (const auto& [name, bytes] : segments) {
        for (auto& frame : video_payloads(bytes)) {
            auto [it, fresh] = first_seen.emplace(std::move(frame), name);
            if (!fresh && it->second != name) replays.insert(name + " repeats frames of " + it->second);
        }
    }
    return {replays.begin(), replays.end()};
}

std::string status_line(const ChannelStatus& s) {
    return std::string(to_string(s.state)) + ", " + std::to_string(s.segments_published) + " published, last error \"" +
           s.last_error + "\"";
}

}  // namespace

TEST_CASE("ingest: a frozen origin's last segments are not published again after the stall reconnect", "[ingest]") {
    LiveOrigin origin(live_media(), {.speed = 1.0});
    origin.start();
    EngineSettings settings = quick_settings(1.0, 5);
    settings.stall_timeout = 2.0;
    Engine engine(settings);
    const auto id = engine.add_channel(channel("Frozen", {origin.url()})).id;
    engine.start(id);
    Collector collector(engine, id);
    REQUIRE(wait_until([&] { return collector.count() >= 4; }, std::chrono::seconds(30)));

    origin.set_fault(Fault::Stall);
    const auto frozen_at = std::chrono::steady_clock::now();
    const std::size_t requests_before = origin.playlist_requests();
    // The stall is detected, the engine reconnects, finds the playlist still frozen (the moment the
    // old code republished its last segments) and detects the stall again.
    std::string first_stall_at;
    REQUIRE(wait_until([&] {
        const auto st = engine.status(id);
        if (st.last_error.find("stalled") == std::string::npos) return false;
        if (first_stall_at.empty()) first_stall_at = st.last_error_at;
        return st.last_error_at != first_stall_at;
    }, std::chrono::seconds(40)));
    const double held = std::chrono::duration<double>(std::chrono::steady_clock::now() - frozen_at).count();
    const std::size_t requests = origin.playlist_requests() - requests_before;
    INFO("frozen for " << held << " s: " << requests << " playlist requests");
    // No spinning on the frozen playlist: a reload per half target duration and one per reconnect,
    // far below what a client that hammered the origin would send.
    CHECK(requests <= static_cast<std::size_t>(10 * held) + 10);

    origin.set_fault(Fault::None);
    const std::size_t at_clear = collector.count();
    REQUIRE(wait_until([&] { return collector.count() >= at_clear + 4; }, std::chrono::seconds(40)));
    collector.stop();
    INFO("status: " << status_line(engine.status(id)));
    const auto replays = replayed_frames(collector.segments());
    for (const auto& r : replays) UNSCOPED_INFO(r);
    CHECK(replays.empty());
    CHECK(collector.count() >= 8);
}

TEST_CASE("ingest: an origin that restarts its numbering at 0 and serves its last segments again", "[ingest]") {
    const MediaSet& media = live_media();
    ScriptedOrigin origin(std::chrono::milliseconds(1000));
    origin.add_track({"index", media.segment_files, media.durations});
    origin.start(3);
    Engine engine(quick_settings(1.0, 5));
    const auto id = engine.add_channel(channel("Restarted", {origin.url("index.m3u8")})).id;
    engine.start(id);
    Collector collector(engine, id);
    // Far enough on that a restart at 0 is a step back the client recognises.
    REQUIRE(wait_until([&] { return collector.count() >= 4 && origin.listed() >= 8; }, std::chrono::seconds(30)));
    origin.restart(0, 3);  // sequence 0, 1, 2: the three segments listed last, byte for byte
    const std::size_t at_restart = collector.count();
    REQUIRE(wait_until([&] { return collector.count() >= at_restart + 4; }, std::chrono::seconds(40)));
    collector.stop();
    INFO("status: " << status_line(engine.status(id)));
    const auto replays = replayed_frames(collector.segments());
    for (const auto& r : replays) UNSCOPED_INFO(r);
    CHECK(replays.empty());
}

// A finished playlist (EXT-X-ENDLIST): played once, then the channel reports its end; with `loop` it
// plays again from the start, on purpose.
TEST_CASE("ingest: a finished playlist is not replayed after its end unless the channel loops", "[ingest]") {
    const MediaSet& media = live_media();
    ScriptedOrigin origin(std::chrono::milliseconds(1000));
    std::string vod = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXT-X-PLAYLIST-TYPE:VOD\n";
    for (std::size_t i = 0; i < 4; ++i) {
        std::ifstream in(media.segment_files[i], std::ios::binary);
        origin.set_file("vod_" + std::to_string(i) + ".ts", std::string(std::istreambuf_iterator<char>(in), {}));
        vod += "#EXTINF:" + std::to_string(media.durations[i]) + ",\nvod_" + std::to_string(i) + ".ts\n";
    }
    origin.set_file("vod.m3u8", vod + "#EXT-X-ENDLIST\n");
    origin.add_track({"unused", {media.segment_files[0]}, {media.durations[0]}});
    origin.start(1);
    Engine engine(quick_settings(1.0, 5));
    for (const bool loop : {false, true}) {
        DYNAMIC_SECTION((loop ? "loop" : "no loop")) {
            ChannelConfig config = channel(loop ? "VOD loop" : "VOD once", {origin.url("vod.m3u8")});
            config.loop = loop;
            const auto id = engine.add_channel(config).id;
            engine.start(id);
            Collector collector(engine, id);
            // The end was reached twice: once after playing, once more after the reconnect.
            std::string first_end_at;
            REQUIRE(wait_until([&] {
                const auto st = engine.status(id);
                if (st.last_error.find("ENDLIST") == std::string::npos) return false;
                if (first_end_at.empty()) first_end_at = st.last_error_at;
                return st.last_error_at != first_end_at && collector.count() >= 2;
            }, std::chrono::seconds(40)));
            collector.stop();
            const auto replays = replayed_frames(collector.segments());
            INFO("status: " << status_line(engine.status(id)) << "; " << replays.size() << " replays");
            if (loop) CHECK_FALSE(replays.empty());
            else CHECK(replays.empty());
            engine.stop(id);
        }
    }
}

namespace {

struct Rendered {
    std::vector<std::string> files;
    std::vector<double> durations;
};

// The segments of an ffmpeg-written media playlist.
Rendered read_playlist(const std::string& dir, const std::string& name) {
    std::ifstream in(dir + "/" + name);
    Rendered r;
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("#EXTINF:", 0) == 0) r.durations.push_back(std::stod(line.substr(8)));
        else if (!line.empty() && line[0] != '#') r.files.push_back(dir + "/" + line);
    }
    return r;
}

// 40 s of 1 s segments as ffmpeg's hls muxer writes a multivariant stream with a separate audio
// group: a video-only playlist and two audio-only renditions (English, French).
std::string audio_group_media() {
    return generated_dir("audio-group-40s", [](const std::string& dir) {
        run_ffmpeg({"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-f", "lavfi", "-i",
                    "sine=frequency=440:sample_rate=48000", "-f", "lavfi", "-i", "sine=frequency=660:sample_rate=48000",
                    "-t", "40", "-map", "0:v", "-map", "1:a", "-map", "2:a", "-c:v", "libx264", "-preset", "ultrafast",
                    "-g", "25", "-keyint_min", "25", "-sc_threshold", "0", "-c:a", "aac", "-b:a", "64k", "-f", "hls",
                    "-hls_time", "1", "-hls_playlist_type", "vod", "-hls_segment_filename", dir + "/%v_%03d.ts",
                    "-master_pl_name", "ffmpeg-master.m3u8", "-var_stream_map",
                    "v:0,agroup:aud,name:video a:0,agroup:aud,default:yes,language:eng,name:aen "
                    "a:1,agroup:aud,language:fre,name:afr",
                    dir + "/%v.m3u8"});
    });
}

// A live origin of that media: master.m3u8 names video.m3u8 with the audio group "aud" of two
// renditions, English (aen.m3u8) and French (afr.m3u8, DEFAULT=YES).
void serve_audio_group(ScriptedOrigin& origin) {
    const std::string dir = audio_group_media();
    Rendered video = read_playlist(dir, "video.m3u8"), en = read_playlist(dir, "aen.m3u8"),
             fr = read_playlist(dir, "afr.m3u8");
    const std::size_t n = std::min({video.files.size(), en.files.size(), fr.files.size()});
    REQUIRE(n >= 30);
    for (auto* r : {&video, &en, &fr}) {
        r->files.resize(n);
        r->durations.resize(n);
    }
    origin.add_track({"video", video.files, video.durations});
    origin.add_track({"aen", en.files, en.durations});
    origin.add_track({"afr", fr.files, fr.durations});
    origin.set_file("master.m3u8",
                    "#EXTM3U\n#EXT-X-VERSION:3\n"
                    "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"English\",LANGUAGE=\"eng\",DEFAULT=NO,"
                    "AUTOSELECT=YES,URI=\"aen.m3u8\"\n"
                    "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"French\",LANGUAGE=\"fre\",DEFAULT=YES,"
                    "AUTOSELECT=YES,URI=\"afr.m3u8\"\n"
                    "#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=320x240,CODECS=\"avc1.64000d,mp4a.40.2\",AUDIO=\"aud\"\n"
                    "video.m3u8\n");
}

// Whether a segment carries audio packets.
bool has_audio(const std::string& ts) {
    const TsProbe probe = probe_ts(ts);
    return probe.ok && probe.audio_streams > 0 &&
           std::any_of(probe.packets.begin(), probe.packets.end(), [](const TsPacket& p) { return p.type == AVMEDIA_TYPE_AUDIO; });
}


// The playlist's listed segments (name, gap) of one rendition.
std::vector<std::pair<std::string, bool>> listed_of(const Engine& engine, const std::string& id, const std::string& rendition) {
    std::vector<std::pair<std::string, bool>> out;
    const auto r = engine.read(id, rendition + "/index.m3u8");
    if (!r) return out;
    std::istringstream in(std::string(r->bytes()));
    bool gap = false;
    for (std::string line; std::getline(in, line);) {
        if (line == "#EXT-X-GAP") gap = true;
        else if (!line.empty() && line[0] != '#') {
            out.emplace_back(line, gap);
            gap = false;
        }
    }
    return out;
}

// A rendition's newest listed segment that carries audio.
bool newest_has_audio(const Engine& engine, const std::string& id, const std::string& rendition) {
    const auto l = listed_of(engine, id, rendition);
    if (l.empty() || l.back().second) return false;
    const auto bytes = engine.read(id, rendition + "/" + l.back().first);
    return bytes && has_audio(std::string(bytes->bytes()));
}

}  // namespace

// The separate audio renditions are restreamed beside the video (no longer muxed into it): the
// channel is a presentation of v0 (video), a0 (English) and a1 (French, the default).
TEST_CASE("ingest: a multivariant source with a separate audio group keeps its audio renditions", "[ingest]") {
    ScriptedOrigin origin(std::chrono::milliseconds(1000));
    serve_audio_group(origin);
    origin.start(3);
    Engine engine(quick_settings(1.0, 5));
    const auto id = engine.add_channel(channel("Audio group", {origin.url("master.m3u8")})).id;
    engine.start(id);
    REQUIRE(engine.wait_ready(id, 40));
    REQUIRE(wait_until([&] { return newest_has_audio(engine, id, "a0") && newest_has_audio(engine, id, "a1"); },
                       std::chrono::seconds(40)));
    const auto st = engine.status(id);
    INFO("status: " << status_line(st));
    REQUIRE(st.renditions.size() == 3);
    CHECK(st.renditions[1].language == "eng");
    CHECK(st.renditions[2].language == "fre");
    const std::string master = std::string(engine.read(id, "master.m3u8")->bytes());
    INFO(master);
    CHECK(master.find("NAME=\"French\",LANGUAGE=\"fre\",DEFAULT=YES") != std::string::npos);
    CHECK(master.find("URI=\"a1/index.m3u8\"") != std::string::npos);
    CHECK(master.find("AUDIO=\"aud\"") != std::string::npos);
    // The video rendition is video only; each audio rendition tracks its time.
    const auto v = listed_of(engine, id, "v0");
    const auto a = listed_of(engine, id, "a1");
    REQUIRE_FALSE(v.empty());
    REQUIRE_FALSE(a.empty());
    const TsProbe video = probe_ts(std::string(engine.read(id, "v0/" + v.back().first)->bytes()));
    CHECK(video.video_streams == 1);
    CHECK(video.audio_streams == 0);
}

TEST_CASE("ingest: a stalled audio rendition leaves the video playing, and its audio comes back", "[ingest]") {
    ScriptedOrigin origin(std::chrono::milliseconds(1000));
    serve_audio_group(origin);
    origin.start(3);
    EngineSettings settings = quick_settings(1.0, 5);
    settings.stall_timeout = 2.0;
    Engine engine(settings);
    const auto id = engine.add_channel(channel("Audio stall", {origin.url("master.m3u8")})).id;
    engine.start(id);
    REQUIRE(wait_until([&] { return newest_has_audio(engine, id, "a1"); }, std::chrono::seconds(40)));

    origin.freeze_track("afr", true);
    REQUIRE(wait_until([&] {
        const auto st = engine.status(id);
        return st.renditions.size() == 3 && st.renditions[2].last_error.find("stalled") != std::string::npos;
    }, std::chrono::seconds(30)));
    // The video goes on.
    const int64_t at_stall = engine.status(id).segments_published;
    REQUIRE(wait_until([&] { return engine.status(id).segments_published >= at_stall + 3; }, std::chrono::seconds(30)));
    auto st = engine.status(id);
    INFO("status: " << status_line(st));
    CHECK(st.state == ChannelState::Running);
    CHECK(st.reconnects == 0);

    origin.freeze_track("afr", false);
    const std::string before = listed_of(engine, id, "a1").empty() ? "" : listed_of(engine, id, "a1").back().first;
    CHECK(wait_until([&] {
        const auto l = listed_of(engine, id, "a1");
        return !l.empty() && l.back().first != before && newest_has_audio(engine, id, "a1");
    }, std::chrono::seconds(40)));
    CHECK(engine.status(id).reconnects == 0);
}

}  // namespace hlsrelay::test
