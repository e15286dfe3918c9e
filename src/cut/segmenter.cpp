// Packets in, MPEG-TS or fMP4 segments out: see segmenter.hpp.
#include "cut/segmenter.hpp"

#include "cut/fmp4.hpp"

extern "C" {
#include <libavcodec/bsf.h>
#include <libavutil/mathematics.h>
}

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <stdexcept>
#include <utility>

namespace hlsrelay {

namespace {
constexpr AVRational kTimeBase90k{1, 90000};
constexpr int64_t kTicks = 90000;
constexpr int64_t kTimelineStart = 10 * kTicks;  // room for B-frame reordering before zero
// A container hands over whatever int64_t timestamps its bytes say (a hostile or broken source: any
// demuxer libavformat probes). The timestamp arithmetic here is plain int64_t on values kept within
// +-2^52 (in input units and at 90 kHz: 1600 years), so it cannot overflow: a timestamp beyond that
// counts as missing, an unwrap offset beyond it starts over.
constexpr int64_t kMaxTimestamp = int64_t{1} << 52;
constexpr int64_t kMaxPacketSpan = 3600 * kTicks;  // the longest packet duration and PTS-DTS taken
// Source-aligned cutting: a duration no source segment reaches (flush() ends each one).
constexpr double kAlignedNoCut = 1e6;
bool sane_timestamp(int64_t v) { return v != AV_NOPTS_VALUE && v >= -kMaxTimestamp && v <= kMaxTimestamp; }

bool carried_by_mpegts(const AVCodecParameters* par) {
    switch (par->codec_type) {
        case AVMEDIA_TYPE_VIDEO:
            switch (par->codec_id) {
                case AV_CODEC_ID_H264: case AV_CODEC_ID_HEVC: case AV_CODEC_ID_MPEG2VIDEO:
                case AV_CODEC_ID_MPEG1VIDEO: case AV_CODEC_ID_MPEG4: case AV_CODEC_ID_AV1:
                case AV_CODEC_ID_VC1: case AV_CODEC_ID_DIRAC: case AV_CODEC_ID_CAVS:
                    return true;
                default: return false;
            }
        case AVMEDIA_TYPE_AUDIO:
            switch (par->codec_id) {
                case AV_CODEC_ID_AAC: case AV_CODEC_ID_AAC_LATM: case AV_CODEC_ID_MP2: case AV_CODEC_ID_MP3:
                case AV_CODEC_ID_AC3: case AV_CODEC_ID_EAC3: case AV_CODEC_ID_DTS: case AV_CODEC_ID_OPUS:
                case AV_CODEC_ID_TRUEHD: case AV_CODEC_ID_S302M:
                    return true;
                default: return false;
            }
        case AVMEDIA_TYPE_SUBTITLE:
            return par->codec_id == AV_CODEC_ID_DVB_SUBTITLE || par->codec_id == AV_CODEC_ID_DVB_TELETEXT;
        case AVMEDIA_TYPE_DATA:
            return par->codec_id == AV_CODEC_ID_TIMED_ID3 || par->codec_id == AV_CODEC_ID_SMPTE_KLV;
        default: return false;
    }
}

// What fMP4 output keeps: audio and video the mp4 muxer writes (H.264, HEVC, AAC, AC-3, E-AC-3,
// Opus, MP3, ...). Subtitles and data (DVB subtitles, teletext, ID3, KLV) have no place in it.
bool carried_by_mp4(const AVCodecParameters* par) {
    if (par->codec_type != AVMEDIA_TYPE_VIDEO && par->codec_type != AVMEDIA_TYPE_AUDIO) return false;
    static const AVOutputFormat* mp4 = av_guess_format("mp4", nullptr, nullptr);
    return mp4 && avformat_query_codec(mp4, par->codec_id, FF_COMPLIANCE_NORMAL) == 1;
}

const char* container_name(Container c) { return c == Container::fmp4 ? "fMP4" : "MPEG-TS"; }

// 90 kHz ticks of `t` in `timescale`, within the range the timestamp arithmetic keeps.
int64_t ticks_90k(uint64_t t, uint32_t timescale) {
    if (timescale == 0) return 0;
    const uint64_t whole = t / timescale, part = t % timescale;
    if (whole > static_cast<uint64_t>(kMaxTimestamp / kTicks)) return kMaxTimestamp;
    return static_cast<int64_t>(whole) * kTicks + static_cast<int64_t>(part * kTicks / timescale);
}

const char* codec_name(AVCodecID id) {
    const char* n = avcodec_get_name(id);
    return n ? n : "unknown";
}

// H.264 profile/compatibility/level from the first SPS in avcC or Annex B extradata.
bool h264_sps_bytes(const AVCodecParameters* par, uint8_t out[3]) {
    const uint8_t* d = par->extradata;
    const int n = par->extradata_size;
    if (!d || n < 4) return false;
    if (d[0] == 1 && n >= 4) {  // avcC: version, profile, compat, level
        out[0] = d[1]; out[1] = d[2]; out[2] = d[3];
        return true;
    }
    for (int i = 0; i + 4 < n; ++i) {  // Annex B: find a start code followed by NAL type 7
        if (d[i] == 0 && d[i + 1] == 0 && d[i + 2] == 1 && (d[i + 3] & 0x1f) == 7 && i + 6 < n) {
            out[0] = d[i + 4]; out[1] = d[i + 5]; out[2] = d[i + 6];
            return true;
        }
    }
    return false;
}
constexpr size_t kTsPacket = 188;

int ts_pid(const std::string& ts, size_t packet) {
    const auto* p = reinterpret_cast<const uint8_t*>(ts.data()) + packet * kTsPacket;
    return (p[1] & 0x1f) << 8 | p[2];
}

// libav's muxer emits its DVB SDT before the PAT when it re-sends the tables. Players look for the
// PAT and PMT first: move the leading SDT/NIT packets behind the PAT and the PMT it points to.
void put_pat_first(std::string& ts) {
    const size_t packets = ts.size() / kTsPacket;
    size_t pat = 0;
    while (pat < packets && pat < 8 && (ts_pid(ts, pat) == 0x11 || ts_pid(ts, pat) == 0x10)) ++pat;
    if (pat == 0 || pat + 1 >= packets || ts_pid(ts, pat) != 0) return;
    const auto* p = reinterpret_cast<const uint8_t*>(ts.data()) + pat * kTsPacket;
    if (!(p[1] & 0x40) || (p[3] & 0x20)) return;  // a PAT section starting right after the header
    const size_t section = 5 + p[4];               // after the pointer field
    if (section + 12 > kTsPacket) return;
    const int pmt_pid = (p[section + 10] & 0x1f) << 8 | p[section + 11];
    if (ts_pid(ts, pat + 1) != pmt_pid) return;
    std::rotate(ts.begin(), ts.begin() + static_cast<std::ptrdiff_t>(pat * kTsPacket),
                ts.begin() + static_cast<std::ptrdiff_t>((pat + 2) * kTsPacket));
}
}  // namespace

std::optional<SystemClock::time_point> parse_date_time(const std::string& text) {
    int year = 0, month = 0, day = 0, hour = 0, minute = 0, consumed = 0;
    if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%n", &year, &month, &day, &hour, &minute, &consumed) != 5 ||
        consumed == 0)
        return std::nullopt;
    size_t i = static_cast<size_t>(consumed);
    auto digits = [&](size_t n, int& out) {
        out = 0;
        for (size_t k = 0; k < n; ++k, ++i) {
            if (i >= text.size() || text[i] < '0' || text[i] > '9') return false;
            out = out * 10 + (text[i] - '0');
        }
        return true;
    };
    int second = 0;
    if (!digits(2, second)) return std::nullopt;
    double fraction = 0;
    if (i < text.size() && (text[i] == '.' || text[i] == ',')) {
        double scale = 0.1;
        for (++i; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i, scale /= 10) fraction += (text[i] - '0') * scale;
    }
    int zone = 0;  // seconds east of UTC
    if (i < text.size() && (text[i] == '+' || text[i] == '-')) {
        const int sign = text[i] == '-' ? -1 : 1;
        ++i;
        int zh = 0, zm = 0;
        if (!digits(2, zh)) return std::nullopt;
        if (i < text.size() && text[i] == ':') ++i;
        if (i < text.size() && !digits(2, zm)) return std::nullopt;
        zone = sign * (zh * 3600 + zm * 60);
    } else if (i < text.size() && (text[i] == 'Z' || text[i] == 'z')) {
        ++i;
    }
    if (i != text.size() || month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60)
        return std::nullopt;
    std::tm tm{};
    tm.tm_year = year - 1900;
    tm.tm_mon = month - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = minute;
    tm.tm_sec = second;
    const time_t t = timegm(&tm);
    if (t == static_cast<time_t>(-1)) return std::nullopt;
    return SystemClock::from_time_t(t - zone) +
           std::chrono::duration_cast<SystemClock::duration>(std::chrono::duration<double>(fraction));
}

