// libFuzzer target: the XMLTV guide reader and merge (hlsrelay/xmltv.hpp). Properties beyond "no crash":
// the merged guide reads back whole and without a problem (it is well-formed UTF-8 XML), merging it again
// gives it back byte for byte, and parse_for() (keeps only what the wanted channels use) merges to the
// same document as parse() (keeps everything).
#include <hlsrelay/xmltv.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace x = hlsrelay::xmltv;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);

    // Every cap small enough for a short input to hit it.
    x::Limits tiny;
    tiny.max_document_bytes = 3000;
    tiny.max_depth = 4;
    tiny.max_attributes = 2;
    tiny.max_attribute_bytes = 16;
    tiny.max_name_bytes = 8;
    tiny.max_channel_bytes = 64;
    tiny.max_programme_bytes = 128;
    tiny.max_channels = 2;
    tiny.max_programmes = 3;
    tiny.max_kept_bytes = 300;
    tiny.max_output_bytes = 200;
    tiny.max_problems = 2;
    const x::Guide small = x::parse(text, tiny);
    if (small.problems.size() > tiny.max_problems || small.text.size() > tiny.max_kept_bytes) std::abort();

    const x::Guide g = x::parse(text);
    if (!g.ok()) return 0;

    // Wanted: the guide's own channels by id (some with a shift), by name, and a few it does not have.
    std::vector<x::GuideChannel> wanted;
    std::set<std::string> ids;
    bool duplicate_ids = false;
    for (std::size_t k = 0; k < g.channels.size() && k < 8; ++k) {
        const x::Channel& c = g.channels[k];
        duplicate_ids = duplicate_ids || !ids.insert(c.id).second;
        if (k % 2 == 0)
            wanted.push_back({"w" + std::to_string(k), c.id, "", k % 4 == 0 ? 1.5 : -25.25, ""});
        else if (!c.display_names.empty())
            wanted.push_back({"n" + std::to_string(k), "", " " + c.display_names[0] + " ", 0, "http://logo/" + c.id});
    }
    for (std::size_t k = 0; k < g.programme_channels.size() && k < 4; ++k)
        wanted.push_back({"p" + std::to_string(k), g.programme_channels[k], "", 0, ""});
    wanted.push_back({"missing", "no-such-id", "No Such Channel", 2, "http://logo/x.png"});
    for (const auto& c : g.channels) duplicate_ids = duplicate_ids || !ids.insert(c.id).second;

    x::Report report;
    const std::string out = x::filter(g, wanted, report);
    if (report.channels.size() != wanted.size()) std::abort();

    // Reads back whole, without a problem.
    const x::Guide again = x::parse(out);
    if (!again.ok() || !again.complete || again.problem_count != 0) std::abort();
    if (again.programmes.size() != report.programmes_written) std::abort();

    // Merging the merge again (same ids, no shift) is a fixed point.
    std::vector<x::GuideChannel> same;
    for (const auto& c : again.channels) same.push_back({c.id, c.id, "", 0, ""});
    x::Report report2;
    if (x::filter(again, same, report2) != out) std::abort();

    // parse_for() keeps what parse() would use (a channel id listed twice with different names aside).
    if (!duplicate_ids) {
        x::Report report3;
        if (x::merge({text}, wanted, report3) != out) std::abort();
    }
    return 0;
}
