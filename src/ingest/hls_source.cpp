// The engine's own HLS client: fetches playlists, segments, keys and init sections through the
// engine's HTTP(S) client (http_client.hpp: redirects, header scope, caps, deadlines) or, for a
// playlist the channel list names as a local file, with plain file reads; checks every URI a
// playlist names against url_policy.hpp before opening it; decrypts AES-128 itself; starts near the
// live edge, reloads as RFC 8216 6.3.4 allows (just after a regular source publishes: reload_phase.hpp), retries failed segments, follows
// EXT-X-DISCONTINUITY, and demuxes every segment on its own so the segmenter knows exactly where
// each source segment ends. libav opens nothing here: it only demuxes bytes from memory.
#include "ingest/source.hpp"

#include "ingest/http_client.hpp"
#include "ingest/url_policy.hpp"

#include "ingest/m3u8.hpp"
#include "ingest/reload_phase.hpp"
#include <hlsrelay/playlist.hpp>
#include <hlsrelay/stream_id.hpp>

#include <algorithm>
#include <cmath>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <optional>
#include <string_view>
#include <vector>

namespace hlsrelay {

namespace {
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// An AES-128 key is 16 bytes; a response of more than this is refused before it is read.
constexpr int64_t kMaxKeyBytes = 1024;
// The largest target duration the automatic deadlines follow (a playlist 30 s, a segment 90 s at most).
constexpr double kMaxDeadlineTarget = 30;

class HlsClient {
public:
    explicit HlsClient(SourceContext& ctx) : ctx_(ctx) {}

    enum class Kind { Playlist, BlockingPlaylist, Segment, Init, Key };

