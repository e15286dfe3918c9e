// Provider connection limits (EngineSettings::providers): a start past the limit reclaims an idle
// on-demand channel's connection, else waits for one, else fails naming the channels holding them.
#include "engine_fixture.hpp"

#include <hlsrelay/tuner.hpp>

#include <atomic>
#include <future>
#include <thread>

using namespace hlsrelay;
using namespace hlsrelay::test;

namespace {

EngineSettings with_provider(const std::string& spec) {
    EngineSettings s = quick_settings(1.0, 4);
    std::string why;
    auto p = parse_provider(spec, &why);
    REQUIRE(p);
    s.providers.push_back(*p);
    return s;
}

const ProviderStatus& provider(const std::vector<ProviderStatus>& all, const std::string& name) {
    for (const auto& p : all)
        if (p.name == name) return p;
    FAIL("no provider " << name);
    throw std::logic_error("unreachable");
}

}  // namespace

namespace {
ErrorCode start_error(Engine& engine, const std::string& id, std::string* message) {
    try {
        engine.start(id);
    } catch (const Error& e) {
        if (message) *message = e.what();
        return e.code();
    }
    return static_cast<ErrorCode>(0);
}
}  // namespace

TEST_CASE("a provider's limit: the start past it fails with the channels that hold its connections", "[providers]") {
    LiveOrigin origin(live_media(), {.speed = 2.0});
    origin.start();
    Engine engine(with_provider("acme=1@127.0.0.1:" + std::to_string(origin.port())));
    const auto a = engine.add_channel(channel("A", {origin.url()}));
    const auto b = engine.add_channel(channel("B", {origin.url()}));
    CHECK(engine.status(a.id).provider == "acme");
    CHECK(provider(engine.providers(), "acme").channels == 2);

    engine.start(a.id);
    engine.start(a.id);  // a running channel keeps its one connection
    CHECK(provider(engine.providers(), "acme").holders == std::vector<std::string>{a.id});

    const auto asked = std::chrono::steady_clock::now();
    std::string message;
    CHECK(start_error(engine, b.id, &message) == ErrorCode::Unavailable);
    CHECK(std::chrono::steady_clock::now() - asked >= std::chrono::duration<double>(kProviderWait * 0.9));  // it waited
    CHECK(message == "provider acme: 1 of 1 connections in use by " + a.id);
    CHECK_FALSE(engine.running(b.id));
    CHECK(provider(engine.providers(), "acme").refused == 1);

    engine.stop(a.id);
    CHECK(provider(engine.providers(), "acme").holders.empty());
    engine.start(b.id);
    CHECK(provider(engine.providers(), "acme").holders == std::vector<std::string>{b.id});
    REQUIRE(wait_until([&] { return engine.status(b.id).segments_published >= 1; }, std::chrono::seconds(20)));

    // Removing the holder gives its connection back.
    engine.remove_channel(b.id);
    CHECK(provider(engine.providers(), "acme").holders.empty());
    engine.start(a.id);
    CHECK(engine.running(a.id));
}

TEST_CASE("a start waiting for a provider's connection gets the one released meanwhile", "[providers]") {
    LiveOrigin origin(live_media(), {.speed = 2.0});
    origin.start();
    Engine engine(with_provider("acme=1@127.0.0.1"));  // the host alone matches any port
    const auto a = engine.add_channel(channel("A", {origin.url()}));
    const auto b = engine.add_channel(channel("B", {origin.url()}));
    engine.start(a.id);
    auto waiting = std::async(std::launch::async, [&] { return start_error(engine, b.id, nullptr); });
    // The second start is waiting once the first still holds the connection and b has not started.
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    CHECK_FALSE(engine.running(b.id));
    engine.stop(a.id);
    CHECK(waiting.get() == static_cast<ErrorCode>(0));
    CHECK(engine.running(b.id));
    CHECK(provider(engine.providers(), "acme").holders == std::vector<std::string>{b.id});
    CHECK(provider(engine.providers(), "acme").refused == 0);
}

