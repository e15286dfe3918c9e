// Many clients against the server while its channels are stopped and started through the API, and
// while the server itself shuts down: every response is well formed (or the connection closes), and
// nothing crashes or hangs. Meant for ThreadSanitizer as much as for itself.
#include "server_fixture.hpp"

#include <atomic>
#include <filesystem>
#include <set>
#include <thread>
#include <mutex>
#include <random>

using namespace hlsrelay;
using namespace hlsrelay::test;
using namespace std::chrono_literals;

namespace {

// What one request showed; `error` is set for anything a correct server could not have produced.
struct Check {
    std::string error;
};

Check check_response(const std::string& path, const HttpResponse& r, bool closing) {
    auto fail = [&](const std::string& why) { return Check{path + " -> " + std::to_string(r.status) + ": " + why}; };
    const auto cl = r.headers.find("content-length");
    const bool complete = cl != r.headers.end() && std::to_string(r.body.size()) == cl->second;
    if (!complete && !(closing && cl != r.headers.end())) return fail("body of " + std::to_string(r.body.size()) + " bytes");
    if (!complete) return {};  // cut short by the shutdown: a closed connection, allowed then
    if (r.status == 200 && path.ends_with(".m3u8") && r.body.rfind("#EXTM3U", 0) != 0) return fail("playlist without #EXTM3U");
    if (r.status == 200 && path.ends_with(".ts") &&
        (r.body.empty() || r.body.size() % 188 != 0 || static_cast<unsigned char>(r.body[0]) != 0x47))
        return fail("segment that is not MPEG-TS");
    if (r.headers.count("content-type") && r.headers.at("content-type") == "application/json" &&
        nlohmann::json::parse(r.body, nullptr, false).is_discarded())
        return fail("invalid JSON");
    static const std::set<int> statuses{200, 206, 404, 503};
    if (!statuses.count(r.status)) return fail("unexpected status");
    return {};
}

}  // namespace

TEST_CASE("50 clients while channels stop and start and the server shuts down") {
    ServerUnderTest s;
    s.start_and_wait("live");
    s.start_and_wait("file");
    const uint16_t port = s.port();
    auto url = [port](const std::string& path) { return "http://127.0.0.1:" + std::to_string(port) + path; };

    std::atomic<bool> closing{false}, done{false};
    std::atomic<int> requests{0}, good{0}, refused{0};
    std::mutex mu;
    std::vector<std::string> problems;
    auto problem = [&](const std::string& p) {
        std::lock_guard lock(mu);
        if (problems.size() < 20) problems.push_back(p);
    };

    const auto t_start = std::chrono::steady_clock::now();
    auto client = [&](unsigned seed) {
        std::mt19937 rng(seed);
        std::string last_segment[2];
        const char* ids[] = {"live", "file"};
        while (!done.load()) {
            const int which = static_cast<int>(rng() % 2);
            const std::string id = ids[which];
            std::string path;
            switch (rng() % 6) {
                case 0: path = "/hls_streams/" + id + "/master.m3u8"; break;
                case 1: path = "/hls_streams/" + id + "/index.m3u8"; break;
                case 2: path = last_segment[which].empty() ? "/healthz" : "/hls_streams/" + id + "/" + last_segment[which]; break;
                case 3: path = "/api/v1/channels/stream-status/" + id; break;
                case 4: path = "/api/v1/channels/streams-status"; break;
                default: path = "/metrics"; break;
            }
            const bool was_closing = closing.load();
            const auto req_t0 = std::chrono::steady_clock::now();
            try {
                const HttpResponse r = http_get(url(path), 10s);
                requests.fetch_add(1);
                const Check c = check_response(path, r, was_closing || closing.load());
                if (!c.error.empty()) problem(c.error);
                else good.fetch_add(1);
                if (r.status == 200 && path.ends_with("index.m3u8")) {
                    const auto at = r.body.rfind("seg_");
                    if (at != std::string::npos) last_segment[which] = r.body.substr(at, r.body.find('\n', at) - at);
                }
            } catch (const std::exception& e) {
                // Only a closing server may refuse or drop a connection; nothing may be malformed or hang.
                const std::string what = e.what();
                const bool dropped = what.find("connect to") != std::string::npos ||
                                     what.find("closed before a complete") != std::string::npos ||
                                     what.find("recv:") != std::string::npos || what.find("send:") != std::string::npos;
                if (!(dropped && (was_closing || closing.load())))
                    problem(path + ": " + what + (was_closing ? " (sent while the server was closing)" : "") + " started " +
                            std::to_string(std::chrono::duration<double>(req_t0 - t_start).count()) + " s into the test");
                else refused.fetch_add(1);
                if (closing.load()) std::this_thread::sleep_for(20ms);
            }
        }
    };
    std::vector<std::thread> clients;
    for (unsigned i = 0; i < 50; ++i) clients.emplace_back(client, 777 + i);

    // Control through the API meanwhile, as a dashboard user hammering the buttons would.
    std::mt19937 rng(4242);
    const auto t0 = std::chrono::steady_clock::now();
    int controls = 0;
    while (std::chrono::steady_clock::now() - t0 < 8s) {
        const std::string id = rng() % 2 ? "live" : "file";
        const std::string path = rng() % 2 ? "/api/v1/channels/start-stream/" + id : "/api/v1/channels/" + id + "/stop";
        try {
            const HttpResponse r = http_get(url(path), 10s, path.ends_with("/stop") ? "POST" : "GET");
            if (r.status != 200) problem(path + " -> " + std::to_string(r.status) + " " + r.body);
        } catch (const std::exception& e) {
            problem(path + ": " + e.what());
        }
        ++controls;
        std::this_thread::sleep_for(std::chrono::milliseconds(50 + rng() % 200));
    }
    // Restart both so that the shutdown happens with channels running and segments in flight.
    s.get_json("/api/v1/channels/start-stream/live");
    s.get_json("/api/v1/channels/start-stream/file");
    std::this_thread::sleep_for(1s);
    closing = true;
    INFO("closing began " << std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count() << " s into the test");
    const auto stop_t0 = std::chrono::steady_clock::now();
    s.server->stop();
    const double stop_took = std::chrono::duration<double>(std::chrono::steady_clock::now() - stop_t0).count();
    std::this_thread::sleep_for(500ms);  // clients meet the closed port
    done = true;
    for (auto& t : clients) t.join();

    INFO("requests " << requests.load() << ", good " << good.load() << ", dropped while closing " << refused.load()
                     << ", control calls " << controls);
    for (const auto& p : problems) FAIL_CHECK(p);
    CHECK(good.load() > 500);
    CHECK(controls > 10);
    INFO("server stop took " << stop_took << " s");
    CHECK(stop_took < 30.0);  // a stop that hangs fails here or at ctest's timeout; generous under TSan
    // The engine outlives its server and keeps its channels.
    CHECK(s.engine.running("live"));
}
