// A loopback HTTP origin that plays a MediaSet as a live HLS channel and misbehaves on cue.
#pragma once

#include "support/media.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace hlsrelay::test {

// Outside LiveOrigin only so that `Options{}` can be a default argument of its constructor.
struct LiveOriginOptions {
    double speed = 1.0;                // 1.0 = real time; 4.0 publishes a 1 s segment every 0.25 s
    int window = 6;                    // segments listed in the live playlist
    int start_index = 0;               // MediaSet file that the first media sequence number plays
    bool loop = true;                  // after the last file play the first again, behind a discontinuity
    std::string path_prefix = "/live";
    int64_t start_sequence = 0;        // media sequence number of the first segment
    double retain_seconds = 60.0;      // a segment that left the playlist stays fetchable this long
    // Further media the channel can switch to mid-stream (switch_media(i) plays alternate_media[i-1]):
    // another resolution or codec. Each must have as many segments as the main set, of the same
    // durations (within 50 ms), so the live timeline does not change.
    std::vector<MediaSet> alternate_media{};
};

// Timeline: the first min(window, 3) segments are listed from start() on (a channel already in
// progress); every later segment is published when it "finished recording", i.e. after its duration
// (divided by speed) has passed since the previous one. Media sequence numbers grow forever; with loop,
// the repeated first file carries EXT-X-DISCONTINUITY and EXT-X-DISCONTINUITY-SEQUENCE follows RFC 8216.
// With loop=false the playlist gets EXT-X-ENDLIST once the last file is published.
//
// Paths under path_prefix: index.m3u8 and low.m3u8 (the same live playlist), master.m3u8 (variants
// low.m3u8 at BANDWIDTH=400000 listed first, then index.m3u8 at 800000) and seg_<mediaseq>.ts.
// Every response has `Connection: close`. All members are thread-safe.
class LiveOrigin {
public:
    using Options = LiveOriginOptions;
    using Clock = std::chrono::steady_clock;

    enum class Fault {
        None,
        Stall,             // the playlist stops advancing; on clearing, it jumps to the live edge
        Refuse,            // listening socket closed: connections refused; clearing reopens the same port
        Http500,           // every request gets 500
        Segment404,        // segments 404, playlists fine
        Hang,              // requests are read but not answered until the fault is cleared (then answered) or stop()
        Garbage,           // playlists (media and master) are 200 with random non-HLS bytes
        TruncateSegments,  // segment responses announce the full Content-Length, send half, then close
        ResetSequence,     // a one-shot event when set: sequence numbers restart at 0 with a fresh clock (as
                           // after an origin restart); clearing it changes nothing
        CorruptSegments,   // segments are served damaged (corrupt_ts in ts_edit.hpp): XOR-ed payloads, a packet
                           // of random bytes; PES headers intact. Clearing it serves them intact again
        TimestampJump,     // one-shot: from the next segment on, every PTS/DTS/PCR is 1 hour later, with no
                           // EXT-X-DISCONTINUITY (a broken encoder clock); clearing it changes nothing
        TimestampReset,    // one-shot: from the next segment on, timestamps restart near 0, untagged
        Redirect,          // every request under path_prefix gets 302 to /moved<path>, which serves the same
                           // (/moved<path> is served whatever the fault)
    };
    static const char* name(Fault fault);
    static constexpr int64_t kTimestampJump = int64_t{3600} * 90000;  // TimestampJump's step, 90 kHz ticks

    explicit LiveOrigin(const MediaSet& media, Options options = {});
    ~LiveOrigin();  // stop()
    LiveOrigin(const LiveOrigin&) = delete;
    LiveOrigin& operator=(const LiveOrigin&) = delete;

    // Binds 127.0.0.1 (an ephemeral port the first time, the same port afterwards) and serves. The live
    // clock starts at the first start(); a later start() after stop() resumes it as if the origin had
    // merely been unreachable. Throws std::runtime_error if the port cannot be bound. No-op if running.
    void start();
    // Closes every socket and joins every thread; returns promptly even with clients mid-request.
    void stop();
    // stop() + start() on the same port with a fresh live clock and no fault. Continuing: the new clock
    // re-lists the last min(window, 3) segments and then publishes the following ones in real time.
    // reset_sequence: as Fault::ResetSequence (sequence numbers restart at 0, published_at() forgets).
    void restart(bool reset_sequence = false);
    bool running() const;

    uint16_t port() const;                    // 0 before the first start()
    std::string base_url() const;             // "http://127.0.0.1:PORT/live"
    std::string url() const;                  // ".../live/index.m3u8"
    std::string master_url() const;           // ".../live/master.m3u8"
    std::string segment_url(int64_t mediaseq) const;

