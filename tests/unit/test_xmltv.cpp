// Tests for the XMLTV guide reader and merge (hlsrelay/xmltv.hpp): matching wanted channels by tvg-id and
// name, merging guides, tvg-shift arithmetic, entities and CDATA, hostile and malformed guides, the limits,
// and that what comes out is well-formed UTF-8 XML (our reader, and xmllint when installed).
#include <hlsrelay/xmltv.hpp>

#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <unistd.h>

namespace xmltv = hlsrelay::xmltv;
using xmltv::GuideChannel;

namespace {

// Two channels with programmes, a third nobody will want; times around a year end.
constexpr std::string_view kGuide = R"(<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE tv SYSTEM "xmltv.dtd">
<tv source-info-name="provider" generator-info-name="whatever">
  <channel id="bbc1.uk">
    <display-name lang="en">BBC One</display-name>
    <display-name>BBC 1 HD</display-name>
    <icon src="http://provider/bbc1.png"/>
    <url>http://www.bbc.co.uk</url>
  </channel>
  <channel id="news.de">
    <display-name>Nachrichten  Kanal</display-name>
  </channel>
  <channel id="shop.fr"><display-name>Shopping</display-name></channel>
  <programme start="20261231230000 +0000" stop="20261231233000 +0000" channel="bbc1.uk">
    <title lang="en">Late News</title>
    <desc lang="en">The day's news.</desc>
    <category lang="en">News</category>
    <episode-num system="xmltv_ns">0.1.</episode-num>
  </programme>
  <programme start="20261231233000 +0000" stop="20270101003000 +0000" channel="bbc1.uk">
    <title lang="en">New Year</title>
    <credits><presenter>Someone</presenter></credits>
    <rating system="VCHIP"><value>TV-G</value></rating>
    <new/>
  </programme>
  <programme start="20261231220000 +0100" stop="20261231230000 +0100" channel="news.de">
    <title lang="de">Tagesschau</title>
  </programme>
  <programme start="20261231220000 +0100" stop="20261231230000 +0100" channel="shop.fr">
    <title>Buy things</title>
  </programme>
</tv>
)";

GuideChannel wanted(std::string id, std::string tvg_id, std::string name = "", double shift = 0, std::string logo = "") {
    GuideChannel c;
    c.id = std::move(id);
    c.tvg_id = std::move(tvg_id);
    c.name = std::move(name);
    c.shift_hours = shift;
    c.logo = std::move(logo);
    return c;
}

// A programme of a merged guide, read back.
struct Show {
    std::string channel, start, stop, body;
};

std::vector<Show> shows_of(const xmltv::Guide& g) {
    std::vector<Show> out;
    for (const auto& p : g.programmes)
        out.push_back({std::string(g.channel_id(p)), std::string(g.start(p)), std::string(g.stop(p)), std::string(g.body(p))});
    return out;
}

std::vector<std::string> channel_ids(const xmltv::Guide& g) {
    std::vector<std::string> out;
    for (const auto& c : g.channels) out.push_back(c.id);
    return out;
}

const xmltv::Channel* channel_of(const xmltv::Guide& g, std::string_view id) {
    for (const auto& c : g.channels)
        if (c.id == id) return &c;
    return nullptr;
}

bool valid_utf8(std::string_view s) {
    for (std::size_t i = 0; i < s.size();) {
        const std::size_t len = xmltv::detail::utf8_sequence_length(s, i);
        if (len == 0) return false;
        i += len;
    }
    return true;
}

bool mentions(const std::vector<std::string>& problems, std::string_view fragment) {
    for (const auto& p : problems)
        if (p.find(fragment) != std::string::npos) return true;
    return false;
}

// The merged document read back by our own reader: it must be whole and without a single problem.
xmltv::Guide reread(const std::string& out) {
    xmltv::Guide g = xmltv::parse(out);
    INFO(out);
    REQUIRE(g.ok());
    CHECK(g.complete);
    CHECK(g.problems.empty());
    CHECK(valid_utf8(out));
    return g;
}

std::string merge_one(std::string_view doc, const std::vector<GuideChannel>& want, xmltv::Report& report) {
    return xmltv::filter(xmltv::parse(doc), want, report);
}

