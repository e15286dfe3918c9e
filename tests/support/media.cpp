// Makes and caches the ffmpeg-generated test media that the loopback origin and file-source tests play.
#include "support/media.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace hlsrelay::test {
namespace {

namespace fs = std::filesystem;

// Bump when the generated layout or the ffmpeg recipe changes, so stale caches are not reused.
constexpr const char* kLayoutVersion = "hlsrelay-test-media 1";

std::string format_number(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.6g", v);
    return buf;
}

void validate(const MediaSpec& spec) {
    if (spec.seconds <= 0 || spec.segment_seconds <= 0 || spec.gop_frames <= 0 || spec.fps <= 0 ||
        spec.width <= 0 || spec.height <= 0 || (!spec.audio && !spec.video))
        throw std::invalid_argument("make_media: nonsensical MediaSpec");
    if (spec.video_codec != "h264" && spec.video_codec != "mpeg2" && spec.video_codec != "hevc")
        throw std::invalid_argument("make_media: unknown video_codec " + spec.video_codec);
    if (spec.audio_codec != "aac" && spec.audio_codec != "mp3" && spec.audio_codec != "ac3")
        throw std::invalid_argument("make_media: unknown audio_codec " + spec.audio_codec);
    for (char c : spec.name) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                        c == '_' || c == '-' || c == '.';
        if (!ok) throw std::invalid_argument("make_media: name must be [A-Za-z0-9_.-]+: " + spec.name);
    }
    if (spec.name == "." || spec.name == "..") throw std::invalid_argument("make_media: bad name " + spec.name);
}

// Everything that affects the bytes; stored beside the media so a changed spec is never served stale.
std::string describe(const MediaSpec& spec) {
    std::ostringstream s;
    s << kLayoutVersion << "\nseconds=" << spec.seconds << "\nsegment_seconds=" << format_number(spec.segment_seconds)
      << "\ngop_frames=" << spec.gop_frames << "\nfps=" << spec.fps << "\nsize=" << spec.width << 'x' << spec.height
      << "\naudio=" << spec.audio << "\nvideo=" << spec.video << '\n';
    if (spec.video_kbps > 0) s << "video_kbps=" << spec.video_kbps << '\n';
    // Only when not the default, so the caches of the original specs stay valid.
    if (spec.video_codec != "h264") s << "video_codec=" << spec.video_codec << '\n';
    if (spec.audio_codec != "aac") s << "audio_codec=" << spec.audio_codec << '\n';
    return s.str();
}

std::string dir_name(const MediaSpec& spec) {
    if (!spec.name.empty()) return spec.name;
    return "auto_t" + std::to_string(spec.seconds) + "_s" + format_number(spec.segment_seconds) + "_g" +
           std::to_string(spec.gop_frames) + "_f" + std::to_string(spec.fps) + "_" + std::to_string(spec.width) +
           "x" + std::to_string(spec.height) + "_" + (spec.video ? "v" : "") + (spec.audio ? "a" : "") +
           (spec.video_codec != "h264" ? "_" + spec.video_codec : "") + (spec.audio_codec != "aac" ? "_" + spec.audio_codec : "");
}

std::string read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    if (!in) return {};
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

void write_file(const fs::path& p, const std::string& data) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << data;
    out.close();
    if (!out) throw std::runtime_error("make_media: cannot write " + p.string());
}

// Closes a descriptor on scope exit so no early return or throw leaks the pipe.
struct Fd {
    int fd = -1;
    Fd() = default;
    explicit Fd(int f) : fd(f) {}
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() { reset(); }
    void reset() {
        if (fd >= 0) ::close(fd);
        fd = -1;
    }
};

// Runs ffmpeg with `args` (argv[0] excluded) and throws with its stderr unless it exits 0.
// posix_spawn rather than system(): no shell quoting of paths, and stderr is captured for the message.
void run_ffmpeg(const std::vector<std::string>& args) {
    const char* env_bin = std::getenv("HLSRELAY_FFMPEG");
    const std::string bin = env_bin && *env_bin ? env_bin : "ffmpeg";
    std::vector<std::string> all{bin};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);

    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) throw std::runtime_error(std::string("make_media: pipe: ") + std::strerror(errno));
    Fd rd(p[0]), wr(p[1]);

    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, wr.fd, 2);  // dup2 clears O_CLOEXEC on the copy
    pid_t pid = -1;
    const int rc = ::posix_spawnp(&pid, bin.c_str(), &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        throw std::runtime_error("make_media: cannot run '" + bin + "' (" + std::strerror(rc) +
                                 "); the tests need the ffmpeg CLI with libx264 on PATH");
    wr.reset();  // so the read below sees EOF when ffmpeg exits

    std::string err;
    char buf[4096];
    for (;;) {
        const ssize_t n = ::read(rd.fd, buf, sizeof buf);
        if (n > 0) {
            if (err.size() < 64 * 1024) err.append(buf, static_cast<size_t>(n));
        } else if (n == 0 || errno != EINTR) {
            break;
        }
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return;

    std::string cmd;
    for (const auto& a : all) cmd += (cmd.empty() ? "" : " ") + a;
    std::string how = WIFEXITED(status) ? "exited with " + std::to_string(WEXITSTATUS(status))
                                        : "died of signal " + std::to_string(WTERMSIG(status));
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127) how += " (not found?)";
    throw std::runtime_error("make_media: ffmpeg " + how + ": " + cmd + "\n--- ffmpeg stderr ---\n" + err);
}

