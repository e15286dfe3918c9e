// The HTTP-side protections of the demo server, over loopback: cross-site state changes refused, DNS
// rebinding (a foreign Host) refused on control and status, CORS only on HLS delivery, sources hidden
// from requests without the token when one is set (and never shown with credentials anywhere), and
// the per-client connection cap with idle keep-alive connections reclaimed first.
#include "options.hpp"
#include "raw_client.hpp"
#include "server_fixture.hpp"

#include <mutex>
#include <set>
#include <vector>

using namespace hlsrelay;
using namespace hlsrelay::test;
using namespace std::chrono_literals;

namespace {

std::string host_of(const ServerUnderTest& s) { return "127.0.0.1:" + std::to_string(s.port()); }

std::string detail_of(const HttpResponse& r) {
    INFO(r.status << " " << r.body);
    REQUIRE(r.headers.count("content-type"));
    REQUIRE(r.headers.at("content-type") == "application/json");
    return nlohmann::json::parse(r.body).at("detail").get<std::string>();
}

// A keep-alive connection from `source` that has been served one request and now waits for the next.
std::unique_ptr<RawClient> idle_connection(uint16_t port, const char* source) {
    auto c = std::make_unique<RawClient>(port, source);
    c->send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    const auto r = c->read_response(10s);
    REQUIRE(r);
    REQUIRE(r->status == 200);
    return c;
}

bool served_from(uint16_t port, const char* source) {
    try {
        RawClient c(port, source);
        c.send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
        const auto r = c.read_response(5s);
        return r && r->status == 200;
    } catch (const std::exception&) {
        return false;
    }
}

}  // namespace

TEST_CASE("security: cross-site requests cannot start or stop channels") {
    ServerUnderTest s;
    const std::string self = "http://" + host_of(s);
    const std::string start = "/api/v1/channels/start-stream/file";

    SECTION("a cross-site GET (a link, an <img>, a form) is refused and starts nothing") {
        for (const std::map<std::string, std::string>& headers : std::vector<std::map<std::string, std::string>>{
                 {{"Origin", "http://evil.example"}},
                 {{"Sec-Fetch-Site", "cross-site"}},
                 {{"Sec-Fetch-Site", "same-site"}},  // a sibling subdomain is not this server either
                 {{"Sec-Fetch-Site", "cross-site"}, {"Sec-Fetch-Mode", "no-cors"}, {"Sec-Fetch-Dest", "image"}},
                 {{"Origin", "null"}},                          // sandboxed frames, file:// pages
                 {{"Origin", "http://127.0.0.1:1"}},            // another port is another origin
                 {{"Origin", self + ".evil.example"}},
             }) {
            INFO(headers.begin()->first << ": " << headers.begin()->second);
            const HttpResponse r = s.get(start, "GET", headers);
            CHECK(r.status == 403);
            CHECK(detail_of(r).find("Cross-site request refused") == 0);
            CHECK(r.headers.count("access-control-allow-origin") == 0);
        }
        const HttpResponse post = s.get("/api/v1/channels/file/start", "POST", {{"Origin", "http://evil.example"}});
        CHECK(post.status == 403);
        CHECK_FALSE(s.engine.running("file"));
    }
    SECTION("a cross-site stop is refused and the channel keeps running") {
        REQUIRE(s.get(start).status == 200);
        CHECK(s.get("/api/v1/channels/stop-stream/file", "GET", {{"Sec-Fetch-Site", "cross-site"}}).status == 403);
        CHECK(s.get("/api/v1/channels/file/stop", "POST", {{"Origin", "http://evil.example"}}).status == 403);
        CHECK(s.engine.running("file"));
    }
    SECTION("the server's own pages (same origin) and curl-like clients are served") {
        const HttpResponse own = s.get("/api/v1/channels/file/start", "POST",
                                       {{"Origin", self}, {"Sec-Fetch-Site", "same-origin"}, {"Sec-Fetch-Mode", "cors"}});
        CHECK(own.status == 200);
        CHECK(s.engine.running("file"));
        CHECK(s.get("/api/v1/channels/stop-stream/file", "GET", {{"Sec-Fetch-Site", "none"}}).status == 200);  // typed URL
        CHECK(s.get(start).status == 200);  // no Origin, no Sec-Fetch-Site: curl, scripts
        CHECK(s.get("/api/v1/channels/file/stop", "POST").status == 200);
        CHECK_FALSE(s.engine.running("file"));
    }
    SECTION("status reads are not state changes: an Origin does not refuse them (but they carry no CORS)") {
        const HttpResponse r = s.get("/api/v1/channels/streams-status", "GET", {{"Origin", "http://evil.example"}});
        CHECK(r.status == 200);
        CHECK(r.headers.count("access-control-allow-origin") == 0);
    }
}

