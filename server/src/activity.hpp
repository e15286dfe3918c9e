// Who watches what: per channel, the client addresses that fetched its HLS recently and when it was
// last requested; drives the status fields "viewers"/"last_request_at" and the on-demand idle stop.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hlsrelay::server {

class Activity {
public:
    using Clock = std::chrono::steady_clock;

    explicit Activity(std::chrono::seconds viewer_window = std::chrono::seconds(30)) : window_(viewer_window) {}

    // A client fetched the channel's HLS (playlist or segment).
    void record_request(const std::string& channel, const std::string& client, Clock::time_point now = Clock::now());
    // The channel was started or is otherwise in use: the idle clock restarts, no viewer is counted.
    void touch(const std::string& channel, Clock::time_point now = Clock::now());

    int viewers(const std::string& channel, Clock::time_point now = Clock::now()) const;
    // ISO 8601 (UTC) of the last HLS request; nullopt if none since the server started.
    std::optional<std::string> last_request_at(const std::string& channel) const;

    // On-demand requests waiting for the channel's first playlist keep it from being stopped as idle.
    void add_waiter(const std::string& channel);
    void remove_waiter(const std::string& channel);

    // Of `running`, the channels neither requested nor touched for `idle` and with no waiter. A
    // running channel never seen before starts its idle clock now instead.
    std::vector<std::string> idle_channels(const std::vector<std::string>& running, Clock::duration idle,
                                           Clock::time_point now = Clock::now());

private:
    struct Entry {
        std::map<std::string, Clock::time_point> clients;  // address -> last request
        std::optional<std::chrono::system_clock::time_point> last_request_wall;
        Clock::time_point last_use{};
        Clock::time_point pruned_at{};  // record_request's last prune
        bool used = false;
        int waiters = 0;
    };
    void prune(Entry& e, Clock::time_point now) const;

    const Clock::duration window_;
    mutable std::mutex mu_;
    mutable std::map<std::string, Entry, std::less<>> entries_;
};

}  // namespace hlsrelay::server
