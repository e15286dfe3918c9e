// Tests for the HLS playlist parser (ingest/m3u8.hpp): media and master playlists, URL resolution, errors, garbage.
#include <catch2/catch.hpp>

#include "ingest/m3u8.hpp"

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace m3u8 = hlsrelay::m3u8;

namespace {

constexpr std::string_view kUrl = "http://origin.example/live/chan1/index.m3u8?token=abc";

struct Failure {
    int line = 0;
    std::string what;
};

// Parses text that must fail and returns where and why.
Failure failure_of(std::string_view text, std::string_view url = kUrl) {
    try {
        m3u8::parse(text, url);
    } catch (const m3u8::ParseError& e) {
        return {e.line(), e.what()};
    }
    FAIL("expected a ParseError for:\n" << text);
    return {};
}

m3u8::MediaPlaylist media_of(std::string_view text, std::string_view url = kUrl) {
    auto p = m3u8::parse(text, url);
    REQUIRE_FALSE(p.is_master());
    return p.media();
}

m3u8::MasterPlaylist master_of(std::string_view text, std::string_view url = kUrl) {
    auto p = m3u8::parse(text, url);
    REQUIRE(p.is_master());
    return p.master();
}

std::array<uint8_t, 16> iv_bytes(std::initializer_list<uint8_t> tail) {
    std::array<uint8_t, 16> iv{};
    std::size_t i = 16 - tail.size();
    for (auto b : tail) iv[i++] = b;
    return iv;
}

// A media playlist of n one-second segments, used for the size limits.
std::string many_segments(std::size_t n, std::string_view header = "") {
    std::string s = "#EXTM3U\n#EXT-X-TARGETDURATION:1\n";
    s += header;
    for (std::size_t i = 0; i < n; ++i) s += "#EXTINF:1,\ns.ts\n";
    return s;
}

}  // namespace

TEST_CASE("m3u8: live media playlist with discontinuities", "[m3u8]") {
    const auto m = media_of(
        "#EXTM3U\n"
        "#EXT-X-VERSION:3\n"
        "#EXT-X-TARGETDURATION:6\n"
        "#EXT-X-MEDIA-SEQUENCE:1000\n"
        "#EXT-X-DISCONTINUITY-SEQUENCE:7\n"
        "# a plain comment\n"
        "#EXT-X-SOME-VENDOR-TAG:whatever\n"
        "#EXTINF:6.006,first segment\n"
        "seg1000.ts\n"
        "#EXTINF:5.5,\n"
        "seg1001.ts\n"
        "#EXT-X-DISCONTINUITY\n"
        "#EXTINF:4,ad, with a comma\n"
        "\n"
        "/ads/ad1.ts\n"
        "#EXTINF:4\n"  // no comma: tolerated
        "https://cdn.example/ads/ad2.ts?sig=1\n"
        "#EXTINF:6.0,\n"
        "#EXT-X-DISCONTINUITY\n"  // tags between EXTINF and its URI still apply to it
        "../other/seg2000.ts\n");
    CHECK(m.version == 3);
    CHECK(m.target_duration == 6);
    CHECK(m.media_sequence == 1000);
    CHECK(m.discontinuity_sequence == 7);
    CHECK_FALSE(m.endlist);
    CHECK(m.playlist_type.empty());
    CHECK_FALSE(m.independent_segments);
    REQUIRE(m.segments.size() == 5);

    const auto& s = m.segments;
    CHECK(s[0].uri == "http://origin.example/live/chan1/seg1000.ts");
    CHECK(s[0].duration == Approx(6.006));
    CHECK(s[0].title == "first segment");
    CHECK(s[1].uri == "http://origin.example/live/chan1/seg1001.ts");
    CHECK(s[1].duration == Approx(5.5));
    CHECK(s[1].title.empty());
    CHECK(s[2].uri == "http://origin.example/ads/ad1.ts");
    CHECK(s[2].title == "ad, with a comma");
    CHECK(s[3].uri == "https://cdn.example/ads/ad2.ts?sig=1");
    CHECK(s[3].duration == 4);
    CHECK(s[4].uri == "http://origin.example/live/other/seg2000.ts");

    std::vector<int64_t> seq, dseq;
    std::vector<bool> disc;
    for (const auto& seg : s) {
        seq.push_back(seg.sequence);
        dseq.push_back(seg.discontinuity_sequence);
        disc.push_back(seg.discontinuity);
        CHECK_FALSE(seg.gap);
        CHECK_FALSE(seg.key);
        CHECK_FALSE(seg.map);
        CHECK_FALSE(seg.byterange);
        CHECK_FALSE(seg.program_date_time);
    }
    CHECK(seq == std::vector<int64_t>{1000, 1001, 1002, 1003, 1004});
    CHECK(disc == std::vector<bool>{false, false, true, false, true});
    CHECK(dseq == std::vector<int64_t>{7, 7, 8, 8, 9});
    CHECK(m.total_duration() == Approx(6.006 + 5.5 + 4 + 4 + 6));
}

TEST_CASE("m3u8: discontinuity numbers stay stable as a live window slides", "[m3u8]") {
    // Reload 1: a discontinuity before the third segment.
    const auto a = media_of(
        "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:10\n"
        "#EXTINF:2,\na.ts\n#EXTINF:2,\nb.ts\n#EXT-X-DISCONTINUITY\n#EXTINF:2,\nc.ts\n");
    // Reload 2: two segments removed, the tagged one is now first and the sequence was not bumped.
    const auto b = media_of(
        "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:12\n"
        "#EXT-X-DISCONTINUITY\n#EXTINF:2,\nc.ts\n#EXTINF:2,\nd.ts\n");
    // Reload 3: the tagged segment removed, so the server bumped EXT-X-DISCONTINUITY-SEQUENCE.
    const auto c = media_of(
        "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:13\n#EXT-X-DISCONTINUITY-SEQUENCE:1\n"
        "#EXTINF:2,\nd.ts\n");
    REQUIRE(a.segments.size() == 3);
    REQUIRE(b.segments.size() == 2);
    REQUIRE(c.segments.size() == 1);
    CHECK(a.segments[2].sequence == 12);
    CHECK(a.segments[2].discontinuity_sequence == 1);
    CHECK(b.segments[0].sequence == 12);
    CHECK(b.segments[0].discontinuity);
    CHECK(b.segments[0].discontinuity_sequence == 1);
    CHECK(b.segments[1].sequence == 13);
    CHECK(b.segments[1].discontinuity_sequence == 1);
    CHECK(c.segments[0].sequence == 13);
    CHECK(c.segments[0].discontinuity_sequence == 1);
}