// xmllint's verdict on a document (well-formedness only, no DTD loaded); nullopt when it is not installed.
std::optional<std::string> xmllint_errors(const std::string& doc) {
    if (std::system("command -v xmllint >/dev/null 2>&1") != 0) return std::nullopt;
    const auto dir = std::filesystem::temp_directory_path();
    const std::string stem = "hlsrelay_xmltv_" + std::to_string(::getpid());
    const auto xml = dir / (stem + ".xml"), err = dir / (stem + ".err");
    std::ofstream(xml, std::ios::binary) << doc;
    const std::string cmd = "xmllint --noout --nonet '" + xml.string() + "' 2>'" + err.string() + "'";
    const int rc = std::system(cmd.c_str());
    std::ifstream in(err);
    std::string errors((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::filesystem::remove(xml);
    std::filesystem::remove(err);
    if (rc != 0 && errors.empty()) errors = "xmllint exit status " + std::to_string(rc);
    return errors;
}

void check_xmllint(const std::string& doc) {
    const auto errors = xmllint_errors(doc);
    if (!errors) {
        WARN("xmllint not installed: well-formedness not checked by a second parser");
        return;
    }
    INFO(doc);
    CHECK(*errors == "");
}

}  // namespace

// ---------------------------------------------------------------- reading

TEST_CASE("xmltv: parse keeps channels and programmes compactly, children re-serialised in order", "[xmltv]") {
    const xmltv::Guide g = xmltv::parse(kGuide);
    REQUIRE(g.ok());
    CHECK(g.complete);
    CHECK(g.problems.empty());
    CHECK(channel_ids(g) == std::vector<std::string>{"bbc1.uk", "news.de", "shop.fr"});
    CHECK(g.channels[0].display_names == std::vector<std::string>{"BBC One", "BBC 1 HD"});
    CHECK(g.channels[0].has_icon);
    CHECK_FALSE(g.channels[1].has_icon);
    CHECK(g.channels[1].display_names == std::vector<std::string>{"Nachrichten  Kanal"});
    CHECK(g.channels_read == 3);
    CHECK(g.programmes_read == 4);
    REQUIRE(g.programmes.size() == 4);
    CHECK(g.programme_channels == std::vector<std::string>{"bbc1.uk", "news.de", "shop.fr"});
    const auto& p = g.programmes[1];
    CHECK(g.channel_id(p) == "bbc1.uk");
    CHECK(g.start(p) == "20261231233000 +0000");
    CHECK(p.has_stop);
    CHECK(g.stop(p) == "20270101003000 +0000");
    CHECK(g.attributes(p) == "");
    CHECK(g.body(p) ==
          "\n    <title lang=\"en\">New Year</title>"
          "\n    <credits>\n      <presenter>Someone</presenter>\n    </credits>"
          "\n    <rating system=\"VCHIP\">\n      <value>TV-G</value>\n    </rating>"
          "\n    <new/>");
}

TEST_CASE("xmltv: a programme's other attributes are kept, duplicates and namespaces are not", "[xmltv]") {
    const xmltv::Guide g = xmltv::parse(
        R"(<tv xmlns:foo="urn:x"><programme channel="a" start="20260101000000" showview="12345" clumpidx="0/1" )"
        R"(showview="999" xmlns="urn:y" foo:bar="1"><title xml:lang="en" lang="en" x:y="z">T</title><foo:extra/></programme></tv>)");
    REQUIRE(g.ok());
    REQUIRE(g.programmes.size() == 1);
    const auto& p = g.programmes[0];
    CHECK_FALSE(p.has_stop);
    CHECK(g.attributes(p) == " showview=\"12345\" clumpidx=\"0/1\"");
    CHECK(g.body(p) == "\n    <title xml:lang=\"en\" lang=\"en\">T</title>");
    CHECK(mentions(g.problems, "not kept"));
}

TEST_CASE("xmltv: comments, processing instructions, a DOCTYPE with an internal subset and a BOM are skipped", "[xmltv]") {
    const xmltv::Guide g = xmltv::parse(
        "\xEF\xBB\xBF<?xml version=\"1.0\"?>\n<!-- made by <hand> -->\n"
        "<!DOCTYPE tv [ <!ENTITY boom \"]>&boom;&boom;\"> <!ELEMENT tv ANY> ]>\n"
        "<?xml-stylesheet href=\"x\"?>"
        "<tv><!-- <channel id=\"ghost\"/> --><channel id=\"a\"><display-name>A &boom;</display-name></channel></tv>");
    REQUIRE(g.ok());
    CHECK(g.complete);
    CHECK(channel_ids(g) == std::vector<std::string>{"a"});
    // Entities the DTD declares are not expanded (no entity bombs): the text stays as written.
    CHECK(g.channels[0].display_names == std::vector<std::string>{"A &boom;"});
    CHECK(mentions(g.problems, "no known reference"));
}

TEST_CASE("xmltv: entities, character references and CDATA are decoded and re-escaped", "[xmltv]") {
    const std::string doc =
        "<tv><channel id=\"a&amp;b\"><display-name>Tom &amp; Jerry &lt;HD&gt; &quot;x&quot; &apos;y&apos; "
        "&#228;&#xE9;&#x1F4FA;</display-name></channel>"
        "<programme channel=\"a&amp;b\" start=\"20260101000000\"><title>A &lt;b&gt; c</title>"
        "<desc><![CDATA[raw <b>bold</b> & &amp; ]]]]><![CDATA[>]]></desc>"
        "<sub-title lang='it'>l'&#x27;a</sub-title></programme></tv>";
    const xmltv::Guide g = xmltv::parse(doc);
    REQUIRE(g.ok());
    CHECK(g.problems.empty());
    REQUIRE(g.channels.size() == 1);
    CHECK(g.channels[0].id == "a&b");
    CHECK(g.channels[0].display_names[0] == "Tom & Jerry <HD> \"x\" 'y' \xC3\xA4\xC3\xA9\xF0\x9F\x93\xBA");
    REQUIRE(g.programmes.size() == 1);
    CHECK(g.body(g.programmes[0]) ==
          "\n    <title>A &lt;b&gt; c</title>"
          "\n    <desc>raw &lt;b&gt;bold&lt;/b&gt; &amp; &amp;amp; ]]&gt;</desc>"
          "\n    <sub-title lang=\"it\">l''a</sub-title>");

    xmltv::Report report;
    const std::string out = xmltv::filter(g, {wanted("tom&jerry", "a&b")}, report);
    CHECK(out.find("<channel id=\"tom&amp;jerry\">") != std::string::npos);
    CHECK(out.find("channel=\"tom&amp;jerry\"") != std::string::npos);
    // Round trip: what was read is what is read back.
    const xmltv::Guide back = reread(out);
    REQUIRE(back.channels.size() == 1);
    CHECK(back.channels[0].display_names == g.channels[0].display_names);
    REQUIRE(back.programmes.size() == 1);
    CHECK(back.body(back.programmes[0]) == g.body(g.programmes[0]));
    check_xmllint(out);
}

TEST_CASE("xmltv: attribute values keep tabs and line breaks through references", "[xmltv]") {
    const xmltv::Guide g = xmltv::parse(
        "<tv><programme channel=\"a\" start=\"20260101000000\"><icon src=\"a&#9;b&#10;c\r\nd\"/></programme></tv>");
    REQUIRE(g.programmes.size() == 1);
    CHECK(g.body(g.programmes[0]) == "\n    <icon src=\"a&#9;b&#10;c&#10;d\"/>");
}

// ---------------------------------------------------------------- matching

TEST_CASE("xmltv: channels are matched by tvg-id, the rest of the guide is dropped", "[xmltv]") {
    xmltv::Report report;
    const std::string out =
        merge_one(kGuide, {wanted("bbc_one", "bbc1.uk", "BBC One"), wanted("news", "news.de", "News")}, report);
    const xmltv::Guide g = reread(out);
    CHECK(channel_ids(g) == std::vector<std::string>{"bbc_one", "news"});
    const auto shows = shows_of(g);
    REQUIRE(shows.size() == 3);
    CHECK(shows[0].channel == "bbc_one");
    CHECK(shows[1].channel == "bbc_one");
    CHECK(shows[2].channel == "news");
    CHECK(out.find("shop") == std::string::npos);
    CHECK(out.find("Buy things") == std::string::npos);
    CHECK(out.find("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE tv SYSTEM \"xmltv.dtd\">\n"
                   "<tv generator-info-name=\"hlsrelay\">\n") == 0);
    // Channels come first, then programmes.
    CHECK(out.rfind("<channel") < out.find("<programme"));

    // The guide's children of a channel are kept; its own name was already one of them.
    const xmltv::Channel* bbc = channel_of(g, "bbc_one");
    REQUIRE(bbc);
    CHECK(bbc->display_names == std::vector<std::string>{"BBC One", "BBC 1 HD"});
    CHECK(g.view(bbc->body).find("<url>http://www.bbc.co.uk</url>") != std::string::npos);
    // A name of ours the guide does not have is added after the guide's names, before its icon.
    const xmltv::Channel* news = channel_of(g, "news");
    REQUIRE(news);
    CHECK(news->display_names == std::vector<std::string>{"Nachrichten  Kanal", "News"});

    CHECK(report.guides == 1);
    CHECK(report.guides_usable == 1);
    CHECK(report.guide_channels_matched == 2);
    CHECK(report.channels_written == 2);
    CHECK(report.programmes_in == 4);
    CHECK(report.programmes_written == 3);
    CHECK(report.unmatched.empty());
    REQUIRE(report.channels.size() == 2);
    CHECK(report.channels[0].id == "bbc_one");
    CHECK(report.channels[0].by == xmltv::ChannelMatch::By::tvg_id);
    CHECK(report.channels[0].source_id == "bbc1.uk");
    CHECK(report.channels[0].programmes == 2);
    CHECK(report.channels[1].programmes == 1);
    check_xmllint(out);
}

TEST_CASE("xmltv: without a tvg-id, or with one no guide has, the display name matches (ASCII case, spaces)", "[xmltv]") {
    xmltv::Report report;
    const std::string out = merge_one(kGuide,
                                      {wanted("one", "", "  bbc   one "), wanted("two", "not.in.guide", "nachrichten kanal"),
                                       wanted("three", "", "bbc 1 hd")},
                                      report);
    const xmltv::Guide g = reread(out);
    CHECK(channel_ids(g) == std::vector<std::string>{"one", "two", "three"});
    REQUIRE(report.channels.size() == 3);
    for (const auto& c : report.channels) CHECK(c.by == xmltv::ChannelMatch::By::name);
    CHECK(report.channels[0].source_id == "bbc1.uk");
    CHECK(report.channels[1].source_id == "news.de");
    CHECK(report.channels[2].source_id == "bbc1.uk");
    // One guide channel serving two wanted channels counts once.
    CHECK(report.guide_channels_matched == 2);
    const auto shows = shows_of(g);
    REQUIRE(shows.size() == 5);
    CHECK(shows[0].channel == "one");
    CHECK(shows[2].channel == "two");
    CHECK(shows[3].channel == "three");
}

TEST_CASE("xmltv: the tvg-id wins over the name, and matches ignoring ASCII case when nothing matches exactly", "[xmltv]") {
    xmltv::Report report;
    const std::string out =
        merge_one(kGuide, {wanted("a", "news.de", "BBC One"), wanted("b", "BBC1.UK", "Shopping")}, report);
    REQUIRE(report.channels.size() == 2);
    CHECK(report.channels[0].source_id == "news.de");
    CHECK(report.channels[0].by == xmltv::ChannelMatch::By::tvg_id);
    CHECK(report.channels[1].source_id == "bbc1.uk");
    CHECK(report.channels[1].by == xmltv::ChannelMatch::By::tvg_id);
    CHECK(out.find("Buy things") == std::string::npos);
}

TEST_CASE("xmltv: wanted channels no guide knows are listed with their name and logo, without programmes", "[xmltv]") {
    xmltv::Report report;
    const std::string out = merge_one(
        kGuide, {wanted("local", "local.tv", "Local <TV> & Co", 2, "http://logos/local.png?a=1&b=2"), wanted("bare", "x.y")},
        report);
    const xmltv::Guide g = reread(out);
    CHECK(channel_ids(g) == std::vector<std::string>{"local", "bare"});
    CHECK(g.channels[0].display_names == std::vector<std::string>{"Local <TV> & Co"});
    CHECK(g.channels[0].has_icon);
    CHECK(out.find("<icon src=\"http://logos/local.png?a=1&amp;b=2\"/>") != std::string::npos);
    // Without a name, the id is the display name.
    CHECK(g.channels[1].display_names == std::vector<std::string>{"bare"});
    CHECK_FALSE(g.channels[1].has_icon);
    CHECK(g.programmes.empty());
    CHECK(report.unmatched == std::vector<std::string>{"local", "bare"});
    CHECK(report.channels[0].by == xmltv::ChannelMatch::By::none);
    CHECK(report.guide_channels_matched == 0);
    check_xmllint(out);
}

TEST_CASE("xmltv: the logo is an icon only where the guide has none", "[xmltv]") {
    xmltv::Report report;
    const std::string out = merge_one(
        kGuide, {wanted("bbc", "bbc1.uk", "", 0, "http://ours/bbc.png"), wanted("news", "news.de", "", 0, "http://ours/n.png")},
        report);
    const xmltv::Guide g = reread(out);
    CHECK(out.find("http://ours/bbc.png") == std::string::npos);
    CHECK(out.find("http://provider/bbc1.png") != std::string::npos);
    const xmltv::Channel* news = channel_of(g, "news");
    REQUIRE(news);
    CHECK(news->has_icon);
    // XMLTV's order within a channel: display names, icons, urls.
    CHECK(g.view(news->body) == "\n    <display-name>Nachrichten  Kanal</display-name>\n    <icon src=\"http://ours/n.png\"/>");
    const xmltv::Channel* bbc = channel_of(g, "bbc");
    REQUIRE(bbc);
    CHECK(g.view(bbc->body) ==
          "\n    <display-name lang=\"en\">BBC One</display-name>\n    <display-name>BBC 1 HD</display-name>"
          "\n    <icon src=\"http://provider/bbc1.png\"/>\n    <url>http://www.bbc.co.uk</url>");
}

TEST_CASE("xmltv: one guide channel serves several wanted channels, each with its own id and shift", "[xmltv]") {
    xmltv::Report report;
    const std::string out =
        merge_one(kGuide, {wanted("bbc", "bbc1.uk"), wanted("bbc+1", "bbc1.uk", "BBC One +1", 1)}, report);
    const auto shows = shows_of(reread(out));
    REQUIRE(shows.size() == 4);
    CHECK(shows[0].channel == "bbc");
    CHECK(shows[0].start == "20261231230000 +0000");
    CHECK(shows[2].channel == "bbc+1");
    CHECK(shows[2].start == "20270101000000 +0000");
    CHECK(shows[2].stop == "20270101003000 +0000");
    CHECK(shows[3].start == "20270101003000 +0000");
    CHECK(shows[3].stop == "20270101013000 +0000");
    CHECK(shows[0].body == shows[2].body);
    CHECK(report.guide_channels_matched == 1);
}

TEST_CASE("xmltv: a repeated wanted id is written once, a wanted channel without an id is left out", "[xmltv]") {
    xmltv::Report report;
    const std::string out =
        merge_one(kGuide, {wanted("x", "bbc1.uk"), wanted("x", "news.de"), wanted("", "news.de", "Nameless")}, report);
    const xmltv::Guide g = reread(out);
    CHECK(channel_ids(g) == std::vector<std::string>{"x"});
    CHECK(shows_of(g).size() == 2);
    CHECK(report.channels.size() == 3);
    CHECK(mentions(report.problems, "repeated"));
    CHECK(mentions(report.problems, "without an id"));
}

TEST_CASE("xmltv: two guides merge, the first one that has a channel serving it", "[xmltv]") {
    const std::string second = R"(<tv>
  <channel id="sport.it"><display-name>Sport</display-name><icon src="http://b/s.png"/></channel>
  <channel id="bbc1.uk"><display-name>BBC One (guide B)</display-name></channel>
  <programme start="20261231200000 +0100" channel="sport.it"><title>Calcio</title></programme>
  <programme start="20261231200000 +0000" channel="bbc1.uk"><title>From guide B</title></programme>
</tv>)";
    std::vector<xmltv::Guide> guides;
    guides.push_back(xmltv::parse(kGuide));
    guides.push_back(xmltv::parse(second));
    xmltv::Report report;
    const std::string out = xmltv::filter(
        guides, {wanted("bbc", "bbc1.uk"), wanted("sport", "", "SPORT"), wanted("news", "news.de")}, report);
    const xmltv::Guide g = reread(out);
    CHECK(channel_ids(g) == std::vector<std::string>{"bbc", "sport", "news"});
    CHECK(out.find("From guide B") == std::string::npos);
    CHECK(out.find("Calcio") != std::string::npos);
    REQUIRE(report.channels.size() == 3);
    CHECK(report.channels[0].guide == 0);
    CHECK(report.channels[1].guide == 1);
    CHECK(report.channels[1].by == xmltv::ChannelMatch::By::name);
    CHECK(report.channels[2].guide == 0);
    CHECK(report.programmes_in == 6);
    CHECK(report.programmes_written == 4);
    CHECK(report.guide_channels_matched == 3);
    check_xmllint(out);

    // merge() over the documents gives the same guide.
    xmltv::Report report2;
    CHECK(xmltv::merge({kGuide, second}, {wanted("bbc", "bbc1.uk"), wanted("sport", "", "SPORT"), wanted("news", "news.de")},
                       report2) == out);
}

