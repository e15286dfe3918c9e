// The MPEG-TS passthrough cutter on real ffmpeg-made HLS segments, and on damaged input.
#include "engine_fixture.hpp"
#include "ts_probe.hpp"

#include "cut/segmenter.hpp"
#include "cut/ts_cutter.hpp"

#include <cstdint>
#include <fstream>
#include <limits>
#include <random>
#include <set>

#include "ingest/m3u8.hpp"

using namespace hlsrelay;
using namespace hlsrelay::test;

namespace {
std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

struct Collector {
    std::vector<ts::Cut> cuts;
    ts::Cutter::Emit emit() {
        return [this](ts::Cut&& c) { cuts.push_back(std::move(c)); };
    }
};

int pid_at(const std::string& data, size_t packet) {
    return (static_cast<uint8_t>(data[packet * 188 + 1]) & 0x1f) << 8 | static_cast<uint8_t>(data[packet * 188 + 2]);
}

// The PAT first, or right behind the SDT that libav's muxer writes first (the segmenter moves it).
bool pat_first(const std::string& data) {
    if (data.size() < 2 * 188) return false;
    return pid_at(data, 0) == 0x11 ? pid_at(data, 1) == 0 : pid_at(data, 0) == 0;
}
}  // namespace

TEST_CASE("ts cutter: the tables and the reference stream of an ffmpeg segment") {
    const auto& media = live_media();
    const std::string seg = read_file(media.segment_files.at(0));
    const auto program = ts::find_program(seg);
    REQUIRE(program);
    CHECK(program->streams.size() == 2);
    CHECK(program->reference_is_video());
    CHECK(program->reference_pid() == program->streams[0].pid);
    CHECK(program->pat.size() == 188);
    CHECK(program->pmt.size() == 188);
    CHECK_FALSE(ts::find_program(std::string(4096, 'x')));
    CHECK_FALSE(ts::find_program(""));
    CHECK(ts::ts_diff(ts::kWrap - 10, 20) == 30);  // across the 33-bit wrap
    CHECK(ts::ts_diff(20, ts::kWrap - 10) == -30);
}

TEST_CASE("ts cutter: source segments of the output duration are passed on as they are, not copied") {
    const auto& media = live_media();  // 1 s segments starting with keyframes
    Collector out;
    ts::Cutter cutter(1.0, out.emit());
    std::vector<std::string> sources;
    for (size_t i = 0; i < 6; ++i) sources.push_back(read_file(media.segment_files.at(i)));
    cutter.set_program(*ts::find_program(sources[0]));
    std::vector<const char*> buffers;
    for (size_t i = 0; i < sources.size(); ++i) {
        std::string copy = sources[i];
        buffers.push_back(copy.data());
        // Independent from the start: each source segment is an output segment at once.
        cutter.feed(std::move(copy), i == 0, true, 1.499);
        REQUIRE(out.cuts.size() == i + 1);
    }
    for (size_t i = 0; i < out.cuts.size(); ++i) {
        INFO("cut " << i);
        CHECK(out.cuts[i].data == sources[i]);
        CHECK(static_cast<const void*>(out.cuts[i].data.data()) == static_cast<const void*>(buffers[i]));
        CHECK(out.cuts[i].keyframe_start);
        CHECK_FALSE(out.cuts[i].timeline_break);
        CHECK(std::fabs(out.cuts[i].duration - media.durations[i]) < 0.05);
        if (i > 0) CHECK(ts::ts_diff(out.cuts[i - 1].start_pts, out.cuts[i].start_pts) == 90000);
    }
    CHECK_FALSE(cutter.pending());
}

