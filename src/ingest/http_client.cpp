// The engine's HTTP(S) client: see http_client.hpp.
#include "ingest/http_client.hpp"

#include "ingest/m3u8.hpp"
#include <hlsrelay/stream_id.hpp>

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>

namespace hlsrelay {

namespace {
constexpr size_t kReadChunk = 64 * 1024;
constexpr int kMaxInterim = 8;  // 1xx responses before the final one

std::string seconds_text(double s) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f s", s);
    return buf;
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

std::string percent_decode(std::string_view s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
            out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
            i += 2;
        } else {
            out += s[i];
        }
    }
    return out;
}

std::string base64(std::string_view in) {
    static const char* table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
        const uint32_t v = static_cast<uint32_t>(static_cast<unsigned char>(in[i])) << 16 |
                           static_cast<uint32_t>(static_cast<unsigned char>(in[i + 1])) << 8 |
                           static_cast<unsigned char>(in[i + 2]);
        out += table[v >> 18 & 63];
        out += table[v >> 12 & 63];
        out += table[v >> 6 & 63];
        out += table[v & 63];
    }
    if (i < in.size()) {
        uint32_t v = static_cast<uint32_t>(static_cast<unsigned char>(in[i])) << 16;
        if (i + 1 < in.size()) v |= static_cast<uint32_t>(static_cast<unsigned char>(in[i + 1])) << 8;
        out += table[v >> 18 & 63];
        out += table[v >> 12 & 63];
        out += i + 1 < in.size() ? table[v >> 6 & 63] : '=';
        out += '=';
    }
    return out;
}

bool has_line_break(std::string_view s) { return s.find_first_of("\r\n") != std::string_view::npos; }

// The connection ended (EOF, reset, broken pipe): on a reused keep-alive connection before any byte
// of the answer arrived, the server had closed it while idle and the request is sent again.
class ConnectionLost : public av::SourceError {
public:
    using av::SourceError::SourceError;
};

// Closes the connection unless released: a request that fails half-way leaves no usable stream.
struct CloseOnError {
    HttpClient& client;
    bool armed = true;
    ~CloseOnError() {
        if (armed) client.close();
    }
};
}  // namespace

struct HttpClient::Tls {
    av::IoPtr io;
};

HttpClient::HttpClient() = default;
HttpClient::~HttpClient() { close(); }

void HttpClient::close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    tls_.reset();
    peer_.clear();
    served_ = 0;
    in_.clear();
    in_pos_ = 0;
    stream_open_ = false;
    stream_chunks_.reset();
}

// ---- waits, deadlines, messages

double HttpClient::wait_budget(bool& deadline_binds) const {
    double budget = op_.spec->read_timeout;
    deadline_binds = false;
    if (op_.deadline) {
        const double left = std::chrono::duration<double>(*op_.deadline - Clock::now()).count();
        if (left <= budget) {
            budget = std::max(0.0, left);
            deadline_binds = true;
        }
    }
    return budget;
}

void HttpClient::throw_timeout(const char* what, bool deadline_binds) const {
    if (deadline_binds)
        throw av::SourceError(op_.spec->what + " " + redact_url(op_.url) + " not complete within its " +
                                  seconds_text(op_.spec->deadline) + " deadline (" + op_.spec->deadline_name + ")",
                              false, 0, true);
    throw av::SourceError(std::string(what) + " " + redact_url(op_.url) + " timed out after " +
                          seconds_text(op_.spec->read_timeout));
}

void HttpClient::check_deadline() const {
    if (op_.irq->stop_requested()) throw av::SourceError("stopped");
    if (op_.deadline && Clock::now() > *op_.deadline) throw_timeout("", true);
}

void HttpClient::count(size_t n) const {
    if (op_.spec->bytes_in) op_.spec->bytes_in->fetch_add(static_cast<int64_t>(n), std::memory_order_relaxed);
}

void HttpClient::framing_error(const http::FramingError& e) const {
    if (const auto* cap = dynamic_cast<const http::CapExceeded*>(&e))
        throw av::SourceError(op_.spec->what + " " + redact_url(op_.url) + " exceeds " + op_.spec->limit_name + " (" +
                                  std::to_string(cap->cap()) + " bytes)",
                              false, 0, true);
    throw av::SourceError("bad response from " + redact_url(op_.url) + ": " + e.what());
}

