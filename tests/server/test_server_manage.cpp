// Runtime channel management over HTTP (POST/PATCH/DELETE /api/v1/channels..., enable, disable):
// control-level access, bad bodies, disabled channels left out, and the changes kept in the state
// file across a restart of the server (a new engine loading the same list with the same state file).
#include "raw_client.hpp"
#include "server_fixture.hpp"

#include <hlsrelay/error.hpp>
#include <hlsrelay/settings.hpp>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

namespace fs = std::filesystem;
using namespace hlsrelay;
using namespace hlsrelay::test;

namespace {

constexpr const char* kToken = "manage-token";

struct Answer {
    int status = 0;
    std::string body;
    nlohmann::json json() const { return nlohmann::json::parse(body); }
};

// One request with a body over a raw connection (http_get sends none).
Answer send(uint16_t port, const std::string& method, const std::string& path, const std::string& body = {},
            bool token = true, const std::string& extra_headers = {}) {
    RawClient c(port);
    std::string req = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
    if (token) req += std::string("Authorization: Bearer ") + kToken + "\r\n";
    if (!body.empty()) req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
    req += extra_headers + "\r\n" + body;
    c.send(req);
    const auto r = c.read_response(std::chrono::seconds(20));
    REQUIRE(r);
    INFO(method << " " << path << " -> " << r->status << " " << r->body);
    return {r->status, r->body};
}

std::string list_text() {
    const std::string file = server_media().single_file;
    nlohmann::json list = nlohmann::json::array();
    list.push_back({{"id", "one"}, {"name", "One"}, {"url", file}, {"loop", true}});
    list.push_back({{"id", "two"}, {"name", "Two"}, {"url", file}, {"loop", true}, {"group", "G"}});
    return list.dump();
}

// A server over an engine with a state file and the list above loaded: what a restart makes again.
struct ManagedServer {
    explicit ManagedServer(const fs::path& state) : engine(settings(state)) {
        server::log::set_level(LogLevel::Warn);
        const LoadReport report = engine.load(list_text());
        for (const auto& i : report.issues) INFO(i.message);
        server::ServerConfig config;
        config.address = "127.0.0.1";
        config.port = 0;
        config.api_token = kToken;
        server = std::make_unique<server::Server>(engine, config);
        server->start();
    }
    ~ManagedServer() {
        server->stop();
        engine.stop_all();
    }
    static EngineSettings settings(const fs::path& state) {
        EngineSettings s = quick_engine_settings();
        s.state_file = state.string();
        return s;
    }
    uint16_t port() const { return server->port(); }
    std::string get_text(const std::string& path) const {
        return http_get("http://127.0.0.1:" + std::to_string(port()) + path + "?token=" + kToken, std::chrono::seconds(15)).body;
    }