std::string rfc6381_codec(const AVCodecParameters* par) {
    char buf[48];
    switch (par->codec_id) {
        case AV_CODEC_ID_H264: {
            uint8_t sps[3];
            if (!h264_sps_bytes(par, sps)) {
                if (par->profile <= 0 || par->level <= 0) return "avc1.64001f";
                sps[0] = static_cast<uint8_t>(par->profile & 0xff);
                sps[1] = 0;
                sps[2] = static_cast<uint8_t>(par->level);
            }
            std::snprintf(buf, sizeof buf, "avc1.%02x%02x%02x", sps[0], sps[1], sps[2]);
            return buf;
        }
        case AV_CODEC_ID_HEVC: {
            const int profile = par->profile > 0 ? par->profile : 1;
            const int level = par->level > 0 ? par->level : 120;
            std::snprintf(buf, sizeof buf, "hvc1.%d.%d.L%d.B0", profile, profile == 2 ? 4 : 6, level);
            return buf;
        }
        case AV_CODEC_ID_AAC: {
            // libav profiles are MPEG-4 audio object types minus one (LC = 1 -> 2, HE = 4 -> 5).
            const int object_type = par->profile >= 0 ? par->profile + 1 : 2;
            std::snprintf(buf, sizeof buf, "mp4a.40.%d", object_type);
            return buf;
        }
        case AV_CODEC_ID_MP3: return "mp4a.40.34";
        case AV_CODEC_ID_MP2: return "mp4a.40.33";
        case AV_CODEC_ID_AC3: return "ac-3";
        case AV_CODEC_ID_EAC3: return "ec-3";
        case AV_CODEC_ID_OPUS: return "opus";
        case AV_CODEC_ID_AV1: return "av01.0.08M.08";
        default: return "";
    }
}

// The fMP4 passthrough's state: the source's init section and the output segment being gathered.
struct Segmenter::Fmp4Cut {
    std::string init;          // the source's init section bytes
    mp4::InitInfo info;
    uint32_t reference = 0;    // track id cuts are measured on
    uint32_t timescale = 1;
    std::string pending;       // fragments of the open output segment
    bool open = false;
    bool keyframe = true;
    uint64_t start = 0;        // decode time of the open segment (reference timescale)
    uint64_t duration = 0;     // of the reference track's samples in it
    bool have_next = false;
    uint64_t next = 0;         // where the reference track's next fragment should start
    double waited = 0;         // seconds dropped while waiting for a sync sample
    size_t leading = 0;        // styp/sidx bytes in front of `pending` (a source segment moved whole)
    int sync_start_streak = 0; // source segments in a row whose reference track began with a sync sample
    bool continues = false;    // the last output segment ended with its source segment: the next goes
                               // on from there even if it does not start with a sync sample
};

struct Segmenter::Track {
    AVMediaType type = AVMEDIA_TYPE_UNKNOWN;
    AVRational input_time_base{1, 90000};
    int64_t wrap = 0;                // 2^pts_wrap_bits in input units, 0 if none
    int64_t wrap_offset = 0;         // added to raw input timestamps to unwrap them
    int64_t last_unwrapped = AV_NOPTS_VALUE;
    int64_t last_dts = AV_NOPTS_VALUE;  // output, 90 kHz
    int64_t last_duration = 0;          // output, 90 kHz
    bool rejoined = false;              // rebased onto a shared timeline: one forward step is no jump
    // fMP4: AAC from ADTS (MPEG-TS sources) into raw frames and an AudioSpecificConfig.
    std::shared_ptr<AVBSFContext> bsf;
};

Segmenter::Segmenter(double segment_duration, Publish publish, size_t max_segment_bytes)
    : segment_duration_(segment_duration), publish_(std::move(publish)), max_segment_bytes_(max_segment_bytes) {}

Segmenter::~Segmenter() = default;

// Which input streams go into the output: the first video stream, every audio stream, and the
// subtitles/data MPEG-TS can carry. Describes what is dropped and why in `dropped`.
static void select_streams(const AVFormatContext* input, std::vector<int>& kept,
                           std::vector<std::pair<int, int>>& layout, std::vector<std::string>* dropped,
                           Container container) {
    bool video_taken = false;
    for (unsigned i = 0; i < input->nb_streams; ++i) {
        const AVStream* st = input->streams[i];
        const AVCodecParameters* par = st->codecpar;
        if (par->codec_type == AVMEDIA_TYPE_VIDEO && (st->disposition & AV_DISPOSITION_ATTACHED_PIC)) continue;
        std::string drop;
        if (par->codec_id == AV_CODEC_ID_NONE) {
            if (par->codec_type == AVMEDIA_TYPE_VIDEO || par->codec_type == AVMEDIA_TYPE_AUDIO)
                drop = "stream " + std::to_string(i) + " dropped: unknown codec";
        } else if (container == Container::fmp4 ? !carried_by_mp4(par) : !carried_by_mpegts(par)) {
            const char* type = av_get_media_type_string(par->codec_type);
            drop = std::string("stream ") + std::to_string(i) + " (" + (type ? type : "data") + " " +
                   codec_name(par->codec_id) + ") dropped: " + container_name(container) + " cannot carry it";
        } else if (par->codec_type == AVMEDIA_TYPE_VIDEO && video_taken) {
            drop = "stream " + std::to_string(i) + " (video " + codec_name(par->codec_id) +
                   ") dropped: only the first video stream is kept";
        }
        if (!drop.empty()) {
            if (dropped && std::find(dropped->begin(), dropped->end(), drop) == dropped->end() && dropped->size() < 16)
                dropped->push_back(drop);
            continue;
        }
        if (par->codec_id == AV_CODEC_ID_NONE) continue;
        if (par->codec_type == AVMEDIA_TYPE_VIDEO) video_taken = true;
        kept.push_back(static_cast<int>(i));
        layout.emplace_back(par->codec_type, par->codec_id);
    }
}

bool Segmenter::same_layout(const AVFormatContext* input) const {
    std::vector<int> kept;
    std::vector<std::pair<int, int>> layout;
    select_streams(input, kept, layout, nullptr, container_);
    return muxer_ && layout == layout_;
}

