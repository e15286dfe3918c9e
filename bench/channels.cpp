// Benchmark 1 (first cut): N live channels from a loopback HLS origin restreamed (a) by one
// hlsrelay engine, (b) by one `ffmpeg -c copy -f hls` process per channel, measured side by side:
// CPU per channel (% of one core) and memory per channel (PSS) after warm-up.
//   hlsrelay_bench_channels [channels=10] [seconds=20] [warmup=8]
#include "support/media.hpp"
#include "support/origin.hpp"

#include <hlsrelay/engine.hpp>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <spawn.h>
#include <sstream>
#include <string>
#include <sys/resource.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

extern char** environ;
using namespace std::chrono_literals;
using namespace hlsrelay;

namespace {
const double kTicks = static_cast<double>(sysconf(_SC_CLK_TCK));

// Proportional set size in kB: shared pages (libav's code) are split among the processes using them.
long pss_kb(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/smaps_rollup");
    std::string key;
    long value = 0;
    while (in >> key) {
        if (key == "Pss:") {
            in >> value;
            return value;
        }
        in.ignore(1 << 20, '\n');
    }
    return 0;
}

// utime + stime of a process in seconds.
double cpu_seconds(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    std::getline(in, line);
    std::istringstream rest(line.substr(line.rfind(')') + 2));
    std::string field;
    double utime = 0, stime = 0;
    for (int i = 3; rest >> field; ++i) {
        if (i == 14) utime = std::stod(field);
        if (i == 15) { stime = std::stod(field); break; }
    }
    return (utime + stime) / kTicks;
}

pid_t spawn(std::vector<std::string> args) {
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = 0;
    if (posix_spawnp(&pid, argv[0], nullptr, nullptr, argv.data(), environ) != 0) {
        std::perror("posix_spawnp");
        std::exit(1);
    }
    return pid;
}

struct Figures {
    double cpu_percent_per_channel;
    double pss_mb_per_channel;
};

Figures measure_engine(const std::string& url, int n, double warmup, double seconds) {
    EngineSettings settings;
    settings.log_level = LogLevel::Error;
    Engine engine(settings);
    for (int i = 0; i < n; ++i) {
        ChannelConfig c;
        c.name = "bench " + std::to_string(i);
        c.urls = {url};
        engine.start(engine.add_channel(c).id);
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(warmup));
    const pid_t self = getpid();
    const double c0 = cpu_seconds(self);
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    const double used = cpu_seconds(self) - c0;
    const long pss = pss_kb(self);
    int running = 0;
    for (const auto& s : engine.statuses()) running += s.segment_count > 0;
    std::printf("  hlsrelay: %d/%d channels with segments\n", running, n);
    return {100.0 * used / seconds / n, static_cast<double>(pss) / 1024.0 / n};
}

Figures measure_ffmpeg(const std::string& url, int n, double warmup, double seconds) {
    const auto out = std::filesystem::temp_directory_path() / ("hlsrelay-bench-" + std::to_string(getpid()));
    std::vector<pid_t> pids;
    for (int i = 0; i < n; ++i) {
        const auto dir = out / std::to_string(i);
        std::filesystem::create_directories(dir);
        pids.push_back(spawn({"ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-i", url, "-c", "copy",
                              "-f", "hls", "-hls_time", "2", "-hls_list_size", "5", "-hls_flags", "delete_segments",
                              (dir / "index.m3u8").string()}));
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(warmup));
    double c0 = 0;
    for (pid_t p : pids) c0 += cpu_seconds(p);
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    double c1 = 0;
    long pss = 0;
    int running = 0;
    for (size_t i = 0; i < pids.size(); ++i) {
        c1 += cpu_seconds(pids[i]);
        pss += pss_kb(pids[i]);
        running += std::filesystem::exists(out / std::to_string(i) / "index.m3u8");
    }
    std::printf("  ffmpeg:   %d/%d channels with a playlist\n", running, n);
    for (pid_t p : pids) kill(p, SIGTERM);
    for (pid_t p : pids) waitpid(p, nullptr, 0);
    std::filesystem::remove_all(out);
    return {100.0 * (c1 - c0) / seconds / n, static_cast<double>(pss) / 1024.0 / n};
}
}  // namespace

int main(int argc, char** argv) {
    const int n = argc > 1 ? std::atoi(argv[1]) : 10;
    const double seconds = argc > 2 ? std::atof(argv[2]) : 20;
    const double warmup = argc > 3 ? std::atof(argv[3]) : 8;
    test::MediaSpec spec;
    spec.seconds = 60;
    spec.segment_seconds = 2;
    spec.fps = 30;
    spec.gop_frames = 60;
    spec.width = 1280;
    spec.height = 720;
    spec.video_kbps = 2400;
    spec.name = "bench-720p30-2500k";
    const test::MediaSet& media = test::make_media(spec);
    std::uintmax_t bytes = 0;
    for (const auto& f : media.segment_files) bytes += std::filesystem::file_size(f);
    double total = 0;
    for (double d : media.durations) total += d;

    // The origin runs in its own process so that its CPU is not counted as ours.
    int fds[2];
    if (pipe(fds) != 0) return 1;
    const pid_t origin_pid = fork();
    if (origin_pid == 0) {
        close(fds[0]);
        test::LiveOrigin origin(media, {.speed = 1.0, .window = 6});
        origin.start();
        const std::string url = origin.url() + "\n";
        if (write(fds[1], url.data(), url.size()) < 0) _exit(1);
        close(fds[1]);
        pause();
        _exit(0);
    }
    close(fds[1]);
    char buf[256] = {};
    const ssize_t got = read(fds[0], buf, sizeof buf - 1);
    close(fds[0]);
    if (got <= 0) return 1;
    const std::string url(buf, static_cast<size_t>(got - 1));

    std::printf("hlsrelay benchmark: channels (%d channels, %.0f s measured after %.0f s warm-up)\n", n, seconds, warmup);
    std::printf("source: %dx%d@%d H.264 + AAC, %.2f Mbit/s, %.0f s segments, origin %s\n", spec.width, spec.height,
                spec.fps, static_cast<double>(bytes) * 8 / total / 1e6, spec.segment_seconds, url.c_str());
    const Figures ours = measure_engine(url, n, warmup, seconds);
    const Figures theirs = measure_ffmpeg(url, n, warmup, seconds);
    kill(origin_pid, SIGTERM);
    waitpid(origin_pid, nullptr, 0);
    std::printf("\n| per channel | hlsrelay | ffmpeg per channel | ratio |\n|---|---|---|---|\n");
    std::printf("| CPU (%% of a core) | %.3f | %.3f | %.2f |\n", ours.cpu_percent_per_channel,
                theirs.cpu_percent_per_channel, ours.cpu_percent_per_channel / theirs.cpu_percent_per_channel);
    std::printf("| PSS (MB) | %.2f | %.2f | %.2f |\n", ours.pss_mb_per_channel, theirs.pss_mb_per_channel,
                ours.pss_mb_per_channel / theirs.pss_mb_per_channel);
    return 0;
}
