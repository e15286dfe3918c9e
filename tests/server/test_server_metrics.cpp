// /metrics: bytes delivered to clients (bytes_out) apart from bytes published, every state listed
// (stalled too), outages apart from attempts.
#include "server_fixture.hpp"

#include <hlsrelay/status.hpp>

#include <regex>
#include <sstream>

using namespace hlsrelay;
using namespace hlsrelay::test;
using namespace std::chrono_literals;

namespace {

// The value of one sample, e.g. metric("hlsrelay_channel_bytes_out_total", "file"); -1 when absent.
double metric(const std::string& body, const std::string& name, const std::string& channel) {
    const std::string prefix = name + "{channel=\"" + channel + "\"} ";
    const std::size_t at = body.find(prefix);
    if (at == std::string::npos) return -1;
    return std::stod(body.substr(at + prefix.size(), body.find('\n', at) - at - prefix.size()));
}

}  // namespace

TEST_CASE("/metrics: bytes_out counts bytes sent to clients, published bytes have their own name") {
    ServerUnderTest s;
    s.start_and_wait("file");  // waits without reading
    REQUIRE(wait_until([&] { return s.engine.status("file").segments_published >= 2; }, 30s));

    auto scrape = [&] {
        const HttpResponse m = s.get("/metrics");
        REQUIRE(m.status == 200);
        return m.body;
    };
    const std::string before = scrape();
    const double out0 = metric(before, "hlsrelay_channel_bytes_out_total", "file");
    CHECK(out0 == 0);  // nobody has fetched anything yet
    CHECK(metric(before, "hlsrelay_channel_bytes_published_total", "file") > 0);
    CHECK(before.find("# TYPE hlsrelay_channel_bytes_published_total counter") != std::string::npos);
    CHECK(metric(before, "hlsrelay_channel_reconnect_attempts_total", "file") == 0);
    for (ChannelState st : kChannelStates) {  // every state, stalled included
        INFO(to_string(st));
        CHECK(before.find("hlsrelay_channel_state{channel=\"file\",state=\"" + std::string(to_string(st)) + "\"}") !=
              std::string::npos);
    }

    // What a player fetches: the playlists and a segment, counted with their full bodies.
    const HttpResponse master = s.get("/hls_streams/file/master.m3u8");
    const HttpResponse media = s.get("/hls_streams/file/index.m3u8");
    REQUIRE(master.status == 200);
    REQUIRE(media.status == 200);
    std::string segment_name;
    std::istringstream lines(media.body);
    for (std::string line; std::getline(lines, line);)
        if (line.rfind("seg_", 0) == 0) segment_name = line;
    REQUIRE_FALSE(segment_name.empty());
    const HttpResponse segment = s.get("/hls_streams/file/" + segment_name);
    REQUIRE(segment.status == 200);
    const double sent = static_cast<double>(master.body.size() + media.body.size() + segment.body.size());
    CHECK(metric(scrape(), "hlsrelay_channel_bytes_out_total", "file") == out0 + sent);

    // HEAD sends no body: not counted. A 404 sends no resource: not counted.
    const HttpResponse head = s.get("/hls_streams/file/" + segment_name, "HEAD");
    CHECK(head.status == 200);
    CHECK(s.get("/hls_streams/file/seg_1.ts").status == 404);
    const std::string after = scrape();
    CHECK(metric(after, "hlsrelay_channel_bytes_out_total", "file") == out0 + sent);
    // Status says the same as /metrics.
    const auto status = s.get_json("/api/v1/channels/stream-status/file");
    CHECK(status["bytes_out"].get<double>() == out0 + sent);
    CHECK(status["bytes_published"].get<int64_t>() > 0);
    CHECK(metric(after, "hlsrelay_channel_bytes_published_total", "live") == 0);  // not running
}