TEST_CASE("ts cutter: short source segments are joined to the output duration at their boundaries") {
    const auto& media = live_media();
    Collector out;
    ts::Cutter cutter(2.0, out.emit());
    std::string joined;
    for (size_t i = 0; i < 8; ++i) {
        std::string s = read_file(media.segment_files.at(i));
        if (i == 0) cutter.set_program(*ts::find_program(s));
        joined += s;
        // No EXT-X-INDEPENDENT-SEGMENTS: the cutter learns from two source segments that began with
        // keyframes that it may cut at their ends.
        cutter.feed(std::move(s), i == 0, false, 2.499);
    }
    cutter.flush();
    REQUIRE(out.cuts.size() == 4);
    std::string all;
    for (const auto& c : out.cuts) {
        CHECK(c.keyframe_start);
        CHECK(std::fabs(c.duration - 2.0) < 0.05);
        const TsProbe probe = probe_ts(c.data);
        REQUIRE(probe.ok);
        CHECK(probe.first_video_key());
        CHECK(pat_first(c.data));
        all += c.data;
    }
    // Nothing lost, nothing added: the output is the source, cut in other places (at most the
    // packets ahead of the first keyframe are dropped).
    CHECK(all.size() <= joined.size());
    CHECK(all.size() + 188 * 4 >= joined.size());
    CHECK(joined.compare(joined.size() - all.size() / 2, std::string::npos, all, all.size() - all.size() / 2) == 0);
}

TEST_CASE("ts cutter: long source segments are cut at keyframes inside them, PES tails kept together") {
    MediaSpec spec;
    spec.seconds = 12;
    spec.segment_seconds = 4.0;
    spec.gop_frames = 25;  // 1 s GOPs inside 4 s source segments
    spec.name = "long-4s";
    const auto& media = make_media(spec);
    Collector out;
    ts::Cutter cutter(2.0, out.emit());
    int64_t source_bytes = 0;
    for (size_t i = 0; i < media.segment_files.size(); ++i) {
        std::string s = read_file(media.segment_files[i]);
        source_bytes += static_cast<int64_t>(s.size());
        if (i == 0) cutter.set_program(*ts::find_program(s));
        cutter.feed(std::move(s), i == 0, true, 2.499);
    }
    cutter.flush();
    REQUIRE(out.cuts.size() >= 5);
    int64_t out_bytes = 0;
    std::string all;
    for (const auto& c : out.cuts) {
        INFO("cut at " << c.start_pts << " duration " << c.duration);
        CHECK(c.keyframe_start);
        CHECK(c.duration <= 2.499);
        CHECK(c.duration > 0.9);
        const TsProbe probe = probe_ts(c.data);
        REQUIRE(probe.ok);
        CHECK(pat_first(c.data));
        CHECK(probe.first_video_key());
        out_bytes += static_cast<int64_t>(c.data.size());
        all += c.data;
    }
    // Only the PAT/PMT put in front of inner cuts are added.
    CHECK(out_bytes >= source_bytes);
    CHECK(out_bytes <= source_bytes + static_cast<int64_t>(out.cuts.size()) * 2 * 188);
    // Played back to back: every audio packet survives (the tails of PES went with their start).
    const TsProbe whole = probe_ts(all);
    const TsProbe source = probe_ts(read_file(media.single_file));
    REQUIRE(whole.ok);
    REQUIRE(source.ok);
    auto audio = [](const TsProbe& p) {
        return std::count_if(p.packets.begin(), p.packets.end(), [](const TsPacket& t) { return t.type == AVMEDIA_TYPE_AUDIO; });
    };
    CHECK(audio(whole) >= audio(source) - 2);
}

TEST_CASE("ts cutter: damaged input is dropped packet by packet, never a crash") {
    const auto& media = live_media();
    std::mt19937 rng(7);
    Collector out;
    ts::Cutter cutter(2.0, out.emit());
    cutter.set_program(*ts::find_program(read_file(media.segment_files.at(0))));
    int64_t bad = 0;
    for (size_t i = 0; i < 10; ++i) {
        std::string s = read_file(media.segment_files.at(i % media.segment_files.size()));
        if (i % 3 == 1) {
            for (int k = 0; k < 200; ++k) s[rng() % s.size()] = static_cast<char>(rng());
        } else if (i % 3 == 2) {
            s.resize(s.size() / 2 + 77);  // truncated mid-packet
        }
        bad += cutter.feed(std::move(s), false, false, 2.499).bad_packets;
    }
    cutter.feed(std::string(10000, '\x47'), false, false, 2.499);
    cutter.feed(std::string(), false, false, 2.499);
    cutter.flush();
    CHECK(bad > 0);
    CHECK(out.cuts.size() >= 2);
    for (const auto& c : out.cuts) {
        CHECK(c.data.size() % 188 == 0);
        CHECK(c.duration > 0);
    }
}