TEST_CASE("xmltv: a guide that failed is reported and the others still serve", "[xmltv]") {
    std::vector<xmltv::Guide> guides;
    guides.push_back(xmltv::parse("<html><body>502 Bad Gateway</body></html>"));
    guides.push_back(xmltv::parse(kGuide));
    xmltv::Report report;
    const std::string out = xmltv::filter(guides, {wanted("bbc", "bbc1.uk")}, report);
    CHECK(report.guides == 2);
    CHECK(report.guides_usable == 1);
    CHECK(mentions(report.problems, "guide 1: not an XMLTV guide: the root element is <html>"));
    CHECK(report.channels[0].guide == 1);
    CHECK(shows_of(reread(out)).size() == 2);
}

TEST_CASE("xmltv: parse_for keeps only what the wanted channels use, and merges to the same guide", "[xmltv]") {
    const std::vector<GuideChannel> want = {wanted("bbc", "BBC1.uk"), wanted("n", "", "NACHRICHTEN KANAL")};
    const xmltv::Guide all = xmltv::parse(kGuide);
    const xmltv::Guide some = xmltv::parse_for(kGuide, want);
    REQUIRE(some.ok());
    CHECK(channel_ids(some) == std::vector<std::string>{"bbc1.uk", "news.de"});
    CHECK(some.programmes.size() == 3);
    CHECK(some.channels_read == 3);
    CHECK(some.programmes_read == 4);
    CHECK(some.text.size() < all.text.size());
    xmltv::Report r1, r2;
    CHECK(xmltv::filter(some, want, r1) == xmltv::filter(all, want, r2));
}

