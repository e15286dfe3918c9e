// header_cxx.cpp: hlsrelay.h compiles warning-free as C++ and links; the inline and macro helpers agree.
#include <hlsrelay/hlsrelay.h>

#include <cstddef>
#include <cstdio>
#include <cstring>

int main() {
    int failures = 0;
    auto check = [&](bool ok, const char* what) {
        if (!ok) {
            std::fprintf(stderr, "header_cxx: failed: %s\n", what);
            ++failures;
        }
    };
    hlsrelay_settings a = HLSRELAY_SETTINGS_INIT;
    hlsrelay_settings b;
    std::memset(&b, 0xff, sizeof b);
    hlsrelay_settings_init(&b);
    hlsrelay_settings_init(nullptr);
    check(a.struct_size == sizeof(hlsrelay_settings) && b.struct_size == a.struct_size, "struct_size");
    check(a.segment_duration == b.segment_duration && a.max_segments == b.max_segments &&
              a.cleanup_interval == b.cleanup_interval && a.hls_dir == nullptr && b.hls_dir == nullptr &&
              a.read_timeout == b.read_timeout && a.reconnect_min == b.reconnect_min &&
              a.reconnect_max == b.reconnect_max && a.log_level == b.log_level && a.log_level == HLSRELAY_LOG_WARN &&
              a.max_playlist_bytes == b.max_playlist_bytes && a.max_segment_bytes == b.max_segment_bytes &&
              a.max_redirects == b.max_redirects && a.playlist_deadline == b.playlist_deadline &&
              a.segment_deadline == b.segment_deadline && a.tuner_name == nullptr && b.tuner_name == nullptr &&
              a.tuner_device_id == nullptr && b.tuner_device_id == nullptr && a.tuner_seed == nullptr &&
              b.tuner_seed == nullptr && a.tuner_count == 0 && b.tuner_count == 0,
          "defaults");
    check(hlsrelay_version_number() == HLSRELAY_VERSION_NUMBER, "version number");
    check(std::strcmp(hlsrelay_version(), HLSRELAY_VERSION_STRING) == 0, "version string");
    // The error codes are ABI: pinned here so a renumbering fails a test.
    static_assert(HLSRELAY_OK == 0 && HLSRELAY_EINVAL == -1 && HLSRELAY_ENOTFOUND == -2 && HLSRELAY_EIO == -3 &&
                      HLSRELAY_EBUFFER == -4 && HLSRELAY_ENOMEM == -5 && HLSRELAY_EINTERNAL == -6 &&
                      HLSRELAY_ESTATE == -7 && HLSRELAY_ETIMEDOUT == -8 && HLSRELAY_EEND == -9,
                  "error codes are ABI");
    static_assert(HLSRELAY_EVENT_STATE == 1 && HLSRELAY_EVENT_SEGMENT == 2 && HLSRELAY_EVENT_ERROR == 3,
                  "event types are ABI");
    static_assert(HLSRELAY_STATE_IDLE == 0 && HLSRELAY_STATE_RUNNING == 2 && HLSRELAY_STATE_FAILED == 5 &&
                      HLSRELAY_STATE_STALLED == 6,
                  "states are ABI");
    static_assert(offsetof(hlsrelay_event, state_code) > offsetof(hlsrelay_event, duration), "fields are appended");
    static_assert(offsetof(hlsrelay_settings, tuner_name) > offsetof(hlsrelay_settings, part_duration) &&
                      offsetof(hlsrelay_settings, tuner_count) > offsetof(hlsrelay_settings, tuner_seed) &&
                      offsetof(hlsrelay_settings, state_file) > offsetof(hlsrelay_settings, tuner_count),
                  "settings fields are appended");
    static_assert(HLSRELAY_LOG_DEBUG == 0 && HLSRELAY_LOG_WARN == 2 && HLSRELAY_LOG_OFF == 4, "log levels are ABI");
    hlsrelay_engine* engine = nullptr;
    check(hlsrelay_engine_create(&a, &engine) == HLSRELAY_OK && engine != nullptr, "create");
    check(hlsrelay_engine_destroy(engine) == HLSRELAY_OK, "destroy");
    if (failures == 0) std::puts("header_cxx: ok");
    return failures == 0 ? 0 : 1;
}
