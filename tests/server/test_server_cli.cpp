// Tests of the hlsrelay-server binary itself: --help/--version, a JSON channel list, the startup line,
// the missing-demo-media error and a clean exit (code 0) on SIGTERM and SIGINT.
#include "options.hpp"
#include "server_fixture.hpp"
#include "support/text_origin.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <tuple>

extern char** environ;

using namespace hlsrelay::test;
using namespace std::chrono_literals;

namespace {

// The server binary as a child process with its stdout+stderr captured; killed if still running at the end.
class Child {
public:
    explicit Child(std::vector<std::string> args) {
        args.insert(args.begin(), HLSRELAY_SERVER_BINARY);
        int fds[2];
        REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
        posix_spawn_file_actions_adddup2(&actions, fds[1], 2);
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        const int rc = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
        posix_spawn_file_actions_destroy(&actions);
        ::close(fds[1]);
        out_fd_ = fds[0];
        REQUIRE(rc == 0);
    }
    ~Child() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
        ::close(out_fd_);
    }
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;

    // Reads output until `pattern` matches it or `timeout` passes; returns the match's first group.
    std::optional<std::string> wait_for_output(const std::regex& pattern, std::chrono::milliseconds timeout) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            std::smatch m;
            if (std::regex_search(output_, m, pattern)) return m.size() > 1 ? m[1].str() : m[0].str();
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0 || !read_some(left)) return std::nullopt;
        }
    }
    // Waits for the exit; nullopt on timeout. Collects the remaining output.
    std::optional<int> wait_exit(std::chrono::milliseconds timeout) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < deadline) {
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                while (read_some(100ms)) {
                }
                return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            }
            read_some(50ms);
        }
        return std::nullopt;
    }
    void signal(int sig) { ::kill(pid_, sig); }
    const std::string& output() const { return output_; }

private:
    bool read_some(std::chrono::milliseconds timeout) {
        pollfd p{out_fd_, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return false;
        char buf[4096];
        const ssize_t n = ::read(out_fd_, buf, sizeof buf);
        if (n <= 0) return false;
        output_.append(buf, static_cast<std::size_t>(n));
        return true;
    }
    pid_t pid_ = -1;
    int out_fd_ = -1;
    std::string output_;
};

const std::regex kStartup(R"(info hlsrelay-server \S+ serving \d+ channel\(s\) at http://127\.0\.0\.1:(\d+)/)");

}  // namespace

TEST_CASE("binary prints help and version") {
    Child help({"--help"});
    CHECK(help.wait_exit(10s) == 0);
    CHECK(help.output().find("Usage: hlsrelay-server") != std::string::npos);
    CHECK(help.output().find("--on-demand") != std::string::npos);
    Child version({"--version"});
    CHECK(version.wait_exit(10s) == 0);
    CHECK(version.output() == std::string("hlsrelay-server ") + hlsrelay::server::version() + "\n");
    Child bad({"--listen", "nonsense"});
    CHECK(bad.wait_exit(10s) == 2);
    CHECK(bad.output().find("--listen") != std::string::npos);
}

TEST_CASE("binary serves a JSON channel list and exits 0 on SIGTERM and SIGINT") {
    const MediaSet& media = server_media();
    const std::string list = media_root() + "/cli-channels-" + std::to_string(::getpid()) + ".json";
    {
        std::ofstream out(list);
        out << nlohmann::json{{"channels", {{{"id", "clip"}, {"name", "Clip"}, {"url", media.single_file}, {"loop", true}}}}}.dump();
    }
    for (int sig : {SIGTERM, SIGINT}) {
        INFO("signal " << sig);
        Child server({"--channels", list, "--listen", "127.0.0.1:0", "--segment-duration", "1", "--log-level", "info"});
        const auto port = server.wait_for_output(kStartup, 15s);
        INFO(server.output());
        REQUIRE(port);
        const std::string base = "http://127.0.0.1:" + *port;
        CHECK(http_get(base + "/healthz").body == R"({"status":"ok","channels":1,"running":0})");
        CHECK(http_get(base + "/api/v1/channels/clip/start", 10s, "POST").status == 200);
        REQUIRE(wait_until([&] { return http_get(base + "/hls_streams/clip/index.m3u8").status == 200; }, 20s));
        server.signal(sig);
        const auto code = server.wait_exit(10s);
        INFO(server.output());
        CHECK(code == 0);
        CHECK(server.output().find("stopped") != std::string::npos);
    }
    std::filesystem::remove(list);
}

