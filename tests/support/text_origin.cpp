// A loopback origin of plain documents a test changes between requests (see text_origin.hpp).
#include "support/text_origin.hpp"

#include "support/http_serve.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>

namespace hlsrelay::test {

TextOrigin::TextOrigin() {
    listen_fd_ = http::listen_loopback(0, &port_, "text origin");
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) {
        ::close(listen_fd_);
        throw std::runtime_error("text origin: pipe2 failed");
    }
    wake_rd_ = p[0];
    wake_wr_ = p[1];
    accept_thread_ = std::thread([this] { accept_loop(); });
}

TextOrigin::~TextOrigin() {
    stop();
    ::close(listen_fd_);
    ::close(wake_rd_);
    ::close(wake_wr_);
}

void TextOrigin::stop() {
    {
        std::lock_guard l(mu_);
        if (stopping_) return;
        stopping_ = true;
        for (Conn& c : conns_) ::shutdown(c.fd, SHUT_RDWR);
    }
    cv_.notify_all();
    const char b = 0;
    (void)!::write(wake_wr_, &b, 1);
    accept_thread_.join();
    for (Conn& c : conns_) c.thread.join();  // no new ones: the accept thread is gone
    for (Conn& c : conns_) ::close(c.fd);
    conns_.clear();
}

void TextOrigin::set(const std::string& path, Answer answer) {
    std::lock_guard l(mu_);
    answers_[path] = std::move(answer);
}

void TextOrigin::set_fallback(Answer answer) {
    std::lock_guard l(mu_);
    fallback_ = std::move(answer);
}

std::map<std::string, int> TextOrigin::received_by_method() const {
    std::lock_guard l(mu_);
    return received_by_method_;
}

int TextOrigin::received(const std::string& path) const {
    std::lock_guard l(mu_);
    const auto it = received_.find(path);
    return it == received_.end() ? 0 : it->second;
}

int TextOrigin::requests(const std::string& path) const {
    std::lock_guard l(mu_);
    const auto it = requests_.find(path);
    return it == requests_.end() ? 0 : it->second;
}

bool TextOrigin::wait_requests(const std::string& path, int count, double timeout_seconds) const {
    std::unique_lock l(mu_);
    return cv_.wait_for(l, std::chrono::duration<double>(timeout_seconds), [&] {
        const auto it = requests_.find(path);
        return it != requests_.end() && it->second >= count;
    });
}

void TextOrigin::accept_loop() {
    for (;;) {
        pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_rd_, POLLIN, 0}};
        if (::poll(fds, 2, -1) < 0) continue;
        if (fds[1].revents) return;
        const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) continue;
        std::lock_guard l(mu_);
        if (stopping_) {
            ::close(fd);
            return;
        }
        Conn& c = conns_.emplace_back();
        c.fd = fd;
        c.thread = std::thread([this, fd] { serve(fd); });
    }
}

void TextOrigin::serve(int fd) {
    http::Request req;
    if (!http::read_request(fd, std::chrono::steady_clock::now() + std::chrono::seconds(10), req)) return;
    Answer a;
    {
        std::lock_guard l(mu_);
        ++received_[req.path];  // before the answer: a client that has it sees the count
        ++received_by_method_[req.method + " " + req.path];
        const auto it = answers_.find(req.path);
        if (it == answers_.end()) a = fallback_ ? *fallback_ : Answer{404, "text/plain", "not found"};
        else a = it->second;
    }
    if (a.hang) {
        std::unique_lock l(mu_);
        ++requests_[req.path];
        cv_.notify_all();
        cv_.wait(l, [&] { return stopping_; });
        return;
    }
    std::string head = "HTTP/1.1 " + std::to_string(a.status) + " " + http::reason(a.status) +
                       "\r\nContent-Type: " + a.content_type + "\r\nContent-Length: " + std::to_string(a.body.size()) +
                       "\r\nConnection: close\r\n" + a.headers + "\r\n";
    if (http::send_all(fd, head) && req.method != "HEAD") http::send_all(fd, a.body);
    ::shutdown(fd, SHUT_WR);
    {
        std::lock_guard l(mu_);
        ++requests_[req.path];  // counted once answered: a waiter sees the fetch as served
    }
    cv_.notify_all();
}

}  // namespace hlsrelay::test