TEST_CASE("security: an Origin naming an allowed host is the server's own") {
    server::ServerConfig config;
    config.allowed_hosts = {"tv.example"};
    ServerUnderTest s(config);
    const std::string port = std::to_string(s.port());
    // Behind a proxy that rewrites Host, the browser's Origin is the public name.
    CHECK(s.get("/api/v1/channels/file/start", "POST", {{"Origin", "https://tv.example"}}).status == 200);
    CHECK(s.get("/api/v1/channels/file/stop", "POST", {{"Host", "tv.example:" + port}, {"Origin", "http://tv.example:" + port}})
              .status == 200);
    CHECK(s.get("/api/v1/channels/file/start", "POST", {{"Origin", "https://evil.example"}}).status == 403);
    CHECK_FALSE(s.engine.running("file"));
}

TEST_CASE("security: a foreign Host (DNS rebinding) is refused on control and status, not on HLS") {
    ServerUnderTest s;
    s.start_and_wait("file");
    const std::string port = std::to_string(s.port());
    const std::map<std::string, std::string> rebound = {{"Host", "attacker.example:" + port}};

    for (const std::pair<std::string, std::string>& p : std::vector<std::pair<std::string, std::string>>{
             {"GET", "/api/v1/channels/stop-stream/file"}, {"POST", "/api/v1/channels/file/stop"},
             {"GET", "/api/v1/channels"}, {"GET", "/api/v1/channels/streams-status"},
             {"GET", "/api/v1/channels/stream-status/file"}, {"GET", "/api/v1/channels/static-hls-m3u"},
             {"GET", "/metrics"}, {"GET", "/"}, {"OPTIONS", "/api/v1/channels/file/stop"}}) {
        INFO(p.first << " " << p.second);
        const HttpResponse r = s.get(p.second, p.first, rebound);
        CHECK(r.status == 421);
        CHECK(detail_of(r).find("Misdirected request") == 0);
        CHECK(r.body.find("file") == std::string::npos);  // no channel data
    }
    CHECK(s.engine.running("file"));  // the stop above was refused

    // HLS delivery and health stay open to any name (players, CDNs, load balancers).
    CHECK(s.get("/hls_streams/file/master.m3u8", "GET", rebound).status == 200);
    CHECK(s.get("/healthz", "GET", rebound).status == 200);

    // Accepted: IP literals, localhost, no Host at all (HTTP/1.0).
    for (const std::string& host : std::vector<std::string>{"localhost:" + port, "LOCALHOST", "127.0.0.1", "[::1]:" + port, "192.0.2.7:" + port}) {
        INFO(host);
        CHECK(s.get("/api/v1/channels/streams-status", "GET", {{"Host", host}}).status == 200);
    }
    RawClient c(s.port());
    c.send("GET /api/v1/channels/streams-status HTTP/1.0\r\n\r\n");
    const auto r = c.read_response(10s);
    REQUIRE(r);
    CHECK(r->status == 200);
    // Look-alikes are names, not addresses.
    for (const char* host : {"127.0.0.1.attacker.example", "localhost.attacker.example", "0x7f000001", "127.1",
                                    "[::1", "a:b:c", "[zz::1]"}) {
        INFO(host);
        CHECK(s.get("/api/v1/channels/streams-status", "GET", {{"Host", host}}).status == 421);
    }
}

TEST_CASE("security: --allowed-host names are accepted, '*' accepts any") {
    server::ServerConfig config;
    config.allowed_hosts = {"tv.example", "Other.Example:8443"};
    ServerUnderTest s(config);
    CHECK(s.get("/api/v1/channels/streams-status", "GET", {{"Host", "tv.example"}}).status == 200);
    CHECK(s.get("/api/v1/channels/streams-status", "GET", {{"Host", "TV.example:9000"}}).status == 200);
    CHECK(s.get("/api/v1/channels/streams-status", "GET", {{"Host", "other.example:8443"}}).status == 200);
    CHECK(s.get("/api/v1/channels/streams-status", "GET", {{"Host", "other.example:8444"}}).status == 421);
    CHECK(s.get("/api/v1/channels/streams-status", "GET", {{"Host", "sub.tv.example"}}).status == 421);

    server::ServerConfig any;
    any.allowed_hosts = {"*"};
    ServerUnderTest open(any);
    CHECK(open.get("/api/v1/channels/streams-status", "GET", {{"Host", "whatever.example"}}).status == 200);
    // Cross-site protection does not depend on the Host rule.
    CHECK(open.get("/api/v1/channels/file/start", "POST", {{"Origin", "http://evil.example"}}).status == 403);
}

