// Segments are published into fd-backed buffers (SegmentBytes: a mapped memfd) and the server sends
// their bodies with sendfile(2). These tests take a channel with large segments (several MB, far more
// than a socket buffer) and check the body is byte-exact over keep-alive, for HEAD and ranges, to a
// client that reads slowly (the server's partial-send/EAGAIN path), and that clients that go away
// mid-body leave no socket behind and nothing broken.
#include "raw_client.hpp"
#include "server_fixture.hpp"

#include <filesystem>
#include <sstream>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

using namespace hlsrelay;
using namespace hlsrelay::test;
using namespace std::chrono_literals;

namespace {

// 720p at 16 Mbit/s in 2 s segments: ~4 MB each.
const MediaSet& big_media() {
    MediaSpec spec;
    spec.seconds = 8;
    spec.segment_seconds = 2.0;
    spec.gop_frames = 50;
    spec.width = 1280;
    spec.height = 720;
    spec.video_kbps = 16000;
    spec.name = "server-big-2s";
    return make_media(spec);
}

struct BigServer {
    BigServer() : engine(quick_settings(2.0, 5)) {
        server::log::set_level(LogLevel::Warn);
        ChannelConfig big;
        big.id = "big";
        big.name = "Big";
        big.urls = {big_media().single_file};
        big.loop = true;
        engine.add_channel(big);
        server::ServerConfig config;
        config.address = "127.0.0.1";
        config.port = 0;
        server = std::make_unique<server::Server>(engine, config);
        server->start();
    }
    ~BigServer() {
        server->stop();
        engine.stop_all();
    }
    uint16_t port() const { return server->port(); }
    Engine engine;
    std::unique_ptr<server::Server> server;
};

std::string newest_segment(const Engine& engine) {
    const auto playlist = engine.read("big", "index.m3u8");
    if (!playlist) return {};
    std::string name;
    std::istringstream in{std::string(playlist->bytes())};
    for (std::string line; std::getline(in, line);)
        if (line.rfind("seg_", 0) == 0) name = line;
    return name;
}

std::string get_request(const std::string& path, const std::string& method = "GET", const std::string& extra = "") {
    return method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra + "\r\n";
}

// The process's open sockets (the server's and this test's).
int open_sockets() {
    int n = 0;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd", ec)) {
        std::error_code rec;
        const auto target = std::filesystem::read_symlink(e.path(), rec);
        if (!rec && target.string().rfind("socket:", 0) == 0) ++n;
    }
    return n;
}

// A loopback client with a tiny receive buffer: the server's sends hit a full socket at once.
int small_window_socket(uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    const int size = 4096;
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    timeval tv{10, 0};  // every read below is bounded
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
    return fd;
}

void send_all(int fd, const std::string& bytes) {
    size_t at = 0;
    while (at < bytes.size()) {
        const ssize_t n = ::send(fd, bytes.data() + at, bytes.size() - at, MSG_NOSIGNAL);
        REQUIRE(n > 0);
        at += static_cast<size_t>(n);
    }
}

}  // namespace

