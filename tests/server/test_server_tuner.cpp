// The server as a network tuner: the HDHomeRun documents as Plex and Jellyfin read them, and a
// channel's continuous MPEG-TS (/stream/{id}.ts, /auto/v{n}) as Jellyfin tunes it: discover, then
// lineup, then ffmpeg on the lineup's URL.
#include "raw_client.hpp"
#include "server_fixture.hpp"

#include <hlsrelay/hdhomerun.hpp>

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <regex>
#include <set>

using namespace hlsrelay;
using namespace hlsrelay::test;
using namespace std::chrono_literals;

namespace {

// Opens a continuous TS stream with a raw client and reads its head and at least `bytes` of body.
struct TsReader {
    TsReader(uint16_t port, const std::string& path, std::size_t bytes) : client(port) {
        client.send("GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
        while (client.buffered().find("\r\n\r\n") == std::string::npos)
            REQUIRE(client.read_at_least(client.buffered().size() + 1, 30s));
        const std::size_t end = client.buffered().find("\r\n\r\n");
        REQUIRE(end != std::string::npos);
        head = client.buffered().substr(0, end);
        body_start = end + 4;
        REQUIRE(client.read_at_least(body_start + bytes, 60s));
    }
    std::string body() const { return client.buffered().substr(body_start); }
    RawClient client;
    std::string head;
    std::size_t body_start = 0;
};

std::string temp_file(const std::string& name, const std::string& bytes) {
    const std::string path = "/tmp/hlsrelay-tuner-" + std::to_string(::getpid()) + "-" + name;
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
}

}  // namespace

TEST_CASE("tuner: HDHomeRun discover, lineup, status, scan and device.xml as Plex and Jellyfin read them") {
    ServerUnderTest s;
    const std::string base = "http://127.0.0.1:" + std::to_string(s.port());

    const auto d = s.get_json("/discover.json");
    CHECK(d["ModelNumber"] == "HDTC-2US");
    CHECK(d["FriendlyName"] == "hlsrelay");
    const std::string id = d["DeviceID"];
    CHECK(hdhomerun::valid_device_id(id));
    CHECK(d["BaseURL"] == base);
    CHECK(d["LineupURL"] == base + "/lineup.json");
    CHECK(d["TunerCount"] == 2);  // one per channel when not configured
    CHECK(s.get_json("/discover.json")["DeviceID"] == id);  // stable
    // BaseURL comes from the Host the client used.
    const auto other = s.get_json("/discover.json", 200, "GET", {{"Host", "192.168.1.20:5004"}});
    CHECK(other["BaseURL"] == "http://192.168.1.20:5004");

    const auto lineup = s.get_json("/lineup.json");
    REQUIRE(lineup.is_array());
    REQUIRE(lineup.size() == 2);
    CHECK(lineup[0]["GuideNumber"] == "1");
    CHECK(lineup[0]["GuideName"] == "Live One");
    CHECK(lineup[0]["URL"] == base + "/stream/live.ts");
    CHECK(lineup[1]["GuideNumber"] == "2");
    CHECK(lineup[1]["URL"] == base + "/stream/file.ts");

    const auto status = s.get_json("/lineup_status.json");
    CHECK(status["ScanInProgress"] == 0);
    CHECK(status["ScanPossible"] == 1);
    CHECK(s.get("/lineup.post?scan=start", "POST").status == 200);
    CHECK(s.get("/lineup.post", "GET").status == 405);

    const HttpResponse xml = s.get("/device.xml");
    REQUIRE(xml.status == 200);
    CHECK(xml.headers.at("content-type").rfind("application/xml", 0) == 0);
    CHECK(xml.body.find("<UDN>uuid:") != std::string::npos);
    CHECK(xml.body.find("<URLBase>" + base + "</URLBase>") != std::string::npos);

    // The M3U for IPTV apps points at the same streams, with the numbers the lineup shows.
    const HttpResponse m3u = s.get("/playlist.m3u");
    REQUIRE(m3u.status == 200);
    CHECK(m3u.body.find("tvg-chno=\"1\"") != std::string::npos);
    CHECK(m3u.body.find("\n" + base + "/stream/live.ts\n") != std::string::npos);
}

TEST_CASE("tuner: a channel's continuous TS starts on demand at a keyframe and its viewers share one upstream") {
    ServerUnderTest s;
    ChannelConfig f;
    f.id = "fmp4";
    f.name = "fMP4";
    f.urls = {s.origin.url()};
    f.hls.container = Container::fmp4;
    s.engine.add_channel(f);

    // Refusals: unknown ids and numbers 404 with a JSON detail (an fMP4 channel is streamed: below).
    const HttpResponse nope = s.get("/stream/nope.ts");
    CHECK(nope.status == 404);
    CHECK(nope.body.find("detail") != std::string::npos);
    CHECK(s.get("/stream/live.m3u8").status == 404);
    CHECK(s.get("/auto/v99").status == 404);
    CHECK_FALSE(s.engine.running("live"));
    CHECK_FALSE(s.engine.running("fmp4"));

    // Jellyfin's way: the lineup's URL, read by ffmpeg (the channel starts on this request).
    const std::string url = s.get_json("/lineup.json")[0]["URL"];
    const auto asked = std::chrono::steady_clock::now();
    const std::string probe = run_command("ffprobe -v error -rw_timeout 20000000 -show_entries stream=codec_type -of csv=p=0 '" +
                                          url + "' 2>&1");
    WARN("ffprobe on a stopped channel's TS stream took "
         << std::chrono::duration<double>(std::chrono::steady_clock::now() - asked).count() << " s");
    INFO(probe);
    CHECK(probe.find("video") != std::string::npos);
    CHECK(probe.find("audio") != std::string::npos);
    CHECK(s.engine.running("live"));

    // Two viewers at once (one by GuideNumber): each starts with a whole segment that opens with a
    // keyframe, and the origin serves each segment once.
    s.origin.clear_requests();
    TsReader a(s.port(), "/stream/live.ts", 3 * 188 * 200);
    TsReader b(s.port(), "/auto/v1", 3 * 188 * 200);
    CHECK(a.head.find("200 OK") != std::string::npos);
    CHECK(a.head.find("Content-Type: video/mp2t") != std::string::npos);
    CHECK(a.head.find("\r\nContent-Length:") == std::string::npos);
    for (const TsReader* r : {&a, &b}) {
        const std::string body = r->body();
        REQUIRE(body.size() >= 188);
        CHECK(body[0] == 0x47);
        const std::string path = temp_file("first.ts", body);
        const std::string frames = run_command("ffprobe -v error -select_streams v:0 -show_entries frame=key_frame,pict_type "
                                               "-read_intervals %+#1 -of csv=p=0 " + path + " 2>&1");
        std::remove(path.c_str());
        INFO(frames);
        CHECK(frames.rfind("1,I", 0) == 0);  // the first video frame: a keyframe
    }
    std::multiset<std::string> segments;
    for (const std::string& r : s.origin.requests())
        if (r.find(".ts") != std::string::npos) segments.insert(r);
    for (const std::string& r : segments) CHECK(segments.count(r) == 1);
    const auto status = s.get_json("/api/v1/channels/stream-status/live");
    CHECK(status["viewers"] >= 1);

    // An fMP4 channel streams too (each segment remuxed into TS, once for every viewer): it starts
    // on demand, opens with a keyframe and carries video and audio.
    TsReader remuxed(s.port(), "/stream/fmp4.ts", 3 * 188 * 200);
    CHECK(remuxed.head.find("200 OK") != std::string::npos);
    CHECK(remuxed.head.find("Content-Type: video/mp2t") != std::string::npos);
    const std::string path = temp_file("fmp4.ts", remuxed.body());
    const std::string frames = run_command("ffprobe -v error -select_streams v:0 -show_entries frame=key_frame,pict_type "
                                           "-read_intervals %+#1 -of csv=p=0 " + path + " 2>&1");
    const std::string streams = run_command("ffprobe -v error -show_entries stream=codec_type -of csv=p=0 " + path + " 2>&1");
    std::remove(path.c_str());
    INFO(frames);
    INFO(streams);
    CHECK(frames.rfind("1,I", 0) == 0);
    CHECK(streams.find("video") != std::string::npos);
    CHECK(streams.find("audio") != std::string::npos);
    CHECK(s.engine.running("fmp4"));
}

TEST_CASE("tuner: a provider's connection limit: 503 naming the holders, TunerCount, GET /api/v1/providers") {
    server::ServerConfig config;
    config.on_demand = true;
    EngineSettings settings = quick_engine_settings();
    settings.providers.push_back(*parse_provider("acme=1@127.0.0.1"));
    ServerUnderTest s(config, settings);
    ChannelConfig second;
    second.id = "live2";
    second.name = "Live Two";
    second.urls = {s.origin.url()};
    s.engine.add_channel(second);

    auto providers = s.get_json("/api/v1/providers")["providers"];
    REQUIRE(providers.size() == 1);
    CHECK(providers[0]["name"] == "acme");
    CHECK(providers[0]["max_connections"] == 1);
    CHECK(providers[0]["channels"] == 2);
    CHECK(providers[0]["in_use"] == 0);
    CHECK(s.get_json("/discover.json")["TunerCount"] == 2);  // file + one of acme's two
    CHECK(s.get_json("/api/v1/channels/stream-status/live2")["provider"] == "acme");
    CHECK(s.get_json("/api/v1/channels/stream-status/file")["provider"].is_null());

    s.start_and_wait("live");
    const std::string why = "provider acme: 1 of 1 connections in use by live";
    const HttpResponse start = s.get("/api/v1/channels/start-stream/live2");
    CHECK(start.status == 503);
    CHECK(nlohmann::json::parse(start.body)["detail"] == why);
    CHECK(start.headers.at("retry-after") == std::to_string(static_cast<int>(kProviderReclaimIdle)));

    // A viewer's on-demand start (a playlist, a TS stream) gets the same answer, not a timeout.
    const HttpResponse playlist = s.get("/hls_streams/live2/index.m3u8");
    CHECK(playlist.status == 503);
    CHECK(nlohmann::json::parse(playlist.body)["detail"] == why);
    const HttpResponse ts = s.get("/stream/live2.ts");
    CHECK(ts.status == 503);
    CHECK(nlohmann::json::parse(ts.body)["detail"] == why);

    providers = s.get_json("/api/v1/providers")["providers"];
    CHECK(providers[0]["in_use"] == 1);
    CHECK(providers[0]["holders"] == nlohmann::json::array({"live"}));
    CHECK(providers[0]["refused"] == 3);
    CHECK(s.engine.running("file") == false);

    // Once the holder stops, the next viewer gets the channel.
    s.get_json("/api/v1/channels/stop-stream/live");
    CHECK(s.get("/hls_streams/live2/index.m3u8").status == 200);
    CHECK(s.get_json("/api/v1/providers")["providers"][0]["on_demand"] == nlohmann::json::array({"live2"}));
}
