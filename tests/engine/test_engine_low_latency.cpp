// LL-HLS through the engine: a continuous source (a file at its native rate, looping) cut into
// parts, in TS and in fMP4; the parts' bytes are their segment's, the playlist lists them as the
// spec asks, blocking reloads wait for what they name and api::hls_playlist reads the directives.
#include "engine_fixture.hpp"

#include <hlsrelay/api.hpp>
#include <hlsrelay/playlist.hpp>

#include <atomic>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

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
            if (k + 1 < s.parts.size() && !part.independent) CHECK(part.duration >= 0.85 * p.part_target);
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
    CHECK(ask(std::to_string(q.open_msn), std::to_string(q.open_parts + 1)).kind == K::wait);
    CHECK(ask(std::to_string(q.open_msn), std::to_string(q.open_parts + 1)).wait_seconds == Approx(6.0));
    CHECK(ask(std::to_string(q.last_msn + 3), std::nullopt).kind == K::error);               // more than two past
    CHECK(ask(std::to_string(q.last_msn + 3), std::nullopt).error.status == 400);
    CHECK(ask(std::nullopt, std::string("1")).kind == K::error);                             // part without msn
    CHECK(ask(std::string("-1"), std::nullopt).kind == K::error);
    CHECK(ask(std::string("1e3"), std::nullopt).kind == K::error);
    CHECK(ask(std::to_string(q.open_msn), std::string("1000")).kind == K::error);
    CHECK(ask(std::to_string(q.open_msn), std::to_string(q.open_parts + 20)).kind == K::error);  // past the advance part limit
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
    // latency this gives is in docs/http-api.md).
    int with_parts = 0;
    for (const auto& s : p.segments) {
        if (s.parts.empty()) continue;
        ++with_parts;
        std::string joined;
        for (const auto& part : s.parts) {
            CHECK(part.duration <= p.part_target + 1e-9);
            joined += bytes_of(engine, id, part.uri);
        }
        CHECK(s.parts.front().independent);
        CHECK(joined == bytes_of(engine, id, s.uri));
    }
    CHECK(with_parts >= 2);
    CHECK_FALSE(p.hint.empty());
    CHECK(engine.status(id).state == ChannelState::Running);
}
