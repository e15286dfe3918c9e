// Where output segments are cut and what they say about themselves (issue 11, bugs 3, 4 and 6):
// EXTINF is the duration of the media in the segment, the tables' continuity counters continue,
// audio-only sources are cut at their own segment boundaries, PROGRAM-DATE-TIME is never ahead of
// the clock (and is the source's when it has one), and the first segment after a break starts clean.
// The sources are made with ffmpeg at test time: HEVC, 44.1 and 48 kHz AAC, time-split H.264.
#include "engine_fixture.hpp"
#include "ts_probe.hpp"

#include "common/av_util.hpp"
#include "cut/segmenter.hpp"
#include "cut/ts_cutter.hpp"

#include "ingest/m3u8.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <charconv>
#include <cmath>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

extern char** environ;

using namespace hlsrelay;
using namespace hlsrelay::test;

namespace {

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

// An ffmpeg HLS encode made once per test process (`args` between the inputs and the HLS muxer).
const MediaSet& fixture(const std::string& name, const std::vector<std::string>& args, double hls_time) {
    // This process's encodes, removed when it exits.
    struct Made {
        std::map<std::string, MediaSet> sets;
        ~Made() {
            std::error_code ec;
            for (const auto& [name, set] : sets) std::filesystem::remove_all(set.dir, ec);
        }
    };
    static std::mutex mu;
    static Made made;
    std::lock_guard lock(mu);
    if (auto it = made.sets.find(name); it != made.sets.end()) return it->second;
    const std::filesystem::path dir =
        std::filesystem::path(media_root()) / ("cuts-" + name + "-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    std::vector<std::string> a = args;
    char t[32];
    std::snprintf(t, sizeof t, "%g", hls_time);
    a.insert(a.end(), {"-f", "hls", "-hls_time", t, "-hls_list_size", "0", "-hls_segment_filename",
                       (dir / "seg_%05d.ts").string(), (dir / "index.m3u8").string()});
    run_ffmpeg(a);
    MediaSet set;
    set.dir = dir.string();
    std::istringstream in(slurp((dir / "index.m3u8").string()));
    std::string line;
    double pending = -1;
    while (std::getline(in, line)) {
        if (line.rfind("#EXT-X-TARGETDURATION:", 0) == 0) set.target_duration = std::atof(line.c_str() + 22);
        else if (line.rfind("#EXTINF:", 0) == 0) pending = std::atof(line.c_str() + 8);
        else if (!line.empty() && line[0] != '#' && pending >= 0) {
            set.segment_files.push_back((dir / line).string());
            set.durations.push_back(pending);
            pending = -1;
        }
    }
    while (set.durations.size() > 1 && set.durations.back() < hls_time / 2) {  // AAC framing leaves a runt
        set.durations.pop_back();
        set.segment_files.pop_back();
    }
    REQUIRE(set.segment_files.size() >= 4);
    return made.sets.emplace(name, std::move(set)).first->second;
}

// HEVC, 30 fps, 2 s GOPs, 2 s segments, with x265's B-frames and open GOPs (leading pictures
// follow each keyframe in decoding order but precede it on screen), and AAC: the source.
const MediaSet& hevc_media() {
    return fixture("hevc",
                   {"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30", "-f", "lavfi", "-i",
                    "sine=frequency=440:sample_rate=48000", "-t", "16", "-c:v", "libx265", "-preset", "ultrafast",
                    "-g", "60", "-keyint_min", "60", "-x265-params", "log-level=error:scenecut=0", "-pix_fmt",
                    "yuv420p", "-c:a", "aac", "-b:a", "64k"},
                   2.0);
}

// Audio only, AAC at `rate` Hz, 2 s segments.
const MediaSet& aac_media(int rate) {
    return fixture("aac" + std::to_string(rate),
                   {"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=" + std::to_string(rate), "-t", "16", "-c:a",
                    "aac", "-b:a", "64k"},
                   2.0);
}

// H.264 + AAC with 2 s GOPs split every 0.8 s by time: most segments start inside a GOP, with
// audio PES running across the keyframes (what other packagers serve, and what a reconnect meets).
const MediaSet& split_media() {
    return fixture("split",
                   {"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-f", "lavfi", "-i",
                    "sine=frequency=440:sample_rate=48000", "-t", "16", "-c:v", "libx264", "-preset", "ultrafast",
                    "-g", "50", "-keyint_min", "50", "-sc_threshold", "0", "-bf", "2", "-pix_fmt", "yuv420p", "-c:a",
                    "aac", "-b:a", "64k", "-hls_flags", "split_by_time"},
                   0.8);
}

// `ffmpeg -v error -i file -f null -`: what it reports (stderr).
std::string ffmpeg_errors(const std::string& file) {
    const std::string log = file + ".log";
    std::vector<std::string> all{"ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-i", file, "-f", "null", "-"};
    std::vector<char*> argv;
    for (auto& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid = 0;
    const int rc = posix_spawnp(&pid, "ffmpeg", &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    REQUIRE(rc == 0);
    int status = 0;
    waitpid(pid, &status, 0);
    return slurp(log);
}

// What every output segment must be: EXTINF the media's duration (first PTS to the end of the last
// frame, within 1 ms plus the playlist's rounding), tables first, continuity counters unbroken,
// every PID starting with a PES start.
void check_segment(const std::string& data, double duration, double rounding = 0) {
    const TsProbe probe = probe_ts(data);
    REQUIRE(probe.ok);
    CHECK(std::fabs(probe.media_duration() - duration) <= 0.001 + rounding);
    const TsLayout layout = scan_ts(data);
    for (const auto& e : layout.cc_error_text) UNSCOPED_INFO("continuity: " << e);
    CHECK(layout.cc_errors == 0);
    REQUIRE_FALSE(layout.pat_at.empty());
    CHECK(layout.pat_at.front() <= 1);  // first, or right behind libav's SDT
    REQUIRE_FALSE(layout.pmt_at.empty());
    CHECK(layout.pmt_at.front() == layout.pat_at.front() + 1);
    for (const auto& [pid, pusi] : layout.first_has_pusi) {
        INFO("pid " << pid);
        CHECK(pusi);
    }
}

struct Out {
    std::string data;
    double duration = 0;
};

// The engine's passthrough: Segmenter::write_ts_segment per source segment.
std::vector<Out> passthrough(const MediaSet& media, double segment_duration) {
    std::vector<Out> out;
    Segmenter seg(segment_duration, [&](CutSegment&& s) { out.push_back({std::move(s.data), s.duration}); });
    for (size_t i = 0; i < media.segment_files.size(); ++i) {
        std::string data = slurp(media.segment_files[i]);
        seg.set_source_date(std::nullopt);
        REQUIRE(seg.write_ts_segment(data, i == 0, false));
    }
    seg.flush();
    CHECK(seg.passthrough());
    return out;
}

// The remux path, as the HLS client demuxes a segment it does not pass through.
std::vector<Out> remux(const MediaSet& media, double segment_duration) {
    std::vector<Out> out;
    Segmenter seg(segment_duration, [&](CutSegment&& s) { out.push_back({std::move(s.data), s.duration}); });
    for (size_t i = 0; i < media.segment_files.size(); ++i) {
        const std::string data = slurp(media.segment_files[i]);
        av::MemoryReader reader(data);
        AVFormatContext* raw = avformat_alloc_context();
        REQUIRE(raw);
        raw->pb = reader.io();
        raw->flags |= AVFMT_FLAG_CUSTOM_IO;
        REQUIRE(avformat_open_input(&raw, "", av_find_input_format("mpegts"), nullptr) == 0);
        av::InputPtr input(raw);
        REQUIRE(avformat_find_stream_info(input.get(), nullptr) >= 0);
        seg.set_source_date(std::nullopt);  // as the HLS client does before each segment
        seg.open_input(input.get(), i == 0, true);
        av::PacketPtr packet = av::make_packet();
        while (av_read_frame(input.get(), packet.get()) >= 0) seg.write(packet.get());
    }
    seg.flush();
    return out;
}

void check_all(const std::vector<Out>& out, bool one_table_set) {
    REQUIRE(out.size() >= 3);
    std::string all;
    for (size_t i = 0; i < out.size(); ++i) {
        INFO("output segment " << i << " of " << out.size() << ", " << out[i].duration << " s");
        check_segment(out[i].data, out[i].duration);
        if (one_table_set) CHECK(scan_ts(out[i].data).pat_at.size() == 1);
        all += out[i].data;
    }
    // Played back to back the counters go on from segment to segment too.
    const TsLayout whole = scan_ts(all);
    for (const auto& e : whole.cc_error_text) UNSCOPED_INFO("continuity across segments: " << e);
    CHECK(whole.cc_errors == 0);
}

}  // namespace

TEST_CASE("cuts: HEVC segments say the duration of their 60 frames", "[cuts]") {
    const auto& media = hevc_media();
    SECTION("passthrough") {
        const auto out = passthrough(media, 2.0);
        check_all(out, true);
        // Each holds 60 frames; the first lacks the leading pictures of the second GOP's keyframe.
        for (size_t i = 1; i + 1 < out.size(); ++i) CHECK(std::fabs(out[i].duration - 2.0) < 0.0005);
    }
    SECTION("remux") {
        const auto out = remux(media, 2.0);
        check_all(out, false);  // libav's muxer repeats its tables every 0.1 s, counters continuous
        for (size_t i = 1; i + 1 < out.size(); ++i) CHECK(std::fabs(out[i].duration - 2.0) < 0.0005);
    }
}

TEST_CASE("cuts: audio-only AAC is cut at the source's segment boundaries, with its real duration", "[cuts]") {
    for (int rate : {44100, 48000}) {
        INFO(rate << " Hz");
        const auto& media = aac_media(rate);
        for (int path = 0; path < 2; ++path) {
            INFO((path == 0 ? "passthrough" : "remux"));
            const auto out = path == 0 ? passthrough(media, 2.0) : remux(media, 2.0);
            check_all(out, path == 0);
            // One output segment per source segment: the boundaries are near the target.
            CHECK(out.size() == media.segment_files.size());
            for (size_t i = 0; i + 1 < std::min(out.size(), media.durations.size()); ++i) {
                INFO("segment " << i);
                CHECK(std::fabs(out[i].duration - media.durations[i]) < 0.03);
            }
        }
    }
}

TEST_CASE("cuts: audio frame durations come from the frame headers", "[cuts]") {
    // Three ADTS headers (44.1 kHz, 1 raw data block, 10-byte frames) and one of two blocks.
    auto adts = [](int blocks) {
        std::vector<uint8_t> f{0xff, 0xf1, 0x50, 0x80, 0x01, 0x40, 0x00, 0, 0, 0};  // index 4: 44100 Hz, 10 bytes
        f[6] = static_cast<uint8_t>(blocks - 1);
        return f;
    };
    std::vector<uint8_t> es;
    for (int b : {1, 1, 1, 2}) {
        const auto f = adts(b);
        es.insert(es.end(), f.begin(), f.end());
    }
    CHECK(ts::audio_duration(es.data(), es.size(), 0x0f) == std::llround(5 * 1024 * 90000.0 / 44100));
    // MPEG-1 layer II, 48 kHz, 192 kbit/s: 576-byte frames of 1152 samples (2160 ticks).
    std::vector<uint8_t> mp2(2 * 576, 0);
    for (size_t o : {size_t{0}, size_t{576}}) mp2[o] = 0xff, mp2[o + 1] = 0xfd, mp2[o + 2] = 0xa4, mp2[o + 3] = 0x00;
    CHECK(ts::audio_duration(mp2.data(), mp2.size(), 0x04) == 2 * 2160);
    // AC-3, 48 kHz, 384 kbit/s: 1536-byte frames of 1536 samples (2880 ticks).
    std::vector<uint8_t> ac3(1536, 0);
    ac3[0] = 0x0b, ac3[1] = 0x77, ac3[4] = 0x1c, ac3[5] = 0x40;  // frmsizecod 28, bsid 8
    CHECK(ts::audio_duration(ac3.data(), ac3.size(), 0x81) == 2880);
    CHECK(ts::audio_duration(es.data(), 3, 0x0f) == 0);  // too short to tell
}

TEST_CASE("cuts: after a break the first segment starts clean: tables, a keyframe, no PES tails", "[cuts]") {
    const auto& media = split_media();
    const auto program = ts::find_program(slurp(media.segment_files.at(0)));
    REQUIRE(program);
    const int video_pid = program->reference_pid();
    int checked = 0;
    // Enter the stream at every source segment in turn, as a reconnect does.
    for (size_t start = 1; start + 3 < media.segment_files.size(); ++start) {
        std::vector<ts::Cut> cuts;
        ts::Cutter cutter(2.0, [&](ts::Cut&& c) { cuts.push_back(std::move(c)); });
        cutter.set_program(*program);
        for (size_t i = start; i < start + 3; ++i) cutter.feed(slurp(media.segment_files[i]), i == start, false, 2.499);
        cutter.flush();
        REQUIRE_FALSE(cuts.empty());
        INFO("entering at source segment " << start);
        const std::string& first = cuts.front().data;
        const TsLayout layout = scan_ts(first);
        REQUIRE(layout.pat_at.size() >= 1);
        CHECK(layout.pat_at.front() <= 1);  // first, or right behind the source's SDT
        CHECK(layout.pmt_at.front() == layout.pat_at.front() + 1);
        CHECK(layout.first_pes_pid == video_pid);
        CHECK(layout.first_video_clean == 1);
        for (const auto& [pid, pusi] : layout.first_has_pusi) {
            INFO("pid " << pid);
            CHECK(pusi);
        }
        CHECK(layout.cc_errors == 0);
        // No audio from well before the picture.
        const TsProbe probe = probe_ts(first);
        REQUIRE(probe.ok);
        int64_t video_start = INT64_MAX, audio_start = INT64_MAX;
        for (const auto& p : probe.packets) {
            if (p.pts == AV_NOPTS_VALUE) continue;
            if (p.type == AVMEDIA_TYPE_VIDEO) video_start = std::min(video_start, p.pts);
            if (p.type == AVMEDIA_TYPE_AUDIO) audio_start = std::min(audio_start, p.pts);
        }
        REQUIRE(video_start != INT64_MAX);
        REQUIRE(audio_start != INT64_MAX);
        CHECK(audio_start >= video_start - 3000);
        ++checked;
    }
    CHECK(checked >= 5);
}

namespace {

// A channel on a loopback origin; records when each segment was published (the event's wall time).
struct Watched {
    Engine engine;
    std::string id;
    std::mutex mu;
    std::map<int64_t, SystemClock::time_point> published;
    Engine::SubscriptionId sub = 0;

    Watched(EngineSettings settings, const std::string& url) : engine(std::move(settings)) {
        id = engine.add_channel(channel("cuts", {url})).id;
        sub = engine.subscribe([this](const Event& e) {
            if (e.type != EventType::SegmentPublished || e.channel != id) return;
            std::lock_guard lock(mu);
            published.emplace(e.sequence, SystemClock::now());
        });
        engine.start(id);
    }
    ~Watched() { engine.unsubscribe(sub); }
    m3u8::MediaPlaylist playlist() {
        auto r = engine.read(id, "index.m3u8");
        if (!r) return {};
        return m3u8::parse(std::string(r->bytes()), "http://127.0.0.1/hls_streams/" + id + "/index.m3u8").media();
    }
    std::string segment(const m3u8::Segment& s) {
        auto r = engine.read(id, s.uri.substr(s.uri.rfind('/') + 1));
        return r ? std::string(r->bytes()) : std::string();
    }
};

// Every listed segment: EXTINF (%.3f) is its media's duration, its counters are continuous, and its
// PROGRAM-DATE-TIME plus EXTINF was not in the future when it was published.
void check_channel(Watched& w) {
    const auto playlist = w.playlist();
    REQUIRE(playlist.segments.size() >= 4);
    for (const auto& s : playlist.segments) {
        INFO(s.uri << " EXTINF " << s.duration);
        check_segment(w.segment(s), s.duration, 0.0005);
        REQUIRE(s.program_date_time);
        const auto date = parse_date_time(*s.program_date_time);
        REQUIRE(date);
        std::lock_guard lock(w.mu);
        auto it = w.published.find(s.sequence);
        REQUIRE(it != w.published.end());
        const double ahead = std::chrono::duration<double>(*date - it->second).count() + s.duration;
        INFO("PROGRAM-DATE-TIME " << *s.program_date_time << ": its end was " << ahead << " s ahead of publishing");
        CHECK(ahead <= 0.002);  // the playlist writes milliseconds
    }
}

}  // namespace

TEST_CASE("cuts: HEVC and audio-only 44.1 kHz origins through the engine: EXTINF, tables, dates", "[cuts]") {
    for (const MediaSet* media : {&hevc_media(), &aac_media(44100)}) {
        LiveOrigin origin(*media, {.speed = 1.0});
        origin.start();
        Watched w(quick_settings(2.0, 6), origin.url());
        const bool ready =
            wait_until([&] { return w.engine.status(w.id).segments_published >= 5; }, std::chrono::seconds(60));
        INFO("status: " << to_json(w.engine.status(w.id)).dump());
        REQUIRE(ready);
        check_channel(w);
    }
}

TEST_CASE("cuts: a source with PROGRAM-DATE-TIME dates the output on its clock", "[cuts]") {
    const auto& media = hevc_media();
    // A local finished playlist (played at its native rate) with dates on all segments but the third:
    // that one's media is dated from the one before.
    const auto base = SystemClock::now() - std::chrono::hours(1);
    std::vector<SystemClock::time_point> dates;
    std::string text = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n";
    double at = 0;
    for (size_t i = 0; i < media.segment_files.size(); ++i) {
        dates.push_back(base + std::chrono::duration_cast<SystemClock::duration>(std::chrono::duration<double>(at)));
        if (i != 2) text += "#EXT-X-PROGRAM-DATE-TIME:" + format_date_time(dates.back()) + "\n";
        char extinf[64];
        std::snprintf(extinf, sizeof extinf, "#EXTINF:%.6f,\n", media.durations[i]);
        text += extinf + std::filesystem::path(media.segment_files[i]).filename().string() + "\n";
        at += media.durations[i];
    }
    text += "#EXT-X-ENDLIST\n";
    const std::string path = media.dir + "/dated.m3u8";
    {
        std::ofstream(path) << text;
    }
    const auto program = ts::find_program(slurp(media.segment_files.at(0)));
    REQUIRE(program);
    std::vector<int64_t> source_pts;
    for (const auto& f : media.segment_files) source_pts.push_back(*ts::earliest_pts(slurp(f), program->reference_pid()));

    Watched w(quick_settings(2.0, 10), path);
    REQUIRE(wait_until([&] { return w.engine.status(w.id).segments_published >= 5; }, std::chrono::seconds(60)));
    const auto playlist = w.playlist();
    REQUIRE(playlist.segments.size() >= 5);
    for (const auto& s : playlist.segments) {
        const std::string data = w.segment(s);
        const auto pts = ts::earliest_pts(data, program->reference_pid());
        REQUIRE(pts);
        // The dated source segment this media comes from (or follows), and the date that gives it.
        size_t k = 0;
        for (size_t i = 0; i < source_pts.size(); ++i)
            if (i != 2 && ts::ts_diff(source_pts[i], *pts) >= 0) k = i;
        const auto expected = dates[k] + std::chrono::duration_cast<SystemClock::duration>(std::chrono::duration<double>(
                                             static_cast<double>(ts::ts_diff(source_pts[k], *pts)) / 90000.0));
        REQUIRE(s.program_date_time);
        const auto date = parse_date_time(*s.program_date_time);
        REQUIRE(date);
        INFO(s.uri << ": " << *s.program_date_time << ", the source says " << format_date_time(expected));
        CHECK(std::fabs(std::chrono::duration<double>(*date - expected).count()) <= 0.001);
    }
}

TEST_CASE("cuts: the first segment after a reconnect starts clean (tables, keyframe with parameter sets)", "[cuts]") {
    const auto& media = split_media();
    LiveOrigin origin(media, {.speed = 1.0});
    origin.start();
    EngineSettings settings = quick_settings(2.0, 10);
    Watched w(settings, origin.url());
    REQUIRE(wait_until([&] { return w.engine.status(w.id).segments_published >= 2; }, std::chrono::seconds(60)));
    const int64_t before = w.engine.status(w.id).reconnects;
    origin.set_fault(LiveOrigin::Fault::Refuse);
    REQUIRE(wait_until([&] { return w.engine.status(w.id).reconnects > before; }, std::chrono::seconds(60)));
    origin.set_fault(LiveOrigin::Fault::None);
    std::optional<m3u8::Segment> after;
    REQUIRE(wait_until(
        [&] {
            for (const auto& s : w.playlist().segments)
                if (s.discontinuity) after = s;
            return after.has_value();
        },
        std::chrono::seconds(60)));
    const std::string data = w.segment(*after);
    REQUIRE_FALSE(data.empty());
    const TsLayout layout = scan_ts(data);
    const auto program = ts::find_program(data);
    REQUIRE(program);
    CHECK(layout.pat_at.front() <= 1);
    CHECK(layout.pmt_at.front() == layout.pat_at.front() + 1);
    CHECK(layout.first_pes_pid == program->reference_pid());
    CHECK(layout.first_video_clean == 1);
    for (const auto& [pid, pusi] : layout.first_has_pusi) {
        INFO("pid " << pid);
        CHECK(pusi);
    }
    CHECK(layout.cc_errors == 0);
    // What ffmpeg says when it decodes it: nothing.
    const std::string file = media.dir + "/after-break.ts";
    {
        std::ofstream(file, std::ios::binary) << data;
    }
    const std::string said = ffmpeg_errors(file);
    INFO("ffmpeg: " << said);
    CHECK(said.find("orrupt") == std::string::npos);
    CHECK(said.find("non monoton") == std::string::npos);
    CHECK(said.find("Invalid") == std::string::npos);
}

namespace {

// An ffmpeg process this test started, ended (SIGTERM, then waited for) when it goes out of scope.
struct Sender {
    pid_t pid = -1;
    explicit Sender(std::vector<std::string> args) {
        std::vector<std::string> all{"ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error"};
        all.insert(all.end(), args.begin(), args.end());
        std::vector<char*> argv;
        for (auto& a : all) argv.push_back(a.data());
        argv.push_back(nullptr);
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
        const int rc = posix_spawnp(&pid, "ffmpeg", &fa, nullptr, argv.data(), environ);
        posix_spawn_file_actions_destroy(&fa);
        if (rc != 0) pid = -1;
    }
    // Waits for it to exit by itself (its -t bounds it); true once it has.
    bool wait(std::chrono::duration<double> bound) {
        if (pid < 0) return true;
        const bool done = wait_until(
            [&] {
                int status = 0;
                return ::waitpid(pid, &status, WNOHANG) == pid;
            },
            bound);
        if (done) pid = -1;
        return done;
    }
    ~Sender() {
        if (pid < 0) return;
        ::kill(pid, SIGTERM);
        int status = 0;
        ::waitpid(pid, &status, 0);
    }
};

uint16_t free_udp_port() {
    const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    socklen_t len = sizeof a;
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    ::close(fd);
    return ntohs(a.sin_port);
}

std::vector<std::string> udp_sender_args(uint16_t port, int seconds) {
    return {"-re", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25", "-f", "lavfi", "-i",
            "sine=frequency=440:sample_rate=48000", "-t", std::to_string(seconds), "-c:v", "libx264", "-preset",
            "ultrafast", "-bf", "2", "-g", "25", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k", "-f", "mpegts",
            "udp://127.0.0.1:" + std::to_string(port) + "?pkt_size=1316"};
}

}  // namespace

TEST_CASE("cuts: a UDP source that falls silent fails after read_timeout, and its restart continues the timestamps",
          "[cuts]") {
    const uint16_t port = free_udp_port();
    EngineSettings settings = quick_settings(1.0, 30);
    settings.read_timeout = 3.0;
    Watched w(settings, "udp://127.0.0.1:" + std::to_string(port));
    {
        Sender first(udp_sender_args(port, 6));
        REQUIRE(first.pid > 0);
        REQUIRE(wait_until([&] { return w.engine.status(w.id).segments_published >= 2; }, std::chrono::seconds(30)));
        REQUIRE(first.wait(std::chrono::seconds(30)));
    }
    const auto silent_since = std::chrono::steady_clock::now();
    REQUIRE(w.engine.status(w.id).last_error.empty());
    // Silence: the error comes after one read_timeout, and says how long it has been.
    std::string error;
    REQUIRE(wait_until(
        [&] {
            error = w.engine.status(w.id).last_error;
            return !error.empty();
        },
        std::chrono::seconds(60)));
    const double observed = std::chrono::duration<double>(std::chrono::steady_clock::now() - silent_since).count();
    INFO("error after " << observed << " s of silence: " << error);
    const auto at = error.find("no data for ");
    CHECK(at != std::string::npos);
    if (at != std::string::npos) {
        const double said = std::atof(error.c_str() + at + 12);
        CHECK(said >= settings.read_timeout);
        // The number is the silence, not the setting: the source did not wait through a second timeout.
        CHECK(observed - said <= std::max(1.5, settings.read_timeout / 2));
    }

    // The sender comes back (a new encoder: its timestamps start over); the output goes on after a
    // discontinuity, every track strictly after where it was.
    Sender second(udp_sender_args(port, 5));
    REQUIRE(second.pid > 0);
    std::optional<m3u8::Segment> before, after;
    REQUIRE(wait_until(
        [&] {
            const auto p = w.playlist();
            for (size_t i = 1; i < p.segments.size(); ++i)
                if (p.segments[i].discontinuity) before = p.segments[i - 1], after = p.segments[i];
            return after.has_value();
        },
        std::chrono::seconds(60)));
    const TsProbe a = probe_ts(w.segment(*before)), b = probe_ts(w.segment(*after));
    REQUIRE(a.ok);
    REQUIRE(b.ok);
    for (AVMediaType type : {AVMEDIA_TYPE_VIDEO, AVMEDIA_TYPE_AUDIO}) {
        int64_t last_dts = INT64_MIN, last_end = INT64_MIN, first_dts = INT64_MAX, first_pts = INT64_MAX;
        for (const auto& p : a.packets)
            if (p.type == type && p.dts != AV_NOPTS_VALUE)
                last_dts = std::max(last_dts, p.dts), last_end = std::max(last_end, p.pts + p.duration);
        for (const auto& p : b.packets)
            if (p.type == type && p.dts != AV_NOPTS_VALUE)
                first_dts = std::min(first_dts, p.dts), first_pts = std::min(first_pts, p.pts);
        INFO(av_get_media_type_string(type) << ": last DTS " << last_dts << ", end " << last_end << " before; first DTS "
                                            << first_dts << ", PTS " << first_pts << " after");
        REQUIRE(last_dts != INT64_MIN);
        REQUIRE(first_dts != INT64_MAX);
        CHECK(first_dts > last_dts);
        CHECK(first_pts >= last_end);
    }

    // And once more without a reconnect: the encoder restarts within read_timeout, so the demuxer
    // reads on and the segmenter sees the timestamps jump back. No track may overlap itself: the
    // repair must not squeeze frames one tick apart onto the old timeline.
    REQUIRE(second.wait(std::chrono::seconds(30)));
    const int64_t published = w.engine.status(w.id).segments_published;
    Sender third(udp_sender_args(port, 6));
    REQUIRE(third.pid > 0);
    REQUIRE(wait_until([&] { return w.engine.status(w.id).segments_published >= published + 4; },
                       std::chrono::seconds(60)));
    const auto p = w.playlist();
    std::string all;
    for (const auto& s : p.segments)
        if (s.sequence >= after->sequence) all += w.segment(s);
    const TsProbe probe = probe_ts(all);
    REQUIRE(probe.ok);
    std::map<int, int64_t> last;
    int steps = 0;
    for (const auto& pk : probe.packets) {
        if (pk.dts == AV_NOPTS_VALUE) continue;
        auto it = last.find(pk.stream);
        if (it != last.end()) {
            INFO("stream " << pk.stream << ": DTS " << it->second << " -> " << pk.dts);
            CHECK(pk.dts - it->second >= 90);  // frames at least a millisecond apart, never squeezed
            ++steps;
        }
        last[pk.stream] = pk.dts;
    }
    CHECK(steps > 100);
}
