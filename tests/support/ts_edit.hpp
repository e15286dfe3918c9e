// Byte-level MPEG-TS helpers for the fault origin and the output watcher: read and shift the
// timestamps (PES PTS/DTS, PCR) and damage payloads, without libav.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace hlsrelay::test {

constexpr int64_t kTs33 = int64_t{1} << 33;  // MPEG-TS timestamps wrap here (90 kHz ticks)

struct TsScan {
    bool aligned = false;  // a whole number of 188-byte packets, every one starting with 0x47
    struct Span {
        int64_t first = -1, last = -1;  // DTS (PTS when a PES has no DTS) of the first and last PES, raw 33-bit
        int pes = 0;
    };
    std::map<int, Span> pids;           // elementary PID -> timestamps
    std::map<int, int> stream_types;    // elementary PID -> PMT stream_type, from the first PMT
    int packets = 0;
};

// Reads every PES header and the first PAT/PMT. Tolerates damage: unreadable packets are skipped.
TsScan scan_ts(std::string_view bytes);

// Adds `offset` (90 kHz ticks, may be negative) to every PTS, DTS and PCR base, modulo 2^33.
std::string shift_ts(std::string bytes, int64_t offset);

// Damages a segment the way a bad link or a broken muxer does, deterministically from `seed`: the
// payload of every 5th packet that does not start a PES is XOR-ed, and one packet in the middle is
// replaced by random bytes (its sync byte included). PES headers and PSI of the other packets stay.
std::string corrupt_ts(std::string bytes, uint32_t seed);

// The smallest DTS/PTS of any PES in `bytes`, or -1.
int64_t first_timestamp(std::string_view bytes);

// (b - a) on the 33-bit circle, in (-2^32, 2^32].
inline int64_t ts_diff(int64_t a, int64_t b) {
    int64_t d = (b - a) % kTs33;
    if (d < 0) d += kTs33;
    if (d > kTs33 / 2) d -= kTs33;
    return d;
}

}  // namespace hlsrelay::test
