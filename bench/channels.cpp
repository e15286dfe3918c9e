// Benchmark 1: N live channels from a loopback live HLS origin, restreamed (a) by hlsrelay-server,
// (b) by one `ffmpeg -c copy -f hls -hls_time 2 -hls_list_size 5 -hls_flags delete_segments` per
// channel, in the same run on the same origin. See docs/benchmarks.md for the definitions.
//
//   hlsrelay_bench_channels [N=10] [--warmup S] [--cpu-window S] [--delay-window S] [--sample K]
//                           [--only hlsrelay|ffmpeg] [--ffmpeg-max M] [--server PATH] [--poll S]
#include "origin.hpp"
#include "util.hpp"

#include "support/media.hpp"

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
};

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
};

// ---------------------------------------------------------------------------------------------------
// (a) hlsrelay-server

class ServerReader : public Reader {
public:
    ServerReader(uint16_t port, int channel) : http_(port), base_("/hls_streams/c" + std::to_string(channel) + "/") {}
    std::optional<std::string> playlist() override {
        auto r = http_.get(base_ + "index.m3u8");
        if (r.status != 200) return std::nullopt;
        return std::move(r.body);
    }
    int segment(const std::string& uri) override {
        const auto slash = uri.rfind('/');
        return http_.get(base_ + (slash == std::string::npos ? uri : uri.substr(slash + 1))).status;
    }

private:
    HttpClient http_;
    std::string base_;
};

