// The hostile loopback origin: every trick of an upstream that attacks its client (see the header).
#include "support/hostile_origin.hpp"

#include "support/http_serve.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stdexcept>

namespace hlsrelay::test {
namespace {

constexpr auto kReadTimeout = std::chrono::seconds(10);

std::string dir_of(const std::string& path) { return path.substr(0, path.rfind('/') + 1); }
std::string base_of(const std::string& path) { return path.substr(path.rfind('/') + 1); }

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

std::string base64(const std::string& in) {
    static const char* abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    std::size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
        const unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8) |
                           static_cast<unsigned char>(in[i + 2]);
        for (int k = 18; k >= 0; k -= 6) out += abc[(v >> k) & 63];
    }
    if (i < in.size()) {
        unsigned v = static_cast<unsigned char>(in[i]) << 16;
        if (i + 1 < in.size()) v |= static_cast<unsigned char>(in[i + 1]) << 8;
        out += abc[(v >> 18) & 63];
        out += abc[(v >> 12) & 63];
        out += i + 1 < in.size() ? abc[(v >> 6) & 63] : '=';
        out += '=';
    }
    return out;
}

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("HostileOrigin: cannot read " + path);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// MPEG-TS null packets: a body that looks like TS and carries nothing.
const std::string& null_packets() {
    static const std::string block = [] {
        std::string packet(188, '\xff');
        packet[0] = '\x47';
        packet[1] = '\x1f';
        packet[2] = '\xff';
        packet[3] = '\x10';
        std::string b;
        for (int i = 0; i < 348; ++i) b += packet;  // 65424 bytes
        return b;
    }();
    return block;
}

// Raw deflate of `n` zero bytes ending with `flush`, continuing stream `z`.
std::string deflate_zeros(z_stream& z, std::size_t n, int flush) {
    static const std::string zeros(std::size_t{1} << 20, '\0');
    std::string out;
    char buf[1 << 16];
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(zeros.data()));
    z.avail_in = static_cast<uInt>(n);
    int rc = Z_OK;
    do {
        z.next_out = reinterpret_cast<Bytef*>(buf);
        z.avail_out = sizeof buf;
        rc = deflate(&z, flush);
        out.append(buf, sizeof buf - z.avail_out);
    } while (z.avail_out == 0 || z.avail_in > 0);
    if (flush == Z_FINISH && rc != Z_STREAM_END) throw std::runtime_error("HostileOrigin: deflate did not finish");
    return out;
}

// gzip of `size` zero bytes (> 1 MiB) in about 1/1000 of that, made in milliseconds: after a full
// flush deflate starts afresh, so every further MiB of zeros compresses to the same bytes, which are
// repeated; the gzip trailer (CRC-32, size) is computed for the whole. Memory: the output only.
std::string make_gzip_bomb(int64_t size) {
    constexpr std::size_t kChunk = std::size_t{1} << 20;
    if (size < static_cast<int64_t>(2 * kChunk)) throw std::invalid_argument("HostileOrigin: gzip bomb too small");
    z_stream z{};
    if (deflateInit2(&z, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY) != Z_OK)
        throw std::runtime_error("HostileOrigin: deflateInit2 failed");
    const int64_t chunks = size / static_cast<int64_t>(kChunk);
    const auto rest = static_cast<std::size_t>(size % static_cast<int64_t>(kChunk));
    const std::string first = deflate_zeros(z, kChunk, Z_FULL_FLUSH);
    const std::string again = deflate_zeros(z, kChunk, Z_FULL_FLUSH);
    const std::string check = deflate_zeros(z, kChunk, Z_FULL_FLUSH);
    const std::string last = deflate_zeros(z, rest, Z_FINISH);
    deflateEnd(&z);
    if (again != check) throw std::runtime_error("HostileOrigin: deflate output after a full flush is not repeatable");

    std::string out("\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff", 10);  // gzip, deflate, no name, max compression, unknown OS
    out += first;
    for (int64_t i = 1; i < chunks; ++i) out += again;
    out += last;
    const std::string zeros(kChunk, '\0');
    const uLong chunk_crc = crc32(0, reinterpret_cast<const Bytef*>(zeros.data()), static_cast<uInt>(kChunk));
    uLong crc = crc32(0, Z_NULL, 0);
    for (int64_t i = 0; i < chunks; ++i) crc = crc32_combine(crc, chunk_crc, static_cast<z_off_t>(kChunk));
    crc = crc32_combine(crc, crc32(0, reinterpret_cast<const Bytef*>(zeros.data()), static_cast<uInt>(rest)),
                        static_cast<z_off_t>(rest));
    const auto isize = static_cast<uint32_t>(static_cast<uint64_t>(size) & 0xffffffffu);
    for (uint32_t v : {static_cast<uint32_t>(crc), isize})
        for (int k = 0; k < 4; ++k) out += static_cast<char>((v >> (8 * k)) & 0xff);
    return out;
}

}  // namespace

