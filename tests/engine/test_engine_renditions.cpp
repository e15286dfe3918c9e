// A multivariant source comes out as a presentation: every kept variant, audio and subtitle
// rendition restreamed in its own directory, a master that mirrors the source's, the same media
// sequence number covering the same time in every rendition, a rendition that fails alone
// reconnecting alone, and the selection modes. The ladder is made with ffmpeg (two video variants,
// two audio languages) and served live by a ScriptedOrigin with a master written here.
#include "engine_fixture.hpp"
#include "support/http_serve.hpp"
#include "support/scripted_origin.hpp"
#include "support/text_origin.hpp"
#include "ts_probe.hpp"

#include "cut/fmp4.hpp"
#include "cut/segmenter.hpp"
#include "ingest/m3u8.hpp"

#include <hlsrelay/api.hpp>
#include <hlsrelay/status.hpp>
#include <hlsrelay/stream_id.hpp>
#include <hlsrelay/ts_stream.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include <unistd.h>

namespace hlsrelay::test {
namespace {

struct Track {
    std::vector<std::string> files;
    std::vector<double> durations;
};

Track read_media_playlist(const std::string& dir, const std::string& name) {
    std::ifstream in(dir + "/" + name);
    Track t;
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("#EXTINF:", 0) == 0) t.durations.push_back(std::stod(line.substr(8)));
        else if (!line.empty() && line[0] != '#') t.files.push_back(dir + "/" + line);
    }
    return t;
}

// 30 s of 1 s segments: video 320x180 and 160x90 (the same GOPs, keyframes every second), audio
// English and German, as ffmpeg's hls muxer writes a ladder with a separate audio group; and WebVTT
// subtitle segments written here, one per second.
const std::string& ladder_dir() {
    static const std::string dir = generated_dir("ladder-30s", [](const std::string& d) {
        run_ffmpeg({"-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25", "-f", "lavfi", "-i",
                    "sine=frequency=440:sample_rate=48000", "-f", "lavfi", "-i", "sine=frequency=660:sample_rate=48000",
                    "-t", "30", "-filter_complex", "[0:v]split=2[a][b];[b]scale=160:90[small]", "-map", "[a]", "-map",
                    "[small]", "-map", "1:a", "-map", "2:a", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25",
                    "-keyint_min", "25", "-sc_threshold", "0", "-c:a", "aac", "-b:a", "48k", "-f", "hls", "-hls_time",
                    "1", "-hls_playlist_type", "vod", "-hls_segment_filename", d + "/%v_%03d.ts", "-master_pl_name",
                    "ffmpeg-master.m3u8", "-var_stream_map",
                    "v:0,agroup:aud,name:big v:1,agroup:aud,name:small a:0,agroup:aud,name:en a:1,agroup:aud,name:de",
                    d + "/%v.m3u8"});
        for (int i = 0; i < 30; ++i) {
            char cue[256];
            std::snprintf(cue, sizeof cue,
                          "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:900000,LOCAL:00:00:00.000\n\n00:00:%02d.000 --> 00:00:%02d.900\nline %d\n",
                          i, i, i);
            std::ofstream(d + "/sub_" + std::to_string(i) + ".vtt", std::ios::binary) << cue;
        }
    });
    return dir;
}

// The master of the ladder; `extra` goes in front of the variants (hostile lines in one test).
std::string ladder_master(const std::string& big = "big.m3u8", const std::string& extra = "") {
    return "#EXTM3U\n#EXT-X-VERSION:4\n#EXT-X-INDEPENDENT-SEGMENTS\n"
           "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"English\",LANGUAGE=\"en\",DEFAULT=YES,AUTOSELECT=YES,"
           "CHANNELS=\"1\",URI=\"en.m3u8\"\n"
           "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"Deutsch\",LANGUAGE=\"de\",DEFAULT=NO,AUTOSELECT=YES,"
           "CHANNELS=\"1\",URI=\"de.m3u8\"\n"
           "#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",NAME=\"English CC\",LANGUAGE=\"en\",DEFAULT=NO,AUTOSELECT=YES,"
           "FORCED=NO,URI=\"subs.m3u8\"\n"
           "#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID=\"cc\",NAME=\"CC1\",INSTREAM-ID=\"CC1\",LANGUAGE=\"en\"\n" +
           extra +
           "#EXT-X-STREAM-INF:BANDWIDTH=600000,AVERAGE-BANDWIDTH=500000,CODECS=\"avc1.640015,mp4a.40.2\","
           "RESOLUTION=320x180,FRAME-RATE=25.000,AUDIO=\"aud\",SUBTITLES=\"subs\",CLOSED-CAPTIONS=\"cc\"\n" +
           big +
           "\n"
           "#EXT-X-STREAM-INF:BANDWIDTH=200000,RESOLUTION=160x90,AUDIO=\"aud\",SUBTITLES=\"subs\",CLOSED-CAPTIONS=\"cc\"\n"
           "small.m3u8\n";
}

// The ladder's tracks in step on one origin: big, small, en, de, subs.
void serve_ladder(ScriptedOrigin& origin, const std::string& master) {
    const std::string& dir = ladder_dir();
    std::map<std::string, Track> tracks{{"big", read_media_playlist(dir, "big.m3u8")},
                                        {"small", read_media_playlist(dir, "small.m3u8")},
                                        {"en", read_media_playlist(dir, "en.m3u8")},
                                        {"de", read_media_playlist(dir, "de.m3u8")}};
    std::size_t n = 30;
    for (auto& [name, t] : tracks) n = std::min(n, t.files.size());
    REQUIRE(n >= 25);
    Track subs;
    for (std::size_t i = 0; i < n; ++i) {
        subs.files.push_back(dir + "/sub_" + std::to_string(i) + ".vtt");
        subs.durations.push_back(tracks["big"].durations[i]);
    }
    tracks["subs"] = subs;
    for (auto& [name, t] : tracks) {
        t.files.resize(n);
        t.durations.resize(n);
        origin.add_track({name, t.files, t.durations});
    }
    origin.set_file("master.m3u8", master);
}

std::string text_of(const Engine& engine, const std::string& id, const std::string& file) {
    const auto r = engine.read(id, file);
    return r ? std::string(r->bytes()) : std::string();
}

struct Listed {
    int64_t sequence;
    std::string uri;
    bool gap;
    bool discontinuity;
    std::string date;  // its EXT-X-PROGRAM-DATE-TIME as written, empty if none
    int64_t discontinuity_sequence;  // RFC 8216 4.3.3.3: EXT-X-DISCONTINUITY-SEQUENCE plus the tags before it
};

