// The fetch layer's rules for hostile upstreams, piece by piece: the URL policy (src/ingest/url_policy.hpp),
// the HTTP response framing (src/ingest/http_framing.hpp), AES-128 decryption, and the HTTP client
// (src/ingest/http_client.hpp) against a tiny loopback server: refused redirects, caps, the total deadline
// on a trickle, header scope across origins. The hostile-origin suite drives whole channels.
#include "common/av_util.hpp"
#include "engine_fixture.hpp"
#include "ingest/http_client.hpp"
#include "ingest/http_framing.hpp"
#include "ingest/url_policy.hpp"

extern "C" {
#include <libavutil/aes.h>
}

#include <hlsrelay/engine.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <atomic>
#include <fstream>
#include <functional>
#include <mutex>
#include <thread>

namespace hlsrelay::test {

namespace {

// One connection at a time on 127.0.0.1: reads a request head, records it, lets the handler answer
// (the handler owns the connection until it returns), closes. Stopped and joined on destruction.
class TinyServer {
public:
    using Handler = std::function<void(int fd, const std::string& request, const std::atomic<bool>& stopping)>;
    explicit TinyServer(Handler handler) : handler_(std::move(handler)) {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        REQUIRE(fd_ >= 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        REQUIRE(::listen(fd_, 16) == 0);
        socklen_t len = sizeof a;
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
        port_ = ntohs(a.sin_port);
        thread_ = std::thread([this] { loop(); });
    }
    ~TinyServer() {
        stopping_ = true;
        thread_.join();
        ::close(fd_);
    }
    std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port_) + path; }
    std::vector<std::string> requests() const {
        std::lock_guard l(mu_);
        return requests_;
    }

    static void send_all(int fd, std::string_view bytes) {
        while (!bytes.empty()) {
            const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
            if (n <= 0) return;
            bytes.remove_prefix(static_cast<size_t>(n));
        }
    }

private:
    void loop() {
        while (!stopping_) {
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, 50) <= 0) continue;
            const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (c < 0) continue;
            std::string request;
            char buf[4096];
            while (request.find("\r\n\r\n") == std::string::npos && request.size() < 65536) {
                pollfd q{c, POLLIN, 0};
                if (::poll(&q, 1, 5000) <= 0) break;
                const ssize_t n = ::recv(c, buf, sizeof buf, 0);
                if (n <= 0) break;
                request.append(buf, static_cast<size_t>(n));
            }
            {
                std::lock_guard l(mu_);
                requests_.push_back(request);
            }
            if (request.find("\r\n\r\n") != std::string::npos) handler_(c, request, stopping_);
            ::close(c);
        }
    }

    Handler handler_;
    int fd_ = -1;
    uint16_t port_ = 0;
    std::atomic<bool> stopping_{false};
    mutable std::mutex mu_;
    std::vector<std::string> requests_;
    std::thread thread_;
};

std::string path_of(const std::string& request) {
    const auto sp = request.find(' ');
    return request.substr(sp + 1, request.find(' ', sp + 1) - sp - 1);
}

std::string ok(const std::string& body, const std::string& extra = "") {
    return "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n" + extra +
           "\r\n" + body;
}

