// MPEG-TS passthrough cutting: see ts_cutter.hpp.
#include "cut/ts_cutter.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

namespace hlsrelay::ts {

namespace {
constexpr int kPatPid = 0;
constexpr int kSdtPid = 0x11;

const uint8_t* at(const std::string& s, size_t offset) { return reinterpret_cast<const uint8_t*>(s.data()) + offset; }

int pid_of(const uint8_t* p) { return (p[1] & 0x1f) << 8 | p[2]; }
bool pusi_of(const uint8_t* p) { return (p[1] & 0x40) != 0; }

// Offset of the payload in a packet, or 0 when it has none.
size_t payload_offset(const uint8_t* p) {
    const int afc = (p[3] >> 4) & 3;
    if (!(afc & 1)) return 0;
    size_t off = 4;
    if (afc & 2) off += 1 + p[4];
    return off < kPacketSize ? off : 0;
}

bool random_access(const uint8_t* p) {
    const int afc = (p[3] >> 4) & 3;
    return (afc & 2) && p[4] > 0 && (p[5] & 0x40);
}

// Whether two H.264 SPS NAL units describe the same picture format (profile, level, size): encoders
// may re-send an SPS with other bytes (timing, VUI) without a player having to notice.
bool same_format(const std::string& a, const std::string& b) {
    if (a.size() < 4 || b.size() < 4) return a == b;
    if (a.compare(1, 3, b, 1, 3) != 0) return false;  // profile, constraints, level
    int wa = 0, ha = 0, wb = 0, hb = 0;
    const bool pa = h264_sps_size(reinterpret_cast<const uint8_t*>(a.data()), a.size(), wa, ha);
    const bool pb = h264_sps_size(reinterpret_cast<const uint8_t*>(b.data()), b.size(), wb, hb);
    return pa == pb && wa == wb && ha == hb;
}

bool is_video_type(int t) {
    switch (t) {
        case 0x01: case 0x02: case 0x10: case 0x1b: case 0x20: case 0x21: case 0x24: case 0x33: case 0x42:
        case 0xd1: case 0xea:
            return true;
        default:
            return false;
    }
}
bool is_cuttable_video(int t) { return t == 0x01 || t == 0x02 || t == 0x1b || t == 0x24; }
bool is_audio_type(int t) { return t == 0x03 || t == 0x04 || t == 0x0f || t == 0x11 || t == 0x81 || t == 0x87; }

int64_t read_timestamp(const uint8_t* b) {
    return (int64_t{b[0] >> 1 & 7} << 30) | (int64_t{b[1]} << 22) | (int64_t{b[2] >> 1} << 15) |
           (int64_t{b[3]} << 7) | int64_t{b[4] >> 1};
}

// The PTS of the PES that starts in packet `p` (payload_unit_start set), if its header has one.
bool pes_pts(const uint8_t* p, int64_t& pts) {
    const size_t off = payload_offset(p);
    if (off == 0 || off + 14 > kPacketSize) return false;
    const uint8_t* h = p + off;
    if (h[0] != 0 || h[1] != 0 || h[2] != 1 || !((h[7] >> 6) & 2)) return false;
    pts = read_timestamp(h + 9);
    return true;
}

// About one audio frame (AAC 21-23 ms, MPEG audio 24-36 ms, AC-3 32 ms): how far an audio PES may
// begin ahead of the keyframe a clean segment starts with.
constexpr int64_t kAudioFrameSlack = kClock / 30;

// At a fresh start, how many keyframes without their parameter sets are passed over waiting for one
// that has them (a source that never repeats them in band still starts, two GOPs later).
constexpr int kMaxKeysWithoutParams = 2;

// MPEG-2 CRC-32 (polynomial 0x04C11DB7, no reflection): over a whole PSI section, CRC included, 0.
uint32_t crc32_mpeg(const uint8_t* data, size_t size) {
    uint32_t crc = 0xffffffff;
    for (size_t i = 0; i < size; ++i) {
        crc ^= uint32_t{data[i]} << 24;
        for (int b = 0; b < 8; ++b) crc = crc & 0x80000000 ? (crc << 1) ^ 0x04c11db7 : crc << 1;
    }
    return crc;
}

// The PSI section that starts in this packet (pointer field honoured), if it is complete in it and
// its CRC holds (a damaged table must not look like a new stream layout).
bool section_of(const uint8_t* p, int table_id, const uint8_t*& section, size_t& length) {
    if (!pusi_of(p)) return false;
    const size_t off = payload_offset(p);
    if (off == 0) return false;
    const size_t start = off + 1 + p[off];
    if (start + 3 > kPacketSize || p[start] != table_id) return false;
    length = static_cast<size_t>((p[start + 1] & 0x0f) << 8 | p[start + 2]);
    if (start + 3 + length > kPacketSize || length < 9) return false;
    if (crc32_mpeg(p + start, 3 + length) != 0) return false;
    section = p + start;
    return true;
}

// Offsets of the packets of `data` that carry a sync byte and no transport error; counts the rest.
std::vector<size_t> packet_offsets(const std::string& data, int64_t& bad) {
    std::vector<size_t> out;
    out.reserve(data.size() / kPacketSize);
    size_t pos = 0;
    while (pos + kPacketSize <= data.size()) {
        const uint8_t* p = at(data, pos);
        if (p[0] == 0x47) {
            if (p[1] & 0x80) ++bad;  // transport_error_indicator: the packet is known to be damaged
            else out.push_back(pos);
            pos += kPacketSize;
            continue;
        }
        ++bad;  // lost sync: find the next position where two sync bytes follow each other
        size_t next = pos + 1;
        while (next + kPacketSize <= data.size() &&
               !(data[next] == 0x47 && (next + kPacketSize == data.size() || next + 2 * kPacketSize > data.size() ||
                                        static_cast<uint8_t>(data[next + kPacketSize]) == 0x47)))
            ++next;
        pos = next;
    }
    if (pos < data.size() && data.size() - pos >= 4) ++bad;  // a truncated last packet
    return out;
}
}  // namespace

int64_t ts_diff(int64_t a, int64_t b) {
    int64_t d = (b - a) % kWrap;
    if (d < 0) d += kWrap;
    if (d >= kWrap / 2) d -= kWrap;
    return d;
}

std::optional<int64_t> earliest_pts(const std::string& data, int pid) {
    std::optional<int64_t> earliest;
    for (size_t off = 0; off + kPacketSize <= data.size(); off += kPacketSize) {
        const uint8_t* p = at(data, off);
        if (p[0] != 0x47 || (p[1] & 0x80) || pid_of(p) != pid || !pusi_of(p)) continue;
        int64_t pts = 0;
        if (!pes_pts(p, pts)) continue;
        // Within a second of the first: a timestamp jump inside the segment does not count.
        if (!earliest || (ts_diff(*earliest, pts) < 0 && ts_diff(*earliest, pts) > -kClock)) earliest = pts;
    }
    return earliest;
}

int64_t audio_duration(const uint8_t* es, size_t size, int stream_type) {
    double ticks = 0;
    size_t i = 0;
    while (i + 7 <= size) {
        const uint8_t* h = es + i;
        int rate = 0, samples = 0;
        size_t length = 0;
        bool count = true;
        if (stream_type == 0x0f) {  // ADTS (ISO 14496-3 1.A.2.2)
            static constexpr int kRates[] = {96000, 88200, 64000, 48000, 44100, 32000, 24000,
                                             22050, 16000, 12000, 11025, 8000,  7350};
            const int index = (h[2] >> 2) & 0x0f;
            if (h[0] != 0xff || (h[1] & 0xf6) != 0xf0 || index > 12) break;
            rate = kRates[index];
            length = static_cast<size_t>((h[3] & 3) << 11 | h[4] << 3 | h[5] >> 5);
            samples = 1024 * ((h[6] & 3) + 1);
        } else if (stream_type == 0x03 || stream_type == 0x04) {  // MPEG audio (ISO 11172-3, 13818-3)
            static constexpr int kKbps[5][15] = {
                {0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448},  // MPEG-1 layer I
                {0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384},     // MPEG-1 layer II
                {0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320},      // MPEG-1 layer III
                {0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256},     // MPEG-2 layer I
                {0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160},          // MPEG-2 layer II, III
            };
            static constexpr int kRates[3] = {44100, 48000, 32000};
            if (h[0] != 0xff || (h[1] & 0xe0) != 0xe0) break;
            const int version = (h[1] >> 3) & 3;  // 3: MPEG-1, 2: MPEG-2, 0: MPEG-2.5
            const int layer = 4 - ((h[1] >> 1) & 3);  // 1, 2, 3 (4: reserved)
            const int bitrate_index = h[2] >> 4, rate_index = (h[2] >> 2) & 3, padding = (h[2] >> 1) & 1;
            if (version == 1 || layer == 4 || bitrate_index == 0 || bitrate_index == 15 || rate_index == 3) break;
            const bool mpeg1 = version == 3;
            rate = kRates[rate_index] >> (mpeg1 ? 0 : version == 2 ? 1 : 2);
            const int kbps = kKbps[mpeg1 ? layer - 1 : layer == 1 ? 3 : 4][bitrate_index];
            if (layer == 1) {
                samples = 384;
                length = static_cast<size_t>((12 * kbps * 1000 / rate + padding) * 4);
            } else {
                samples = layer == 3 && !mpeg1 ? 576 : 1152;
                length = static_cast<size_t>(samples / 8 * kbps * 1000 / rate + padding);
            }
        } else if (stream_type == 0x81 || stream_type == 0x87) {  // AC-3, E-AC-3 (ETSI TS 102 366)
            if (h[0] != 0x0b || h[1] != 0x77) break;
            const int bsid = h[5] >> 3;
            if (bsid <= 10) {
                static constexpr int kKbps[19] = {32, 40, 48, 56, 64, 80, 96, 112, 128, 160,
                                                  192, 224, 256, 320, 384, 448, 512, 576, 640};
                const int fscod = h[4] >> 6, code = h[4] & 0x3f;
                if (fscod == 3 || code > 37) break;
                const int kbps = kKbps[code >> 1];
                static constexpr int kRates[3] = {48000, 44100, 32000};
                rate = kRates[fscod];
                const int words = fscod == 0 ? 2 * kbps : fscod == 2 ? 3 * kbps : kbps * 320 / 147 + (code & 1);
                length = static_cast<size_t>(2 * words);
                samples = 1536;
            } else {
                length = static_cast<size_t>(((h[2] & 7) << 8 | h[3]) + 1) * 2;
                const int fscod = h[4] >> 6;
                static constexpr int kRates[3] = {48000, 44100, 32000};
                static constexpr int kBlocks[4] = {1, 2, 3, 6};
                if (fscod == 3 && ((h[4] >> 4) & 3) == 3) break;  // fscod2 3 is reserved
                rate = fscod == 3 ? kRates[(h[4] >> 4) & 3] / 2 : kRates[fscod];
                samples = 256 * (fscod == 3 ? 6 : kBlocks[(h[4] >> 4) & 3]);
                count = (h[2] >> 6) != 1;  // a dependent substream adds channels, not time
            }
        } else {
            break;
        }
        if (length < 7 || rate <= 0) break;
        if (count) ticks += static_cast<double>(samples) * kClock / rate;
        i += length;
    }
    return static_cast<int64_t>(std::llround(ticks));
}

int Program::reference_pid() const {
    for (const auto& s : streams)
        if (is_video_type(s.stream_type)) return is_cuttable_video(s.stream_type) ? s.pid : -1;
    for (const auto& s : streams)
        if (is_audio_type(s.stream_type)) return s.pid;
    return -1;
}

bool Program::reference_is_video() const {
    const int pid = reference_pid();
    for (const auto& s : streams)
        if (s.pid == pid) return is_video_type(s.stream_type);
    return false;
}

std::optional<Program> find_program(const std::string& data) {
    if (data.size() < kPacketSize || data[0] != 0x47) return std::nullopt;
    Program prog;
    // The tables come first in practice: look until they are found or the sync is lost.
    for (size_t offset = 0; offset + kPacketSize <= data.size() && data[offset] == 0x47; offset += kPacketSize) {
        const uint8_t* p = at(data, offset);
        if (p[1] & 0x80) continue;
        const int pid = pid_of(p);
        const uint8_t* s = nullptr;
        size_t len = 0;
        if (pid == kPatPid && prog.pmt_pid < 0 && section_of(p, 0x00, s, len)) {
            int pmt = -1, programs = 0;
            for (size_t i = 8; i + 4 <= 3 + len - 4; i += 4) {
                const int number = s[i] << 8 | s[i + 1];
                if (number == 0) continue;  // the network PID
                ++programs;
                pmt = (s[i + 2] & 0x1f) << 8 | s[i + 3];
            }
            if (programs != 1) return std::nullopt;  // a multi-program stream takes the remux path
            prog.pmt_pid = pmt;
            prog.pat.assign(reinterpret_cast<const char*>(p), kPacketSize);
        } else if (prog.pmt_pid >= 0 && pid == prog.pmt_pid && section_of(p, 0x02, s, len)) {
            prog.pcr_pid = (s[8] & 0x1f) << 8 | s[9];
            const size_t info = static_cast<size_t>((s[10] & 0x0f) << 8 | s[11]);
            const size_t end = 3 + len - 4;  // before the CRC
            for (size_t i = 12 + info; i + 5 <= end;) {
                const int type = s[i];
                const int es_pid = (s[i + 1] & 0x1f) << 8 | s[i + 2];
                const size_t es_info = static_cast<size_t>((s[i + 3] & 0x0f) << 8 | s[i + 4]);
                prog.streams.push_back({es_pid, type});
                i += 5 + es_info;
            }
            if (prog.streams.empty()) return std::nullopt;
            prog.pmt.assign(reinterpret_cast<const char*>(p), kPacketSize);
            return prog;
        }
    }
    return std::nullopt;
}

Cutter::Cutter(double segment_duration, Emit emit, BufferPool* pool, size_t max_cut_bytes)
    : segment_duration_(segment_duration), emit_(std::move(emit)), pool_(pool), max_cut_bytes_(max_cut_bytes) {}

void Cutter::set_program(Program program) {
    if (program_ && program_->same_layout(program) && program_->pmt_pid == program.pmt_pid) {
        program_ = std::move(program);  // fresher tables, same streams
        return;
    }
    flush();
    program_ = std::move(program);
    reference_pid_ = program_->reference_pid();
    reference_video_ = program_->reference_is_video();
    need_key_ = true;
    have_dts_ = false;
    have_key_ = false;
    key_start_streak_ = 0;
}

bool Cutter::is_kept_pid(int pid) const {
    if (pid == kPatPid || pid == kSdtPid || pid == program_->pmt_pid || pid == program_->pcr_pid) return true;
    for (const auto& s : program_->streams)
        if (s.pid == pid) return true;
    return false;
}

Cutter::PesInfo Cutter::inspect_pes(const std::string& data, size_t offset, const std::vector<size_t>& packets,
                                    size_t index) const {
    PesInfo info;
    const uint8_t* p = at(data, offset);
    const size_t off = payload_offset(p);
    if (off == 0 || off + 9 > kPacketSize) return info;
    const uint8_t* h = p + off;
    if (h[0] != 0 || h[1] != 0 || h[2] != 1) return info;
    const int flags = h[7] >> 6;
    const size_t header_end = off + 9 + h[8];
    if ((flags & 2) && off + 14 <= kPacketSize) {
        info.has_pts = true;
        info.pts = read_timestamp(h + 9);
        info.dts = flags == 3 && off + 19 <= kPacketSize ? read_timestamp(h + 14) : info.pts;
    }
    if (!reference_video_) {
        info.key = true;
        info.duration = pes_duration(data, packets, index);
        return info;
    }
    if (random_access(p)) info.key = true;
    // Gather the start of the elementary stream data (it may span packets) and look for the NAL
    // units or start codes that mark a random access point.
    uint8_t es[4096];
    size_t n = 0;
    if (header_end < kPacketSize) {
        n = kPacketSize - header_end;
        std::memcpy(es, p + header_end, n);
    }
    const int pid = pid_of(p);
    for (size_t i = index + 1; i < packets.size() && n + kPacketSize <= sizeof es; ++i) {
        const uint8_t* q = at(data, packets[i]);
        if (pid_of(q) != pid) continue;
        if (pusi_of(q)) break;
        const size_t qo = payload_offset(q);
        if (qo == 0) continue;
        std::memcpy(es + n, q + qo, kPacketSize - qo);
        n += kPacketSize - qo;
        if (n >= 2048) break;
    }
    int type = 0;
    for (const auto& s : program_->streams)
        if (s.pid == pid) type = s.stream_type;
    for (size_t i = 0; i + 4 < n; ++i) {
        if (es[i] != 0 || es[i + 1] != 0 || es[i + 2] != 1) continue;
        const uint8_t b = es[i + 3];
        if (type == 0x1b) {
            const int nal = b & 0x1f;
            if (nal == 7) {  // an SPS ahead of the picture: a keyframe; its bytes tell a new format
                size_t end = i + 3;
                while (end + 2 < n && !(es[end] == 0 && es[end + 1] == 0 && es[end + 2] <= 1)) ++end;
                info.sps.assign(reinterpret_cast<const char*>(es + i + 3), end - (i + 3));
                info.params = true;
                return info.key = true, info;
            }
            if (nal == 5) return info.key = true, info;  // IDR
            if (nal == 1) return info;                               // a non-IDR slice first
        } else if (type == 0x24) {
            const int nal = (b >> 1) & 0x3f;
            if (nal == 32 || nal == 33) return info.params = true, info.key = true, info;  // VPS/SPS first
            if (nal >= 16 && nal <= 21) return info.key = true, info;  // an IRAP picture without them
            if (nal <= 9) return info;
        } else {  // MPEG-1/2 video
            if (b == 0xb3) return info.params = true, info.key = true, info;  // sequence header
            if (b == 0xb8) return info.key = true, info;                       // GOP header alone
            if (b == 0x00) {
                if (i + 5 < n && ((es[i + 5] >> 3) & 7) == 1) info.key = true;  // an I picture
                return info;
            }
        }
    }
    return info;
}

int Cutter::stream_type_of(int pid) const {
    for (const auto& s : program_->streams)
        if (s.pid == pid) return s.stream_type;
    return 0;
}

// The audio frames of the PES that starts at packets[index]: its payload is gathered over the
// packets of its PID up to the next PES start (at most 64 KiB; audio PES are a few KiB).
int64_t Cutter::pes_duration(const std::string& data, const std::vector<size_t>& packets, size_t index) const {
    const uint8_t* p = at(data, packets[index]);
    const size_t off = payload_offset(p);
    if (off == 0 || off + 9 > kPacketSize) return 0;
    const size_t header_end = off + 9 + p[off + 8];
    std::vector<uint8_t> es;
    if (header_end < kPacketSize) es.assign(p + header_end, p + kPacketSize);
    const int pid = pid_of(p);
    for (size_t i = index + 1; i < packets.size() && es.size() < 64 * 1024; ++i) {
        const uint8_t* q = at(data, packets[i]);
        if (pid_of(q) != pid) continue;
        if (pusi_of(q)) break;
        const size_t qo = payload_offset(q);
        if (qo != 0) es.insert(es.end(), q + qo, q + kPacketSize);
    }
    return audio_duration(es.data(), es.size(), stream_type_of(pid));
}

// The tables' continuity counters continue from segment to segment, whichever tables a cut put in
// front (ISO 13818-1 2.4.3.3: a PID's counter steps by one per packet with payload).
void Cutter::renumber_tables(std::string& data) {
    if (!program_) return;
    for (size_t off = 0; off + kPacketSize <= data.size(); off += kPacketSize) {
        auto* p = reinterpret_cast<uint8_t*>(data.data()) + off;
        const int pid = pid_of(p);
        if (pid != kPatPid && pid != kSdtPid && pid != program_->pmt_pid) continue;
        if (!((p[3] >> 4) & 1)) continue;  // no payload: the counter stays
        auto it = std::find_if(table_cc_.begin(), table_cc_.end(), [&](const auto& e) { return e.first == pid; });
        if (it == table_cc_.end()) {
            table_cc_.emplace_back(pid, (p[3] + 1) & 0x0f);  // the first: as the source numbered it
            continue;
        }
        p[3] = static_cast<uint8_t>((p[3] & 0xf0) | it->second);
        it->second = (it->second + 1) & 0x0f;
    }
}

void Cutter::add_packet(Pending& p, uint32_t offset) {
    if (p.whole_source && (p.packets.empty() ? offset != 0 : offset != p.packets.back() + kPacketSize))
        p.whole_source = false;
    p.packets.push_back(offset);
}

void Cutter::materialize(Pending& p, const std::string& source) {
    if (p.packets.empty()) return;
    const bool prefix = p.data.empty() && pid_of(at(source, p.packets.front())) != kPatPid &&
                        !(pid_of(at(source, p.packets.front())) == kSdtPid && p.packets.size() > 1 &&
                          pid_of(at(source, p.packets[1])) == kPatPid);
    const size_t size = p.data.size() + p.packets.size() * kPacketSize + (prefix ? 2 * kPacketSize : 0);
    std::string merged;
    if (pool_ && size >= BufferPool::kMinSize) merged = pool_->take(size), merged.clear();
    else merged.reserve(size);
    if (prefix && program_ && !program_->pat.empty()) merged += program_->pat + program_->pmt;
    merged += p.data;
    for (uint32_t offset : p.packets) merged.append(source, offset, kPacketSize);
    if (pool_) pool_->give(std::move(p.data));
    p.data = std::move(merged);
    p.packets.clear();
    p.whole_source = false;
}

void Cutter::emit(Pending&& p, std::string* source) {
    Cut cut;
    if (p.whole_source && source && p.data.empty() && p.packets.size() * kPacketSize == source->size() &&
        (pid_of(at(*source, 0)) == kPatPid || pid_of(at(*source, 0)) == kSdtPid)) {
        cut.data = std::move(*source);  // the source buffer is feed()'s own: moved, not copied
    } else {
        if (source) materialize(p, *source);
        cut.data = std::move(p.data);
    }
    if (cut.data.empty()) return;
    renumber_tables(cut.data);
    cut.start_pts = p.has_media ? p.media_start : p.start_pts;
    const int64_t ticks = p.has_media ? ts_diff(p.media_start, p.media_end) : ts_diff(p.start_pts, p.end_pts);
    cut.duration = static_cast<double>(std::max<int64_t>(ticks, 90)) / kClock;
    cut.keyframe_start = p.keyframe_start;
    cut.timeline_break = p.timeline_break;
    cut.params_changed = p.params_changed;
    emit_(std::move(cut));
}

void Cutter::open_cut(int64_t pts, bool key, bool timeline_break) {
    cut_ = Pending{};
    cut_.start_pts = cut_.end_pts = pts;
    cut_.keyframe_start = key;
    cut_.timeline_break = timeline_break;
    cut_.whole_source = true;
    open_ = true;
}

void Cutter::flush() {
    if (finishing_) {
        Pending p = std::move(*finishing_);
        finishing_.reset();
        emit(std::move(p), source_);
    }
    tail_pids_.clear();
    if (open_) {
        open_ = false;
        Pending p = std::move(cut_);
        cut_ = Pending{};
        emit(std::move(p), source_);
    }
}

FeedStats Cutter::feed(std::string&& input, bool discontinuity, bool end_is_boundary, double target_limit) {
    FeedStats stats;
    if (!program_) return stats;
    if (input.size() > kMaxFeedBytes) {  // packet offsets are 32-bit (Pending::packets)
        stats.bad_packets = static_cast<int64_t>(input.size() / kPacketSize);
        return stats;
    }
    std::string data = std::move(input);
    source_ = &data;
    struct Reset {
        std::string*& s;
        ~Reset() { s = nullptr; }
    } reset{source_};
    if (discontinuity) {
        flush();
        need_key_ = true;
        have_dts_ = false;
        have_key_ = false;
        key_start_streak_ = 0;
    }
    const auto packets = packet_offsets(data, stats.bad_packets);
    const double tolerance = std::min(0.25, 0.1 * segment_duration_);
    // A continuing stream whose last cut ended with the previous source segment: the new cut starts
    // with this segment's first packet (its timing comes with the first reference PES).
    bool start_on_first_pes = false;
    if (!open_ && !need_key_ && !finishing_) {
        open_cut(0, true, pending_break_);
        pending_break_ = false;
        start_on_first_pes = true;
    }
    bool first_reference = true;
    std::optional<int64_t> source_first_pts;
    int64_t max_end = 0;  // the end of the latest frame of the reference stream in the open cut
    bool have_max = false;
    std::vector<uint32_t> psi;  // PAT/PMT/SDT packets waiting for the packet they precede
    // Audio only: where the reference stream of this source segment ends (its last PES's PTS plus
    // its frames), so that a cut waits for the source's own boundary when that is near the target.
    std::optional<int64_t> source_end;
    const double near = std::min(0.5, 0.25 * segment_duration_);
    if (!reference_video_) {
        for (size_t i = packets.size(); i-- > 0;) {
            const uint8_t* p = at(data, packets[i]);
            if (pid_of(p) != reference_pid_ || !pusi_of(p)) continue;
            const PesInfo last = inspect_pes(data, packets[i], packets, i);
            if (last.has_pts) source_end = last.pts + (last.duration > 0 ? last.duration : frame_ticks_);
            break;
        }
    }

    auto assign = [&](uint32_t offset, int pid, bool pusi) {
        if (finishing_) {
            auto it = std::find(tail_pids_.begin(), tail_pids_.end(), pid);
            if (it != tail_pids_.end()) {
                if (!pusi) {
                    add_packet(*finishing_, offset);
                    return;
                }
                tail_pids_.erase(it);
            }
            if (tail_pids_.empty()) {
                Pending p = std::move(*finishing_);
                finishing_.reset();
                emit(std::move(p), &data);
            }
        }
        if (!open_) return;  // before the first keyframe: dropped
        if (!unsynced_pids_.empty() && pid != reference_pid_) {
            // After a break a PID's packets start with a PES start: a tail whose start was dropped
            // is no use to a decoder ("Packet corrupt").
            auto it = std::find(unsynced_pids_.begin(), unsynced_pids_.end(), pid);
            if (it != unsynced_pids_.end()) {
                if (pusi) unsynced_pids_.erase(it);
                else if ((at(data, offset)[3] >> 4) & 1) return;
            }
        }
        for (uint32_t s : psi) add_packet(cut_, s);
        psi.clear();
        add_packet(cut_, offset);
        if (cut_.data.size() + cut_.packets.size() * kPacketSize > max_cut_bytes_) {
            // Timestamps that never advance (or none at all) never reach a cut: memory stays bounded,
            // the cut goes out as it is and the next one starts at a keyframe, after a break.
            if (finishing_) {
                Pending prev = std::move(*finishing_);
                finishing_.reset();
                tail_pids_.clear();
                emit(std::move(prev), &data);
            }
            open_ = false;
            Pending p = std::move(cut_);
            cut_ = Pending{};
            emit(std::move(p), &data);
            need_key_ = true;
            pending_break_ = true;
        }
    };

    for (size_t i = 0; i < packets.size(); ++i) {
        const auto offset = static_cast<uint32_t>(packets[i]);
        const uint8_t* p = at(data, offset);
        const int pid = pid_of(p);
        if (!is_kept_pid(pid)) continue;
        if (pid == kPatPid || pid == kSdtPid || pid == program_->pmt_pid) {
            if (!open_)  // waiting for a keyframe: only the latest tables go in front of it
                psi.erase(std::remove_if(psi.begin(), psi.end(), [&](uint32_t o) { return pid_of(at(data, o)) == pid; }),
                          psi.end());
            psi.push_back(offset);
            continue;
        }
        const bool pusi = pusi_of(p);
        if (open_ && cut_.clean_start && pusi && pid != reference_pid_ && is_audio_type(stream_type_of(pid))) {
            // The first segment after a break starts with the keyframe: audio that begins more than
            // a frame earlier is dropped with its tail (players report "Invalid audio PTS").
            int64_t pts = 0;
            if (pes_pts(p, pts) && ts_diff(cut_.start_pts, pts) < -kAudioFrameSlack) {
                if (std::find(unsynced_pids_.begin(), unsynced_pids_.end(), pid) == unsynced_pids_.end())
                    unsynced_pids_.push_back(pid);
                continue;
            }
        }
        if (pid == reference_pid_ && pusi) {
            const PesInfo pes = inspect_pes(data, offset, packets, i);
            if (pes.has_pts) {
                if (first_reference) {
                    stats.started_with_key = pes.key;
                    first_reference = false;
                }
                bool timeline_break = false;
                if (have_dts_) {
                    const int64_t d = ts_diff(last_dts_, pes.dts);
                    // Within one stream consecutive reference PES are a frame (video) or a fraction of a
                    // second (audio) apart: a step of more than a second forward or back is a break in
                    // the source's timeline (an encoder restart, lost data), tagged rather than hidden.
                    if (d < -kClock || d > kClock) timeline_break = true;
                    else if (d > 0 && d <= kClock) frame_ticks_ = d;
                }
                last_dts_ = pes.dts;
                have_dts_ = true;
                // New coding parameters (an H.264 SPS that differs: size, profile): players must
                // reinitialise their decoder, so the output breaks here like a timeline jump.
                bool reconfigured = false;
                if (!pes.sps.empty()) {
                    if (!last_sps_.empty() && pes.sps != last_sps_ && open_) reconfigured = !same_format(last_sps_, pes.sps);
                    last_sps_ = pes.sps;
                }
                if (reconfigured) timeline_break = true;
                if (pes.key && reference_video_) {
                    if (have_key_ && !timeline_break) {
                        const int64_t gop = ts_diff(last_key_pts_, pes.pts);
                        if (gop > 0) last_gop_ = static_cast<double>(gop) / kClock;
                    }
                    last_key_pts_ = pes.pts;
                    have_key_ = true;
                }
                if (start_on_first_pes) {
                    start_on_first_pes = false;
                    cut_.start_pts = cut_.end_pts = pes.pts;
                    cut_.keyframe_start = pes.key;
                    if (timeline_break) cut_.timeline_break = true;
                    cut_.params_changed = reconfigured;
                    timeline_break = false;
                    have_max = false;
                }
                if (!source_first_pts) source_first_pts = pes.pts;
                if (!open_) {
                    if (reference_video_ && !pes.key && need_key_) continue;  // dropped up to a keyframe
                    // A fresh start (the first segment, or the first after a break) needs a keyframe a
                    // decoder can start from: one carrying its parameter sets. A source that repeats them
                    // at only some keyframes (e.g. once per source segment) gets the next that has them;
                    // after kMaxKeysWithoutParams without, the keyframe is taken as it is.
                    if (reference_video_ && need_key_ && !pes.params && keys_without_params_ < kMaxKeysWithoutParams) {
                        ++keys_without_params_;
                        continue;
                    }
                    keys_without_params_ = 0;
                    const bool clean = need_key_;
                    open_cut(pes.pts, pes.key || !reference_video_, pending_break_ || timeline_break);
                    if (clean) {  // a fresh start: every other PID waits for its next PES start
                        cut_.clean_start = true;
                        unsynced_pids_.clear();
                        for (const auto& s : program_->streams)
                            if (s.pid != reference_pid_) unsynced_pids_.push_back(s.pid);
                    }
                    need_key_ = false;
                    pending_break_ = false;
                    have_max = false;
                } else {
                    const double elapsed = static_cast<double>(ts_diff(cut_.start_pts, pes.pts)) / kClock;
                    // Audio only: when this source segment ends near the target, its end is the cut.
                    const bool wait_for_boundary =
                        source_end && static_cast<double>(ts_diff(cut_.start_pts, *source_end)) / kClock <=
                                          std::min(segment_duration_ + near, target_limit);
                    bool cut = timeline_break;
                    if (!cut && wait_for_boundary) {
                        // no cut inside this source segment
                    } else if (!cut && pes.key && elapsed >= segment_duration_ - tolerance) cut = true;
                    else if (!cut && reference_video_ && pes.key && elapsed > 0.5 &&
                             elapsed + last_gop_ > target_limit)
                        cut = true;  // the next GOP would overrun the target duration: cut early, on a keyframe
                    else if (!cut && elapsed >= target_limit)
                        cut = true;  // a GOP longer than the target duration: the playlist's promise first
                    if (cut) {
                        if (finishing_) {
                            Pending prev = std::move(*finishing_);
                            finishing_.reset();
                            emit(std::move(prev), &data);
                        }
                        cut_.end_pts = timeline_break ? (have_max ? max_end : cut_.start_pts) : pes.pts;
                        // PES that began in the closing cut keep their tails there.
                        tail_pids_.clear();
                        for (const auto& s : program_->streams)
                            if (s.pid != reference_pid_) tail_pids_.push_back(s.pid);
                        finishing_ = std::move(cut_);
                        open_cut(pes.pts, pes.key || !reference_video_, timeline_break);
                        cut_.params_changed = reconfigured;
                        have_max = false;
                    }
                }
                // A video PES is one frame (its duration: the DTS step); an audio PES holds several.
                const int64_t end = pes.pts + (pes.duration > 0 ? pes.duration : frame_ticks_);
                if (!have_max || ts_diff(max_end, end) > 0) {
                    max_end = end;
                    have_max = true;
                }
                cut_.end_pts = max_end;
                // Leading pictures precede their keyframe by a few frames: a PTS more than a second
                // earlier is damage, not media of this cut.
                if (!cut_.has_media) cut_.media_start = pes.pts;
                else if (ts_diff(cut_.media_start, pes.pts) < 0 && ts_diff(pes.pts, cut_.start_pts) <= kClock)
                    cut_.media_start = pes.pts;
                if (!cut_.has_media || ts_diff(cut_.media_end, end) > 0) cut_.media_end = end;
                cut_.has_media = true;
            }
        }
        assign(offset, pid, pusi);
    }
    if (open_) {
        for (uint32_t s : psi) add_packet(cut_, s);
    }
    if (finishing_) {
        Pending prev = std::move(*finishing_);
        finishing_.reset();
        tail_pids_.clear();
        emit(std::move(prev), &data);
    }
    if (start_on_first_pes) open_ = false;  // nothing of the reference stream came: nothing to cut
    key_start_streak_ = stats.started_with_key ? key_start_streak_ + 1 : 0;
    if (source_first_pts && have_max)
        last_source_span_ = static_cast<double>(ts_diff(*source_first_pts, max_end)) / kClock;
    if (open_) {
        const double elapsed = static_cast<double>(ts_diff(cut_.start_pts, cut_.end_pts)) / kClock;
        // Audio frames are all sync points: every source boundary may end a cut, the nearer the better.
        const bool boundary = end_is_boundary || key_start_streak_ >= 2 || !reference_video_;
        const double early = reference_video_ ? tolerance : near;
        if (boundary && (elapsed >= segment_duration_ - early || elapsed + last_source_span_ > target_limit)) {
            open_ = false;
            Pending p = std::move(cut_);
            cut_ = Pending{};
            emit(std::move(p), &data);
        } else {
            materialize(cut_, data);
        }
    }
    if (pool_) pool_->give(std::move(data));  // copied into cuts (or moved into one: then empty)
    return stats;
}

}  // namespace hlsrelay::ts

