// The failover policy (src/engine/failover.hpp) on a fake clock: rotation, cooldowns and their
// doubling, every URL cooling down, permanent failures, fail-back timing; its settings' validator.
#include <catch2/catch.hpp>

#include "engine/failover.hpp"

#include <hlsrelay/api.hpp>
#include <hlsrelay/status.hpp>

using namespace hlsrelay;
using namespace std::chrono_literals;
using Role = FailoverPolicy::Role;

namespace {
FailoverSettings settings() {
    FailoverSettings s;
    s.attempts_per_url = 2;
    s.cooldown = 30;
    s.cooldown_max = 100;
    s.probe_interval = 15;
    s.failback_after = 60;
    return s;
}
FailoverPolicy::TimePoint t0() { return FailoverPolicy::TimePoint{} + 1000s; }
}  // namespace

TEST_CASE("failover policy: a URL is retried attempts_per_url times, then the next one plays", "[failover]") {
    FailoverPolicy p(3, settings());
    auto now = t0();
    auto d = p.on_failure(now, false, false);
    CHECK(d.index == 0);
    CHECK_FALSE(d.switched);
    CHECK(d.wait == 0);
    CHECK(p.view(0, now).consecutive_failures == 1);
    d = p.on_failure(now += 1s, false, false);
    CHECK(d.index == 1);
    CHECK(d.switched);
    CHECK(p.active() == 1);
    CHECK(p.failovers() == 1);
    CHECK(p.view(0, now).role == Role::cooldown);
    CHECK(p.view(0, now).cooldown_left == Approx(30));
    CHECK(p.view(1, now).role == Role::active);
    CHECK(p.view(2, now).role == Role::standby);
    // The backup fails twice too: the third URL, never back to the cooling primary.
    p.on_failure(now += 1s, false, false);
    d = p.on_failure(now += 1s, false, false);
    CHECK(d.index == 2);
    // A URL that delivers forgets its failures.
    p.on_failure(now += 1s, false, false);
    CHECK(p.view(2, now).consecutive_failures == 1);
    p.on_delivered();
    CHECK(p.view(2, now).consecutive_failures == 0);
}

TEST_CASE("failover policy: every URL cooling down waits for the first cooldown to end", "[failover]") {
    FailoverPolicy p(2, settings());
    auto now = t0();
    p.on_failure(now, false, false);
    p.on_failure(now, false, false);      // 0 cools down until +30 s
    p.on_failure(now += 5s, false, false);
    auto d = p.on_failure(now, false, false);  // 1 cools down until +35 s
    CHECK(d.index == 0);
    CHECK(d.wait == Approx(25));
    CHECK(d.wait > 0);
    // Tried when its cooldown ends; failing again, it cools down twice as long (the cap bounds it).
    now += 25s;
    p.on_failure(now, false, false);
    d = p.on_failure(now, false, false);
    CHECK(p.view(0, now).cooldown_left == Approx(60));
    CHECK(d.index == 1);
    CHECK(d.wait == Approx(5));
    CHECK(p.cooldown_for(0) == Approx(30));
    CHECK(p.cooldown_for(1) == Approx(60));
    CHECK(p.cooldown_for(2) == Approx(100));  // cooldown_max
    CHECK(p.cooldown_for(50) == Approx(100));
}

TEST_CASE("failover policy: permanent failures move on at once, on every URL the channel fails", "[failover]") {
    FailoverPolicy p(3, settings());
    auto now = t0();
    auto d = p.on_failure(now, true, false);
    CHECK(d.index == 1);
    CHECK_FALSE(d.all_permanent);
    d = p.on_failure(now, true, false);
    CHECK(d.index == 2);
    CHECK_FALSE(d.all_permanent);
    d = p.on_failure(now, true, false);
    CHECK(d.all_permanent);

    // One URL that answers otherwise keeps the channel alive.
    FailoverPolicy q(2, settings());
    q.on_failure(now, true, false);
    d = q.on_failure(now, false, false);
    CHECK_FALSE(d.all_permanent);
}

TEST_CASE("failover policy: a URL refused for now (HTTP 404) cools down at once without failing the channel", "[failover]") {
    FailoverPolicy p(2, settings());
    auto now = t0();
    auto d = p.on_failure(now, false, false, true);
    CHECK(d.index == 1);
    CHECK(p.view(0, now).role == Role::cooldown);
    d = p.on_failure(now, false, false, true);
    CHECK_FALSE(d.all_permanent);
    CHECK(d.index == 0);
    CHECK(d.wait == Approx(30));
}