TEST_CASE("m3u8: byte ranges", "[m3u8]") {
    const auto m = media_of(
        "#EXTM3U\n#EXT-X-VERSION:4\n#EXT-X-TARGETDURATION:10\n"
        "#EXTINF:10,\n#EXT-X-BYTERANGE:1000@200\nmain.ts\n"
        "#EXT-X-BYTERANGE:500\n#EXTINF:10,\nmain.ts\n"  // continues at 1200
        "#EXTINF:10,\n#EXT-X-BYTERANGE:300\nmain.ts\n"  // continues at 1700
        "#EXTINF:10,\nwhole.ts\n"                        // no range at all
        "#EXTINF:10,\n#EXT-X-BYTERANGE:64@0\nother.ts\n"
        "#EXTINF:10,\n#EXT-X-BYTERANGE:0@9000000000\nother.ts\n");
    REQUIRE(m.segments.size() == 6);
    REQUIRE(m.segments[0].byterange);
    CHECK(m.segments[0].byterange->length == 1000);
    CHECK(m.segments[0].byterange->offset == 200);
    REQUIRE(m.segments[1].byterange);
    CHECK(m.segments[1].byterange->length == 500);
    CHECK(m.segments[1].byterange->offset == 1200);
    REQUIRE(m.segments[2].byterange);
    CHECK(m.segments[2].byterange->length == 300);
    CHECK(m.segments[2].byterange->offset == 1700);
    CHECK_FALSE(m.segments[3].byterange);
    REQUIRE(m.segments[4].byterange);
    CHECK(m.segments[4].byterange->offset == 0);
    CHECK(m.segments[4].uri == "http://origin.example/live/chan1/other.ts");
    REQUIRE(m.segments[5].byterange);
    CHECK(m.segments[5].byterange->length == 0);
    CHECK(m.segments[5].byterange->offset == 9000000000);

    SECTION("an offset-less range must follow a range of the same URI") {
        auto f = failure_of(
            "#EXTM3U\n#EXT-X-TARGETDURATION:10\n"
            "#EXTINF:10,\n#EXT-X-BYTERANGE:100@0\na.ts\n"
            "#EXTINF:10,\n#EXT-X-BYTERANGE:100\nb.ts\n");
        CHECK(f.line == 7);
        CHECK_THAT(f.what, Catch::Contains("EXT-X-BYTERANGE has no offset"));
    }
    SECTION("an offset-less range on the first segment") {
        auto f = failure_of("#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXT-X-BYTERANGE:100\n#EXTINF:10,\na.ts\n");
        CHECK(f.line == 3);
    }
    SECTION("an offset-less range after a segment without a range") {
        auto f = failure_of("#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\na.ts\n#EXTINF:10,\n#EXT-X-BYTERANGE:5\na.ts\n");
        CHECK(f.line == 6);
    }
    SECTION("malformed ranges") {
        for (auto bad : {"", "abc", "-5", "10@", "@10", "10@x", "10@-1", "1.5@0", "99999999999999999999"}) {
            auto f = failure_of(std::string("#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n#EXT-X-BYTERANGE:") + bad +
                                "\na.ts\n");
            CHECK(f.line == 4);
            CHECK(f.what == "line 4: EXT-X-BYTERANGE is not <length>[@<offset>]");
        }
    }
    SECTION("a continued offset that would overflow") {
        // The first range ends exactly at 2^63 - 1; the next one cannot go on from there.
        auto f = failure_of(
            "#EXTM3U\n#EXT-X-TARGETDURATION:10\n"
            "#EXTINF:10,\n#EXT-X-BYTERANGE:10@9223372036854775797\na.ts\n"
            "#EXTINF:10,\n#EXT-X-BYTERANGE:1\na.ts\n");
        CHECK(f.line == 7);
        CHECK_THAT(f.what, Catch::Contains("overflows"));
        CHECK(media_of("#EXTM3U\n#EXT-X-TARGETDURATION:10\n"
                       "#EXTINF:10,\n#EXT-X-BYTERANGE:10@9223372036854775797\na.ts\n"
                       "#EXTINF:10,\n#EXT-X-BYTERANGE:0\na.ts\n")
                  .segments.back()
                  .byterange->offset == 9223372036854775807);
    }
    SECTION("an explicit range whose end (offset + length) does not fit in 64 bits") {
        // The client asks for bytes offset..offset+length: that sum must not overflow.
        for (auto bad : {"9223372036854775807@9223372036854775807", "2@9223372036854775806", "9223372036854775807@1"}) {
            auto f = failure_of(std::string("#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n#EXT-X-BYTERANGE:") + bad +
                                "\na.ts\n");
            CHECK(f.what == "line 4: EXT-X-BYTERANGE is not <length>[@<offset>]");
            f = failure_of(std::string("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MAP:URI=\"i.mp4\",BYTERANGE=\"") + bad +
                           "\"\n#EXTINF:2,\na.m4s\n");
            CHECK(f.what == "line 3: EXT-X-MAP BYTERANGE is not <length>[@<offset>]");
        }
    }
}

TEST_CASE("m3u8: durations are bounded (a day), so that waits computed from them stay finite", "[m3u8]") {
    CHECK(media_of("#EXTM3U\n#EXT-X-TARGETDURATION:86400\n#EXTINF:86400,\na.ts\n").segments.at(0).duration == 86400);
    auto f = failure_of("#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:86400.5,\na.ts\n");
    CHECK(f.what == "line 3: EXTINF duration exceeds 86400 s");
    f = failure_of("#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:1e308,\na.ts\n");
    CHECK(f.what == "line 3: EXTINF duration exceeds 86400 s");
    f = failure_of("#EXTM3U\n#EXT-X-TARGETDURATION:18446744073709551615\n#EXTINF:1,\na.ts\n");
    CHECK(f.what == "line 2: EXT-X-TARGETDURATION exceeds 86400 s");
}