    void run() {
        Clock::time_point first_load = Clock::now();
        m3u8::MediaPlaylist playlist;
        if (ctx_.first && ctx_.first->playlist && !ctx_.pinned) {
            // Loaded by the worker a moment ago: not asked of the source again so soon.
            playlist = *ctx_.first->playlist;
            media_url_ = ctx_.first->final_url;
            media_key_ = ctx_.url;
            target_duration_ = playlist.target_duration;
            first_load = ctx_.first->began;
        } else {
            playlist = load_media_playlist();
        }
        note_load(first_load, playlist);
        ctx_.segmenter.set_target_hint(playlist.target_duration);
        independent_ = playlist.independent_segments;
        // Parts cut from whole source segments come a segment at a time: long enough that a player's
        // blocking reload for the next one does not time out (before the channel's first part only).
        if (ctx_.segmenter.part_target() > 0 && !follows_parts(playlist))
            ctx_.segmenter.raise_part_target(part_target_for_bursts(playlist.target_duration));
        note_arrival(playlist, false);
        const auto& segs = playlist.segments;
        if (!segs.empty()) {
            const size_t back = static_cast<size_t>(std::max(1, ctx_.live_start_segments));
            const size_t start = playlist.endlist || segs.size() <= back ? 0 : segs.size() - back;
            next_sequence_ = segs[start].sequence;
            // Reopened after an outage or a failover back to this playlist: go on right after the
            // last segment taken when the playlist still lists it (no replay, no gap). Otherwise
            // (it left the playlist, or the origin restarted its numbering) the live start stands
            // and play_segment() skips what this playlist relists of what was already taken, by
            // content. A finished playlist (EXT-X-ENDLIST) of a channel with `loop` is played again
            // from its start, on purpose; without `loop` it is not replayed either.
            const bool replay = playlist.endlist && ctx_.channel.loop;
            rejoining_ = !replay;
            rejoin_until_ = segs.back().sequence;
            const SourceHistory::Position* pos = ctx_.history && !replay ? ctx_.history->position(media_key_) : nullptr;
            if (pos) {
                for (const auto& seg : segs)
                    if (seg.sequence == pos->sequence && seg.uri == pos->uri) {
                        next_sequence_ = seg.sequence + 1;
                        rejoining_ = false;
                    }
            }
            if (aligned()) {
                next_sequence_ = ctx_.pinned->start(next_sequence_, segs.front().sequence, segs.back().sequence);
                continues_ = ctx_.pinned->continues && ctx_.pinned->continues();
            }
        }
        // RFC 8216 6.3.4 counts from when a load began (after a master playlist's, at the latest).
        Clock::time_point loaded = ctx_.first && ctx_.first->playlist && !ctx_.pinned ? first_load : Clock::now();
        Clock::time_point last_change = loaded;
        Clock::time_point last_success = loaded;
        const Clock::time_point vod_start = Clock::now();
        double vod_elapsed = 0;
        bool changed = true;
        for (;;) {
            for (const auto& seg : playlist.segments) {
                if (seg.sequence < next_sequence_) continue;
                if (ctx_.interrupter.stop_requested()) return;
                if (playlist.endlist) {
                    // A finished (VOD/event) playlist is played at its native rate, like a live one.
                    if (!ctx_.sleep(vod_elapsed - seconds_since(vod_start))) return;
                    vod_elapsed += seg.duration;
                }
                const bool gap = seg.sequence != next_sequence_ && started_;
                if (aligned()) ctx_.pinned->begin(seg.sequence, seg.duration);
                if (seg.sequence == parts_msn_ && parts_taken_ > 0 && !gap)
                    finish_by_parts(seg);  // LL-HLS: its first parts were taken while it was being built
                else
                    play_segment(seg, gap || seg.discontinuity);
                if (aligned()) {
                    if (ctx_.interrupter.stop_requested()) return;
                    ctx_.segmenter.flush();  // one source segment, one output segment
                    ctx_.pinned->end(seg.sequence, seg.duration);
                }
                if (ctx_.interrupter.stop_requested()) return;
                next_sequence_ = seg.sequence + 1;
                if (ctx_.history) ctx_.history->taken(media_key_, seg.sequence, seg.uri);
                note_arrival(playlist, true);
            }
            const bool parts = follows_parts(playlist);
            if (parts && playlist.partial && playlist.partial->sequence == next_sequence_) {
                take_parts(*playlist.partial);  // LL-HLS: the segment being built, part by part
                if (ctx_.interrupter.stop_requested()) return;
            }
            if (playlist.endlist)
                throw av::SourceError("the source playlist ended (EXT-X-ENDLIST)");
            m3u8::MediaPlaylist next;
            // A source that offers blocking reloads (CAN-BLOCK-RELOAD) read by a channel that does
            // not follow its parts: asked for the playlist once it holds the next segment.
            const bool block = !parts && blocks_segments(playlist) && !plain_reload_;
            if (parts) {
                // LL-HLS (RFC 8216bis 6.2.5.2): a blocking reload for the next part the client has
                // not taken; the origin answers when it exists. After an answer that brought nothing
                // new (an origin that does not block after all) wait a part target first.
                if (!changed && !ctx_.sleep(std::max(0.01, std::clamp(playlist.part_target, 0.1, 1.0) - seconds_since(loaded))))
                    return;
            } else if (block) {
                // The origin holds the request until the segment exists. After an answer that brought
                // nothing new (an origin that does not block after all), RFC 8216 6.3.4's half target.
                if (!changed && !ctx_.sleep(std::max(0.05, std::max(0.5, playlist.target_duration) / 2 - seconds_since(loaded))))
                    return;
            } else {
                // RFC 8216 6.3.4: after a change wait one target duration from the start of the last
                // load; when nothing changed, half of it.
                // Later, just after the source is expected to publish, once its phase is known.
                const double target = std::max(0.5, playlist.target_duration);
                const auto earliest = loaded + std::chrono::duration_cast<Clock::duration>(
                                                   std::chrono::duration<double>(changed ? target : target / 2));
                const auto at = aligns_reloads() ? phase_.next_reload(earliest) : earliest;
                if (!ctx_.sleep(std::max(0.05, std::chrono::duration<double>(at - Clock::now()).count()))) return;
            }
            loaded = Clock::now();
            try {
                // After a failed blocking reload the next one is plain: an origin that refuses them
                // is still read, a part target apart.
                const bool plain = std::exchange(plain_reload_, false);
                if (parts && !plain)
                    next = fetch_media_blocking(next_sequence_, parts_msn_ == next_sequence_ ? parts_taken_ : 0);
                else if (block)
                    next = fetch_media_blocking(next_sequence_, std::nullopt);
                else
                    next = fetch_media(media_url_);
                last_success = Clock::now();
                if (!parts && !block) note_load(loaded, next);
            } catch (const av::SourceError& e) {
                if (ctx_.interrupter.stop_requested()) return;
                if (e.permanent()) throw;  // e.g. a redirect to a refused scheme: no retry can help
                // A failed reload is survivable while the stall budget lasts: keep the last playlist.
                ctx_.report(std::string("playlist reload failed: ") + e.what());
                plain_reload_ = parts || block;
                if (seconds_since(last_success) > stall_timeout(playlist))
                    throw av::SourceError(std::string("playlist unavailable for ") +
                                          fmt_seconds(seconds_since(last_success)) + ": " + e.what());
                changed = false;
                continue;
            }
            changed = advanced(playlist, next);
            if (changed) last_change = loaded;
            if (!next.segments.empty()) {
                const int64_t first = next.segments.front().sequence;
                const int64_t last = next.segments.back().sequence;
                if (last + 1 < next_sequence_ - 1) {
                    // The media sequence went backwards: the origin restarted. Rejoin near its live edge.
                    ctx_.report("source media sequence went back from " + std::to_string(next_sequence_ - 1) +
                                " to " + std::to_string(last) + ": origin restarted");
                    const size_t back = static_cast<size_t>(std::max(1, ctx_.live_start_segments));
                    const size_t start = next.segments.size() <= back ? 0 : next.segments.size() - back;
                    next_sequence_ = next.segments[start].sequence;
                    if (aligned()) next_sequence_ = ctx_.pinned->restarted(next_sequence_, first, last);
                    force_discontinuity_ = true;
                    restarted_ = true;
                    parts_msn_ = -1;
                    rejoining_ = !(next.endlist && ctx_.channel.loop);
                    rejoin_until_ = last;
                    last_change = loaded;
                } else if (next_sequence_ < first) {
                    ctx_.report("fell behind the source: segments " + std::to_string(next_sequence_) + ".." +
                                std::to_string(first - 1) + " left its playlist before they were read");
                }
            }
            playlist = std::move(next);
            independent_ = playlist.independent_segments;
            note_arrival(playlist, false);
            if (!playlist.part_problem.empty() && ctx_.segmenter.part_target() > 0)
                ctx_.note("the source's LL-HLS parts are not followed (" + playlist.part_problem + "): read as classic HLS");
            if (seconds_since(last_change) > stall_timeout(playlist))
                throw av::SourceError("source stalled: its playlist has not advanced for " +
                                      fmt_seconds(seconds_since(last_change)));
        }
    }

