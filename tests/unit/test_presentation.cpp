// presentation.hpp: which variants a selection keeps, rendition paths, and the mirrored master
// playlist (every upstream attribute value re-quoted or dropped).
#include <hlsrelay/presentation.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <sstream>

namespace hlsrelay::test {
namespace {

std::vector<std::size_t> keep(const char* rule) {
    // 1080p 5 Mb/s, 360p 800 kb/s, 720p 3 Mb/s (source order), an audio-only variant without height.
    const std::vector<VariantFacts> v{{5000000, 1080}, {800000, 360}, {3000000, 720}, {64000, 0}};
    const auto selection = parse_rendition_selection(rule);
    REQUIRE(selection);
    return select_variants(v, *selection);
}

std::vector<std::string> lines(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
}

}  // namespace

TEST_CASE("presentation: rendition selection keeps source order") {
    CHECK(keep("all") == std::vector<std::size_t>{0, 1, 2, 3});
    CHECK(keep("highest") == std::vector<std::size_t>{0});
    CHECK(keep("lowest") == std::vector<std::size_t>{3});
    CHECK(keep("max-height=720") == std::vector<std::size_t>{1, 2, 3});
    CHECK(keep("max-height=100") == std::vector<std::size_t>{3});  // no declared height: within any bound
    CHECK(keep("max-bandwidth=3000000") == std::vector<std::size_t>{1, 2, 3});
    CHECK(keep("max-bandwidth=1") == std::vector<std::size_t>{3});  // nothing fits: the lowest
    CHECK(keep("1080p,360p") == std::vector<std::size_t>{0, 1});
    CHECK(keep("480p") == std::vector<std::size_t>{0});  // no such height: the highest
    CHECK(select_variants({}, RenditionSelection{}).empty());
}

TEST_CASE("presentation: rendition paths are exactly one v/a/s<n> level") {
    auto ok = [](std::string_view p) { return split_rendition_path(p).has_value(); };
    CHECK(ok("v0/index.m3u8"));
    CHECK(ok("a12/seg_5.ts"));
    CHECK(ok("s0/seg_5.vtt"));
    const auto p = split_rendition_path("v3/init_1.mp4");
    REQUIRE(p);
    CHECK(p->rendition == "v3");
    CHECK(p->file == "init_1.mp4");
    for (std::string_view bad : {"index.m3u8", "v/index.m3u8", "v01/index.m3u8", "x0/index.m3u8", "../index.m3u8",
                                 "v0/../x", "v0/a/b", "v0/", "v0/.hidden", "V0/index.m3u8", "v0x/seg_1.ts",
                                 "v123456/seg_1.ts", "/v0/seg_1.ts"})
        CHECK_FALSE(ok(bad));
    CHECK(rendition_id(RenditionKind::video, 0) == "v0");
    CHECK(rendition_id(RenditionKind::audio, 2) == "a2");
    CHECK(rendition_id(RenditionKind::subtitles, 1) == "s1");
}

TEST_CASE("presentation: the master mirrors variants and media with our URIs") {
    std::vector<PresentationEntry> entries;
    PresentationEntry v;
    v.id = "v0";
    v.bandwidth = 2000000;
    v.average_bandwidth = 1500000;
    v.codecs = "avc1.64001f,mp4a.40.2";
    v.width = 1280;
    v.height = 720;
    v.frame_rate = 25;
    v.audio_group = "aud";
    v.subtitles_group = "subs";
    v.closed_captions = "cc";
    entries.push_back(v);
    v.id = "v1";
    v.bandwidth = 500000;
    v.average_bandwidth = 0;
    v.width = v.height = 0;
    v.frame_rate = 0;
    v.closed_captions = "NONE";
    entries.push_back(v);
    PresentationEntry a;
    a.kind = RenditionKind::audio;
    a.id = "a0";
    a.group = "aud";
    a.name = "English";
    a.language = "en";
    a.is_default = true;
    a.channels = "2";
    entries.push_back(a);
    PresentationEntry s;
    s.kind = RenditionKind::subtitles;
    s.id = "s0";
    s.group = "subs";
    s.name = "Deutsch";
    s.language = "de";
    s.forced = true;
    s.characteristics = "public.accessibility.transcribes-spoken-dialog";
    entries.push_back(s);
    PresentationEntry cc;
    cc.kind = RenditionKind::closed_captions;
    cc.group = "cc";
    cc.name = "CC1";
    cc.instream_id = "CC1";
    entries.push_back(cc);

    const auto l = lines(render_presentation_master(entries, 3, true));
    const std::vector<std::string> expected{
        "#EXTM3U",
        "#EXT-X-VERSION:3",
        "#EXT-X-INDEPENDENT-SEGMENTS",
        "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"English\",LANGUAGE=\"en\",DEFAULT=YES,AUTOSELECT=YES,"
        "CHANNELS=\"2\",URI=\"a0/index.m3u8\"",
        "#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",NAME=\"Deutsch\",LANGUAGE=\"de\",DEFAULT=NO,AUTOSELECT=NO,"
        "FORCED=YES,CHARACTERISTICS=\"public.accessibility.transcribes-spoken-dialog\",URI=\"s0/index.m3u8\"",
        "#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID=\"cc\",NAME=\"CC1\",DEFAULT=NO,AUTOSELECT=NO,INSTREAM-ID=\"CC1\"",
        "#EXT-X-STREAM-INF:BANDWIDTH=2000000,AVERAGE-BANDWIDTH=1500000,CODECS=\"avc1.64001f,mp4a.40.2\","
        "RESOLUTION=1280x720,FRAME-RATE=25.000,AUDIO=\"aud\",SUBTITLES=\"subs\",CLOSED-CAPTIONS=\"cc\"",
        "v0/index.m3u8",
        "#EXT-X-STREAM-INF:BANDWIDTH=500000,CODECS=\"avc1.64001f,mp4a.40.2\",AUDIO=\"aud\",SUBTITLES=\"subs\","
        "CLOSED-CAPTIONS=NONE",
        "v1/index.m3u8",
    };
    CHECK(l == expected);
}

TEST_CASE("presentation: hostile attribute values never make a tag of their own") {
    PresentationEntry v;
    v.id = "v0";
    v.bandwidth = 1000;
    v.codecs = "avc1\"\n#EXT-X-ENDLIST";
    v.audio_group = "a\"ud\r\n#EXT-X-KEY:METHOD=AES-128,URI=\"http://evil/\"";
    PresentationEntry a;
    a.kind = RenditionKind::audio;
    a.id = "a0";
    a.group = v.audio_group;
    a.name = std::string(100000, 'N') + "\"\n#EXTINF:1,";
    a.language = "en\",URI=\"http://evil";
    a.channels = "2\nx";
    a.characteristics = "x\"y";
    PresentationEntry cc;
    cc.kind = RenditionKind::closed_captions;
    cc.group = "cc";
    cc.instream_id = "CC9\"";  // not a valid INSTREAM-ID: the declaration is dropped
    PresentationEntry nameless;
    nameless.kind = RenditionKind::audio;
    nameless.id = "a1";
    nameless.group = "\"\n";  // nothing left of the required GROUP-ID: dropped

    const std::string text = render_presentation_master({v, a, cc, nameless});
    const auto l = lines(text);
    for (const auto& line : l) {
        INFO(line.substr(0, 200));
        CHECK(line.size() <= 1024);
        if (line.empty() || line[0] != '#') {
            CHECK((line == "v0/index.m3u8"));
            continue;
        }
        // Quotes come in pairs, and the only URIs are ours.
        CHECK(std::count(line.begin(), line.end(), '"') % 2 == 0);
        std::size_t uris = 0;
        for (auto at = line.find("URI=\""); at != std::string::npos; at = line.find("URI=\"", at + 1)) ++uris;
        CHECK(uris <= 1);
        CHECK(line.rfind("#EXT-X-KEY", 0) == std::string::npos);
        CHECK(line.rfind("#EXTINF", 0) == std::string::npos);
        CHECK(line.rfind("#EXT-X-ENDLIST", 0) == std::string::npos);
    }
    CHECK(text.find("CODECS=") == std::string::npos);      // not a codec list: dropped
    CHECK(text.find("LANGUAGE=") == std::string::npos);    // not a language tag: dropped
    CHECK(text.find("CHANNELS=") == std::string::npos);
    CHECK(text.find("CLOSED-CAPTIONS") == std::string::npos);
    CHECK(text.find("URI=\"a1/") == std::string::npos);
    CHECK(text.find("URI=\"a0/index.m3u8\"") != std::string::npos);
    CHECK(text.find("AUDIO=\"aud#EXT-X-KEY:METHOD=AES-128,URI=http://evil/\"") != std::string::npos);
    // The group the variant names and the group the rendition declares are cleaned alike.
    CHECK(text.find("GROUP-ID=\"aud#EXT-X-KEY:METHOD=AES-128,URI=http://evil/\"") != std::string::npos);
}

TEST_CASE("presentation: SERVICE captions raise the version, quoted text is cut on a character boundary") {
    PresentationEntry cc;
    cc.kind = RenditionKind::closed_captions;
    cc.group = "cc";
    cc.instream_id = "SERVICE3";
    CHECK(render_presentation_master({cc}).rfind("#EXTM3U\n#EXT-X-VERSION:7\n", 0) == 0);
    std::string umlauts;
    for (int i = 0; i < 200; ++i) umlauts += "\xc3\xa4";  // 400 bytes of 'ä'
    const std::string cut = presentation_detail::quoted_text(umlauts);
    CHECK(cut.size() == 256);
    CHECK(cut == umlauts.substr(0, 256));
    const std::string odd = presentation_detail::quoted_text("x" + umlauts);
    CHECK(odd.size() == 255);  // not in the middle of a character
}

}  // namespace hlsrelay::test
