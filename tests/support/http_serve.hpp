// The pieces of a loopback HTTP/1.1 test server that the origins share: listening on 127.0.0.1,
// reading one request head with a deadline, sending without SIGPIPE.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

namespace hlsrelay::test::http {

// Binds 127.0.0.1:port (0: ephemeral) and listens; returns the fd and sets *bound. Throws
// std::runtime_error naming `who` on failure.
int listen_loopback(uint16_t port, uint16_t* bound, const char* who);

// MSG_NOSIGNAL: a client that went away must not kill the test process with SIGPIPE.
bool send_all(int fd, const char* data, std::size_t size);
inline bool send_all(int fd, const std::string& s) { return send_all(fd, s.data(), s.size()); }

struct Request {
    int status = 0;  // 0: well-formed; 400 or 431: answer with that
    std::string method, target;
    std::string path;  // target without its query
    std::map<std::string, std::string> headers;  // names lowercased, values trimmed
};

// Reads one request head (up to 16 KiB) by `deadline`. False if the peer went away, the socket was
// shut down or the deadline passed: close the connection without answering.
bool read_request(int fd, std::chrono::steady_clock::time_point deadline, Request& out);

const char* reason(int status);  // "OK", "Found", ...

}  // namespace hlsrelay::test::http
