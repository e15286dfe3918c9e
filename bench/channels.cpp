// Benchmarks 1, 4 and 5: N live channels from a loopback live HLS origin, restreamed (a) by
// hlsrelay-server, (b) by one `ffmpeg -c copy -f hls -hls_time 2 -hls_list_size 5 -hls_flags
// delete_segments` per channel, one after the other in the same run, each on an origin of its own
// playing the same media. See docs/benchmarks.md for the definitions. --row picks the source and the
// columns:
//   channels (default): a 720p30 MPEG-TS source; hlsrelay vs ffmpeg;
//   ladder: a 3-variant + 2-audio-language presentation (MPEG-TS, or fMP4 with --ladder-fmp4);
//           hlsrelay with renditions=all vs ffmpeg keeping every rendition (-map, -var_stream_map);
//   fmp4: the 720p30 source as fMP4 HLS; hlsrelay container=fmp4 (passthrough), container=ts (the
//         remux path), ffmpeg (fMP4 out), and hlsrelay on the MPEG-TS source (today's passthrough,
//         the reference of the 1.5x target);
//   delay: the 720p30 source; hlsrelay reloading source playlists aligned to the source's
//          publications (the default) vs on RFC 8216's plain schedule (--reload-schedule rfc);
//   served: the 720p30 source; hlsrelay vs ffmpeg plus an nginx serving its files, the players
//           fetching over HTTP from both (like for like: the reference's CPU includes its server).
//
//   hlsrelay_bench_channels [N=10] [--row channels|ladder|fmp4|delay|served] [--ladder-fmp4] [--warmup S]
//                           [--cpu-window S] [--delay-window S] [--sample K] [--only hlsrelay|ffmpeg]
//                           [--ffmpeg-max M] [--server PATH] [--poll S]
#include "origin.hpp"
#include "util.hpp"

#include "support/media.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

#ifndef HLSRELAY_SERVER_BIN
#define HLSRELAY_SERVER_BIN "hlsrelay-server"
#endif

namespace fs = std::filesystem;
using namespace hlsrelay::bench;

namespace {

struct Options {
    int n = 10;
    double warmup = 10;        // from the start request on: first playable playlists, then settling
    double cpu_window = 20;    // CPU and PSS; players poll playlists once a second
    double delay_window = 20;  // publish delay; players poll every `poll` s and fetch every segment
    double poll = 0.1;
    int sample = 50;           // channels polled like players (evenly spread); the rest checked at the end
    int ffmpeg_max = 200;      // the ffmpeg reference runs at most this many channels (memory, CPU)
    std::string only;          // "", "hlsrelay" or "ffmpeg"
    std::string server = HLSRELAY_SERVER_BIN;
    std::string row = "channels";  // "channels", "ladder" or "fmp4"
    bool ladder_fmp4 = false;      // the ladder row's source in fMP4 instead of MPEG-TS
};

// ---------------------------------------------------------------------------------------------------
// Sources: what one origin channel plays.

struct Source {
    std::string name;         // "720p30 MPEG-TS", ...
    OriginMedia media;
    int renditions = 1;       // renditions per channel (video variants + audio renditions)
    bool ladder = false;      // a multivariant presentation: v0 v1 v2 (highest first), a0 a1 (group "aud")
    bool fmp4 = false;
    double mbps = 0;          // all renditions together
    double spread = 1.0;      // MultiOrigin's spread of the channels' starting points
    std::string description;
};

std::optional<std::string> read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    if (!in) return std::nullopt;
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

std::string must_read(const fs::path& p) {
    auto body = read_file(p);
    if (!body) {
        std::fprintf(stderr, "cannot read %s\n", p.c_str());
        std::exit(1);
    }
    return std::move(*body);
}

// Runs a command to completion (output to `log`); exits on failure.
void run_or_die(const std::vector<std::string>& args, const std::string& log) {
    const pid_t pid = spawn(args, log);
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        std::fprintf(stderr, "%s failed (status %d); see %s\n", args[0].c_str(), status, log.c_str());
        std::exit(1);
    }
}

// A VOD media playlist made by ffmpeg: its init section (fMP4) and segments with their durations.
struct VodPlaylist {
    std::string init;
    std::vector<std::string> files;
    std::vector<double> durations;
};

VodPlaylist read_vod(const fs::path& playlist) {
    VodPlaylist v;
    std::istringstream in(must_read(playlist));
    std::string line;
    double pending = -1;
    while (std::getline(in, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.rfind("#EXT-X-MAP:URI=\"", 0) == 0) {
            const auto end = line.find('"', 16);
            v.init = must_read(playlist.parent_path() / line.substr(16, end - 16));
        } else if (line.rfind("#EXTINF:", 0) == 0) {
            pending = std::atof(line.c_str() + 8);
        } else if (!line.empty() && line[0] != '#' && pending >= 0) {
            v.files.push_back(must_read(playlist.parent_path() / line));
            v.durations.push_back(pending);
            pending = -1;
        }
    }
    // A trailing runt (AAC framing leaves one in audio-only renditions) would break the alignment.
    while (!v.durations.empty() && v.durations.back() < 1.0) {
        v.durations.pop_back();
        v.files.pop_back();
    }
    return v;
}

// Makes `dir` with `make` unless a complete copy (marked by a "done" file) is already there.
void cached(const fs::path& dir, const std::function<void(const fs::path&)>& make) {
    if (fs::exists(dir / "done")) return;
    const fs::path tmp = dir.string() + ".tmp-" + std::to_string(getpid());
    fs::remove_all(tmp);
    fs::create_directories(tmp);
    make(tmp);
    std::ofstream(tmp / "done") << "ok\n";
    std::error_code ec;
    fs::rename(tmp, dir, ec);
    if (ec) fs::remove_all(tmp);  // another run made it meanwhile
}

double mbps_of(const std::vector<const std::vector<std::string>*>& sets, const std::vector<double>& durations) {
    double bytes = 0, seconds = 0;
    for (const auto* files : sets)
        for (const auto& f : *files) bytes += static_cast<double>(f.size());
    for (double d : durations) seconds += d;
    return seconds > 0 ? bytes * 8 / seconds / 1e6 : 0;
}

// The channel benchmark's minute of 720p30 H.264 + AAC; as MPEG-TS or repackaged (-c copy) as fMP4 HLS.
Source single_source(bool fmp4) {
    hlsrelay::test::MediaSpec spec;
    spec.seconds = 60;
    spec.segment_seconds = 2;
    spec.fps = 30;
    spec.gop_frames = 60;
    spec.width = 1280;
    spec.height = 720;
    spec.video_kbps = 2400;
    spec.name = "bench-720p30-2500k";
    const auto& media = hlsrelay::test::make_media(spec);
    Source s;
    s.fmp4 = fmp4;
    OriginRendition r;
    if (!fmp4) {
        s.name = "720p30 MPEG-TS";
        for (const auto& f : media.segment_files) r.files.push_back(must_read(f));
        s.media.durations = media.durations;
    } else {
        s.name = "720p30 fMP4";
        const fs::path dir = fs::path(hlsrelay::test::media_root()) / "bench-720p30-2500k-fmp4";
        cached(dir, [&](const fs::path& out) {
            run_or_die({"ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i", media.single_file, "-c",
                        "copy", "-bsf:a", "aac_adtstoasc", "-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod", "-hls_segment_type", "fmp4",
                        "-hls_fmp4_init_filename", "init.mp4", "-hls_segment_filename", (out / "seg_%05d.m4s").string(),
                        (out / "index.m3u8").string()},
                       (out / "ffmpeg.log").string());
        });
        VodPlaylist v = read_vod(dir / "index.m3u8");
        r.files = std::move(v.files);
        r.init = std::move(v.init);
        s.media.durations = std::move(v.durations);
    }
    s.media.renditions.push_back(std::move(r));
    s.mbps = mbps_of({&s.media.renditions[0].files}, s.media.durations);
    char d[256];
    std::snprintf(d, sizeof d, "%dx%d@%d H.264 + AAC in %s, %.2f Mbit/s, %.0f s segments, %zu files looped", spec.width,
                  spec.height, spec.fps, fmp4 ? "fMP4 (one muxed rendition)" : "MPEG-TS", s.mbps, spec.segment_seconds,
                  s.media.durations.size());
    s.description = d;
    return s;
}

