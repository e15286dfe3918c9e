// Unit tests of the pure parts of request handling: routes, 404/405, decoding, traversal attempts,
// byte ranges, command-line options, the default list's relative sources and viewer bookkeeping.
#include "activity.hpp"
#include "bundled.hpp"
#include "http.hpp"
#include "metrics.hpp"
#include "options.hpp"
#include "router.hpp"

#include <hlsrelay/registry.hpp>

#include <catch2/catch.hpp>

#include <fstream>
#include <iterator>
#include <string>
#include <tuple>

using namespace hlsrelay::server;

TEST_CASE("router finds every endpoint") {
    struct Case {
        const char* method;
        const char* target;
        RouteKind kind;
        const char* channel;
        const char* file;
        hlsrelay::api::Endpoint endpoint;
        const char* api = "";  // the endpoint table's row name (RouteKind::endpoint)
    };
    using E = hlsrelay::api::Endpoint;
    const Case cases[] = {
        {"GET", "/", RouteKind::index, "", "", E::status},
        {"HEAD", "/", RouteKind::index, "", "", E::status},
        {"GET", "/assets/hls.min.js", RouteKind::asset, "", "hls.min.js", E::status},
        {"GET", "/healthz", RouteKind::healthz, "", "", E::health},
        {"GET", "/metrics", RouteKind::metrics, "", "", E::status},
        {"GET", "/hls_streams/demo/master.m3u8", RouteKind::hls, "demo", "master.m3u8", E::media},
        {"HEAD", "/hls_streams/demo/index.m3u8", RouteKind::hls, "demo", "index.m3u8", E::media},
        {"GET", "/hls_streams/news-1/seg_1795497489.ts", RouteKind::hls, "news-1", "seg_1795497489.ts", E::media},
        // A presentation's renditions: one "<v|a|s><n>/" level.
        {"GET", "/hls_streams/demo/v0/index.m3u8", RouteKind::hls, "demo", "v0/index.m3u8", E::media},
        {"GET", "/hls_streams/demo/v12/seg_7.ts", RouteKind::hls, "demo", "v12/seg_7.ts", E::media},
        {"HEAD", "/hls_streams/demo/a1/init_0.mp4", RouteKind::hls, "demo", "a1/init_0.mp4", E::media},
        {"GET", "/hls_streams/demo/a0/seg_3.m4s", RouteKind::hls, "demo", "a0/seg_3.m4s", E::media},
        {"GET", "/hls_streams/demo/s0/seg_3.vtt", RouteKind::hls, "demo", "s0/seg_3.vtt", E::media},
        {"GET", "/api/v1/channels", RouteKind::endpoint, "", "", E::registry, "channels"},
        {"GET", "/api/v1/channels/streams-status", RouteKind::endpoint, "", "", E::status, "streams-status"},
        {"GET", "/api/v1/channels/static-hls-m3u", RouteKind::endpoint, "", "", E::status, "static-hls-m3u"},
        {"GET", "/api/v1/channels/start-stream/demo", RouteKind::endpoint, "demo", "", E::control, "start-stream"},
        {"GET", "/api/v1/channels/stop-stream/demo", RouteKind::endpoint, "demo", "", E::control, "stop-stream"},
        {"GET", "/api/v1/channels/stream-status/demo", RouteKind::endpoint, "demo", "", E::status, "stream-status"},
        {"POST", "/api/v1/channels/demo/start", RouteKind::endpoint, "demo", "", E::control, "start-stream"},
        {"POST", "/api/v1/channels/demo/stop", RouteKind::endpoint, "demo", "", E::control, "stop-stream"},
        // Display names are percent-decoded; '+' is literal in a path.
        {"GET", "/api/v1/channels/stream-status/News%20HD+1", RouteKind::endpoint, "News HD+1", "", E::status, "stream-status"},
        {"GET", "/api/v1/channels/stream-status/Caf%C3%A9", RouteKind::endpoint, "Caf\xC3\xA9", "", E::status, "stream-status"},
        // The same path shape means different things by method.
        {"GET", "/api/v1/channels/start-stream/start", RouteKind::endpoint, "start", "", E::control, "start-stream"},
        {"POST", "/api/v1/channels/start-stream/start", RouteKind::endpoint, "start-stream", "", E::control, "start-stream"},
        // Absolute-form targets are accepted.
        {"GET", "http://example:8000/healthz?x=1", RouteKind::healthz, "", "", E::health},
        {"GET", "/stream/news-1.ts", RouteKind::ts_stream, "news-1", "", E::media},
        {"HEAD", "/stream/news-1.ts", RouteKind::ts_stream, "news-1", "", E::media},
        {"GET", "/auto/v5.1", RouteKind::tuner_auto, "5.1", "", E::media},
        {"GET", "/auto/v12?transcode=mobile", RouteKind::tuner_auto, "12", "", E::media},  // Jellyfin's query
        {"GET", "/discover.json", RouteKind::endpoint, "", "", E::status, "discover"},
        {"GET", "/lineup.json", RouteKind::endpoint, "", "", E::status, "lineup"},
        {"GET", "/lineup_status.json", RouteKind::endpoint, "", "", E::status, "lineup-status"},
        {"POST", "/lineup.post?scan=start", RouteKind::endpoint, "", "", E::status, "lineup-post"},
        {"GET", "/device.xml", RouteKind::endpoint, "", "", E::status, "device-xml"},
        {"GET", "/playlist.m3u", RouteKind::endpoint, "", "", E::status, "playlist"},
        {"GET", "/epg.xml", RouteKind::endpoint, "", "", E::status, "epg"},
        {"HEAD", "/epg.xml.gz", RouteKind::endpoint, "", "", E::status, "epg-gz"},
        {"GET", "/api/v1/guide", RouteKind::endpoint, "", "", E::status, "guide"},
        {"POST", "/api/v1/guide/refresh", RouteKind::endpoint, "", "", E::control, "guide-refresh"},
        {"GET", "/api/v1/lists", RouteKind::endpoint, "", "", E::registry, "lists"},
        {"HEAD", "/api/v1/lists", RouteKind::endpoint, "", "", E::registry, "lists"},
        {"POST", "/api/v1/lists/refresh", RouteKind::endpoint, "", "", E::control, "lists-refresh"},
    };
    for (const Case& c : cases) {
        INFO(c.method << " " << c.target);
        const Route r = route(c.method, c.target);
        CHECK(r.kind == c.kind);
        CHECK(r.channel == c.channel);
        CHECK(r.file == c.file);
        CHECK(r.endpoint == c.endpoint);
        CHECK(r.head == (std::string(c.method) == "HEAD"));
        CHECK(std::string(r.api ? r.api->name : "") == c.api);
        if (r.api) CHECK(r.api->method == (std::string(c.method) == "HEAD" ? "GET" : c.method));
    }
}

