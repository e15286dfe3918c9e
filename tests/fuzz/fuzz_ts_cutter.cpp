// libFuzzer target: the MPEG-TS passthrough (src/cut/ts_cutter.cpp), which HLS sources serving MPEG-TS
// take: PAT/PMT parsing, codec parameters from the SPS and audio headers, and cutting between TS
// packets by PES headers. Plain byte parsing without libav, so it runs many thousands of times a
// second.
//
// Input (the ts_segmenter format, so the corpora can be shared): byte 0 holds flags (bit 0: the
// second source segment follows a discontinuity; bit 1: segments are independent; bits 2-3 pick
// the output segment duration), bytes 1-2 where the rest is split into two source segments.
// Every output segment must be whole TS packets starting with a sync byte, with a finite,
// non-negative duration; crashes and sanitizer reports are failures too.
#include "cut/ts_cutter.hpp"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 3) return 0;
    const uint8_t flags = data[0];
    const std::string body(reinterpret_cast<const char*>(data) + 3, size - 3);
    const std::size_t split = body.empty() ? 0 : (static_cast<std::size_t>(data[1]) << 8 | data[2]) % (body.size() + 1);
    std::string first = body.substr(0, split), second = body.substr(split);

    using namespace hlsrelay::ts;
    auto program = find_program(first);
    if (!program) program = find_program(second);
    if (!program) return 0;
    (void)program->reference_pid();
    (void)describe(first, *program);
    (void)describe(second, *program);
    int w = 0, h = 0;
    (void)h264_sps_size(reinterpret_cast<const uint8_t*>(body.data()), std::min<size_t>(body.size(), 64), w, h);

    const double durations[] = {0.5, 1.0, 2.0, 6.0};
    Cutter cutter(durations[(flags >> 2) & 3], [](Cut&& c) {
        if (c.data.empty() || c.data.size() % 188 != 0 || static_cast<unsigned char>(c.data[0]) != 0x47) std::abort();
        if (!std::isfinite(c.duration) || c.duration < 0) std::abort();
    });
    cutter.set_program(*program);
    const bool independent = (flags & 2) != 0;
    cutter.feed(std::move(first), true, independent, 2.5);
    if (auto p2 = find_program(second)) cutter.set_program(*p2);
    cutter.feed(std::move(second), (flags & 1) != 0, independent, 2.5);
    cutter.flush();
    return 0;
}
