#include "origin.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <map>
#include <netinet/in.h>
#include <stdexcept>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <pthread.h>
#include <sys/uio.h>
#include <unistd.h>

namespace hlsrelay::bench {

struct MultiOrigin::Conn {
    int fd = -1;
    std::string in;
    std::string head;                 // response header being sent
    const std::string* body = nullptr;  // response body being sent (owned by the origin or `owned`)
    std::string owned;                // body storage for playlists and errors
    std::size_t sent = 0;             // bytes of head + body sent
    bool close_after = false;
    bool want_out = false;
    int first_of = -1;  // the channel whose first requested segment this response is (first_sent)
    // When the kernel received the first bytes of the request in `in` (SO_TIMESTAMPNS), on the
    // steady clock: the origin answers and times each request as of its arrival, so a request that
    // waited behind others in this one thread neither sees later publications nor makes its
    // client's next reload look early.
    Clock::time_point arrived{};
    ~Conn() {
        if (fd >= 0) ::close(fd);
    }
    std::size_t total() const { return head.size() + (body ? body->size() : 0); }
};

MultiOrigin::MultiOrigin(std::vector<std::string> files, std::vector<double> durations, int channels, int window)
    : MultiOrigin(OriginMedia{{OriginRendition{"", std::move(files), ""}}, std::move(durations), ""}, channels, window) {}

MultiOrigin::MultiOrigin(OriginMedia media, int channels, int window, double spread)
    : media_(std::move(media)), files_(media_.durations.size()), durations_(media_.durations), channels_(channels),
      window_(window),
      first_req_(new std::atomic<int64_t>[static_cast<std::size_t>(channels)]),
      first_asked_(new std::atomic<int64_t>[static_cast<std::size_t>(channels)]),
      first_sent_(new std::atomic<int64_t>[static_cast<std::size_t>(channels)]) {
    if (files_ == 0 || media_.renditions.empty()) throw std::invalid_argument("MultiOrigin: no media");
    for (const auto& r : media_.renditions)
        if (r.files.size() != files_ || (media_.master.empty() != r.dir.empty()) || r.dir.find('/') != std::string::npos)
            throw std::invalid_argument("MultiOrigin: renditions must have one file per duration and a plain dir");
    prefix_.push_back(0);
    for (double d : durations_) {
        prefix_.push_back(prefix_.back() + d);
        target_ = std::max(target_, static_cast<int>(std::lround(d)));
    }
    total_ = prefix_.back();
    const double golden = 0.6180339887498949;
    for (int c = 0; c < channels_; ++c) {
        double whole = 0;
        offset_.push_back(6.0 + std::modf(c * golden, &whole) * total_ * std::clamp(spread, 0.0, 1.0));
    }
    reset_first_requested();
}

MultiOrigin::~MultiOrigin() {
    stop_ = true;
    if (wake_fd_ >= 0) {
        const uint64_t one = 1;
        if (write(wake_fd_, &one, sizeof one) < 0) std::perror("eventfd");
    }
    if (thread_.joinable()) thread_.join();
    for (int fd : {listen_fd_, epoll_fd_, wake_fd_})
        if (fd >= 0) ::close(fd);
}

void MultiOrigin::start() {
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    const int one = 1;
    setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(listen_fd_, 4096) != 0 ||
        getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0)
        throw std::runtime_error(std::string("MultiOrigin: cannot listen: ") + std::strerror(errno));
    port_ = ntohs(a.sin_port);
    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = listen_fd_;
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev);
    ev.data.fd = wake_fd_;
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev);
    t0_ = Clock::now();
    thread_ = std::thread([this] {
        pthread_setname_np(pthread_self(), "bench-origin");
        loop();
    });
}

std::string MultiOrigin::url(int channel) const {
    return "http://127.0.0.1:" + std::to_string(port_) + "/c/" + std::to_string(channel) +
           (media_.master.empty() ? "/index.m3u8" : "/master.m3u8");
}

double MultiOrigin::segment_start(int64_t k) const {
    const auto f = static_cast<int64_t>(files_);
    return static_cast<double>(k / f) * total_ + prefix_[static_cast<std::size_t>(k % f)];
}

double MultiOrigin::segment_end(int64_t k) const { return segment_start(k + 1); }

Clock::time_point MultiOrigin::published_at(int channel, int64_t k) const {
    const double at = segment_end(k) - offset_[static_cast<std::size_t>(channel)];
    return t0_ + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(at));
}

