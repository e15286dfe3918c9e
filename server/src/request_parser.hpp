// An incremental HTTP/1.x request parser: feed it whatever the socket delivered, get good, bad or
// indeterminate (needs more bytes). Enforces the size limits that keep a client from eating memory.
#pragma once

#include "http.hpp"

#include <hlsrelay/settings.hpp>

#include <cstddef>
#include <string>
#include <utility>

namespace hlsrelay::server {

struct ParserLimits {
    std::size_t max_request_line = 8 * 1024;
    std::size_t max_header_bytes = 16 * 1024;  // all header lines together
    std::size_t max_headers = 64;
    std::size_t max_body = 1024 * 1024;  // bodies are read; larger ones are refused
    // Bytes of a body kept in Request::body, the rest discarded: one more than the API takes, so that
    // a body too large for it is seen as such (413).
    std::size_t max_kept_body = kMaxApiBodyBytes + 1;
};

class RequestParser {
public:
    enum class Result { good, bad, indeterminate };

    explicit RequestParser(ParserLimits limits = {}) : limits_(limits) {}

    // Ready for the next request on the same connection.
    void reset();

    // Consumes bytes of [begin, end) into `req` and returns how far it got. On good, the returned
    // pointer is just past the request (its body included): the rest belongs to the next request.
    std::pair<Result, const char*> parse(Request& req, const char* begin, const char* end);

    // Whether any byte of the current request has arrived (the read timeout then applies, not keep-alive).
    bool started() const { return started_; }

    // After bad: the status to answer with (400, 413, 414, 431, 501 or 505) and why.
    int error_status() const { return error_status_; }
    const std::string& error_detail() const { return error_detail_; }

private:
    enum class State { request_line, headers, body, done, failed };

    Result fail(int status, std::string detail);
    Result on_request_line(Request& req);
    Result on_header_line(Request& req);
    Result on_headers_end(Request& req);

    ParserLimits limits_;
    State state_ = State::request_line;
    std::string line_;
    std::size_t header_bytes_ = 0;
    std::size_t body_left_ = 0;
    bool started_ = false;
    bool seen_content_length_ = false;
    int error_status_ = 400;
    std::string error_detail_;
};

}  // namespace hlsrelay::server