class ServerSystem : public System {
public:
    ServerSystem(const Options& o, const MultiOrigin& origin, const std::vector<int>& origin_of, const fs::path& work)
        : n_(static_cast<int>(origin_of.size())) {
        const int n = n_;
        const fs::path list = work / "channels.m3u";
        std::ofstream out(list);
        out << "#EXTM3U\n";
        for (int c = 0; c < n; ++c)
            out << "#EXTINF:-1 tvg-id=\"c" << c << "\" group-title=\"bench\",Bench " << c << "\n" << origin.url(origin_of[static_cast<std::size_t>(c)]) << "\n";
        out.close();
        port_ = free_port();
        log_ = (work / "hlsrelay-server.log").string();
        pid_ = spawn({o.server, "--channels", list.string(), "--listen", "127.0.0.1:" + std::to_string(port_),
                      "--log-level", "warn", "--max-connections", std::to_string(std::max(2048, 4 * n + 256)),
                      "--max-connections-per-client", "0"},  // every simulated viewer is 127.0.0.1
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
    std::string name() const override { return "hlsrelay"; }
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
        HttpClient http(port_, 10.0);
        const auto r = http.get("/api/v1/channels/streams-status");
        int live = 0;
        const std::string key = "\"newest_segment_age_seconds\":";
        for (std::size_t pos = r.body.find(key); pos != std::string::npos; pos = r.body.find(key, pos + 1)) {
            const char* v = r.body.c_str() + pos + key.size();
            if (std::strncmp(v, "null", 4) != 0 && std::atof(v) <= max_age) ++live;
        }
        return live;
    }

private:
    int n_;
    uint16_t port_ = 0;
    pid_t pid_ = -1;
    std::string log_;
};

// ---------------------------------------------------------------------------------------------------
// (b) one ffmpeg per channel

std::optional<std::string> read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    if (!in) return std::nullopt;
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

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

class FfmpegSystem : public System {
public:
    FfmpegSystem(const MultiOrigin& origin, const std::vector<int>& origin_of, const fs::path& work)
        : origin_(origin), origin_of_(origin_of), n_(static_cast<int>(origin_of.size())), dir_(work / "ffmpeg"),
          log_((work / "ffmpeg.log").string()) {}
    ~FfmpegSystem() override {
        for (pid_t p : pids_) kill(p, SIGTERM);
        for (pid_t p : pids_) terminate(p);
    }
    std::string name() const override { return "ffmpeg"; }
    int channels() const override { return n_; }
    void start_all(std::vector<Clock::time_point>& requested) override {
        requested.assign(static_cast<std::size_t>(n_), {});
        for (int c = 0; c < n_; ++c) {
            const fs::path d = dir_ / std::to_string(c);
            fs::create_directories(d);
            requested[static_cast<std::size_t>(c)] = Clock::now();
            pids_.push_back(spawn({"ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-i",
                                   origin_.url(origin_of_[static_cast<std::size_t>(c)]), "-c",
                                   "copy", "-f", "hls", "-hls_time", "2", "-hls_list_size", "5", "-hls_flags",
                                   "delete_segments", (d / "index.m3u8").string()},
                                  log_));
        }
    }
    std::vector<pid_t> pids() const override { return pids_; }
    std::unique_ptr<Reader> reader(int channel) override {
        return std::make_unique<FileReader>(dir_ / std::to_string(channel));
    }
    int live_channels(double max_age) override {
        int live = 0;
        const auto now = fs::file_time_type::clock::now();
        for (int c = 0; c < n_; ++c) {
            std::error_code ec;
            const auto t = fs::last_write_time(dir_ / std::to_string(c) / "index.m3u8", ec);
            if (!ec && std::chrono::duration<double>(now - t).count() <= max_age) ++live;
        }
        return live;
    }

private:
    const MultiOrigin& origin_;
    std::vector<int> origin_of_;
    int n_;
    fs::path dir_;
    std::string log_;
    std::vector<pid_t> pids_;
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
    double pss_mb = NAN;       // per channel
    std::vector<double> first_playable;       // from the channel's own start request
    std::vector<double> first_playable_all;   // from the first start request of the run
    int never_playable = 0;
    std::vector<double> delays;
    int undelivered = 0;  // origin segments published in the delay window not covered 6 s later
    int playlist_404 = 0, segment_404 = 0, no_answer = 0, gaps = 0;
    double max_drift = NAN;
    int live_at_end = 0;
    bool keeps_up = false;
    double start_all = NAN;
    double warmup = NAN;  // seconds from the first start request to the CPU window  // seconds until every channel's start was requested and answered
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
    sleep_s(o.delay_window);
    const auto t_end = Clock::now();
    r.live_at_end = sys.live_channels(3 * 2.0 + 1.0);
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
                 "usage: hlsrelay_bench_channels [N=10] [--warmup S=10] [--cpu-window S=20] [--delay-window S=20]\n"
                 "         [--sample K=50] [--poll S=0.1] [--only hlsrelay|ffmpeg] [--ffmpeg-max M=200] [--server PATH]\n");
    return 2;
}

}  // namespace

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
        else if (!a.empty() && std::isdigit(static_cast<unsigned char>(a[0]))) o.n = std::atoi(a.c_str());
        else return usage();
    }
    if (o.n < 1 || o.sample < 1 || o.poll <= 0 || o.cpu_window < 10 || o.delay_window < 10 ||
        (!o.only.empty() && o.only != "hlsrelay" && o.only != "ffmpeg"))
        return usage();
    std::signal(SIGPIPE, SIG_IGN);
    const long fds = raise_fd_limit();

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
    std::vector<std::string> files;
    std::uintmax_t bytes = 0;
    for (const auto& f : media.segment_files) {
        files.push_back(*read_file(f));
        bytes += files.back().size();
    }
    double total = 0;
    for (double d : media.durations) total += d;

    const int ff_n = std::min(o.n, o.ffmpeg_max);
    // One origin channel per restreamed channel; the ffmpeg run gets channels of its own.
    MultiOrigin origin(files, media.durations, o.n + ff_n);
    origin.start();
    std::vector<int> ours(static_cast<std::size_t>(o.n)), theirs(static_cast<std::size_t>(ff_n));
    for (int c = 0; c < o.n; ++c) ours[static_cast<std::size_t>(c)] = c;
    for (int c = 0; c < ff_n; ++c) theirs[static_cast<std::size_t>(c)] = o.n + c;

    const fs::path work = fs::temp_directory_path() / ("hlsrelay-bench-channels-" + std::to_string(getpid()));
    fs::create_directories(work);
    std::printf("hlsrelay benchmark: channels -- %d channels; warm-up %.0f s, CPU window %.0f s, delay window %.0f s\n",
                o.n, o.warmup, o.cpu_window, o.delay_window);
    std::printf("source: %dx%d@%d H.264 + AAC, %.2f Mbit/s, %.0f s segments, %zu files looped; origin 127.0.0.1:%u; "
                "fd limit %ld; logs in %s\n",
                spec.width, spec.height, spec.fps, static_cast<double>(bytes) * 8 / total / 1e6, spec.segment_seconds,
                files.size(), origin.port(), fds, work.c_str());
    std::fflush(stdout);

    std::optional<Result> a, b;
    if (o.only != "ffmpeg") {
        ServerSystem sys(o, origin, ours, work);
        a = run(sys, origin, o, ours);
    }
    if (o.only != "hlsrelay") {
        FfmpegSystem sys(origin, theirs, work);
        b = run(sys, origin, o, theirs);
    }
    const Result none;
    const Result& x = a ? *a : none;
    const Result& y = b ? *b : none;

    std::printf("\n%d channels%s; %d (hlsrelay) / %d (ffmpeg) of them polled like players\n", o.n,
                ff_n < o.n ? (" (ffmpeg reference capped at " + std::to_string(ff_n) + ", its per-channel figures from those)").c_str() : "",
                x.sampled, y.sampled);
    std::printf("| per channel | hlsrelay | ffmpeg per channel | ratio | target |\n|---|---|---|---|---|\n");
    std::printf("| channels run | %d | %d | | |\n", x.channels, y.channels);
    std::printf("| start all channels: requests answered / processes spawned (s) | %s | %s | | |\n",
                fmt(x.start_all).c_str(), fmt(y.start_all).c_str());
    std::printf("| warm-up until the CPU window (s) | %s | %s | | |\n", fmt(x.warmup, 1).c_str(),
                fmt(y.warmup, 1).c_str());
    std::printf("| CPU (%% of a core) | %s | %s | %s | <= 0.25 |\n", fmt(x.cpu_percent, 3).c_str(),
                fmt(y.cpu_percent, 3).c_str(), ratio(x.cpu_percent, y.cpu_percent).c_str());
    std::printf("| PSS (MB) | %s | %s | %s | <= 0.5 |\n", fmt(x.pss_mb).c_str(), fmt(y.pss_mb).c_str(),
                ratio(x.pss_mb, y.pss_mb).c_str());
    const double fx = percentile(x.first_playable, 50), fy = percentile(y.first_playable, 50);
    std::printf("| first playable playlist p50 / p95 / max (s) | %s | %s | %s | max <= 1.0 s |\n",
                dist(x.first_playable).c_str(), dist(y.first_playable).c_str(), ratio(fx, fy).c_str());
    std::printf("| first playable playlist from the first start request p50 / p95 / max (s) | %s | %s | | |\n",
                dist(x.first_playable_all).c_str(), dist(y.first_playable_all).c_str());
    std::printf("| never playable (sampled) | %d | %d | | 0 |\n", x.never_playable, y.never_playable);
    const double dx = percentile(x.delays, 50), dy = percentile(y.delays, 50);
    std::printf("| publish delay p50 / p95 / max (s) | %s | %s | %s | p50 <= 1.0 s |\n", dist(x.delays).c_str(),
                dist(y.delays).c_str(), ratio(dx, dy).c_str());
    std::printf("| origin segments measured / undelivered | %zu / %d | %zu / %d | | - / 0 |\n", x.delays.size(),
                x.undelivered, y.delays.size(), y.undelivered);
    std::printf("| 404s: playlists / segments | %d / %d | %d / %d | | 0 / 0 |\n", x.playlist_404, x.segment_404,
                y.playlist_404, y.segment_404);
    std::printf("| no answer / missed playlist updates | %d / %d | %d / %d | | 0 / 0 |\n", x.no_answer, x.gaps,
                y.no_answer, y.gaps);
    std::printf("| drift: lag growth, worst sampled channel (s) | %s | %s | | <= 2.5 |\n", fmt(x.max_drift).c_str(),
                fmt(y.max_drift).c_str());
    std::printf("| channels live at the end (newest segment <= 7 s old) | %d/%d | %d/%d | | all |\n", x.live_at_end,
                x.channels, y.live_at_end, y.channels);
    std::printf("| keeps up | %s | %s | | yes |\n", a ? (x.keeps_up ? "yes" : "NO") : "-",
                b ? (y.keeps_up ? "yes" : "NO") : "-");
    std::printf("\norigin: %llu requests, %llu answered 404\n", static_cast<unsigned long long>(origin.requests()),
                static_cast<unsigned long long>(origin.not_found()));
    std::error_code ec;
    if (std::getenv("HLSRELAY_BENCH_KEEP") == nullptr) fs::remove_all(work, ec);
    return 0;
}