void Segmenter::open_input(const AVFormatContext* input, bool discontinuity, bool probed) {
    std::vector<int> kept;
    std::vector<std::pair<int, int>> layout;
    select_streams(input, kept, layout, &notes_, container_);
    if (kept.empty())
        throw av::SourceError(std::string("no audio or video stream that ") + container_name(container_) + " can carry");
    const bool was_passthrough = passthrough_;
    leave_passthrough();

    const bool new_layout = !muxer_ || layout != layout_;
    const bool go_on = std::exchange(continue_timeline_, false) && !new_layout && !was_passthrough;
    if (discontinuity || new_layout) {
        if (segment_open_) finish_segment(reference_end_);
        if (any_output_ && !go_on) pending_discontinuity_ = true;
        need_rebase_ = true;
        source_date_.reset();
        previous_source_date_.reset();
    } else {
        // The next source segment of the same stream. Audio only: its boundary is a clean cut,
        // taken when the output segment is near its duration.
        const double near = std::min(0.5, 0.25 * segment_duration_);
        if (segment_open_ && !has_video_ &&
            static_cast<double>(reference_end_ - segment_start_) / kTicks >= segment_duration_ - near)
            finish_segment(reference_end_);
    }
    if (next_source_date_) await_source_date_ = next_source_date_;
    next_source_date_.reset();
    date_from_segment_ = false;
    if (new_layout) {
        if (!probed && muxer_) throw av::SourceError("stream layout changed without probing");
        open_muxer(input, kept);
        layout_ = std::move(layout);
    }
    input_to_track_.assign(input->nb_streams, -1);
    for (size_t t = 0; t < kept.size(); ++t) {
        const AVStream* st = input->streams[kept[t]];
        input_to_track_[static_cast<size_t>(kept[t])] = static_cast<int>(t);
        Track& track = tracks_[t];
        if (av_cmp_q(track.input_time_base, st->time_base) != 0) {
            track.wrap_offset = 0;
            track.last_unwrapped = AV_NOPTS_VALUE;
        }
        track.input_time_base = st->time_base;
        track.wrap = st->pts_wrap_bits > 0 && st->pts_wrap_bits < 63 ? (int64_t{1} << st->pts_wrap_bits) : 0;
    }
    update_info(input, kept, probed);
}

void Segmenter::open_muxer(const AVFormatContext* input, const std::vector<int>& kept) {
    muxer_.reset();
    writer_ = std::make_unique<av::MemoryWriter>();
    AVFormatContext* raw = nullptr;
    const bool fmp4 = container_ == Container::fmp4;
    int err = avformat_alloc_output_context2(&raw, nullptr, fmp4 ? "mp4" : "mpegts", nullptr);
    if (err < 0 || !raw)
        throw std::runtime_error(std::string("cannot create the ") + container_name(container_) + " muxer: " +
                                 av::error_string(err));
    av::OutputPtr muxer(raw);
    muxer->pb = writer_->io();
    muxer->flags |= AVFMT_FLAG_CUSTOM_IO | AVFMT_FLAG_FLUSH_PACKETS;
    tracks_.assign(kept.size(), Track{});
    reference_ = -1;
    has_video_ = false;
    for (size_t t = 0; t < kept.size(); ++t) {
        const AVStream* in = input->streams[kept[t]];
        AVStream* out = avformat_new_stream(muxer.get(), nullptr);
        if (!out) throw std::bad_alloc();
        if ((err = avcodec_parameters_copy(out->codecpar, in->codecpar)) < 0)
            throw std::runtime_error("cannot copy codec parameters: " + av::error_string(err));
        out->codecpar->codec_tag = 0;
        // HEVC as 'hvc1' (parameter sets in the sample entry): what Safari plays.
        if (fmp4 && in->codecpar->codec_id == AV_CODEC_ID_HEVC) out->codecpar->codec_tag = MKTAG('h', 'v', 'c', '1');
        if (fmp4 && in->codecpar->codec_id == AV_CODEC_ID_AAC) {
            // ADTS frames (a passthrough of raw ones); its config reaches the moov with the first packet.
            const AVBitStreamFilter* filter = av_bsf_get_by_name("aac_adtstoasc");
            AVBSFContext* raw_bsf = nullptr;
            if (!filter || av_bsf_alloc(filter, &raw_bsf) < 0) throw std::bad_alloc();
            tracks_[t].bsf.reset(raw_bsf, [](AVBSFContext* b) { av_bsf_free(&b); });
            if ((err = avcodec_parameters_copy(raw_bsf->par_in, in->codecpar)) < 0 ||
                (raw_bsf->time_base_in = kTimeBase90k, err = av_bsf_init(raw_bsf)) < 0)
                throw std::runtime_error("cannot start the AAC filter: " + av::error_string(err));
        }
        out->time_base = kTimeBase90k;
        out->disposition = in->disposition;
        if (AVDictionaryEntry* lang = av_dict_get(in->metadata, "language", nullptr, 0))
            av_dict_set(&out->metadata, "language", lang->value, 0);
        tracks_[t].type = in->codecpar->codec_type;
        if (in->codecpar->codec_type == AVMEDIA_TYPE_VIDEO) {
            reference_ = static_cast<int>(t);
            has_video_ = true;
        }
    }
    if (reference_ < 0)
        for (size_t t = 0; t < tracks_.size(); ++t)
            if (tracks_[t].type == AVMEDIA_TYPE_AUDIO) { reference_ = static_cast<int>(t); break; }
    if (reference_ < 0)
        throw av::SourceError(std::string("no audio or video stream that ") + container_name(container_) + " can carry");
    av::Options opts;
    if (fmp4) {
        // Fragments only when asked (one per segment, av_write_frame(nullptr)); a moov without samples
        // (every sample in a fragment), written at the first fragment so that parameters only the
        // packets carry (AAC from ADTS, AC-3) are in it; moof-relative data offsets so that each
        // fragment stands alone.
        opts.set("movflags", "+frag_custom+empty_moov+delay_moov+default_base_moof+skip_trailer");
    } else {
        opts.set("mpegts_flags", "resend_headers");
    }
    if ((err = avformat_write_header(muxer.get(), opts.get())) < 0)
        throw std::runtime_error(std::string("cannot start the ") + container_name(container_) +
                                 " muxer: " + av::error_string(err));
    muxer_init_pending_ = fmp4;
    muxer_ = std::move(muxer);
    first_in_muxer_ = true;
    segment_open_ = false;
    last_key_pts_ = INT64_MIN;
}

void Segmenter::update_info(const AVFormatContext* input, const std::vector<int>& kept, bool probed) {
    if (!probed) return;
    StreamInfo next = info_;
    next.codecs.clear();
    next.audio_codecs.clear();
    next.video_codec.clear();
    for (int i : kept) {
        const AVStream* st = input->streams[i];
        const AVCodecParameters* par = st->codecpar;
        const std::string c = rfc6381_codec(par);
        if (par->codec_type == AVMEDIA_TYPE_VIDEO) {
            next.video_codec = codec_name(par->codec_id);
            if (par->width > 0) { next.width = par->width; next.height = par->height; }
            AVRational fr = st->avg_frame_rate.num > 0 ? st->avg_frame_rate : st->r_frame_rate;
            if (fr.num > 0 && fr.den > 0 && av_q2d(fr) < 500) next.frame_rate = av_q2d(fr);
        } else if (par->codec_type == AVMEDIA_TYPE_AUDIO) {
            next.audio_codecs.emplace_back(codec_name(par->codec_id));
        } else {
            continue;
        }
        if (!c.empty() && next.codecs.find(c) == std::string::npos)
            next.codecs += (next.codecs.empty() ? "" : ",") + c;
    }
    info_ = std::move(next);
}

