// HTTP/1.1 response framing: see http_framing.hpp.
#include "ingest/http_framing.hpp"

#include <zlib.h>

#include <cstring>

namespace hlsrelay::http {

namespace {
char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

std::string lowered(std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = lower(c);
    return out;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// A value quoted in an error message: short and printable.
std::string shown(std::string_view s) {
    std::string out;
    for (char c : s.substr(0, 40)) out += static_cast<unsigned char>(c) >= 0x20 && static_cast<unsigned char>(c) < 0x7f ? c : '?';
    if (s.size() > 40) out += "...";
    return out;
}

// Appends within the cap; the string's capacity grows geometrically but never beyond the cap.
void append_capped(std::string& out, std::string_view data, uint64_t cap) {
    if (data.size() > cap || out.size() > cap - data.size()) throw CapExceeded(cap);
    const std::size_t need = out.size() + data.size();
    if (need > out.capacity())
        out.reserve(static_cast<std::size_t>(std::min<uint64_t>(cap, std::max<uint64_t>(need, uint64_t{out.capacity()} * 2))));
    out.append(data);
}

bool is_token_char(char c) {
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f) return false;
    return std::strchr("()<>@,;:\\\"/[]?={}", c) == nullptr;
}

// Decimal digits only, at most 18 of them (fits int64 with room): Content-Length.
std::optional<uint64_t> parse_decimal(std::string_view s) {
    if (s.empty()) return std::nullopt;
    while (s.size() > 1 && s.front() == '0') s.remove_prefix(1);
    if (s.size() > 18) return std::nullopt;
    uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return std::nullopt;
        v = v * 10 + static_cast<uint64_t>(c - '0');
    }
    return v;
}

// Comma-separated list items, lowercase and trimmed, empty items dropped.
std::vector<std::string> tokens(std::string_view s) {
    std::vector<std::string> out;
    while (!s.empty()) {
        const auto comma = s.find(',');
        const std::string_view item = trim(s.substr(0, comma));
        if (!item.empty()) out.push_back(lowered(item));
        if (comma == std::string_view::npos) break;
        s.remove_prefix(comma + 1);
    }
    return out;
}
}  // namespace

const std::string* ResponseHead::header(std::string_view lowercase_name) const {
    for (const auto& [name, value] : headers)
        if (name == lowercase_name) return &value;
    return nullptr;
}

std::optional<ResponseHead> parse_head(std::string_view bytes, std::size_t& consumed) {
    consumed = 0;
    const std::size_t end = bytes.substr(0, kMaxHeadBytes + 4).find("\r\n\r\n");
    if (end == std::string_view::npos) {
        if (bytes.size() > kMaxHeadBytes) throw FramingError("oversized response header");
        return std::nullopt;
    }
    const std::string_view head = bytes.substr(0, end);
    ResponseHead h;
    // Status line: HTTP/1.x SP 3DIGIT [SP reason]
    const std::size_t line_end = std::min(head.find("\r\n"), head.size());
    const std::string_view status_line = head.substr(0, line_end);
    if (status_line.size() < 12 || status_line.substr(0, 7) != "HTTP/1." || status_line[7] < '0' ||
        status_line[7] > '9' || status_line[8] != ' ')
        throw FramingError("not an HTTP/1.x response");
    h.version_minor = status_line[7] - '0';
    for (std::size_t i = 9; i < 12; ++i)
        if (status_line[i] < '0' || status_line[i] > '9') throw FramingError("bad HTTP status code");
    h.status = (status_line[9] - '0') * 100 + (status_line[10] - '0') * 10 + (status_line[11] - '0');
    if (h.status < 100) throw FramingError("bad HTTP status code");
    if (status_line.size() > 12) {
        if (status_line[12] != ' ') throw FramingError("bad HTTP status line");
        h.reason = shown(status_line.substr(13));
    }
    h.keep_alive = h.version_minor >= 1;

    std::optional<uint64_t> length;
    bool length_conflict = false;
    std::vector<std::string> transfer;
    // Header lines: the head ends at the first blank line, so none of them is empty.
    std::string_view rest = line_end < head.size() ? head.substr(line_end + 2) : std::string_view();
    while (!rest.empty()) {
        const std::size_t eol = std::min(rest.find("\r\n"), rest.size());
        const std::string_view line = rest.substr(0, eol);
        rest = eol < rest.size() ? rest.substr(eol + 2) : std::string_view();
        if (line.empty()) throw FramingError("bad HTTP header line");
        if (line.front() == ' ' || line.front() == '\t') {  // obsolete line folding: part of the last value
            if (h.headers.empty()) throw FramingError("bad HTTP header line");
            h.headers.back().second += " ";
            h.headers.back().second += trim(line);
            continue;
        }
        const std::size_t colon = line.find(':');
        if (colon == std::string_view::npos || colon == 0) throw FramingError("bad HTTP header line");
        for (char c : line.substr(0, colon))
            if (!is_token_char(c)) throw FramingError("bad HTTP header name");
        if (h.headers.size() >= kMaxHeaders) throw FramingError("too many HTTP response headers");
        h.headers.emplace_back(lowered(line.substr(0, colon)), std::string(trim(line.substr(colon + 1))));
    }
    for (const auto& [name, value] : h.headers) {
        if (name == "content-length") {
            // "5, 5" (a list of equal values) is allowed; different values are not.
            for (const auto& item : tokens(value)) {
                const auto v = parse_decimal(item);
                if (!v) throw FramingError("bad Content-Length '" + shown(value) + "'");
                if (length && *length != *v) length_conflict = true;
                length = v;
            }
        } else if (name == "transfer-encoding") {
            for (auto& t : tokens(value)) transfer.push_back(std::move(t));
        } else if (name == "connection") {
            for (const auto& t : tokens(value)) {
                if (t == "close") h.keep_alive = false;
                else if (t == "keep-alive") h.keep_alive = true;
            }
        } else if (name == "location") {
            h.location = value;
        } else if (name == "content-encoding") {
            h.content_encoding = lowered(value);
        } else if (name == "content-type") {
            h.content_type = value;
        }
    }
    if (!transfer.empty()) {
        for (const auto& t : transfer)
            if (t != "chunked" && t != "identity") throw FramingError("unsupported Transfer-Encoding '" + shown(t) + "'");
        h.chunked = transfer.back() == "chunked";
        if (!h.chunked) throw FramingError("Transfer-Encoding without chunked last");
    }
    if (h.chunked) {
        length.reset();  // RFC 9112 6.3: chunked wins, and the connection cannot be trusted after
        h.keep_alive = h.keep_alive && !length_conflict;
    } else if (length_conflict) {
        throw FramingError("conflicting Content-Length headers");
    }
    h.content_length = length;
    consumed = end + 4;
    return h;
}

