// Proves the hostile origin serves every trick it claims: injected local URIs, redirects to file://,
// endless, chunked and gzip-bomb bodies, the lazily streamed 1 GiB playlist, trickles, the second
// origin's request log, and the healthy channels next to them.
#include <catch2/catch.hpp>

#include "support/hostile_origin.hpp"
#include "support/engine_settings.hpp"
#include "support/http_get.hpp"

#include "ingest/m3u8.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <random>

using namespace std::chrono_literals;
using namespace hlsrelay::test;
using Where = HostileOrigin::Where;

namespace {

const MediaSet& media6() {
    MediaSpec spec;  // the same spec (and cache) as test_fault_origin.cpp's
    spec.seconds = 6;
    spec.name = "fault_origin_av6";
    return make_media(spec);
}

// A marker file with a random, unique content, removed at the end of the scope.
struct Marker {
    std::filesystem::path dir, file;
    std::string text;
    Marker() {
        std::random_device rd;
        text = "HLSRELAY-MARKER-" + std::to_string(rd()) + "-" + std::to_string(rd()) + "-" + std::to_string(::getpid());
        dir = std::filesystem::temp_directory_path() / ("hlsrelay-marker-" + std::to_string(rd()));
        std::filesystem::create_directories(dir);
        file = dir / "secret.txt";
        std::ofstream(file) << text << "\n";
    }
    ~Marker() {
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }
};

struct RawResponse {
    std::string head;  // status line and headers
    std::string body;  // at most the bytes asked for
};

// GET with a raw socket: reads the head and at most `max_body` bytes of the body (not de-chunked), or
// what arrived until the peer closed or `timeout` passed.
RawResponse raw_get(uint16_t port, const std::string& path, std::size_t max_body, std::chrono::milliseconds timeout) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    const std::string request = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    REQUIRE(::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size()));
    std::string data;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::vector<char> buf(1 << 16);
    for (;;) {
        const std::size_t end = data.find("\r\n\r\n");
        if (end != std::string::npos && data.size() - end - 4 >= max_body) break;
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) break;
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
        const ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
        if (n <= 0) break;
        data.append(buf.data(), static_cast<std::size_t>(n));
    }
    ::close(fd);
    RawResponse r;
    const std::size_t end = data.find("\r\n\r\n");
    r.head = data.substr(0, end);
    if (end != std::string::npos) r.body = data.substr(end + 4, max_body);
    return r;
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Inflates a gzip body in 1 MiB steps; returns the decompressed size (nothing is kept).
int64_t gunzip_size(const std::string& gz) {
    z_stream z{};
    REQUIRE(inflateInit2(&z, 15 + 16) == Z_OK);
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gz.data()));
    z.avail_in = static_cast<uInt>(gz.size());
    std::vector<char> out(1 << 20);
    int64_t total = 0;
    int rc = Z_OK;
    while (rc == Z_OK) {
        z.next_out = reinterpret_cast<Bytef*>(out.data());
        z.avail_out = static_cast<uInt>(out.size());
        rc = inflate(&z, Z_NO_FLUSH);
        total += static_cast<int64_t>(out.size() - z.avail_out);
    }
    inflateEnd(&z);
    CHECK(rc == Z_STREAM_END);
    return total;
}

}  // namespace

