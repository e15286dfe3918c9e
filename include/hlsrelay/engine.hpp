// The public engine: a registry of live channels, one worker per running channel restreaming its
// source into a rolling in-memory HLS window, status snapshots, reads and events.
#pragma once

#include <hlsrelay/channel.hpp>
#include <hlsrelay/error.hpp>
#include <hlsrelay/events.hpp>
#include <hlsrelay/log.hpp>
#include <hlsrelay/resource.hpp>
#include <hlsrelay/settings.hpp>
#include <hlsrelay/status.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// The channel-list parsers (registry.hpp, with nlohmann/json) are not included: Engine::load() takes
// the text and returns a LoadReport (channel.hpp); include <hlsrelay/registry.hpp> to parse or print
// lists yourself.

namespace hlsrelay {

// How a channel was started. A provider at its connection limit (EngineSettings::providers) may stop
// an on-demand channel nobody has read for kProviderReclaimIdle seconds to start another.
enum class StartMode { manual, on_demand };

class Engine {
public:
    explicit Engine(EngineSettings settings = {});
    ~Engine();  // stops every channel; no event callback runs after it returns
    Engine(const Engine&) = delete;
    Engine& operator=(const Engine&) = delete;

    const EngineSettings& settings() const;

    // Registry. Channels are found by stream id or display name.
    // add_channel, update_channel, remove_channel and set_enabled are runtime changes: recorded as an
    // overlay over the lists (state.hpp) and applied again after every load()/load_file(), so they win
    // over what a list (re)loaded says; a list's copy of a channel the overlay added or removed is
    // skipped. With EngineSettings::state_file the overlay is also written there after each change
    // (atomically; a failed write throws Error(Io) after the change is made) and read back by the
    // constructor, which applies it at once (its added channels come before any list's) and throws
    // InvalidArgument for a file it cannot read or that is corrupt (a missing one is empty).
    LoadReport load(std::string_view text);  // M3U or JSON; adds every valid channel, reports the rest
    LoadReport load_file(const std::string& path);
    ChannelConfig add_channel(ChannelConfig channel);  // returns it with its assigned id
    // Replaces all but the id. A running channel restarts only when its source changed (same_source in
    // channel.hpp: urls, headers, HLS and fetch overrides, ...); a name, logo, group or guide attribute
    // alone is taken without a restart.
    ChannelConfig update_channel(std::string_view channel, ChannelConfig changes);
    void remove_channel(std::string_view channel);     // stops it first
    // Enables or disables a channel (ChannelConfig::enabled); disabling stops it. start() of a
    // disabled channel throws Error(Conflict).
    ChannelConfig set_enabled(std::string_view channel, bool enabled);
    std::vector<ChannelConfig> channels() const;
    std::optional<ChannelConfig> find_channel(std::string_view channel) const;
    // Whether `id` is a channel's registry id (exactly; no display names): the per-request check of
    // the HLS delivery path, which copies nothing.
    bool has_id(std::string_view id) const;

    // Control. start() of a running channel keeps it running; stop() of a stopped one is a no-op.
    // A channel of a provider whose connections are all in use: start() reclaims an idle on-demand
    // channel's, else waits up to kProviderWait seconds for one, else throws ErrorCode::Unavailable
    // naming the channels that hold them.
    ChannelConfig start(std::string_view channel, StartMode mode = StartMode::manual);
    void stop(std::string_view channel);
    void stop_all();
    bool running(std::string_view channel) const;

    // Status snapshots.
    ChannelStatus status(std::string_view channel) const;
    std::vector<ChannelStatus> statuses() const;
    HlsSettings settings_for(std::string_view channel) const;
    std::vector<ProviderStatus> providers() const;  // in EngineSettings::providers order

    // Reads from memory: "master.m3u8", "index.m3u8" or a segment name ("seg_<n>.ts"). nullopt when
    // the channel is unknown or stopped or the file does not exist (or left its grace period).
    // Every resource handed out with Delivery::whole adds its size to the channel's bytes_out (a
    // range request served from it counts the whole resource).
    std::optional<Resource> read(std::string_view channel, std::string_view file,
                                 Delivery delivery = Delivery::whole) const;

