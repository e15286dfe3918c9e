// A small HTTP/1.1 client with a persistent connection, for the HLS client's plain http:// requests.
// libav's public avio API opens a new TCP connection for every playlist reload and segment; a live
// channel makes one or two requests a second, so connection setup and teardown were a large part
// of its CPU time. This client keeps one connection per channel open (to the host it last used),
// follows redirects, reads Content-Length and chunked bodies straight into their final buffer, and
// checks the channel's stop flag and read timeout around every wait. https://, credentials in the
// URL and everything else stay with libav (av::fetch).
#pragma once

#include "av_util.hpp"
#include "buffer_pool.hpp"

#include <atomic>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>

namespace hlsrelay {

class HttpClient {
public:
    HttpClient() = default;
    ~HttpClient();
    HttpClient(const HttpClient&) = delete;
    HttpClient& operator=(const HttpClient&) = delete;

    // Whether get() takes this URL (plain http://, no user:password@).
    static bool handles(const std::string& url);

    // GET `url`; throws av::SourceError like av::fetch (HTTP status, timeouts, "stopped").
    // `range`: [first, last) byte offsets. `final_url`: the URL after redirects.
    std::string get(const std::string& url, const std::map<std::string, std::string>& headers,
                    av::Interrupter& irq, double timeout_seconds, std::atomic<int64_t>* bytes_in,
                    std::string* final_url, std::optional<std::pair<int64_t, int64_t>> range, BufferPool* pool);

    void close();
    int64_t connections_opened() const { return connections_; }

private:
    struct Url {
        std::string host, port, path, host_header;
    };
    static std::optional<Url> parse(const std::string& url);
    // One request on the current connection (opened if needed). Returns the status; fills body or
    // location. `reused`: the connection had served a request before.
    int exchange(const Url& u, const std::string& url, const std::map<std::string, std::string>& headers,
                 av::Interrupter& irq, double timeout, std::atomic<int64_t>* bytes_in,
                 const std::optional<std::pair<int64_t, int64_t>>& range, BufferPool* pool, std::string& body,
                 std::string& location, std::string& reason, bool& reused);
    void connect(const Url& u, const std::string& url, av::Interrupter& irq, double timeout);
    void wait(short events, const std::string& url, av::Interrupter& irq, double timeout, const char* what);
    size_t read_some(char* out, size_t size, const std::string& url, av::Interrupter& irq, double timeout);
    bool fill(const std::string& url, av::Interrupter& irq, double timeout);  // more bytes into in_; false on EOF

    int fd_ = -1;
    std::string peer_;     // host:port of the open connection
    int served_ = 0;       // requests answered on it
    std::string in_;       // bytes read but not consumed
    size_t in_pos_ = 0;
    int64_t connections_ = 0;
};

}  // namespace hlsrelay
