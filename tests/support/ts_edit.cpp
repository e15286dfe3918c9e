// MPEG-TS timestamp reading, shifting and payload damage for the fault-injection tests.
#include "support/ts_edit.hpp"

#include <algorithm>
#include <random>

namespace hlsrelay::test {
namespace {

constexpr size_t kPacket = 188;

using u8 = unsigned char;

inline u8 byte(const std::string_view b, size_t i) { return static_cast<u8>(b[i]); }

int64_t read_ts(std::string_view b, size_t i) {
    return (static_cast<int64_t>((byte(b, i) >> 1) & 0x07) << 30) | (static_cast<int64_t>(byte(b, i + 1)) << 22) |
           (static_cast<int64_t>(byte(b, i + 2) >> 1) << 15) | (static_cast<int64_t>(byte(b, i + 3)) << 7) |
           static_cast<int64_t>(byte(b, i + 4) >> 1);
}

void write_ts(std::string& b, size_t i, int64_t ts) {
    auto* p = reinterpret_cast<u8*>(b.data() + i);
    p[0] = static_cast<u8>((p[0] & 0xF1) | ((ts >> 29) & 0x0E));
    p[1] = static_cast<u8>((ts >> 22) & 0xFF);
    p[2] = static_cast<u8>(((ts >> 14) & 0xFE) | 1);
    p[3] = static_cast<u8>((ts >> 7) & 0xFF);
    p[4] = static_cast<u8>(((ts << 1) & 0xFE) | 1);
}

int64_t wrap(int64_t v) {
    v %= kTs33;
    return v < 0 ? v + kTs33 : v;
}

// Where a packet's payload starts (after the adaptation field), or 0 if it has none.
size_t payload_offset(std::string_view p) {
    const int afc = (byte(p, 3) >> 4) & 3;
    if (afc == 0 || afc == 2) return 0;
    size_t off = 4;
    if (afc == 3) off += 1 + byte(p, 4);
    return off < kPacket ? off : 0;
}

bool pes_with_header(std::string_view p, size_t off) {
    if (off + 19 > kPacket || byte(p, off) != 0 || byte(p, off + 1) != 0 || byte(p, off + 2) != 1) return false;
    const u8 sid = byte(p, off + 3);
    return sid == 0xBD || (sid >= 0xC0 && sid <= 0xEF);
}

// PTS/DTS positions of a PES header at `off` (0 when absent).
void pes_timestamps(std::string_view p, size_t off, size_t* pts, size_t* dts) {
    *pts = *dts = 0;
    const int flags = byte(p, off + 7) >> 6;
    if (flags & 2) *pts = off + 9;
    if (flags == 3) *dts = off + 14;
}

}  // namespace

TsScan scan_ts(std::string_view bytes) {
    TsScan out;
    out.aligned = !bytes.empty() && bytes.size() % kPacket == 0;
    int pmt_pid = -1;
    for (size_t at = 0; at + kPacket <= bytes.size(); at += kPacket) {
        const std::string_view p = bytes.substr(at, kPacket);
        if (byte(p, 0) != 0x47) {
            out.aligned = false;
            continue;
        }
        ++out.packets;
        const int pid = ((byte(p, 1) & 0x1F) << 8) | byte(p, 2);
        const bool pusi = byte(p, 1) & 0x40;
        const size_t off = payload_offset(p);
        if (!pusi || off == 0) continue;
        if (pid == 0 && pmt_pid < 0 && off + 1 < kPacket) {
            const size_t t = off + 1 + byte(p, off);  // after the pointer field
            if (t + 12 + 4 <= kPacket && byte(p, t) == 0x00) pmt_pid = ((byte(p, t + 10) & 0x1F) << 8) | byte(p, t + 11);
        } else if (pid == pmt_pid && out.stream_types.empty() && off + 1 < kPacket) {
            const size_t t = off + 1 + byte(p, off);
            if (t + 12 > kPacket || byte(p, t) != 0x02) continue;
            const size_t section_end = std::min(kPacket, t + 3 + (((byte(p, t + 1) & 0x0F) << 8) | byte(p, t + 2)) - 4);
            size_t e = t + 12 + (((byte(p, t + 10) & 0x0F) << 8) | byte(p, t + 11));
            while (e + 5 <= section_end) {
                const int es_pid = ((byte(p, e + 1) & 0x1F) << 8) | byte(p, e + 2);
                out.stream_types[es_pid] = byte(p, e);
                e += 5 + (((byte(p, e + 3) & 0x0F) << 8) | byte(p, e + 4));
            }
        } else if (pes_with_header(p, off)) {
            size_t pts = 0, dts = 0;
            pes_timestamps(p, off, &pts, &dts);
            if (!pts) continue;
            const int64_t ts = read_ts(p, dts ? dts : pts);
            auto& span = out.pids[pid];
            if (span.first < 0) span.first = ts;
            span.last = ts;
            ++span.pes;
        }
    }
    return out;
}

std::string shift_ts(std::string bytes, int64_t offset) {
    for (size_t at = 0; at + kPacket <= bytes.size(); at += kPacket) {
        const std::string_view p(bytes.data() + at, kPacket);
        if (byte(p, 0) != 0x47) continue;
        const int afc = (byte(p, 3) >> 4) & 3;
        if ((afc & 2) && byte(p, 4) >= 7 && (byte(p, 5) & 0x10)) {  // PCR
            auto* q = reinterpret_cast<u8*>(bytes.data() + at + 6);
            int64_t base = (static_cast<int64_t>(q[0]) << 25) | (q[1] << 17) | (q[2] << 9) | (q[3] << 1) | (q[4] >> 7);
            base = wrap(base + offset);
            q[0] = static_cast<u8>(base >> 25);
            q[1] = static_cast<u8>(base >> 17);
            q[2] = static_cast<u8>(base >> 9);
            q[3] = static_cast<u8>(base >> 1);
            q[4] = static_cast<u8>(((base & 1) << 7) | (q[4] & 0x7F));
        }
        const size_t off = payload_offset(p);
        if (!(byte(p, 1) & 0x40) || off == 0 || !pes_with_header(p, off)) continue;
        size_t pts = 0, dts = 0;
        pes_timestamps(p, off, &pts, &dts);
        if (pts) write_ts(bytes, at + pts, wrap(read_ts(p, pts) + offset));
        if (dts) write_ts(bytes, at + dts, wrap(read_ts(p, dts) + offset));
    }
    return bytes;
}

std::string corrupt_ts(std::string bytes, uint32_t seed) {
    std::mt19937 rng(seed);
    const size_t packets = bytes.size() / kPacket;
    int counter = 0;
    for (size_t i = 0; i < packets; ++i) {
        const size_t at = i * kPacket;
        const std::string_view p(bytes.data() + at, kPacket);
        if (byte(p, 0) != 0x47 || (byte(p, 1) & 0x40)) continue;
        if (++counter % 5 != 0) continue;
        const size_t off = payload_offset(p);
        if (off == 0) continue;
        const u8 key = static_cast<u8>(rng() | 1);
        for (size_t j = at + off; j < at + kPacket; ++j) bytes[j] = static_cast<char>(static_cast<u8>(bytes[j]) ^ key);
    }
    if (packets > 2) {
        const size_t at = (packets / 2) * kPacket;
        for (size_t j = at; j < at + kPacket; ++j) bytes[j] = static_cast<char>(rng() & 0xFF);
        if (bytes[at] == '\x47') bytes[at] = '\x48';
    }
    return bytes;
}

int64_t first_timestamp(std::string_view bytes) {
    const TsScan s = scan_ts(bytes);
    int64_t best = -1;
    for (const auto& [pid, span] : s.pids) {
        (void)pid;
        if (span.first >= 0 && (best < 0 || ts_diff(best, span.first) < 0)) best = span.first;
    }
    return best;
}

}  // namespace hlsrelay::test