std::vector<Listed> listed(const std::string& playlist) {
    std::vector<Listed> out;
    int64_t sequence = 0, discontinuity_sequence = 0;
    bool gap = false, discontinuity = false;
    std::string date;
    std::istringstream in(playlist);
    for (std::string line; std::getline(in, line);) {
        if (line.rfind("#EXT-X-MEDIA-SEQUENCE:", 0) == 0) sequence = std::stoll(line.substr(22));
        else if (line.rfind("#EXT-X-DISCONTINUITY-SEQUENCE:", 0) == 0) discontinuity_sequence = std::stoll(line.substr(30));
        else if (line == "#EXT-X-GAP") gap = true;
        else if (line == "#EXT-X-DISCONTINUITY") discontinuity = true, ++discontinuity_sequence;
        else if (line.rfind("#EXT-X-PROGRAM-DATE-TIME:", 0) == 0) date = line.substr(25);
        else if (!line.empty() && line[0] != '#') {
            out.push_back({sequence++, line, gap, discontinuity, date, discontinuity_sequence});
            gap = discontinuity = false;
            date.clear();
        }
    }
    return out;
}

// The first PTS (90 kHz) of the video stream, else of the first audio stream; INT64_MIN if none.
int64_t first_pts(const std::string& ts) {
    const TsProbe probe = probe_ts(ts);
    if (!probe.ok) return INT64_MIN;
    const bool video = probe.video_streams > 0;
    int64_t first = INT64_MAX;
    for (const auto& p : probe.packets)
        if (p.pts != AV_NOPTS_VALUE && (p.type == (video ? AVMEDIA_TYPE_VIDEO : AVMEDIA_TYPE_AUDIO))) first = std::min(first, p.pts);
    return first == INT64_MAX ? INT64_MIN : first;
}

// Where segment `l` of rendition `r` starts, in seconds of its output timeline: the first video
// (else audio) PTS of a TS segment, the reference track's tfdt of an fMP4 one (with the EXT-X-MAP
// named before it); NaN if it cannot be read.
double start_seconds(const Engine& engine, const std::string& id, const std::string& r, const Listed& l) {
    const auto bytes = engine.read(id, r + "/" + l.uri);
    if (!bytes) return std::nan("");
    if (l.uri.size() < 4 || l.uri.compare(l.uri.size() - 4, 4, ".m4s") != 0) {
        const int64_t pts = first_pts(std::string(bytes->bytes()));
        return pts == INT64_MIN ? std::nan("") : static_cast<double>(pts) / 90000.0;
    }
    std::string map;
    std::istringstream in(text_of(engine, id, r + "/index.m3u8"));
    for (std::string line; std::getline(in, line) && line != l.uri;)
        if (line.rfind("#EXT-X-MAP:URI=\"", 0) == 0) map = line.substr(16, line.find('"', 16) - 16);
    const auto init_bytes = engine.read(id, r + "/" + map);
    if (!init_bytes) return std::nan("");
    const auto init = mp4::parse_init(std::string(init_bytes->bytes()));
    if (!init || init->reference < 0) return std::nan("");
    const auto media = mp4::parse_media(std::string(bytes->bytes()), *init);
    const auto& track = init->tracks[static_cast<size_t>(init->reference)];
    if (!media || media->fragments.empty()) return std::nan("");
    const auto* run = media->fragments.front().run(track.id);
    if (!run || !run->has_decode_time || track.timescale == 0) return std::nan("");
    return static_cast<double>(run->decode_time) / track.timescale;
}

const RenditionStatus* row(const ChannelStatus& s, const std::string& id) {
    for (const auto& r : s.renditions)
        if (r.id == id) return &r;
    return nullptr;
}

std::string describe(const ChannelStatus& s) {
    std::string out = std::string(to_string(s.state)) + ", last error \"" + s.last_error + "\"";
    for (const auto& r : s.renditions)
        out += "; " + r.id + " " + std::string(to_string(r.state)) + " " + std::to_string(r.segment_count) + " listed \"" +
               r.last_error + "\"";
    return out;
}

// Every rendition lists at least `n` real segments.
bool all_listed(const Engine& engine, const std::string& id, const std::vector<std::string>& renditions, std::size_t n) {
    for (const auto& r : renditions) {
        const auto l = listed(text_of(engine, id, r + "/index.m3u8"));
        if (std::count_if(l.begin(), l.end(), [](const Listed& x) { return !x.gap; }) < static_cast<std::ptrdiff_t>(n))
            return false;
    }
    return true;
}

}  // namespace

