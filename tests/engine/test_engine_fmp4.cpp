// fMP4/CMAF in and out (issue 12): TS sources remuxed into an init section and .m4s fragments, fMP4
// sources cut on moof boundaries without a remux (the init section re-served, a changed one behind a
// discontinuity), fMP4 sources still remuxed into MPEG-TS when asked, hostile boxes never crashing,
// and the bounded ISO BMFF reader on hand-made boxes. Sources are made with ffmpeg at test time;
// the output is probed with libavformat and played with the ffmpeg CLI.
#include "engine_fixture.hpp"
#include "ts_probe.hpp"

#include "common/av_util.hpp"
#include "cut/fmp4.hpp"
#include "cut/segmenter.hpp"
#include "ingest/m3u8.hpp"
#include "support/http_serve.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

extern char** environ;

using namespace hlsrelay;
using namespace hlsrelay::test;

namespace {

std::string slurp_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

void spill(const std::filesystem::path& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary);
    out << bytes;
}

// An ffmpeg HLS encode made once per test process: MPEG-TS, or fMP4 (init.mp4 + .m4s).
struct Encode {
    std::string dir;
    std::string init;                   // fMP4: the init section's bytes
    std::vector<std::string> segments;  // bytes, in order
    std::vector<double> durations;      // EXTINF
};

