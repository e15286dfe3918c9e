// libFuzzer target: the server's incremental HTTP request parser, fed the input whole and then in
// pieces whose sizes come from the input itself, as a socket would deliver it; both feedings must
// agree, and every pipelined request is parsed until the parser fails or needs more bytes.
#include "request_parser.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

namespace {
using hlsrelay::server::Request;
using hlsrelay::server::RequestParser;

struct Outcome {
    std::vector<std::string> targets;  // of the good requests, in order
    int error = 0;                     // status of the failure, 0 if none
    bool operator==(const Outcome&) const = default;
};

// Feeds [data, data+size) in chunks of `chunk` bytes (0: all at once).
Outcome run(const char* data, std::size_t size, std::size_t chunk) {
    Outcome out;
    RequestParser parser;
    Request req;
    std::string pending;
    std::size_t fed = 0;
    while (fed < size || !pending.empty()) {
        const std::size_t n = chunk == 0 ? size - fed : std::min(chunk, size - fed);
        pending.append(data + fed, n);
        fed += n;
        const auto [result, end] = parser.parse(req, pending.data(), pending.data() + pending.size());
        pending.erase(0, static_cast<std::size_t>(end - pending.data()));
        if (result == RequestParser::Result::bad) {
            out.error = parser.error_status();
            if (out.error < 400 || out.error > 599) std::abort();
            return out;
        }
        if (result == RequestParser::Result::good) {
            out.targets.push_back(req.target);
            (void)req.keep_alive();
            req = Request{};
            parser.reset();
            continue;
        }
        if (fed == size) break;  // indeterminate with nothing more to give
    }
    return out;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const auto* text = reinterpret_cast<const char*>(data);
    const Outcome whole = run(text, size, 0);
    const std::size_t chunk = size == 0 ? 1 : 1 + data[0] % 17;
    if (!(run(text, size, chunk) == whole)) std::abort();
    return 0;
}
