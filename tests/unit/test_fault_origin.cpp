// Proves the fault-injection fixtures: MPEG-TS timestamp shifting and damage, the origin's newer
// faults (corrupt segments, timestamp jumps and resets, redirects, media switches) and the watcher.
#include <catch2/catch.hpp>

#include "support/http_get.hpp"
#include "support/origin.hpp"
#include "support/output_watcher.hpp"
#include "support/ts_edit.hpp"

#include "ingest/m3u8.hpp"

#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

using namespace std::chrono_literals;
using namespace hlsrelay::test;
using Fault = LiveOrigin::Fault;

namespace {

MediaSpec spec6() {
    MediaSpec spec;
    spec.seconds = 6;
    spec.name = "fault_origin_av6";
    return spec;
}

// Polls `condition` until it holds or `timeout` (generous: a loaded machine) passes.
bool wait_for(const std::function<bool()>& condition, std::chrono::seconds timeout = 30s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!condition()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(10ms);
    }
    return true;
}

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

hlsrelay::m3u8::MediaPlaylist parse(const std::string& text) {
    return hlsrelay::m3u8::parse(text, "http://127.0.0.1/live/index.m3u8").media();
}

}  // namespace

TEST_CASE("ts_edit: scan reads PES timestamps and the PMT, shift moves every one of them", "[origin][faults]") {
    const MediaSet& m = make_media(spec6());
    const std::string seg = slurp(m.segment_files[2]);
    const TsScan before = scan_ts(seg);
    REQUIRE(before.aligned);
    REQUIRE(before.pids.size() == 2);
    CHECK(before.stream_types.size() == 2);
    CHECK(before.stream_types.begin()->second == 0x1B);  // H.264 on the first PID
    for (const auto& [pid, span] : before.pids) {
        CHECK(span.pes > 0);
        CHECK(ts_diff(span.first, span.last) > 0);
    }
    for (const int64_t offset : {LiveOrigin::kTimestampJump, int64_t{-90000}, kTs33 - 5}) {
        const std::string shifted = shift_ts(seg, offset);
        REQUIRE(shifted.size() == seg.size());
        const TsScan after = scan_ts(shifted);
        REQUIRE(after.pids.size() == before.pids.size());
        for (const auto& [pid, span] : before.pids) {
            CHECK(ts_diff(span.first, after.pids.at(pid).first) == ts_diff(0, offset));
            CHECK(ts_diff(span.last, after.pids.at(pid).last) == ts_diff(0, offset));
        }
        CHECK(shift_ts(shifted, -offset) == seg);  // PCR included: shifting back restores every byte
    }
    const std::string bad = corrupt_ts(seg, 7);
    CHECK(bad.size() == seg.size());
    CHECK(bad != seg);
    CHECK_FALSE(scan_ts(bad).aligned);  // one packet lost its sync byte
    CHECK(corrupt_ts(seg, 7) == bad);   // deterministic
}

TEST_CASE("the origin's timeline faults shift the served timestamps from the next segment on", "[origin][faults]") {
    LiveOrigin o(make_media(spec6()), {.speed = 4.0, .window = 6});
    o.start();
    const int64_t last = o.newest_sequence();
    const int64_t before = first_timestamp(http_get(o.segment_url(last)).body);
    o.set_fault(Fault::TimestampJump);
    o.set_fault(Fault::None);  // a one-shot: clearing changes nothing
    CHECK(first_timestamp(http_get(o.segment_url(last)).body) == before);  // already published: unchanged
    const int64_t next = last + 1;
    REQUIRE(o.newest_sequence() <= last + 1);
    REQUIRE(wait_for([&] { return o.newest_sequence() >= next; }));
    const std::string served = http_get(o.segment_url(next)).body;
    CHECK(served == o.served_bytes(next));
    CHECK(served != o.segment_bytes(next));
    CHECK(ts_diff(first_timestamp(o.segment_bytes(next)), first_timestamp(served)) == LiveOrigin::kTimestampJump);
    CHECK(parse(http_get(o.url()).body).segments.back().discontinuity == false);  // untagged

    o.set_fault(Fault::TimestampReset);
    const int64_t reset = o.newest_sequence() + 1;
    REQUIRE(wait_for([&] { return o.newest_sequence() >= reset; }));
    CHECK(first_timestamp(http_get(o.segment_url(reset)).body) == 9000);
}

TEST_CASE("the origin corrupts segments while the fault lasts and redirects on cue", "[origin][faults]") {
    LiveOrigin o(make_media(spec6()), {.speed = 1.0});
    o.start();
    const int64_t s = o.newest_sequence();
    o.set_fault(Fault::CorruptSegments);
    const auto bad = http_get(o.segment_url(s));
    CHECK(bad.status == 200);
    CHECK(bad.body.size() == o.segment_bytes(s).size());
    CHECK(bad.body != o.segment_bytes(s));
    o.set_fault(Fault::Redirect);
    const auto moved = http_get(o.url());
    CHECK(moved.status == 302);
    CHECK(moved.headers.at("location") == "http://127.0.0.1:" + std::to_string(o.port()) + "/moved/live/index.m3u8");
    CHECK(http_get(moved.headers.at("location")).status == 200);
    o.set_fault(Fault::None);
    CHECK(http_get(o.segment_url(s)).body == o.segment_bytes(s));
    CHECK(http_get("127.0.0.1:" + std::to_string(o.port()) + "/moved/live/seg_" + std::to_string(s) + ".ts").body ==
          o.segment_bytes(s));
}