// Unwraps 33-bit (or whatever the demuxer says) timestamps, maps them onto our 90 kHz timeline and
// repairs what would make it go backwards. Returns false for a packet without any timestamp.
bool Segmenter::timestamps(Track& t, const AVPacket* p, int64_t& dts, int64_t& pts) {
    auto missing = [&] {
        if (t.last_dts == AV_NOPTS_VALUE || t.last_duration <= 0) return false;
        dts = t.last_dts + t.last_duration;
        pts = dts;
        return true;
    };
    const bool have_pts = sane_timestamp(p->pts);
    const int64_t raw_dts = sane_timestamp(p->dts) ? p->dts : have_pts ? p->pts : AV_NOPTS_VALUE;
    if (raw_dts == AV_NOPTS_VALUE) return missing();
    int64_t unwrapped = raw_dts + t.wrap_offset;
    if (t.wrap > 0 && t.last_unwrapped != AV_NOPTS_VALUE) {
        if (unwrapped < t.last_unwrapped - t.wrap / 2) { t.wrap_offset += t.wrap; unwrapped += t.wrap; }
        else if (unwrapped > t.last_unwrapped + t.wrap / 2) { t.wrap_offset -= t.wrap; unwrapped -= t.wrap; }
    }
    if (!sane_timestamp(unwrapped)) {  // wraps that only ever go one way (hostile): start over
        t.wrap_offset = 0;
        unwrapped = raw_dts;
    }
    t.last_unwrapped = unwrapped;
    int64_t unwrapped_pts = have_pts ? p->pts + t.wrap_offset : unwrapped;
    if (t.wrap > 0) {
        if (unwrapped_pts < unwrapped - t.wrap / 2) unwrapped_pts += t.wrap;
        else if (unwrapped_pts > unwrapped + t.wrap / 2) unwrapped_pts -= t.wrap;
    }
    // av_rescale_q gives INT64_MIN when the result does not fit (a time base of seconds, say).
    const int64_t in_dts = av_rescale_q(unwrapped, t.input_time_base, kTimeBase90k);
    if (!sane_timestamp(in_dts)) return missing();
    int64_t in_pts = av_rescale_q(unwrapped_pts, t.input_time_base, kTimeBase90k);
    if (!sane_timestamp(in_pts) || in_pts - in_dts > kMaxPacketSpan || in_pts < in_dts) in_pts = in_dts;

    if (need_rebase_) {
        const int64_t next = next_timeline_start();
        offset_ = next - in_dts;
        if (shared_timeline_) {
            const int64_t shared = shared_timeline_(offset_, in_dts, any_output_ ? timeline_end_ : INT64_MIN);
            if (shared != offset_) {
                offset_ = shared;
                for (auto& other : tracks_) other.rejoined = true;  // it may go on past a hole in its own output
            }
        }
        if (!keep_anchor_) {
            anchor_wall_ = SystemClock::now();
            anchor_pts_ = in_dts + offset_;
        }
        keep_anchor_ = false;
        need_rebase_ = false;
    }
    dts = in_dts + offset_;
    pts = in_pts + offset_;
    // A jump in the source's clock (a reset, an encoder restart without a tag): carry the timeline
    // on from where it was instead of leaving a hole or going backwards.
    const int64_t jump = std::max<int64_t>(10 * kTicks, static_cast<int64_t>(3 * segment_duration_ * kTicks));
    const bool rejoined = std::exchange(t.rejoined, false);
    if (t.last_dts != AV_NOPTS_VALUE && (dts < t.last_dts - kTicks || (dts > t.last_dts + jump && !rejoined))) {
        const int64_t shift = std::max(next_timeline_start(), t.last_dts + std::max<int64_t>(t.last_duration, 1)) - dts;
        offset_ += shift;
        dts += shift;
        pts += shift;
        ++repairs_;
    }
    if (t.last_dts != AV_NOPTS_VALUE && dts <= t.last_dts) {  // non-monotonic DTS
        const int64_t shift = t.last_dts + 1 - dts;
        dts += shift;
        pts += shift;
        ++repairs_;
    }
    if (pts < dts) pts = dts;
    return true;
}

void Segmenter::write(AVPacket* p) {
    struct Unref {
        AVPacket* p;
        ~Unref() { av_packet_unref(p); }
    } unref{p};
    if (!muxer_ || p->stream_index < 0 || static_cast<size_t>(p->stream_index) >= input_to_track_.size()) return;
    const int track_index = input_to_track_[static_cast<size_t>(p->stream_index)];
    if (track_index < 0) return;
    Track& t = tracks_[static_cast<size_t>(track_index)];
    int64_t dts = 0, pts = 0;
    if (!timestamps(t, p, dts, pts)) return;
    int64_t duration = p->duration > 0 && p->duration <= kMaxTimestamp
                           ? av_rescale_q(p->duration, t.input_time_base, kTimeBase90k) : 0;
    if (duration < 0 || duration > kMaxPacketSpan) duration = 0;  // not representable, or absurd
    if (duration <= 0 && t.last_dts != AV_NOPTS_VALUE) duration = std::min<int64_t>(dts - t.last_dts, kTicks);

    const bool is_reference = track_index == reference_;
    const bool key = (p->flags & AV_PKT_FLAG_KEY) != 0;
    if (is_reference && has_video_ && key) {
        if (last_key_pts_ != INT64_MIN && pts > last_key_pts_) last_gop_ = static_cast<double>(pts - last_key_pts_) / kTicks;
        last_key_pts_ = pts;
    }
    if (!segment_open_) {
        // A segment starts with a keyframe; with video, everything before the first one is dropped.
        if (has_video_ && !(is_reference && key)) return;
        if (!is_reference) return;
        start_segment(pts, true);
    } else if (is_reference) {
        const double elapsed = static_cast<double>(pts - segment_start_) / kTicks;
        const double tolerance = std::min(0.25, 0.1 * segment_duration_);
        const double limit = target_duration_ > 0 ? target_duration_ + 0.499
                             : std::max({2.0 * segment_duration_, target_hint_ + 0.499, segment_duration_ + 4.0});
        bool cut = false, cut_keyframe = true;
        // Audio only, from a segmented source: its boundaries are the cuts (open_input) unless none
        // comes near the duration.
        const double early = !has_video_ && segmented_ ? -std::min(0.5, 0.25 * segment_duration_) : tolerance;
        if ((!has_video_ || key) && elapsed >= segment_duration_ - early) {
            cut = true;
        } else if (has_video_ && key && target_duration_ > 0 && elapsed > 0.5 &&
                   elapsed + last_gop_ > target_duration_ + 0.499) {
            cut = true;  // the next GOP would overrun the target duration: cut early, still on a keyframe
        } else if (elapsed >= limit) {
            cut = true;  // a GOP longer than the target duration: the playlist's promise comes first
            cut_keyframe = !has_video_ || key;
        }
        if (cut && !aligned_) {
            finish_segment(pts);
            start_segment(pts, cut_keyframe);
        }
    }
    if (part_fresh_ && segment_open_ && is_reference) {  // the first frame after end_source_part()
        part_independent_ = !has_video_ || key;
        part_fresh_ = false;
    }
    if (part_target_ > 0 && segment_open_ && is_reference && pts > part_start_) {
        // The part ends before this frame when the frame would take it past the part target.
        const int64_t frame = duration > 0 ? duration : t.last_duration;
        if (static_cast<double>(pts + frame - part_start_) / kTicks > part_target_ + 1e-9) {
            finish_part(pts);
            part_start_ = pts;
            part_independent_ = !has_video_ || key;
        }
    }
    if (segment_bytes_ > max_segment_bytes_) {
        // Timestamps that hardly advance (repaired one tick at a time), or a reference stream that
        // stopped while another goes on, never reach a cut by time: memory stays bounded.
        finish_segment(std::max(pts, reference_end_));
        start_segment(pts, is_reference && key);
    }
    segment_bytes_ += static_cast<size_t>(std::max(p->size, 0));

    p->stream_index = track_index;
    p->dts = dts;
    p->pts = pts;
    p->duration = duration;
    p->pos = -1;
    p->time_base = kTimeBase90k;
    t.last_dts = dts;
    if (duration > 0) t.last_duration = duration;
    timeline_end_ = std::max(timeline_end_, dts + std::max<int64_t>(duration, 1));
    presentation_end_ = std::max(presentation_end_, pts + std::max<int64_t>(duration > 0 ? duration : t.last_duration, 1));
    reorder_ = std::max(reorder_, std::min(pts - dts, kTicks));
    if (is_reference && await_source_date_) {
        source_date_ = SourceDate{*await_source_date_, pts};
        await_source_date_.reset();
        date_from_segment_ = true;
    } else if (is_reference && date_from_segment_ && source_date_ && pts < source_date_->pts) {
        source_date_->pts = pts;  // the source's date is that of its segment's earliest picture
    }
    if (is_reference) {
        reference_end_ = std::max(reference_end_, pts + std::max<int64_t>(duration, 1));
        if (pts >= segment_start_ - kTicks) media_start_ = std::min(media_start_, pts);  // leading pictures, not damage
    }
    if (t.bsf) {  // one packet in, at most one out, with its properties
        if (av_bsf_send_packet(t.bsf.get(), p) < 0) return;
        if (av_bsf_receive_packet(t.bsf.get(), p) < 0) return;
    }
    if (container_ == Container::fmp4) {  // the mp4 muxer chose its own time bases (audio: the sample rate)
        const AVRational tb = muxer_->streams[track_index]->time_base;
        av_packet_rescale_ts(p, kTimeBase90k, tb);
        p->time_base = tb;
    }
    const int err = av_write_frame(muxer_.get(), p);
    if (err < 0) throw std::runtime_error("muxing failed: " + av::error_string(err));
}

