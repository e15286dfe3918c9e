// Unit tests of the HTTP rules shared by the demo server and the FastAPI router (api::check_request)
// and of the status views (api::apply): pure functions, no server.
#include <hlsrelay/api.hpp>

#include <catch2/catch.hpp>

#include <string>

using namespace hlsrelay::api;

namespace {

int status_of(const HttpPolicy& policy, HttpRequestView req) {
    const HttpVerdict v = check_request(policy, req);
    return v.refusal ? v.refusal->status : 200;
}

HttpRequestView control(std::optional<std::string_view> host, std::optional<std::string_view> origin = std::nullopt,
                        std::optional<std::string_view> site = std::nullopt) {
    HttpRequestView r;
    r.endpoint = Endpoint::control;
    r.host = host;
    r.origin = origin;
    r.sec_fetch_site = site;
    return r;
}

}  // namespace

TEST_CASE("check_request: Host must be an address, localhost or an allowed name", "[http_policy]") {
    HttpPolicy policy;
    policy.allowed_hosts = {"tv.example", "other.example:8443"};
    for (const char* host : {"127.0.0.1", "127.0.0.1:8000", "10.0.0.1:1", "[::1]", "[::1]:8000", "[fe80::1%25eth0]:80",
                             "localhost", "LocalHost:8000", "tv.example", "TV.EXAMPLE:1234", "other.example:8443"}) {
        INFO(host);
        CHECK(status_of(policy, control(host)) == 200);
    }
    for (const char* host : {"evil.example", "127.0.0.1.evil.example", "localhost.evil.example", "127.1", "0x7f000001",
                             "256.0.0.1", "1.2.3.4.5", "other.example", "other.example:8444", "sub.tv.example", "[::1",
                             "[::1]x", "a:b", "", ":80", "host:port", "host:123456", "[zz::1]"}) {
        INFO(host);
        CHECK(status_of(policy, control(host)) == 421);
    }
    CHECK(status_of(policy, control(std::nullopt)) == 200);  // HTTP/1.0 without Host
    policy.allowed_hosts = {"*"};
    CHECK(status_of(policy, control("anything.example")) == 200);
}

TEST_CASE("check_request: which endpoints check what", "[http_policy]") {
    HttpPolicy policy;
    policy.api_token = "t0ken";
    for (Endpoint e : {Endpoint::media, Endpoint::health}) {
        HttpRequestView r;
        r.endpoint = e;
        r.host = "evil.example";
        r.origin = "http://evil.example";
        const HttpVerdict v = check_request(policy, r);
        CHECK_FALSE(v.refusal);
        CHECK(v.cors == (e == Endpoint::media));
    }
    HttpRequestView status;
    status.endpoint = Endpoint::status;
    status.host = "127.0.0.1";
    status.origin = "http://evil.example";  // reads are not refused for it
    HttpVerdict v = check_request(policy, status);
    CHECK_FALSE(v.refusal);
    CHECK_FALSE(v.cors);
    CHECK(v.sources == Sources::hidden);
    status.authorization = "Bearer t0ken";
    CHECK(check_request(policy, status).sources == Sources::redacted);
    status.authorization.reset();
    status.query_token = "t0ken";
    CHECK(check_request(policy, status).sources == Sources::redacted);

    HttpRequestView registry;
    registry.endpoint = Endpoint::registry;
    registry.host = "127.0.0.1";
    v = check_request(policy, registry);
    REQUIRE(v.refusal);
    CHECK(v.refusal->status == 401);
    REQUIRE(v.refusal->headers.size() == 1);
    CHECK(v.refusal->headers[0] == std::make_pair(std::string("WWW-Authenticate"), std::string("Bearer")));
    for (const char* auth : {"Bearer t0ken", "bearer t0ken", "BEARER   t0ken"}) {
        registry.authorization = auth;
        CHECK_FALSE(check_request(policy, registry).refusal);
    }
    for (const char* auth : {"Bearer t0ke", "Bearer t0ken2", "Basic t0ken", "t0ken", "Bearer", "Bearer\tt0ken"}) {
        registry.authorization = auth;
        CHECK(status_of(policy, registry) == 401);
    }
    // Order: Host, then cross-site, then the token.
    CHECK(status_of(policy, control("evil.example", "http://evil.example")) == 421);
    CHECK(status_of(policy, control("127.0.0.1", "http://evil.example")) == 403);
    CHECK(status_of(policy, control("127.0.0.1")) == 401);
}

