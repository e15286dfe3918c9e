// Keeps damaged frames of a continuous source (MPEG-TS over UDP, an HTTP live stream, ...) away from
// the segmenter. libavformat's MPEG-TS demuxer flags a packet AV_PKT_FLAG_CORRUPT when its PES lost
// TS packets (a continuity-counter gap), and when the input breaks it hands over what it held as
// packets too, cut short. A stream that falls silent inside a frame and then goes on with another
// encoder's output (a restart behind the same UDP address or HTTP fan-out) is subtler: the demuxer
// completes the cut-short frame with the new stream's first PES start and hands it over unflagged
// whenever the counters happen to match. Passed on, such a frame is what players choke on (hls.js in
// Chromium stops with a fatal decode error; ffmpeg and GStreamer conceal and complain). So:
//   - a packet flagged corrupt, or handed over after the input reported its end or an error, is dropped;
//   - after a silence, everything is held until each audio and video stream that was live before it
//     shows whether its timeline went on (a pause: three held packets in a row continue it, nothing
//     is dropped) or jumped (a new stream: the held packet just before the jump, the last of the old
//     timeline, is the old stream's cut-short tail and is dropped). Not the first held packet: the
//     demuxer's parser hands a frame over only when the next one starts, so the old stream's last
//     whole frame comes first and its tail second (and a continuity-counter gap flags the whole frame,
//     not the tail). The judgement waits on packets, not on the clock: a restarted encoder's audio may
//     come first, and its video seconds later on a loaded machine. Only when a stream stays away
//     (kMaxHeld packets of the others, or kMaxJudgeSeconds) is it judged without the proof, and then
//     its last held packet that continues the old timeline is dropped: one frame is a small price
//     next to a decoder error;
//   - a video stream that lost a packet waits for its next keyframe, which decodes on its own.
// Internal to src/ingest (generic_source.cpp); a header so that tests can drive it with made-up packets.
#pragma once

#include "common/av_util.hpp"

extern "C" {
#include <libavformat/avformat.h>
}

#include <chrono>
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

namespace hlsrelay {

class DamageFilter {
public:
    using Clock = std::chrono::steady_clock;
    // A gap between packets this long is a silence, not a live stream's pacing.
    static constexpr double kSilenceSeconds = 1.0;
    // A timestamp step this large between two packets of one stream is a new timeline.
    static constexpr double kJumpSeconds = 1.0;
    // What is held while a silence is judged: at most this many packets or this long.
    static constexpr size_t kMaxHeld = 512;
    static constexpr double kMaxJudgeSeconds = 5.0;
    // Held packets in a row that continue a stream's timeline: proof that it went on (a pause).
    static constexpr int kProofPackets = 3;