TEST_CASE("m3u8: encryption keys", "[m3u8]") {
    const auto m = media_of(
        "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:50\n"
        "#EXTINF:4,\nclear.ts\n"
        "#EXT-X-KEY:METHOD=AES-128,URI=\"keys/k1.bin?v=1\",IV=0x000102030405060708090A0B0C0D0E0F\n"
        "#EXTINF:4,\nenc1.ts\n"
        "#EXTINF:4,\nenc2.ts\n"  // the key carries over
        "#EXT-X-KEY:METHOD=AES-128,URI=\"https://keys.example/k2\"\n"
        "#EXTINF:4,\nenc3.ts\n"
        "#EXT-X-KEY:METHOD=AES-128,URI=\"k3\",IV=0x1ff\n"  // short IV: a number, right-aligned
        "#EXTINF:4,\nenc4.ts\n"
        "#EXT-X-KEY:METHOD=NONE\n"
        "#EXTINF:4,\nclear2.ts\n"
        "#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://key\",KEYFORMAT=\"com.apple.streamingkeydelivery\","
        "KEYFORMATVERSIONS=\"1\"\n"
        "#EXTINF:4,\nsample.ts\n");
    REQUIRE(m.segments.size() == 7);
    const auto& s = m.segments;
    CHECK_FALSE(s[0].key);

    REQUIRE(s[1].key);
    CHECK(s[1].key->method == "AES-128");
    CHECK(s[1].key->uri == "http://origin.example/live/chan1/keys/k1.bin?v=1");
    CHECK(s[1].key->keyformat == "identity");
    REQUIRE(s[1].key->iv);
    CHECK(*s[1].key->iv == std::array<uint8_t, 16>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15});
    REQUIRE(s[2].key);
    CHECK(s[2].key->uri == s[1].key->uri);
    CHECK(s[2].key->iv == s[1].key->iv);

    REQUIRE(s[3].key);
    CHECK(s[3].key->uri == "https://keys.example/k2");
    CHECK_FALSE(s[3].key->iv);  // the client uses the sequence number instead
    CHECK(s[3].sequence == 53);

    REQUIRE(s[4].key);
    REQUIRE(s[4].key->iv);
    CHECK(*s[4].key->iv == iv_bytes({0x01, 0xff}));

    CHECK_FALSE(s[5].key);

    REQUIRE(s[6].key);
    CHECK(s[6].key->method == "SAMPLE-AES");
    CHECK(s[6].key->uri == "skd://key");
    CHECK(s[6].key->keyformat == "com.apple.streamingkeydelivery");

    SECTION("of several keys for the same segments the identity one wins") {
        const auto multi = media_of(
            "#EXTM3U\n#EXT-X-TARGETDURATION:4\n"
            "#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://x\",KEYFORMAT=\"com.apple.streamingkeydelivery\"\n"
            "#EXT-X-KEY:METHOD=AES-128,URI=\"plain.key\"\n"
            "#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"data:abc\",KEYFORMAT=\"urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed\"\n"
            "#EXTINF:4,\na.ts\n"
            "#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://y\",KEYFORMAT=\"com.apple.streamingkeydelivery\"\n"
            "#EXTINF:4,\nb.ts\n");
        REQUIRE(multi.segments.size() == 2);
        REQUIRE(multi.segments[0].key);
        CHECK(multi.segments[0].key->uri == "http://origin.example/live/chan1/plain.key");
        REQUIRE(multi.segments[1].key);  // a later tag, after a segment, replaces it
        CHECK(multi.segments[1].key->uri == "skd://y");
    }
    SECTION("key errors") {
        const std::string head = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\na.ts\n";
        auto f = failure_of(head + "#EXT-X-KEY:URI=\"k\"\n#EXTINF:4,\nb.ts\n");
        CHECK(f.what == "line 5: EXT-X-KEY without METHOD");
        f = failure_of(head + "#EXT-X-KEY:METHOD=AES-128\n#EXTINF:4,\nb.ts\n");
        CHECK(f.what == "line 5: EXT-X-KEY without URI");
        for (auto bad : {"0x", "1234", "0xZZ", "0x000102030405060708090A0B0C0D0E0F00"}) {
            f = failure_of(head + "#EXT-X-KEY:METHOD=AES-128,URI=\"k\",IV=" + bad + "\n#EXTINF:4,\nb.ts\n");
            CHECK(f.what == "line 5: EXT-X-KEY IV is not a 128-bit hexadecimal number");
        }
        f = failure_of(head + "#EXT-X-KEY:METHOD=AES-128,URI=\"k\n#EXTINF:4,\nb.ts\n");
        CHECK(f.line == 5);
        CHECK_THAT(f.what, Catch::StartsWith("line 5: EXT-X-KEY has a bad attribute list: "));
    }
}

TEST_CASE("m3u8: EXT-X-MAP init sections", "[m3u8]") {
    const auto m = media_of(
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXT-X-INDEPENDENT-SEGMENTS\n"
        "#EXT-X-MAP:URI=\"init.mp4\"\n"
        "#EXTINF:2,\ns1.m4s\n#EXTINF:2,\ns2.m4s\n"
        "#EXT-X-DISCONTINUITY\n"
        "#EXT-X-MAP:URI=\"/other/init.mp4\",BYTERANGE=\"720@32\"\n"
        "#EXTINF:2,\ns3.m4s\n"
        "#EXT-X-MAP:URI=\"all.mp4\",BYTERANGE=1361\n"  // unquoted and offset-less, as some packagers write it
        "#EXTINF:2,\n#EXT-X-BYTERANGE:5000@1361\nall.mp4\n");
    CHECK(m.version == 7);
    CHECK(m.independent_segments);
    REQUIRE(m.segments.size() == 4);
    for (int i : {0, 1}) {
        REQUIRE(m.segments[i].map);
        CHECK(m.segments[i].map->uri == "http://origin.example/live/chan1/init.mp4");
        CHECK_FALSE(m.segments[i].map->byterange);
    }
    REQUIRE(m.segments[2].map);
    CHECK(m.segments[2].map->uri == "http://origin.example/other/init.mp4");
    REQUIRE(m.segments[2].map->byterange);
    CHECK(m.segments[2].map->byterange->length == 720);
    CHECK(m.segments[2].map->byterange->offset == 32);
    REQUIRE(m.segments[3].map);
    REQUIRE(m.segments[3].map->byterange);
    CHECK(m.segments[3].map->byterange->length == 1361);
    CHECK(m.segments[3].map->byterange->offset == 0);
    REQUIRE(m.segments[3].byterange);
    CHECK(m.segments[3].byterange->offset == 1361);

    auto f = failure_of("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MAP:BYTERANGE=\"1@0\"\n#EXTINF:2,\na.m4s\n");
    CHECK(f.what == "line 3: EXT-X-MAP without URI");
    f = failure_of("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MAP:URI=\"i.mp4\",BYTERANGE=\"x\"\n#EXTINF:2,\na.m4s\n");
    CHECK(f.line == 3);
}

TEST_CASE("m3u8: program date time, gap, playlist type and endlist", "[m3u8]") {
    const auto m = media_of(
        "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-PLAYLIST-TYPE:EVENT\n"
        "#EXT-X-PROGRAM-DATE-TIME:2024-03-01T12:00:00.000Z\n"
        "#EXTINF:4,\na.ts\n"
        "#EXTINF:4,\nb.ts\n"
        "#EXT-X-GAP\n#EXTINF:4,\nmissing.ts\n"
        "#EXT-X-PROGRAM-DATE-TIME:2024-03-01T12:00:12.500+01:00\n#EXTINF:4,\nc.ts\n"
        "#EXT-X-ENDLIST\n");
    CHECK(m.playlist_type == "EVENT");
    CHECK(m.endlist);
    REQUIRE(m.segments.size() == 4);
    REQUIRE(m.segments[0].program_date_time);
    CHECK(*m.segments[0].program_date_time == "2024-03-01T12:00:00.000Z");
    CHECK_FALSE(m.segments[1].program_date_time);  // not extrapolated
    CHECK_FALSE(m.segments[1].gap);
    CHECK(m.segments[2].gap);
    CHECK_FALSE(m.segments[3].gap);
    REQUIRE(m.segments[3].program_date_time);
    CHECK(*m.segments[3].program_date_time == "2024-03-01T12:00:12.500+01:00");

    CHECK(media_of("#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-ENDLIST\n").playlist_type ==
          "VOD");
    auto f = failure_of("#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-PLAYLIST-TYPE:LIVE\n");
    CHECK(f.what == "line 3: EXT-X-PLAYLIST-TYPE must be EVENT or VOD");
    f = failure_of("#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-PROGRAM-DATE-TIME:\n#EXTINF:4,\na.ts\n");
    CHECK(f.line == 3);
}