TEST_CASE("router parses the query") {
    const Route r = route("GET", "/api/v1/channels?token=a%20b+c&token=second&empty&x=");
    CHECK(r.kind == RouteKind::endpoint);
    CHECK(r.query.at("token") == "a b c");  // the first wins
    CHECK(r.query.at("empty").empty());
    CHECK(r.query.count("x") == 1);
    CHECK(route("GET", "/healthz?bad=%zz").status == 400);
}

TEST_CASE("router answers unknown paths with 404") {
    for (const char* target : {"/nope", "/stream/news.m3u8", "/stream/.ts", "/stream/News%20HD.ts", "/stream/a/b.ts", "/auto/5", "/auto/v", "/api/v1", "/api/v1/channels/", "/api/v1/channels/start-stream/",
                               "/hls_streams/demo", "/hls_streams/demo/",
                               "/hls_streams/demo/other.m3u8", "/hls_streams/demo/seg_01.ts", "/hls_streams/demo/seg_x.ts",
                               "/hls_streams/Demo/master.m3u8", "/hls_streams/News%20HD/master.m3u8",
                               "/hls_streams/demo/master.m3u8/x", "/assets/other.js", "/assets/", "/index.html",
                               "/assets/hls.js", "//healthz", "/hls_streams/demo/v01/index.m3u8",
                               "/hls_streams/demo/v0/master.m3u8", "/hls_streams/demo/x0/index.m3u8",
                               "/hls_streams/demo/v0/v0/index.m3u8", "/hls_streams/demo/v/index.m3u8",
                               "/hls_streams/demo/v0/other.m3u8", "/hls_streams/demo/V0/index.m3u8",
                               "/hls_streams/demo/v0/.index.m3u8", "/hls_streams/demo/v0x/seg_1.ts"}) {
        INFO(target);
        const Route r = route("GET", target);
        CHECK(r.kind == RouteKind::error);
        CHECK(r.status == 404);
    }
}