TEST_CASE("check_request: cross-site state changes are refused, same-origin and curl-like ones pass", "[http_policy]") {
    HttpPolicy policy;
    policy.allowed_hosts = {"tv.example"};
    CHECK(status_of(policy, control("127.0.0.1:8000")) == 200);  // curl
    CHECK(status_of(policy, control("127.0.0.1:8000", "http://127.0.0.1:8000", "same-origin")) == 200);
    CHECK(status_of(policy, control("127.0.0.1:8000", std::nullopt, "none")) == 200);  // typed in the address bar
    CHECK(status_of(policy, control("127.0.0.1", "http://127.0.0.1")) == 200);
    CHECK(status_of(policy, control("127.0.0.1", "http://127.0.0.1:80")) == 200);
    CHECK(status_of(policy, control("127.0.0.1:80", "http://127.0.0.1")) == 200);
    CHECK(status_of(policy, control("localhost:8000", "HTTP://LOCALHOST:8000")) == 200);
    CHECK(status_of(policy, control("[::1]:8000", "http://[::1]:8000")) == 200);
    CHECK(status_of(policy, control("tv.example", "https://tv.example")) == 200);
    CHECK(status_of(policy, control("127.0.0.1:8000", "https://tv.example")) == 200);  // a proxy's public name
    // The scheme is not compared: behind a TLS proxy the page is https:// on the same authority.
    CHECK(status_of(policy, control("127.0.0.1:8000", "https://127.0.0.1:8000")) == 200);
    for (const char* origin : {"http://evil.example", "null", "http://127.0.0.1:8001",
                               "http://127.0.0.1:8000/", "http://127.0.0.1:8000@evil.example", "file://", "", "127.0.0.1:8000",
                               "http://127.0.0.1:8000.evil.example", "ftp://127.0.0.1:8000"}) {
        INFO(origin);
        CHECK(status_of(policy, control("127.0.0.1:8000", origin)) == 403);
    }
    for (const char* site : {"cross-site", "same-site", "Cross-Site"}) {
        INFO(site);
        CHECK(status_of(policy, control("127.0.0.1:8000", "http://127.0.0.1:8000", site)) == 403);
    }
    CHECK(status_of(policy, control(std::nullopt, "http://127.0.0.1")) == 403);  // nothing to compare with
}

TEST_CASE("apply: hidden sources are null and URLs in errors hidden, redacted ones scrubbed", "[http_policy]") {
    nlohmann::ordered_json status;
    status["source"] = "http://***@h/live/***/***/1.ts";
    status["last_error"] = "cannot open http://u:p@h/live/U/P/1.ts: 404";
    status["disk_error"] = nullptr;
    status["notes"] = {"from http://h/a?x=1", "plain"};
    nlohmann::ordered_json redacted = status;
    apply(redacted, Sources::redacted);
    CHECK(redacted["source"] == "http://***@h/live/***/***/1.ts");
    CHECK(redacted["last_error"] == "cannot open http://***@h/live/***/***/1.ts: 404");
    CHECK(redacted["disk_error"].is_null());
    CHECK(redacted["notes"][0] == "from http://h/a?***");
    apply(status, Sources::hidden);
    CHECK(status["source"].is_null());
    CHECK(status["last_error"] == "cannot open <url hidden>: 404");
    CHECK(status["notes"][0] == "from <url hidden>");
    CHECK(status["notes"][1] == "plain");
}

TEST_CASE("to_json of a status never shows a credential, whoever asks", "[http_policy]") {
    hlsrelay::ChannelStatus s;
    s.source = "http://u:p@h/live/USER/PASS/1.ts";  // as if a caller forgot to redact
    s.last_error = "cannot open http://h/USER/PASS/100.m3u8?password=x: 404";
    s.previous_error = s.last_error;  // a cleared error keeps its text: redacted the same way
    const auto j = hlsrelay::to_json(s);
    CHECK(j["source"] == "http://***@h/live/***/***/1.ts");
    CHECK(j["last_error"] == "cannot open http://h/***/***/100.m3u8?***: 404");
    CHECK(j["previous_error"] == "cannot open http://h/***/***/100.m3u8?***: 404");
    auto hidden = j;
    hlsrelay::api::apply(hidden, hlsrelay::api::Sources::hidden);
    CHECK(hidden["previous_error"] == "cannot open <url hidden>: 404");
    CHECK(hidden["last_error"] == "cannot open <url hidden>: 404");
    s.last_error.clear();
    s.previous_error.clear();
    CHECK(hlsrelay::to_json(s)["last_error"].is_null());
    CHECK(hlsrelay::to_json(s)["previous_error"].is_null());
}

TEST_CASE("byte ranges follow RFC 9110") {
    auto check = [](const char* header, std::size_t size, ByteRange::Kind kind, std::size_t first = 0, std::size_t last = 0) {
        INFO(header << " of " << size);
        const ByteRange r = parse_range(header, size);
        CHECK(r.kind == kind);
        if (kind == ByteRange::satisfiable) {
            CHECK(r.first == first);
            CHECK(r.last == last);
        }
    };
    check("bytes=0-99", 1000, ByteRange::satisfiable, 0, 99);
    check("bytes=500-", 1000, ByteRange::satisfiable, 500, 999);
    check("bytes=-100", 1000, ByteRange::satisfiable, 900, 999);
    check("bytes=-5000", 1000, ByteRange::satisfiable, 0, 999);
    check("bytes=900-5000", 1000, ByteRange::satisfiable, 900, 999);
    check("Bytes=0-0", 1000, ByteRange::satisfiable, 0, 0);
    check("bytes=1000-", 1000, ByteRange::unsatisfiable);
    check("bytes=5000-6000", 1000, ByteRange::unsatisfiable);
    check("bytes=-0", 1000, ByteRange::unsatisfiable);
    check("bytes=0-", 0, ByteRange::unsatisfiable);
    check("bytes=0-1,5-6", 1000, ByteRange::ignore);  // several ranges: the whole body
    check("bytes=5-1", 1000, ByteRange::ignore);
    check("bytes=a-b", 1000, ByteRange::ignore);
    check("items=0-1", 1000, ByteRange::ignore);
    check("bytes=", 1000, ByteRange::ignore);
    check("bytes=-", 1000, ByteRange::ignore);
}