void HttpClient::wait(short events, const char* what) {
    bool binds = false;
    const double budget = wait_budget(binds);
    const auto until = Clock::now() + std::chrono::duration<double>(budget);
    for (;;) {
        if (op_.irq->stop_requested()) throw av::SourceError("stopped");
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
        pollfd p{fd_, events, 0};
        const int r = ::poll(&p, 1, static_cast<int>(std::clamp<int64_t>(left, 0, 100)));
        if (r > 0) return;
        if (r < 0 && errno != EINTR)
            throw av::SourceError(std::string(what) + " " + redact_url(op_.url) + ": " + std::strerror(errno));
        if (Clock::now() >= until) throw_timeout(what, binds);
    }
}

// ---- transports: a plain socket or libav's tls protocol

void HttpClient::connect(const url::Parts& p) {
    close();
    if (p.origin.scheme == "https") connect_tls(p);
    else connect_tcp(p);
    peer_ = p.origin.text();
    ++connections_;
}

void HttpClient::connect_tcp(const url::Parts& p) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    const std::string port = std::to_string(p.origin.port);
    const int gai = ::getaddrinfo(p.origin.host.c_str(), port.c_str(), &hints, &found);
    if (gai != 0) throw av::SourceError("cannot open " + redact_url(op_.url) + ": " + gai_strerror(gai));
    std::unique_ptr<addrinfo, void (*)(addrinfo*)> list(found, ::freeaddrinfo);
    std::string error = "no address";
    for (addrinfo* a = found; a; a = a->ai_next) {
        const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            error = std::strerror(errno);
            continue;
        }
        fd_ = fd;
        if (::connect(fd, a->ai_addr, a->ai_addrlen) < 0 && errno != EINPROGRESS) {
            error = std::strerror(errno);
            close();
            continue;
        }
        wait(POLLOUT, "cannot open");
        int so_error = 0;
        socklen_t len = sizeof so_error;
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len);
        if (so_error != 0) {
            error = std::strerror(so_error);
            close();
            continue;
        }
        const int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        return;
    }
    throw av::SourceError("cannot open " + redact_url(op_.url) + ": " + error);
}

void HttpClient::connect_tls(const url::Parts& p) {
    // libav's tls protocol (certificate checks and SNI as libav does them by default) over its tcp;
    // nothing else may be opened. The interrupt callback bounds the handshake by the budget.
    av::Options opts;
    opts.set("protocol_whitelist", "tls,tcp");
    opts.set("rw_timeout", std::to_string(static_cast<int64_t>(op_.spec->read_timeout * 1e6)));
    const bool v6 = p.origin.host.find(':') != std::string::npos;
    const std::string target =
        "tls://" + (v6 ? "[" + p.origin.host + "]" : p.origin.host) + ":" + std::to_string(p.origin.port);
    bool binds = false;
    const double budget = wait_budget(binds);
    AVIOInterruptCB cb = op_.irq->callback();
    AVIOContext* raw = nullptr;
    op_.irq->arm(std::chrono::duration<double>(budget));
    const int err = avio_open2(&raw, target.c_str(), AVIO_FLAG_READ_WRITE, &cb, opts.get());
    const bool timed_out = op_.irq->timed_out();
    op_.irq->disarm();
    if (err < 0) {
        if (op_.irq->stop_requested()) throw av::SourceError("stopped");
        if (timed_out || err == AVERROR(ETIMEDOUT)) throw_timeout("cannot open", binds);
        throw av::SourceError("cannot open " + redact_url(op_.url) + ": " + av::error_string(err));
    }
    tls_ = std::make_unique<Tls>();
    tls_->io.reset(raw);
}

