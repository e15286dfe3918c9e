// LL-HLS through the engine: a continuous source (a file at its native rate, looping) cut into
// parts, in TS and in fMP4; the parts' bytes are their segment's, the playlist lists them as the
// spec asks, blocking reloads wait for what they name and api::hls_playlist reads the directives;
// an LL-HLS source (one engine's output, served over loopback HTTP) is followed part by part.
#include "engine_fixture.hpp"
#include "support/http_serve.hpp"

#include <hlsrelay/api.hpp>
#include <hlsrelay/playlist.hpp>

#include <atomic>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include <sys/socket.h>
#include <unistd.h>

using namespace hlsrelay;
using namespace hlsrelay::test;

namespace {
struct ListedPart {
    std::string uri;
    double duration = 0;
    bool independent = false;
};
struct ListedSegment {
    int64_t sequence = 0;
    double duration = 0;
    std::string uri;
    std::vector<ListedPart> parts;
};
struct LlPlaylist {
    double part_target = 0, part_hold_back = 0;
    int target = 0;
    std::vector<ListedSegment> segments;
    std::vector<ListedPart> open;  // the segment being cut
    std::string hint;
};

std::string attribute(const std::string& line, const std::string& name) {
    const auto at = line.find(name + "=");
    if (at == std::string::npos) return {};
    std::string v = line.substr(at + name.size() + 1);
    if (!v.empty() && v[0] == '"') return v.substr(1, v.find('"', 1) - 1);
    return v.substr(0, v.find(','));
}

LlPlaylist parse(const std::string& text) {
    LlPlaylist p;
    std::istringstream in(text);
    int64_t seq = 0;
    double extinf = 0;
    std::vector<ListedPart> parts;
    for (std::string l; std::getline(in, l);) {
        if (l.rfind("#EXT-X-MEDIA-SEQUENCE:", 0) == 0) seq = std::stoll(l.substr(22));
        else if (l.rfind("#EXT-X-TARGETDURATION:", 0) == 0) p.target = std::stoi(l.substr(22));
        else if (l.rfind("#EXT-X-PART-INF:", 0) == 0) p.part_target = std::stod(attribute(l, "PART-TARGET"));
        else if (l.rfind("#EXT-X-SERVER-CONTROL:", 0) == 0) p.part_hold_back = std::stod(attribute(l, "PART-HOLD-BACK"));
        else if (l.rfind("#EXT-X-PART:", 0) == 0)
            parts.push_back({attribute(l, "URI"), std::stod(attribute(l, "DURATION")), attribute(l, "INDEPENDENT") == "YES"});
        else if (l.rfind("#EXT-X-PRELOAD-HINT:", 0) == 0) p.hint = attribute(l, "URI");
        else if (l.rfind("#EXTINF:", 0) == 0) extinf = std::stod(l.substr(8));
        else if (!l.empty() && l[0] != '#') {
            p.segments.push_back({seq++, extinf, l, std::move(parts)});
            parts.clear();
        }
    }
    p.open = std::move(parts);
    return p;
}

std::string bytes_of(const Engine& e, const std::string& id, const std::string& file) {
    const auto r = e.read(id, file);
    return r ? std::string(r->bytes()) : std::string();
}

// The segments of `p` that list their parts: each part within PART-TARGET (`floor`: and, unless it
// is independent or its segment's last, at least kMinPartShare of it), the first one independent,
// the parts' bytes joined the segment's. Returns how many segments listed parts.
int check_listed_parts(const Engine& engine, const std::string& id, const LlPlaylist& p, bool floor) {
    int with_parts = 0;
    for (const auto& s : p.segments) {
        if (s.parts.empty()) continue;
        ++with_parts;
        INFO("segment " << s.sequence);
        std::string joined;
        for (size_t k = 0; k < s.parts.size(); ++k) {
            const auto& part = s.parts[k];
            CHECK(part.duration <= p.part_target + 1e-9);
            if (floor && k + 1 < s.parts.size() && !part.independent) CHECK(part.duration >= kMinPartShare * p.part_target);
            joined += bytes_of(engine, id, part.uri);
        }
        CHECK(s.parts.front().independent);
        CHECK(joined == bytes_of(engine, id, s.uri));
    }
    return with_parts;
}
}  // namespace