// Reads ffmpeg's index.m3u8 in `dir`; the set comes back empty if the playlist is missing.
MediaSet parse_set(const fs::path& dir, const MediaSpec& spec) {
    MediaSet set;
    set.dir = dir.string();
    set.single_file = (dir / "all.ts").string();
    std::istringstream in(read_file(dir / "index.m3u8"));
    std::string line;
    double pending = -1;
    while (std::getline(in, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.rfind("#EXT-X-TARGETDURATION:", 0) == 0) {
            set.target_duration = std::atof(line.c_str() + 22);
        } else if (line.rfind("#EXTINF:", 0) == 0) {
            const char* b = line.c_str() + 8;
            double d = 0;
            const auto res = std::from_chars(b, line.c_str() + line.size(), d);
            pending = res.ec == std::errc() ? d : -1;
        } else if (!line.empty() && line[0] != '#' && pending >= 0) {
            // ffmpeg may write the URI relative or as given; the cache directory may have been renamed.
            set.segment_files.push_back((dir / fs::path(line).filename()).string());
            set.durations.push_back(pending);
            pending = -1;
        }
    }
    if (set.durations.size() > 1 && set.durations.back() < spec.segment_seconds / 2) {
        set.durations.pop_back();
        set.segment_files.pop_back();
    }
    return set;
}

bool complete(const fs::path& dir, const MediaSpec& spec, MediaSet* out) {
    std::error_code ec;
    if (read_file(dir / "spec.txt") != describe(spec)) return false;
    MediaSet set = parse_set(dir, spec);
    if (set.segment_files.empty() || set.target_duration <= 0) return false;
    for (const auto& f : set.segment_files)
        if (fs::file_size(f, ec) == 0 || ec) return false;
    if (fs::file_size(set.single_file, ec) == 0 || ec) return false;
    *out = std::move(set);
    return true;
}

void generate_into(const fs::path& dir, const MediaSpec& spec) {
    std::vector<std::string> a{"-nostdin", "-hide_banner", "-loglevel", "error", "-y"};
    if (spec.video) {
        a.insert(a.end(), {"-f", "lavfi", "-i",
                           "testsrc2=size=" + std::to_string(spec.width) + "x" + std::to_string(spec.height) +
                               ":rate=" + std::to_string(spec.fps)});
    }
    if (spec.audio) a.insert(a.end(), {"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"});
    a.insert(a.end(), {"-t", std::to_string(spec.seconds)});
    if (spec.video) {
        const std::string g = std::to_string(spec.gop_frames);
        if (spec.video_codec == "mpeg2") {
            a.insert(a.end(), {"-c:v", "mpeg2video", "-g", g, "-bf", "0", "-sc_threshold", "0", "-pix_fmt", "yuv420p"});
        } else if (spec.video_codec == "hevc") {
            a.insert(a.end(), {"-c:v", "libx265", "-preset", "ultrafast", "-g", g, "-keyint_min", g, "-x265-params",
                               "log-level=error:scenecut=0:open-gop=0:bframes=0", "-pix_fmt", "yuv420p"});
        } else {
            a.insert(a.end(), {"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", g, "-keyint_min",
                               g, "-sc_threshold", "0", "-pix_fmt", "yuv420p"});
        }
        if (spec.video_kbps > 0) {
            const std::string k = std::to_string(spec.video_kbps) + "k";
            const std::string buf = std::to_string(spec.video_kbps * 2) + "k";
            a.insert(a.end(), {"-b:v", k, "-maxrate", k, "-bufsize", buf});
        }
    }
    if (spec.audio) {
        const std::string enc = spec.audio_codec == "mp3" ? "libmp3lame" : spec.audio_codec;
        a.insert(a.end(), {"-c:a", enc, "-b:a", spec.audio_codec == "aac" ? "64k" : "96k"});
    }
    a.insert(a.end(), {"-f", "hls", "-hls_time", format_number(spec.segment_seconds), "-hls_list_size", "0",
                       "-hls_segment_filename", (dir / "seg_%05d.ts").string(), (dir / "index.m3u8").string()});
    run_ffmpeg(a);
    // A remux of the segments rather than a second encode, so all.ts carries exactly the same packets.
    run_ffmpeg({"-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", (dir / "index.m3u8").string(), "-c",
                "copy", "-f", "mpegts", (dir / "all.ts").string()});
    write_file(dir / "spec.txt", describe(spec));  // last: its presence marks the set complete
}