void HttpClient::send_all(std::string_view bytes) {
    if (tls_) {
        check_deadline();
        bool binds = false;
        op_.irq->arm(std::chrono::duration<double>(wait_budget(binds)));
        // In pieces: avio_write takes an int, and a request body may be a large segment.
        for (size_t done = 0; done < bytes.size() && tls_->io->error >= 0;) {
            const size_t n = std::min<size_t>(bytes.size() - done, size_t{1} << 20);
            avio_write(tls_->io.get(), reinterpret_cast<const unsigned char*>(bytes.data() + done), static_cast<int>(n));
            done += n;
        }
        avio_flush(tls_->io.get());
        const int err = tls_->io->error;
        const bool timed_out = op_.irq->timed_out();
        op_.irq->disarm();
        if (err < 0) {
            if (op_.irq->stop_requested()) throw av::SourceError("stopped");
            if (timed_out || err == AVERROR(ETIMEDOUT)) throw_timeout("cannot open", binds);
            throw ConnectionLost("cannot open " + redact_url(op_.url) + ": " + av::error_string(err));
        }
        return;
    }
    for (size_t sent = 0; sent < bytes.size();) {
        check_deadline();
        const ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
        if (n > 0) {
            sent += static_cast<size_t>(n);
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            wait(POLLOUT, "cannot open");
        } else {
            throw ConnectionLost("cannot open " + redact_url(op_.url) + ": " + std::strerror(errno));
        }
    }
}

size_t HttpClient::read_some(char* out, size_t size) {
    if (tls_) {
        for (;;) {
            check_deadline();
            bool binds = false;
            op_.irq->arm(std::chrono::duration<double>(wait_budget(binds)));
            const int n = avio_read_partial(tls_->io.get(), reinterpret_cast<unsigned char*>(out),
                                            static_cast<int>(std::min<size_t>(size, INT_MAX)));
            const bool timed_out = op_.irq->timed_out();
            op_.irq->disarm();
            if (n > 0) return static_cast<size_t>(n);
            if (n == 0 || n == AVERROR_EOF) return 0;
            if (n == AVERROR(EAGAIN)) continue;
            if (op_.irq->stop_requested()) throw av::SourceError("stopped");
            if (timed_out || n == AVERROR(ETIMEDOUT)) throw_timeout("read failed for", binds);
            throw ConnectionLost("read failed for " + redact_url(op_.url) + ": " + av::error_string(n));
        }
    }
    for (;;) {
        check_deadline();  // a trickle never lets a read wait out its timeout
        const ssize_t n = ::recv(fd_, out, size, 0);
        if (n >= 0) return static_cast<size_t>(n);
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            throw ConnectionLost("read failed for " + redact_url(op_.url) + ": " + std::strerror(errno));
        wait(POLLIN, "read failed for");
    }
}

bool HttpClient::fill() {
    if (in_pos_ > 0 && (in_pos_ == in_.size() || in_pos_ >= kReadChunk)) {
        in_.erase(0, in_pos_);
        in_pos_ = 0;
    }
    const size_t old = in_.size();
    in_.resize(old + kReadChunk);
    size_t n = 0;
    try {
        n = read_some(in_.data() + old, kReadChunk);
    } catch (...) {
        in_.resize(old);
        throw;
    }
    in_.resize(old + n);
    return n > 0;
}

// ---- requests

std::string HttpClient::request_text(const url::Parts& p) const {
    const FetchSpec& spec = *op_.spec;
    const bool trusted = url::same_origin(op_.url, spec.trusted_origin);
    const bool basic = !basic_auth_.empty() && p.origin.text() == credentials_origin_;
    const std::string method = spec.method.empty() ? std::string("GET") : spec.method;
    std::string req = method + " " + p.target + " HTTP/1.1\r\nHost: " + p.host_port + "\r\n";
    bool agent = false;
    if (spec.headers) {
        for (const auto& [name, value] : *spec.headers) {
            if (!url::allowed_everywhere(name) && !trusted) continue;  // the channel's origin only
            if (has_line_break(name) || has_line_break(value) || name.empty()) continue;
            const std::string n = url::detail::lowered(name);
            if (n == "host" || n == "content-length" || n == "transfer-encoding" || n == "connection" ||
                n == "range" || n == "accept-encoding" || (basic && n == "authorization") ||
                (!spec.method.empty() && n == "content-type"))
                continue;  // ours
            if (n == "user-agent") agent = true;
            req += name + ": " + value + "\r\n";
        }
    }
    if (basic) req += "Authorization: Basic " + basic_auth_ + "\r\n";
    if (!agent) req += "User-Agent: hlsrelay\r\n";
    if (spec.range)
        req += "Range: bytes=" + std::to_string(spec.range->first) + "-" + std::to_string(spec.range->second - 1) + "\r\n";
    if (!spec.method.empty()) {  // send(): the body's length always (0 for DELETE), its type when given
        req += "Content-Length: " + std::to_string(spec.body.size()) + "\r\n";
        if (!spec.content_type.empty() && !has_line_break(spec.content_type))
            req += "Content-Type: " + spec.content_type + "\r\n";
    }
    req += spec.accept_gzip ? "Accept-Encoding: gzip, deflate\r\n" : "Accept-Encoding: identity\r\n";
    req += "Accept: */*\r\nConnection: keep-alive\r\n\r\n";
    return req;
}

