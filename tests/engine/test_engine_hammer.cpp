// A seeded hammer over the engine's whole control surface, with a channel in every state: running
// (a healthy origin), connecting to a source that refuses, to one that hangs, failed (a protocol no
// one speaks), stopped and removed. Phase one is unsynchronised chaos from six threads; phase two
// gives every channel an owner thread that records the last operation it applied while the other
// threads keep reading, so the final state of every channel can be checked against its last op.
// A watchdog turns a deadlock into a test failure with the stuck operation named. Meant for
// ThreadSanitizer as much as for itself.
#include "engine_fixture.hpp"

#include <hlsrelay/api.hpp>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <latch>
#include <mutex>
#include <random>
#include <set>

namespace hlsrelay::test {

namespace {

using Clock = std::chrono::steady_clock;

// Every worker thread reports here before and after each operation; the watchdog checks that none
// stays inside one for longer than `limit`.
class Watchdog {
public:
    explicit Watchdog(std::size_t threads) : slots_(threads) {}
    // `since` is written before `op`, and `stuck` reads them in the other order, so a reader that sees
    // an operation also sees when it began (never the zero or stale time of an earlier one).
    void enter(std::size_t t, const char* op) {
        slots_[t].since.store(Clock::now().time_since_epoch().count());
        slots_[t].op.store(op);
    }
    void leave(std::size_t t) { slots_[t].op.store(nullptr); }
    // The operation stuck longer than `limit`, or nullptr.
    const char* stuck(std::chrono::seconds limit) const {
        const auto now = Clock::now().time_since_epoch().count();
        for (const auto& s : slots_) {
            const char* op = s.op.load();
            if (op && now - s.since.load() > std::chrono::duration_cast<Clock::duration>(limit).count()) return op;
        }
        return nullptr;
    }

private:
    struct Slot {
        std::atomic<const char*> op{nullptr};
        std::atomic<Clock::rep> since{0};
    };
    std::vector<Slot> slots_;
};

// A status snapshot and its JSON form are well formed whatever the channel is doing.
bool status_ok(const ChannelStatus& s, std::string& why) {
    const std::string text = to_json(s).dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
    const auto j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded()) return why = "status JSON does not parse: " + text, false;
    static const std::set<std::string> states{"idle", "starting", "running", "reconnecting", "stopped", "failed", "stalled"};
    if (!states.count(j.at("state").get<std::string>())) return why = "state " + j.at("state").dump(), false;
    if (j.at("stream_id") != s.stream_id) return why = "stream_id", false;
    if (s.segment_count < 0 || s.segment_count > s.max_segments) return why = "segment_count " + std::to_string(s.segment_count), false;
    if (s.cleanup_running && (s.state == ChannelState::Stopped || s.state == ChannelState::Idle))
        return why = "cleanup_running " + std::to_string(s.cleanup_running) + " in state " + std::string(to_string(s.state)), false;
    return true;
}

}  // namespace

