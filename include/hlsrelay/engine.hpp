// The public engine: a registry of live channels, one worker per running channel restreaming its
// source into a rolling in-memory HLS window, status snapshots, reads and events.
#pragma once

#include <hlsrelay/channel.hpp>
#include <hlsrelay/registry.hpp>
#include <hlsrelay/status.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace hlsrelay {

enum class ErrorCode { InvalidArgument = 1, NotFound = 2, Io = 3, Internal = 4 };

class Error : public std::runtime_error {
public:
    Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
    ErrorCode code() const { return code_; }

private:
    ErrorCode code_;
};

enum class LogLevel { Debug = 0, Info = 1, Warn = 2, Error = 3, Off = 4 };

inline const char* to_string(LogLevel level) {
    switch (level) {
        case LogLevel::Debug: return "debug";
        case LogLevel::Info: return "info";
        case LogLevel::Warn: return "warn";
        case LogLevel::Error: return "error";
        default: return "off";
    }
}
using LogCallback = std::function<void(LogLevel, const std::string& channel, const std::string& message)>;

enum class EventType { StateChanged, SegmentPublished, Error };

struct Event {
    EventType type = EventType::StateChanged;
    std::string channel;                   // stream id
    ChannelState state = ChannelState::Idle;  // for StateChanged: the new state
    std::string message;                   // for Error: what went wrong (credentials redacted)
    int64_t sequence = -1;                 // for SegmentPublished
    double duration = 0;                   // for SegmentPublished
};
// Called from engine threads (a channel's worker, the engine's housekeeping thread, which reports
// "stalled" and the way back to "running", or the thread calling start()/update_channel()).
// One subscriber's callbacks never overlap. Keep it short: it must not call stop(),
// remove_channel(), update_channel() of a running channel or the Engine destructor (they wait for
// the worker that may be calling it), nor unsubscribe another subscriber whose callback may be
// waiting on this one; it may call start(), status(), read() and unsubscribe itself.
using EventCallback = std::function<void(const Event&)>;

struct EngineSettings {
    HlsSettings hls;                 // defaults for every channel
    std::string hls_dir;             // mirror segments and playlists to {hls_dir}/{id}/; empty: memory only
    double read_timeout = 10.0;      // seconds a blocking source read may take before it counts as stalled
    double stall_timeout = 0;        // HLS: playlist not advancing this long is a stall; 0: 3 target durations
    double reconnect_min = 0.5;      // first reconnect delay, seconds; doubles up to reconnect_max
    double reconnect_max = 30.0;
    FetchLimits limits;              // caps and deadlines of every upstream fetch (channels may override)
    int live_start_segments = 3;     // HLS: start this many segments back from the live edge (RFC 8216 6.3.3)
    LogLevel log_level = LogLevel::Warn;
    LogCallback log;                 // unset: log to stderr at log_level and above
    // Segments are large, short-lived allocations; the C library keeps what they free in its heaps.
    // Every this many seconds the engine hands free heap pages back to the OS (glibc's malloc_trim,
    // process-wide, releases free memory only). 0: never.
    double release_memory_interval = 10.0;
    // A channel's last_error is cleared (kept as previous_error) once the channel has been publishing
    // this many seconds without a new error. Repeated warnings of a channel are logged once per state
    // change and then summarised at most once per this interval too.
    double error_clear_after = 30.0;
};

// What Engine::read() counts in the channel's bytes_out (bytes handed to readers).
enum class Delivery {
    whole,    // the reader gets the whole resource (a GET, a C or Python read): counted in full
    headers,  // only its size and type are used (an HTTP HEAD request): not counted
};

// Bytes read from a channel: a playlist or a segment. `data` is shared, never copied or modified.
struct Resource {
    std::shared_ptr<const std::string> data;
    std::string_view content_type;  // "application/vnd.apple.mpegurl" or "video/mp2t"
    bool immutable = false;         // segments never change; playlists do
};

class Engine {
public:
    explicit Engine(EngineSettings settings = {});
    ~Engine();  // stops every channel; no event callback runs after it returns
    Engine(const Engine&) = delete;
    Engine& operator=(const Engine&) = delete;

    const EngineSettings& settings() const;

    // Registry. Channels are found by stream id or display name.
    LoadReport load(std::string_view text);  // M3U or JSON; adds every valid channel, reports the rest
    LoadReport load_file(const std::string& path);
    ChannelConfig add_channel(ChannelConfig channel);  // returns it with its assigned id
    ChannelConfig update_channel(std::string_view channel, ChannelConfig changes);  // restarts it if running
    void remove_channel(std::string_view channel);     // stops it first
    std::vector<ChannelConfig> channels() const;
    std::optional<ChannelConfig> find_channel(std::string_view channel) const;

    // Control. start() of a running channel keeps it running; stop() of a stopped one is a no-op.
    ChannelConfig start(std::string_view channel);
    void stop(std::string_view channel);
    void stop_all();
    bool running(std::string_view channel) const;

    // Status snapshots.
    ChannelStatus status(std::string_view channel) const;
    std::vector<ChannelStatus> statuses() const;
    HlsSettings settings_for(std::string_view channel) const;

    // Reads from memory: "master.m3u8", "index.m3u8" or a segment name ("seg_<n>.ts"). nullopt when
    // the channel is unknown or stopped or the file does not exist (or left its grace period).
    // Every resource handed out with Delivery::whole adds its size to the channel's bytes_out (a
    // range request served from it counts the whole resource).
    std::optional<Resource> read(std::string_view channel, std::string_view file,
                                 Delivery delivery = Delivery::whole) const;

    // Waits until the channel's first playlists (master.m3u8 and index.m3u8) can be read: true then
    // (at once if they already can), false when timeout_seconds pass first, and false at once for an
    // unknown, stopped or failed channel (also one stopped or failing while waiting). Wakes on the
    // event, it does not poll. Not from an event callback (the worker it waits for may be the one
    // calling). A negative or NaN timeout is InvalidArgument.
    bool wait_ready(std::string_view channel, double timeout_seconds) const;

    // Events.
    using SubscriptionId = uint64_t;
    SubscriptionId subscribe(EventCallback callback);
    void unsubscribe(SubscriptionId id);  // after it returns the callback is not running and never runs again

    struct Impl;

private:
    std::shared_ptr<Impl> impl_;
};

}  // namespace hlsrelay