TEST_CASE("ts cutter: a source whose timestamps never advance is cut by size, so memory stays bounded") {
    const auto& media = live_media();
    const std::string seg = read_file(media.segment_files.at(0));
    const auto program = ts::find_program(seg);
    REQUIRE(program);
    // The same source segment again and again: its timestamps never get past the first one's, so no
    // cut is ever due by time (4 s segments wanted).
    auto run = [&](size_t cap) {
        Collector out;
        ts::Cutter cutter(4.0, out.emit(), nullptr, cap);
        cutter.set_program(*program);
        for (int i = 0; i < 20; ++i) cutter.feed(std::string(seg), false, false, 4.5);
        cutter.flush();
        return std::move(out.cuts);
    };
    CHECK(run(std::numeric_limits<size_t>::max()).size() == 1);  // the situation: without a cap, one cut takes everything
    const size_t cap = 3 * seg.size();
    const auto cuts = run(cap);
    CHECK(cuts.size() >= 5);
    bool any_break = false;
    for (const auto& c : cuts) {
        CHECK(c.data.size() % 188 == 0);
        CHECK(c.data.size() <= cap + 8 * 188);  // the packet over the cap, the tables in front
        any_break = any_break || c.timeline_break;
    }
    CHECK(any_break);  // what follows a size cut is tagged as a break
}

namespace {
// Writes an H.264 SPS NAL unit bit by bit (Exp-Golomb codes as in H.264 9.1), then adds the emulation
// prevention bytes, as an encoder does.
struct SpsWriter {
    std::vector<uint8_t> bits;
    SpsWriter& u(int n, uint64_t v) {
        for (int i = n - 1; i >= 0; --i) bits.push_back(static_cast<uint8_t>(v >> i & 1));
        return *this;
    }
    SpsWriter& ue(uint64_t v) {  // v + 1 in binary, after as many zeros as it has digits minus one
        int digits = 0;
        while ((v + 1) >> digits) ++digits;
        return u(digits - 1, 0).u(digits, v + 1);
    }
    SpsWriter& se(int64_t v) { return ue(v > 0 ? static_cast<uint64_t>(2 * v - 1) : static_cast<uint64_t>(-2 * v)); }
    std::string nal() const {
        std::vector<uint8_t> rbsp;
        std::vector<uint8_t> all = bits;
        all.push_back(1);  // rbsp_stop_one_bit, then zeros to the byte boundary
        while (all.size() % 8) all.push_back(0);
        for (size_t i = 0; i < all.size(); i += 8) {
            uint8_t byte = 0;
            for (size_t k = 0; k < 8; ++k) byte = static_cast<uint8_t>(byte << 1 | all[i + k]);
            rbsp.push_back(byte);
        }
        std::string out(1, '\x67');  // nal_ref_idc 3, type 7
        int zeros = 0;
        for (uint8_t byte : rbsp) {
            if (zeros >= 2 && byte <= 3) out.push_back('\x03'), zeros = 0;
            out.push_back(static_cast<char>(byte));
            zeros = byte == 0 ? zeros + 1 : 0;
        }
        return out;
    }
};

struct SpsFields {
    int profile = 100;
    uint64_t chroma_format = 1;
    std::vector<int64_t> scaling_deltas;  // list 0 present with these delta_scale values, if any
    uint64_t poc_type = 0;
    std::vector<int64_t> poc_offsets;     // poc type 1: offset_for_ref_frame[]
    uint64_t width_mbs_minus1 = 119, height_units_minus1 = 67;  // 1920x1088
    std::vector<uint64_t> crop = {0, 0, 0, 4};                   // 1088 - 2 * 4 = 1080
};

std::string make_sps(const SpsFields& f) {
    SpsWriter w;
    w.u(8, static_cast<uint64_t>(f.profile)).u(8, 0).u(8, 40).ue(0);
    if (f.profile == 100) {
        w.ue(f.chroma_format);
        if (f.chroma_format == 3) w.u(1, 0);
        w.ue(0).ue(0).u(1, 0);
        w.u(1, f.scaling_deltas.empty() ? 0 : 1);
        if (!f.scaling_deltas.empty()) {
            w.u(1, 1);  // list 0 present
            for (int64_t d : f.scaling_deltas) w.se(d);
            for (int i = 1; i < (f.chroma_format != 3 ? 8 : 12); ++i) w.u(1, 0);
        }
    }
    w.ue(0).ue(f.poc_type);
    if (f.poc_type == 0) w.ue(2);
    if (f.poc_type == 1) {
        w.u(1, 0).se(0).se(0).ue(f.poc_offsets.size());
        for (int64_t o : f.poc_offsets) w.se(o);
    }
    w.ue(4).u(1, 0).ue(f.width_mbs_minus1).ue(f.height_units_minus1).u(1, 1).u(1, 1);
    w.u(1, f.crop.empty() ? 0 : 1);
    for (uint64_t c : f.crop) w.ue(c);
    w.u(1, 0);  // vui_parameters_present_flag
    return w.nal();
}

bool sps_size(const std::string& nal, int& w, int& h) {
    return ts::h264_sps_size(reinterpret_cast<const uint8_t*>(nal.data()), nal.size(), w, h);
}

// A full scaling list: 16 deltas whose scale never reaches 0, so every delta_scale is read.
std::vector<int64_t> deltas_with(int64_t first) {
    std::vector<int64_t> d(16, 1);
    d[0] = first;
    return d;
}
}  // namespace

