// Pushing to an HTTP origin (EngineSettings::push_url): a real WebDAV origin (nginx, PUT/DELETE) that
// ffmpeg then plays from, an origin that hangs, one that answers 500.
#include "engine_fixture.hpp"

#include "support/http_serve.hpp"
#include "support/text_origin.hpp"

#include <hlsrelay/status.hpp>

#include <arpa/inet.h>
#include <csignal>
#include <netinet/in.h>
#include <sstream>
#include <sys/socket.h>
#include <fcntl.h>
#include <fstream>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace hlsrelay::test {
namespace {

namespace fs = std::filesystem;

constexpr const char* kNginx = "/usr/sbin/nginx";

// A process started here and ended here (SIGTERM, then SIGKILL if it lingers), by its pid.
struct Child {
    pid_t pid = -1;
    Child() = default;
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;
    bool spawn(std::vector<std::string> args, const std::string& log) {
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        posix_spawn_file_actions_addopen(&fa, 2, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        const int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ);
        posix_spawn_file_actions_destroy(&fa);
        if (rc != 0) pid = -1;
        return rc == 0;
    }
    // Exit status once it ended by itself within `seconds`, else -1 (and it is ended).
    int wait(double seconds) {
        if (pid < 0) return -1;
        const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
        int status = 0;
        while (std::chrono::steady_clock::now() < until) {
            if (::waitpid(pid, &status, WNOHANG) == pid) {
                pid = -1;
                return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        end();
        return -1;
    }
    void end() {
        if (pid < 0) return;
        ::kill(pid, SIGTERM);
        int status = 0;
        for (int i = 0; i < 100; ++i) {
            if (::waitpid(pid, &status, WNOHANG) == pid) {
                pid = -1;
                return;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
        pid = -1;
    }
    ~Child() { end(); }
};

std::string slurp_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

// nginx on 127.0.0.1 as the current user (one process), every path in its own temp directory, its
// WebDAV module taking PUT and DELETE under www/.
struct WebDavOrigin {
    TempDir dir{"push-nginx"};
    uint16_t port = 0;
    Child process;

    fs::path www() const { return dir.path / "www"; }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port); }

    void start() {
        if (!fs::exists(kNginx))
            FAIL(std::string(kNginx) + " is missing: the push tests need nginx (scripts/install-deps.sh installs it)");
        {
            const int fd = http::listen_loopback(0, &port, "free port");  // a free port for nginx
            ::close(fd);
        }
        fs::create_directories(www());
        fs::create_directories(dir.path / "tmp");
        const std::string d = dir.path.string();
        std::ofstream conf(dir.path / "nginx.conf");
        conf << "pid " << d << "/nginx.pid;\n"
             << "error_log " << d << "/error.log warn;\n"
             << "events { worker_connections 256; }\n"
             << "http {\n"
             << "  access_log " << d << "/access.log;\n"
             << "  client_body_temp_path " << d << "/tmp/body;\n"
             << "  proxy_temp_path " << d << "/tmp/proxy;\n"
             << "  fastcgi_temp_path " << d << "/tmp/fastcgi;\n"
             << "  uwsgi_temp_path " << d << "/tmp/uwsgi;\n"
             << "  scgi_temp_path " << d << "/tmp/scgi;\n"
             << "  types { application/vnd.apple.mpegurl m3u8; video/mp2t ts; }\n"
             << "  client_max_body_size 64m;\n"
             << "  server {\n"
             << "    listen 127.0.0.1:" << port << ";\n"
             << "    root " << d << "/www;\n"
             << "    location / {\n"
             << "      dav_methods PUT DELETE;\n"
             << "      create_full_put_path on;\n"
             << "      dav_access user:rw group:r all:r;\n"
             << "    }\n"
             << "  }\n"
             << "}\n";
        conf.close();
        REQUIRE(process.spawn({kNginx, "-p", d, "-c", d + "/nginx.conf", "-e", d + "/error.log", "-g",
                               "daemon off; master_process off;"},
                              d + "/nginx.out"));
        const bool up = wait_until(
            [&] {
                const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                sockaddr_in a{};
                a.sin_family = AF_INET;
                a.sin_port = htons(port);
                a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
                const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
                ::close(fd);
                return ok;
            },
            std::chrono::seconds(20));
        INFO("nginx: " << slurp_file(dir.path / "nginx.out") << slurp_file(dir.path / "error.log"));
        REQUIRE(up);
    }
};

std::optional<PushStatus> push_of(const Engine& e, const std::string& id) { return e.status(id).push; }

// Settings of an origin test: quick retries and deadlines, a small queue.
EngineSettings push_settings(const std::string& url) {
    EngineSettings s = quick_settings(1.0, 3);
    s.push_url = url;
    s.push.read_timeout = 0.5;
    s.push.deadline = 2;
    s.push.retry_first = 0.1;
    s.push.retry_max = 0.4;
    return s;
}

}  // namespace

TEST_CASE("push: a live channel is PUT to a WebDAV origin, played from it, and old segments are DELETEd", "[push]") {
    WebDavOrigin nginx;
    nginx.start();
    LiveOrigin origin(live_media(), {.speed = 2.0});
    origin.start();
    // Credentials in the push URL: Basic auth for the origin (nginx ignores it), never in status.
    const std::string base = "http://pushuser:pushsecret@127.0.0.1:" + std::to_string(nginx.port) + "/origin";
    Engine engine(push_settings(base));
    const auto c = engine.add_channel(channel("Pushed", {origin.url()}));
    engine.start(c.id);
    const fs::path out = nginx.www() / "origin" / c.id;

    // The playlists arrive once the segments they name did.
    REQUIRE(wait_until([&] { return fs::exists(out / "index.m3u8") && fs::exists(out / "master.m3u8"); },
                       std::chrono::seconds(60)));
    const std::string first_playlist = slurp_file(out / "index.m3u8");
    INFO("first pushed playlist:\n" << first_playlist);
    std::vector<std::string> first_names;
    {
        std::istringstream lines(first_playlist);
        for (std::string line; std::getline(lines, line);)
            if (!line.empty() && line[0] != '#') first_names.push_back(line);
    }
    REQUIRE_FALSE(first_names.empty());
    for (const auto& n : first_names) CHECK(fs::exists(out / n));

    // ffmpeg plays the channel from the origin.
    Child ffmpeg;
    const std::string log = (nginx.dir.path / "ffmpeg.log").string();
    REQUIRE(ffmpeg.spawn({"/usr/bin/ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-i",
                          nginx.url() + "/origin/" + c.id + "/index.m3u8", "-t", "4", "-f", "null", "-"},
                         log));
    const int rc = ffmpeg.wait(120);
    INFO("ffmpeg: " << slurp_file(log));
    CHECK(rc == 0);

    // Segments that left the window are DELETEd after their grace: the first ones go, newer ones stay.
    CHECK(wait_until([&] { return !fs::exists(out / first_names.front()); }, std::chrono::seconds(90)));
    CHECK(fs::exists(out / "index.m3u8"));
    const auto p = push_of(engine, c.id);
    REQUIRE(p);
    CHECK(p->pushed > 0);
    CHECK(p->failed == 0);
    CHECK(p->dropped == 0);
    const std::string json = to_json(engine.status(c.id)).dump();
    INFO(json);
    CHECK(json.find("pushsecret") == std::string::npos);
    CHECK(json.find("\"push\":{") != std::string::npos);
    // nginx logs a request once it answered it: the file may be gone a moment before the line is there.
    CHECK(wait_until([&] { return slurp_file(nginx.dir.path / "access.log").find("\"DELETE /origin/" + c.id + "/seg_") != std::string::npos; },
                     std::chrono::seconds(30)));
    engine.stop(c.id);
}

TEST_CASE("push: a hanging origin stalls neither the channel nor the queue's bounds, and drops show in status", "[push]") {
    TextOrigin sink;
    TextOrigin::Answer hang;
    hang.hang = true;
    sink.set_fallback(hang);
    LiveOrigin origin(live_media(), {.speed = 4.0});
    origin.start();
    EngineSettings s = push_settings(sink.url("/hang"));
    s.push.max_queue_items = 4;
    s.push.attempts = 2;
    Engine engine(s);
    const auto c = engine.add_channel(channel("Hung", {origin.url()}));
    const auto other = engine.add_channel(channel("Neighbour", {origin.url()}));
    engine.start(c.id);
    engine.start(other.id);

    int64_t most_queued = 0;
    // The channel publishes on while every push hangs until its deadline.
    const bool published = wait_until(
        [&] {
            const ChannelStatus st = engine.status(c.id);
            if (st.push) most_queued = std::max(most_queued, st.push->queued);
            return st.segments_published >= 12 && st.push && st.push->dropped > 0;
        },
        std::chrono::seconds(120));
    const ChannelStatus st = engine.status(c.id);
    INFO(to_json(st).dump());
    CHECK(published);
    CHECK(engine.status(other.id).segments_published >= 6);  // its neighbour too
    // At most the limit waiting plus the one in flight.
    CHECK(most_queued <= s.push.max_queue_items + 1);
    REQUIRE(st.push);
    CHECK(st.push->dropped > 0);
    CHECK(st.push->pushed == 0);
    CHECK(engine.read(c.id, "index.m3u8").has_value());  // served from memory as ever
    // A stopped channel stops its pusher (the request in flight is abandoned).
    engine.stop(c.id);
    engine.stop(other.id);
    CHECK_FALSE(engine.running(c.id));
}

TEST_CASE("push: an origin answering 500 is retried with backoff, then counted failed, and no playlist names what failed", "[push]") {
    TextOrigin sink;
    sink.set_fallback(TextOrigin::Answer{500, "text/plain", "broken"});
    LiveOrigin origin(live_media(), {.speed = 2.0});
    origin.start();
    EngineSettings s = push_settings(sink.url("/fail"));
    s.push.attempts = 3;
    s.push.retry_first = 0.2;
    Engine engine(s);
    const auto c = engine.add_channel(channel("Failing", {origin.url()}));
    engine.start(c.id);

    REQUIRE(wait_until([&] { auto p = push_of(engine, c.id); return p && p->failed >= 2; }, std::chrono::seconds(120)));
    const ChannelStatus st = engine.status(c.id);
    INFO(to_json(st).dump());
    REQUIRE(st.push);
    CHECK(st.push->pushed == 0);
    CHECK(st.push->retries >= 2 * 2);  // each failed request was tried `attempts` times
    CHECK(st.push->last_error.find("500") != std::string::npos);
    // Every failed segment was PUT exactly `attempts` times; no playlist named one.
    const auto seen = sink.received_by_method();
    int segments_given_up = 0;
    for (const auto& [what, count] : seen) {
        INFO(what << " x" << count);
        CHECK(what.rfind("PUT /fail/" + c.id + "/", 0) == 0);
        CHECK(count <= 3);
        if (what.find("/seg_") != std::string::npos && count == 3) ++segments_given_up;
        CHECK(what.find(".m3u8") == std::string::npos);
    }
    CHECK(segments_given_up >= 1);
    CHECK(st.push->withheld > 0);
    engine.stop(c.id);
}

TEST_CASE("push: an fMP4 channel pushes its init section once, before the segments that need it", "[push]") {
    TextOrigin sink;
    sink.set_fallback(TextOrigin::Answer{200, "text/plain", ""});
    LiveOrigin origin(live_media(), {.speed = 2.0});
    origin.start();
    EngineSettings s = push_settings(sink.url("/f"));
    s.hls.container = Container::fmp4;
    Engine engine(s);
    const auto c = engine.add_channel(channel("Cmaf", {origin.url()}));
    engine.start(c.id);
    REQUIRE(wait_until([&] { auto p = push_of(engine, c.id); return p && p->pushed >= 8; }, std::chrono::seconds(60)));
    int inits = 0, segments = 0;
    for (const auto& [what, n] : sink.received_by_method()) {
        INFO(what << " x" << n);
        if (what.find("/init_") != std::string::npos) {
            ++inits;
            CHECK(n == 1);
        }
        if (what.rfind("PUT /f/" + c.id + "/seg_", 0) == 0 && what.ends_with(".m4s")) ++segments;
    }
    CHECK(inits == 1);
    CHECK(segments >= 2);
    engine.stop(c.id);
}

TEST_CASE("push: push_url must be http or https", "[push]") {
    for (const char* bad : {"ftp://origin.example/", "origin.example", "file:///tmp/x", "http://", "http://h/p?q=1"}) {
        EngineSettings s = quick_settings();
        s.push_url = bad;
        INFO(bad);
        try {
            Engine e(s);
            FAIL("accepted");
        } catch (const Error& e) {
            CHECK(std::string(e.what()).find("push_url") != std::string::npos);
        }
    }
    EngineSettings s = quick_settings();
    s.push_url = "https://user:hunter2@cdn.example/ingest";
    try {
        s.push.max_queue_items = 1;
        Engine e(s);
        FAIL("accepted");
    } catch (const Error& e) {
        CHECK(std::string(e.what()).find("max_queue_items") != std::string::npos);
    }
    CHECK(push_problem("ftp://user:hunter2@x/", PushSettings{}).find("hunter2") == std::string::npos);
}

}  // namespace hlsrelay::test