TEST_CASE("m3u8: an empty media playlist and numeric header tags", "[m3u8]") {
    const auto m = media_of("#EXTM3U\n#EXT-X-TARGETDURATION:10.5\n#EXT-X-MEDIA-SEQUENCE:0\n");
    CHECK(m.target_duration == 10.5);
    CHECK(m.segments.empty());
    CHECK(m.total_duration() == 0);
    CHECK(m.version == 1);

    CHECK(failure_of("#EXTM3U\n#EXT-X-TARGETDURATION:x\n").what ==
          "line 2: EXT-X-TARGETDURATION is not a non-negative number");
    CHECK(failure_of("#EXTM3U\n#EXT-X-TARGETDURATION:-4\n").line == 2);
    CHECK(failure_of("#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:-1\n").what ==
          "line 3: EXT-X-MEDIA-SEQUENCE is not a valid integer");
    CHECK(failure_of("#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:9223372036854775807\n").what ==
          "line 3: EXT-X-MEDIA-SEQUENCE is too large");
    CHECK(failure_of("#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-DISCONTINUITY-SEQUENCE:1e3\n").line == 3);
    CHECK(failure_of("#EXTM3U\n#EXT-X-VERSION:three\n#EXT-X-TARGETDURATION:4\n").what ==
          "line 2: EXT-X-VERSION is not a valid integer");
}

TEST_CASE("m3u8: master playlist", "[m3u8]") {
    const auto m = master_of(
        "#EXTM3U\n"
        "#EXT-X-VERSION:4\n"
        "#EXT-X-INDEPENDENT-SEGMENTS\n"
        "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aac\",NAME=\"English\",LANGUAGE=\"en\",DEFAULT=YES,AUTOSELECT=YES,"
        "URI=\"audio/en.m3u8\"\n"
        "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aac\",NAME=\"Deutsch\",LANGUAGE=\"de\",DEFAULT=NO,AUTOSELECT=YES\n"
        "#EXT-X-STREAM-INF:BANDWIDTH=1280000,AVERAGE-BANDWIDTH=1000000,CODECS=\"avc1.4d401f,mp4a.40.2\","
        "RESOLUTION=640x360,FRAME-RATE=29.970,AUDIO=\"aac\"\n"
        "low/index.m3u8\n"
        "#EXT-X-STREAM-INF: BANDWIDTH=5000000, RESOLUTION=1920x1080, FRAME-RATE=50, CODECS=\"avc1.640028\"\n"
        "\n"
        "# comment between tag and URI\n"
        "https://cdn.example/hi/index.m3u8?q=1\n"
        "#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=86000,URI=\"iframes.m3u8\"\n"
        "#EXT-X-STREAM-INF:BANDWIDTH=2560000,VIDEO=\"v\"\n"
        "//other.example/mid.m3u8\n"
        "#EXT-X-STREAM-INF:BANDWIDTH=64000,CODECS=\"mp4a.40.5\"\n"
        "../audio-only.m3u8\n");
    CHECK(m.independent_segments);
    REQUIRE(m.variants.size() == 4);

    const auto& low = m.variants[0];
    CHECK(low.uri == "http://origin.example/live/chan1/low/index.m3u8");
    CHECK(low.bandwidth == 1280000);
    REQUIRE(low.average_bandwidth);
    CHECK(*low.average_bandwidth == 1000000);
    CHECK(low.codecs == "avc1.4d401f,mp4a.40.2");
    CHECK(low.width == 640);
    CHECK(low.height == 360);
    CHECK(low.frame_rate == Approx(29.97));
    CHECK(low.audio_group == "aac");
    CHECK(low.video_group.empty());

    const auto& hi = m.variants[1];
    CHECK(hi.uri == "https://cdn.example/hi/index.m3u8?q=1");
    CHECK(hi.bandwidth == 5000000);
    CHECK_FALSE(hi.average_bandwidth);
    CHECK(hi.width == 1920);
    CHECK(hi.height == 1080);
    CHECK(hi.frame_rate == 50);
    CHECK(hi.codecs == "avc1.640028");

    CHECK(m.variants[2].uri == "http://other.example/mid.m3u8");
    CHECK(m.variants[2].video_group == "v");
    CHECK(m.variants[2].width == 0);
    CHECK(m.variants[3].uri == "http://origin.example/live/audio-only.m3u8");

    REQUIRE(m.renditions.size() == 2);
    CHECK(m.renditions[0].type == "AUDIO");
    CHECK(m.renditions[0].group_id == "aac");
    CHECK(m.renditions[0].name == "English");
    CHECK(m.renditions[0].language == "en");
    CHECK(m.renditions[0].uri == "http://origin.example/live/chan1/audio/en.m3u8");
    CHECK(m.renditions[0].is_default);
    CHECK(m.renditions[0].autoselect);
    CHECK(m.renditions[1].name == "Deutsch");
    CHECK(m.renditions[1].uri.empty());
    CHECK_FALSE(m.renditions[1].is_default);
    CHECK(m.renditions[1].autoselect);

    SECTION("accessors reject the wrong kind") {
        auto p = m3u8::parse("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\na.m3u8\n", kUrl);
        CHECK(p.is_master());
        CHECK_THROWS_AS(p.media(), std::bad_variant_access);
    }
    SECTION("bad variant attributes") {
        CHECK(failure_of("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=fast\na.m3u8\n").what ==
              "line 2: EXT-X-STREAM-INF BANDWIDTH is not a valid integer");
        CHECK(failure_of("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=1920\na.m3u8\n").what ==
              "line 2: EXT-X-STREAM-INF RESOLUTION is not <width>x<height>");
        CHECK(failure_of("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=99999999999x1\na.m3u8\n").line == 2);
        CHECK(failure_of("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,FRAME-RATE=fast\na.m3u8\n").line == 2);
        CHECK(failure_of("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,AVERAGE-BANDWIDTH=-1\na.m3u8\n").line == 2);
    }
}

