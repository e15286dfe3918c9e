// The engine's one HTTP(S) client: every remote fetch (playlists, segments, keys, init sections, and
// continuous streams read by libavformat through a custom AVIOContext) goes through it, so the rules
// for hostile upstreams live in one place:
//  - http:// runs on a non-blocking socket, https:// over libav's `tls` protocol (protocol_whitelist
//    "tls,tcp"); one HTTP/1.1 framing (http_framing.hpp) runs over both, and the connection is kept
//    alive between requests to the same origin;
//  - redirects are followed here, never by libav: at most FetchSpec::max_redirects, and only to
//    http(s) (url_policy.hpp);
//  - the channel's headers go only to the channel's own origin (FetchSpec::trusted_origin), re-checked
//    after every redirect; User-Agent and Referer go everywhere; credentials in the URL
//    (user:pass@host) become Basic auth for that origin only;
//  - a body is capped (after gzip/deflate decoding) and a fetch has a total deadline besides the
//    per-read timeout; the channel's stop flag is checked around every wait.
#pragma once

#include "common/av_util.hpp"
#include "common/buffer_pool.hpp"
#include "ingest/http_framing.hpp"
#include "ingest/url_policy.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>

namespace hlsrelay {

// The rules of one fetch.
struct FetchSpec {
    const std::map<std::string, std::string>* headers = nullptr;  // the channel's configured headers
    std::string trusted_origin;   // a URL whose origin gets every header; "" (or not http(s)): none does
    std::string what = "resource";  // in messages: "playlist", "segment", "key", "init section"
    int64_t max_bytes = int64_t{64} << 20;  // cap of the decoded body
    std::string limit_name = "max_segment_bytes";  // in the cap's message
    double read_timeout = 10;     // seconds one wait for the server may take
    double deadline = 0;          // seconds the whole fetch may take (0: none, for continuous streams)
    std::string deadline_name;    // in the deadline's message, e.g. "segment_deadline"
    int max_redirects = 5;
    bool accept_gzip = false;     // send Accept-Encoding: gzip (playlists)
    std::optional<std::pair<int64_t, int64_t>> range;  // [first, last) byte offsets
    BufferPool* pool = nullptr;   // a body of announced length is read into a recycled buffer
    std::atomic<int64_t>* bytes_in = nullptr;  // counts the bytes that arrive (before decoding)
    // send() only: the method ("PUT", "DELETE") and the request body (PUT), which must stay valid
    // during the call. Such a request follows no redirect (a 3xx is its failure) and any 2xx is success.
    std::string method;
    std::string_view body;
    std::string content_type;  // Content-Type of the body; "" sends none
};

class HttpClient {
public:
    HttpClient();
    ~HttpClient();
    HttpClient(const HttpClient&) = delete;
    HttpClient& operator=(const HttpClient&) = delete;

    // GET `url` (http or https) and return its decoded body; throws av::SourceError (HTTP status,
    // timeouts, deadline, caps, refused redirects, "stopped"). `final_url`: the URL after redirects.
    std::string get(const std::string& url, const FetchSpec& spec, av::Interrupter& irq,
                    std::string* final_url = nullptr);

    // A streaming GET for continuous sources: open_stream() sends the request, follows redirects and
    // reads the head (a compressed response is refused); read_stream() returns the next body bytes
    // (up to `size`, 0 at the end of the body), waiting at most spec.read_timeout for each. The spec
    // (its deadline is ignored) must stay valid until the stream is done or close() is called.
    // A request with a method other than GET (spec.method, spec.body: the pusher's PUT and DELETE),
    // on the same keep-alive connection, deadlines, caps (of the response body, read and dropped) and
    // stop flag as get(). Returns the 2xx status; throws av::SourceError (its http_status set for an
    // HTTP error status) otherwise.
    int send(const std::string& url, const FetchSpec& spec, av::Interrupter& irq);

    void open_stream(const std::string& url, const FetchSpec& spec, av::Interrupter& irq,
                     std::string* final_url = nullptr);
    size_t read_stream(char* out, size_t size, av::Interrupter& irq);
    // The streamed response's head (valid after open_stream()).
    const http::ResponseHead& stream_head() const { return head_; }

    void close();
    int64_t connections_opened() const { return connections_; }

private:
    struct Tls;
    using Clock = std::chrono::steady_clock;
    // What the current request is, for waits and messages.
    struct Op {
        std::string url;
        const FetchSpec* spec = nullptr;
        av::Interrupter* irq = nullptr;
        std::optional<Clock::time_point> deadline;
    };

    enum class Outcome { Done, Redirect, Stale };
    // One request on the current connection (opened if needed): sends it and reads the head.
    Outcome request(bool& reused);
    // Follows redirects up to a final response whose head is in head_; its body not yet read.
    void open(const std::string& url, const FetchSpec& spec, av::Interrupter& irq);
    std::string read_body();
    void finish_response();   // the body was read whole: keep the connection for the next request

    void connect(const url::Parts& p);
    void connect_tcp(const url::Parts& p);
    void connect_tls(const url::Parts& p);
    void send_all(std::string_view bytes);
    size_t read_some(char* out, size_t size);  // 0 at EOF
    bool fill();                                // more bytes into in_; false at EOF
    void wait(short events, const char* what);
    double wait_budget(bool& deadline_binds) const;  // seconds the next wait may take
    [[noreturn]] void throw_timeout(const char* what, bool deadline_binds) const;
    void check_deadline() const;
    void count(size_t n) const;
    std::string request_text(const url::Parts& p) const;
    [[noreturn]] void framing_error(const http::FramingError& e) const;

    int fd_ = -1;
    std::unique_ptr<Tls> tls_;
    std::string peer_;       // origin of the open connection ("" when none)
    int served_ = 0;         // requests answered on it
    std::string in_;         // bytes read but not consumed
    size_t in_pos_ = 0;
    int64_t connections_ = 0;

    Op op_;
    std::string credentials_origin_;  // where the Basic auth from the first URL's userinfo may go
    std::string basic_auth_;
    http::ResponseHead head_;
    // Streaming state.
    http::Framing stream_framing_ = http::Framing::None;
    uint64_t stream_left_ = 0;
    std::unique_ptr<http::ChunkedDecoder> stream_chunks_;
    bool stream_open_ = false;
};

}  // namespace hlsrelay