    m3u8::Playlist fetch_playlist(const std::string& url, const std::string& parent, std::string& final_url,
                                  Kind kind = Kind::Playlist) {
        const std::string text = fetch(url, parent, kind, &final_url);
        try {
            m3u8::Playlist p = m3u8::parse(text, final_url);
            if (!p.is_master()) target_duration_ = p.media().target_duration;
            return p;
        } catch (const m3u8::ParseError& e) {
            throw av::SourceError("malformed playlist from " + redact_url(url) + ": " + e.what());
        }
    }

private:
    bool aligned() const { return ctx_.pinned && ctx_.pinned->aligned; }

    static std::string fmt_seconds(double s) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.1f s", s);
        return buf;
    }

    double stall_timeout(const m3u8::MediaPlaylist& p) const {
        if (ctx_.stall_timeout > 0) return ctx_.stall_timeout;
        return std::max(ctx_.read_timeout, 3 * std::max(1.0, p.target_duration));
    }

    static bool advanced(const m3u8::MediaPlaylist& before, const m3u8::MediaPlaylist& after) {
        auto building = [](const m3u8::MediaPlaylist& p) {
            return p.partial ? std::make_pair(p.partial->sequence, p.partial->parts.size()) : std::make_pair(int64_t{-1}, size_t{0});
        };
        if (building(before) != building(after)) return true;  // LL-HLS: a new part
        if (before.segments.empty() || after.segments.empty()) return before.segments.size() != after.segments.size();
        return before.segments.back().sequence != after.segments.back().sequence ||
               before.segments.back().uri != after.segments.back().uri;
    }

    // One fetch of `uri`, named by the playlist at `parent` (the channel's URL for the first one):
    // refused unless url_policy allows it there; a local file when the channel list's own local
    // playlist names one, else through the HTTP client with this kind's cap and deadline.
    std::string fetch(const std::string& uri, const std::string& parent, Kind kind, std::string* final_url,
                      const std::optional<m3u8::ByteRange>& byterange = std::nullopt, BufferPool* pool = nullptr) {
        if (const std::string refused = url::check_playlist_uri(uri, parent); !refused.empty())
            throw av::SourceError(refused + " (" + redact_url(uri) + ")", true);
        const FetchLimits& limits = ctx_.limits;
        FetchSpec spec;
        spec.headers = &ctx_.channel.headers;
        spec.trusted_origin = ctx_.url;
        spec.read_timeout = ctx_.read_timeout;
        spec.max_redirects = limits.max_redirects;
        spec.bytes_in = &ctx_.bytes_in;
        // The upstream states its target duration: bounded, so a huge one cannot stretch the deadlines.
        const double target = std::clamp(target_duration_, 0.0, kMaxDeadlineTarget);
        switch (kind) {
            case Kind::Playlist:
            case Kind::BlockingPlaylist:
                spec.what = "playlist";
                spec.max_bytes = limits.max_playlist_bytes;
                spec.limit_name = "max_playlist_bytes";
                spec.deadline = limits.playlist_deadline > 0 ? limits.playlist_deadline
                                : target > 0                 ? std::max(2.0, target)
                                                             : ctx_.read_timeout;
                // A blocking reload is held by the origin for up to three target durations
                // (RFC 8216bis 6.2.5.2) before it answers: that is added to the usual deadline.
                if (kind == Kind::BlockingPlaylist) spec.deadline += 3 * std::max(1.0, target);
                spec.deadline_name = "playlist_deadline";
                spec.accept_gzip = true;
                break;
            case Kind::Segment:
            case Kind::Init:
            case Kind::Key:
                spec.what = kind == Kind::Segment ? "segment" : kind == Kind::Init ? "init section" : "key";
                spec.max_bytes = kind == Kind::Key ? std::min(kMaxKeyBytes, limits.max_segment_bytes) : limits.max_segment_bytes;
                spec.limit_name = "max_segment_bytes";
                spec.deadline = limits.segment_deadline > 0 ? limits.segment_deadline : std::max(6.0, 3 * target);
                spec.deadline_name = "segment_deadline";
                spec.pool = pool;
                break;
        }
        if (byterange) spec.range = std::make_pair(byterange->offset, byterange->offset + byterange->length);
        if (!url::is_remote(uri)) {  // allowed above only for a local channel list's local playlist
            if (final_url) *final_url = uri;
            std::string data = read_local_file(uri, spec.max_bytes, spec.limit_name, spec.what, spec.range);
            ctx_.bytes_in.fetch_add(static_cast<int64_t>(data.size()), std::memory_order_relaxed);
            return data;
        }
        return http_.get(uri, spec, ctx_.interrupter, final_url);
    }