// A ladder made with ffmpeg once: 640x360 1 Mbit/s, 426x240 500 kbit/s, 256x144 200 kbit/s (H.264 main,
// 2 s GOPs aligned) and two AAC languages of 96 kbit/s in their own rendition group; 2 s segments.
// Five minutes, and the channels start in its first two: ffmpeg 5.1 reading a multivariant live
// source ends (writes EXT-X-ENDLIST and exits) at the loop's EXT-X-DISCONTINUITY, so no channel may
// reach the wrap during a run (at least 174 s from the origin's start).
constexpr int kLadderSeconds = 300;
constexpr double kLadderSpread = 0.4;
struct LadderRung {
    const char* dir;
    int width, height, kbps;
};
constexpr LadderRung kRungs[] = {{"v0", 640, 360, 1000}, {"v1", 426, 240, 500}, {"v2", 256, 144, 200}};
constexpr const char* kAudioDirs[] = {"a0", "a1"};

Source ladder_source(bool fmp4) {
    const fs::path dir = fs::path(hlsrelay::test::media_root()) /
                         ("bench-ladder-" + std::to_string(kLadderSeconds) + (fmp4 ? "s-fmp4" : "s-ts"));
    cached(dir, [&](const fs::path& out) {
        std::vector<std::string> a = {"ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
                                      "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30",
                                      "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
                                      "-f", "lavfi", "-i", "sine=frequency=660:sample_rate=48000",
                                      "-filter_complex", "[0:v]split=3[a][b][c];[b]scale=426:240[b2];[c]scale=256:144[c2]",
                                      "-map", "[a]", "-map", "[b2]", "-map", "[c2]", "-map", "1:a", "-map", "2:a",
                                      "-t", std::to_string(kLadderSeconds), "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "main",
                                      "-level", "3.0", "-pix_fmt", "yuv420p", "-g", "60", "-keyint_min", "60",
                                      "-sc_threshold", "0"};
        for (int i = 0; i < 3; ++i) {
            const std::string k = std::to_string(kRungs[i].kbps);
            const std::string v = ":v:" + std::to_string(i);
            a.insert(a.end(), {"-b" + v, k + "k", "-maxrate" + v, k + "k", "-bufsize" + v, std::to_string(2 * kRungs[i].kbps) + "k"});
        }
        a.insert(a.end(), {"-c:a", "aac", "-b:a", "96k", "-ac", "2", "-f", "hls", "-hls_time", "2", "-hls_playlist_type",
                           "vod", "-hls_segment_type", fmp4 ? "fmp4" : "mpegts"});
        if (fmp4) a.insert(a.end(), {"-hls_fmp4_init_filename", "init.mp4"});
        a.insert(a.end(), {"-hls_segment_filename", (out / (fmp4 ? "%v/seg_%05d.m4s" : "%v/seg_%05d.ts")).string(),
                           "-var_stream_map", "v:0,name:v0 v:1,name:v1 v:2,name:v2 a:0,name:a0 a:1,name:a1",
                           (out / "%v/index.m3u8").string()});
        run_or_die(a, (out / "ffmpeg.log").string());
    });
    Source s;
    s.name = fmp4 ? "ladder fMP4" : "ladder MPEG-TS";
    s.ladder = true;
    s.spread = kLadderSpread;
    s.fmp4 = fmp4;
    std::vector<VodPlaylist> vods;
    for (const auto& r : kRungs) vods.push_back(read_vod(dir / r.dir / "index.m3u8"));
    for (const char* d : kAudioDirs) vods.push_back(read_vod(dir / d / "index.m3u8"));
    std::size_t count = SIZE_MAX;
    for (const auto& v : vods) count = std::min(count, v.files.size());
    if (count == 0 || count == SIZE_MAX) {
        std::fprintf(stderr, "the ladder under %s has no segments\n", dir.c_str());
        std::exit(1);
    }
    s.media.durations.assign(vods[0].durations.begin(), vods[0].durations.begin() + static_cast<std::ptrdiff_t>(count));
    const char* dirs[] = {kRungs[0].dir, kRungs[1].dir, kRungs[2].dir, kAudioDirs[0], kAudioDirs[1]};
    for (std::size_t i = 0; i < vods.size(); ++i) {
        vods[i].files.resize(count);
        s.media.renditions.push_back({dirs[i], std::move(vods[i].files), std::move(vods[i].init)});
    }
    s.renditions = static_cast<int>(s.media.renditions.size());
    // The multivariant playlist, highest variant first; BANDWIDTH is the peak segment bit rate of the
    // variant with its group's larger audio rendition, AVERAGE-BANDWIDTH the mean.
    auto rates = [&](std::size_t r) {
        double peak = 0, bytes = 0, seconds = 0;
        for (std::size_t k = 0; k < count; ++k) {
            const double b = static_cast<double>(s.media.renditions[r].files[k].size() +
                                                 std::max(s.media.renditions[3].files[k].size(), s.media.renditions[4].files[k].size()));
            peak = std::max(peak, b * 8 / s.media.durations[k]);
            bytes += b;
            seconds += s.media.durations[k];
        }
        return std::pair<long long, long long>{std::llround(peak), std::llround(bytes * 8 / seconds)};
    };
    std::string m = "#EXTM3U\n#EXT-X-VERSION:" + std::string(fmp4 ? "7" : "4") + "\n#EXT-X-INDEPENDENT-SEGMENTS\n"
                    "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"English\",LANGUAGE=\"en\",DEFAULT=YES,AUTOSELECT=YES,"
                    "CHANNELS=\"2\",URI=\"a0/index.m3u8\"\n"
                    "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"Fran\u00e7ais\",LANGUAGE=\"fr\",DEFAULT=NO,AUTOSELECT=YES,"
                    "CHANNELS=\"2\",URI=\"a1/index.m3u8\"\n";
    for (std::size_t i = 0; i < 3; ++i) {
        const auto [peak, avg] = rates(i);
        m += "#EXT-X-STREAM-INF:BANDWIDTH=" + std::to_string(peak) + ",AVERAGE-BANDWIDTH=" + std::to_string(avg) +
             ",CODECS=\"avc1.4d401e,mp4a.40.2\",RESOLUTION=" + std::to_string(kRungs[i].width) + "x" +
             std::to_string(kRungs[i].height) + ",FRAME-RATE=30.000,AUDIO=\"aud\"\n" + kRungs[i].dir + "/index.m3u8\n";
    }
    s.media.master = std::move(m);
    std::vector<const std::vector<std::string>*> sets;
    for (const auto& r : s.media.renditions) sets.push_back(&r.files);
    s.mbps = mbps_of(sets, s.media.durations);
    char d[512];
    std::snprintf(d, sizeof d,
                  "3 H.264 variants 640x360 1 Mbit/s, 426x240 500 kbit/s, 256x144 200 kbit/s (30 fps, 2 s GOPs) + 2 AAC "
                  "languages of 96 kbit/s in their own group, %s, %.2f Mbit/s in all, 2 s segments, %zu files per rendition "
                  "looped, channels starting in the first %.0f s",
                  fmp4 ? "fMP4" : "MPEG-TS", s.mbps, count, kLadderSpread * kLadderSeconds);
    s.description = d;
    return s;
}