TEST_CASE("failover policy: one URL only reconnects, never cools down", "[failover]") {
    FailoverPolicy p(1, settings());
    auto now = t0();
    for (int i = 0; i < 10; ++i) {
        auto d = p.on_failure(now += 1s, false, false);
        CHECK(d.index == 0);
        CHECK(d.wait == 0);
    }
    CHECK(p.view(0, now).role == Role::active);
    CHECK_FALSE(p.probe_due(now));
    CHECK(p.on_failure(now, true, false).all_permanent);
}

TEST_CASE("failover policy: fail-back after failback_after seconds of healthy probes", "[failover]") {
    FailoverPolicy p(2, settings());
    auto now = t0();
    CHECK_FALSE(p.probe_due(now));  // the primary plays
    p.on_failure(now, false, false);
    p.on_failure(now, false, false);  // the backup plays, the primary cools down 30 s
    REQUIRE(p.active() == 1);
    CHECK_FALSE(p.probe_due(now + 29s));
    CHECK(*p.next_probe(now) == now + 30s);
    now += 30s;
    CHECK(p.probe_due(now));
    p.on_probe(now, true);
    CHECK_FALSE(p.probe_due(now + 14s));
    CHECK(p.probe_due(now + 15s));
    CHECK_FALSE(p.failback_due(now));
    // A bad answer starts the count over.
    p.on_probe(now += 15s, true);
    p.on_probe(now += 15s, false);
    p.on_probe(now += 15s, true);
    const auto healthy_from = now;
    for (int i = 0; i < 3; ++i) {
        p.on_probe(now += 15s, true);
        CHECK_FALSE(p.failback_due(now));
    }
    p.on_probe(now += 15s, true);
    CHECK(now - healthy_from == 60s);
    CHECK(p.failback_due(now));
    p.fail_back();
    CHECK(p.active() == 0);
    CHECK(p.failovers() == 2);
    CHECK_FALSE(p.probe_due(now));
    CHECK_FALSE(p.failback_due(now));

    // failback_after 0: never.
    FailoverSettings never = settings();
    never.failback_after = 0;
    FailoverPolicy q(2, never);
    q.on_failure(now, true, false);
    CHECK(q.active() == 1);
    CHECK_FALSE(q.probe_due(now + 1000s));
    CHECK_FALSE(q.next_probe(now));
}

TEST_CASE("failover policy: a due fail-back is taken when the backup fails", "[failover]") {
    FailoverPolicy p(3, settings());
    auto now = t0();
    p.on_failure(now, true, false);  // 0 permanent: cooldown 30 s, 1 plays
    REQUIRE(p.active() == 1);
    now += 30s;
    p.on_probe(now, true);
    p.on_probe(now += 60s, true);
    REQUIRE(p.failback_due(now));
    auto d = p.on_failure(now, false, false);  // the backup's first failure: back to the primary
    CHECK(d.index == 0);
    CHECK(d.switched);
}

TEST_CASE("failover settings: validated ranges", "[failover]") {
    CHECK(failover_problem(FailoverSettings{}).empty());
    FailoverSettings s;
    s.attempts_per_url = 0;
    CHECK_FALSE(failover_problem(s).empty());
    s = {};
    s.cooldown_max = s.cooldown / 2;
    CHECK(failover_problem(s).find("cooldown_max") != std::string::npos);
    s = {};
    s.failback_after = 0;
    CHECK(failover_problem(s).empty());
    s.failback_after = 0.01;
    CHECK(failover_problem(s).find("failback_after") != std::string::npos);
    s = {};
    s.probe_interval = 0;
    CHECK_FALSE(failover_problem(s).empty());
}

TEST_CASE("failover status: sources in the JSON, their URLs redacted and hidden without the token", "[failover]") {
    ChannelStatus s;
    s.sources.push_back(SourceStatus{"http://user:secret@a.example/live.m3u8", "cooldown", 3, 12.5});
    s.sources.push_back(SourceStatus{"http://b.example/live.m3u8?token=abc", "active", 0, 0});
    s.failovers = 4;
    auto j = to_json(s);
    REQUIRE(j["sources"].size() == 2);
    CHECK(j["sources"][0]["index"] == 0);
    CHECK(j["sources"][0]["role"] == "cooldown");
    CHECK(j["sources"][0]["consecutive_failures"] == 3);
    CHECK(j["sources"][0]["cooldown_seconds_left"] == 12.5);
    CHECK(j["failovers"] == 4);
    CHECK(j.dump().find("secret") == std::string::npos);
    CHECK(j.dump().find("abc") == std::string::npos);
    api::apply(j, api::Sources::hidden);
    CHECK(j["sources"][0]["url"].is_null());
    CHECK(j["sources"][1]["url"].is_null());
    CHECK(j["sources"][1]["role"] == "active");
}
