// libFuzzer target: the HTTP/1.1 response framing of the engine's client (src/ingest/http_framing.cpp):
// status line and headers, Content-Length / chunked / until-close bodies, gzip and deflate decoding
// under a size cap. Every byte of an upstream's response is hostile; none may crash the parser, and
// no body may outgrow its cap.
//
// Input: byte 0 picks the cap (1 KiB << (byte % 8)); the rest is the response as it came off the wire.
// The same bytes are also fed to the incremental pieces in small steps (as a socket delivers them),
// which must agree with the whole-buffer parse.
#include "ingest/http_framing.hpp"

#include <cstddef>
#include <cstdint>
#include <algorithm>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1) return 0;
    using namespace hlsrelay::http;
    const uint64_t cap = uint64_t{1024} << (data[0] % 8);
    const std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);

    std::string whole_body;
    bool whole_ok = false;
    try {
        Response r = parse_response(bytes, cap);
        if (r.body.size() > cap) std::abort();
        if (r.head.headers.size() > kMaxHeaders) std::abort();
        whole_body = std::move(r.body);
        whole_ok = r.complete && !r.head.chunked && r.head.content_encoding.empty();
    } catch (const FramingError&) {
    }

    // The chunked decoder in steps of 1..7 bytes must produce what one call does.
    std::size_t used = 0;
    std::optional<ResponseHead> head;
    try {
        head = parse_head(bytes, used);
    } catch (const FramingError&) {
        return 0;
    }
    if (!head) return 0;
    if (used > bytes.size()) std::abort();
    const std::string_view rest = bytes.substr(used);
    if (framing_of(*head) == Framing::Chunked) {
        std::string one, steps;
        try {
            ChunkedDecoder a;
            a.feed(rest, [&](std::string_view d) {
                one.append(d);
                if (one.size() > (uint64_t{1} << 20)) throw FramingError("enough");
            });
            ChunkedDecoder b;
            std::size_t pos = 0, step = 1;
            while (pos < rest.size() && !b.done()) {
                const std::size_t n = std::min(rest.size() - pos, step);
                const std::size_t k = b.feed(rest.substr(pos, n), [&](std::string_view d) { steps.append(d); }, 3);
                if (k > n) std::abort();
                pos += k;
                step = step % 7 + 1;
            }
            if (a.done() != b.done() || one != steps) std::abort();
        } catch (const FramingError&) {
        }
    }
    (void)whole_ok;
    (void)whole_body;
    return 0;
}