void Segmenter::start_segment(int64_t pts, bool keyframe) {
    if (!first_in_muxer_ && container_ == Container::ts) av_opt_set(muxer_->priv_data, "mpegts_flags", "resend_headers", 0);
    first_in_muxer_ = false;
    segment_open_ = true;
    segment_bytes_ = 0;
    segment_keyframe_ = keyframe;
    segment_start_ = pts;
    media_start_ = pts;
    reference_end_ = pts;
    part_start_ = pts;
    part_independent_ = keyframe || !has_video_;
    part_fresh_ = false;
    parts_in_segment_ = 0;
    parts_duration_ = 0;
}

// What the muxer wrote since the last take, without the init section the fMP4 muxer writes first
// (ftyp + moov, kept as the output's init section).
std::string Segmenter::take_muxed() {
    std::string data = writer_->take();
    if (container_ == Container::fmp4 && muxer_init_pending_ && !data.empty()) {
        size_t init_end = 0;
        if (auto boxes = mp4::top_level_boxes(data))
            for (const auto& b : *boxes)
                if (b.type == mp4::fourcc("moov")) init_end = b.end();
        if (init_end == 0) throw std::runtime_error("the mp4 muxer wrote no moov");
        set_init(data.substr(0, init_end));
        data.erase(0, init_end);
        muxer_init_pending_ = false;
        if (data.empty()) {  // delay_moov: the first flush wrote the moov alone, the fragment follows
            av_write_frame(muxer_.get(), nullptr);
            data = writer_->take();
        }
    }
    return data;
}

// LL-HLS: the open part ends at `end_pts` (the frame that begins the next one, or the segment's end).
void Segmenter::finish_part(int64_t end_pts, bool last) {
    av_write_frame(muxer_.get(), nullptr);  // PES data (fMP4: a fragment) up to here into this part
    CutPart part;
    part.data = take_muxed();
    if (part.data.empty()) return;  // nothing muxed yet: the part goes on
    const int64_t start = parts_in_segment_ == 0 ? std::min(media_start_, part_start_) : part_start_;
    part.duration = std::max(0.001, static_cast<double>(end_pts - start) / kTicks);
    part.independent = part_independent_;
    part.last = last;
    if (container_ == Container::fmp4) {
        part.format = SegmentFormat::fmp4;
        part.init = init_;
    }
    if (parts_in_segment_ == 0) {
        // The first part opens the segment: its discontinuity and date are the segment's.
        if (container_ == Container::ts) put_pat_first(part.data);
        part.first = true;
        part.discontinuity = segment_discontinuity_ = std::exchange(pending_discontinuity_, false);
        part.program_date_time = segment_date_ = date_of(media_start_, part.duration, false);
        part.dated_by_source = segment_dated_by_source_ = last_date_from_source_;
    }
    ++parts_in_segment_;
    parts_duration_ += part.duration;
    bytes_out_ += static_cast<int64_t>(part.data.size());
    parts_cut_ = true;
    publish_part_(std::move(part));
}

void Segmenter::end_source_part() {
    if (part_target_ <= 0 || !segment_open_ || reference_end_ <= part_start_) return;
    if (static_cast<double>(reference_end_ - part_start_) / kTicks < kMinPartShare * part_target_) return;
    finish_part(reference_end_);
    part_start_ = reference_end_;
    part_fresh_ = true;
}

void Segmenter::finish_segment(int64_t end_pts) {
    if (!segment_open_) return;
    // The media in it: its earliest reference PTS to the end of its latest frame (`end_pts`, the
    // next segment's keyframe, only when no frame says where it ends).
    const int64_t end = reference_end_ > segment_start_ ? reference_end_ : end_pts;
    if (part_target_ > 0) {
        finish_part(std::max(end, part_start_ + 1), true);  // the last part
        segment_open_ = false;
        if (parts_in_segment_ == 0) return;  // nothing was muxed: no segment
        CutSegment seg;
        seg.from_parts = true;
        seg.duration = parts_duration_;
        seg.keyframe_start = segment_keyframe_;
        seg.discontinuity = segment_discontinuity_;
        seg.program_date_time = segment_date_;
        seg.dated_by_source = segment_dated_by_source_;
        if (container_ == Container::fmp4) {
            seg.format = SegmentFormat::fmp4;
            seg.init = init_;
        }
        parts_in_segment_ = 0;
        emit(std::move(seg));
        return;
    }
    segment_open_ = false;
    av_write_frame(muxer_.get(), nullptr);  // flush buffered PES data (fMP4: the fragment) into this segment
    CutSegment seg;
    seg.data = take_muxed();
    // Nothing was muxed (the muxer refused the packet that opened the segment, and the worker flushes
    // after that error): a 0-byte segment must not be listed. A pending discontinuity goes to the next.
    if (seg.data.empty()) return;
    if (container_ == Container::fmp4) {
        seg.format = SegmentFormat::fmp4;
        seg.init = init_;
    } else {
        put_pat_first(seg.data);
    }
    seg.duration = std::max(0.001, static_cast<double>(end - media_start_) / kTicks);
    seg.keyframe_start = segment_keyframe_;
    seg.program_date_time = date_of(media_start_, seg.duration, false);
    seg.dated_by_source = last_date_from_source_;
    emit(std::move(seg));
}

