// One running channel: a worker thread tying source -> segmenter -> window -> playlists (and the
// disk mirror), reconnecting with backoff across the channel's URLs, and the channel's status.
// The worker thread is the only writer; readers take shared pointers to immutable data.
//
// Failover (FailoverPolicy, failover.hpp): a URL that keeps failing cools down while the next one
// plays. While a backup plays, a probe thread of the worker checks the primary every probe_interval
// (probe_source); once it has been healthy for failback_after, the worker leaves the backup right
// after its next published segment and connects to the primary (a new connection: the output's
// numbering goes on, behind an EXT-X-DISCONTINUITY).
//
// A multivariant HLS source whose selection keeps several renditions (or separate audio/subtitles)
// makes the channel a presentation: this worker then fetches the source's master playlist, starts
// one child ChannelWorker per rendition (RenditionRole: its own ingest pinned to one media
// playlist, cutter, window, playlist, reconnects and disk directory), renders master.m3u8 from the
// source's, and serves "<id>/<file>" from the children. Its state follows the highest video
// rendition; a child that fails alone reconnects alone. With backups, the top rendition's failures
// go through this worker's FailoverPolicy: once it says so, the whole presentation switches to the
// next URL's master (follow_presentation): planned again, its renditions matched to the children by
// role and the children re-pointed (repoint()) in a new SequenceMap generation, their windows and
// numbering going on; fail-back to the primary master likewise, by the probe thread.
#pragma once

#include "common/av_util.hpp"
#include "publish/disk_mirror.hpp"
#include "publish/pusher.hpp"
#include "cut/segmenter.hpp"
#include "engine/failover.hpp"
#include "engine/rendition_reports.hpp"
#include "engine/sequence_map.hpp"
#include "ingest/source.hpp"
#include "ingest/source_history.hpp"

#include <hlsrelay/engine.hpp>
#include <hlsrelay/presentation.hpp>
#include <hlsrelay/window.hpp>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

namespace hlsrelay {

// A worker that runs one rendition of a presentation.
struct RenditionRole {
    std::string id;                    // "v0", "a1", "s0": its directory
    RenditionKind kind = RenditionKind::video;
    std::string url, parent;           // its media playlist; the master's final URL
    std::shared_ptr<SequenceMap> map;  // the channel-wide numbering
    std::shared_ptr<RenditionReports> reports;  // LL-HLS: where every rendition stands
    bool top = false;                  // the highest video rendition: also renders the top-level index.m3u8
    std::string name, language, group; // for status (EXT-X-MEDIA), empty for a variant
    int64_t bandwidth = 0;             // declared by the source (0: none)
    std::string codecs;
    int width = 0, height = 0;
    bool is_default = false;           // EXT-X-MEDIA DEFAULT=YES (matching a backup's renditions)
    // The top rendition of a channel with backups: each failed connection is told to the
    // presentation's worker (its media playlist, and FailoverPolicy::on_failure's flags), which
    // decides on a switch of the whole presentation to another master.
    std::function<void(const std::string& url, bool permanent, bool delivered, bool hard)> failed;
};

class ChannelWorker {
public:
    using Emit = std::function<void(const Event&)>;
    using Log = std::function<void(LogLevel, const std::string& channel, const std::string& message)>;

    ChannelWorker(ChannelConfig channel, HlsSettings hls, const EngineSettings& engine, int64_t first_sequence,
                  std::shared_ptr<BufferPool> pool, Emit emit, Log log);
    // A rendition of a presentation (started by the presentation's worker).
    ChannelWorker(ChannelConfig channel, HlsSettings hls, const EngineSettings& engine, int64_t first_sequence,
                  std::shared_ptr<BufferPool> pool, Emit emit, Log log, RenditionRole role);
    ~ChannelWorker();
    ChannelWorker(const ChannelWorker&) = delete;
    ChannelWorker& operator=(const ChannelWorker&) = delete;

