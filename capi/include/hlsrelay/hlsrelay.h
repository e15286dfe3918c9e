/* hlsrelay.h: the stable C ABI of hlsrelay (restream live channels into low-latency HLS in-process). */
#ifndef HLSRELAY_H
#define HLSRELAY_H

/*
 * Conventions (docs/c-api.md is the full contract):
 *
 * - Handles are opaque: hlsrelay_engine, hlsrelay_resource, hlsrelay_load_report, hlsrelay_ts_reader.
 *   Each has exactly one function that frees it; freeing NULL is allowed.
 * - Functions returning int return HLSRELAY_OK (0) or a value >= 0 on success and a negative
 *   hlsrelay_error code on failure. On failure hlsrelay_last_error() describes what went wrong.
 *   Output parameters are left untouched on failure unless stated otherwise (handle out-parameters
 *   are set to NULL).
 * - No C++ exception ever leaves the library.
 * - Strings passed in are NUL-terminated UTF-8 and are copied: the caller may free them as soon as
 *   the call returns.
 * - Strings passed out use the caller-buffer protocol ("buf, size"):
 *     *size is in: the capacity of buf in bytes; out: the bytes needed, terminating NUL included.
 *     buf == NULL      -> only *size is set; returns HLSRELAY_OK (the size query).
 *     *size too small  -> returns HLSRELAY_EBUFFER, *size holds the size needed, buf receives "" if
 *                         it has room for one byte; nothing else happened, so retry with a buffer
 *                         of *size bytes (the content of live data may grow meanwhile: loop).
 *     otherwise        -> buf holds the NUL-terminated text, *size is strlen(buf) + 1.
 *   size == NULL is HLSRELAY_EINVAL. The caller owns buf.
 * - Thread safety: every function taking an engine may be called from any thread, concurrently,
 *   except hlsrelay_engine_destroy(), which must not race with any other call on that engine (TS readers
 *   excepted: see hlsrelay_ts_reader).
 *   hlsrelay_resource and hlsrelay_load_report handles are immutable: any thread may read them;
 *   free each once, after its last use. A hlsrelay_ts_reader is used by one thread at a time
 *   (hlsrelay_ts_stats excepted: see there).
 * - Event callbacks: see hlsrelay_subscribe().
 */

#include <stddef.h>
#include <stdint.h>

/* ---- Export macro ---- */
#if defined(_WIN32) || defined(__CYGWIN__)
#  if defined(HLSRELAY_BUILDING)
#    define HLSRELAY_API __declspec(dllexport)
#  elif defined(HLSRELAY_STATIC)
#    define HLSRELAY_API
#  else
#    define HLSRELAY_API __declspec(dllimport)
#  endif
#elif defined(HLSRELAY_BUILDING) && (defined(__GNUC__) || defined(__clang__))
#  define HLSRELAY_API __attribute__((visibility("default")))
#else
#  define HLSRELAY_API
#endif

/* Header-only helpers: `inline` is C99/C++; older C compilers spell it __inline. */
#if defined(__cplusplus) || (defined(__STDC_VERSION__) && __STDC_VERSION__ >= 199901L)
#  define HLSRELAY_INLINE static inline
#elif defined(__GNUC__) || defined(_MSC_VER)
#  define HLSRELAY_INLINE static __inline
#else
#  define HLSRELAY_INLINE static
#endif

/* ---- Version ---- */
/* The version of this header. hlsrelay_version_number() is the version of the library loaded at
 * run time; it may be newer than the header (same major version: see the ABI policy). */
#define HLSRELAY_VERSION_MAJOR 0
#define HLSRELAY_VERSION_MINOR 1
#define HLSRELAY_VERSION_PATCH 0
#define HLSRELAY_VERSION_NUMBER \
    (HLSRELAY_VERSION_MAJOR * 10000 + HLSRELAY_VERSION_MINOR * 100 + HLSRELAY_VERSION_PATCH)
#define HLSRELAY_VERSION_STRINGIFY_(x) #x
#define HLSRELAY_VERSION_STRINGIFY(x) HLSRELAY_VERSION_STRINGIFY_(x)
#define HLSRELAY_VERSION_STRING                        \
    HLSRELAY_VERSION_STRINGIFY(HLSRELAY_VERSION_MAJOR) \
    "." HLSRELAY_VERSION_STRINGIFY(HLSRELAY_VERSION_MINOR) "." HLSRELAY_VERSION_STRINGIFY(HLSRELAY_VERSION_PATCH)

