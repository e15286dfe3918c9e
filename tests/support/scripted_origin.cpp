// A loopback HLS origin scripted by the test: see scripted_origin.hpp.
#include "support/scripted_origin.hpp"

#include "support/http_serve.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace hlsrelay::test {
namespace {
constexpr std::size_t kWindow = 6;

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("ScriptedOrigin: cannot read " + path);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}
}  // namespace

ScriptedOrigin::ScriptedOrigin(std::chrono::milliseconds interval, std::string prefix)
    : interval_(interval), prefix_(std::move(prefix)) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) throw std::runtime_error("ScriptedOrigin: pipe2 failed");
    wake_rd_ = p[0];
    wake_wr_ = p[1];
}

ScriptedOrigin::~ScriptedOrigin() {
    stop();
    ::close(wake_rd_);
    ::close(wake_wr_);
}

void ScriptedOrigin::add_track(const Track& track) {
    if (!bytes_.empty() && track.files.size() != bytes_.front().size())
        throw std::invalid_argument("ScriptedOrigin: tracks must have the same number of segments");
    if (track.files.size() != track.durations.size()) throw std::invalid_argument("ScriptedOrigin: one duration per file");
    std::vector<std::string> bytes;
    for (const auto& f : track.files) bytes.push_back(read_file(f));
    names_.push_back(track.name);
    bytes_.push_back(std::move(bytes));
    durations_.push_back(track.durations);
}

void ScriptedOrigin::set_file(const std::string& name, std::string body) {
    std::lock_guard lock(mu_);
    files_[name] = std::move(body);
}

void ScriptedOrigin::start(int preroll) {
    if (bytes_.empty()) throw std::logic_error("ScriptedOrigin: no track");
    listen_fd_ = http::listen_loopback(0, &port_, "ScriptedOrigin");
    {
        std::lock_guard lock(mu_);
        for (int i = 0; i < preroll && next_file_ < bytes_.front().size(); ++i, ++listed_) entries_.push_back(next_file_++);
    }
    accept_thread_ = std::thread([this] { accept_loop(); });
    clock_thread_ = std::thread([this] { clock_loop(); });
}

void ScriptedOrigin::stop() {
    {
        std::lock_guard lock(mu_);
        if (stopping_ || listen_fd_ < 0) return;
        stopping_ = true;
    }
    cv_.notify_all();
    const char c = 0;
    [[maybe_unused]] auto n = ::write(wake_wr_, &c, 1);
    if (accept_thread_.joinable()) accept_thread_.join();
    if (clock_thread_.joinable()) clock_thread_.join();
    ::close(listen_fd_);
    listen_fd_ = -1;
}

void ScriptedOrigin::freeze(bool frozen) {
    std::lock_guard lock(mu_);
    frozen_ = frozen;
    cv_.notify_all();
}

void ScriptedOrigin::freeze_track(const std::string& name, bool frozen) {
    std::lock_guard lock(mu_);
    if (frozen) track_frozen_at_.emplace(name, entries_.size());
    else track_frozen_at_.erase(name);
}

void ScriptedOrigin::restart(int64_t sequence, int relist) {
    std::lock_guard lock(mu_);
    const std::size_t keep = std::min(entries_.size(), static_cast<std::size_t>(std::max(relist, 0)));
    std::vector<std::size_t> again(entries_.end() - static_cast<std::ptrdiff_t>(keep), entries_.end());
    entries_ = std::move(again);
    first_sequence_ = sequence;
    listed_ += static_cast<int64_t>(keep);
    cv_.notify_all();
}

std::string ScriptedOrigin::url(const std::string& name) const {
    return "http://127.0.0.1:" + std::to_string(port_) + prefix_ + "/" + name;
}

int64_t ScriptedOrigin::listed() const {
    std::lock_guard lock(mu_);
    return listed_;
}
std::size_t ScriptedOrigin::playlist_requests() const {
    std::lock_guard lock(mu_);
    return playlist_requests_;
}
std::size_t ScriptedOrigin::segment_requests() const {
    std::lock_guard lock(mu_);
    return segment_requests_;
}

