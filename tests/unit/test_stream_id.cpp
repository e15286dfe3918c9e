// Unit tests of stream ids (slugify, is_safe_slug) and of URL redaction.
#include <hlsrelay/stream_id.hpp>

#include <catch2/catch.hpp>

#include <string>

using hlsrelay::is_safe_slug;
using hlsrelay::redact_url;
using hlsrelay::slugify;

TEST_CASE("slugify lowercases and joins words with one underscore", "[stream_id]") {
    CHECK(slugify("7x Music") == "7x_music");
    CHECK(slugify("BBC One HD") == "bbc_one_hd");
    CHECK(slugify("news") == "news");
    CHECK(slugify("  Sky -- Sports  (UK) ") == "sky_sports_uk");
    CHECK(slugify("a.b-c_d") == "a_b_c_d");
    CHECK(slugify("Channel 5+1") == "channel_5_1");
}

TEST_CASE("slugify reads & as the separate word 'and'", "[stream_id]") {
    CHECK(slugify("&pictures") == "and_pictures");
    CHECK(slugify("A & B") == "a_and_b");
    CHECK(slugify("AT&T") == "at_and_t");
    CHECK(slugify("Rock&Roll&") == "rock_and_roll_and");
    CHECK(slugify("&") == "and");
    CHECK(slugify("&&") == "and_and");
}

TEST_CASE("slugify turns non-ASCII bytes into separators", "[stream_id]") {
    CHECK(slugify("T\xC3\xA9l\xC3\xA9 Matin") == "t_l_matin");  // "Télé Matin" in UTF-8
    CHECK(slugify("\xE2\x98\x85 Stars \xE2\x98\x85") == "stars");
    CHECK(slugify("Caf\xE9") == "caf");  // Latin-1 byte
}

TEST_CASE("slugify never returns an empty or unsafe id", "[stream_id]") {
    CHECK(slugify("") == "channel");
    CHECK(slugify("!!! ???") == "channel");
    CHECK(slugify("\xE4\xB8\xAD\xE6\x96\x87") == "channel");

    std::string long_name;
    for (int i = 0; i < 40; ++i) long_name += "ab ";
    std::string slug = slugify(long_name);
    CHECK(slug.size() <= hlsrelay::kMaxSlugLength);
    CHECK(slug.back() != '_');
    CHECK(slug.rfind("ab_ab_", 0) == 0);
    CHECK(is_safe_slug(slug));

    for (const char* name : {"x", "AT&T", "  --  ", "Fox News (US)", "\xFF\xFE", "a_b", "-lead"})
        CHECK(is_safe_slug(slugify(name)));
}

TEST_CASE("is_safe_slug accepts only short [a-z0-9_-] ids", "[stream_id]") {
    CHECK(is_safe_slug("bbc_one"));
    CHECK(is_safe_slug("cnn-hd"));
    CHECK(is_safe_slug("7x"));
    CHECK(is_safe_slug("_x"));
    CHECK(is_safe_slug(std::string(64, 'a')));

    CHECK_FALSE(is_safe_slug(""));
    CHECK_FALSE(is_safe_slug(std::string(65, 'a')));
    CHECK_FALSE(is_safe_slug("-x"));
    CHECK_FALSE(is_safe_slug(".x"));
    CHECK_FALSE(is_safe_slug("BBCOne.uk"));
    CHECK_FALSE(is_safe_slug("bbcone.uk"));
    CHECK_FALSE(is_safe_slug("Abc"));
    CHECK_FALSE(is_safe_slug("a b"));
    CHECK_FALSE(is_safe_slug("../etc"));
    CHECK_FALSE(is_safe_slug("a/b"));
    CHECK_FALSE(is_safe_slug("caf\xC3\xA9"));
}

TEST_CASE("redact_url hides userinfo and the query", "[stream_id]") {
    CHECK(redact_url("http://user:pw@host/x.m3u8?token=abc") == "http://***@host/x.m3u8?***");
    CHECK(redact_url("rtmp://user@host:1935/app/key") == "rtmp://***@host:1935/app/key");
    CHECK(redact_url("https://host/live/index.m3u8?sig=1&exp=2") == "https://host/live/index.m3u8?***");
    CHECK(redact_url("http://host:8080?x=1") == "http://host:8080?***");
}

TEST_CASE("redact_url drops the fragment and the Kodi header suffix", "[stream_id]") {
    CHECK(redact_url("http://host/a.m3u8#frag") == "http://host/a.m3u8");
    CHECK(redact_url("http://host/a.m3u8?t=1#frag") == "http://host/a.m3u8?***");
    CHECK(redact_url("http://host/a.m3u8|User-Agent=VLC&Cookie=secret") == "http://host/a.m3u8");
    CHECK(redact_url("http://u:p@host/a.m3u8?t=1|Referer=x") == "http://***@host/a.m3u8?***");
}

TEST_CASE("redact_url leaves plain sources alone", "[stream_id]") {
    CHECK(redact_url("http://host/live/a.m3u8") == "http://host/live/a.m3u8");
    CHECK(redact_url("/media/My Movie.mp4") == "/media/My Movie.mp4");
    CHECK(redact_url("udp://@239.0.0.1:1234") == "udp://***@239.0.0.1:1234");  // empty userinfo: harmless
    CHECK(redact_url("http://host/path/@user/a.ts") == "http://host/path/@user/a.ts");
    CHECK(redact_url("http://host/a?") == "http://host/a");
}

TEST_CASE("redact_url never shows a password with unencoded delimiters", "[stream_id]") {
    for (const char* url : {"http://u:se#cret@host/x", "http://u:se?cret@host/x", "http://u:se|cret@host/x"}) {
        std::string r = redact_url(url);
        CHECK(r.find("cret") == std::string::npos);
        CHECK(r == "http://***@host/x");
    }
}

TEST_CASE("redact_url survives garbage", "[stream_id]") {
    CHECK(redact_url("") == "");
    CHECK(redact_url("://") == "://");
    CHECK(redact_url("://@") == "://***@");
    CHECK(redact_url("@@@") == "@@@");
    CHECK(redact_url("?") == "");
    CHECK(redact_url("|") == "");
    CHECK(redact_url("http://") == "http://");
    CHECK(redact_url(std::string("a\0b?c", 5)) == std::string("a\0b?***", 7));
    CHECK_NOTHROW(redact_url("\xFF\xFE://\x01@\x02?#|"));
}