int64_t MultiOrigin::count_published(double s) const {
    if (s < 0) return 0;
    const double loops = std::floor(s / total_);
    const double rem = s - loops * total_;
    // files whose end (prefix_[i + 1]) is <= rem
    const auto done = std::upper_bound(prefix_.begin() + 1, prefix_.end(), rem) - (prefix_.begin() + 1);
    return static_cast<int64_t>(loops) * static_cast<int64_t>(files_) + done;
}

int64_t MultiOrigin::newest(int channel, Clock::time_point now) const {
    return count_published(seconds_between(t0_, now) + offset_[static_cast<std::size_t>(channel)]) - 1;
}

double MultiOrigin::published_position(int channel, Clock::time_point now) const {
    const int64_t n = newest(channel, now);
    return n < 0 ? 0 : segment_end(n);
}

int64_t MultiOrigin::first_requested(int channel) const { return first_req_[static_cast<std::size_t>(channel)].load(); }

std::optional<Clock::time_point> MultiOrigin::first_asked(int channel) const {
    const int64_t t = first_asked_[static_cast<std::size_t>(channel)].load();
    if (t < 0) return std::nullopt;
    return Clock::time_point(Clock::duration(t));
}

std::optional<Clock::time_point> MultiOrigin::first_sent(int channel) const {
    const int64_t t = first_sent_[static_cast<std::size_t>(channel)].load();
    if (t < 0) return std::nullopt;
    return Clock::time_point(Clock::duration(t));
}

void MultiOrigin::reset_first_requested() {
    for (int c = 0; c < channels_; ++c) {
        first_req_[static_cast<std::size_t>(c)] = -1;
        first_asked_[static_cast<std::size_t>(c)] = -1;
        first_sent_[static_cast<std::size_t>(c)] = -1;
    }
}

std::string MultiOrigin::playlist(const OriginRendition& r, int channel, Clock::time_point now) const {
    const int64_t last = newest(channel, now);
    const int64_t first = std::max<int64_t>(0, last - window_ + 1);
    const auto f = static_cast<int64_t>(files_);
    const int64_t disc_seq = first >= 1 ? (first - 1) / f : 0;  // wraps before `first`
    const bool fmp4 = !r.init.empty();
    std::string out = std::string("#EXTM3U\n#EXT-X-VERSION:") + (fmp4 ? "7" : "3") + "\n#EXT-X-TARGETDURATION:" +
                      std::to_string(target_) + "\n#EXT-X-MEDIA-SEQUENCE:" + std::to_string(first) + "\n";
    if (disc_seq > 0) out += "#EXT-X-DISCONTINUITY-SEQUENCE:" + std::to_string(disc_seq) + "\n";
    if (fmp4) out += "#EXT-X-MAP:URI=\"init.mp4\"\n";
    char line[64];
    for (int64_t k = first; k <= last; ++k) {
        if (k > 0 && k % f == 0) out += "#EXT-X-DISCONTINUITY\n";
        std::snprintf(line, sizeof line, "#EXTINF:%.6f,\nseg_%lld.%s\n", durations_[static_cast<std::size_t>(k % f)],
                      static_cast<long long>(k), fmp4 ? "m4s" : "ts");
        out += line;
    }
    return out;
}

// The kernel's receive time of the bytes recvmsg returned (SCM_TIMESTAMPNS, on CLOCK_REALTIME),
// mapped to the steady clock; now if the message carries none.
static Clock::time_point arrival(msghdr& msg) {
    const Clock::time_point steady = Clock::now();
    for (cmsghdr* cm = CMSG_FIRSTHDR(&msg); cm != nullptr; cm = CMSG_NXTHDR(&msg, cm)) {
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_TIMESTAMPNS) continue;
        timespec ts{};
        std::memcpy(&ts, CMSG_DATA(cm), sizeof ts);
        timespec wall{};
        clock_gettime(CLOCK_REALTIME, &wall);
        const auto age = std::chrono::seconds(wall.tv_sec - ts.tv_sec) + std::chrono::nanoseconds(wall.tv_nsec - ts.tv_nsec);
        if (age < Clock::duration::zero() || age > std::chrono::seconds(10)) return steady;  // a clock step: no use
        return steady - std::chrono::duration_cast<Clock::duration>(age);
    }
    return steady;
}

