// Hammers the engine from several threads: start/stop/update/remove/add/status/read in random order
// over many cycles, with channels in every state. Meant for ThreadSanitizer as much as for itself.
#include "engine_fixture.hpp"

#include <atomic>
#include <random>

namespace hlsrelay::test {

TEST_CASE("concurrent control, status and reads over channels in every state") {
    LiveOrigin origin(live_media(), {.speed = 4.0});
    origin.start();
    LiveOrigin hanging(live_media(), {.speed = 1.0});
    hanging.start();
    hanging.set_fault(LiveOrigin::Fault::Hang);
    MediaSpec spec;
    spec.seconds = 3;
    spec.name = "short-3s";
    const MediaSet& file = make_media(spec);

    EngineSettings settings = quick_settings(1.0, 3);
    settings.read_timeout = 30;  // the hanging source holds a read this long unless stop interrupts it
    Engine engine(settings);
    std::atomic<int64_t> events{0};
    engine.subscribe([&](const Event&) { events.fetch_add(1, std::memory_order_relaxed); });
    const std::vector<std::vector<std::string>> sources{
        {origin.url()}, {origin.master_url()}, {"http://127.0.0.1:9/dead.m3u8"}, {hanging.url()}, {file.single_file}};
    for (size_t i = 0; i < sources.size(); ++i) {
        auto c = channel("Channel " + std::to_string(i), sources[i]);
        c.loop = true;
        engine.add_channel(c);
    }

    std::atomic<bool> done{false};
    std::atomic<int> operations{0}, failures{0};
    auto worker = [&](unsigned seed) {
        std::mt19937 rng(seed);
        while (!done.load()) {
            const auto all = engine.channels();
            const std::string id = all.empty() ? "channel_0" : all[rng() % all.size()].id;
            try {
                switch (rng() % 9) {
                    case 0: case 1: engine.start(id); break;
                    case 2: engine.stop(id); break;
                    case 3: {
                        auto c = engine.find_channel(id);
                        if (c) {
                            c->hls.max_segments = 2 + static_cast<int>(rng() % 4);
                            engine.update_channel(id, *c);
                        }
                        break;
                    }
                    case 4:
                        if (rng() % 4 == 0) {
                            engine.remove_channel(id);
                        } else {
                            (void)engine.statuses();
                        }
                        break;
                    case 5: {
                        auto c = channel("Channel " + std::to_string(rng() % sources.size()),
                                         sources[rng() % sources.size()]);
                        c.loop = true;
                        if (engine.channels().size() < 8) engine.add_channel(c);
                        break;
                    }
                    case 6: (void)engine.status(id); break;
                    default: {
                        auto playlist = engine.read(id, "index.m3u8");
                        if (playlist) {
                            const std::string& text = std::string(playlist->bytes());
                            const auto at = text.rfind("seg_");
                            if (at != std::string::npos)
                                (void)engine.read(id, text.substr(at, text.find(".ts", at) + 3 - at));
                        }
                    }
                }
            } catch (const Error& e) {
                if (e.code() != ErrorCode::NotFound) failures.fetch_add(1);  // removed meanwhile: fine
            }
            operations.fetch_add(1);
        }
    };
    std::vector<std::thread> threads;
    for (unsigned t = 0; t < 4; ++t) threads.emplace_back(worker, 1234 + t);
    std::this_thread::sleep_for(std::chrono::seconds(8));
    done = true;
    for (auto& t : threads) t.join();
    INFO("operations " << operations.load() << ", events " << events.load());
    CHECK(failures.load() == 0);
    CHECK(operations.load() > 100);
    CHECK(events.load() > 0);

    // Whatever state that left, every channel can still be started and serves a stream.
    const auto c = engine.add_channel(channel("Survivor", {origin.url()}));
    engine.start(c.id);
    REQUIRE(wait_until([&] { return engine.status(c.id).segments_published >= 1; }, std::chrono::seconds(20)));
    const auto t0 = std::chrono::steady_clock::now();
    engine.stop_all();
    const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    INFO("stop_all took " << took << " s");
    CHECK(took < settings.read_timeout / 3);  // interrupted, not waited out (a generous bound under TSan)
    for (const auto& s : engine.statuses()) CHECK_FALSE(s.cleanup_running);
    hanging.set_fault(LiveOrigin::Fault::None);
}

}  // namespace hlsrelay::test