void ScriptedOrigin::clock_loop() {
    std::unique_lock lock(mu_);
    auto next = std::chrono::steady_clock::now() + interval_;
    while (!stopping_) {
        cv_.wait_until(lock, next, [&] { return stopping_; });
        if (stopping_) break;
        if (std::chrono::steady_clock::now() < next) continue;
        next += interval_;
        if (frozen_ || next_file_ >= bytes_.front().size()) continue;
        entries_.push_back(next_file_++);
        ++listed_;
    }
}

void ScriptedOrigin::set_down(bool down) {
    std::lock_guard lock(mu_);
    down_ = down;
}

void ScriptedOrigin::date_from(std::chrono::system_clock::time_point t0) {
    std::lock_guard lock(mu_);
    dated_from_ = t0;
}

std::string ScriptedOrigin::render_locked(std::size_t track) const {
    std::size_t count = entries_.size();
    if (auto it = track_frozen_at_.find(names_[track]); it != track_frozen_at_.end()) count = std::min(count, it->second);
    const std::size_t first = count > kWindow ? count - kWindow : 0;
    double target = 1;
    for (double d : durations_[track]) target = std::max(target, std::round(d));
    std::ostringstream out;
    out << "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:" << static_cast<int>(target)
        << "\n#EXT-X-MEDIA-SEQUENCE:" << first_sequence_ + static_cast<int64_t>(first) << "\n";
    for (std::size_t i = first; i < count; ++i) {
        if (dated_from_ != std::chrono::system_clock::time_point{}) {
            double offset = 0;
            for (std::size_t k = 0; k < entries_[i]; ++k) offset += durations_[0][k];
            const auto t = dated_from_ + std::chrono::duration_cast<std::chrono::system_clock::duration>(
                                             std::chrono::duration<double>(offset));
            const std::time_t secs = std::chrono::system_clock::to_time_t(t);
            const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count() % 1000;
            std::tm tm{};
            gmtime_r(&secs, &tm);
            char date[64];
            std::snprintf(date, sizeof date, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                          tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
            out << "#EXT-X-PROGRAM-DATE-TIME:" << date << "\n";
        }
        out << "#EXTINF:" << durations_[track][entries_[i]] << ",\n"
            << names_[track] << "_" << first_sequence_ + static_cast<int64_t>(i) << ".ts\n";
    }
    return out.str();
}

void ScriptedOrigin::accept_loop() {
    for (;;) {
        pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_rd_, POLLIN, 0}};
        if (::poll(fds, 2, -1) < 0) continue;
        if (fds[1].revents) return;
        const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) continue;
        serve(fd);  // one at a time: the answers are in memory and small
        ::close(fd);
    }
}

void ScriptedOrigin::serve(int fd) {
    http::Request req;
    if (!http::read_request(fd, std::chrono::steady_clock::now() + std::chrono::seconds(5), req)) return;
    int status = 404;
    std::string body, type = "text/plain";
    {
        std::lock_guard lock(mu_);
        const std::string name = req.path.rfind(prefix_ + "/", 0) == 0 && !down_ ? req.path.substr(prefix_.size() + 1) : "";
        if (auto it = files_.find(name); it != files_.end()) {
            ++playlist_requests_;
            status = 200;
            body = it->second;
            type = "application/vnd.apple.mpegurl";
        }
        for (std::size_t t = 0; t < names_.size() && status == 404; ++t) {
            if (name == names_[t] + ".m3u8") {
                ++playlist_requests_;
                status = 200;
                body = render_locked(t);
                type = "application/vnd.apple.mpegurl";
            } else if (name.rfind(names_[t] + "_", 0) == 0 && name.size() > 3 && name.substr(name.size() - 3) == ".ts") {
                ++segment_requests_;
                const std::string digits = name.substr(names_[t].size() + 1, name.size() - names_[t].size() - 4);
                if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos) continue;
                const int64_t seq = std::stoll(digits) - first_sequence_;
                if (seq < 0 || seq >= static_cast<int64_t>(entries_.size())) continue;
                status = 200;
                body = bytes_[t][entries_[static_cast<std::size_t>(seq)]];
                type = "video/mp2t";
            }
        }
    }
    const std::string head = "HTTP/1.1 " + std::to_string(status) + " " + http::reason(status) + "\r\nContent-Type: " + type +
                             "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n";
    if (http::send_all(fd, head)) http::send_all(fd, body);
    ::shutdown(fd, SHUT_WR);
}

}  // namespace hlsrelay::test
