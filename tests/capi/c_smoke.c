/* c_smoke.c: the C API from pure C99: restreams a looping file, reads, status, events, the tuner (continuous
 * TS readers, HDHomeRun replies), error paths. */
#define _POSIX_C_SOURCE 200809L

#include <hlsrelay/hlsrelay.h>

#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "c_check.h"

static void sleep_ms(long ms) {
    struct timespec t;
    t.tv_sec = ms / 1000;
    t.tv_nsec = (ms % 1000) * 1000000L;
    nanosleep(&t, NULL);
}

static double now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Appends s to out as a JSON string literal (out has room: it is sized by the caller). */
static void append_json_string(char* out, const char* s) {
    char* p = out + strlen(out);
    *p++ = '"';
    for (; *s; ++s) {
        if (*s == '"' || *s == '\\') *p++ = '\\';
        *p++ = *s;
    }
    *p++ = '"';
    *p = '\0';
}

/* The caller-buffer protocol in a loop, as a host would write it: live JSON may grow between calls. */
static char* status_json(hlsrelay_engine* engine, const char* channel) {
    int attempt;
    for (attempt = 0; attempt < 5; ++attempt) {
        size_t size = 0;
        char* buf;
        int rc;
        if (hlsrelay_status_json(engine, channel, NULL, &size) != HLSRELAY_OK) return NULL;
        size += 256;
        buf = (char*)malloc(size);
        if (!buf) return NULL;
        rc = hlsrelay_status_json(engine, channel, buf, &size);
        if (rc == HLSRELAY_OK) return buf;
        free(buf);
        if (rc != HLSRELAY_EBUFFER) return NULL;
    }
    return NULL;
}

struct events {
    pthread_mutex_t mu;
    hlsrelay_engine* engine;
    uint64_t other; /* another subscription, which a callback may not unsubscribe */
    int total, starting, running, stopped, segments, errors, malformed;
    int tried_forbidden, stop_rc, destroy_rc, unsubscribe_other_rc, status_rc, refusal_has_message, wait_rc;
};

static void on_event(const hlsrelay_event* ev, void* user_data) {
    struct events* e = (struct events*)user_data;
    pthread_mutex_lock(&e->mu);
    ++e->total;
    if (ev->struct_size < sizeof(hlsrelay_event) || !ev->channel || !ev->state || !ev->message) ++e->malformed;
    {
        /* state_code names the same state as `state` (index = hlsrelay_state), -1 for errors. */
        static const char* const names[] = {"idle", "starting", "running", "reconnecting", "stopped", "failed",
                                            "stalled"};
        if (ev->type == HLSRELAY_EVENT_ERROR ? ev->state_code != -1
                                             : (ev->state_code < 0 || ev->state_code > HLSRELAY_STATE_STALLED ||
                                                strcmp(names[ev->state_code], ev->state) != 0))
            ++e->malformed;
    }
    if (ev->type == HLSRELAY_EVENT_STATE) {
        if (strcmp(ev->state, "starting") == 0) ++e->starting;
        if (strcmp(ev->state, "running") == 0) ++e->running;
        if (strcmp(ev->state, "stopped") == 0) ++e->stopped;
        if (ev->sequence != -1) ++e->malformed;
    } else if (ev->type == HLSRELAY_EVENT_SEGMENT) {
        ++e->segments;
        if (ev->sequence < 0 || ev->duration <= 0) ++e->malformed;
    } else if (ev->type == HLSRELAY_EVENT_ERROR) {
        ++e->errors;
    }
    if (!e->tried_forbidden && e->engine) {
        /* What would deadlock is refused; what only reads is allowed. */
        size_t size = 0;
        e->tried_forbidden = 1;
        e->stop_rc = hlsrelay_stop(e->engine, ev->channel);
        e->refusal_has_message = strlen(hlsrelay_last_error()) > 0;
        e->destroy_rc = hlsrelay_engine_destroy(e->engine);
        e->unsubscribe_other_rc = hlsrelay_unsubscribe(e->engine, e->other);
        e->status_rc = hlsrelay_status_json(e->engine, ev->channel, NULL, &size);
        e->wait_rc = hlsrelay_wait_ready(e->engine, ev->channel, 0); /* the worker may be the caller */
    }
    pthread_mutex_unlock(&e->mu);
}

struct counter {
    pthread_mutex_t mu;
    int total, stopped;
};

static void on_count(const hlsrelay_event* ev, void* user_data) {
    struct counter* c = (struct counter*)user_data;
    pthread_mutex_lock(&c->mu);
    ++c->total;
    if (ev->type == HLSRELAY_EVENT_STATE && strcmp(ev->state, "stopped") == 0) ++c->stopped;
    pthread_mutex_unlock(&c->mu);
}

/* Unsubscribes itself from inside its own callback, once it knows its id. */
struct self_unsubscriber {
    pthread_mutex_t mu;
    hlsrelay_engine* engine;
    uint64_t id;
    int calls, calls_when_done, done, rc;
};

static void on_self(const hlsrelay_event* ev, void* user_data) {
    struct self_unsubscriber* s = (struct self_unsubscriber*)user_data;
    (void)ev;
    pthread_mutex_lock(&s->mu);
    ++s->calls;
    if (s->id != 0 && !s->done) {
        s->rc = hlsrelay_unsubscribe(s->engine, s->id);
        s->done = 1;
        s->calls_when_done = s->calls;
    }
    pthread_mutex_unlock(&s->mu);
}

static int counter_total(struct counter* c) {
    int n;
    pthread_mutex_lock(&c->mu);
    n = c->total;
    pthread_mutex_unlock(&c->mu);
    return n;
}

/* The first URI line of a media playlist, copied into name. */
static int first_segment(const hlsrelay_resource* playlist, char* name, size_t name_size) {
    const char* p = (const char*)hlsrelay_resource_data(playlist);
    const char* end = p + hlsrelay_resource_size(playlist);
    while (p < end) {
        const char* nl = memchr(p, '\n', (size_t)(end - p));
        const char* line_end = nl ? nl : end;
        size_t len = (size_t)(line_end - p);
        if (len > 0 && p[0] != '#' && len < name_size) {
            memcpy(name, p, len);
            name[len] = '\0';
            return 1;
        }
        p = line_end + 1;
    }
    return 0;
}

static int contains(const char* haystack, const char* needle) { return haystack && strstr(haystack, needle) != NULL; }

/* The sequence number of the segment in `channel`'s playlist whose bytes are exactly data[0..size) (the
 * same buffer, not a copy of it); -1 when none is. */
static long long segment_holding(hlsrelay_engine* engine, const char* channel, const uint8_t* data, size_t size) {
    hlsrelay_resource* list = NULL;
    long long found = -1;
    const char* p;
    const char* end;
    if (hlsrelay_read(engine, channel, "index.m3u8", &list) != HLSRELAY_OK) return -1;
    p = (const char*)hlsrelay_resource_data(list);
    end = p + hlsrelay_resource_size(list);
    while (p < end && found < 0) {
        const char* nl = memchr(p, '\n', (size_t)(end - p));
        const size_t n = (size_t)((nl ? nl : end) - p);
        char name[64];
        hlsrelay_resource* seg = NULL;
        if (n > 4 && n < sizeof name && memcmp(p, "seg_", 4) == 0) {
            memcpy(name, p, n);
            name[n] = '\0';
            if (hlsrelay_read(engine, channel, name, &seg) == HLSRELAY_OK && hlsrelay_resource_data(seg) == data &&
                hlsrelay_resource_size(seg) == size)
                found = strtoll(name + 4, NULL, 10);
            hlsrelay_resource_free(seg);
        }
        p += n + 1;
    }
    hlsrelay_resource_free(list);
    return found;
}

/* The PID of the MPEG-TS packet at p (0: the PAT). */
static int ts_pid(const uint8_t* p) { return ((p[1] & 0x1F) << 8) | p[2]; }

/* A thread reading a TS reader until the stream ends (or an error): its last code and when it returned. */
struct ts_waiter {
    hlsrelay_ts_reader* reader;
    int rc, chunks;
    double returned_at;
};