namespace hlsrelay::ts {

namespace {
// Exp-Golomb bit reader over an RBSP (emulation prevention bytes already removed). Every read is
// bounded: past the end, or a value outside the range the caller allows (the syntax element's range
// in the specification), and ok() turns false for good; the values read after that are 0.
class Bits {
public:
    Bits(const std::vector<uint8_t>& data) : d_(data) {}
    bool ok() const { return ok_; }
    uint32_t bit() {
        if (!ok_ || pos_ >= d_.size() * 8) {
            ok_ = false;
            return 0;
        }
        const uint32_t b = (d_[pos_ / 8] >> (7 - pos_ % 8)) & 1;
        ++pos_;
        return b;
    }
    // n <= 32 bits, most significant first.
    uint32_t bits(int n) {
        uint32_t v = 0;
        for (int i = 0; i < n; ++i) v = v << 1 | bit();
        return ok_ ? v : 0;
    }
    // ue(v) in [0, max] (at most 2^32 - 2, 31 leading zeros).
    uint32_t ue(uint32_t max) {
        int zeros = 0;
        while (bit() == 0) {
            if (!ok_ || ++zeros > 31) return fail();
        }
        const uint64_t v = ((uint64_t{1} << zeros) - 1) + bits(zeros);
        if (!ok_ || v > max) return fail();
        return static_cast<uint32_t>(v);
    }
    // se(v) in [min, max]; the code numbers 2k-1 and 2k map to k and -k.
    int32_t se(int32_t min, int32_t max) {
        const uint64_t k = ue(0xfffffffe);
        const int64_t v = k & 1 ? static_cast<int64_t>((k + 1) / 2) : -static_cast<int64_t>(k / 2);
        if (!ok_ || v < min || v > max) return static_cast<int32_t>(fail());
        return static_cast<int32_t>(v);
    }

private:
    uint32_t fail() {
        ok_ = false;
        return 0;
    }
    const std::vector<uint8_t>& d_;
    size_t pos_ = 0;
    bool ok_ = true;
};

// Up to `max` bytes of the elementary stream data of the first PES of `pid`: codec headers.
std::vector<uint8_t> es_bytes(const std::string& data, int pid, size_t max, bool skip_to_pusi = true) {
    std::vector<uint8_t> out;
    bool in_pes = !skip_to_pusi;
    for (size_t off = 0; off + kPacketSize <= data.size() && out.size() < max; off += kPacketSize) {
        const uint8_t* p = at(data, off);
        if (p[0] != 0x47) break;
        if (pid_of(p) != pid) continue;
        const size_t po = payload_offset(p);
        if (po == 0) continue;
        size_t start = po;
        if (pusi_of(p)) {
            if (in_pes && !out.empty()) break;  // the next PES: one is enough
            if (po + 9 > kPacketSize || p[po] != 0 || p[po + 1] != 0 || p[po + 2] != 1) continue;
            start = po + 9 + p[po + 8];
            in_pes = true;
        }
        if (!in_pes || start >= kPacketSize) continue;
        out.insert(out.end(), p + start, p + kPacketSize);
    }
    return out;
}

std::string hex3(const uint8_t* b) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%02x%02x%02x", b[0], b[1], b[2]);
    return buf;
}
}  // namespace