TEST_CASE("router answers wrong methods with 405 and Allow") {
    Route r = route("POST", "/hls_streams/demo/master.m3u8");
    CHECK(r.kind == RouteKind::error);
    CHECK(r.status == 405);
    CHECK(r.allow == "GET, HEAD, OPTIONS");
    r = route("GET", "/api/v1/channels/demo/start");
    CHECK(r.status == 405);
    CHECK(r.allow == "POST, OPTIONS");
    r = route("DELETE", "/api/v1/channels/start-stream/stop");  // both shapes match this path
    CHECK(r.status == 405);
    CHECK(r.allow == "GET, POST, OPTIONS");
    r = route("HEAD", "/api/v1/channels/start-stream/demo");  // starting is not safe, so no HEAD
    CHECK(r.status == 405);
    CHECK(r.allow == "GET, OPTIONS");
    CHECK(route("PUT", "/nope").status == 404);  // unknown path wins over method
    // "/api/v1/channels/{channel_name}" is a channel (PATCH, DELETE), so a GET of it is a wrong method.
    r = route("GET", "/api/v1/channels/stream-status");
    CHECK(r.status == 405);
    CHECK(r.allow == "PATCH, DELETE, OPTIONS");
}

TEST_CASE("router routes the channel management methods to their rows") {
    Route r = route("POST", "/api/v1/channels");
    REQUIRE(r.kind == RouteKind::endpoint);
    CHECK(r.api->name == "channel-add");
    CHECK(r.endpoint == hlsrelay::api::Endpoint::control);
    CHECK(route("GET", "/api/v1/channels").api->name == "channels");
    for (auto [method, target, name] : {std::tuple{"PATCH", "/api/v1/channels/News%20HD", "channel-update"},
                                        std::tuple{"DELETE", "/api/v1/channels/News%20HD", "channel-remove"},
                                        std::tuple{"POST", "/api/v1/channels/News%20HD/enable", "channel-enable"},
                                        std::tuple{"POST", "/api/v1/channels/News%20HD/disable", "channel-disable"}}) {
        INFO(method << " " << target);
        r = route(method, target);
        REQUIRE(r.kind == RouteKind::endpoint);
        CHECK(r.api->name == name);
        CHECK(r.channel == "News HD");
        CHECK(r.endpoint == hlsrelay::api::Endpoint::control);
    }
    r = route("PUT", "/api/v1/channels/news");
    CHECK(r.status == 405);
    CHECK(r.allow == "PATCH, DELETE, OPTIONS");
    r = route("OPTIONS", "/api/v1/channels");
    CHECK(r.kind == RouteKind::preflight);
    CHECK(r.allow == "GET, HEAD, POST, OPTIONS");
}

TEST_CASE("router answers OPTIONS preflight on known paths") {
    Route r = route("OPTIONS", "/hls_streams/demo/seg_5.ts");
    CHECK(r.kind == RouteKind::preflight);
    CHECK(r.allow == "GET, HEAD, OPTIONS");
    r = route("OPTIONS", "/api/v1/channels/demo/stop");
    CHECK(r.kind == RouteKind::preflight);
    CHECK(r.allow == "POST, OPTIONS");
    CHECK(r.endpoint == hlsrelay::api::Endpoint::status);  // no cross-origin grant for control paths
    CHECK(route("OPTIONS", "/hls_streams/demo/seg_5.ts").endpoint == hlsrelay::api::Endpoint::media);
    CHECK(route("OPTIONS", "/api/v1/channels/streams-status").endpoint == hlsrelay::api::Endpoint::status);
    CHECK(route("OPTIONS", "*").kind == RouteKind::preflight);
    CHECK(route("OPTIONS", "*").endpoint == hlsrelay::api::Endpoint::status);
    CHECK(route("OPTIONS", "/nope").status == 404);
    CHECK(route("GET", "*").status == 400);
}