TEST_CASE("binary names the set-up script when the demo media is missing") {
    Child server({"--media-dir", "/nonexistent/media", "--listen", "127.0.0.1:0"});
    CHECK(server.wait_exit(10s) == 1);
    CHECK(server.output().find("/nonexistent/media/demo.ts is missing") != std::string::npos);
    CHECK(server.output().find("make-demo-media.sh") != std::string::npos);
}

TEST_CASE("binary loads the bundled default list against a media dir") {
    const std::string dir = media_root() + "/cli-media-" + std::to_string(::getpid());
    std::filesystem::create_directories(dir);
    std::filesystem::copy_file(server_media().single_file, dir + "/demo.ts", std::filesystem::copy_options::overwrite_existing);
    {
        Child server({"--media-dir", dir, "--listen", "127.0.0.1:0"});
        const auto port = server.wait_for_output(kStartup, 15s);
        INFO(server.output());
        REQUIRE(port);
        const auto list = nlohmann::json::parse(http_get("http://127.0.0.1:" + *port + "/api/v1/channels").body);
        REQUIRE(list["channels"].size() == 1);
        CHECK(list["channels"][0]["id"] == "demo");
        CHECK(list["channels"][0]["name"] == "hlsrelay Demo");
        CHECK(list["channels"][0]["loop"] == true);
        server.signal(SIGTERM);
        CHECK(server.wait_exit(10s) == 0);
    }
    std::filesystem::remove_all(dir);
}

TEST_CASE("the fetch limit options reach the engine settings, checked against the engine's ranges") {
    using hlsrelay::server::parse_options;
    const auto defaults = parse_options({});
    REQUIRE(defaults.options);
    CHECK(defaults.options->limits.max_playlist_bytes == hlsrelay::FetchLimits{}.max_playlist_bytes);
    CHECK(defaults.options->limits.max_segment_bytes == hlsrelay::FetchLimits{}.max_segment_bytes);
    CHECK(defaults.options->limits.max_redirects == hlsrelay::FetchLimits{}.max_redirects);
    const auto p = parse_options({"--max-playlist-bytes", "65536", "--max-segment-bytes=8388608", "--max-redirects", "0"});
    REQUIRE(p.options);
    CHECK(p.options->limits.max_playlist_bytes == 65536);
    CHECK(p.options->limits.max_segment_bytes == 8388608);
    CHECK(p.options->limits.max_redirects == 0);
    CHECK(hlsrelay::limits_problem(p.options->limits).empty());  // what the engine accepts
    for (const auto& [name, value] : std::vector<std::pair<std::string, std::string>>{{"--max-playlist-bytes", "4095"},
                                                                                      {"--max-segment-bytes", "8M"},
                                                                                      {"--max-segment-bytes", "1e12"},
                                                                                      {"--max-redirects", "21"},
                                                                                      {"--max-redirects", "-1"}}) {
        INFO(name << " " << value);
        const auto bad = parse_options({name, value});
        CHECK_FALSE(bad.options);
        CHECK(bad.exit_code == 2);
        CHECK(bad.output.find(name) != std::string::npos);
    }
    CHECK(hlsrelay::server::usage().find("--max-segment-bytes N") != std::string::npos);
    Child bad({"--max-redirects", "99", "--listen", "127.0.0.1:0"});
    CHECK(bad.wait_exit(10s) == 2);
    CHECK(bad.output().find("--max-redirects must be a number within 0..20") != std::string::npos);
}

