/* main.c: a consumer of an installed libhlsrelay: restreams a looping file until a playlist appears. */
#define _POSIX_C_SOURCE 200809L

#include <hlsrelay/hlsrelay.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

static void sleep_ms(long ms) {
    struct timespec t;
    t.tv_sec = ms / 1000;
    t.tv_nsec = (ms % 1000) * 1000000L;
    nanosleep(&t, NULL);
}

int main(int argc, char** argv) {
    hlsrelay_settings settings = HLSRELAY_SETTINGS_INIT;
    hlsrelay_engine* engine = NULL;
    hlsrelay_resource* playlist = NULL;
    char json[4096];
    char id[HLSRELAY_ID_MAX];
    size_t id_size = sizeof id;
    int tries;

    if (argc != 2 || strlen(argv[1]) > 3000 || strpbrk(argv[1], "\"\\")) {
        fprintf(stderr, "usage: %s <looping media file without quotes or backslashes>\n", argv[0]);
        return 2;
    }
    if (hlsrelay_version_number() / 10000 != HLSRELAY_VERSION_MAJOR) {
        fprintf(stderr, "header %s but library %s\n", HLSRELAY_VERSION_STRING, hlsrelay_version());
        return 1;
    }
    settings.segment_duration = 1.0;
    settings.log_level = HLSRELAY_LOG_ERROR;
    if (hlsrelay_engine_create(&settings, &engine) != HLSRELAY_OK) {
        fprintf(stderr, "create: %s\n", hlsrelay_last_error());
        return 1;
    }
    snprintf(json, sizeof json, "{\"name\": \"Consumer\", \"loop\": true, \"url\": \"%s\"}", argv[1]);
    if (hlsrelay_channel_add(engine, json, id, &id_size) != HLSRELAY_OK || hlsrelay_start(engine, id) != HLSRELAY_OK) {
        fprintf(stderr, "add/start: %s\n", hlsrelay_last_error());
        hlsrelay_engine_destroy(engine);
        return 1;
    }
    for (tries = 0; tries < 150 && !playlist; ++tries) {
        if (hlsrelay_read(engine, id, "index.m3u8", &playlist) != HLSRELAY_OK) sleep_ms(100);
    }
    if (playlist) {
        printf("hlsrelay %s: channel '%s' has a %zu-byte playlist\n", hlsrelay_version(), id,
               hlsrelay_resource_size(playlist));
        hlsrelay_resource_free(playlist);
    } else {
        fprintf(stderr, "no playlist within 15 s: %s\n", hlsrelay_last_error());
    }
    hlsrelay_engine_destroy(engine);
    return playlist ? 0 : 1;
}