HttpClient::Outcome HttpClient::request(bool& reused) {
    const auto p = url::split_http(op_.url);
    if (!p) throw av::SourceError("cannot open " + redact_url(op_.url) + ": unsupported URL");
    if ((fd_ < 0 && !tls_) || peer_ != p->origin.text()) connect(*p);
    reused = served_ > 0;
    try {
        send_all(request_text(*p));
        if (!op_.spec->body.empty()) send_all(op_.spec->body);
        // Interim (1xx) responses are skipped; the final head is parsed once its blank line arrived.
        for (int interim = 0;; ++interim) {
            size_t scanned = 0;  // bytes after in_pos_ known not to end the head (fill() may move in_pos_)
            for (;;) {
                const size_t from = in_pos_ + (scanned >= 3 ? scanned - 3 : 0);
                if (in_.find("\r\n\r\n", from) != std::string::npos || in_.size() - in_pos_ > http::kMaxHeadBytes) break;
                scanned = in_.size() - in_pos_;
                if (!fill()) {
                    if (interim == 0 && in_.size() == in_pos_) throw ConnectionLost("connection closed without a response");
                    throw av::SourceError("cannot open " + redact_url(op_.url) + ": connection closed mid-header");
                }
            }
            size_t used = 0;
            auto head = http::parse_head(std::string_view(in_).substr(in_pos_), used);
            if (!head) throw http::FramingError("oversized response header");
            in_pos_ += used;
            head_ = std::move(*head);
            if (head_.status >= 200 || head_.status == 101) break;
            if (interim >= kMaxInterim) throw http::FramingError("too many interim responses");
        }
    } catch (const ConnectionLost&) {
        if (reused && in_.size() == in_pos_) return Outcome::Stale;
        throw;
    } catch (const http::FramingError& e) {
        framing_error(e);
    }
    const int s = head_.status;
    if (op_.spec->method.empty() && (s == 301 || s == 302 || s == 303 || s == 307 || s == 308)) return Outcome::Redirect;
    return Outcome::Done;
}