static void* ts_wait(void* arg) {
    struct ts_waiter* w = (struct ts_waiter*)arg;
    const uint8_t* data;
    size_t size;
    do {
        w->rc = hlsrelay_ts_next(w->reader, 60, &data, &size);
        if (w->rc == HLSRELAY_OK) ++w->chunks;
    } while (w->rc == HLSRELAY_OK);
    w->returned_at = now_seconds();
    return NULL;
}

/* Tries, from inside an event callback, what could block (refused) and what cannot (allowed). */
struct ts_in_callback {
    pthread_mutex_t mu;
    hlsrelay_engine* engine;
    hlsrelay_ts_reader* reader;
    int tried, open_rc, opened, next_rc, next_cleared, stats_rc, guide_rc;
};

static void on_ts_event(const hlsrelay_event* ev, void* user_data) {
    struct ts_in_callback* t = (struct ts_in_callback*)user_data;
    (void)ev;
    pthread_mutex_lock(&t->mu);
    if (!t->tried) {
        hlsrelay_ts_reader* r = NULL;
        const uint8_t* data = (const uint8_t*)"x";
        size_t size = 1;
        char id[HLSRELAY_ID_MAX];
        size_t id_size = sizeof id;
        t->tried = 1;
        t->open_rc = hlsrelay_ts_open(t->engine, "smoke", &r);
        t->opened = r != NULL;
        t->next_rc = hlsrelay_ts_next(t->reader, 0, &data, &size);
        t->next_cleared = data == NULL && size == 0;
        t->stats_rc = hlsrelay_ts_stats(t->reader, NULL, NULL);
        t->guide_rc = hlsrelay_channel_for_guide_number(t->engine, "1", id, &id_size);
    }
    pthread_mutex_unlock(&t->mu);
}

