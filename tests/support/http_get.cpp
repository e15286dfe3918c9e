// The tests' loopback HTTP/1.1 client: blocking calls, with every wait bounded by poll and a deadline.
#include "support/http_get.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>
#include <stdexcept>

namespace hlsrelay::test {
namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void fail(const std::string& what) { throw std::runtime_error("http_get: " + what); }

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

std::string trim(const std::string& s) {
    size_t b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
    return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

struct Socket {
    int fd = -1;
    explicit Socket(int f) : fd(f) {}
    Socket(const Socket&) = delete;
    Socket& operator=(const Socket&) = delete;
    ~Socket() {
        if (fd >= 0) ::close(fd);
    }
};

// Waits for `events` on fd until the deadline; false on timeout.
bool wait_for(int fd, short events, Clock::time_point deadline) {
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        if (left <= 0) return false;
        pollfd p{fd, events, 0};
        const int rc = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 1 << 30)));
        if (rc > 0) return true;
        if (rc < 0 && errno != EINTR) fail(std::string("poll: ") + std::strerror(errno));
    }
}

struct Target {
    std::string host, port, path;
};

Target parse_url(const std::string& url) {
    std::string rest = url;
    if (rest.rfind("http://", 0) == 0) rest = rest.substr(7);
    else if (rest.find("://") != std::string::npos) fail("only http:// is supported: " + url);
    const size_t slash = rest.find('/');
    Target t;
    t.path = slash == std::string::npos ? "/" : rest.substr(slash);
    std::string authority = rest.substr(0, slash);
    if (!authority.empty() && authority[0] == '[') {  // [::1]:port
        const size_t close = authority.find(']');
        if (close == std::string::npos) fail("bad host in " + url);
        t.host = authority.substr(1, close - 1);
        if (close + 1 < authority.size() && authority[close + 1] == ':') t.port = authority.substr(close + 2);
    } else {
        const size_t colon = authority.rfind(':');
        t.host = authority.substr(0, colon);
        if (colon != std::string::npos) t.port = authority.substr(colon + 1);
    }
    if (t.port.empty()) t.port = "80";
    if (t.host.empty()) fail("no host in " + url);
    return t;
}

// Decodes a complete chunked body; nullopt while more bytes are needed.
std::optional<std::string> dechunk(const std::string& raw) {
    std::string out;
    size_t pos = 0;
    for (;;) {
        const size_t eol = raw.find("\r\n", pos);
        if (eol == std::string::npos) return std::nullopt;
        const std::string size_line = raw.substr(pos, eol - pos);
        size_t size = 0;
        try {
            size = std::stoul(size_line, nullptr, 16);  // stops at any ";extension"
        } catch (const std::exception&) {
            fail("bad chunk size '" + size_line + "'");
        }
        pos = eol + 2;
        if (size == 0) {
            // Trailers end with an empty line; "0\r\n\r\n" is the common case.
            const size_t end = raw.find("\r\n", pos);
            if (end == std::string::npos) return std::nullopt;
            if (end == pos) return out;
            const size_t trailer_end = raw.find("\r\n\r\n", pos);
            if (trailer_end == std::string::npos) return std::nullopt;
            return out;
        }
        if (raw.size() < pos + size + 2) return std::nullopt;
        out.append(raw, pos, size);
        pos += size + 2;
    }
}

}  // namespace

