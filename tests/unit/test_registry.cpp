// Unit tests of the channel loaders (M3U, JSON), the JSON writer and the Registry.
#include <hlsrelay/registry.hpp>

#include <catch2/catch.hpp>

#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

using namespace hlsrelay;

namespace {

// Issue messages are for people; tests pin the line and a telling fragment of the text.
bool has_issue(const LoadReport& r, int line, const std::string& fragment) {
    for (const LoadIssue& i : r.issues)
        if (i.line == line && i.message.find(fragment) != std::string::npos) return true;
    return false;
}

std::vector<std::string> ids(const std::vector<ChannelConfig>& channels) {
    std::vector<std::string> out;
    for (const ChannelConfig& c : channels) out.push_back(c.id);
    return out;
}

ChannelConfig channel(std::string name, std::string url) {
    ChannelConfig c;
    c.name = std::move(name);
    c.urls = {std::move(url)};
    return c;
}

using Strings = std::vector<std::string>;
using Headers = std::map<std::string, std::string>;

}  // namespace

// ---------------------------------------------------------------- M3U

TEST_CASE("parse_m3u reads EXTINF attributes and the display name", "[registry][m3u]") {
    LoadReport r = parse_m3u(
        "#EXTM3U url-tvg=\"http://epg/x.xml\"\n"
        "#EXTINF:-1 tvg-id=\"bbc_one\" tvg-name=\"BBC One\" tvg-logo=\"http://logo/bbc.png\" group-title=\"UK\",BBC One HD\n"
        "http://example.com/bbc/index.m3u8\n");
    REQUIRE(r.issues.empty());
    REQUIRE(r.channels.size() == 1);
    const ChannelConfig& c = r.channels[0];
    CHECK(c.id == "bbc_one");
    CHECK(c.name == "BBC One HD");
    CHECK(c.logo == "http://logo/bbc.png");
    CHECK(c.group == "UK");
    CHECK(c.urls == Strings{"http://example.com/bbc/index.m3u8"});
    CHECK(c.headers.empty());
    CHECK_FALSE(c.loop);
    CHECK_FALSE(c.realtime.has_value());
    CHECK_FALSE(c.variant.has_value());
    CHECK(c.hls.empty());
}

TEST_CASE("parse_m3u: unsafe tvg-id falls back to the name's slug", "[registry][m3u]") {
    LoadReport r = parse_m3u(
        "#EXTM3U\n"
        "#EXTINF:-1 tvg-id=\"BBCOne.uk\",BBC One & Two\n"
        "http://h/1.m3u8\n"
        "#EXTINF:-1 tvg-id=\"\",7x Music\n"
        "http://h/2.m3u8\n");
    REQUIRE(r.issues.empty());
    CHECK(ids(r.channels) == Strings{"bbc_one_and_two", "7x_music"});
}

TEST_CASE("parse_m3u: quoting, commas and bare EXTINF forms", "[registry][m3u]") {
    LoadReport r = parse_m3u(
        "#EXTINF:-1 tvg-id=news group-title=\"News, World\" tvg-name=\"A, B\",CNN, International\n"
        "http://h/cnn.m3u8\n"
        "#EXTINF:0,Plain\n"
        "http://h/plain.m3u8\n"
        "#EXTINF:tvg-id=\"nodur\",No Duration\n"
        "http://h/nodur.m3u8\n"
        "#EXTINF: -1  tvg-logo=x.png   ,  Spaced  \n"
        "http://h/spaced.m3u8\n");
    REQUIRE(r.issues.empty());
    REQUIRE(r.channels.size() == 4);
    CHECK(r.channels[0].id == "news");
    CHECK(r.channels[0].group == "News, World");
    CHECK(r.channels[0].name == "CNN, International");
    CHECK(r.channels[1].name == "Plain");
    CHECK(r.channels[1].id == "plain");
    CHECK(r.channels[2].id == "nodur");
    CHECK(r.channels[2].name == "No Duration");
    CHECK(r.channels[3].name == "Spaced");
    CHECK(r.channels[3].logo == "x.png");
}

TEST_CASE("parse_m3u: empty display name uses tvg-name, then the URL", "[registry][m3u]") {
    LoadReport r = parse_m3u(
        "#EXTINF:-1 tvg-name=\"Fox News\",\n"
        "http://h/fox.m3u8\n"
        "#EXTINF:-1,\n"
        "http://user:pw@h/live/Euro%20News.m3u8?token=1\n");
    REQUIRE(r.issues.empty());
    REQUIRE(r.channels.size() == 2);
    CHECK(r.channels[0].name == "Fox News");
    CHECK(r.channels[0].id == "fox_news");
    CHECK(r.channels[1].name == "Euro News.m3u8");
    CHECK(r.channels[1].id == "euro_news_m3u8");
}

TEST_CASE("parse_m3u: a URL without EXTINF is named after its last path component", "[registry][m3u]") {
    LoadReport r = parse_m3u(
        "http://h/live/sports/\n"
        "udp://@239.1.1.1:1234\n"
        "/srv/media/My Movie.mp4\n");
    REQUIRE(r.issues.empty());
    REQUIRE(r.channels.size() == 3);
    CHECK(r.channels[0].name == "sports");
    CHECK(r.channels[0].urls == Strings{"http://h/live/sports/"});
    CHECK(r.channels[1].name == "239.1.1.1:1234");
    CHECK(r.channels[2].name == "My Movie.mp4");
    CHECK(r.channels[2].id == "my_movie_mp4");
    CHECK(r.channels[2].urls == Strings{"/srv/media/My Movie.mp4"});
}

TEST_CASE("parse_m3u: EXTVLCOPT headers and input-repeat", "[registry][m3u]") {
    LoadReport r = parse_m3u(
        "#EXTM3U\n"
        "#EXTINF:-1,One\n"
        "#EXTVLCOPT:http-user-agent=Mozilla/5.0 (X11; Linux)\n"
        "#EXTVLCOPT:http-referrer=http://ref.example/\n"
        "#EXTVLCOPT:input-repeat=-1\n"
        "#EXTVLCOPT:network-caching=1000\n"
        "http://h/one.m3u8\n"
        "#EXTINF:-1,Two\n"
        "#EXTVLCOPT:http-referer=http://other/\n"
        "#EXTVLCOPT:input-repeat=0\n"
        "http://h/two.m3u8\n");
    REQUIRE(r.issues.empty());
    REQUIRE(r.channels.size() == 2);
    CHECK(r.channels[0].headers == Headers{{"User-Agent", "Mozilla/5.0 (X11; Linux)"}, {"Referer", "http://ref.example/"}});
    CHECK(r.channels[0].loop);
    CHECK(r.channels[1].headers == Headers{{"Referer", "http://other/"}});
    CHECK_FALSE(r.channels[1].loop);
}

TEST_CASE("parse_m3u: EXTHTTP JSON headers, names normalized", "[registry][m3u]") {
    LoadReport r = parse_m3u(
        "#EXTINF:-1,One\n"
        "#EXTHTTP:{\"user-agent\":\"UA/1\",\"Referrer\":\"http://r/\",\"X-Token\":\"t\"}\n"
        "http://h/one.m3u8\n"
        "#EXTINF:-1,Two\n"
        "#EXTHTTP:{\"User-Agent\": 5}\n"
        "http://h/two.m3u8\n"
        "#EXTINF:-1,Three\n"
        "#EXTHTTP:not json\n"
        "http://h/three.m3u8\n");
    REQUIRE(r.channels.size() == 3);
    CHECK(r.channels[0].headers == Headers{{"User-Agent", "UA/1"}, {"Referer", "http://r/"}, {"X-Token", "t"}});
    CHECK(r.channels[1].headers.empty());
    CHECK(r.channels[2].headers.empty());
    REQUIRE(r.issues.size() == 2);
    CHECK(has_issue(r, 5, "#EXTHTTP"));
    CHECK(has_issue(r, 8, "#EXTHTTP"));
}