TEST_CASE("router refuses traversal and smuggling attempts") {
    const char* targets[] = {
        "/hls_streams/../master.m3u8",
        "/hls_streams/demo/../../etc/passwd",
        "/hls_streams/%2e%2e/master.m3u8",
        "/hls_streams/%2E%2E/%2e%2e/etc/passwd",
        "/hls_streams/demo/..%2f..%2fetc%2fpasswd",
        "/hls_streams/demo%2fmaster.m3u8",
        "/hls_streams/demo%5c..%5cmaster.m3u8",
        "/hls_streams/demo\\..\\master.m3u8",
        "/hls_streams/demo/master.m3u8%00.ts",
        "/hls_streams/demo/v0/../x",
        "/hls_streams/demo/v0%2findex.m3u8",
        "/hls_streams/demo/v0/..%2fmaster.m3u8",
        "/api/v1/channels/stream-status/%00",
        "/api/v1/channels/stream-status/..",
        "/api/v1/channels/stream-status/.",
        "/api/v1/channels/stream-status/a%2fb",
        "/api/v1/channels/stream-status/a%0d%0aX-Injected:%201",
        "/assets/..%2f..%2findex.html",
        "/assets/%2e%2e/hls.min.js",
        "/./healthz",
        "/%2e/healthz",
    };
    for (const char* target : targets) {
        INFO(target);
        const Route r = route("GET", target);
        CHECK(r.kind == RouteKind::error);
        CHECK(r.status == 400);
    }
    // Decoding happens once: a double-encoded dot stays "%2e", which is no id and no traversal.
    for (const char* target : {"/hls_streams/%252e%252e/master.m3u8", "/hls_streams/demo/%252e%252e%252fx"}) {
        INFO(target);
        const Route r = route("GET", target);
        CHECK(r.kind == RouteKind::error);
        CHECK(r.status == 404);
    }
    const Route r = route("GET", "/api/v1/channels/stream-status/%252e%252e");
    REQUIRE(r.kind == RouteKind::endpoint);
    CHECK(r.api->name == "stream-status");
    CHECK(r.channel == "%2e%2e");  // looked up literally in the registry: not found
    // A malformed escape is a bad request, not a literal.
    for (const char* target : {"/hls_streams/%2/master.m3u8", "/hls_streams/demo/master.m3u8%", "/api/v1/channels/stream-status/%g0"}) {
        INFO(target);
        CHECK(route("GET", target).status == 400);
    }
    CHECK(route("GET", "relative/path").status == 400);
}

TEST_CASE("percent_decode is strict") {
    CHECK(percent_decode("a%20b") == std::optional<std::string>("a b"));
    CHECK(percent_decode("a+b") == std::optional<std::string>("a+b"));
    CHECK(percent_decode("a+b", true) == std::optional<std::string>("a b"));
    CHECK_FALSE(percent_decode("%"));
    CHECK_FALSE(percent_decode("%4"));
    CHECK_FALSE(percent_decode("%4g"));
    CHECK(percent_decode("%41%2f") == std::optional<std::string>("A/"));
}