TEST_CASE("xmltv: parse_for keeps programmes listed before their channel only if the channel is wanted", "[xmltv]") {
    const std::string doc = R"(<tv>
  <programme start="20260101000000" channel="a"><title>A1</title></programme>
  <programme start="20260101000000" channel="b"><title>B1</title></programme>
  <channel id="a"><display-name>Alpha</display-name></channel>
  <channel id="b"><display-name>Beta</display-name></channel>
  <programme start="20260101010000" channel="a"><title>A2</title></programme>
  <programme start="20260101010000" channel="b"><title>B2</title></programme>
</tv>)";
    const xmltv::Guide g = xmltv::parse_for(doc, {wanted("alpha", "", "alpha")});
    REQUIRE(g.ok());
    CHECK(g.programme_channels == std::vector<std::string>{"a"});
    CHECK(g.programmes.size() == 2);
    xmltv::Report report;
    const auto shows = shows_of(reread(xmltv::filter(g, {wanted("alpha", "", "alpha")}, report)));
    REQUIRE(shows.size() == 2);
    CHECK(shows[0].body.find("A1") != std::string::npos);
    CHECK(shows[1].body.find("A2") != std::string::npos);
}

TEST_CASE("xmltv: programmes whose channel has no <channel> element match by tvg-id", "[xmltv]") {
    xmltv::Report report;
    const std::string out = merge_one(
        R"(<tv><programme start="20260101000000" channel="orphan"><title>X</title></programme></tv>)",
        {wanted("o", "orphan", "Orphan TV", 0, "http://l/o.png")}, report);
    const xmltv::Guide g = reread(out);
    REQUIRE(g.channels.size() == 1);
    CHECK(g.channels[0].display_names == std::vector<std::string>{"Orphan TV"});
    CHECK(g.channels[0].has_icon);
    CHECK(shows_of(g).size() == 1);
    CHECK(report.channels[0].by == xmltv::ChannelMatch::By::tvg_id);
    CHECK(report.unmatched.empty());
}