TEST_CASE("hostile origin: healthy channels and injected local URIs", "[origin][hostile]") {
    Marker marker;
    HostileOrigin origin(marker.file.string(), media6());
    origin.start();
    REQUIRE(origin.port() != 0);
    REQUIRE(origin.other_port() != 0);
    REQUIRE(origin.port() != origin.other_port());

    for (const std::string& path : {std::string(HostileOrigin::kHealthy), HostileOrigin::xtream_path()}) {
        INFO(path);
        const HttpResponse list = http_get(origin.url(path));
        REQUIRE(list.status == 200);
        const auto media = hlsrelay::m3u8::parse(list.body, origin.url(path)).media();
        REQUIRE_FALSE(media.segments.empty());
        const auto& seg = media.segments.back();
        const HttpResponse bytes = http_get(seg.uri);
        CHECK(bytes.status == 200);
        CHECK(bytes.body == origin.live().served_bytes(seg.sequence));
    }
    CHECK(contains(HostileOrigin::xtream_path(), HostileOrigin::kUser));
    CHECK(contains(HostileOrigin::xtream_path(), HostileOrigin::kPass));

    const auto injections = origin.injections();
    REQUIRE(injections.size() == 8);
    for (const auto& inj : injections) {
        for (Where where : {Where::Segment, Where::Key, Where::Map, Where::Variant}) {
            INFO(inj.label << " in " << HostileOrigin::name(where));
            const HttpResponse r = http_get(origin.url(HostileOrigin::injection_path(inj.label, where)));
            REQUIRE(r.status == 200);
            CHECK(contains(r.body, inj.uri));
            CHECK(r.body.rfind("#EXTM3U", 0) == 0);
            const auto parsed = hlsrelay::m3u8::parse(r.body, origin.url(HostileOrigin::injection_path(inj.label, where)));
            CHECK(parsed.is_master() == (where == Where::Variant));
        }
    }
    // The injected URIs are the ones the issue lists, naming the marker file.
    CHECK(injections[0].uri == "file://" + marker.file.string());
    CHECK(injections[1].uri == "file:" + marker.file.string());
    CHECK(injections[2].uri == "concat:" + marker.file.string() + "|" + marker.file.string());
    CHECK(injections[3].uri == "subfile,,start,0,end,1300,,:" + marker.file.string());
    CHECK(injections[5].uri == "tcp://127.0.0.1:" + std::to_string(origin.other_port()));
    CHECK(injections[7].uri.rfind("data:", 0) == 0);
    // A key playlist's segments are the healthy ones, served under its directory.
    const HttpResponse key = http_get(origin.url(HostileOrigin::injection_path("file3", Where::Key)));
    const auto key_media = hlsrelay::m3u8::parse(key.body, origin.url(HostileOrigin::injection_path("file3", Where::Key))).media();
    REQUIRE_FALSE(key_media.segments.empty());
    CHECK(http_get(key_media.segments.back().uri).status == 200);
    origin.stop();
}

TEST_CASE("hostile origin: redirects to file:// and to the other origin, which logs headers", "[origin][hostile]") {
    Marker marker;
    HostileOrigin origin(marker.file.string(), media6());
    origin.start();
    HttpResponse r = http_get(origin.url(HostileOrigin::kRedirectFilePlaylist));
    CHECK(r.status == 302);
    CHECK(r.headers["location"] == "file://" + marker.file.string());

    r = http_get(origin.url(HostileOrigin::kRedirectFileSegment));
    REQUIRE(r.status == 200);
    auto media = hlsrelay::m3u8::parse(r.body, origin.url(HostileOrigin::kRedirectFileSegment)).media();
    REQUIRE_FALSE(media.segments.empty());
    r = http_get(media.segments.back().uri);
    CHECK(r.status == 302);
    CHECK(r.headers["location"] == "file://" + marker.file.string());

    r = http_get(origin.url(HostileOrigin::kCrossRedirect));
    CHECK(r.status == 302);
    CHECK(r.headers["location"] == origin.other_url("/cross/index.m3u8"));

    r = http_get(origin.url(HostileOrigin::kCrossSegments));
    REQUIRE(r.status == 200);
    media = hlsrelay::m3u8::parse(r.body, origin.url(HostileOrigin::kCrossSegments)).media();
    REQUIRE_FALSE(media.segments.empty());
    for (const auto& s : media.segments) CHECK(s.uri.rfind(origin.other_url("/cross/seg_"), 0) == 0);

    CHECK(origin.other_requests().empty());
    r = http_get(media.segments.back().uri, 5s, "GET", {{"X-Secret", "s3"}, {"User-Agent", "ua/1"}});
    CHECK(r.status == 200);
    CHECK(r.body == origin.live().served_bytes(media.segments.back().sequence));
    CHECK(http_get(origin.other_url("/cross/index.m3u8")).status == 200);
    CHECK(http_get(origin.other_url("/healthy/index.m3u8")).status == 404);  // only /cross/ there
    const auto lines = origin.other_requests();
    const auto headers = origin.other_headers();
    REQUIRE(lines.size() == 3);
    REQUIRE(headers.size() == 3);
    CHECK(lines[0] == "GET /cross/seg_" + std::to_string(media.segments.back().sequence) + ".ts");
    CHECK(headers[0].at("x-secret") == "s3");
    CHECK(headers[0].at("user-agent") == "ua/1");
    CHECK(origin.other_connections() == 3);
    origin.stop();
}