    void start();
    // Push what it publishes to an origin (EngineSettings::push_url): the channel's queue, set before
    // start(); a presentation's renditions push through it too, under their directories. Closed by stop().
    void set_push(std::shared_ptr<PushQueue> queue) { push_ = std::move(queue); }
    // Asks the worker to stop without waiting for it.
    void request_stop();
    // Returns promptly even when the source hangs: every blocking libav call watches the stop flag.
    // Empties the window and removes the disk mirror's directory.
    void stop();

    ChannelStatus status() const;
    std::optional<Resource> read(std::string_view file, Delivery delivery) const;
    // The continuous TS (Engine::read_ts_segment): segment `msn` as MPEG-TS. A plain TS channel's is
    // the window's own buffer; an fMP4 channel's, or a presentation's (the top video rendition with
    // the default audio rendition of its group), is remuxed once under ts_mu_ and kept for every
    // viewer (ts_cache_). nullopt: not published (yet), a gap, or a segment that failed to remux
    // (logged once).
    std::optional<Resource> read_ts(int64_t msn) const;
    // Housekeeping (the engine's housekeeping thread): frees segments whose grace ended, sweeps the disk
    // mirror, turns "running" into "stalled" and back, clears an old error, summarises repeated warnings.
    void sweep();
    // Until the first playlists exist (true), or the deadline passes, or the channel stops or fails.
    bool wait_ready(SteadyClock::time_point deadline);
    int64_t next_sequence() const;
    // LL-HLS: where the media playlist stands (PlaylistPosition), and a wait for it to hold segment
    // `msn` (part >= 0: its part `part`) until the deadline, the channel stopping or its failing.
    PlaylistPosition position() const;
    bool wait_position(int64_t msn, int part, SteadyClock::time_point deadline);
    // The rendition whose position a media playlist of a presentation follows: "v1/index.m3u8"
    // that rendition, "index.m3u8" the highest video rendition. Null otherwise, e.g. for the
    // "index.m3u8" of a channel that is not a presentation (its own position() stands).
    std::shared_ptr<ChannelWorker> playlist_owner(std::string_view file) const;
    void wake_position_waiters();  // after a part or (low latency) a segment is published
    const ChannelConfig& channel() const { return channel_; }
    // A rendition of a presentation that switched to another master: leaves its source at once
    // and goes on with media playlist `url` (named by the master at `parent`), in the numbering
    // of SequenceMap generation `generation`. An empty `url`: the new master has no match for it;
    // it publishes nothing (`why` is its error) until the next repoint.
    void repoint(std::string url, std::string parent, int64_t generation, std::string why = {});
    // A rendition's measured stream and its status row.
    StreamInfo stream_info() const;
    ChannelStatus own_status() const;  // this worker's alone (status() adds a presentation's renditions)
    RenditionStatus rendition_status() const;

private:
    // The source's master playlist, planned: the renditions to run, the master to mirror.
    struct Plan {
        std::string master_url;                 // final URL
        std::vector<PresentationEntry> entries;  // what master.m3u8 lists
        std::vector<RenditionRole> roles;        // one per child, in entry order (ids unique)
        std::vector<int> child_of_entry;         // entry -> index into roles, -1: no child (closed captions)
        bool independent = false;
        PinnedPlaylist single;                   // no roles: the one variant a single-rendition channel reads
    };
    void run();
    void run_source(Segmenter& segmenter, const std::string& url, const PinnedPlaylist* pin, const FirstLoad* first = nullptr);
    // The sources' context; `irq`/`bytes` (the probe's): instead of the worker's interrupter / bytes_in_.
    SourceContext source_context(Segmenter& segmenter, const std::string& url, av::Interrupter* irq = nullptr,
                                 std::atomic<int64_t>* bytes = nullptr);
    // Fetches the master playlist at `url`; nullopt when it is a media playlist (then kept in `media`, if given).
    std::optional<Plan> plan(Segmenter& segmenter, const std::string& url, FirstLoad* media = nullptr);
    void run_presentation(Plan plan, Segmenter& segmenter);
    // A running presentation: switches it as a whole to another master when its top rendition
    // failed as long as the policy allows one URL, and back to the primary (fail-back). Until stop.
    void follow_presentation(Segmenter& segmenter);
    // One switch to channel_.urls[index]'s master: plans it, matches its renditions to the running
    // children and re-points them. False (with `error`) when the master cannot be used.
    bool switch_presentation(std::size_t index, Segmenter& segmenter, std::string& error, bool& hard);
    void on_top_failure(const std::string& url, bool permanent, bool delivered, bool hard);
    void on_child_event(const std::string& id, bool top, const Event& e);
    void refresh_master();  // the presentation's master.m3u8 and top-level index.m3u8
    std::vector<std::shared_ptr<ChannelWorker>> children() const;
    // Aligned renditions: the hooks of PinnedPlaylist.
    int64_t aligned_start(int64_t live_start, int64_t first, int64_t last);
    int64_t aligned_restart(int64_t live_start, int64_t first, int64_t last);
    void publish_gap(int64_t sequence, double duration, const Segmenter& segmenter);
    void publish_subtitle(std::string&& data, double duration, const std::optional<std::string>& date,
                          const Segmenter& segmenter);
    void publish(CutSegment&& cut, const Segmenter& segmenter);
    void publish_part(CutPart&& cut, const Segmenter& segmenter);
    void report_position();  // LL-HLS renditions: this one's position, for the others' reports
    // The media playlist(s) over the window as it is now (out_mu_ held).
    void render_playlists_locked();
    void publish_segment(std::shared_ptr<Segment> segment, const Segmenter& segmenter);
    std::shared_ptr<Segment> new_segment();
    void set_state(ChannelState state);     // serialised with transition() by transition_mu_
    void change_state(ChannelState state);  // set_state's body
    // Changes the state to `to` only if it is `from` (the housekeeping thread's running <-> stalled).
    void transition(ChannelState from, ChannelState to, const std::function<bool()>& still = {});
    void set_error(const std::string& message, bool emit_event);
    // A failed attempt: counts it, starts an outage if none is under way.
    void count_failure();
    // Logs a warning, rate-limited: the first one after a state change in full, then the repeats as a
    // summary at most once per error_clear_after seconds and at the next state change.
    void warn(const std::string& message);
    void flush_warnings(bool rearm);
    void expire_error(SteadyClock::time_point now);
    void add_source_note(const std::string& note);
    bool sleep(double seconds);
    bool stopping();
    // The sources' sleep: also cut short when the worker leaves a backup (fail-back).
    bool source_sleep(double seconds);
    // Fail-back: probes the primary while a backup plays (the probe thread), and the leave it asks for.
    void probe_loop();
    void maybe_leave();  // after a published segment: leaves the source when a fail-back is pending
    bool take_leave();   // after the source returned: whether it was left on purpose (re-arms the source)
    // A rendition: a repoint() asked for and not yet taken (sleep_mu_).
    struct Repoint {
        std::string url, parent, why;
        int64_t generation = 0;
    };
    std::optional<Repoint> take_repoint();  // re-arms the source
    bool repoint_pending();
    bool apply_repoint(const Repoint& r);  // false: stopping
    void remove_files(const std::vector<SegmentPtr>& gone);

