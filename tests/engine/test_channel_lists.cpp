// Channel lists by URL (EngineSettings::channel_lists): a loopback provider serves a list the test
// changes between fetches; each good fetch is reconciled (channels added, updated, removed; a running
// channel restarted only when its source changed), a bad one changes nothing. Also update_channel's
// restart rule. Every wait is on a condition with a generous bound.
#include "engine_fixture.hpp"
#include "support/text_origin.hpp"

#include <hlsrelay/registry.hpp>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace hlsrelay::test {

namespace {

constexpr std::chrono::seconds kWait{60};

// Records every StateChanged event per channel (restarts show as Stopped then Starting).
struct StateLog {
    explicit StateLog(Engine& engine) : engine_(engine) {
        id_ = engine.subscribe([this](const Event& e) {
            if (e.type != EventType::StateChanged) return;
            std::lock_guard l(mu_);
            states_.push_back({e.channel, e.state});
        });
    }
    ~StateLog() { engine_.unsubscribe(id_); }
    std::size_t mark() const {
        std::lock_guard l(mu_);
        return states_.size();
    }
    // Whether `channel` went to `state` after mark `from`.
    bool saw(const std::string& channel, ChannelState state, std::size_t from = 0) const {
        std::lock_guard l(mu_);
        for (std::size_t i = from; i < states_.size(); ++i)
            if (states_[i].first == channel && states_[i].second == state) return true;
        return false;
    }

private:
    Engine& engine_;
    Engine::SubscriptionId id_ = 0;
    mutable std::mutex mu_;
    std::vector<std::pair<std::string, ChannelState>> states_;
};

struct Entry {
    std::string id, name, url, extra;  // extra: more #EXTINF attributes
};

std::string m3u(const std::vector<Entry>& entries, const std::string& header = "") {
    std::string out = "#EXTM3U" + header + "\n";
    for (const Entry& e : entries)
        out += "#EXTINF:-1 tvg-id=\"" + e.id + "\"" + e.extra + "," + e.name + "\n" + e.url + "\n";
    return out;
}

std::set<std::string> ids(const Engine& engine) {
    std::set<std::string> out;
    for (const ChannelConfig& c : engine.channels()) out.insert(c.id);
    return out;
}

EngineSettings list_settings(std::vector<std::string> lists) {
    EngineSettings s = quick_settings();
    s.channel_lists = std::move(lists);
    s.list_refresh_interval = 1;  // the schedule itself fetches again every second
    return s;
}

}  // namespace

TEST_CASE("channel list settings are validated") {
    EngineSettings s = quick_settings();
    s.channel_lists = {"file:///etc/channels.m3u"};
    CHECK_THROWS_AS(Engine(s), Error);
    s.channel_lists = {"/srv/channels.m3u"};
    CHECK_THROWS_AS(Engine(s), Error);
    s.channel_lists = {"http://127.0.0.1:1/list.m3u"};
    s.list_refresh_interval = 0;
    CHECK_THROWS_AS(Engine(s), Error);
    s.list_refresh_interval = kListRefreshInterval;
    s.max_list_bytes = 10;
    CHECK_THROWS_AS(Engine(s), Error);
    CHECK(EngineSettings{}.list_refresh_interval == kListRefreshInterval);
    CHECK(Engine(quick_settings()).list_sources().empty());
}