// ---------------------------------------------------------------- times

TEST_CASE("xmltv: shift_time moves times on their own clock and keeps the zone as written", "[xmltv][time]") {
    using xmltv::shift_time;
    CHECK(shift_time("20261201120000 +0000", 1) == "20261201130000 +0000");
    CHECK(shift_time("20261201120000 +0200", -1.5) == "20261201103000 +0200");
    CHECK(shift_time("20261201120000 -0130", 0.25) == "20261201121500 -0130");
    CHECK(shift_time("20261201120000+01:00", 2) == "20261201140000+01:00");
    CHECK(shift_time("20261201120000   +0100", 1) == "20261201130000   +0100");
    CHECK(shift_time("20261201120000 Z", 1) == "20261201130000 Z");
    CHECK(shift_time(" 20261201120000 GMT ", 1) == "20261201130000 GMT");
    // No zone: UTC, nothing added.
    CHECK(shift_time("20261201120000", 3) == "20261201150000");
    // Across midnight, a month, a year, both ways.
    CHECK(shift_time("20261201233000 +0000", 1) == "20261202003000 +0000");
    CHECK(shift_time("20261202003000 +0000", -1) == "20261201233000 +0000");
    CHECK(shift_time("20260430230000", 2) == "20260501010000");
    CHECK(shift_time("20260501010000", -2) == "20260430230000");
    CHECK(shift_time("20261231233000 +0000", 1) == "20270101003000 +0000");
    CHECK(shift_time("20270101003000 +0000", -1.5) == "20261231230000 +0000");
    // Leap days: 2024 and 2000 have one, 2026 and 1900 do not.
    CHECK(shift_time("20240228230000", 1) == "20240229000000");
    CHECK(shift_time("20240229233000", 1) == "20240301003000");
    CHECK(shift_time("20240301003000", -1) == "20240229233000");
    CHECK(shift_time("20260228230000", 1) == "20260301000000");
    CHECK(shift_time("20000228230000", 1) == "20000229000000");
    CHECK(shift_time("19000228230000", 1) == "19000301000000");
    // Days and weeks.
    CHECK(shift_time("20261231120000", 24 * 7) == "20270107120000");
    CHECK(shift_time("20260101000000", -24 * 366) == "20241231000000");
    // Without seconds: kept without, unless the shift needs them.
    CHECK(shift_time("202612312330 +0000", 1) == "202701010030 +0000");
    CHECK(shift_time("202612312330", 0.01) == "20261231233036");
    CHECK(shift_time("20261231233000", 0) == "20261231233000");
}

TEST_CASE("xmltv: shift_time refuses what is not a time, and shifts out of range", "[xmltv][time]") {
    using xmltv::shift_time;
    for (const char* bad : {"", "garbage", "2026", "20261231", "2026123123", "202612312330000", "20261301000000",
                            "20260001000000", "20260230120000", "20250229120000", "20261231240000", "20261231236000",
                            "20261231235961", "20261231120000 +2500", "20261231120000 +0160", "20261231120000 CET",
                            "20261231120000 +01:00:00", "20261231120000 +", "2026-12-31 12:00", "-20261231120000",
                            "20261231120000x", "２０２６１２３１１２００００"})
        CHECK_FALSE(shift_time(bad, 1).has_value());
    CHECK_FALSE(shift_time("20261231120000", std::numeric_limits<double>::quiet_NaN()));
    CHECK_FALSE(shift_time("20261231120000", std::numeric_limits<double>::infinity()));
    CHECK_FALSE(shift_time("20261231120000", 1e9));
    CHECK_FALSE(shift_time("20261231120000", xmltv::kMaxShiftHours + 1));
    CHECK(shift_time("20261231120000", xmltv::kMaxShiftHours).has_value());
    CHECK_FALSE(shift_time("99991231230000", 1));  // past year 9999
    CHECK_FALSE(shift_time("00000101000000", -1));  // before year 0
    CHECK(shift_time("00000101010000", -1) == "00000101000000");
}

TEST_CASE("xmltv: parse_time gives UTC seconds", "[xmltv][time]") {
    CHECK(xmltv::parse_time("19700101000000") == 0);
    CHECK(xmltv::parse_time("19700101010000 +0100") == 0);
    CHECK(xmltv::parse_time("19691231230000 -0100") == 0);
    CHECK(xmltv::parse_time("20261201120000 +0000") == 1796126400);
    CHECK(xmltv::parse_time("202612011200 +0000") == 1796126400);
    CHECK(xmltv::parse_time("20240229000000") == 1709164800);
    CHECK_FALSE(xmltv::parse_time("20240230000000"));
}

