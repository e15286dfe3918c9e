// The provider settings' text form (hlsrelay-server --provider, the C and Python settings) and the
// lists' provider fields.
#include <hlsrelay/registry.hpp>
#include <hlsrelay/settings.hpp>

#include <catch2/catch.hpp>

using namespace hlsrelay;

TEST_CASE("parse_provider reads NAME=MAX and NAME=MAX@HOST,HOST", "[providers]") {
    auto p = parse_provider("acme=2@Line.Acme.TV,backup.acme.tv:8080");
    REQUIRE(p);
    CHECK(p->name == "acme");
    CHECK(p->max_connections == 2);
    CHECK(p->hosts == std::vector<std::string>{"line.acme.tv", "backup.acme.tv:8080"});
    p = parse_provider("free=0");
    REQUIRE(p);
    CHECK(p->max_connections == 0);
    CHECK(p->hosts.empty());
    CHECK(providers_problem({*p}).empty());
}

TEST_CASE("parse_provider and providers_problem refuse what is not a provider", "[providers]") {
    std::string why;
    for (const char* bad : {"acme", "=2", "acme=", "acme=two", "acme=-1", "acme=2@", "acme=2@a,,b", "acme=1234567"}) {
        INFO(bad);
        CHECK_FALSE(parse_provider(bad, &why));
        CHECK_FALSE(why.empty());
    }
    CHECK_FALSE(providers_problem({*parse_provider("a b=1")}).empty());        // a space in the name
    CHECK_FALSE(providers_problem({*parse_provider("acme=1@x/y")}).empty());   // a path is not a host
    CHECK_FALSE(providers_problem({*parse_provider("acme=99999")}).empty());   // past kMaxProviderConnections
    CHECK_FALSE(providers_problem({*parse_provider("acme=1"), *parse_provider("acme=2")}).empty());  // twice
    CHECK(providers_problem({*parse_provider("acme=1"), *parse_provider("other.tv=2@h")}).empty());
}

TEST_CASE("lists name a channel's provider: JSON provider, M3U hlsrelay-provider", "[providers]") {
    const LoadReport json = parse_channels(R"([{"name": "A", "url": "http://h/a.m3u8", "provider": "acme"},
                                               {"name": "B", "url": "http://h/b.m3u8", "provider": "no spaces please"}])");
    REQUIRE(json.channels.size() == 1);
    CHECK(json.channels[0].provider == "acme");
    CHECK(json.issues.size() == 1);
    const LoadReport m3u = parse_channels("#EXTM3U\n"
                                          "#EXTINF:-1 hlsrelay-provider=\"acme\" tvg-id=\"a\",A\nhttp://h/a.m3u8\n"
                                          "#EXTINF:-1 hlsrelay-provider=\"bad name\",B\nhttp://h/b.m3u8\n");
    REQUIRE(m3u.channels.size() == 2);
    CHECK(m3u.channels[0].provider == "acme");
    CHECK(m3u.channels[0].attributes.count("hlsrelay-provider") == 0);  // not passed through to exports
    CHECK(m3u.channels[1].provider.empty());
    CHECK(m3u.issues.size() == 1);
    // Written back by to_json and read again.
    CHECK(to_json(m3u.channels[0], true)["provider"] == "acme");
}