    // Takes `packet`'s reference; appends to `ready` what may go on, in order.
    void push(const AVFormatContext* input, AVPacket* packet, bool input_broken, Clock::time_point now,
              std::vector<av::PacketPtr>& ready) {
        const auto index = static_cast<size_t>(packet->stream_index);
        if (streams_.size() <= index) streams_.resize(index + 1);
        if ((packet->flags & AV_PKT_FLAG_CORRUPT) || input_broken) {
            drop(input, index);
            av_packet_unref(packet);
            return;
        }
        if (have_last_ && std::chrono::duration<double>(now - last_packet_).count() > kSilenceSeconds && !judging_) {
            judging_ = true;
            judge_start_ = now;
            for (auto& st : streams_) {
                st.judged_dts = st.last_dts;
                st.tail_held = -1;
                st.continued = 0;
                st.jumped = false;
            }
        }
        have_last_ = true;
        last_packet_ = now;
        av::PacketPtr p = av::make_packet();
        av_packet_move_ref(p.get(), packet);
        if (!judging_) {
            gate(input, std::move(p), ready);
            return;
        }
        auto& st = streams_[index];
        if (!st.jumped && p->dts != AV_NOPTS_VALUE) {
            if (st.judged_dts != AV_NOPTS_VALUE && std::abs(seconds(input, index, p->dts - st.judged_dts)) >= kJumpSeconds) {
                st.jumped = true;
            } else {
                st.tail_held = static_cast<int>(held_.size());
                st.judged_dts = p->dts;
                ++st.continued;
            }
        }
        held_.push_back(std::move(p));
        bool decided = held_.size() >= kMaxHeld || std::chrono::duration<double>(now - judge_start_).count() > kMaxJudgeSeconds;
        if (!decided) {
            decided = true;
            for (size_t i = 0; i < streams_.size(); ++i)
                if (is_media(input, i) && streams_[i].last_dts != AV_NOPTS_VALUE && !streams_[i].jumped &&
                    streams_[i].continued < kProofPackets)
                    decided = false;
        }
        if (decided) judge(input, ready);
    }
    // Packets dropped since the last call.
    int64_t take_dropped() { return std::exchange(dropped_, 0); }
    // Packets held while a silence is judged.
    size_t held() const { return held_.size(); }

private:
    struct Stream {
        bool waiting_key = false;
        int64_t last_dts = AV_NOPTS_VALUE;  // of the last packet passed on
        // While a silence is judged: the last timestamp seen on the old timeline, the held packet that
        // carries it (-1: none), how many held packets continued it, whether the timeline jumped.
        int64_t judged_dts = AV_NOPTS_VALUE;
        int tail_held = -1;
        int continued = 0;
        bool jumped = false;
    };

    static bool is_video(const AVFormatContext* input, size_t index) {
        return index < input->nb_streams && input->streams[index]->codecpar->codec_type == AVMEDIA_TYPE_VIDEO;
    }
    static bool is_media(const AVFormatContext* input, size_t index) {
        if (index >= input->nb_streams) return false;
        const auto type = input->streams[index]->codecpar->codec_type;
        return type == AVMEDIA_TYPE_VIDEO || type == AVMEDIA_TYPE_AUDIO;
    }
    static double seconds(const AVFormatContext* input, size_t index, int64_t ticks) {
        return static_cast<double>(ticks) * av_q2d(input->streams[index]->time_base);
    }
    void drop(const AVFormatContext* input, size_t index) {
        ++dropped_;
        if (is_video(input, index)) streams_[index].waiting_key = true;
    }
    // The keyframe gate, then out.
    void gate(const AVFormatContext* input, av::PacketPtr p, std::vector<av::PacketPtr>& ready) {
        const auto index = static_cast<size_t>(p->stream_index);
        auto& st = streams_[index];
        if (st.waiting_key) {
            if (!(p->flags & AV_PKT_FLAG_KEY)) {
                ++dropped_;
                return;
            }
            st.waiting_key = false;
        }
        (void)input;
        if (p->dts != AV_NOPTS_VALUE) st.last_dts = p->dts;
        ready.push_back(std::move(p));
    }
    void judge(const AVFormatContext* input, std::vector<av::PacketPtr>& ready) {
        std::vector<bool> cut_short(held_.size(), false);
        for (size_t i = 0; i < streams_.size(); ++i) {
            const auto& st = streams_[i];
            if (st.last_dts == AV_NOPTS_VALUE || !is_media(input, i) || st.tail_held < 0) continue;
            // A jump: the old timeline's last held packet is the tail. No jump and no proof (the
            // stream stayed away): that packet cannot be vouched for either.
            if (st.jumped || st.continued < kProofPackets) cut_short[static_cast<size_t>(st.tail_held)] = true;
        }
        for (size_t k = 0; k < held_.size(); ++k) {
            if (cut_short[k]) drop(input, static_cast<size_t>(held_[k]->stream_index));
            else gate(input, std::move(held_[k]), ready);
        }
        held_.clear();
        judging_ = false;
    }

    std::vector<Stream> streams_;
    std::vector<av::PacketPtr> held_;
    bool judging_ = false;
    bool have_last_ = false;
    Clock::time_point last_packet_{}, judge_start_{};
    int64_t dropped_ = 0;
};

}  // namespace hlsrelay