TEST_CASE("xmltv: filter shifts start and stop, and reports times it cannot shift (left unchanged)", "[xmltv][time]") {
    const std::string doc = R"(<tv>
  <programme start="20261231230000 +0000" stop="20270101000000 +0000" channel="a"><title>1</title></programme>
  <programme start="tomorrow" stop="20270101010000 +0000" channel="a"><title>2</title></programme>
  <programme start="202701010100" channel="a"><title>3</title></programme>
</tv>)";
    xmltv::Report report;
    const auto shows = shows_of(reread(merge_one(doc, {wanted("a", "a", "A", -1.5)}, report)));
    REQUIRE(shows.size() == 3);
    CHECK(shows[0].start == "20261231213000 +0000");
    CHECK(shows[0].stop == "20261231223000 +0000");
    CHECK(shows[1].start == "tomorrow");
    CHECK(shows[1].stop == "20261231233000 +0000");
    CHECK(shows[2].start == "202612312330");
    CHECK(shows[2].stop == "");
    CHECK(report.unparseable_times == 1);
    CHECK(mentions(report.problems, "'tomorrow'"));

    // An absurd shift is refused once, and times are left as they are.
    xmltv::Report refused;
    const auto unshifted = shows_of(reread(merge_one(doc, {wanted("a", "a", "A", 1e6)}, refused)));
    CHECK(unshifted[0].start == "20261231230000 +0000");
    CHECK(mentions(refused.problems, "shift of 1000000 hours refused"));
    CHECK(refused.unparseable_times == 0);
}

// ---------------------------------------------------------------- hostile and malformed guides

TEST_CASE("xmltv: a truncated guide keeps what was complete", "[xmltv][hostile]") {
    const std::string doc(kGuide);
    const std::size_t cut = doc.find("<title lang=\"en\">New Year");
    const xmltv::Guide g = xmltv::parse(std::string_view(doc).substr(0, cut + 10));
    REQUIRE(g.ok());
    CHECK_FALSE(g.complete);
    CHECK(channel_ids(g) == std::vector<std::string>{"bbc1.uk", "news.de", "shop.fr"});
    CHECK(g.programmes.size() == 1);  // the one cut short is dropped
    CHECK(mentions(g.problems, "document truncated: a start tag is not closed"));
    CHECK(mentions(g.problems, "ends inside a <programme>"));

    // Cut anywhere: never a crash, always a guide or an error; what is kept merges into valid XML.
    for (std::size_t n = 0; n <= doc.size(); n += 7) {
        const xmltv::Guide part = xmltv::parse(std::string_view(doc).substr(0, n));
        if (!part.ok()) continue;
        xmltv::Report report;
        reread(xmltv::filter(part, {wanted("b", "bbc1.uk"), wanted("n", "news.de")}, report));
    }
}

TEST_CASE("xmltv: unclosed and stray tags are recovered from", "[xmltv][hostile]") {
    const std::string doc = R"(<tv>
  <channel id="a"><display-name>A</channel>
  <programme start="20260101000000" channel="a"><title>unclosed title<desc>d</programme>
  <programme start="20260101010000" channel="a"><title>T</title></bogus></credits></programme>
  <programme start="20260101020000" channel="a"><title>never closed
  <programme start="20260101030000" channel="a"><title>after</title></programme>
  </wrong>
</tv>)";
    const xmltv::Guide g = xmltv::parse(doc);
    REQUIRE(g.ok());
    CHECK(g.complete);
    REQUIRE(g.channels.size() == 1);
    CHECK(g.channels[0].display_names == std::vector<std::string>{"A"});
    REQUIRE(g.programmes.size() == 4);
    CHECK(g.body(g.programmes[0]) == "\n    <title>unclosed title<desc>d</desc></title>");
    CHECK(g.body(g.programmes[1]) == "\n    <title>T</title>");
    CHECK(g.body(g.programmes[2]) == "\n    <title>never closed\n  </title>");
    CHECK(g.body(g.programmes[3]) == "\n    <title>after</title>");
    CHECK(mentions(g.problems, "not closed before"));
    CHECK(mentions(g.problems, "matches no open element"));
    xmltv::Report report;
    const std::string out = xmltv::filter(g, {wanted("a", "a")}, report);
    CHECK(shows_of(reread(out)).size() == 4);
    check_xmllint(out);
}

TEST_CASE("xmltv: nesting beyond the cap is dropped without recursion", "[xmltv][hostile]") {
    std::string deep = "<tv><programme start=\"20260101000000\" channel=\"a\"><title>kept</title>";
    constexpr int kLevels = 200000;
    for (int i = 0; i < kLevels; ++i) deep += "<a>";
    deep += "x";
    for (int i = 0; i < kLevels; ++i) deep += "</a>";
    deep += "<desc>after</desc></programme>";
    for (int i = 0; i < kLevels; ++i) deep += "<b>";  // and never closed, outside any programme
    const xmltv::Guide g = xmltv::parse(deep);
    REQUIRE(g.ok());
    CHECK_FALSE(g.complete);
    REQUIRE(g.programmes.size() == 1);
    const std::string_view body = g.body(g.programmes[0]);
    CHECK(body.find("<title>kept</title>") != std::string_view::npos);
    CHECK(body.find("<desc>after</desc>") != std::string_view::npos);
    // Exactly the levels the cap allows: <tv>, <programme> and 30 of <a> (the innermost empty: its content was deeper).
    std::size_t levels = 0;
    for (std::size_t at = body.find("<a"); at != std::string_view::npos; at = body.find("<a", at + 1)) ++levels;
    CHECK(levels == 30);
    CHECK(body.find("<a/>") != std::string_view::npos);
    CHECK(body.find('x') == std::string_view::npos);
    CHECK(mentions(g.problems, "nested deeper than 32 levels"));
    xmltv::Report report;
    reread(xmltv::filter(g, {wanted("a", "a")}, report));

    xmltv::Limits shallow;
    shallow.max_depth = 3;  // <tv>, <programme>, its children (not theirs)
    const xmltv::Guide s = xmltv::parse(deep, shallow);
    REQUIRE(s.programmes.size() == 1);
    CHECK(s.body(s.programmes[0]) == "\n    <title>kept</title>\n    <a/>\n    <desc>after</desc>");
}