void MultiOrigin::loop() {
    std::map<int, std::unique_ptr<Conn>> conns;
    std::vector<epoll_event> events(256);
    auto drop = [&](int fd) {
        epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
        conns.erase(fd);
    };
    while (!stop_) {
        const int n = epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), 500);
        for (int i = 0; i < n; ++i) {
            const int fd = events[static_cast<std::size_t>(i)].data.fd;
            const uint32_t what = events[static_cast<std::size_t>(i)].events;
            if (fd == wake_fd_) continue;
            if (fd == listen_fd_) {
                for (;;) {
                    const int cfd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (cfd < 0) break;
                    const int on = 1;
                    setsockopt(cfd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
                    auto c = std::make_unique<Conn>();
                    c->fd = cfd;
                    epoll_event ev{};
                    ev.events = EPOLLIN | EPOLLRDHUP;
                    ev.data.fd = cfd;
                    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, cfd, &ev);
                    conns[cfd] = std::move(c);
                }
                continue;
            }
            auto it = conns.find(fd);
            if (it == conns.end()) continue;
            Conn& c = *it->second;
            bool alive = true;
            if (what & (EPOLLERR | EPOLLHUP)) alive = false;
            if (alive && (what & EPOLLOUT)) alive = flush(c);
            if (alive && (what & (EPOLLIN | EPOLLRDHUP))) {
                char buf[16384];
                bool peer_closed = false;
                for (;;) {
                    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(timespec))];
                    iovec iov{buf, sizeof buf};
                    msghdr msg{};
                    msg.msg_iov = &iov;
                    msg.msg_iovlen = 1;
                    msg.msg_control = control;
                    msg.msg_controllen = sizeof control;
                    const ssize_t got = recvmsg(fd, &msg, 0);
                    if (got > 0) {
                        if (c.in.empty()) c.arrived = arrival(msg);
                        c.in.append(buf, static_cast<std::size_t>(got));
                        if (c.in.size() > 65536) {
                            alive = false;
                            break;
                        }
                        continue;
                    }
                    if (got == 0) peer_closed = true;
                    else if (errno != EAGAIN && errno != EWOULDBLOCK) alive = false;
                    break;
                }
                // A peer that closed its side gets no more answers (clients here never half-close).
                if (peer_closed) alive = false;
                if (alive && c.head.empty()) {
                    on_readable(c);
                    if (!c.head.empty()) alive = flush(c);
                }
            }
            if (!alive) drop(fd);
        }
    }
}

// Answers the complete requests in c.in, one at a time (the next once the previous is sent).
void MultiOrigin::on_readable(Conn& c) {
    const std::size_t end = c.in.find("\r\n\r\n");
    if (end == std::string::npos) return;
    const std::string head = c.in.substr(0, end);
    c.in.erase(0, end + 4);
    const std::size_t sp1 = head.find(' ');
    const std::size_t sp2 = head.find(' ', sp1 + 1);
    const std::string path = sp1 == std::string::npos ? "" : head.substr(sp1 + 1, sp2 - sp1 - 1);
    bool close_after = head.compare(0, 9, "HTTP/1.0") == 0;
    std::string lower = head;
    for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (lower.find("\nconnection: close") != std::string::npos) close_after = true;
    if (lower.find(" http/1.0") != std::string::npos && lower.find("\nconnection: keep-alive") == std::string::npos)
        close_after = true;
    respond(c, path, close_after);
}

