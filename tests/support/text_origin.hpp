// A loopback HTTP origin of plain documents a test changes as it goes (a provider's channel list that
// gains, loses and changes channels between fetches, an XMLTV guide): each path answers as last set
// (status, type, body, extra headers; or never, `hang`, until stop()) or 404; requests are counted by
// path, once answered (a hanging one once read). One short-lived thread per connection; every answer
// closes its connection. stop() (and the destructor) closes every socket and joins every thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>

namespace hlsrelay::test {

class TextOrigin {
public:
    struct Answer {
        Answer() = default;
        Answer(int s, std::string type, std::string b) : status(s), content_type(std::move(type)), body(std::move(b)) {}
        int status = 200;
        std::string content_type = "text/plain";
        std::string body;
        std::string headers;  // extra header lines, each ending in \r\n
        bool hang = false;    // read the request, never answer (until stop())
    };

    TextOrigin();  // listening on 127.0.0.1 (ephemeral port)
    ~TextOrigin();
    TextOrigin(const TextOrigin&) = delete;
    TextOrigin& operator=(const TextOrigin&) = delete;

    void set(const std::string& path, Answer answer);
    void set(const std::string& path, std::string body) { set(path, Answer{200, "audio/x-mpegurl", std::move(body)}); }
    // The answer of every path not set (instead of 404): an origin that takes any PUT, or fails them all.
    void set_fallback(Answer answer);
    int requests(const std::string& path) const;  // answered (a hanging one: read)
    // Every request read so far, "PUT /path" -> count (before the answer is sent).
    std::map<std::string, int> received_by_method() const;
    int received(const std::string& path) const;  // read, counted before the answer is sent
    // Waits (up to timeout_seconds) until `path` was requested at least `count` times.
    bool wait_requests(const std::string& path, int count, double timeout_seconds) const;
    uint16_t port() const { return port_; }
    std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port_) + path; }
    void stop();

private:
    struct Conn {
        int fd = -1;
        std::thread thread;
    };
    void accept_loop();
    void serve(int fd);

    int listen_fd_ = -1, wake_rd_ = -1, wake_wr_ = -1;
    uint16_t port_ = 0;
    mutable std::mutex mu_;
    mutable std::condition_variable cv_;
    bool stopping_ = false;
    std::map<std::string, Answer> answers_;
    std::map<std::string, int> requests_, received_, received_by_method_;
    std::optional<Answer> fallback_;
    std::list<Conn> conns_;
    std::thread accept_thread_;
};

}  // namespace hlsrelay::test
