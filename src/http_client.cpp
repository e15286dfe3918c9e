// Persistent-connection HTTP/1.1 GET: see http_client.hpp.
#include "http_client.hpp"

#include <hlsrelay/m3u8.hpp>
#include <hlsrelay/stream_id.hpp>

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fcntl.h>

namespace hlsrelay {

namespace {
constexpr size_t kMaxHeader = 64 * 1024;
constexpr int kMaxRedirects = 5;

std::string lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

std::string timeout_text(double s) {
    char buf[64];
    std::snprintf(buf, sizeof buf, " timed out after %.1f s", s);
    return buf;
}

// Closes the connection unless released: a request that fails half-way leaves no usable stream.
struct CloseOnError {
    HttpClient& client;
    bool armed = true;
    ~CloseOnError() {
        if (armed) client.close();
    }
};
}  // namespace

HttpClient::~HttpClient() { close(); }

void HttpClient::close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    peer_.clear();
    served_ = 0;
    in_.clear();
    in_pos_ = 0;
}

bool HttpClient::handles(const std::string& url) { return parse(url).has_value(); }

std::optional<HttpClient::Url> HttpClient::parse(const std::string& url) {
    if (url.size() < 8 || lower(url.substr(0, 7)) != "http://") return std::nullopt;
    const size_t host_start = 7;
    size_t path_start = url.find_first_of("/?#", host_start);
    if (path_start == std::string::npos) path_start = url.size();
    const std::string authority = url.substr(host_start, path_start - host_start);
    if (authority.empty() || authority.find('@') != std::string::npos) return std::nullopt;
    Url u;
    u.host_header = authority;
    if (authority.front() == '[') {  // [IPv6]:port
        const size_t close = authority.find(']');
        if (close == std::string::npos) return std::nullopt;
        u.host = authority.substr(1, close - 1);
        if (close + 1 < authority.size()) {
            if (authority[close + 1] != ':') return std::nullopt;
            u.port = authority.substr(close + 2);
        }
    } else {
        const size_t colon = authority.rfind(':');
        u.host = authority.substr(0, colon);
        if (colon != std::string::npos) u.port = authority.substr(colon + 1);
    }
    if (u.port.empty()) u.port = "80";
    if (u.host.empty() || u.port.size() > 5 || !std::all_of(u.port.begin(), u.port.end(), ::isdigit)) return std::nullopt;
    std::string path = url.substr(path_start);
    if (const size_t hash = path.find('#'); hash != std::string::npos) path.resize(hash);
    if (path.empty() || path.front() != '/') path.insert(0, "/");
    for (char c : path)
        if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return std::nullopt;  // let libav quote it
    u.path = std::move(path);
    return u;
}

void HttpClient::wait(short events, const std::string& url, av::Interrupter& irq, double timeout, const char* what) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout);
    for (;;) {
        if (irq.stop_requested()) throw av::SourceError("stopped");
        pollfd p{fd_, events, 0};
        const int r = ::poll(&p, 1, 100);
        if (r > 0) return;
        if (r < 0 && errno != EINTR) throw av::SourceError(std::string(what) + " " + redact_url(url) + ": " + std::strerror(errno));
        if (std::chrono::steady_clock::now() > deadline)
            throw av::SourceError(std::string(what) + " " + redact_url(url) + timeout_text(timeout));
    }
}

void HttpClient::connect(const Url& u, const std::string& url, av::Interrupter& irq, double timeout) {
    close();
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    const int gai = ::getaddrinfo(u.host.c_str(), u.port.c_str(), &hints, &found);
    if (gai != 0) throw av::SourceError("cannot open " + redact_url(url) + ": " + gai_strerror(gai));
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
        wait(POLLOUT, url, irq, timeout, "cannot open");
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
        peer_ = u.host + ":" + u.port;
        ++connections_;
        return;
    }
    throw av::SourceError("cannot open " + redact_url(url) + ": " + error);
}

size_t HttpClient::read_some(char* out, size_t size, const std::string& url, av::Interrupter& irq, double timeout) {
    for (;;) {
        const ssize_t n = ::recv(fd_, out, size, 0);
        if (n >= 0) return static_cast<size_t>(n);
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            throw av::SourceError("read failed for " + redact_url(url) + ": " + std::strerror(errno));
        wait(POLLIN, url, irq, timeout, "read failed for");
    }
}

bool HttpClient::fill(const std::string& url, av::Interrupter& irq, double timeout) {
    if (in_pos_ > 0 && in_pos_ == in_.size()) {
        in_.clear();
        in_pos_ = 0;
    }
    char buf[16384];
    const size_t n = read_some(buf, sizeof buf, url, irq, timeout);
    if (n == 0) return false;
    in_.append(buf, n);
    return true;
}

