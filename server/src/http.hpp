// HTTP/1.x messages as the server sees them: a parsed request, a response to send, and the helpers
// shared by the parser, the router and the connection.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <hlsrelay/segment_bytes.hpp>

namespace hlsrelay::server {

struct Header {
    std::string name;
    std::string value;
};

struct Request {
    std::string method;
    std::string target;  // as sent: origin-form "/path?query", absolute-form or "*"
    int version_major = 1;
    int version_minor = 1;
    std::vector<Header> headers;
    std::size_t content_length = 0;
    // The body's first bytes, at most ParserLimits::max_kept_body (the rest is read and discarded):
    // what the management endpoints take; a longer body than they accept shows as a longer one here.
    std::string body;

    // The first header named `name` (case-insensitive), if any.
    std::optional<std::string_view> header(std::string_view name) const;
    // HTTP/1.1 keeps the connection unless "Connection: close"; HTTP/1.0 only with "keep-alive".
    bool keep_alive() const;
};

// A body that comes as it is made (a channel's continuous TS stream): chunks shared with the engine,
// sent one after the other until the source ends or the client goes. The connection closes after it.
class BodyStream {
public:
    // `data` holds `bytes`; a null `data` is the end of the body.
    using Ready = std::function<void(std::shared_ptr<const void> data, std::string_view bytes)>;
    virtual ~BodyStream() = default;
    // Calls `ready` once, on any thread, as soon as the next chunk (or the end) is there.
    virtual void next(Ready ready) = 0;
    // The connection is gone: a `ready` still waiting is dropped, never called.
    virtual void cancel() = 0;
};

struct Response {
    int status = 200;
    std::vector<Header> headers;  // Content-Length, Connection, Date and CORS are added when sending
    std::string body;
    // A body shared with the engine (a playlist or segment): sent in place, kept alive while writing.
    std::shared_ptr<const std::string> shared_body;
    // Instead of shared_body: a published segment's fd-backed bytes, sent with sendfile(2).
    std::shared_ptr<const SegmentBytes> file = nullptr;
    std::size_t offset = 0;  // the slice of shared_body (or file) to send
    std::size_t length = 0;
    bool close = false;  // end the connection after this response
    // Readable cross-origin: Access-Control-Allow-Origin: * (HLS delivery only, see api::check_request).
    bool cors = false;
    // Set: the body goes on after the payload above with this stream's chunks; no Content-Length, and
    // the connection closes at its end (a close-delimited body, RFC 9112 6.3).
    std::shared_ptr<BodyStream> stream;

    std::string_view payload() const {
        if (file) return file->bytes().substr(offset, length);
        return shared_body ? std::string_view(*shared_body).substr(offset, length) : std::string_view(body);
    }
    void set(std::string name, std::string value) { headers.push_back({std::move(name), std::move(value)}); }
};

std::string_view reason_phrase(int status);

bool iequals(std::string_view a, std::string_view b);

// The status line and headers of `r` (with the framing headers added), ending in the blank line.
// `http10`: the request was HTTP/1.0, so a kept connection must be announced.
std::string serialize_head(const Response& r, bool keep_alive, bool http10);

// Strict percent-decoding of one path segment or query value: nullopt for a '%' that is not followed
// by two hex digits. `plus_is_space` for query strings (application/x-www-form-urlencoded).
std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space = false);

// RFC 7231 IMF-fixdate of now, e.g. "Sun, 06 Nov 1994 08:49:37 GMT".
std::string http_date();

}  // namespace hlsrelay::server
