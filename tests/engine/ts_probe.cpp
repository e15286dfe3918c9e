// Test helpers that read MPEG-TS bytes back through libavformat: see ts_probe.hpp.
#include "ts_probe.hpp"

#include "common/av_util.hpp"

#include "support/media.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace hlsrelay::test {

bool TsProbe::first_video_key() const {
    for (const auto& p : packets)
        if (p.type == AVMEDIA_TYPE_VIDEO) return p.key;
    return true;
}

double TsProbe::video_span() const {
    const AVMediaType want = video_streams > 0 ? AVMEDIA_TYPE_VIDEO : AVMEDIA_TYPE_AUDIO;
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    for (const auto& p : packets) {
        if (p.type != want || p.pts == AV_NOPTS_VALUE) continue;
        lo = std::min(lo, p.pts);
        hi = std::max(hi, p.pts);
    }
    return hi >= lo ? static_cast<double>(hi - lo) / 90000.0 : 0;
}

double TsProbe::media_duration() const {
    const AVMediaType want = video_streams > 0 ? AVMEDIA_TYPE_VIDEO : AVMEDIA_TYPE_AUDIO;
    int stream = -1;
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    for (const auto& p : packets) {
        if (p.type != want || p.pts == AV_NOPTS_VALUE) continue;
        if (stream < 0) stream = p.stream;
        if (p.stream != stream) continue;
        lo = std::min(lo, p.pts);
        hi = std::max(hi, p.pts + p.duration);
    }
    return hi >= lo ? static_cast<double>(hi - lo) / 90000.0 : 0;
}

int64_t TsProbe::first_dts(int stream) const {
    for (const auto& p : packets)
        if (p.stream == stream && p.dts != AV_NOPTS_VALUE) return p.dts;
    return AV_NOPTS_VALUE;
}

int64_t TsProbe::last_dts(int stream) const {
    for (auto it = packets.rbegin(); it != packets.rend(); ++it)
        if (it->stream == stream && it->dts != AV_NOPTS_VALUE) return it->dts;
    return AV_NOPTS_VALUE;
}

TsProbe probe_ts(const std::string& bytes) {
    TsProbe out;
    if (bytes.size() >= 188 && static_cast<uint8_t>(bytes[0]) == 0x47)
        out.starts_with_pat = ((static_cast<uint8_t>(bytes[1]) & 0x1f) << 8 | static_cast<uint8_t>(bytes[2])) == 0;
    av::MemoryReader reader(bytes);
    AVFormatContext* raw = avformat_alloc_context();
    raw->pb = reader.io();
    raw->flags |= AVFMT_FLAG_CUSTOM_IO;
    int err = avformat_open_input(&raw, "", av_find_input_format("mpegts"), nullptr);
    if (err < 0) {
        out.error = "open: " + av::error_string(err);
        return out;
    }
    av::InputPtr in(raw);
    if ((err = avformat_find_stream_info(in.get(), nullptr)) < 0) {
        out.error = "find_stream_info: " + av::error_string(err);
        return out;
    }
    for (unsigned i = 0; i < in->nb_streams; ++i) {
        if (in->streams[i]->codecpar->codec_type == AVMEDIA_TYPE_VIDEO) ++out.video_streams;
        if (in->streams[i]->codecpar->codec_type == AVMEDIA_TYPE_AUDIO) ++out.audio_streams;
    }
    av::PacketPtr pkt = av::make_packet();
    while (av_read_frame(in.get(), pkt.get()) >= 0) {
        const AVStream* st = in->streams[pkt->stream_index];
        TsPacket p;
        p.stream = pkt->stream_index;
        p.type = st->codecpar->codec_type;
        const AVRational tb90{1, 90000};
        if (pkt->pts != AV_NOPTS_VALUE) p.pts = av_rescale_q(pkt->pts, st->time_base, tb90);
        if (pkt->dts != AV_NOPTS_VALUE) p.dts = av_rescale_q(pkt->dts, st->time_base, tb90);
        if (pkt->duration > 0) p.duration = av_rescale_q(pkt->duration, st->time_base, tb90);
        p.key = (pkt->flags & AV_PKT_FLAG_KEY) != 0;
        out.packets.push_back(p);
        av_packet_unref(pkt.get());
    }
    out.ok = true;
    return out;
}