int HttpClient::exchange(const Url& u, const std::string& url, const std::map<std::string, std::string>& headers,
                         av::Interrupter& irq, double timeout, std::atomic<int64_t>* bytes_in,
                         const std::optional<std::pair<int64_t, int64_t>>& range, BufferPool* pool,
                         std::string& body, std::string& location, std::string& reason, bool& reused) {
    const std::string peer = u.host + ":" + u.port;
    if (fd_ < 0 || peer_ != peer) connect(u, url, irq, timeout);
    reused = served_ > 0;
    CloseOnError guard{*this};

    std::string req = "GET " + u.path + " HTTP/1.1\r\nHost: " + u.host_header + "\r\n";
    bool agent = false;
    for (const auto& [name, value] : headers) {
        if (lower(name) == "user-agent") agent = true;
        req += name + ": " + value + "\r\n";
    }
    if (!agent) req += "User-Agent: hlsrelay\r\n";
    if (range) req += "Range: bytes=" + std::to_string(range->first) + "-" + std::to_string(range->second - 1) + "\r\n";
    req += "Accept: */*\r\nConnection: keep-alive\r\n\r\n";
    for (size_t sent = 0; sent < req.size();) {
        const ssize_t n = ::send(fd_, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
        if (n > 0) {
            sent += static_cast<size_t>(n);
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            wait(POLLOUT, url, irq, timeout, "cannot open");
        } else {
            throw av::SourceError("cannot open " + redact_url(url) + ": " + std::strerror(errno));
        }
    }

    // Status line and headers.
    size_t end = std::string::npos;
    while ((end = in_.find("\r\n\r\n", in_pos_)) == std::string::npos) {
        if (in_.size() - in_pos_ > kMaxHeader) throw av::SourceError("oversized response header from " + redact_url(url));
        if (!fill(url, irq, timeout)) {
            if (in_.size() == in_pos_) return -1;  // closed before answering: maybe a stale keep-alive
            throw av::SourceError("cannot open " + redact_url(url) + ": connection closed mid-header");
        }
    }
    const std::string head = in_.substr(in_pos_, end - in_pos_);
    in_pos_ = end + 4;
    const size_t line_end = head.find("\r\n");
    const std::string status_line = head.substr(0, line_end);
    int status = 0;
    int minor = 1;
    if (std::sscanf(status_line.c_str(), "HTTP/1.%d %d", &minor, &status) != 2 || status < 100 || status > 999)
        throw av::SourceError("cannot open " + redact_url(url) + ": not an HTTP response");
    const size_t reason_at = status_line.find(' ', status_line.find(' ') + 1);
    reason = reason_at == std::string::npos ? "" : status_line.substr(reason_at + 1);
    int64_t length = -1;
    bool chunked = false, keep_alive = minor >= 1;
    for (size_t pos = line_end; pos != std::string::npos && pos < head.size();) {
        const size_t next = head.find("\r\n", pos + 2);
        const std::string line = head.substr(pos + 2, (next == std::string::npos ? head.size() : next) - pos - 2);
        pos = next;
        const size_t colon = line.find(':');
        if (colon == std::string::npos) continue;
        const std::string name = lower(line.substr(0, colon));
        std::string value = line.substr(colon + 1);
        value.erase(0, value.find_first_not_of(" \t"));
        while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.pop_back();
        if (name == "content-length") {
            char* e = nullptr;
            const long long v = std::strtoll(value.c_str(), &e, 10);
            if (e == value.c_str() || *e || v < 0) throw av::SourceError("bad Content-Length from " + redact_url(url));
            length = v;
        } else if (name == "transfer-encoding") {
            chunked = lower(value).find("chunked") != std::string::npos;
        } else if (name == "connection") {
            const std::string v = lower(value);
            if (v.find("close") != std::string::npos) keep_alive = false;
            if (v.find("keep-alive") != std::string::npos) keep_alive = true;
        } else if (name == "location") {
            location = value;
        }
    }
    if (status >= 300 && status != 200 && status != 206) {
        // Nothing of an error or redirect body is needed: a fresh connection is cheaper than reading it.
        return status;
    }

    auto take = [&](size_t n) {  // consume up to n bytes into body, reading as needed; false at EOF
        while (n > 0) {
            if (in_pos_ < in_.size()) {
                const size_t k = std::min(n, in_.size() - in_pos_);
                body.append(in_, in_pos_, k);
                in_pos_ += k;
                n -= k;
                if (bytes_in) bytes_in->fetch_add(static_cast<int64_t>(k), std::memory_order_relaxed);
                continue;
            }
            // Large reads go straight into the body.
            const size_t old = body.size();
            const size_t want = std::min<size_t>(n, 256 * 1024);
            if (old + want > body.capacity()) body.reserve(std::max(old + want, body.capacity() * 2));
            body.resize(old + want);
            const size_t got = read_some(body.data() + old, want, url, irq, timeout);
            body.resize(old + got);
            if (got == 0) return false;
            n -= got;
            if (bytes_in) bytes_in->fetch_add(static_cast<int64_t>(got), std::memory_order_relaxed);
        }
        return true;
    };
    auto line = [&]() {  // one CRLF-terminated line (chunk sizes, trailers)
        size_t eol;
        while ((eol = in_.find("\r\n", in_pos_)) == std::string::npos) {
            if (in_.size() - in_pos_ > 4096) throw av::SourceError("bad chunk header from " + redact_url(url));
            if (!fill(url, irq, timeout)) throw av::SourceError("truncated response from " + redact_url(url));
        }
        std::string l = in_.substr(in_pos_, eol - in_pos_);
        in_pos_ = eol + 2;
        return l;
    };

    if (chunked) {
        for (;;) {
            const std::string size_line = line();
            char* e = nullptr;
            const unsigned long long size = std::strtoull(size_line.c_str(), &e, 16);
            if (e == size_line.c_str() || size > (1ull << 30)) throw av::SourceError("bad chunk size from " + redact_url(url));
            if (size == 0) {
                while (!line().empty()) {}  // trailers up to the blank line
                break;
            }
            if (!take(static_cast<size_t>(size))) throw av::SourceError("truncated response from " + redact_url(url));
            if (!line().empty()) throw av::SourceError("bad chunk from " + redact_url(url));
        }
    } else if (length >= 0) {
        if (pool && static_cast<size_t>(length) >= BufferPool::kMinSize) {
            body = pool->take(static_cast<size_t>(length));
            body.clear();
        } else {
            body.reserve(static_cast<size_t>(length));
        }
        if (!take(static_cast<size_t>(length)))
            throw av::SourceError("truncated response from " + redact_url(url) + ": " + std::to_string(body.size()) +
                                  " of " + std::to_string(length) + " bytes");
    } else {
        while (take(1 << 20)) {}  // until the server closes
        keep_alive = false;
    }
    guard.armed = false;
    ++served_;
    if (!keep_alive) close();
    return status;
}

std::string HttpClient::get(const std::string& first_url, const std::map<std::string, std::string>& headers,
                            av::Interrupter& irq, double timeout, std::atomic<int64_t>* bytes_in,
                            std::string* final_url, std::optional<std::pair<int64_t, int64_t>> range,
                            BufferPool* pool) {
    std::string url = first_url;
    for (int redirects = 0;; ++redirects) {
        const auto u = parse(url);
        if (!u) throw av::SourceError("cannot open " + redact_url(url) + ": unsupported URL");
        std::string body, location, reason;
        bool reused = false;
        int status = exchange(*u, url, headers, irq, timeout, bytes_in, range, pool, body, location, reason, reused);
        if (status < 0 && reused) {  // the server had closed the idle connection: once more, fresh
            close();
            status = exchange(*u, url, headers, irq, timeout, bytes_in, range, pool, body, location, reason, reused);
        }
        if (status < 0) {
            close();
            throw av::SourceError("cannot open " + redact_url(url) + ": connection closed without a response");
        }
        if (status == 301 || status == 302 || status == 303 || status == 307 || status == 308) {
            close();
            if (location.empty() || redirects >= kMaxRedirects)
                throw av::SourceError("cannot open " + redact_url(url) + ": too many or empty redirects");
            url = m3u8::resolve_url(url, location);
            if (!parse(url)) {  // redirected to https:// or similar: libav takes it from here
                std::string via_libav = av::fetch(url, headers, irq, timeout, bytes_in, final_url, {}, pool);
                return via_libav;
            }
            continue;
        }
        if (status >= 400 || (status >= 300 && status != 304)) {
            close();
            const std::string what = "cannot open " + redact_url(url) + ": Server returned " + std::to_string(status) +
                                     (reason.empty() ? "" : " " + reason);
            throw av::SourceError(what, false, status);
        }
        if (status != 200 && status != 206) {
            close();
            throw av::SourceError("cannot open " + redact_url(url) + ": unexpected HTTP status " + std::to_string(status));
        }
        if (final_url) *final_url = url;
        return body;
    }
}

}  // namespace hlsrelay
