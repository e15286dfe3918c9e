// Benchmark 3: remux throughput. A long MPEG-TS file (720p30 H.264 + AAC, about 2.5 Mbit/s) cut into
// 2 s segments as fast as possible by the engine (realtime off, no loop) against
// `ffmpeg -c copy -f hls -hls_time 2`, with `ffmpeg -c copy -f null -` (demux + mux, no output) and
// `cat file > /dev/null` (reading the cached file) as the limits. Each runs `repeats` times; the
// median is reported.
//
//   hlsrelay_bench_remux [minutes=10] [repeats=3]
#include "util.hpp"

#include "support/media.hpp"

#include <hlsrelay/engine.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace fs = std::filesystem;
using namespace hlsrelay;
using namespace hlsrelay::bench;

namespace {

struct Sample {
    double wall = 0;  // seconds
    double cpu = 0;   // user + sys seconds
    double out_bytes = 0;
    int segments = 0;
};

double rusage_seconds(const rusage& ru) {
    return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// Runs a command to completion; wall and CPU time of the child.
Sample run_command(const std::vector<std::string>& args, const std::string& out = "/dev/null") {
    const auto t0 = Clock::now();
    const pid_t pid = spawn(args, out);
    int status = 0;
    rusage ru{};
    wait4(pid, &status, 0, &ru);
    Sample s;
    s.wall = seconds_between(t0, Clock::now());
    s.cpu = rusage_seconds(ru);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        std::fprintf(stderr, "%s failed (status %d)\n", args[0].c_str(), status);
        std::exit(1);
    }
    return s;
}

Sample run_ffmpeg_hls(const std::string& input, const fs::path& dir) {
    fs::remove_all(dir);
    fs::create_directories(dir);
    Sample s = run_command({"ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-i", input, "-c", "copy", "-f",
                            "hls", "-hls_time", "2", "-hls_list_size", "5", "-hls_flags", "delete_segments",
                            (dir / "index.m3u8").string()});
    for (const auto& e : fs::directory_iterator(dir))
        if (e.path().extension() == ".ts") s.out_bytes += static_cast<double>(e.file_size());
    return s;
}

Sample run_engine(const std::string& input) {
    EngineSettings settings;
    settings.log_level = LogLevel::Error;
    Engine engine(settings);
    ChannelConfig c;
    c.name = "remux";
    c.urls = {input};
    c.realtime = false;
    c.loop = false;
    const std::string id = engine.add_channel(c).id;

    std::mutex mu;
    std::condition_variable cv;
    bool ended = false;
    Sample s;
    Clock::time_point end{};
    const auto sub = engine.subscribe([&](const Event& e) {
        if (e.channel != id) return;
        if (e.type == EventType::SegmentPublished) {
            // Read the segment while it is certainly in the window: every segment is counted.
            if (auto r = engine.read(id, "seg_" + std::to_string(e.sequence) + ".ts"))
                s.out_bytes += static_cast<double>(r->bytes().size());
            ++s.segments;
        } else if (e.type == EventType::Error ||
                   (e.type == EventType::StateChanged &&
                    (e.state == ChannelState::Reconnecting || e.state == ChannelState::Failed))) {
            // The file ended (loop off): the worker flushed the last segment and reports the end.
            std::lock_guard l(mu);
            if (!ended) end = Clock::now();
            ended = true;
            cv.notify_all();
        }
    });
    rusage r0{}, r1{};
    getrusage(RUSAGE_SELF, &r0);
    const auto t0 = Clock::now();
    engine.start(id);
    {
        std::unique_lock l(mu);
        if (!cv.wait_for(l, std::chrono::minutes(30), [&] { return ended; })) {
            std::fprintf(stderr, "the engine did not finish the file\n");
            std::exit(1);
        }
    }
    getrusage(RUSAGE_SELF, &r1);
    engine.unsubscribe(sub);
    s.wall = seconds_between(t0, end);
    s.cpu = rusage_seconds(r1) - rusage_seconds(r0);
    return s;
}

Sample median(std::vector<Sample> v) {
    std::sort(v.begin(), v.end(), [](const Sample& a, const Sample& b) { return a.wall < b.wall; });
    return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
    const int minutes = argc > 1 ? std::atoi(argv[1]) : 10;
    const int repeats = argc > 2 ? std::atoi(argv[2]) : 3;
    if (minutes < 1 || repeats < 1) {
        std::fprintf(stderr, "usage: hlsrelay_bench_remux [minutes=10] [repeats=3]\n");
        return 2;
    }
    test::MediaSpec spec;  // the channel benchmark's source
    spec.seconds = 60;
    spec.segment_seconds = 2;
    spec.fps = 30;
    spec.gop_frames = 60;
    spec.width = 1280;
    spec.height = 720;
    spec.video_kbps = 2400;
    spec.name = "bench-720p30-2500k";
    const auto& media = test::make_media(spec);

    // The long file: the minute of media concatenated (timestamps continue), made once and cached.
    const fs::path input = fs::path(test::media_root()) / ("bench-remux-" + std::to_string(minutes) + "min.ts");
    if (!fs::exists(input)) {
        const fs::path list = input.string() + ".txt";
        {
            std::ofstream l(list);
            for (int i = 0; i < minutes; ++i) l << "file '" << media.single_file << "'\n";
        }
        const fs::path tmp = input.string() + ".part.ts";
        run_command({"ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-f", "concat", "-safe", "0", "-i",
                     list.string(), "-c", "copy", "-f", "mpegts", tmp.string()});
        fs::rename(tmp, input);
    }
    const double size = static_cast<double>(fs::file_size(input));
    const double duration = 60.0 * minutes;
    const fs::path work = fs::temp_directory_path() / ("hlsrelay-bench-remux-" + std::to_string(getpid()));

    std::printf("hlsrelay benchmark: remux throughput -- %s: %.0f s, %.1f MB, %.2f Mbit/s; median of %d runs\n",
                input.c_str(), duration, size / 1e6, size * 8 / duration / 1e6, repeats);
    std::fflush(stdout);
    run_command({"cat", input.string()});  // into the page cache

    std::vector<Sample> engine, hls, null, cat;
    for (int i = 0; i < repeats; ++i) {
        engine.push_back(run_engine(input.string()));
        hls.push_back(run_ffmpeg_hls(input.string(), work));
        null.push_back(run_command({"ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-i", input.string(), "-c",
                                    "copy", "-f", "null", "-"}));
        cat.push_back(run_command({"cat", input.string()}));
    }
    std::error_code ec;
    fs::remove_all(work, ec);

    std::printf("\n| remux of %.0f min | wall (s) | CPU (s) | MB/s | x realtime | vs ffmpeg -f hls |\n"
                "|---|---|---|---|---|---|\n",
                duration / 60);
    const Sample ref = median(hls);
    auto row = [&](const char* name, const Sample& s) {
        std::printf("| %s | %.2f | %.2f | %.0f | %.0f | %.2f |\n", name, s.wall, s.cpu, size / s.wall / 1e6,
                    duration / s.wall, ref.wall / s.wall);
    };
    const Sample e = median(engine);
    row("hlsrelay engine (realtime off)", e);
    row("ffmpeg -c copy -f hls -hls_time 2", ref);
    row("ffmpeg -c copy -f null - (limit)", median(null));
    row("cat file > /dev/null (limit)", median(cat));
    std::printf("\nhlsrelay: %d segments, %.1f MB out\n", e.segments, e.out_bytes / 1e6);
    return 0;
}