TEST_CASE("parse_m3u: the |header suffix is percent-decoded and wins", "[registry][m3u]") {
    LoadReport r = parse_m3u(
        "#EXTINF:-1,One\n"
        "#EXTVLCOPT:http-user-agent=FromVlcOpt\n"
        "#EXTVLCOPT:http-referrer=http://keep/\n"
        "http://h/one.m3u8?a=1|user-agent=Mozilla%2F5.0%20(Win)&Referrer=http%3A%2F%2Fr%2F%3Fq%3D1%26x&X-Api-Key=k%3D&bad%zz=v%\n");
    REQUIRE(r.issues.empty());
    REQUIRE(r.channels.size() == 1);
    const ChannelConfig& c = r.channels[0];
    CHECK(c.urls == Strings{"http://h/one.m3u8?a=1"});
    CHECK(c.headers == Headers{{"User-Agent", "Mozilla/5.0 (Win)"},
                               {"Referer", "http://r/?q=1&x"},
                               {"X-Api-Key", "k="},
                               {"bad%zz", "v%"}});
}

TEST_CASE("parse_m3u: a header item without '=' is reported, the channel loads", "[registry][m3u]") {
    LoadReport r = parse_m3u("#EXTINF:-1,One\nhttp://h/one.m3u8|User-Agent=A&junk&&=x\n");
    REQUIRE(r.channels.size() == 1);
    CHECK(r.channels[0].headers == Headers{{"User-Agent", "A"}});
    REQUIRE(r.issues.size() == 2);
    CHECK(has_issue(r, 2, "'junk'"));
    CHECK(has_issue(r, 2, "'=x'"));
}

TEST_CASE("parse_m3u: header values with CR/LF are refused", "[registry][m3u]") {
    LoadReport r = parse_m3u("#EXTINF:-1,One\nhttp://h/one.m3u8|X-A=1%0D%0AHost:%20evil\n#EXTINF:-1,Two\nhttp://h/two.m3u8\n");
    CHECK(ids(r.channels) == Strings{"two"});
    CHECK(has_issue(r, 1, "control characters"));
}

TEST_CASE("parse_m3u: EXTGRP, group-title precedence", "[registry][m3u]") {
    LoadReport r = parse_m3u(
        "#EXTINF:-1,One\n#EXTGRP:Movies\nhttp://h/1\n"
        "#EXTINF:-1 group-title=\"Sport\",Two\n#EXTGRP:Movies\nhttp://h/2\n"
        "#EXTINF:-1,Three\nhttp://h/3\n");
    REQUIRE(r.issues.empty());
    REQUIRE(r.channels.size() == 3);
    CHECK(r.channels[0].group == "Movies");
    CHECK(r.channels[1].group == "Sport");
    CHECK(r.channels[2].group == "");  // EXTGRP applies to one entry only
}

TEST_CASE("parse_m3u: hlsrelay-id and HLS override attributes", "[registry][m3u]") {
    LoadReport r = parse_m3u(
        "#EXTINF:-1 tvg-id=\"ignored\" hlsrelay-id=\"my-news\" hlsrelay-segment-duration=\"1.5\" hlsrelay-max-segments=8 "
        "hlsrelay-cleanup-interval=\"2\",News\n"
        "http://h/news.m3u8\n"
        "#EXTINF:-1 hlsrelay-id=\"Bad.Id\",Bad\n"
        "http://h/bad.m3u8\n"
        "#EXTINF:-1 hlsrelay-max-segments=\"lots\",Words\n"
        "http://h/words.m3u8\n"
        "#EXTINF:-1 hlsrelay-segment-duration=\"120\",Long\n"
        "http://h/long.m3u8\n"
        "#EXTINF:-1 hlsrelay-max-segments=\"0\",Zero\n"
        "http://h/zero.m3u8\n"
        "#EXTINF:-1,Fine\n"
        "http://h/fine.m3u8\n");
    CHECK(ids(r.channels) == Strings{"my-news", "fine"});
    REQUIRE(r.channels.size() == 2);
    CHECK(r.channels[0].hls.segment_duration == 1.5);
    CHECK(r.channels[0].hls.max_segments == 8);
    CHECK(r.channels[0].hls.cleanup_interval == 2.0);
    CHECK(r.channels[1].hls.empty());
    REQUIRE(r.issues.size() == 4);
    CHECK(has_issue(r, 3, "hlsrelay-id 'Bad.Id'"));
    CHECK(has_issue(r, 5, "hlsrelay-max-segments 'lots' is not an integer"));
    CHECK(has_issue(r, 7, "segment_duration 120 is outside [0.5, 60]"));
    CHECK(has_issue(r, 9, "max_segments 0 is outside [1, 100]"));
}

TEST_CASE("parse_m3u: backup sources", "[registry][m3u]") {
    LoadReport r = parse_m3u(
        "#EXTHLSRELAY-BACKUP:http://orphan/x.m3u8\n"          // 1: no channel yet
        "#EXTINF:-1,One\n"                                     // 2
        "#EXTHLSRELAY-BACKUP:http://b0/one.m3u8\n"            // 3: before its main URL
        "http://main/one.m3u8\n"                               // 4
        "#EXTHLSRELAY-BACKUP:http://b1/one.m3u8\n"            // 5
        "#EXTHLSRELAY-BACKUP:  http://b2/one.m3u8|User-Agent=x\n"  // 6: headers ignored
        "#EXTHLSRELAY-BACKUP:garbage\n"                        // 7
        "#EXTINF:-1,Two\n"                                     // 8
        "http://main/two.m3u8\n");                             // 9
    REQUIRE(r.channels.size() == 2);
    CHECK(r.channels[0].urls == Strings{"http://main/one.m3u8", "http://b0/one.m3u8", "http://b1/one.m3u8", "http://b2/one.m3u8"});
    CHECK(r.channels[0].headers.empty());
    CHECK(r.channels[1].urls == Strings{"http://main/two.m3u8"});
    REQUIRE(r.issues.size() == 3);
    CHECK(has_issue(r, 1, "no channel before it"));
    CHECK(has_issue(r, 6, "ignored"));
    CHECK(has_issue(r, 7, "not a URL"));
}

TEST_CASE("parse_m3u: a backup after a skipped entry does not attach to the previous channel", "[registry][m3u]") {
    LoadReport r = parse_m3u(
        "#EXTINF:-1,One\nhttp://h/one\n"
        "#EXTINF:-1 tvg-name=\"x,Broken\n"  // 3: unterminated quote
        "http://h/broken\n"
        "#EXTHLSRELAY-BACKUP:http://h/backup\n");
    REQUIRE(r.channels.size() == 1);
    CHECK(r.channels[0].urls == Strings{"http://h/one"});
    CHECK(has_issue(r, 3, "unterminated quote"));
    CHECK(has_issue(r, 5, "no channel before it"));
}

