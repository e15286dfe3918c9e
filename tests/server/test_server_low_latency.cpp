// LL-HLS delivery by the demo server (RFC 8216bis 6.2.5.2 and 6.2.6): a blocking playlist reload and
// a preload hint's part are held on Asio timers until the part is published, and answered 503 with
// Retry-After once three target durations pass without it (the source stalled).
#include "server_fixture.hpp"

#include <regex>

using namespace hlsrelay;
using namespace hlsrelay::test;
using namespace std::chrono_literals;

namespace {

// The URI of the playlist's EXT-X-PRELOAD-HINT (TYPE=PART), empty if none.
std::string preload_hint(const std::string& playlist) {
    std::smatch m;
    static const std::regex hint(R"re(#EXT-X-PRELOAD-HINT:TYPE=PART,URI="([^"]+)")re");
    return std::regex_search(playlist, m, hint) ? m[1].str() : std::string();
}

// "/hls_streams/ll/index.m3u8?_HLS_msn=M&_HLS_part=P" for the part after the newest one listed.
std::string next_part_request(const PlaylistPosition& p) {
    return "/hls_streams/ll/index.m3u8?_HLS_msn=" + std::to_string(p.open_msn) + "&_HLS_part=" + std::to_string(p.open_parts);
}

void check_timeout(const HttpResponse& r) {
    INFO(r.status << " " << r.body);
    REQUIRE(r.status == 503);
    CHECK(r.headers.at("content-type") == "application/json");
    CHECK(r.headers.at("retry-after") == "1");
    CHECK(nlohmann::json::parse(r.body)["detail"].get<std::string>().find("three target durations") != std::string::npos);
}

}  // namespace

TEST_CASE("LL-HLS: blocking reloads and hinted parts are held until published, 503 after three target durations") {
    ServerUnderTest s;
    ChannelConfig ll;
    ll.id = "ll";
    ll.name = "Low Latency";
    ll.urls = {s.origin.url()};
    ll.hls.low_latency = true;
    ll.hls.part_duration = 1.0 / 3;
    s.engine.add_channel(ll);
    s.start_and_wait("ll");
    REQUIRE(wait_until([&] {
        const auto p = s.engine.playlist_position("ll", "index.m3u8");
        return p && p->low_latency && p->last_msn >= 1 && p->open_msn > p->last_msn;
    }, 30s));
    const int target = s.engine.playlist_position("ll", "index.m3u8")->target_duration;
    REQUIRE(target == 1);

    // Refused at once: malformed directives, or a segment too far ahead.
    {
        // Three past the last segment, against a fresh position each time: a loaded machine may
        // publish two segments between the read and the request, which makes the request legitimate.
        std::vector<int> answers;
        for (int attempt = 0; attempt < 3 && (answers.empty() || answers.back() != 400); ++attempt) {
            const auto p = *s.engine.playlist_position("ll", "index.m3u8");
            answers.push_back(s.get("/hls_streams/ll/index.m3u8?_HLS_msn=" + std::to_string(p.last_msn + 3)).status);
        }
        INFO("answers to _HLS_msn three past the last: " << Catch::Detail::stringify(answers));
        CHECK(answers.back() == 400);
        CHECK(s.get("/hls_streams/ll/index.m3u8?_HLS_part=1").status == 400);
        CHECK(s.get("/hls_streams/ll/index.m3u8?_HLS_msn=x").status == 400);
        CHECK(s.get("/hls_streams/ll/index.m3u8?_HLS_skip=maybe").status == 400);
    }

    // A blocking reload for the part after the newest: answered once it exists, cacheable (its URL
    // names what it holds), and it lists that part.
    {
        const auto p = *s.engine.playlist_position("ll", "index.m3u8");
        const HttpResponse r = s.get(next_part_request(p));
        INFO(r.body);
        REQUIRE(r.status == 200);
        CHECK(r.headers.at("cache-control") == "public, max-age=" + std::to_string(6 * target));
        const auto now = *s.engine.playlist_position("ll", "index.m3u8");
        CHECK(now.holds(p.open_msn, p.open_parts));
        CHECK(r.body.find("#EXT-X-PART:") != std::string::npos);
        CHECK(r.body.find("#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES") != std::string::npos);
    }

    // The preload hint's part, asked for before it is complete: the whole part once it is.
    {
        const std::string hint = preload_hint(s.get("/hls_streams/ll/index.m3u8").body);
        REQUIRE(!hint.empty());
        const HttpResponse part = s.get("/hls_streams/ll/" + hint);
        INFO(hint << " -> " << part.status);
        REQUIRE(part.status == 200);
        CHECK(part.headers.at("content-type") == "video/mp2t");
        REQUIRE(part.body.size() >= 188);
        CHECK(part.body[0] == 0x47);
    }

    // The source stalls: its playlist stops advancing. Once the relay has published all it had (a
    // wait on the engine for the next part times out), requests for the next part wait three
    // target durations and get 503.
    s.origin.set_fault(LiveOrigin::Fault::Stall);
    bool quiet = false;
    for (int i = 0; i < 10 && !quiet; ++i) {
        const auto p = *s.engine.playlist_position("ll", "index.m3u8");
        quiet = !s.engine.wait_playlist("ll", "index.m3u8", p.open_msn, p.open_parts, 4.0 * target);
    }
    REQUIRE(quiet);
    {
        const auto p = *s.engine.playlist_position("ll", "index.m3u8");
        const auto asked = std::chrono::steady_clock::now();
        const HttpResponse r = s.get(next_part_request(p));
        // A timer never fires early: this is a lower bound, not a timing threshold.
        CHECK(std::chrono::steady_clock::now() - asked >= std::chrono::milliseconds(3000 * target - 50));
        check_timeout(r);

        const std::string hint = preload_hint(s.get("/hls_streams/ll/index.m3u8").body);
        REQUIRE(!hint.empty());
        check_timeout(s.get("/hls_streams/ll/" + hint));
        // A part past the hinted one is not held: it does not exist.
        const auto number = std::stoll(hint.substr(hint.find('_') + 1));
        CHECK(s.get("/hls_streams/ll/part_" + std::to_string(number + 1) + ".ts").status == 404);
    }

    // The source comes back: a request held meanwhile is answered as the relay publishes again.
    {
        const auto p = *s.engine.playlist_position("ll", "index.m3u8");
        std::thread clear([&] {
            std::this_thread::sleep_for(500ms);
            s.origin.set_fault(LiveOrigin::Fault::None);
        });
        const HttpResponse r = s.get(next_part_request(p));
        clear.join();
        INFO(r.status << " " << r.body);
        // The relay may need more than three target durations to reconnect after the stall: then 503
        // first, and a second ask must be answered.
        if (r.status == 503) {
            REQUIRE(wait_until([&] { return s.engine.playlist_position("ll", "index.m3u8")->holds(p.open_msn, p.open_parts); }, 30s));
            CHECK(s.get(next_part_request(p)).status == 200);
        } else {
            CHECK(r.status == 200);
        }
        CHECK(wait_until([&] { return s.get_json("/api/v1/channels/stream-status/ll")["state"] == "running"; }, 30s));
    }
}
