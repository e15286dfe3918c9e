// Pushing what channels publish to an HTTP origin (EngineSettings::push_url), the way CDNs ingest
// (`ffmpeg -f hls -method PUT`): see PushSettings in include/hlsrelay/settings.hpp.
//
// One Pusher per engine: a pool of kPushThreads threads and the channels' queues (PushQueue). A queue
// is worked by one thread at a time, front first, so a channel's requests reach the origin in the
// order they were queued: a segment before the playlist that names it. The threads take the queues in
// turn, so a slow origin or a channel in backoff never holds up another channel; the worker thread
// only queues (pointer copies under a mutex), never waits for the network.
#pragma once

#include "common/av_util.hpp"

#include <hlsrelay/settings.hpp>
#include <hlsrelay/status.hpp>
#include <hlsrelay/window.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace hlsrelay {

class PushQueue;

class Pusher {
public:
    using Log = std::function<void(LogLevel, const std::string& channel, const std::string& message)>;
    Pusher(PushSettings settings, Log log);
    ~Pusher();  // stops every queue (a request in flight is abandoned) and joins the threads
    Pusher(const Pusher&) = delete;
    Pusher& operator=(const Pusher&) = delete;

    // The queue of channel `id`, pushing to `base_url` ({push_url}/{id}): closed by its owner
    // (PushQueue::close) when the channel stops.
    std::shared_ptr<PushQueue> open(const std::string& base_url, const std::string& id);

    struct Core;

private:
    std::shared_ptr<Core> core_;
};

class PushQueue {
    struct Key {
        explicit Key() = default;
    };

public:
    PushQueue(Key, std::shared_ptr<Pusher::Core> core, std::string base_url, std::string id);
    // `prefix`: a presentation's rendition directory ("v0/"), "" for the channel's own files.
    // An fMP4 segment's init section is queued before it the first time the queue sees it.
    void put_segment(const SegmentPtr& segment, const std::string& prefix = "");
    // Queued last; of the versions of one playlist waiting, the oldest keeps its place and only the
    // newest other one is kept (two at most).
    void put_playlist(const std::string& name, std::shared_ptr<const std::string> text);
    // The segment left the window and its grace: DELETE it (or drop its upload if still pending).
    void remove_segment(const Segment& segment, const std::string& prefix = "");
    // Drops what is pending, abandons a request in flight and waits for it (promptly: the client
    // checks the stop flag around every wait). Nothing is queued after.
    void close();
    PushStatus status() const;

    struct Job {
        enum Kind { Put, Delete } kind = Put;
        std::string name;                          // under the base URL, e.g. "seg_3.ts", "v0/index.m3u8"
        SegmentPtr segment;                        // a segment's bytes
        InitPtr init;                              // an init section's bytes
        std::shared_ptr<const std::string> text;   // a playlist's text
        std::vector<std::string> names;            // a playlist: the files it names (URIs, EXT-X-MAP)
        std::string content_type;
        int attempts = 0;
        std::chrono::steady_clock::time_point not_before{};
        std::string_view body() const;
        bool playlist() const { return text != nullptr; }
        bool media() const { return kind == Put && !playlist(); }  // a segment or init section
    };

private:
    friend class Pusher;
    friend struct Pusher::Core;
    // Caller holds core->mu.
    void enqueue_locked(Job job);
    void trim_locked();
    void mark_missing_locked(const std::string& name);

    std::shared_ptr<Pusher::Core> core_;
    const std::string base_url_;
    const std::string id_;
    av::Interrupter irq_;
    // Guarded by core_->mu.
    std::deque<Job> pending_;
    int64_t pending_bytes_ = 0;
    bool busy_ = false;                 // a thread has its front request in flight
    int64_t inflight_bytes_ = 0;
    bool closed_ = false;
    std::set<std::string> inits_;       // init sections queued or pushed (each goes once)
    // Files that were dropped or failed: a playlist naming one is withheld. Bounded (oldest out);
    // segment names never repeat, so an old entry no playlist can name any more is all that leaves.
    std::set<std::string> missing_;
    std::deque<std::string> missing_order_;
    std::set<std::string> playlists_pushed_;  // at least once: a master may name them
    PushStatus stats_;
    bool failing_ = false;              // logged as failing, not yet recovered
};

}  // namespace hlsrelay