TEST_CASE("a channel list by URL is reconciled on each fetch: added, updated, restarted, removed") {
    LiveOrigin source(live_media());
    source.start();
    TextOrigin provider;
    const std::string a = source.url(), a2 = source.url() + "?v=2", a3 = source.url() + "?v=3";
    provider.set("/one.m3u", m3u({{"news", "News", a, ""}, {"sport", "Sport", a, ""}, {"docs", "Docs", a, ""}},
                                 " url-tvg=\"" + provider.url("/guide.xml") + "\""));
    provider.set("/two.m3u", m3u({{"news", "News (two)", a2, ""}, {"kids", "Kids", a, ""}}));
    Engine engine(list_settings({provider.url("/one.m3u"), provider.url("/two.m3u")}));
    ChannelConfig manual = channel("Manual", {a});
    manual.id = "manual";
    engine.add_channel(manual);

    // First fetch: both lists' channels; the second list's "news" has the first one's tvg-id, so it is
    // that channel: its URL is a backup of it. Nothing started.
    REQUIRE(wait_until([&] { return ids(engine).size() == 5 && engine.find_channel("news")->urls.size() == 2; }, kWait));
    CHECK(ids(engine) == std::set<std::string>{"manual", "news", "sport", "docs", "kids"});
    CHECK(engine.find_channel("news")->name == "News");
    CHECK(engine.find_channel("news")->urls == std::vector<std::string>{a, a2});
    for (const ChannelConfig& c : engine.channels()) CHECK_FALSE(engine.running(c.id));
    REQUIRE(wait_until([&] {
        const auto l = engine.list_sources();
        return l.size() == 2 && l[0].channels == 3 && l[1].channels == 2 && !l[0].fetched_at.empty();
    }, kWait));
    // The list's url-tvg joins the guides.
    REQUIRE(wait_until([&] { return engine.guide_sources().size() == 1; }, kWait));

    engine.start("news");
    engine.start("sport");
    REQUIRE(engine.wait_ready("news", 60));
    REQUIRE(engine.wait_ready("sport", 60));
    REQUIRE(wait_until([&] {
        return engine.status("news").state == ChannelState::Running && engine.status("sport").state == ChannelState::Running;
    }, kWait));
    StateLog states(engine);

    SECTION("metadata only: updated without a restart") {
        provider.set("/one.m3u", m3u({{"news", "News HD", a, " tvg-logo=\"http://logo/n.png\" group-title=\"Info\" tvg-chno=\"5\""},
                                      {"sport", "Sport", a, ""},
                                      {"docs", "Docs", a, ""}}));
        REQUIRE(wait_until([&] { return engine.find_channel("news")->name == "News HD"; }, kWait));
        const ChannelConfig news = *engine.find_channel("news");
        CHECK(news.logo == "http://logo/n.png");
        CHECK(news.group == "Info");
        CHECK(news.chno == "5");
        CHECK(engine.status("news").channel_name == "News HD");
        CHECK(engine.running("news"));
        // A few more scheduled fetches of the same list change nothing either.
        const int seen = provider.requests("/one.m3u");
        REQUIRE(provider.wait_requests("/one.m3u", seen + 2, 60));
        CHECK_FALSE(states.saw("news", ChannelState::Stopped));
        CHECK_FALSE(states.saw("news", ChannelState::Starting));
    }
    SECTION("source changed: updated and restarted, the others untouched, the other list's backup kept") {
        provider.set("/one.m3u", m3u({{"news", "News", a3, ""}, {"sport", "Sport", a, ""}, {"docs", "Docs", a, ""}}));
        // The fetch that made the change says so in list_sources() until the next one (a second
        // later, unchanged, says 0): watched from before it, every 50 ms.
        bool changed = false, reported = false;
        REQUIRE(wait_until([&] {
            changed = changed || engine.find_channel("news")->urls == std::vector<std::string>{a3, a2};
            const auto l = engine.list_sources();
            reported = reported || (!l.empty() && l[0].updated + l[0].restarted >= 1);
            return changed && reported;
        }, kWait));
        REQUIRE(wait_until([&] { return states.saw("news", ChannelState::Stopped) && engine.running("news"); }, kWait));
        CHECK(engine.wait_ready("news", 60));
        CHECK_FALSE(states.saw("sport", ChannelState::Stopped));
    }
    SECTION("a merged entry gone from its list takes its backup back") {
        provider.set("/two.m3u", m3u({{"kids", "Kids", a, ""}}));
        REQUIRE(wait_until([&] { return engine.find_channel("news")->urls == std::vector<std::string>{a}; }, kWait));
        CHECK(ids(engine) == std::set<std::string>{"manual", "news", "sport", "docs", "kids"});
    }
    SECTION("gone from the list: stopped and removed; new ones added; other lists and channels kept") {
        const std::size_t mark = states.mark();
        provider.set("/one.m3u", m3u({{"sport", "Sport", a, ""}, {"docs", "Docs", a, ""}, {"films", "Films", a, ""}}));
        // "news" goes with the first list's entry; the second list's entry for it is then a channel
        // of its own again (at that list's next fetch).
        REQUIRE(wait_until([&] {
            const auto news = engine.find_channel("news");
            return engine.find_channel("films") && news && news->urls == std::vector<std::string>{a2};
        }, kWait));
        CHECK(states.saw("news", ChannelState::Stopped, mark));
        CHECK(engine.find_channel("news")->name == "News (two)");
        CHECK(ids(engine) == std::set<std::string>{"manual", "sport", "docs", "films", "news", "kids"});
        CHECK(engine.running("sport"));
        CHECK_FALSE(states.saw("sport", ChannelState::Stopped));
        CHECK_FALSE(engine.running("films"));  // a list's channels are not started
        // The second list loses "kids": only that one goes.
        provider.set("/two.m3u", m3u({{"news", "News (two)", a2, ""}}));
        REQUIRE(wait_until([&] { return !engine.find_channel("kids"); }, kWait));
        CHECK(ids(engine) == std::set<std::string>{"manual", "sport", "docs", "films", "news"});
        REQUIRE(wait_until([&] {
            const auto l = engine.list_sources();
            return l[0].channels == 3 && l[1].channels == 1;
        }, kWait));
    }
    engine.stop_all();
}