const char* HostileOrigin::name(Where where) {
    switch (where) {
        case Where::Segment: return "segment";
        case Where::Key: return "key";
        case Where::Map: return "map";
        case Where::Variant: return "variant";
    }
    return "segment";
}

std::string HostileOrigin::injection_path(const std::string& label, Where where) {
    return "/scheme/" + label + "/" + name(where) + ".m3u8";
}

std::string HostileOrigin::xtream_path() { return std::string("/live/") + kUser + "/" + kPass + "/100.m3u8"; }

HostileOrigin::HostileOrigin(std::string marker_file, const MediaSet& media)
    : HostileOrigin(std::move(marker_file), media, Options{}) {}

HostileOrigin::HostileOrigin(std::string marker_file, const MediaSet& media, Options options)
    : marker_(std::move(marker_file)), opt_(options) {
    if (marker_.empty() || marker_.front() != '/') throw std::invalid_argument("HostileOrigin: marker_file must be absolute");
    LiveOrigin::Options live;
    live.path_prefix = "/healthy";
    live_ = std::make_unique<LiveOrigin>(media, live);
    data_uri_ = "data:video/mp2t;base64," + base64(slurp(marker_));
    int p[2];
    if (::pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) throw std::runtime_error("HostileOrigin: pipe2 failed");
    wake_rd_ = p[0];
    wake_wr_ = p[1];
}

HostileOrigin::~HostileOrigin() {
    stop();
    ::close(wake_rd_);
    ::close(wake_wr_);
}

void HostileOrigin::start() {
    std::unique_lock lock(mu_);
    if (running_) return;
    lock.unlock();
    live_->start();
    uint16_t a = 0, b = 0;
    const int fa = http::listen_loopback(0, &a, "HostileOrigin");
    int fb = -1;
    try {
        fb = http::listen_loopback(0, &b, "HostileOrigin");
    } catch (...) {
        ::close(fa);
        throw;
    }
    lock.lock();
    listen_fd_ = fa;
    other_fd_ = fb;
    port_ = a;
    other_port_ = b;
    running_ = true;
    stopping_ = false;
    accept_thread_ = std::thread([this] { accept_loop(); });
}

void HostileOrigin::stop() {
    std::list<Conn> conns;
    {
        std::lock_guard lock(mu_);
        if (!running_) return;
        stopping_ = true;
        for (auto& c : conns_)
            if (c.fd >= 0) ::shutdown(c.fd, SHUT_RDWR);
    }
    cv_.notify_all();
    const char c = 1;
    [[maybe_unused]] const ssize_t n = ::write(wake_wr_, &c, 1);
    accept_thread_.join();
    {
        std::lock_guard lock(mu_);
        conns.splice(conns.end(), conns_);
    }
    for (auto& conn : conns) conn.thread.join();
    ::close(listen_fd_);
    ::close(other_fd_);
    listen_fd_ = other_fd_ = -1;
    char buf[64];
    while (::read(wake_rd_, buf, sizeof buf) > 0) {
    }
    live_->stop();
    std::lock_guard lock(mu_);
    running_ = false;
    stopping_ = false;
}

bool HostileOrigin::stopping() const {
    std::lock_guard lock(mu_);
    return stopping_;
}

void HostileOrigin::accept_loop() {
    for (;;) {
        {
            std::lock_guard lock(mu_);
            if (stopping_) return;
            for (auto it = conns_.begin(); it != conns_.end();) {
                if (it->done) {
                    it->thread.join();
                    it = conns_.erase(it);
                } else {
                    ++it;
                }
            }
        }
        pollfd fds[3] = {{wake_rd_, POLLIN, 0}, {listen_fd_, POLLIN, 0}, {other_fd_, POLLIN, 0}};
        if (::poll(fds, 3, 200) <= 0) continue;
        if (fds[0].revents) {
            char buf[64];
            while (::read(wake_rd_, buf, sizeof buf) > 0) {
            }
        }
        for (int i = 1; i <= 2; ++i) {
            if (!(fds[i].revents & POLLIN)) continue;
            const int fd = ::accept4(fds[i].fd, nullptr, nullptr, SOCK_CLOEXEC);
            if (fd < 0) continue;
            std::lock_guard lock(mu_);
            if (stopping_) {
                ::close(fd);
                continue;
            }
            const bool other = i == 2;
            if (other) ++other_connections_;
            Conn& conn = conns_.emplace_back();
            conn.fd = fd;
            conn.thread = std::thread([this, p = &conn, other] { serve(p, other); });
        }
    }
}

