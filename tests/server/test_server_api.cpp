// End-to-end tests of the API and HLS delivery: a real server and engine on loopback, a live origin
// as the source, checked over HTTP (and by ffprobe) the way players and dashboards use them.
#include "server_fixture.hpp"

#include <cstdio>
#include <fstream>
#include <regex>

using namespace hlsrelay;
using namespace hlsrelay::test;
using namespace std::chrono_literals;

namespace {

std::vector<std::string> segment_names(const std::string& playlist) {
    std::vector<std::string> out;
    std::istringstream in(playlist);
    for (std::string line; std::getline(in, line);)
        if (line.rfind("seg_", 0) == 0) out.push_back(line);
    return out;
}

void check_error(const HttpResponse& r, int status, const std::string& detail) {
    INFO(r.body);
    CHECK(r.status == status);
    CHECK(r.headers.at("content-type") == "application/json");
    CHECK(nlohmann::json::parse(r.body) == nlohmann::json{{"detail", detail}});
}

}  // namespace

TEST_CASE("API endpoints answer with the replaced design's JSON") {
    server::ServerConfig config;
    config.allowed_hosts = {"tv.example"};  // the M3U below is asked for under that name
    ServerUnderTest s(config);

    auto health = s.get_json("/healthz");
    CHECK(health == nlohmann::json{{"status", "ok"}, {"channels", 2}, {"running", 0}});

    auto list = s.get_json("/api/v1/channels");
    REQUIRE(list["channels"].size() == 2);
    CHECK(list["channels"][0]["id"] == "live");
    CHECK(list["channels"][0]["name"] == "Live One");
    CHECK(list["channels"][0]["hls_url"] == "/hls_streams/live/master.m3u8");
    CHECK(list["channels"][0]["running"] == false);

    auto status = s.get_json("/api/v1/channels/stream-status/live");
    CHECK(status["stream_id"] == "live");
    CHECK(status["process_status"] == "stopped");
    CHECK(status["viewers"] == 0);
    CHECK(status["last_request_at"].is_null());

    check_error(s.get("/api/v1/channels/stream-status/nope"), 404, "Channel not found");
    check_error(s.get("/api/v1/channels/start-stream/nope"), 404, "Channel not found");
    check_error(s.get("/api/v1/channels/stop-stream/nope"), 404, "Channel not found");
    check_error(s.get("/api/v1/channels/nope/start", "POST"), 404, "Channel not found");
    check_error(s.get("/no/such/route"), 404, "Not found");

    auto started = s.get_json("/api/v1/channels/start-stream/live");
    CHECK(started["message"] == "Stream for 'live' started.");
    CHECK(started["channel"] == "Live One");
    CHECK(started["hls_url"] == "/hls_streams/live/master.m3u8");
    CHECK(started["config"] == nlohmann::json{{"segment_duration", 1}, {"max_segments", 5}, {"cleanup_interval", 0.5},
                                                  {"container", "ts"}, {"renditions", "all"},
                                                  {"low_latency", false}, {"part_duration", 1.0 / 3}});
    // By display name, percent-encoded.
    auto again = s.get_json("/api/v1/channels/start-stream/Live%20One");
    CHECK(again["message"] == "Stream for 'live' is already running.");
    REQUIRE(wait_until([&] { return s.get_json("/api/v1/channels/stream-status/live")["master_playlist_exists"] == true; }, 20s));

    auto all = s.get_json("/api/v1/channels/streams-status");
    CHECK(all["total_channels"] == 2);
    CHECK(all["running_streams"] == 1);
    CHECK(all["hls_config"]["segment_duration"] == 1);
    REQUIRE(all["streams"].size() == 2);
    for (const auto& st : all["streams"]) {
        CHECK(st.contains("viewers"));
        CHECK(st.contains("last_request_at"));
    }
    CHECK(all["streams"][0]["process_status"] == "running");

    health = s.get_json("/healthz");
    CHECK(health["running"] == 1);

    const HttpResponse m3u = s.get("/api/v1/channels/static-hls-m3u", "GET", {{"Host", "tv.example:8080"}});
    CHECK(m3u.status == 200);
    CHECK(m3u.headers.at("content-type").rfind("audio/x-mpegurl", 0) == 0);
    // The first line names the guide (/epg.xml), whose channel ids are the lines' tvg-id.
    CHECK(m3u.body.rfind("#EXTM3U url-tvg=\"http://tv.example:8080/epg.xml\" x-tvg-url=\"http://tv.example:8080/epg.xml\"\n", 0) == 0);
    CHECK(m3u.body.find("tvg-id=\"live\" tvg-name=\"Live One\"") != std::string::npos);
    CHECK(m3u.body.find("\nhttp://tv.example:8080/hls_streams/live/master.m3u8\n") != std::string::npos);
    CHECK(m3u.body.find("\nhttp://tv.example:8080/hls_streams/file/master.m3u8\n") != std::string::npos);
    CHECK(s.get("/api/v1/channels/static-hls-m3u", "GET", {{"Host", "evil\"host"}}).status == 421);  // not a name we serve

    auto stopped = s.get_json("/api/v1/channels/live/stop", 200, "POST");
    CHECK(stopped["message"] == "Stream for 'live' stopped.");
    CHECK_FALSE(s.engine.running("live"));
    auto not_running = s.get_json("/api/v1/channels/stop-stream/live");
    CHECK(not_running["message"] == "Stream for 'live' was not running; stopped.");
    auto post_started = s.get_json("/api/v1/channels/live/start", 200, "POST");
    CHECK(post_started["message"] == "Stream for 'live' started.");
    CHECK(s.engine.running("live"));

    const HttpResponse wrong = s.get("/api/v1/channels/live/start");
    check_error(wrong, 405, "Method Not Allowed");
    CHECK(wrong.headers.at("allow") == "POST, OPTIONS");

    const HttpResponse metrics = s.get("/metrics");
    CHECK(metrics.status == 200);
    CHECK(metrics.headers.at("content-type").rfind("text/plain; version=0.0.4", 0) == 0);
    for (const char* needle :
         {"hlsrelay_channel_state{channel=\"live\",state=\"", "hlsrelay_channel_segments{channel=\"live\"}",
          "hlsrelay_channel_reconnects_total{channel=\"live\"} 0", "hlsrelay_channel_bytes_in_total{channel=\"live\"}",
          "hlsrelay_channel_bytes_out_total{channel=\"live\"}", "hlsrelay_channel_viewers{channel=\"file\"} 0",
          "# TYPE hlsrelay_channel_newest_segment_age_seconds gauge", "hlsrelay_http_requests_total{code=\"200\"}",
          "hlsrelay_http_requests_total{code=\"404\"}", "hlsrelay_http_requests_total{code=\"405\"} 1"}) {
        INFO(needle);
        CHECK(metrics.body.find(needle) != std::string::npos);
    }
}

