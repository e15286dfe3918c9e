// Proves the test fixtures themselves: ffmpeg media generation, the live origin's clock and faults, http_get.
#include <catch2/catch.hpp>

#include "support/http_get.hpp"
#include "support/origin.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

using namespace std::chrono_literals;
using hlsrelay::test::http_get;
using hlsrelay::test::HttpResponse;
using hlsrelay::test::LiveOrigin;
using hlsrelay::test::make_media;
using hlsrelay::test::MediaSet;
using hlsrelay::test::MediaSpec;
using Fault = LiveOrigin::Fault;
using Clock = std::chrono::steady_clock;

namespace {

// 12 one-second segments: short enough to generate in about a second, long enough to see a loop.
const MediaSet& media12() {
    MediaSpec spec;
    spec.seconds = 12;
    spec.name = "origin_test_av12";
    return make_media(spec);
}

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

struct Playlist {
    bool valid = false;
    int target = -1;
    int64_t media_sequence = -1;
    int64_t discontinuity_sequence = 0;
    bool endlist = false;
    std::vector<int64_t> seqs;
    std::vector<double> durations;
    std::vector<bool> discontinuity;
};

Playlist parse(const std::string& body) {
    Playlist p;
    std::istringstream in(body);
    std::string line;
    bool disc = false;
    double dur = -1;
    if (!std::getline(in, line) || line != "#EXTM3U") return p;
    p.valid = true;
    while (std::getline(in, line)) {
        if (line.rfind("#EXT-X-TARGETDURATION:", 0) == 0) p.target = std::stoi(line.substr(22));
        else if (line.rfind("#EXT-X-MEDIA-SEQUENCE:", 0) == 0) p.media_sequence = std::stoll(line.substr(22));
        else if (line.rfind("#EXT-X-DISCONTINUITY-SEQUENCE:", 0) == 0)
            p.discontinuity_sequence = std::stoll(line.substr(30));
        else if (line == "#EXT-X-DISCONTINUITY") disc = true;
        else if (line == "#EXT-X-ENDLIST") p.endlist = true;
        else if (line.rfind("#EXTINF:", 0) == 0) dur = std::stod(line.substr(8));
        else if (!line.empty() && line[0] != '#') {
            p.seqs.push_back(std::stoll(line.substr(4)));  // "seg_<n>.ts"
            p.durations.push_back(dur);
            p.discontinuity.push_back(disc);
            disc = false;
        }
    }
    return p;
}

std::string header(const HttpResponse& r, const std::string& name) {
    auto it = r.headers.find(name);
    return it == r.headers.end() ? std::string() : it->second;
}

bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (!pred()) {
        if (Clock::now() > deadline) return false;
        std::this_thread::sleep_for(5ms);
    }
    return true;
}

// A raw client that connects and sends `request` (maybe nothing), then just holds the socket open.
struct RawClient {
    int fd = -1;
    RawClient(uint16_t port, const std::string& request) {
        fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        if (!request.empty())
            REQUIRE(::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size()));
    }
    RawClient(const RawClient&) = delete;
    RawClient& operator=(const RawClient&) = delete;
    ~RawClient() { ::close(fd); }
};

}  // namespace

TEST_CASE("make_media makes HLS segments of the requested duration and one whole file", "[origin][media]") {
    const MediaSet& m = media12();
    REQUIRE(m.segment_files.size() == 12);
    REQUIRE(m.durations.size() == 12);
    CHECK(m.target_duration == 1.0);
    for (size_t i = 0; i < m.segment_files.size(); ++i) {
        INFO(m.segment_files[i]);
        CHECK(std::abs(m.durations[i] - 1.0) <= 0.05);
        const std::string bytes = slurp(m.segment_files[i]);
        REQUIRE(bytes.size() >= 188);
        CHECK(bytes[0] == 0x47);  // MPEG-TS sync byte
        CHECK(bytes.size() % 188 == 0);
    }
    const std::string whole = slurp(m.single_file);
    REQUIRE(whole.size() >= 188);
    CHECK(whole[0] == 0x47);
    CHECK(std::filesystem::path(m.dir).is_absolute());

    CHECK(&make_media(MediaSpec{.seconds = 12, .name = "origin_test_av12"}) == &m);  // cached
    CHECK_THROWS_AS(make_media(MediaSpec{.seconds = 13, .name = "origin_test_av12"}), std::invalid_argument);

    SECTION("audio-only and video-only variants") {
        const MediaSet& a = make_media(MediaSpec{.seconds = 4, .video = false, .name = "origin_test_a4"});
        REQUIRE(a.segment_files.size() == 4);  // the AAC runt at the end is dropped
        for (double d : a.durations) CHECK(std::abs(d - 1.0) <= 0.05);
        const MediaSet& v = make_media(MediaSpec{.seconds = 4, .audio = false, .name = "origin_test_v4"});
        REQUIRE(v.segment_files.size() == 4);
        for (double d : v.durations) CHECK(std::abs(d - 1.0) <= 0.05);
    }
}

