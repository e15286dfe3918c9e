// libFuzzer target: the fMP4 passthrough (src/cut/fmp4.cpp and Segmenter::write_fmp4_segment), which
// HLS sources serving fMP4 (EXT-X-MAP) take when the output is fMP4: ISO BMFF box walking (32- and
// 64-bit sizes, size 0), the init section's moov/trak/mdhd/hdlr/stsd/trex and the media segment's
// moof/traf/tfhd/tfdt/trun.
//
// Input: byte 0 holds flags (bit 0: the second media segment follows a discontinuity; bit 1: the
// segmenter runs too, not only the reader; bits 2-3 pick the output segment duration), bytes 1-2
// (big-endian) where the rest splits into the init section and the media; the media is fed as one
// segment and again as a second one. Fragments must lie inside the media in order, every output
// segment be non-empty fMP4 with a finite, positive duration; crashes and sanitizer reports are
// failures too.
#include "cut/fmp4.hpp"
#include "cut/segmenter.hpp"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 3) return 0;
    const uint8_t flags = data[0];
    const std::string body(reinterpret_cast<const char*>(data) + 3, size - 3);
    const size_t split = body.empty() ? 0 : (static_cast<size_t>(data[1]) << 8 | data[2]) % (body.size() + 1);
    const std::string init = body.substr(0, split), media = body.substr(split);

    using namespace hlsrelay;
    (void)mp4::top_level_boxes(body);
    if (auto info = mp4::parse_init(init)) {
        if (info->reference < 0 || static_cast<size_t>(info->reference) >= info->tracks.size()) std::abort();
        if (auto m = mp4::parse_media(media, *info)) {
            size_t last = 0;
            for (const auto& f : m->fragments) {
                if (f.begin < last || f.end <= f.begin || f.end > media.size()) std::abort();
                last = f.end;
            }
        }
    }
    if (!(flags & 2)) return 0;
    const double durations[] = {0.5, 1.0, 2.0, 6.0};
    Segmenter segmenter(durations[(flags >> 2) & 3], [](CutSegment&& s) {
        if (s.data.empty() || s.format != SegmentFormat::fmp4 || !s.init) std::abort();
        if (!std::isfinite(s.duration) || s.duration <= 0) std::abort();
    });
    segmenter.set_container(Container::fmp4);
    std::string first = media, second = media;
    if (segmenter.write_fmp4_segment(init, first, true, false))
        (void)segmenter.write_fmp4_segment(init, second, flags & 1, true);
    segmenter.flush();
    return 0;
}
