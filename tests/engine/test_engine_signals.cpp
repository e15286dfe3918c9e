// Operator signals: wait_ready(), outages counted once with their attempts, the recovery line and
// rate-limited warnings in the log, last_error cleared into previous_error once the channel is healthy,
// "stalled" whatever the source's socket says, and bytes delivered apart from bytes published.
#include "engine_fixture.hpp"

#include <hlsrelay/status.hpp>

#include <atomic>
#include <cmath>
#include <future>
#include <mutex>
#include <regex>
#include <sstream>

namespace hlsrelay::test {
namespace {

using Fault = LiveOrigin::Fault;
using namespace std::chrono_literals;

// Longer than any test runs: a wait that should end early and does not hangs the test into CTest's
// timeout (a failure), with no wall-clock threshold in the test itself.
constexpr double kForever = 3600;

// Log lines of one channel, at warning level and above.
struct LogLines {
    std::mutex mu;
    std::vector<std::string> lines;

    LogCallback callback(std::string channel) {
        return [this, channel](LogLevel level, const std::string& ch, const std::string& message) {
            if (ch != channel || level < LogLevel::Warn) return;
            std::lock_guard lock(mu);
            lines.push_back(message);
        };
    }
    std::vector<std::string> snapshot() {
        std::lock_guard lock(mu);
        return lines;
    }
};

// Events of one channel's states, in arrival order.
struct StateLog {
    std::mutex mu;
    std::vector<ChannelState> states;
    std::vector<ChannelState> snapshot() {
        std::lock_guard lock(mu);
        return states;
    }
    bool saw(ChannelState s) {
        const auto all = snapshot();
        return std::find(all.begin(), all.end(), s) != all.end();
    }
};

Engine::SubscriptionId watch_states(Engine& engine, const std::string& id, StateLog& log) {
    return engine.subscribe([&log, id](const Event& e) {
        if (e.type != EventType::StateChanged || e.channel != id) return;
        std::lock_guard lock(log.mu);
        log.states.push_back(e.state);
    });
}

}  // namespace

TEST_CASE("wait_ready: true once both playlists can be read, false at once when waiting cannot help", "[signals]") {
    LiveOrigin origin(live_media());
    origin.start();
    Engine engine(quick_settings());
    const auto c = engine.add_channel(channel("Ready", {origin.url()}));
    const auto failing = engine.add_channel(channel("Never", {"concat:/nonexistent/a.ts|/nonexistent/b.ts"}));

    // Unknown and not started: false without waiting (a wait would run into the test's timeout).
    CHECK_FALSE(engine.wait_ready("no such channel", kForever));
    CHECK_FALSE(engine.wait_ready(c.id, kForever));
    CHECK_THROWS_AS(engine.wait_ready(c.id, -1), Error);
    CHECK_THROWS_AS(engine.wait_ready(c.id, std::nan("")), Error);

    engine.start(c.id);
    REQUIRE(engine.wait_ready(c.id, 60));
    // Right after it returns true, both playlists are there: no retry loop needed.
    const auto master = engine.read(c.id, "master.m3u8");
    const auto media = engine.read(c.id, "index.m3u8");
    REQUIRE(master);
    REQUIRE(media);
    CHECK(master->data->rfind("#EXTM3U", 0) == 0);
    CHECK(media->data->find("#EXTINF:") != std::string::npos);
    CHECK(engine.wait_ready(c.name, 0));  // by display name; already ready: true with no time to wait

    // A channel that fails (no URL can ever work) ends the wait when it fails.
    engine.start(failing.id);
    CHECK_FALSE(engine.wait_ready(failing.id, kForever));
    CHECK(engine.status(failing.id).state == ChannelState::Failed);

    // A stop during the wait ends it.
    LiveOrigin hanging(live_media());
    hanging.start();
    hanging.set_fault(Fault::Hang);
    const auto h = engine.add_channel(channel("Hanging", {hanging.url()}));
    engine.start(h.id);
    auto waiting = std::async(std::launch::async, [&] { return engine.wait_ready(h.id, kForever); });
    REQUIRE(wait_until([&] { return engine.status(h.id).state == ChannelState::Starting; }, 10s));
    engine.stop(h.id);
    CHECK_FALSE(waiting.get());

    // A source that never answers: the timeout ends the wait.
    engine.start(h.id);
    CHECK_FALSE(engine.wait_ready(h.id, 0.3));
    CHECK(engine.running(h.id));
    engine.stop_all();
    hanging.stop();
}

TEST_CASE("an outage counts once with its attempts, and the log says when it ended, not every attempt", "[signals]") {
    LiveOrigin origin(live_media());
    origin.start();
    LogLines log;
    EngineSettings settings = quick_settings();
    settings.stall_timeout = 2.0;
    settings.log_level = LogLevel::Warn;
    settings.log = log.callback("outage");
    Engine engine(settings);
    ChannelConfig config = channel("Outage", {origin.url()});
    config.id = "outage";
    const auto c = engine.add_channel(config);
    engine.start(c.id);
    REQUIRE(engine.wait_ready(c.id, 60));
    REQUIRE(wait_until([&] { return engine.status(c.id).segments_published >= 3; }, 30s));
    CHECK(engine.status(c.id).reconnects == 0);
    const std::size_t lines_before = log.snapshot().size();

    origin.set_fault(Fault::Refuse);
    // Many failed attempts (backoff 0.2 s .. 1 s) make one outage.
    REQUIRE(wait_until([&] { return engine.status(c.id).reconnect_attempts >= 6; }, 60s));
    const ChannelStatus during = engine.status(c.id);
    CHECK(during.reconnects == 1);
    CHECK(during.state != ChannelState::Running);
    CHECK_FALSE(during.last_error.empty());
    const auto outage_lines = log.snapshot();
    {
        // One warning when the reloads start failing, one when the channel starts reconnecting; the
        // attempts after that are summarised later (one line per attempt before).
        std::vector<std::string> seen(outage_lines.begin() + static_cast<std::ptrdiff_t>(lines_before), outage_lines.end());
        for (const auto& l : seen) UNSCOPED_INFO("log: " << l);
        CHECK(seen.size() <= 3);
    }

    const int64_t published = engine.status(c.id).segments_published;
    origin.set_fault(Fault::None);
    REQUIRE(wait_until([&] {
        const auto s = engine.status(c.id);
        return s.state == ChannelState::Running && s.segments_published > published;
    }, 60s));
    const ChannelStatus after = engine.status(c.id);
    CHECK(after.reconnects == 1);
    CHECK(after.reconnect_attempts >= during.reconnect_attempts);

    const auto lines = log.snapshot();
    for (const auto& l : lines) UNSCOPED_INFO("log: " << l);
    const std::regex recovered(R"(recovered after ([0-9]+\.[0-9]) s outage \(([0-9]+) attempts?\))");
    const std::regex summary(R"(\(repeated ([0-9]+) times in [0-9.]+ s\)|([0-9]+) more warnings in [0-9.]+ s)");
    int recovered_lines = 0, summaries = 0;
    for (const auto& l : lines) {
        std::smatch m;
        if (std::regex_search(l, m, recovered)) {
            ++recovered_lines;
            CHECK(std::stoll(m[2].str()) == after.reconnect_attempts);
            CHECK(std::stod(m[1].str()) > 0);
        }
        if (std::regex_search(l, summary)) ++summaries;
    }
    CHECK(recovered_lines == 1);
    CHECK(summaries >= 1);  // the suppressed attempts are not lost: their count is logged
    CHECK(lines.size() - lines_before <= 6);
    engine.stop_all();
}

TEST_CASE("last_error moves to previous_error once the channel has been healthy for a while", "[signals]") {
    LiveOrigin origin(live_media());
    origin.start();
    EngineSettings settings = quick_settings();
    settings.stall_timeout = 2.0;
    settings.error_clear_after = 2.0;  // the test's "a while"
    Engine engine(settings);
    const auto c = engine.add_channel(channel("Clears", {origin.url()}));
    engine.start(c.id);
    REQUIRE(engine.wait_ready(c.id, 60));
    {
        const auto s = engine.status(c.id);
        CHECK(s.last_error.empty());
        CHECK(s.last_error_age_seconds == -1);
        CHECK(s.previous_error.empty());
        const auto j = to_json(s);
        CHECK(j["last_error_age_seconds"].is_null());
        CHECK(j["previous_error"].is_null());
        CHECK(j["previous_error_at"].is_null());
    }

    origin.set_fault(Fault::Refuse);
    REQUIRE(wait_until([&] { return engine.status(c.id).reconnect_attempts >= 3; }, 60s));
    {
        // Not healthy: the error stays however long the outage lasts.
        const auto s = engine.status(c.id);
        CHECK(s.state != ChannelState::Running);
        CHECK_FALSE(s.last_error.empty());
        CHECK(s.last_error_age_seconds >= 0);
        CHECK(to_json(s)["last_error_age_seconds"].is_number());
    }
    origin.set_fault(Fault::None);
    REQUIRE(wait_until([&] { return engine.status(c.id).state == ChannelState::Running; }, 60s));
    const std::string error = engine.status(c.id).last_error;
    const std::string error_at = engine.status(c.id).last_error_at;
    REQUIRE_FALSE(error.empty());
    REQUIRE(wait_until([&] { return engine.status(c.id).last_error.empty(); }, 60s));
    const auto s = engine.status(c.id);
    CHECK(s.state == ChannelState::Running);
    CHECK(s.last_error_at.empty());
    CHECK(s.last_error_age_seconds == -1);
    CHECK_FALSE(s.previous_error.empty());
    CHECK_FALSE(s.previous_error_at.empty());
    CHECK(s.previous_error_at >= error_at);  // ISO 8601 strings order as times
    CHECK(s.reconnects == 1);
    const auto j = to_json(s);
    CHECK(j["last_error"].is_null());
    CHECK(j["previous_error"] == s.previous_error);
    engine.stop_all();
}

TEST_CASE("a channel whose segments stop coming is stalled while its source connection stays up", "[signals]") {
    LiveOrigin origin(live_media());
    origin.start();
    EngineSettings settings = quick_settings();
    settings.stall_timeout = 120;  // the HLS client keeps reloading the frozen playlist: no reconnect
    Engine engine(settings);
    const auto c = engine.add_channel(channel("Stalls", {origin.url()}));
    StateLog states;
    const auto sub = watch_states(engine, c.id, states);
    engine.start(c.id);
    REQUIRE(engine.wait_ready(c.id, 60));
    REQUIRE(wait_until([&] { return engine.status(c.id).segments_published >= 4; }, 30s));
    CHECK_FALSE(states.saw(ChannelState::Stalled));

    origin.set_fault(Fault::Stall);
    REQUIRE(wait_until([&] { return engine.status(c.id).state == ChannelState::Stalled; }, 60s));
    {
        const auto s = engine.status(c.id);
        CHECK(s.reconnects == 0);
        CHECK(s.newest_segment_age_seconds > 3.0 * s.target_duration);
        CHECK(s.cleanup_running);
        const auto j = to_json(s);
        CHECK(j["state"] == "stalled");
        CHECK(j["process_status"] == "stalled");
    }
    REQUIRE(wait_until([&] { return states.saw(ChannelState::Stalled); }, 10s));

    origin.set_fault(Fault::None);
    REQUIRE(wait_until([&] { return engine.status(c.id).state == ChannelState::Running; }, 60s));
    REQUIRE(wait_until([&] {
        const auto all = states.snapshot();
        return !all.empty() && all.back() == ChannelState::Running;
    }, 10s));
    {
        // The events tell the same story in order: running, stalled, running.
        const auto all = states.snapshot();
        const auto stalled = std::find(all.begin(), all.end(), ChannelState::Stalled);
        REQUIRE(stalled != all.end());
        CHECK(std::find(all.begin(), stalled, ChannelState::Running) != stalled);
        CHECK(std::find(stalled, all.end(), ChannelState::Running) != all.end());
    }
    CHECK(engine.status(c.id).reconnects == 0);
    engine.unsubscribe(sub);
    engine.stop_all();
}

TEST_CASE("a source that delivers long segments in bursts is not stalled between them", "[signals]") {
    // 6 s source segments cut into 1 s output segments: six segments at once, then nothing for 6 s and
    // the reload wait. Three output target durations, or the 5 s floor, would call that a stall every
    // time; the source's cadence (the media time of a burst) sets the bound instead.
    MediaSpec spec;
    spec.seconds = 60;
    spec.segment_seconds = 6.0;
    spec.gop_frames = 25;
    spec.name = "bursts-6s";
    LiveOrigin origin(make_media(spec));
    origin.start();
    Engine engine(quick_settings(1.0, 8));
    const auto c = engine.add_channel(channel("Bursts", {origin.url()}));
    StateLog states;
    const auto sub = watch_states(engine, c.id, states);
    engine.start(c.id);
    REQUIRE(engine.wait_ready(c.id, 60));
    REQUIRE(wait_until([&] { return engine.status(c.id).segments_published >= 18; }, 60s));  // the first burst
    const int64_t first = engine.status(c.id).segments_published;
    // Three more source segments: three gaps between bursts.
    REQUIRE(wait_until([&] { return engine.status(c.id).segments_published >= first + 18; }, 120s));
    for (auto s : states.snapshot()) UNSCOPED_INFO("state event: " << to_string(s));
    CHECK_FALSE(states.saw(ChannelState::Stalled));
    CHECK(engine.status(c.id).state == ChannelState::Running);
    engine.unsubscribe(sub);
    engine.stop_all();
}

TEST_CASE("bytes_out counts what read() hands out, bytes_published what was published", "[signals]") {
    Engine engine(quick_settings());
    ChannelConfig config = channel("Bytes", {live_media().single_file});
    config.loop = true;
    const auto c = engine.add_channel(config);
    engine.start(c.id);
    REQUIRE(engine.wait_ready(c.id, 60));
    REQUIRE(wait_until([&] { return engine.status(c.id).segments_published >= 2; }, 30s));
    // Nobody read anything yet: nothing delivered, whatever was published.
    const auto s0 = engine.status(c.id);
    CHECK(s0.bytes_out == 0);
    CHECK(s0.bytes_published > 0);

    const auto media = engine.read(c.id, "index.m3u8");
    REQUIRE(media);
    std::string first_segment;
    std::istringstream lines(std::string(media->bytes()));
    for (std::string line; std::getline(lines, line);)
        if (line.rfind("seg_", 0) == 0) {
            first_segment = line;
            break;
        }
    REQUIRE_FALSE(first_segment.empty());
    const auto segment = engine.read(c.id, first_segment);
    REQUIRE(segment);
    const int64_t expected = static_cast<int64_t>(media->bytes().size() + segment->bytes().size());
    CHECK(engine.status(c.id).bytes_out == expected);
    // Headers only (an HTTP HEAD): nothing delivered. Unknown files: nothing either.
    CHECK(engine.read(c.id, first_segment, Delivery::headers));
    CHECK_FALSE(engine.read(c.id, "seg_1.ts"));
    const auto s1 = engine.status(c.id);
    CHECK(s1.bytes_out == expected);
    CHECK(to_json(s1)["bytes_out"] == expected);
    CHECK(to_json(s1)["bytes_published"] == s1.bytes_published);
    engine.stop_all();
}

}  // namespace hlsrelay::test