std::string gzip(const std::string& data) {
    z_stream z{};
    REQUIRE(deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    std::string out(deflateBound(&z, data.size()) + 64, '\0');
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    z.avail_in = static_cast<uInt>(data.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    REQUIRE(deflate(&z, Z_FINISH) == Z_STREAM_END);
    out.resize(z.total_out);
    deflateEnd(&z);
    return out;
}

// What a fetch of `url` with `spec` throws ("" when it succeeds).
std::string fetch_error(const std::string& url, FetchSpec spec, bool* permanent = nullptr, std::string* body = nullptr) {
    av::Interrupter irq;
    HttpClient client;
    try {
        std::string b = client.get(url, spec, irq);
        if (body) *body = std::move(b);
        return "";
    } catch (const av::SourceError& e) {
        if (permanent) *permanent = e.permanent();
        return e.what();
    }
}

FetchSpec spec_for(const std::string& what = "segment") {
    FetchSpec s;
    s.what = what;
    s.read_timeout = 5;
    s.deadline = 20;
    s.deadline_name = what + "_deadline";
    return s;
}

}  // namespace

TEST_CASE("url policy: the scheme a URL would be opened with", "[fetch][policy]") {
    using url::scheme_of;
    CHECK(scheme_of("http://host/a.m3u8") == "http");
    CHECK(scheme_of("HTTPS://host/a.m3u8") == "https");
    CHECK(scheme_of("/etc/passwd") == "file");
    CHECK(scheme_of("relative/seg.ts") == "file");
    CHECK(scheme_of("file:///etc/passwd") == "file");
    CHECK(scheme_of("file:/etc/passwd") == "file");
    CHECK(scheme_of("FILE:/etc/passwd") == "file");
    CHECK(scheme_of("C:\\media\\a.ts") == "file");
    CHECK(scheme_of("c:/media/a.ts") == "file");
    CHECK(scheme_of(" http://host/") == "file");  // not clearly http: refused for remote playlists
    CHECK(scheme_of("concat:/etc/passwd|/etc/hosts") == "concat");
    CHECK(scheme_of("subfile,,start,0,end,100,,:/etc/passwd") == "subfile");
    CHECK(scheme_of("crypto+http://host/seg.ts") == "crypto");
    CHECK(scheme_of("crypto:http://host/seg.ts") == "crypto");
    CHECK(scheme_of("unix:///run/x.sock") == "unix");
    CHECK(scheme_of("tcp://127.0.0.1:22") == "tcp");
    CHECK(scheme_of("gopher://host/") == "gopher");
    CHECK(scheme_of("data:text/plain,hello") == "data");
    CHECK(scheme_of("") == "");
}

TEST_CASE("url policy: what a playlist, a redirect and a channel list may name", "[fetch][policy]") {
    const std::string remote = "http://cdn.example/live/index.m3u8";
    for (const char* bad : {"file:///etc/passwd", "file:/etc/passwd", "/etc/passwd", "concat:/etc/passwd|/etc/hosts",
                            "subfile,,start,0,end,9,,:/etc/passwd", "unix:///x", "tcp://127.0.0.1:22", "gopher://h/",
                            "data:,x", "crypto+file:///etc/passwd", "C:\\x.ts"}) {
        INFO(bad);
        const std::string e = url::check_playlist_uri(bad, remote);
        CHECK(e.rfind("refused URI scheme '", 0) == 0);
        CHECK(e.find("' in playlist") != std::string::npos);
        CHECK(url::check_redirect(bad).rfind("refused redirect to URI scheme '", 0) == 0);
    }
    CHECK(url::check_playlist_uri("file:///etc/passwd", remote) == "refused URI scheme 'file' in playlist");
    CHECK(url::check_playlist_uri("concat:a|b", remote) == "refused URI scheme 'concat' in playlist");
    CHECK(url::check_redirect("file:///etc/passwd") == "refused redirect to URI scheme 'file'");
    CHECK(url::check_playlist_uri("https://other.example/seg.ts", remote).empty());
    CHECK(url::check_playlist_uri("http://cdn.example/seg.ts", remote).empty());
    // A playlist the channel list names as a local file may name local files; nothing else may.
    CHECK(url::check_playlist_uri("/media/s0.ts", "/media/index.m3u8").empty());
    CHECK(url::check_playlist_uri("file:/media/s0.ts", "file:/media/index.m3u8").empty());
    CHECK(url::check_playlist_uri("http://cdn.example/s0.ts", "/media/index.m3u8").empty());
    CHECK_FALSE(url::check_playlist_uri("concat:a|b", "/media/index.m3u8").empty());
    // Channel lists: remote and the operator's local protocols.
    for (const char* good : {"http://h/a.ts", "https://h/a.m3u8", "/media/a.ts", "file:/media/a.ts", "udp://239.0.0.1:1234",
                             "srt://h:9000", "rtmp://h/live/x", "rtsp://h/x"})
        CHECK(url::check_source(good).empty());
    for (const char* bad : {"concat:/etc/passwd|/etc/hosts", "subfile,,start,0,end,9,,:/etc/passwd", "data:,x", "gopher://h/",
                            "unix:///x", "tcp://h:1"}) {
        INFO(bad);
        CHECK(url::check_source(bad).rfind("refused URI scheme '", 0) == 0);
        CHECK_FALSE(url::check_listed_source(bad).empty());
    }
    // A list fetched by URL: the same, but no local file.
    for (const char* good : {"http://h/a.ts", "https://h/a.m3u8", "udp://239.0.0.1:1234", "rtmp://h/live/x"})
        CHECK(url::check_listed_source(good).empty());
    for (const char* bad : {"/etc/passwd", "file:/etc/passwd", "file:///etc/passwd", "FILE:/x", "./x", "C:\\x"}) {
        INFO(bad);
        CHECK(url::check_listed_source(bad).find("local file") != std::string::npos);
    }
}

TEST_CASE("url policy: origins compare scheme, host and effective port", "[fetch][policy]") {
    CHECK(url::same_origin("http://Host.Example/a", "http://host.example:80/b?x"));
    CHECK(url::same_origin("https://h/a", "https://h:443/b"));
    CHECK_FALSE(url::same_origin("http://h/a", "https://h/a"));
    CHECK_FALSE(url::same_origin("http://h/a", "http://h:8080/a"));
    CHECK_FALSE(url::same_origin("http://h/a", "http://h.evil/a"));
    CHECK_FALSE(url::same_origin("http://h/a", "/local/a"));
    CHECK_FALSE(url::same_origin("http://h/a", ""));
    CHECK(url::same_origin("http://user:pw@h/a", "http://h/b"));
    CHECK(url::same_origin("http://[::1]:8080/a", "http://[::1]:8080/b"));
    const auto p = url::split_http("http://user:p%40ss@Host:8080/live/x.m3u8?t=1#frag");
    REQUIRE(p);
    CHECK(p->userinfo == "user:p%40ss");
    CHECK(p->host_port == "Host:8080");
    CHECK(p->origin.host == "host");
    CHECK(p->origin.port == 8080);
    CHECK(p->target == "/live/x.m3u8?t=1");
    CHECK_FALSE(url::split_http("http://h:0/"));
    CHECK_FALSE(url::split_http("http://h:99999/"));
    CHECK_FALSE(url::split_http("http:///path"));
    CHECK(url::split_http("http://h/a b\r\nX: 1")->target == "/a%20b%0D%0AX:%201");
    CHECK_FALSE(url::split_http("http://[::1/"));
    CHECK(url::allowed_everywhere("User-Agent"));
    CHECK(url::allowed_everywhere("referer"));
    CHECK_FALSE(url::allowed_everywhere("Authorization"));
    CHECK_FALSE(url::allowed_everywhere("Cookie"));
}

TEST_CASE("http framing: heads, lengths and chunks, overflow-safe", "[fetch][framing]") {
    using namespace http;
    SECTION("a Content-Length body") {
        const auto r = parse_response("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\n\r\nhello", 100);
        CHECK(r.head.status == 200);
        CHECK(r.head.reason == "OK");
        CHECK(r.body == "hello");
        CHECK(r.complete);
        CHECK(r.head.keep_alive);
        REQUIRE(r.head.header("x-a"));
        CHECK(*r.head.header("x-a") == "1");
    }
    SECTION("chunked, with extensions and trailers, fed a byte at a time") {
        const std::string wire = "4;x=1\r\nWiki\r\n5\r\npedia\r\n0\r\nT: 1\r\n\r\n";
        ChunkedDecoder d;
        std::string out;
        for (char c : wire) CHECK(d.feed(std::string_view(&c, 1), [&](std::string_view s) { out.append(s); }) == 1);
        CHECK(d.done());
        CHECK(out == "Wikipedia");
    }
    SECTION("an incomplete body is reported, not invented") {
        const auto r = parse_response("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 100);
        CHECK_FALSE(r.complete);
        CHECK(r.body == "abc");
        CHECK_FALSE(parse_response("HTTP/1.1 200 OK\r\nContent-Len", 100).complete);
    }
    SECTION("HTTP/1.0 and Connection: close end keep-alive; 1xx is skipped") {
        CHECK_FALSE(parse_response("HTTP/1.0 200 OK\r\n\r\nx", 10).head.keep_alive);
        CHECK_FALSE(parse_response("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nx", 10).head.keep_alive);
        const auto r = parse_response("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", 10);
        CHECK(r.head.status == 204);
        CHECK(r.complete);
    }
    SECTION("sizes that would overflow are refused") {
        CHECK_THROWS_AS(parse_response("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n", 100), FramingError);
        CHECK_THROWS_AS(parse_response("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", 100), FramingError);
        CHECK_THROWS_AS(parse_response("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 100), FramingError);
        CHECK_THROWS_AS(parse_response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000000\r\n", 1 << 30),
                        FramingError);
        CHECK_THROWS_AS(parse_response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 100), FramingError);
        CHECK_THROWS_AS(parse_response("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", 100), FramingError);
        CHECK_THROWS_AS(parse_response("HTTP/1.1 2000 OK\r\n\r\n", 100), FramingError);
        CHECK_THROWS_AS(parse_response("ICY 200 OK\r\n\r\n", 100), FramingError);
        std::string many = "HTTP/1.1 200 OK\r\n";
        for (size_t i = 0; i <= kMaxHeaders; ++i) many += "X-" + std::to_string(i) + ": v\r\n";
        CHECK_THROWS_AS(parse_response(many + "\r\n", 100), FramingError);
        CHECK_THROWS_AS(parse_response("HTTP/1.1 200 OK\r\nX: " + std::string(kMaxHeadBytes + 10, 'a'), 100), FramingError);
    }
    SECTION("caps hold for every framing, and for decoded gzip") {
        CHECK_THROWS_AS(parse_response("HTTP/1.1 200 OK\r\nContent-Length: 101\r\n\r\n", 100), CapExceeded);
        CHECK_THROWS_AS(parse_response("HTTP/1.1 200 OK\r\n\r\n" + std::string(101, 'x'), 100), CapExceeded);
        CHECK_THROWS_AS(parse_response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n65\r\n" + std::string(101, 'x'), 100),
                        CapExceeded);
        const std::string bomb = gzip(std::string(10 << 20, '\0'));  // 10 MiB of zeros in ~10 kB
        CHECK(bomb.size() < 20000);
        CHECK_THROWS_AS(parse_response("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n\r\n" + bomb, 1 << 20), CapExceeded);
        const auto r = parse_response("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n\r\n" + gzip("#EXTM3U\n"), 100);
        CHECK(r.body == "#EXTM3U\n");
        CHECK_THROWS_AS(parse_response("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n\r\nnot gzip at all", 100), FramingError);
        CHECK_THROWS_AS(parse_response("HTTP/1.1 200 OK\r\nContent-Encoding: br\r\n\r\nx", 100), FramingError);
    }
}

TEST_CASE("AES-128 decryption: CBC with PKCS#7 padding checked", "[fetch][aes]") {
    const std::string key = "0123456789abcdef";
    const uint8_t iv[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    for (size_t size : {0u, 1u, 15u, 16u, 17u, 1000u}) {
        std::string plain;
        for (size_t i = 0; i < size; ++i) plain += static_cast<char>(i * 7);
        std::string data = plain;
        const size_t pad = 16 - data.size() % 16;
        data.append(pad, static_cast<char>(pad));
        AVAES* aes = av_aes_alloc();
        REQUIRE(aes);
        av_aes_init(aes, reinterpret_cast<const uint8_t*>(key.data()), 128, 0);
        uint8_t chain[16];
        std::copy(std::begin(iv), std::end(iv), chain);
        av_aes_crypt(aes, reinterpret_cast<uint8_t*>(data.data()), reinterpret_cast<const uint8_t*>(data.data()),
                     static_cast<int>(data.size() / 16), chain, 0);
        av_free(aes);
        std::string decrypted = data;
        av::decrypt_aes128_cbc(decrypted, key, iv);
        CHECK(decrypted == plain);
        uint8_t wrong[16] = {};
        std::string garbled = data;
        // A wrong IV garbles only the first block: the padding still checks out, the bytes do not.
        if (size >= 16) {
            av::decrypt_aes128_cbc(garbled, key, wrong);
            CHECK(garbled != plain);
        }
    }
    std::string not_blocks(17, 'x');
    CHECK_THROWS_AS(av::decrypt_aes128_cbc(not_blocks, key, {}), av::SourceError);
    std::string zeros(32, '\0');  // decrypts to noise: its last byte is a valid pad length only by chance
    bool threw = false;
    try {
        av::decrypt_aes128_cbc(zeros, std::string(16, '\0'), {});
    } catch (const av::SourceError& e) {
        threw = std::string(e.what()).find("padding") != std::string::npos;
    }
    CHECK(threw);
}

TEST_CASE("http client: a redirect to file:// is refused before anything is opened", "[fetch][client]") {
    TinyServer server([](int fd, const std::string& req, const std::atomic<bool>&) {
        const std::string p = path_of(req);
        if (p == "/file") TinyServer::send_all(fd, "HTTP/1.1 302 Found\r\nLocation: file:///etc/passwd\r\nContent-Length: 0\r\n\r\n");
        else if (p == "/concat") TinyServer::send_all(fd, "HTTP/1.1 301 Moved\r\nLocation: concat:/etc/passwd|/etc/hosts\r\n\r\n");
        else if (p == "/loop") TinyServer::send_all(fd, "HTTP/1.1 302 Found\r\nLocation: /loop\r\nContent-Length: 0\r\n\r\n");
        else if (p == "/hop") TinyServer::send_all(fd, "HTTP/1.1 307 Temporary\r\nLocation: /ok\r\nContent-Length: 0\r\n\r\n");
        else TinyServer::send_all(fd, ok("fine"));
    });
    bool permanent = false;
    std::string e = fetch_error(server.url("/file"), spec_for(), &permanent);
    CHECK(e.find("refused redirect to URI scheme 'file'") != std::string::npos);
    CHECK(permanent);
    e = fetch_error(server.url("/concat"), spec_for(), &permanent);
    CHECK(e.find("refused redirect to URI scheme 'concat'") != std::string::npos);
    FetchSpec spec = spec_for();
    spec.max_redirects = 3;
    e = fetch_error(server.url("/loop"), spec);
    CHECK(e.find("too many redirects") != std::string::npos);
    CHECK(server.requests().size() == 2 + 4);  // /file, /concat, then the first /loop and its 3 redirects
    std::string body;
    CHECK(fetch_error(server.url("/hop"), spec_for(), nullptr, &body).empty());
    CHECK(body == "fine");
}

TEST_CASE("http client: bodies over their cap abort the fetch, whatever their framing", "[fetch][client]") {
    TinyServer server([](int fd, const std::string& req, const std::atomic<bool>& stopping) {
        const std::string p = path_of(req);
        if (p == "/announced") {
            TinyServer::send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 1073741824\r\n\r\n");
        } else if (p == "/chunked" || p == "/close") {
            TinyServer::send_all(fd, p == "/chunked" ? "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                                     : "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
            const std::string piece(64 * 1024, 'x');
            char size[32];
            std::snprintf(size, sizeof size, "%zx\r\n", piece.size());
            for (int i = 0; i < 4096 && !stopping; ++i) {  // 256 MiB at most; the client stops long before
                const std::string chunk = p == "/chunked" ? size + piece + "\r\n" : piece;
                if (::send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL) <= 0) break;
            }
        } else if (p == "/bomb") {
            const std::string bomb = gzip(std::string(64 << 20, '\0'));
            TinyServer::send_all(fd, ok(bomb, "Content-Encoding: gzip\r\n"));
        } else {
            TinyServer::send_all(fd, ok(std::string(1000, 'y')));
        }
    });
    FetchSpec spec = spec_for("segment");
    spec.max_bytes = 1 << 20;
    spec.limit_name = "max_segment_bytes";
    for (const char* p : {"/announced", "/chunked", "/close"}) {
        INFO(p);
        CHECK(fetch_error(server.url(p), spec) ==
              "segment " + server.url(p) + " exceeds max_segment_bytes (1048576 bytes)");
    }
    FetchSpec playlist = spec_for("playlist");
    playlist.max_bytes = 4 << 20;
    playlist.limit_name = "max_playlist_bytes";
    playlist.accept_gzip = true;
    CHECK(fetch_error(server.url("/bomb"), playlist) ==
          "playlist " + server.url("/bomb") + " exceeds max_playlist_bytes (4194304 bytes)");
    std::string body;
    CHECK(fetch_error(server.url("/small"), spec, nullptr, &body).empty());
    CHECK(body == std::string(1000, 'y'));
    const auto reqs = server.requests();
    REQUIRE(reqs.size() == 5);
    CHECK(reqs[3].find("Accept-Encoding: gzip") != std::string::npos);   // playlists only
    CHECK(reqs[4].find("Accept-Encoding: gzip") == std::string::npos);
}

TEST_CASE("http client: a trickle fails at the total deadline, not one read timeout per byte", "[fetch][client]") {
    TinyServer server([](int fd, const std::string& req, const std::atomic<bool>& stopping) {
        const bool head = path_of(req) == "/head";
        TinyServer::send_all(fd, head ? "HTTP/1.1 200 OK\r\n" : "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n");
        while (!stopping) {  // one byte every 100 ms, until the client goes away
            if (::send(fd, head ? "X" : "x", 1, MSG_NOSIGNAL) <= 0) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
    });
    FetchSpec spec = spec_for("segment");
    spec.read_timeout = 5;  // never reached: a byte comes every 100 ms
    spec.deadline = 1;
    spec.deadline_name = "segment_deadline";
    for (const char* p : {"/body", "/head"}) {
        INFO(p);
        const auto start = std::chrono::steady_clock::now();
        const std::string e = fetch_error(server.url(p), spec);
        const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        CHECK(e == "segment " + server.url(p) + " not complete within its 1.0 s deadline (segment_deadline)");
        CHECK(took < spec.read_timeout);  // the deadline, not a read timeout, ended it
    }
}

TEST_CASE("http client: channel headers go to the channel's origin only, also after a redirect", "[fetch][client]") {
    TinyServer other([](int fd, const std::string&, const std::atomic<bool>&) { TinyServer::send_all(fd, ok("other")); });
    const std::string other_url = other.url("/elsewhere.ts");
    TinyServer origin([&](int fd, const std::string& req, const std::atomic<bool>&) {
        const std::string p = path_of(req);
        if (p == "/away") TinyServer::send_all(fd, "HTTP/1.1 302 Found\r\nLocation: " + other_url + "\r\n\r\n");
        else if (p == "/here") TinyServer::send_all(fd, "HTTP/1.1 302 Found\r\nLocation: /same.ts\r\n\r\n");
        else TinyServer::send_all(fd, ok("origin"));
    });
    const std::map<std::string, std::string> headers{
        {"Authorization", "Bearer secret-token"}, {"Cookie", "session=secret"}, {"X-Api-Key", "secret-key"},
        {"User-Agent", "TestAgent/1"}, {"Referer", "http://portal.example/"}};
    FetchSpec spec = spec_for();
    spec.headers = &headers;
    spec.trusted_origin = origin.url("/live/index.m3u8");
    CHECK(fetch_error(origin.url("/here"), spec).empty());
    CHECK(fetch_error(origin.url("/away"), spec).empty());
    CHECK(fetch_error(other_url, spec).empty());  // a URI a playlist names on another host
    const auto at_origin = origin.requests();
    REQUIRE(at_origin.size() == 3);
    for (const auto& r : at_origin) {
        CHECK(r.find("Authorization: Bearer secret-token\r\n") != std::string::npos);
        CHECK(r.find("Cookie: session=secret\r\n") != std::string::npos);
        CHECK(r.find("X-Api-Key: secret-key\r\n") != std::string::npos);
    }
    const auto elsewhere = other.requests();
    REQUIRE(elsewhere.size() == 2);
    for (const auto& r : elsewhere) {
        CHECK(r.find("secret") == std::string::npos);
        CHECK(r.find("User-Agent: TestAgent/1\r\n") != std::string::npos);
        CHECK(r.find("Referer: http://portal.example/\r\n") != std::string::npos);
    }
    // Credentials in the URL become Basic auth for their own origin, never for the next one.
    const std::string with_userinfo = "http://user:p%40ss@127.0.0.1:" + origin.url("/away").substr(17);
    CHECK(fetch_error(with_userinfo, spec).empty());
    CHECK(origin.requests().back().find("Authorization: Basic dXNlcjpwQHNz\r\n") != std::string::npos);  // user:p@ss
    CHECK(origin.requests().back().find("Bearer") == std::string::npos);
    CHECK(other.requests().back().find("Authorization") == std::string::npos);
}

TEST_CASE("engine: a remote playlist naming a local file fails the channel with a clear status", "[fetch][engine]") {
    TempDir dir("fetch-policy");
    const auto secret = dir.path / "secret.ts";
    std::ofstream(secret) << "LOCAL-MARKER-7f3a";
    const std::string playlist = "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:1.0,\nfile://" +
                                 secret.string() + "\n";
    TinyServer server([&](int fd, const std::string&, const std::atomic<bool>&) { TinyServer::send_all(fd, ok(playlist)); });
    Engine engine(quick_settings());
    const auto remote = engine.add_channel(channel("Hostile", {server.url("/live/index.m3u8")}));
    const auto concat = engine.add_channel(channel("Concat", {"concat:" + secret.string() + "|" + secret.string()}));
    engine.start(remote.id);
    engine.start(concat.id);
    for (const auto& [id, text] : {std::pair{remote.id, std::string("refused URI scheme 'file' in playlist")},
                                   std::pair{concat.id, std::string("refused URI scheme 'concat'")}}) {
        INFO(id);
        REQUIRE(wait_until([&] { return engine.status(id).state == ChannelState::Failed; }, std::chrono::seconds(20)));
        const auto s = engine.status(id);
        CHECK(s.last_error.find(text) != std::string::npos);
        CHECK(s.segments_published == 0);
    }
}

}  // namespace hlsrelay::test

namespace hlsrelay::test {

// A continuous MPEG-TS over HTTP that arrives at half its bitrate: every read returns bytes well
// within read_timeout, so only the media clock shows it cannot keep a channel live.
TEST_CASE("engine: a continuous source slower than real time is a stall, not a channel starting forever",
          "[fetch][engine]") {
    std::ifstream in(live_media().single_file, std::ios::binary);
    const std::string ts((std::istreambuf_iterator<char>(in)), {});
    REQUIRE(ts.size() > 100000);
    const double seconds = 24;  // live_media(): 24 s of media
    const auto half_rate = static_cast<size_t>(static_cast<double>(ts.size()) / seconds / 2);
    TinyServer server([&](int fd, const std::string&, const std::atomic<bool>& stopping) {
        TinyServer::send_all(fd, "HTTP/1.1 200 OK\r\nContent-Type: video/mp2t\r\nConnection: close\r\n\r\n");
        const size_t fast = half_rate * 6;  // 3 s of media at once: opening and probing are quick
        TinyServer::send_all(fd, std::string_view(ts).substr(0, fast));
        for (size_t pos = fast; pos < ts.size() && !stopping;) {
            const size_t n = std::min(half_rate / 10, ts.size() - pos);
            if (::send(fd, ts.data() + pos, n, MSG_NOSIGNAL) <= 0) break;
            pos += n;
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
    });
    Engine engine(quick_settings());  // read_timeout 2 s, 1 s segments: the bound is 3 s behind
    const auto c = engine.add_channel(channel("Slow", {server.url("/live.ts")}));
    engine.start(c.id);
    const bool reported = wait_until([&] { return engine.status(c.id).last_error.find("source too slow") != std::string::npos; },
                                     std::chrono::seconds(60));
    INFO("last error: " << engine.status(c.id).last_error);
    CHECK(reported);
    engine.stop_all();
}

}  // namespace hlsrelay::test