TEST_CASE("channels of two lists with one tvg-id are one channel, the second list's URLs its backups") {
    Engine engine(quick_settings());
    const std::string a = "http://127.0.0.1:9/a.m3u8", b = "http://127.0.0.1:9/b.m3u8", c = "http://127.0.0.1:9/c.m3u8";
    // One list: two entries with one tvg-id stay two channels (a provider's HD and SD of a channel).
    const LoadReport first = engine.load("#EXTM3U\n#EXTINF:-1 tvg-id=\"CNN.us\",CNN HD\n" + a +
                                         "\n#EXTINF:-1 tvg-id=\"CNN.us\",CNN SD\n" + b + "\n");
    REQUIRE(first.channels.size() == 2);
    const std::string hd = first.channels[0].id;
    // Another list (another --channels file): its CNN is the first one's, its URLs backups after the
    // ones it has, without repeats; its other channels are added.
    const LoadReport second = engine.load("#EXTM3U\n#EXTINF:-1 tvg-id=\"CNN.us\",CNN (backup provider)\n" + c +
                                          "|User-Agent=x\n#EXTINF:-1 tvg-id=\"BBC.uk\",BBC\n" + a + "\n");
    CHECK(second.channels.size() == 1);  // BBC only
    CHECK(engine.channels().size() == 3);
    CHECK(engine.find_channel(hd)->urls == std::vector<std::string>{a, c});
    CHECK(engine.find_channel(hd)->name == "CNN HD");
    CHECK(engine.status(hd).sources.size() == 2);
    // A third list repeating a URL it has adds nothing; a channel added over the API is no list's.
    ChannelConfig manual = channel("Manual", {b});
    manual.tvg_id = "ITV.uk";
    engine.add_channel(manual);
    engine.load("#EXTM3U\n#EXTINF:-1 tvg-id=\"CNN.us\",CNN\n" + a + "\n#EXTINF:-1 tvg-id=\"ITV.uk\",ITV\n" + c + "\n");
    CHECK(engine.find_channel(hd)->urls == std::vector<std::string>{a, c});
    CHECK(engine.channels().size() == 5);  // ITV from the list is a channel of its own
    // At most kMaxMergedSources URLs in all, however many lists name it.
    std::string many = "#EXTM3U\n";
    for (std::size_t i = 0; i < 2 * kMaxMergedSources; ++i)
        many += "#EXTINF:-1 tvg-id=\"BBC.uk\",BBC " + std::to_string(i) + "\nhttp://127.0.0.1:9/bbc" + std::to_string(i) + ".m3u8\n";
    engine.load(many);  // one list: its own BBCs merge into the first list's BBC
    CHECK(engine.find_channel("bbc")->urls.size() == kMaxMergedSources);
}