TEST_CASE("the origin switches media mid-stream, tagged or not, and counts the tags", "[origin][faults]") {
    MediaSpec wide = spec6();
    wide.width = 640;
    wide.height = 360;
    wide.name = "fault_origin_av6_640";
    MediaSpec mpeg2 = spec6();
    mpeg2.video_codec = "mpeg2";
    mpeg2.audio_codec = "mp3";
    mpeg2.name = "fault_origin_av6_mpeg2_mp3";
    LiveOrigin::Options options{.speed = 4.0, .window = 20, .loop = false};
    options.alternate_media = {make_media(wide), make_media(mpeg2)};
    LiveOrigin o(make_media(spec6()), options);
    CHECK(o.media_count() == 3);
    CHECK_THROWS_AS(o.switch_media(3, true), std::out_of_range);
    o.start();
    const int64_t tagged = o.switch_media(2, true);
    REQUIRE(wait_for([&] { return o.newest_sequence() >= tagged + 1; }));
    const int64_t untagged = o.switch_media(1, false);
    REQUIRE(wait_for([&] { return o.newest_sequence() >= untagged; }));
    const auto p = parse(http_get(o.url()).body);
    for (const auto& seg : p.segments) {
        INFO("sequence " << seg.sequence);
        CHECK(seg.discontinuity == (seg.sequence == tagged));
        CHECK(seg.discontinuity_sequence == (seg.sequence >= tagged ? 1 : 0));
    }
    CHECK(scan_ts(http_get(o.segment_url(tagged)).body).stream_types.begin()->second == 0x02);  // MPEG-2 video
    CHECK(http_get(o.segment_url(untagged)).body == slurp(make_media(wide).segment_files[o.file_index(untagged)]));
    CHECK(http_get(o.segment_url(tagged - 1)).body == o.segment_bytes(tagged - 1));
    MediaSpec longer = spec6();
    longer.seconds = 8;
    longer.name = "fault_origin_av8";
    LiveOrigin::Options mismatched;
    mismatched.alternate_media = {make_media(longer)};
    CHECK_THROWS_AS(LiveOrigin(make_media(spec6()), mismatched), std::invalid_argument);
}

TEST_CASE("the output watcher flags what breaks the HLS contract", "[origin][faults]") {
    // A hand-made output: the reader serves whatever the test puts in `files`.
    std::mutex mu;
    std::map<std::string, std::shared_ptr<const std::string>> files;
    const MediaSet& m = make_media(spec6());
    auto put = [&](const std::string& name, std::string data) {
        std::lock_guard lock(mu);
        files[name] = std::make_shared<const std::string>(std::move(data));
    };
    OutputWatcher w([&](const std::string& f) -> std::shared_ptr<const std::string> {
        std::lock_guard lock(mu);
        auto it = files.find(f);
        return it == files.end() ? nullptr : it->second;
    }, {.name = "out", .poll_interval = 0.05});
    // Returns once the watcher has run a whole poll that began after the call (a poll holds the
    // watcher's lock, which report() takes: a count read is a finished poll).
    auto polled = [&] {
        const int64_t before = w.report().polls;
        REQUIRE(wait_for([&] { return w.report().polls >= before + 1; }));
    };
    auto playlist = [&](int64_t first, int64_t last, const std::string& extra = {}) {
        std::string t = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:" +
                        std::to_string(first) + "\n" + extra;
        for (int64_t s = first; s <= last; ++s) t += "#EXTINF:1.000,\nseg_" + std::to_string(s) + ".ts\n";
        put("index.m3u8", t);
    };
    for (int i = 0; i < 4; ++i) put("seg_" + std::to_string(i) + ".ts", slurp(m.segment_files[static_cast<size_t>(i)]));
    playlist(0, 2);
    w.start();
    polled();
    playlist(1, 3);
    polled();
    CHECK(w.violations().empty());
    CHECK(w.report().segments_seen == 4);
    SECTION("a segment that leaves early is a dangling reference") {
        {
            std::lock_guard lock(mu);
            files.erase("seg_0.ts");
        }
        polled();
        // seg_0 was fetched right when it left; its in-grace fetch comes ~4 s later (1 s + a 3 s playlist).
        CHECK(w.report().dangling == 0);
        REQUIRE(wait_for([&] {
            const auto r = w.report();
            return r.grace_checks + r.late_checks_skipped >= 1;
        }));
        w.stop();
        const auto r = w.report();
        if (r.late_checks_skipped > 0) {
            WARN("the watcher reached seg_0's grace check too late to count it (a loaded machine): nothing to judge");
        } else {
            CHECK(r.grace_checks == 1);
            CHECK(r.dangling == 1);
        }
    }
    SECTION("the timeline jumping without a tag, ENDLIST, a sequence going back") {
        put("seg_4.ts", shift_ts(slurp(m.segment_files[4]), LiveOrigin::kTimestampJump));
        playlist(2, 4, "");
        polled();
        playlist(1, 3, "");
        polled();
        put("index.m3u8", "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:2\n#EXTINF:1,\nseg_2.ts\n#EXT-X-ENDLIST\n");
        polled();
        w.stop();
        const auto v = w.violations();
        auto has = [&](const std::string& what) {
            return std::any_of(v.begin(), v.end(), [&](const std::string& s) { return s.find(what) != std::string::npos; });
        };
        CHECK(has("segments 3 -> 4: PID"));
        CHECK(has("EXT-X-MEDIA-SEQUENCE went back"));
        CHECK(has("EXT-X-ENDLIST"));
    }
}