TEST_CASE("renditions: a ladder comes out as a ladder, aligned, with its audio and subtitles", "[renditions]") {
    ScriptedOrigin origin(std::chrono::milliseconds(1000));
    serve_ladder(origin, ladder_master());
    origin.start(4);
    TempDir disk("ladder");
    EngineSettings settings = quick_settings(1.0, 6);
    settings.hls_dir = disk.path.string();
    Engine engine(settings);
    const auto id = engine.add_channel(channel("Ladder", {origin.url("master.m3u8")})).id;
    engine.start(id);
    REQUIRE(engine.wait_ready(id, 40));
    const std::vector<std::string> all{"v0", "v1", "a0", "a1", "s0"};
    REQUIRE(wait_until([&] { return all_listed(engine, id, all, 4); }, std::chrono::seconds(40)));

    // The master mirrors the source's, every URI pointing at our copy.
    const std::string master = text_of(engine, id, "master.m3u8");
    INFO(master);
    const m3u8::Playlist parsed = m3u8::parse(master, "http://relay.test/hls/x/master.m3u8");
    REQUIRE(parsed.is_master());
    const auto& m = parsed.master();
    REQUIRE(m.variants.size() == 2);
    CHECK(m.variants[0].uri == "http://relay.test/hls/x/v0/index.m3u8");
    CHECK(m.variants[0].bandwidth == 600000);
    CHECK(m.variants[0].average_bandwidth == 500000);
    CHECK(m.variants[0].codecs == "avc1.640015,mp4a.40.2");
    CHECK(m.variants[0].height == 180);
    CHECK(m.variants[0].audio_group == "aud");
    CHECK(m.variants[0].attributes.at("SUBTITLES") == "subs");
    CHECK(m.variants[0].attributes.at("CLOSED-CAPTIONS") == "cc");
    CHECK(m.variants[1].uri == "http://relay.test/hls/x/v1/index.m3u8");
    CHECK(m.variants[1].height == 90);
    CHECK(m.variants[1].codecs.find("avc1") != std::string::npos);  // measured: the source omits it
    CHECK(m.variants[1].codecs.find("mp4a") != std::string::npos);  // ... with its audio group's
    std::map<std::string, const m3u8::Rendition*> media;
    for (const auto& r : m.renditions) media[r.type + ":" + r.name] = &r;
    REQUIRE(media.count("AUDIO:English"));
    REQUIRE(media.count("AUDIO:Deutsch"));
    REQUIRE(media.count("SUBTITLES:English CC"));
    REQUIRE(media.count("CLOSED-CAPTIONS:CC1"));
    CHECK(media["AUDIO:English"]->uri == "http://relay.test/hls/x/a0/index.m3u8");
    CHECK(media["AUDIO:English"]->language == "en");
    CHECK(media["AUDIO:English"]->is_default);
    CHECK(media["AUDIO:English"]->attributes.at("CHANNELS") == "1");
    CHECK(media["AUDIO:Deutsch"]->uri == "http://relay.test/hls/x/a1/index.m3u8");
    CHECK_FALSE(media["AUDIO:Deutsch"]->is_default);
    CHECK(media["SUBTITLES:English CC"]->uri == "http://relay.test/hls/x/s0/index.m3u8");
    CHECK(media["CLOSED-CAPTIONS:CC1"]->attributes.at("INSTREAM-ID") == "CC1");
    CHECK(media["CLOSED-CAPTIONS:CC1"]->uri.empty());

    // The top-level index.m3u8 is the highest video rendition's, prefixed.
    for (const auto& l : listed(text_of(engine, id, "index.m3u8"))) CHECK(l.uri.rfind("v0/", 0) == 0);

    // Status: one row per rendition; the top-level fields are v0's.
    const ChannelStatus st = engine.status(id);
    INFO(describe(st));
    CHECK(st.state == ChannelState::Running);
    REQUIRE(st.renditions.size() == 5);
    for (std::size_t i = 0; i < all.size(); ++i) CHECK(st.renditions[i].id == all[i]);
    CHECK(row(st, "v0")->kind == "video");
    CHECK(row(st, "a1")->kind == "audio");
    CHECK(row(st, "a1")->language == "de");
    CHECK(row(st, "a1")->group == "aud");
    CHECK(row(st, "s0")->kind == "subtitles");
    CHECK(row(st, "v1")->height == 90);
    CHECK(st.stream.height == 180);
    CHECK(st.container == "ts");
    const auto json = to_json(st);
    CHECK(json["renditions"].size() == 5);
    CHECK(json["renditions"][2]["kind"] == "audio");
    CHECK(json["renditions"][2]["name"] == "English");
    CHECK(json["container"] == "ts");

    // The same media sequence number covers the same time in every rendition.
    std::map<std::string, std::map<int64_t, std::string>> segments;  // rendition -> msn -> bytes
    for (const auto& r : all)
        for (const auto& l : listed(text_of(engine, id, r + "/index.m3u8")))
            if (!l.gap)
                if (auto bytes = engine.read(id, r + "/" + l.uri)) segments[r][l.sequence] = std::string(bytes->bytes());
    int compared = 0;
    for (const auto& [msn, big] : segments["v0"]) {
        if (!segments["v1"].count(msn) || !segments["a0"].count(msn) || !segments["a1"].count(msn)) continue;
        const int64_t v0 = first_pts(big), v1 = first_pts(segments["v1"][msn]);
        const int64_t a0 = first_pts(segments["a0"][msn]), a1 = first_pts(segments["a1"][msn]);
        INFO("msn " << msn << ": v0 " << v0 << ", v1 " << v1 << ", a0 " << a0 << ", a1 " << a1);
        REQUIRE(v0 != INT64_MIN);
        CHECK(probe_ts(big).video_streams == 1);
        CHECK(probe_ts(segments["a0"][msn]).audio_streams == 1);
        CHECK(probe_ts(segments["a0"][msn]).video_streams == 0);
        CHECK(std::abs(v1 - v0) <= 3600);  // within a frame at 25 fps
        CHECK(std::abs(a0 - v0) <= 9000);  // the audio segments start with the video's, within 0.1 s
        CHECK(std::abs(a1 - v0) <= 9000);
        ++compared;
    }
    CHECK(compared >= 3);
    // Subtitles pass through byte for byte.
    REQUIRE_FALSE(segments["s0"].empty());
    for (const auto& [msn, vtt] : segments["s0"]) {
        CHECK(vtt.rfind("WEBVTT\n", 0) == 0);
        CHECK(vtt.find("line ") != std::string::npos);
    }
    const auto sub = engine.read(id, "s0/" + listed(text_of(engine, id, "s0/index.m3u8")).back().uri);
    REQUIRE(sub);
    CHECK(sub->content_type == std::string("text/vtt"));

    // The disk mirror: one directory per rendition.
    const auto dir = disk.path / id;
    CHECK(std::filesystem::exists(dir / "master.m3u8"));
    CHECK(std::filesystem::exists(dir / "index.m3u8"));
    for (const auto& r : all) CHECK(std::filesystem::exists(dir / r / "index.m3u8"));
    engine.stop(id);
    CHECK_FALSE(std::filesystem::exists(dir));
}

TEST_CASE("renditions: dated alike by the source's PDT, undated without one", "[renditions]") {
    const bool dated = GENERATE(true, false);
    INFO((dated ? "a dated source" : "an undated source"));
    ScriptedOrigin origin(std::chrono::milliseconds(1000));
    serve_ladder(origin, ladder_master());
    const auto t0 = std::chrono::system_clock::now() - std::chrono::seconds(40);
    if (dated) origin.date_from(t0);
    origin.start(4);
    Engine engine(quick_settings(1.0, 6));
    const auto id = engine.add_channel(channel("Ladder dates", {origin.url("master.m3u8")})).id;
    engine.start(id);
    const std::vector<std::string> all{"v0", "v1", "a0", "a1", "s0"};
    REQUIRE(wait_until([&] { return all_listed(engine, id, all, 4); }, std::chrono::seconds(40)));
    std::map<int64_t, std::map<std::string, std::string>> by_msn;  // msn -> rendition -> date
    std::size_t segments = 0;
    for (const auto& r : all) {
        for (const auto& l : listed(text_of(engine, id, r + "/index.m3u8"))) {
            segments += l.gap ? 0 : 1;
            if (!l.date.empty()) by_msn[l.sequence][r] = l.date;
        }
    }
    if (!dated) {
        CHECK(by_msn.empty());  // no date made up by arrival, rendition by rendition
        CHECK(text_of(engine, id, "index.m3u8").find("PROGRAM-DATE-TIME") == std::string::npos);
        return;
    }
    std::size_t dated_segments = 0;
    for (const auto& [msn, dates] : by_msn) {
        dated_segments += dates.size();
        for (const auto& [r, date] : dates) {
            INFO("msn " << msn << ": " << r << " " << date << ", v-first " << dates.begin()->second);
            CHECK(date == dates.begin()->second);  // one date per number, in every rendition
        }
    }
    CHECK(dated_segments >= segments);
    // On the source's clock: a second apart, as the source's segments are.
    for (auto it = by_msn.begin(); std::next(it) != by_msn.end(); ++it) {
        const auto a = parse_date_time(it->second.begin()->second), b = parse_date_time(std::next(it)->second.begin()->second);
        REQUIRE(a);
        REQUIRE(b);
        CHECK(std::abs(std::chrono::duration<double>(*b - *a).count() - 1.0) < 0.002);
    }
}