TEST_CASE("low latency: parts of a continuous source, their bytes the segment's, blocking reloads", "[ll]") {
    const Container container = GENERATE(Container::ts, Container::fmp4);
    INFO("container " << to_string(container));
    EngineSettings settings = quick_settings(2.0, 8);
    Engine engine(settings);
    ChannelConfig config = channel("LL", {live_media().single_file});
    config.loop = true;
    config.hls.low_latency = true;
    config.hls.container = container;
    const auto id = engine.add_channel(config).id;
    std::mutex mu;
    std::map<std::pair<int64_t, int>, std::chrono::steady_clock::time_point> published;  // PartPublished, when
    const auto sub = engine.subscribe([&](const Event& e) {
        if (e.type != EventType::PartPublished || e.channel != id) return;
        std::lock_guard lock(mu);
        published[{e.sequence, e.part}] = std::chrono::steady_clock::now();
    });
    engine.start(id);
    REQUIRE(engine.wait_ready(id, 30));
    // Enough segments for a delta update to skip one: more than CAN-SKIP-UNTIL (6 x 2 s) listed.
    REQUIRE(wait_until([&] { return parse(bytes_of(engine, id, "index.m3u8")).segments.size() >= 8; }, std::chrono::seconds(60)));

    const std::string text = bytes_of(engine, id, "index.m3u8");
    INFO(text);
    const LlPlaylist p = parse(text);
    CHECK(p.target == 2);
    CHECK(p.part_target == Approx(0.33334));
    CHECK(p.part_hold_back >= 3 * p.part_target - 1e-9);
    // Parts for the segments in the last three target durations, then the open segment's, then the
    // hint for the next part.
    int with_parts = 0;
    int64_t last_number = -1;
    for (const auto& s : p.segments) {
        if (s.parts.empty()) continue;
        ++with_parts;
        INFO("segment " << s.sequence);
        double sum = 0;
        std::string joined;
        for (size_t k = 0; k < s.parts.size(); ++k) {
            const auto& part = s.parts[k];
            const auto named = parse_part_name(part.uri);
            REQUIRE(named);
            CHECK(named->second == (container == Container::fmp4 ? SegmentFormat::fmp4 : SegmentFormat::ts));
            // Numbered in one run, across segments too.
            if (last_number >= 0) CHECK(named->first == last_number + 1);
            last_number = named->first;
            CHECK(part.duration <= p.part_target + 1e-9);
            if (k + 1 < s.parts.size() && !part.independent) CHECK(part.duration >= kMinPartShare * p.part_target);
            sum += part.duration;
            const auto r = engine.read(id, part.uri);
            REQUIRE(r);
            CHECK(r->immutable);
            CHECK(r->content_type == (container == Container::fmp4 ? "video/iso.segment" : "video/mp2t"));
            joined += r->bytes();
        }
        CHECK(s.parts.front().independent);  // a segment starts with a keyframe, so does its first part
        CHECK(sum == Approx(s.duration).margin(0.002 * static_cast<double>(s.parts.size())));
        // The same bytes: the segment is its parts joined.
        CHECK(joined == bytes_of(engine, id, s.uri));
    }
    CHECK(with_parts >= 2);
    CHECK(with_parts <= 3);
    REQUIRE_FALSE(p.segments.empty());
    const int64_t open_msn = p.segments.back().sequence + 1;
    const std::string ext = container == Container::fmp4 ? ".m4s" : ".ts";
    for (const auto& part : p.open) {
        const auto named = parse_part_name(part.uri);
        REQUIRE(named);
        CHECK(named->first == last_number + 1);
        last_number = named->first;
    }
    CHECK(p.hint == "part_" + std::to_string(last_number + 1) + ext);
    CHECK(open_msn > 0);

    // The position the blocking reloads go by.
    const auto pos = engine.playlist_position(id, "index.m3u8");
    REQUIRE(pos);
    CHECK(pos->low_latency);
    CHECK(pos->target_duration == 2);
    CHECK(pos->last_msn >= p.segments.back().sequence);
    CHECK_FALSE(engine.playlist_position(id, "master.m3u8"));

    // A blocking wait for the next part ends when it is published (the engine wakes it, no polling).
    const auto now_pos = *engine.playlist_position(id, "index.m3u8");
    const int64_t want_msn = now_pos.open_msn;
    const int want_part = now_pos.open_parts;
    REQUIRE(engine.wait_playlist(id, "index.m3u8", want_msn, want_part, 10));
    const auto after = *engine.playlist_position(id, "index.m3u8");
    CHECK(after.holds(want_msn, want_part));
    // The part (or, when the segment closed first, the next segment's first part) was published and
    // told as an event. The worker wakes the waiters before it calls the subscribers, so the event
    // may come a little after the wait ended.
    CHECK(wait_until([&] {
        std::lock_guard lock(mu);
        return published.count({want_msn, want_part}) > 0 || published.count({want_msn + 1, 0}) > 0;
    }, std::chrono::seconds(10)));
    CHECK_FALSE(engine.wait_playlist(id, "index.m3u8", after.open_msn + 50, 0, 0.2));  // nothing that far comes that soon
    CHECK_THROWS_AS(engine.wait_playlist(id, "index.m3u8", 1, 0, -1), Error);

    // The directives, read once for every transport.
    using K = api::PlaylistAnswer::Kind;
    auto ask = [&](std::optional<std::string> msn, std::optional<std::string> part, std::optional<std::string> skip = std::nullopt) {
        return api::hls_playlist(engine, id, "index.m3u8", api::PlaylistDirectives{msn, part, skip});
    };
    const auto q = *engine.playlist_position(id, "index.m3u8");
    CHECK(ask(std::nullopt, std::nullopt).kind == K::serve);
    CHECK(ask(std::to_string(q.last_msn), std::nullopt).kind == K::serve);
    CHECK(ask(std::to_string(q.last_msn), std::nullopt).cache_seconds == 12);
    // Asked relative to the live edge: each against a fresh position, up to three times, since the
    // channel may publish between the read and the ask (a loaded machine).
    auto at_edge = [&](auto make_ask, auto holds) {
        for (int attempt = 0; attempt < 3; ++attempt)
            if (holds(make_ask(*engine.playlist_position(id, "index.m3u8")))) return true;
        return false;
    };
    CHECK(at_edge([&](const PlaylistPosition& e) { return ask(std::to_string(e.open_msn), std::to_string(e.open_parts + 1)); },
                  [](const api::PlaylistAnswer& a) { return a.kind == K::wait && a.wait_seconds == Approx(6.0); }));
    CHECK(at_edge([&](const PlaylistPosition& e) { return ask(std::to_string(e.last_msn + 3), std::nullopt); },  // more than two past
                  [](const api::PlaylistAnswer& a) { return a.kind == K::error && a.error.status == 400; }));
    CHECK(ask(std::nullopt, std::string("1")).kind == K::error);                             // part without msn
    CHECK(ask(std::string("-1"), std::nullopt).kind == K::error);
    CHECK(ask(std::string("1e3"), std::nullopt).kind == K::error);
    CHECK(ask(std::to_string(q.open_msn), std::string("1000")).kind == K::error);
    CHECK(at_edge([&](const PlaylistPosition& e) { return ask(std::to_string(e.open_msn), std::to_string(e.open_parts + 20)); },
                  [](const api::PlaylistAnswer& a) { return a.kind == K::error; }));  // past the advance part limit
    CHECK(ask(std::nullopt, std::nullopt, std::string("NO")).kind == K::error);
    const auto delta = ask(std::nullopt, std::nullopt, std::string("YES"));
    REQUIRE(delta.kind == K::serve);
    CHECK(delta.file == kDeltaPlaylistName);
    const std::string delta_text = bytes_of(engine, id, delta.file);
    INFO(delta_text);
    CHECK(delta_text.find("#EXT-X-SKIP:SKIPPED-SEGMENTS=") != std::string::npos);
    CHECK(delta_text.find("#EXT-X-VERSION:9") != std::string::npos);

    engine.unsubscribe(sub);
    engine.stop(id);
    CHECK_FALSE(engine.playlist_position(id, "index.m3u8"));
    CHECK_FALSE(engine.wait_playlist(id, "index.m3u8", 1, 0, 0.1));
}