    const ChannelConfig channel_;
    const HlsSettings hls_;
    const EngineSettings engine_;
    const std::shared_ptr<BufferPool> pool_;  // segment buffers, shared by the engine's channels
    Emit emit_;
    Log log_;
    av::Interrupter interrupter_;
    std::unique_ptr<DiskMirror> mirror_;
    std::shared_ptr<PushQueue> push_;  // the channel's (a rendition shares its presentation's)
    std::string push_prefix_;          // a rendition's directory ("v0/"), "" for the channel
    std::thread thread_;

    std::mutex sleep_mu_;
    std::condition_variable sleep_cv_;
    bool stopping_ = false;
    bool leaving_ = false;  // sleep_mu_: the worker leaves the current source for the primary
    std::optional<Repoint> repoint_;  // sleep_mu_: a rendition's next media playlist (repoint())

    // Failover: the policy (failover_mu_; the worker, the probe thread and status read it).
    mutable std::mutex failover_mu_;
    FailoverPolicy failover_{1, FailoverSettings{}};
    std::atomic<bool> failback_pending_{false};  // the primary is healthy: leave at a segment boundary
    av::Interrupter probe_interrupter_;          // the probe's fetches (stopped by request_stop)
    std::thread probe_thread_;
    // A presentation with backups (failover_mu_): the URL whose master the renditions follow, its
    // top rendition's media playlist (failures of another are stale) and a switch decided.
    std::size_t playing_ = 0;
    std::string top_url_;
    std::optional<std::size_t> switch_to_;
    SteadyClock::time_point switch_at_{};