void MultiOrigin::respond(Conn& c, const std::string& path, bool close_after) {
    ++requests_;
    const Clock::time_point handled = Clock::now();
    // As of the request's arrival (never later than now; a request without a timestamp: now).
    const Clock::time_point now = c.arrived == Clock::time_point{} ? handled : std::min(c.arrived, handled);
    if (const double waited = seconds_between(now, handled); waited > worst_queueing_.load()) worst_queueing_ = waited;
    c.arrived = {};
    int status = 404;
    const char* type = "application/json";
    c.owned.clear();
    c.body = nullptr;
    int channel = -1;
    char rest[64] = {};
    if (std::sscanf(path.c_str(), "/c/%d/%63s", &channel, rest) == 2 && channel >= 0 && channel < channels_) {
        std::string file = rest, dir;
        if (const auto slash = file.find('/'); slash != std::string::npos) {
            dir = file.substr(0, slash);
            file.erase(0, slash + 1);
        }
        const OriginRendition* r = nullptr;
        for (const auto& candidate : media_.renditions)
            if (candidate.dir == dir) r = &candidate;
        long long k = -1;
        char tail[8] = {};
        if (!media_.master.empty() && dir.empty() && file == "master.m3u8") {
            status = 200;
            type = "application/vnd.apple.mpegurl";
            c.body = &media_.master;
        } else if (r == nullptr || file.find('/') != std::string::npos) {
            // 404
        } else if (file == "index.m3u8") {
            note_reload(channel, static_cast<std::size_t>(r - media_.renditions.data()), now);
            status = 200;
            type = "application/vnd.apple.mpegurl";
            c.owned = playlist(*r, channel, now);
            c.body = &c.owned;
        } else if (file == "init.mp4" && !r->init.empty()) {
            status = 200;
            type = "video/mp4";
            c.body = &r->init;
        } else if (std::sscanf(file.c_str(), "seg_%lld.%3s", &k, tail) == 2 &&
                   std::strcmp(tail, r->init.empty() ? "ts" : "m4s") == 0 && k >= 0 && k <= newest(channel, now)) {
            status = 200;
            type = r->init.empty() ? "video/mp2t" : "video/iso.segment";
            c.body = &r->files[static_cast<std::size_t>(k % static_cast<long long>(files_))];
            if (r == &media_.renditions.front()) {
                int64_t expected = -1;
                if (first_req_[static_cast<std::size_t>(channel)].compare_exchange_strong(expected, k)) {
                    first_asked_[static_cast<std::size_t>(channel)] = now.time_since_epoch().count();
                    c.first_of = channel;
                }
            }
        }
    }
    if (status == 404) {
        ++not_found_;
        c.owned = "{\"detail\":\"Not found\"}";
        c.body = &c.owned;
    }
    c.close_after = close_after;
    c.head = std::string("HTTP/1.1 ") + (status == 200 ? "200 OK" : "404 Not Found") + "\r\nContent-Type: " + type +
             "\r\nContent-Length: " + std::to_string(c.body->size()) +
             (close_after ? "\r\nConnection: close\r\n\r\n" : "\r\n\r\n");
    c.sent = 0;
}

void MultiOrigin::note_reload(int channel, std::size_t rendition, Clock::time_point now) {
    const std::size_t key = static_cast<std::size_t>(channel) * media_.renditions.size() + rendition;
    if (reloads_.size() <= key) reloads_.resize(static_cast<std::size_t>(channels_) * media_.renditions.size());
    Reloads& r = reloads_[key];
    ++playlist_loads_;
    const int64_t n = newest(channel, now);
    if (r.newest != -2) {
        const double allowed = r.changed ? target_ : target_ / 2.0;
        const double gap = seconds_between(r.last, now);
        if (gap < allowed - 0.05) {
            ++early_reloads_;
            if (allowed - gap > worst_early_.load()) worst_early_ = allowed - gap;
        }
        if (n > r.newest) segments_seen_ += static_cast<uint64_t>(n - r.newest);
    }
    r.changed = n != r.newest;
    r.newest = n;
    r.last = now;
}

bool MultiOrigin::flush(Conn& c) {
    while (!c.head.empty() && c.sent < c.total()) {
        iovec iov[2];
        int n = 0;
        if (c.sent < c.head.size()) {
            iov[n++] = {const_cast<char*>(c.head.data() + c.sent), c.head.size() - c.sent};
            if (c.body && !c.body->empty()) iov[n++] = {const_cast<char*>(c.body->data()), c.body->size()};
        } else {
            const std::size_t off = c.sent - c.head.size();
            iov[n++] = {const_cast<char*>(c.body->data() + off), c.body->size() - off};
        }
        const ssize_t w = writev(c.fd, iov, n);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                if (!c.want_out) {
                    epoll_event ev{};
                    ev.events = EPOLLIN | EPOLLRDHUP | EPOLLOUT;
                    ev.data.fd = c.fd;
                    epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.fd, &ev);
                    c.want_out = true;
                }
                return true;
            }
            return false;
        }
        c.sent += static_cast<std::size_t>(w);
    }
    // Response complete.
    if (c.first_of >= 0) first_sent_[static_cast<std::size_t>(c.first_of)] = Clock::now().time_since_epoch().count();
    c.first_of = -1;
    c.head.clear();
    c.body = nullptr;
    if (c.want_out) {
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLRDHUP;
        ev.data.fd = c.fd;
        epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.fd, &ev);
        c.want_out = false;
    }
    if (c.close_after) return false;
    // A pipelined request may already be buffered.
    if (c.in.find("\r\n\r\n") != std::string::npos) {
        on_readable(c);
        return flush(c);
    }
    return true;
}

}  // namespace hlsrelay::bench