// A 2 s segment in parts of at most 0.45 s: four of 13 frames (30 fps), then a last one of 8
// frames, shorter than 85 % of PART-TARGET, which only a segment's last part may be unless it is
// independent. The playlist lists that part with its segment (EXTINF), never alone after the open
// parts, where a reader cannot tell it is the last (a race the ladder's LL test once caught). Each
// PartPublished names a part the playlist read in its callback (on the worker, before it cuts on)
// already lists.
TEST_CASE("low latency: a segment's short last part is listed with its segment, never as an open part", "[ll]") {
    const Container container = GENERATE(Container::ts, Container::fmp4);
    INFO("container " << to_string(container));
    Engine engine(quick_settings(2.0, 8));
    ChannelConfig config = channel("LL", {live_media().single_file});
    config.loop = true;
    config.hls.low_latency = true;
    config.hls.part_duration = 0.45;
    config.hls.container = container;
    const auto id = engine.add_channel(config).id;
    std::mutex mu;
    std::vector<std::pair<Event, std::string>> seen;  // each PartPublished and the playlist as it was then
    const auto sub = engine.subscribe([&](const Event& e) {
        if (e.type != EventType::PartPublished || e.channel != id) return;
        std::string text = bytes_of(engine, id, "index.m3u8");
        std::lock_guard lock(mu);
        seen.emplace_back(e, std::move(text));
    });
    engine.start(id);
    REQUIRE(engine.wait_ready(id, 30));
    // Seven segments' parts: six short last parts after the first playlist.
    REQUIRE(wait_until([&] { std::lock_guard lock(mu); return seen.size() >= 35; }, std::chrono::seconds(60)));
    engine.unsubscribe(sub);
    std::vector<std::pair<Event, std::string>> playlists;
    {
        std::lock_guard lock(mu);  // not held across an engine call: the callbacks take it under the engine's locks
        playlists = seen;
    }
    int short_last = 0;
    for (const auto& [e, text] : playlists) {
        INFO("part " << e.part << " of segment " << e.sequence << ", the playlist then:\n" << text);
        if (text.empty()) continue;  // parts before the first segment: no playlist yet
        const LlPlaylist p = parse(text);
        REQUIRE(p.part_target == Approx(0.45));
        for (const auto& part : p.open)
            CHECK((part.independent || part.duration >= kMinPartShare * p.part_target - 1e-6));
        // The part the event names is listed: among the open parts or its (just published) segment's.
        const ListedSegment* listed = nullptr;
        for (const auto& s : p.segments)
            if (s.sequence == e.sequence) listed = &s;
        const auto& parts = listed ? listed->parts : p.open;
        REQUIRE(static_cast<int>(parts.size()) > e.part);
        CHECK(parts[static_cast<size_t>(e.part)].duration == Approx(e.duration).margin(1e-4));
        if (listed && e.part + 1 == static_cast<int>(parts.size()) && e.duration < kMinPartShare * p.part_target) ++short_last;
    }
    CHECK(short_last >= 4);
    engine.stop(id);
}