    m3u8::MediaPlaylist load_media_playlist() {
        std::string final_url;
        if (const PinnedPlaylist* pin = ctx_.pinned) {
            m3u8::Playlist media = fetch_playlist(pin->url, pin->parent, final_url);
            if (media.is_master())
                throw av::SourceError("variant " + redact_url(pin->url) + " is itself a master playlist", true);
            media_url_ = final_url;
            media_key_ = pin->url;
            return media.media();
        }
        m3u8::Playlist p = fetch_playlist(ctx_.url, ctx_.url, final_url);
        if (p.is_master()) {
            const m3u8::Variant* v = m3u8::select_variant(p.master(), ctx_.channel.variant.value_or("highest"));
            if (!v) throw av::SourceError("master playlist " + redact_url(ctx_.url) + " has no variants");
            std::string variant_url;
            m3u8::Playlist media = fetch_playlist(v->uri, final_url, variant_url);
            if (media.is_master())
                throw av::SourceError("variant " + redact_url(v->uri) + " is itself a master playlist");
            media_url_ = variant_url;
            media_key_ = v->uri;
            return media.media();
        }
        media_url_ = final_url;
        media_key_ = ctx_.url;
        return p.media();
    }

    m3u8::MediaPlaylist fetch_media(const std::string& url) {
        std::string final_url;
        return fetch_media(url, url, final_url);
    }

    m3u8::MediaPlaylist fetch_media(const std::string& url, const std::string& parent, std::string& final_url) {
        m3u8::Playlist p = fetch_playlist(url, parent, final_url);
        if (p.is_master()) throw av::SourceError("media playlist " + redact_url(url) + " turned into a master playlist");
        return p.media();
    }

    // LL-HLS: the media playlist once it lists part `part` of segment `msn` (or anything later),
    // or without a part, segment `msn` whole, asked of the origin with a blocking reload
    // (_HLS_msn/_HLS_part, RFC 8216bis 6.2.5.2).
    m3u8::MediaPlaylist fetch_media_blocking(int64_t msn, std::optional<size_t> part) {
        std::string url = media_url_.substr(0, media_url_.find('#'));
        url += url.find('?') == std::string::npos ? '?' : '&';
        url += "_HLS_msn=" + std::to_string(msn);
        if (part) url += "&_HLS_part=" + std::to_string(*part);
        std::string final_url;
        m3u8::Playlist p = fetch_playlist(url, media_url_, final_url, Kind::BlockingPlaylist);
        if (p.is_master()) throw av::SourceError("media playlist " + redact_url(media_url_) + " turned into a master playlist");
        return std::move(p.media());
    }

    // A plain load of the live media playlist that began at `began` and ended now: what ReloadPhase learns from.
    void note_load(Clock::time_point began, const m3u8::MediaPlaylist& p) {
        if (!aligns_reloads() || p.endlist) return;
        loaded_segments_.clear();
        for (const auto& seg : p.segments) loaded_segments_.push_back({seg.sequence, seg.duration});
        phase_.loaded(began, Clock::now(), loaded_segments_, p.target_duration);
    }

    // Whether reloads are aimed at the source's publications (ReloadPhase). Not for the renditions
    // of a presentation: each learns its phase on its own, and while one probes (a segment up to a
    // target duration late) the renditions drift apart and their rendition reports with them. Not
    // for a channel that cuts parts: a probe's late segment is a burst its PART-HOLD-BACK must then
    // cover (note_arrival), which raises every player's latency by seconds.
    bool aligns_reloads() const { return ctx_.align_reloads && !aligned() && ctx_.segmenter.part_target() <= 0; }