TEST_CASE("renditions: one rendition failing alone reconnects alone and keeps its numbering", "[renditions]") {
    const Container container = GENERATE(Container::ts, Container::fmp4);
    INFO("container " << to_string(container));
    ScriptedOrigin origin(std::chrono::milliseconds(1000));
    serve_ladder(origin, ladder_master());
    origin.start(4);
    EngineSettings settings = quick_settings(1.0, 8);
    settings.stall_timeout = 2.0;
    Engine engine(settings);
    ChannelConfig config = channel("Ladder fault", {origin.url("master.m3u8")});
    config.hls.container = container;
    const auto id = engine.add_channel(config).id;
    engine.start(id);
    REQUIRE(wait_until([&] { return all_listed(engine, id, {"v0", "a1"}, 2); }, std::chrono::seconds(40)));

    origin.freeze_track("de", true);
    REQUIRE(wait_until([&] {
        const auto st = engine.status(id);
        const auto* a1 = row(st, "a1");
        return a1 && a1->last_error.find("stalled") != std::string::npos;
    }, std::chrono::seconds(30)));
    // Out for longer than a jump the cutter would repair (10 s): the remux path (fMP4 output) must go
    // on on the presentation's timeline, not right after its own last segment.
    const int64_t v0_before = engine.status(id).segments_published;
    REQUIRE(wait_until([&] { return engine.status(id).segments_published >= v0_before + 11; }, std::chrono::seconds(60)));
    {
        const auto st = engine.status(id);
        INFO(describe(st));
        CHECK(st.state == ChannelState::Running);  // degraded, not down
        CHECK(st.reconnects == 0);
        CHECK(row(st, "v0")->state == ChannelState::Running);
        CHECK(row(st, "a0")->state == ChannelState::Running);
    }
    origin.freeze_track("de", false);
    // It comes back, and its numbering stayed that of the others: what it lost is listed as gaps.
    const auto newest = [&](const std::string& r) {
        const auto l = listed(text_of(engine, id, r + "/index.m3u8"));
        return l.empty() || l.back().gap ? int64_t{-1} : l.back().sequence;
    };
    const int64_t thawed_at = newest("v0");
    REQUIRE(wait_until([&] { return newest("a1") > thawed_at + 1; }, std::chrono::seconds(40)));
    const auto a1 = listed(text_of(engine, id, "a1/index.m3u8"));
    INFO(text_of(engine, id, "a1/index.m3u8"));
    // Every entry is named after its number (seg_<msn>.ts / .m4s): no number was skipped.
    for (const auto& l : a1) CHECK(l.uri == Segment::segment_name(l.sequence, container == Container::fmp4 ? SegmentFormat::fmp4 : SegmentFormat::ts));
    // The same number is the same time in v0 and a1 after the outage too: in their timestamps.
    const auto v0 = listed(text_of(engine, id, "v0/index.m3u8"));
    int compared = 0;
    for (const auto& a : a1) {
        if (a.gap || a.sequence <= thawed_at) continue;
        const auto v = std::find_if(v0.begin(), v0.end(), [&](const Listed& l) { return l.sequence == a.sequence && !l.gap; });
        if (v == v0.end()) continue;
        const double video = start_seconds(engine, id, "v0", *v), audio = start_seconds(engine, id, "a1", a);
        INFO("msn " << a.sequence << ": v0 starts at " << video << " s, a1 at " << audio << " s");
        CHECK(std::abs(video - audio) <= 0.1);
        ++compared;
    }
    CHECK(compared >= 1);
    // Its reconnect is a discontinuity in every rendition at the same number, or in none: the same
    // number has the same discontinuity sequence number everywhere (RFC 8216 6.2.4).
    const auto a0 = listed(text_of(engine, id, "a0/index.m3u8"));
    int matched = 0;
    for (const auto* other : {&v0, &a0}) {
        for (const auto& a : a1) {
            const auto o = std::find_if(other->begin(), other->end(), [&](const Listed& l) { return l.sequence == a.sequence; });
            if (o == other->end()) continue;
            INFO("msn " << a.sequence << (other == &v0 ? " in v0" : " in a0") << "\n" << text_of(engine, id, other == &v0 ? "v0/index.m3u8" : "a0/index.m3u8"));
            CHECK(o->discontinuity == a.discontinuity);
            CHECK(o->discontinuity_sequence == a.discontinuity_sequence);
            ++matched;
        }
    }
    CHECK(matched >= 4);
    // The origin's timeline never broke, so nor does ours: the reconnect is no discontinuity, and
    // what a1 got back is published as it is, not withheld as gaps behind one (Segmenter::continue_timeline).
    for (const auto* l : {&v0, &a0, &a1})
        for (const auto& e : *l) CHECK_FALSE(e.discontinuity);
    bool real = false;
    for (const auto& a : a1) {
        if (a.sequence <= thawed_at) continue;
        if (!a.gap) real = true;
        else CHECK_FALSE(real);  // after the first segment it got back, only segments
    }
}