namespace {
// Whether the elementary stream bytes of one video PES start a picture a decoder can begin with.
bool clean_video_start(const std::vector<uint8_t>& es, int stream_type) {
    bool vps = false, sps = false, pps = false, key = false;
    for (size_t i = 0; i + 4 < es.size(); ++i) {
        if (es[i] != 0 || es[i + 1] != 0 || es[i + 2] != 1) continue;
        const uint8_t b = es[i + 3];
        if (stream_type == 0x1b) {
            const int nal = b & 0x1f;
            if (nal == 7) sps = true;
            else if (nal == 8) pps = true;
            else if (nal == 5) { key = true; break; }
            else if (nal == 1) break;
        } else {
            const int nal = (b >> 1) & 0x3f;
            if (nal == 32) vps = true;
            else if (nal == 33) sps = true;
            else if (nal == 34) pps = true;
            else if (nal >= 16 && nal <= 21) { key = true; break; }
            else if (nal <= 9) break;
        }
    }
    return key && sps && pps && (stream_type == 0x1b || vps);
}
}  // namespace

TsLayout scan_ts(const std::string& bytes) {
    TsLayout out;
    const auto* d = reinterpret_cast<const uint8_t*>(bytes.data());
    const size_t n = bytes.size() / 188;
    out.packets = static_cast<int>(n);
    std::map<int, int> last_cc;
    std::map<int, int> types;  // elementary PID -> stream type, from the PMT
    int video_pid = -1, video_type = 0;
    std::vector<uint8_t> video_es;
    bool video_done = false;
    for (size_t i = 0; i < n; ++i) {
        const uint8_t* p = d + i * 188;
        if (p[0] != 0x47) continue;
        const int pid = (p[1] & 0x1f) << 8 | p[2];
        const bool pusi = (p[1] & 0x40) != 0;
        const int afc = (p[3] >> 4) & 3;
        const int cc = p[3] & 0x0f;
        const bool has_payload = (afc & 1) != 0;
        const bool discontinuity = (afc & 2) && p[4] > 0 && (p[5] & 0x80);
        size_t payload = 4;
        if (afc & 2) payload += 1 + p[4];
        if (pid != 0x1fff) {
            auto it = last_cc.find(pid);
            if (it != last_cc.end() && !discontinuity) {
                const int want = has_payload ? (it->second + 1) & 15 : it->second;
                if (cc != want) {
                    ++out.cc_errors;
                    if (out.cc_error_text.size() < 8)
                        out.cc_error_text.push_back("pid " + std::to_string(pid) + " at packet " + std::to_string(i) +
                                                    ": " + std::to_string(cc) + " after " + std::to_string(it->second));
                }
            }
            last_cc[pid] = cc;
        }
        if (pid == 0) {
            out.pat_at.push_back(static_cast<int>(i));
            if (pusi && has_payload && payload < 188) {
                const size_t s = payload + 1 + p[payload];
                if (s + 12 <= 188) out.pmt_pid = (p[s + 10] & 0x1f) << 8 | p[s + 11];
            }
            continue;
        }
        if (pid == out.pmt_pid) {
            out.pmt_at.push_back(static_cast<int>(i));
            if (pusi && has_payload && payload < 188) {
                const size_t s = payload + 1 + p[payload];
                if (s + 12 <= 188) {
                    const size_t len = static_cast<size_t>((p[s + 1] & 0x0f) << 8 | p[s + 2]);
                    const size_t info = static_cast<size_t>((p[s + 10] & 0x0f) << 8 | p[s + 11]);
                    const size_t end = std::min<size_t>(s + 3 + len - 4, 188);
                    for (size_t k = s + 12 + info; k + 5 <= end;) {
                        const int es_pid = (p[k + 1] & 0x1f) << 8 | p[k + 2];
                        types[es_pid] = p[k];
                        if (video_pid < 0 && (p[k] == 0x1b || p[k] == 0x24)) video_pid = es_pid, video_type = p[k];
                        k += 5 + static_cast<size_t>((p[k + 3] & 0x0f) << 8 | p[k + 4]);
                    }
                }
            }
            continue;
        }
        if (pid == 0x11 || pid == 0x1fff) continue;
        if (out.first_pes_pid < 0) out.first_pes_pid = pid;
        if (has_payload && !out.first_has_pusi.count(pid)) out.first_has_pusi[pid] = pusi;
        if (pid == video_pid && has_payload && !video_done && payload < 188) {
            if (pusi) {
                if (!video_es.empty()) video_done = true;
                else if (payload + 9 <= 188 && p[payload] == 0 && p[payload + 1] == 0 && p[payload + 2] == 1) {
                    const size_t start = payload + 9 + p[payload + 8];
                    if (start < 188) video_es.assign(p + start, p + 188);
                }
            } else if (!video_es.empty()) {
                video_es.insert(video_es.end(), p + payload, p + 188);
            }
        }
    }
    if (!video_es.empty()) out.first_video_clean = clean_video_start(video_es, video_type) ? 1 : 0;
    return out;
}