std::string unique_suffix() {
    static std::atomic<unsigned> counter{0};
    return std::to_string(::getpid()) + "-" + std::to_string(counter++) + "-" +
           std::to_string(std::hash<std::thread::id>{}(std::this_thread::get_id()) % 100000);
}

// Builds the set in a private directory and renames it into place, so a concurrent test process
// never sees a half-written set and the loser of a race simply adopts the winner's.
MediaSet build(const MediaSpec& spec) {
    const fs::path root = media_root();
    const fs::path dir = root / dir_name(spec);
    fs::create_directories(root);
    MediaSet set;
    if (complete(dir, spec, &set)) return set;

    const fs::path tmp = root / (dir_name(spec) + ".tmp-" + unique_suffix());
    fs::remove_all(tmp);
    fs::create_directories(tmp);
    try {
        generate_into(tmp, spec);
    } catch (...) {
        std::error_code ec;
        fs::remove_all(tmp, ec);
        throw;
    }
    for (int attempt = 0; attempt < 5; ++attempt) {
        if (::rename(tmp.c_str(), dir.c_str()) == 0) break;
        std::error_code ec;
        if (complete(dir, spec, &set)) {  // another process won the race
            fs::remove_all(tmp, ec);
            return set;
        }
        // A stale or foreign set is in the way: move it aside first (rename is atomic, removal is not).
        const fs::path stale = root / (dir_name(spec) + ".stale-" + unique_suffix());
        if (::rename(dir.c_str(), stale.c_str()) == 0) fs::remove_all(stale, ec);
    }
    if (!complete(dir, spec, &set))
        throw std::runtime_error("make_media: generated media in " + dir.string() + " is incomplete or unreadable");
    return set;
}

}  // namespace

std::string generated_dir(const std::string& name, const std::function<void(const std::string& dir)>& make) {
    const fs::path root = media_root();
    const fs::path dir = root / name;
    const auto done = [](const fs::path& d) { return fs::exists(d / "done"); };
    if (done(dir)) return dir.string();
    fs::create_directories(root);
    const fs::path tmp = root / (name + ".tmp-" + unique_suffix());
    std::error_code ec;
    fs::remove_all(tmp, ec);
    fs::create_directories(tmp);
    try {
        make(tmp.string());
    } catch (...) {
        fs::remove_all(tmp, ec);
        throw;
    }
    std::ofstream(tmp / "done") << "ok\n";  // last: marks the directory complete
    for (int attempt = 0; attempt < 5; ++attempt) {
        if (::rename(tmp.c_str(), dir.c_str()) == 0) return dir.string();
        if (done(dir)) break;  // another process won the race: its copy is complete
        // An incomplete one (an interrupted run) is in the way: moved aside (rename is atomic), then ours.
        const fs::path stale = root / (name + ".stale-" + unique_suffix());
        if (::rename(dir.c_str(), stale.c_str()) == 0) fs::remove_all(stale, ec);
    }
    fs::remove_all(tmp, ec);
    if (!done(dir)) throw std::runtime_error("generated_dir: " + dir.string() + " could not be put in place");
    return dir.string();
}

std::string media_root() {
#ifdef HLSRELAY_TEST_MEDIA_DIR
    return HLSRELAY_TEST_MEDIA_DIR;
#else
    return "/tmp/hlsrelay-test-media";
#endif
}

const MediaSet& make_media(const MediaSpec& spec) {
    validate(spec);
    // One lock around generation: specs are few, and it keeps two threads from racing on one directory.
    static std::mutex mu;
    static std::map<std::string, std::pair<std::string, std::unique_ptr<MediaSet>>> cache;
    std::lock_guard lock(mu);
    const std::string key = dir_name(spec);
    const std::string desc = describe(spec);
    if (auto it = cache.find(key); it != cache.end()) {
        if (it->second.first != desc)
            throw std::invalid_argument("make_media: name '" + key + "' already used for a different spec");
        return *it->second.second;
    }
    auto set = std::make_unique<MediaSet>(build(spec));
    const MediaSet& ref = *set;
    cache.emplace(key, std::make_pair(desc, std::move(set)));
    return ref;
}

}  // namespace hlsrelay::test