TEST_CASE("a failed, empty or wiping fetch of a channel list keeps the lineup") {
    TextOrigin provider;
    const std::string src = "http://127.0.0.1:1/never-started.m3u8";
    provider.set("/list.m3u", m3u({{"one", "One", src, ""}, {"two", "Two", src, ""}}));
    Engine engine(list_settings({provider.url("/list.m3u")}));
    REQUIRE(wait_until([&] { return ids(engine) == std::set<std::string>{"one", "two"}; }, kWait));
    auto failed_after = [&](int failures) {
        return wait_until([&] {
            const auto l = engine.list_sources();
            return l.size() == 1 && l[0].failures >= failures && !l[0].last_error.empty();
        }, kWait);
    };
    SECTION("the provider answers 500") {
        provider.set("/list.m3u", TextOrigin::Answer{500, "text/plain", "oops"});
        REQUIRE(failed_after(1));
        CHECK(engine.list_sources()[0].last_error.find("500") != std::string::npos);
    }
    SECTION("the list is empty") {
        provider.set("/list.m3u", "#EXTM3U\n");
        REQUIRE(failed_after(1));
        CHECK(engine.list_sources()[0].last_error.find("no usable channel") != std::string::npos);
    }
    SECTION("the list is an error page") {
        provider.set("/list.m3u", TextOrigin::Answer{200, "text/html", "<html>Account expired</html>"});
        REQUIRE(failed_after(1));
    }
    SECTION("the list would remove every channel it has") {
        provider.set("/list.m3u", m3u({{"other", "Other", src, ""}}));
        REQUIRE(failed_after(1));
        CHECK(engine.list_sources()[0].last_error.find("would remove all 2") != std::string::npos);
        CHECK_FALSE(engine.find_channel("other"));
    }
    REQUIRE(failed_after(2));  // and again on the retry
    CHECK(ids(engine) == std::set<std::string>{"one", "two"});
    CHECK(engine.list_sources()[0].channels == 2);
    CHECK_FALSE(engine.list_sources()[0].fetched_at.empty());
    // A good list again: reconciled (one kept, two gone, three new), the error cleared.
    provider.set("/list.m3u", m3u({{"one", "One", src, ""}, {"three", "Three", src, ""}}));
    REQUIRE(wait_until([&] { return ids(engine) == std::set<std::string>{"one", "three"}; }, kWait));
    REQUIRE(wait_until([&] {
        const auto l = engine.list_sources();
        return l[0].failures == 0 && l[0].last_error.empty();
    }, kWait));
}

TEST_CASE("a channel list by URL may not name local files") {
    TextOrigin provider;
    provider.set("/list.m3u", m3u({{"remote", "Remote", "http://127.0.0.1:1/r.m3u8", ""},
                                   {"path", "Path", "/etc/passwd", ""},
                                   {"fileurl", "File URL", "file:///etc/passwd", ""}}) +
                                  "#EXTINF:-1 tvg-id=\"backup\",Backup\nhttp://127.0.0.1:1/b.m3u8\n"
                                  "#EXTHLSRELAY-BACKUP:/etc/shadow\n");
    Engine engine(list_settings({provider.url("/list.m3u")}));
    REQUIRE(wait_until([&] {
        const auto l = engine.list_sources();
        return l.size() == 1 && !l[0].fetched_at.empty();
    }, kWait));
    CHECK(ids(engine) == std::set<std::string>{"remote"});
    CHECK(engine.list_sources()[0].issues >= 3);
}

TEST_CASE("an oversized channel list is refused") {
    TextOrigin provider;
    std::vector<Entry> many;
    for (int i = 0; i < 200; ++i)
        many.push_back({"ch" + std::to_string(i), "Channel " + std::to_string(i), "http://127.0.0.1:1/" + std::to_string(i) + ".m3u8", ""});
    const std::string body = m3u(many);
    REQUIRE(body.size() > std::size_t(kMinMaxListBytes));
    provider.set("/big.m3u", body);
    EngineSettings s = list_settings({provider.url("/big.m3u")});
    s.max_list_bytes = kMinMaxListBytes;
    Engine engine(s);
    REQUIRE(wait_until([&] {
        const auto l = engine.list_sources();
        return l.size() == 1 && l[0].failures >= 1;
    }, kWait));
    CHECK(engine.list_sources()[0].last_error.find("max_list_bytes") != std::string::npos);
    CHECK(engine.channels().empty());
}