TEST_CASE("ts cutter: H.264 SPS sizes, and SPS values outside their range make the SPS invalid") {
    int w = 0, h = 0;
    SECTION("valid: high profile, 4:2:0, cropped 1080 lines, with and without a scaling list") {
        REQUIRE(sps_size(make_sps({}), w, h));
        CHECK(w == 1920);
        CHECK(h == 1080);
        SpsFields f;
        f.scaling_deltas = deltas_with(-128);  // the lowest delta_scale allowed
        w = h = 0;
        REQUIRE(sps_size(make_sps(f), w, h));
        CHECK((w == 1920 && h == 1080));
        f.scaling_deltas = deltas_with(127);
        CHECK(sps_size(make_sps(f), w, h));
        f = {};
        f.profile = 66;  // baseline: no chroma/scaling fields
        f.crop = {};
        w = h = 0;
        REQUIRE(sps_size(make_sps(f), w, h));
        CHECK((w == 1920 && h == 1088));
        f.poc_type = 1;
        f.poc_offsets = {2147483647, -2147483647, 0};
        CHECK(sps_size(make_sps(f), w, h));
    }
    SECTION("delta_scale outside [-128, 127] (fuzzing found 2147483588: a signed overflow)") {
        SpsFields f;
        for (int64_t d : {int64_t{128}, int64_t{-129}, int64_t{2147483588}, int64_t{-2147483647}, int64_t{2147483647}}) {
            f.scaling_deltas = deltas_with(d);
            INFO("delta_scale " << d);
            CHECK_FALSE(sps_size(make_sps(f), w, h));
        }
    }
    SECTION("other Exp-Golomb values outside their range") {
        SpsFields f;
        f.chroma_format = 4;
        CHECK_FALSE(sps_size(make_sps(f), w, h));
        f = {};
        f.poc_type = 3;
        CHECK_FALSE(sps_size(make_sps(f), w, h));
        f = {};
        f.poc_type = 1;
        f.poc_offsets.assign(256, 0);  // num_ref_frames_in_pic_order_cnt_cycle at most 255
        CHECK_FALSE(sps_size(make_sps(f), w, h));
        f.poc_offsets = {-2147483648LL};  // offset_for_ref_frame: -2^31 + 1 at least
        CHECK_FALSE(sps_size(make_sps(f), w, h));
        f = {};
        f.width_mbs_minus1 = 1024;  // 16400 pixels wide
        CHECK_FALSE(sps_size(make_sps(f), w, h));
        f = {};
        f.width_mbs_minus1 = 0xfffffffeULL;  // the largest code with 31 leading zeros
        CHECK_FALSE(sps_size(make_sps(f), w, h));
        f.width_mbs_minus1 = 0xffffffffULL;  // 32 leading zeros: no valid ue(v) in an SPS
        CHECK_FALSE(sps_size(make_sps(f), w, h));
    }
    SECTION("crop offsets larger than the picture, alone or (wrapping 32 bits) together") {
        SpsFields f;
        f.crop = {0, 0, 0, 544};  // 2 * 544 = 1088: nothing left
        CHECK_FALSE(sps_size(make_sps(f), w, h));
        f.crop = {0x80000000ULL, 0x80000000ULL, 0, 0};  // a 32-bit sum of 0
        CHECK_FALSE(sps_size(make_sps(f), w, h));
        f.crop = {959, 0, 0, 0};  // 1920 - 2 * 959 = 2 pixels: valid
        w = h = 0;
        REQUIRE(sps_size(make_sps(f), w, h));
        CHECK(w == 2);
    }
    SECTION("truncated at every byte: false or a size, never a read past the end") {
        SpsFields f;
        f.scaling_deltas = deltas_with(5);
        const std::string nal = make_sps(f);
        for (size_t n = 0; n < nal.size(); ++n) {
            w = h = 0;
            if (sps_size(nal.substr(0, n), w, h)) CHECK((w > 0 && h > 0));
        }
        CHECK_FALSE(ts::h264_sps_size(nullptr, 0, w, h));
    }
}

