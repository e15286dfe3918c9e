// Soak: N live channels restreamed by one engine for a chosen time while their loopback origins
// misbehave at random (every LiveOrigin fault, media switches), each output watched throughout for
// the RFC 8216 contract (OutputWatcher). Prints recoveries, dangling references, validity
// violations, and the process's RSS/PSS, descriptors and threads over time.
//   hlsrelay_bench_soak [channels=8] [seconds=300] [seed=1] [sample_seconds=30] [mean_gap_seconds=45]
// The origins run in a child process, so the figures are the engine's (and the watchers') alone.
#include "support/media.hpp"
#include "support/origin.hpp"
#include "support/output_watcher.hpp"

#include <hlsrelay/engine.hpp>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <malloc.h>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace hlsrelay;
using Clock = std::chrono::steady_clock;
using Fault = test::LiveOrigin::Fault;

namespace {

long status_field(const char* key) {  // from /proc/self/status, kB for memory
    std::ifstream in("/proc/self/status");
    std::string k;
    while (in >> k) {
        if (k == key) {
            long v = 0;
            in >> v;
            return v;
        }
        in.ignore(1 << 20, '\n');
    }
    return -1;
}

long pss_kb() {
    std::ifstream in("/proc/self/smaps_rollup");
    std::string key;
    while (in >> key) {
        if (key == "Pss:") {
            long v = 0;
            in >> v;
            return v;
        }
        in.ignore(1 << 20, '\n');
    }
    return -1;
}

long fd_count() {
    long n = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
    return n - 1;  // the iterator's own
}

struct Sample {
    double t;
    long rss_kb, pss_kb, fds, threads;
    double heap_mb;  // bytes malloc has handed out and not got back (all arenas, mmapped chunks included)
};

Sample sample(double t) {
    const struct mallinfo2 mi = mallinfo2();
    return {t, status_field("VmRSS:"), pss_kb(), fd_count(), status_field("Threads:"),
            static_cast<double>(mi.uordblks + mi.hblkhd) / 1048576.0};
}

void print_sample(const char* label, const Sample& s) {
    std::printf("| %s | %.0f | %.1f | %.1f | %.1f | %ld | %ld |\n", label, s.t, static_cast<double>(s.rss_kb) / 1024.0,
                static_cast<double>(s.pss_kb) / 1024.0, s.heap_mb, s.fds, s.threads);
    std::fflush(stdout);
}

// What a soak fault does: held for a while then cleared, or a one-shot event.
enum class Kind { Held, Event, SwitchTagged, SwitchUntagged };
struct FaultChoice {
    const char* name;
    Kind kind;
    Fault fault;
};
const std::vector<FaultChoice> kChoices = {
    {"stall", Kind::Held, Fault::Stall},
    {"refuse", Kind::Held, Fault::Refuse},
    {"http500", Kind::Held, Fault::Http500},
    {"segment404", Kind::Held, Fault::Segment404},
    {"hang", Kind::Held, Fault::Hang},
    {"garbage", Kind::Held, Fault::Garbage},
    {"truncate", Kind::Held, Fault::TruncateSegments},
    {"corrupt", Kind::Held, Fault::CorruptSegments},
    {"redirect", Kind::Held, Fault::Redirect},
    {"reset-sequence", Kind::Event, Fault::ResetSequence},
    {"timestamp-jump", Kind::Event, Fault::TimestampJump},
    {"timestamp-reset", Kind::Event, Fault::TimestampReset},
    {"switch-media-tagged", Kind::SwitchTagged, Fault::None},
    {"switch-media-untagged", Kind::SwitchUntagged, Fault::None},
};

// The origins' process: one LiveOrigin per channel, driven by lines on stdin-like pipe `cmd`:
// "F <channel> <fault>" sets a fault, "M <channel> <media> <tagged>" switches media. Writes each
// origin's URL on `out`, one a line, then serves until the command pipe closes.
[[noreturn]] void origin_process(int n, int cmd, int out) {
    test::MediaSpec spec;
    spec.seconds = 60;
    spec.segment_seconds = 1.0;
    spec.gop_frames = 25;
    spec.name = "faults-60s";
    const auto& main_media = test::make_media(spec);
    test::MediaSpec wide = spec;
    wide.width = 640;
    wide.height = 360;
    wide.name = "faults-60s-640";
    test::MediaSpec mpeg2 = spec;
    mpeg2.video_codec = "mpeg2";
    mpeg2.audio_codec = "mp3";
    mpeg2.name = "faults-60s-mpeg2-mp3";
    test::LiveOrigin::Options options;
    options.alternate_media = {test::make_media(wide), test::make_media(mpeg2)};
    std::vector<std::unique_ptr<test::LiveOrigin>> origins;
    std::string urls;
    for (int i = 0; i < n; ++i) {
        origins.push_back(std::make_unique<test::LiveOrigin>(main_media, options));
        origins.back()->start();
        urls += origins.back()->url() + "\n";
    }
    if (write(out, urls.data(), urls.size()) < 0) _exit(1);
    close(out);
    FILE* in = fdopen(cmd, "r");
    char line[128];
    while (in && std::fgets(line, sizeof line, in)) {
        char op = 0;
        int ch = 0, a = 0, b = 0;
        if (std::sscanf(line, "%c %d %d %d", &op, &ch, &a, &b) < 3 || ch < 0 || ch >= n) continue;
        try {
            if (op == 'F') origins[static_cast<size_t>(ch)]->set_fault(static_cast<Fault>(a));
            if (op == 'M') origins[static_cast<size_t>(ch)]->switch_media(static_cast<size_t>(a), b != 0);
        } catch (const std::exception& e) {
            std::fprintf(stderr, "origin %d: %s\n", ch, e.what());
        }
    }
    origins.clear();
    _exit(0);
}

double percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5))];
}