TEST_CASE("parse_m3u: malformed lines are reported with their line and the rest loads", "[registry][m3u]") {
    LoadReport r = parse_m3u(
        "#EXTM3U\n"                                            // 1
        "#EXTINF:-1 tvg-id=\"a\" A without comma\n"            // 2: no comma
        "http://h/a.m3u8\n"                                    // 3: consumed by the broken entry
        "#EXTINF:-1 tvg-name=\"B,B\n"                          // 4: unterminated quote
        "http://h/b.m3u8\n"                                    // 5
        "#EXTINF:-1,Dangling\n"                                // 6: followed by another EXTINF
        "#EXTINF:-1,Good One\n"                                // 7
        "http://h/good1.m3u8\n"                                // 8
        "#EXTINF:-1,Empty URL\n"                               // 9
        "|User-Agent=x\n"                                      // 10: empty URL
        "#EXTINF:-1,Spaces\n"                                  // 11
        "http://h/with space.m3u8\n"                           // 12
        "#EXTINF:-1,Control\n"                                 // 13
        "http://h/ctl\x01.m3u8\n"                              // 14
        "just some words\n"                                    // 15: scheme-less garbage
        "C:\\media\\x.ts\n"                                    // 16: not absolute, not a URL
        "#EXTINF:-1,Good Two\n"                                // 17
        "http://h/good2.m3u8\n"                                // 18
        "#EXTINF:-1,At EOF\n");                                // 19: no URL follows
    CHECK(ids(r.channels) == Strings{"good_one", "good_two"});
    CHECK(has_issue(r, 2, "no comma"));
    CHECK(has_issue(r, 4, "unterminated quote"));
    CHECK(has_issue(r, 6, "not followed by a URL"));
    CHECK(has_issue(r, 10, "empty URL"));
    CHECK(has_issue(r, 12, "spaces"));
    CHECK(has_issue(r, 14, "control characters"));
    CHECK(has_issue(r, 15, "not a URL"));
    CHECK(has_issue(r, 16, "not a URL"));
    CHECK(has_issue(r, 19, "not followed by a URL"));
    CHECK(r.issues.size() == 9);
    for (std::size_t i = 1; i < r.issues.size(); ++i) CHECK(r.issues[i - 1].line <= r.issues[i].line);
}

TEST_CASE("parse_m3u: issue messages never show credentials", "[registry][m3u]") {
    LoadReport r = parse_m3u("http://user:secret@h/a b.m3u8?token=hidden\n");
    REQUIRE(r.issues.size() == 1);
    CHECK(r.issues[0].line == 1);
    CHECK(r.issues[0].message.find("secret") == std::string::npos);
    CHECK(r.issues[0].message.find("hidden") == std::string::npos);
}

TEST_CASE("parse_m3u: CRLF, BOM, blank lines, unknown tags, no header", "[registry][m3u]") {
    LoadReport r = parse_m3u(
        "\xEF\xBB\xBF#EXTM3U\r\n"
        "\r\n"
        "#PLAYLIST:My list\r\n"
        "#KODIPROP:inputstream=inputstream.adaptive\r\n"
        "#EXTINF:-1 tvg-id=\"one\",One\r\n"
        "#EXTVLCOPT:http-user-agent=UA\r\n"
        "\r\n"
        "http://h/one.m3u8\r\n"
        "   \r\n"
        "#EXTINF:-1,Two\r\n"
        "http://h/two.m3u8");
    REQUIRE(r.issues.empty());
    REQUIRE(r.channels.size() == 2);
    CHECK(r.channels[0].id == "one");
    CHECK(r.channels[0].name == "One");
    CHECK(r.channels[0].headers == Headers{{"User-Agent", "UA"}});
    CHECK(r.channels[0].urls == Strings{"http://h/one.m3u8"});
    CHECK(r.channels[1].urls == Strings{"http://h/two.m3u8"});

    LoadReport headerless = parse_m3u("#EXTINF:-1,X\nhttp://h/x\n");
    CHECK(headerless.issues.empty());
    CHECK(headerless.channels.size() == 1);

    LoadReport bom_issue = parse_m3u("\xEF\xBB\xBF#EXTINF:-1 no comma\r\nhttp://h/x\r\n");
    CHECK(bom_issue.channels.empty());
    CHECK(has_issue(bom_issue, 1, "no comma"));

    CHECK(parse_m3u("").channels.empty());
    CHECK(parse_m3u("").issues.empty());
    CHECK(parse_m3u("#EXTM3U\n").issues.empty());
}

TEST_CASE("parse_m3u: Latin-1 names become UTF-8", "[registry][m3u]") {
    LoadReport r = parse_m3u("#EXTINF:-1 group-title=\"T\xE9l\xE9\",Caf\xE9 TV\nhttp://h/x\n");
    REQUIRE(r.channels.size() == 1);
    CHECK(r.channels[0].name == "Caf\xC3\xA9 TV");
    CHECK(r.channels[0].group == "T\xC3\xA9l\xC3\xA9");
    CHECK(r.channels[0].id == "caf_tv");
    CHECK_NOTHROW(nlohmann::json(r.channels[0].name).dump());
}

// ---------------------------------------------------------------- JSON

TEST_CASE("parse_json reads every field", "[registry][json]") {
    LoadReport r = parse_json(R"([
      {
        "id": "news", "name": "News 24", "urls": ["http://a/n.m3u8", "http://b/n.m3u8"],
        "logo": "http://logo/n.png", "group": "News",
        "headers": {"user-agent": "UA/2", "X-Key": "k"}, "referer": "http://ref/",
        "loop": true, "realtime": false, "variant": "Lowest",
        "segment_duration": 4, "max_segments": 6, "cleanup_interval": 0.5
      },
      {"name": "Movie", "url": "/srv/movie.mp4", "variant": 2500000, "user_agent": "Override", "headers": {"User-Agent": "x"}}
    ])");
    REQUIRE(r.issues.empty());
    REQUIRE(r.channels.size() == 2);
    const ChannelConfig& a = r.channels[0];
    CHECK(a.id == "news");
    CHECK(a.name == "News 24");
    CHECK(a.urls == Strings{"http://a/n.m3u8", "http://b/n.m3u8"});
    CHECK(a.logo == "http://logo/n.png");
    CHECK(a.group == "News");
    CHECK(a.headers == Headers{{"User-Agent", "UA/2"}, {"X-Key", "k"}, {"Referer", "http://ref/"}});
    CHECK(a.loop);
    CHECK(a.realtime == std::optional<bool>(false));
    CHECK(a.variant == "lowest");
    CHECK(a.hls.segment_duration == 4.0);
    CHECK(a.hls.max_segments == 6);
    CHECK(a.hls.cleanup_interval == 0.5);

    const ChannelConfig& b = r.channels[1];
    CHECK(b.id.empty());  // the registry derives it
    CHECK(b.urls == Strings{"/srv/movie.mp4"});
    CHECK(b.variant == "2500000");
    CHECK(b.headers == Headers{{"User-Agent", "Override"}});
    CHECK_FALSE(b.loop);
    CHECK_FALSE(b.realtime.has_value());
    CHECK(b.hls.empty());
}

TEST_CASE("parse_json accepts {\"channels\": [...]}, comments, nulls and a BOM", "[registry][json]") {
    LoadReport r = parse_json(
        "\xEF\xBB\xBF{\"channels\": [\n"
        "  // a comment\n"
        "  {\"name\": \"A\", \"url\": \"http://h/a\", \"logo\": null, \"realtime\": null, \"max_segments\": 3.0}\n"
        "]}");
    REQUIRE(r.issues.empty());
    REQUIRE(r.channels.size() == 1);
    CHECK(r.channels[0].logo.empty());
    CHECK_FALSE(r.channels[0].realtime.has_value());
    CHECK(r.channels[0].hls.max_segments == 3);

    CHECK(parse_json("[]").channels.empty());
    CHECK(parse_json("[]").issues.empty());
}

