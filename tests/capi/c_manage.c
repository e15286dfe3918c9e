/* c_manage.c: runtime channel management from pure C99: hlsrelay_api_call with a body (add, update,
 * disable, enable, remove, bad bodies), and hlsrelay_settings.state_file keeping the changes for the next
 * engine. argv[1]: a directory to write the state file in. */
#define _POSIX_C_SOURCE 200809L

#include <hlsrelay/hlsrelay.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "c_check.h"

static char reply[65536];

/* The HTTP status of a call; its body in `reply`. */
static int call(hlsrelay_engine* engine, const char* endpoint, const char* channel, const char* body) {
    int status = 0;
    size_t size = sizeof reply;
    const int rc = hlsrelay_api_call(engine, endpoint, channel, NULL, body, body ? strlen(body) : 0, &status, reply, &size);
    if (rc != HLSRELAY_OK) {
        fprintf(stderr, "hlsrelay_api_call(%s) = %d: %s\n", endpoint, rc, hlsrelay_last_error());
        return -1;
    }
    return status;
}

static int contains(const char* haystack, const char* needle) { return strstr(haystack, needle) != NULL; }

static hlsrelay_engine* engine_with_state(const char* state) {
    hlsrelay_settings settings = HLSRELAY_SETTINGS_INIT;
    hlsrelay_engine* engine = NULL;
    settings.log_level = HLSRELAY_LOG_OFF;
    settings.state_file = state;
    if (hlsrelay_engine_create(&settings, &engine) != HLSRELAY_OK) return NULL;
    return engine;
}

int main(int argc, char** argv) {
    char state[4096];
    char* big;
    hlsrelay_engine* engine;
    FILE* f;
    REQUIRE(argc == 2);
    snprintf(state, sizeof state, "%s/c_manage_state.json", argv[1]);
    remove(state);

    engine = engine_with_state(state);
    REQUIRE(engine != NULL);
    CHECK(call(engine, "channel-add", NULL, "{\"id\": \"a\", \"name\": \"A\", \"url\": \"http://127.0.0.1:1/a.m3u8\"}") == 201);
    CHECK(contains(reply, "\"id\":\"a\""));
    CHECK(call(engine, "channel-add", NULL, "{\"name\": \"B b\", \"url\": \"http://127.0.0.1:1/b.m3u8\"}") == 201);
    CHECK(contains(reply, "\"id\":\"b_b\""));
    CHECK(call(engine, "channel-add", NULL, "{\"id\": \"a\", \"name\": \"A\", \"url\": \"http://127.0.0.1:1/a.m3u8\"}") == 409);
    CHECK(call(engine, "channel-add", NULL, "{\"name\": ") == 400 && contains(reply, "invalid JSON"));
    CHECK(call(engine, "channel-add", NULL, "{\"name\": \"X\", \"url\": \"http://x/\", \"nope\": 1}") == 400 &&
          contains(reply, "unknown field 'nope'"));
    CHECK(call(engine, "channel-add", NULL, NULL) == 400);
    big = (char*)malloc(70000);
    REQUIRE(big != NULL);
    memset(big, ' ', 69999);
    big[0] = '{';
    big[69998] = '}';
    big[69999] = '\0';
    CHECK(call(engine, "channel-add", NULL, big) == 413);
    free(big);
    {
        int status = 0;
        size_t size = sizeof reply;
        CHECK(hlsrelay_api_call(engine, "channel-add", NULL, NULL, NULL, 5, &status, reply, &size) == HLSRELAY_EINVAL);
    }
    CHECK(call(engine, "channel-update", "a", "{\"group\": \"News\"}") == 200 && contains(reply, "\"group\":\"News\""));
    CHECK(call(engine, "channel-update", "zz", "{\"group\": \"News\"}") == 404);
    CHECK(call(engine, "channel-disable", "a", NULL) == 200 && contains(reply, "\"enabled\":false"));
    CHECK(call(engine, "start-stream", "a", NULL) == 409 && contains(reply, "disabled"));
    CHECK(hlsrelay_start(engine, "a") == HLSRELAY_ESTATE);
    CHECK(call(engine, "channel-remove", "b_b", NULL) == 200 && contains(reply, "\"removed\":\"b_b\""));
    CHECK(call(engine, "channel-remove", "b_b", NULL) == 404);
    CHECK(hlsrelay_engine_destroy(engine) == HLSRELAY_OK);

    /* The next engine with the same state file has the changes. */
    engine = engine_with_state(state);
    REQUIRE(engine != NULL);
    CHECK(call(engine, "channels", NULL, NULL) == 200);
    CHECK(contains(reply, "\"id\":\"a\"") && !contains(reply, "b_b") && contains(reply, "\"enabled\":false") &&
          contains(reply, "\"group\":\"News\""));
    CHECK(call(engine, "channel-enable", "a", NULL) == 200 && contains(reply, "\"enabled\":true"));
    CHECK(hlsrelay_engine_destroy(engine) == HLSRELAY_OK);

    /* A corrupt state file: refused with a message naming it. */
    f = fopen(state, "w");
    REQUIRE(f != NULL);
    fputs("{\"hlsrelay_state\": 1, \"added\": 5}", f);
    fclose(f);
    CHECK(engine_with_state(state) == NULL);
    CHECK(contains(hlsrelay_last_error(), "c_manage_state.json"));
    remove(state);

    if (failures == 0) puts("c_manage: ok");
    return failures == 0 ? 0 : 1;
}
