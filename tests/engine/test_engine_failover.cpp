// Failover across a channel's URLs (FailoverSettings, src/engine/failover.hpp) with real origins on
// loopback: dead URLs are left behind for good, an outage of the primary moves to the backup, and
// a primary that comes back is returned to after failback_after, the output numbered on throughout.
#include "engine_fixture.hpp"

#include "cut/segmenter.hpp"
#include "ingest/m3u8.hpp"
#include "ingest/source.hpp"

#include <map>
#include <set>

namespace hlsrelay::test {
namespace {

EngineSettings failover_settings() { return quick_failover_settings(); }

// Every playlist the test saw: each output number with its URI and discontinuity flag.
struct Seen {
    std::map<int64_t, std::string> uri;
    std::set<int64_t> discontinuities;
    bool consistent = true;  // one number never named two segments

    void look(const Engine& e, const std::string& id) {
        auto r = e.read(id, "index.m3u8");
        if (!r) return;
        const auto p = m3u8::parse(std::string(r->bytes()), "http://127.0.0.1/hls_streams/" + id + "/index.m3u8").media();
        for (const auto& s : p.segments) {
            auto [it, added] = uri.emplace(s.sequence, s.uri);
            if (!added && it->second != s.uri) consistent = false;
            if (s.discontinuity) discontinuities.insert(s.sequence);
        }
    }
    bool contiguous() const {
        return !uri.empty() && uri.rbegin()->first - uri.begin()->first + 1 == static_cast<int64_t>(uri.size());
    }
};

}  // namespace

TEST_CASE("failover: dead, dead, good reaches the good URL and stays there", "[failover]") {
    LiveOrigin origin(live_media(), {.speed = 2.0});
    origin.start();
    Engine engine(failover_settings());
    const auto c = engine.add_channel(
        channel("Backups", {"http://127.0.0.1:9/dead-a.m3u8", "http://127.0.0.1:9/dead-b.m3u8", origin.url()}));
    engine.start(c.id);
    REQUIRE(wait_until([&] { return engine.status(c.id).segments_published >= 2; }, std::chrono::seconds(30)));
    auto s = engine.status(c.id);
    CHECK(s.source_index == 2);
    const int64_t published = s.segments_published;
    // The dead primary is probed meanwhile (it never answers): the channel stays on the good URL.
    REQUIRE(wait_until([&] { return engine.status(c.id).segments_published >= published + 4; }, std::chrono::seconds(30)));
    s = engine.status(c.id);
    CHECK(s.source_index == 2);
    CHECK(s.state == ChannelState::Running);
    REQUIRE(s.sources.size() == 3);
    CHECK(s.sources[2].role == "active");
    CHECK(s.sources[2].consecutive_failures == 0);
    CHECK(s.sources[0].role != "active");
    CHECK(s.sources[0].consecutive_failures >= 1);
    CHECK(s.sources[1].consecutive_failures >= 1);
    CHECK(s.failovers == 2);
    CHECK(s.sources[0].url.find("dead-a") != std::string::npos);
    engine.stop(c.id);
}

TEST_CASE("failover: a primary outage moves to the backup, the primary back is returned to", "[failover]") {
    LiveOrigin primary(live_media(), {.speed = 1.0});
    LiveOrigin backup(live_media(), {.speed = 1.0});
    primary.start();
    backup.start();
    Engine engine(failover_settings());
    const auto c = engine.add_channel(channel("Failback", {primary.url(), backup.url()}));
    engine.start(c.id);
    Seen seen;
    auto watch = [&](const std::function<bool()>& done) {
        return wait_until([&] {
            seen.look(engine, c.id);
            return done();
        }, std::chrono::seconds(60));
    };
    REQUIRE(watch([&] { return engine.status(c.id).segments_published >= 3; }));
    CHECK(engine.status(c.id).source_index == 0);
    CHECK(engine.status(c.id).failovers == 0);

    // The primary goes away: the backup plays within a bound.
    primary.set_fault(LiveOrigin::Fault::Refuse);
    int64_t at_switch = 0;
    REQUIRE(watch([&] {
        const auto s = engine.status(c.id);
        at_switch = s.segments_published;
        return s.source_index == 1;
    }));
    REQUIRE(watch([&] { return engine.status(c.id).segments_published >= at_switch + 3; }));
    auto s = engine.status(c.id);
    CHECK(s.source_index == 1);
    CHECK(s.failovers == 1);
    REQUIRE(s.sources.size() == 2);
    CHECK(s.sources[1].role == "active");
    CHECK(s.sources[0].role != "active");
    CHECK(s.sources[0].consecutive_failures >= 1);
    const std::size_t discontinuities_on_backup = seen.discontinuities.size();
    CHECK(discontinuities_on_backup >= 1);

    // The primary comes back: after failback_after of healthy probes the channel returns to it.
    const auto back = std::chrono::steady_clock::now();
    primary.set_fault(LiveOrigin::Fault::None);
    REQUIRE(watch([&] { return engine.status(c.id).source_index == 0; }));
    // Lower bound only: not before failback_after seconds of healthy probes.
    CHECK(std::chrono::duration<double>(std::chrono::steady_clock::now() - back).count() >= 1.5);
    const int64_t at_failback = engine.status(c.id).segments_published;
    REQUIRE(watch([&] { return engine.status(c.id).segments_published >= at_failback + 3; }));
    s = engine.status(c.id);
    CHECK(s.source_index == 0);
    CHECK(s.failovers == 2);
    CHECK(s.sources[0].role == "active");
    CHECK(s.sources[0].consecutive_failures == 0);
    CHECK(s.sources[1].role == "standby");
    CHECK(s.state == ChannelState::Running);

    // One numbering throughout, without holes or reuse, and a discontinuity at each switch.
    CHECK(seen.consistent);
    CHECK(seen.contiguous());
    CHECK(seen.discontinuities.size() >= discontinuities_on_backup + 1);
    engine.stop(c.id);
}

TEST_CASE("failover: failback_after 0 stays on the backup, probes stop with the channel", "[failover]") {
    LiveOrigin primary(live_media(), {.speed = 2.0});
    LiveOrigin backup(live_media(), {.speed = 2.0});
    primary.start();
    backup.start();
    primary.set_fault(LiveOrigin::Fault::Http500);
    EngineSettings settings = failover_settings();
    settings.failover.failback_after = 0;
    Engine engine(settings);
    const auto c = engine.add_channel(channel("NoFailback", {primary.url(), backup.url()}));
    engine.start(c.id);
    REQUIRE(wait_until([&] { return engine.status(c.id).segments_published >= 2; }, std::chrono::seconds(30)));
    CHECK(engine.status(c.id).source_index == 1);
    primary.set_fault(LiveOrigin::Fault::None);
    const int64_t published = engine.status(c.id).segments_published;
    REQUIRE(wait_until([&] { return engine.status(c.id).segments_published >= published + 6; }, std::chrono::seconds(30)));
    auto s = engine.status(c.id);
    CHECK(s.source_index == 1);
    CHECK(s.failovers == 1);
    engine.stop(c.id);
    s = engine.status(c.id);
    CHECK(s.state != ChannelState::Running);
    REQUIRE(s.sources.size() == 2);
    CHECK(s.sources[0].role == "standby");
    CHECK(s.sources[1].role == "standby");
}

TEST_CASE("failover: probes of a primary: a live playlist, a TS stream, refusals, a stop", "[failover]") {
    LiveOrigin origin(live_media(), {.speed = 1.0});
    origin.start();
    ChannelConfig config = channel("Probe", {origin.url()});
    av::Interrupter irq;
    Segmenter unused(1.0, [](CutSegment&&) {});
    std::atomic<int64_t> bytes{0};
    auto probe = [&](const std::string& url, ProbeMemory& memory, std::string& why) {
        SourceContext ctx{.channel = config,
                          .url = url,
                          .interrupter = irq,
                          .segmenter = unused,
                          .bytes_in = bytes,
                          .pool = nullptr,
                          .read_timeout = 2.0,
                          .stall_timeout = 0,
                          .live_start_segments = 3,
                          .limits = FetchLimits{},
                          .segment_duration = 1.0,
                          .sleep = [](double) { return true; },
                          .report = [](const std::string&) {},
                          .note = [](const std::string&) {},
                          .history = nullptr,
                          .pinned = nullptr};
        return probe_source(ctx, memory, why);
    };
    ProbeMemory memory;
    std::string why;
    CHECK(probe(origin.url(), memory, why));  // the first answer: parses, lists segments
    CHECK(memory.last_sequence >= 0);
    const int64_t first = memory.last_sequence;
    REQUIRE(wait_until([&] { return probe(origin.url(), memory, why) && memory.last_sequence > first; },
                       std::chrono::seconds(20)));
    ProbeMemory master;
    CHECK(probe(origin.master_url(), master, why));  // a master: its first variant
    ProbeMemory stream;
    INFO(why);
    CHECK(probe(origin.segment_url(first), stream, why));  // not a playlist: a few KB of a TS stream

    // A frozen playlist is healthy for three target durations (at least 5 s), then not.
    origin.set_fault(LiveOrigin::Fault::Stall);
    REQUIRE(wait_until([&] { return !probe(origin.url(), memory, why); }, std::chrono::seconds(30)));
    CHECK(why.find("not advanced") != std::string::npos);
    origin.set_fault(LiveOrigin::Fault::Http500);
    CHECK_FALSE(probe(origin.url(), memory, why));
    CHECK(why.find("500") != std::string::npos);
    origin.set_fault(LiveOrigin::Fault::None);
    ProbeMemory other;
    CHECK_FALSE(probe("file:///etc/hostname", other, why));  // only http(s) is probed
    CHECK_FALSE(probe("udp://127.0.0.1:9", other, why));

    // A hanging origin: the stop cuts the probe short (the bound is a generous test deadline only).
    origin.set_fault(LiveOrigin::Fault::Hang);
    std::thread stopper([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        irq.request_stop();
    });
    const auto start = std::chrono::steady_clock::now();
    ProbeMemory hung;
    CHECK_FALSE(probe(origin.url(), hung, why));
    stopper.join();
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(30));
    origin.set_fault(LiveOrigin::Fault::None);
}

TEST_CASE("failover: settings out of range are refused", "[failover]") {
    EngineSettings s = quick_settings();
    s.failover.cooldown_max = 1;
    s.failover.cooldown = 5;
    CHECK_THROWS_AS(Engine(s), Error);
}

}  // namespace hlsrelay::test