TEST_CASE("parse_json: wrong types skip that entry and name index and field", "[registry][json]") {
    LoadReport r = parse_json(R"([
      {"name": "ok1", "url": "http://h/1"},
      {"name": 5, "url": "http://h/2"},
      {"name": "loop", "url": "http://h/3", "loop": "yes"},
      {"name": "urls", "urls": "http://h/4"},
      {"name": "urls2", "urls": ["http://h/5", 7]},
      {"name": "hdr", "url": "http://h/6", "headers": {"User-Agent": 1}},
      {"name": "maxseg", "url": "http://h/7", "max_segments": 2.5},
      {"name": "segdur", "url": "http://h/8", "segment_duration": "2"},
      {"name": "variant", "url": "http://h/9", "variant": true},
      "not an object",
      {"name": "ok2", "url": "http://h/11"}
    ])");
    CHECK(ids(r.channels) == Strings{"", ""});
    REQUIRE(r.channels.size() == 2);
    CHECK(r.channels[0].name == "ok1");
    CHECK(r.channels[1].name == "ok2");
    REQUIRE(r.issues.size() == 9);
    CHECK(has_issue(r, 2, "JSON entry 2"));
    CHECK(has_issue(r, 2, "'name' must be a string"));
    CHECK(has_issue(r, 3, "'loop' must be true or false"));
    CHECK(has_issue(r, 4, "'urls' must be a non-empty array"));
    CHECK(has_issue(r, 5, "'urls' must be a non-empty array"));
    CHECK(has_issue(r, 6, "'headers.User-Agent' must be a string"));
    CHECK(has_issue(r, 7, "'max_segments' must be an integer"));
    CHECK(has_issue(r, 8, "'segment_duration' must be a number"));
    CHECK(has_issue(r, 9, "'variant' must be"));
    CHECK(has_issue(r, 10, "not a JSON object"));
    for (const LoadIssue& i : r.issues) CHECK(i.message.find("entry skipped") != std::string::npos);
    for (const LoadIssue& i : r.issues) CHECK(i.message.find("line = entry number") != std::string::npos);
}

TEST_CASE("parse_json: missing, unsafe and out-of-range values", "[registry][json]") {
    LoadReport r = parse_json(R"([
      {"url": "http://h/1"},
      {"name": "", "url": "http://h/2"},
      {"name": "no source"},
      {"name": "both", "url": "http://h/4", "urls": ["http://h/4b"]},
      {"name": "empty urls", "urls": []},
      {"name": "bad id", "id": "Bad Id", "url": "http://h/6"},
      {"name": "seg low", "url": "http://h/7", "segment_duration": 0.4},
      {"name": "seg high", "url": "http://h/8", "segment_duration": 60.5},
      {"name": "max high", "url": "http://h/9", "max_segments": 101},
      {"name": "max huge", "url": "http://h/10", "max_segments": 4294967297},
      {"name": "cleanup", "url": "http://h/11", "cleanup_interval": 0.05},
      {"name": "variant", "url": "http://h/12", "variant": "medium"},
      {"name": "variant0", "url": "http://h/13", "variant": 0},
      {"name": "garbage url", "url": "www.example.com/x"},
      {"name": "empty url", "url": ""},
      {"name": "edges", "url": "http://h/16", "segment_duration": 0.5, "max_segments": 100, "cleanup_interval": 3600}
    ])");
    REQUIRE(r.channels.size() == 1);
    CHECK(r.channels[0].name == "edges");
    CHECK(r.issues.size() == 15);
    CHECK(has_issue(r, 1, "'name' is required"));
    CHECK(has_issue(r, 2, "'name' is required"));
    CHECK(has_issue(r, 3, "'url' or 'urls' is required"));
    CHECK(has_issue(r, 4, "either 'url' or 'urls'"));
    CHECK(has_issue(r, 5, "non-empty array"));
    CHECK(has_issue(r, 6, "id 'Bad Id' is not a safe stream id"));
    CHECK(has_issue(r, 7, "segment_duration 0.4 is outside [0.5, 60]"));
    CHECK(has_issue(r, 8, "segment_duration 60.5 is outside"));
    CHECK(has_issue(r, 9, "max_segments 101 is outside [1, 100]"));
    CHECK(has_issue(r, 10, "max_segments 4294967297 is outside"));
    CHECK(has_issue(r, 11, "cleanup_interval 0.05 is outside [0.1, 3600]"));
    CHECK(has_issue(r, 12, "variant 'medium'"));
    CHECK(has_issue(r, 13, "variant '0'"));
    CHECK(has_issue(r, 14, "not a URL"));
    CHECK(has_issue(r, 15, "empty URL"));
}