Framing framing_of(const ResponseHead& head) {
    if (head.status < 200 || head.status == 204 || head.status == 304) return Framing::None;
    if (head.chunked) return Framing::Chunked;
    if (head.content_length) return *head.content_length == 0 ? Framing::None : Framing::Length;
    return Framing::UntilClose;
}

void ChunkedDecoder::data_consumed(uint64_t n) {
    if (state_ != State::Data || n > remaining_) throw FramingError("chunk overrun");
    remaining_ -= n;
    if (remaining_ == 0) state_ = State::DataEnd;
}

std::size_t ChunkedDecoder::step(std::string_view in) {
    const std::size_t nl = in.find('\n');
    const std::size_t take = nl == std::string_view::npos ? in.size() : nl + 1;
    if (line_.size() + take > kMaxChunkLine) throw FramingError("oversized chunk header");
    line_.append(in.substr(0, take));
    if (nl == std::string_view::npos) return take;
    std::string_view line(line_);
    line.remove_suffix(1);                                  // '\n'
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    switch (state_) {
        case State::Size: {
            std::size_t i = 0;
            while (i < line.size() && line[i] == '0') ++i;  // leading zeros do not count
            const std::size_t zeros = i;
            uint64_t size = 0;
            std::size_t digits = 0;
            for (; i < line.size(); ++i, ++digits) {
                const char c = lower(line[i]);
                int v;
                if (c >= '0' && c <= '9') v = c - '0';
                else if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
                else break;
                if (digits >= 15) throw FramingError("chunk size too large");  // < 2^60: no overflow
                size = size * 16 + static_cast<uint64_t>(v);
            }
            if (zeros == 0 && digits == 0) throw FramingError("bad chunk size");
            const std::string_view ext = trim(line.substr(i));
            if (!ext.empty() && ext.front() != ';') throw FramingError("bad chunk size");
            if (size == 0) {
                state_ = State::Trailer;
            } else {
                remaining_ = size;
                state_ = State::Data;
            }
            break;
        }
        case State::DataEnd:
            if (!line.empty()) throw FramingError("chunk longer than its size");
            state_ = State::Size;
            break;
        case State::Trailer:
            if (line.empty()) {
                state_ = State::Done;
            } else if (++trailers_ > kMaxTrailers) {
                throw FramingError("too many chunked trailers");
            }
            break;
        case State::Data:
        case State::Done:
            break;
    }
    line_.clear();
    return take;
}