TEST_CASE("security: only HLS delivery is readable cross-origin") {
    ServerUnderTest s;
    s.start_and_wait("file");
    const std::map<std::string, std::string> foreign = {{"Origin", "http://player.example"}};
    for (const char* path : {"/api/v1/channels", "/api/v1/channels/streams-status", "/api/v1/channels/stream-status/file",
                                    "/api/v1/channels/static-hls-m3u", "/metrics", "/healthz", "/nope"}) {
        INFO(path);
        const HttpResponse r = s.get(path, "GET", foreign);
        CHECK(r.status != 0);
        CHECK(r.headers.count("access-control-allow-origin") == 0);
    }
    CHECK(s.get("/api/v1/channels/start-stream/file").headers.count("access-control-allow-origin") == 0);

    // Preflights of control and status paths grant nothing, so a browser sends no cross-origin POST.
    for (const char* path : {"/api/v1/channels/file/start", "/api/v1/channels/start-stream/file",
                                    "/api/v1/channels/streams-status"}) {
        INFO(path);
        const HttpResponse o = s.get(path, "OPTIONS", {{"Origin", "http://evil.example"}, {"Access-Control-Request-Method", "POST"}});
        CHECK(o.status == 204);
        CHECK(o.headers.count("access-control-allow-origin") == 0);
        CHECK(o.headers.count("access-control-allow-methods") == 0);
    }

    // HLS: every answer, errors included, and its preflight.
    for (const char* path : {"/hls_streams/file/master.m3u8", "/hls_streams/file/index.m3u8",
                                    "/hls_streams/nope/index.m3u8", "/hls_streams/file/seg_1.ts", "/hls_streams/BAD/x"}) {
        INFO(path);
        const HttpResponse r = s.get(path, "GET", foreign);
        CHECK(r.headers.count("access-control-allow-origin") == 1);
        if (r.headers.count("access-control-allow-origin")) CHECK(r.headers.at("access-control-allow-origin") == "*");
    }
    const HttpResponse o = s.get("/hls_streams/file/index.m3u8", "OPTIONS", foreign);
    CHECK(o.headers.at("access-control-allow-origin") == "*");
}

