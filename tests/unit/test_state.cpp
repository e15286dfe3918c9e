// Unit tests of the runtime-change overlay (state.hpp) and of the `enabled` field of the loaders.
#include <hlsrelay/state.hpp>

#include <catch2/catch.hpp>

#include <stdexcept>
#include <string>

using namespace hlsrelay;

namespace {

Registry registry_of(const std::string& list) {
    LoadReport r = parse_channels(list);
    Registry reg;
    reg.add_all(r);
    return reg;
}

const char* kList = R"([{"id": "a", "name": "A", "url": "http://o/a.m3u8", "group": "G", "headers": {"Referer": "http://r/"}},
                        {"id": "b", "name": "B", "url": "http://o/b.m3u8"},
                        {"id": "c", "name": "C", "url": "http://o/c.m3u8", "enabled": false}])";

}  // namespace

TEST_CASE("enabled is read from JSON and M3U lists and written only when off") {
    Registry reg = registry_of(kList);
    CHECK(reg.find_id("a")->enabled);
    CHECK_FALSE(reg.find_id("c")->enabled);
    CHECK_FALSE(to_json(*reg.find_id("a"), true).contains("enabled"));
    CHECK(to_json(*reg.find_id("c"), true)["enabled"] == false);
    const LoadReport m3u = parse_m3u("#EXTM3U\n#EXTINF:-1 hlsrelay-enabled=\"no\",Off\nhttp://o/off.m3u8\n"
                                     "#EXTINF:-1 hlsrelay-enabled=\"maybe\",Bad\nhttp://o/bad.m3u8\n");
    REQUIRE(m3u.channels.size() == 1);
    CHECK_FALSE(m3u.channels[0].enabled);
    REQUIRE(m3u.issues.size() == 1);
    CHECK_THAT(m3u.issues[0].message, Catch::Contains("hlsrelay-enabled"));
    const LoadReport wrong = parse_json(R"([{"name": "X", "url": "http://o/x", "enabled": "no"}])");
    CHECK(wrong.channels.empty());
}

TEST_CASE("the overlay records changes and applies them idempotently over a reloaded list") {
    Registry reg = registry_of(kList);
    ChannelOverlay o;
    // A change of a list's channel: only the fields that differ.
    ChannelConfig a = *reg.find_id("a");
    ChannelConfig a2 = a;
    a2.group = "News";
    a2.headers.clear();
    reg.update("a", a2);
    o.record_update(a, *reg.find_id("a"));
    // Enabling a channel the list disables; removing one; adding one.
    ChannelConfig c = *reg.find_id("c");
    ChannelConfig c2 = c;
    c2.enabled = true;
    reg.update("c", c2);
    o.record_update(c, *reg.find_id("c"));
    reg.remove("b");
    o.record_remove("b");
    ChannelConfig d;
    d.id = "d";
    d.name = "D";
    d.urls = {"http://o/d.m3u8"};
    o.record_add(reg.add(d));

    const std::string text = o.to_text();
    const ChannelOverlay read = ChannelOverlay::from_text(text);
    CHECK(read.to_text() == text);

    // A fresh load of the list with the overlay applied (twice) is the registry the changes made.
    Registry fresh = registry_of(kList);
    CHECK(read.apply(fresh).empty());
    const auto once = fresh.list();
    CHECK(read.apply(fresh).empty());
    CHECK(fresh.list() == once);
    CHECK(once == reg.list());
    CHECK(fresh.find_id("a")->group == "News");
    CHECK(fresh.find_id("a")->headers.empty());
    CHECK(fresh.find_id("c")->enabled);
    CHECK_FALSE(fresh.find_id("b"));
    CHECK(read.owns("b"));
    CHECK(read.owns("d"));
    CHECK_FALSE(read.owns("a"));

    // Removing an added channel forgets it; a list's field changed upstream and not by us follows the list.
    o.record_remove("d");
    CHECK_FALSE(o.owns("d"));
    Registry upstream = registry_of(R"([{"id": "a", "name": "A2", "url": "http://o/a2.m3u8", "group": "G"}])");
    CHECK(o.apply(upstream).empty());
    CHECK(upstream.find_id("a")->name == "A2");
    CHECK(upstream.find_id("a")->group == "News");
}

TEST_CASE("a client's patch is a merge patch: null removes, objects merge, url replaces urls") {
    const nlohmann::json base = {{"name", "A"}, {"urls", {"http://o/1", "http://o/2"}}, {"headers", {{"A", "1"}, {"B", "2"}}}, {"logo", "l"}};
    const nlohmann::json out = apply_channel_patch(base, {{"url", "http://o/3"}, {"headers", {{"A", nullptr}, {"C", "3"}}}, {"logo", nullptr}});
    CHECK(out["url"] == "http://o/3");
    CHECK_FALSE(out.contains("urls"));
    CHECK(out["headers"] == nlohmann::json({{"B", "2"}, {"C", "3"}}));
    CHECK_FALSE(out.contains("logo"));
}

TEST_CASE("state files that are not one are refused with the reason") {
    for (const char* text : {"", "{", "[]", "{\"added\": []}", "{\"hlsrelay_state\": 2}",
                             "{\"hlsrelay_state\": 1, \"added\": {}}", "{\"hlsrelay_state\": 1, \"added\": [{\"name\": \"x\"}]}",
                             "{\"hlsrelay_state\": 1, \"changed\": {\"a\": 1}}", "{\"hlsrelay_state\": 1, \"changed\": {\"A B\": {}}}",
                             "{\"hlsrelay_state\": 1, \"removed\": [1]}",
                             "{\"hlsrelay_state\": 1, \"added\": [{\"id\": \"x\"}, {\"id\": \"x\"}]}"}) {
        INFO(text);
        CHECK_THROWS_AS(ChannelOverlay::from_text(text), std::invalid_argument);
    }
    CHECK(ChannelOverlay::from_text("{\"hlsrelay_state\": 1}").empty());
}