TEST_CASE("parse_json: unknown fields are reported but the entry loads", "[registry][json]") {
    LoadReport r = parse_json(R"([{"name": "A", "url": "http://h/a", "segment_duraton": 3}])");
    REQUIRE(r.channels.size() == 1);
    REQUIRE(r.issues.size() == 1);
    CHECK(r.issues[0].line == 1);
    CHECK(r.issues[0].message.find("unknown field 'segment_duraton'") != std::string::npos);
}

TEST_CASE("parse_json: a |header suffix in a url becomes headers", "[registry][json]") {
    LoadReport r = parse_json(R"([{"name": "A", "url": "http://h/a.m3u8|User-Agent=UA%201&Referer=http%3A%2F%2Fr"}])");
    REQUIRE(r.issues.empty());
    REQUIRE(r.channels.size() == 1);
    CHECK(r.channels[0].urls == Strings{"http://h/a.m3u8"});
    CHECK(r.channels[0].headers == Headers{{"User-Agent", "UA 1"}, {"Referer", "http://r"}});
}

TEST_CASE("parse_json: invalid JSON gives one issue with its line", "[registry][json]") {
    LoadReport r = parse_json("[\n  {\"name\": \"A\", \"url\": \"http://h/a\"},\n  {\"name\": \"B\" \"url\": 1}\n]\n");
    CHECK(r.channels.empty());
    REQUIRE(r.issues.size() == 1);
    CHECK(r.issues[0].line == 3);
    CHECK(r.issues[0].message.rfind("invalid JSON", 0) == 0);

    LoadReport truncated = parse_json("[\n  {\"name\": \"A\",\n   \"url\": \"http://h/a\"\n\n\n");
    CHECK(truncated.channels.empty());
    REQUIRE(truncated.issues.size() == 1);
    CHECK(truncated.issues[0].line == 3);  // the last line with content, not the blank tail

    LoadReport first = parse_json("{oops}");
    REQUIRE(first.issues.size() == 1);
    CHECK(first.issues[0].line == 1);

    // nlohmann::json throws out_of_range, not parse_error, for a number beyond a double (fuzzing
    // found it: tests/fuzz/regressions/channels/json-number-out-of-range-uncaught.bin).
    for (const char* text : {"1e999", "[{\"name\": \"A\", \"url\": \"http://h/a\", \"segment_duration\": -1e400}]"}) {
        LoadReport big = parse_json(text);
        CHECK(big.channels.empty());
        REQUIRE(big.issues.size() == 1);
        CHECK(big.issues[0].message == "invalid JSON: a number is out of range");
    }
    CHECK(parse_channels("[1e999]").issues.at(0).message == "invalid JSON: a number is out of range");
}

TEST_CASE("parse_json: a document of the wrong shape gives one issue", "[registry][json]") {
    for (const char* text : {"{\"name\": \"A\"}", "{\"channels\": {}}", "42", "\"x\""}) {
        LoadReport r = parse_json(text);
        CHECK(r.channels.empty());
        REQUIRE(r.issues.size() == 1);
        CHECK(r.issues[0].line == 1);
    }
}

TEST_CASE("parse_channels sniffs JSON or M3U", "[registry]") {
    LoadReport json = parse_channels("\xEF\xBB\xBF \n\t[{\"name\": \"J\", \"url\": \"http://h/j\"}]");
    REQUIRE(json.channels.size() == 1);
    CHECK(json.channels[0].name == "J");

    LoadReport object = parse_channels("  {\"channels\": [{\"name\": \"O\", \"url\": \"http://h/o\"}]}");
    REQUIRE(object.channels.size() == 1);
    CHECK(object.channels[0].name == "O");

    LoadReport m3u = parse_channels("\n#EXTM3U\n#EXTINF:-1,M\nhttp://h/m\n");
    REQUIRE(m3u.channels.size() == 1);
    CHECK(m3u.channels[0].id == "m");

    CHECK(parse_channels("").channels.empty());
    CHECK(parse_channels("").issues.empty());
}

// ---------------------------------------------------------------- JSON out

namespace {

ChannelConfig full_channel() {
    ChannelConfig c;
    c.id = "news-24";
    c.name = "News 24 & More";
    c.urls = {"http://user:pw@host/x.m3u8?token=abc", "/srv/backup file.ts"};
    c.logo = "http://logo/n.png";
    c.group = "News";
    c.headers = {{"User-Agent", "UA/1"}, {"Cookie", "session=secret"}};
    c.hls.segment_duration = 0.7;
    c.hls.max_segments = 9;
    c.hls.cleanup_interval = 0.1;
    c.loop = true;
    c.realtime = true;
    c.variant = "1500000";
    c.hls.container = Container::fmp4;
    c.hls.renditions = "max-height=720";
    return c;
}

}  // namespace

TEST_CASE("to_json without sources redacts URLs and header values", "[registry][json]") {
    nlohmann::json j = to_json(full_channel(), false);
    CHECK(j["id"] == "news-24");
    CHECK(j["name"] == "News 24 & More");
    CHECK(j["urls"] == nlohmann::json::array({"http://***@host/x.m3u8?***", "/srv/backup file.ts"}));
    CHECK(j["headers"] == nlohmann::json({{"Cookie", nullptr}, {"User-Agent", nullptr}}));
    CHECK(j["segment_duration"] == 0.7);
    CHECK(j["max_segments"] == 9);
    CHECK(j["loop"] == true);
    CHECK(j["realtime"] == true);
    CHECK(j["variant"] == "1500000");
    CHECK(j["container"] == "fmp4");
    CHECK(j["renditions"] == "max-height=720");
    std::string text = to_json_text({full_channel()}, false);
    CHECK(text.find("secret") == std::string::npos);
    CHECK(text.find("pw") == std::string::npos);
    CHECK(text.find("abc") == std::string::npos);
    CHECK(text.find("UA/1") == std::string::npos);
}

TEST_CASE("to_json with sources keeps everything, optional fields are left out", "[registry][json]") {
    nlohmann::json full = to_json(full_channel(), true);
    CHECK(full["urls"][0] == "http://user:pw@host/x.m3u8?token=abc");
    CHECK(full["headers"]["Cookie"] == "session=secret");

    nlohmann::json plain = to_json(channel("Plain", "http://h/p"), true);
    CHECK(plain == nlohmann::json({{"name", "Plain"}, {"urls", {"http://h/p"}}, {"loop", false}}));
}

TEST_CASE("parse_json(to_json_text(x, true)) == x", "[registry][json]") {
    ChannelConfig plain = channel("Plain", "http://h/p");
    plain.id = "plain";
    ChannelConfig no_id = channel("No Id", "rtmp://h/live/key");
    no_id.realtime = false;
    no_id.variant = "lowest";
    std::vector<ChannelConfig> channels = {full_channel(), plain, no_id};

    std::string text = to_json_text(channels, true);
    LoadReport back = parse_json(text);
    CHECK(back.issues.empty());
    CHECK(back.channels == channels);
    CHECK(parse_channels(text).channels == channels);
}

TEST_CASE("to_json_text does not throw on bytes that are not UTF-8", "[registry][json]") {
    ChannelConfig c = channel("ok", "http://h/\xFF");
    std::string text;
    CHECK_NOTHROW(text = to_json_text({c}, true));
    CHECK(text.find("http://h/") != std::string::npos);
}

// ---------------------------------------------------------------- Registry

TEST_CASE("Registry::add derives ids and names", "[registry]") {
    Registry reg;
    CHECK(reg.add(channel("7x Music", "http://h/7x")).id == "7x_music");
    ChannelConfig id_only;
    id_only.id = "raw";
    id_only.urls = {"http://h/raw"};
    const ChannelConfig& stored = reg.add(id_only);
    CHECK(stored.id == "raw");
    CHECK(stored.name == "raw");
    CHECK(reg.size() == 2);
}

TEST_CASE("Registry::add appends _2, _3 to taken ids", "[registry]") {
    Registry reg;
    CHECK(reg.add(channel("News", "http://h/1")).id == "news");
    CHECK(reg.add(channel("NEWS", "http://h/2")).id == "news_2");
    CHECK(reg.add(channel("news!", "http://h/3")).id == "news_3");
    ChannelConfig explicit_id = channel("Other", "http://h/4");
    explicit_id.id = "news";
    CHECK(reg.add(explicit_id).id == "news_4");
    CHECK(ids(reg.list()) == Strings{"news", "news_2", "news_3", "news_4"});

    std::string long_id(64, 'x');
    ChannelConfig a = channel("L", "http://h/l");
    a.id = long_id;
    CHECK(reg.add(a).id == long_id);
    std::string second = reg.add(a).id;
    CHECK(second == std::string(62, 'x') + "_2");
    CHECK(is_safe_slug(second));
}

TEST_CASE("Registry::add refuses invalid channels with invalid_argument", "[registry]") {
    Registry reg;
    ChannelConfig nameless;
    nameless.urls = {"http://h/x"};
    CHECK_THROWS_AS(reg.add(nameless), std::invalid_argument);
    CHECK_THROWS_WITH(reg.add(nameless), Catch::Contains("name or an id"));
    CHECK_THROWS_WITH(reg.add(channel("NoUrl", "")), Catch::Contains("empty"));
    ChannelConfig no_urls = channel("NoUrls", "x");
    no_urls.urls.clear();
    CHECK_THROWS_WITH(reg.add(no_urls), Catch::Contains("no source URL"));
    ChannelConfig second_empty = channel("Second", "http://h/1");
    second_empty.urls.push_back("");
    CHECK_THROWS_AS(reg.add(second_empty), std::invalid_argument);
    ChannelConfig bad_id = channel("Bad", "http://h/1");
    bad_id.id = "../etc";
    CHECK_THROWS_WITH(reg.add(bad_id), Catch::Contains("not a safe stream id"));
    ChannelConfig bad_seg = channel("Seg", "http://h/1");
    bad_seg.hls.segment_duration = 0.0;
    CHECK_THROWS_WITH(reg.add(bad_seg), Catch::Contains("segment_duration"));
    ChannelConfig bad_header = channel("Hdr", "http://h/1");
    bad_header.headers["X-A"] = "1\r\nHost: evil";
    CHECK_THROWS_WITH(reg.add(bad_header), Catch::Contains("control characters"));
    ChannelConfig bad_variant = channel("Var", "http://h/1");
    bad_variant.variant = "best";
    CHECK_THROWS_WITH(reg.add(bad_variant), Catch::Contains("variant"));
    CHECK(reg.size() == 0);
}

TEST_CASE("Registry::add normalizes header names and repairs names", "[registry]") {
    Registry reg;
    ChannelConfig c = channel("Caf\xE9", "http://h/1");
    c.headers = {{"user-agent", "UA"}, {"referrer", "R"}, {"X-Other", "o"}};
    const ChannelConfig& stored = reg.add(c);
    CHECK(stored.headers == Headers{{"User-Agent", "UA"}, {"Referer", "R"}, {"X-Other", "o"}});
    CHECK(stored.name == "Caf\xC3\xA9");
    CHECK(stored.id == "caf");
}

TEST_CASE("Registry::update replaces fields and keeps the id", "[registry]") {
    Registry reg;
    reg.add(channel("One", "http://h/1"));
    reg.add(channel("Two", "http://h/2"));

    ChannelConfig changed = channel("Uno", "http://h/uno");
    changed.id = "ignored";
    changed.loop = true;
    CHECK(reg.update("one", changed));
    const ChannelConfig* one = reg.find("one");
    REQUIRE(one);
    CHECK(one->id == "one");
    CHECK(one->name == "Uno");
    CHECK(one->urls == Strings{"http://h/uno"});
    CHECK(one->loop);
    CHECK(reg.find("ignored") == nullptr);
    CHECK(ids(reg.list()) == Strings{"one", "two"});  // position kept

    CHECK_FALSE(reg.update("missing", channel("X", "http://h/x")));
    CHECK_THROWS_AS(reg.update("two", channel("Two", "")), std::invalid_argument);
    CHECK(reg.find("two")->urls == Strings{"http://h/2"});  // untouched after a refused update

    ChannelConfig unnamed;
    unnamed.urls = {"http://h/2b"};
    CHECK(reg.update("two", unnamed));
    CHECK(reg.find("two")->name == "two");
}

TEST_CASE("Registry::remove keeps the others findable", "[registry]") {
    Registry reg;
    for (const char* n : {"A", "B", "C", "D"}) reg.add(channel(n, std::string("http://h/") + n));
    CHECK(reg.remove("b"));
    CHECK_FALSE(reg.remove("b"));
    CHECK_FALSE(reg.remove("B"));  // by id only
    CHECK(reg.size() == 3);
    CHECK(ids(reg.list()) == Strings{"a", "c", "d"});
    REQUIRE(reg.find("c"));
    CHECK(reg.find("c")->urls == Strings{"http://h/C"});
    REQUIRE(reg.find("d"));
    CHECK(reg.find("d")->urls == Strings{"http://h/D"});
    CHECK(reg.add(channel("B", "http://h/B2")).id == "b");  // the id is free again
    CHECK(ids(reg.list()) == Strings{"a", "c", "d", "b"});
    CHECK(reg.remove("a"));
    CHECK(reg.find("b")->urls == Strings{"http://h/B2"});
}

TEST_CASE("Registry::find: id, then name, then name ignoring case, then slug", "[registry]") {
    Registry reg;
    ChannelConfig a = channel("BBC One", "http://h/a");
    a.id = "bbc1";
    reg.add(a);
    ChannelConfig b = channel("bbc1", "http://h/b");  // named like a's id
    b.id = "other";
    reg.add(b);
    reg.add(channel("Sky News", "http://h/c"));  // id sky_news
    ChannelConfig d = channel("sky news", "http://h/d");
    d.id = "lower";
    reg.add(d);

    REQUIRE(reg.find("bbc1"));
    CHECK(reg.find("bbc1")->urls == Strings{"http://h/a"});  // id beats name
    CHECK(reg.find("BBC One")->id == "bbc1");
    CHECK(reg.find("bbc one")->id == "bbc1");
    CHECK(reg.find("sky news")->id == "lower");  // exact name beats case-insensitive
    CHECK(reg.find("SKY NEWS")->id == "sky_news");  // first case-insensitive match
    CHECK(reg.find("Sky-News!")->id == "sky_news");  // by slug
    CHECK(reg.find("nothing") == nullptr);
    CHECK(reg.find("") == nullptr);
}

TEST_CASE("Registry::add_all stores a report's channels with their final ids", "[registry]") {
    Registry reg;
    reg.add(channel("News", "http://h/existing"));
    LoadReport r = parse_m3u("#EXTINF:-1,News\nhttp://h/n\n#EXTINF:-1,Sport\nhttp://h/s\n");
    ChannelConfig bad;
    bad.name = "Bad";
    r.channels.push_back(bad);  // no URL: cannot be added
    reg.add_all(r);
    CHECK(ids(r.channels) == Strings{"news_2", "sport"});
    REQUIRE(r.issues.size() == 1);
    CHECK(r.issues[0].line == 0);
    CHECK(r.issues[0].message.find("'Bad'") != std::string::npos);
    CHECK(reg.size() == 3);
}

TEST_CASE("Registry::list returns copies in insertion order", "[registry]") {
    Registry reg;
    CHECK(reg.list().empty());
    CHECK(reg.empty());
    reg.add(channel("Zeta", "http://h/z"));
    reg.add(channel("Alpha", "http://h/a"));
    std::vector<ChannelConfig> l = reg.list();
    CHECK(ids(l) == Strings{"zeta", "alpha"});
    l[0].name = "changed";
    CHECK(reg.find("zeta")->name == "Zeta");
}

// ---------------------------------------------------------------- fetch limits

TEST_CASE("parse_json: per-channel fetch limits, their ranges and the round trip", "[registry][json][limits]") {
    LoadReport r = parse_json(R"([
      {"name": "capped", "url": "http://h/1", "max_playlist_bytes": 65536, "max_segment_bytes": 8388608,
       "max_redirects": 0, "playlist_deadline": 2.5, "segment_deadline": 0},
      {"name": "pl low", "url": "http://h/2", "max_playlist_bytes": 4095},
      {"name": "seg high", "url": "http://h/3", "max_segment_bytes": 4294967297},
      {"name": "redir", "url": "http://h/4", "max_redirects": 21},
      {"name": "redir wrap", "url": "http://h/5", "max_redirects": 4294967297},
      {"name": "deadline", "url": "http://h/6", "playlist_deadline": 0.2},
      {"name": "negative", "url": "http://h/7", "segment_deadline": -1},
      {"name": "type", "url": "http://h/8", "max_segment_bytes": "8M"},
      {"name": "edges", "url": "http://h/9", "max_playlist_bytes": 4096, "max_segment_bytes": 4294967296,
       "max_redirects": 20, "playlist_deadline": 3600, "segment_deadline": 0.5}
    ])");
    REQUIRE(r.channels.size() == 2);
    const FetchLimitOverrides& l = r.channels[0].limits;
    CHECK(l.max_playlist_bytes == 65536);
    CHECK(l.max_segment_bytes == 8388608);
    CHECK(l.max_redirects == 0);
    CHECK(l.playlist_deadline == 2.5);
    CHECK(l.segment_deadline == 0.0);  // set: 0 is "automatic", written back as given
    CHECK(r.channels[1].limits.max_segment_bytes == int64_t{4} << 30);
    CHECK(has_issue(r, 2, "max_playlist_bytes 4095 is outside [4096, 1073741824]"));
    CHECK(has_issue(r, 3, "max_segment_bytes 4294967297 is outside [65536, 4294967296]"));
    CHECK(has_issue(r, 4, "max_redirects 21 is outside [0, 20]"));
    CHECK(has_issue(r, 5, "max_redirects 4294967297 is outside"));
    CHECK(has_issue(r, 6, "playlist_deadline 0.2 is outside [0.5, 3600] (or 0: automatic)"));
    CHECK(has_issue(r, 7, "segment_deadline -1 is outside"));
    CHECK(has_issue(r, 8, "'max_segment_bytes' must be an integer"));
    CHECK(r.issues.size() == 7);

    nlohmann::json j = to_json(r.channels[0], true);
    CHECK(j["max_playlist_bytes"] == 65536);
    CHECK(j["max_segment_bytes"] == 8388608);
    CHECK(j["max_redirects"] == 0);
    CHECK(j["playlist_deadline"] == 2.5);
    CHECK(j["segment_deadline"] == 0.0);
    CHECK_FALSE(to_json(channel("Plain", "http://h/p"), true).contains("max_segment_bytes"));
    LoadReport back = parse_json(to_json_text(r.channels, true));
    CHECK(back.issues.empty());
    CHECK(back.channels == r.channels);
}

TEST_CASE("parse_m3u: fetch limit attributes", "[registry][m3u][limits]") {
    LoadReport r = parse_m3u(
        "#EXTINF:-1 hlsrelay-max-playlist-bytes=\"65536\" hlsrelay-max-segment-bytes=1048576 hlsrelay-max-redirects=2 "
        "hlsrelay-playlist-deadline=\"3\" hlsrelay-segment-deadline=\"7.5\",Capped\n"
        "http://h/capped.m3u8\n"
        "#EXTINF:-1 hlsrelay-max-segment-bytes=\"1k\",Words\n"
        "http://h/words.m3u8\n"
        "#EXTINF:-1 hlsrelay-max-redirects=\"99\",Many\n"
        "http://h/many.m3u8\n"
        "#EXTINF:-1 hlsrelay-segment-deadline=\"0.1\",Short\n"
        "http://h/short.m3u8\n");
    REQUIRE(r.channels.size() == 1);
    const FetchLimitOverrides& l = r.channels[0].limits;
    CHECK(l.max_playlist_bytes == 65536);
    CHECK(l.max_segment_bytes == 1048576);
    CHECK(l.max_redirects == 2);
    CHECK(l.playlist_deadline == 3.0);
    CHECK(l.segment_deadline == 7.5);
    REQUIRE(r.issues.size() == 3);
    CHECK(has_issue(r, 3, "hlsrelay-max-segment-bytes '1k' is not an integer"));
    CHECK(has_issue(r, 5, "max_redirects 99 is outside [0, 20]"));
    CHECK(has_issue(r, 7, "segment_deadline 0.1 is outside [0.5, 3600]"));
}

TEST_CASE("Registry::add and update refuse out-of-range fetch limits", "[registry][limits]") {
    Registry reg;
    ChannelConfig c = channel("Capped", "http://h/c");
    c.limits.max_segment_bytes = 1024;
    CHECK_THROWS_WITH(reg.add(c), Catch::Contains("max_segment_bytes 1024 is outside"));
    c.limits = {};
    c.limits.max_redirects = -1;
    CHECK_THROWS_WITH(reg.add(c), Catch::Contains("max_redirects -1 is outside"));
    c.limits = {};
    c.limits.playlist_deadline = 2;
    const std::string id = reg.add(c).id;
    c.limits.segment_deadline = 1e9;
    CHECK_THROWS_WITH(reg.update(id, c), Catch::Contains("segment_deadline"));
    CHECK(reg.find(id)->limits.playlist_deadline == 2.0);
    CHECK_FALSE(reg.find(id)->limits.segment_deadline);
}

TEST_CASE("limits_problem: the engine-wide defaults are in range, each bound is checked", "[registry][limits]") {
    CHECK(limits_problem(FetchLimits{}) == "");
    FetchLimits l;
    l.max_playlist_bytes = kMaxMaxPlaylistBytes + 1;
    CHECK_THAT(limits_problem(l), Catch::Contains("max_playlist_bytes"));
    l = {};
    l.segment_deadline = std::numeric_limits<double>::quiet_NaN();
    CHECK_THAT(limits_problem(l), Catch::Contains("segment_deadline"));
    l = {};
    l.playlist_deadline = kMinFetchDeadline;
    l.max_redirects = kMaxMaxRedirects;
    l.max_segment_bytes = kMinMaxSegmentBytes;
    CHECK(limits_problem(l) == "");
}

TEST_CASE("container and renditions: JSON fields, M3U attributes, back to JSON", "[registry][renditions]") {
    LoadReport r = parse_json(R"([
      {"name": "A", "url": "http://h/1", "container": "fmp4", "renditions": "max-height=720"},
      {"name": "B", "url": "http://h/2", "container": "TS", "renditions": ["1080p", "360p"]},
      {"name": "C", "url": "http://h/3"},
      {"name": "D", "url": "http://h/4", "container": "mp4"},
      {"name": "E", "url": "http://h/5", "renditions": "best"},
      {"name": "F", "url": "http://h/6", "renditions": ["1080p", 360]},
      {"name": "G", "url": "http://h/7", "renditions": []},
      {"name": "H", "url": "http://h/8", "renditions": 720},
      {"name": "I", "url": "http://h/9", "renditions": "max-bandwidth=0"}
    ])");
    REQUIRE(r.channels.size() == 3);
    CHECK(r.channels[0].hls.container == Container::fmp4);
    CHECK(r.channels[0].hls.renditions == "max-height=720");
    CHECK(r.channels[1].hls.container == Container::ts);
    CHECK(r.channels[1].hls.renditions == "1080p,360p");
    CHECK_FALSE(r.channels[2].hls.container);
    CHECK_FALSE(r.channels[2].hls.renditions);
    CHECK(has_issue(r, 4, "container 'mp4' is not \"ts\" or \"fmp4\"; entry skipped"));
    CHECK(has_issue(r, 5, "renditions must be all, highest, lowest"));
    CHECK(has_issue(r, 5, "not 'best'"));
    CHECK(has_issue(r, 6, "'renditions' must be a string or a non-empty array"));
    CHECK(has_issue(r, 7, "'renditions' must be a string or a non-empty array"));
    CHECK(has_issue(r, 8, "'renditions' must be a string or a non-empty array"));
    CHECK(has_issue(r, 9, "renditions must be"));
    CHECK(r.issues.size() == 6);

    LoadReport m = parse_m3u(
        "#EXTM3U\n"
        "#EXTINF:-1 hlsrelay-container=\"fmp4\" hlsrelay-renditions=\"lowest\",Ladder\n"
        "http://h/ladder.m3u8\n"
        "#EXTINF:-1 hlsrelay-renditions=\"720p,480p\",Two\n"
        "http://h/two.m3u8\n"
        "#EXTINF:-1 hlsrelay-container=\"cmaf\",Bad Container\n"
        "http://h/bad1.m3u8\n"
        "#EXTINF:-1 hlsrelay-renditions=\"720\",Bad Renditions\n"
        "http://h/bad2.m3u8\n");
    REQUIRE(m.channels.size() == 2);
    CHECK(m.channels[0].hls.container == Container::fmp4);
    CHECK(m.channels[0].hls.renditions == "lowest");
    CHECK(m.channels[1].hls.renditions == "720p,480p");
    CHECK_FALSE(m.channels[1].hls.container);
    CHECK(has_issue(m, 6, "hlsrelay-container 'cmaf' is not ts or fmp4; entry skipped"));
    CHECK(has_issue(m, 8, "renditions must be"));

    // Back to JSON and loaded again: the same channels.
    const std::string text = to_json_text(r.channels, true);
    CHECK(parse_json(text).channels == r.channels);
    CHECK(to_json(r.channels[1], false)["renditions"] == "1080p,360p");
    CHECK_FALSE(to_json(r.channels[2], false).contains("container"));

    Registry reg;
    ChannelConfig c = channel("Reg", "http://h/r");
    c.hls.renditions = "max-height=abc";
    CHECK_THROWS_WITH(reg.add(c), Catch::Contains("renditions must be"));
    c.hls.renditions = "1080p,720p";
    CHECK(reg.add(c).hls.renditions == "1080p,720p");
}