// "segment 123 lasts 4.1 s" and "segment 456 lasts 3.9 s" are one kind of violation.
std::string kind_of(const std::string& v) {
    std::string k;
    bool in_number = false;
    for (char c : v) {
        const bool digit = (c >= '0' && c <= '9') || (in_number && c == '.');
        if (digit && !in_number) k += '#';
        in_number = digit;
        if (!digit) k += c;
    }
    const size_t colon = k.find(": ");
    return colon == std::string::npos ? k : k.substr(colon + 2);
}

}  // namespace

int main(int argc, char** argv) {
    const int n = argc > 1 ? std::max(1, std::atoi(argv[1])) : 8;
    const double seconds = argc > 2 ? std::atof(argv[2]) : 300;
    const unsigned seed = argc > 3 ? static_cast<unsigned>(std::atoi(argv[3])) : 1;
    const double every = argc > 4 ? std::atof(argv[4]) : 30;
    const double mean_gap = argc > 5 ? std::atof(argv[5]) : 45;

    int cmd[2], out[2];
    if (pipe(cmd) != 0 || pipe(out) != 0) return 1;
    const pid_t origin_pid = fork();
    if (origin_pid == 0) {
        close(cmd[1]);
        close(out[0]);
        origin_process(n, cmd[0], out[1]);
    }
    close(cmd[0]);
    close(out[1]);
    std::vector<std::string> urls;
    {
        FILE* in = fdopen(out[0], "r");
        char line[512];
        while (in && static_cast<int>(urls.size()) < n && std::fgets(line, sizeof line, in)) {
            std::string u(line);
            while (!u.empty() && (u.back() == '\n' || u.back() == '\r')) u.pop_back();
            urls.push_back(u);
        }
        if (in) std::fclose(in);
    }
    if (static_cast<int>(urls.size()) != n) {
        std::fprintf(stderr, "the origin process did not start\n");
        return 1;
    }
    auto command = [&](const std::string& line) {
        if (write(cmd[1], line.data(), line.size()) < 0) std::perror("origin command");
    };

    EngineSettings settings;
    settings.log_level = LogLevel::Off;
    settings.read_timeout = 5.0;
    settings.reconnect_min = 0.5;
    settings.reconnect_max = 4.0;
    settings.hls.segment_duration = 2.0;
    settings.hls.max_segments = 5;
    const double bound = settings.reconnect_max + 2 * settings.hls.segment_duration;

    std::printf("hlsrelay soak: %d channels, %.0f s, seed %u, a fault every ~%.0f s per channel\n", n, seconds, seed,
                mean_gap);
    std::printf("engine: %.0f s segments, %d listed, reconnect %.1f..%.1f s, read timeout %.0f s; recovery bound "
                "(reconnect_max + 2 segments) %.1f s\n\n",
                settings.hls.segment_duration, settings.hls.max_segments, settings.reconnect_min,
                settings.reconnect_max, settings.read_timeout, bound);
    std::printf("| when | t (s) | RSS (MB) | PSS (MB) | heap in use (MB) | fds | threads |\n|---|---|---|---|---|---|---|\n");
    const auto t_start = Clock::now();
    auto since_start = [&] { return std::chrono::duration<double>(Clock::now() - t_start).count(); };
    std::vector<Sample> samples;
    samples.push_back(sample(0));
    print_sample("start", samples.back());

    struct Channel {
        std::string id;
        std::unique_ptr<test::OutputWatcher> watch;
        std::optional<FaultChoice> active;
        Clock::time_point next_at, clear_at, cleared;
        bool awaiting = false;
        size_t media = 0;
    };
    std::mt19937 rng(seed);
    std::exponential_distribution<double> gap(1.0 / mean_gap);
    std::uniform_real_distribution<double> hold(2.0, 10.0);
    std::uniform_int_distribution<size_t> pick(0, kChoices.size() - 1);
    auto after = [](double s) { return Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s)); };

    std::vector<double> recoveries;
    std::map<std::string, int> injected;
    std::map<std::string, std::vector<double>> recovery_by_fault;
    int unrecovered = 0;
    {
        Engine engine(settings);
        std::vector<Channel> channels(static_cast<size_t>(n));
        for (int i = 0; i < n; ++i) {
            ChannelConfig c;
            c.name = "soak " + std::to_string(i);
            c.urls = {urls[static_cast<size_t>(i)]};
            auto& ch = channels[static_cast<size_t>(i)];
            ch.id = engine.add_channel(c).id;
            ch.watch = std::make_unique<test::OutputWatcher>(
                [&engine, id = ch.id](const std::string& f) -> std::shared_ptr<const std::string> {
                    auto r = engine.read(id, f);
                    return r ? std::make_shared<const std::string>(r->bytes()) : nullptr;
                },
                test::OutputWatcher::Options{.name = c.name, .poll_interval = 0.25, .max_gap = 1.0});
            engine.start(ch.id);
            ch.watch->start();
            ch.next_at = after(10 + gap(rng));  // warm up first
        }
        double next_sample = every;
        while (since_start() < seconds) {
            const auto now = Clock::now();
            for (size_t i = 0; i < channels.size(); ++i) {
                auto& ch = channels[i];
                const std::string idx = std::to_string(i);
                if (ch.awaiting) {
                    const auto first = ch.watch->first_new_segment_after(ch.cleared);
                    const double waited = std::chrono::duration<double>(now - ch.cleared).count();
                    if (first && engine.status(ch.id).state == ChannelState::Running) {
                        const double r = std::chrono::duration<double>(*first - ch.cleared).count();
                        recoveries.push_back(r);
                        recovery_by_fault[ch.active->name].push_back(r);
                        ch.awaiting = false;
                        ch.active.reset();
                        ch.next_at = after(gap(rng));
                    } else if (waited > 60) {
                        ++unrecovered;
                        std::printf("  channel %zu did not recover within 60 s of %s\n", i, ch.active->name);
                        ch.awaiting = false;
                        ch.active.reset();
                        ch.next_at = after(gap(rng));
                    }
                    continue;
                }
                if (ch.active) {
                    if (now >= ch.clear_at) {
                        command("F " + idx + " 0\n");
                        ch.cleared = Clock::now();
                        ch.awaiting = true;
                    }
                    continue;
                }
                if (now < ch.next_at) continue;
                const FaultChoice f = kChoices[pick(rng)];
                ++injected[f.name];
                ch.active = f;
                switch (f.kind) {
                    case Kind::Held:
                        command("F " + idx + " " + std::to_string(static_cast<int>(f.fault)) + "\n");
                        ch.clear_at = after(hold(rng));
                        break;
                    case Kind::Event:
                        command("F " + idx + " " + std::to_string(static_cast<int>(f.fault)) + "\n");
                        ch.clear_at = Clock::now();
                        break;
                    case Kind::SwitchTagged:
                    case Kind::SwitchUntagged:
                        ch.media = (ch.media + 1) % 3;
                        command("M " + idx + " " + std::to_string(ch.media) + " " +
                                (f.kind == Kind::SwitchTagged ? "1" : "0") + "\n");
                        ch.clear_at = Clock::now();
                        break;
                }
            }
            if (since_start() >= next_sample) {
                samples.push_back(sample(since_start()));
                print_sample("running", samples.back());
                next_sample += every;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        for (auto& ch : channels)
            if (ch.awaiting || ch.active) ++unrecovered;
        samples.push_back(sample(since_start()));
        print_sample("end", samples.back());

        int64_t violations = 0, dangling = 0, fetches = 0, segments = 0, grace_checks = 0, late = 0, discontinuities = 0;
        std::map<std::string, int64_t> kinds;
        std::vector<std::string> examples;
        for (auto& ch : channels) ch.watch->stop();
        for (auto& ch : channels) {
            const auto r = ch.watch->report();
            violations += r.violations;
            dangling += r.dangling;
            fetches += r.fetches;
            segments += r.segments_seen;
            grace_checks += r.grace_checks;
            late += r.late_checks_skipped;
            discontinuities += r.discontinuities;
            for (const auto& v : ch.watch->violations()) {
                if (kinds[kind_of(v)]++ == 0) examples.push_back(v);
            }
        }
        int64_t reconnects = 0;
        for (const auto& s : engine.statuses()) reconnects += s.reconnects;
        engine.stop_all();
        std::this_thread::sleep_for(std::chrono::seconds(1));
        samples.push_back(sample(since_start()));
        print_sample("after stop_all", samples.back());
        const double run = since_start();

        std::printf("\n## Faults injected\n\n| fault | count | recovered | p50 (s) | max (s) |\n|---|---|---|---|---|\n");
        for (const auto& [name, count] : injected) {
            const auto& r = recovery_by_fault[name];
            std::printf("| %s | %d | %zu | %.2f | %.2f |\n", name.c_str(), count, r.size(), percentile(r, 0.5),
                        r.empty() ? 0.0 : *std::max_element(r.begin(), r.end()));
        }
        const double worst = recoveries.empty() ? 0.0 : *std::max_element(recoveries.begin(), recoveries.end());
        std::printf("\n## Summary (%.0f s)\n\n", run);
        std::printf("- recoveries: %zu (p50 %.2f s, p95 %.2f s, max %.2f s; bound %.1f s exceeded %ld times); "
                    "unrecovered %d\n",
                    recoveries.size(), percentile(recoveries, 0.5), percentile(recoveries, 0.95), worst, bound,
                    static_cast<long>(std::count_if(recoveries.begin(), recoveries.end(), [&](double r) { return r > bound; })),
                    unrecovered);
        std::printf("- engine reconnects: %ld\n", static_cast<long>(reconnects));
        std::printf("- output watched: %ld segments, %ld fetches, %ld grace-period checks (%ld skipped as late), %ld "
                    "discontinuities\n",
                    static_cast<long>(segments), static_cast<long>(fetches), static_cast<long>(grace_checks),
                    static_cast<long>(late), static_cast<long>(discontinuities));
        std::printf("- dangling references: %ld\n", static_cast<long>(dangling));
        std::printf("- validity violations: %ld\n", static_cast<long>(violations));
        if (!kinds.empty()) std::printf("  by kind, among the first 100 recorded per channel:\n");
        for (const auto& [k, c] : kinds) std::printf("    %6ld x %s\n", static_cast<long>(c), k.c_str());
        if (!examples.empty()) {
            std::printf("  first of each kind:\n");
            for (const auto& e : examples) std::printf("    %s\n", e.c_str());
        }
    }
    const Sample destroyed = sample(since_start());
    print_sample("engine destroyed", destroyed);
    malloc_trim(0);  // what RSS stays is then not free memory malloc kept
    print_sample("malloc_trim", sample(since_start()));
    long max_rss = 0;
    for (const auto& s : samples) max_rss = std::max(max_rss, s.rss_kb);
    std::printf("- RSS: start %.1f MB, peak %.1f MB, end %.1f MB; fds %ld -> %ld (after stop_all %ld, engine gone %ld); "
                "threads %ld -> %ld (after stop_all %ld, engine gone %ld)\n",
                static_cast<double>(samples.front().rss_kb) / 1024.0, static_cast<double>(max_rss) / 1024.0,
                static_cast<double>(samples[samples.size() - 2].rss_kb) / 1024.0, samples.front().fds,
                samples[samples.size() - 2].fds, samples.back().fds, destroyed.fds, samples.front().threads,
                samples[samples.size() - 2].threads, samples.back().threads, destroyed.threads);
    close(cmd[1]);  // the origin process exits when its command pipe closes
    waitpid(origin_pid, nullptr, 0);
    return 0;
}