const Encode& encode(const std::string& name, const std::vector<std::string>& args, bool fmp4, double hls_time = 1.0) {
    struct Made {
        std::map<std::string, Encode> sets;
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
        std::filesystem::path(media_root()) / ("fmp4-" + name + "-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    std::vector<std::string> a{"-nostdin", "-hide_banner", "-v", "error", "-y"};
    a.insert(a.end(), args.begin(), args.end());
    char t[32];
    std::snprintf(t, sizeof t, "%g", hls_time);
    a.insert(a.end(), {"-f", "hls", "-hls_time", t, "-hls_list_size", "0"});
    if (fmp4)
        a.insert(a.end(), {"-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", "init.mp4", "-hls_segment_filename",
                           (dir / "seg_%05d.m4s").string()});
    else
        a.insert(a.end(), {"-hls_segment_filename", (dir / "seg_%05d.ts").string()});
    a.push_back((dir / "index.m3u8").string());
    run_ffmpeg(a);
    Encode e;
    e.dir = dir.string();
    if (fmp4) e.init = slurp_file((dir / "init.mp4").string());
    std::istringstream in(slurp_file((dir / "index.m3u8").string()));
    std::string line;
    double pending = -1;
    while (std::getline(in, line)) {
        if (line.rfind("#EXTINF:", 0) == 0) pending = std::atof(line.c_str() + 8);
        else if (!line.empty() && line[0] != '#' && pending >= 0) {
            e.segments.push_back(slurp_file((dir / line).string()));
            e.durations.push_back(pending);
            pending = -1;
        }
    }
    while (e.durations.size() > 1 && e.durations.back() < hls_time / 2) {  // AAC framing leaves a runt
        e.durations.pop_back();
        e.segments.pop_back();
    }
    REQUIRE(e.segments.size() >= 4);
    return made.sets.emplace(name, std::move(e)).first->second;
}

std::vector<std::string> lavfi_av(int seconds, const std::string& size = "320x240") {
    return {"-f", "lavfi", "-i", "testsrc2=size=" + size + ":rate=25", "-f", "lavfi", "-i",
            "sine=frequency=440:sample_rate=48000", "-t", std::to_string(seconds)};
}

// H.264 + AAC, 1 s GOPs, as fMP4 HLS (1 s segments) or MPEG-TS.
const Encode& h264_fmp4() {
    auto a = lavfi_av(10);
    a.insert(a.end(), {"-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-keyint_min", "25", "-sc_threshold",
                       "0", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k"});
    return encode("h264-fmp4", a, true);
}
// The same content at another resolution: another init section.
const Encode& h264_fmp4_small() {
    auto a = lavfi_av(6, "160x120");
    a.insert(a.end(), {"-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-keyint_min", "25", "-sc_threshold",
                       "0", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k"});
    return encode("h264-fmp4-small", a, true);
}
const Encode& h264_ts() {
    auto a = lavfi_av(10);
    a.insert(a.end(), {"-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-keyint_min", "25", "-sc_threshold",
                       "0", "-bf", "2", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k"});
    return encode("h264-ts", a, false);
}
// HEVC with B-frames and AC-3, MPEG-TS, 2 s segments.
const Encode& hevc_ac3_ts() {
    auto a = lavfi_av(10);
    a.insert(a.end(), {"-c:v", "libx265", "-preset", "ultrafast", "-g", "50", "-keyint_min", "50", "-x265-params",
                       "log-level=error:scenecut=0", "-pix_fmt", "yuv420p", "-c:a", "ac3", "-b:a", "128k"});
    return encode("hevc-ac3-ts", a, false, 2.0);
}
// H.264 with E-AC-3 or Opus audio (48 kHz), MPEG-TS or fMP4, 2 s segments.
const Encode& h264_with(const std::string& audio_codec, bool fmp4) {
    auto a = lavfi_av(10);
    a.insert(a.end(), {"-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-keyint_min", "50", "-sc_threshold",
                       "0", "-pix_fmt", "yuv420p", "-c:a", audio_codec, "-b:a", "96k"});
    return encode("h264-" + audio_codec + (fmp4 ? "-fmp4" : "-ts"), a, fmp4, 2.0);
}
// HEVC + AAC as fMP4 HLS, 1 s segments (tagged hvc1, as Safari wants it).
const Encode& hevc_fmp4() {
    auto a = lavfi_av(8);
    a.insert(a.end(), {"-c:v", "libx265", "-preset", "ultrafast", "-g", "25", "-keyint_min", "25", "-x265-params",
                       "log-level=error:scenecut=0", "-tag:v", "hvc1", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k"});
    return encode("hevc-fmp4", a, true);
}

struct Out {
    std::string data;
    double duration = 0;
    bool discontinuity = false;
    bool keyframe_start = false;
    SegmentFormat format = SegmentFormat::ts;
    InitPtr init;
};

Segmenter::Publish collect(std::vector<Out>& out) {
    return [&out](CutSegment&& s) {
        out.push_back({std::move(s.data), s.duration, s.discontinuity, s.keyframe_start, s.format, std::move(s.init)});
    };
}

// The remux path, as the HLS client demuxes a segment it does not pass through (`format`: "mpegts" or
// "mp4" with the init section in front).
void demux_into(Segmenter& seg, const std::string& bytes, const char* format, bool discontinuity) {
    av::MemoryReader reader(bytes);
    AVFormatContext* raw = avformat_alloc_context();
    REQUIRE(raw);
    raw->pb = reader.io();
    raw->flags |= AVFMT_FLAG_CUSTOM_IO;
    if (avformat_open_input(&raw, "", av_find_input_format(format), nullptr) != 0)
        throw av::SourceError("cannot open");
    av::InputPtr input(raw);
    if (avformat_find_stream_info(input.get(), nullptr) < 0) throw av::SourceError("cannot probe");
    seg.open_input(input.get(), discontinuity, true);
    av::PacketPtr packet = av::make_packet();
    while (av_read_frame(input.get(), packet.get()) >= 0) seg.write(packet.get());
}

// What libavformat reads from an fMP4 init section and one or more segments behind it.
struct Mp4Probe {
    bool ok = false;
    std::vector<AVCodecID> codecs;
    std::vector<uint32_t> tags;
    int video = -1, audio = -1;
    bool first_video_key = false;
    double reference_duration = 0;  // video (else audio): first PTS to the end of the last frame
    int packets = 0;
};

Mp4Probe probe_mp4(const std::string& bytes) {
    Mp4Probe p;
    av::MemoryReader reader(bytes);
    AVFormatContext* raw = avformat_alloc_context();
    raw->pb = reader.io();
    raw->flags |= AVFMT_FLAG_CUSTOM_IO;
    if (avformat_open_input(&raw, "", av_find_input_format("mp4"), nullptr) != 0) return p;
    av::InputPtr input(raw);
    if (avformat_find_stream_info(input.get(), nullptr) < 0) return p;
    for (unsigned i = 0; i < input->nb_streams; ++i) {
        const auto* par = input->streams[i]->codecpar;
        p.codecs.push_back(par->codec_id);
        p.tags.push_back(par->codec_tag);
        if (par->codec_type == AVMEDIA_TYPE_VIDEO && p.video < 0) p.video = static_cast<int>(i);
        if (par->codec_type == AVMEDIA_TYPE_AUDIO && p.audio < 0) p.audio = static_cast<int>(i);
    }
    const int ref = p.video >= 0 ? p.video : p.audio;
    int64_t first = INT64_MAX, end = INT64_MIN;
    bool seen_video = false;
    av::PacketPtr packet = av::make_packet();
    while (av_read_frame(input.get(), packet.get()) >= 0) {
        ++p.packets;
        if (packet->stream_index == p.video && !seen_video) {
            seen_video = true;
            p.first_video_key = packet->flags & AV_PKT_FLAG_KEY;
        }
        if (packet->stream_index == ref && packet->pts != AV_NOPTS_VALUE) {
            first = std::min(first, packet->pts);
            end = std::max(end, packet->pts + packet->duration);
        }
        av_packet_unref(packet.get());
    }
    if (ref >= 0 && first != INT64_MAX) p.reference_duration = static_cast<double>(end - first) * av_q2d(input->streams[ref]->time_base);
    p.ok = p.packets > 0;
    return p;
}

// `ffmpeg -v error -i <file> -f null -`: its exit status and what it reports.
struct Played {
    int status = -1;
    std::string errors;
};
Played play(const std::string& input, const std::vector<std::string>& extra = {}) {
    const std::string log = (std::filesystem::path(media_root()) / ("fmp4-play-" + std::to_string(::getpid()) + ".log")).string();
    std::vector<std::string> all{"ffmpeg", "-nostdin", "-hide_banner", "-v", "error"};
    all.insert(all.end(), extra.begin(), extra.end());
    all.insert(all.end(), {"-i", input, "-f", "null", "-"});
    std::vector<char*> argv;
    for (auto& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid = 0;
    const int rc = posix_spawnp(&pid, "ffmpeg", &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    REQUIRE(rc == 0);
    int status = 0;
    waitpid(pid, &status, 0);
    Played p;
    p.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    p.errors = slurp_file(log);
    std::filesystem::remove(log);
    return p;
}

// The moof..mdat bytes of a source segment (what the passthrough may copy; styp and sidx left out).
std::string fragments_of(const std::string& init, const std::string& segment) {
    auto info = mp4::parse_init(init);
    REQUIRE(info);
    auto media = mp4::parse_media(segment, *info);
    REQUIRE(media);
    std::string out;
    for (const auto& f : media->fragments) out += segment.substr(f.begin, f.end - f.begin);
    return out;
}

// Every output segment of a remux to fMP4: one init section, keyframe first, EXTINF = its media.
void check_fmp4_output(const std::vector<Out>& out, AVCodecID video, AVCodecID audio) {
    REQUIRE(out.size() >= 3);
    std::string all = out.front().init ? out.front().init->data : std::string();
    for (size_t i = 0; i < out.size(); ++i) {
        INFO("segment " << i);
        const Out& o = out[i];
        CHECK(o.format == SegmentFormat::fmp4);
        REQUIRE(o.init);
        CHECK(o.init == out.front().init);
        CHECK(o.keyframe_start);
        auto top = mp4::top_level_boxes(o.data);
        REQUIRE(top);
        REQUIRE_FALSE(top->empty());
        CHECK((top->front().type == mp4::fourcc("moof") || top->front().type == mp4::fourcc("styp")));
        const Mp4Probe p = probe_mp4(o.init->data + o.data);
        std::string boxes;
        for (const auto& b : *top) boxes += mp4::fourcc_text(b.type) + " ";
        INFO("boxes " << boxes << "; probed " << p.reference_duration << " s in " << p.packets << " packets, EXTINF "
                      << o.duration);
        REQUIRE(p.ok);
        REQUIRE(p.video >= 0);
        REQUIRE(p.audio >= 0);
        CHECK(p.codecs[static_cast<size_t>(p.video)] == video);
        CHECK(p.codecs[static_cast<size_t>(p.audio)] == audio);
        CHECK(p.first_video_key);
        if (i + 1 < out.size()) CHECK(std::fabs(p.reference_duration - o.duration) <= 0.05);
        all += o.data;
    }
    auto info = mp4::parse_init(out.front().init->data);
    REQUIRE(info);
    CHECK(info->fragmented);
    TempDir dir("fmp4-out");
    spill(dir.path / "all.mp4", all);
    const Played played = play((dir.path / "all.mp4").string());
    INFO(played.errors);
    CHECK(played.status == 0);
    CHECK(played.errors.empty());
}

// --- hand-made boxes for the reader's unit tests ---
std::string be32(uint32_t v) {
    return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}
std::string box(const char (&type)[5], const std::string& payload) {
    return be32(static_cast<uint32_t>(8 + payload.size())) + std::string(type, 4) + payload;
}
std::string full(uint32_t version_flags, const std::string& rest) { return be32(version_flags) + rest; }

std::string track(uint32_t id, const char (&handler)[5], const char (&entry)[5], uint32_t timescale) {
    const std::string tkhd = box("tkhd", full(0, be32(0) + be32(0) + be32(id) + std::string(68, '\0')));
    const std::string mdhd = box("mdhd", full(0, be32(0) + be32(0) + be32(timescale) + be32(0) + be32(0)));
    const std::string hdlr = box("hdlr", full(0, be32(0) + std::string(handler, 4) + std::string(12, '\0') + "x"));
    const std::string stsd = box("stsd", full(0, be32(1) + box(entry, std::string(16, '\0'))));
    return box("trak", tkhd + box("mdia", mdhd + hdlr + box("minf", box("stbl", stsd))));
}
std::string trex(uint32_t id, uint32_t duration, uint32_t size, uint32_t flags) {
    return box("trex", full(0, be32(id) + be32(1) + be32(duration) + be32(size) + be32(flags)));
}
std::string test_init(const char (&entry)[5] = "avc1") {
    return box("ftyp", "iso6" + be32(0)) +
           box("moov", box("mvhd", full(0, std::string(96, '\0'))) + track(1, "vide", entry, 90000) +
                           track(2, "soun", "mp4a", 48000) + box("mvex", trex(1, 3600, 0, 0x10000) + trex(2, 1024, 0, 0)));
}
constexpr uint32_t kNonSync = 0x00010000, kSync = 0x02000000;
// moof+mdat: video samples with per-sample durations/sizes/flags, audio samples with the defaults.
std::string test_fragment(uint64_t video_time, uint32_t samples, uint32_t first_flags, uint32_t sample_count_field = 0) {
    std::string vrun = be32(sample_count_field ? sample_count_field : samples) + be32(0) + be32(first_flags);
    for (uint32_t i = 0; i < samples; ++i) vrun += be32(3600) + be32(10) + be32(kNonSync);
    const std::string vtraf = box("traf", box("tfhd", full(0x020000, be32(1))) +
                                              box("tfdt", full(0x01000000, be32(static_cast<uint32_t>(video_time >> 32)) +
                                                                              be32(static_cast<uint32_t>(video_time)))) +
                                              box("trun", full(0x000705, vrun)));
    const std::string atraf = box("traf", box("tfhd", full(0x020018, be32(2) + be32(1024) + be32(4))) +
                                              box("tfdt", full(0, be32(static_cast<uint32_t>(video_time / 90000 * 48000)))) +
                                              box("trun", full(0, be32(5))));
    const std::string moof = box("moof", box("mfhd", full(0, be32(1))) + vtraf + atraf);
    return moof + box("mdat", std::string(samples * 10 + 20, 'm'));
}

// A live fMP4 HLS origin on loopback: lists one more segment of `e` per `interval` (a window of the
// newest six), behind EXT-X-MAP; serves init.mp4 and seg_<n>.m4s. Stops at the end of the set.
class Fmp4Origin {
public:
    Fmp4Origin(const Encode& e, std::chrono::milliseconds interval) : e_(e), interval_(interval) {
        fd_ = http::listen_loopback(0, &port_, "Fmp4Origin");
        start_ = std::chrono::steady_clock::now();
        thread_ = std::thread([this] { loop(); });
    }
    ~Fmp4Origin() {
        stop_ = true;
        ::shutdown(fd_, SHUT_RDWR);
        thread_.join();
        ::close(fd_);
    }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/f/index.m3u8"; }
    std::atomic<int> segment_requests{0};

private:
    size_t listed() const {
        const auto n = static_cast<size_t>((std::chrono::steady_clock::now() - start_) / interval_) + 3;
        return std::min(n, e_.segments.size());
    }
    std::string playlist() const {
        const size_t n = listed();
        const size_t first = n > 6 ? n - 6 : 0;
        std::string p = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:1\n#EXT-X-INDEPENDENT-SEGMENTS\n";
        p += "#EXT-X-MEDIA-SEQUENCE:" + std::to_string(first) + "\n#EXT-X-MAP:URI=\"init.mp4\"\n";
        for (size_t i = first; i < n; ++i) {
            char d[32];
            std::snprintf(d, sizeof d, "%.6f", e_.durations[i]);
            p += std::string("#EXTINF:") + d + ",\nseg_" + std::to_string(i) + ".m4s\n";
        }
        if (n == e_.segments.size()) p += "#EXT-X-ENDLIST\n";
        return p;
    }
    void loop() {
        while (!stop_) {
            const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (c < 0) {
                if (stop_) return;
                continue;
            }
            http::Request req;
            if (http::read_request(c, std::chrono::steady_clock::now() + std::chrono::seconds(2), req)) {
                std::string body, type = "video/mp4";
                int status = 200;
                if (req.path == "/f/index.m3u8") {
                    body = playlist();
                    type = "application/vnd.apple.mpegurl";
                } else if (req.path == "/f/init.mp4") {
                    body = e_.init;
                } else if (req.path.rfind("/f/seg_", 0) == 0) {
                    const size_t i = std::strtoul(req.path.c_str() + 7, nullptr, 10);
                    if (i < listed()) {
                        body = e_.segments[i];
                        ++segment_requests;
                    } else {
                        status = 404;
                    }
                } else {
                    status = 404;
                }
                http::send_all(c, "HTTP/1.1 " + std::to_string(status) + " " + http::reason(status) +
                                      "\r\nContent-Type: " + type + "\r\nContent-Length: " + std::to_string(body.size()) +
                                      "\r\nConnection: close\r\n\r\n" + body);
            }
            ::close(c);
        }
    }
    const Encode& e_;
    std::chrono::milliseconds interval_;
    int fd_ = -1;
    uint16_t port_ = 0;
    std::atomic<bool> stop_{false};
    std::chrono::steady_clock::time_point start_;
    std::thread thread_;
};

std::string engine_text(const Engine& e, const std::string& id, const std::string& name) {
    auto r = e.read(id, name);
    return r ? std::string(r->bytes()) : std::string();
}

// The channel's playlist with its init section and segments written to `dir` (as the disk mirror
// would), ended, for a player to open and read to its end.
m3u8::MediaPlaylist mirror(const Engine& e, const std::string& id, const std::filesystem::path& dir) {
    const std::string text = engine_text(e, id, "index.m3u8");
    spill(dir / "index.m3u8", text + "#EXT-X-ENDLIST\n");  // a snapshot: the player reads it to its end
    auto p = m3u8::parse(text, "http://127.0.0.1/hls/" + id + "/index.m3u8").media();
    for (const auto& s : p.segments) {
        for (const std::string* uri : {&s.uri, s.map ? &s.map->uri : nullptr}) {
            if (!uri) continue;
            const std::string name = uri->substr(uri->rfind('/') + 1);
            auto r = e.read(id, name);
            if (r) spill(dir / name, std::string(r->bytes()));
        }
    }
    return p;
}

}  // namespace

TEST_CASE("fmp4 box reader: init tracks, fragments, sync flags and sizes from hand-made boxes", "[fmp4]") {
    const std::string init = test_init();
    std::string why;
    auto info = mp4::parse_init(init, &why);
    INFO(why);
    REQUIRE(info);
    REQUIRE(info->tracks.size() == 2);
    CHECK(info->fragmented);
    CHECK(info->reference == 0);
    CHECK(info->tracks[0].timescale == 90000);
    CHECK(info->tracks[0].video());
    CHECK(info->tracks[0].sample_entry == mp4::fourcc("avc1"));
    CHECK(info->tracks[1].audio());
    CHECK(info->tracks[1].default_duration == 1024);

    const std::string seg = box("styp", "msdh" + be32(0)) + test_fragment(900000, 25, kSync) +
                            test_fragment(900000 + 90000, 25, kNonSync);
    auto media = mp4::parse_media(seg, *info, &why);
    INFO(why);
    REQUIRE(media);
    REQUIRE(media->fragments.size() == 2);
    CHECK(media->contiguous);
    CHECK(media->leading == 16);
    const auto* v = media->fragments[0].run(1);
    REQUIRE(v);
    CHECK(v->decode_time == 900000);
    CHECK(v->samples == 25);
    CHECK(v->duration == 25 * 3600);
    CHECK(v->bytes == 250);
    CHECK(v->first_sync);
    const auto* a = media->fragments[0].run(2);
    REQUIRE(a);
    CHECK(a->samples == 5);
    CHECK(a->duration == 5 * 1024);
    CHECK(a->first_sync);  // trex default flags 0: sync
    CHECK_FALSE(media->fragments[1].run(1)->first_sync);
    CHECK(media->fragments[1].begin == media->fragments[0].end);

    // 64-bit box sizes and size 0 (to the end) are boxes too.
    const std::string big = be32(1) + "free" + be32(0) + be32(24) + std::string(8, 'x');
    auto boxes = mp4::top_level_boxes(big + be32(0) + "free" + "tail");
    REQUIRE(boxes);
    REQUIRE(boxes->size() == 2);
    CHECK(boxes->at(0).size == 24);
    CHECK(boxes->at(0).header == 16);
    CHECK(boxes->at(1).size == 12);

    SECTION("broken and hostile boxes are refused, not read past") {
        CHECK_FALSE(mp4::top_level_boxes(be32(7) + "free"));                      // smaller than its header
        CHECK_FALSE(mp4::top_level_boxes(be32(100) + "free" + "abc"));            // beyond the data
        CHECK_FALSE(mp4::top_level_boxes(be32(1) + "free" + be32(0xffffffff) + be32(0xffffffff)));  // 64-bit huge
        CHECK_FALSE(mp4::top_level_boxes(be32(1) + "free" + be32(0)));            // 64-bit size cut short
        CHECK_FALSE(mp4::parse_init("garbage", &why));
        CHECK_FALSE(mp4::parse_init(box("moov", box("trak", "")), &why));
        // trun sample_count far beyond the bytes of its box
        CHECK_FALSE(mp4::parse_media(test_fragment(0, 3, kSync, 0xffffffffu), *info, &why));
        CHECK(why.find("more samples") != std::string::npos);
        // samples larger than the mdat
        const std::string frag = test_fragment(0, 3, kSync);
        const std::string small = frag.substr(0, frag.size() - (3 * 10 + 20 + 8)) + box("mdat", "xx");
        REQUIRE(mp4::parse_media(frag, *info));
        CHECK_FALSE(mp4::parse_media(small, *info, &why));
        CHECK(why.find("larger than their mdat") != std::string::npos);
        // a fragment of a track the init lacks
        auto one_track = mp4::parse_init(box("moov", track(1, "vide", "avc1", 90000) + box("mvex", trex(1, 3600, 0, 0))));
        REQUIRE(one_track);
        CHECK_FALSE(mp4::parse_media(test_fragment(0, 3, kSync), *one_track, &why));
        // every truncation of a valid segment: refused or read within its bytes
        for (size_t n = 0; n < seg.size(); ++n) (void)mp4::parse_media(std::string_view(seg).substr(0, n), *info);
        for (size_t n = 0; n < init.size(); ++n) (void)mp4::parse_init(std::string_view(init).substr(0, n));
    }
}

TEST_CASE("fmp4: an MPEG-TS source remuxed to fMP4: one init section, keyframe-first fragments, EXTINF", "[fmp4]") {
    const Encode& e = h264_ts();
    std::vector<Out> out;
    Segmenter seg(2.0, collect(out));
    seg.set_container(Container::fmp4);
    for (size_t i = 0; i < e.segments.size(); ++i) {
        std::string data = e.segments[i];
        seg.set_source_date(std::nullopt);
        CHECK_FALSE(seg.write_ts_segment(data, i == 0, false));  // the TS passthrough is TS to TS only
        demux_into(seg, data, "mpegts", i == 0);
    }
    seg.flush();
    CHECK_FALSE(seg.passthrough());
    check_fmp4_output(out, AV_CODEC_ID_H264, AV_CODEC_ID_AAC);
    CHECK(seg.stream_info().codecs.find("avc1.") == 0);
    for (size_t i = 0; i + 1 < out.size(); ++i) CHECK(std::fabs(out[i].duration - 2.0) < 0.05);
    CHECK_FALSE(out.front().discontinuity);
}

TEST_CASE("fmp4: HEVC + AC-3 from MPEG-TS come out as hvc1 and ac-3 in fMP4", "[fmp4]") {
    const Encode& e = hevc_ac3_ts();
    std::vector<Out> out;
    Segmenter seg(2.0, collect(out));
    seg.set_container(Container::fmp4);
    for (size_t i = 0; i < e.segments.size(); ++i) {
        seg.set_source_date(std::nullopt);
        demux_into(seg, e.segments[i], "mpegts", i == 0);
    }
    seg.flush();
    check_fmp4_output(out, AV_CODEC_ID_HEVC, AV_CODEC_ID_AC3);
    auto info = mp4::parse_init(out.front().init->data);
    REQUIRE(info);
    REQUIRE(info->tracks.size() == 2);
    CHECK(mp4::fourcc_text(info->tracks[0].sample_entry) == "hvc1");
    CHECK(mp4::fourcc_text(info->tracks[1].sample_entry) == "ac-3");
    CHECK(seg.stream_info().codecs.find("hvc1.") == 0);
}

TEST_CASE("fmp4: E-AC-3 and Opus go from MPEG-TS to fMP4 (ec-3, Opus) and back", "[fmp4]") {
    const auto [codec, id, entry] = GENERATE(std::make_tuple(std::string("eac3"), AV_CODEC_ID_EAC3, std::string("ec-3")),
                                             std::make_tuple(std::string("libopus"), AV_CODEC_ID_OPUS, std::string("Opus")));
    INFO("audio " << codec);
    {  // MPEG-TS in, fMP4 out
        const Encode& e = h264_with(codec, false);
        std::vector<Out> out;
        Segmenter seg(2.0, collect(out));
        seg.set_container(Container::fmp4);
        for (size_t i = 0; i < e.segments.size(); ++i) {
            seg.set_source_date(std::nullopt);
            demux_into(seg, e.segments[i], "mpegts", i == 0);
        }
        seg.flush();
        check_fmp4_output(out, AV_CODEC_ID_H264, id);
        auto info = mp4::parse_init(out.front().init->data);
        REQUIRE(info);
        REQUIRE(info->tracks.size() == 2);
        CHECK(mp4::fourcc_text(info->tracks[1].sample_entry) == entry);
    }
    {  // fMP4 in, MPEG-TS out (the remux path)
        const Encode& e = h264_with(codec, true);
        std::vector<Out> out;
        Segmenter seg(2.0, collect(out));
        for (size_t i = 0; i < e.segments.size(); ++i) {
            std::string data = e.init + e.segments[i];
            seg.set_source_date(std::nullopt);
            CHECK_FALSE(seg.write_fmp4_segment(e.init, data, i == 0, true));  // MPEG-TS output: no passthrough
            demux_into(seg, e.init + e.segments[i], "mp4", i == 0);
        }
        seg.flush();
        REQUIRE(out.size() >= 3);
        for (size_t i = 0; i < out.size(); ++i) {
            INFO("segment " << i);
            CHECK(out[i].format == SegmentFormat::ts);
            const TsProbe probe = probe_ts(out[i].data);
            REQUIRE(probe.ok);
            CHECK(probe.video_streams == 1);
            CHECK(probe.audio_streams == 1);
            bool audio = false;
            for (const auto& pk : probe.packets) audio = audio || pk.type == AVMEDIA_TYPE_AUDIO;
            CHECK(audio);
        }
    }
}

TEST_CASE("fmp4: an HEVC fMP4 source is passed through with its hvc1 init section", "[fmp4]") {
    const Encode& e = hevc_fmp4();
    std::vector<Out> out;
    Segmenter seg(2.0, collect(out));
    seg.set_container(Container::fmp4);
    std::string source_fragments;
    for (size_t i = 0; i < e.segments.size(); ++i) {
        std::string data = e.init + e.segments[i];
        source_fragments += fragments_of(e.init, e.segments[i]);
        seg.set_source_date(std::nullopt);
        REQUIRE(seg.write_fmp4_segment(e.init, data, i == 0, true));
        CHECK(seg.passthrough());
    }
    seg.flush();
    REQUIRE(out.size() >= 3);
    std::string all;
    for (const auto& o : out) {
        REQUIRE(o.init);
        CHECK(o.init->data == e.init);
        CHECK(o.keyframe_start);
        all += o.data;
    }
    CHECK(all == source_fragments);
    auto info = mp4::parse_init(out.front().init->data);
    REQUIRE(info);
    CHECK(mp4::fourcc_text(info->tracks[0].sample_entry) == "hvc1");
    CHECK(seg.stream_info().codecs.find("hvc1.") == 0);
    const Mp4Probe p = probe_mp4(e.init + out.front().data);
    REQUIRE(p.ok);
    REQUIRE(p.video >= 0);
    CHECK(p.codecs[static_cast<size_t>(p.video)] == AV_CODEC_ID_HEVC);
}

TEST_CASE("fmp4: an fMP4 source is passed through: the source's init section and moof/mdat bytes", "[fmp4]") {
    const Encode& e = h264_fmp4();
    std::vector<Out> out;
    Segmenter seg(2.0, collect(out));
    seg.set_container(Container::fmp4);
    std::string source_fragments;
    for (size_t i = 0; i < e.segments.size(); ++i) {
        std::string data = e.init + e.segments[i];  // as the HLS client hands it over
        source_fragments += fragments_of(e.init, e.segments[i]);
        seg.set_source_date(std::nullopt);
        REQUIRE(seg.write_fmp4_segment(e.init, data, i == 0, true));
        CHECK(seg.passthrough());
    }
    seg.flush();
    REQUIRE(out.size() >= 3);
    std::string all;
    for (const auto& o : out) {
        CHECK(o.format == SegmentFormat::fmp4);
        REQUIRE(o.init);
        CHECK(o.init->data == e.init);  // re-served as it is
        CHECK(o.keyframe_start);
        all += o.data;
    }
    CHECK(all == source_fragments);  // no remux: the source's own fragments
    // 1 s source segments into 2 s output segments: two each, EXTINF their sum.
    for (size_t i = 0; i + 1 < out.size(); ++i) {
        INFO("segment " << i);
        CHECK(std::fabs(out[i].duration - (e.durations[2 * i] + e.durations[2 * i + 1])) <= 0.05);
        const Mp4Probe p = probe_mp4(e.init + out[i].data);
        REQUIRE(p.ok);
        CHECK(p.first_video_key);
        CHECK(std::fabs(p.reference_duration - out[i].duration) <= 0.05);
    }
    CHECK(seg.stream_info().codecs.find("avc1.") == 0);
    CHECK(seg.stream_info().width == 320);
    TempDir dir("fmp4-pass");
    spill(dir.path / "all.mp4", e.init + all);
    const Played played = play((dir.path / "all.mp4").string());
    INFO(played.errors);
    CHECK(played.status == 0);
    CHECK(played.errors.empty());

    SECTION("a source segment that is a whole output segment is moved") {
        std::vector<Out> one;
        Segmenter s1(1.0, collect(one));
        s1.set_container(Container::fmp4);
        for (size_t i = 0; i < 3; ++i) {
            std::string data = e.segments[i];  // without the init in front
            REQUIRE(s1.write_fmp4_segment(e.init, data, i == 0, true));
        }
        REQUIRE(one.size() == 3);
        for (size_t i = 0; i < 3; ++i) CHECK(one[i].data == e.segments[i]);
    }
    SECTION("without EXT-X-INDEPENDENT-SEGMENTS, a segment is published with its source segment once two began with a sync sample") {
        std::vector<Out> one;
        Segmenter s1(1.0, collect(one));
        s1.set_container(Container::fmp4);
        for (size_t i = 0; i < 4; ++i) {
            std::string data = e.segments[i];
            REQUIRE(s1.write_fmp4_segment(e.init, data, i == 0, false));
            INFO("after source segment " << i);
            // The first waits for the next sync fragment (nothing says where the source cuts yet).
            CHECK(one.size() == (i == 0 ? 0u : i + 1));
        }
        for (size_t i = 0; i < one.size(); ++i) {
            CHECK(one[i].data == e.segments[i]);
            CHECK(one[i].keyframe_start);
        }
    }
}

TEST_CASE("fmp4: a changed source init section is a new init version behind a discontinuity", "[fmp4]") {
    const Encode& a = h264_fmp4();
    const Encode& b = h264_fmp4_small();
    std::vector<Out> out;
    Segmenter seg(1.0, collect(out));
    seg.set_container(Container::fmp4);
    for (size_t i = 0; i < 3; ++i) {
        std::string data = a.segments[i];
        REQUIRE(seg.write_fmp4_segment(a.init, data, i == 0, true));
    }
    for (size_t i = 0; i < 3; ++i) {
        std::string data = b.segments[i];
        REQUIRE(seg.write_fmp4_segment(b.init, data, false, true));  // no tag: the init says it
    }
    seg.flush();
    REQUIRE(out.size() == 6);
    CHECK(out[0].init->data == a.init);
    CHECK(out[2].init == out[0].init);
    CHECK_FALSE(out[3].init == out[0].init);
    CHECK(out[3].init->data == b.init);
    CHECK(out[3].init->version > out[0].init->version);
    CHECK(out[3].discontinuity);
    for (size_t i : {1u, 2u, 4u, 5u}) CHECK_FALSE(out[i].discontinuity);
    CHECK(seg.stream_info().width == 160);
    // The same init section again (after a tagged discontinuity): a discontinuity, the same bytes.
    std::string data = a.segments[3];
    REQUIRE(seg.write_fmp4_segment(a.init, data, true, true));
    REQUIRE(out.size() == 7);
    CHECK(out[6].discontinuity);
    CHECK(out[6].init->data == a.init);
}

TEST_CASE("fmp4: an fMP4 source with MPEG-TS output is remuxed as before", "[fmp4]") {
    const Encode& e = h264_fmp4();
    std::vector<Out> out;
    Segmenter seg(2.0, collect(out));
    for (size_t i = 0; i < e.segments.size(); ++i) {
        std::string data = e.init + e.segments[i];
        CHECK_FALSE(seg.write_fmp4_segment(e.init, data, i == 0, true));
        CHECK(data == e.init + e.segments[i]);  // untouched
        seg.set_source_date(std::nullopt);
        demux_into(seg, data, "mp4", i == 0);
    }
    seg.flush();
    REQUIRE(out.size() >= 3);
    for (const auto& o : out) {
        CHECK(o.format == SegmentFormat::ts);
        CHECK_FALSE(o.init);
        const TsProbe p = probe_ts(o.data);
        REQUIRE(p.ok);
        CHECK(p.first_video_key());
    }
}

TEST_CASE("fmp4: hostile fMP4 segments never crash: refused with a note, remuxed or reported", "[fmp4]") {
    const Encode& e = h264_fmp4();
    const std::string good = e.segments[1];
    auto info = mp4::parse_init(e.init);
    REQUIRE(info);
    auto media = mp4::parse_media(good, *info);
    REQUIRE(media);
    // Where the first moof's first trun sits, to break its sample_count.
    size_t trun = good.find("trun");
    REQUIRE(trun != std::string::npos);
    std::vector<std::pair<std::string, std::string>> cases;
    auto put32 = [](std::string s, size_t at, uint32_t v) {
        if (at + 4 <= s.size()) s.replace(at, 4, be32(v));
        return s;
    };
    const size_t first = media->fragments.front().begin;  // the moof
    cases.emplace_back("truncated", good.substr(0, good.size() / 2));
    cases.emplace_back("moof size 0", put32(good, first, 0));
    cases.emplace_back("moof size 1, 64-bit huge", put32(put32(good, first, 1), first + 8, 0x7fffffff));
    cases.emplace_back("moof size huge", put32(good, first, 0xfffffff0));
    cases.emplace_back("trun sample_count huge", put32(good, trun + 8, 0xffffffff));
    cases.emplace_back("garbage", std::string(4096, '\x5a'));
    std::mt19937 rng(12);
    for (int k = 0; k < 40; ++k) {
        std::string s = good;
        for (int j = 0; j < 8; ++j) s[rng() % std::min<size_t>(s.size(), 2048)] = static_cast<char>(rng());
        cases.emplace_back("flipped bytes " + std::to_string(k), s);
    }
    for (const auto& [name, bytes] : cases) {
        INFO(name);
        std::vector<Out> out;
        Segmenter seg(1.0, collect(out));
        seg.set_container(Container::fmp4);
        std::string ok0 = e.segments[0];
        REQUIRE(seg.write_fmp4_segment(e.init, ok0, true, true));
        std::string data = e.init + bytes;
        if (!seg.write_fmp4_segment(e.init, data, false, true)) {
            bool noted = false;
            for (const auto& n : seg.notes()) noted |= n.find("fMP4 passthrough not possible") != std::string::npos;
            CHECK(noted);
            CHECK(data == e.init + bytes);
            try {
                demux_into(seg, data, "mp4", false);  // the fallback the HLS client takes
            } catch (const std::exception&) {  // a SourceError: the client reports it
            }
        }
        std::string next = e.segments[2];
        (void)seg.write_fmp4_segment(e.init, next, false, true);
        seg.flush();
        CHECK(out.size() >= 1);
        for (const auto& o : out) CHECK(std::isfinite(o.duration));
    }
    SECTION("an encrypted sample entry is not passed") {
        std::vector<Out> out;
        Segmenter seg(1.0, collect(out));
        seg.set_container(Container::fmp4);
        std::string data = test_fragment(0, 3, kSync);
        CHECK_FALSE(seg.write_fmp4_segment(test_init("encv"), data, true, true));
        REQUIRE_FALSE(seg.notes().empty());
        CHECK(seg.notes().back().find("encrypted") != std::string::npos);
    }
}

TEST_CASE("fmp4: through the engine, an fMP4 origin is passed through and a TS origin remuxed to fMP4", "[fmp4]") {
    SECTION("fMP4 in, fMP4 out") {
        const Encode& e = h264_fmp4();
        Fmp4Origin origin(e, std::chrono::milliseconds(250));
        EngineSettings settings = quick_settings(2.0, 6);
        settings.hls.container = Container::fmp4;
        Engine engine(settings);
        const auto c = engine.add_channel(channel("Fmp4 pass", {origin.url()}));
        engine.start(c.id);
        REQUIRE(wait_until([&] { return engine.status(c.id).segments_published >= 3; }, std::chrono::seconds(30)));
        const std::string text = engine_text(engine, c.id, "index.m3u8");
        INFO(text);
        CHECK(text.find("#EXT-X-MAP:URI=\"init_") != std::string::npos);
        CHECK(text.find(".m4s") != std::string::npos);
        TempDir dir("fmp4-engine-pass");
        auto p = mirror(engine, c.id, dir.path);
        REQUIRE(p.segments.size() >= 3);
        REQUIRE(p.segments[0].map);
        const std::string init_name = p.segments[0].map->uri.substr(p.segments[0].map->uri.rfind('/') + 1);
        auto init = engine.read(c.id, init_name);
        REQUIRE(init);
        CHECK(std::string(init->bytes()) == e.init);
        CHECK(init->content_type == kInitContentType);
        auto s0 = engine.read(c.id, p.segments[0].uri.substr(p.segments[0].uri.rfind('/') + 1));
        REQUIRE(s0);
        CHECK(s0->content_type == content_type_of(SegmentFormat::fmp4));
        for (const auto& s : p.segments) {
            auto r = engine.read(c.id, s.uri.substr(s.uri.rfind('/') + 1));
            REQUIRE(r);
            const Mp4Probe probe = probe_mp4(e.init + std::string(r->bytes()));
            REQUIRE(probe.ok);
            CHECK(probe.first_video_key);
            CHECK(std::fabs(probe.reference_duration - s.duration) <= 0.05);
        }
        const Played played = play((dir.path / "index.m3u8").string());
        INFO(played.errors);
        CHECK(played.status == 0);
        CHECK(played.errors.empty());
    }
    SECTION("TS in, fMP4 out") {
        LiveOrigin origin(live_media(), {.speed = 4.0});
        origin.start();
        EngineSettings settings = quick_settings(2.0, 6);
        settings.hls.container = Container::fmp4;
        Engine engine(settings);
        const auto c = engine.add_channel(channel("Ts to fmp4", {origin.url()}));
        engine.start(c.id);
        REQUIRE(wait_until([&] { return engine.status(c.id).segments_published >= 3; }, std::chrono::seconds(30)));
        TempDir dir("fmp4-engine-remux");
        auto p = mirror(engine, c.id, dir.path);
        REQUIRE(p.segments.size() >= 3);
        REQUIRE(p.segments[0].map);
        auto init = engine.read(c.id, p.segments[0].map->uri.substr(p.segments[0].map->uri.rfind('/') + 1));
        REQUIRE(init);
        for (const auto& s : p.segments) {
            auto r = engine.read(c.id, s.uri.substr(s.uri.rfind('/') + 1));
            REQUIRE(r);
            const Mp4Probe probe = probe_mp4(std::string(init->bytes()) + std::string(r->bytes()));
            REQUIRE(probe.ok);
            CHECK(probe.video >= 0);
            CHECK(probe.audio >= 0);
            CHECK(probe.first_video_key);
            CHECK(std::fabs(probe.reference_duration - s.duration) <= 0.05);
        }
        const Played played = play((dir.path / "index.m3u8").string());
        INFO(played.errors);
        CHECK(played.status == 0);
        CHECK(played.errors.empty());
        CHECK(engine.status(c.id).stream.codecs.find("avc1.") == 0);
    }
}