void sleep_s(double s) {
    if (s > 0) std::this_thread::sleep_for(std::chrono::duration<double>(s));
}

Clock::time_point at(Clock::time_point t, double s) {
    return t + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

struct Entry {
    int64_t sequence;
    double duration;
    std::string uri;
};

struct Playlist {
    int64_t media_sequence = 0;
    std::vector<Entry> entries;
};

Playlist parse_playlist(const std::string& text) {
    Playlist p;
    std::istringstream in(text);
    std::string line;
    double pending = -1;
    std::vector<std::pair<double, std::string>> raw;
    while (std::getline(in, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.rfind("#EXT-X-MEDIA-SEQUENCE:", 0) == 0) p.media_sequence = std::atoll(line.c_str() + 22);
        else if (line.rfind("#EXTINF:", 0) == 0) pending = std::atof(line.c_str() + 8);
        else if (!line.empty() && line[0] != '#' && pending >= 0) {
            raw.emplace_back(pending, line);
            pending = -1;
        }
    }
    for (std::size_t i = 0; i < raw.size(); ++i)
        p.entries.push_back({p.media_sequence + static_cast<int64_t>(i), raw[i].first, raw[i].second});
    return p;
}

// How a player reaches one channel of a system under test.
class Reader {
public:
    virtual ~Reader() = default;
    virtual std::optional<std::string> playlist() = 0;  // nullopt: 404 / missing
    virtual int segment(const std::string& uri) = 0;     // 200, 404, or 0 (no answer)
};

class System {
public:
    virtual ~System() = default;
    virtual std::string name() const = 0;
    virtual int channels() const = 0;
    // Starts every channel at once; fills the time each channel's start was requested.
    virtual void start_all(std::vector<Clock::time_point>& requested) = 0;
    virtual std::vector<pid_t> pids() const = 0;
    virtual std::unique_ptr<Reader> reader(int channel) = 0;
    // Channels whose newest segment is at most `max_age` seconds old.
    virtual int live_channels(double max_age) = 0;
    // Renditions (over every channel) whose newest segment is at most `max_age` seconds old: for
    // hlsrelay from status `renditions` (a channel without them counts as one), for ffmpeg from the
    // mtime of each rendition's playlist.
    virtual int live_renditions(double max_age) = 0;
    // What the system reports it runs, for the table: hlsrelay's status `container` and the number of
    // entries in a channel's `renditions`; "" when it says nothing.
    virtual std::string reported() { return ""; }
};

// A channel's playlist names a segment relative to itself ("seg_1.ts", or "v0/seg_1.ts" in the
// top-level index.m3u8 of a presentation) or by absolute path.
std::string resolve(const std::string& base, const std::string& uri) {
    if (!uri.empty() && uri[0] == '/') return uri;
    if (const auto scheme = uri.find("://"); scheme != std::string::npos) {
        const auto path = uri.find('/', scheme + 3);
        return path == std::string::npos ? "/" : uri.substr(path);
    }
    return base + uri;
}

// ---------------------------------------------------------------------------------------------------
// (a) hlsrelay-server

class ServerReader : public Reader {
public:
    ServerReader(uint16_t port, int channel) : ServerReader(port, "/hls_streams/c" + std::to_string(channel) + "/") {}
    // Any HTTP server on 127.0.0.1:port with the channel's files under `base` ("/3/").
    ServerReader(uint16_t port, std::string base) : http_(port), base_(std::move(base)) {}
    std::optional<std::string> playlist() override {
        auto r = http_.get(base_ + "index.m3u8");
        if (r.status != 200) return std::nullopt;
        return std::move(r.body);
    }
    int segment(const std::string& uri) override { return http_.get(resolve(base_, uri)).status; }

private:
    HttpClient http_;
    std::string base_;
};

// Per-channel settings of an hlsrelay column (channel JSON fields; "" leaves the engine default).
struct ChannelFields {
    std::string container;   // "ts" or "fmp4"
    std::string renditions;  // e.g. "all"
    std::string reload_schedule = "aligned";  // --reload-schedule
};

class ServerSystem : public System {
public:
    ServerSystem(const Options& o, const MultiOrigin& origin, const std::vector<int>& origin_of, const fs::path& work,
                 std::string label = "hlsrelay", const ChannelFields& fields = {})
        : n_(static_cast<int>(origin_of.size())), label_(std::move(label)) {
        const int n = n_;
        fs::create_directories(work);
        const fs::path list = work / "channels.json";
        nlohmann::json channels = nlohmann::json::array();
        for (int c = 0; c < n; ++c) {
            nlohmann::json ch = {{"id", "c" + std::to_string(c)},
                                 {"name", "Bench " + std::to_string(c)},
                                 {"group", "bench"},
                                 {"url", origin.url(origin_of[static_cast<std::size_t>(c)])}};
            if (!fields.container.empty()) ch["container"] = fields.container;
            if (!fields.renditions.empty()) ch["renditions"] = fields.renditions;
            channels.push_back(std::move(ch));
        }
        std::ofstream(list) << nlohmann::json{{"channels", channels}}.dump(1) << "\n";
        port_ = free_port();
        log_ = (work / "hlsrelay-server.log").string();
        pid_ = spawn({o.server, "--channels", list.string(), "--listen", "127.0.0.1:" + std::to_string(port_),
                      "--log-level", "warn", "--max-connections", std::to_string(std::max(2048, 4 * n + 256)),
                      "--max-connections-per-client", "0",  // every simulated viewer is 127.0.0.1
                      "--reload-schedule", fields.reload_schedule},
                     log_);
        HttpClient http(port_, 2.0);
        for (int i = 0; i < 300; ++i) {
            if (http.get("/healthz").status == 200) return;
            sleep_s(0.1);
        }
        std::fprintf(stderr, "hlsrelay-server did not come up; see %s\n", log_.c_str());
        std::exit(1);
    }
    ~ServerSystem() override { terminate(pid_); }
    std::string name() const override { return label_; }
    int channels() const override { return n_; }
    void start_all(std::vector<Clock::time_point>& requested) override {
        requested.assign(static_cast<std::size_t>(n_), {});
        const int lanes = std::min(n_, 16);
        std::vector<std::thread> threads;
        std::atomic<int> failed{0};
        for (int l = 0; l < lanes; ++l)
            threads.emplace_back([&, l] {
                HttpClient http(port_, 10.0);
                for (int c = l; c < n_; c += lanes) {
                    requested[static_cast<std::size_t>(c)] = Clock::now();
                    if (http.get("/api/v1/channels/start-stream/c" + std::to_string(c)).status != 200) ++failed;
                }
            });
        for (auto& t : threads) t.join();
        if (failed) std::fprintf(stderr, "  hlsrelay: %d start requests failed\n", failed.load());
    }
    std::vector<pid_t> pids() const override { return {pid_}; }
    std::unique_ptr<Reader> reader(int channel) override { return std::make_unique<ServerReader>(port_, channel); }
    int live_channels(double max_age) override {
        int live = 0;
        for (const auto& s : streams())
            if (fresh(s, max_age)) ++live;
        return live;
    }
    int live_renditions(double max_age) override {
        int live = 0;
        for (const auto& s : streams()) {
            const auto r = s.find("renditions");
            if (r == s.end() || !r->is_array() || r->empty()) live += fresh(s, max_age) ? 1 : 0;
            else
                for (const auto& x : *r) live += fresh(x, max_age) ? 1 : 0;
        }
        return live;
    }
    std::string reported() override {
        const auto all = streams();
        if (all.empty()) return "no status";
        const auto& s = all.front();
        const auto c = s.find("container");
        const auto r = s.find("renditions");
        return "container " + (c != s.end() && c->is_string() ? c->get<std::string>() : std::string("(absent)")) +
               ", renditions " + (r != s.end() && r->is_array() ? std::to_string(r->size()) : std::string("(absent)"));
    }

private:
    std::vector<nlohmann::json> streams() {
        HttpClient http(port_, 10.0);
        const auto r = http.get("/api/v1/channels/streams-status");
        const auto j = nlohmann::json::parse(r.body, nullptr, false);
        std::vector<nlohmann::json> out;
        if (j.is_object() && j.contains("streams") && j["streams"].is_array())
            for (const auto& s : j["streams"]) out.push_back(s);
        return out;
    }
    static bool fresh(const nlohmann::json& s, double max_age) {
        const auto a = s.find("newest_segment_age_seconds");
        return a != s.end() && a->is_number() && a->get<double>() <= max_age;
    }

    int n_;
    std::string label_;
    uint16_t port_ = 0;
    pid_t pid_ = -1;
    std::string log_;
};

// ---------------------------------------------------------------------------------------------------
// (b) one ffmpeg per channel

class FileReader : public Reader {
public:
    explicit FileReader(fs::path dir) : dir_(std::move(dir)) {}
    std::optional<std::string> playlist() override { return read_file(dir_ / "index.m3u8"); }
    int segment(const std::string& uri) override {
        std::ifstream in(dir_ / uri, std::ios::binary);
        if (!in) return 404;
        static thread_local std::vector<char> buf(1 << 20);
        while (in.read(buf.data(), static_cast<std::streamsize>(buf.size())) || in.gcount() > 0) {
        }
        return 200;
    }

private:
    fs::path dir_;
};

// ffmpeg's -loglevel for the reference processes (their log is ffmpeg.log of the column's directory).
const char* ffmpeg_loglevel() {
    const char* l = std::getenv("HLSRELAY_BENCH_FFMPEG_LOGLEVEL");
    return l && *l ? l : "error";
}

// The replaced design's ffmpeg per channel. A ladder keeps every rendition: every input stream mapped,
// one output rendition each (-var_stream_map: v0 v1 v2 with audio group "aud", a0 a1 in it) and a
// master playlist; fMP4 output with -hls_segment_type fmp4.
class FfmpegSystem : public System {
public:
    // `nginx`: the files are served by an nginx (its processes counted with ffmpeg's) and the players
    // fetch them from it over HTTP, as viewers of the replaced design did; otherwise they read the files.
    FfmpegSystem(const MultiOrigin& origin, const std::vector<int>& origin_of, const fs::path& work,
                 const Source& source, bool fmp4_out, std::string label = "ffmpeg", bool nginx = false)
        : origin_(origin), origin_of_(origin_of), n_(static_cast<int>(origin_of.size())), dir_(work / "ffmpeg"),
          log_((work / "ffmpeg.log").string()), ladder_(source.ladder), fmp4_out_(fmp4_out), label_(std::move(label)) {
        fs::create_directories(work);
        fs::create_directories(dir_);
        if (nginx) start_nginx(work);
        if (ladder_) {
            for (const auto& r : kRungs) dirs_.push_back(r.dir);
            for (const char* a : kAudioDirs) dirs_.push_back(a);
        } else {
            dirs_.push_back("");
        }
    }
    ~FfmpegSystem() override {
        for (pid_t p : pids_) kill(p, SIGTERM);
        for (pid_t p : pids_) terminate(p);
        if (nginx_pid_ > 0) terminate(nginx_pid_);  // SIGTERM to the master stops its workers too
    }
    std::string name() const override { return label_; }
    int channels() const override { return n_; }
    void start_all(std::vector<Clock::time_point>& requested) override {
        requested.assign(static_cast<std::size_t>(n_), {});
        for (int c = 0; c < n_; ++c) {
            const fs::path d = dir_ / std::to_string(c);
            fs::create_directories(d);
            requested[static_cast<std::size_t>(c)] = Clock::now();
            std::vector<std::string> args = {"ffmpeg", "-hide_banner", "-loglevel", ffmpeg_loglevel(), "-nostdin", "-i",
                                             origin_.url(origin_of_[static_cast<std::size_t>(c)])};
            if (ladder_) args.insert(args.end(), {"-map", "0:v", "-map", "0:a"});
            args.insert(args.end(), {"-c", "copy", "-f", "hls", "-hls_time", "2", "-hls_list_size", "5", "-hls_flags",
                                     "delete_segments"});
            if (fmp4_out_) args.insert(args.end(), {"-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", "init.mp4"});
            if (ladder_) {
                args.insert(args.end(), {"-master_pl_name", "master.m3u8", "-var_stream_map",
                                         "v:0,agroup:aud,name:v0 v:1,agroup:aud,name:v1 v:2,agroup:aud,name:v2 "
                                         "a:0,agroup:aud,language:en,name:a0,default:yes a:1,agroup:aud,language:fr,name:a1",
                                         (d / "%v" / "index.m3u8").string()});
                for (const auto& r : dirs_) fs::create_directories(d / r);
            } else {
                args.push_back((d / "index.m3u8").string());
            }
            pids_.push_back(spawn(args, log_));
        }
    }
    std::vector<pid_t> pids() const override {
        std::vector<pid_t> all = pids_;
        if (nginx_pid_ > 0) {
            all.push_back(nginx_pid_);
            for (pid_t w : children_of(nginx_pid_)) all.push_back(w);
        }
        return all;
    }
    // Players follow the highest variant (v0) of a ladder.
    std::unique_ptr<Reader> reader(int channel) override {
        const std::string rel = std::to_string(channel) + "/" + (dirs_.front().empty() ? "" : dirs_.front() + "/");
        if (nginx_pid_ > 0) return std::make_unique<ServerReader>(nginx_port_, "/" + rel);
        return std::make_unique<FileReader>(dir_ / std::to_string(channel) / dirs_.front());
    }
    int live_channels(double max_age) override {
        int live = 0;
        for (int c = 0; c < n_; ++c) live += fresh(dir_ / std::to_string(c) / dirs_.front() / "index.m3u8", max_age);
        return live;
    }
    int live_renditions(double max_age) override {
        int live = 0;
        for (int c = 0; c < n_; ++c)
            for (const auto& r : dirs_) live += fresh(dir_ / std::to_string(c) / r / "index.m3u8", max_age);
        return live;
    }

private:
    // nginx as a file server of dir_, as the replaced design's deployment had it: 2 workers (the
    // server's 2 io threads), sendfile, keep-alive, no access log and no open_file_cache (ffmpeg
    // replaces index.m3u8 by a rename: a cached descriptor would serve an old playlist).
    void start_nginx(const fs::path& work) {
        const char* bin = fs::exists("/usr/sbin/nginx") ? "/usr/sbin/nginx" : "nginx";
        const fs::path prefix = work / "nginx";
        fs::create_directories(prefix / "tmp");
        fs::create_directories(prefix / "logs");
        nginx_port_ = free_port();
        std::ofstream conf(prefix / "nginx.conf");
        conf << "worker_processes 2;\ndaemon off;\npid " << (prefix / "nginx.pid").string() << ";\n"
             << "error_log " << (prefix / "logs/error.log").string() << " warn;\n"
             << "events { worker_connections 8192; }\n"
             << "http {\n  access_log off;\n"
             << "  client_body_temp_path " << (prefix / "tmp").string() << ";\n"
             << "  proxy_temp_path " << (prefix / "tmp").string() << ";\n"
             << "  fastcgi_temp_path " << (prefix / "tmp").string() << ";\n"
             << "  uwsgi_temp_path " << (prefix / "tmp").string() << ";\n"
             << "  scgi_temp_path " << (prefix / "tmp").string() << ";\n"
             << "  types { application/vnd.apple.mpegurl m3u8; video/mp2t ts; video/iso.segment m4s; video/mp4 mp4; }\n"
             << "  sendfile on;\n  tcp_nopush on;\n  keepalive_requests 1000000;\n  keepalive_timeout 60s;\n"
             << "  server {\n    listen 127.0.0.1:" << nginx_port_ << ";\n    root " << dir_.string() << ";\n"
             << "    location ~ \\.m3u8$ { add_header Cache-Control no-cache; }\n  }\n}\n";
        conf.close();
        nginx_pid_ = spawn({bin, "-c", (prefix / "nginx.conf").string(), "-p", prefix.string(), "-e",
                            (prefix / "logs/error.log").string()},
                           (prefix / "logs/stderr.log").string());
        for (int i = 0; i < 100; ++i) {  // up within 10 s, or the column's players see no answers
            HttpClient probe(nginx_port_, 0.5);
            if (probe.get("/").status != 0) break;
            sleep_s(0.1);
        }
    }
    // The processes whose parent is `parent` (nginx's workers), from /proc.
    static std::vector<pid_t> children_of(pid_t parent) {
        std::vector<pid_t> out;
        std::error_code ec;
        for (const auto& e : fs::directory_iterator("/proc", ec)) {
            const std::string name = e.path().filename().string();
            if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
            const auto stat = read_file(e.path() / "stat");
            if (!stat) continue;
            const auto close = stat->rfind(')');  // "pid (comm) state ppid ..."
            if (close == std::string::npos) continue;
            int ppid = 0;
            char state = 0;
            if (std::sscanf(stat->c_str() + close + 1, " %c %d", &state, &ppid) == 2 && ppid == parent)
                out.push_back(static_cast<pid_t>(std::stoi(name)));
        }
        return out;
    }

    static int fresh(const fs::path& playlist, double max_age) {
        std::error_code ec;
        const auto t = fs::last_write_time(playlist, ec);
        return !ec && std::chrono::duration<double>(fs::file_time_type::clock::now() - t).count() <= max_age ? 1 : 0;
    }

    const MultiOrigin& origin_;
    std::vector<int> origin_of_;
    int n_;
    fs::path dir_;
    std::string log_;
    bool ladder_;
    bool fmp4_out_;
    std::string label_;
    std::vector<std::string> dirs_;  // rendition directories of a channel's output ("" for one rendition)
    std::vector<pid_t> pids_;
    pid_t nginx_pid_ = -1;  // with nginx: its master
    uint16_t nginx_port_ = 0;
};

// ---------------------------------------------------------------------------------------------------
// A player polling one channel.

struct Track {
    // results
    std::optional<Clock::time_point> first_playable;
    std::atomic<int64_t> playable_since{-1};  // first_playable for other threads (ns of Clock's epoch)
    int playlist_404 = 0, segment_404 = 0, no_answer = 0, gaps = 0;
    std::map<int64_t, Clock::time_point> covered;           // origin segment -> when the output covered its end
    std::vector<std::pair<Clock::time_point, double>> lag;  // origin published position - output position
    int64_t first_origin = -1;
    std::atomic<int64_t> requests{0};  // playlists and segments asked for so far
};

// A polled playlist moves in whole segments, and the phase of a client's reloads against the
// origin's publications can slip by one: a lag growth of one segment (2 s) over a short run is not
// falling behind; more is (and a channel that falls further behind also leaves segments undelivered).
constexpr double kMaxDrift = 2.5;

struct Phase {
    std::atomic<double> interval{0.1};
    std::atomic<bool> fetch_segments{true};
    std::atomic<bool> stop{false};
};

void poll_channel(const MultiOrigin& origin, int origin_channel, Reader& reader, const Phase& phase, Track& tr) {
    int64_t last_seq = 0;
    double output = 0;     // seconds of output content listed since the first playable playlist
    double p0 = 0;         // origin stream position where the output starts
    int64_t next_k = 0;    // next origin segment whose end the output has to cover
    auto next = Clock::now();
    while (!phase.stop) {
        next = at(next, phase.interval.load());
        ++tr.requests;
        const auto body = reader.playlist();
        const auto t = Clock::now();
        if (!body) {
            if (tr.first_playable) ++tr.playlist_404;
        } else {
            const Playlist p = parse_playlist(*body);
            if (!tr.first_playable && !p.entries.empty()) {
                const int status = reader.segment(p.entries.front().uri);
                if (status == 200) {
                    tr.first_playable = Clock::now();
                    tr.playable_since = tr.first_playable->time_since_epoch().count();
                    tr.first_origin = origin.first_requested(origin_channel);
                    next_k = std::max<int64_t>(tr.first_origin, 0);
                    p0 = origin.segment_start(next_k);
                    last_seq = p.entries.front().sequence - 1;
                }
            }
            if (tr.first_playable) {
                for (const Entry& e : p.entries) {
                    if (e.sequence <= last_seq) continue;
                    if (e.sequence > last_seq + 1) ++tr.gaps;
                    last_seq = e.sequence;
                    output += e.duration;
                    if (phase.fetch_segments) {
                        ++tr.requests;
                        const int status = reader.segment(e.uri);
                        if (status == 404) ++tr.segment_404;
                        else if (status != 200) ++tr.no_answer;
                    }
                }
                // Origin segment k is covered once the output reaches its end (half a segment of
                // tolerance for frame-level rounding of the two durations).
                while (origin.segment_end(next_k) <= p0 + output + 0.5) tr.covered.emplace(next_k++, t);
                tr.lag.emplace_back(t, origin.published_position(origin_channel, t) - (p0 + output));
            }
        }
        std::this_thread::sleep_until(next);
        if (Clock::now() > at(next, 1.0)) next = Clock::now();  // fell behind: do not burst
    }
}

// ---------------------------------------------------------------------------------------------------

struct Result {
    std::string name;
    int channels = 0;
    int sampled = 0;
    double cpu_percent = NAN;  // per channel
    // Over the delay window, while the players poll every o.poll s and fetch every segment: CPU per
    // channel (the serving included) and the players' requests per second.
    double cpu_serving = NAN;
    double served_rps = NAN;
    double pss_mb = NAN;       // per channel
    std::vector<double> first_playable;       // from the channel's own start request
    std::vector<double> first_playable_all;   // from the first start request of the run
    // first_playable split at the origin (bench/origin.hpp first_asked, first_sent): from the start
    // request until the channel's first segment request reached the origin; until the origin had
    // written all of it; from then until the sampled player had a playable playlist.
    std::vector<double> first_until_asked, first_origin_answer, first_after_sent;
    int never_playable = 0;
    std::vector<double> delays;
    int undelivered = 0;  // origin segments published in the delay window not covered 6 s later
    int playlist_404 = 0, segment_404 = 0, no_answer = 0, gaps = 0;
    double max_drift = NAN;
    int live_at_end = 0;
    bool keeps_up = false;
    double start_all = NAN;
    double warmup = NAN;  // seconds from the first start request to the CPU window
    // The source and what the system said about it.
    std::string source;
    int renditions = 1;          // per channel, in the source
    double mbps = NAN;           // of the source per channel, all renditions
    int renditions_live = 0;     // at the end, over every channel
    std::string reported;        // hlsrelay: status container and renditions of a channel
    // The origin's media playlist loads over the whole run, per segment published to a client, and
    // those sooner than RFC 8216 6.3.4 allows (MultiOrigin::early_reloads).
    double loads_per_segment = NAN;
    uint64_t early_reloads = 0;
    double worst_early = 0;
    double worst_queueing = 0;  // the longest a request waited for the origin's thread (s)
    double cpu_per_rendition() const { return cpu_percent / renditions; }
};

Result run(System& sys, const MultiOrigin& origin, const Options& o, const std::vector<int>& origin_of) {
    Result r;
    r.name = sys.name();
    r.channels = sys.channels();
    const int n = sys.channels();
    const int s = std::min(n, o.sample);
    std::vector<int> sampled;
    for (int i = 0; i < s; ++i) sampled.push_back(static_cast<int>(static_cast<int64_t>(i) * n / s));
    r.sampled = s;
    std::printf("  %s: %d channels, %d polled like players\n", r.name.c_str(), n, s);
    std::fflush(stdout);

    Phase phase;
    phase.interval = o.poll;
    std::vector<Track> tracks(static_cast<std::size_t>(s));
    std::vector<std::unique_ptr<Reader>> readers;
    for (int c : sampled) readers.push_back(sys.reader(c));
    std::vector<Clock::time_point> requested;

    std::vector<std::thread> pollers;
    std::atomic<bool> started{false};
    for (int i = 0; i < s; ++i)
        pollers.emplace_back([&, i] {
            pthread_setname_np(pthread_self(), "bench-player");
            while (!started) std::this_thread::sleep_for(std::chrono::milliseconds(1));
            poll_channel(origin, origin_of[static_cast<std::size_t>(sampled[static_cast<std::size_t>(i)])],
                         *readers[static_cast<std::size_t>(i)], phase, tracks[static_cast<std::size_t>(i)]);
        });
    const auto t_start = Clock::now();
    // The players start polling as the start requests go out.
    std::thread starter([&] { sys.start_all(requested); });
    started = true;
    starter.join();
    r.start_all = seconds_between(t_start, Clock::now());
    std::printf("  %s: every channel started (requests answered, processes spawned) in %.2f s\n", r.name.c_str(),
                r.start_all);
    std::fflush(stdout);

    // Warm-up: at least --warmup from the first start request, and until every polled channel has
    // been playable for 5 s (slow starters, e.g. hundreds of ffmpeg processes probing at once, would
    // otherwise put their start-up into the CPU window); that wait is capped at 120 s.
    std::this_thread::sleep_until(at(t_start, o.warmup));
    const auto give_up = at(Clock::now(), 120);
    for (;;) {
        std::optional<Clock::time_point> last;
        bool all = true;
        for (const Track& tr : tracks) {
            const int64_t since = tr.playable_since.load();
            std::optional<Clock::time_point> fp;
            if (since >= 0) fp = Clock::time_point(Clock::duration(since));
            if (!fp) all = false;
            else if (!last || *fp > *last) last = fp;
        }
        if (all && (!last || Clock::now() >= at(*last, 5.0))) break;
        if (Clock::now() >= give_up) break;
        sleep_s(0.2);
    }
    r.warmup = seconds_between(t_start, Clock::now());
    // CPU window: players poll each playlist once a second and fetch no segments.
    phase.interval = 1.0;
    phase.fetch_segments = false;
    const auto t_cpu = Clock::now();
    double c0 = 0;
    for (pid_t p : sys.pids()) c0 += cpu_seconds(p);
    sleep_s(o.cpu_window);
    double c1 = 0;
    long pss = 0;
    for (pid_t p : sys.pids()) {
        c1 += cpu_seconds(p);
        pss += pss_kb(p);
    }
    const double cpu_elapsed = seconds_between(t_cpu, Clock::now());
    r.cpu_percent = 100.0 * (c1 - c0) / cpu_elapsed / n;
    r.pss_mb = static_cast<double>(pss) / 1024.0 / n;

    // Delay window: players poll every o.poll s and fetch every new segment.
    phase.interval = o.poll;
    phase.fetch_segments = true;
    const auto t_delay = Clock::now();
    auto requests_so_far = [&] {
        int64_t n_req = 0;
        for (const Track& tr : tracks) n_req += tr.requests.load();
        return n_req;
    };
    double d0 = 0;
    for (pid_t p : sys.pids()) d0 += cpu_seconds(p);
    const int64_t q0 = requests_so_far();
    sleep_s(o.delay_window);
    const auto t_end = Clock::now();
    double d1 = 0;
    for (pid_t p : sys.pids()) d1 += cpu_seconds(p);
    const double delay_elapsed = seconds_between(t_delay, t_end);
    r.cpu_serving = 100.0 * (d1 - d0) / delay_elapsed / n;
    r.served_rps = static_cast<double>(requests_so_far() - q0) / delay_elapsed;
    r.live_at_end = sys.live_channels(3 * 2.0 + 1.0);
    r.renditions_live = sys.live_renditions(3 * 2.0 + 1.0);
    r.reported = sys.reported();
    phase.stop = true;
    for (auto& t : pollers) t.join();

    r.max_drift = 0;
    bool all_tracked = true;
    for (int i = 0; i < s; ++i) {
        const Track& tr = tracks[static_cast<std::size_t>(i)];
        const int c = sampled[static_cast<std::size_t>(i)];
        const int oc = origin_of[static_cast<std::size_t>(c)];
        r.playlist_404 += tr.playlist_404;
        r.segment_404 += tr.segment_404;
        r.no_answer += tr.no_answer;
        r.gaps += tr.gaps;
        if (!tr.first_playable) {
            ++r.never_playable;
            all_tracked = false;
            continue;
        }
        r.first_playable.push_back(seconds_between(requested[static_cast<std::size_t>(c)], *tr.first_playable));
        r.first_playable_all.push_back(seconds_between(t_start, *tr.first_playable));
        if (const auto asked = origin.first_asked(oc), sent = origin.first_sent(oc); asked && sent) {
            r.first_until_asked.push_back(seconds_between(requested[static_cast<std::size_t>(c)], *asked));
            r.first_origin_answer.push_back(seconds_between(*asked, *sent));
            r.first_after_sent.push_back(seconds_between(*sent, *tr.first_playable));
        }
        if (tr.first_origin < 0) {
            all_tracked = false;
            continue;
        }
        for (int64_t k = tr.first_origin;; ++k) {
            const auto pub = origin.published_at(oc, k);
            if (pub > at(t_end, -6.0)) break;
            if (pub < t_delay) continue;
            auto it = tr.covered.find(k);
            if (it == tr.covered.end()) ++r.undelivered;
            else r.delays.push_back(seconds_between(pub, it->second));
        }
        // Drift: the lowest lag (the sawtooth's floor) over the first and the last 10 s after warm-up.
        double first_min = INFINITY, last_min = INFINITY;
        for (const auto& [t, lag] : tr.lag) {
            if (t >= t_cpu && t < at(t_cpu, 10)) first_min = std::min(first_min, lag);
            if (t >= at(t_end, -10) && t <= t_end) last_min = std::min(last_min, lag);
        }
        if (std::isfinite(first_min) && std::isfinite(last_min)) r.max_drift = std::max(r.max_drift, last_min - first_min);
        else all_tracked = false;
    }
    r.keeps_up = all_tracked && r.max_drift <= kMaxDrift && r.undelivered == 0 && r.live_at_end == n;
    return r;
}

std::string fmt(double v, int prec = 2) {
    if (std::isnan(v)) return "-";
    char b[32];
    std::snprintf(b, sizeof b, "%.*f", prec, v);
    return b;
}

std::string ratio(double a, double b) { return (std::isnan(a) || std::isnan(b) || b == 0) ? "-" : fmt(a / b, 2); }

std::string dist(const std::vector<double>& v) {
    if (v.empty()) return "-";
    return fmt(percentile(v, 50)) + " / " + fmt(percentile(v, 95)) + " / " + fmt(percentile(v, 100));
}

int usage() {
    std::fprintf(stderr,
                 "usage: hlsrelay_bench_channels [N=10] [--row channels|ladder|fmp4|delay|served] [--ladder-fmp4] [--warmup S=10]\n"
                 "         [--cpu-window S=20] [--delay-window S=20] [--sample K=50] [--poll S=0.1]\n"
                 "         [--only hlsrelay|ffmpeg] [--ffmpeg-max M=200] [--server PATH]\n");
    return 2;
}

}  // namespace