TEST_CASE("xmltv: huge attributes, too many attributes and huge names are dropped", "[xmltv][hostile]") {
    const std::string huge(1 << 20, 'x');
    std::string many;
    for (int i = 0; i < 100; ++i) many += " a" + std::to_string(i) + "=\"" + std::to_string(i) + "\"";
    const std::string doc = "<tv><channel id=\"" + huge + "\"><display-name>H</display-name></channel>"
                            "<programme start=\"20260101000000\" channel=\"a\" title=\"" + huge + "\">"
                            "<title" + many + ">T</title><icon src=\"" + huge + "\"/>"
                            "<" + std::string(1000, 'n') + ">gone</" + std::string(1000, 'n') + ">"
                            "</programme></tv>";
    const xmltv::Guide g = xmltv::parse(doc);
    REQUIRE(g.ok());
    CHECK(g.complete);
    CHECK(g.channels.empty());  // its id was too long: no id
    REQUIRE(g.programmes.size() == 1);
    const auto& p = g.programmes[0];
    CHECK(g.attributes(p) == "");
    const std::string_view body = g.body(p);
    CHECK(body.find("a31=\"31\"") != std::string_view::npos);
    CHECK(body.find("a32=") == std::string_view::npos);
    CHECK(body.find("<icon/>") != std::string_view::npos);
    CHECK(body.find("gone") == std::string_view::npos);
    CHECK(body.size() < 2000);
    CHECK(mentions(g.problems, "longer than 65536 bytes"));
    CHECK(mentions(g.problems, "more than 32 attributes"));
    CHECK(mentions(g.problems, "not kept"));
    CHECK(mentions(g.problems, "without an id"));
}

TEST_CASE("xmltv: what is not a guide is an error, not a crash", "[xmltv][hostile]") {
    CHECK(xmltv::parse("").error == "guide is empty");
    CHECK(xmltv::parse("   \n").error == "not an XMLTV guide: no <tv> element");
    CHECK(xmltv::parse("{\"json\": true}").error == "not an XMLTV guide: no <tv> element");
    CHECK(xmltv::parse("<html><tv/></html>").error == "not an XMLTV guide: the root element is <html>, not <tv>");
    CHECK(xmltv::parse("\x1F\x8B\x08\x00 gzip").error == "guide is gzip-compressed; decompress it first");
    CHECK(xmltv::parse(std::string_view("\xFF\xFE<\0t\0v\0>\0", 10)).error.find("UTF-16") != std::string::npos);
    CHECK(xmltv::parse("<!-- never closed <tv>").error == "not an XMLTV guide: no <tv> element");
    xmltv::Limits small;
    small.max_document_bytes = 100;
    CHECK(xmltv::parse(std::string(101, ' '), small).error == "guide is 101 bytes, more than the limit of 100");
    const xmltv::Guide empty = xmltv::parse("<tv/>");
    CHECK(empty.ok());
    CHECK(empty.complete);
    const xmltv::Guide bad = xmltv::parse("<html><body>x</body></html>");
    CHECK(bad.channels.empty());
    CHECK(bad.text.empty());
}

TEST_CASE("xmltv: stray '<' and '&' in text are read as text", "[xmltv][hostile]") {
    const xmltv::Guide g = xmltv::parse(
        "<tv><programme start=\"20260101000000\" channel=\"a\"><title>1 < 2 && 3 <= 4 &nbsp; AT&T &#xZZ; &#99999999;</title>"
        "</programme></tv>");
    REQUIRE(g.programmes.size() == 1);
    CHECK(g.body(g.programmes[0]) ==
          "\n    <title>1 &lt; 2 &amp;&amp; 3 &lt;= 4 &amp;nbsp; AT&amp;T &amp;#xZZ; \xEF\xBF\xBD</title>");
    CHECK(mentions(g.problems, "a '<' that starts no tag"));
    CHECK(mentions(g.problems, "no known reference"));

    // A megabyte of them, linear: each byte is looked at a bounded number of times.
    std::string lots = "<tv><programme start=\"20260101000000\" channel=\"a\"><title>";
    lots += std::string(1 << 20, '<');
    lots += "</title></programme></tv>";
    xmltv::Limits big;
    big.max_programme_bytes = 8u << 20;
    const xmltv::Guide l = xmltv::parse(lots, big);
    REQUIRE(l.programmes.size() == 1);
    CHECK(l.body(l.programmes[0]).size() == 4 * (1u << 20) + std::string_view("\n    <title></title>").size());
    CHECK(l.problem_count == 1);  // reported once, not per byte
}

TEST_CASE("xmltv: bytes that are not UTF-8 are repaired, characters XML forbids removed", "[xmltv][hostile]") {
    // \xE9 alone is not UTF-8 (read as windows-1252: e acute); \x93/\x94 are windows-1252 quotes;
    // \xC3\xA9 is UTF-8 and stays; \x01 and &#1; are not XML characters; \xEF\xBF\xBF is U+FFFF.
    const std::string doc =
        "<tv><channel id=\"caf\xE9\"><display-name>Caf\xE9 \x93TV\x94 caf\xC3\xA9\x01&#1;\xEF\xBF\xBF</display-name></channel>"
        "<programme start=\"20260101000000\" channel=\"caf\xE9\"><title>\xFF\xFE\xC0\xAF\xED\xA0\x80</title></programme></tv>";
    const xmltv::Guide g = xmltv::parse(doc);
    REQUIRE(g.channels.size() == 1);
    CHECK(g.channels[0].id == "caf\xC3\xA9");
    CHECK(g.channels[0].display_names[0] == "Caf\xC3\xA9 \xE2\x80\x9CTV\xE2\x80\x9D caf\xC3\xA9\xEF\xBF\xBD\xEF\xBF\xBD");
    REQUIRE(g.programmes.size() == 1);
    CHECK(valid_utf8(g.text));
    CHECK(mentions(g.problems, "not UTF-8"));
    CHECK(mentions(g.problems, "characters XML does not allow"));

    xmltv::Report report;
    const std::string out = xmltv::filter(g, {wanted("c\xE9", "caf\xC3\xA9", "Caf\xE9")}, report);
    CHECK(valid_utf8(out));
    const xmltv::Guide back = reread(out);
    CHECK(channel_ids(back) == std::vector<std::string>{"c\xC3\xA9"});
    CHECK(shows_of(back).size() == 1);
    check_xmllint(out);
}