void HttpClient::open(const std::string& url, const FetchSpec& spec, av::Interrupter& irq) {
    if (stream_open_) close();  // a stream left its connection mid-body
    op_.url = url;
    op_.spec = &spec;
    op_.irq = &irq;
    op_.deadline.reset();
    if (spec.deadline > 0)
        op_.deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(spec.deadline));
    basic_auth_.clear();
    credentials_origin_.clear();
    auto take_credentials = [this] {
        const auto p = url::split_http(op_.url);
        if (p && !p->userinfo.empty()) {
            basic_auth_ = base64(percent_decode(p->userinfo));
            credentials_origin_ = p->origin.text();
        }
    };
    take_credentials();
    for (int redirects = 0;;) {
        bool reused = false;
        Outcome o = request(reused);
        if (o == Outcome::Stale) {  // the server had closed the idle connection: once more, fresh
            close();
            o = request(reused);
            if (o == Outcome::Stale)
                throw av::SourceError("cannot open " + redact_url(op_.url) + ": connection closed without a response");
        }
        if (o == Outcome::Redirect) {
            close();  // nothing of a redirect's body is needed: a fresh connection is cheaper than reading it
            if (head_.location.empty())
                throw av::SourceError("cannot open " + redact_url(op_.url) + ": redirect without a Location");
            if (redirects >= spec.max_redirects)
                throw av::SourceError("cannot open " + redact_url(url) + ": too many redirects (more than " +
                                      std::to_string(spec.max_redirects) + ")");
            const std::string target = m3u8::resolve_url(op_.url, head_.location);
            if (const std::string refused = url::check_redirect(target); !refused.empty())
                throw av::SourceError(refused + " (from " + redact_url(op_.url) + ")", true);
            op_.url = target;
            take_credentials();  // only a URL's own userinfo; other origins never get earlier ones
            ++redirects;
            continue;
        }
        break;
    }
    const int status = head_.status;
    const bool ok = spec.method.empty() ? status == 200 || status == 206 : status >= 200 && status < 300;
    if (!ok) {
        close();
        if (status >= 300)
            throw av::SourceError("cannot open " + redact_url(op_.url) + ": Server returned " + std::to_string(status) +
                                      (head_.reason.empty() ? "" : " " + head_.reason),
                                  false, status);
        throw av::SourceError("cannot open " + redact_url(op_.url) + ": unexpected HTTP status " + std::to_string(status));
    }
}

std::string HttpClient::read_body() {
    const FetchSpec& spec = *op_.spec;
    const auto cap = static_cast<uint64_t>(std::max<int64_t>(0, spec.max_bytes));
    std::string body;
    const auto coding = http::content_coding(head_);
    http::BodySink sink(coding, cap, body);
    auto consume_buffered = [&](uint64_t max) {  // bytes already read, up to max: to the sink
        const size_t n = static_cast<size_t>(std::min<uint64_t>(max, in_.size() - in_pos_));
        if (n == 0) return size_t{0};
        sink(std::string_view(in_).substr(in_pos_, n));
        in_pos_ += n;
        count(n);
        return n;
    };
    switch (http::framing_of(head_)) {
        case http::Framing::None:
            break;
        case http::Framing::Length: {
            const uint64_t length = *head_.content_length;
            if (length > cap) throw http::CapExceeded(cap);  // refused before a byte of it is read
            uint64_t left = length;
            if (!coding) {
                // The body is read straight into its final buffer of exactly the announced size (a
                // segment lives in the window for its whole life, so no slack capacity rides along),
                // from the pool when there is one. A pooled buffer keeps its old bytes: sized down
                // to `size` it costs no zero fill, and every byte is overwritten below.
                const auto size = static_cast<size_t>(length);
                if (spec.pool && size >= BufferPool::kMinSize) body = spec.pool->take(size);
                else body.reserve(size);
                body.resize(size);
                size_t filled = std::min(size, in_.size() - in_pos_);  // already read with the head
                if (filled > 0) std::memcpy(body.data(), in_.data() + in_pos_, filled);
                in_pos_ += filled;
                count(filled);
                while (filled < size) {
                    const size_t got = read_some(body.data() + filled, size - filled);
                    if (got == 0) {
                        body.resize(filled);
                        throw av::SourceError("truncated response from " + redact_url(op_.url) + ": " +
                                              std::to_string(filled) + " of " + std::to_string(length) + " bytes");
                    }
                    count(got);
                    filled += got;
                }
            } else {
                for (;;) {
                    left -= consume_buffered(left);
                    if (left == 0) break;
                    if (!fill()) throw av::SourceError("truncated response from " + redact_url(op_.url));
                }
            }
            break;
        }
        case http::Framing::Chunked: {
            http::ChunkedDecoder decoder;
            auto payload = [&](std::string_view d) {
                count(d.size());
                sink(d);
            };
            for (;;) {
                in_pos_ += decoder.feed(std::string_view(in_).substr(in_pos_), payload);
                if (decoder.done()) break;
                if (!fill()) throw av::SourceError("truncated response from " + redact_url(op_.url));
            }
            break;
        }
        case http::Framing::UntilClose:
            for (;;) {
                consume_buffered(UINT64_MAX);
                if (!fill()) break;
            }
            head_.keep_alive = false;
            break;
    }
    sink.finish();
    return body;
}