namespace {

hlsrelay::RenditionStatus rendition(std::string id, std::string kind, hlsrelay::ChannelState state, double age) {
    hlsrelay::RenditionStatus r;
    r.id = std::move(id);
    r.kind = std::move(kind);
    r.state = state;
    r.newest_segment_age_seconds = age;
    return r;
}

}  // namespace

TEST_CASE("failing_video_rendition: refused only while another video rendition plays ahead of it") {
    using hlsrelay::ChannelState;
    const double td = 2;
    SECTION("a reconnecting rendition beside a playing one") {
        const std::vector<hlsrelay::RenditionStatus> r{rendition("v0", "video", ChannelState::Reconnecting, 1.0),
                                                       rendition("v1", "video", ChannelState::Running, 1.0),
                                                       rendition("a0", "audio", ChannelState::Running, 1.0)};
        CHECK(failing_video_rendition(r, "v0", td) == &r[0]);
        CHECK(failing_video_rendition(r, "v1", td) == nullptr);
        CHECK(failing_video_rendition(r, "a0", td) == nullptr);  // audio is never refused
    }
    SECTION("an old rendition beside one a target duration newer") {
        const std::vector<hlsrelay::RenditionStatus> r{rendition("v0", "video", ChannelState::Running, 6.5),
                                                       rendition("v1", "video", ChannelState::Running, 1.0)};
        CHECK(failing_video_rendition(r, "v0", td) == &r[0]);
    }
    SECTION("a slow source: every rendition ages alike, none is refused") {
        const std::vector<hlsrelay::RenditionStatus> r{rendition("v0", "video", ChannelState::Running, 4.02),
                                                       rendition("v1", "video", ChannelState::Running, 3.98),
                                                       rendition("v2", "video", ChannelState::Running, 3.99)};
        CHECK(failing_video_rendition(r, "v0", td) == nullptr);
        CHECK(failing_video_rendition(r, "v1", td) == nullptr);
    }
    SECTION("every rendition reconnecting: the source is down, players wait") {
        const std::vector<hlsrelay::RenditionStatus> r{rendition("v0", "video", ChannelState::Reconnecting, 5.0),
                                                       rendition("v1", "video", ChannelState::Reconnecting, 5.0)};
        CHECK(failing_video_rendition(r, "v0", td) == nullptr);
    }
    SECTION("no other video rendition with a recent segment") {
        const std::vector<hlsrelay::RenditionStatus> r{rendition("v0", "video", ChannelState::Stalled, 9.0),
                                                       rendition("v1", "video", ChannelState::Running, -1)};
        CHECK(failing_video_rendition(r, "v0", td) == nullptr);
    }
    SECTION("an unknown rendition or no target duration yet") {
        const std::vector<hlsrelay::RenditionStatus> r{rendition("v0", "video", ChannelState::Failed, 9.0),
                                                       rendition("v1", "video", ChannelState::Running, 0.5)};
        CHECK(failing_video_rendition(r, "v9", td) == nullptr);
        CHECK(failing_video_rendition(r, "v0", 0) == nullptr);
    }
}

TEST_CASE("to_json of a status's push never shows the origin's credentials, and hides its URL without the token", "[http_policy]") {
    hlsrelay::ChannelStatus s;
    CHECK(hlsrelay::to_json(s)["push"].is_null());
    s.push = hlsrelay::PushStatus{};
    s.push->url = "https://ingest:s3cret@cdn.example/live/news";
    s.push->failed = 2;
    s.push->last_error = "PUT seg_3.ts: cannot open https://ingest:s3cret@cdn.example/live/news/seg_3.ts: Server returned 500";
    const auto j = hlsrelay::to_json(s);
    CHECK(j["push"]["failed"] == 2);
    CHECK(j["push"]["queued"] == 0);
    CHECK(j.dump().find("s3cret") == std::string::npos);
    auto hidden = j;
    hlsrelay::api::apply(hidden, hlsrelay::api::Sources::hidden);
    CHECK(hidden["push"]["url"].is_null());
    CHECK(hidden["push"]["last_error"] == "PUT seg_3.ts: cannot open <url hidden>: Server returned 500");
    CHECK(hlsrelay::push_problem("", hlsrelay::PushSettings{}).empty());
    CHECK(hlsrelay::push_problem("HTTPS://cdn.example/live", hlsrelay::PushSettings{}).empty());
    CHECK_FALSE(hlsrelay::push_problem("rtmp://cdn.example/live", hlsrelay::PushSettings{}).empty());
}
