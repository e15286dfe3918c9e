// A raw loopback TCP client for the server tests that http_get cannot express: keep-alive, pipelining,
// half-sent requests, connections held open.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace hlsrelay::test {

struct RawResponse {
    int status = 0;
    std::map<std::string, std::string> headers;  // names lowercased
    std::string body;
};

class RawClient {
public:
    explicit RawClient(uint16_t port);  // connects to 127.0.0.1:port; throws on failure
    // From another loopback address (e.g. "127.0.0.2"): a second client as the server counts them.
    RawClient(uint16_t port, const char* source_address);
    ~RawClient();
    RawClient(const RawClient&) = delete;
    RawClient& operator=(const RawClient&) = delete;

    void send(const std::string& bytes);  // throws if the peer is gone
    // Reads one response (body by Content-Length; none for HEAD, 204 and 304). nullopt if the peer
    // closed or `timeout` passed first.
    std::optional<RawResponse> read_response(std::chrono::milliseconds timeout = std::chrono::seconds(5),
                                             bool head = false);
    // Reads until at least `n` bytes are buffered (a streamed body); false if the peer closed or
    // `timeout` passed first.
    bool read_at_least(std::size_t n, std::chrono::milliseconds timeout);
    // True if the peer closes (EOF or reset) within `timeout`; bytes that arrive meanwhile are kept.
    bool closed_within(std::chrono::milliseconds timeout);
    const std::string& buffered() const { return buffer_; }

private:
    bool fill(std::chrono::steady_clock::time_point deadline);  // false on EOF/error/timeout
    int fd_ = -1;
    std::string buffer_;
    bool eof_ = false;
};

}  // namespace hlsrelay::test
