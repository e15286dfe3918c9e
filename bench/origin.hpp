// A lean live HLS origin for the channel benchmark: one epoll thread serves N channels over
// keep-alive HTTP/1.1, all playing the same pre-made segment bytes, each channel at its own phase.
//
// Timeline of channel c: its stream clock reads 0 at Z_c = T0 - offset_c (T0: start()), with
// offset_c = 6 s + frac(c * 0.618...) * spread * (length of the media set), spread 1 unless given, so
// at T0 every channel already has at least three segments and the channels are spread over the loop
// (or its first `spread` part) and over segment boundaries.
// Segment k (media sequence k, file k mod F, looped with EXT-X-DISCONTINUITY at every wrap) spans
// stream seconds [start(k), end(k)) and is published -- listed in the playlist and fetchable -- at
// Z_c + end(k): the schedule is deterministic, so published_at() is exact. The playlist lists the
// newest `window` published segments. Published segments stay fetchable for the origin's lifetime.
//
// Paths of a single-rendition source: /c/<c>/index.m3u8 and /c/<c>/seg_<k>.ts (.m4s and init.mp4
// for fMP4). A presentation (OriginMedia::master set) serves /c/<c>/master.m3u8 and each rendition in
// its own directory, /c/<c>/<dir>/index.m3u8, .../seg_<k>.ts|.m4s, .../init.mp4, all on the same
// schedule (an aligned ladder: segment k of every rendition spans the same time). Anything else is 404.
#pragma once

#include "util.hpp"

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace hlsrelay::bench {

struct OriginRendition {
    std::string dir;                 // "" for a single-rendition source (served at the channel's top level)
    std::vector<std::string> files;  // segment bytes in play order, as many as OriginMedia::durations
    std::string init;                // fMP4: the init segment (EXT-X-MAP, init.mp4, .m4s segments); "": MPEG-TS
};

struct OriginMedia {
    std::vector<OriginRendition> renditions;  // the first one's segment requests set first_requested()
    std::vector<double> durations;            // EXTINF seconds, shared by every rendition
    std::string master;                       // multivariant playlist (URIs "<dir>/index.m3u8"); "": one rendition
};

class MultiOrigin {
public:
    // files: the segment bytes in play order; durations: their EXTINF seconds.
    MultiOrigin(std::vector<std::string> files, std::vector<double> durations, int channels, int window = 6);
    // spread: the fraction of the media set over which the channels' starting points are spread; a
    // long set with a small spread keeps every channel away from the loop's wrap for a while.
    MultiOrigin(OriginMedia media, int channels, int window = 6, double spread = 1.0);
    ~MultiOrigin();  // stops the thread, closes every socket
    MultiOrigin(const MultiOrigin&) = delete;
    MultiOrigin& operator=(const MultiOrigin&) = delete;

    void start();  // binds 127.0.0.1 on an ephemeral port; T0 = now
    uint16_t port() const { return port_; }
    std::string url(int channel) const;  // the master playlist of a presentation, else the media playlist

    double segment_start(int64_t k) const;  // stream seconds
    double segment_end(int64_t k) const;
    Clock::time_point published_at(int channel, int64_t k) const;
    int64_t newest(int channel, Clock::time_point now) const;  // -1 if none yet
    // Stream position (seconds) of the newest published segment's end at `now`.
    double published_position(int channel, Clock::time_point now) const;

    // The first segment a client requested of `channel` since the last reset (-1: none).
    int64_t first_requested(int channel) const;
    // When that request reached the origin (the kernel's receive time), and when the origin had
    // written the last byte of its answer into the socket; nullopt before either.
    std::optional<Clock::time_point> first_asked(int channel) const;
    std::optional<Clock::time_point> first_sent(int channel) const;
    void reset_first_requested();

    uint64_t requests() const { return requests_.load(); }
    // Media playlist loads, and those sooner than RFC 8216 6.3.4 allows a client (one target
    // duration after the start of a load that brought a new segment, half of it after one that did
    // not; 50 ms of tolerance for the request's way). Each channel's rendition is one client. Loads
    // are timed, and answered, as of the kernel's receive time of the request (SO_TIMESTAMPNS), so
    // the wait for this one thread makes no request look early.
    uint64_t playlist_loads() const { return playlist_loads_.load(); }
    uint64_t early_reloads() const { return early_reloads_.load(); }
    // How much sooner than allowed the earliest of those came (seconds; 0: none).
    double worst_early() const { return worst_early_.load(); }
    // The longest a request waited in the kernel for this one thread to answer it (seconds).
    double worst_queueing() const { return worst_queueing_.load(); }
    // New segments the clients' loads found (after each client's first load).
    uint64_t segments_published() const { return segments_seen_.load(); }
    uint64_t not_found() const { return not_found_.load(); }

private:
    struct Conn;
    void loop();
    void on_readable(Conn& c);
    bool flush(Conn& c);  // false: the connection is finished (closed or error)
    void respond(Conn& c, const std::string& path, bool close_after);
    void note_reload(int channel, std::size_t rendition, Clock::time_point now);
    std::string playlist(const OriginRendition& r, int channel, Clock::time_point now) const;
    int64_t count_published(double stream_seconds) const;

    OriginMedia media_;
    std::size_t files_ = 0;  // segment files per rendition
    std::vector<double> durations_;
    std::vector<double> prefix_;  // prefix_[i]: seconds of the first i files
    double total_ = 0;
    int target_ = 2;
    int channels_;
    int window_;
    std::vector<double> offset_;
    std::unique_ptr<std::atomic<int64_t>[]> first_req_;
    // first_asked() / first_sent() per channel: Clock ticks since its epoch, -1 while unknown.
    std::unique_ptr<std::atomic<int64_t>[]> first_asked_, first_sent_;
    std::atomic<uint64_t> requests_{0}, not_found_{0}, playlist_loads_{0}, early_reloads_{0}, segments_seen_{0};
    std::atomic<double> worst_early_{0}, worst_queueing_{0};
    struct Reloads {  // of one channel's rendition, touched by the origin's thread only
        Clock::time_point last{};
        int64_t newest = -2;
        bool changed = true;
    };
    std::vector<Reloads> reloads_;  // channel * renditions + rendition

    Clock::time_point t0_{};
    uint16_t port_ = 0;
    int listen_fd_ = -1, epoll_fd_ = -1, wake_fd_ = -1;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

}  // namespace hlsrelay::bench