TEST_CASE("low latency is off by default and its settings are checked", "[ll]") {
    Engine engine(quick_settings(2.0, 5));
    ChannelConfig config = channel("Plain", {live_media().single_file});
    config.loop = true;
    const auto id = engine.add_channel(config).id;
    engine.start(id);
    REQUIRE(engine.wait_ready(id, 30));
    const std::string text = bytes_of(engine, id, "index.m3u8");
    CHECK(text.find("#EXT-X-PART") == std::string::npos);
    CHECK(text.find("SERVER-CONTROL") == std::string::npos);
    const auto pos = engine.playlist_position(id, "index.m3u8");
    REQUIRE(pos);
    CHECK_FALSE(pos->low_latency);
    // Directives on a channel without low latency are ignored: the playlist as it is.
    const auto a = api::hls_playlist(engine, id, "index.m3u8", api::PlaylistDirectives{std::string("999999999"), std::string("0"), std::nullopt});
    CHECK(a.kind == api::PlaylistAnswer::Kind::serve);
    CHECK(a.file == "index.m3u8");
    engine.stop(id);

    ChannelConfig bad = channel("Bad", {live_media().single_file});
    bad.hls.part_duration = 0.01;
    CHECK_THROWS_AS(engine.add_channel(bad), Error);
    bad.hls.part_duration = 6;
    CHECK_THROWS_AS(engine.add_channel(bad), Error);
}