TEST_CASE("renditions: the selection modes keep the variants asked for", "[renditions]") {
    ScriptedOrigin origin(std::chrono::milliseconds(1000));
    serve_ladder(origin, ladder_master());
    origin.start(4);
    Engine engine(quick_settings(1.0, 5));
    const std::vector<std::pair<std::string, std::vector<int>>> modes{
        {"highest", {180}}, {"lowest", {90}}, {"max-height=100", {90}}, {"180p", {180}}, {"90p,180p", {180, 90}},
        {"max-bandwidth=300000", {90}}};
    for (const auto& [mode, heights] : modes) {
        DYNAMIC_SECTION(mode) {
            ChannelConfig config = channel("Select " + mode, {origin.url("master.m3u8")});
            config.hls.renditions = mode;
            const auto id = engine.add_channel(config).id;
            engine.start(id);
            REQUIRE(engine.wait_ready(id, 40));
            const std::string master = text_of(engine, id, "master.m3u8");
            INFO(master);
            const m3u8::Playlist parsed = m3u8::parse(master, "http://relay.test/m.m3u8");
            REQUIRE(parsed.is_master());
            std::vector<int> got;
            for (const auto& v : parsed.master().variants) got.push_back(v.height);
            CHECK(got == heights);
            // The audio and subtitles of the kept variants' groups follow them.
            CHECK(parsed.master().renditions.size() == 4);
            const auto st = engine.status(id);
            CHECK(st.renditions.size() == heights.size() + 3);
            engine.stop(id);
        }
    }
}

TEST_CASE("renditions: hostile master attributes do not leak into ours", "[renditions]") {
    ScriptedOrigin origin(std::chrono::milliseconds(1000));
    const std::string huge(200000, 'H');
    const std::string hostile =
        "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"x#EXT-X-ENDLIST" + huge + "\",LANGUAGE=\"en,URI=http://evil/\","
        "CHARACTERISTICS=\"a\\\",CHANNELS=\"2,URI=x\",URI=\"de.m3u8\"\n";
    std::string master = ladder_master("big.m3u8", hostile);
    // A hostile CODECS on the first variant.
    const std::string codecs = "CODECS=\"avc1.640015,mp4a.40.2\"";
    master.replace(master.find(codecs), codecs.size(), "CODECS=\"avc1.640015,URI=<script>\"");
    serve_ladder(origin, master);
    origin.start(4);
    Engine engine(quick_settings(1.0, 5));
    const auto id = engine.add_channel(channel("Hostile master", {origin.url("master.m3u8")})).id;
    engine.start(id);
    REQUIRE(engine.wait_ready(id, 40));
    const std::string ours = text_of(engine, id, "master.m3u8");
    INFO(ours.substr(0, 4000));
    CHECK(ours.size() < 8192);
    CHECK(ours.find("evil") == std::string::npos);
    CHECK(ours.find("<script>") == std::string::npos);
    CHECK(ours.find("ENDLIST") != std::string::npos);  // inside a quoted NAME, cut short, harmless
    std::istringstream in(ours);
    for (std::string line; std::getline(in, line);) {
        CHECK(line.size() <= 1024);
        CHECK(line.rfind("#EXT-X-ENDLIST", 0) == std::string::npos);
        if (!line.empty() && line[0] != '#') CHECK((line == "v0/index.m3u8" || line == "v1/index.m3u8"));
    }
    const m3u8::Playlist parsed = m3u8::parse(ours, "http://relay.test/m.m3u8");
    REQUIRE(parsed.is_master());
    for (const auto& r : parsed.master().renditions) {
        if (r.type == "CLOSED-CAPTIONS") continue;
        CHECK(r.uri.rfind("http://relay.test/", 0) == 0);
        CHECK(r.language.find("evil") == std::string::npos);
    }
}

TEST_CASE("renditions: a variant that is itself a master playlist is refused", "[renditions]") {
    ScriptedOrigin origin(std::chrono::milliseconds(1000));
    serve_ladder(origin, "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=100000\nnested.m3u8\n");
    origin.set_file("nested.m3u8", "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=100000\nbig.m3u8\n");
    origin.start(4);
    Engine engine(quick_settings(1.0, 5));
    const auto id = engine.add_channel(channel("Nested", {origin.url("master.m3u8")})).id;
    engine.start(id);
    REQUIRE(wait_until([&] { return engine.status(id).state == ChannelState::Failed; }, std::chrono::seconds(30)));
    const auto st = engine.status(id);
    CHECK(st.last_error.find("itself a master playlist") != std::string::npos);
    CHECK(st.segments_published == 0);
}