    // How the media arrives (Segmenter::set_arrival_burst): nothing when the parts are followed;
    // otherwise a segment at a time, and the longest wait between two segments of about the last
    // minute (at least the target duration, at most twice it): a reload that finds nothing new waits
    // half a target duration more (RFC 8216 6.3.4), so segments do not come exactly a target duration
    // apart. Rounded up to whole part targets, so PART-HOLD-BACK keeps a margin and changes only when
    // the waits do by a part or more (each change moves the players' target latency).
    void note_arrival(const m3u8::MediaPlaylist& p, bool segment) {
        if (follows_parts(p)) {
            arrivals_.clear();
            ctx_.segmenter.set_arrival_burst(0);
            return;
        }
        if (segment) {
            arrivals_.push_back(Clock::now());
            if (arrivals_.size() > kArrivalHistory + 1) arrivals_.erase(arrivals_.begin());
        }
        double longest = 0;
        for (size_t i = 1; i < arrivals_.size(); ++i)
            longest = std::max(longest, std::chrono::duration<double>(arrivals_[i] - arrivals_[i - 1]).count());
        const double target = std::max(0.0, p.target_duration);
        double burst = std::clamp(longest, target, 2 * target);
        if (const double pt = ctx_.segmenter.part_target(); pt > 0) burst = std::ceil(burst / pt - 1e-6) * pt;
        ctx_.segmenter.set_arrival_burst(burst);
    }
    static constexpr size_t kArrivalHistory = 32;  // waits between source segments remembered (about a minute)

    // LL-HLS sources are followed part by part (a blocking reload for each next part, its bytes
    // demuxed as soon as they arrive) when the channel cuts parts itself: the output's parts then
    // follow the source's, and an LL source stays LL. Not for the renditions of a presentation
    // (cut one output segment per source segment) nor encrypted segments (AES-CBC runs across a
    // whole segment), and not when the parts are malformed or the playlist is a local file: those are
    // read as classic HLS.
    bool follows_parts(const m3u8::MediaPlaylist& p) const {
        if (ctx_.segmenter.part_target() <= 0 || aligned() || !p.can_block_reload || p.part_target <= 0 ||
            !p.part_problem.empty() || p.endlist || !url::is_remote(media_url_))  // a local file cannot block
            return false;
        return !(p.partial && p.partial->key);
    }

    // A source whose playlist a channel that does not follow its parts still asks for with a
    // blocking reload (the next whole segment): it says it can block, it is live and remote.
    bool blocks_segments(const m3u8::MediaPlaylist& p) const {
        return p.can_block_reload && !p.endlist && url::is_remote(media_url_);
    }

    // Takes the listed parts of `seg` that were not taken yet (all of them when it is new).
    void take_parts(const m3u8::Segment& seg) {
        if (parts_msn_ != seg.sequence) {
            parts_msn_ = seg.sequence;
            parts_taken_ = 0;
        }
        while (parts_taken_ < seg.parts.size()) {
            if (ctx_.interrupter.stop_requested()) return;
            play_part(seg, parts_taken_);
            ++parts_taken_;
        }
    }

    // A segment whose first parts were taken before it was complete: the rest of its parts. If the
    // playlist no longer lists them (the client fell more than three target durations behind), what
    // is missing is lost and the timeline breaks.
    void finish_by_parts(const m3u8::Segment& seg) {
        if (seg.parts.size() < parts_taken_ || seg.key) {
            ctx_.report("segment " + std::to_string(seg.sequence) + ": its parts left the playlist before they were all read");
            force_discontinuity_ = true;
        } else {
            take_parts(seg);
        }
        parts_msn_ = -1;
        parts_taken_ = 0;
    }

    // One part of `seg`, fetched (retried once) and demuxed at once. A part starts no timeline break
    // of its own unless one is pending; the first part of a segment carries the segment's date and
    // discontinuity. MPEG-TS parts after the first have no PAT/PMT: the segment's are put in front.
    void play_part(const m3u8::Segment& seg, size_t index) {
        const m3u8::Part& part = seg.parts[index];
        if (part.gap) {
            force_discontinuity_ = true;
            return;
        }
        std::string data;
        const auto got = fetch_retried(2, 0.1, "parts", "part " + std::to_string(index) + " of segment " + std::to_string(seg.sequence),
                                       [&] {
                                           data = fetch(part.uri, media_url_, Kind::Segment, nullptr, part.byterange, ctx_.pool);
                                           if (data.empty()) throw av::SourceError("part " + redact_url(part.uri) + " is empty");
                                           if (seg.map) data.insert(0, init_section(*seg.map, media_url_));
                                       });
        if (got != Fetched::yes) return;
        if (!seg.map) {
            if (index == 0 || psi_.empty()) {
                if (auto program = ts::find_program(data)) psi_ = program->pat + program->pmt;
            } else if (data.size() >= ts::kPacketSize && data[0] == 0x47) {
                data.insert(0, psi_);
            }
        }
        const bool breaks = (index == 0 && seg.discontinuity) || force_discontinuity_ || !started_;
        restarted_ = false;
        if (index == 0) ctx_.segmenter.set_source_date(seg.program_date_time);
        demux(data, breaks);
        ctx_.segmenter.end_source_part();
        force_discontinuity_ = false;
        started_ = true;
    }