TEST_CASE("engine: an MPEG-TS HLS source is passed through, each output segment published with its source's") {
    const auto& media = live_media();
    LiveOrigin origin(media, {.speed = 2.0});
    origin.start();
    Engine engine(quick_settings(1.0, 5));
    ChannelConfig config;
    config.name = "Passthrough";
    config.urls = {origin.url()};
    const auto c = engine.add_channel(config);
    engine.start(c.id);
    REQUIRE(wait_until([&] { return engine.status(c.id).segments_published >= 4; }, std::chrono::seconds(20)));
    const auto playlist = m3u8::parse(std::string(engine.read(c.id, "index.m3u8")->bytes()), "http://127.0.0.1/x/index.m3u8").media();
    REQUIRE(playlist.segments.size() >= 3);
    // The source's own bytes and timestamps: every output segment is one source segment (its
    // packets, the SDT moved behind the PAT and PMT), so its size and first timestamp are the source's.
    std::multiset<size_t> source_sizes;
    std::set<int64_t> source_first_pts;
    for (int64_t seq = 0; seq <= origin.newest_sequence(); ++seq) {
        const std::string& bytes = origin.segment_bytes(seq);
        source_sizes.insert(bytes.size());
        const TsProbe p = probe_ts(bytes);
        if (p.ok && !p.packets.empty()) source_first_pts.insert(p.packets.front().pts);
    }
    for (const auto& seg : playlist.segments) {
        INFO(seg.uri);
        const auto r = engine.read(c.id, seg.uri.substr(seg.uri.rfind('/') + 1));
        REQUIRE(r);
        CHECK(source_sizes.count(r->bytes().size()) >= 1);
        const TsProbe p = probe_ts(std::string(r->bytes()));
        REQUIRE(p.ok);
        CHECK(p.starts_with_pat);
        CHECK(p.first_video_key());
        REQUIRE_FALSE(p.packets.empty());
        CHECK(source_first_pts.count(p.packets.front().pts) == 1);
    }
    const auto st = engine.status(c.id);
    CHECK(st.stream.width == 320);
    CHECK(st.stream.codecs.find("avc1.") == 0);
    CHECK(st.stream.codecs.find("mp4a.40.2") != std::string::npos);
}