TEST_CASE("options: --container and --renditions reach the engine settings, bad values are refused by name") {
    using hlsrelay::server::parse_options;
    const auto defaults = parse_options({});
    REQUIRE(defaults.options);
    CHECK(defaults.options->container == hlsrelay::Container::ts);
    CHECK(defaults.options->renditions == "all");
    const auto p = parse_options({"--container", "fmp4", "--renditions=1080p,360p"});
    REQUIRE(p.options);
    CHECK(p.options->container == hlsrelay::Container::fmp4);
    CHECK(p.options->renditions == "1080p,360p");
    for (const auto& [name, value, says] : std::vector<std::tuple<std::string, std::string, std::string>>{
             {"--container", "mp4", "--container wants ts or fmp4, not 'mp4'"},
             {"--renditions", "best", "renditions must be all, highest, lowest"},
             {"--renditions", "max-height=", "renditions must be"},
             {"--renditions", "1080p,,720p", "renditions must be"}}) {
        INFO(name << " " << value);
        const auto bad = parse_options({name, value});
        CHECK_FALSE(bad.options);
        CHECK(bad.exit_code == 2);
        CHECK(bad.output.find(name + ": " + says) != std::string::npos);
    }
    CHECK(hlsrelay::server::usage().find("--container C") != std::string::npos);
    CHECK(hlsrelay::server::usage().find("--renditions SEL") != std::string::npos);

    // The running server reports them as its HLS settings.
    const MediaSet& media = server_media();
    const std::string list = media_root() + "/cli-settings-" + std::to_string(::getpid()) + ".json";
    {
        std::ofstream out(list);
        out << nlohmann::json{{"channels", {{{"id", "clip"}, {"name", "Clip"}, {"url", media.single_file}}}}}.dump();
    }
    Child server({"--channels", list, "--listen", "127.0.0.1:0", "--container", "fmp4", "--renditions", "max-height=720"});
    const auto port = server.wait_for_output(kStartup, 15s);
    INFO(server.output());
    REQUIRE(port);
    const auto all = nlohmann::json::parse(http_get("http://127.0.0.1:" + *port + "/api/v1/channels/streams-status").body);
    CHECK(all["hls_config"]["container"] == "fmp4");
    CHECK(all["hls_config"]["renditions"] == "max-height=720");
    server.signal(SIGTERM);
    CHECK(server.wait_exit(10s) == 0);
    std::filesystem::remove(list);
}

TEST_CASE("options: --autostart takes all or none or a list of ids and excludes --on-demand") {
    using namespace hlsrelay::server;
    const auto defaults = parse_options({});
    REQUIRE(defaults.options);
    CHECK(defaults.options->autostart == Autostart::list_default);
    auto p = parse_options({"--autostart", "all"});
    REQUIRE(p.options);
    CHECK(p.options->autostart == Autostart::all);
    p = parse_options({"--autostart=none"});
    REQUIRE(p.options);
    CHECK(p.options->autostart == Autostart::none);
    p = parse_options({"--autostart", "b,a"});
    REQUIRE(p.options);
    CHECK(p.options->autostart == Autostart::listed);
    CHECK(p.options->autostart_ids == std::vector<std::string>{"b", "a"});
    for (const char* bad : {"", "a,,b", ",a", "a,"}) {
        INFO("'" << bad << "'");
        const auto r = parse_options({"--autostart", bad});
        CHECK_FALSE(r.options);
        CHECK(r.exit_code == 2);
    }
    const auto both = parse_options({"--on-demand", "--autostart", "all"});
    CHECK_FALSE(both.options);
    CHECK(both.output.find("exclude each other") != std::string::npos);
    CHECK(parse_options({"--on-demand", "--autostart", "none"}).options);
    CHECK(usage().find("--autostart WHAT") != std::string::npos);

    // What starts: the bundled list by default, a --channels list not, unless --autostart says so.
    std::vector<hlsrelay::ChannelConfig> loaded(2);
    loaded[0].id = "a";
    loaded[0].name = "Channel A";
    loaded[1].id = "b";
    loaded[1].name = "Channel B";
    Options o;
    CHECK(channels_to_autostart(o, loaded) == std::vector<std::string>{"a", "b"});
    o.on_demand = true;
    CHECK(channels_to_autostart(o, loaded).empty());
    o.on_demand = false;
    o.channels = {"list.m3u"};
    CHECK(channels_to_autostart(o, loaded).empty());
    o.autostart = Autostart::all;
    CHECK(channels_to_autostart(o, loaded) == std::vector<std::string>{"a", "b"});
    o.autostart = Autostart::listed;
    o.autostart_ids = {"Channel B", "a", "b"};  // names work too; each starts once
    CHECK(channels_to_autostart(o, loaded) == std::vector<std::string>{"b", "a"});
    o.autostart_ids = {"a", "nope"};
    CHECK_THROWS_WITH(channels_to_autostart(o, loaded), Catch::Contains("no channel 'nope'"));
}