TEST_CASE("renditions: low latency in every rendition, with reports of the others", "[renditions][ll]") {
    ScriptedOrigin origin(std::chrono::milliseconds(1000));
    serve_ladder(origin, ladder_master());
    origin.start(4);
    TempDir disk("ladder-ll");
    EngineSettings settings = quick_settings(1.0, 6);
    settings.hls_dir = disk.path.string();
    Engine engine(settings);
    ChannelConfig config = channel("Ladder LL", {origin.url("master.m3u8")});
    config.hls.low_latency = true;
    config.hls.container = Container::fmp4;
    const auto id = engine.add_channel(config).id;
    std::mutex mu;
    std::set<std::string> parts_of;  // the renditions PartPublished named
    const auto sub = engine.subscribe([&](const Event& e) {
        if (e.type != EventType::PartPublished || e.channel != id) return;
        std::lock_guard lock(mu);
        parts_of.insert(e.rendition);
    });
    engine.start(id);
    REQUIRE(engine.wait_ready(id, 40));
    const std::vector<std::string> cut{"v0", "v1", "a0", "a1"};
    REQUIRE(wait_until([&] { return all_listed(engine, id, {"v0", "v1", "a0", "a1", "s0"}, 4); }, std::chrono::seconds(40)));

    auto report_of = [](const std::string& text, const std::string& uri) -> std::pair<int64_t, int> {
        const std::string tag = "#EXT-X-RENDITION-REPORT:URI=\"" + uri + "\"";
        const auto at = text.find(tag);
        if (at == std::string::npos) return {-1, -1};
        const std::string line = text.substr(at, text.find('\n', at) - at);
        const auto msn = line.find("LAST-MSN="), part = line.find("LAST-PART=");
        return {msn == std::string::npos ? -1 : std::stoll(line.substr(msn + 9)), part == std::string::npos ? -1 : std::stoi(line.substr(part + 10))};
    };
    for (const auto& r : cut) {
        INFO("rendition " << r);
        const std::string text = text_of(engine, id, r + "/index.m3u8");
        INFO(text);
        CHECK(text.find("#EXT-X-VERSION:9") != std::string::npos);
        CHECK(text.find("#EXT-X-PART-INF:PART-TARGET=") != std::string::npos);
        CHECK(text.find("#EXT-X-PRELOAD-HINT:TYPE=PART") != std::string::npos);
        // Its parts, joined, are its segments (the listed ones that still list their parts).
        const auto pos = engine.playlist_position(id, r + "/index.m3u8");
        REQUIRE(pos);
        CHECK(pos->low_latency);
        // A report of every other rendition, where that one stood at most a segment or so ago.
        for (const auto& other : std::vector<std::string>{"v0", "v1", "a0", "a1", "s0"}) {
            const auto [msn, part] = report_of(text, "../" + other + "/index.m3u8");
            if (other == r) {
                CHECK(msn == -1);  // none of itself
                continue;
            }
            INFO("report of " << other);
            CHECK(msn >= 0);
            const auto theirs = engine.playlist_position(id, other + "/index.m3u8");
            REQUIRE(theirs);
            CHECK(msn <= std::max(theirs->open_msn, theirs->last_msn));  // never ahead of that rendition
            if (other == "s0") CHECK(part == -1);  // subtitles come whole
            // ... and at most a segment or so behind it once this rendition's playlist is rendered
            // again (on a loaded machine one rendition may be a moment behind the others).
            CHECK(wait_until([&] {
                const auto now = report_of(text_of(engine, id, r + "/index.m3u8"), "../" + other + "/index.m3u8").first;
                const auto at = engine.playlist_position(id, other + "/index.m3u8");
                return at && now >= at->last_msn - 2;
            }, std::chrono::seconds(10)));
        }
    }
    // Blocking on a rendition's own playlist: the next part of a0 comes.
    const auto a0 = *engine.playlist_position(id, "a0/index.m3u8");
    REQUIRE(engine.wait_playlist(id, "a0/index.m3u8", a0.open_msn, a0.open_parts, 10));
    CHECK(engine.playlist_position(id, "a0/index.m3u8")->holds(a0.open_msn, a0.open_parts));
    CHECK_FALSE(engine.playlist_position(id, "s0/index.m3u8")->low_latency);
    CHECK_FALSE(engine.playlist_position(id, "v7/index.m3u8"));
    CHECK_FALSE(engine.playlist_position(id, "v0/seg_1.m4s"));
    // The delta update of a rendition's playlist, named for that rendition.
    const auto delta = api::hls_playlist(engine, id, "v1/index.m3u8", api::PlaylistDirectives{std::nullopt, std::nullopt, "YES"});
    REQUIRE(delta.kind == api::PlaylistAnswer::Kind::serve);
    CHECK(delta.file == "v1/" + std::string(kDeltaPlaylistName));
    CHECK(text_of(engine, id, delta.file).find("#EXT-X-VERSION:9") != std::string::npos);
    CHECK(api::is_media_playlist("v1/index.m3u8"));
    CHECK_FALSE(api::is_media_playlist("v1/seg_1.m4s"));

    // The top-level index.m3u8 is v0's, one directory up, with reports of the others and its own
    // position v0's.
    const std::string top = text_of(engine, id, "index.m3u8");
    INFO(top);
    CHECK(top.find("#EXT-X-PART:DURATION=") != std::string::npos);
    CHECK(top.find("URI=\"v0/part_") != std::string::npos);
    CHECK(report_of(top, "v1/index.m3u8").first >= 0);
    CHECK(report_of(top, "a0/index.m3u8").first >= 0);
    CHECK(report_of(top, "v0/index.m3u8").first == -1);
    CHECK(engine.playlist_position(id, "index.m3u8")->last_msn >= engine.playlist_position(id, "v0/index.m3u8")->last_msn - 1);
    CHECK(text_of(engine, id, std::string(kDeltaPlaylistName)).find("#EXT-X-VERSION:9") != std::string::npos);

    // Every rendition that cuts parts tells them, named; the top one as the top level.
    CHECK(wait_until([&] {
        std::lock_guard lock(mu);
        return parts_of == std::set<std::string>{"", "v1", "a0", "a1"};
    }, std::chrono::seconds(10)));
    // Aligned still: the same numbers in every rendition (the ladder test checks the times).
    // (Each rendition has its own source connection: read one after the other, they may differ by
    // a segment being published meanwhile, or two on a loaded machine for a moment.)
    CHECK(wait_until([&] {
        const auto v0 = listed(text_of(engine, id, "v0/index.m3u8")), a1 = listed(text_of(engine, id, "a1/index.m3u8"));
        return !v0.empty() && !a1.empty() && std::abs(v0.back().sequence - a1.back().sequence) <= 1;
    }, std::chrono::seconds(10)));
    // The disk mirror holds whole segments: its playlists list no parts.
    const auto on_disk = [&](const std::string& name) {
        std::ifstream in(disk.path / id / name);
        return std::string(std::istreambuf_iterator<char>(in), {});
    };
    CHECK(on_disk("v1/index.m3u8").find("#EXTINF") != std::string::npos);
    CHECK(on_disk("v1/index.m3u8").find("#EXT-X-PART") == std::string::npos);
    CHECK(on_disk("index.m3u8").find("#EXTINF") != std::string::npos);
    CHECK(on_disk("index.m3u8").find("#EXT-X-PART") == std::string::npos);
    engine.unsubscribe(sub);
    engine.stop(id);
}

namespace {
// A presentation with backups fails over as a whole (ChannelWorker::follow_presentation): its top
// rendition failing as long as the policy allows one URL moves every rendition to the backup's
// master, numbered on behind one discontinuity; a healthy primary is returned to.
EngineSettings presentation_failover_settings() { return quick_failover_settings(); }

// The real (not gap) segments rendition `r` lists numbered above `after`.
std::size_t real_above(const Engine& engine, const std::string& id, const std::string& r, int64_t after) {
    const auto l = listed(text_of(engine, id, r + "/index.m3u8"));
    return static_cast<std::size_t>(
        std::count_if(l.begin(), l.end(), [&](const Listed& x) { return !x.gap && x.sequence > after; }));
}

int64_t newest(const Engine& engine, const std::string& id, const std::string& r) {
    const auto l = listed(text_of(engine, id, r + "/index.m3u8"));
    return l.empty() ? -1 : l.back().sequence;
}

// The numbers above `after` that rendition `r` lists behind an EXT-X-DISCONTINUITY.
std::set<int64_t> breaks_above(const Engine& engine, const std::string& id, const std::string& r, int64_t after) {
    std::set<int64_t> out;
    for (const auto& l : listed(text_of(engine, id, r + "/index.m3u8")))
        if (l.discontinuity && l.sequence > after) out.insert(l.sequence);
    return out;
}

}  // namespace