void HostileOrigin::serve(Conn* conn, bool other) {
    const int fd = conn->fd;
    http::Request request;
    if (http::read_request(fd, std::chrono::steady_clock::now() + kReadTimeout, request)) {
        {
            std::lock_guard lock(mu_);
            const std::string line = request.method + " " + request.target;
            if (other) {
                other_requests_.push_back(line);
                other_headers_.push_back(request.headers);
            } else {
                requests_.push_back(line);
                headers_.push_back(request.headers);
            }
        }
        if (request.status != 0)
            send_simple(fd, request.status, "text/plain", "", "", false);
        else if (request.method != "GET" && request.method != "HEAD")
            send_simple(fd, 405, "text/plain", "", "", false);
        else if (other)
            serve_other(fd, request.method, request.path);
        else
            serve_first(fd, request.method, request.path);
        ::shutdown(fd, SHUT_WR);
    }
    std::lock_guard lock(mu_);
    ::close(conn->fd);
    conn->fd = -1;
    conn->done = true;
}

void HostileOrigin::send_simple(int fd, int status, const std::string& content_type, const std::string& body,
                                const std::string& extra_headers, bool head) {
    const std::string text = status == 200 ? body : std::to_string(status) + " " + http::reason(status) + "\n";
    std::string response = "HTTP/1.1 " + std::to_string(status) + " " + http::reason(status) +
                           "\r\nContent-Type: " + content_type + "\r\nContent-Length: " + std::to_string(text.size()) +
                           "\r\n" + extra_headers + "Cache-Control: no-cache\r\nConnection: close\r\n\r\n";
    if (!head) response += text;
    http::send_all(fd, response);
}

std::string HostileOrigin::healthy_playlist() const { return live_->playlist(); }