std::vector<std::string> playlist_uris(const std::string& playlist) {
    std::vector<std::string> uris;
    std::istringstream in(playlist);
    std::string line;
    while (std::getline(in, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (!line.empty() && line[0] != '#') uris.push_back(line);
    }
    return uris;
}

std::string decode_errors(const std::string& bytes) {
    static int counter = 0;
    const std::string path = media_root() + "/decode-" + std::to_string(::getpid()) + "-" + std::to_string(++counter) + ".ts";
    {
        std::ofstream out(path, std::ios::binary);
        out << bytes;
    }
    const std::string command = "ffmpeg -nostdin -hide_banner -v error -i '" + path + "' -f null - 2>&1";
    std::string printed;
    FILE* pipe = ::popen(command.c_str(), "r");
    if (!pipe) {
        std::filesystem::remove(path);
        return "cannot run ffmpeg";
    }
    std::array<char, 4096> buffer{};
    size_t n = 0;
    while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) printed.append(buffer.data(), n);
    const int status = ::pclose(pipe);
    std::filesystem::remove(path);
    if (status != 0 && printed.empty()) printed = "ffmpeg exit status " + std::to_string(status);
    return printed;
}

std::string ts_stream_problems(const std::string& stream, int video, int audio) {
    std::string problems;
    const TsLayout layout = scan_ts(stream);
    if (layout.pat_at.empty() || layout.pat_at.front() > 1) problems += "does not start with a PAT (or an SDT and a PAT); ";
    if (layout.cc_errors > 0) {
        problems += std::to_string(layout.cc_errors) + " continuity breaks:";
        for (const auto& t : layout.cc_error_text) problems += " " + t;
        problems += "; ";
    }
    const TsProbe probe = probe_ts(stream);
    if (!probe.ok) return problems + "unreadable: " + probe.error;
    if (probe.video_streams != video || probe.audio_streams != audio)
        problems += std::to_string(probe.video_streams) + " video and " + std::to_string(probe.audio_streams) +
                    " audio streams; ";
    int64_t last = AV_NOPTS_VALUE;
    for (const auto& p : probe.packets) {
        if (p.type != (video > 0 ? AVMEDIA_TYPE_VIDEO : AVMEDIA_TYPE_AUDIO) || p.dts == AV_NOPTS_VALUE) continue;
        if (last != AV_NOPTS_VALUE && (p.dts <= last || p.dts - last > 90000)) {
            problems += "DTS " + std::to_string(last) + " then " + std::to_string(p.dts) + "; ";
            break;
        }
        last = p.dts;
    }
    return problems;
}

}  // namespace hlsrelay::test