TEST_CASE("renditions failover: a presentation fails over to its backup master as a whole and fails back", "[renditions][failover]") {
    ScriptedOrigin primary(std::chrono::milliseconds(1000)), backup(std::chrono::milliseconds(1000), "/b");
    serve_ladder(primary, ladder_master());
    serve_ladder(backup, ladder_master());
    primary.start(4);
    backup.start(4);  // live from when the primary dies on, numbered from 1000
    backup.freeze(true);
    backup.restart(1000, 4);
    Engine engine(presentation_failover_settings());
    const auto id =
        engine.add_channel(channel("Ladder failover", {primary.url("master.m3u8"), backup.url("master.m3u8")})).id;
    engine.start(id);
    const std::vector<std::string> all{"v0", "v1", "a0", "a1", "s0"};
    REQUIRE(wait_until([&] { return all_listed(engine, id, all, 3); }, std::chrono::seconds(60)));
    CHECK(engine.status(id).source_index == 0);
    CHECK(engine.status(id).failovers == 0);
    std::map<std::string, int64_t> first;  // each rendition's first number: the window keeps them all
    for (const auto& r : all) first[r] = listed(text_of(engine, id, r + "/index.m3u8")).front().sequence;

    // The primary dies (every request 404); the backup ladder is live, numbered from 1000.
    backup.freeze(false);
    primary.freeze(true);
    primary.set_down(true);
    int64_t before = 0;  // the newest number any rendition had published from the primary
    for (const auto& r : all) before = std::max(before, newest(engine, id, r));
    REQUIRE(wait_until([&] {
        const ChannelStatus s = engine.status(id);
        return s.source_index == 1 && s.failovers == 1;
    }, std::chrono::seconds(60)));
    // Every rendition goes on from the backup: numbered on, behind one discontinuity shared by all.
    REQUIRE(wait_until([&] {
        for (const auto& r : all)
            if (real_above(engine, id, r, before) < 3) return false;
        return true;
    }, std::chrono::seconds(60)));
    {
        const ChannelStatus s = engine.status(id);
        INFO(describe(s));
        CHECK(s.source_index == 1);
        CHECK(s.failovers == 1);
        REQUIRE(s.sources.size() == 2);
        CHECK(s.sources[1].role == "active");
        CHECK(s.sources[0].role != "active");
        CHECK(s.source == redact_url(backup.url("master.m3u8")));
        CHECK(backup.segment_requests() > 0);
    }
    const std::set<int64_t> top_breaks = breaks_above(engine, id, "v0", before - 1);
    REQUIRE_FALSE(top_breaks.empty());
    const int64_t switched_at = *top_breaks.begin();
    for (const auto& r : all) {
        INFO(r);
        const auto l = listed(text_of(engine, id, r + "/index.m3u8"));
        CHECK(l.front().sequence == first[r]);  // no reset: the same window, numbered on
        CHECK(breaks_above(engine, id, r, before - 1).count(switched_at) == 1);
        CHECK(real_above(engine, id, r, switched_at - 1) >= 3);
    }
    for (const auto& l : listed(text_of(engine, id, "index.m3u8"))) CHECK(l.uri.rfind("v0/", 0) == 0);

    // The primary is back: after failback_after of healthy probes the presentation returns to it.
    const std::size_t primary_segments = primary.segment_requests();
    primary.set_down(false);
    primary.freeze(false);
    REQUIRE(wait_until([&] {
        const ChannelStatus s = engine.status(id);
        return s.source_index == 0 && s.failovers == 2;
    }, std::chrono::seconds(60)));
    int64_t back = 0;
    for (const auto& r : all) back = std::max(back, newest(engine, id, r));
    REQUIRE(wait_until([&] {
        for (const auto& r : all)
            if (real_above(engine, id, r, back) < 2) return false;
        return true;
    }, std::chrono::seconds(60)));
    CHECK(primary.segment_requests() > primary_segments);
    const ChannelStatus s = engine.status(id);
    INFO(describe(s));
    CHECK(s.sources[0].role == "active");
    CHECK(s.source == redact_url(primary.url("master.m3u8")));
    const std::set<int64_t> later = breaks_above(engine, id, "v0", switched_at);
    REQUIRE_FALSE(later.empty());
    for (const auto& r : all) {
        INFO(r);
        CHECK(listed(text_of(engine, id, r + "/index.m3u8")).front().sequence == first[r]);
        CHECK(breaks_above(engine, id, r, switched_at).count(*later.begin()) == 1);
    }
    engine.stop(id);
}

TEST_CASE("renditions failover: backup masters that are garbage or list no variants are passed over", "[renditions][failover]") {
    ScriptedOrigin primary(std::chrono::milliseconds(1000)), backup(std::chrono::milliseconds(1000), "/b");
    serve_ladder(primary, ladder_master());
    // The usable backup has no German audio: a1 has no match there.
    std::string no_german = ladder_master();
    const std::size_t de = no_german.find("#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"Deutsch\"");
    REQUIRE(de != std::string::npos);
    no_german.erase(de, no_german.find('\n', de) + 1 - de);
    serve_ladder(backup, no_german);
    backup.set_file("none.m3u8", "#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"English\",URI=\"en.m3u8\"\n");
    backup.set_file("garbage.m3u8", "<html>not a playlist</html>\n");
    primary.start(4);
    backup.start(4);
    backup.freeze(true);
    Engine engine(presentation_failover_settings());
    const auto id = engine.add_channel(channel("Ladder bad backups", {primary.url("master.m3u8"), backup.url("none.m3u8"),
                                                                      backup.url("garbage.m3u8"), backup.url("master.m3u8")}))
                        .id;
    engine.start(id);
    const std::vector<std::string> all{"v0", "v1", "a0", "a1", "s0"};
    REQUIRE(wait_until([&] { return all_listed(engine, id, all, 3); }, std::chrono::seconds(60)));

    backup.freeze(false);
    primary.freeze(true);
    primary.set_down(true);
    int64_t before = 0;
    for (const auto& r : all) before = std::max(before, newest(engine, id, r));
    REQUIRE(wait_until([&] { return engine.status(id).source_index == 3; }, std::chrono::seconds(60)));
    const std::vector<std::string> matched{"v0", "v1", "a0", "s0"};
    REQUIRE(wait_until([&] {
        for (const auto& r : matched)
            if (real_above(engine, id, r, before) < 3) return false;
        return true;
    }, std::chrono::seconds(60)));
    const ChannelStatus s = engine.status(id);
    INFO(describe(s));
    CHECK(s.source_index == 3);
    CHECK(s.failovers >= 3);  // 0 -> 1 (no variants) -> 2 (garbage) -> 3
    REQUIRE(s.sources.size() == 4);
    CHECK(s.sources[3].role == "active");
    CHECK(s.sources[1].role != "active");
    CHECK(s.sources[2].role != "active");
    // a1 has no match in the backup: it says so and publishes nothing more.
    const RenditionStatus* a1 = row(s, "a1");
    REQUIRE(a1 != nullptr);
    CHECK(a1->state == ChannelState::Reconnecting);
    CHECK(a1->last_error.find("no rendition matching") != std::string::npos);
    const std::set<int64_t> top_breaks = breaks_above(engine, id, "v0", before - 1);
    REQUIRE_FALSE(top_breaks.empty());
    CHECK(real_above(engine, id, "a1", *top_breaks.begin() - 1) == 0);
    CHECK(s.state == ChannelState::Running);
    engine.stop(id);
}