TEST_CASE("hostile origin: endless, chunked and gzip-bomb segments, 1 GiB playlist, stop mid-body", "[origin][hostile]") {
    Marker marker;
    HostileOrigin origin(marker.file.string(), media6());
    origin.start();
    auto segment_path = [&](const std::string& dir) {
        const auto list = hlsrelay::m3u8::parse(http_get(origin.url(dir + "index.m3u8")).body, origin.url(dir + "index.m3u8")).media();
        REQUIRE_FALSE(list.segments.empty());
        return dir + "seg_" + std::to_string(list.segments.back().sequence) + ".ts";
    };

    RawResponse r = raw_get(origin.port(), segment_path("/endless/"), 4 << 20, 20s);
    CHECK(contains(r.head, "Content-Length: 1099511627776"));
    CHECK(r.body.size() == std::size_t{4} << 20);  // and it would go on
    CHECK(r.body[0] == '\x47');

    r = raw_get(origin.port(), segment_path("/chunked/"), 4 << 20, 20s);
    CHECK(contains(r.head, "Transfer-Encoding: chunked"));
    CHECK_FALSE(contains(r.head, "Content-Length"));
    CHECK(r.body.size() == std::size_t{4} << 20);

    const HttpResponse bomb = http_get(origin.url(segment_path("/gzip/")), 20s);
    CHECK(bomb.status == 200);
    CHECK(bomb.headers.at("content-encoding") == "gzip");
    CHECK(bomb.body.size() < std::size_t{4} << 20);  // small on the wire...
    CHECK(bomb.body == origin.gzip_bomb());
    CHECK(gunzip_size(bomb.body) > (int64_t{1} << 30));  // ...more than 1 GiB inflated
    const HttpResponse playlist_bomb = http_get(origin.url(HostileOrigin::kGzipPlaylist), 20s);
    CHECK(playlist_bomb.headers.at("content-encoding") == "gzip");
    CHECK(playlist_bomb.body == origin.gzip_bomb());

    r = raw_get(origin.port(), HostileOrigin::kHugePlaylist, 1 << 20, 20s);
    CHECK(contains(r.head, "Content-Length: 1073741824"));
    CHECK(r.body.rfind("#EXTM3U\n", 0) == 0);
    CHECK(r.body.size() == std::size_t{1} << 20);

    // stop() ends bodies mid-flight: a client that keeps its endless response open is cut off.
    const std::string endless = segment_path("/endless/");
    const int64_t before = origin.bytes_sent("/endless/");
    std::thread client([&] {
        try {
            raw_get(origin.port(), endless, std::size_t{1} << 40, 60s);
        } catch (...) {  // the assertions are the main thread's
        }
    });
    REQUIRE(wait_until([&] { return origin.bytes_sent("/endless/") > before + (int64_t{5} << 20); }, 20s));
    origin.stop();
    client.join();
}

TEST_CASE("hostile origin: trickled playlist and segment arrive byte by byte, complete", "[origin][hostile]") {
    Marker marker;
    HostileOrigin::Options options;
    options.trickle_interval = 2ms;  // fast here; the engine tests use the 1 s default
    HostileOrigin origin(marker.file.string(), media6(), options);
    origin.start();
    const HttpResponse list = http_get(origin.url(HostileOrigin::kTricklePlaylist), 30s);
    CHECK(list.status == 200);
    CHECK(list.body.rfind("#EXTM3U", 0) == 0);
    // Counted after each byte is sent: the last may still be on its way to the counter.
    CHECK(wait_until([&] { return origin.bytes_sent("/trickle-playlist/") == static_cast<int64_t>(list.body.size()); }, 5s));
    const auto media =
        hlsrelay::m3u8::parse(http_get(origin.url(HostileOrigin::kTrickleSegment)).body, origin.url(HostileOrigin::kTrickleSegment)).media();
    REQUIRE_FALSE(media.segments.empty());
    // The first bytes of a segment, one at a time; stop() then ends the trickle.
    RawResponse r = raw_get(origin.port(), "/trickle-segment/seg_" + std::to_string(media.segments.back().sequence) + ".ts", 16, 30s);
    CHECK(r.body == origin.live().served_bytes(media.segments.back().sequence).substr(0, 16));
    origin.stop();
}