int main(int argc, char** argv) {
    hlsrelay_settings settings = HLSRELAY_SETTINGS_INIT;
    hlsrelay_engine* engine = NULL;
    hlsrelay_load_report* report = NULL;
    hlsrelay_resource* res = NULL;
    hlsrelay_resource* playlist = NULL;
    hlsrelay_resource* segment = NULL;
    struct events ev;
    struct counter late;
    struct self_unsubscriber self;
    uint64_t sub_self = 0;
    uint64_t sub = 0, sub_late = 0;
    char json[8192];
    char buf[4096];
    char id[HLSRELAY_ID_MAX];
    char small[4];
    char seg_name[128];
    char tuner_name[16];
    hlsrelay_ts_reader* ts = NULL;
    struct ts_waiter waiter;
    pthread_t waiter_thread;
    size_t size;
    int http = 0;
    double deadline;
    char* text;

    REQUIRE(argc == 2);
    memset(&ev, 0, sizeof ev);
    memset(&late, 0, sizeof late);
    memset(&self, 0, sizeof self);
    pthread_mutex_init(&self.mu, NULL);
    pthread_mutex_init(&ev.mu, NULL);
    pthread_mutex_init(&late.mu, NULL);

    /* ---- Version ---- */
    CHECK(hlsrelay_version_number() == HLSRELAY_VERSION_NUMBER);
    CHECK(strcmp(hlsrelay_version(), HLSRELAY_VERSION_STRING) == 0);
    CHECK(strcmp(hlsrelay_last_error(), "") == 0);

    /* ---- Errors without an engine ---- */
    CHECK(hlsrelay_start(NULL, "x") == HLSRELAY_EINVAL);
    CHECK(strlen(hlsrelay_last_error()) > 0);
    CHECK(contains(hlsrelay_last_error(), "engine is NULL"));
    CHECK(hlsrelay_engine_create(NULL, NULL) == HLSRELAY_EINVAL);
    CHECK(hlsrelay_engine_destroy(NULL) == HLSRELAY_OK);
    CHECK(strcmp(hlsrelay_last_error(), "") == 0); /* a successful call clears it */
    CHECK(hlsrelay_read(NULL, "x", "index.m3u8", &res) == HLSRELAY_EINVAL && res == NULL);
    CHECK(hlsrelay_resource_data(NULL) == NULL && hlsrelay_resource_size(NULL) == 0);
    CHECK(strcmp(hlsrelay_resource_content_type(NULL), "") == 0);
    hlsrelay_resource_free(NULL);
    hlsrelay_load_report_free(NULL);

    /* ---- Settings: struct_size and append-only growth ---- */
    settings.struct_size = 0;
    engine = (hlsrelay_engine*)&settings; /* must be reset to NULL on failure */
    CHECK(hlsrelay_engine_create(&settings, &engine) == HLSRELAY_EINVAL && engine == NULL);
    hlsrelay_settings_init(&settings);
    CHECK(settings.struct_size == sizeof(hlsrelay_settings) && settings.max_segments == 5);
    settings.max_segments = 0;
    CHECK(hlsrelay_engine_create(&settings, &engine) == HLSRELAY_EINVAL && engine == NULL);
    hlsrelay_settings_init(&settings);
    settings.log_level = 99;
    CHECK(hlsrelay_engine_create(&settings, &engine) == HLSRELAY_EINVAL);
    /* An older caller's struct ends before log_level: the garbage there is never read. */
    settings.struct_size = offsetof(hlsrelay_settings, log_level);
    CHECK(hlsrelay_engine_create(&settings, &engine) == HLSRELAY_OK && engine != NULL);
    CHECK(hlsrelay_engine_destroy(engine) == HLSRELAY_OK);
    engine = NULL;
    /* Fetch limits: the header's defaults are the engine's (docs/security.md); out of range is refused. */
    hlsrelay_settings_init(&settings);
    CHECK(settings.max_playlist_bytes == 4 * 1024 * 1024 && settings.max_segment_bytes == 64 * 1024 * 1024 &&
          settings.max_redirects == 5 && settings.playlist_deadline == 0 && settings.segment_deadline == 0);
    settings.max_segment_bytes = 1000;
    CHECK(hlsrelay_engine_create(&settings, &engine) == HLSRELAY_EINVAL && engine == NULL);
    CHECK(contains(hlsrelay_last_error(), "max_segment_bytes 1000 is outside"));
    hlsrelay_settings_init(&settings);
    settings.max_redirects = 21;
    CHECK(hlsrelay_engine_create(&settings, &engine) == HLSRELAY_EINVAL && engine == NULL);
    hlsrelay_settings_init(&settings);
    settings.playlist_deadline = 0.1;
    CHECK(hlsrelay_engine_create(&settings, &engine) == HLSRELAY_EINVAL && engine == NULL);
    CHECK(contains(hlsrelay_last_error(), "playlist_deadline"));
    /* A caller built before the limits were appended: the garbage beyond its struct is never read. */
    settings.struct_size = offsetof(hlsrelay_settings, max_playlist_bytes);
    CHECK(hlsrelay_engine_create(&settings, &engine) == HLSRELAY_OK && engine != NULL);
    CHECK(hlsrelay_engine_destroy(engine) == HLSRELAY_OK);
    engine = NULL;
    hlsrelay_settings_init(&settings);
    settings.max_playlist_bytes = 65536;
    settings.max_segment_bytes = 8 * 1024 * 1024;
    settings.max_redirects = 0;
    settings.segment_deadline = 6;
    CHECK(hlsrelay_engine_create(&settings, &engine) == HLSRELAY_OK && engine != NULL);
    CHECK(hlsrelay_engine_destroy(engine) == HLSRELAY_OK);
    engine = NULL;

    /* Push to an origin: http(s) only, refused without echoing credentials; NULL by default. */
    hlsrelay_settings_init(&settings);
    CHECK(settings.push_url == NULL);
    settings.push_url = "ftp://ingest:s3cret@cdn.example/live";
    CHECK(hlsrelay_engine_create(&settings, &engine) == HLSRELAY_EINVAL && engine == NULL);
    CHECK(contains(hlsrelay_last_error(), "push_url") && !contains(hlsrelay_last_error(), "s3cret"));
    settings.push_url = "http://127.0.0.1:9/live";
    CHECK(hlsrelay_engine_create(&settings, &engine) == HLSRELAY_OK && engine != NULL);
    CHECK(hlsrelay_engine_destroy(engine) == HLSRELAY_OK);
    engine = NULL;

    /* The output container and the renditions selection: checked, and shown in the HLS settings. */
    hlsrelay_settings_init(&settings);
    CHECK(settings.container == HLSRELAY_CONTAINER_TS && settings.renditions == NULL);
    settings.container = 7;
    CHECK(hlsrelay_engine_create(&settings, &engine) == HLSRELAY_EINVAL && engine == NULL);
    CHECK(contains(hlsrelay_last_error(), "container 7"));
    settings.container = HLSRELAY_CONTAINER_FMP4;
    settings.renditions = "best";
    CHECK(hlsrelay_engine_create(&settings, &engine) == HLSRELAY_EINVAL && engine == NULL);
    CHECK(contains(hlsrelay_last_error(), "renditions must be"));
    {
        char selection[32];
        strcpy(selection, "max-height=720");
        settings.renditions = selection;
        CHECK(hlsrelay_engine_create(&settings, &engine) == HLSRELAY_OK && engine != NULL);
        strcpy(selection, "garbage"); /* copied by hlsrelay_engine_create */
    }
    settings.renditions = NULL;
    size = sizeof buf;
    CHECK(hlsrelay_status_json(engine, NULL, buf, &size) == HLSRELAY_OK);
    CHECK(contains(buf, "\"container\":\"fmp4\"") && contains(buf, "\"renditions\":\"max-height=720\""));
    CHECK(hlsrelay_channel_add(engine, "{\"name\": \"Ladder\", \"url\": \"http://127.0.0.1:9/l.m3u8\", "
                                       "\"container\": \"ts\", \"renditions\": [\"1080p\", \"360p\"]}",
                               NULL, NULL) == HLSRELAY_OK);
    CHECK(hlsrelay_channel_update(engine, "ladder", "{\"variant\": \"lowest\"}") == HLSRELAY_OK);
    size = sizeof buf;
    CHECK(hlsrelay_channels_json(engine, HLSRELAY_CHANNELS_WITH_SOURCES, buf, &size) == HLSRELAY_OK);
    CHECK(contains(buf, "\"container\": \"ts\"") && contains(buf, "\"renditions\": \"1080p,360p\"") &&
          contains(buf, "\"variant\": \"lowest\""));
    CHECK(hlsrelay_channel_update(engine, "ladder", "{\"renditions\": \"720\"}") == HLSRELAY_EINVAL);
    CHECK(contains(hlsrelay_last_error(), "renditions must be"));
    CHECK(hlsrelay_channel_update(engine, "ladder", "{\"container\": \"mp4\"}") == HLSRELAY_EINVAL);
    CHECK(hlsrelay_engine_destroy(engine) == HLSRELAY_OK);
    engine = NULL;
    /* A caller built before container and renditions were appended: the bytes beyond are never read. */
    memset(&settings, 0xAB, sizeof settings);
    hlsrelay_settings_init(&settings);
    settings.container = 99;
    settings.struct_size = offsetof(hlsrelay_settings, container);
    CHECK(hlsrelay_engine_create(&settings, &engine) == HLSRELAY_OK && engine != NULL);
    CHECK(hlsrelay_engine_destroy(engine) == HLSRELAY_OK);
    engine = NULL;

    /* The tuner's settings: checked by the engine (the values are shown by "discover" below). */
    hlsrelay_settings_init(&settings);
    CHECK(settings.tuner_name == NULL && settings.tuner_device_id == NULL && settings.tuner_seed == NULL &&
          settings.tuner_count == 0);
    settings.tuner_count = 256;
    CHECK(hlsrelay_engine_create(&settings, &engine) == HLSRELAY_EINVAL && engine == NULL);
    CHECK(contains(hlsrelay_last_error(), "tuner_count"));
    settings.tuner_count = 0;
    settings.tuner_device_id = "1234567";
    CHECK(hlsrelay_engine_create(&settings, &engine) == HLSRELAY_EINVAL && engine == NULL);
    CHECK(contains(hlsrelay_last_error(), "device_id"));
    settings.tuner_device_id = "12345678"; /* 8 hex digits, but HDHomeRun's checksum fails */
    CHECK(hlsrelay_engine_create(&settings, &engine) == HLSRELAY_EINVAL && engine == NULL);
    CHECK(contains(hlsrelay_last_error(), "checksum"));
    settings.tuner_device_id = NULL;
    settings.tuner_name = "";
    CHECK(hlsrelay_engine_create(&settings, &engine) == HLSRELAY_EINVAL && engine == NULL);
    CHECK(contains(hlsrelay_last_error(), "tuner name"));
    /* Channel lists by URL: http(s) only, a count needs its array. */
    {
        const char* lists[] = {"file:///etc/passwd"};
        hlsrelay_settings_init(&settings);
        CHECK(settings.channel_lists == NULL && settings.channel_list_count == 0 &&
              settings.list_refresh_interval == 21600.0 && settings.max_list_bytes == INT64_C(67108864));
        settings.channel_list_count = 1;
        CHECK(hlsrelay_engine_create(&settings, &engine) == HLSRELAY_EINVAL && engine == NULL);
        CHECK(contains(hlsrelay_last_error(), "channel_lists"));
        settings.channel_lists = lists;
        CHECK(hlsrelay_engine_create(&settings, &engine) == HLSRELAY_EINVAL && engine == NULL);
        CHECK(contains(hlsrelay_last_error(), "not http(s)"));
        settings.channel_list_count = 0;
        settings.list_refresh_interval = 0;
        CHECK(hlsrelay_engine_create(&settings, &engine) == HLSRELAY_EINVAL && engine == NULL);
        CHECK(contains(hlsrelay_last_error(), "list_refresh_interval"));
    }
    /* A caller built before the tuner fields were appended: the bytes beyond are never read. */
    memset(&settings, 0xAB, sizeof settings);
    hlsrelay_settings_init(&settings);
    settings.tuner_count = -5;
    settings.struct_size = offsetof(hlsrelay_settings, tuner_name);
    CHECK(hlsrelay_engine_create(&settings, &engine) == HLSRELAY_OK && engine != NULL);
    CHECK(hlsrelay_engine_destroy(engine) == HLSRELAY_OK);
    engine = NULL;

    /* Providers: a start past the limit is HLSRELAY_EUNAVAILABLE naming the holder. */
    hlsrelay_settings_init(&settings);
    CHECK(settings.providers == NULL);
    settings.log_level = HLSRELAY_LOG_ERROR;
    settings.providers = "acme";
    CHECK(hlsrelay_engine_create(&settings, &engine) == HLSRELAY_EINVAL && engine == NULL);
    CHECK(contains(hlsrelay_last_error(), "NAME=MAX"));
    settings.providers = " acme=1  other=0@example.net ";
    REQUIRE(hlsrelay_engine_create(&settings, &engine) == HLSRELAY_OK && engine != NULL);
    strcpy(json, "[{\"id\": \"p1\", \"name\": \"P1\", \"loop\": true, \"provider\": \"acme\", \"url\": ");
    REQUIRE(strlen(argv[1]) < 2000);
    append_json_string(json, argv[1]);
    strcat(json, "}, {\"id\": \"p2\", \"name\": \"P2\", \"loop\": true, \"provider\": \"acme\", \"url\": ");
    append_json_string(json, argv[1]);
    strcat(json, "}]");
    CHECK(hlsrelay_load_string(engine, json, NULL) == 2);
    CHECK(hlsrelay_start_on_demand(engine, "p1") == HLSRELAY_OK);
    CHECK(hlsrelay_start(engine, "p2") == HLSRELAY_EUNAVAILABLE);
    CHECK(contains(hlsrelay_last_error(), "provider acme: 1 of 1 connections in use by p1"));
    {
        int http = 0;
        size = sizeof buf;
        CHECK(hlsrelay_api(engine, "providers", NULL, NULL, &http, buf, &size) == HLSRELAY_OK && http == 200);
        CHECK(contains(buf, "\"holders\":[\"p1\"]") && contains(buf, "\"on_demand\":[\"p1\"]") &&
              contains(buf, "\"refused\":1"));
        size = sizeof buf;
        CHECK(hlsrelay_api(engine, "start-stream", "p2", NULL, &http, buf, &size) == HLSRELAY_OK && http == 503);
    }
    CHECK(hlsrelay_stop(engine, "p1") == HLSRELAY_OK);
    CHECK(hlsrelay_start(engine, "p2") == HLSRELAY_OK);
    CHECK(hlsrelay_engine_destroy(engine) == HLSRELAY_OK);
    engine = NULL;

    hlsrelay_settings_init(&settings);
    settings.segment_duration = 1.0;
    settings.max_segments = 4;
    settings.log_level = HLSRELAY_LOG_ERROR;
    strcpy(tuner_name, "C Smoke");
    settings.tuner_name = tuner_name;
    settings.tuner_seed = "c-smoke";
    settings.tuner_count = 2;
    REQUIRE(hlsrelay_engine_create(&settings, &engine) == HLSRELAY_OK && engine != NULL);
    strcpy(tuner_name, "garbage"); /* copied by hlsrelay_engine_create */
    settings.tuner_name = NULL;

    /* ---- Loading a channel list ---- */
    strcpy(json, "[{\"id\": \"smoke\", \"name\": \"Smoke Test\", \"loop\": true, \"url\": ");
    REQUIRE(strlen(argv[1]) < 2000);
    append_json_string(json, argv[1]);
    strcat(json, "},\n {\"name\": \"no source\"}]");
    CHECK(hlsrelay_load_string(engine, json, &report) == 1);
    REQUIRE(report != NULL);
    CHECK(hlsrelay_load_report_channel_count(report) == 1);
    CHECK(strcmp(hlsrelay_load_report_channel(report, 0), "smoke") == 0);
    CHECK(hlsrelay_load_report_channel(report, 1) == NULL);
    CHECK(hlsrelay_load_report_issue_count(report) == 1);
    CHECK(hlsrelay_load_report_issue_line(report, 0) == 2);
    CHECK(contains(hlsrelay_load_report_issue_message(report, 0), "url"));
    CHECK(hlsrelay_load_report_issue_line(report, 5) == -1);
    CHECK(hlsrelay_load_report_issue_message(report, 5) == NULL);
    size = 0;
    CHECK(hlsrelay_load_report_json(report, NULL, &size) == HLSRELAY_OK && size > 1);
    CHECK(size <= sizeof buf);
    CHECK(hlsrelay_load_report_json(report, buf, &size) == HLSRELAY_OK && strlen(buf) + 1 == size);
    CHECK(contains(buf, "\"added\":1") && contains(buf, "\"id\":\"smoke\"") && contains(buf, "\"line\":2"));
    hlsrelay_load_report_free(report);
    report = NULL;

    CHECK(hlsrelay_load_string(engine, "[{", &report) == 0); /* broken JSON: an issue, not an error */
    CHECK(hlsrelay_load_report_issue_count(report) == 1 && hlsrelay_load_report_issue_line(report, 0) == 1);
    hlsrelay_load_report_free(report);
    report = (hlsrelay_load_report*)&settings;
    CHECK(hlsrelay_load_file(engine, "/nonexistent/channels.m3u", &report) == HLSRELAY_EIO && report == NULL);
    CHECK(hlsrelay_load_string(engine, NULL, NULL) == HLSRELAY_EINVAL);

    /* ---- One channel: add, update, remove ---- */
    size = sizeof id;
    CHECK(hlsrelay_channel_add(engine, "{\"name\": \"Extra Channel\", \"url\": \"http://127.0.0.1:9/x.m3u8\"}", id,
                               &size) == HLSRELAY_OK);
    CHECK(strcmp(id, "extra_channel") == 0 && size == strlen(id) + 1);
    size = sizeof small; /* too small: refused before anything is added */
    CHECK(hlsrelay_channel_add(engine, "{\"name\": \"Extra Channel\", \"url\": \"http://127.0.0.1:9/y.m3u8\"}", small,
                               &size) == HLSRELAY_EBUFFER);
    CHECK(size == HLSRELAY_ID_MAX && small[0] == '\0');
    size = 0; /* no buffer: added, the size of the id reported */
    CHECK(hlsrelay_channel_add(engine, "{\"name\": \"Extra Channel\", \"url\": \"http://127.0.0.1:9/y.m3u8\"}", NULL,
                               &size) == HLSRELAY_OK);
    CHECK(size == strlen("extra_channel_2") + 1); /* _2, not _3: the refused call added nothing */
    CHECK(hlsrelay_channel_add(engine, "{\"name\": \"x\"}", NULL, NULL) == HLSRELAY_EINVAL);
    CHECK(contains(hlsrelay_last_error(), "url"));
    CHECK(hlsrelay_channel_add(engine, "not json", NULL, NULL) == HLSRELAY_EINVAL);
    CHECK(hlsrelay_channel_add(engine, "[{\"name\": \"x\", \"url\": \"http://h/x\"}]", NULL, NULL) == HLSRELAY_EINVAL);

    CHECK(hlsrelay_channel_update(engine, "extra_channel", "{\"segment_duration\": 4, \"group\": \"News\"}") ==
          HLSRELAY_OK);
    size = sizeof buf;
    CHECK(hlsrelay_channels_json(engine, HLSRELAY_CHANNELS_WITH_SOURCES, buf, &size) == HLSRELAY_OK);
    CHECK(contains(buf, "\"group\": \"News\"") && contains(buf, "http://127.0.0.1:9/x.m3u8"));
    CHECK(hlsrelay_channel_update(engine, "Extra Channel", "{\"max_segments\": 1000}") == HLSRELAY_EINVAL);
    /* Per-channel fetch limits go through the same loader: checked, stored, listed. */
    CHECK(hlsrelay_channel_update(engine, "extra_channel", "{\"max_segment_bytes\": 1000}") == HLSRELAY_EINVAL);
    CHECK(contains(hlsrelay_last_error(), "max_segment_bytes 1000 is outside"));
    CHECK(hlsrelay_channel_update(engine, "extra_channel", "{\"max_redirects\": 2, \"segment_deadline\": 7.5}") ==
          HLSRELAY_OK);
    size = sizeof buf;
    CHECK(hlsrelay_channels_json(engine, HLSRELAY_CHANNELS_WITH_SOURCES, buf, &size) == HLSRELAY_OK);
    CHECK(contains(buf, "\"max_redirects\": 2") && contains(buf, "\"segment_deadline\": 7.5"));
    CHECK(hlsrelay_channel_add(engine, "{\"name\": \"y\", \"url\": \"http://h/y\", \"max_redirects\": -1}", NULL, NULL) ==
          HLSRELAY_EINVAL);
    CHECK(hlsrelay_channel_update(engine, "nope", "{}") == HLSRELAY_ENOTFOUND);
    CHECK(hlsrelay_channel_remove(engine, "extra_channel") == HLSRELAY_OK);
    CHECK(hlsrelay_channel_remove(engine, "extra_channel_2") == HLSRELAY_OK);
    CHECK(hlsrelay_channel_remove(engine, "extra_channel") == HLSRELAY_ENOTFOUND);

    size = sizeof buf;
    CHECK(hlsrelay_channels_json(engine, 0, buf, &size) == HLSRELAY_OK);
    CHECK(contains(buf, "\"id\":\"smoke\"") && contains(buf, "\"running\":false") && !contains(buf, "extra"));
    CHECK(hlsrelay_channels_json(engine, 8, buf, &size) == HLSRELAY_EINVAL);

    /* ---- Unknown channel, stopped channel ---- */
    CHECK(hlsrelay_start(engine, "nope") == HLSRELAY_ENOTFOUND);
    CHECK(contains(hlsrelay_last_error(), "nope"));
    CHECK(hlsrelay_stop(engine, "nope") == HLSRELAY_ENOTFOUND);
    size = sizeof buf;
    CHECK(hlsrelay_status_json(engine, "nope", buf, &size) == HLSRELAY_ENOTFOUND);
    CHECK(hlsrelay_read(engine, "nope", "index.m3u8", &res) == HLSRELAY_ENOTFOUND && res == NULL);
    CHECK(hlsrelay_read(engine, "smoke", "index.m3u8", &res) == HLSRELAY_ESTATE && res == NULL);

    /* ---- The caller-buffer protocol ---- */
    size = 0;
    CHECK(hlsrelay_status_json(engine, "smoke", NULL, &size) == HLSRELAY_OK && size > 1);
    {
        const size_t needed = size;
        size = sizeof small;
        small[0] = 'x';
        CHECK(hlsrelay_status_json(engine, "smoke", small, &size) == HLSRELAY_EBUFFER);
        CHECK(size == needed && small[0] == '\0');
        CHECK(contains(hlsrelay_last_error(), "too small"));
    }
    CHECK(hlsrelay_status_json(engine, "smoke", buf, NULL) == HLSRELAY_EINVAL);

    /* ---- Events ---- */
    ev.engine = engine;
    CHECK(hlsrelay_subscribe(engine, NULL, NULL, &sub) == HLSRELAY_EINVAL);
    CHECK(hlsrelay_subscribe(engine, on_count, &late, &sub_late) == HLSRELAY_OK && sub_late != 0);
    ev.other = sub_late;
    CHECK(hlsrelay_subscribe(engine, on_event, &ev, &sub) == HLSRELAY_OK && sub != 0 && sub != sub_late);
    self.engine = engine;
    CHECK(hlsrelay_subscribe(engine, on_self, &self, &sub_self) == HLSRELAY_OK);
    pthread_mutex_lock(&self.mu);
    self.id = sub_self;
    pthread_mutex_unlock(&self.mu);

    /* ---- Waiting for the first playlist: errors first, each returning at once ---- */
    CHECK(hlsrelay_wait_ready(NULL, "smoke", 1) == HLSRELAY_EINVAL);
    CHECK(hlsrelay_wait_ready(engine, NULL, 1) == HLSRELAY_EINVAL);
    CHECK(hlsrelay_wait_ready(engine, "smoke", -1) == HLSRELAY_EINVAL);
    CHECK(hlsrelay_wait_ready(engine, "nope", 3600) == HLSRELAY_ENOTFOUND);
    CHECK(hlsrelay_wait_ready(engine, "smoke", 3600) == HLSRELAY_ESTATE); /* not running: no wait */
    CHECK(contains(hlsrelay_last_error(), "not running"));
    /* A source that refuses: the timeout ends the wait. */
    CHECK(hlsrelay_channel_add(engine, "{\"id\": \"refused\", \"name\": \"Refused\", \"url\": \"http://127.0.0.1:9/x.m3u8\"}",
                               NULL, NULL) == HLSRELAY_OK);
    CHECK(hlsrelay_start(engine, "refused") == HLSRELAY_OK);
    CHECK(hlsrelay_wait_ready(engine, "refused", 0.3) == HLSRELAY_ETIMEDOUT);
    CHECK(contains(hlsrelay_last_error(), "no playlist yet"));
    CHECK(hlsrelay_channel_remove(engine, "refused") == HLSRELAY_OK);

    /* ---- Restream: start by display name, wait for the playlist ---- */
    REQUIRE(hlsrelay_start(engine, "Smoke Test") == HLSRELAY_OK);
    CHECK(hlsrelay_start(engine, "smoke") == HLSRELAY_OK); /* already running: stays running */
    REQUIRE(hlsrelay_wait_ready(engine, "Smoke Test", 60) == HLSRELAY_OK);
    /* Once it returns OK, both playlists can be read: no retry loop. */
    CHECK(hlsrelay_read(engine, "smoke", "master.m3u8", &res) == HLSRELAY_OK);
    hlsrelay_resource_free(res);
    res = NULL;
    seg_name[0] = '\0';
    REQUIRE(hlsrelay_read(engine, "smoke", "index.m3u8", &playlist) == HLSRELAY_OK);
    REQUIRE(first_segment(playlist, seg_name, sizeof seg_name));
    CHECK(hlsrelay_wait_ready(engine, "smoke", 0) == HLSRELAY_OK); /* ready: no time needed */
    CHECK(strcmp(hlsrelay_resource_content_type(playlist), "application/vnd.apple.mpegurl") == 0);
    CHECK(hlsrelay_resource_immutable(playlist) == 0);
    CHECK(hlsrelay_resource_size(playlist) > 7 && memcmp(hlsrelay_resource_data(playlist), "#EXTM3U", 7) == 0);

    REQUIRE(hlsrelay_read(engine, "smoke", seg_name, &segment) == HLSRELAY_OK && segment != NULL);
    CHECK(hlsrelay_resource_size(segment) > 0 && hlsrelay_resource_size(segment) % 188 == 0);
    CHECK(hlsrelay_resource_data(segment)[0] == 0x47);
    CHECK(strcmp(hlsrelay_resource_content_type(segment), "video/mp2t") == 0);
    CHECK(hlsrelay_resource_immutable(segment) == 1);
    CHECK(hlsrelay_read(engine, "smoke", "master.m3u8", &res) == HLSRELAY_OK);
    hlsrelay_resource_free(res);
    res = NULL;
    CHECK(hlsrelay_read(engine, "smoke", "seg_1.ts", &res) == HLSRELAY_ENOTFOUND && res == NULL);
    CHECK(hlsrelay_read(engine, "smoke", NULL, &res) == HLSRELAY_EINVAL);

    /* ---- Status ---- */
    /* Running once it publishes; a machine slow enough (sanitizers, shared CI) may show it stalled
     * for a moment between two segments: wait for the condition, bounded. */
    {
        const double until = now_seconds() + 60;
        for (;;) {
            text = status_json(engine, "smoke");
            if ((text && contains(text, "\"state\":\"running\"")) || now_seconds() > until) break;
            free(text);
            sleep_ms(100);
        }
    }
    if (!text || !contains(text, "\"state\":\"running\"")) fprintf(stderr, "status: %s\n", text ? text : "(none)");
    CHECK(contains(text, "\"state\":\"running\"") && contains(text, "\"stream_id\":\"smoke\""));
    CHECK(contains(text, "\"reconnect_attempts\":0") && contains(text, "\"previous_error\":null") &&
          contains(text, "\"last_error_age_seconds\":null") && contains(text, "\"bytes_published\":"));
    CHECK(!contains(text, "\"bytes_out\":0,")); /* the playlists and the segment read above */
    free(text);
    text = status_json(engine, NULL);
    CHECK(contains(text, "\"streams\":[") && contains(text, "\"running_streams\":1"));
    free(text);

    /* ---- HTTP API replies ---- */
    size = sizeof buf;
    CHECK(hlsrelay_api(engine, "stream-status", "smoke", NULL, &http, buf, &size) == HLSRELAY_OK && http == 200);
    CHECK(contains(buf, "\"process_status\":\"running\""));
    size = sizeof buf;
    CHECK(hlsrelay_api(engine, "stream-status", "nope", NULL, &http, buf, &size) == HLSRELAY_OK && http == 404);
    CHECK(contains(buf, "Channel not found"));
    size = sizeof buf;
    CHECK(hlsrelay_api(engine, "start-stream", "smoke", NULL, &http, buf, &size) == HLSRELAY_OK && http == 200);
    CHECK(contains(buf, "already running"));
    size = sizeof buf;
    CHECK(hlsrelay_api(engine, "static-hls-m3u", NULL, "http://example.test:8000", &http, buf, &size) == HLSRELAY_OK);
    CHECK(http == 200 && contains(buf, "#EXTM3U") &&
          contains(buf, "http://example.test:8000/hls_streams/smoke/master.m3u8"));
    size = sizeof buf;
    CHECK(hlsrelay_api(engine, "channels", NULL, NULL, NULL, buf, &size) == HLSRELAY_OK);
    CHECK(contains(buf, "\"running\":true"));
    size = sizeof buf; /* no channel_lists: an empty table, and a refresh that has nothing to do */
    CHECK(hlsrelay_api(engine, "lists", NULL, NULL, &http, buf, &size) == HLSRELAY_OK && http == 200);
    CHECK(contains(buf, "\"lists\":[]"));
    size = sizeof buf;
    CHECK(hlsrelay_api(engine, "lists-refresh", NULL, NULL, &http, buf, &size) == HLSRELAY_OK && http == 200);
    size = sizeof buf;
    CHECK(hlsrelay_api(engine, "bogus", NULL, NULL, &http, buf, &size) == HLSRELAY_EINVAL);
    CHECK(hlsrelay_api(engine, "stream-status", NULL, NULL, &http, buf, &size) == HLSRELAY_EINVAL);

    /* ---- The tuner: HDHomeRun replies, GuideNumbers ---- */
    /* An fMP4 channel (never started here) numbered by its chno. */
    strcpy(json, "{\"id\": \"fmp\", \"name\": \"FMP\", \"loop\": true, \"container\": \"fmp4\", \"chno\": \"7.1\", \"url\": ");
    append_json_string(json, argv[1]);
    strcat(json, "}");
    REQUIRE(hlsrelay_channel_add(engine, json, NULL, NULL) == HLSRELAY_OK);
    size = sizeof buf;
    CHECK(hlsrelay_api(engine, "discover", NULL, "http://127.0.0.1:1", &http, buf, &size) == HLSRELAY_OK && http == 200);
    CHECK(buf[0] == '{' && contains(buf, "\"DeviceID\":\"") && contains(buf, "\"FriendlyName\":\"C Smoke\"") &&
          contains(buf, "\"TunerCount\":2") && contains(buf, "\"LineupURL\":\"http://127.0.0.1:1/lineup.json\""));
    {
        /* The seed's device id, given explicitly (lower case) to another engine: the same device. */
        char device_id[9] = "";
        const char* at = strstr(buf, "\"DeviceID\":\"");
        hlsrelay_engine* other = NULL;
        int i;
        REQUIRE(at != NULL && strlen(at) > 12 + 8);
        for (i = 0; i < 8; ++i) device_id[i] = (char)(at[12 + i] >= 'A' && at[12 + i] <= 'F' ? at[12 + i] - 'A' + 'a' : at[12 + i]);
        device_id[8] = '\0';
        hlsrelay_settings_init(&settings);
        settings.tuner_device_id = device_id;
        settings.tuner_seed = "another seed";
        CHECK(hlsrelay_engine_create(&settings, &other) == HLSRELAY_OK);
        size = sizeof buf;
        CHECK(hlsrelay_api(other, "discover", NULL, "http://h:1", &http, buf, &size) == HLSRELAY_OK && http == 200);
        for (i = 0; i < 8; ++i) device_id[i] = (char)(device_id[i] >= 'a' && device_id[i] <= 'f' ? device_id[i] - 'a' + 'A' : device_id[i]);
        CHECK(contains(buf, device_id) && contains(buf, "\"FriendlyName\":\"hlsrelay\"") && contains(buf, "\"TunerCount\":1"));
        CHECK(hlsrelay_engine_destroy(other) == HLSRELAY_OK);
    }
    size = sizeof buf;
    CHECK(hlsrelay_api(engine, "lineup", NULL, "http://127.0.0.1:1", &http, buf, &size) == HLSRELAY_OK && http == 200);
    CHECK(buf[0] == '[' && contains(buf, "\"GuideNumber\":\"1\",\"GuideName\":\"Smoke Test\"") &&
          contains(buf, "\"URL\":\"http://127.0.0.1:1/stream/smoke.ts\"") && contains(buf, "\"GuideNumber\":\"7.1\"") &&
          contains(buf, "\"URL\":\"http://127.0.0.1:1/stream/fmp.ts\""));
    size = sizeof buf;
    CHECK(hlsrelay_api(engine, "lineup-status", NULL, NULL, &http, buf, &size) == HLSRELAY_OK && http == 200);
    CHECK(contains(buf, "\"ScanInProgress\":0"));
    size = sizeof buf;
    CHECK(hlsrelay_api(engine, "lineup-post", NULL, NULL, &http, buf, &size) == HLSRELAY_OK && http == 200 && size == 1);
    size = sizeof buf;
    CHECK(hlsrelay_api(engine, "device-xml", NULL, "http://127.0.0.1:1", &http, buf, &size) == HLSRELAY_OK && http == 200);
    CHECK(contains(buf, "<root") && contains(buf, "C Smoke"));
    size = sizeof buf;
    CHECK(hlsrelay_api(engine, "playlist", NULL, "http://127.0.0.1:1", &http, buf, &size) == HLSRELAY_OK && http == 200);
    CHECK(contains(buf, "#EXTM3U") && contains(buf, "\nhttp://127.0.0.1:1/stream/smoke.ts\n") &&
          contains(buf, "tvg-chno=\"7.1\""));

    size = sizeof id;
    CHECK(hlsrelay_channel_for_guide_number(engine, "1", id, &size) == HLSRELAY_OK);
    CHECK(strcmp(id, "smoke") == 0 && size == strlen("smoke") + 1);
    size = sizeof id;
    CHECK(hlsrelay_channel_for_guide_number(engine, " 007.1 ", id, &size) == HLSRELAY_OK && strcmp(id, "fmp") == 0);
    size = 0; /* the size query */
    CHECK(hlsrelay_channel_for_guide_number(engine, "1", NULL, &size) == HLSRELAY_OK && size == strlen("smoke") + 1);
    size = sizeof small;
    CHECK(hlsrelay_channel_for_guide_number(engine, "1", small, &size) == HLSRELAY_EBUFFER && size == 6);
    size = sizeof id;
    CHECK(hlsrelay_channel_for_guide_number(engine, "2", id, &size) == HLSRELAY_ENOTFOUND);
    CHECK(contains(hlsrelay_last_error(), "GuideNumber 2"));
    CHECK(hlsrelay_channel_for_guide_number(engine, "abc", id, &size) == HLSRELAY_EINVAL);
    CHECK(contains(hlsrelay_last_error(), "not a GuideNumber"));
    CHECK(hlsrelay_channel_for_guide_number(engine, "0", id, &size) == HLSRELAY_EINVAL);
    CHECK(hlsrelay_channel_for_guide_number(NULL, "1", id, &size) == HLSRELAY_EINVAL);
    CHECK(hlsrelay_channel_for_guide_number(engine, NULL, id, &size) == HLSRELAY_EINVAL);
    CHECK(hlsrelay_channel_for_guide_number(engine, "1", id, NULL) == HLSRELAY_EINVAL);

    /* ---- The tuner: a channel as one continuous MPEG-TS ---- */
    ts = (hlsrelay_ts_reader*)&settings; /* must be reset to NULL on failure */
    CHECK(hlsrelay_ts_open(NULL, "smoke", &ts) == HLSRELAY_EINVAL && ts == NULL);
    CHECK(hlsrelay_ts_open(engine, NULL, &ts) == HLSRELAY_EINVAL && ts == NULL);
    CHECK(hlsrelay_ts_open(engine, "smoke", NULL) == HLSRELAY_EINVAL);
    CHECK(hlsrelay_ts_open(engine, "nope", &ts) == HLSRELAY_ENOTFOUND && ts == NULL);
    CHECK(contains(hlsrelay_last_error(), "Channel not found: nope"));
    {
        /* An fMP4 channel streams too: each segment remuxed into MPEG-TS (PAT first, right behind libav's SDT). */
        const uint8_t* data = NULL;
        size_t n = 0;
        REQUIRE(hlsrelay_ts_open(engine, "fmp", &ts) == HLSRELAY_OK && ts != NULL); /* starts it */
        REQUIRE(hlsrelay_ts_next(ts, 30, &data, &n) == HLSRELAY_OK);
        CHECK(data != NULL && n >= 188 && n % 188 == 0 && data[0] == 0x47);
        CHECK(ts_pid(data) == 0 || ts_pid(data + 188) == 0);
        hlsrelay_ts_close(ts);
        ts = NULL;
    }
    CHECK(hlsrelay_channel_remove(engine, "fmp") == HLSRELAY_OK);
    {
        const uint8_t* data = NULL;
        const uint8_t* first = NULL;
        size_t n = 0;
        int64_t sent = -1, skipped = -1;
        long long seq[3];
        int i;
        REQUIRE(hlsrelay_ts_open(engine, "Smoke Test", &ts) == HLSRELAY_OK && ts != NULL); /* by display name */
        for (i = 0; i < 3; ++i) {
            REQUIRE(hlsrelay_ts_next(ts, 30, &data, &n) == HLSRELAY_OK);
            CHECK(data != NULL && n >= 188 && n % 188 == 0 && data[0] == 0x47);
            /* Each chunk is a whole segment of the playlist, its very buffer (no copy), in order. */
            seq[i] = segment_holding(engine, "smoke", data, n);
            CHECK(seq[i] >= 0);
            if (i == 0) {
                first = data;
                CHECK(ts_pid(data) == 0 && (data[1] & 0x40)); /* it opens with the PAT */
            } else {
                CHECK(seq[i] == seq[i - 1] + 1);
            }
        }
        CHECK(first != NULL);
        CHECK(hlsrelay_ts_stats(ts, &sent, &skipped) == HLSRELAY_OK && sent == 3 && skipped == 0);
        CHECK(hlsrelay_ts_stats(ts, NULL, NULL) == HLSRELAY_OK);
        CHECK(hlsrelay_ts_stats(NULL, &sent, &skipped) == HLSRELAY_EINVAL);
        /* 0 only checks: the next segment is about a second away. */
        {
            const int rc = hlsrelay_ts_next(ts, 0, &data, &n);
            CHECK(rc == HLSRELAY_OK || (rc == HLSRELAY_ETIMEDOUT && data == NULL && n == 0));
        }
        CHECK(hlsrelay_ts_next(ts, -1, &data, &n) == HLSRELAY_EINVAL && data == NULL && n == 0);
        CHECK(hlsrelay_ts_next(ts, 1, NULL, &n) == HLSRELAY_EINVAL);
        CHECK(hlsrelay_ts_next(ts, 1, &data, NULL) == HLSRELAY_EINVAL);
        CHECK(hlsrelay_ts_next(NULL, 1, &data, &n) == HLSRELAY_EINVAL);
        CHECK(hlsrelay_ts_next(ts, 30, &data, &n) == HLSRELAY_OK && n > 0 && data[0] == 0x47);
        hlsrelay_ts_close(NULL);
    }
    {
        /* From inside an event callback: opening (it may start the channel) and waiting are refused. */
        struct ts_in_callback t;
        uint64_t sub_ts = 0;
        hlsrelay_ts_reader* other = NULL;
        memset(&t, 0, sizeof t);
        pthread_mutex_init(&t.mu, NULL);
        REQUIRE(hlsrelay_ts_open(engine, "smoke", &other) == HLSRELAY_OK);
        t.engine = engine;
        t.reader = other;
        CHECK(hlsrelay_subscribe(engine, on_ts_event, &t, &sub_ts) == HLSRELAY_OK);
        deadline = now_seconds() + 30;
        for (;;) {
            int tried;
            pthread_mutex_lock(&t.mu);
            tried = t.tried;
            pthread_mutex_unlock(&t.mu);
            if (tried || now_seconds() > deadline) break;
            sleep_ms(20);
        }
        CHECK(hlsrelay_unsubscribe(engine, sub_ts) == HLSRELAY_OK);
        CHECK(t.tried && t.open_rc == HLSRELAY_ESTATE && !t.opened && t.next_rc == HLSRELAY_ESTATE && t.next_cleared);
        CHECK(t.stats_rc == HLSRELAY_OK && t.guide_rc == HLSRELAY_OK);
        hlsrelay_ts_close(other);
        pthread_mutex_destroy(&t.mu);
    }
    {
        /* A source that refuses: the timeout ends the wait; removing the channel ends the stream. */
        hlsrelay_ts_reader* r = NULL;
        const uint8_t* data = (const uint8_t*)"x";
        size_t n = 1;
        CHECK(hlsrelay_channel_add(engine, "{\"id\": \"refused\", \"name\": \"Refused\", \"url\": \"http://127.0.0.1:9/x.m3u8\"}",
                                   NULL, NULL) == HLSRELAY_OK);
        REQUIRE(hlsrelay_ts_open(engine, "refused", &r) == HLSRELAY_OK); /* starts it */
        size = sizeof buf;
        CHECK(hlsrelay_api(engine, "channels", NULL, NULL, NULL, buf, &size) == HLSRELAY_OK);
        CHECK(contains(buf, "\"id\":\"refused\"") && !contains(buf, "\"running\":false"));
        CHECK(hlsrelay_ts_next(r, 0.3, &data, &n) == HLSRELAY_ETIMEDOUT && data == NULL && n == 0);
        CHECK(contains(hlsrelay_last_error(), "no new segment"));
        CHECK(hlsrelay_channel_remove(engine, "refused") == HLSRELAY_OK);
        CHECK(hlsrelay_ts_next(r, 30, &data, &n) == HLSRELAY_EEND && contains(hlsrelay_last_error(), "removed"));
        CHECK(hlsrelay_ts_next(r, 30, &data, &n) == HLSRELAY_EEND); /* final */
        hlsrelay_ts_close(r);
    }

    /* ---- What the callbacks saw ---- */
    deadline = now_seconds() + 5.0;
    for (;;) {
        int segments;
        pthread_mutex_lock(&ev.mu);
        segments = ev.segments;
        pthread_mutex_unlock(&ev.mu);
        if (segments > 0 || now_seconds() > deadline) break;
        sleep_ms(50);
    }
    pthread_mutex_lock(&ev.mu);
    CHECK(ev.starting >= 1 && ev.running >= 1 && ev.segments >= 1 && ev.malformed == 0);
    CHECK(ev.tried_forbidden == 1 && ev.stop_rc == HLSRELAY_ESTATE && ev.refusal_has_message);
    CHECK(ev.destroy_rc == HLSRELAY_ESTATE && ev.unsubscribe_other_rc == HLSRELAY_ESTATE);
    CHECK(ev.status_rc == HLSRELAY_OK && ev.wait_rc == HLSRELAY_ESTATE);
    pthread_mutex_unlock(&ev.mu);
    pthread_mutex_lock(&self.mu);
    CHECK(self.done == 1 && self.rc == HLSRELAY_OK);
    pthread_mutex_unlock(&self.mu);

    /* ---- Unsubscribe: no callback after it returns ---- */
    CHECK(hlsrelay_unsubscribe(engine, sub) == HLSRELAY_OK);
    pthread_mutex_lock(&ev.mu);
    {
        const int total = ev.total;
        pthread_mutex_unlock(&ev.mu);
        CHECK(hlsrelay_unsubscribe(engine, sub) == HLSRELAY_ENOTFOUND);

        /* ---- Stop: it ends a TS reader waiting on another thread, at once ---- */
        memset(&waiter, 0, sizeof waiter);
        waiter.reader = ts;
        REQUIRE(pthread_create(&waiter_thread, NULL, ts_wait, &waiter) == 0);
        sleep_ms(200);
        deadline = now_seconds();
        CHECK(hlsrelay_stop(engine, "smoke") == HLSRELAY_OK);
        pthread_join(waiter_thread, NULL);
        CHECK(waiter.rc == HLSRELAY_EEND && waiter.returned_at - deadline < 5);
        {
            const uint8_t* data = (const uint8_t*)"x";
            size_t n = 1;
            CHECK(hlsrelay_ts_next(ts, 30, &data, &n) == HLSRELAY_EEND && data == NULL && n == 0); /* final */
            CHECK(contains(hlsrelay_last_error(), "stopped"));
        }
        hlsrelay_ts_close(ts);
        ts = NULL;
        CHECK(hlsrelay_stop(engine, "smoke") == HLSRELAY_OK); /* stopped: a no-op */
        pthread_mutex_lock(&ev.mu);
        CHECK(ev.total == total);
        pthread_mutex_unlock(&ev.mu);
    }
    pthread_mutex_lock(&late.mu);
    CHECK(late.stopped >= 1);
    pthread_mutex_unlock(&late.mu);
    CHECK(hlsrelay_read(engine, "smoke", "index.m3u8", &res) == HLSRELAY_ESTATE);
    CHECK(hlsrelay_wait_ready(engine, "smoke", 3600) == HLSRELAY_ESTATE);
    text = status_json(engine, "smoke");
    CHECK(contains(text, "\"process_status\":\"stopped\""));
    free(text);

    /* ---- Low latency: blocking reloads (hlsrelay_wait_playlist), parts read like segments ---- */
    CHECK(hlsrelay_wait_playlist(engine, "smoke", 0, -1, 1) == HLSRELAY_ESTATE); /* stopped */
    strcpy(json, "{\"id\": \"ll\", \"name\": \"LL\", \"loop\": true, \"low_latency\": true, \"url\": ");
    append_json_string(json, argv[1]);
    strcat(json, "}");
    REQUIRE(hlsrelay_channel_add(engine, json, NULL, NULL) == HLSRELAY_OK);
    REQUIRE(hlsrelay_start(engine, "ll") == HLSRELAY_OK);
    REQUIRE(hlsrelay_wait_ready(engine, "ll", 60) == HLSRELAY_OK);
    {
        /* The newest whole segment (its URI line), and the hinted part's name. */
        long long last = -1;
        char hint[128] = "";
        hlsrelay_resource* llp = NULL;
        REQUIRE(hlsrelay_read(engine, "ll", "index.m3u8", &llp) == HLSRELAY_OK);
        {
            const char* p = (const char*)hlsrelay_resource_data(llp);
            const char* end = p + hlsrelay_resource_size(llp);
            while (p < end) {
                const char* nl = memchr(p, '\n', (size_t)(end - p));
                const size_t n = (size_t)((nl ? nl : end) - p);
                if (n > 4 && memcmp(p, "seg_", 4) == 0) last = strtoll(p + 4, NULL, 10);
                if (n > 40 && memcmp(p, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"", 35) == 0 && n - 36 < sizeof hint) {
                    memcpy(hint, p + 35, n - 36);
                    hint[n - 36] = '\0';
                }
                p += n + 1;
            }
        }
        hlsrelay_resource_free(llp);
        REQUIRE(last >= 0 && hint[0] != '\0');
        CHECK(hlsrelay_wait_playlist(engine, "ll", last, -1, 0) == HLSRELAY_OK); /* held already: at once */
        CHECK(hlsrelay_wait_playlist(engine, "ll", last + 3, -1, 1) == HLSRELAY_EINVAL); /* too far: a 400 */
        CHECK(contains(hlsrelay_last_error(), "more than two segments"));
        CHECK(hlsrelay_wait_playlist(engine, "ll", last + 2, -1, 0) == HLSRELAY_ETIMEDOUT);
        CHECK(hlsrelay_wait_playlist(engine, "ll", last, -1, -1) == HLSRELAY_EINVAL);
        CHECK(hlsrelay_wait_playlist(engine, "nope", last, -1, 1) == HLSRELAY_ENOTFOUND);
        /* Any media playlist by name: "index.m3u8" is the same wait; a rendition this channel does not
         * have (it is no presentation) or a file that is no media playlist is not found. */
        CHECK(hlsrelay_wait_media_playlist(engine, "ll", "index.m3u8", last, -1, 0) == HLSRELAY_OK);
        CHECK(hlsrelay_wait_media_playlist(engine, "ll", "v1/index.m3u8", last, -1, 0) == HLSRELAY_ENOTFOUND);
        CHECK(hlsrelay_wait_media_playlist(engine, "ll", "master.m3u8", last, -1, 0) == HLSRELAY_ENOTFOUND);
        CHECK(hlsrelay_wait_media_playlist(engine, "ll", NULL, last, -1, 0) == HLSRELAY_EINVAL);
        CHECK(hlsrelay_wait_playlist(engine, "ll", last + 1, 0, 30) == HLSRELAY_OK); /* the next segment's first part */
        /* The hinted part (the next one after the playlist read: the segment after `last` or the one
         * after that) exists once that one has begun. */
        CHECK(hlsrelay_wait_playlist(engine, "ll", last + 2, 0, 30) == HLSRELAY_OK);
        REQUIRE(hlsrelay_read(engine, "ll", hint, &llp) == HLSRELAY_OK);
        CHECK(hlsrelay_resource_size(llp) > 0 && hlsrelay_resource_data(llp)[0] == 0x47);
        CHECK(strcmp(hlsrelay_resource_content_type(llp), "video/mp2t") == 0);
        hlsrelay_resource_free(llp);
    }
    CHECK(hlsrelay_stop(engine, "ll") == HLSRELAY_OK);

    /* ---- Destroy: no callback afterwards; what was read stays valid ---- */
    CHECK(hlsrelay_start(engine, "smoke") == HLSRELAY_OK); /* running at destroy: it must stop it */
    {
        /* TS readers of a destroyed engine: one waiting on another thread returns at once, a chunk
         * handed out stays valid, and both are closed after the engine is gone. */
        hlsrelay_ts_reader* kept = NULL;
        const uint8_t* chunk = NULL;
        size_t chunk_size = 0;
        uint8_t head[188];
        int64_t sent = 0;
        REQUIRE(hlsrelay_ts_open(engine, "smoke", &kept) == HLSRELAY_OK);
        REQUIRE(hlsrelay_ts_next(kept, 30, &chunk, &chunk_size) == HLSRELAY_OK && chunk_size >= sizeof head);
        memcpy(head, chunk, sizeof head);
        memset(&waiter, 0, sizeof waiter);
        REQUIRE(hlsrelay_ts_open(engine, "smoke", &waiter.reader) == HLSRELAY_OK);
        REQUIRE(pthread_create(&waiter_thread, NULL, ts_wait, &waiter) == 0);
        sleep_ms(200);
        deadline = now_seconds();
        CHECK(hlsrelay_engine_destroy(engine) == HLSRELAY_OK);
        pthread_join(waiter_thread, NULL);
        CHECK(waiter.rc == HLSRELAY_EEND && waiter.returned_at - deadline < 5);
        CHECK(memcmp(chunk, head, sizeof head) == 0);
        CHECK(hlsrelay_ts_stats(kept, &sent, NULL) == HLSRELAY_OK && sent == 1);
        {
            const uint8_t* data = (const uint8_t*)"x";
            size_t n = 1;
            CHECK(hlsrelay_ts_next(kept, 30, &data, &n) == HLSRELAY_EEND && data == NULL && n == 0);
            CHECK(contains(hlsrelay_last_error(), "destroyed"));
        }
        hlsrelay_ts_close(kept);
        hlsrelay_ts_close(waiter.reader);
    }
    {
        const int total = counter_total(&late);
        sleep_ms(300);
        CHECK(counter_total(&late) == total);
    }
    pthread_mutex_lock(&self.mu);
    CHECK(self.calls == self.calls_when_done); /* never called after unsubscribing itself */
    pthread_mutex_unlock(&self.mu);
    CHECK(hlsrelay_unsubscribe(NULL, sub_self) == HLSRELAY_EINVAL);
    CHECK(hlsrelay_resource_data(segment)[0] == 0x47);
    CHECK(hlsrelay_resource_size(playlist) > 7 && memcmp(hlsrelay_resource_data(playlist), "#EXTM3U", 7) == 0);
    hlsrelay_resource_free(segment);
    hlsrelay_resource_free(playlist);

    pthread_mutex_destroy(&ev.mu);
    pthread_mutex_destroy(&late.mu);
    pthread_mutex_destroy(&self.mu);
    if (failures) {
        fprintf(stderr, "c_smoke: %d check(s) failed\n", failures);
        return 1;
    }
    printf("c_smoke: all checks passed (hlsrelay %s)\n", hlsrelay_version());
    return 0;
}