void Segmenter::flush() {
    if (segment_open_) finish_segment(reference_end_);
    if (cutter_) cutter_->flush();
    if (fmp4_) finish_fmp4();
}

// Where the output timeline goes on after a break: behind the end of every frame presented so far
// on every track, with room for the DTS of a stream with B-frames to lag its PTS, so that no track's
// first DTS or PTS after the break lands on (or before) its last one before it.
int64_t Segmenter::next_timeline_start() const {
    if (!any_output_ && timeline_end_ == 0) return kTimelineStart;
    return std::max(timeline_end_, presentation_end_) + reorder_;
}

void Segmenter::set_source_date(const std::optional<std::string>& date) {
    segmented_ = true;
    next_source_date_.reset();
    if (date) next_source_date_ = parse_date_time(*date);
}

// The date of the media at `pts`: on the source's clock when it has one (the source's PDT), else by
// arrival, anchored at a break and moved back whenever a segment would end after the moment it is
// published.
SystemClock::time_point Segmenter::date_of(int64_t pts, double duration, bool ts33) {
    auto seconds = [](int64_t ticks) {
        return std::chrono::duration_cast<SystemClock::duration>(
            std::chrono::duration<double>(static_cast<double>(ticks) / kTicks));
    };
    auto diff = [&](int64_t from, int64_t to) { return ts33 ? ts::ts_diff(from, to) : to - from; };
    last_date_from_source_ = true;
    if (source_date_ && previous_source_date_ && diff(source_date_->pts, pts) < 0) {
        const int64_t d = diff(previous_source_date_->pts, pts);
        if (d >= 0 && d < 600 * kTicks) return previous_source_date_->wall + seconds(d);
    }
    if (source_date_) {
        const int64_t d = diff(source_date_->pts, pts);
        if (d > -600 * kTicks && d < 600 * kTicks) return source_date_->wall + seconds(d);
        source_date_.reset();  // a timeline the source's date does not describe
    }
    last_date_from_source_ = false;
    SystemClock::time_point date = anchor_wall_ + seconds(diff(anchor_pts_, pts));
    const SystemClock::time_point latest =
        SystemClock::now() - std::chrono::duration_cast<SystemClock::duration>(std::chrono::duration<double>(duration));
    if (date > latest) {
        anchor_wall_ -= date - latest;
        date = latest;
    }
    return date;
}

double Segmenter::cut_limit() const {
    if (aligned_) return kAlignedNoCut;
    return target_duration_ > 0 ? target_duration_ + 0.499
                                : std::max({2.0 * segment_duration_, target_hint_ + 0.499, segment_duration_ + 4.0});
}

// The remux path takes over: what the passthrough holds is published, and the two timelines differ.
void Segmenter::leave_passthrough() {
    if (!passthrough_) return;
    if (cutter_) cutter_->flush();
    if (fmp4_) finish_fmp4();
    passthrough_ = false;
    cutter_.reset();
    fmp4_.reset();
    source_date_.reset();  // its timestamps were the source's own: not the remux's timeline
    previous_source_date_.reset();
    if (any_output_) pending_discontinuity_ = true;
}

// Stream parameters read from the TS itself; the bandwidths stay the window's.
void Segmenter::apply(ts::StreamParams&& params) {
    info_.codecs = std::move(params.codecs);
    info_.video_codec = std::move(params.video_codec);
    info_.audio_codecs = std::move(params.audio_codecs);
    if (params.width > 0) {
        info_.width = params.width;
        info_.height = params.height;
    }
    if (params.frame_rate > 0) info_.frame_rate = params.frame_rate;
}

// Reads the stream parameters of a new layout (codecs, resolution, frame rate for the master
// playlist) through libavformat and checks that the passthrough would keep every stream as the
// remux path would. Only at a start, a discontinuity or a change of the stream layout.
bool Segmenter::probe_passthrough(const std::string& data, const ts::Program& program) {
    if (program.reference_pid() < 0) return false;
    if (auto params = ts::describe(data, program)) {  // H.264 and the usual audio: no decoding needed
        apply(std::move(*params));
        return true;
    }
    av::MemoryReader reader(data);
    AVFormatContext* raw = avformat_alloc_context();
    if (!raw) throw std::bad_alloc();
    raw->pb = reader.io();
    raw->flags |= AVFMT_FLAG_CUSTOM_IO;
    av::Options opts;
    opts.set("analyzeduration", "500000");  // the first half second answers everything the master playlist says
    opts.set("protocol_whitelist", "");     // bytes from memory: nothing else may be opened
    int err = avformat_open_input(&raw, "", av_find_input_format("mpegts"), opts.get());
    if (err < 0) return false;
    av::InputPtr input(raw);
    if (avformat_find_stream_info(input.get(), nullptr) < 0) return false;
    std::vector<int> kept;
    std::vector<std::pair<int, int>> layout;
    select_streams(input.get(), kept, layout, nullptr, Container::ts);
    int audio_video = 0;
    for (unsigned i = 0; i < input->nb_streams; ++i) {
        const auto type = input->streams[i]->codecpar->codec_type;
        if (type == AVMEDIA_TYPE_VIDEO || type == AVMEDIA_TYPE_AUDIO) ++audio_video;
    }
    int kept_audio_video = 0;
    for (int i : kept) {
        const auto type = input->streams[i]->codecpar->codec_type;
        if (type == AVMEDIA_TYPE_VIDEO || type == AVMEDIA_TYPE_AUDIO) ++kept_audio_video;
    }
    if (kept_audio_video == 0 || kept_audio_video != audio_video) return false;  // the remux path drops some
    update_info(input.get(), kept, true);
    return true;
}

bool Segmenter::write_ts_segment(std::string& data, bool discontinuity, bool independent) {
    if (container_ != Container::ts) return false;  // the TS passthrough is MPEG-TS to MPEG-TS only
    if (part_target_ > 0) return false;             // parts are cut by the remux path
    if (data.size() > ts::kMaxFeedBytes) return false;  // the remux path takes what the cutter cannot index
    std::optional<ts::Program> program = ts::find_program(data);
    if (!program) {
        // A segment without its own tables continues the program of the one before.
        if (!passthrough_ || discontinuity || data.empty() || data[0] != 0x47) return false;
        program = cutter_->program();
    }
    const bool new_layout = !passthrough_ || !cutter_->program() || !cutter_->program()->same_layout(*program);
    if ((new_layout || discontinuity) && !probe_passthrough(data, *program)) return false;
    if (fmp4_) leave_passthrough();  // the other passthrough: its timeline is another one
    bool entered = false;            // from the remux path (or the start): another timeline
    if (!passthrough_) {
        if (segment_open_) finish_segment(reference_end_);
        muxer_.reset();  // the remux path starts over (and probes) if it is needed again
        writer_.reset();
        layout_.clear();
        // Source-aligned: no cut inside a source segment; flush() ends each one.
        cutter_ = std::make_unique<ts::Cutter>(aligned_ ? kAlignedNoCut : segment_duration_, [this](ts::Cut&& cut) { publish_cut(std::move(cut)); },
                                               pool_, max_segment_bytes_);
        passthrough_ = true;
        discontinuity = true;
        entered = true;
    }
    const bool go_on = std::exchange(continue_timeline_, false) && !new_layout && !entered;
    if (discontinuity || new_layout) {
        cutter_->flush();
        if (any_output_ && !go_on) pending_discontinuity_ = true;
        need_rebase_ = true;  // the wall-clock anchor of EXT-X-PROGRAM-DATE-TIME starts over
        source_date_.reset();
        previous_source_date_.reset();
    }
    if (next_source_date_) {  // this source segment's first PTS is the source's date
        if (auto pts = ts::earliest_pts(data, program->reference_pid())) {
            // Media of earlier source segments still to be cut keeps the date its own segment gave.
            previous_source_date_ = source_date_;
            source_date_ = SourceDate{*next_source_date_, *pts};
        }
        next_source_date_.reset();
    }
    cutter_->set_program(std::move(*program));
    const ts::FeedStats stats = cutter_->feed(std::move(data), discontinuity || new_layout, independent, cut_limit());
    data.clear();
    if (stats.bad_packets > 0) {
        const std::string note = "damaged MPEG-TS packets dropped";
        if (std::find(notes_.begin(), notes_.end(), note) == notes_.end() && notes_.size() < 16) notes_.push_back(note);
    }
    return true;
}

