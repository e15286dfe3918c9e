// The loopback live-HLS origin behind the engine tests: a clock-driven playlist over ffmpeg media, with faults.
#include "support/origin.hpp"
#include "support/http_serve.hpp"
#include "support/ts_edit.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <optional>
#include <stdexcept>
#include <string_view>

namespace hlsrelay::test {
namespace {

constexpr auto kReadTimeout = std::chrono::seconds(10);
constexpr double kEps = 1e-6;

using http::send_all;

std::optional<int64_t> parse_segment_name(const std::string& name) {
    constexpr std::string_view prefix = "seg_", suffix = ".ts";
    if (name.size() <= prefix.size() + suffix.size() || name.compare(0, prefix.size(), prefix) != 0 ||
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
        return std::nullopt;
    const std::string digits = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
    if (digits.size() > 18 || !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return std::nullopt;
    return std::stoll(digits);
}

using http::reason;

}  // namespace

LiveOrigin::LiveOrigin(const MediaSet& media, Options options) : opt_(std::move(options)) {
    if (media.segment_files.empty() || media.segment_files.size() != media.durations.size())
        throw std::invalid_argument("LiveOrigin: empty or inconsistent MediaSet");
    if (!(opt_.speed > 0) || opt_.window < 1 || opt_.start_index < 0 ||
        opt_.start_index >= static_cast<int>(media.segment_files.size()) || opt_.start_sequence < 0)
        throw std::invalid_argument("LiveOrigin: bad options");
    if (opt_.path_prefix.empty() || opt_.path_prefix.front() != '/' || opt_.path_prefix.back() == '/')
        throw std::invalid_argument("LiveOrigin: path_prefix must look like \"/live\"");
    // Held in memory so a segment response never touches the disk and never sees a partial file.
    for (const auto& f : media.segment_files) {
        std::ifstream in(f, std::ios::binary);
        if (!in) throw std::runtime_error("LiveOrigin: cannot read " + f);
        std::ostringstream s;
        s << in.rdbuf();
        files_.push_back(s.str());
    }
    for (const auto& alt : opt_.alternate_media) {
        if (alt.segment_files.size() != media.segment_files.size() || alt.durations.size() != media.durations.size())
            throw std::invalid_argument("LiveOrigin: an alternate MediaSet must have as many segments as the main one");
        for (size_t i = 0; i < alt.durations.size(); ++i)
            if (std::fabs(alt.durations[i] - media.durations[i]) > 0.05)
                throw std::invalid_argument("LiveOrigin: an alternate MediaSet's segment durations differ");
        auto& bytes = alternates_.emplace_back();
        for (const auto& f : alt.segment_files) {
            std::ifstream in(f, std::ios::binary);
            if (!in) throw std::runtime_error("LiveOrigin: cannot read " + f);
            std::ostringstream s;
            s << in.rdbuf();
            bytes.push_back(s.str());
        }
    }
    durations_ = media.durations;
    const size_t n = files_.size();
    prefix_.assign(n + 1, 0.0);
    const size_t first = static_cast<size_t>(opt_.start_index);
    for (size_t i = 0; i < n; ++i) prefix_[i + 1] = prefix_[i] + durations_[(first + i) % n];
    total_ = prefix_[n];
    if (!(total_ > 0)) throw std::invalid_argument("LiveOrigin: MediaSet has no duration");
    // Tolerance: ffmpeg writes 1.000000 for a 1 s segment and that must give 1, not 2.
    const double max_d = *std::max_element(durations_.begin(), durations_.end());
    target_ = std::max(1, static_cast<int>(std::ceil(max_d - 1e-3)));

    std::mt19937 rng(20240607);
    garbage_.resize(700);
    for (auto& c : garbage_) c = static_cast<char>(rng() & 0xff);
    garbage_[0] = '\x7f';  // so it can never start with "#EXTM3U"

    seq0_ = opt_.start_sequence;
    next_log_ = seq0_;

    int p[2];
    if (::pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) throw std::runtime_error("LiveOrigin: pipe2 failed");
    wake_rd_ = p[0];
    wake_wr_ = p[1];
}

LiveOrigin::~LiveOrigin() {
    stop();
    ::close(wake_rd_);
    ::close(wake_wr_);
}

int LiveOrigin::preroll() const {
    int p = std::min(opt_.window, 3);
    if (!opt_.loop) p = std::min(p, static_cast<int>(files_.size()));
    return p;
}

// ---- timeline ----

double LiveOrigin::end_time(int64_t seq) const {
    const int64_t n = static_cast<int64_t>(files_.size());
    const int64_t rel = seq - seq0_;
    return static_cast<double>(rel / n) * total_ + prefix_[static_cast<size_t>(rel % n) + 1];
}

int64_t LiveOrigin::clock_last_locked(Clock::time_point now) const {
    const int64_t n = static_cast<int64_t>(files_.size());
    const int64_t pre_last = epoch_.first_seq + preroll() - 1;
    const double elapsed = std::max(0.0, std::chrono::duration<double>(now - epoch_.start).count());
    const double t = elapsed * opt_.speed + end_time(pre_last);
    const double cycles = std::floor(t / total_);
    const double rem = t - cycles * total_;
    // How many files of the current cycle have ended by `rem`.
    const int64_t k = std::upper_bound(prefix_.begin() + 1, prefix_.end(), rem + kEps) - (prefix_.begin() + 1);
    int64_t last = seq0_ + static_cast<int64_t>(cycles) * n + k - 1;
    last = std::max(last, pre_last);
    if (!opt_.loop) last = std::min(last, seq0_ + n - 1);
    return last;
}

int64_t LiveOrigin::visible_last_locked(Clock::time_point now) const {
    return stalled_ ? frozen_last_ : clock_last_locked(now);
}

// Logs the publication time of every segment that became visible since the last call. Called before
// anything that changes the clock (stall, restart), so each logged time is the one the formula gave then.
void LiveOrigin::advance_locked(Clock::time_point now) const {
    if (!started_once_) return;
    const int64_t last = visible_last_locked(now);
    const double pre_end = end_time(epoch_.first_seq + preroll() - 1);
    for (int64_t s = next_log_; s <= last; ++s) {
        const double offset = std::max(0.0, (end_time(s) - pre_end) / opt_.speed);
        auto at = epoch_.start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(offset));
        published_[s] = std::max(at, epoch_.not_before);
    }
    next_log_ = std::max(next_log_, last + 1);
}

void LiveOrigin::new_epoch_locked(Clock::time_point now, bool reset_sequence) {
    if (reset_sequence || !started_once_) {
        if (reset_sequence && started_once_) {
            // The restarted numbering goes on playing what the last listed segment played, untagged.
            const Shape now_playing = shape_locked(visible_last_locked(now));
            shapes_.clear();
            tagged_.clear();
            if (now_playing.set != 0 || now_playing.offset != 0) shapes_[0] = now_playing;
        }
        if (reset_sequence) seq0_ = 0;
        published_.clear();
        next_log_ = seq0_;
        epoch_ = Epoch{now, seq0_, now};
    } else {
        advance_locked(now);
        const int64_t last = visible_last_locked(now);
        epoch_ = Epoch{now, std::max(seq0_, last - preroll() + 1), now};
    }
    stalled_ = false;
    started_once_ = true;
    advance_locked(now);
}

bool LiveOrigin::fetchable_locked(int64_t seq, Clock::time_point now) const {
    auto it = published_.find(seq);
    if (it == published_.end()) return false;
    const int64_t last = visible_last_locked(now);
    if (seq > last) return false;
    const int64_t first = std::max(epoch_.first_seq, last - opt_.window + 1);
    if (seq >= first) return true;
    // It left the playlist when the segment `window` places later appeared, or when the clock restarted
    // without re-listing it, whichever came first.
    auto left = Clock::time_point::max();
    if (auto later = published_.find(seq + opt_.window); later != published_.end()) left = later->second;
    if (seq < epoch_.first_seq) left = std::min(left, epoch_.start);
    return std::chrono::duration<double>(now - left).count() <= opt_.retain_seconds;
}

std::string LiveOrigin::render_locked(Clock::time_point now) const {
    const int64_t n = static_cast<int64_t>(files_.size());
    const int64_t last = visible_last_locked(now);
    const int64_t first = std::max(epoch_.first_seq, last - opt_.window + 1);
    std::string out = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:" + std::to_string(target_) +
                      "\n#EXT-X-MEDIA-SEQUENCE:" + std::to_string(first) + "\n";
    if (opt_.loop) {
        // Discontinuities (at file 0 after the first pass) among the segments before `first`.
        const int64_t rel = first - seq0_;
        const int64_t dseq = rel <= 1 ? 0 : (opt_.start_index + rel - 1) / n;
        const int64_t extra = std::count_if(tagged_.begin(), tagged_.end(), [&](int64_t t) {
            return t < first && !(t > seq0_ && file_index_locked(t) == 0);
        });
        out += "#EXT-X-DISCONTINUITY-SEQUENCE:" + std::to_string(dseq + extra) + "\n";
    } else if (!tagged_.empty()) {
        out += "#EXT-X-DISCONTINUITY-SEQUENCE:" +
               std::to_string(std::count_if(tagged_.begin(), tagged_.end(), [&](int64_t t) { return t < first; })) + "\n";
    }
    char extinf[64];
    for (int64_t s = first; s <= last; ++s) {
        const bool tagged = std::find(tagged_.begin(), tagged_.end(), s) != tagged_.end();
        if ((s > seq0_ && file_index_locked(s) == 0) || tagged) out += "#EXT-X-DISCONTINUITY\n";
        std::snprintf(extinf, sizeof extinf, "#EXTINF:%.6f,\n", durations_[file_index_locked(s)]);
        out += extinf;
        out += "seg_" + std::to_string(s) + ".ts\n";
    }
    if (!opt_.loop && last == seq0_ + n - 1) out += "#EXT-X-ENDLIST\n";
    return out;
}

// ---- lifecycle ----

int LiveOrigin::open_listener(uint16_t port, uint16_t* bound) {
    return http::listen_loopback(port, bound, "LiveOrigin");
}

void LiveOrigin::start() {
    std::unique_lock lock(mu_);
    if (running_) return;
    const uint16_t want = port_;
    lock.unlock();
    uint16_t bound = 0;
    const int fd = open_listener(want, &bound);  // throws before any state changes
    lock.lock();
    listen_fd_ = fd;
    port_ = bound;
    if (fault_ == Fault::Refuse) {  // bound only to learn the port: refuse from the first connect on
        ::close(listen_fd_);
        listen_fd_ = -1;
    }
    if (!started_once_) new_epoch_locked(Clock::now(), false);
    running_ = true;
    stopping_ = false;
    applied_gen_ = fault_gen_;
    accept_thread_ = std::thread([this] { accept_loop(); });
}

void LiveOrigin::stop() {
    std::list<Conn> conns;
    {
        std::lock_guard lock(mu_);
        if (!running_) return;
        stopping_ = true;
        // Unblocks recv/send in every connection thread; each thread still closes its own fd.
        for (auto& c : conns_)
            if (c.fd >= 0) ::shutdown(c.fd, SHUT_RDWR);
    }
    cv_.notify_all();
    wake();
    accept_thread_.join();  // no new connections after this
    {
        std::lock_guard lock(mu_);
        conns.splice(conns.end(), conns_);
    }
    for (auto& c : conns) c.thread.join();
    if (listen_fd_ >= 0) ::close(listen_fd_);
    listen_fd_ = -1;
    char buf[64];
    while (::read(wake_rd_, buf, sizeof buf) > 0) {
    }
    std::lock_guard lock(mu_);
    running_ = false;
    stopping_ = false;
    cv_.notify_all();
}

void LiveOrigin::restart(bool reset_sequence) {
    stop();
    {
        std::lock_guard lock(mu_);
        const auto now = Clock::now();
        advance_locked(now);  // while a stall still holds, so the restart continues from what was listed
        fault_ = Fault::None;
        new_epoch_locked(now, reset_sequence);
    }
    start();
}

bool LiveOrigin::running() const {
    std::lock_guard lock(mu_);
    return running_;
}

void LiveOrigin::wake() {
    const char c = 1;
    [[maybe_unused]] const ssize_t n = ::write(wake_wr_, &c, 1);  // a full pipe already means "wake up"
}

void LiveOrigin::accept_loop() {
    for (;;) {
        bool want_open;
        uint64_t gen;
        uint16_t port;
        {
            std::lock_guard lock(mu_);
            if (stopping_) return;
            want_open = fault_ != Fault::Refuse;
            gen = fault_gen_;
            port = port_;
            // Reap finished connection threads so a long test does not accumulate them.
            for (auto it = conns_.begin(); it != conns_.end();) {
                if (it->done) {
                    it->thread.join();  // it has set done as its last act, so this is immediate
                    it = conns_.erase(it);
                } else {
                    ++it;
                }
            }
        }
        std::string error;
        if (!want_open && listen_fd_ >= 0) {
            ::close(listen_fd_);
            listen_fd_ = -1;
        } else if (want_open && listen_fd_ < 0) {
            try {
                uint16_t bound = 0;
                listen_fd_ = open_listener(port, &bound);
            } catch (const std::exception& e) {
                error = e.what();
            }
        }
        {
            std::lock_guard lock(mu_);
            if (applied_gen_ < gen) {
                applied_gen_ = gen;
                listener_error_ = error;
                cv_.notify_all();
            }
        }

        pollfd fds[2] = {{wake_rd_, POLLIN, 0}, {listen_fd_, POLLIN, 0}};
        const int rc = ::poll(fds, listen_fd_ >= 0 ? 2 : 1, 200);
        if (rc <= 0) continue;
        if (fds[0].revents) {
            char buf[64];
            while (::read(wake_rd_, buf, sizeof buf) > 0) {
            }
        }
        if (listen_fd_ >= 0 && (fds[1].revents & POLLIN)) {
            const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (fd < 0) continue;
            std::lock_guard lock(mu_);
            if (stopping_ || fault_ == Fault::Refuse) {  // stop() already shut the others down
                ::close(fd);
                continue;
            }
            Conn& c = conns_.emplace_back();
            c.fd = fd;
            c.thread = std::thread([this, conn = &c] { serve(conn); });
        }
    }
}

// ---- requests ----

void LiveOrigin::serve(Conn* conn) {
    const int fd = conn->fd;  // stays open until this thread closes it below, under mu_
    auto finish = [&] {
        std::lock_guard lock(mu_);
        ::close(conn->fd);
        conn->fd = -1;
        conn->done = true;
    };

    http::Request request;
    if (!http::read_request(fd, Clock::now() + kReadTimeout, request)) {
        finish();
        return;
    }
    int status = request.status;
    const std::string& method = request.method;
    const std::string& target = request.target;
    const std::string& path = request.path;
    const std::map<std::string, std::string>& headers = request.headers;
    const bool is_playlist = path.size() > 5 && path.compare(path.size() - 5, 5, ".m3u8") == 0;
    const bool is_segment = path.size() > 3 && path.compare(path.size() - 3, 3, ".ts") == 0;

    std::unique_lock lock(mu_);
    if (!method.empty()) {
        requests_.push_back(method + " " + target);
        last_headers_ = headers;
        playlist_requests_ += is_playlist;
        segment_requests_ += is_segment;
    }
    cv_.wait(lock, [&] { return fault_ != Fault::Hang || stopping_; });
    if (stopping_) {
        lock.unlock();
        finish();
        return;
    }

    const auto now = Clock::now();
    advance_locked(now);
    std::string content_type = "text/plain";
    std::string owned_body;
    const std::string* body = &owned_body;
    size_t send_size = std::string::npos;
    const std::string dir = opt_.path_prefix + "/";
    const std::string moved = "/moved" + dir;
    const bool direct = path.rfind(dir, 0) == 0;
    const std::string name = direct                        ? path.substr(dir.size())
                             : path.rfind(moved, 0) == 0 ? path.substr(moved.size())
                                                         : std::string();
    std::string location;
    if (status != 0) {
    } else if (fault_ == Fault::Http500) {
        status = 500;
    } else if (fault_ == Fault::Redirect && direct) {
        status = 302;
        location = "http://127.0.0.1:" + std::to_string(port_) + "/moved" + target;
    } else if (method != "GET" && method != "HEAD") {
        status = 405;
    } else if (name == "master.m3u8" || name == "index.m3u8" || name == "low.m3u8") {
        status = 200;
        content_type = "application/vnd.apple.mpegurl";
        if (fault_ == Fault::Garbage) {
            body = &garbage_;
        } else if (name == "master.m3u8") {
            owned_body = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-STREAM-INF:BANDWIDTH=400000\nlow.m3u8\n"
                         "#EXT-X-STREAM-INF:BANDWIDTH=800000\nindex.m3u8\n";
        } else {
            owned_body = render_locked(now);
        }
    } else if (auto seq = parse_segment_name(name); seq && fault_ != Fault::Segment404 && fetchable_locked(*seq, now)) {
        status = 200;
        content_type = "video/mp2t";
        body = &bytes_locked(*seq);  // immutable: safe to send after unlocking
        if (shape_locked(*seq).offset != 0) {
            owned_body = served_locked(*seq);
            body = &owned_body;
        }
        if (fault_ == Fault::CorruptSegments) {
            owned_body = corrupt_ts(*body, static_cast<uint32_t>(*seq));
            body = &owned_body;
        }
        if (fault_ == Fault::TruncateSegments) send_size = body->size() / 2;
    } else {
        status = 404;
    }
    lock.unlock();

    if (status != 200) owned_body = std::to_string(status) + " " + reason(status) + "\n";
    if (!location.empty()) location = "\r\nLocation: " + location;
    std::string response = "HTTP/1.1 " + std::to_string(status) + " " + reason(status) + location +
                           "\r\nContent-Type: " + content_type + "\r\nContent-Length: " + std::to_string(body->size()) +
                           "\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n";
    if (method != "HEAD") {
        // One send for small bodies keeps the response in a single segment; segments go as they are.
        if (body->size() <= 64 * 1024 && send_size == std::string::npos) {
            response += *body;
        } else if (send_all(fd, response.data(), response.size())) {
            response.clear();
            send_all(fd, body->data(), std::min(send_size, body->size()));
        }
    }
    if (!response.empty()) send_all(fd, response.data(), response.size());
    ::shutdown(fd, SHUT_WR);
    finish();
}

// ---- faults and observation ----

void LiveOrigin::set_fault(Fault f) {
    std::unique_lock lock(mu_);
    const auto now = Clock::now();
    const Fault old = fault_;
    advance_locked(now);
    if (old == Fault::Stall && f != Fault::Stall) {
        stalled_ = false;
        epoch_.not_before = now;  // whatever the clock published meanwhile appears only now
    }
    if (f == Fault::Stall && old != Fault::Stall) {
        frozen_last_ = visible_last_locked(now);
        stalled_ = true;
    }
    fault_ = f;
    if (f == Fault::ResetSequence && started_once_) new_epoch_locked(now, true);
    if ((f == Fault::TimestampJump || f == Fault::TimestampReset) && started_once_) {
        const int64_t from = next_unpublished_locked(now);
        Shape shape = shape_locked(from);
        if (f == Fault::TimestampJump) {
            shape.offset += kTimestampJump;
        } else {
            // The next segment's earliest timestamp becomes 0.1 s.
            const std::string& raw = shape.set == 0 ? files_[file_index_locked(from)]
                                                    : alternates_[shape.set - 1][file_index_locked(from)];
            shape.offset = 9000 - std::max<int64_t>(0, first_timestamp(raw));
        }
        shapes_[from] = shape;
    }
    advance_locked(now);
    cv_.notify_all();  // releases Hang waiters
    if ((old == Fault::Refuse) != (f == Fault::Refuse) && running_) {
        const uint64_t gen = ++fault_gen_;
        lock.unlock();
        wake();
        lock.lock();
        cv_.wait(lock, [&] { return applied_gen_ >= gen || !running_ || stopping_; });
        if (applied_gen_ >= gen && !listener_error_.empty()) {
            const std::string err = listener_error_;
            listener_error_.clear();
            throw std::runtime_error(err);
        }
    }
}

const char* LiveOrigin::name(Fault f) {
    switch (f) {
        case Fault::None: return "none";
        case Fault::Stall: return "stall";
        case Fault::Refuse: return "refuse";
        case Fault::Http500: return "http500";
        case Fault::Segment404: return "segment404";
        case Fault::Hang: return "hang";
        case Fault::Garbage: return "garbage";
        case Fault::TruncateSegments: return "truncate";
        case Fault::ResetSequence: return "reset-sequence";
        case Fault::CorruptSegments: return "corrupt";
        case Fault::TimestampJump: return "timestamp-jump";
        case Fault::TimestampReset: return "timestamp-reset";
        case Fault::Redirect: return "redirect";
    }
    return "unknown";
}

int64_t LiveOrigin::switch_media(std::size_t index, bool tagged) {
    std::lock_guard lock(mu_);
    if (index > alternates_.size()) throw std::out_of_range("LiveOrigin::switch_media: no media " + std::to_string(index));
    const auto now = Clock::now();
    advance_locked(now);
    const int64_t from = started_once_ ? next_unpublished_locked(now) : seq0_;
    Shape shape = shape_locked(from);
    shape.set = index;
    shapes_[from] = shape;
    if (tagged && std::find(tagged_.begin(), tagged_.end(), from) == tagged_.end()) tagged_.push_back(from);
    return from;
}

std::size_t LiveOrigin::media_count() const { return 1 + alternates_.size(); }

LiveOrigin::Shape LiveOrigin::shape_locked(int64_t seq) const {
    auto it = shapes_.upper_bound(seq);
    if (it == shapes_.begin()) return {};
    return std::prev(it)->second;
}

int64_t LiveOrigin::next_unpublished_locked(Clock::time_point now) const { return visible_last_locked(now) + 1; }

const std::string& LiveOrigin::bytes_locked(int64_t seq) const {
    const Shape shape = shape_locked(seq);
    const size_t i = file_index_locked(seq);
    return shape.set == 0 ? files_[i] : alternates_[shape.set - 1][i];
}

std::string LiveOrigin::served_locked(int64_t seq) const {
    const Shape shape = shape_locked(seq);
    return shape.offset == 0 ? bytes_locked(seq) : shift_ts(bytes_locked(seq), shape.offset);
}

std::string LiveOrigin::served_bytes(int64_t seq) const {
    std::lock_guard lock(mu_);
    return served_locked(seq);
}

LiveOrigin::Fault LiveOrigin::fault() const {
    std::lock_guard lock(mu_);
    return fault_;
}

std::optional<LiveOrigin::Clock::time_point> LiveOrigin::published_at(int64_t seq) const {
    std::lock_guard lock(mu_);
    advance_locked(Clock::now());
    auto it = published_.find(seq);
    if (it == published_.end()) return std::nullopt;
    return it->second;
}

int64_t LiveOrigin::newest_sequence() const {
    std::lock_guard lock(mu_);
    if (!started_once_) return -1;
    return visible_last_locked(Clock::now());
}

std::string LiveOrigin::playlist() const {
    std::lock_guard lock(mu_);
    if (!started_once_) return {};
    const auto now = Clock::now();
    advance_locked(now);
    return render_locked(now);
}

std::size_t LiveOrigin::file_index(int64_t seq) const {
    std::lock_guard lock(mu_);  // seq0_ changes on a sequence reset
    return file_index_locked(seq);
}

std::size_t LiveOrigin::file_index_locked(int64_t seq) const {
    const int64_t n = static_cast<int64_t>(files_.size());
    int64_t rel = (seq - seq0_) % n;
    if (rel < 0) rel += n;
    return static_cast<size_t>((opt_.start_index + rel) % n);
}

const std::string& LiveOrigin::segment_bytes(int64_t seq) const {
    std::lock_guard lock(mu_);
    return bytes_locked(seq);
}

int LiveOrigin::target_duration() const { return target_; }

uint16_t LiveOrigin::port() const {
    std::lock_guard lock(mu_);
    return port_;
}

std::string LiveOrigin::base_url() const { return "http://127.0.0.1:" + std::to_string(port()) + opt_.path_prefix; }
std::string LiveOrigin::url() const { return base_url() + "/index.m3u8"; }
std::string LiveOrigin::master_url() const { return base_url() + "/master.m3u8"; }
std::string LiveOrigin::segment_url(int64_t seq) const { return base_url() + "/seg_" + std::to_string(seq) + ".ts"; }

std::size_t LiveOrigin::playlist_requests() const {
    std::lock_guard lock(mu_);
    return playlist_requests_;
}

std::size_t LiveOrigin::segment_requests() const {
    std::lock_guard lock(mu_);
    return segment_requests_;
}

std::vector<std::string> LiveOrigin::requests() const {
    std::lock_guard lock(mu_);
    return requests_;
}

std::map<std::string, std::string> LiveOrigin::last_headers() const {
    std::lock_guard lock(mu_);
    return last_headers_;
}

void LiveOrigin::clear_requests() {
    std::lock_guard lock(mu_);
    requests_.clear();
    playlist_requests_ = segment_requests_ = 0;
    last_headers_.clear();
}

}  // namespace hlsrelay::test
