// HTTP/1.1 response framing as pure functions over bytes: the status line and headers, the body's
// framing (Content-Length, chunked, until close), and gzip/deflate decoding with a size cap. The
// client (http_client.cpp) runs these over a socket or a TLS stream; the fuzzer
// (tests/fuzz/fuzz_http_response.cpp) runs them over arbitrary bytes. Every size an upstream sends
// (header count and length, Content-Length, chunk sizes, decoded size) is bounded and overflow-safe.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hlsrelay::http {

// Malformed framing. what() says what was wrong, without the URL (the caller adds it).
class FramingError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// A body that would exceed its cap (after decoding).
class CapExceeded : public FramingError {
public:
    explicit CapExceeded(uint64_t cap) : FramingError("body exceeds its cap"), cap_(cap) {}
    uint64_t cap() const { return cap_; }

private:
    uint64_t cap_;
};

inline constexpr std::size_t kMaxHeadBytes = 64 * 1024;  // status line and headers together
inline constexpr std::size_t kMaxHeaders = 128;
inline constexpr std::size_t kMaxChunkLine = 4096;       // a chunk-size line with its extensions
inline constexpr std::size_t kMaxTrailers = 64;

struct ResponseHead {
    int version_minor = 1;     // HTTP/1.<minor>
    int status = 0;
    std::string reason;
    std::vector<std::pair<std::string, std::string>> headers;  // names lowercase, values trimmed
    std::optional<uint64_t> content_length;
    bool chunked = false;
    bool keep_alive = true;
    std::string location;
    std::string content_encoding;  // lowercase; "" or "identity": none
    std::string content_type;

    const std::string* header(std::string_view lowercase_name) const;
};

// Parses the head at the start of `bytes`. nullopt while its blank line has not arrived; `consumed`
// is then 0. Throws FramingError for a malformed head or one over kMaxHeadBytes / kMaxHeaders.
std::optional<ResponseHead> parse_head(std::string_view bytes, std::size_t& consumed);

// How the body of a response to a GET is delimited (RFC 9112 6.3).
enum class Framing { None, Length, Chunked, UntilClose };
Framing framing_of(const ResponseHead& head);

// Decodes a chunked body incrementally. feed() consumes what it can of `in` and returns how many
// bytes it used; payload bytes go to `out`. done() after the last chunk and its trailers.
class ChunkedDecoder {
public:
    // At most `max_out` payload bytes go out per call.
    template <typename Sink>
    std::size_t feed(std::string_view in, Sink&& out, std::size_t max_out = SIZE_MAX) {
        std::size_t used = 0;
        while (used < in.size() && state_ != State::Done) {
            if (state_ == State::Data) {
                if (max_out == 0) break;
                const std::size_t n =
                    static_cast<std::size_t>(std::min<uint64_t>({remaining_, in.size() - used, max_out}));
                out(in.substr(used, n));
                max_out -= n;
                used += n;
                remaining_ -= n;
                if (remaining_ == 0) state_ = State::DataEnd;
                continue;
            }
            used += step(in.substr(used));
        }
        return used;
    }
    bool done() const { return state_ == State::Done; }
    // Payload bytes of the current chunk not yet seen (a reader may read them straight to their place).
    uint64_t data_remaining() const { return state_ == State::Data ? remaining_ : 0; }
    void data_consumed(uint64_t n);

private:
    enum class State { Size, Data, DataEnd, Trailer, Done };
    std::size_t step(std::string_view in);  // one line's worth (size line, CRLF after data, trailer)
    State state_ = State::Size;
    uint64_t remaining_ = 0;
    std::string line_;
    std::size_t trailers_ = 0;
};

// Inflates a gzip or deflate (zlib-wrapped or raw) body; the decoded size is capped (CapExceeded).
class Inflater {
public:
    enum class Kind { Gzip, Deflate };
    Inflater(Kind kind, uint64_t cap);
    ~Inflater();
    Inflater(const Inflater&) = delete;
    Inflater& operator=(const Inflater&) = delete;
    void feed(std::string_view in, std::string& out);
    // At the end of the body: throws FramingError when the compressed stream is incomplete.
    void finish() const;

private:
    struct Stream;
    void start(unsigned char first);
    std::unique_ptr<Stream> z_;
    Kind kind_;
    uint64_t cap_;
    bool started_ = false, ended_ = false;
};

// "gzip", "x-gzip" -> Gzip; "deflate" -> Deflate; "", "identity" -> nullopt; anything else throws.
std::optional<Inflater::Kind> content_coding(const ResponseHead& head);

// Where a body's payload goes: through the Inflater when the response is compressed, capped either
// way. The cap applies to what is kept (the decoded bytes).
class BodySink {
public:
    BodySink(std::optional<Inflater::Kind> coding, uint64_t cap, std::string& out);
    void operator()(std::string_view payload);
    void finish() const;  // at the end of the body
    bool decoding() const { return inflater_ != nullptr; }

private:
    std::unique_ptr<Inflater> inflater_;
    uint64_t cap_;
    std::string& out_;
};

// A whole response from a byte string: head, decoded body, and whether the body was complete (false
// when the bytes end before its end; an until-close body is complete at the end of the bytes). For
// the fuzzer and tests; throws FramingError / CapExceeded like the client.
struct Response {
    ResponseHead head;
    std::string body;
    bool complete = false;
};
Response parse_response(std::string_view bytes, uint64_t cap);

}  // namespace hlsrelay::http
