// Small helpers shared by the benchmarks: process figures from /proc, spawning, a keep-alive HTTP
// client for loopback servers, percentiles.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <sys/types.h>
#include <vector>

namespace hlsrelay::bench {

using Clock = std::chrono::steady_clock;

double seconds_between(Clock::time_point a, Clock::time_point b);

// utime + stime of a process (all its threads) in seconds; 0 if it is gone.
double cpu_seconds(pid_t pid);
// Proportional set size in kB (shared pages split among the processes mapping them); 0 if gone.
long pss_kb(pid_t pid);

// posix_spawnp with stdout/stderr redirected to `log` (appended) unless it is empty; exits on failure.
pid_t spawn(const std::vector<std::string>& args, const std::string& log = {});
// SIGTERM, then SIGKILL after `grace` seconds; reaps it.
void terminate(pid_t pid, double grace = 5.0);

// Raises RLIMIT_NOFILE's soft limit to the hard limit (children inherit it); returns the new limit.
long raise_fd_limit();

// A free TCP port on 127.0.0.1 at the time of the call.
uint16_t free_port();

// Percentile (0..100) by nearest rank of an unsorted sample; NaN if empty.
double percentile(std::vector<double> v, double p);

// A blocking HTTP/1.1 client on one keep-alive connection to 127.0.0.1:port. Reconnects when the
// server closes the connection. Not thread-safe: one per thread.
class HttpClient {
public:
    struct Response {
        int status = 0;  // 0: no response (connection failed, timed out or malformed)
        std::string body;
    };
    explicit HttpClient(uint16_t port, double timeout_seconds = 5.0);
    ~HttpClient();
    HttpClient(const HttpClient&) = delete;
    HttpClient& operator=(const HttpClient&) = delete;

    Response get(const std::string& path);

private:
    bool connect_();
    void close_();
    bool try_get(const std::string& path, Response& out);

    uint16_t port_;
    double timeout_;
    int fd_ = -1;
    std::string buf_;  // bytes received beyond the last response
};

}  // namespace hlsrelay::bench