HttpResponse http_get(const std::string& url, std::chrono::milliseconds timeout, const std::string& method,
                      const std::map<std::string, std::string>& headers) {
    const auto deadline = Clock::now() + timeout;
    const Target t = parse_url(url);

    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (const int rc = ::getaddrinfo(t.host.c_str(), t.port.c_str(), &hints, &res); rc != 0)
        fail("cannot resolve " + t.host + ": " + ::gai_strerror(rc));
    std::unique_ptr<addrinfo, void (*)(addrinfo*)> res_guard(res, ::freeaddrinfo);

    // Try every address ("localhost" may name ::1 first while the server listens on 127.0.0.1 only).
    std::optional<Socket> s;
    std::string last_error = "no address";
    for (const addrinfo* ai = res; ai && !s; ai = ai->ai_next) {
        Socket c(::socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
        if (c.fd < 0) fail(std::string("socket: ") + std::strerror(errno));
        int err = 0;
        if (::connect(c.fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            err = errno;
            if (err == EINPROGRESS) {
                if (!wait_for(c.fd, POLLOUT, deadline)) fail("timed out connecting to " + t.host + ":" + t.port);
                socklen_t len = sizeof err;
                ::getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
            }
        }
        if (err != 0) {
            last_error = std::strerror(err);
            continue;
        }
        s.emplace(c.fd);
        c.fd = -1;  // ownership moved to s
    }
    if (!s) fail("connect to " + t.host + ":" + t.port + ": " + last_error);

    bool has_host = false, has_connection = false;
    std::string req = method + " " + t.path + " HTTP/1.1\r\n";
    for (const auto& [k, v] : headers) {
        const std::string lk = lower(k);
        has_host |= lk == "host";
        has_connection |= lk == "connection";
        req += k + ": " + v + "\r\n";
    }
    if (!has_host) req += "Host: " + t.host + ":" + t.port + "\r\n";
    if (!has_connection) req += "Connection: close\r\n";
    req += "\r\n";

    for (size_t sent = 0; sent < req.size();) {
        const ssize_t n = ::send(s->fd, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
        if (n > 0) {
            sent += static_cast<size_t>(n);
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!wait_for(s->fd, POLLOUT, deadline)) fail("timed out sending to " + url);
        } else if (n < 0 && errno != EINTR) {
            fail(std::string("send: ") + std::strerror(errno));
        }
    }

    HttpResponse r;
    std::string raw;
    size_t header_end = std::string::npos;
    bool chunked = false, no_body = false;
    std::optional<size_t> content_length;
    bool closed = false;
    char buf[16384];
    for (;;) {
        if (header_end == std::string::npos) {
            header_end = raw.find("\r\n\r\n");
            if (header_end != std::string::npos) {
                const std::string head = raw.substr(0, header_end);
                size_t eol = head.find("\r\n");
                const std::string status_line = head.substr(0, eol);
                if (status_line.rfind("HTTP/1.", 0) != 0 || status_line.size() < 12)
                    fail("bad status line '" + status_line + "'");
                r.status = std::atoi(status_line.c_str() + 9);
                while (eol != std::string::npos) {
                    const size_t start = eol + 2;
                    eol = head.find("\r\n", start);
                    const std::string line = head.substr(start, eol == std::string::npos ? eol : eol - start);
                    const size_t colon = line.find(':');
                    if (colon == std::string::npos) continue;
                    const std::string name = lower(trim(line.substr(0, colon)));
                    const std::string value = trim(line.substr(colon + 1));
                    auto [it, fresh] = r.headers.emplace(name, value);
                    if (!fresh) it->second += ", " + value;
                }
                chunked = lower(r.headers["transfer-encoding"]).find("chunked") != std::string::npos;
                if (r.headers["transfer-encoding"].empty()) r.headers.erase("transfer-encoding");
                if (auto it = r.headers.find("content-length"); it != r.headers.end())
                    content_length = static_cast<size_t>(std::stoull(it->second));
                no_body = method == "HEAD" || r.status == 204 || r.status == 304 || (r.status >= 100 && r.status < 200);
                raw.erase(0, header_end + 4);
            }
        }
        if (header_end != std::string::npos) {
            if (no_body) return r;
            if (chunked) {
                if (auto body = dechunk(raw)) {
                    r.body = std::move(*body);
                    return r;
                }
            } else if (content_length && raw.size() >= *content_length) {
                r.body = raw.substr(0, *content_length);
                return r;
            }
            if (closed) {
                if (chunked) fail("connection closed inside a chunked body from " + url);
                r.body = std::move(raw);  // read-to-close, or a body cut short: the caller judges
                return r;
            }
        } else if (closed) {
            fail("connection closed before a complete response header from " + url);
        }

        const ssize_t n = ::recv(s->fd, buf, sizeof buf, 0);
        if (n > 0) {
            raw.append(buf, static_cast<size_t>(n));
        } else if (n == 0) {
            closed = true;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if (!wait_for(s->fd, POLLIN, deadline)) fail("timed out waiting for the response from " + url);
        } else if (errno == ECONNRESET) {
            closed = true;
        } else if (errno != EINTR) {
            fail(std::string("recv: ") + std::strerror(errno));
        }
    }
}

}  // namespace hlsrelay::test