bool HostileOrigin::healthy_segment(const std::string& name, std::string& bytes) const {
    constexpr std::string_view prefix = "seg_", suffix = ".ts";
    if (name.size() <= prefix.size() + suffix.size() || name.compare(0, prefix.size(), prefix) != 0 ||
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
        return false;
    const std::string digits = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
    if (digits.empty() || digits.size() > 12 || !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return false;
    const int64_t seq = std::stoll(digits);
    const int64_t newest = live_->newest_sequence();
    if (seq > newest || seq < newest - 60) return false;
    bytes = live_->served_bytes(seq);
    return true;
}

const std::string& HostileOrigin::gzip_bomb() const {
    // One bomb per process and size: tests make several origins.
    static std::mutex mu;
    static std::map<int64_t, std::string> bombs;
    std::lock_guard lock(mu);
    auto it = bombs.find(opt_.gzip_bomb_bytes);
    if (it == bombs.end()) it = bombs.emplace(opt_.gzip_bomb_bytes, make_gzip_bomb(opt_.gzip_bomb_bytes)).first;
    return it->second;
}

std::vector<HostileOrigin::Injection> HostileOrigin::injections() const {
    const std::string other = "127.0.0.1:" + std::to_string(other_port());
    return {
        {"file3", "file", "file://" + marker_},
        {"file1", "file", "file:" + marker_},
        {"concat", "concat", "concat:" + marker_ + "|" + marker_},
        {"subfile", "subfile", "subfile,,start,0,end,1300,,:" + marker_},
        {"unix", "unix", "unix:///tmp/x.sock"},
        {"tcp", "tcp", "tcp://" + other},
        {"gopher", "gopher", "gopher://" + other + "/"},
        {"data", "data", data_uri_},
    };
}

std::string HostileOrigin::injection_playlist(const Injection& inj, Where where) const {
    if (where == Where::Variant)
        return "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=320x240\n" + inj.uri + "\n";
    std::string list = healthy_playlist();
    if (where == Where::Segment) {
        // Every segment URI is the injected one.
        std::string out;
        std::istringstream in(list);
        for (std::string line; std::getline(in, line);) out += (!line.empty() && line[0] != '#' ? inj.uri : line) + "\n";
        return out;
    }
    // The healthy segments (relative: served under this directory), behind a key or an init section.
    const std::string tag = where == Where::Key
                                ? "#EXT-X-KEY:METHOD=AES-128,URI=\"" + inj.uri + "\",IV=0x00000000000000000000000000000001\n"
                                : "#EXT-X-MAP:URI=\"" + inj.uri + "\"\n";
    const std::size_t first = list.find("#EXTINF");
    if (first == std::string::npos) return list + tag;
    return list.insert(first, tag);
}

void HostileOrigin::count(const std::string& prefix, int64_t n) {
    std::lock_guard lock(mu_);
    sent_[prefix] += n;
}

void HostileOrigin::stream(int fd, int64_t total, const std::string& prefix, bool chunked) {
    const std::string& block = null_packets();
    char size_line[32];
    std::snprintf(size_line, sizeof size_line, "%zx\r\n", block.size());
    for (int64_t sent = 0; total < 0 || sent < total;) {
        if (stopping()) return;
        const std::size_t n = total < 0 ? block.size() : static_cast<std::size_t>(std::min<int64_t>(total - sent, static_cast<int64_t>(block.size())));
        if (chunked && !http::send_all(fd, size_line, std::strlen(size_line))) return;
        if (!http::send_all(fd, block.data(), n)) return;
        if (chunked && !http::send_all(fd, "\r\n", 2)) return;
        sent += static_cast<int64_t>(n);
        count(prefix, static_cast<int64_t>(n));
    }
}

void HostileOrigin::trickle(int fd, const std::string& body, const std::string& prefix) {
    for (char c : body) {
        std::unique_lock lock(mu_);
        if (cv_.wait_for(lock, opt_.trickle_interval, [&] { return stopping_; })) return;
        lock.unlock();
        if (!http::send_all(fd, &c, 1)) return;
        count(prefix, 1);
    }
}

void HostileOrigin::serve_first(int fd, const std::string& method, const std::string& path) {
    const bool head = method == "HEAD";
    const std::string dir = dir_of(path), base = base_of(path);
    const std::string m3u8 = "application/vnd.apple.mpegurl", ts = "video/mp2t";
    const bool playlist = base.size() > 5 && base.compare(base.size() - 5, 5, ".m3u8") == 0;
    auto header = [&](const std::string& type, int64_t length, const std::string& extra = "") {
        return "HTTP/1.1 200 OK\r\nContent-Type: " + type +
               (length >= 0 ? "\r\nContent-Length: " + std::to_string(length) : std::string()) + "\r\n" + extra +
               "Cache-Control: no-cache\r\nConnection: close\r\n\r\n";
    };
    auto redirect = [&](const std::string& location) {
        send_simple(fd, 302, "text/plain", "", "Location: " + location + "\r\n", head);
    };

    if (path == kRedirectFilePlaylist) return redirect("file://" + marker_);
    if (path == kCrossRedirect) return redirect(other_url("/cross/index.m3u8"));
    if (starts_with(path, "/scheme/") && playlist) {
        const std::string label = dir.substr(std::strlen("/scheme/"), dir.size() - std::strlen("/scheme/") - 1);
        for (const Injection& inj : injections()) {
            if (inj.label != label) continue;
            for (Where w : {Where::Segment, Where::Key, Where::Map, Where::Variant})
                if (base == std::string(name(w)) + ".m3u8") return send_simple(fd, 200, m3u8, injection_playlist(inj, w), "", head);
        }
        return send_simple(fd, 404, "text/plain", "", "", head);
    }
    if (path == kHugePlaylist) {
        const std::string start = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:0\n";
        if (!http::send_all(fd, header(m3u8, opt_.huge_playlist_bytes)) || head) return;
        if (!http::send_all(fd, start)) return;
        // Comment lines, made as they are sent: the playlist never exists in memory.
        std::string line = "#EXT-X-HLSRELAY-PADDING:" + std::string(999, 'x') + "\n";  // 1024 bytes
        std::string block;
        for (int i = 0; i < 64; ++i) block += line;
        int64_t left = opt_.huge_playlist_bytes - static_cast<int64_t>(start.size());
        count(dir, static_cast<int64_t>(start.size()));
        while (left > 0) {
            if (stopping()) return;
            const auto n = static_cast<std::size_t>(std::min<int64_t>(left, static_cast<int64_t>(block.size())));
            if (!http::send_all(fd, block.data(), n)) return;
            left -= static_cast<int64_t>(n);
            count(dir, static_cast<int64_t>(n));
        }
        return;
    }
    if (path == kGzipPlaylist) {
        const std::string& bomb = gzip_bomb();
        if (!http::send_all(fd, header(m3u8, static_cast<int64_t>(bomb.size()), "Content-Encoding: gzip\r\n")) || head) return;
        if (http::send_all(fd, bomb)) count(dir, static_cast<int64_t>(bomb.size()));
        return;
    }
    if (path == kTricklePlaylist) {
        const std::string body = healthy_playlist();
        if (!http::send_all(fd, header(m3u8, static_cast<int64_t>(body.size()))) || head) return;
        return trickle(fd, body, dir);
    }
    if (path == kCrossSegments) {
        std::string out;
        std::istringstream in(healthy_playlist());
        for (std::string line; std::getline(in, line);)
            out += (!line.empty() && line[0] != '#' ? other_url("/cross/" + line) : line) + "\n";
        return send_simple(fd, 200, m3u8, out, "", head);
    }
    if (playlist) {
        // The healthy live playlist, for every directory whose segments are the trick (or healthy).
        static const char* dirs[] = {"/healthy/", "/redirect-file-seg/", "/endless/", "/chunked/", "/gzip/",
                                     "/trickle-segment/"};
        const bool known = std::any_of(std::begin(dirs), std::end(dirs), [&](const char* d) { return dir == d; });
        const bool xtream = path == xtream_path();
        if (known || xtream) return send_simple(fd, 200, m3u8, healthy_playlist(), "", head);
        return send_simple(fd, 404, "text/plain", "", "", head);
    }

    std::string bytes;
    if (!healthy_segment(base, bytes)) return send_simple(fd, 404, "text/plain", "", "", head);
    if (dir == "/redirect-file-seg/") return redirect("file://" + marker_);
    if (dir == "/endless/") {
        if (!http::send_all(fd, header(ts, int64_t{1} << 40)) || head) return;
        return stream(fd, -1, dir, false);
    }
    if (dir == "/chunked/") {
        if (!http::send_all(fd, header(ts, -1, "Transfer-Encoding: chunked\r\n")) || head) return;
        return stream(fd, -1, dir, true);
    }
    if (dir == "/gzip/") {
        const std::string& bomb = gzip_bomb();
        if (!http::send_all(fd, header(ts, static_cast<int64_t>(bomb.size()), "Content-Encoding: gzip\r\n")) || head) return;
        if (http::send_all(fd, bomb)) count(dir, static_cast<int64_t>(bomb.size()));
        return;
    }
    if (dir == "/trickle-segment/") {
        if (!http::send_all(fd, header(ts, static_cast<int64_t>(bytes.size()))) || head) return;
        return trickle(fd, bytes, dir);
    }
    // Healthy segments: /healthy/, the Xtream directory, /scheme/<label>/ (key and map playlists).
    const bool xtream = dir == dir_of(xtream_path());
    if (dir == "/healthy/" || xtream || starts_with(dir, "/scheme/")) {
        if (!http::send_all(fd, header(ts, static_cast<int64_t>(bytes.size()))) || head) return;
        if (http::send_all(fd, bytes)) count(dir, static_cast<int64_t>(bytes.size()));
        return;
    }
    send_simple(fd, 404, "text/plain", "", "", head);
}

void HostileOrigin::serve_other(int fd, const std::string& method, const std::string& path) {
    const bool head = method == "HEAD";
    std::string bytes;
    if (path == "/cross/index.m3u8") return send_simple(fd, 200, "application/vnd.apple.mpegurl", healthy_playlist(), "", head);
    if (dir_of(path) == "/cross/" && healthy_segment(base_of(path), bytes)) return send_simple(fd, 200, "video/mp2t", bytes, "", head);
    send_simple(fd, 404, "text/plain", "", "", head);
}

uint16_t HostileOrigin::port() const {
    std::lock_guard lock(mu_);
    return port_;
}

uint16_t HostileOrigin::other_port() const {
    std::lock_guard lock(mu_);
    return other_port_;
}

std::string HostileOrigin::url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port()) + path; }

std::string HostileOrigin::other_url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(other_port()) + path;
}

std::vector<std::string> HostileOrigin::other_requests() const {
    std::lock_guard lock(mu_);
    return other_requests_;
}

std::vector<std::map<std::string, std::string>> HostileOrigin::other_headers() const {
    std::lock_guard lock(mu_);
    return other_headers_;
}

std::size_t HostileOrigin::other_connections() const {
    std::lock_guard lock(mu_);
    return other_connections_;
}

std::vector<std::string> HostileOrigin::requests() const {
    std::lock_guard lock(mu_);
    return requests_;
}

std::vector<std::map<std::string, std::string>> HostileOrigin::headers() const {
    std::lock_guard lock(mu_);
    return headers_;
}

int64_t HostileOrigin::bytes_sent(const std::string& prefix) const {
    std::lock_guard lock(mu_);
    int64_t total = 0;
    for (const auto& [dir, n] : sent_)
        if (starts_with(dir, prefix)) total += n;
    return total;
}

}  // namespace hlsrelay::test