TEST_CASE("security: with a token, status shows no source to requests without it, and credentials appear nowhere") {
    // Xtream-Codes credentials in every place a URL can carry them, on an origin path that fails.
    EngineSettings settings = quick_engine_settings();
    settings.log_level = LogLevel::Debug;
    std::mutex log_mu;
    std::vector<std::string> log_lines;
    settings.log = [&](LogLevel, const std::string& channel, const std::string& message) {
        std::lock_guard lock(log_mu);
        log_lines.push_back(channel + ": " + message);
    };
    LiveOrigin origin(server_media());
    origin.start();
    const std::string authority = origin.base_url().substr(std::string("http://").size(), origin.base_url().find("/live") - 7);
    Engine engine(settings);
    ChannelConfig xtream;
    xtream.id = "xtream";
    xtream.name = "Xtream";
    xtream.urls = {"http://ui_user:ui_pass@" + authority + "/live/xc_user/xc_pass/100.m3u8?username=q_user&password=q_pass|Cookie=k_cookie",
                   "http://" + authority + "/xb_user/xb_pass/100.ts"};
    xtream.group = "News";
    xtream.logo = "https://logo.example/xtream.png";
    engine.add_channel(xtream);
    // The source shown is the one in use (the channel fails over between the two).
    const std::set<std::string> redacted_sources = {"http://***@" + authority + "/live/***/***/100.m3u8?***",
                                                    "http://" + authority + "/***/***/100.ts"};
    // The list of sources (status `urls`): the same redacted forms, in the list's order.
    const nlohmann::json redacted_urls = {"http://***@" + authority + "/live/***/***/100.m3u8?***",
                                          "http://" + authority + "/***/***/100.ts"};
    const std::vector<std::string> secrets = {"ui_user", "ui_pass", "xc_user", "xc_pass", "q_user", "q_pass", "k_cookie", "xb_user", "xb_pass"};
    auto check_clean = [&](const std::string& text) {
        for (const std::string& secret : secrets) {
            INFO(secret << " in " << text);
            CHECK(text.find(secret) == std::string::npos);
        }
    };

    for (const bool with_token : {true, false}) {
        INFO("token: " << with_token);
        server::ServerConfig config;
        config.address = "127.0.0.1";
        config.port = 0;
        if (with_token) config.api_token = "s3cret";
        server::Server server(engine, config);
        server.start();
        const std::string base = "http://127.0.0.1:" + std::to_string(server.port());
        auto get = [&](const std::string& path, const std::map<std::string, std::string>& headers = {}) {
            return http_get(base + path, 15s, "GET", headers);
        };
        const std::map<std::string, std::string> auth = {{"Authorization", "Bearer s3cret"}};
        if (with_token) {
            REQUIRE(get("/api/v1/channels/start-stream/xtream", auth).status == 200);
            REQUIRE(wait_until([&] { return !engine.status("xtream").last_error.empty(); }, 30s));
        }
        const std::string last_error = engine.status("xtream").last_error;
        INFO("last_error: " << last_error);
        CHECK(last_error.find("://") != std::string::npos);  // the error names a URL: what is hidden below

        // Without the token (or with no token set at all).
        const HttpResponse one = get("/api/v1/channels/stream-status/xtream");
        REQUIRE(one.status == 200);
        const HttpResponse all = get("/api/v1/channels/streams-status");
        REQUIRE(all.status == 200);
        const auto one_json = nlohmann::json::parse(one.body);
        const auto all_json = nlohmann::json::parse(all.body);
        REQUIRE(one_json.contains("source"));
        // The list's fields the dashboard shows are there for everyone.
        CHECK(one_json["group"] == "News");
        CHECK(one_json["logo"] == "https://logo.example/xtream.png");
        CHECK(one_json["tvg_id"].is_null());
        CHECK(all_json["streams"][0]["group"] == "News");
        if (with_token) {
            CHECK(one_json["source"].is_null());
            CHECK(all_json["streams"][0]["source"].is_null());
            for (const auto& source : all_json["streams"][0]["sources"]) CHECK(source["url"].is_null());
            CHECK(one_json["last_error"].get<std::string>().find("<url hidden>") != std::string::npos);
            REQUIRE(one_json["sources"].size() == 2);  // every URL of the channel, none shown
            for (const auto& source : one_json["sources"]) CHECK(source["url"].is_null());
            CHECK(one.body.find(authority) == std::string::npos);
            CHECK(all.body.find(authority) == std::string::npos);
            CHECK(get("/api/v1/channels").status == 401);
        } else {
            CHECK(redacted_sources.count(one_json["source"].get<std::string>()) == 1);
            REQUIRE(one_json["sources"].size() == 2);
            for (const auto& source : one_json["sources"]) CHECK(redacted_sources.count(source["url"].get<std::string>()) == 1);
            CHECK(one_json["sources"][0]["url"] == redacted_urls[0]);  // in order
            CHECK(one_json["sources"][1]["url"] == redacted_urls[1]);
            CHECK(all_json["streams"][0]["sources"][0]["url"] == redacted_urls[0]);
        }
        check_clean(one.body);
        check_clean(all.body);
        check_clean(get("/metrics").body);
        check_clean(get("/api/v1/channels/static-hls-m3u").body);

        // With the token: the redacted form.
        if (with_token) {
            const HttpResponse authed = get("/api/v1/channels/stream-status/xtream", auth);
            const auto j = nlohmann::json::parse(authed.body);
            CHECK(redacted_sources.count(j["source"].get<std::string>()) == 1);
            CHECK(j["sources"][0]["url"] == redacted_urls[0]);
            CHECK(j["sources"][1]["url"] == redacted_urls[1]);
            CHECK(j["last_error"].get<std::string>().find(authority) != std::string::npos);
            check_clean(authed.body);
            const HttpResponse list = get("/api/v1/channels", auth);
            CHECK(list.status == 200);
            check_clean(list.body);
            CHECK(nlohmann::json::parse(get("/api/v1/channels/streams-status?token=s3cret").body)["streams"][0]["source"].is_string());
        }
        server.stop();
    }
    engine.stop_all();
    std::lock_guard lock(log_mu);
    REQUIRE_FALSE(log_lines.empty());
    bool named_source = false;
    for (const std::string& line : log_lines) {
        check_clean(line);
        named_source = named_source || line.find(authority) != std::string::npos;
    }
    CHECK(named_source);  // the log does name the (redacted) source
}