TEST_CASE("large segments are sent with sendfile byte-exact over keep-alive, HEAD, ranges and slow readers") {
    BigServer s;
    s.engine.start("big");
    std::string name;
    REQUIRE(wait_until([&] { return !(name = newest_segment(s.engine)).empty(); }, 60s));
    const std::optional<Resource> resource = s.engine.read("big", name, Delivery::headers);
    REQUIRE(resource);
    const std::string expected(resource->bytes());
    INFO(name << " " << expected.size() << " bytes");
    REQUIRE(expected.size() > 2'000'000);  // far more than any socket buffer
#ifdef __linux__
    REQUIRE(resource->file);  // published into an fd-backed buffer: the server takes the sendfile path
    CHECK(resource->file->fd() >= 0);
#endif
    const std::string path = "/hls_streams/big/" + name;
    const std::string size = std::to_string(expected.size());

    SECTION("keep-alive: GET, HEAD, a range and GET again on one connection") {
        RawClient c(s.port());
        c.send(get_request(path));
        auto r = c.read_response(30s);
        REQUIRE(r);
        CHECK(r->status == 200);
        CHECK(r->headers.at("content-length") == size);
        CHECK(r->body == expected);

        c.send(get_request(path, "HEAD"));
        r = c.read_response(30s, true);
        REQUIRE(r);
        CHECK(r->status == 200);
        CHECK(r->headers.at("content-length") == size);
        CHECK(r->body.empty());

        c.send(get_request(path, "GET", "Range: bytes=1000-2999999\r\n"));
        r = c.read_response(30s);
        REQUIRE(r);
        CHECK(r->status == 206);
        CHECK(r->headers.at("content-range") == "bytes 1000-2999999/" + size);
        CHECK(r->body == expected.substr(1000, 2'999'000));

        c.send(get_request(path, "GET", "Range: bytes=-188\r\n"));
        r = c.read_response(30s);
        REQUIRE(r);
        CHECK(r->status == 206);
        CHECK(r->body == expected.substr(expected.size() - 188));

        // Pipelined: two whole bodies back to back.
        c.send(get_request(path) + get_request(path));
        for (int i = 0; i < 2; ++i) {
            r = c.read_response(30s);
            REQUIRE(r);
            CHECK(r->status == 200);
            CHECK(r->body == expected);
        }
        CHECK(c.buffered().empty());
    }

    SECTION("a client that reads slowly gets every byte") {
        const int fd = small_window_socket(s.port());
        send_all(fd, get_request(path) + get_request(path, "GET", "Range: bytes=100-\r\nConnection: close\r\n"));
        std::string got;
        char buf[16384];
        const auto deadline = std::chrono::steady_clock::now() + 120s;
        for (;;) {
            const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
            if (n <= 0) break;  // EOF after the second response (or the 10 s receive timeout)
            got.append(buf, static_cast<size_t>(n));
            if (got.size() % (256 * 1024) < sizeof buf) std::this_thread::sleep_for(20ms);  // now and then a pause
            REQUIRE(std::chrono::steady_clock::now() < deadline);
        }
        ::close(fd);
        const size_t first_head = got.find("\r\n\r\n");
        REQUIRE(first_head != std::string::npos);
        CHECK(got.substr(0, 15) == "HTTP/1.1 200 OK");
        REQUIRE(got.size() >= first_head + 4 + expected.size());
        CHECK(got.compare(first_head + 4, expected.size(), expected) == 0);
        const std::string rest = got.substr(first_head + 4 + expected.size());
        const size_t second_head = rest.find("\r\n\r\n");
        REQUIRE(second_head != std::string::npos);
        CHECK(rest.substr(0, 12) == "HTTP/1.1 206");
        CHECK(rest.substr(second_head + 4) == expected.substr(100));
    }

    SECTION("clients that close mid-body leave no socket behind") {
        {  // the server's listening socket and anything lazily opened exist before counting
            RawClient warm(s.port());
            warm.send(get_request(path, "HEAD", "Connection: close\r\n"));
            REQUIRE(warm.read_response(30s, true));
        }
        REQUIRE(wait_until([&] { return open_sockets() > 0; }, 5s));
        const int before = open_sockets();
        for (int i = 0; i < 8; ++i) {
            const int fd = small_window_socket(s.port());
            send_all(fd, get_request(path));
            char buf[8192];
            REQUIRE(::recv(fd, buf, sizeof buf, 0) > 0);  // the head and the body's first bytes
            if (i % 2) {  // half of them reset the connection, half close it
                const linger l{1, 0};
                ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
            }
            ::close(fd);
        }
        // The server notices each (its next send fails) and closes its end.
        CHECK(wait_until([&] { return open_sockets() <= before; }, 30s));
        // ... and serves the next client whole.
        RawClient c(s.port());
        c.send(get_request(path));
        const auto r = c.read_response(30s);
        REQUIRE(r);
        CHECK(r->body == expected);
    }
}
