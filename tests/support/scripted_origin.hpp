// A loopback HLS origin whose live playlists a test scripts: each track is a list of segment files
// that the origin lists one more of per `interval` of its own clock, all tracks in step (a video
// playlist and its audio renditions), with a window of the newest six. The test can freeze the
// clock (an encoder that died) and restart the numbering with the last segments listed again (an
// origin restarted, serving what it served before). Fixed files (a master playlist) are served as
// set. Segment N of track T is served at <prefix>/T_N.ts. Every response has `Connection: close`.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace hlsrelay::test {

class ScriptedOrigin {
public:
    struct Track {
        std::string name;                // the playlist is <prefix>/<name>.m3u8
        std::vector<std::string> files;  // segment files (absolute paths), read at add_track()
        std::vector<double> durations;   // EXTINF of each
    };

    explicit ScriptedOrigin(std::chrono::milliseconds interval, std::string prefix = "/s");
    ~ScriptedOrigin();  // stop()
    ScriptedOrigin(const ScriptedOrigin&) = delete;
    ScriptedOrigin& operator=(const ScriptedOrigin&) = delete;

    // Before start(): tracks are listed in step, so they must have the same number of segments.
    void add_track(const Track& track);
    void set_file(const std::string& name, std::string body);  // served at <prefix>/<name>

    // Binds 127.0.0.1 (ephemeral port), lists the first `preroll` segments and then one more per interval.
    void start(int preroll = 3);
    void stop();  // closes every socket and joins every thread

    void freeze(bool frozen);  // frozen: nothing new is listed (the playlists are served unchanged)
    // Down: every request is answered 404 (a dead origin); its clock goes on unless frozen too.
    void set_down(bool down);
    // One track's playlist alone stops advancing (an audio rendition whose packager died); unfrozen,
    // it lists everything the others list.
    void freeze_track(const std::string& name, bool frozen);
    // The numbering restarts at `sequence`: the playlists list again the last `relist` segments
    // listed so far (the same bytes), then go on with the following ones.
    void restart(int64_t sequence, int relist);
    // Before start(): every entry gets an EXT-X-PROGRAM-DATE-TIME, `t0` plus the first track's
    // durations before it (the same date for one entry in every track, as a packager writes them).
    void date_from(std::chrono::system_clock::time_point t0);

    std::string url(const std::string& name) const;  // "http://127.0.0.1:PORT<prefix>/<name>"
    int64_t listed() const;                          // segments listed since start (restarts count their relist too)
    std::size_t playlist_requests() const;
    std::size_t segment_requests() const;

private:
    void accept_loop();
    void clock_loop();
    void serve(int fd);
    std::string render_locked(std::size_t track) const;

    const std::chrono::milliseconds interval_;
    const std::string prefix_;
    std::vector<std::string> names_;
    std::vector<std::vector<std::string>> bytes_;
    std::vector<std::vector<double>> durations_;
    std::map<std::string, std::string> files_;
    std::chrono::system_clock::time_point dated_from_{};  // the epoch: undated

    mutable std::mutex mu_;
    std::condition_variable cv_;
    bool stopping_ = false, frozen_ = false, down_ = false;
    int64_t first_sequence_ = 0;           // of the current numbering
    std::vector<std::size_t> entries_;     // file index of each sequence number of the current numbering
    std::map<std::string, std::size_t> track_frozen_at_;  // frozen track -> entries it lists
    std::size_t next_file_ = 0;
    int64_t listed_ = 0;
    std::size_t playlist_requests_ = 0, segment_requests_ = 0;

    uint16_t port_ = 0;
    int listen_fd_ = -1;
    int wake_rd_ = -1, wake_wr_ = -1;
    std::thread accept_thread_, clock_thread_;
};

}  // namespace hlsrelay::test