TEST_CASE("low latency over a classic HLS source: its segments remuxed into parts", "[ll]") {
    LiveOrigin origin(live_media(), {.speed = 1.0});
    origin.start();
    Engine engine(quick_settings(2.0, 6));
    ChannelConfig config = channel("LL from HLS", {origin.url()});
    config.hls.low_latency = true;
    config.hls.container = Container::fmp4;
    const auto id = engine.add_channel(config).id;
    engine.start(id);
    REQUIRE(wait_until([&] { return parse(bytes_of(engine, id, "index.m3u8")).segments.size() >= 4; }, std::chrono::seconds(60)));
    const std::string text = bytes_of(engine, id, "index.m3u8");
    INFO(text);
    const LlPlaylist p = parse(text);
    // Its segments are made of parts, each within the part target, the first one independent, joined
    // byte for byte; the source's 1 s segments arrive whole, so their parts come in a burst (the
    // latency this gives is in docs/http-api.md). The parts are long enough that a blocking reload
    // outlasts the wait for the next burst (hls.js gives up after 3 part targets), and players are
    // held back at least a burst and a margin.
    CHECK(p.part_target == Approx(part_target_for_bursts(1.0)).margin(1e-4));
    CHECK(p.part_hold_back >= 1.0 + kBurstMargin - 1e-4);
    CHECK(check_listed_parts(engine, id, p, false) >= 2);
    CHECK_FALSE(p.hint.empty());
    CHECK(engine.status(id).state == ChannelState::Running);
}

namespace {
// An engine's LL-HLS output on loopback HTTP the way hlsrelay-server serves it: index.m3u8 through
// api::hls_playlist (blocking reloads wait in Engine::wait_playlist, 503 after their time), every
// other file through Engine::read. One thread per connection, `Connection: close`. Counts what it
// was asked for, so a test can tell how a client read it.
class LlHttpOrigin {
public:
    LlHttpOrigin(const Engine& engine, std::string channel) : engine_(engine), channel_(std::move(channel)) {
        fd_ = http::listen_loopback(0, &port_, "LL origin");
        accept_ = std::thread([this] { accept_loop(); });
    }
    ~LlHttpOrigin() {
        stopping_ = true;
        ::shutdown(fd_, SHUT_RDWR);
        accept_.join();
        ::close(fd_);
        std::lock_guard lock(mu_);
        for (auto& t : connections_) t.join();
    }
    std::string url(const std::string& file) const { return "http://127.0.0.1:" + std::to_string(port_) + "/" + file; }

    std::atomic<int> blocking_reloads{0}, plain_reloads{0}, part_requests{0}, segment_requests{0}, refused{0};

private:
    void accept_loop() {
        while (!stopping_) {
            const int fd = ::accept(fd_, nullptr, nullptr);
            if (fd < 0) {
                if (stopping_) return;
                continue;
            }
            std::lock_guard lock(mu_);
            connections_.emplace_back([this, fd] { serve(fd); });
        }
    }

    static std::optional<std::string> query_value(const std::string& target, const std::string& name) {
        const auto q = target.find('?');
        if (q == std::string::npos) return std::nullopt;
        std::istringstream in(target.substr(q + 1));
        for (std::string kv; std::getline(in, kv, '&');)
            if (kv.rfind(name + "=", 0) == 0) return kv.substr(name.size() + 1);
        return std::nullopt;
    }

    void serve(int fd) {
        http::Request r;
        if (http::read_request(fd, std::chrono::steady_clock::now() + std::chrono::seconds(5), r) && r.status == 0) {
            std::string file = r.path.substr(r.path.rfind('/') + 1);
            int status = 200;
            std::string body;
            if (file == "index.m3u8") {
                const api::PlaylistDirectives d{query_value(r.target, "_HLS_msn"), query_value(r.target, "_HLS_part"),
                                                query_value(r.target, "_HLS_skip")};
                const auto a = api::hls_playlist(engine_, channel_, file, d);
                (d.msn ? blocking_reloads : plain_reloads)++;
                if (a.kind == api::PlaylistAnswer::Kind::error) {
                    status = 400;
                    ++refused;
                } else if (a.kind == api::PlaylistAnswer::Kind::wait &&
                           !engine_.wait_playlist(channel_, file, a.msn, a.part, a.wait_seconds)) {
                    status = 503;
                }
                file = a.file;
            } else if (parse_part_name(file)) {
                ++part_requests;
            } else if (file.rfind("seg_", 0) == 0) {
                ++segment_requests;
            }
            if (status == 200) {
                if (const auto res = engine_.read(channel_, file)) body = std::string(res->bytes());
                else status = 404;
            }
            const std::string head = "HTTP/1.1 " + std::to_string(status) + " " + http::reason(status) +
                                     "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n";
            http::send_all(fd, head + body);
        }
        ::close(fd);
    }

    const Engine& engine_;
    const std::string channel_;
    int fd_ = -1;
    uint16_t port_ = 0;
    std::atomic<bool> stopping_{false};
    std::thread accept_;
    std::mutex mu_;
    std::vector<std::thread> connections_;
};
}  // namespace