    // The initialization section (EXT-X-MAP) in front of a segment's or part's bytes: fetched once
    // for as long as the playlist names the same one.
    const std::string& init_section(const m3u8::InitSection& map, const std::string& playlist_url) {
        const std::string id = map.uri + (map.byterange ? "@" + std::to_string(map.byterange->offset) : "");
        if (init_.id != id) {
            if (const std::string refused = url::check_playlist_uri(map.uri, playlist_url); !refused.empty())
                throw av::SourceError(refused + " (" + redact_url(map.uri) + ")", true);
            init_.data = fetch(map.uri, playlist_url, Kind::Init, nullptr, map.byterange);
            init_.id = id;
        }
        return init_.data;
    }

    const std::string& key_bytes(const std::string& uri, const std::string& playlist_url) {
        auto it = keys_.find(uri);
        if (it != keys_.end()) return it->second;
        std::string key = fetch(uri, playlist_url, Kind::Key, nullptr);
        if (key.size() != 16)
            throw av::SourceError("AES-128 key from " + redact_url(uri) + " has " + std::to_string(key.size()) +
                                  " bytes, not 16");
        if (keys_.size() > 32) keys_.clear();
        return keys_[uri] = std::move(key);
    }

    // The last initialization section (EXT-X-MAP) fetched for one media playlist.
    struct InitCache {
        std::string id, data;
    };

    // One attempt at a segment of the media playlist `playlist_url` (the final URL its URIs are
    // checked against): fetched, decrypted, behind its initialization section.
    std::string fetch_segment_once(const m3u8::Segment& seg, const std::string& playlist_url) {
        const bool aes = seg.key && seg.key->method == "AES-128";
        if (seg.key && !aes && seg.key->method != "NONE")
            throw av::SourceError("unsupported encryption " + seg.key->method + " (only AES-128 can be remuxed)", true);
        // Every URI is checked before anything is opened: the key and the init section too.
        for (const std::string* uri : {&seg.uri, aes ? &seg.key->uri : nullptr, seg.map ? &seg.map->uri : nullptr})
            if (uri)
                if (const std::string refused = url::check_playlist_uri(*uri, playlist_url); !refused.empty())
                    throw av::SourceError(refused + " (" + redact_url(*uri) + ")", true);
        std::string data = fetch(seg.uri, playlist_url, Kind::Segment, nullptr, seg.byterange, ctx_.pool);
        if (aes) {
            const std::string& key = key_bytes(seg.key->uri, playlist_url);
            uint8_t iv[16] = {};
            if (seg.key->iv) {
                std::copy(seg.key->iv->begin(), seg.key->iv->end(), iv);
            } else {  // RFC 8216 5.2: the media sequence number as a big-endian 128-bit IV
                for (int i = 0; i < 8; ++i) iv[15 - i] = static_cast<uint8_t>(static_cast<uint64_t>(seg.sequence) >> (8 * i));
            }
            try {
                av::decrypt_aes128_cbc(data, key, iv);
            } catch (const av::SourceError& e) {
                throw av::SourceError("segment " + redact_url(seg.uri) + ": " + e.what());
            }
        }
        if (seg.map) data.insert(0, init_section(*seg.map, playlist_url));  // fMP4: demuxed behind its init section
        if (data.empty()) throw av::SourceError("segment " + redact_url(seg.uri) + " is empty");
        return data;
    }

    enum class Fetched { yes, skipped, stopped };

    // Runs `attempt` (a fetch into the caller's buffer) up to `attempts` times, waiting `backoff` x
    // the attempt number in between; a cap or deadline is not retried (the same fetch again costs as
    // much again), a permanent error is thrown at once. What is given up on is reported as skipped
    // (`what`) and breaks the timeline; three lost in a row (`plural`: "segments", "parts") fail the
    // source.
    Fetched fetch_retried(int attempts, double backoff, const char* plural, const std::string& what,
                          const std::function<void()>& attempt) {
        std::string error;
        for (int i = 0; i < attempts; ++i) {
            if (i > 0 && !ctx_.sleep(backoff * i)) return Fetched::stopped;
            try {
                attempt();
                lost_in_a_row_ = 0;
                return Fetched::yes;
            } catch (const av::SourceError& e) {
                if (ctx_.interrupter.stop_requested()) return Fetched::stopped;
                if (e.permanent()) throw;
                error = e.what();
                if (e.limit()) break;
            }
        }
        if (++lost_in_a_row_ >= 3) throw av::SourceError(std::string("3 source ") + plural + " in a row failed, the last: " + error);
        ctx_.report(what + " skipped: " + error);
        force_discontinuity_ = true;
        return Fetched::skipped;
    }