    Engine engine;
    std::unique_ptr<server::Server> server;
};

struct TempDir {
    TempDir() : path(fs::temp_directory_path() / ("hlsrelay-manage-" + std::to_string(::getpid()))) {
        fs::remove_all(path);
        fs::create_directories(path);
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    fs::path path;
};

nlohmann::json channel_body(const std::string& id, const std::string& name) {
    nlohmann::json j = {{"name", name}, {"url", server_media().single_file}, {"loop", true}};
    if (!id.empty()) j["id"] = id;
    return j;
}

}  // namespace

TEST_CASE("server: channels are added, changed, disabled and removed over HTTP and kept across a restart") {
    TempDir dir;
    const fs::path state = dir.path / "state.json";
    {
        ManagedServer s(state);
        const uint16_t port = s.port();

        // Control-level: the token is required, browsers' cross-site requests are refused.
        CHECK(send(port, "POST", "/api/v1/channels", channel_body("three", "Three").dump(), false).status == 401);
        CHECK(send(port, "PATCH", "/api/v1/channels/two", R"({"group":"X"})", false).status == 401);
        CHECK(send(port, "DELETE", "/api/v1/channels/two", {}, false).status == 401);
        CHECK(send(port, "POST", "/api/v1/channels/two/disable", {}, false).status == 401);
        CHECK(send(port, "POST", "/api/v1/channels", channel_body("three", "Three").dump(), true,
                   "Origin: http://evil.example\r\n").status == 403);
        CHECK(send(port, "DELETE", "/api/v1/channels/two", {}, true, "Sec-Fetch-Site: cross-site\r\n").status == 403);
        CHECK(s.engine.channels().size() == 2);

        // Add: 201 with the channel as stored; its id assigned from the name when none is given.
        Answer a = send(port, "POST", "/api/v1/channels", channel_body("three", "Three").dump());
        REQUIRE(a.status == 201);
        CHECK(a.json()["id"] == "three");
        CHECK(a.json()["enabled"] == true);
        CHECK(a.json()["running"] == false);
        CHECK(send(port, "POST", "/api/v1/channels", channel_body("three", "Three again").dump()).status == 409);
        a = send(port, "POST", "/api/v1/channels", channel_body("", "Four Ch").dump());
        REQUIRE(a.status == 201);
        CHECK(a.json()["id"] == "four_ch");

        // Bad bodies: 400 with the reason, 413 past the cap; nothing added.
        auto detail_of = [&](const std::string& method, const std::string& path, const std::string& body, int status) {
            const Answer b = send(port, method, path, body);
            REQUIRE(b.status == status);
            return b.json()["detail"].get<std::string>();
        };
        CHECK_THAT(detail_of("POST", "/api/v1/channels", "{\"name\": ", 400), Catch::Contains("invalid JSON"));
        CHECK_THAT(detail_of("POST", "/api/v1/channels", "[1, 2]", 400), Catch::Contains("JSON object"));
        CHECK_THAT(detail_of("POST", "/api/v1/channels", R"({"name": 5, "url": "http://a/x.m3u8"})", 400),
                   Catch::Contains("'name' must be a string"));
        CHECK_THAT(detail_of("POST", "/api/v1/channels", R"({"name": "X", "url": "http://a/x.m3u8", "bogus": 1})", 400),
                   Catch::Contains("unknown field 'bogus'"));
        CHECK_THAT(detail_of("POST", "/api/v1/channels", R"({"name": "X"})", 400), Catch::Contains("'url' or 'urls'"));
        CHECK_THAT(detail_of("POST", "/api/v1/channels", R"({"name": "X", "url": "http://a/x.m3u8", "max_segments": 1000})", 400),
                   Catch::Contains("max_segments"));
        CHECK(detail_of("POST", "/api/v1/channels", "", 400).size() > 0);
        const std::string big = R"({"name": "Big", "url": "http://a/x.m3u8", "logo": ")" +
                                std::string(kMaxApiBodyBytes, 'x') + "\"}";
        CHECK_THAT(detail_of("POST", "/api/v1/channels", big, 413), Catch::Contains("too large"));
        CHECK(s.engine.channels().size() == 4);

        // Update: only the fields given change; 404 unknown; the id cannot change.
        a = send(port, "PATCH", "/api/v1/channels/two", R"({"group": "News", "logo": "http://l.example/two.png"})");
        REQUIRE(a.status == 200);
        CHECK(a.json()["group"] == "News");
        CHECK(a.json()["logo"] == "http://l.example/two.png");
        CHECK(a.json()["name"] == "Two");
        CHECK(send(port, "PATCH", "/api/v1/channels/nope", R"({"group": "News"})").status == 404);
        CHECK_THAT(detail_of("PATCH", "/api/v1/channels/two", R"({"id": "other"})", 400), Catch::Contains("cannot change"));
        CHECK_THAT(detail_of("PATCH", "/api/v1/channels/two", R"({"loop": "yes"})", 400), Catch::Contains("'loop'"));
        CHECK(s.engine.find_channel("two")->group == "News");

        // Disable: a running channel stops, cannot start again (409), and leaves the lineup and M3Us.
        REQUIRE(send(port, "POST", "/api/v1/channels/one/start").status == 200);
        REQUIRE(s.engine.wait_ready("one", 20));
        a = send(port, "POST", "/api/v1/channels/one/disable");
        REQUIRE(a.status == 200);
        CHECK(a.json()["enabled"] == false);
        CHECK_FALSE(s.engine.running("one"));
        const Answer refused = send(port, "POST", "/api/v1/channels/one/start");
        CHECK(refused.status == 409);
        CHECK_THAT(refused.json()["detail"].get<std::string>(), Catch::Contains("disabled"));
        CHECK(send(port, "GET", "/api/v1/channels/start-stream/one").status == 409);
        CHECK(s.get_text("/playlist.m3u").find("/stream/one.ts") == std::string::npos);
        CHECK(s.get_text("/playlist.m3u").find("/stream/two.ts") != std::string::npos);
        CHECK(s.get_text("/lineup.json").find("/stream/one.ts") == std::string::npos);
        CHECK(s.get_text("/api/v1/channels/static-hls-m3u").find("/hls_streams/one/") == std::string::npos);
        CHECK(nlohmann::json::parse(s.get_text("/api/v1/channels/stream-status/one"))["enabled"] == false);
        CHECK(s.get_text("/epg.xml").find("\"one\"") == std::string::npos);
        const auto listed = nlohmann::json::parse(s.get_text("/api/v1/channels"))["channels"];
        REQUIRE(listed.size() == 4);
        CHECK(listed[0]["id"] == "one");
        CHECK(listed[0]["enabled"] == false);
        CHECK(listed[1]["enabled"] == true);

        // Remove: 200 {removed}, then 404.
        a = send(port, "DELETE", "/api/v1/channels/two");
        REQUIRE(a.status == 200);
        CHECK(a.json()["removed"] == "two");
        CHECK(send(port, "DELETE", "/api/v1/channels/two").status == 404);
        CHECK(send(port, "POST", "/api/v1/channels/two/enable").status == 404);
        CHECK(fs::exists(state));
        CHECK((fs::status(state).permissions() & (fs::perms::group_all | fs::perms::others_all)) == fs::perms::none);
    }
    {
        // The restart: the same list and the same state file give the same channels.
        ManagedServer s(state);
        std::vector<std::string> ids;
        for (const auto& c : s.engine.channels()) ids.push_back(c.id);
        std::sort(ids.begin(), ids.end());
        CHECK(ids == std::vector<std::string>{"four_ch", "one", "three"});
        CHECK_FALSE(s.engine.find_channel("one")->enabled);
        CHECK(s.engine.find_channel("three")->name == "Three");
        CHECK(send(s.port(), "POST", "/api/v1/channels/one/start").status == 409);
        Answer a = send(s.port(), "POST", "/api/v1/channels/one/enable");
        REQUIRE(a.status == 200);
        CHECK(a.json()["enabled"] == true);
        // Changing an added channel keeps all of it.
        REQUIRE(send(s.port(), "PATCH", "/api/v1/channels/three", R"({"name": "Three Renamed"})").status == 200);
        // Loading the list again (a host reloading it) does not bring back what was removed.
        s.engine.load(list_text());
        CHECK_FALSE(s.engine.find_channel("two"));
    }
    {
        ManagedServer s(state);
        CHECK(s.engine.find_channel("one")->enabled);
        CHECK(s.engine.find_channel("three")->name == "Three Renamed");
        CHECK(s.engine.channels().size() == 3);
    }
}

TEST_CASE("server: a corrupt state file is refused with a message naming it, never a crash") {
    TempDir dir;
    const fs::path state = dir.path / "state.json";
    for (const std::string& text : {std::string("{\"hlsrelay_state\": 1, \"added\": [{\"id\": "), std::string("[]"),
                                   std::string("{\"hlsrelay_state\": 7}"), std::string("{\"hlsrelay_state\": 1, \"removed\": [\"../x\"]}"),
                                   std::string("\xff\xfe garbage")}) {
        std::ofstream(state, std::ios::binary | std::ios::trunc) << text;
        INFO(text);
        try {
            Engine e(ManagedServer::settings(state));
            FAIL("the engine accepted a corrupt state file");
        } catch (const Error& e) {
            CHECK(e.code() == ErrorCode::InvalidArgument);
            CHECK_THAT(e.what(), Catch::Contains(state.string()));
        }
    }
    // An entry the loaders refuse is reported when applied; the rest applies.
    std::ofstream(state, std::ios::binary | std::ios::trunc)
        << R"({"hlsrelay_state": 1, "added": [{"id": "bad", "name": "Bad"}, {"id": "good", "name": "Good", "url": "http://a/g.m3u8"}]})";
    Engine e(ManagedServer::settings(state));
    CHECK(e.find_channel("good"));
    CHECK_FALSE(e.find_channel("bad"));
    const LoadReport r = e.load(list_text());
    bool reported = false;
    for (const auto& i : r.issues) reported = reported || i.message.find("'bad'") != std::string::npos;
    CHECK(reported);
}