struct Inflater::Stream {
    z_stream s{};
    bool initialized = false;
    ~Stream() {
        if (initialized) inflateEnd(&s);
    }
};

Inflater::Inflater(Kind kind, uint64_t cap) : z_(std::make_unique<Stream>()), kind_(kind), cap_(cap) {}
Inflater::~Inflater() = default;

void Inflater::start(unsigned char first) {
    // deflate is zlib-wrapped by the RFC, raw by some servers: a zlib header starts with CM = 8.
    int bits = 15 + 16;
    if (kind_ == Kind::Deflate) bits = (first & 0x0f) == 8 && (first >> 4) <= 7 ? 15 : -15;
    if (inflateInit2(&z_->s, bits) != Z_OK) throw std::bad_alloc();
    z_->initialized = true;
    started_ = true;
}

void Inflater::feed(std::string_view in, std::string& out) {
    if (in.empty()) return;
    if (!started_) start(static_cast<unsigned char>(in.front()));
    z_stream& s = z_->s;
    while (!in.empty()) {
        if (ended_) {
            // Another gzip member may follow (concatenated gzip); anything else after the end is junk.
            if (kind_ != Kind::Gzip) return;
            if (inflateReset(&s) != Z_OK) throw FramingError("corrupt compressed body");
            ended_ = false;
        }
        unsigned char buf[16384];
        s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
        const auto avail = static_cast<uInt>(std::min<std::size_t>(in.size(), 1u << 30));
        s.avail_in = avail;
        int ret;
        do {
            s.next_out = buf;
            s.avail_out = sizeof buf;
            ret = inflate(&s, Z_NO_FLUSH);
            if (ret != Z_OK && ret != Z_STREAM_END && ret != Z_BUF_ERROR)
                throw FramingError("corrupt compressed body");
            const std::size_t produced = sizeof buf - s.avail_out;
            append_capped(out, std::string_view(reinterpret_cast<const char*>(buf), produced), cap_);
            if (ret == Z_BUF_ERROR && produced == 0) break;  // needs more input
        } while (ret != Z_STREAM_END && (s.avail_in > 0 || s.avail_out == 0));
        in.remove_prefix(avail - s.avail_in);
        if (ret == Z_STREAM_END) ended_ = true;
        else if (s.avail_in > 0) throw FramingError("corrupt compressed body");  // cannot happen; no spin
    }
}

void Inflater::finish() const {
    if (started_ && !ended_) throw FramingError("truncated compressed body");
}

std::optional<Inflater::Kind> content_coding(const ResponseHead& head) {
    const std::string& c = head.content_encoding;
    if (c.empty() || c == "identity") return std::nullopt;
    if (c == "gzip" || c == "x-gzip") return Inflater::Kind::Gzip;
    if (c == "deflate") return Inflater::Kind::Deflate;
    throw FramingError("unsupported Content-Encoding '" + shown(c) + "'");
}

BodySink::BodySink(std::optional<Inflater::Kind> coding, uint64_t cap, std::string& out) : cap_(cap), out_(out) {
    if (coding) inflater_ = std::make_unique<Inflater>(*coding, cap);
}

void BodySink::operator()(std::string_view payload) {
    if (inflater_) {
        inflater_->feed(payload, out_);
        return;
    }
    append_capped(out_, payload, cap_);
}

void BodySink::finish() const {
    if (inflater_) inflater_->finish();
}

Response parse_response(std::string_view bytes, uint64_t cap) {
    Response r;
    for (int interim = 0;; ++interim) {
        std::size_t used = 0;
        auto head = parse_head(bytes, used);
        if (!head) return r;
        bytes.remove_prefix(used);
        r.head = std::move(*head);
        if (r.head.status >= 200 || r.head.status == 101) break;
        if (interim >= 8) throw FramingError("too many interim responses");
    }
    BodySink sink(content_coding(r.head), cap, r.body);
    switch (framing_of(r.head)) {
        case Framing::None:
            r.complete = true;
            return r;
        case Framing::Length: {
            const uint64_t length = *r.head.content_length;
            if (length > cap && !sink.decoding()) throw CapExceeded(cap);
            const std::size_t n = static_cast<std::size_t>(std::min<uint64_t>(length, bytes.size()));
            sink(bytes.substr(0, n));
            r.complete = n == length;
            break;
        }
        case Framing::Chunked: {
            ChunkedDecoder decoder;
            decoder.feed(bytes, sink);
            r.complete = decoder.done();
            break;
        }
        case Framing::UntilClose:
            sink(bytes);
            r.complete = true;
            break;
    }
    if (r.complete) sink.finish();
    return r;
}

}  // namespace hlsrelay::http