void HttpClient::finish_response() {
    ++served_;
    // Bytes beyond the body would be read as the next response: such a connection is not reused.
    if (!head_.keep_alive || in_pos_ != in_.size()) close();
}

std::string HttpClient::get(const std::string& url, const FetchSpec& spec, av::Interrupter& irq, std::string* final_url) {
    CloseOnError guard{*this};
    open(url, spec, irq);
    std::string body;
    try {
        body = read_body();
    } catch (const http::FramingError& e) {
        framing_error(e);
    }
    // A body that grew by doubling (chunked, until close) gives back its slack; a pooled buffer
    // (BufferPool::fits) keeps it, as the pool's next take of this size would want it back.
    if (!BufferPool::fits(body.capacity(), body.size()) && body.capacity() > body.size() + 4096) body.shrink_to_fit();
    guard.armed = false;
    finish_response();
    if (final_url) *final_url = op_.url;
    return body;
}

int HttpClient::send(const std::string& url, const FetchSpec& spec, av::Interrupter& irq) {
    CloseOnError guard{*this};
    open(url, spec, irq);
    try {
        read_body();  // whatever the server says about it (capped by spec.max_bytes), dropped
    } catch (const http::FramingError& e) {
        framing_error(e);
    }
    guard.armed = false;
    finish_response();
    return head_.status;
}

void HttpClient::open_stream(const std::string& url, const FetchSpec& spec, av::Interrupter& irq, std::string* final_url) {
    CloseOnError guard{*this};
    open(url, spec, irq);
    op_.deadline.reset();
    try {
        if (http::content_coding(head_))
            throw av::SourceError("cannot open " + redact_url(op_.url) + ": a compressed stream (Content-Encoding " +
                                  head_.content_encoding + ") is not supported");
    } catch (const http::FramingError& e) {
        framing_error(e);
    }
    stream_framing_ = http::framing_of(head_);
    stream_left_ = head_.content_length.value_or(0);
    stream_chunks_ = stream_framing_ == http::Framing::Chunked ? std::make_unique<http::ChunkedDecoder>() : nullptr;
    stream_open_ = true;
    guard.armed = false;
    if (final_url) *final_url = op_.url;
}

size_t HttpClient::read_stream(char* out, size_t size, av::Interrupter& irq) {
    if (!stream_open_ || size == 0) return 0;
    op_.irq = &irq;
    CloseOnError guard{*this};
    size_t n = 0;
    auto from_buffer = [&](size_t max) {
        const size_t k = std::min(max, in_.size() - in_pos_);
        std::memcpy(out, in_.data() + in_pos_, k);
        in_pos_ += k;
        return k;
    };
    switch (stream_framing_) {
        case http::Framing::None:
            break;
        case http::Framing::Length: {
            if (stream_left_ == 0) break;
            const size_t max = static_cast<size_t>(std::min<uint64_t>(size, stream_left_));
            n = in_pos_ < in_.size() ? from_buffer(max) : read_some(out, max);
            if (n == 0) throw av::SourceError("read failed for " + redact_url(op_.url) + ": the stream was cut short");
            stream_left_ -= n;
            count(n);
            break;
        }
        case http::Framing::UntilClose:
            n = in_pos_ < in_.size() ? from_buffer(size) : read_some(out, size);
            count(n);
            head_.keep_alive = false;
            break;
        case http::Framing::Chunked:
            try {
                while (n == 0 && !stream_chunks_->done()) {
                    if (in_pos_ == in_.size() && !fill())
                        throw av::SourceError("read failed for " + redact_url(op_.url) + ": the stream was cut short");
                    in_pos_ += stream_chunks_->feed(
                        std::string_view(in_).substr(in_pos_),
                        [&](std::string_view d) {
                            std::memcpy(out + n, d.data(), d.size());
                            n += d.size();
                        },
                        size);
                    count(n);
                }
            } catch (const http::FramingError& e) {
                framing_error(e);
            }
            break;
    }
    guard.armed = false;
    if (n == 0) {  // the end of the body
        stream_open_ = false;
        finish_response();
    }
    return n;
}

}  // namespace hlsrelay
