// libFuzzer target: the channel-list loaders (M3U and JSON) and the registry over what they accept.
// Properties beyond "no crash": a loaded list stores in a Registry, and its JSON form loads back to the
// same channels (the round trip the server's export/import relies on).
#include <hlsrelay/registry.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    (void)hlsrelay::parse_m3u(text);
    (void)hlsrelay::parse_json(text);
    hlsrelay::LoadReport report = hlsrelay::parse_channels(text);

    hlsrelay::Registry registry;
    registry.add_all(report);
    // Only a list of valid UTF-8 round-trips byte for byte (to_json_text replaces bad bytes).
    bool utf8 = true;
    for (const auto& c : report.channels) {
        for (const std::string* s : {&c.id, &c.name, &c.logo, &c.group})
            utf8 = utf8 && hlsrelay::detail::repair_utf8(*s) == *s;
        for (const auto& u : c.urls) utf8 = utf8 && hlsrelay::detail::repair_utf8(u) == u;
        for (const auto& [k, v] : c.headers) utf8 = utf8 && hlsrelay::detail::repair_utf8(k) == k &&
                                                  hlsrelay::detail::repair_utf8(v) == v;
    }
    const std::string exported = hlsrelay::to_json_text(report.channels, true);
    const hlsrelay::LoadReport again = hlsrelay::parse_json(exported);
    if (utf8 && (again.channels != report.channels || !again.issues.empty())) std::abort();
    return 0;
}
