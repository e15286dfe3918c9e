// Test media made once with the ffmpeg CLI: an HLS segment set plus one MPEG-TS file of the same content.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace hlsrelay::test {

struct MediaSpec {
    int seconds = 30;
    double segment_seconds = 1.0;  // ffmpeg's -hls_time; cuts land on the next keyframe
    int gop_frames = 25;           // keyframe interval; make it divide segment_seconds * fps
    int fps = 25;
    int width = 320;
    int height = 240;
    bool audio = true;  // 440 Hz sine, AAC 48 kHz
    bool video = true;  // testsrc2, H.264
    int video_kbps = 0; // 0: the encoder's default quality; otherwise a capped bitrate
    std::string video_codec = "h264";  // or "mpeg2" (mpeg2video) or "hevc" (libx265)
    std::string audio_codec = "aac";   // or "mp3" (libmp3lame) or "ac3"
    std::string name;   // cache directory name; empty: derived from the other fields
};

struct MediaSet {
    std::string dir;                         // absolute; holds index.m3u8, seg_NNNNN.ts, all.ts
    std::vector<std::string> segment_files;  // absolute paths, in playback order
    std::vector<double> durations;           // EXTINF seconds, one per segment file
    double target_duration = 0;              // ffmpeg's EXT-X-TARGETDURATION (whole seconds)
    std::string single_file;                 // absolute path of all.ts: the segments as one file
};

// Generates the media for `spec` (or reuses a complete set from an earlier run) under
// HLSRELAY_TEST_MEDIA_DIR/<name>/ and returns it. Thread-safe and safe across concurrent test
// processes; the result lives until the process exits. A trailing runt segment shorter than half of
// segment_seconds (AAC framing leaves one in audio-only media) is left out of the set.
// Throws std::runtime_error (with ffmpeg's stderr) if ffmpeg is missing or fails, and
// std::invalid_argument for a nonsensical spec or a name reused for a different spec.
const MediaSet& make_media(const MediaSpec& spec);

// Where the media cache lives (HLSRELAY_TEST_MEDIA_DIR, else a directory under /tmp).
std::string media_root();

// media_root()/name, made by `make` (given a directory to fill) the first time it is asked for in
// this build tree: built in a private directory and renamed into place, like make_media's sets, so
// test processes running at once never see it half-written or remove what another is writing.
std::string generated_dir(const std::string& name, const std::function<void(const std::string& dir)>& make);

}  // namespace hlsrelay::test
