// End-to-end tests of the HTTP layer on real sockets: keep-alive, pipelining, HTTP/1.0, bodies,
// malformed requests, timeouts of slow or idle clients, and the connection limit.
#include "raw_client.hpp"
#include "server_fixture.hpp"

using namespace hlsrelay;
using namespace hlsrelay::test;
using namespace std::chrono_literals;

namespace {

const std::string kHealth = "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";

server::ServerConfig short_timeouts() {
    server::ServerConfig c;
    c.timeouts.read = 1000ms;
    c.timeouts.keep_alive = 1000ms;
    return c;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

TEST_CASE("keep-alive, pipelining and Connection: close") {
    ServerUnderTest s;
    RawClient c(s.port());

    c.send(kHealth);
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->headers.count("connection") == 0);  // HTTP/1.1 keeps the connection by default
    c.send(kHealth);
    REQUIRE(c.read_response());

    // Three requests in one write are answered in order on the same connection.
    c.send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\nGET /nope HTTP/1.1\r\nHost: t\r\n\r\nHEAD /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
    r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 200);
    r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 404);
    r = c.read_response(5s, true);
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->body.empty());
    CHECK(std::stoi(r->headers.at("content-length")) > 0);

    // A POST body is read and discarded; the next request on the connection still parses.
    c.send("POST /api/v1/channels/nope/stop HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 11\r\n\r\nhello world" + kHealth);
    r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 404);
    r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 200);

    c.send("GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    r = c.read_response();
    REQUIRE(r);
    CHECK(r->headers.at("connection") == "close");
    CHECK(c.closed_within(2s));

    RawClient http10(s.port());
    http10.send("GET /healthz HTTP/1.0\r\n\r\n");
    r = http10.read_response();
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(http10.closed_within(2s));

    RawClient http10_keep(s.port());
    http10_keep.send("GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    r = http10_keep.read_response();
    REQUIRE(r);
    CHECK(r->headers.at("connection") == "keep-alive");
    http10_keep.send("GET /healthz HTTP/1.0\r\n\r\n");
    REQUIRE(http10_keep.read_response());
}

TEST_CASE("malformed and oversized requests get their status and a closed connection") {
    ServerUnderTest s;
    struct Case {
        std::string request;
        int status;
        bool closes = true;  // a framing error leaves the stream unusable; a routing error does not
    };
    const Case cases[] = {
        {"garbage\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\n\r\n", 400},  // no Host
        {"GET /" + std::string(9000, 'a') + " HTTP/1.1\r\nHost: t\r\n\r\n", 414},
        {"GET / HTTP/1.1\r\nHost: t\r\nX: " + std::string(17000, 'a') + "\r\n\r\n", 431},
        {"POST /api/v1/channels/live/stop HTTP/1.1\r\nHost: t\r\nContent-Length: 2000000\r\n\r\n", 413},
        {"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n", 501},
        {"GET / HTTP/3.0\r\nHost: t\r\n\r\n", 505},
        {"GET /api/v1/channels/stream-status/%zz HTTP/1.1\r\nHost: t\r\n\r\n", 400, false},
    };
    for (const Case& c : cases) {
        INFO(c.request.substr(0, 60));
        RawClient client(s.port());
        client.send(c.request);
        auto r = client.read_response();
        REQUIRE(r);
        CHECK(r->status == c.status);
        CHECK(r->headers.at("content-type") == "application/json");
        CHECK(nlohmann::json::parse(r->body).contains("detail"));
        if (c.closes) CHECK(client.closed_within(3s));
    }
    CHECK(s.get("/healthz").status == 200);
}

TEST_CASE("a slow client is timed out without holding up others") {
    ServerUnderTest s(short_timeouts());

    RawClient slow(s.port());
    slow.send("GET /healthz HTTP/1.1\r\nHo");  // and then nothing
    const auto t0 = std::chrono::steady_clock::now();
    // Others are served meanwhile: before the slow client's request times out, it is not in their way.
    {
        server::ServerConfig patient = short_timeouts();
        patient.timeouts.read = 60s;
        ServerUnderTest p(patient);
        RawClient stalled(p.port());
        stalled.send("GET /healthz HTTP/1.1\r\nHo");  // and then nothing, for far longer than the gets take
        const auto t = std::chrono::steady_clock::now();
        for (int i = 0; i < 5; ++i) CHECK(p.get("/healthz").status == 200);
        CHECK(seconds_since(t) < 30.0);  // not held up until the stalled request's 60 s timeout
    }
    auto r = slow.read_response(10s);
    REQUIRE(r);
    CHECK(r->status == 408);
    CHECK(slow.closed_within(10s));
    CHECK(seconds_since(t0) > 0.7);  // not before its 1 s read timeout

    // A request trickled in byte by byte must still arrive within the read timeout in total: bytes
    // that keep coming do not extend it.
    RawClient trickle(s.port());
    const auto t1 = std::chrono::steady_clock::now();
    const std::string request = "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: yes\r\n\r\n";
    for (std::size_t i = 0; seconds_since(t1) < 1.5 && i < request.size(); ++i) {
        trickle.send(request.substr(i, 1));
        std::this_thread::sleep_for(100ms);
    }
    r = trickle.read_response(300ms);
    REQUIRE(r);
    CHECK(r->status == 408);
    CHECK(trickle.closed_within(2s));

    // A connection that never sends anything, and an idle keep-alive one, are closed too.
    RawClient silent(s.port());
    CHECK(silent.closed_within(3s));
    RawClient idle(s.port());
    idle.send(kHealth);
    REQUIRE(idle.read_response());
    const auto t2 = std::chrono::steady_clock::now();
    CHECK(idle.closed_within(3s));
    CHECK(seconds_since(t2) > 0.7);
}

TEST_CASE("a client that stops reading does not block others") {
    ServerUnderTest s(short_timeouts());
    s.start_and_wait("live");
    std::string segment;
    REQUIRE(wait_until(
        [&] {
            const std::string index = s.get("/hls_streams/live/index.m3u8").body;
            const std::size_t at = index.rfind("seg_");
            if (at == std::string::npos) return false;
            segment = index.substr(at, index.find('\n', at) - at);
            return true;
        },
        10s));
    // Pipeline many segment requests and never read: the server's writes back up in this socket.
    RawClient stuck(s.port());
    std::string burst;
    for (int i = 0; i < 300; ++i) burst += "GET /hls_streams/live/" + segment + " HTTP/1.1\r\nHost: t\r\n\r\n";
    stuck.send(burst);
    std::this_thread::sleep_for(300ms);
    for (int i = 0; i < 5; ++i) {
        const auto t = std::chrono::steady_clock::now();
        CHECK(s.get("/hls_streams/live/master.m3u8").status == 200);
        CHECK(seconds_since(t) < 0.5);
    }
}

TEST_CASE("connections over the limit are closed at once") {
    server::ServerConfig config;
    config.max_connections = 3;
    ServerUnderTest s(config);
    std::vector<std::unique_ptr<RawClient>> held;
    for (int i = 0; i < 3; ++i) {
        held.push_back(std::make_unique<RawClient>(s.port()));
        held.back()->send(kHealth);
        REQUIRE(held.back()->read_response());  // accepted and served: it counts
        // Mid-request, so not idle: an idle keep-alive connection would be closed to make room
        // (test_server_security.cpp); these are not.
        held.back()->send("GET /healthz HTTP/1.1\r\n");
    }
    // The server has read those halves (a connection counts as idle from its write's completion to
    // its next bytes, and that completion may come after the client has the response).
    REQUIRE(wait_until([&] { return s.server->connections() == 3 && s.server->idle_connections() == 0; }, 10s));
    RawClient extra(s.port());  // the kernel completes the handshake; the server then drops it
    CHECK(extra.closed_within(2s));
    CHECK(extra.buffered().empty());

    held.pop_back();  // frees a slot once the server notices the close
    CHECK(wait_until(
        [&] {
            try {
                return s.get("/healthz").status == 200;
            } catch (const std::exception&) {
                return false;
            }
        },
        3s));
}