TEST_CASE("low latency over an LL-HLS source: its parts followed with blocking reloads", "[ll]") {
    const Container container = GENERATE(Container::ts, Container::fmp4);
    INFO("container " << to_string(container));
    // The origin: an LL-HLS channel of a continuous source, served as hlsrelay-server serves it.
    Engine origin_engine(quick_settings(2.0, 8));
    ChannelConfig source = channel("LL origin", {live_media().single_file});
    source.loop = true;
    source.hls.low_latency = true;
    source.hls.container = container;
    const auto source_id = origin_engine.add_channel(source).id;
    origin_engine.start(source_id);
    REQUIRE(origin_engine.wait_ready(source_id, 30));
    LlHttpOrigin origin(origin_engine, source_id);

    // The relay, low latency too, reads it.
    Engine engine(quick_settings(2.0, 8));
    ChannelConfig config = channel("LL from LL", {origin.url("index.m3u8")});
    config.hls.low_latency = true;
    config.hls.container = container;
    const auto id = engine.add_channel(config).id;
    engine.start(id);
    REQUIRE(engine.wait_ready(id, 30));
    // Several segments cut from parts the relay took one by one as the origin published them.
    REQUIRE(wait_until([&] { return parse(bytes_of(engine, id, "index.m3u8")).segments.size() >= 6; }, std::chrono::seconds(60)));
    // Caught up with the live edge (the segments it starts with are read whole), it asks for parts
    // and for playlists holding the next part, and for no whole segment: twelve more parts (two
    // segments' worth) come without one.
    const int segments_then = origin.segment_requests.load(), parts_then = origin.part_requests.load();
    REQUIRE(wait_until([&] { return origin.part_requests >= parts_then + 12; }, std::chrono::seconds(30)));
    CHECK(origin.segment_requests == segments_then);
    CHECK(origin.blocking_reloads > 12);
    CHECK(origin.refused == 0);
    const std::string text = bytes_of(engine, id, "index.m3u8");
    INFO(text);
    const LlPlaylist p = parse(text);
    // Its own parts keep the rules: within PART-TARGET, and those that are neither independent nor
    // the last of their segment at least 85 % of it (a source part's end closes a part that is long
    // enough, so the relay's parts follow the origin's); the segment is its parts joined.
    CHECK(check_listed_parts(engine, id, p, true) >= 2);
    // (A reload that failed under load would show as the last error and be survived: not judged.)
    CHECK(engine.status(id).state == ChannelState::Running);
    engine.stop(id);
    origin_engine.stop(source_id);  // ends the origin's held requests
}

TEST_CASE("a classic channel over an LL-HLS source asks for each next segment with a blocking reload", "[ll]") {
    // The origin: an LL-HLS channel (CAN-BLOCK-RELOAD), served as hlsrelay-server serves it.
    Engine origin_engine(quick_settings(2.0, 8));
    ChannelConfig source = channel("LL origin", {live_media().single_file});
    source.loop = true;
    source.hls.low_latency = true;
    const auto source_id = origin_engine.add_channel(source).id;
    origin_engine.start(source_id);
    REQUIRE(origin_engine.wait_ready(source_id, 30));
    LlHttpOrigin origin(origin_engine, source_id);

    // The relay cuts no parts: it reads whole segments, each asked for with _HLS_msn (no part), so
    // it learns of a segment as soon as the origin has it, without polling.
    Engine engine(quick_settings(2.0, 8));
    const auto id = engine.add_channel(channel("classic from LL", {origin.url("index.m3u8")})).id;
    engine.start(id);
    REQUIRE(engine.wait_ready(id, 30));
    const int plain_then = origin.plain_reloads.load();
    const int blocking_then = origin.blocking_reloads.load();
    const int64_t published_then = engine.status(id).segments_published;
    REQUIRE(wait_until([&] { return engine.status(id).segments_published >= published_then + 4; }, std::chrono::seconds(60)));
    CHECK(origin.blocking_reloads >= blocking_then + 3);
    CHECK(origin.plain_reloads <= plain_then + 1);  // no polling (one plain reload after a refused blocking one at most)
    CHECK(origin.part_requests == 0);
    CHECK(origin.refused == 0);
    CHECK(engine.status(id).state == ChannelState::Running);
    engine.stop(id);
    origin_engine.stop(source_id);  // ends the origin's held requests
}
