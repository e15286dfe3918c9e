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

TEST_CASE("redact_url hides Xtream-Codes credentials in the path", "[stream_id]") {
    CHECK(redact_url("http://host:8080/live/USER/PASS/100.m3u8") == "http://host:8080/live/***/***/100.m3u8");
    CHECK(redact_url("http://host:8080/live/USER/PASS/100.ts") == "http://host:8080/live/***/***/100.ts");
    CHECK(redact_url("http://host:8080/live/USER/PASS/100") == "http://host:8080/live/***/***/100");
    CHECK(redact_url("http://host/LIVE/USER/PASS/100.m3u8") == "http://host/LIVE/***/***/100.m3u8");
    CHECK(redact_url("http://host/movie/USER/PASS/555.mkv") == "http://host/movie/***/***/555.mkv");
    CHECK(redact_url("https://host/series/USER/PASS/777.mp4") == "https://host/series/***/***/777.mp4");
    CHECK(redact_url("http://host/timeshift/USER/PASS/120/2026-01-01:10-00/100.ts") ==
          "http://host/timeshift/***/***/120/2026-01-01:10-00/100.ts");
    CHECK(redact_url("http://host/live/USER/PASS/100/index.m3u8") == "http://host/live/***/***/100/index.m3u8");
    // The bare form Xtream panels also serve.
    CHECK(redact_url("http://host:25461/USER/PASS/100") == "http://host:25461/***/***/100");
    CHECK(redact_url("http://host:25461/USER/PASS/100.ts") == "http://host:25461/***/***/100.ts");
    CHECK(redact_url("http://host:25461/USER/PASS/100.m3u8") == "http://host:25461/***/***/100.m3u8");
    // Combined with userinfo, a query and a header suffix.
    CHECK(redact_url("http://a:b@host/live/USER/PASS/1.ts?token=x|User-Agent=y") == "http://***@host/live/***/***/1.ts?***");
    CHECK(redact_url("http://host/get.php?username=USER&password=PASS&type=m3u") == "http://host/get.php?***");
    CHECK(redact_url("http://host/player_api.php?username=USER&password=PASS") == "http://host/player_api.php?***");
    CHECK(redact_url("http://host/x.m3u8?key=K") == "http://host/x.m3u8?***");
}

TEST_CASE("redact_url leaves paths that are not the Xtream shapes alone", "[stream_id]") {
    CHECK(redact_url("http://host/live/index.m3u8") == "http://host/live/index.m3u8");
    CHECK(redact_url("http://host/live/news/index.m3u8") == "http://host/live/news/index.m3u8");
    CHECK(redact_url("http://host/a/b/index.m3u8") == "http://host/a/b/index.m3u8");  // not a number
    CHECK(redact_url("http://host/a/100.ts") == "http://host/a/100.ts");                // two segments
    CHECK(redact_url("http://host/a/b/c/100.ts") == "http://host/a/b/c/100.ts");        // four, not live/...
    CHECK(redact_url("http://host/a/b/100.verylongext") == "http://host/a/b/100.verylongext");
    CHECK(redact_url("http://host/") == "http://host/");
    CHECK(redact_url("http://host") == "http://host");
    CHECK(redact_url("/live/USER/PASS/100.ts") == "/live/USER/PASS/100.ts");  // a local path is no URL
}

TEST_CASE("redact_url is idempotent", "[stream_id]") {
    for (const char* url : {"http://u:p@host:1/live/U/P/1.ts?t=1#f|H=1", "http://host/U/P/100", "https://h/x.m3u8?a",
                            "rtmp://u@h/app/key", "/srv/a.ts", "http://", "://@"}) {
        const std::string once = redact_url(url);
        CHECK(redact_url(once) == once);
    }
}

TEST_CASE("scrub_urls redacts or hides every URL in a text", "[stream_id]") {
    using hlsrelay::scrub_urls;
    const std::string text =
        "cannot open http://u:p@host/live/USER/PASS/100.m3u8?x=1: Server returned 403 (then https://cdn/a.ts?sig=2).";
    CHECK(scrub_urls(text) == "cannot open http://***@host/live/***/***/100.m3u8?***: Server returned 403 (then https://cdn/a.ts?***).");
    CHECK(scrub_urls(text, true) == "cannot open <url hidden>: Server returned 403 (then <url hidden>).");
    CHECK(scrub_urls("redirect to 'file:///etc/passwd' refused", true) == "redirect to '<url hidden>' refused");
    CHECK(scrub_urls("no URL here: /srv/a.ts") == "no URL here: /srv/a.ts");
    CHECK(scrub_urls("") == "");
    CHECK(scrub_urls("://") == "://");
    CHECK(scrub_urls("://", true) == "<url hidden>");
    CHECK(scrub_urls("a://b://c?d") == "a://b://c?***");
    CHECK(scrub_urls("x http://h/U/P/1.ts\nnext") == "x http://h/***/***/1.ts\nnext");
    CHECK_NOTHROW(scrub_urls("\xFF://\x01@\x02?#| ://", true));
}