// H.264 (ITU-T H.264) 7.3.2.1.1 seq_parameter_set_data(), as far as the frame cropping, with the
// value ranges of 7.4.2.1.1: a value outside its range makes the SPS invalid (a hostile or damaged
// SPS must not reach any arithmetic with it).
bool h264_sps_size(const uint8_t* nal, size_t size, int& width, int& height) {
    if (!nal || size < 2) return false;
    std::vector<uint8_t> rbsp;
    rbsp.reserve(size);
    for (size_t i = 1; i < size; ++i) {  // after the NAL header byte
        if (i + 2 < size && nal[i] == 0 && nal[i + 1] == 0 && nal[i + 2] == 3) {
            rbsp.push_back(0);
            rbsp.push_back(0);
            i += 2;
            continue;
        }
        rbsp.push_back(nal[i]);
    }
    constexpr int32_t kInt32Min = -2147483647;  // offset_for_* range: -2^31 + 1 .. 2^31 - 1
    constexpr int32_t kInt32Max = 2147483647;
    Bits b(rbsp);
    const uint32_t profile = b.bits(8);
    b.bits(16);  // constraint flags, level
    b.ue(31);    // seq_parameter_set_id
    uint32_t chroma_format = 1;
    bool separate_planes = false;
    switch (profile) {
        case 100: case 110: case 122: case 244: case 44: case 83: case 86: case 118: case 128: case 138: case 139:
        case 134: case 135:
            chroma_format = b.ue(3);
            if (chroma_format == 3) separate_planes = b.bit();
            b.ue(6);  // bit_depth_luma_minus8
            b.ue(6);  // bit_depth_chroma_minus8
            b.bit();  // qpprime_y_zero_transform_bypass_flag
            if (b.bit()) {  // seq_scaling_matrix_present_flag
                for (int i = 0; i < (chroma_format != 3 ? 8 : 12) && b.ok(); ++i) {
                    if (!b.bit()) continue;  // seq_scaling_list_present_flag[i]
                    // scaling_list() (7.3.2.1.1.1): delta_scale in [-128, 127], the scale mod 256.
                    int last = 8, next = 8;
                    for (int j = 0; j < (i < 6 ? 16 : 64) && b.ok(); ++j) {
                        if (next != 0) next = (last + b.se(-128, 127) + 256) % 256;
                        last = next == 0 ? last : next;
                    }
                }
            }
            break;
        default:
            break;
    }
    b.ue(12);  // log2_max_frame_num_minus4
    const uint32_t poc_type = b.ue(2);
    if (poc_type == 0) {
        b.ue(12);  // log2_max_pic_order_cnt_lsb_minus4
    } else if (poc_type == 1) {
        b.bit();                       // delta_pic_order_always_zero_flag
        b.se(kInt32Min, kInt32Max);    // offset_for_non_ref_pic
        b.se(kInt32Min, kInt32Max);    // offset_for_top_to_bottom_field
        const uint32_t cycle = b.ue(255);  // num_ref_frames_in_pic_order_cnt_cycle
        for (uint32_t i = 0; i < cycle && b.ok(); ++i) b.se(kInt32Min, kInt32Max);
    }
    b.ue(16);  // max_num_ref_frames (at most MaxDpbFrames, itself at most 16)
    b.bit();   // gaps_in_frame_num_value_allowed_flag
    // Up to 1024 macroblocks (16384 pixels) a side: more than any level allows (A.3.1: at most
    // sqrt(8 * MaxFS), 1055 for level 6.2), so anything larger is not a real picture.
    constexpr uint32_t kMaxMbs = 1024;
    const uint32_t width_mbs = b.ue(kMaxMbs - 1) + 1;     // pic_width_in_mbs_minus1
    const uint32_t height_units = b.ue(kMaxMbs - 1) + 1;  // pic_height_in_map_units_minus1
    const uint32_t frame_mbs_only = b.bit();
    if (!frame_mbs_only) b.bit();  // mb_adaptive_frame_field_flag
    b.bit();  // direct_8x8_inference_flag
    // The picture in luma samples; the crop offsets are in chroma units (7-19 .. 7-22).
    uint32_t unit_x = 1, unit_y = 2 - frame_mbs_only;
    if (!separate_planes && chroma_format == 1) unit_x = 2, unit_y *= 2;
    else if (!separate_planes && chroma_format == 2) unit_x = 2;
    const int64_t full_w = int64_t{width_mbs} * 16;
    const int64_t full_h = int64_t{height_units} * 16 * (2 - frame_mbs_only);
    int64_t crop[4] = {0, 0, 0, 0};
    if (b.bit()) {  // frame_cropping_flag: each offset at most the picture (the sum is checked below)
        for (int i = 0; i < 4; ++i) crop[i] = b.ue(static_cast<uint32_t>((i < 2 ? full_w / unit_x : full_h / unit_y)));
    }
    if (!b.ok()) return false;
    const int64_t w = full_w - int64_t{unit_x} * (crop[0] + crop[1]);
    const int64_t h = full_h - int64_t{unit_y} * (crop[2] + crop[3]);
    if (w <= 0 || h <= 0) return false;
    width = static_cast<int>(w);
    height = static_cast<int>(h);
    return true;
}