TEST_CASE("response heads carry framing, CORS and keep-alive") {
    Response r;
    r.body = "hello";
    r.set("Content-Type", "text/plain");
    std::string head = serialize_head(r, true, false);
    CHECK(head.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
    CHECK(head.find("\r\nContent-Length: 5\r\n") != std::string::npos);
    CHECK(head.find("Access-Control-Allow-Origin") == std::string::npos);  // only when asked for
    r.cors = true;
    head = serialize_head(r, true, false);
    CHECK(head.find("\r\nAccess-Control-Allow-Origin: *\r\n") != std::string::npos);
    CHECK(head.find("Connection:") == std::string::npos);
    CHECK(head.substr(head.size() - 4) == "\r\n\r\n");
    head = serialize_head(r, false, false);
    CHECK(head.find("\r\nConnection: close\r\n") != std::string::npos);
    head = serialize_head(r, true, true);
    CHECK(head.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
    CHECK(head.find("\r\nConnection: keep-alive\r\n") != std::string::npos);
    Response empty;
    empty.status = 204;
    CHECK(serialize_head(empty, true, false).find("\r\nContent-Length:") == std::string::npos);
}

TEST_CASE("command line options") {
    auto parse = [](std::vector<std::string> args) { return parse_options(args); };
    SECTION("defaults") {
        const auto p = parse({});
        REQUIRE(p.options);
        CHECK(p.options->address == "127.0.0.1");
        CHECK(p.options->port == 8000);
        CHECK(p.options->threads == 2);
        CHECK(p.options->max_connections == 2048);
        CHECK(p.options->idle_timeout == 60);
        CHECK_FALSE(p.options->on_demand);
        CHECK(p.options->hls_dir.empty());
        CHECK(p.options->channels.empty());
    }
    SECTION("every option") {
        const auto p = parse({"--channels", "c.m3u", "--listen=0.0.0.0:9000", "--hls-dir", "/tmp/h", "--state", "/tmp/s.json", "--segment-duration",
                              "1.5", "--max-segments", "7", "--on-demand", "--idle-timeout", "2.5", "--api-token", "t",
                              "--log-level", "debug", "--web-root", "/w", "--media-dir", "/m", "--threads", "3",
                              "--max-connections", "10", "--read-timeout", "1", "--keepalive-timeout", "0.5"});
        REQUIRE(p.options);
        const Options& o = *p.options;
        CHECK(o.channels == std::vector<std::string>{"c.m3u"});
        CHECK(o.address == "0.0.0.0");
        CHECK(o.port == 9000);
        CHECK(o.hls_dir == "/tmp/h");
        CHECK(o.state == "/tmp/s.json");
        CHECK(o.segment_duration == 1.5);
        CHECK(o.max_segments == 7);
        CHECK(o.on_demand);
        CHECK(o.idle_timeout == 2.5);
        CHECK(o.api_token == "t");
        CHECK(o.log_level == hlsrelay::LogLevel::Debug);
        CHECK(o.web_root == "/w");
        CHECK(o.media_dir == "/m");
        CHECK(o.threads == 3);
        CHECK(o.max_connections == 10);
        CHECK(o.read_timeout == 1);
        CHECK(o.keepalive_timeout == 0.5);
    }
    SECTION("help and version exit 0 with text") {
        auto p = parse({"--help"});
        CHECK_FALSE(p.options);
        CHECK(p.exit_code == 0);
        CHECK(p.output.find("--channels FILE") != std::string::npos);
        p = parse({"--version"});
        CHECK(p.exit_code == 0);
        CHECK(p.output == std::string("hlsrelay-server ") + version() + "\n");
    }
    SECTION("errors exit 2") {
        for (std::vector<std::string> bad : std::vector<std::vector<std::string>>{
                 {"--nope"}, {"--channels"}, {"--listen", "8000"}, {"--listen", "h:99999"}, {"--listen", "::1:80"},
                 {"--max-segments", "0"}, {"--segment-duration", "abc"}, {"--threads", "1.5"}, {"--log-level", "loud"},
                 {"--on-demand=yes"}, {"--idle-timeout", "nan"}}) {
            INFO(bad.front());
            const auto p = parse(bad);
            CHECK_FALSE(p.options);
            CHECK(p.exit_code == 2);
            CHECK(p.output.find("hlsrelay-server: ") == 0);
        }
    }
    SECTION("listen forms") {
        std::string a;
        uint16_t port = 0;
        CHECK(parse_listen("[::1]:8080", a, port));
        CHECK(a == "::1");
        CHECK(port == 8080);
        CHECK(parse_listen(":81", a, port));
        CHECK(a == "0.0.0.0");
        CHECK_FALSE(parse_listen("host:", a, port));
    }
}

TEST_CASE("relative sources of the default list resolve against the media dir") {
    std::vector<std::filesystem::path> local;
    const std::string text =
        "#EXTM3U\n#EXTINF:-1,Demo\n#EXTVLCOPT:input-repeat=-1\ndemo.ts\n#EXTINF:-1,Abs\n/srv/a.ts\n"
        "#EXTINF:-1,Net\nhttp://h/x.m3u8\n#EXTINF:-1,Sub\nsub/b.ts|User-Agent=x\r\n";
    const std::string out = resolve_relative_sources(text, "/media", local);
    CHECK(out ==
          "#EXTM3U\n#EXTINF:-1,Demo\n#EXTVLCOPT:input-repeat=-1\n/media/demo.ts\n#EXTINF:-1,Abs\n/srv/a.ts\n"
          "#EXTINF:-1,Net\nhttp://h/x.m3u8\n#EXTINF:-1,Sub\n/media/sub/b.ts|User-Agent=x\n");
    REQUIRE(local.size() == 3);
    CHECK(local[0] == "/media/demo.ts");
    CHECK(local[1] == "/srv/a.ts");
    CHECK(local[2] == "/media/sub/b.ts");
}

TEST_CASE("the bundled default list loads with a looping demo channel") {
    std::vector<std::filesystem::path> local;
    std::ifstream in(default_channels_file());
    REQUIRE(in);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto report = hlsrelay::parse_channels(resolve_relative_sources(text, "/media", local));
    CHECK(report.issues.empty());
    REQUIRE(report.channels.size() == 1);
    CHECK(report.channels[0].id == "demo");
    CHECK(report.channels[0].name == "hlsrelay Demo");
    CHECK(report.channels[0].loop);
    CHECK(report.channels[0].urls == std::vector<std::string>{"/media/demo.ts"});
}

TEST_CASE("activity counts distinct recent clients and finds idle channels") {
    using namespace std::chrono_literals;
    Activity a(30s);
    const auto t0 = Activity::Clock::now();
    CHECK(a.viewers("demo", t0) == 0);
    CHECK_FALSE(a.last_request_at("demo"));
    a.record_request("demo", "10.0.0.1", t0);
    a.record_request("demo", "10.0.0.2", t0 + 1s);
    a.record_request("demo", "10.0.0.1", t0 + 2s);
    CHECK(a.viewers("demo", t0 + 3s) == 2);
    CHECK(a.viewers("demo", t0 + 31s) == 1);  // .2 fell out of the window; .1 came back at t0+2
    CHECK(a.viewers("demo", t0 + 40s) == 0);
    REQUIRE(a.last_request_at("demo"));
    CHECK(a.last_request_at("demo")->back() == 'Z');

    // A running channel seen for the first time starts its idle clock then.
    CHECK(a.idle_channels({"other"}, 5s, t0).empty());
    CHECK(a.idle_channels({"other"}, 5s, t0 + 4s).empty());
    CHECK(a.idle_channels({"other"}, 5s, t0 + 5s) == std::vector<std::string>{"other"});
    a.touch("other", t0 + 5s);
    CHECK(a.idle_channels({"other"}, 5s, t0 + 6s).empty());
    a.add_waiter("other");
    CHECK(a.idle_channels({"other"}, 5s, t0 + 60s).empty());  // someone waits for its playlist
    a.remove_waiter("other");
    CHECK(a.idle_channels({"other", "demo"}, 5s, t0 + 60s) == std::vector<std::string>{"other", "demo"});
}

TEST_CASE("metrics escape label values") {
    CHECK(escape_label("a\"b\\c\nd") == "a\\\"b\\\\c\\nd");
    hlsrelay::ChannelStatus s;
    s.stream_id = "demo";
    s.state = hlsrelay::ChannelState::Running;
    Activity a;
    HttpCounters http;
    http.count(200);
    http.count(200);
    http.count(404);
    const std::string text = render_metrics({s}, a, http);
    CHECK(text.find("hlsrelay_channel_state{channel=\"demo\",state=\"running\"} 1\n") != std::string::npos);
    CHECK(text.find("hlsrelay_channel_state{channel=\"demo\",state=\"idle\"} 0\n") != std::string::npos);
    CHECK(text.find("hlsrelay_http_requests_total{code=\"200\"} 2\n") != std::string::npos);
    CHECK(text.find("hlsrelay_http_requests_total{code=\"404\"} 1\n") != std::string::npos);
    CHECK(text.find("hlsrelay_channel_newest_segment_age_seconds{") == std::string::npos);  // none yet
    CHECK(text.find("# TYPE hlsrelay_channel_viewers gauge\nhlsrelay_channel_viewers{channel=\"demo\"} 0\n") != std::string::npos);
}