TEST_CASE("HLS is served from memory with ranges, HEAD, caching and CORS") {
    ServerUnderTest s;
    const HttpResponse stopped = s.get("/hls_streams/live/master.m3u8");
    check_error(stopped, 404, "Stream not running");
    check_error(s.get("/hls_streams/nope/master.m3u8"), 404, "Channel not found");
    s.start_and_wait("live");

    const HttpResponse master = s.get("/hls_streams/live/master.m3u8");
    REQUIRE(master.status == 200);
    CHECK(master.headers.at("content-type") == "application/vnd.apple.mpegurl");
    CHECK(master.headers.at("cache-control") == "no-cache");
    CHECK(master.headers.at("access-control-allow-origin") == "*");
    CHECK(master.body.find("#EXT-X-STREAM-INF") != std::string::npos);

    REQUIRE(wait_until([&] { return segment_names(s.get("/hls_streams/live/index.m3u8").body).size() >= 2; }, 20s));
    const HttpResponse index = s.get("/hls_streams/live/index.m3u8");
    CHECK(index.headers.at("cache-control") == "no-cache");
    const auto names = segment_names(index.body);
    REQUIRE(!names.empty());

    const HttpResponse seg = s.get("/hls_streams/live/" + names.back());
    REQUIRE(seg.status == 200);
    CHECK(seg.headers.at("content-type") == "video/mp2t");
    CHECK(seg.headers.at("cache-control") == "public, max-age=86400, immutable");
    CHECK(seg.headers.at("accept-ranges") == "bytes");
    CHECK(seg.headers.at("content-length") == std::to_string(seg.body.size()));
    REQUIRE(seg.body.size() > 1000);
    CHECK(seg.body[0] == 0x47);  // MPEG-TS sync byte
    const std::string size = std::to_string(seg.body.size());
    const std::string path = "/hls_streams/live/" + names.back();

    SECTION("byte ranges") {
        HttpResponse r = s.get(path, "GET", {{"Range", "bytes=0-99"}});
        CHECK(r.status == 206);
        CHECK(r.headers.at("content-range") == "bytes 0-99/" + size);
        CHECK(r.body == seg.body.substr(0, 100));
        r = s.get(path, "GET", {{"Range", "bytes=100-"}});
        CHECK(r.status == 206);
        CHECK(r.body == seg.body.substr(100));
        r = s.get(path, "GET", {{"Range", "bytes=-188"}});
        CHECK(r.status == 206);
        CHECK(r.headers.at("content-range") == "bytes " + std::to_string(seg.body.size() - 188) + "-" +
                                                   std::to_string(seg.body.size() - 1) + "/" + size);
        CHECK(r.body == seg.body.substr(seg.body.size() - 188));
        r = s.get(path, "GET", {{"Range", "bytes=" + size + "-"}});
        CHECK(r.status == 416);
        CHECK(r.headers.at("content-range") == "bytes */" + size);
        r = s.get(path, "GET", {{"Range", "bytes=0-1,5-6"}});  // several ranges: the whole segment
        CHECK(r.status == 200);
        CHECK(r.body == seg.body);
        // Playlists change, so they are never served in parts.
        r = s.get("/hls_streams/live/master.m3u8", "GET", {{"Range", "bytes=0-3"}});
        CHECK(r.status == 200);
    }
    SECTION("HEAD has GET's headers and no body") {
        const HttpResponse h = s.get(path, "HEAD");
        CHECK(h.status == 200);
        CHECK(h.headers.at("content-length") == size);
        CHECK(h.headers.at("content-type") == "video/mp2t");
        CHECK(h.body.empty());
        const HttpResponse hp = s.get("/hls_streams/live/index.m3u8", "HEAD");
        CHECK(hp.status == 200);
        CHECK(hp.body.empty());
        CHECK(std::stoul(hp.headers.at("content-length")) > 0);
    }
    SECTION("OPTIONS preflight") {
        const HttpResponse o = s.get(path, "OPTIONS", {{"Origin", "http://elsewhere"}, {"Access-Control-Request-Headers", "range"}});
        CHECK(o.status == 204);
        CHECK(o.headers.at("access-control-allow-origin") == "*");
        CHECK(o.headers.at("access-control-allow-methods") == "GET, HEAD, OPTIONS");
        CHECK(o.headers.at("access-control-allow-headers").find("Range") != std::string::npos);
        CHECK(o.headers.at("allow") == "GET, HEAD, OPTIONS");
        CHECK(o.headers.count("content-length") == 0);
    }
    SECTION("only ids and known files are served") {
        check_error(s.get("/hls_streams/Live%20One/master.m3u8"), 404, "Not found");  // a display name
        check_error(s.get("/hls_streams/live/seg_1.ts"), 404, "Not found");            // long gone
        check_error(s.get("/hls_streams/live/../../etc/passwd"), 400, "Invalid path");
        check_error(s.get("/hls_streams/%2e%2e/live/master.m3u8"), 400, "Invalid path");
        check_error(s.get("/hls_streams/live/%2e%2e%2fmaster.m3u8"), 400, "Invalid path");
        check_error(s.get("/hls_streams/live%5c..%5cmaster.m3u8/x"), 400, "Invalid path");
        check_error(s.get("/hls_streams/live/master.m3u8%00"), 400, "Invalid path");
        check_error(s.get("/hls_streams/%252e%252e/master.m3u8"), 404, "Not found");
        check_error(s.get("/hls_streams/live/master.m3u8", "POST"), 405, "Method Not Allowed");
    }
    SECTION("ffprobe reads the stream back and the viewer is counted") {
        const std::string out = run_command("ffprobe -v error -rw_timeout 10000000 -show_entries stream=codec_type -of json " +
                                            s.url("/hls_streams/live/master.m3u8") + " 2>&1");
        INFO(out);
        CHECK(out.find("\"codec_type\": \"video\"") != std::string::npos);
        CHECK(out.find("\"codec_type\": \"audio\"") != std::string::npos);
        auto st = s.get_json("/api/v1/channels/stream-status/live");
        CHECK(st["viewers"] == 1);  // every request came from 127.0.0.1
        REQUIRE(st["last_request_at"].is_string());
        CHECK(std::regex_match(st["last_request_at"].get<std::string>(),
                               std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")));
        const HttpResponse metrics = s.get("/metrics");
        CHECK(metrics.body.find("hlsrelay_channel_viewers{channel=\"live\"} 1") != std::string::npos);
    }
}

TEST_CASE("on-demand mode starts a channel on its playlist and stops it when idle") {
    server::ServerConfig config;
    config.on_demand = true;
    config.idle_timeout = 1500ms;
    ServerUnderTest s(config);
    REQUIRE_FALSE(s.engine.running("live"));

    const auto t0 = std::chrono::steady_clock::now();
    const HttpResponse master = s.get("/hls_streams/live/master.m3u8");
    const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    INFO(master.body);
    REQUIRE(master.status == 200);
    CHECK(master.headers.at("content-type") == "application/vnd.apple.mpegurl");
    CHECK(waited < 10.5);
    CHECK(s.engine.running("live"));
    // A segment request never starts a channel.
    CHECK(s.get("/hls_streams/file/seg_5.ts").status == 404);
    CHECK_FALSE(s.engine.running("file"));

    auto st = s.get_json("/api/v1/channels/stream-status/live");
    CHECK(st["viewers"] == 1);
    CHECK(st["last_request_at"].is_string());

    // Requests keep it alive; silence stops it.
    for (int i = 0; i < 4; ++i) {
        std::this_thread::sleep_for(500ms);
        CHECK(s.get("/hls_streams/live/index.m3u8").status == 200);
    }
    CHECK(s.engine.running("live"));
    CHECK(wait_until([&] { return !s.engine.running("live"); }, 6s));

    // A channel started through the API counts as used from its start, then idles out as well.
    s.get_json("/api/v1/channels/start-stream/file");
    CHECK(s.engine.running("file"));
    CHECK(wait_until([&] { return !s.engine.running("file"); }, 6s));
}

TEST_CASE("on-demand gives up with 503 and Retry-After when no playlist comes") {
    server::ServerConfig config;
    config.on_demand = true;
    config.on_demand_wait = 1500ms;
    ServerUnderTest s(config);
    ChannelConfig dead;
    dead.id = "dead";
    dead.name = "Dead";
    dead.urls = {"http://127.0.0.1:1/nothing.m3u8"};
    s.engine.add_channel(dead);
    const HttpResponse r = s.get("/hls_streams/dead/index.m3u8");
    CHECK(r.status == 503);
    CHECK(r.headers.at("retry-after") == "2");
    CHECK(nlohmann::json::parse(r.body)["detail"].get<std::string>().find("did not produce a playlist") != std::string::npos);
}

TEST_CASE("an API token protects the control endpoints") {
    server::ServerConfig config;
    config.api_token = "s3cret";
    ServerUnderTest s(config);

    for (auto [method, path] : std::vector<std::pair<std::string, std::string>>{
             {"GET", "/api/v1/channels"},
             {"GET", "/api/v1/channels/start-stream/live"},
             {"GET", "/api/v1/channels/stop-stream/live"},
             {"POST", "/api/v1/channels/live/start"},
             {"POST", "/api/v1/channels/live/stop"}}) {
        INFO(method << " " << path);
        const HttpResponse denied = s.get(path, method);
        check_error(denied, 401, "Not authenticated");
        CHECK(denied.headers.at("www-authenticate") == "Bearer");
        check_error(s.get(path, method, {{"Authorization", "Bearer wrong"}}), 401, "Not authenticated");
        check_error(s.get(path + "?token=s3cre", method), 401, "Not authenticated");
    }
    CHECK_FALSE(s.engine.running("live"));
    CHECK(s.get_json("/api/v1/channels", 200, "GET", {{"Authorization", "Bearer s3cret"}})["channels"].size() == 2);
    CHECK(s.get_json("/api/v1/channels", 200, "GET", {{"Authorization", "bearer s3cret"}})["channels"].size() == 2);
    s.get_json("/api/v1/channels/live/start?token=s3cret", 200, "POST");
    CHECK(s.engine.running("live"));
    s.get_json("/api/v1/channels/stop-stream/live?token=s3cret");
    CHECK_FALSE(s.engine.running("live"));
    // Reading status, health and metrics stays open.
    s.get_json("/api/v1/channels/stream-status/live");
    s.get_json("/api/v1/channels/streams-status");
    s.get_json("/healthz");
    CHECK(s.get("/metrics").status == 200);
}

TEST_CASE("the dashboard and hls.js are served, nothing else from the web root") {
    ServerUnderTest s;  // web_root is empty: no files
    check_error(s.get("/"), 404, "Not found");

    const std::filesystem::path root = std::filesystem::path(media_root()) / ("web-root-" + std::to_string(::getpid()));
    std::filesystem::create_directories(root / "node_modules" / "hls.js" / "dist");
    {
        std::ofstream(root / "index.html") << "<!doctype html><title>x</title>";
        std::ofstream(root / "node_modules" / "hls.js" / "dist" / "hls.min.js") << "var Hls;";
        std::ofstream(root / "secret.txt") << "no";
    }
    server::ServerConfig config;
    config.web_root = root;
    {
        ServerUnderTest w(config);
        const HttpResponse index = w.get("/");
        CHECK(index.status == 200);
        CHECK(index.headers.at("content-type") == "text/html; charset=utf-8");
        CHECK(index.body == "<!doctype html><title>x</title>");
        const HttpResponse js = w.get("/assets/hls.min.js");
        CHECK(js.status == 200);
        CHECK(js.headers.at("content-type") == "text/javascript; charset=utf-8");
        CHECK(js.body == "var Hls;");
        CHECK(w.get("/secret.txt").status == 404);
        CHECK(w.get("/assets/secret.txt").status == 404);
        CHECK(w.get("/assets/..%2fsecret.txt").status == 400);
        CHECK(w.get("/index.html").status == 404);
    }
    std::filesystem::remove_all(root);
}
