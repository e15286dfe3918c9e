// Unit tests of the incremental request parser: split reads, pipelining, limits and malformed input.
#include "request_parser.hpp"

#include <catch2/catch.hpp>

#include <string>

using hlsrelay::server::ParserLimits;
using hlsrelay::server::Request;
using hlsrelay::server::RequestParser;
using Result = RequestParser::Result;

namespace {

struct Outcome {
    Result result;
    std::size_t consumed;
};

// Feeds `text` in pieces of `chunk` bytes, as a socket might deliver it.
Outcome feed(RequestParser& p, Request& req, const std::string& text, std::size_t chunk = std::string::npos) {
    std::size_t pos = 0;
    Result r = Result::indeterminate;
    while (pos < text.size()) {
        const std::size_t n = std::min(chunk, text.size() - pos);
        const char* begin = text.data() + pos;
        auto [res, end] = p.parse(req, begin, begin + n);
        pos += static_cast<std::size_t>(end - begin);
        r = res;
        if (r != Result::indeterminate) break;
    }
    return {r, pos};
}

Result parse_all(const std::string& text, int* status = nullptr, ParserLimits limits = {}) {
    RequestParser p(limits);
    Request req;
    const Result r = feed(p, req, text).result;
    if (status) *status = p.error_status();
    return r;
}

}  // namespace

TEST_CASE("parser reads a simple GET in one piece") {
    RequestParser p;
    Request req;
    const std::string text = "GET /hls_streams/demo/master.m3u8?x=1 HTTP/1.1\r\nHost: a:1\r\nRange:  bytes=0-9 \r\n\r\n";
    const auto out = feed(p, req, text);
    REQUIRE(out.result == Result::good);
    CHECK(out.consumed == text.size());
    CHECK(req.method == "GET");
    CHECK(req.target == "/hls_streams/demo/master.m3u8?x=1");
    CHECK(req.version_major == 1);
    CHECK(req.version_minor == 1);
    REQUIRE(req.header("range"));
    CHECK(*req.header("RANGE") == "bytes=0-9");  // names are case-insensitive, values trimmed
    CHECK(req.keep_alive());
}

TEST_CASE("parser handles a request split at every byte") {
    const std::string text = "POST /api/v1/channels/demo/start HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
    for (std::size_t chunk : {std::size_t{1}, std::size_t{2}, std::size_t{7}, std::size_t{64}}) {
        RequestParser p;
        Request req;
        const auto out = feed(p, req, text, chunk);
        INFO("chunk " << chunk);
        REQUIRE(out.result == Result::good);
        CHECK(out.consumed == text.size());
        CHECK(req.method == "POST");
        CHECK(req.content_length == 5);
    }
}

TEST_CASE("parser stops at the end of one request so pipelined requests stay") {
    const std::string first = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
    const std::string second = "GET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    const std::string both = first + second;
    RequestParser p;
    Request req;
    auto [r1, end1] = p.parse(req, both.data(), both.data() + both.size());
    REQUIRE(r1 == Result::good);
    CHECK(static_cast<std::size_t>(end1 - both.data()) == first.size());
    CHECK(req.target == "/a");
    p.reset();
    Request req2;
    auto [r2, end2] = p.parse(req2, end1, both.data() + both.size());
    REQUIRE(r2 == Result::good);
    CHECK(end2 == both.data() + both.size());
    CHECK(req2.target == "/b");
    CHECK_FALSE(req2.keep_alive());
}

TEST_CASE("parser tolerates bare LF and leading empty lines") {
    RequestParser p;
    Request req;
    CHECK(feed(p, req, "\r\n\nGET / HTTP/1.0\n\n").result == Result::good);
    CHECK(req.version_minor == 0);
    CHECK_FALSE(req.keep_alive());  // HTTP/1.0 closes unless asked
    RequestParser p2;
    Request req2;
    CHECK(feed(p2, req2, "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").result == Result::good);
    CHECK(req2.keep_alive());
}

TEST_CASE("parser reports started only once a request byte arrived") {
    RequestParser p;
    Request req;
    CHECK_FALSE(p.started());
    const std::string part = "GET /x HT";
    CHECK(feed(p, req, part).result == Result::indeterminate);
    CHECK(p.started());
}

