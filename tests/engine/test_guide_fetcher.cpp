// The guide fetcher (src/ingest/guide_fetcher.hpp) against a loopback guide origin: plain, gzip-file and
// Content-Encoding guides filtered for the wanted channels, merged, kept across failures, hostile answers
// (404, garbage, a hang, too large, a gzip bomb, other schemes), re-filtering, refreshes and a prompt stop.
// Every wait is on a condition with a generous bound, never a wall-clock threshold.
#include "ingest/guide_fetcher.hpp"
#include "ingest/http_framing.hpp"
#include "support/text_origin.hpp"

#include <catch2/catch.hpp>

#include <zlib.h>

#include <chrono>
#include <functional>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace hlsrelay::test {

namespace {

constexpr double kWait = 30;  // seconds any condition may take before the test fails (never reached)

// The guides' loopback origin (hanging answers, extra headers: see text_origin.hpp).
using GuideOrigin = TextOrigin;

std::string gzip(const std::string& data) {
    z_stream z{};
    REQUIRE(deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    std::string out(deflateBound(&z, data.size()) + 64, '\0');
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    z.avail_in = static_cast<uInt>(data.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    const int ret = deflate(&z, Z_FINISH);
    out.resize(z.total_out);
    deflateEnd(&z);
    REQUIRE(ret == Z_STREAM_END);
    return out;
}

std::string gunzip(const std::string& data) {
    std::string out;
    hlsrelay::http::Inflater inflater(hlsrelay::http::Inflater::Kind::Gzip, 64u << 20);
    inflater.feed(data, out);
    inflater.finish();
    return out;
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

const std::string kGuideA = R"(<?xml version="1.0" encoding="UTF-8"?>
<tv generator-info-name="provider A">
  <channel id="news.uk"><display-name>News One</display-name></channel>
  <channel id="sport.uk"><display-name>Sport Two</display-name></channel>
  <channel id="other.uk"><display-name>Other</display-name></channel>
  <programme start="20260101120000 +0000" stop="20260101130000 +0000" channel="news.uk"><title>Noon News</title></programme>
  <programme start="20260101120000 +0000" stop="20260101140000 +0000" channel="sport.uk"><title>The Match</title></programme>
  <programme start="20260101120000 +0000" stop="20260101130000 +0000" channel="other.uk"><title>Unwanted Show</title></programme>
</tv>
)";

const std::string kGuideB = R"(<?xml version="1.0" encoding="UTF-8"?>
<tv>
  <channel id="movies.uk"><display-name>Movies Three</display-name></channel>
  <programme start="20260101200000 +0000" stop="20260101220000 +0000" channel="movies.uk"><title>Late Film</title></programme>
</tv>
)";

xmltv::GuideChannel channel(std::string id, std::string tvg_id, std::string name, double shift = 0) {
    xmltv::GuideChannel c;
    c.id = std::move(id);
    c.tvg_id = std::move(tvg_id);
    c.name = std::move(name);
    c.shift_hours = shift;
    return c;
}

// News by tvg-id, Sport by name shifted by an hour, Movies by tvg-id.
std::vector<xmltv::GuideChannel> wanted_all() {
    return {channel("news1", "news.uk", "News"), channel("sport2", "", "sport  two", 1),
            channel("movies3", "movies.uk", "Movies")};
}

GuideFetcherSettings settings_for(std::vector<std::string> urls, std::vector<xmltv::GuideChannel> wanted = wanted_all()) {
    GuideFetcherSettings s;
    s.urls = std::move(urls);
    s.channels = std::move(wanted);
    s.min_fetch_interval = 0;  // refreshes in tests are immediate
    s.deadline = 20;
    s.read_timeout = 10;
    return s;
}

GuideOrigin::Answer xml_answer(std::string body) {
    GuideOrigin::Answer a;
    a.content_type = "application/xml";
    a.body = std::move(body);
    return a;
}

GuideOrigin::Answer gzip_file_answer(const std::string& body) {
    GuideOrigin::Answer a;
    a.content_type = "application/gzip";
    a.body = gzip(body);
    return a;
}

GuideOrigin::Answer status_answer(int status) {
    GuideOrigin::Answer a;
    a.status = status;
    a.content_type = "text/plain";
    a.body = "nope";
    return a;
}

// What guide A gives for wanted_all(): news and sport (shifted), nothing unwanted.
void check_guide_a(const std::string& xml) {
    CHECK(contains(xml, R"(<channel id="news1">)"));
    CHECK(contains(xml, R"(<channel id="sport2">)"));
    CHECK(contains(xml, R"(<programme start="20260101120000 +0000" stop="20260101130000 +0000" channel="news1">)"));
    CHECK(contains(xml, R"(<programme start="20260101130000 +0000" stop="20260101150000 +0000" channel="sport2">)"));
    CHECK(contains(xml, "Noon News"));
    CHECK(contains(xml, "The Match"));
    CHECK_FALSE(contains(xml, "Unwanted Show"));
    CHECK_FALSE(contains(xml, "other.uk"));
}

}  // namespace

TEST_CASE("guide fetcher: plain, gzip-file and gzip-encoded guides are filtered for the wanted channels", "[guide]") {
    GuideOrigin origin;
    origin.set("/epg.xml", xml_answer(kGuideA));
    origin.set("/epg.xml.gz", gzip_file_answer(kGuideA));
    GuideOrigin::Answer encoded = xml_answer(gzip(kGuideA));
    encoded.headers = "Content-Encoding: gzip\r\n";
    origin.set("/encoded.xml", encoded);
    GuideOrigin::Answer twice = gzip_file_answer(kGuideA);  // a .gz file sent with Content-Encoding: gzip too
    twice.body = gzip(twice.body);
    twice.headers = "Content-Encoding: gzip\r\n";
    origin.set("/twice.xml.gz", twice);

    for (const std::string path : {"/epg.xml", "/epg.xml.gz", "/encoded.xml", "/twice.xml.gz"}) {
        INFO(path);
        GuideFetcher f(settings_for({origin.url(path)}));
        REQUIRE(f.wait_built(kWait));
        const auto xml = f.xml();
        REQUIRE(xml);
        check_guide_a(*xml);
        CHECK(contains(*xml, R"(<channel id="movies3">)"));  // unknown to the guide: listed without programmes
        const auto gz = f.xml_gz();
        REQUIRE(gz);
        CHECK(gunzip(*gz) == *xml);

        const auto sources = f.sources();
        REQUIRE(sources.size() == 1);
        CHECK(sources[0].last_error.empty());
        CHECK(sources[0].has_guide);
        CHECK(sources[0].complete);
        CHECK(sources[0].gzip_file == (path == "/epg.xml.gz" || path == "/twice.xml.gz"));
        CHECK(sources[0].channels == 2);    // news and sport: only what the wanted channels use is kept
        CHECK(sources[0].programmes == 2);
        CHECK(sources[0].document_bytes == static_cast<int64_t>(kGuideA.size()));
        CHECK(sources[0].bytes > 0);
        CHECK_FALSE(sources[0].fetched_at.empty());
        CHECK_FALSE(sources[0].next_fetch_at.empty());

        const xmltv::Report r = f.report();
        CHECK(r.programmes_written == 2);
        REQUIRE(r.channels.size() == 3);
        CHECK(r.channels[0].by == xmltv::ChannelMatch::By::tvg_id);
        CHECK(r.channels[1].by == xmltv::ChannelMatch::By::name);
        CHECK(r.unmatched == std::vector<std::string>{"movies3"});
        CHECK(origin.received(path) == 1);
    }
}

TEST_CASE("guide fetcher: before the first fetch the document lists the channels, never null", "[guide]") {
    GuideOrigin origin;
    GuideOrigin::Answer hang;
    hang.hang = true;
    origin.set("/hang.xml", hang);
    GuideFetcher f(settings_for({origin.url("/hang.xml")}));
    const auto xml = f.xml();
    REQUIRE(xml);
    CHECK(contains(*xml, "<tv"));
    CHECK(contains(*xml, R"(<channel id="news1">)"));
    CHECK_FALSE(contains(*xml, "<programme"));
    REQUIRE(f.xml_gz());
    CHECK(gunzip(*f.xml_gz()) == *xml);
    REQUIRE(f.sources().size() == 1);
}

TEST_CASE("guide fetcher: two guides merged, a failing one reports a redacted error, the other's data stays", "[guide]") {
    GuideOrigin origin;
    origin.set("/a.xml", xml_answer(kGuideA));
    origin.set("/b.xml.gz", gzip_file_answer(kGuideB));
    origin.set("/garbage.xml", xml_answer("this is not a guide at all"));
    origin.set("/server-error.xml", status_answer(500));
    GuideOrigin::Answer large = xml_answer(kGuideB + std::string(200 << 10, ' '));
    origin.set("/large.xml", large);
    std::string filler;  // a bomb: 8 MiB of XML-looking bytes that compress to a few KiB
    filler.reserve(8u << 20);
    filler = "<tv>";
    while (filler.size() < (8u << 20)) filler += "<!-- padding padding padding -->";
    origin.set("/bomb.xml.gz", gzip_file_answer(filler));
    const std::string secret = "http://xtuser:xtsecret@127.0.0.1:" + std::to_string(origin.port()) + "/missing.xml?password=hunter2";

    std::vector<std::string> logged;
    std::mutex log_mu;
    GuideFetcherSettings s = settings_for({origin.url("/a.xml"), secret, origin.url("/garbage.xml"),
                                           origin.url("/server-error.xml"), origin.url("/large.xml"),
                                           origin.url("/bomb.xml.gz"), origin.url("/b.xml.gz")});
    s.max_bytes = 128 << 10;
    s.limits.max_document_bytes = 1 << 20;
    s.log = [&](LogLevel, const std::string&, const std::string& line) {
        std::lock_guard l(log_mu);
        logged.push_back(line);
    };
    GuideFetcher f(s);
    REQUIRE(f.wait_built(kWait));

    const auto xml = f.xml();
    check_guide_a(*xml);
    CHECK(contains(*xml, R"(<programme start="20260101200000 +0000" stop="20260101220000 +0000" channel="movies3">)"));
    CHECK(contains(*xml, "Late Film"));
    CHECK(gunzip(*f.xml_gz()) == *xml);

    const auto sources = f.sources();
    REQUIRE(sources.size() == 7);
    CHECK(sources[0].last_error.empty());
    CHECK(sources[6].last_error.empty());
    CHECK(sources[6].gzip_file);
    CHECK(sources[1].url == "http://***@127.0.0.1:" + std::to_string(origin.port()) + "/missing.xml?***");
    CHECK(contains(sources[1].last_error, "404"));
    CHECK(contains(sources[2].last_error, "not an XMLTV guide"));
    CHECK(contains(sources[3].last_error, "500"));
    CHECK(contains(sources[4].last_error, "exceeds guide max_bytes (131072 bytes)"));
    CHECK(contains(sources[5].last_error, "gzip file inflates to more than max_document_bytes (1048576 bytes)"));
    for (std::size_t i = 1; i <= 5; ++i) {
        INFO(i);
        CHECK_FALSE(sources[i].has_guide);
        CHECK(sources[i].failures == 1);
        CHECK(contains(sources[i].last_error, sources[i].url));  // each error names its URL, redacted
    }
    for (const GuideSource& g : sources) {
        CHECK_FALSE(contains(g.url + g.last_error, "xtsecret"));
        CHECK_FALSE(contains(g.url + g.last_error, "hunter2"));
    }
    const xmltv::Report r = f.report();
    CHECK(r.guides == 7);
    CHECK(r.guides_usable == 2);
    CHECK(r.programmes_written == 3);
    for (const std::string& p : r.problems) {
        CHECK_FALSE(contains(p, "xtsecret"));
        CHECK_FALSE(contains(p, "hunter2"));
    }
    std::lock_guard l(log_mu);
    CHECK_FALSE(logged.empty());
    for (const std::string& line : logged) {
        CHECK_FALSE(contains(line, "xtsecret"));
        CHECK_FALSE(contains(line, "hunter2"));
    }
}

TEST_CASE("guide fetcher: a guide that fails after a success keeps its previous data", "[guide]") {
    GuideOrigin origin;
    origin.set("/a.xml", xml_answer(kGuideA));
    GuideFetcher f(settings_for({origin.url("/a.xml")}));
    REQUIRE(f.wait_built(kWait));
    check_guide_a(*f.xml());

    for (const auto& [what, answer] : std::vector<std::pair<std::string, GuideOrigin::Answer>>{
             {"404", status_answer(404)}, {"garbage", xml_answer("<html>maintenance</html>")}}) {
        INFO(what);
        const int before = origin.received("/a.xml");
        origin.set("/a.xml", answer);
        f.refresh_now();
        REQUIRE(f.wait_built(kWait));
        CHECK(origin.received("/a.xml") == before + 1);
        check_guide_a(*f.xml());
        const auto sources = f.sources();
        REQUIRE(sources.size() == 1);
        CHECK_FALSE(sources[0].last_error.empty());
        CHECK(sources[0].has_guide);
        CHECK(sources[0].programmes == 2);
    }
    CHECK(f.sources()[0].failures == 2);

    origin.set("/a.xml", xml_answer(kGuideA));
    f.refresh_now();
    REQUIRE(f.wait_built(kWait));
    CHECK(f.sources()[0].last_error.empty());
    CHECK(f.sources()[0].failures == 0);
}

TEST_CASE("guide fetcher: a hanging guide times out, the other guide is served meanwhile", "[guide]") {
    GuideOrigin origin;
    origin.set("/a.xml", xml_answer(kGuideA));
    GuideOrigin::Answer hang;
    hang.hang = true;
    origin.set("/hang.xml", hang);
    GuideFetcherSettings s = settings_for({origin.url("/hang.xml"), origin.url("/a.xml")});
    s.deadline = 1;
    s.read_timeout = 0.5;
    GuideFetcher f(s);
    REQUIRE(f.wait_built(kWait));
    check_guide_a(*f.xml());
    const auto sources = f.sources();
    REQUIRE(sources.size() == 2);
    CHECK(contains(sources[0].last_error, "timed out"));
    CHECK(sources[1].last_error.empty());
}

TEST_CASE("guide fetcher: other schemes and redirects to them are refused", "[guide]") {
    GuideOrigin origin;
    GuideOrigin::Answer redirect = status_answer(302);
    redirect.headers = "Location: file:///etc/passwd\r\n";
    origin.set("/redirect.xml", redirect);
    GuideFetcher f(settings_for({"file:///etc/passwd", "ftp://127.0.0.1/epg.xml", "/etc/passwd",
                                 origin.url("/redirect.xml")}));
    REQUIRE(f.wait_built(kWait));
    const auto sources = f.sources();
    REQUIRE(sources.size() == 4);
    CHECK(contains(sources[0].last_error, "refused URI scheme 'file' for a guide (allowed: http, https)"));
    CHECK(contains(sources[1].last_error, "refused URI scheme 'ftp' for a guide (allowed: http, https)"));
    CHECK(contains(sources[2].last_error, "refused URI scheme 'file'"));
    CHECK(contains(sources[3].last_error, "refused redirect to URI scheme 'file'"));
    CHECK(origin.received("/redirect.xml") == 1);
    for (const GuideSource& g : sources) CHECK_FALSE(g.has_guide);
    CHECK_FALSE(contains(*f.xml(), "root:"));
    CHECK_FALSE(contains(*f.xml(), "<programme"));
}

TEST_CASE("guide fetcher: set_channels re-filters, and re-fetches only what the kept guides lack", "[guide]") {
    GuideOrigin origin;
    origin.set("/a.xml", xml_answer(kGuideA));
    GuideFetcher f(settings_for({origin.url("/a.xml")}, {channel("news1", "news.uk", "News")}));
    REQUIRE(f.wait_built(kWait));
    CHECK(contains(*f.xml(), "Noon News"));
    CHECK_FALSE(contains(*f.xml(), "The Match"));
    CHECK(f.sources()[0].channels == 1);
    CHECK(origin.received("/a.xml") == 1);

    // Covered by the kept guide (its tvg-id): re-filtered without a fetch.
    f.set_channels({channel("news-renamed", "NEWS.UK", "News", -1)});
    REQUIRE(f.wait_built(kWait));
    CHECK(contains(*f.xml(), R"(<programme start="20260101110000 +0000" stop="20260101120000 +0000" channel="news-renamed">)"));
    CHECK_FALSE(contains(*f.xml(), R"(channel id="news1")"));
    CHECK(gunzip(*f.xml_gz()) == *f.xml());
    CHECK(origin.received("/a.xml") == 1);

    // A name the kept guide was not parsed for: fetched again.
    f.set_channels(wanted_all());
    REQUIRE(f.wait_built(kWait));
    CHECK(origin.received("/a.xml") == 2);
    check_guide_a(*f.xml());
    CHECK(f.sources()[0].channels == 2);
}

TEST_CASE("guide fetcher: refresh_now re-fetches, no sooner than min_fetch_interval", "[guide]") {
    GuideOrigin origin;
    origin.set("/a.xml", xml_answer(kGuideA));
    origin.set("/b.xml", xml_answer(kGuideB));
    GuideFetcher f(settings_for({origin.url("/a.xml"), origin.url("/b.xml")}));
    REQUIRE(f.wait_built(kWait));
    CHECK(origin.received("/a.xml") == 1);
    f.refresh_now();
    REQUIRE(f.wait_built(kWait));
    CHECK(origin.received("/a.xml") == 2);
    CHECK(origin.received("/b.xml") == 2);

    GuideFetcherSettings s = settings_for({origin.url("/b.xml")});
    s.min_fetch_interval = 3600;
    GuideFetcher limited(s);
    REQUIRE(limited.wait_built(kWait));
    CHECK(origin.received("/b.xml") == 3);
    limited.refresh_now();
    REQUIRE(limited.wait_built(kWait));
    CHECK(origin.received("/b.xml") == 3);
    CHECK(contains(*limited.xml(), "Late Film"));
}

TEST_CASE("guide fetcher: a failing URL stays on its backoff when the channels change", "[guide]") {
    GuideOrigin origin;
    origin.set("/down.xml", status_answer(503));
    GuideFetcherSettings s = settings_for({origin.url("/down.xml")});
    s.retry_first = 3600;
    GuideFetcher f(s);
    REQUIRE(f.wait_built(kWait));
    CHECK(f.sources()[0].failures == 1);
    f.set_channels({channel("x", "x.uk", "X")});
    REQUIRE(f.wait_built(kWait));
    CHECK(origin.received("/down.xml") == 1);
    CHECK(contains(*f.xml(), R"(<channel id="x">)"));
    f.refresh_now();  // an explicit refresh goes ahead of the backoff (min_fetch_interval is 0 here)
    REQUIRE(f.wait_built(kWait));
    CHECK(origin.received("/down.xml") == 2);
    CHECK(f.sources()[0].failures == 2);
}

TEST_CASE("guide fetcher: set_urls keeps, adds and drops guides", "[guide]") {
    GuideOrigin origin;
    origin.set("/a.xml", xml_answer(kGuideA));
    origin.set("/b.xml", xml_answer(kGuideB));
    GuideFetcher f(settings_for({origin.url("/a.xml")}));
    REQUIRE(f.wait_built(kWait));
    CHECK_FALSE(contains(*f.xml(), "Late Film"));

    f.set_urls({origin.url("/b.xml"), origin.url("/a.xml"), origin.url("/b.xml")});
    REQUIRE(f.wait_built(kWait));
    CHECK(contains(*f.xml(), "Late Film"));
    check_guide_a(*f.xml());
    CHECK(origin.received("/a.xml") == 1);  // kept with its guide
    CHECK(origin.received("/b.xml") == 1);
    auto sources = f.sources();
    REQUIRE(sources.size() == 2);
    CHECK(sources[0].url == origin.url("/b.xml"));

    f.set_urls({origin.url("/b.xml")});
    REQUIRE(f.wait_built(kWait));
    CHECK(contains(*f.xml(), "Late Film"));
    CHECK_FALSE(contains(*f.xml(), "Noon News"));
    CHECK(f.sources().size() == 1);
}

TEST_CASE("guide fetcher: set_channels re-filters while a fetch hangs, and the destructor stops it", "[guide]") {
    GuideOrigin origin;
    origin.set("/a.xml", xml_answer(kGuideA));
    GuideOrigin::Answer hang;
    hang.hang = true;
    origin.set("/hang.xml", hang);
    // Guide A first, then the hang (the default deadline: 120 s); the first build serves A meanwhile.
    GuideFetcherSettings s = settings_for({origin.url("/a.xml"), origin.url("/hang.xml")});
    s.deadline = 120;
    s.read_timeout = 120;
    auto f = std::make_unique<GuideFetcher>(s);
    REQUIRE(origin.wait_requests("/hang.xml", 1, kWait));
    // Readers do not wait for the fetch; a channel change is re-filtered from the kept guides meanwhile.
    f->set_channels({channel("news-again", "news.uk", "News")});
    bool refiltered = false;
    const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(kWait);
    while (!refiltered && std::chrono::steady_clock::now() < until) {
        refiltered = contains(*f->xml(), R"(channel="news-again")");
        if (!refiltered) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    CHECK(refiltered);
    CHECK_FALSE(f->wait_built(0));  // the fetch thread has not taken the change: it is in the hanging fetch
    CHECK(f->sources().size() == 2);

    auto done = std::async(std::launch::async, [&] { f.reset(); });
    REQUIRE(done.wait_for(std::chrono::duration<double>(kWait)) == std::future_status::ready);
}

}  // namespace hlsrelay::test