#ifdef __cplusplus
extern "C" {
#endif

/* "MAJOR.MINOR.PATCH" of the loaded library. Static storage; never NULL. */
HLSRELAY_API const char* hlsrelay_version(void);
/* MAJOR * 10000 + MINOR * 100 + PATCH of the loaded library. */
HLSRELAY_API unsigned int hlsrelay_version_number(void);

/* ---- Errors ---- */
/* Values are part of the ABI: never renumbered, never reused. New codes may be added. */
typedef enum hlsrelay_error {
    HLSRELAY_OK = 0,
    HLSRELAY_EINVAL = -1,     /* invalid argument: NULL handle or pointer, malformed JSON, bad value */
    HLSRELAY_ENOTFOUND = -2,  /* no such channel, file (segment/playlist) or subscription */
    HLSRELAY_EIO = -3,        /* a file could not be read */
    HLSRELAY_EBUFFER = -4,    /* caller buffer too small; *size holds the size needed */
    HLSRELAY_ENOMEM = -5,     /* out of memory */
    HLSRELAY_EINTERNAL = -6,  /* a bug or an unexpected failure; the message says more */
    HLSRELAY_ESTATE = -7,     /* not possible in this state (channel not running or disabled, call from a
                                 callback) */
    HLSRELAY_ETIMEDOUT = -8,  /* the wait ended before what it waited for happened (hlsrelay_wait_ready,
                                 hlsrelay_wait_playlist, hlsrelay_ts_next) */
    HLSRELAY_EEND = -9,       /* a continuous stream ended: its channel stopped, failed or was removed, or its
                                 engine was destroyed (hlsrelay_ts_next); no more data will come */
    HLSRELAY_EUNAVAILABLE = -10 /* not now: the channel's provider has all its connections in use (the
                                   message names the channels holding them); retry later */
} hlsrelay_error;

/* What the last failing call made on this thread reported; "" after a successful call. Owned by the
 * library, never NULL, valid until the next hlsrelay_* call on this thread. */
HLSRELAY_API const char* hlsrelay_last_error(void);

/* ---- Engine ---- */
typedef struct hlsrelay_engine hlsrelay_engine;

typedef enum hlsrelay_log_level {
    HLSRELAY_LOG_DEBUG = 0,
    HLSRELAY_LOG_INFO = 1,
    HLSRELAY_LOG_WARN = 2,
    HLSRELAY_LOG_ERROR = 3,
    HLSRELAY_LOG_OFF = 4
} hlsrelay_log_level;

/* The output's packaging (hlsrelay_settings.container; a channel's JSON "container": "ts" | "fmp4"). */
typedef enum hlsrelay_container {
    HLSRELAY_CONTAINER_TS = 0,   /* MPEG-TS segments (seg_<n>.ts) */
    HLSRELAY_CONTAINER_FMP4 = 1  /* fMP4/CMAF: an init section (init_<k>.mp4, EXT-X-MAP) and seg_<n>.m4s */
} hlsrelay_container;

/* Engine-wide settings. Fields are only ever appended. Set struct_size to sizeof(hlsrelay_settings)
 * (HLSRELAY_SETTINGS_INIT and hlsrelay_settings_init do): the library reads only the fields that fit
 * in struct_size and uses its defaults for the rest, so a program built against an older header keeps
 * working with a newer library. Logging goes to stderr. */
typedef struct hlsrelay_settings {
    size_t struct_size;       /* sizeof(hlsrelay_settings) as the caller compiled it */
    double segment_duration;  /* seconds, 0.5..60; a segment is cut at the first keyframe after it (2) */
    int max_segments;         /* segments listed in the media playlist, 1..100 (5) */
    double cleanup_interval;  /* seconds between sweeps of the disk mirror, 0.1..3600 (5) */
    const char* hls_dir;      /* mirror playlists and segments to {hls_dir}/{id}/; NULL: memory only (NULL);
                                 copied by hlsrelay_engine_create */
    double read_timeout;      /* seconds a blocking source read may take before it counts as stalled (10) */
    double reconnect_min;     /* first reconnect delay in seconds; doubles up to reconnect_max (0.5) */
    double reconnect_max;     /* (30) */
    int log_level;            /* an hlsrelay_log_level (HLSRELAY_LOG_WARN) */
    /* Caps and deadlines of every upstream fetch (channels may override them: the channel fields of
     * the same names); a fetch exceeding one is aborted with an error in the channel's status.
     * docs/security.md. */
    int64_t max_playlist_bytes; /* a playlist's size, 4096..2^30 bytes (4 MiB) */
    int64_t max_segment_bytes;  /* a segment's, init section's or key's size, 65536..2^32 bytes (64 MiB) */
    int max_redirects;          /* HTTP redirects followed per fetch, 0..20 (5) */
    double playlist_deadline;   /* seconds a whole playlist fetch may take, 0.5..3600; 0: automatic (0) */
    double segment_deadline;    /* seconds a whole segment fetch may take, 0.5..3600; 0: automatic (0) */
    /* Appended in 0.1 (issue 12); channels may override both (the channel fields of the same names). */
    int container;              /* an hlsrelay_container (HLSRELAY_CONTAINER_TS) */
    const char* renditions;     /* which renditions of a multivariant source run: "all", "highest", "lowest",
                                   "max-height=<px>", "max-bandwidth=<bits/s>" or heights "1080p,360p";
                                   NULL: "all" (NULL); copied by hlsrelay_engine_create */
    /* Appended in 0.1 (issue 13): LL-HLS; channels may override both ("low_latency", "part_duration"). */
    int low_latency;            /* 1: cut parts, list them with a preload hint, answer blocking reloads (0) */
    double part_duration;       /* seconds a part lasts at most, 0.1..5 and at most the segment (1/3) */
    /* Appended in 0.1 (the tuner): the HDHomeRun device that hlsrelay_api's "discover", "lineup" and
     * "device-xml" replies describe. Strings are copied by hlsrelay_engine_create. */
    const char* tuner_name;      /* FriendlyName, as media servers list the tuner: 1-64 bytes, no control
                                    characters; NULL: "hlsrelay" (NULL) */
    const char* tuner_device_id; /* DeviceID: 8 hex digits that pass HDHomeRun's checksum; NULL: derived
                                    from tuner_seed (NULL) */
    const char* tuner_seed;      /* the device id, auth and UPnP UDN derive from it (at most 256 bytes), so
                                    they are stable per install; NULL: the host name (NULL) */
    int tuner_count;             /* TunerCount: streams a client may hold at once, 0..255; 0: one per
                                    channel, at most each provider's limit for its channels (0) */
    /* Appended in 0.1 (providers): IPTV accounts and their connection limits, space-separated
     * "NAME=MAX[@HOST[,HOST...]]" as hlsrelay-server's --provider (docs/http-api.md, Providers);
     * NULL: none (NULL); copied by hlsrelay_engine_create. */
    const char* providers;
    /* Appended in 0.1 (issue 14): channel lists by http(s) URL (a provider's get.php?...&type=m3u_plus),
     * fetched in the background at start, every list_refresh_interval seconds and on "lists-refresh",
     * each good fetch reconciled with the registry (hlsrelay_api "lists" reports them, redacted). */
    const char* const* channel_lists; /* channel_list_count URLs, copied by hlsrelay_engine_create (NULL) */
    size_t channel_list_count;        /* (0) */
    double list_refresh_interval;     /* seconds between two fetches of a list, 1..366 days (21600) */
    int64_t max_list_bytes;           /* a list's size as decoded, 4096..2^30 bytes (64 MiB) */
    /* Appended in 0.1 (issue 14): runtime channel management (hlsrelay_channel_add/_update/_remove,
     * hlsrelay_api_call "channel-*") is recorded in this file, written atomically (mode 0600: it holds
     * sources and headers) after each change, and applied again over every list loaded, so the changes
     * survive a restart. A missing file is empty; one that cannot be read or is corrupt makes
     * hlsrelay_engine_create fail with HLSRELAY_EINVAL and a message naming it. NULL: none (NULL);
     * copied by hlsrelay_engine_create. */
    const char* state_file;
    /* Appended in 0.1 (issue 15): PUT every segment (and fMP4 init section) and then the playlists
     * naming it to {push_url}/{id}/ (an HTTP origin with WebDAV PUT/DELETE, as CDNs ingest), DELETE
     * segments after their grace; "push" in the channel's status counts what happened. http:// or
     * https:// only (user:pass@ becomes Basic auth, never shown); NULL: no push (NULL); copied by
     * hlsrelay_engine_create. */
    const char* push_url;
} hlsrelay_settings;

#define HLSRELAY_SETTINGS_INIT                                                                   \
    { sizeof(hlsrelay_settings), 2.0, 5, 5.0, NULL, 10.0, 0.5, 30.0, HLSRELAY_LOG_WARN, INT64_C(4194304), \
      INT64_C(67108864), 5, 0.0, 0.0, HLSRELAY_CONTAINER_TS, NULL, 0, 1.0 / 3, NULL, NULL, NULL, 0, NULL, NULL, 0, \
      21600.0, INT64_C(67108864), NULL, NULL }

/* Fills *settings with the defaults of this header (inline: it can never write past the caller's
 * struct). NULL is ignored. */
HLSRELAY_INLINE void hlsrelay_settings_init(hlsrelay_settings* settings) {
    hlsrelay_settings defaults = HLSRELAY_SETTINGS_INIT;
    if (settings) *settings = defaults;
}

/* Creates an engine. settings may be NULL (all defaults). On success *out is a new engine the caller
 * frees with hlsrelay_engine_destroy; on failure *out is NULL. Invalid settings: HLSRELAY_EINVAL. */
HLSRELAY_API int hlsrelay_engine_create(const hlsrelay_settings* settings, hlsrelay_engine** out);

/* Stops every channel, waits for their workers and frees the engine. After it returns no callback of
 * this engine runs. NULL: does nothing, returns HLSRELAY_OK. Called from one of this engine's event
 * callbacks: HLSRELAY_ESTATE and nothing is freed. Resources already read stay valid. TS readers of
 * this engine end: a hlsrelay_ts_next waiting on another thread returns HLSRELAY_EEND before the engine
 * is freed, later ones return HLSRELAY_EEND at once; each reader is still freed with hlsrelay_ts_close. */
HLSRELAY_API int hlsrelay_engine_destroy(hlsrelay_engine* engine);

/* ---- Registry ---- */
/* Channels are named by stream id ("arte_hd") or display name ("Arte HD") wherever a function takes
 * `channel`. A stream id is at most 64 bytes: HLSRELAY_ID_MAX always holds one. */
#define HLSRELAY_ID_MAX 65

/* The result of loading a channel list: which channels were added and what was skipped or repaired. */
typedef struct hlsrelay_load_report hlsrelay_load_report;

/* Loads a channel list (IPTV M3U or JSON: an array of channel objects or {"channels": [...]}) and adds
 * every valid channel. Returns the number of channels added (>= 0) or a negative error code. Entries
 * that cannot be added are not an error: they are reported as issues. If report is not NULL, *report
 * receives a new report the caller frees with hlsrelay_load_report_free (NULL on failure).
 * hlsrelay_load_file: an unreadable file is HLSRELAY_EIO. */
HLSRELAY_API int hlsrelay_load_string(hlsrelay_engine* engine, const char* text, hlsrelay_load_report** report);
HLSRELAY_API int hlsrelay_load_file(hlsrelay_engine* engine, const char* path, hlsrelay_load_report** report);

/* Channels added, in list order; the string is owned by the report. NULL for NULL or out of range. */
HLSRELAY_API size_t hlsrelay_load_report_channel_count(const hlsrelay_load_report* report);
HLSRELAY_API const char* hlsrelay_load_report_channel(const hlsrelay_load_report* report, size_t index);
/* Issues: a 1-based line (for JSON the entry's index + 1; 0: no line) and a message owned by the
 * report. Line -1 and message NULL for NULL or out of range. */
HLSRELAY_API size_t hlsrelay_load_report_issue_count(const hlsrelay_load_report* report);
HLSRELAY_API int hlsrelay_load_report_issue_line(const hlsrelay_load_report* report, size_t index);
HLSRELAY_API const char* hlsrelay_load_report_issue_message(const hlsrelay_load_report* report, size_t index);
/* The whole report as JSON, caller-buffer protocol:
 * {"added": 1, "channels": [{"id": "...", "name": "...", "hls_url": "..."}],
 *  "issues": [{"line": 3, "message": "..."}]} */
HLSRELAY_API int hlsrelay_load_report_json(const hlsrelay_load_report* report, char* buf, size_t* size);
HLSRELAY_API void hlsrelay_load_report_free(hlsrelay_load_report* report);

/* Adds one channel given as a JSON object with the fields of a channel-list entry: "name" and "url" or
 * "urls" required; "id", "logo", "group", "chno", "headers", "user_agent", "referer", "loop", "realtime",
 * "variant", "segment_duration", "max_segments", "cleanup_interval", "container", "renditions",
 * "max_playlist_bytes",
 * "max_segment_bytes", "max_redirects", "playlist_deadline", "segment_deadline" optional; unknown fields are
 * ignored. The channel is added exactly once; its id (assigned from the name when "id" is absent, made
 * unique) goes to id_buf. Because adding is not repeatable, there is no size query: id_buf may be NULL
 * (id not wanted; *id_size, if id_size is not NULL, receives the size needed), and a non-NULL id_buf
 * needs *id_size >= HLSRELAY_ID_MAX, otherwise HLSRELAY_EBUFFER is returned before anything is added.
 * An invalid channel is HLSRELAY_EINVAL. */
HLSRELAY_API int hlsrelay_channel_add(hlsrelay_engine* engine, const char* channel_json, char* id_buf, size_t* id_size);

/* Changes a channel: `patch_json` is a JSON merge patch (RFC 7396) over the channel's configuration,
 * fields as for hlsrelay_channel_add ("id" is ignored; null removes a field; giving "url" or "urls"
 * replaces all sources). A running channel restarts with the new configuration when its source changed
 * (sources, headers, HLS and fetch settings); a change of name, logo, group or guide attributes alone
 * is taken without a restart. */
HLSRELAY_API int hlsrelay_channel_update(hlsrelay_engine* engine, const char* channel, const char* patch_json);

/* Stops the channel if running and removes it. */
HLSRELAY_API int hlsrelay_channel_remove(hlsrelay_engine* engine, const char* channel);

/* The registry as JSON, caller-buffer protocol. flags 0: {"channels": [...]} as the HTTP API lists it,
 * source URLs redacted, header values null, each with "hls_url" and "running".
 * HLSRELAY_CHANNELS_WITH_SOURCES: the full configuration, which hlsrelay_load_string loads back
 * (contains credentials). Unknown flags: HLSRELAY_EINVAL. */
#define HLSRELAY_CHANNELS_WITH_SOURCES 1
HLSRELAY_API int hlsrelay_channels_json(hlsrelay_engine* engine, int flags, char* buf, size_t* size);

/* ---- Control ---- */
/* Starting a running channel keeps it running; stopping a stopped one does nothing. Both return once
 * the worker has started or stopped (a stop waits for the worker thread, interrupting blocking reads). */
HLSRELAY_API int hlsrelay_start(hlsrelay_engine* engine, const char* channel);
HLSRELAY_API int hlsrelay_stop(hlsrelay_engine* engine, const char* channel);
/* A channel of a provider with all its connections in use: hlsrelay_start reclaims the connection of an
 * on-demand channel nobody read for 10 s, else waits up to 3 s for one, else returns
 * HLSRELAY_EUNAVAILABLE naming the channels holding them. hlsrelay_start_on_demand starts a channel as a
 * viewer's request does (its connection may be reclaimed once idle); otherwise as hlsrelay_start. */
HLSRELAY_API int hlsrelay_start_on_demand(hlsrelay_engine* engine, const char* channel);

/* ---- Status ---- */
/* Caller-buffer protocol. channel != NULL: that channel's status object (the HTTP API's
 * stream-status reply: "process_status", "state", "segment_count", "last_error", ...).
 * channel == NULL: all channels, the streams-status reply
 * {"total_channels", "running_streams", "active_cleanup_threads", "hls_config", "streams": [...]}. */
HLSRELAY_API int hlsrelay_status_json(hlsrelay_engine* engine, const char* channel, char* buf, size_t* size);

/* ---- Reading playlists and segments from memory ---- */
typedef struct hlsrelay_resource hlsrelay_resource;

/* Reads "master.m3u8", "index.m3u8" or a segment named in the playlist ("seg_<n>.ts") of a running
 * channel without copying it. On success *out is a new handle that keeps the bytes alive, even after
 * the channel stopped or the engine was destroyed; free it with hlsrelay_resource_free. On failure *out
 * is NULL: HLSRELAY_ENOTFOUND for an unknown channel or a file that does not exist (yet, or any more),
 * HLSRELAY_ESTATE for a channel that is not running. */
HLSRELAY_API int hlsrelay_read(hlsrelay_engine* engine, const char* channel, const char* name, hlsrelay_resource** out);
/* The bytes (not NUL-terminated) and their count; owned by the handle. NULL / 0 for NULL. */
HLSRELAY_API const uint8_t* hlsrelay_resource_data(const hlsrelay_resource* resource);
HLSRELAY_API size_t hlsrelay_resource_size(const hlsrelay_resource* resource);
/* "application/vnd.apple.mpegurl" or "video/mp2t"; owned by the handle; "" for NULL. */
HLSRELAY_API const char* hlsrelay_resource_content_type(const hlsrelay_resource* resource);
/* 1 for segments (their bytes never change: cache them forever), 0 for playlists and NULL. */
HLSRELAY_API int hlsrelay_resource_immutable(const hlsrelay_resource* resource);
HLSRELAY_API void hlsrelay_resource_free(hlsrelay_resource* resource);

/* ---- Waiting for a channel ---- */
/* Waits until the channel's first playlists (master.m3u8 and index.m3u8) can be read with hlsrelay_read,
 * at most timeout_seconds (>= 0; 0 only checks). Wakes when they appear, it does not poll. Returns
 * HLSRELAY_OK when they can be read (at once if they already can); HLSRELAY_ETIMEDOUT when the timeout
 * passed first; HLSRELAY_ESTATE at once for a channel that is not running or has failed (also when it
 * stops or fails during the wait, and from inside an event callback of this engine);
 * HLSRELAY_ENOTFOUND for an unknown channel; HLSRELAY_EINVAL for a negative or NaN timeout. */
HLSRELAY_API int hlsrelay_wait_ready(hlsrelay_engine* engine, const char* channel, double timeout_seconds);

/* LL-HLS blocking playlist reload (RFC 8216bis 6.2.5.2), as `_HLS_msn=msn&_HLS_part=part` asks: waits
 * until the channel's media playlist holds segment `msn` whole (part < 0) or its part `part` (a part
 * past the last one of a whole segment meaning the next segment's first), at most timeout_seconds,
 * then HLSRELAY_OK: read "index.m3u8" (or its delta update, "index.m3u8?_HLS_skip=YES"). Wakes on the
 * publication, it does not poll. HLSRELAY_ETIMEDOUT when the time passes first (an HTTP server answers
 * 503 after three target durations); HLSRELAY_EINVAL for a msn more than two segments past the
 * playlist's last (an HTTP server answers 400) or a negative or NaN timeout; HLSRELAY_ESTATE when the
 * channel is not running or has no low latency; HLSRELAY_ENOTFOUND for an unknown channel. Not from an
 * event callback (HLSRELAY_ESTATE). Parts are read like segments: "part_<n>.ts" or ".m4s" as the
 * playlist names them. */
HLSRELAY_API int hlsrelay_wait_playlist(hlsrelay_engine* engine, const char* channel, int64_t msn, int part,
                                        double timeout_seconds);
/* hlsrelay_wait_playlist for any media playlist of the channel: "index.m3u8" (the same call), or in a
 * presentation (a multivariant source) a rendition's, "v1/index.m3u8" or "a0/index.m3u8"; then read
 * that playlist (its delta update: "v1/index.m3u8?_HLS_skip=YES"). HLSRELAY_ENOTFOUND also for a
 * playlist the channel does not have. Added after hlsrelay_wait_playlist. */
HLSRELAY_API int hlsrelay_wait_media_playlist(hlsrelay_engine* engine, const char* channel, const char* playlist,
                                              int64_t msn, int part, double timeout_seconds);

/* ---- Events ---- */
/* A channel's state: the status JSON's "state" and an event's `state` as numbers. Values are ABI:
 * never renumbered; new states may be appended (treat unknown values as "running or not" by name). */
typedef enum hlsrelay_state {
    HLSRELAY_STATE_IDLE = 0,
    HLSRELAY_STATE_STARTING = 1,
    HLSRELAY_STATE_RUNNING = 2,
    HLSRELAY_STATE_RECONNECTING = 3,
    HLSRELAY_STATE_STOPPED = 4,
    HLSRELAY_STATE_FAILED = 5,
    HLSRELAY_STATE_STALLED = 6 /* running, but the newest segment is older than ~3 target durations */
} hlsrelay_state;

typedef enum hlsrelay_event_type {
    HLSRELAY_EVENT_STATE = 1,    /* a channel's state changed; `state` is the new one */
    HLSRELAY_EVENT_SEGMENT = 2,  /* a segment was published; `sequence`, `duration` */
    HLSRELAY_EVENT_ERROR = 3,    /* a source failed (the channel reconnects); `message` */
    HLSRELAY_EVENT_PART = 4      /* low latency: a part of the segment being cut was published; `sequence`
                                    (its segment), `part`, `duration` */
} hlsrelay_event_type;

/* Valid only during the callback: copy what you keep. Strings are never NULL ("" when not applicable).
 * Fields are only ever appended: struct_size is the library's sizeof(hlsrelay_event); read a field
 * added in a later version only if struct_size covers it. */
typedef struct hlsrelay_event {
    size_t struct_size;
    int type;             /* an hlsrelay_event_type; ignore types you do not know */
    const char* channel;  /* the stream id */
    const char* state;    /* "starting", "running", "reconnecting", "stopped", "failed", "stalled" (STATE,
                             SEGMENT); "" otherwise */
    const char* message;  /* ERROR: what went wrong, credentials redacted */
    int64_t sequence;     /* SEGMENT: its media sequence number; -1 otherwise */
    double duration;      /* SEGMENT: seconds; 0 otherwise */
    int state_code;       /* `state` as an hlsrelay_state (STATE, SEGMENT); -1 otherwise. Appended: read it
                             when struct_size >= offsetof(hlsrelay_event, state_code) + sizeof(int) */
    int part;             /* PART: its index in segment `sequence`; -1 otherwise. Appended: read it when
                             struct_size >= offsetof(hlsrelay_event, part) + sizeof(int) */
    const char* rendition; /* PART of a presentation: the rendition ("v1", "a0") whose playlist
                             ("v1/index.m3u8") has the part; "" for the top-level index.m3u8 and every
                             other event. Appended: read it when struct_size >=
                             offsetof(hlsrelay_event, rendition) + sizeof(const char*) */
} hlsrelay_event;

typedef void (*hlsrelay_event_cb)(const hlsrelay_event* event, void* user_data);

/* Registers a callback for every channel's events; *subscription receives its id (never 0).
 *
 * Callbacks run on engine threads: a channel's worker thread, the engine's housekeeping thread (which
 * reports "stalled" and the way back to "running"), or the thread calling hlsrelay_start
 * (or hlsrelay_channel_update or hlsrelay_api "start-stream"), which reports the "starting" state
 * before it returns. One subscription's callback never runs on two threads at once; different
 * subscriptions may run concurrently. Keep callbacks short: a worker waits for them.
 *
 * From inside a callback, do not call, on the same engine: hlsrelay_start, hlsrelay_stop,
 * hlsrelay_channel_update, hlsrelay_channel_remove, hlsrelay_engine_destroy, hlsrelay_unsubscribe of
 * another subscription, or hlsrelay_api "start-stream"/"stop-stream" (they wait for workers or
 * callbacks and would deadlock), or hlsrelay_wait_ready, hlsrelay_wait_playlist, hlsrelay_ts_open,
 * hlsrelay_ts_next. The library detects this and returns HLSRELAY_ESTATE. Everything else is allowed,
 * including hlsrelay_unsubscribe of the callback's own subscription and hlsrelay_ts_close. */
HLSRELAY_API int hlsrelay_subscribe(hlsrelay_engine* engine, hlsrelay_event_cb callback, void* user_data,
                                    uint64_t* subscription);

/* After it returns the callback is not running and never runs again (called from the callback's own
 * invocation, it returns at once and the callback is not called again). Unknown id: HLSRELAY_ENOTFOUND. */
HLSRELAY_API int hlsrelay_unsubscribe(hlsrelay_engine* engine, uint64_t subscription);

/* ---- The HTTP API's replies, for hosts that serve it themselves ---- */
/* endpoint: "start-stream", "stop-stream", "stream-status" (these three need `channel`),
 * "streams-status", "static-hls-m3u" (uses `base_url`, e.g. "http://host:8000"; NULL: relative URLs),
 * "channels", and the tuner's (HDHomeRun): "discover" (discover.json), "lineup" (lineup.json: every
 * channel's GuideNumber and continuous TS URL, <base_url>/stream/<id>.ts), "lineup-status",
 * "lineup-post" (an empty body), "device-xml" (device.xml), "playlist" (an M3U of the continuous TS
 * URLs); "discover", "lineup", "device-xml" and "playlist" use `base_url` too. The channel management
 * rows ("channel-add", ...) take a body: hlsrelay_api_call. Writes the reply body to
 * buf (caller-buffer protocol) and its HTTP status to *http_status (may be NULL; set also when
 * HLSRELAY_EBUFFER is returned). Bodies are JSON ("application/json") except static-hls-m3u and playlist
 * ("audio/x-mpegurl"), device-xml ("application/xml") and lineup-post (""). A reply that is an HTTP error (404 "Channel not found",
 * 400, 500) is still HLSRELAY_OK: the host sends it as it is. Unknown endpoint or missing channel:
 * HLSRELAY_EINVAL. "start-stream" and "stop-stream" act before the reply is written, also for a size
 * query or a buffer that is too small; both are idempotent, so a retry is harmless (its message then
 * says the stream was already running / not running). Their replies are a few hundred bytes plus the
 * channel's name: pass a generous buffer (4096 bytes) rather than a size query. */
HLSRELAY_API int hlsrelay_api(hlsrelay_engine* engine, const char* endpoint, const char* channel, const char* base_url,
                              int* http_status, char* buf, size_t* size);

/* As hlsrelay_api, with a request body (body_size bytes at body; NULL and 0: none), for the runtime
 * channel management endpoints (control endpoints of the HTTP API, docs/http-api.md):
 * "channel-add" (body: one channel as a JSON object, the fields of a JSON channel-list entry; 201 with
 * the channel as stored, 400 for a bad body, 409 when its id is taken), "channel-update" (channel; body:
 * a JSON merge patch of the channel; 200, 404), "channel-remove" (channel; 200 {"removed": id}),
 * "channel-enable" and "channel-disable" (channel; 200 with the channel; disabling stops it). A body
 * over 64 KiB is answered 413. The change is made before the reply is written (as for "start-stream":
 * pass a generous buffer, not a size query). Not from an event callback (HLSRELAY_ESTATE). Every other
 * endpoint ignores the body. Appended in 0.1 (issue 14). */
HLSRELAY_API int hlsrelay_api_call(hlsrelay_engine* engine, const char* endpoint, const char* channel,
                                   const char* base_url, const char* body, size_t body_size, int* http_status,
                                   char* buf, size_t* size);

/* ---- The tuner: a channel as one continuous MPEG-TS stream ---- */
/* What media servers and IPTV apps tune to (an HTTP host serves it as GET /stream/<id>.ts, and HDHomeRun's
 * /auto/v<GuideNumber>): the newest whole segment first (it starts at a keyframe, with the PAT), then
 * every segment as it is published, in order. Chunks are the engine's own segment buffers: nothing is
 * copied and nothing is queued per reader. A reader that falls so far behind that its next segment left
 * the window skips ahead to the newest one (counted by hlsrelay_ts_stats).
 *
 * Lifetime: a reader belongs to the engine it was opened on. hlsrelay_engine_destroy ends it (see there)
 * but does not free it: close every reader with hlsrelay_ts_close, before or after destroying its
 * engine. hlsrelay_ts_next, hlsrelay_ts_stats and hlsrelay_ts_close on readers may run while their engine
 * is destroyed (hlsrelay_ts_open may not). Closing a reader does not stop its channel. */
typedef struct hlsrelay_ts_reader hlsrelay_ts_reader;

/* Opens a reader of the channel's continuous MPEG-TS, starting the channel first if it is not running
 * (as hlsrelay_start). On success *out is a new reader the caller frees with hlsrelay_ts_close; on
 * failure *out is NULL: HLSRELAY_ENOTFOUND for an unknown channel; HLSRELAY_ESTATE when called from an
 * event callback of this engine. Every channel can be streamed: one packaged as fMP4, or a presentation
 * (its top video rendition with the default audio rendition), is remuxed into TS once per segment and
 * shared by every reader. */
HLSRELAY_API int hlsrelay_ts_open(hlsrelay_engine* engine, const char* channel, hlsrelay_ts_reader** out);

/* Waits at most timeout_seconds (>= 0; 0 only checks) for the reader's next chunk, waking on the
 * publication (it does not poll). Returns:
 *   HLSRELAY_OK        *data and *size (> 0) are the chunk: one whole segment, MPEG-TS packets starting
 *                      with 0x47. The bytes belong to the reader (a reference on the engine's buffer, not
 *                      a copy) and stay valid until the next hlsrelay_ts_next on this reader or
 *                      hlsrelay_ts_close, even if the engine is destroyed meanwhile.
 *   HLSRELAY_ETIMEDOUT no chunk came in time (a channel starting or reconnecting): call again.
 *   HLSRELAY_EEND      the stream ended: the channel stopped, failed or was removed, or the engine was
 *                      destroyed (also during the wait). Final: every later call returns it again; open a
 *                      new reader to follow a channel started again.
 *   HLSRELAY_ESTATE    called from an event callback of this engine (no wait; the reader goes on).
 *   HLSRELAY_EINVAL    a NULL reader, data or size, a negative or NaN timeout.
 * On any return but HLSRELAY_OK, *data is NULL and *size 0 (when they are not NULL), and the previous
 * chunk is released. Returns promptly when the channel stops or the engine is destroyed. */
HLSRELAY_API int hlsrelay_ts_next(hlsrelay_ts_reader* reader, double timeout_seconds, const uint8_t** data,
                                  size_t* size);

/* The chunks this reader has returned (*sent) and the segments it skipped because it fell behind the
 * window (*skipped); either pointer may be NULL. May be called from any thread, also while another
 * thread waits in hlsrelay_ts_next on the reader; also after its engine was destroyed. NULL reader:
 * HLSRELAY_EINVAL. */
HLSRELAY_API int hlsrelay_ts_stats(const hlsrelay_ts_reader* reader, int64_t* sent, int64_t* skipped);

/* Frees the reader and releases its last chunk. NULL is ignored. Not while another thread is inside
 * hlsrelay_ts_next or hlsrelay_ts_stats on the same reader. */
HLSRELAY_API void hlsrelay_ts_close(hlsrelay_ts_reader* reader);

/* The stream id of the channel the lineup numbers guide_number ("5", "5.1"; leading zeros and spaces
 * ignored), as HDHomeRun clients tune (/auto/v5.1): a channel's tvg-chno when valid and not taken by an
 * earlier channel, else its 1-based position in the list (or the next whole number no channel has).
 * Caller-buffer protocol (at most HLSRELAY_ID_MAX bytes). HLSRELAY_ENOTFOUND when no channel has that
 * number; HLSRELAY_EINVAL for a NULL argument or text that is no GuideNumber ("abc", "0", "-1"). */
HLSRELAY_API int hlsrelay_channel_for_guide_number(hlsrelay_engine* engine, const char* guide_number, char* buf,
                                                   size_t* size);

#ifdef __cplusplus
}
#endif

#endif /* HLSRELAY_H */