TEST_CASE("binary starts nothing of a --channels list by default and what --autostart names") {
    const MediaSet& media = server_media();
    const std::string list = media_root() + "/cli-autostart-" + std::to_string(::getpid()) + ".json";
    {
        nlohmann::json channels = nlohmann::json::array();
        for (const char* id : {"one", "two", "three"})
            channels.push_back({{"id", id}, {"name", std::string("Channel ") + id}, {"url", media.single_file}, {"loop", true}});
        std::ofstream out(list);
        out << nlohmann::json{{"channels", channels}}.dump();
    }
    auto running = [](const std::string& base) {
        std::set<std::string> ids;
        const auto reply = nlohmann::json::parse(http_get(base + "/api/v1/channels").body);
        for (const auto& c : reply.at("channels"))
            if (c["running"].get<bool>()) ids.insert(c["id"].get<std::string>());
        return ids;
    };
    struct Case {
        std::vector<std::string> extra;
        std::set<std::string> started;
        const char* log;
    };
    for (const Case& c : std::vector<Case>{{{}, {}, "no channel started at launch"},
                                           {{"--autostart", "three,one"}, {"one", "three"}, "started at launch: three, one"},
                                           {{"--autostart=all"}, {"one", "two", "three"}, "started at launch: one, two, three"}}) {
        std::vector<std::string> args{"--channels", list, "--listen", "127.0.0.1:0", "--segment-duration", "1"};
        args.insert(args.end(), c.extra.begin(), c.extra.end());
        Child server(args);
        const auto port = server.wait_for_output(kStartup, 15s);
        INFO(server.output());
        REQUIRE(port);
        const std::string base = "http://127.0.0.1:" + *port;
        CHECK(running(base) == c.started);
        CHECK(server.wait_for_output(std::regex(c.log), 10s));
        // A started channel plays (its first playlist appears); the others stay stopped.
        for (const auto& id : c.started)
            CHECK(wait_until([&] { return http_get(base + "/hls_streams/" + id + "/index.m3u8").status == 200; }, 30s));
        CHECK(running(base) == c.started);
        server.signal(SIGTERM);
        CHECK(server.wait_exit(10s) == 0);
    }
    Child unknown({"--channels", list, "--listen", "127.0.0.1:0", "--autostart", "one,nope"});
    CHECK(unknown.wait_exit(10s) == 1);
    CHECK(unknown.output().find("--autostart: no channel 'nope' in the channel list") != std::string::npos);
    std::filesystem::remove(list);
}