    // Retries a failed segment before giving up on it; several lost in a row fail the source.
    void play_segment(const m3u8::Segment& seg, bool discontinuity) {
        if (seg.gap) {
            force_discontinuity_ = true;
            return;
        }
        std::string data;
        const auto got = fetch_retried(3, 0.25, "segments", "segment " + std::to_string(seg.sequence),
                                       [&] { data = fetch_segment_once(seg, media_url_); });
        if (got != Fetched::yes) return;
        if (already_taken(seg, data)) return;
        if (ctx_.pinned && ctx_.pinned->passthrough) {  // subtitles: passed on as they are
            ctx_.pinned->passthrough(std::move(data), seg.duration, seg.program_date_time);
            force_discontinuity_ = false;
            started_ = true;
            return;
        }
        const bool breaks = discontinuity || force_discontinuity_ || !started_;
        // A rendition of a presentation that lost segments (a reconnect, a segment lost or skipped, a
        // source GAP) goes on on the presentation's timeline: what it missed is published as gaps and
        // its timestamps are still the source's, as its siblings' are. Only the source's own
        // discontinuity, an origin restart or a start without anything published before breaks it.
        if (aligned() && breaks && !(seg.discontinuity || restarted_ || (!started_ && !continues_)))
            ctx_.segmenter.continue_timeline();
        restarted_ = false;
        ctx_.segmenter.set_source_date(seg.program_date_time);  // dates the output on the source's clock
        // MPEG-TS segments (and fMP4 ones, for fMP4 output) are cut as they are, without a remux;
        // anything else goes through libav.
        if (seg.map ? !ctx_.segmenter.write_fmp4_segment(init_.data, data, breaks, independent_)
                    : !ctx_.segmenter.write_ts_segment(data, breaks, independent_))
            demux(data, breaks);
        // LL-HLS: the source segment's last part goes out now, not when the next segment's first
        // frame comes a segment later (renditions flush each source segment anyway).
        if (!aligned()) ctx_.segmenter.end_source_part();
        force_discontinuity_ = false;
        started_ = true;
    }

    // Where the client rejoins a source (a new connection that could not go on from the last
    // segment taken, an origin that restarted its numbering), a segment of the playlist it rejoined
    // on whose bytes were taken before (by this channel, from any of its URLs) is not published
    // again: a frozen origin that comes back with its last segments, a restarted one that serves
    // them once more. The first new segment ends the check, and segments listed later are not
    // checked: a source that plays the same files in a loop loses at most those few at a rejoin.
    bool already_taken(const m3u8::Segment& seg, const std::string& data) {
        if (!ctx_.history) return false;
        const uint64_t fingerprint = SourceHistory::fingerprint(data);
        if (!rejoining_ || seg.sequence > rejoin_until_ || !ctx_.history->seen(fingerprint)) {
            ctx_.history->remember(fingerprint);
            rejoining_ = false;
            return false;
        }
        if (replays_skipped_++ == 0)
            ctx_.report("the source served segment " + std::to_string(seg.sequence) +
                        " again (already published): skipped, as is every other segment it replays");
        return true;
    }

    // ---- demuxing ----

    // A demuxer over bytes in memory (which must outlive it).
    struct Demuxer {
        std::unique_ptr<av::MemoryReader> reader;
        av::InputPtr input;
    };

    Demuxer open_demuxer(const std::string& data) {
        Demuxer d;
        d.reader = std::make_unique<av::MemoryReader>(data);
        AVFormatContext* raw = avformat_alloc_context();
        if (!raw) throw std::bad_alloc();
        raw->pb = d.reader->io();
        raw->flags |= AVFMT_FLAG_CUSTOM_IO;
        raw->interrupt_callback = ctx_.interrupter.callback();
        const AVInputFormat* format = data.size() >= 188 && data[0] == 0x47 ? av_find_input_format("mpegts") : nullptr;
        ctx_.interrupter.arm(std::chrono::duration<double>(ctx_.read_timeout));
        av::Options opts;
        opts.set("protocol_whitelist", "");  // bytes from memory: the demuxer may open nothing else
        const int err = avformat_open_input(&raw, "", format, opts.get());  // frees raw on failure
        if (err < 0) throw av::SourceError("cannot demux a source segment: " + av::error_string(err));
        d.input.reset(raw);
        return d;
    }