TEST_CASE("the origin's playlist advances with the live clock", "[origin]") {
    LiveOrigin o(media12(), {.speed = 4.0, .window = 6});
    o.start();
    const auto started = Clock::now();
    REQUIRE(o.port() != 0);
    CHECK(o.url() == "http://127.0.0.1:" + std::to_string(o.port()) + "/live/index.m3u8");

    HttpResponse r = http_get(o.url());
    REQUIRE(r.status == 200);
    CHECK(header(r, "content-type") == "application/vnd.apple.mpegurl");
    Playlist p = parse(r.body);
    REQUIRE(p.valid);
    CHECK(p.target == 1);
    CHECK(p.media_sequence == 0);
    CHECK(p.seqs == std::vector<int64_t>{0, 1, 2});  // in progress from the start
    CHECK_FALSE(p.endlist);
    for (double d : p.durations) CHECK(d == Approx(1.0).margin(0.05));

    // At 4x a 1 s segment is published every 0.25 s.
    REQUIRE(wait_until([&] { return o.newest_sequence() >= 7; }, 3s));
    p = parse(http_get(o.url()).body);
    REQUIRE(p.seqs.size() == 6);
    CHECK(p.media_sequence == p.seqs.front());
    CHECK(p.seqs.back() >= 7);
    for (size_t i = 1; i < p.seqs.size(); ++i) CHECK(p.seqs[i] == p.seqs[i - 1] + 1);

    const auto t2 = o.published_at(2), t3 = o.published_at(3), t4 = o.published_at(4);
    REQUIRE((t2 && t3 && t4));
    CHECK(*t2 - started < 50ms);
    CHECK(std::chrono::duration<double>(*t3 - *t2).count() == Approx(0.25).margin(0.02));
    CHECK(std::chrono::duration<double>(*t4 - *t3).count() == Approx(0.25).margin(0.02));
    CHECK_FALSE(o.published_at(o.newest_sequence() + 2));
}

TEST_CASE("the origin serves the media files' bytes, a master playlist and logs requests", "[origin]") {
    const MediaSet& m = media12();
    LiveOrigin o(m, {.speed = 0.5});  // slow: nothing new is published while this test runs
    o.start();

    for (int64_t seq : {0, 2}) {
        const HttpResponse r = http_get(o.segment_url(seq));
        REQUIRE(r.status == 200);
        CHECK(header(r, "content-type") == "video/mp2t");
        CHECK(r.body == slurp(m.segment_files[static_cast<size_t>(seq)]));
        CHECK(r.body == o.segment_bytes(seq));
    }
    const HttpResponse head = http_get(o.segment_url(1), 5s, "HEAD");
    CHECK(head.status == 200);
    CHECK(head.body.empty());
    CHECK(header(head, "content-length") == std::to_string(slurp(m.segment_files[1]).size()));

    CHECK(http_get(o.segment_url(3)).status == 404);  // not published yet
    CHECK(http_get(o.base_url() + "/nope").status == 404);
    CHECK(http_get(o.base_url() + "/seg_x.ts").status == 404);
    CHECK(http_get("127.0.0.1:" + std::to_string(o.port()) + "/other/index.m3u8").status == 404);
    CHECK(http_get(o.url(), 5s, "POST").status == 405);

    const HttpResponse master = http_get(o.master_url());
    REQUIRE(master.status == 200);
    CHECK(master.body.find("#EXT-X-STREAM-INF:BANDWIDTH=800000\nindex.m3u8\n") != std::string::npos);
    CHECK(master.body.find("#EXT-X-STREAM-INF:BANDWIDTH=400000\nlow.m3u8\n") != std::string::npos);
    CHECK(http_get(o.base_url() + "/low.m3u8").body == http_get(o.url()).body);

    o.clear_requests();
    http_get(o.url() + "?token=1", 5s, "GET", {{"User-Agent", "hlsrelay-test/1"}, {"Referer", "http://example.test/"}});
    auto h = o.last_headers();
    CHECK(h["user-agent"] == "hlsrelay-test/1");
    CHECK(h["referer"] == "http://example.test/");
    http_get(o.segment_url(0));
    CHECK(o.requests() == std::vector<std::string>{"GET /live/index.m3u8?token=1", "GET /live/seg_0.ts"});
    CHECK(o.playlist_requests() == 1);
    CHECK(o.segment_requests() == 1);
}