TEST_CASE("binary fetches a --channels URL in the background and reports it at GET /api/v1/lists") {
    const MediaSet& media = server_media();
    const std::string file_list = media_root() + "/cli-url-lists-" + std::to_string(::getpid()) + ".json";
    {
        std::ofstream out(file_list);
        out << nlohmann::json{{"channels", {{{"id", "mine"}, {"name", "Mine"}, {"url", media.single_file}, {"loop", true}}}}}.dump();
    }
    TextOrigin provider;
    provider.set("/get.php", "#EXTM3U\n#EXTINF:-1 tvg-id=\"p1\",Provider One\nhttp://127.0.0.1:1/live/u/s3cret/1.ts\n"
                             "#EXTINF:-1 tvg-id=\"p2\",Provider Two\nhttp://127.0.0.1:1/live/u/s3cret/2.ts\n");
    const std::string url = provider.url("/get.php?username=u&password=s3cret&type=m3u_plus");
    Child server({"--channels", url, "--channels", file_list, "--list-refresh", "3600", "--listen", "127.0.0.1:0",
                  "--log-level", "info", "--api-token", "tok"});
    const auto port = server.wait_for_output(kStartup, 15s);
    INFO(server.output());
    REQUIRE(port);
    const std::string base = "http://127.0.0.1:" + *port;
    const std::map<std::string, std::string> auth{{"Authorization", "Bearer tok"}};
    CHECK(http_get(base + "/api/v1/lists").status == 401);  // a registry endpoint: the token is needed
    nlohmann::json lists;
    REQUIRE(wait_until([&] {
        const auto r = http_get(base + "/api/v1/lists", 5s, "GET", auth);
        if (r.status != 200) return false;
        lists = nlohmann::json::parse(r.body).at("lists");
        return lists.size() == 1 && !lists[0]["fetched_at"].is_null();
    }, 30s));
    CHECK(lists[0]["channels"] == 2);
    CHECK(lists[0]["url"] == "http://127.0.0.1:" + std::to_string(provider.port()) + "/get.php?***");
    CHECK(lists.dump().find("s3cret") == std::string::npos);
    const auto channels = nlohmann::json::parse(http_get(base + "/api/v1/channels", 5s, "GET", auth).body).at("channels");
    std::set<std::string> ids;
    for (const auto& c : channels) {
        ids.insert(c["id"].get<std::string>());
        CHECK_FALSE(c["running"].get<bool>());  // neither the file's nor the URL list's start by default
    }
    CHECK(ids == std::set<std::string>{"mine", "p1", "p2"});
    const int fetched = provider.requests("/get.php");
    CHECK(http_get(base + "/api/v1/lists/refresh", 5s, "POST", auth).status == 200);
    CHECK(provider.wait_requests("/get.php", fetched + 1, 60));  // at most 30 s after the last fetch
    server.signal(SIGTERM);
    CHECK(server.wait_exit(10s) == 0);
    CHECK(server.output().find("s3cret") == std::string::npos);
    CHECK(server.output().find("channel list") != std::string::npos);
    std::filesystem::remove(file_list);
}

TEST_CASE("options: --channels repeats, takes files and URLs, and --list-refresh is bounded") {
    using hlsrelay::server::parse_options;
    auto p = parse_options({"--channels", "a.m3u", "--channels", "http://p/get.php?x=1", "--list-refresh", "600"});
    REQUIRE(p.options);
    CHECK(p.options->channels == std::vector<std::string>{"a.m3u", "http://p/get.php?x=1"});
    CHECK(p.options->list_refresh_interval == 600);
    CHECK(parse_options({}).options->list_refresh_interval == hlsrelay::kListRefreshInterval);
    for (const char* bad : {"10", "nan", "-1"}) {
        p = parse_options({"--list-refresh", bad});
        CHECK_FALSE(p.options);
        CHECK(p.exit_code == 2);
    }
}