    void set_fault(Fault fault);  // takes effect before it returns (Refuse: the socket is closed/reopened)
    Fault fault() const;
    // One-shot: from the next segment on, play media `index` (0: the main set, i: alternate_media[i-1]),
    // with EXT-X-DISCONTINUITY before that segment if `tagged` (RFC 8216 requires the tag when the
    // encoding changes; untagged is the misbehaving origin). Timestamps carry on from the same clock.
    // Returns the first sequence number that plays it. Throws std::out_of_range for a bad index.
    int64_t switch_media(std::size_t index, bool tagged);
    std::size_t media_count() const;  // 1 + alternate_media.size()

    // When `mediaseq` first appeared in the playlist; nullopt if it has not (yet) been published.
    std::optional<Clock::time_point> published_at(int64_t mediaseq) const;
    int64_t newest_sequence() const;  // newest listed media sequence number; -1 before start()
    std::string playlist() const;     // the media playlist as it would be served now (ignoring faults)
    std::size_t file_index(int64_t mediaseq) const;  // which MediaSet file a sequence number serves
    const std::string& segment_bytes(int64_t mediaseq) const;  // its media file (before timestamp shifts)
    std::string served_bytes(int64_t mediaseq) const;  // what a healthy response carries now: shifted too
    int target_duration() const;

    // Request log: every request received, counted when its header is read (before any fault applies).
    std::size_t playlist_requests() const;  // *.m3u8, master included
    std::size_t segment_requests() const;   // *.ts
    std::vector<std::string> requests() const;  // "GET /live/index.m3u8", in arrival order
    std::map<std::string, std::string> last_headers() const;  // of the last request; names lowercased
    void clear_requests();

private:
    struct Conn {
        std::thread thread;
        int fd = -1;
        bool done = false;
    };
    struct Epoch {
        Clock::time_point start{};
        int64_t first_seq = 0;          // listed from the epoch's start
        Clock::time_point not_before{}; // segments that appear later were not visible before this
    };

    void accept_loop();
    void serve(Conn* conn);
    void wake();
    int open_listener(uint16_t port, uint16_t* bound);  // returns the fd; throws on failure

    // Timeline helpers; the *_locked ones need mu_.
    double end_time(int64_t mediaseq) const;  // stream seconds from seq0_ to the end of mediaseq
    int64_t clock_last_locked(Clock::time_point now) const;
    int64_t visible_last_locked(Clock::time_point now) const;
    void advance_locked(Clock::time_point now) const;
    void new_epoch_locked(Clock::time_point now, bool reset_sequence);
    std::string render_locked(Clock::time_point now) const;
    bool fetchable_locked(int64_t mediaseq, Clock::time_point now) const;
    std::size_t file_index_locked(int64_t mediaseq) const;
    int preroll() const;  // segments listed at an epoch's start

    // What a sequence number plays from a point on: which media set and the timestamp offset.
    struct Shape {
        std::size_t set = 0;
        int64_t offset = 0;  // 90 kHz ticks added to every timestamp, modulo 2^33
    };
    Shape shape_locked(int64_t mediaseq) const;
    int64_t next_unpublished_locked(Clock::time_point now) const;
    const std::string& bytes_locked(int64_t mediaseq) const;
    std::string served_locked(int64_t mediaseq) const;

    const Options opt_;
    std::vector<std::string> files_;   // segment bytes, immutable after construction
    std::vector<std::vector<std::string>> alternates_;  // alternate_media's bytes, immutable
    std::vector<double> durations_;
    std::vector<double> prefix_;       // prefix_[i] = seconds of the first i files in play order
    double total_ = 0;
    int target_ = 1;
    std::string garbage_;

    mutable std::mutex mu_;
    std::condition_variable cv_;
    Fault fault_ = Fault::None;
    bool started_once_ = false, running_ = false, stopping_ = false;
    bool stalled_ = false;
    int64_t frozen_last_ = 0;
    int64_t seq0_ = 0;  // sequence number of the numbering's first segment (file start_index)
    Epoch epoch_;
    mutable std::map<int64_t, Clock::time_point> published_;
    mutable int64_t next_log_ = 0;
    uint64_t fault_gen_ = 0, applied_gen_ = 0;
    std::string listener_error_;
    std::list<Conn> conns_;
    std::vector<std::string> requests_;
    std::size_t playlist_requests_ = 0, segment_requests_ = 0;
    std::map<std::string, std::string> last_headers_;
    std::map<int64_t, Shape> shapes_;  // first sequence number -> shape from there on
    std::vector<int64_t> tagged_;      // sequence numbers with an extra EXT-X-DISCONTINUITY (media switches)

    uint16_t port_ = 0;
    int listen_fd_ = -1;  // owned by the accept thread while running
    int wake_rd_ = -1, wake_wr_ = -1;
    std::thread accept_thread_;
};

}  // namespace hlsrelay::test