    void probe(AVFormatContext* input) {
        if (const int err = avformat_find_stream_info(input, nullptr); err < 0)
            throw av::SourceError("cannot read the streams of a source segment: " + av::error_string(err));
    }

    // Reads every packet and hands it to `take` (which may move its reference out); a damaged tail
    // is reported and left out. False when stopped.
    bool read_packets(AVFormatContext* input, const std::function<void(AVPacket*)>& take) {
        av::PacketPtr packet = av::make_packet();
        for (;;) {
            const int err = av_read_frame(input, packet.get());
            if (err == AVERROR_EOF) break;
            if (err < 0) {
                if (ctx_.interrupter.stop_requested()) return false;
                ctx_.report("a source segment is damaged: " + av::error_string(err));
                break;  // keep what was read; the segment's damaged tail is lost
            }
            take(packet.get());
            av_packet_unref(packet.get());
        }
        return true;
    }

    static av::PacketPtr keep(AVPacket* p) {
        av::PacketPtr kept = av::make_packet();
        av_packet_move_ref(kept.get(), p);
        return kept;
    }

    void demux(const std::string& data, bool discontinuity) {
        Demuxer d = open_demuxer(data);
        // Probing is only needed when the stream layout is new; afterwards the first segment's
        // parameters stand and every further segment opens cheaply.
        const bool probed = discontinuity || !probed_once_ || !ctx_.segmenter.same_layout(d.input.get());
        if (probed) {
            probe(d.input.get());
            probed_once_ = true;
        }
        ctx_.segmenter.open_input(d.input.get(), discontinuity, probed);
        read_packets(d.input.get(), [&](AVPacket* p) { ctx_.segmenter.write(p); });
        ctx_.interrupter.disarm();
    }

    SourceContext& ctx_;
    HttpClient http_;
    std::string media_url_;
    std::string media_key_;  // the media playlist as requested: what SourceHistory remembers it by
    int64_t replays_skipped_ = 0;
    bool rejoining_ = true;       // replays are skipped until the first new segment (see already_taken)
    int64_t rejoin_until_ = -1;   // ... among the segments listed when the client rejoined
    int64_t next_sequence_ = 0;
    bool started_ = false;
    bool force_discontinuity_ = false;
    bool restarted_ = false;   // the origin restarted its numbering: the next segment breaks the timeline
    bool continues_ = false;   // aligned: this connection goes on where the rendition's output left off
    bool probed_once_ = false;
    int64_t parts_msn_ = -1;   // LL-HLS: the segment taken part by part ...
    size_t parts_taken_ = 0;   // ... and how many of its parts were taken
    std::string psi_;          // the PAT and PMT of the last MPEG-TS segment's first part
    std::vector<Clock::time_point> arrivals_;  // when the last source segments were taken (note_arrival)
    bool plain_reload_ = false;  // LL-HLS: the last blocking reload failed; the next reload is a plain one
    ReloadPhase phase_;          // when the source publishes (classic HLS reloads are aimed just after)
    std::vector<ReloadPhase::Segment> loaded_segments_;
    bool independent_ = false;
    int lost_in_a_row_ = 0;
    std::map<std::string, std::string> keys_;
    double target_duration_ = 0;  // of the last media playlist: sets the automatic deadlines
    InitCache init_;
};
}  // namespace

bool is_hls_url(const std::string& url) {
    std::string path = url.substr(0, url.find_first_of("?#|"));
    auto ends_with = [&](std::string_view suffix) {
        if (path.size() < suffix.size()) return false;
        for (size_t i = 0; i < suffix.size(); ++i)
            if (std::tolower(static_cast<unsigned char>(path[path.size() - suffix.size() + i])) != suffix[i]) return false;
        return true;
    };
    return ends_with(".m3u8") || ends_with(".m3u");
}

void run_hls_source(SourceContext& ctx) {
    // The channel list's URL: a remote playlist or a local file; not another protocol.
    const std::string scheme = url::scheme_of(ctx.url);
    if (!url::is_remote_scheme(scheme) && scheme != "file")
        throw av::SourceError("refused URI scheme '" + scheme + "' in the channel list for an HLS playlist (http, https or a file)",
                              true);
    HlsClient(ctx).run();
}

m3u8::Playlist fetch_hls_playlist(SourceContext& ctx, const std::string& url, const std::string& parent,
                                  std::string& final_url) {
    const std::string scheme = url::scheme_of(url);
    if (!url::is_remote_scheme(scheme) && scheme != "file")
        throw av::SourceError("refused URI scheme '" + scheme + "' for an HLS playlist (http, https or a file)", true);
    return HlsClient(ctx).fetch_playlist(url, parent, final_url);
}

}  // namespace hlsrelay