TEST_CASE("options: the failover settings reach the engine settings, bad values are refused by name") {
    using hlsrelay::server::parse_options;
    const auto defaults = parse_options({});
    REQUIRE(defaults.options);
    CHECK(defaults.options->failover.failback_after == hlsrelay::FailoverSettings{}.failback_after);
    const auto p = parse_options({"--failover-attempts", "3", "--failover-cooldown", "5", "--failover-cooldown-max=40",
                                  "--failover-probe-interval", "2", "--failback-after", "0"});
    REQUIRE(p.options);
    CHECK(p.options->failover.attempts_per_url == 3);
    CHECK(p.options->failover.cooldown == 5);
    CHECK(p.options->failover.cooldown_max == 40);
    CHECK(p.options->failover.probe_interval == 2);
    CHECK(p.options->failover.failback_after == 0);
    CHECK(hlsrelay::failover_problem(p.options->failover).empty());  // what the engine accepts
    for (const auto& [name, value, says] : std::vector<std::tuple<std::string, std::string, std::string>>{
             {"--failover-attempts", "0", "--failover-attempts"},
             {"--failover-cooldown", "0", "--failover-cooldown"},
             {"--failback-after", "-1", "--failback-after"},
             {"--failover-cooldown-max", "1", "cooldown_max"}}) {  // below the default cooldown of 30 s
        INFO(name << " " << value);
        const auto bad = parse_options({name, value});
        CHECK_FALSE(bad.options);
        CHECK(bad.exit_code == 2);
        CHECK(bad.output.find(says) != std::string::npos);
    }
    CHECK(hlsrelay::server::usage().find("--failback-after S") != std::string::npos);
}

TEST_CASE("options: --reload-schedule takes aligned or rfc, aligned by default") {
    using hlsrelay::server::parse_options;
    const auto defaults = parse_options({});
    REQUIRE(defaults.options);
    CHECK(defaults.options->align_reloads);
    const auto rfc = parse_options({"--reload-schedule", "rfc"});
    REQUIRE(rfc.options);
    CHECK_FALSE(rfc.options->align_reloads);
    const auto aligned = parse_options({"--reload-schedule=aligned"});
    REQUIRE(aligned.options);
    CHECK(aligned.options->align_reloads);
    const auto bad = parse_options({"--reload-schedule", "soon"});
    CHECK_FALSE(bad.options);
    CHECK(bad.exit_code == 2);
    CHECK(bad.output.find("--reload-schedule wants aligned or rfc, not 'soon'") != std::string::npos);
}

TEST_CASE("binary refuses a corrupt --state file with a message naming it") {
    const std::string dir = "/tmp/hlsrelay-cli-state-" + std::to_string(::getpid());
    std::filesystem::create_directories(dir);
    const std::string state = dir + "/state.json", list = dir + "/list.json";
    std::ofstream(list) << R"([{"id": "a", "name": "A", "url": "http://127.0.0.1:1/a.m3u8"}])";
    std::ofstream(state) << "{\"hlsrelay_state\": ";
    Child server({"--channels", list, "--state", state, "--listen", "127.0.0.1:0"});
    CHECK(server.wait_exit(10s) == 1);
    CHECK(server.output().find(state + " is corrupt") != std::string::npos);
    std::filesystem::remove_all(dir);
}

TEST_CASE("options: --push-url takes http(s) URLs only and never echoes credentials") {
    using hlsrelay::server::parse_options;
    CHECK(parse_options({}).options->push_url.empty());
    const auto p = parse_options({"--push-url", "https://ingest:s3cret@cdn.example/live"});
    REQUIRE(p.options);
    CHECK(p.options->push_url == "https://ingest:s3cret@cdn.example/live");
    for (const std::string bad : {"ftp://user:s3cret@cdn.example/live", "cdn.example/live", "http://"}) {
        INFO(bad);
        const auto refused = parse_options({"--push-url", bad});
        CHECK_FALSE(refused.options);
        CHECK(refused.exit_code == 2);
        CHECK(refused.output.find("--push-url") != std::string::npos);
        CHECK(refused.output.find("s3cret") == std::string::npos);
    }
    CHECK(hlsrelay::server::usage().find("--push-url URL") != std::string::npos);
}