TEST_CASE("m3u8: select_variant rules", "[m3u8]") {
    m3u8::MasterPlaylist m;
    for (int64_t bw : {800000, 3000000, 1500000, 3000000, 400000}) {
        m3u8::Variant v;
        v.bandwidth = bw;
        v.uri = "v" + std::to_string(m.variants.size());
        m.variants.push_back(v);
    }
    auto pick = [&m](std::string_view rule) {
        auto v = m3u8::select_variant(m, rule);
        REQUIRE(v);
        return v->uri;
    };
    CHECK(pick("highest") == "v1");  // ties go to the first listed
    CHECK(pick("lowest") == "v4");
    CHECK(pick("3000000") == "v1");
    CHECK(pick("2999999") == "v2");
    CHECK(pick("1500000") == "v2");
    CHECK(pick("1000000") == "v0");
    CHECK(pick("400000") == "v4");
    CHECK(pick("100") == "v4");  // nothing fits: the lowest
    CHECK(pick("0") == "v4");
    CHECK(pick("99999999999") == "v1");
    CHECK(pick(" highest ") == "v1");

    CHECK_THROWS_AS(m3u8::select_variant(m, "best"), std::invalid_argument);
    CHECK_THROWS_AS(m3u8::select_variant(m, ""), std::invalid_argument);
    CHECK_THROWS_AS(m3u8::select_variant(m, "-5"), std::invalid_argument);
    CHECK_THROWS_AS(m3u8::select_variant(m, "1.5"), std::invalid_argument);

    m3u8::MasterPlaylist empty;
    CHECK(m3u8::select_variant(empty, "highest") == nullptr);
    CHECK(m3u8::select_variant(empty, "lowest") == nullptr);
    CHECK(m3u8::select_variant(empty, "5000") == nullptr);

    SECTION("on a parsed master") {
        const auto parsed = master_of(
            "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=500000\nlo.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=2000000\nhi.m3u8\n");
        CHECK(m3u8::select_variant(parsed, "highest")->uri == "http://origin.example/live/chan1/hi.m3u8");
        CHECK(m3u8::select_variant(parsed, "1000000")->uri == "http://origin.example/live/chan1/lo.m3u8");
    }
}

TEST_CASE("m3u8: resolve_url, RFC 3986 5.4.1 normal examples", "[m3u8]") {
    const std::string_view base = "http://a/b/c/d;p?q";
    const std::pair<const char*, const char*> cases[] = {
        {"g:h", "g:h"},
        {"g", "http://a/b/c/g"},
        {"./g", "http://a/b/c/g"},
        {"g/", "http://a/b/c/g/"},
        {"/g", "http://a/g"},
        {"//g", "http://g"},
        {"?y", "http://a/b/c/d;p?y"},
        {"g?y", "http://a/b/c/g?y"},
        {"#s", "http://a/b/c/d;p?q#s"},
        {"g#s", "http://a/b/c/g#s"},
        {"g?y#s", "http://a/b/c/g?y#s"},
        {";x", "http://a/b/c/;x"},
        {"g;x", "http://a/b/c/g;x"},
        {"g;x?y#s", "http://a/b/c/g;x?y#s"},
        {"", "http://a/b/c/d;p?q"},
        {".", "http://a/b/c/"},
        {"./", "http://a/b/c/"},
        {"..", "http://a/b/"},
        {"../", "http://a/b/"},
        {"../g", "http://a/b/g"},
        {"../..", "http://a/"},
        {"../../", "http://a/"},
        {"../../g", "http://a/g"},
    };
    for (const auto& [ref, expected] : cases) {
        INFO("ref: \"" << ref << "\"");
        CHECK(m3u8::resolve_url(base, ref) == expected);
    }
}

TEST_CASE("m3u8: resolve_url, RFC 3986 5.4.2 abnormal examples and HLS cases", "[m3u8]") {
    const std::string_view base = "http://a/b/c/d;p?q";
    const std::pair<const char*, const char*> cases[] = {
        {"../../../g", "http://a/g"},
        {"../../../../g", "http://a/g"},
        {"/./g", "http://a/g"},
        {"/../g", "http://a/g"},
        {"g.", "http://a/b/c/g."},
        {".g", "http://a/b/c/.g"},
        {"g..", "http://a/b/c/g.."},
        {"..g", "http://a/b/c/..g"},
        {"./../g", "http://a/b/g"},
        {"./g/.", "http://a/b/c/g/"},
        {"g/./h", "http://a/b/c/g/h"},
        {"g/../h", "http://a/b/c/h"},
        {"g;x=1/./y", "http://a/b/c/g;x=1/y"},
        {"g;x=1/../y", "http://a/b/c/y"},
        {"g?y/./x", "http://a/b/c/g?y/./x"},
        {"g?y/../x", "http://a/b/c/g?y/../x"},
        {"g#s/./x", "http://a/b/c/g#s/./x"},
        {"g#s/../x", "http://a/b/c/g#s/../x"},
        {"http:g", "http:g"},  // strict parser
    };
    for (const auto& [ref, expected] : cases) {
        INFO("ref: \"" << ref << "\"");
        CHECK(m3u8::resolve_url(base, ref) == expected);
    }

    const std::string_view playlist = "https://cdn.example:8443/live/ch1/index.m3u8?token=xyz#frag";
    CHECK(m3u8::resolve_url(playlist, "seg-1.ts") == "https://cdn.example:8443/live/ch1/seg-1.ts");
    CHECK(m3u8::resolve_url(playlist, "seg-1.ts?token=xyz&n=2") == "https://cdn.example:8443/live/ch1/seg-1.ts?token=xyz&n=2");
    CHECK(m3u8::resolve_url(playlist, "../x.ts") == "https://cdn.example:8443/live/x.ts");
    CHECK(m3u8::resolve_url(playlist, "../../../../x.ts") == "https://cdn.example:8443/x.ts");
    CHECK(m3u8::resolve_url(playlist, "/abs/path.ts") == "https://cdn.example:8443/abs/path.ts");
    CHECK(m3u8::resolve_url(playlist, "//edge.example/path/x.ts") == "https://edge.example/path/x.ts");
    CHECK(m3u8::resolve_url(playlist, "http://other.example/a/./b/../c.ts") == "http://other.example/a/c.ts");
    CHECK(m3u8::resolve_url(playlist, "?token=new") == "https://cdn.example:8443/live/ch1/index.m3u8?token=new");
    CHECK(m3u8::resolve_url(playlist, "") == "https://cdn.example:8443/live/ch1/index.m3u8?token=xyz");
    CHECK(m3u8::resolve_url(playlist, "1080p:seg.ts") == "https://cdn.example:8443/live/ch1/1080p:seg.ts");
    CHECK(m3u8::resolve_url("http://host", "a.ts") == "http://host/a.ts");
    CHECK(m3u8::resolve_url("http://host?x", "a.ts") == "http://host/a.ts");
    CHECK(m3u8::resolve_url("", "a.ts") == "a.ts");
    CHECK(m3u8::resolve_url("index.m3u8", "a.ts") == "a.ts");
    CHECK(m3u8::resolve_url("dir/index.m3u8", "a.ts") == "dir/a.ts");
    CHECK(m3u8::resolve_url("file:///srv/hls/index.m3u8", "a.ts") == "file:///srv/hls/a.ts");
}