void Segmenter::publish_cut(ts::Cut&& cut) {
    CutSegment seg;
    seg.data = std::move(cut.data);
    put_pat_first(seg.data);
    seg.duration = std::max(0.001, cut.duration);
    if (cut.params_changed && cutter_ && cutter_->program()) {
        if (auto params = ts::describe(seg.data, *cutter_->program())) apply(std::move(*params));  // the master playlist follows
    }
    if (cut.timeline_break && !cut.params_changed) {
        ++repairs_;
    }
    if (cut.timeline_break) {
        if (any_output_) pending_discontinuity_ = true;
        need_rebase_ = true;
    }
    if (need_rebase_) {
        // The segment has fully arrived: it began about its duration ago.
        anchor_wall_ = SystemClock::now() - std::chrono::duration_cast<SystemClock::duration>(
                                                std::chrono::duration<double>(seg.duration));
        anchor_pts_ = cut.start_pts;
        need_rebase_ = false;
    }
    seg.keyframe_start = cut.keyframe_start;
    seg.program_date_time = date_of(cut.start_pts, seg.duration, true);
    seg.dated_by_source = last_date_from_source_;
    emit(std::move(seg));
}

// Both paths end here: the pending discontinuity goes with the segment, the first segment fixes the
// target duration.
void Segmenter::emit(CutSegment&& seg) {
    if (!seg.from_parts) {  // a segment of parts took its discontinuity with its first part
        seg.discontinuity = pending_discontinuity_;
        pending_discontinuity_ = false;
    }
    any_output_ = true;
    if (target_duration_ == 0)
        target_duration_ = std::max(target_duration_for(aligned_ && target_hint_ > 0 ? target_hint_ : segment_duration_),
                                    target_duration_for(seg.duration));
    bytes_out_ += static_cast<int64_t>(seg.data.size());  // a segment of parts: counted with them
    publish_(std::move(seg));
}

void Segmenter::restart_timeline() {
    flush();
    // Continuous timestamps and unchanged encoding: no discontinuity tag, and the wall-clock anchor
    // of EXT-X-PROGRAM-DATE-TIME stays, since the output timeline goes on without a gap.
    need_rebase_ = true;
    keep_anchor_ = true;
    for (auto& t : tracks_) {
        t.last_unwrapped = AV_NOPTS_VALUE;
        t.wrap_offset = 0;
    }
}

void Segmenter::note(std::string text) {
    if (std::find(notes_.begin(), notes_.end(), text) == notes_.end() && notes_.size() < 16) notes_.push_back(std::move(text));
}

// The init section of fMP4 output: a new version only when its bytes change.
void Segmenter::set_init(std::string bytes) {
    if (init_ && init_->data == bytes) return;
    auto init = std::make_shared<InitSection>();
    init->version = init_ ? init_->version + 1 : init_version_;
    init->data = std::move(bytes);
    init_version_ = init->version + 1;
    init_ = std::move(init);
}

// Reads the stream parameters of a new fMP4 source init section (codecs, resolution, frame rate for
// the master playlist) through libavformat, from the init section and the first media segment.
bool Segmenter::probe_fmp4(const std::string& init, std::string_view media) {
    std::string bytes;
    bytes.reserve(init.size() + media.size());
    bytes.append(init).append(media);
    av::MemoryReader reader(bytes);
    AVFormatContext* raw = avformat_alloc_context();
    if (!raw) throw std::bad_alloc();
    raw->pb = reader.io();
    raw->flags |= AVFMT_FLAG_CUSTOM_IO;
    av::Options opts;
    opts.set("analyzeduration", "500000");
    opts.set("protocol_whitelist", "");  // bytes from memory: nothing else may be opened
    if (avformat_open_input(&raw, "", av_find_input_format("mp4"), opts.get()) < 0) return false;
    av::InputPtr input(raw);
    if (avformat_find_stream_info(input.get(), nullptr) < 0) return false;
    std::vector<int> kept;
    std::vector<std::pair<int, int>> layout;
    std::vector<std::string> dropped;
    select_streams(input.get(), kept, layout, &dropped, Container::fmp4);
    if (kept.empty() || !dropped.empty()) return false;  // the remux path would drop some: it decides
    update_info(input.get(), kept, true);
    return true;
}

// Publishes the open output segment of the fMP4 passthrough.
void Segmenter::finish_fmp4() {
    Fmp4Cut& f = *fmp4_;
    if (!f.open) return;
    f.open = false;
    if (f.pending.empty()) return;
    CutSegment seg;
    seg.data = std::move(f.pending);
    f.pending = std::string();
    f.leading = 0;
    seg.format = SegmentFormat::fmp4;
    seg.init = init_;
    seg.duration = std::max(0.001, static_cast<double>(f.duration) / f.timescale);
    seg.keyframe_start = f.keyframe;
    const int64_t start = ticks_90k(f.start, f.timescale);
    if (need_rebase_) {  // the segment has fully arrived: it began about its duration ago
        anchor_wall_ = SystemClock::now() -
                       std::chrono::duration_cast<SystemClock::duration>(std::chrono::duration<double>(seg.duration));
        anchor_pts_ = start;
        need_rebase_ = false;
    }
    seg.program_date_time = date_of(start, seg.duration, false);
    seg.dated_by_source = last_date_from_source_;
    emit(std::move(seg));
}

