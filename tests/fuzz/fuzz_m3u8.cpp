// libFuzzer target: the HLS playlist parser (master and media) and what the engine does with a parsed
// playlist: variant selection and URL resolution. ParseError is the parser's answer to bad input.
#include "ingest/m3u8.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    try {
        const hlsrelay::m3u8::Playlist p = hlsrelay::m3u8::parse(text, "http://origin.test/live/sub/index.m3u8?token=x");
        if (p.is_master()) {
            for (const char* rule : {"highest", "lowest", "800000", "1"})
                (void)hlsrelay::m3u8::select_variant(p.master(), rule);
        } else {
            (void)p.media().total_duration();
        }
    } catch (const hlsrelay::m3u8::ParseError&) {
    }
    // The resolver on its own, with the input split into a base and a reference.
    const std::size_t cut = text.find('\n');
    if (cut != std::string_view::npos)
        (void)hlsrelay::m3u8::resolve_url(text.substr(0, cut), text.substr(cut + 1));
    return 0;
}