TEST_CASE("parser rejects malformed requests with 400") {
    const char* bad[] = {
        "GET\r\n\r\n",
        "GET /\r\n\r\n",
        "GET / HTTP/1.1 extra\r\nHost: x\r\n\r\n",
        "GET  / HTTP/1.1\r\nHost: x\r\n\r\n",
        "G(T / HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET / HTTX/1.1\r\nHost: x\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nX: a\x01b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "GET / HTTP/1.1\r\n\r\n",  // HTTP/1.1 needs Host
        "GET /a\x7f HTTP/1.1\r\nHost: x\r\n\r\n",
    };
    for (const char* text : bad) {
        INFO(text);
        int status = 0;
        CHECK(parse_all(text, &status) == Result::bad);
        CHECK(status == 400);
    }
}

TEST_CASE("parser answers unsupported versions and transfer codings") {
    int status = 0;
    CHECK(parse_all("GET / HTTP/2.0\r\n\r\n", &status) == Result::bad);
    CHECK(status == 505);
    CHECK(parse_all("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", &status) == Result::bad);
    CHECK(status == 501);
}

TEST_CASE("parser enforces the request line, header and body limits") {
    int status = 0;
    SECTION("request line over 8 KiB is 414") {
        const std::string text = "GET /" + std::string(9000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n";
        CHECK(parse_all(text, &status) == Result::bad);
        CHECK(status == 414);
        // Limits hold before the line ends: a never-ending line fails as soon as it is too long.
        RequestParser p;
        Request req;
        const std::string endless(10000, 'a');
        CHECK(feed(p, req, "GET /" + endless, 100).result == Result::bad);
    }
    SECTION("a request line just under the limit passes") {
        const std::string target = "/" + std::string(8 * 1024 - 20, 'a');
        CHECK(parse_all("GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n") == Result::good);
    }
    SECTION("headers over 16 KiB are 431") {
        std::string text = "GET / HTTP/1.1\r\nHost: x\r\n";
        for (int i = 0; i < 40; ++i) text += "X-Filler-" + std::to_string(i) + ": " + std::string(500, 'v') + "\r\n";
        text += "\r\n";
        CHECK(parse_all(text, &status) == Result::bad);
        CHECK(status == 431);
    }
    SECTION("more than 64 headers are 431") {
        std::string text = "GET / HTTP/1.1\r\nHost: x\r\n";
        for (int i = 0; i < 64; ++i) text += "X-" + std::to_string(i) + ": v\r\n";
        text += "\r\n";
        CHECK(parse_all(text, &status) == Result::bad);
        CHECK(status == 431);
    }
    SECTION("64 headers pass") {
        std::string text = "GET / HTTP/1.1\r\nHost: x\r\n";
        for (int i = 0; i < 63; ++i) text += "X-" + std::to_string(i) + ": v\r\n";
        text += "\r\n";
        CHECK(parse_all(text) == Result::good);
    }
    SECTION("a body over 1 MiB is 413 before any of it is read") {
        CHECK(parse_all("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1048577\r\n\r\n", &status) == Result::bad);
        CHECK(status == 413);
        CHECK(parse_all("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n", &status) ==
              Result::bad);
        CHECK(status == 413);
    }
    SECTION("a body within the cap is consumed; its first bytes are kept for the API, the rest discarded") {
        std::string body(1024 * 1024, 'b');
        body[0] = '{';
        RequestParser p;
        Request req;
        const std::string text = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\n" + body + "GET";
        const auto out = feed(p, req, text, 4096);
        CHECK(out.result == Result::good);
        CHECK(out.consumed == text.size() - 3);  // the next request's bytes are left alone
        CHECK(req.body.size() == ParserLimits{}.max_kept_body);
        CHECK(req.body == body.substr(0, ParserLimits{}.max_kept_body));
        // A small body whole, in pieces of one byte; the next request starts with none.
        p.reset();
        Request next;
        const std::string small = "PATCH /x HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\r\n{\"a\":1}";
        CHECK(feed(p, next, small, 1).result == Result::good);
        CHECK(next.body == "{\"a\":1}");
    }
    SECTION("custom limits apply") {
        ParserLimits small;
        small.max_request_line = 16;
        CHECK(parse_all("GET /0123456789abcdef HTTP/1.1\r\nHost: x\r\n\r\n", &status, small) == Result::bad);
        CHECK(status == 414);
    }
}