TEST_CASE("an idle on-demand channel gives its connection to a new start, a watched one does not", "[providers]") {
    LiveOrigin origin(live_media(), {.speed = 2.0});
    origin.start();
    Engine engine(with_provider("acme=1@127.0.0.1"));
    const auto a = engine.add_channel(channel("A", {origin.url()}));
    const auto b = engine.add_channel(channel("B", {origin.url()}));
    engine.start(a.id, StartMode::on_demand);
    CHECK(provider(engine.providers(), "acme").on_demand == std::vector<std::string>{a.id});
    REQUIRE(wait_until([&] { return engine.read(a.id, "index.m3u8").has_value(); }, std::chrono::seconds(20)));

    // Watched: a reader asks for its playlist every 0.5 s, so it is never idle.
    std::atomic<bool> watching{true};
    std::thread viewer([&] {
        while (watching) {
            (void)engine.read(a.id, "index.m3u8");
            std::this_thread::sleep_for(std::chrono::milliseconds(500));
        }
    });
    std::string message;
    const ErrorCode watched = start_error(engine, b.id, &message);
    watching = false;
    viewer.join();
    CHECK(watched == ErrorCode::Unavailable);
    CHECK(engine.running(a.id));

    // Unwatched for kProviderReclaimIdle: reclaimed by the next start.
    const auto last_read = std::chrono::steady_clock::now();
    REQUIRE(wait_until([&] {
        return std::chrono::steady_clock::now() - last_read >= std::chrono::duration<double>(kProviderReclaimIdle + 0.2);
    }, std::chrono::seconds(30)));
    engine.start(b.id);
    CHECK(engine.running(b.id));
    CHECK_FALSE(engine.running(a.id));
    const ProviderStatus p = provider(engine.providers(), "acme");
    CHECK(p.holders == std::vector<std::string>{b.id});
    CHECK(p.reclaimed == 1);
    CHECK(p.on_demand.empty());  // b was started by hand
}

TEST_CASE("a channel's provider field wins over its host, other hosts have no limit", "[providers]") {
    LiveOrigin origin(live_media(), {.speed = 2.0});
    origin.start();
    EngineSettings s = with_provider("acme=1@127.0.0.1");
    s.providers.push_back(*parse_provider("other=1"));
    Engine engine(s);
    auto named = channel("Named", {origin.url()});
    named.provider = "other";
    const auto n = engine.add_channel(named);
    const auto a = engine.add_channel(channel("A", {origin.url()}));
    auto local = channel("Local", {origin.url()});
    local.urls = {"http://localhost:" + std::to_string(origin.port()) + "/live/index.m3u8"};
    const auto l1 = engine.add_channel(local);
    local.name = "Local 2";
    const auto l2 = engine.add_channel(local);
    CHECK(engine.status(n.id).provider == "other");
    CHECK(engine.status(a.id).provider == "acme");
    CHECK(engine.status(l1.id).provider.empty());
    engine.start(n.id);
    engine.start(a.id);  // not counted against "other"
    engine.start(l1.id);
    engine.start(l2.id);  // no provider: no limit
    CHECK(engine.running(n.id));
    CHECK(engine.running(a.id));
    CHECK(engine.running(l2.id));
    CHECK(provider(engine.providers(), "other").holders == std::vector<std::string>{n.id});
    CHECK(provider(engine.providers(), "acme").holders == std::vector<std::string>{a.id});
    // TunerCount: one per channel, at most each provider's limit for its channels.
    CHECK(api::tuner_count(engine) == 4);
    const auto a2 = engine.add_channel(channel("A2", {origin.url()}));
    CHECK(api::tuner_count(engine) == 4);  // acme: 2 channels, 1 connection
    engine.remove_channel(a2.id);
}

TEST_CASE("an update restarts a running channel on the connection it holds", "[providers]") {
    LiveOrigin origin(live_media(), {.speed = 2.0});
    origin.start();
    Engine engine(with_provider("acme=1@127.0.0.1"));
    const auto a = engine.add_channel(channel("A", {origin.url()}));
    engine.start(a.id);
    ChannelConfig changed = a;
    changed.hls.max_segments = 3;
    engine.update_channel(a.id, changed);
    CHECK(engine.running(a.id));
    CHECK(provider(engine.providers(), "acme").holders == std::vector<std::string>{a.id});
}
