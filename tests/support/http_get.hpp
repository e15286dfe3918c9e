// A minimal blocking HTTP/1.1 client for tests that talk to loopback servers (the origin, the engine).
#pragma once

#include <chrono>
#include <map>
#include <string>

namespace hlsrelay::test {

struct HttpResponse {
    int status = 0;
    std::map<std::string, std::string> headers;  // names lowercased; repeated headers joined with ", "
    std::string body;                            // de-chunked; empty for HEAD
};

// Sends one request with `Connection: close` to "http://host:port/path" (or "host:port/path") and reads
// the whole response. The body is framed by Content-Length, chunked encoding or the peer closing; a body
// cut short by the peer closing early is returned as received (compare with headers["content-length"]).
// Throws std::runtime_error if it cannot connect, the response is malformed, or `timeout` (the total
// time for connect + request + response) runs out.
HttpResponse http_get(const std::string& url_or_host_port_path,
                      std::chrono::milliseconds timeout = std::chrono::seconds(5), const std::string& method = "GET",
                      const std::map<std::string, std::string>& headers = {});

}  // namespace hlsrelay::test