TEST_CASE("xmltv: a guide declared ISO-8859-1 is read as windows-1252", "[xmltv][hostile]") {
    const xmltv::Guide g = xmltv::parse(
        "<?xml version='1.0' encoding='ISO-8859-1'?><tv><channel id=\"a\"><display-name>\xC3\xA9t\xE9 \x80</display-name>"
        "</channel></tv>");
    REQUIRE(g.channels.size() == 1);
    // Every byte is one character: "Ã©" stays two characters, as the declaration says.
    CHECK(g.channels[0].display_names[0] == "\xC3\x83\xC2\xA9t\xC3\xA9 \xE2\x82\xAC");
    CHECK(g.problems.empty());
    const xmltv::Guide other = xmltv::parse("<?xml version=\"1.0\" encoding=\"KOI8-R\"?><tv/>");
    CHECK(other.ok());
    CHECK(mentions(other.problems, "encoding 'koi8-r' is not supported"));
}

// ---------------------------------------------------------------- limits

TEST_CASE("xmltv: the caps on channels, programmes and sizes hold, and are reported", "[xmltv][limits]") {
    std::string doc = "<tv>";
    for (int i = 0; i < 10; ++i)
        doc += "<channel id=\"c" + std::to_string(i) + "\"><display-name>C" + std::to_string(i) + "</display-name></channel>";
    for (int i = 0; i < 10; ++i)
        for (int k = 0; k < 10; ++k)
            doc += "<programme start=\"202601010" + std::to_string(k) + "0000\" channel=\"c" + std::to_string(i) +
                   "\"><title>P" + std::to_string(i) + "." + std::to_string(k) + "</title></programme>";
    doc += "<programme start=\"20260101000000\" channel=\"c0\"><desc>" + std::string(500, 'd') + "</desc></programme>";
    doc += "</tv>";

    xmltv::Limits limits;
    limits.max_channels = 4;
    limits.max_programmes = 25;
    limits.max_programme_bytes = 300;
    limits.max_problems = 1;
    const xmltv::Guide g = xmltv::parse(doc, limits);
    REQUIRE(g.ok());
    CHECK(g.channels.size() == 4);
    CHECK(g.channels_read == 10);
    CHECK(g.programmes.size() == 25);
    CHECK(g.programmes_read == 101);
    CHECK(g.programme_channels.size() == 3);
    // Kept: the first problem; counted: every channel and programme dropped.
    CHECK(g.problems == std::vector<std::string>{"line 1: more than 4 channels; the rest dropped"});
    CHECK(g.problem_count == 6 + 76);
    limits.max_problems = 20;
    CHECK(mentions(xmltv::parse(doc, limits).problems, "more than 25 programmes; the rest dropped"));

    // A programme over its size is dropped whole.
    xmltv::Limits tight;
    tight.max_programme_bytes = 300;
    const xmltv::Guide t = xmltv::parse(doc, tight);
    CHECK(t.programmes.size() == 100);
    CHECK(mentions(t.problems, "a <programme> larger than 300 bytes, dropped"));

    // The output's cap on programmes.
    std::vector<GuideChannel> want;
    for (int i = 0; i < 10; ++i) want.push_back(wanted("w" + std::to_string(i), "c" + std::to_string(i)));
    xmltv::Limits out_cap;
    out_cap.max_programmes = 15;
    xmltv::Report report;
    const std::string out = xmltv::filter(xmltv::parse(doc), want, report, out_cap);
    CHECK(report.programmes_written == 15);
    CHECK(shows_of(reread(out)).size() == 15);
    CHECK(report.channels_written == 10);
    CHECK(mentions(report.problems, "output limit reached"));

    // And on bytes.
    xmltv::Limits byte_cap;
    byte_cap.max_output_bytes = 2000;
    xmltv::Report report2;
    const std::string small = xmltv::filter(xmltv::parse(doc), want, report2, byte_cap);
    CHECK(small.size() < 2000 + 300);
    CHECK(report2.programmes_written < 100);
    reread(small);
}

TEST_CASE("xmltv: the cap on what a guide keeps holds", "[xmltv][limits]") {
    std::string doc = "<tv>";
    for (int i = 0; i < 100; ++i)
        doc += "<programme start=\"20260101000000\" channel=\"c\"><title>" + std::string(100, 't') + "</title></programme>";
    doc += "</tv>";
    xmltv::Limits limits;
    limits.max_kept_bytes = 2000;
    const xmltv::Guide g = xmltv::parse(doc, limits);
    CHECK(g.text.size() <= 2000);
    CHECK(g.programmes.size() == 2000 / (std::string_view("20260101000000\n    <title></title>").size() + 100));
    CHECK(mentions(g.problems, "bytes kept; the rest dropped"));
}

// ---------------------------------------------------------------- output

TEST_CASE("xmltv: the merged guide is well-formed for xmllint and our reader, and merging it again changes nothing",
          "[xmltv]") {
    const std::vector<GuideChannel> want = {wanted("bbc", "bbc1.uk", "BBC One", 1, "http://l/bbc.png"),
                                            wanted("news", "", "nachrichten kanal", -1.5),
                                            wanted("gone", "gone.tv", "Gone & Away", 0, "http://l/g.png?x=1&y=2")};
    xmltv::Report report;
    const std::string out = merge_one(kGuide, want, report);
    check_xmllint(out);
    const xmltv::Guide g = reread(out);
    std::vector<GuideChannel> same;
    for (const auto& c : g.channels) same.push_back(wanted(c.id, c.id));
    xmltv::Report again;
    CHECK(xmltv::filter(g, same, again) == out);
}