// One column of the table: a system restreaming N channels of a source, on an origin of its own.
struct Column {
    std::string label;
    bool server = true;           // hlsrelay-server, else one ffmpeg per channel
    const Source* source = nullptr;
    ChannelFields fields;         // hlsrelay: channel JSON fields
    bool ffmpeg_fmp4 = false;     // ffmpeg: fMP4 output
    bool nginx = false;           // ffmpeg: its files served by nginx, the players fetching over HTTP
};

int main(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) std::exit(usage());
            return argv[++i];
        };
        if (a == "--warmup") o.warmup = std::atof(value().c_str());
        else if (a == "--cpu-window") o.cpu_window = std::atof(value().c_str());
        else if (a == "--delay-window") o.delay_window = std::atof(value().c_str());
        else if (a == "--sample") o.sample = std::atoi(value().c_str());
        else if (a == "--poll") o.poll = std::atof(value().c_str());
        else if (a == "--only") o.only = value();
        else if (a == "--ffmpeg-max") o.ffmpeg_max = std::atoi(value().c_str());
        else if (a == "--server") o.server = value();
        else if (a == "--row") o.row = value();
        else if (a == "--ladder-fmp4") o.ladder_fmp4 = true;
        else if (!a.empty() && std::isdigit(static_cast<unsigned char>(a[0]))) o.n = std::atoi(a.c_str());
        else return usage();
    }
    if (o.n < 1 || o.sample < 1 || o.poll <= 0 || o.cpu_window < 10 || o.delay_window < 10 ||
        (!o.only.empty() && o.only != "hlsrelay" && o.only != "ffmpeg") ||
        (o.row != "channels" && o.row != "ladder" && o.row != "fmp4" && o.row != "delay" && o.row != "served") || (o.ladder_fmp4 && o.row != "ladder"))
        return usage();
    std::signal(SIGPIPE, SIG_IGN);
    const long fds = raise_fd_limit();

    // Sources and columns of the row.
    std::vector<std::unique_ptr<Source>> sources;
    std::vector<Column> columns;
    if (o.row == "channels") {
        const Source* ts = sources.emplace_back(std::make_unique<Source>(single_source(false))).get();
        columns.push_back({"hlsrelay", true, ts, {}, false});
        columns.push_back({"ffmpeg", false, ts, {}, false});
    } else if (o.row == "ladder") {
        const Source* ladder = sources.emplace_back(std::make_unique<Source>(ladder_source(o.ladder_fmp4))).get();
        const std::string out = o.ladder_fmp4 ? "fmp4" : "ts";
        columns.push_back({"hlsrelay renditions=all", true, ladder, {out, "all"}, false});
        columns.push_back({"ffmpeg, every rendition", false, ladder, {}, o.ladder_fmp4});
    } else if (o.row == "served") {
        // Like for like: the players fetch over HTTP from both, hlsrelay-server against ffmpeg
        // per channel plus the nginx that serves its files (the replaced design as deployed).
        const Source* ts = sources.emplace_back(std::make_unique<Source>(single_source(false))).get();
        columns.push_back({"hlsrelay", true, ts, {}, false});
        columns.push_back({"ffmpeg + nginx", false, ts, {}, false, true});
    } else if (o.row == "delay") {
        // The reload schedule's share of the publish delay: the same source, aligned against RFC.
        const Source* ts = sources.emplace_back(std::make_unique<Source>(single_source(false))).get();
        columns.push_back({"hlsrelay, aligned reloads", true, ts, {"", "", "aligned"}, false});
        columns.push_back({"hlsrelay, RFC schedule", true, ts, {"", "", "rfc"}, false});
    } else {
        const Source* fmp4 = sources.emplace_back(std::make_unique<Source>(single_source(true))).get();
        const Source* ts = sources.emplace_back(std::make_unique<Source>(single_source(false))).get();
        columns.push_back({"hlsrelay fMP4 passthrough", true, fmp4, {"fmp4", "all"}, false});
        columns.push_back({"hlsrelay fMP4 to TS (remux)", true, fmp4, {"ts", "all"}, false});
        columns.push_back({"ffmpeg fMP4 to fMP4", false, fmp4, {}, true});
        columns.push_back({"hlsrelay TS passthrough", true, ts, {"ts", "all"}, false});
    }

    const int ff_n = std::min(o.n, o.ffmpeg_max);
    const fs::path work = fs::temp_directory_path() / ("hlsrelay-bench-channels-" + std::to_string(getpid()));
    fs::create_directories(work);
    std::printf("hlsrelay benchmark: %s -- %d channels; warm-up %.0f s, CPU window %.0f s, delay window %.0f s\n",
                o.row.c_str(), o.n, o.warmup, o.cpu_window, o.delay_window);
    for (const auto& src : sources) std::printf("source %s: %s\n", src->name.c_str(), src->description.c_str());
    std::printf("origins on 127.0.0.1 (one per column); fd limit %ld; logs in %s\n", fds, work.c_str());
    std::fflush(stdout);

    // Each column on its own origin, started just before it runs, one column after the other.
    std::vector<std::optional<Result>> results(columns.size());
    uint64_t origin_requests = 0, origin_404 = 0;
    for (std::size_t i = 0; i < columns.size(); ++i) {
        const Column& col = columns[i];
        if (!o.only.empty() && (o.only == "hlsrelay") != col.server) continue;
        const int n = col.server ? o.n : ff_n;
        MultiOrigin origin(col.source->media, n, 6, col.source->spread);
        origin.start();
        std::vector<int> origin_of(static_cast<std::size_t>(n));
        for (int c = 0; c < n; ++c) origin_of[static_cast<std::size_t>(c)] = c;
        const fs::path dir = work / ("column-" + std::to_string(i));
        std::unique_ptr<System> sys;
        if (col.server) sys = std::make_unique<ServerSystem>(o, origin, origin_of, dir, col.label, col.fields);
        else sys = std::make_unique<FfmpegSystem>(origin, origin_of, dir, *col.source, col.ffmpeg_fmp4, col.label, col.nginx);
        Result r = run(*sys, origin, o, origin_of);
        sys.reset();
        r.source = col.source->name;
        r.renditions = col.source->renditions;
        r.mbps = col.source->mbps;
        r.early_reloads = origin.early_reloads();
        r.worst_early = origin.worst_early();
        r.worst_queueing = origin.worst_queueing();
        r.loads_per_segment = static_cast<double>(origin.playlist_loads()) /
                              static_cast<double>(std::max<uint64_t>(1, origin.segments_published()));
        results[i] = std::move(r);
        origin_requests += origin.requests();
        origin_404 += origin.not_found();
    }

    // The table: one column per system; with two, their ratio.
    const bool pair = columns.size() == 2;
    const Result none;
    auto res = [&](std::size_t i) -> const Result& { return results[i] ? *results[i] : none; };
    auto line = [&](const std::string& label, const std::function<std::string(const Result&)>& text,
                    const std::function<double(const Result&)>& num, const std::string& target) {
        std::string l = "| " + label + " |";
        for (std::size_t i = 0; i < columns.size(); ++i) l += " " + (results[i] ? text(*results[i]) : std::string("-")) + " |";
        if (pair) l += " " + (num ? ratio(num(res(0)), num(res(1))) : std::string()) + " |";
        std::printf("%s %s |\n", l.c_str(), target.c_str());
    };
    std::printf("\n%d channels%s; %d (hlsrelay) / %d (ffmpeg) of them polled like players\n", o.n,
                ff_n < o.n ? (" (ffmpeg reference capped at " + std::to_string(ff_n) + ", its per-channel figures from those)").c_str() : "",
                std::min(o.n, o.sample), std::min(ff_n, o.sample));
    std::string head = "| per channel |", rule = "|---|";
    for (const auto& c : columns) {
        head += " " + (o.row == "channels" && !c.server ? std::string("ffmpeg per channel") : c.label) + " |";
        rule += "---|";
    }
    if (pair) {
        head += " ratio |";
        rule += "---|";
    }
    std::printf("%s target |\n%s---|\n", head.c_str(), rule.c_str());
    using R = const Result&;
    line("channels run", [](R r) { return std::to_string(r.channels); }, nullptr, "");
    if (o.row != "channels") {
        line("source", [](R r) { return r.source; }, nullptr, "");
        line("renditions per channel in the source", [](R r) { return std::to_string(r.renditions); }, nullptr, "");
        line("hlsrelay status of a channel", [](R r) { return r.reported.empty() ? std::string("-") : r.reported; }, nullptr, "");
    }
    line("start all channels: requests answered / processes spawned (s)", [](R r) { return fmt(r.start_all); }, nullptr, "");
    line("warm-up until the CPU window (s)", [](R r) { return fmt(r.warmup, 1); }, nullptr, "");
    line("CPU (% of a core)", [](R r) { return fmt(r.cpu_percent, 3); }, [](R r) { return r.cpu_percent; },
         o.row == "channels" ? "<= 0.25" : "");
    if (o.row != "channels") {
        line("CPU per rendition (% of a core)", [](R r) { return fmt(r.cpu_per_rendition(), 3); },
             [](R r) { return r.cpu_per_rendition(); }, "");
        line("CPU per Mbit/s of source (% of a core)", [](R r) { return fmt(r.cpu_percent / r.mbps, 3); },
             [](R r) { return r.cpu_percent / r.mbps; }, "");
    }
    line("CPU while serving the players (% of a core; delay window)", [](R r) { return fmt(r.cpu_serving, 3); },
         [](R r) { return r.cpu_serving; }, o.row == "served" ? "<= 0.5" : "");
    line("players' requests per second (delay window)", [](R r) { return fmt(r.served_rps, 0); }, nullptr, "");
    line("PSS (MB)", [](R r) { return fmt(r.pss_mb); }, [](R r) { return r.pss_mb; }, o.row == "channels" ? "<= 0.5" : "");
    line("first playable playlist p50 / p95 / max (s)", [](R r) { return dist(r.first_playable); },
         [](R r) { return percentile(r.first_playable, 50); }, "max <= 1.0 s");
    line("first playable playlist from the first start request p50 / p95 / max (s)",
         [](R r) { return dist(r.first_playable_all); }, nullptr, "");
    line("first playable, split p50 / p95 / max (s): start request -> first segment asked of the origin",
         [](R r) { return dist(r.first_until_asked); }, nullptr, "");
    line("... -> the origin has sent it all (its one thread's queue included)", [](R r) { return dist(r.first_origin_answer); },
         nullptr, "");
    line("... -> the sampled player's playlist lists it (poll every 0.1 s)", [](R r) { return dist(r.first_after_sent); },
         nullptr, "");
    line("never playable (sampled)", [](R r) { return std::to_string(r.never_playable); }, nullptr, "0");
    line("publish delay p50 / p95 / max (s)", [](R r) { return dist(r.delays); }, [](R r) { return percentile(r.delays, 50); },
         "p50 <= 1.0 s");
    line("source playlist loads per new segment found", [](R r) { return fmt(r.loads_per_segment); }, nullptr, "");
    line("source reloads sooner than RFC 8216 6.3.4 allows, by kernel receive times (worst, s)",
         [](R r) { return std::to_string(r.early_reloads) + " (" + fmt(r.worst_early, 3) + ")"; }, nullptr, "0");
    line("origin: longest wait of a request for its thread (s)", [](R r) { return fmt(r.worst_queueing, 3); }, nullptr, "");
    line("origin segments measured / undelivered",
         [](R r) { return std::to_string(r.delays.size()) + " / " + std::to_string(r.undelivered); }, nullptr, "- / 0");
    line("404s: playlists / segments",
         [](R r) { return std::to_string(r.playlist_404) + " / " + std::to_string(r.segment_404); }, nullptr, "0 / 0");
    line("no answer / missed playlist updates",
         [](R r) { return std::to_string(r.no_answer) + " / " + std::to_string(r.gaps); }, nullptr, "0 / 0");
    line("drift: lag growth, worst sampled channel (s)", [](R r) { return fmt(r.max_drift); }, nullptr, "<= 2.5");
    line("channels live at the end (newest segment <= 7 s old)",
         [](R r) { return std::to_string(r.live_at_end) + "/" + std::to_string(r.channels); }, nullptr, "all");
    if (o.row != "channels")
        line("renditions live at the end (newest segment <= 7 s old)",
             [](R r) { return std::to_string(r.renditions_live) + "/" + std::to_string(r.channels * r.renditions); }, nullptr,
             "all");
    line("keeps up", [](R r) { return std::string(r.keeps_up ? "yes" : "NO"); }, nullptr, "yes");

    if (o.row == "fmp4") {
        // The target: passthrough CPU per rendition within 1.5x of today's TS passthrough per channel.
        const Result &pass = res(0), &remux = res(1), &ff = res(2), &ts = res(3);
        std::printf("\nfMP4 passthrough CPU per rendition / TS passthrough CPU per channel: %s (target <= 1.5)\n",
                    ratio(pass.cpu_per_rendition(), ts.cpu_percent).c_str());
        std::printf("remux path (fMP4 to TS) / fMP4 passthrough, CPU: %s\n", ratio(remux.cpu_percent, pass.cpu_percent).c_str());
        std::printf("fMP4 passthrough / ffmpeg per channel: CPU %s, PSS %s\n", ratio(pass.cpu_percent, ff.cpu_percent).c_str(),
                    ratio(pass.pss_mb, ff.pss_mb).c_str());
    }
    std::printf("\norigin: %llu requests, %llu answered 404\n", static_cast<unsigned long long>(origin_requests),
                static_cast<unsigned long long>(origin_404));
    std::error_code ec;
    if (std::getenv("HLSRELAY_BENCH_KEEP") == nullptr) fs::remove_all(work, ec);
    return 0;
}