TEST_CASE("legacy variant: without renditions the channel keeps one variant", "[registry][renditions]") {
    LoadReport r = parse_json(R"([
      {"name": "Hi", "url": "http://h/1", "variant": "highest"},
      {"name": "Lo", "url": "http://h/2", "variant": "LOWEST"},
      {"name": "Bw", "url": "http://h/3", "variant": 2500000},
      {"name": "Both", "url": "http://h/4", "variant": "lowest", "renditions": "all"},
      {"name": "None", "url": "http://h/5"},
      {"name": "Long", "url": "http://h/6", "variant": "1234567890123"}
    ])");
    REQUIRE(r.channels.size() == 5);
    CHECK(r.channels[0].hls_overrides().renditions == "highest");
    CHECK(r.channels[1].hls_overrides().renditions == "lowest");
    CHECK(r.channels[2].hls_overrides().renditions == "max-bandwidth=2500000");
    CHECK(r.channels[3].hls_overrides().renditions == "all");  // renditions wins
    CHECK_FALSE(r.channels[4].hls_overrides().renditions);     // the engine's default
    CHECK(has_issue(r, 6, "variant '1234567890123' is not"));
    // What the engine runs: the overrides over its settings.
    HlsSettings engine_wide;
    engine_wide.renditions = "max-height=720";
    CHECK(r.channels[1].hls_overrides().apply(engine_wide).renditions == "lowest");
    CHECK(r.channels[4].hls_overrides().apply(engine_wide).renditions == "max-height=720");
    // The stored configuration keeps what was written; the mapping is applied, not saved.
    CHECK(r.channels[1].variant == "lowest");
    CHECK_FALSE(r.channels[1].hls.renditions);

    CHECK(renditions_for_variant("highest") == "highest");
    CHECK(renditions_for_variant("007") == "max-bandwidth=7");
    CHECK_FALSE(renditions_for_variant("0"));
    CHECK_FALSE(renditions_for_variant("best"));
    CHECK_FALSE(renditions_for_variant(""));
    for (std::string_view v : {"highest", "lowest", "1", "999999999999"})
        CHECK(parse_rendition_selection(*renditions_for_variant(v)));
}