bool Segmenter::write_fmp4_segment(const std::string& init, std::string& data, bool discontinuity, bool independent) {
    if (container_ != Container::fmp4 || init.empty() || part_target_ > 0) return false;
    const bool prefixed = data.size() >= init.size() && data.compare(0, init.size(), init) == 0;
    std::string_view media(data);
    if (prefixed) media.remove_prefix(init.size());
    const bool new_init = !fmp4_ || fmp4_->init != init;
    std::optional<mp4::InitInfo> parsed;
    std::string why;
    if (new_init) {
        parsed = mp4::parse_init(init, &why);
        if (parsed && !parsed->fragmented) why = "the init section has no mvex (not fragmented)", parsed.reset();
        if (parsed) {
            for (const auto& t : parsed->tracks) {
                if (t.sample_entry == mp4::fourcc("encv") || t.sample_entry == mp4::fourcc("enca")) {
                    why = "encrypted samples (" + mp4::fourcc_text(t.sample_entry) + ")";
                } else if (!t.video() && !t.audio()) {
                    why = "a track it does not pass (" + mp4::fourcc_text(t.handler) + ")";
                } else if (t.timescale == 0) {
                    why = "a track without a timescale";
                }
                if (!why.empty()) break;
            }
            if (!why.empty()) parsed.reset();
        }
        if (!parsed) {
            note("fMP4 passthrough not possible, remuxed: " + why);
            return false;
        }
    }
    const mp4::InitInfo& info = new_init ? *parsed : fmp4_->info;
    auto m = mp4::parse_media(media, info, &why);
    if (!m) {
        note("fMP4 passthrough not possible, remuxed: " + why);
        return false;
    }
    if (new_init && !probe_fmp4(init, media)) {
        note("fMP4 passthrough not possible, remuxed: libavformat does not read every stream of the source");
        return false;
    }
    if (new_init) {  // the master playlist names the sample entry the passed init section has
        for (const auto& t : parsed->tracks) {
            const std::string entry = mp4::fourcc_text(t.sample_entry);
            const std::string usual = entry == "hev1" ? "hvc1." : entry == "avc3" ? "avc1." : "";
            if (usual.empty()) continue;
            if (const size_t at = info_.codecs.find(usual); at != std::string::npos)
                info_.codecs.replace(at, usual.size(), entry + ".");
        }
    }
    const mp4::TrackInfo& ref = info.tracks[static_cast<size_t>(info.reference)];

    bool entered = false;  // from the remux path, the TS passthrough or the start: another timeline
    if (!passthrough_ || !fmp4_) {
        if (cutter_) leave_passthrough();  // the TS passthrough's timeline is another one
        if (segment_open_) finish_segment(reference_end_);
        muxer_.reset();  // the remux path starts over (and probes) if it is needed again
        writer_.reset();
        layout_.clear();
        passthrough_ = true;
        discontinuity = true;
        entered = true;
    }
    bool changed_init = false;
    if (new_init) {
        if (fmp4_) finish_fmp4();
        fmp4_ = std::make_unique<Fmp4Cut>();
        fmp4_->init = init;
        fmp4_->info = std::move(*parsed);
        fmp4_->reference = ref.id;
        fmp4_->timescale = ref.timescale;
        const int64_t before = init_ ? init_->version : -1;
        set_init(init);
        if (init_->version != before) discontinuity = changed_init = true;
    }
    Fmp4Cut& f = *fmp4_;
    const bool go_on = std::exchange(continue_timeline_, false) && !entered && !changed_init;
    if (discontinuity) {
        finish_fmp4();
        if (any_output_ && !go_on) pending_discontinuity_ = true;
        need_rebase_ = true;
        source_date_.reset();
        previous_source_date_.reset();
        f.have_next = false;
        f.waited = 0;
        f.sync_start_streak = 0;
        f.continues = false;
    }
    if (next_source_date_) {  // this source segment's first decode time is the source's date
        for (const auto& frag : m->fragments)
            if (const auto* r = frag.run(f.reference); r && r->has_decode_time) {
                previous_source_date_ = source_date_;
                source_date_ = SourceDate{*next_source_date_, ticks_90k(r->decode_time, f.timescale)};
                break;
            }
        next_source_date_.reset();
    }

    const auto& frags = m->fragments;
    const size_t n = frags.size();
    size_t run_begin = 0;  // fragments [run_begin, i) go to the open segment
    size_t run_bytes = 0;
    bool moved = false;
    auto take_run = [&](size_t end) {
        if (end <= run_begin) return;
        if (f.pending.empty() && run_begin == 0 && end == n && m->contiguous) {
            // The whole source segment: moved, not copied.
            if (prefixed) data.erase(0, init.size());
            f.pending = std::move(data);
            f.leading = m->leading;
            moved = true;
        } else {
            // A segment moved whole gets more fragments: its styp/sidx described it alone.
            if (f.leading > 0) f.pending.erase(0, std::exchange(f.leading, 0));
            for (size_t k = run_begin; k < end; ++k)
                f.pending.append(media.substr(frags[k].begin, frags[k].end - frags[k].begin));
        }
        run_begin = end;
        run_bytes = 0;
    };
    const double tolerance = std::min(0.25, 0.1 * segment_duration_);
    const int64_t jump = std::max<int64_t>(10 * kTicks, static_cast<int64_t>(3 * segment_duration_ * kTicks));
    bool started_with_sync = false, seen_reference = false;
    for (size_t i = 0; i < n; ++i) {
        const mp4::TrackRun* r = frags[i].run(f.reference);
        if (r && !seen_reference) {
            seen_reference = true;
            started_with_sync = r->first_sync;
        }
        const bool has_ref = r && r->samples > 0;
        if (has_ref && r->has_decode_time && f.have_next) {
            // The source's clock jumped without a discontinuity tag: a break in the output too.
            const int64_t gap = ticks_90k(r->decode_time, f.timescale) - ticks_90k(f.next, f.timescale);
            if (gap < -kTicks || gap > jump) {
                take_run(i);
                finish_fmp4();
                ++repairs_;
                if (any_output_) pending_discontinuity_ = true;
                need_rebase_ = true;
                source_date_.reset();
                previous_source_date_.reset();
            }
        }
        const bool sync = has_ref && r->first_sync;
        if (!f.open) {
            // A segment starts with a sync sample of the reference track: what comes before the first
            // one is dropped (as long as a segment may last, then it is taken as it is).
            if (!sync && !f.continues && f.waited < cut_limit()) {
                take_run(i);
                run_begin = i + 1;
                if (has_ref) f.waited += static_cast<double>(r->duration) / f.timescale;
                if (has_ref) {
                    f.next = (r->has_decode_time ? r->decode_time : f.next) + r->duration;
                    f.have_next = true;
                }
                continue;
            }
            f.open = true;
            f.continues = false;
            f.keyframe = sync;
            f.start = has_ref && r->has_decode_time ? r->decode_time : f.next;
            f.duration = 0;
            f.waited = 0;
        } else if (has_ref) {
            const double elapsed = static_cast<double>(f.duration) / f.timescale;
            if ((sync && elapsed >= segment_duration_ - tolerance) || elapsed >= cut_limit() ||
                f.pending.size() + run_bytes > max_segment_bytes_) {
                take_run(i);
                finish_fmp4();
                f.open = true;
                f.keyframe = sync;
                f.start = r->has_decode_time ? r->decode_time : f.next;
                f.duration = 0;
            }
        }
        run_bytes += frags[i].end - frags[i].begin;
        if (has_ref) {
            f.duration += r->duration;
            f.next = (r->has_decode_time ? r->decode_time : f.next) + r->duration;
            f.have_next = true;
        }
    }
    take_run(n);
    if (!moved) data.clear();
    // The next source segment starts with a sync sample when the source says so
    // (EXT-X-INDEPENDENT-SEGMENTS) or when the last two did, as the TS passthrough judges it: then a
    // segment that is long enough ends here, published now rather than when the next sync fragment
    // arrives. Should the next not start with one after all, it goes on from here all the same (a
    // segment that does not start with a keyframe, nothing dropped).
    f.sync_start_streak = seen_reference ? (started_with_sync ? f.sync_start_streak + 1 : 0) : f.sync_start_streak;
    if ((independent || f.sync_start_streak >= 2) && f.open &&
        static_cast<double>(f.duration) / f.timescale >= segment_duration_ - tolerance) {
        finish_fmp4();
        f.continues = !independent;
    }
    return true;
}

}  // namespace hlsrelay