TEST_CASE("m3u8: attribute lists", "[m3u8]") {
    auto a = m3u8::parse_attribute_list(
        "BANDWIDTH=1280000,CODECS=\"avc1.4d401f,mp4a.40.2\",RESOLUTION=640x360,NAME=\"\",URI=\"a=b?c\"");
    CHECK(a.size() == 5);
    CHECK(a["BANDWIDTH"] == "1280000");
    CHECK(a["CODECS"] == "avc1.4d401f,mp4a.40.2");
    CHECK(a["RESOLUTION"] == "640x360");
    CHECK(a["NAME"].empty());
    CHECK(a["URI"] == "a=b?c");

    CHECK(m3u8::parse_attribute_list("").empty());
    CHECK(m3u8::parse_attribute_list("   ").empty());
    a = m3u8::parse_attribute_list(" A=1 , B = \"x y\" ,C=2,");  // loose spacing and a trailing comma
    CHECK(a == std::map<std::string, std::string>{{"A", "1"}, {"B", "x y"}, {"C", "2"}});
    CHECK(m3u8::parse_attribute_list("A=1,A=2")["A"] == "2");

    for (auto bad : {"A", "A=", "=1", "A=\"unterminated", "A=\"x\"y", "A=x\"y\"", "A=1,,B=2", ",A=1", "A B=1",
                     "A=1,\"B\"=2"}) {
        INFO("attribute list: " << bad);
        CHECK_THROWS_AS(m3u8::parse_attribute_list(bad), std::invalid_argument);
    }
}

TEST_CASE("m3u8: errors carry their line number", "[m3u8]") {
    SECTION("missing #EXTM3U") {
        for (std::string_view text : {"", "\n", "EXTM3U\n", "#EXTM3", "#EXTM3UX\n", "\n#EXTM3U\n#EXT-X-TARGETDURATION:1\n",
                                      "<html><body>403 Forbidden</body></html>"}) {
            INFO("text: " << text);
            auto f = failure_of(text);
            CHECK(f.line == 1);
            CHECK(f.what == "line 1: not an HLS playlist: missing #EXTM3U");
        }
        // IPTV-style attributes after the tag are fine.
        CHECK(media_of("#EXTM3U x-tvg-url=\"http://epg\"\n#EXT-X-TARGETDURATION:1\n").target_duration == 1);
    }
    SECTION("mixing master and media tags") {
        auto f = failure_of("#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\na.ts\n#EXT-X-STREAM-INF:BANDWIDTH=1\nb.m3u8\n");
        CHECK(f.line == 5);
        CHECK(f.what == "line 5: playlist mixes master and media tags: EXT-X-STREAM-INF here, EXT-X-TARGETDURATION on line 2");
        f = failure_of("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nb.m3u8\n\n#EXT-X-ENDLIST\n");
        CHECK(f.what == "line 5: playlist mixes master and media tags: EXT-X-ENDLIST here, EXT-X-STREAM-INF on line 2");
        f = failure_of("#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"a\"\n#EXTINF:4,\na.ts\n");
        CHECK(f.line == 3);
    }
    SECTION("EXTINF without a URI") {
        auto f = failure_of("#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\n#EXT-X-GAP\n#EXTINF:4,\na.ts\n");
        CHECK(f.what == "line 3: EXTINF is not followed by a URI");
        f = failure_of("#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\na.ts\n#EXTINF:4,\n\n#EXT-X-ENDLIST\n");
        CHECK(f.what == "line 5: EXTINF is not followed by a URI");
    }
    SECTION("URI without EXTINF") {
        auto f = failure_of("#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\na.ts\nb.ts\n");
        CHECK(f.what == "line 5: URI without a preceding EXTINF");
        f = failure_of("#EXTM3U\nstray.ts\n#EXT-X-TARGETDURATION:4\n");
        CHECK(f.line == 2);
        f = failure_of("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\na.m3u8\nb.m3u8\n");
        CHECK(f.what == "line 4: URI without a preceding EXT-X-STREAM-INF");
    }
    SECTION("bad EXTINF duration") {
        auto f = failure_of("#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\na.ts\n#EXTINF:4,\nb.ts\n#EXTINF:four,\nc.ts\n");
        CHECK(f.line == 7);
        CHECK(f.what == "line 7: EXTINF duration is not a number");
        for (auto bad : {"", ",", "abc,", "4s,", "nan,", "inf,", "0x10,", "1e999,", "-1 tvg-id=\"x\",News"}) {
            INFO("EXTINF value: " << bad);
            f = failure_of(std::string("#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:") + bad + "\na.ts\n");
            CHECK(f.what == "line 3: EXTINF duration is not a number");
        }
        f = failure_of("#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:-1,Channel\na.ts\n");
        CHECK(f.what == "line 3: EXTINF duration is negative");
        f = failure_of("#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF\na.ts\n");
        CHECK(f.line == 3);
    }
    SECTION("missing EXT-X-TARGETDURATION reports the last line") {
        auto f = failure_of("#EXTM3U\n#EXTINF:4,\na.ts\n#EXTINF:4,\nb.ts\n");
        CHECK(f.what == "line 5: missing EXT-X-TARGETDURATION");
        f = failure_of("#EXTM3U\n#EXTINF:4,\na.ts\n\n# trailing comment");
        CHECK(f.line == 5);
        CHECK(failure_of("#EXTM3U").what == "line 1: missing EXT-X-TARGETDURATION");
    }
    SECTION("EXT-X-STREAM-INF problems") {
        auto f = failure_of("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\na.m3u8\n#EXT-X-STREAM-INF:CODECS=\"avc1\"\nb.m3u8\n");
        CHECK(f.what == "line 4: EXT-X-STREAM-INF without BANDWIDTH");
        f = failure_of("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n#EXT-X-STREAM-INF:BANDWIDTH=2\nb.m3u8\n");
        CHECK(f.what == "line 2: EXT-X-STREAM-INF is not followed by a URI");
        f = failure_of("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\na.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=2\n");
        CHECK(f.line == 4);
        f = failure_of("#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"a\",URI=\"a.m3u8\"\n");
        CHECK(f.what == "line 2: master playlist has no EXT-X-STREAM-INF");
    }
    SECTION("bad attribute lists") {
        auto f = failure_of("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,CODECS=\"avc1\n");
        CHECK(f.line == 2);
        CHECK_THAT(f.what, Catch::StartsWith("line 2: EXT-X-STREAM-INF has a bad attribute list: "));
        CHECK_THAT(f.what, Catch::Contains("CODECS"));
        f = failure_of("#EXTM3U\n\n#EXT-X-MEDIA:TYPE\n#EXT-X-STREAM-INF:BANDWIDTH=1\na.m3u8\n");
        CHECK(f.line == 3);
        CHECK_THAT(f.what, Catch::StartsWith("line 3: EXT-X-MEDIA has a bad attribute list: "));
    }
}