TEST_CASE("looping continues the sequence behind a discontinuity", "[origin]") {
    const MediaSet& m = media12();
    LiveOrigin o(m, {.speed = 40.0, .window = 6});  // a 12 s loop takes 0.3 s
    o.start();
    bool saw_discontinuity = false, saw_dseq = false;
    const auto deadline = Clock::now() + 1500ms;
    while (Clock::now() < deadline && !(saw_discontinuity && saw_dseq)) {
        const Playlist p = parse(http_get(o.url()).body);
        REQUIRE(p.valid);
        REQUIRE(!p.seqs.empty());
        // Discontinuities sit at every repeat of file 0; the sequence counts the ones already gone.
        int64_t gone = 0;
        for (int64_t s = 1; s < p.seqs.front(); ++s) gone += s % 12 == 0;
        CHECK(p.discontinuity_sequence == gone);
        for (size_t i = 0; i < p.seqs.size(); ++i) {
            const bool expected = p.seqs[i] > 0 && p.seqs[i] % 12 == 0;
            CHECK(p.discontinuity[i] == expected);
            saw_discontinuity |= expected;
        }
        saw_dseq |= p.discontinuity_sequence >= 1;
        std::this_thread::sleep_for(10ms);
    }
    CHECK(saw_discontinuity);
    CHECK(saw_dseq);
    CHECK(o.file_index(12) == 0);
    CHECK(o.file_index(25) == 1);
    const int64_t newest = o.newest_sequence();  // once: at 40x it moves every 25 ms
    const HttpResponse r = http_get(o.segment_url(newest));
    REQUIRE(r.status == 200);
    CHECK(r.body == slurp(m.segment_files[o.file_index(newest)]));

    SECTION("without loop the channel ends") {
        LiveOrigin once(m, {.speed = 40.0, .window = 6, .loop = false});
        once.start();
        REQUIRE(wait_until([&] { return parse(http_get(once.url()).body).endlist; }, 2s));
        const Playlist p = parse(http_get(once.url()).body);
        CHECK(p.seqs.back() == 11);
        CHECK(p.media_sequence == 6);
        std::this_thread::sleep_for(100ms);
        CHECK(once.newest_sequence() == 11);
    }
}

TEST_CASE("start_sequence and start_index shift the numbering and the first file", "[origin]") {
    const MediaSet& m = media12();
    LiveOrigin o(m, {.speed = 0.5, .window = 2, .start_index = 10, .start_sequence = 1000});
    CHECK(o.newest_sequence() == -1);  // not started
    CHECK(o.port() == 0);
    o.start();
    const Playlist p = parse(http_get(o.url()).body);
    CHECK(p.media_sequence == 1000);
    CHECK(p.seqs == std::vector<int64_t>{1000, 1001});  // preroll is min(window, 3)
    CHECK(p.discontinuity == std::vector<bool>{false, false});
    CHECK(o.file_index(1000) == 10);
    CHECK(o.file_index(1002) == 0);  // the wrap: it will carry the discontinuity
    CHECK(http_get(o.segment_url(1001)).body == slurp(m.segment_files[11]));
    CHECK(http_get(o.segment_url(999)).status == 404);
}

TEST_CASE("a segment that left the playlist stays fetchable for retain_seconds", "[origin]") {
    LiveOrigin o(media12(), {.speed = 20.0, .window = 3, .retain_seconds = 0.5});
    o.start();
    REQUIRE(wait_until([&] { return o.newest_sequence() >= 4; }, 2s));
    const auto left = o.published_at(3);  // seg 0 left the playlist when seg 3 appeared
    REQUIRE(left);
    if (Clock::now() - *left < 300ms) CHECK(http_get(o.segment_url(0)).status == 200);
    std::this_thread::sleep_until(*left + 700ms);
    CHECK(http_get(o.segment_url(0)).status == 404);
    CHECK(http_get(o.segment_url(o.newest_sequence())).status == 200);
}