TEST_CASE("hls_problem: the engine-wide defaults are in range, renditions must parse", "[registry][renditions]") {
    CHECK(hls_problem(HlsSettings{}) == "");
    HlsSettings h;
    h.renditions = "1080p,";
    CHECK_THAT(hls_problem(h), Catch::Contains("renditions must be"));
    h = {};
    h.segment_duration = 61;
    CHECK(hls_problem(h) == "segment_duration 61 is outside [0.5, 60]");
    CHECK(format_number(0.1) == "0.1");
    CHECK(format_number(60) == "60");
}

TEST_CASE("M3U guide attributes: tvg-*, catchup passed through, the list's url-tvg") {
    const LoadReport r = parse_m3u(
        "#EXTM3U url-tvg=\"http://epg.example/a.xml.gz, http://epg.example/b.xml\" x-tvg-url=\"http://epg.example/a.xml.gz,file:///etc/passwd\"\n"
        "#EXTINF:-1 tvg-id=\"News.uk\" tvg-name=\"News HD\" tvg-chno=\"101\" tvg-shift=\"-1.5\" tvg-logo=\"http://l/n.png\" "
        "group-title=\"News\" catchup=\"append\" catchup-days=\"7\" tvg-country=\"UK\",News\n"
        "http://src.example/news.m3u8\n"
        "#EXTINF:-1 tvg-shift=\"lots\" BAD*NAME=\"x\",Sport\n"
        "http://src.example/sport.m3u8\n");
    REQUIRE(r.channels.size() == 2);
    const ChannelConfig& news = r.channels[0];
    CHECK(news.tvg_id == "News.uk");
    CHECK(news.tvg_name == "News HD");
    CHECK(news.chno == "101");
    CHECK(news.tvg_shift == -1.5);
    CHECK(news.logo == "http://l/n.png");
    CHECK(news.attributes == std::map<std::string, std::string>{{"catchup", "append"}, {"catchup-days", "7"}, {"tvg-country", "UK"}});
    CHECK(r.guide_urls == std::vector<std::string>{"http://epg.example/a.xml.gz", "http://epg.example/b.xml"});
    // An unusable shift and a malformed attribute name are reported, the entry kept.
    CHECK(r.channels[1].tvg_shift == 0);
    CHECK(r.channels[1].attributes.empty());
    std::string issues;
    for (const auto& i : r.issues) issues += i.message + "\n";
    CHECK(issues.find("tvg-shift 'lots'") != std::string::npos);
    CHECK(issues.find("attribute 'bad*name' ignored") != std::string::npos);
    CHECK(issues.find("guide URL is not http(s)") != std::string::npos);

    // The JSON form round-trips, and Registry::add checks the caps.
    const nlohmann::json j = to_json(news, true);
    CHECK(j["tvg_id"] == "News.uk");
    CHECK(j["chno"] == "101");
    CHECK(j["attributes"]["catchup-days"] == "7");
    const LoadReport back = parse_json(nlohmann::json::array({j}).dump());
    REQUIRE(back.channels.size() == 1);
    CHECK(back.channels[0].attributes == news.attributes);
    CHECK(back.channels[0].tvg_shift == -1.5);
    const LoadReport numbered = parse_json(R"({"guides": ["https://g.example/epg.xml", "file:///x"], "channels": [{"name": "A", "url": "http://a/x.m3u8", "chno": 5}]})");
    REQUIRE(numbered.channels.size() == 1);
    CHECK(numbered.channels[0].chno == "5");
    CHECK(numbered.guide_urls == std::vector<std::string>{"https://g.example/epg.xml"});
    ChannelConfig many = news;
    for (int i = 0; i < 40; ++i) many.attributes["x" + std::to_string(i)] = "v";
    CHECK(detail::channel_problem(many).find("pass-through attributes") != std::string::npos);
    many = news;
    many.chno = "1\n#EXTINF";
    CHECK(!detail::channel_problem(many).empty());
}

TEST_CASE("M3U: several URL lines under one #EXTINF are the channel's source and its backups", "[registry]") {
    const hlsrelay::LoadReport r = hlsrelay::parse_channels("#EXTM3U\n"
                                                            "#EXTINF:-1 tvg-id=\"a\",A\n"
                                                            "http://one.example/a.m3u8\n"
                                                            "http://two.example/a.m3u8\n"
                                                            "\n"
                                                            "http://three.example/a.ts\n"
                                                            "#EXTINF:-1,B\n"
                                                            "http://one.example/b.m3u8\n"
                                                            "#EXTHLSRELAY-BACKUP:http://two.example/b.m3u8\n"
                                                            "http://three.example/b.m3u8\n");
    REQUIRE(r.channels.size() == 2);
    CHECK(r.channels[0].urls == std::vector<std::string>{"http://one.example/a.m3u8", "http://two.example/a.m3u8",
                                                         "http://three.example/a.ts"});
    CHECK(r.channels[1].urls == std::vector<std::string>{"http://one.example/b.m3u8", "http://two.example/b.m3u8",
                                                         "http://three.example/b.m3u8"});
    CHECK(r.issues.empty());
}

TEST_CASE("M3U: a plain list of URLs, without #EXTINF, is one channel per URL", "[registry]") {
    const hlsrelay::LoadReport r = hlsrelay::parse_channels("http://one.example/a.m3u8\nhttp://two.example/b.m3u8\n");
    REQUIRE(r.channels.size() == 2);
    CHECK(r.channels[0].urls.size() == 1);
    CHECK(r.channels[1].urls.size() == 1);
}