TEST_CASE("m3u8: CRLF line endings and a UTF-8 BOM", "[m3u8]") {
    const std::string text =
        "\xEF\xBB\xBF#EXTM3U\r\n#EXT-X-TARGETDURATION:4\r\n#EXT-X-MEDIA-SEQUENCE:3\r\n"
        "#EXT-X-KEY:METHOD=AES-128,URI=\"k.bin\"\r\n"
        "#EXTINF:4.0,title\r\n\r\nseg3.ts\r\n#EXT-X-DISCONTINUITY\r\n#EXTINF:4.0,\r\nseg4.ts?x=1\r\n#EXT-X-ENDLIST\r\n";
    const auto m = media_of(text);
    CHECK(m.endlist);
    REQUIRE(m.segments.size() == 2);
    CHECK(m.segments[0].uri == "http://origin.example/live/chan1/seg3.ts");
    CHECK(m.segments[0].title == "title");
    CHECK(m.segments[0].sequence == 3);
    REQUIRE(m.segments[0].key);
    CHECK(m.segments[0].key->uri == "http://origin.example/live/chan1/k.bin");
    CHECK(m.segments[1].uri == "http://origin.example/live/chan1/seg4.ts?x=1");
    CHECK(m.segments[1].discontinuity_sequence == 1);

    const auto master = master_of("\xEF\xBB\xBF#EXTM3U\r\n#EXT-X-STREAM-INF:BANDWIDTH=10\r\nv.m3u8\r\n");
    REQUIRE(master.variants.size() == 1);
    CHECK(master.variants[0].uri == "http://origin.example/live/chan1/v.m3u8");

    // Line numbers count CRLF lines the same way.
    CHECK(failure_of("#EXTM3U\r\n#EXT-X-TARGETDURATION:4\r\n\r\n#EXTINF:x,\r\na.ts\r\n").line == 4);
    CHECK(failure_of("\xEF\xBB\xBF\r\n#EXTM3U\r\n").line == 1);
}

TEST_CASE("m3u8: size limits", "[m3u8]") {
    SECTION("20000 segments parse, 20001 do not") {
        const auto m = media_of(many_segments(m3u8::max_segments));
        REQUIRE(m.segments.size() == 20000);
        CHECK(m.segments.back().sequence == 19999);
        CHECK(m.total_duration() == Approx(20000));
        auto f = failure_of(many_segments(m3u8::max_segments + 1));
        CHECK(f.line == 2 + 2 * 20001);
        CHECK(f.what == "line 40004: playlist has more than 20000 segments");
    }
    SECTION("100000 lines parse, 100001 do not") {
        std::string text = "#EXTM3U\n#EXT-X-TARGETDURATION:1\n" + std::string(99998, '\n');
        CHECK(media_of(text).segments.empty());
        text += "\n";
        auto f = failure_of(text);
        CHECK(f.what == "line 100001: playlist has more than 100000 lines");
        f = failure_of("#EXTM3U" + std::string(5000000, '\n'));  // a huge input stops at the cap, not at its end
        CHECK(f.line == 100001);
    }
    SECTION("one huge key shared by many segments cannot blow up memory") {
        const std::string header = "#EXT-X-KEY:METHOD=AES-128,URI=\"" + std::string(20000, 'k') + "\"\n";
        auto f = failure_of(many_segments(m3u8::max_segments, header));
        CHECK_THAT(f.what, Catch::Contains("playlist is too large"));
        CHECK(f.line % 2 == 1);  // a URI line in this layout
        // Realistic key URIs over a full window are fine.
        const std::string normal = "#EXT-X-KEY:METHOD=AES-128,URI=\"" + std::string(300, 'k') + "\"\n";
        CHECK(media_of(many_segments(m3u8::max_segments, normal)).segments.size() == 20000);
    }
}

TEST_CASE("m3u8: garbage input never crashes", "[m3u8]") {
    std::mt19937 rng(20240301);
    auto outcome = [](const std::string& text) {
        try {
            auto p = m3u8::parse(text, kUrl);
            return p.is_master() ? 1 : 2;
        } catch (const m3u8::ParseError& e) {
            CHECK(e.line() >= 1);
            CHECK(e.line() <= m3u8::max_lines + 1);
            return 0;
        }
        // Any other exception type escapes and fails the test.
    };

    SECTION("random bytes") {
        for (int i = 0; i < 2000; ++i) {
            std::string text(rng() % 512, '\0');
            for (auto& c : text) c = static_cast<char>(rng() & 0xff);
            if (i % 2) text = "#EXTM3U\n" + text;
            outcome(text);
        }
    }
    SECTION("random playlist tokens") {
        const std::vector<std::string> tokens = {
            "#EXTM3U", "#EXTINF:", "#EXT-X-TARGETDURATION:", "#EXT-X-MEDIA-SEQUENCE:", "#EXT-X-BYTERANGE:",
            "#EXT-X-KEY:", "#EXT-X-MAP:", "#EXT-X-STREAM-INF:", "#EXT-X-MEDIA:", "#EXT-X-DISCONTINUITY",
            "#EXT-X-DISCONTINUITY-SEQUENCE:", "#EXT-X-PROGRAM-DATE-TIME:", "#EXT-X-GAP", "#EXT-X-ENDLIST",
            "#EXT-X-PLAYLIST-TYPE:", "#EXT-X-VERSION:", "METHOD=AES-128", "METHOD=NONE", "URI=\"", "IV=0x",
            "BANDWIDTH=", "RESOLUTION=", "BYTERANGE=", "\"", ",", "=", "@", "x", "-", ".", "0", "1",
            "9223372036854775807", "99999999999999999999", "1e308", "a.ts", "../", "//h/", "?q", "#", " ",
            "\n", "\n", "\n", "\r\n", "\xEF\xBB\xBF", std::string(1, '\0')};
        for (int i = 0; i < 3000; ++i) {
            std::string text = i % 4 ? "#EXTM3U\n" : "";
            const auto n = rng() % 80;
            for (unsigned k = 0; k < n; ++k) text += tokens[rng() % tokens.size()];
            outcome(text);
        }
    }
    SECTION("mutations of valid playlists") {
        const std::vector<std::string> seeds = {
            "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:7\n#EXT-X-KEY:METHOD=AES-128,URI=\"k\",IV=0x01\n"
            "#EXT-X-MAP:URI=\"i.mp4\",BYTERANGE=\"10@0\"\n#EXTINF:4,\n#EXT-X-BYTERANGE:100@10\na.mp4\n"
            "#EXT-X-DISCONTINUITY\n#EXTINF:4,\n#EXT-X-BYTERANGE:100\na.mp4\n#EXT-X-ENDLIST\n",
            "#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"en\",URI=\"a.m3u8\"\n"
            "#EXT-X-STREAM-INF:BANDWIDTH=100,RESOLUTION=1x1,CODECS=\"a,b\",AUDIO=\"a\"\nv.m3u8\n"};
        int parsed = 0;
        for (int i = 0; i < 4000; ++i) {
            std::string text = seeds[i % seeds.size()];
            const auto edits = 1 + rng() % 4;
            for (unsigned k = 0; k < edits && !text.empty(); ++k) {
                const auto at = rng() % text.size();
                switch (rng() % 3) {
                    case 0: text[at] = static_cast<char>(rng() & 0xff); break;
                    case 1: text.erase(at, 1 + rng() % 8); break;
                    default: text.insert(at, text.substr(rng() % text.size(), rng() % 16)); break;
                }
            }
            parsed += outcome(text) != 0;
        }
        CHECK(parsed > 0);  // the mutations are not all fatal, so the success paths get exercised too
    }
    SECTION("pathological shapes") {
        outcome("#EXTM3U\n" + std::string(2000000, 'a'));                       // one huge URI line
        outcome("#EXTM3U\n#EXT-X-STREAM-INF:" + std::string(1000000, ','));    // commas only
        outcome("#EXTM3U\n#EXT-X-KEY:URI=\"" + std::string(1000000, '"'));     // quotes only
        outcome("#EXTM3U\n#EXTINF:" + std::string(1000000, '9') + ",\na\n");   // a huge number
        outcome("#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\n" + std::string(200000, '/') + "../" +
                std::string(200000, '.') + "\n");
        std::string deep = "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\n";
        for (int i = 0; i < 100000; ++i) deep += "a/";
        for (int i = 0; i < 100000; ++i) deep += "../";
        deep += "x.ts\n";
        const auto m = media_of(deep);
        REQUIRE(m.segments.size() == 1);
        CHECK(m.segments[0].uri == "http://origin.example/live/chan1/x.ts");
        std::string tags = "#EXTM3U\n";
        for (int i = 0; i < 99999; ++i) tags += "#EXTINF:1,\n";
        CHECK(failure_of(tags).line == 2);
    }
}