TEST_CASE("each origin fault does what it says and clearing it recovers", "[origin][faults]") {
    const MediaSet& m = media12();
    LiveOrigin o(m, {.speed = 4.0, .window = 6});
    o.start();
    const uint16_t port = o.port();

    SECTION("Stall") {
        o.set_fault(Fault::Stall);
        const std::string before = http_get(o.url()).body;
        const int64_t newest = o.newest_sequence();
        std::this_thread::sleep_for(600ms);  // 2.4 segments of clock
        CHECK(http_get(o.url()).body == before);
        CHECK(o.newest_sequence() == newest);
        CHECK_FALSE(o.published_at(newest + 1));
        CHECK(http_get(o.segment_url(newest + 1)).status == 404);
        const auto cleared = Clock::now();
        o.set_fault(Fault::None);
        const Playlist p = parse(http_get(o.url()).body);
        CHECK(p.seqs.back() >= newest + 2);  // jumps to the live edge
        const auto t = o.published_at(newest + 1);
        REQUIRE(t);
        CHECK(*t >= cleared);
    }
    SECTION("Refuse") {
        o.set_fault(Fault::Refuse);
        CHECK_THROWS_WITH(http_get(o.url(), 1s), Catch::Contains("refused"));
        o.set_fault(Fault::None);
        CHECK(o.port() == port);
        CHECK(http_get(o.url()).status == 200);
    }
    SECTION("Http500") {
        o.set_fault(Fault::Http500);
        CHECK(http_get(o.url()).status == 500);
        CHECK(http_get(o.master_url()).status == 500);
        CHECK(http_get(o.segment_url(0)).status == 500);
        o.set_fault(Fault::None);
        CHECK(http_get(o.url()).status == 200);
        CHECK(http_get(o.segment_url(0)).status == 200);
    }
    SECTION("Segment404") {
        o.set_fault(Fault::Segment404);
        CHECK(http_get(o.url()).status == 200);
        CHECK(http_get(o.segment_url(0)).status == 404);
        o.set_fault(Fault::None);
        CHECK(http_get(o.segment_url(0)).status == 200);
    }
    SECTION("Hang") {
        o.set_fault(Fault::Hang);
        const auto t0 = Clock::now();
        CHECK_THROWS_WITH(http_get(o.url(), 300ms), Catch::Contains("timed out"));
        CHECK(Clock::now() - t0 < 1s);
        std::atomic<int> status{0};
        std::thread waiter([&] { status = http_get(o.url(), 5s).status; });
        REQUIRE(wait_until([&] { return o.playlist_requests() >= 2; }, 2s));
        std::this_thread::sleep_for(100ms);
        CHECK(status == 0);  // still held
        o.set_fault(Fault::None);
        waiter.join();
        CHECK(status == 200);  // answered once the fault cleared
    }
    SECTION("Garbage") {
        o.set_fault(Fault::Garbage);
        const HttpResponse r = http_get(o.url());
        CHECK(r.status == 200);
        CHECK(r.body.size() > 100);
        CHECK_FALSE(parse(r.body).valid);
        CHECK_FALSE(parse(http_get(o.master_url()).body).valid);
        CHECK(http_get(o.segment_url(0)).body == o.segment_bytes(0));
        o.set_fault(Fault::None);
        CHECK(parse(http_get(o.url()).body).valid);
    }
    SECTION("TruncateSegments") {
        o.set_fault(Fault::TruncateSegments);
        const std::string full = o.segment_bytes(0);
        const HttpResponse r = http_get(o.segment_url(0));
        CHECK(r.status == 200);
        CHECK(header(r, "content-length") == std::to_string(full.size()));
        CHECK(r.body == full.substr(0, full.size() / 2));
        CHECK(parse(http_get(o.url()).body).valid);
        o.set_fault(Fault::None);
        CHECK(http_get(o.segment_url(0)).body == full);
    }
    SECTION("ResetSequence") {
        REQUIRE(wait_until([&] { return o.newest_sequence() >= 5; }, 3s));
        const auto reset_at = Clock::now();
        o.set_fault(Fault::ResetSequence);
        const Playlist p = parse(http_get(o.url()).body);
        CHECK(p.media_sequence == 0);
        REQUIRE(p.seqs.size() >= 3);
        CHECK(std::vector<int64_t>(p.seqs.begin(), p.seqs.begin() + 3) == std::vector<int64_t>{0, 1, 2});
        const auto t5 = o.published_at(5);  // forgotten; only the new numbering's seq 5 may appear
        CHECK((!t5 || *t5 >= reset_at));
        CHECK(http_get(o.segment_url(0)).body == slurp(m.segment_files[0]));
        o.set_fault(Fault::None);  // a one-shot: clearing it does not reset again
        REQUIRE(wait_until([&] { return o.newest_sequence() >= 3; }, 3s));
        CHECK(parse(http_get(o.url()).body).media_sequence == 0);
    }
    SECTION("restart keeps the port, and continues or resets the sequence") {
        REQUIRE(wait_until([&] { return o.newest_sequence() >= 5; }, 3s));
        o.set_fault(Fault::Http500);
        const int64_t newest = o.newest_sequence();
        const auto first_seen = o.published_at(newest);
        o.restart();
        CHECK(o.port() == port);
        CHECK(o.fault() == Fault::None);
        Playlist p = parse(http_get(o.url()).body);
        REQUIRE(p.valid);
        CHECK(p.seqs.back() >= newest);
        CHECK(p.seqs.front() >= newest - 2);
        CHECK(o.published_at(newest) == first_seen);  // re-listed, not re-published
        o.restart(true);
        CHECK(o.port() == port);
        p = parse(http_get(o.url()).body);
        CHECK(p.media_sequence == 0);
    }
}