TEST_CASE("renditions failover: a stop during a switch to a backup that never answers is prompt", "[renditions][failover]") {
    ScriptedOrigin primary(std::chrono::milliseconds(1000));
    serve_ladder(primary, ladder_master());
    primary.start(4);
    // The backup accepts connections (the kernel's backlog) and never answers.
    uint16_t port = 0;
    struct Listener {
        int fd;
        ~Listener() { ::close(fd); }
    } silent{http::listen_loopback(0, &port, "silent backup")};
    EngineSettings settings = presentation_failover_settings();
    settings.read_timeout = 600;  // the switch's fetch of the backup master would wait that long (beyond ctest's timeout)
    settings.stall_timeout = 3;   // ... while the primary's death is seen soon
    Engine engine(settings);
    const auto id = engine.add_channel(channel("Ladder stop", {primary.url("master.m3u8"),
                                                               "http://127.0.0.1:" + std::to_string(port) + "/master.m3u8"}))
                        .id;
    engine.start(id);
    const std::vector<std::string> all{"v0", "v1", "a0", "a1", "s0"};
    REQUIRE(wait_until([&] { return all_listed(engine, id, all, 3); }, std::chrono::seconds(60)));
    primary.freeze(true);
    primary.set_down(true);
    REQUIRE(wait_until([&] { return engine.status(id).source_index == 1; }, std::chrono::seconds(60)));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the switch's fetch hangs
    engine.stop(id);  // returns: the fetch honours stop (else it would wait read_timeout)
    const ChannelStatus s = engine.status(id);
    CHECK(s.state == ChannelState::Stopped);
    CHECK(s.segment_count == 0);
}

TEST_CASE("renditions: the continuous TS of a ladder carries the top video with the default audio", "[renditions][ts-stream]") {
    const Container container = GENERATE(Container::ts, Container::fmp4);
    INFO("container " << to_string(container));
    ScriptedOrigin origin(std::chrono::milliseconds(1000));
    serve_ladder(origin, ladder_master());
    origin.start(4);
    Engine engine(quick_settings(1.0, 6));
    ChannelConfig config = channel("Ladder tuner", {origin.url("master.m3u8")});
    config.hls.container = container;
    const auto id = engine.add_channel(config).id;
    engine.start(id);
    REQUIRE(engine.wait_ready(id, 40));
    REQUIRE(wait_until([&] { return all_listed(engine, id, {"v0", "a0"}, 2); }, std::chrono::seconds(40)));
    CHECK_FALSE(api::ts_stream_refusal(engine, id));  // separate audio is no reason to refuse any more

    api::TsStream viewer(engine, id);
    std::vector<Resource> chunks;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (chunks.size() < 4 && std::chrono::steady_clock::now() < deadline)
        if (auto r = viewer.wait_next(5)) chunks.push_back(std::move(*r));
    REQUIRE(chunks.size() == 4);
    std::string stream;
    for (const Resource& r : chunks) {
        const TsProbe probe = probe_ts(std::string(r.bytes()));
        CHECK(probe.video_streams == 1);
        CHECK(probe.audio_streams == 1);
        CHECK(probe.first_video_key());
        stream += r.bytes();
    }
    // One stream across the segments: counters and timestamps run on, and it decodes cleanly.
    const std::string problems = ts_stream_problems(stream, 1, 1);
    INFO(problems);
    CHECK(problems.empty());
    const std::string errors = decode_errors(stream);
    INFO(errors);
    CHECK(errors.empty());
    // Every viewer shares each derived segment (one before the newest: its audio is surely there).
    const auto p = engine.playlist_position(id, "index.m3u8");
    REQUIRE(p);
    const auto one = engine.read_ts_segment(id, p->last_msn - 1), two = engine.read_ts_segment(id, p->last_msn - 1);
    REQUIRE(one);
    REQUIRE(two);
    CHECK(one->bytes().data() == two->bytes().data());
    engine.stop(id);
}

TEST_CASE("renditions: a presentation pushes each rendition under its directory, the master from the top", "[renditions][push]") {
    ScriptedOrigin origin(std::chrono::milliseconds(1000));
    serve_ladder(origin, ladder_master());
    origin.start(4);
    TextOrigin sink;  // takes every PUT and DELETE
    sink.set_fallback(TextOrigin::Answer{200, "text/plain", ""});
    EngineSettings settings = quick_settings(1.0, 6);
    settings.push_url = sink.url("/p/");  // a trailing slash is not doubled
    Engine engine(settings);
    const auto id = engine.add_channel(channel("Ladder", {origin.url("master.m3u8")})).id;
    engine.start(id);
    REQUIRE(engine.wait_ready(id, 40));
    const std::string dir = "PUT /p/" + id + "/";
    auto seen = [&](const std::string& what) { return sink.received_by_method().count(dir + what) > 0; };
    auto seen_prefix = [&](const std::string& prefix) {
        for (const auto& [what, n] : sink.received_by_method())
            if (what.rfind(dir + prefix, 0) == 0) return true;
        return false;
    };
    CHECK(wait_until([&] {
        return seen("master.m3u8") && seen("index.m3u8") && seen("v0/index.m3u8") && seen("v1/index.m3u8") &&
               seen("a0/index.m3u8") && seen("a1/index.m3u8") && seen("s0/index.m3u8") && seen_prefix("v0/seg_") &&
               seen_prefix("a1/seg_") && seen_prefix("s0/seg_");
    }, std::chrono::seconds(60)));
    for (const auto& [what, n] : sink.received_by_method()) {
        INFO(what);
        CHECK(what.find("/v0/master.m3u8") == std::string::npos);  // a rendition's master stays home
        CHECK(what.find("//") == std::string::npos);
    }
    const ChannelStatus st = engine.status(id);
    REQUIRE(st.push);
    CHECK(st.push->failed == 0);
    CHECK(st.push->pushed > 0);
    engine.stop(id);
}

}  // namespace hlsrelay::test