TEST_CASE("m3u8: LL-HLS parts, the segment being built and the server's controls", "[m3u8][ll]") {
    const auto p = m3u8::parse(
        "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:2\n"
        "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.0,CAN-SKIP-UNTIL=12\n"
        "#EXT-X-PART-INF:PART-TARGET=0.33334\n#EXT-X-MEDIA-SEQUENCE:10\n#EXT-X-MAP:URI=\"init.mp4\"\n"
        "#EXTINF:2.0,\nseg_10.m4s\n"
        "#EXT-X-PART:DURATION=0.33334,URI=\"part_1.m4s\",INDEPENDENT=YES\n"
        "#EXT-X-PART:DURATION=0.33334,URI=\"whole_11.m4s\",BYTERANGE=\"1000@0\"\n"
        "#EXT-X-PART:DURATION=0.3,URI=\"whole_11.m4s\",BYTERANGE=\"500\"\n"
        "#EXTINF:0.96668,\nseg_11.m4s\n"
        "#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:2026-12-01T10:00:00.000Z\n"
        "#EXT-X-PART:DURATION=0.33334,URI=\"part_4.m4s\",INDEPENDENT=YES\n"
        "#EXT-X-PART:DURATION=0.2,URI=\"part_5.m4s\",GAP=YES\n"
        "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part_6.m4s\"\n"
        "#EXT-X-RENDITION-REPORT:URI=\"../a/index.m3u8\",LAST-MSN=12,LAST-PART=1\n",
        kUrl);
    REQUIRE_FALSE(p.is_master());
    const auto& m = p.media();
    CHECK(m.can_block_reload);
    CHECK(m.part_target == Approx(0.33334));
    CHECK(m.part_problem.empty());
    REQUIRE(m.segments.size() == 2);
    CHECK(m.segments[0].parts.empty());
    const auto& parts = m.segments[1].parts;
    REQUIRE(parts.size() == 3);
    CHECK(parts[0].uri == "http://origin.example/live/chan1/part_1.m4s");
    CHECK(parts[0].independent);
    CHECK_FALSE(parts[1].independent);
    REQUIRE(parts[1].byterange);
    CHECK(parts[1].byterange->offset == 0);
    REQUIRE(parts[2].byterange);
    CHECK(parts[2].byterange->offset == 1000);  // follows the previous part's range of the same URI
    CHECK(parts[2].byterange->length == 500);
    // The segment being built: after the last complete one, with the tags before its parts.
    REQUIRE(m.partial);
    CHECK(m.partial->sequence == 12);
    CHECK(m.partial->discontinuity);
    CHECK(m.partial->discontinuity_sequence == 1);
    CHECK(m.partial->program_date_time == std::optional<std::string>("2026-12-01T10:00:00.000Z"));
    REQUIRE(m.partial->map);
    REQUIRE(m.partial->parts.size() == 2);
    CHECK(m.partial->parts[1].gap);
}

TEST_CASE("m3u8: malformed LL-HLS parts leave the segments usable and say why", "[m3u8][ll]") {
    const std::string head = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES\n";
    const std::string segment = "#EXTINF:2,\nseg_1.ts\n";
    const std::string inf = "#EXT-X-PART-INF:PART-TARGET=0.5\n";
    const std::pair<std::string, std::string> cases[] = {
        {inf + "#EXT-X-PART:URI=\"p.ts\"\n", "EXT-X-PART without a valid DURATION"},
        {inf + "#EXT-X-PART:DURATION=0.5\n", "EXT-X-PART without URI"},
        {inf + "#EXT-X-PART:DURATION=-1,URI=\"p.ts\"\n", "EXT-X-PART without a valid DURATION"},
        {inf + "#EXT-X-PART:DURATION=0.5,URI=\"p.ts\",BYTERANGE=\"10\"\n", "no offset"},
        {inf + "#EXT-X-PART:DURATION=0.5,URI=\"p.ts\",BYTERANGE=\"x\"\n", "BYTERANGE"},
        {inf + "#EXT-X-PART:DURATION=0.5,URI=\"p.ts,\n", "bad attribute list"},
        {"#EXT-X-PART:DURATION=0.5,URI=\"p.ts\"\n", "without EXT-X-PART-INF"},
        {"#EXT-X-PART-INF:PART-TARGET=zero\n", "PART-TARGET"},
    };
    for (const auto& [tags, why] : cases) {
        INFO(tags);
        const auto p = m3u8::parse(head + tags + segment, kUrl);
        const auto& m = p.media();
        CHECK(m.part_problem.find(why) != std::string::npos);
        REQUIRE(m.segments.size() == 1);
        CHECK(m.segments[0].uri == "http://origin.example/live/chan1/seg_1.ts");
    }
    // A classic playlist has none of it.
    const auto classic = m3u8::parse("#EXTM3U\n#EXT-X-TARGETDURATION:2\n" + segment, kUrl).media();
    CHECK_FALSE(classic.can_block_reload);
    CHECK_FALSE(classic.partial);
    CHECK(classic.part_problem.empty());
    // Parts count against the playlist's bounds like segments.
    std::string many = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n" + inf;
    for (size_t i = 0; i <= m3u8::max_segments; ++i) many += "#EXT-X-PART:DURATION=0.5,URI=\"p.ts\"\n";
    CHECK_THROWS_AS(m3u8::parse(many, kUrl), m3u8::ParseError);
}
