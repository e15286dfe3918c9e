// A loopback origin that attacks its client: local-file and socket URIs in playlists, redirects to
// file://, endless, chunked and gzip-bomb bodies, a 1 GiB playlist, 1 byte/s trickles, cross-origin
// redirects and segments, next to a healthy live channel on the same origin. Each trick is its own
// path, so each can be its own channel of one engine.
#pragma once

#include "support/media.hpp"
#include "support/origin.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace hlsrelay::test {

class HostileOrigin {
public:
    // A URI a remote playlist must never make the engine open.
    struct Injection {
        std::string label;   // path component: "file3", "file1", "concat", "subfile", "unix", "tcp", "gopher", "data"
        std::string scheme;  // as the engine's error names it: "file", "concat", ...
        std::string uri;
    };
    // Where a playlist carries the injected URI.
    enum class Where { Segment, Key, Map, Variant };
    static const char* name(Where where);  // "segment", "key", "map", "variant"

    // Credentials of the Xtream-Codes style channel: /live/<kUser>/<kPass>/100.m3u8.
    static constexpr const char* kUser = "xtuser5d41c";
    static constexpr const char* kPass = "xtpassb7e9f";

    struct Options {
        std::chrono::milliseconds trickle_interval{1000};  // between two bytes of a trickled body
        int64_t huge_playlist_bytes = int64_t{1} << 30;     // the lazily streamed playlist's size
        int64_t gzip_bomb_bytes = (int64_t{1} << 30) + 1;   // the bomb's size once decompressed
    };

    // `marker_file`: an absolute path whose bytes must never be served; the injected URIs name it. It
    // is read once, here (for the data: URI), and never opened again by the origin.
    // `media`: the healthy channel's segments (a LiveOrigin plays them; it listens on a port of its own
    // that nothing needs to know).
    HostileOrigin(std::string marker_file, const MediaSet& media);
    HostileOrigin(std::string marker_file, const MediaSet& media, Options options);
    ~HostileOrigin();  // stop()
    HostileOrigin(const HostileOrigin&) = delete;
    HostileOrigin& operator=(const HostileOrigin&) = delete;

    // Binds two ephemeral ports on 127.0.0.1 and serves. Throws std::runtime_error if it cannot.
    void start();
    // Closes every socket and joins every thread, also those mid-trickle or mid-endless-body.
    void stop();

    uint16_t port() const;        // the first origin: every trick and the healthy channel
    uint16_t other_port() const;  // "another origin": serves /cross/..., records every request
    std::string url(const std::string& path) const;        // "http://127.0.0.1:<port>" + path
    std::string other_url(const std::string& path) const;  // "http://127.0.0.1:<other_port>" + path

    // Every injected URI (valid after start(): tcp and gopher name other_port()).
    std::vector<Injection> injections() const;

    // The tricks' paths on the first origin.
    static std::string injection_path(const std::string& label, Where where);  // "/scheme/<label>/<where>.m3u8"
    static constexpr const char* kHealthy = "/healthy/index.m3u8";
    static std::string xtream_path();                                    // "/live/<kUser>/<kPass>/100.m3u8"
    static constexpr const char* kRedirectFilePlaylist = "/redirect-file/index.m3u8";  // 302 to file://<marker>
    static constexpr const char* kRedirectFileSegment = "/redirect-file-seg/index.m3u8";  // segments: 302 to file://
    static constexpr const char* kEndless = "/endless/index.m3u8";    // segments: huge Content-Length, endless bytes
    static constexpr const char* kChunked = "/chunked/index.m3u8";    // segments: endless chunked body
    static constexpr const char* kGzipBomb = "/gzip/index.m3u8";      // segments: gzip bomb
    static constexpr const char* kGzipPlaylist = "/gzip-playlist/index.m3u8";  // the playlist is a gzip bomb
    static constexpr const char* kHugePlaylist = "/huge-playlist/index.m3u8";  // a 1 GiB playlist
    static constexpr const char* kTricklePlaylist = "/trickle-playlist/index.m3u8";  // the playlist at 1 byte/s
    static constexpr const char* kTrickleSegment = "/trickle-segment/index.m3u8";    // segments at 1 byte/s
    static constexpr const char* kCrossRedirect = "/cross-redirect/index.m3u8";  // 302 to other_port
    static constexpr const char* kCrossSegments = "/cross-segments/index.m3u8";  // segments on other_port

    // The healthy live playlist as served now, and whether segment `seq` of it is served.
    std::string healthy_playlist() const;
    const LiveOrigin& live() const { return *live_; }

    // The gzip bomb's compressed bytes (made once per process with zlib, in bounded memory).
    const std::string& gzip_bomb() const;

    // The other origin's request log: "GET /cross/index.m3u8" and the headers (names lowercased) of
    // every request it received, in arrival order; and its connection count (tcp:// and gopher://
    // connect there).
    std::vector<std::string> other_requests() const;
    std::vector<std::map<std::string, std::string>> other_headers() const;
    std::size_t other_connections() const;
    // Every request line the first origin received ("GET /endless/seg_3.ts") and its headers.
    std::vector<std::string> requests() const;
    std::vector<std::map<std::string, std::string>> headers() const;
    // Body bytes sent by the first origin to requests whose path starts with `prefix`.
    int64_t bytes_sent(const std::string& prefix) const;

private:
    struct Conn {
        std::thread thread;
        int fd = -1;
        bool done = false;
    };
    void accept_loop();
    void serve(Conn* conn, bool other);
    void serve_first(int fd, const std::string& method, const std::string& path);
    void serve_other(int fd, const std::string& method, const std::string& path);
    void send_simple(int fd, int status, const std::string& content_type, const std::string& body,
                     const std::string& extra_headers, bool head);
    bool healthy_segment(const std::string& name, std::string& bytes) const;
    std::string injection_playlist(const Injection& inj, Where where) const;
    // Sends `total` bytes made by `next(offset, buf)`; stops when the client or stop() closes the socket.
    void stream(int fd, int64_t total, const std::string& prefix, bool chunked);
    void trickle(int fd, const std::string& body, const std::string& prefix);
    bool stopping() const;
    void count(const std::string& prefix, int64_t n);

    const std::string marker_;
    std::string data_uri_;
    const Options opt_;
    std::unique_ptr<LiveOrigin> live_;

    mutable std::mutex mu_;
    std::condition_variable cv_;
    bool running_ = false, stopping_ = false;
    uint16_t port_ = 0, other_port_ = 0;
    int listen_fd_ = -1, other_fd_ = -1;
    int wake_rd_ = -1, wake_wr_ = -1;
    std::list<Conn> conns_;
    std::thread accept_thread_;
    std::vector<std::string> requests_, other_requests_;
    std::vector<std::map<std::string, std::string>> headers_, other_headers_;
    std::size_t other_connections_ = 0;
    std::map<std::string, int64_t> sent_;  // by trick directory ("/endless/")
};

}  // namespace hlsrelay::test