    // The continuous TS (api::TsStream): segment `msn` of the channel's media playlist ("index.m3u8")
    // as MPEG-TS. A TS channel's is its segment's own buffer (as read() gives it). An fMP4 channel's
    // is remuxed into TS (codec copy); a presentation's is its top video rendition's segment muxed with
    // the same segment of the DEFAULT audio rendition of that variant's group (subtitles left out).
    // Each is made once, on the first read, under a per-channel lock (a concurrent reader waits for
    // it), and shared by every reader: the newest kTsViewSegments are kept while read, dropped
    // kTsViewIdle seconds after the last read. Continuity counters go on from segment msn-1's when it
    // was made; PAT and PMT begin every segment. nullopt: unknown or stopped channel, a segment not
    // published (yet: a presentation's audio may follow its video), a gap, or one that could not be
    // remuxed (logged; a reader skips it). Counts in bytes_out as read() does. May take a few
    // milliseconds (a memory remux); never waits for the network.
    std::optional<Resource> read_ts_segment(std::string_view channel, int64_t msn) const;

    // Waits until the channel's first playlists (master.m3u8 and index.m3u8) can be read: true then
    // (at once if they already can), false when timeout_seconds pass first, and false at once for an
    // unknown, stopped or failed channel (also one stopped or failing while waiting). Wakes on the
    // event, it does not poll. Not from an event callback (the worker it waits for may be the one
    // calling). A negative or NaN timeout is InvalidArgument.
    bool wait_ready(std::string_view channel, double timeout_seconds) const;

    // LL-HLS blocking playlist reload (RFC 8216bis 6.2.5.2). playlist_position: where the channel's
    // media playlist ("index.m3u8") stands; nullopt for an unknown or stopped channel or another
    // file. wait_playlist: waits until that playlist holds segment `msn` (part >= 0: its part `part`),
    // true then; false when timeout_seconds pass first or the channel stops or fails. Wakes on the
    // publication, it does not poll. Not from an event callback. A host that must not block a thread
    // per request (an event loop) calls playlist_position() again on each SegmentPublished and
    // PartPublished event instead; api::hls_request says what to do with a request.
    std::optional<PlaylistPosition> playlist_position(std::string_view channel, std::string_view file) const;
    bool wait_playlist(std::string_view channel, std::string_view file, int64_t msn, int part,
                       double timeout_seconds) const;

    // The XMLTV guide (GET /epg.xml): the guides of EngineSettings::guide_urls and of every list
    // loaded (its url-tvg), fetched in the background and filtered to the registry's channels (by
    // tvg-id, else name; tvg-shift applied; <channel id> is the stream id). Never null: before the
    // first fetch (or without guides) every channel is listed without programmes. gzip: the same
    // document gzip-compressed (made once per rebuild). Never waits for a fetch.
    std::shared_ptr<const std::string> guide(bool gzip = false) const;
    std::vector<GuideSource> guide_sources() const;  // per URL, redacted
    void refresh_guides();  // fetch every guide again now (no URL more often than once a minute)

    // Channel lists by URL (EngineSettings::channel_lists), fetched in the background at start, every
    // list_refresh_interval and on refresh_lists(), each good fetch reconciled with the registry: the
    // list's new channels added (not started), its channels gone removed (stopped first), changed ones
    // updated as update_channel() does (restarted when running only if their source changed). Channels
    // of other lists or added otherwise are never touched. A failed fetch, a list without a usable
    // channel, or one that would remove all its channels and keep none changes nothing. The url-tvg
    // a list names joins the guides, as with load().
    std::vector<ListSource> list_sources() const;  // per URL, redacted
    void refresh_lists();  // fetch every list again now (no list more often than every 30 s)

    // Events.
    using SubscriptionId = uint64_t;
    SubscriptionId subscribe(EventCallback callback);
    void unsubscribe(SubscriptionId id);  // after it returns the callback is not running and never runs again

    struct Impl;

private:
    std::shared_ptr<Impl> impl_;
};

}  // namespace hlsrelay