std::optional<StreamParams> describe(const std::string& data, const Program& program) {
    StreamParams out;
    std::string video_codec_string;
    std::vector<std::string> audio_strings;
    bool have_video = false;
    for (const auto& s : program.streams) {
        switch (s.stream_type) {
            case 0x1b: {  // H.264: the SPS of the first keyframe
                if (have_video) return std::nullopt;  // a second video stream: the remux path decides
                have_video = true;
                const auto es = es_bytes(data, s.pid, 64 * 1024);
                bool found = false;
                for (size_t i = 0; i + 4 < es.size() && !found; ++i) {
                    if (es[i] != 0 || es[i + 1] != 0 || es[i + 2] != 1 || (es[i + 3] & 0x1f) != 7) continue;
                    size_t end = i + 3;
                    while (end + 2 < es.size() && !(es[end] == 0 && es[end + 1] == 0 && es[end + 2] <= 1)) ++end;
                    if (end - (i + 3) < 4) return std::nullopt;
                    if (!h264_sps_size(es.data() + i + 3, end - (i + 3), out.width, out.height)) return std::nullopt;
                    video_codec_string = "avc1." + hex3(es.data() + i + 4);
                    found = true;
                }
                if (!found) return std::nullopt;
                out.video_codec = "h264";
                // The frame rate from the decoding timestamps of this segment's first PES headers.
                int64_t last = -1, step = 0;
                int seen = 0;
                for (size_t off = 0; off + kPacketSize <= data.size() && seen < 64; off += kPacketSize) {
                    const uint8_t* p = at(data, off);
                    if (p[0] != 0x47 || pid_of(p) != s.pid || !pusi_of(p)) continue;
                    const size_t po = payload_offset(p);
                    if (po == 0 || po + 19 > kPacketSize || p[po] != 0 || p[po + 1] != 0 || p[po + 2] != 1) continue;
                    const int flags = p[po + 7] >> 6;
                    if (!(flags & 2)) continue;
                    const int64_t dts = read_timestamp(p + po + (flags == 3 ? 14 : 9));
                    if (last >= 0) {
                        const int64_t d = ts_diff(last, dts);
                        if (d > 0 && (step == 0 || d < step)) step = d;
                    }
                    last = dts;
                    ++seen;
                }
                if (step > 0 && step <= kClock) out.frame_rate = std::round(90000.0 / static_cast<double>(step) * 1000) / 1000;
                break;
            }
            case 0x0f: {  // AAC in ADTS: the object type from the first header
                const auto es = es_bytes(data, s.pid, 16);
                if (es.size() < 7 || es[0] != 0xff || (es[1] & 0xf6) != 0xf0) return std::nullopt;
                audio_strings.push_back("mp4a.40." + std::to_string(((es[2] >> 6) & 3) + 1));
                out.audio_codecs.emplace_back("aac");
                break;
            }
            case 0x03: case 0x04: {  // MPEG audio: layer II or III
                const auto es = es_bytes(data, s.pid, 16);
                if (es.size() < 4 || es[0] != 0xff || (es[1] & 0xe0) != 0xe0) return std::nullopt;
                const int layer = (es[1] >> 1) & 3;
                if (layer == 1) audio_strings.emplace_back("mp4a.40.34"), out.audio_codecs.emplace_back("mp3");
                else if (layer == 2) audio_strings.emplace_back("mp4a.40.33"), out.audio_codecs.emplace_back("mp2");
                else return std::nullopt;
                break;
            }
            case 0x81: audio_strings.emplace_back("ac-3"); out.audio_codecs.emplace_back("ac3"); break;
            case 0x87: audio_strings.emplace_back("ec-3"); out.audio_codecs.emplace_back("eac3"); break;
            case 0x15: case 0x86: break;  // ID3 metadata, SCTE-35 cues: carried along, not described
            default: return std::nullopt;  // anything else: libavformat knows better
        }
    }
    if (!have_video && audio_strings.empty()) return std::nullopt;
    out.codecs = video_codec_string;
    for (const auto& a : audio_strings)
        if (out.codecs.find(a) == std::string::npos) out.codecs += (out.codecs.empty() ? "" : ",") + a;
    return out;
}

}  // namespace hlsrelay::ts