    // Output: written by the worker, read by anyone.
    mutable std::mutex out_mu_;
    Window window_;
    std::shared_ptr<const std::string> media_playlist_, master_playlist_;
    std::shared_ptr<const std::string> delta_playlist_;  // LL-HLS: the delta update (_HLS_skip=YES)
    std::shared_ptr<const std::string> prefixed_delta_;  // LL-HLS, the top rendition: the top-level one's
    std::shared_ptr<const std::string> prefixed_mirror_; // LL-HLS, the top rendition: the top-level one, no parts (disk)
    double part_target_ = 0;                             // LL-HLS: > 0 when the channel cuts parts
    double arrival_burst_ = 0;                           // LL-HLS: Segmenter::arrival_burst, for PART-HOLD-BACK
    // LL-HLS: the number of the next part. It starts at 1000 x the first segment's number, so that a
    // part name never means two things across restarts (segment numbers only rise, and a segment has
    // fewer than 1000 parts: at least 0.1 s each, at most 60 s).
    int64_t next_part_ = 0;
    // LL-HLS, worker only: the last part of the segment being finished, held out of the window until
    // publish() lists it with its segment (see publish_part), and its PartPublished event.
    std::shared_ptr<Part> held_last_part_;
    std::optional<Event> held_part_event_;
    StreamInfo info_;
    int target_duration_ = 0;
    int64_t next_sequence_;
    int64_t discontinuity_sequence_ = 0;
    int64_t segments_published_ = 0;
    int64_t bytes_published_ = 0;
    mutable std::atomic<int64_t> bytes_delivered_{0};  // what read() handed out
    int64_t timestamp_repairs_ = 0;
    std::vector<std::string> notes_;         // the segmenter's and the sources' notes, as status shows them
    std::vector<std::string> source_notes_;  // the sources' notes (SourceContext::note)
    std::deque<std::pair<SteadyClock::time_point, int64_t>> input_samples_;  // for the input bitrate

    // State changes and their events, in one order for every subscriber (two threads change the state).
    std::mutex transition_mu_;

    // Status: written by the worker (and the housekeeping thread: stalled, error expiry), read by anyone.
    mutable std::mutex status_mu_;
    ChannelState state_ = ChannelState::Idle;
    std::string last_error_, last_error_at_;
    SteadyClock::time_point last_error_time_{};
    std::string previous_error_, previous_error_at_;
    int64_t reconnects_ = 0;          // outages
    int64_t reconnect_attempts_ = 0;  // failed attempts
    bool in_outage_ = false;
    SteadyClock::time_point outage_since_{};
    int64_t outage_attempts_ = 0;
    size_t url_index_ = 0;
    std::string role_url_;  // a rendition: its media playlist now (repoint())
    SteadyClock::time_point running_since_{};  // connected and publishing (kept across stalled)
    SteadyClock::time_point healthy_since_{};  // publishing (reset by stalled)
    SteadyClock::time_point last_publish_{};
    std::deque<double> burst_samples_;  // media seconds of the last bursts of publishing
    double burst_media_ = 0;            // ... of the current one
    double stall_after_ = 0;           // newest segment age beyond which running is stalled; 0: none yet