TEST_CASE("seeded hammer over channels in every state, final states checked against the last op") {
    LiveOrigin healthy(live_media(), {.speed = 4.0});
    healthy.start();
    LiveOrigin refusing(live_media());
    refusing.start();
    refusing.set_fault(LiveOrigin::Fault::Refuse);
    LiveOrigin hanging(live_media());
    hanging.start();
    hanging.set_fault(LiveOrigin::Fault::Hang);

    const std::vector<std::pair<std::string, std::vector<std::string>>> kinds{
        {"healthy", {healthy.url()}},
        {"refusing", {refusing.url()}},
        {"hanging", {hanging.url()}},
        {"bad-url", {"bogus-protocol://nowhere/stream.ts"}},
        {"failover", {"bogus-protocol://nowhere/a.ts", refusing.url(), healthy.url()}},
        {"file", {live_media().single_file}},
    };
    const uint32_t seed = 0x5eed0000u + static_cast<uint32_t>(Catch::rngSeed());
    INFO("seed " << seed);

    Engine engine(quick_settings(1.0, 3));
    std::atomic<int64_t> events{0};
    engine.subscribe([&](const Event&) { events.fetch_add(1, std::memory_order_relaxed); });
    auto config_of = [&](std::size_t kind, const std::string& id) {
        ChannelConfig c = channel(kinds[kind].first + " " + id, kinds[kind].second);
        c.id = id;
        c.loop = true;
        return c;
    };
    constexpr std::size_t kChannels = 12;
    auto id_of = [](std::size_t i) { return "ch" + std::to_string(i); };
    for (std::size_t i = 0; i < kChannels; ++i) engine.add_channel(config_of(i % kinds.size(), id_of(i)));
    // Start in every state: some running, some stopped, one removed.
    for (std::size_t i = 0; i < kChannels; i += 2) engine.start(id_of(i));
    engine.stop(id_of(2));
    engine.remove_channel(id_of(kChannels - 1));

    constexpr std::size_t kThreads = 6;
    Watchdog watchdog(kThreads);
    std::atomic<bool> chaos_done{false}, all_done{false};
    std::atomic<int> operations{0};
    std::atomic<std::size_t> finished{0};
    std::latch chaos_over(static_cast<std::ptrdiff_t>(kThreads));
    std::mutex problems_mu;
    std::vector<std::string> problems;
    auto problem = [&](std::string p) {
        std::lock_guard lock(problems_mu);
        if (problems.size() < 20) problems.push_back(std::move(p));
    };

    // One operation on channel `i`; returns the op's name. Unknown channels (removed meanwhile) are
    // fine; any other engine error is a problem.
    enum class Op { Start, Stop, Update, Remove, Add, Status, Statuses, Read, Json };
    const char* names[] = {"start", "stop", "update", "remove", "add", "status", "statuses", "read", "json"};
    auto apply = [&](std::size_t t, Op op, std::size_t i, std::mt19937& rng) {
        const std::string id = id_of(i);
        watchdog.enter(t, names[static_cast<int>(op)]);
        try {
            switch (op) {
                case Op::Start: engine.start(id); break;
                case Op::Stop: engine.stop(id); break;
                case Op::Update: {
                    ChannelConfig c = config_of(rng() % kinds.size(), id);
                    c.hls.max_segments = 2 + static_cast<int>(rng() % 4);
                    engine.update_channel(id, c);
                    break;
                }
                case Op::Remove: engine.remove_channel(id); break;
                case Op::Add:
                    if (!engine.find_channel(id)) engine.add_channel(config_of(rng() % kinds.size(), id));
                    break;
                case Op::Status: {
                    std::string why;
                    if (!status_ok(engine.status(id), why)) problem(id + ": " + why);
                    break;
                }
                case Op::Statuses: {
                    std::string why;
                    for (const auto& s : engine.statuses())
                        if (!status_ok(s, why)) problem(s.stream_id + ": " + why);
                    break;
                }
                case Op::Read: {
                    if (auto p = engine.read(id, "index.m3u8")) {
                        const std::string& text = std::string(p->bytes());
                        if (text.rfind("#EXTM3U", 0) != 0) problem(id + ": playlist without #EXTM3U");
                        const auto at = text.rfind("seg_");
                        if (at != std::string::npos) (void)engine.read(id, text.substr(at, text.find(".ts", at) + 3 - at));
                    }
                    (void)engine.read(id, "master.m3u8");
                    break;
                }
                case Op::Json: {
                    const auto body = nlohmann::json::parse(api::streams_status(engine).dump(), nullptr, false);
                    if (body.is_discarded() || !body.at("streams").is_array()) problem("streams-status JSON");
                    break;
                }
            }
        } catch (const Error& e) {
            const bool benign = e.code() == ErrorCode::NotFound ||
                                (op == Op::Add && e.code() == ErrorCode::InvalidArgument);  // added meanwhile
            if (!benign) problem(std::string(names[static_cast<int>(op)]) + " " + id + ": " + e.what());
        } catch (const std::exception& e) {
            problem(std::string(names[static_cast<int>(op)]) + " " + id + ": " + e.what());
        }
        watchdog.leave(t);
        operations.fetch_add(1, std::memory_order_relaxed);
    };

    // Phase two: channel i belongs to thread i % kThreads, which records its last control op.
    enum class Last { Started, Stopped, Removed, Untouched };
    std::vector<Last> last(kChannels, Last::Untouched);

    auto worker = [&](std::size_t t) {
        std::mt19937 rng(seed + static_cast<uint32_t>(t));
        while (!chaos_done.load()) apply(t, static_cast<Op>(rng() % 9), rng() % kChannels, rng);
        chaos_over.arrive_and_wait();  // no chaos op may land after an owner's last op
        // Owned channels: a seeded sequence of control ops; others: reads only.
        for (int step = 0; step < 12; ++step) {
            for (std::size_t i = t; i < kChannels; i += kThreads) {
                switch (rng() % 4) {
                    case 0: apply(t, Op::Add, i, rng); apply(t, Op::Start, i, rng); last[i] = Last::Started; break;
                    case 1: apply(t, Op::Stop, i, rng); last[i] = last[i] == Last::Removed ? Last::Removed : Last::Stopped; break;
                    case 2: apply(t, Op::Remove, i, rng); last[i] = Last::Removed; break;
                    default: apply(t, Op::Update, i, rng); break;  // keeps running/stopped as it was
                }
                apply(t, static_cast<Op>(5 + rng() % 4), rng() % kChannels, rng);
            }
        }
        while (!all_done.load()) {  // reads go on until every owner is done
            apply(t, static_cast<Op>(5 + rng() % 4), rng() % kChannels, rng);
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        finished.fetch_add(1);
    };

    std::vector<std::thread> threads;
    for (std::size_t t = 0; t < kThreads; ++t) threads.emplace_back(worker, t);
    const auto t0 = Clock::now();
    const char* stuck = nullptr;
    while (Clock::now() - t0 < std::chrono::seconds(6) && !(stuck = watchdog.stuck(std::chrono::seconds(20))))
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    chaos_done = true;
    // Phase two runs until each owner has done its 12 steps; then the readers stop.
    std::this_thread::sleep_for(std::chrono::seconds(3));
    all_done = true;
    const auto t1 = Clock::now();
    while (!stuck && finished.load() < kThreads) {
        stuck = watchdog.stuck(std::chrono::seconds(20));
        if (Clock::now() - t1 > std::chrono::seconds(90)) stuck = "a thread did not finish within 90 s";
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (stuck) {
        // A deadlock: the threads cannot be joined, so say which operation hung and end the process.
        std::fprintf(stderr, "engine hammer (seed %u): an engine operation did not return within 20 s: %s\n", seed, stuck);
        std::abort();
    }
    for (auto& t : threads) t.join();
    INFO("operations " << operations.load() << ", events " << events.load());
    for (const auto& p : problems) FAIL_CHECK(p);
    CHECK(operations.load() > 200);

    // Final states follow each channel's last control op.
    for (std::size_t i = 0; i < kChannels; ++i) {
        const std::string id = id_of(i);
        INFO(id);
        switch (last[i]) {
            case Last::Removed:
                CHECK_FALSE(engine.find_channel(id));
                CHECK_THROWS_AS(engine.status(id), Error);
                CHECK_FALSE(engine.read(id, "index.m3u8"));
                break;
            case Last::Started: {
                REQUIRE(engine.find_channel(id));
                CHECK(engine.running(id));
                const ChannelStatus s = engine.status(id);
                CHECK(s.cleanup_running);
                CHECK(s.state != ChannelState::Stopped);
                CHECK(s.state != ChannelState::Idle);
                break;
            }
            case Last::Stopped:
                if (engine.find_channel(id)) {  // a stop of a removed channel leaves it removed
                    CHECK_FALSE(engine.running(id));
                    CHECK_FALSE(engine.status(id).cleanup_running);
                    CHECK_FALSE(engine.read(id, "index.m3u8"));
                }
                break;
            case Last::Untouched: break;
        }
    }
    // A healthy channel that was left running, or a fresh one, still serves.
    ChannelConfig survivor = channel("Survivor", {healthy.url()});
    const auto c = engine.add_channel(survivor);
    engine.start(c.id);
    CHECK(wait_until([&] { return engine.read(c.id, "index.m3u8").has_value(); }, std::chrono::seconds(20)));
    const auto stop_t0 = Clock::now();
    engine.stop_all();
    CHECK(std::chrono::duration<double>(Clock::now() - stop_t0).count() < 5.0);
    for (const auto& s : engine.statuses()) CHECK_FALSE(s.cleanup_running);
    hanging.set_fault(LiveOrigin::Fault::None);
}

}  // namespace hlsrelay::test