TEST_CASE("credentials in a channel list URL are redacted in list_sources and logs") {
    TextOrigin provider;
    std::mutex mu;
    std::vector<std::string> lines;
    EngineSettings s = list_settings({"http://user:pw0rd@127.0.0.1:" + std::to_string(provider.port()) +
                                      "/get.php?username=user&password=s3cret&type=m3u_plus"});
    s.log_level = LogLevel::Debug;
    s.log = [&](LogLevel, const std::string& channel, const std::string& message) {
        std::lock_guard l(mu);
        lines.push_back(channel + " " + message);
    };
    Engine engine(s);
    // Not there yet: a failure whose error names the URL.
    REQUIRE(wait_until([&] {
        const auto l = engine.list_sources();
        return l.size() == 1 && l[0].failures >= 1;
    }, kWait));
    provider.set("/get.php", m3u({{"one", "One", "http://127.0.0.1:1/live/user/s3cret/1.ts", ""}}));
    REQUIRE(wait_until([&] { return engine.find_channel("one").has_value(); }, kWait));
    REQUIRE(wait_until([&] { return engine.list_sources()[0].failures == 0; }, kWait));
    const ListSource l = engine.list_sources()[0];
    const std::string json = to_json(l).dump();
    CHECK(l.url == "http://***@127.0.0.1:" + std::to_string(provider.port()) + "/get.php?***");
    for (const char* secret : {"pw0rd", "s3cret", "password"}) {
        INFO(secret);
        CHECK(json.find(secret) == std::string::npos);
        std::lock_guard lock(mu);
        for (const std::string& line : lines) CHECK(line.find(secret) == std::string::npos);
    }
    std::lock_guard lock(mu);
    CHECK(std::any_of(lines.begin(), lines.end(), [](const std::string& x) { return x.find("channel list") != std::string::npos; }));
}

TEST_CASE("update_channel restarts a running channel only when its source changed") {
    LiveOrigin source(live_media());
    source.start();
    Engine engine(quick_settings());
    ChannelConfig c = channel("Live", {source.url()});
    c.id = "live";
    engine.add_channel(c);
    engine.start("live");
    REQUIRE(engine.wait_ready("live", 60));
    REQUIRE(wait_until([&] { return engine.status("live").state == ChannelState::Running; }, kWait));
    StateLog states(engine);

    ChannelConfig meta = *engine.find_channel("live");
    meta.name = "Live HD";
    meta.logo = "http://logo/x.png";
    meta.group = "News";
    meta.tvg_id = "live.example";
    meta.tvg_name = "Live";
    meta.chno = "7";
    meta.tvg_shift = 1;
    meta.attributes["catchup"] = "default";
    engine.update_channel("live", meta);
    CHECK(engine.running("live"));
    CHECK(engine.status("live").channel_name == "Live HD");
    CHECK_FALSE(states.saw("live", ChannelState::Stopped));
    CHECK_FALSE(states.saw("live", ChannelState::Starting));
    CHECK(same_source(c, meta));

    ChannelConfig moved = meta;
    moved.urls = {source.url() + "?v=2"};
    CHECK_FALSE(same_source(meta, moved));
    engine.update_channel("live", moved);
    CHECK(states.saw("live", ChannelState::Stopped));
    CHECK(engine.running("live"));
    CHECK(engine.wait_ready("live", 60));
    ChannelConfig headers = moved;
    headers.headers["User-Agent"] = "x";
    CHECK_FALSE(same_source(moved, headers));
    ChannelConfig hls = moved;
    hls.hls.max_segments = 3;
    CHECK_FALSE(same_source(moved, hls));
    engine.stop_all();
}

}  // namespace hlsrelay::test