    // Warnings (see warn()).
    std::mutex warn_mu_;
    bool warn_armed_ = true;
    int64_t warn_repeats_ = 0;
    bool warn_varied_ = false;
    std::string warn_first_, warn_last_;
    SteadyClock::time_point warn_since_{}, warn_latest_{};

    // wait_ready(): set once the first playlists exist, or once the channel stops or fails.
    std::mutex ready_mu_;
    std::condition_variable ready_cv_;
    bool ready_ = false, finished_ = false;
    std::atomic<int64_t> bytes_in_{0};
    SteadyClock::time_point last_sweep_{};
    SourceHistory history_;  // worker thread only

    // A rendition of a presentation (role_), aligned by role_->map: worker thread only, except the
    // playlist prefixed for the top level (out_mu_).
    std::optional<RenditionRole> role_;
    PinnedPlaylist pin_;
    int64_t offset_ = 0, epoch_ = 0;   // output = source + offset_ (role_->map's, or our own when misaligned)
    int64_t pin_generation_ = 0;       // the SequenceMap generation of pin_.url (repoint())
    int64_t generation_ = 0;           // ... of the connection being cut: publishes only while current
    int64_t source_sequence_ = -1;     // the source segment being cut
    double source_duration_ = 0;
    bool source_published_ = false;    // ... has its output segment
    bool published_any_ = false;
    bool continues_ = false;           // aligned_start: a reconnect goes on in the presentation's numbering
    int64_t withhold_until_ = 0;  // aligned: numbers below this are published as gaps (SequenceMap::publish)
    SegmentFormat format_ = SegmentFormat::ts;
    double longest_subtitle_ = 0;
    SystemClock::duration date_correction_{};  // role_->map's dates minus ours (SequenceMap::date)
    std::shared_ptr<const std::string> prefixed_playlist_;  // out_mu_: the top rendition's, URIs "<id>/"

    // A presentation: its children and what its master lists (children_mu_).
    mutable std::mutex children_mu_;
    std::vector<std::shared_ptr<ChannelWorker>> children_;
    std::optional<Plan> plan_;
    std::size_t top_ = 0;
    bool stop_children_ = false;
    std::mutex refresh_mu_;  // refresh_master()

    // The continuous TS of a channel that is not plain TS (read_ts): its newest derived segments
    // (kTsViewSegments), oldest first; dropped by sweep() kTsViewIdle seconds after the last read.
    struct TsDerived {
        int64_t msn = 0;
        std::shared_ptr<const std::string> bytes;  // null: it failed to remux
        std::map<int, int> next_cc;                // the continuity counters the next segment goes on with
    };
    // The segments segment `msn`'s TS is made of: the video (or only) one first. Empty when one is
    // missing; `direct` set for a plain TS channel's own segment.
    struct TsInputs {
        SegmentPtr direct;
        std::vector<SegmentPtr> segments;
        bool audio_apart = false;  // segments[1] is the audio rendition's
    };
    TsInputs ts_inputs(int64_t msn) const;
    SegmentPtr find_segment(int64_t msn) const;  // a published segment with bytes (not a gap)
    std::shared_ptr<ChannelWorker> default_audio() const;  // a presentation's audio rendition for the TS
    // Makes segment `msn`'s TS into ts_cache_ (ts_mu_ held); its bytes, null when it failed.
    std::shared_ptr<const std::string> derive_ts_locked(int64_t msn, const TsInputs& in) const;
    mutable std::mutex ts_mu_;
    mutable std::deque<TsDerived> ts_cache_;
    mutable SteadyClock::time_point ts_last_read_{};
};

}  // namespace hlsrelay