TEST_CASE("security: one client's connections cannot starve another") {
    server::ServerConfig config;
    config.max_connections = 100;  // the default per-client cap (64) is well under it
    ServerUnderTest s(config);
    const std::size_t cap = config.max_connections_per_client;
    REQUIRE(cap == server::kDefaultMaxConnectionsPerClient);
    REQUIRE(cap < config.max_connections);

    // 127.0.0.2 opens 300 connections and sends nothing; past its cap they are closed at once (the
    // server accepts in connect order).
    std::vector<std::unique_ptr<RawClient>> flood;
    for (int i = 0; i < 300; ++i) flood.push_back(std::make_unique<RawClient>(s.port(), "127.0.0.2"));
    std::size_t closed = 0;
    for (std::size_t i = cap; i < flood.size(); ++i) closed += flood[i]->closed_within(5s) ? 1 : 0;
    CHECK(closed == flood.size() - cap);
    // Another client is served, many times over, while the flood holds its share.
    for (int i = 0; i < 20; ++i) CHECK(served_from(s.port(), "127.0.0.3"));
    CHECK(s.get("/healthz").status == 200);
    // The flood's first `cap` connections are held and work.
    flood.front()->send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    const auto r = flood.front()->read_response(10s);
    REQUIRE(r);
    CHECK(r->status == 200);
}

TEST_CASE("security: the per-client cap refuses the (N+1)th connection and frees with a close") {
    server::ServerConfig config;
    config.max_connections_per_client = 4;
    ServerUnderTest s(config);
    std::vector<std::unique_ptr<RawClient>> held;
    for (int i = 0; i < 4; ++i) held.push_back(idle_connection(s.port(), "127.0.0.2"));
    RawClient fifth(s.port(), "127.0.0.2");
    CHECK(fifth.closed_within(5s));
    CHECK_FALSE(served_from(s.port(), "127.0.0.2"));
    CHECK(served_from(s.port(), "127.0.0.3"));  // others are not affected
    // The held ones still work.
    held.back()->send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    const auto r = held.back()->read_response(10s);
    REQUIRE(r);
    CHECK(r->status == 200);
    // Closing one frees its slot (the server sees the close promptly).
    held.pop_back();
    CHECK(wait_until([&] { return served_from(s.port(), "127.0.0.2"); }, 10s));
}

TEST_CASE("security: when the server is full, the longest idle keep-alive connection makes room") {
    server::ServerConfig config;
    config.max_connections = 4;
    config.max_connections_per_client = 0;
    ServerUnderTest s(config);
    std::vector<std::unique_ptr<RawClient>> idle;
    // One after another: each one's response began after the previous one's, so idle[0] is the oldest.
    for (int i = 0; i < 4; ++i) idle.push_back(idle_connection(s.port(), "127.0.0.2"));
    // The server counts a connection idle once its write completes, which may come a little after
    // the client has read the response.
    REQUIRE(wait_until([&] { return s.server->idle_connections() == 4; }, 10s));
    // A new client is served at once; the oldest idle connection was closed for it, the others kept.
    CHECK(served_from(s.port(), "127.0.0.3"));
    CHECK(idle.front()->closed_within(5s));
    for (std::size_t i = 1; i < idle.size(); ++i) {
        idle[i]->send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
        const auto r = idle[i]->read_response(10s);
        REQUIRE(r);
        CHECK(r->status == 200);
    }
    // Full with connections that are not idle (silent new ones are mid-request, not idle): refused.
    config.max_connections = 2;
    ServerUnderTest busy(config);
    RawClient a(busy.port(), "127.0.0.2"), b(busy.port(), "127.0.0.2");
    a.send("GET /healthz HTTP/1.1\r\n");  // half a request
    b.send("GET /healthz HTTP/1.1\r\n");
    RawClient c(busy.port(), "127.0.0.3");
    CHECK(c.closed_within(5s));
    a.send("Host: 127.0.0.1\r\n\r\n");
    const auto r = a.read_response(10s);
    REQUIRE(r);
    CHECK(r->status == 200);
}

TEST_CASE("security: the command line takes the new limits") {
    auto parsed = server::parse_options({"--allowed-host", "tv.example", "--allowed-host=other.example:8443",
                                         "--max-connections-per-client", "0"});
    REQUIRE(parsed.options);
    CHECK(parsed.options->allowed_hosts == std::vector<std::string>{"tv.example", "other.example:8443"});
    CHECK(parsed.options->max_connections_per_client == 0);
    parsed = server::parse_options({});
    REQUIRE(parsed.options);
    CHECK(parsed.options->max_connections_per_client == server::kDefaultMaxConnectionsPerClient);
    CHECK(parsed.options->allowed_hosts.empty());
    CHECK_FALSE(server::parse_options({"--allowed-host", "bad host"}).options);
    CHECK_FALSE(server::parse_options({"--allowed-host", ""}).options);
    CHECK_FALSE(server::parse_options({"--max-connections-per-client", "-1"}).options);
    CHECK(server::usage().find("--allowed-host") != std::string::npos);
    CHECK(server::usage().find("--max-connections-per-client") != std::string::npos);
}