TEST_CASE("stop returns promptly with clients connected", "[origin]") {
    auto o = std::make_unique<LiveOrigin>(media12(), LiveOrigin::Options{.speed = 4.0});
    o->start();
    o->set_fault(Fault::Hang);
    RawClient hanging(o->port(), "GET /live/index.m3u8 HTTP/1.1\r\nHost: x\r\n\r\n");
    RawClient silent(o->port(), "");
    RawClient partial(o->port(), "GET /live/seg_0.ts HTTP/1.1\r\n");
    std::atomic<bool> threw{false};
    std::thread waiter([&] {
        try {
            http_get(o->url(), 10s);
        } catch (const std::runtime_error&) {
            threw = true;
        }
    });
    REQUIRE(wait_until([&] { return o->playlist_requests() >= 2; }, 2s));

    const auto t0 = Clock::now();
    o->stop();
    CHECK(Clock::now() - t0 < 1s);
    waiter.join();
    CHECK(threw);  // closed without an answer
    CHECK_FALSE(o->running());

    SECTION("and the destructor too") {
        o->start();
        RawClient again(o->port(), "GET /live/index.m3u8 HTTP/1.1\r\n\r\n");
        REQUIRE(wait_until([&] { return o->playlist_requests() >= 3; }, 2s));
        const auto t1 = Clock::now();
        o.reset();
        CHECK(Clock::now() - t1 < 1s);
    }
}

TEST_CASE("http_get decodes chunked bodies and reads to close", "[origin][http]") {
    const int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(lfd, 4) == 0);
    socklen_t len = sizeof a;
    ::getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &len);
    const std::string base = "http://127.0.0.1:" + std::to_string(ntohs(a.sin_port));

    // Serves two canned responses, one connection each.
    std::thread server([lfd] {
        const std::string replies[] = {
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\nX-A: 2\r\n\r\n"
            "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n",
            "HTTP/1.1 201 Created\r\n\r\nuntil close",
        };
        for (const auto& reply : replies) {
            const int c = ::accept(lfd, nullptr, nullptr);
            if (c < 0) return;
            char buf[2048];
            std::string req;
            while (req.find("\r\n\r\n") == std::string::npos) {
                const ssize_t n = ::recv(c, buf, sizeof buf, 0);
                if (n <= 0) break;
                req.append(buf, static_cast<size_t>(n));
            }
            ::send(c, reply.data(), reply.size(), MSG_NOSIGNAL);
            ::close(c);
        }
    });
    const HttpResponse chunked = http_get(base + "/c");
    CHECK(chunked.status == 200);
    CHECK(chunked.body == "hello world");
    CHECK(chunked.headers.at("x-a") == "1, 2");
    const HttpResponse to_close = http_get(base + "/d");
    CHECK(to_close.status == 201);
    CHECK(to_close.body == "until close");
    server.join();
    ::close(lfd);
}