TEST_CASE("ts describe: codecs, size and frame rate read from the TS agree with libavformat's probe") {
    MediaSpec odd;
    odd.seconds = 4;
    odd.width = 854;  // not a multiple of 16: the SPS carries a cropping window
    odd.height = 478;
    odd.fps = 30;
    odd.gop_frames = 30;
    odd.name = "odd-854x478";
    for (const MediaSet* media : {&live_media(), &make_media(odd)}) {
        const std::string seg = read_file(media->segment_files.at(0));
        const auto program = ts::find_program(seg);
        REQUIRE(program);
        const auto params = ts::describe(seg, *program);
        REQUIRE(params);

        av::MemoryReader reader(seg);
        AVFormatContext* raw = avformat_alloc_context();
        raw->pb = reader.io();
        raw->flags |= AVFMT_FLAG_CUSTOM_IO;
        REQUIRE(avformat_open_input(&raw, "", av_find_input_format("mpegts"), nullptr) == 0);
        av::InputPtr input(raw);
        REQUIRE(avformat_find_stream_info(input.get(), nullptr) >= 0);
        std::string codecs;
        for (unsigned i = 0; i < input->nb_streams; ++i) {
            const AVStream* st = input->streams[i];
            const auto c = rfc6381_codec(st->codecpar);
            codecs += (codecs.empty() ? "" : ",") + c;
            if (st->codecpar->codec_type == AVMEDIA_TYPE_VIDEO) {
                CHECK(params->width == st->codecpar->width);
                CHECK(params->height == st->codecpar->height);
                CHECK(std::fabs(params->frame_rate - av_q2d(st->avg_frame_rate)) < 0.01);
            }
        }
        CHECK(params->codecs == codecs);
        CHECK(params->video_codec == "h264");
        CHECK(params->audio_codecs == std::vector<std::string>{"aac"});
    }
}

TEST_CASE("ts cutter: after a break, the first segment starts at a keyframe that carries its parameter sets") {
    // A source that repeats SPS/PPS at only some keyframes: in every other keyframe of an ffmpeg
    // stream the SPS and PPS NAL headers are turned into filler NAL units (type 12, which decoders
    // skip), so those keyframes cannot start a decoder. Bytes and sizes stay as they are.
    const auto& media = live_media();
    std::string data = read_file(media.single_file);
    const auto program = ts::find_program(data);
    REQUIRE(program);
    const int video = program->reference_pid();
    std::vector<size_t> key_packets;  // the PES-start packet of each keyframe with an SPS, in order
    int patched = 0;
    for (size_t off = 0; off + 188 <= data.size(); off += 188) {
        auto* p = reinterpret_cast<uint8_t*>(data.data() + off);
        if (p[0] != 0x47 || ((p[1] & 0x1f) << 8 | p[2]) != video || !(p[1] & 0x40)) continue;
        std::string_view payload(data.data() + off + 4, 184);
        const size_t sps = payload.find(std::string_view("\x00\x00\x01\x67", 4));
        if (sps == std::string_view::npos) continue;
        const size_t pps = payload.find(std::string_view("\x00\x00\x01\x68", 4), sps);
        if (key_packets.size() % 2 == 1 && pps != std::string_view::npos) {
            p[4 + sps + 3] = 0x0c;
            p[4 + pps + 3] = 0x0c;
            ++patched;
        }
        key_packets.push_back(off / 188);
    }
    REQUIRE(key_packets.size() >= 8);
    REQUIRE(patched >= 4);
    // Up to keyframe 3 (one without its parameter sets) as one source segment, then a break.
    const size_t split = key_packets[3] * 188;
    Collector out;
    ts::Cutter cutter(2.0, out.emit());
    cutter.set_program(*program);
    std::string first = data.substr(0, split), second = data.substr(split);
    cutter.feed(std::move(first), false, true, 2.5);
    cutter.flush();
    const size_t before = out.cuts.size();
    REQUIRE(before >= 1);
    CHECK(scan_ts(out.cuts.front().data).first_video_clean == 1);
    cutter.feed(std::move(second), true, true, 2.5);
    cutter.flush();
    REQUIRE(out.cuts.size() > before);
    const auto layout = scan_ts(out.cuts[before].data);
    INFO("the first segment after the break, " << out.cuts[before].data.size() << " bytes");
    CHECK(layout.first_video_clean == 1);
    CHECK(layout.cc_errors == 0);
}
