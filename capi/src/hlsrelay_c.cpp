// The C ABI over hlsrelay::Engine: every entry point goes through wrap(), so no exception leaves it.
#include <hlsrelay/hlsrelay.h>

#include <hlsrelay/endpoints.hpp>
#include <hlsrelay/engine.hpp>
#include <hlsrelay/hdhomerun.hpp>
#include <hlsrelay/registry.hpp>
#include <hlsrelay/status.hpp>
#include <hlsrelay/ts_stream.hpp>
#include <hlsrelay/tuner.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <iterator>
#include <cstddef>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

static_assert(HLSRELAY_VERSION_MAJOR == HLSRELAY_PROJECT_VERSION_MAJOR &&
                  HLSRELAY_VERSION_MINOR == HLSRELAY_PROJECT_VERSION_MINOR &&
                  HLSRELAY_VERSION_PATCH == HLSRELAY_PROJECT_VERSION_PATCH,
              "capi/include/hlsrelay/hlsrelay.h's HLSRELAY_VERSION_* must match project(hlsrelay VERSION ...)");

// ---- Handles ----

namespace {

// What an engine shares with its TS readers, so that a reader may outlive its engine: destroying the
// engine closes the gate (no reader enters the engine again), stops the channels (which wakes the
// readers waiting inside) and waits until the last reader inside has left, then frees the engine.
struct ReaderGate {
    std::mutex mu;
    std::condition_variable left;
    bool closed = false;
    int inside = 0;  // readers using the engine now
};

// A reader's pass into its engine for one call; entered() is false once the engine is being destroyed.
class GatePass {
public:
    explicit GatePass(ReaderGate& gate) : gate_(gate) {
        std::lock_guard lock(gate_.mu);
        entered_ = !gate_.closed;
        if (entered_) ++gate_.inside;
    }
    ~GatePass() {
        if (!entered_) return;
        std::lock_guard lock(gate_.mu);
        if (--gate_.inside == 0 && gate_.closed) gate_.left.notify_all();
    }
    GatePass(const GatePass&) = delete;
    GatePass& operator=(const GatePass&) = delete;
    bool entered() const { return entered_; }

private:
    ReaderGate& gate_;
    bool entered_ = false;
};

}  // namespace

struct hlsrelay_engine {
    explicit hlsrelay_engine(hlsrelay::EngineSettings settings) : engine(std::move(settings)) {}

    std::mutex subscriptions_mu;
    std::set<uint64_t> subscriptions;  // ids handed out and not yet unsubscribed
    const std::shared_ptr<ReaderGate> readers = std::make_shared<ReaderGate>();
    // Last member: destroyed first, while the members above are still alive for callbacks that run
    // during the engine's shutdown.
    hlsrelay::Engine engine;
};

struct hlsrelay_resource {
    std::shared_ptr<const void> data;  // shared with the engine (Resource::owner): the resource is `bytes` of it
    std::string_view bytes;
    std::string content_type;
    bool immutable = false;
};

struct hlsrelay_load_report {
    std::vector<std::string> channels;  // ids
    std::vector<std::pair<int, std::string>> issues;
    std::string json;
};

struct hlsrelay_ts_reader {
    hlsrelay_ts_reader(hlsrelay_engine* e, std::string id) : owner(e), gate(e->readers), stream(e->engine, std::move(id)) {}

    const hlsrelay_engine* owner;     // touched only through a GatePass: it may be freed before the reader
    std::shared_ptr<ReaderGate> gate;
    hlsrelay::api::TsStream stream;   // holds the engine by pointer too: used only through a GatePass
    std::shared_ptr<const void> chunk;  // keeps the bytes last handed out alive (no copy)
    bool given_any = false;           // the refusal is checked once more before the first chunk
    int end_code = 0;                 // once the stream ended: the code (and message) of every later call
    std::string end_message;
    std::atomic<int64_t> sent{0}, skipped{0};  // read by hlsrelay_ts_stats from any thread
};

namespace {

using hlsrelay::dump_json;
using hlsrelay::ErrorCode;

// ---- Errors ----

struct CError {
    int code;
    std::string message;
};

[[noreturn]] void fail(int code, std::string message) { throw CError{code, std::move(message)}; }

struct LastError {
    std::string message;
    const char* fallback = nullptr;  // used when the message itself could not be stored
};
thread_local LastError tl_error;

void set_error(const char* function, const char* message) noexcept {
    try {
        tl_error.message.assign(function).append(": ").append(message);
        tl_error.fallback = nullptr;
    } catch (...) {
        tl_error.fallback = "out of memory while recording an error message";
    }
}

void clear_error() noexcept {
    tl_error.message.clear();
    tl_error.fallback = nullptr;
}

int code_of(ErrorCode code) {
    switch (code) {
        case ErrorCode::InvalidArgument: return HLSRELAY_EINVAL;
        case ErrorCode::NotFound: return HLSRELAY_ENOTFOUND;
        case ErrorCode::Io: return HLSRELAY_EIO;
        case ErrorCode::Internal: return HLSRELAY_EINTERNAL;
        case ErrorCode::Unavailable: return HLSRELAY_EUNAVAILABLE;
        case ErrorCode::Conflict: return HLSRELAY_ESTATE;  // a disabled channel started
    }
    return HLSRELAY_EINTERNAL;
}

// The one boundary: runs an entry point's body, turns every exception into a code and a message.
template <class F>
int wrap(const char* function, F&& body) noexcept {
    try {
        const int rc = body();
        clear_error();
        return rc;
    } catch (const CError& e) {
        set_error(function, e.message.c_str());
        return e.code;
    } catch (const hlsrelay::Error& e) {
        set_error(function, e.what());
        return code_of(e.code());
    } catch (const std::bad_alloc&) {
        set_error(function, "out of memory");
        return HLSRELAY_ENOMEM;
    } catch (const std::invalid_argument& e) {
        set_error(function, e.what());
        return HLSRELAY_EINVAL;
    } catch (const std::exception& e) {
        set_error(function, e.what());
        return HLSRELAY_EINTERNAL;
    } catch (...) {
        set_error(function, "unknown exception");
        return HLSRELAY_EINTERNAL;
    }
}

// ---- Arguments ----

hlsrelay::Engine& engine_of(hlsrelay_engine* e) {
    if (!e) fail(HLSRELAY_EINVAL, "engine is NULL");
    return e->engine;
}

template <class T>
T* need(T* p, const char* what) {
    if (!p) fail(HLSRELAY_EINVAL, std::string(what) + " is NULL");
    return p;
}

// The caller-buffer protocol (see the header).
int put_string(std::string_view s, char* buf, size_t* size) {
    need(size, "size");
    const size_t needed = s.size() + 1;
    const size_t capacity = *size;
    *size = needed;
    if (!buf) return HLSRELAY_OK;
    if (capacity < needed) {
        if (capacity > 0) buf[0] = '\0';
        fail(HLSRELAY_EBUFFER, "buffer too small: " + std::to_string(needed) + " bytes needed, " +
                                   std::to_string(capacity) + " given");
    }
    std::memcpy(buf, s.data(), s.size());
    buf[s.size()] = '\0';
    return HLSRELAY_OK;
}

std::string reply_text(const hlsrelay::api::Reply& r) {
    return r.dump();
}

// ---- Callbacks ----

// The event callbacks running on this thread, innermost first, to refuse calls that would deadlock.
struct CallbackFrame {
    const hlsrelay_engine* engine;
    const std::atomic<uint64_t>* subscription;  // read when checked: it is set once subscribe returns
    const CallbackFrame* outer;
};
thread_local const CallbackFrame* tl_frames = nullptr;

// True when this thread is inside a callback of `engine` (other than subscription `except`).
bool in_callback(const hlsrelay_engine* engine, uint64_t except = 0) {
    for (const CallbackFrame* f = tl_frames; f; f = f->outer)
        if (f->engine == engine && (except == 0 || f->subscription->load() != except)) return true;
    return false;
}

void refuse_in_callback(const hlsrelay_engine* engine, const char* what) {
    if (in_callback(engine))
        fail(HLSRELAY_ESTATE, std::string("cannot ") + what +
                                  " from inside one of this engine's event callbacks (it would deadlock)");
}

// The C enum mirrors ChannelState value for value (both are append-only).
static_assert(HLSRELAY_STATE_IDLE == static_cast<int>(hlsrelay::ChannelState::Idle) &&
                  HLSRELAY_STATE_STARTING == static_cast<int>(hlsrelay::ChannelState::Starting) &&
                  HLSRELAY_STATE_RUNNING == static_cast<int>(hlsrelay::ChannelState::Running) &&
                  HLSRELAY_STATE_RECONNECTING == static_cast<int>(hlsrelay::ChannelState::Reconnecting) &&
                  HLSRELAY_STATE_STOPPED == static_cast<int>(hlsrelay::ChannelState::Stopped) &&
                  HLSRELAY_STATE_FAILED == static_cast<int>(hlsrelay::ChannelState::Failed) &&
                  HLSRELAY_STATE_STALLED == static_cast<int>(hlsrelay::ChannelState::Stalled) &&
                  std::size(hlsrelay::kChannelStates) == HLSRELAY_STATE_STALLED + 1,
              "hlsrelay_state must list ChannelState in order");

// A state's name: a literal, NUL-terminated (to_string returns views of string literals).
const char* state_name(hlsrelay::ChannelState s) { return hlsrelay::to_string(s).data(); }

// ---- Channels as JSON ----

nlohmann::json parse_object(const char* text, const char* what) {
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(text, nullptr, true, /*ignore_comments=*/true);
    } catch (const nlohmann::json::parse_error& e) {
        std::string message = e.what();
        if (std::size_t tag = message.find("] "); message.rfind("[json.exception", 0) == 0 && tag != std::string::npos)
            message.erase(0, tag + 2);
        fail(HLSRELAY_EINVAL, std::string(what) + " is not valid JSON: " + message);
    }
    if (!j.is_object()) fail(HLSRELAY_EINVAL, std::string(what) + " must be a JSON object");
    return j;
}

// One channel object through the registry's own JSON loader, so the fields and checks are the same.
hlsrelay::ChannelConfig channel_from_object(const nlohmann::json& object) {
    nlohmann::json list = nlohmann::json::array();
    list.push_back(object);
    hlsrelay::LoadReport report = hlsrelay::parse_json(dump_json(list));
    if (report.channels.size() == 1) return std::move(report.channels.front());  // warnings: ignored fields
    std::string message = "invalid channel";
    const std::string_view prefix = "(line = entry number): ";
    for (const auto& issue : report.issues) {
        std::string_view m = issue.message;
        if (std::size_t at = m.find(prefix); at != std::string_view::npos) m.remove_prefix(at + prefix.size());
        message += message == "invalid channel" ? ": " : "; ";
        message += m;
    }
    fail(HLSRELAY_EINVAL, message);
}

std::unique_ptr<hlsrelay_load_report> make_report(const hlsrelay::LoadReport& r) {
    auto report = std::make_unique<hlsrelay_load_report>();
    nlohmann::ordered_json j;
    j["added"] = r.channels.size();
    nlohmann::ordered_json channels = nlohmann::ordered_json::array();
    for (const auto& c : r.channels) {
        report->channels.push_back(c.id);
        channels.push_back({{"id", c.id}, {"name", c.name}, {"hls_url", hlsrelay::hls_url_for(c.id)}});
    }
    nlohmann::ordered_json issues = nlohmann::ordered_json::array();
    for (const auto& i : r.issues) {
        report->issues.emplace_back(i.line, i.message);
        issues.push_back({{"line", i.line}, {"message", i.message}});
    }
    j["channels"] = std::move(channels);
    j["issues"] = std::move(issues);
    report->json = dump_json(j);
    return report;
}

int finish_load(const hlsrelay::LoadReport& r, hlsrelay_load_report** report) {
    if (report) *report = make_report(r).release();
    return static_cast<int>(std::min<std::size_t>(r.channels.size(), INT_MAX));
}

// ---- Continuous TS ----

std::string detail_of(const hlsrelay::api::Reply& r) { return r.body.value("detail", std::string("refused")); }

// Whether `id` can be streamed as one TS (api::ts_stream_refusal): fails with its reason if not, as
// ENOTFOUND (404), or ESTATE for a 409 (none today: every known channel can be streamed).
void check_ts_streamable(const hlsrelay::Engine& e, const std::string& id) {
    if (auto refusal = hlsrelay::api::ts_stream_refusal(e, id))
        fail(refusal->status == 404 ? HLSRELAY_ENOTFOUND : HLSRELAY_ESTATE,
             refusal->status == 404 ? "Channel not found: " + id : detail_of(*refusal));
}

// Ends the reader for good: this call and every later one fail with `code` and `message`.
[[noreturn]] void end_stream(hlsrelay_ts_reader& r, int code, std::string message) {
    r.end_code = code;
    r.end_message = std::move(message);
    fail(r.end_code, r.end_message);
}

// Why no chunk will come any more (the channel stopped, failed or was removed), or nullopt.
std::optional<std::string> ts_end_reason(const hlsrelay::Engine& e, const std::string& id) {
    try {
        if (!e.running(id)) return "channel '" + id + "' stopped";
        const hlsrelay::ChannelStatus s = e.status(id);
        if (s.state == hlsrelay::ChannelState::Failed) return "channel '" + id + "' failed: " + s.last_error;
        return std::nullopt;
    } catch (const hlsrelay::Error& err) {
        if (err.code() != ErrorCode::NotFound) throw;
        return "channel '" + id + "' was removed";
    }
}

// The next chunk of `r` within `timeout_seconds`, inside the reader's GatePass (the engine is alive).
std::optional<hlsrelay::Resource> next_chunk(hlsrelay_ts_reader& r, double timeout_seconds) {
    const hlsrelay::Engine& e = r.owner->engine;
    const std::string& id = r.stream.channel();
    using Clock = std::chrono::steady_clock;
    const Clock::time_point deadline =
        Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(std::min(timeout_seconds, 1e9)));
    for (;;) {
        const Clock::time_point before = Clock::now();
        const double remaining = std::max(0.0, std::chrono::duration<double>(deadline - before).count());
        std::optional<hlsrelay::Resource> chunk;
        try {
            chunk = r.stream.wait_next(remaining);  // woken by the publication, or by the channel's stop
        } catch (const hlsrelay::Error& err) {
            if (err.code() != ErrorCode::NotFound) throw;  // else: removed, which the reason below says
        }
        r.skipped.store(r.stream.skipped());
        if (chunk && chunk->held() && !chunk->bytes().empty()) return chunk;
        if (auto reason = ts_end_reason(e, id)) end_stream(r, HLSRELAY_EEND, *reason);
        const Clock::time_point now = Clock::now();
        if (now >= deadline) return std::nullopt;
        // A wait that ended at once without a chunk (its segment was unreadable, or the worker was being
        // replaced by a restart) must not turn into a busy loop: a short pause, bounded by the deadline.
        if (now - before < std::chrono::milliseconds(1))
            std::this_thread::sleep_for(std::min<Clock::duration>(deadline - now, std::chrono::milliseconds(20)));
    }
}

// hlsrelay_api and hlsrelay_api_call: one row of the endpoint table, called by name.
int api_call(hlsrelay_engine* engine, const char* endpoint, const char* channel, const char* base_url, const char* body,
             size_t body_size, int* http_status, char* buf, size_t* size) {
    auto& e = engine_of(engine);
    need(endpoint, "endpoint");
    need(size, "size");
    namespace api = hlsrelay::api;
    const api::EndpointDef* def = api::find_endpoint(endpoint);
    if (!def) fail(HLSRELAY_EINVAL, "unknown endpoint '" + std::string(endpoint) + "' (" + api::endpoint_names() + ")");
    api::Call call;
    if (def->needs_channel()) {
        if (!channel) fail(HLSRELAY_EINVAL, "endpoint '" + std::string(def->name) + "' needs a channel");
        call.channel = channel;
    }
    call.base_url = base_url ? base_url : "";
    // Beyond the cap the endpoint answers 413 from the first kMaxApiBodyBytes + 1 bytes.
    if (body) call.body.assign(body, std::min(body_size, hlsrelay::kMaxApiBodyBytes + 1));
    if (def->changes_state)
        refuse_in_callback(engine, def->name == "stop-stream"    ? "stop a stream"
                                   : def->name == "start-stream" ? "start a stream"
                                                                 : "change channels");
    const api::Reply r = api::call(e, *def, call);
    if (http_status) *http_status = r.status;
    return put_string(reply_text(r), buf, size);
}

}  // namespace

extern "C" {

// ---- Version and errors ----

const char* hlsrelay_version(void) { return HLSRELAY_VERSION_STRING; }

unsigned int hlsrelay_version_number(void) { return HLSRELAY_VERSION_NUMBER; }

const char* hlsrelay_last_error(void) { return tl_error.fallback ? tl_error.fallback : tl_error.message.c_str(); }

// ---- Engine ----

int hlsrelay_engine_create(const hlsrelay_settings* settings, hlsrelay_engine** out) {
    return wrap("hlsrelay_engine_create", [&]() -> int {
        need(out, "out");
        *out = nullptr;
        hlsrelay::EngineSettings s;
        if (settings) {
            if (settings->struct_size < sizeof(size_t))
                fail(HLSRELAY_EINVAL,
                     "settings->struct_size is not set (use HLSRELAY_SETTINGS_INIT or hlsrelay_settings_init)");
            // Fields beyond the caller's struct_size keep the library's defaults (append-only growth).
#define HLSRELAY_FITS(field) \
    (settings->struct_size >= offsetof(hlsrelay_settings, field) + sizeof(settings->field))
            if (HLSRELAY_FITS(segment_duration)) s.hls.segment_duration = settings->segment_duration;
            if (HLSRELAY_FITS(max_segments)) s.hls.max_segments = settings->max_segments;
            if (HLSRELAY_FITS(cleanup_interval)) s.hls.cleanup_interval = settings->cleanup_interval;
            if (HLSRELAY_FITS(hls_dir) && settings->hls_dir) s.hls_dir = settings->hls_dir;
            if (HLSRELAY_FITS(read_timeout)) s.read_timeout = settings->read_timeout;
            if (HLSRELAY_FITS(reconnect_min)) s.reconnect_min = settings->reconnect_min;
            if (HLSRELAY_FITS(reconnect_max)) s.reconnect_max = settings->reconnect_max;
            if (HLSRELAY_FITS(log_level)) {
                if (settings->log_level < HLSRELAY_LOG_DEBUG || settings->log_level > HLSRELAY_LOG_OFF)
                    fail(HLSRELAY_EINVAL, "log_level " + std::to_string(settings->log_level) +
                                              " is not an hlsrelay_log_level");
                s.log_level = static_cast<hlsrelay::LogLevel>(settings->log_level);
            }
            if (HLSRELAY_FITS(max_playlist_bytes)) s.limits.max_playlist_bytes = settings->max_playlist_bytes;
            if (HLSRELAY_FITS(max_segment_bytes)) s.limits.max_segment_bytes = settings->max_segment_bytes;
            if (HLSRELAY_FITS(max_redirects)) s.limits.max_redirects = settings->max_redirects;
            if (HLSRELAY_FITS(playlist_deadline)) s.limits.playlist_deadline = settings->playlist_deadline;
            if (HLSRELAY_FITS(segment_deadline)) s.limits.segment_deadline = settings->segment_deadline;
            if (HLSRELAY_FITS(container)) {
                if (settings->container != HLSRELAY_CONTAINER_TS && settings->container != HLSRELAY_CONTAINER_FMP4)
                    fail(HLSRELAY_EINVAL, "container " + std::to_string(settings->container) +
                                              " is not an hlsrelay_container");
                s.hls.container = settings->container == HLSRELAY_CONTAINER_FMP4 ? hlsrelay::Container::fmp4
                                                                                 : hlsrelay::Container::ts;
            }
            if (HLSRELAY_FITS(renditions) && settings->renditions) s.hls.renditions = settings->renditions;
            if (HLSRELAY_FITS(low_latency)) s.hls.low_latency = settings->low_latency != 0;
            if (HLSRELAY_FITS(part_duration)) s.hls.part_duration = settings->part_duration;
            if (HLSRELAY_FITS(tuner_name) && settings->tuner_name) s.tuner.name = settings->tuner_name;
            if (HLSRELAY_FITS(tuner_device_id) && settings->tuner_device_id) s.tuner.device_id = settings->tuner_device_id;
            if (HLSRELAY_FITS(tuner_seed) && settings->tuner_seed) s.tuner.seed = settings->tuner_seed;
            if (HLSRELAY_FITS(tuner_count)) s.tuner.tuner_count = settings->tuner_count;
            if (HLSRELAY_FITS(providers) && settings->providers) {
                std::string_view rest = settings->providers;
                while (!rest.empty()) {
                    const std::size_t start = rest.find_first_not_of(" \t\n");
                    if (start == std::string_view::npos) break;
                    rest.remove_prefix(start);
                    const std::size_t end = std::min(rest.find_first_of(" \t\n"), rest.size());
                    std::string why;
                    auto p = hlsrelay::parse_provider(rest.substr(0, end), &why);
                    if (!p) fail(HLSRELAY_EINVAL, why);
                    s.providers.push_back(std::move(*p));
                    rest.remove_prefix(end);
                }
            }
            if (HLSRELAY_FITS(channel_list_count) && settings->channel_list_count > 0) {
                if (!HLSRELAY_FITS(channel_lists) || !settings->channel_lists)
                    fail(HLSRELAY_EINVAL, "channel_lists is NULL but channel_list_count is not 0");
                if (settings->channel_list_count > 1024) fail(HLSRELAY_EINVAL, "channel_list_count is over 1024");
                for (size_t i = 0; i < settings->channel_list_count; ++i) {
                    if (!settings->channel_lists[i]) fail(HLSRELAY_EINVAL, "channel_lists[" + std::to_string(i) + "] is NULL");
                    s.channel_lists.emplace_back(settings->channel_lists[i]);
                }
            }
            if (HLSRELAY_FITS(list_refresh_interval)) s.list_refresh_interval = settings->list_refresh_interval;
            if (HLSRELAY_FITS(max_list_bytes)) s.max_list_bytes = settings->max_list_bytes;
            if (HLSRELAY_FITS(state_file) && settings->state_file) s.state_file = settings->state_file;
            if (HLSRELAY_FITS(push_url) && settings->push_url) s.push_url = settings->push_url;
#undef HLSRELAY_FITS
        }
        *out = new hlsrelay_engine(std::move(s));
        return HLSRELAY_OK;
    });
}

int hlsrelay_engine_destroy(hlsrelay_engine* engine) {
    return wrap("hlsrelay_engine_destroy", [&]() -> int {
        if (!engine) return HLSRELAY_OK;
        refuse_in_callback(engine, "destroy the engine");
        ReaderGate& gate = *engine->readers;
        {
            std::lock_guard lock(gate.mu);
            gate.closed = true;
        }
        engine->engine.stop_all();  // a reader waiting for a publication wakes: its channel stopped
        {
            std::unique_lock lock(gate.mu);
            gate.left.wait(lock, [&] { return gate.inside == 0; });
        }
        delete engine;
        return HLSRELAY_OK;
    });
}

// ---- Registry ----

int hlsrelay_load_string(hlsrelay_engine* engine, const char* text, hlsrelay_load_report** report) {
    return wrap("hlsrelay_load_string", [&]() -> int {
        if (report) *report = nullptr;
        auto& e = engine_of(engine);
        need(text, "text");
        return finish_load(e.load(text), report);
    });
}

int hlsrelay_load_file(hlsrelay_engine* engine, const char* path, hlsrelay_load_report** report) {
    return wrap("hlsrelay_load_file", [&]() -> int {
        if (report) *report = nullptr;
        auto& e = engine_of(engine);
        need(path, "path");
        return finish_load(e.load_file(path), report);
    });
}

size_t hlsrelay_load_report_channel_count(const hlsrelay_load_report* report) {
    return report ? report->channels.size() : 0;
}

const char* hlsrelay_load_report_channel(const hlsrelay_load_report* report, size_t index) {
    if (!report || index >= report->channels.size()) return nullptr;
    return report->channels[index].c_str();
}

size_t hlsrelay_load_report_issue_count(const hlsrelay_load_report* report) {
    return report ? report->issues.size() : 0;
}

int hlsrelay_load_report_issue_line(const hlsrelay_load_report* report, size_t index) {
    if (!report || index >= report->issues.size()) return -1;
    return report->issues[index].first;
}

const char* hlsrelay_load_report_issue_message(const hlsrelay_load_report* report, size_t index) {
    if (!report || index >= report->issues.size()) return nullptr;
    return report->issues[index].second.c_str();
}

int hlsrelay_load_report_json(const hlsrelay_load_report* report, char* buf, size_t* size) {
    return wrap("hlsrelay_load_report_json", [&]() -> int {
        need(report, "report");
        return put_string(report->json, buf, size);
    });
}

void hlsrelay_load_report_free(hlsrelay_load_report* report) { delete report; }

int hlsrelay_channel_add(hlsrelay_engine* engine, const char* channel_json, char* id_buf, size_t* id_size) {
    return wrap("hlsrelay_channel_add", [&]() -> int {
        auto& e = engine_of(engine);
        need(channel_json, "channel_json");
        if (id_buf) {
            need(id_size, "id_size");
            // Checked before adding: adding is not repeatable, so EBUFFER must mean nothing happened.
            if (*id_size < HLSRELAY_ID_MAX) {
                const size_t given = *id_size;
                *id_size = HLSRELAY_ID_MAX;
                if (given > 0) id_buf[0] = '\0';
                fail(HLSRELAY_EBUFFER, "id buffer too small: HLSRELAY_ID_MAX (" + std::to_string(HLSRELAY_ID_MAX) +
                                           ") bytes needed, " + std::to_string(given) + " given");
            }
        }
        const hlsrelay::ChannelConfig added =
            e.add_channel(channel_from_object(parse_object(channel_json, "channel_json")));
        if (id_size) {
            if (id_buf) return put_string(added.id, id_buf, id_size);
            *id_size = added.id.size() + 1;
        }
        return HLSRELAY_OK;
    });
}

int hlsrelay_channel_update(hlsrelay_engine* engine, const char* channel, const char* patch_json) {
    return wrap("hlsrelay_channel_update", [&]() -> int {
        auto& e = engine_of(engine);
        need(channel, "channel");
        need(patch_json, "patch_json");
        refuse_in_callback(engine, "update a channel");
        nlohmann::json patch = parse_object(patch_json, "patch_json");
        patch.erase("id");
        const auto current = e.find_channel(channel);
        if (!current) fail(HLSRELAY_ENOTFOUND, "Channel not found: " + std::string(channel));
        const nlohmann::json merged = hlsrelay::apply_channel_patch(hlsrelay::to_json(*current, /*include_sources=*/true), patch);
        e.update_channel(current->id, channel_from_object(merged));
        return HLSRELAY_OK;
    });
}

int hlsrelay_channel_remove(hlsrelay_engine* engine, const char* channel) {
    return wrap("hlsrelay_channel_remove", [&]() -> int {
        auto& e = engine_of(engine);
        need(channel, "channel");
        refuse_in_callback(engine, "remove a channel");
        e.remove_channel(channel);
        return HLSRELAY_OK;
    });
}

int hlsrelay_channels_json(hlsrelay_engine* engine, int flags, char* buf, size_t* size) {
    return wrap("hlsrelay_channels_json", [&]() -> int {
        auto& e = engine_of(engine);
        need(size, "size");
        if (flags & ~HLSRELAY_CHANNELS_WITH_SOURCES) fail(HLSRELAY_EINVAL, "unknown flags " + std::to_string(flags));
        if (flags & HLSRELAY_CHANNELS_WITH_SOURCES) return put_string(hlsrelay::to_json_text(e.channels(), true), buf, size);
        const hlsrelay::api::Reply r = hlsrelay::api::list_channels(e);
        if (r.status != 200) fail(HLSRELAY_EINTERNAL, reply_text(r));
        return put_string(reply_text(r), buf, size);
    });
}

// ---- Control ----

int hlsrelay_start(hlsrelay_engine* engine, const char* channel) {
    return wrap("hlsrelay_start", [&]() -> int {
        auto& e = engine_of(engine);
        need(channel, "channel");
        refuse_in_callback(engine, "start a channel");
        e.start(channel);
        return HLSRELAY_OK;
    });
}

int hlsrelay_start_on_demand(hlsrelay_engine* engine, const char* channel) {
    return wrap("hlsrelay_start_on_demand", [&]() -> int {
        auto& e = engine_of(engine);
        need(channel, "channel");
        refuse_in_callback(engine, "start a channel");
        e.start(channel, hlsrelay::StartMode::on_demand);
        return HLSRELAY_OK;
    });
}

int hlsrelay_stop(hlsrelay_engine* engine, const char* channel) {
    return wrap("hlsrelay_stop", [&]() -> int {
        auto& e = engine_of(engine);
        need(channel, "channel");
        refuse_in_callback(engine, "stop a channel");
        e.stop(channel);
        return HLSRELAY_OK;
    });
}

// ---- Status ----

int hlsrelay_status_json(hlsrelay_engine* engine, const char* channel, char* buf, size_t* size) {
    return wrap("hlsrelay_status_json", [&]() -> int {
        auto& e = engine_of(engine);
        need(size, "size");
        if (channel) return put_string(dump_json(hlsrelay::to_json(e.status(channel))), buf, size);
        const hlsrelay::api::Reply r = hlsrelay::api::streams_status(e);
        if (r.status != 200) fail(HLSRELAY_EINTERNAL, reply_text(r));
        return put_string(reply_text(r), buf, size);
    });
}

// ---- Reading ----

int hlsrelay_read(hlsrelay_engine* engine, const char* channel, const char* name, hlsrelay_resource** out) {
    return wrap("hlsrelay_read", [&]() -> int {
        need(out, "out");
        *out = nullptr;
        auto& e = engine_of(engine);
        need(channel, "channel");
        need(name, "name");
        const auto config = e.find_channel(channel);
        if (!config) fail(HLSRELAY_ENOTFOUND, "Channel not found: " + std::string(channel));
        std::optional<hlsrelay::Resource> r = e.read(config->id, name);
        if (!r || !r->held()) {
            if (!e.running(config->id)) fail(HLSRELAY_ESTATE, "channel '" + config->id + "' is not running");
            fail(HLSRELAY_ENOTFOUND, "channel '" + config->id + "' has no '" + std::string(name) + "' (yet or any more)");
        }
        auto resource = std::make_unique<hlsrelay_resource>();
        resource->bytes = r->bytes();
        resource->data = r->owner();
        resource->content_type = std::string(r->content_type);
        resource->immutable = r->immutable;
        *out = resource.release();
        return HLSRELAY_OK;
    });
}

int hlsrelay_wait_ready(hlsrelay_engine* engine, const char* channel, double timeout_seconds) {
    return wrap("hlsrelay_wait_ready", [&]() -> int {
        auto& e = engine_of(engine);
        need(channel, "channel");
        if (!(timeout_seconds >= 0)) fail(HLSRELAY_EINVAL, "timeout_seconds must be a number >= 0");
        refuse_in_callback(engine, "wait for a channel");
        const auto config = e.find_channel(channel);
        if (!config) fail(HLSRELAY_ENOTFOUND, "Channel not found: " + std::string(channel));
        if (e.wait_ready(config->id, timeout_seconds)) return HLSRELAY_OK;
        // Why not: the engine's answer is only "not ready"; the state says whether waiting could help.
        if (!e.running(config->id)) fail(HLSRELAY_ESTATE, "channel '" + config->id + "' is not running");
        const hlsrelay::ChannelState state = e.status(config->id).state;
        if (state == hlsrelay::ChannelState::Failed)
            fail(HLSRELAY_ESTATE, "channel '" + config->id + "' has failed: " + e.status(config->id).last_error);
        fail(HLSRELAY_ETIMEDOUT, "channel '" + config->id + "' has no playlist yet after " +
                                     std::to_string(timeout_seconds) + " s (state " + std::string(hlsrelay::to_string(state)) + ")");
    });
}

int hlsrelay_wait_playlist(hlsrelay_engine* engine, const char* channel, int64_t msn, int part, double timeout_seconds) {
    return hlsrelay_wait_media_playlist(engine, channel, hlsrelay::kMediaPlaylistName.data(), msn, part, timeout_seconds);
}

int hlsrelay_wait_media_playlist(hlsrelay_engine* engine, const char* channel, const char* playlist, int64_t msn, int part,
                                 double timeout_seconds) {
    return wrap("hlsrelay_wait_playlist", [&]() -> int {
        auto& e = engine_of(engine);
        need(channel, "channel");
        need(playlist, "playlist");
        if (!(timeout_seconds >= 0)) fail(HLSRELAY_EINVAL, "timeout_seconds must be a number >= 0");
        refuse_in_callback(engine, "wait for a playlist");
        const auto config = e.find_channel(channel);
        if (!config) fail(HLSRELAY_ENOTFOUND, "Channel not found: " + std::string(channel));
        const std::string file = playlist;
        if (!hlsrelay::api::is_media_playlist(file)) fail(HLSRELAY_ENOTFOUND, "not a media playlist: " + file);
        const std::string msn_text = std::to_string(msn);
        const std::optional<std::string> part_text = part >= 0 ? std::optional<std::string>(std::to_string(part)) : std::nullopt;
        if (!e.running(config->id)) fail(HLSRELAY_ESTATE, "channel '" + config->id + "' is not running");
        const auto position = e.playlist_position(config->id, file);
        if (!position) fail(HLSRELAY_ENOTFOUND, "channel '" + config->id + "' has no playlist " + file);
        if (!position->low_latency) fail(HLSRELAY_ESTATE, "channel '" + config->id + "' has no low latency (low_latency)");
        // The same reading of the request as the HTTP servers' (api::hls_playlist): 400 there, EINVAL here.
        const auto a = hlsrelay::api::hls_playlist(e, config->id, file,
                                                   hlsrelay::api::PlaylistDirectives{msn < 0 ? std::string("-") : msn_text, part_text, std::nullopt});
        if (a.kind == hlsrelay::api::PlaylistAnswer::Kind::error) fail(HLSRELAY_EINVAL, a.error.body.value("detail", std::string("bad request")));
        if (e.wait_playlist(config->id, file, msn, part, timeout_seconds)) return HLSRELAY_OK;
        if (!e.running(config->id)) fail(HLSRELAY_ESTATE, "channel '" + config->id + "' is not running");
        fail(HLSRELAY_ETIMEDOUT, "channel '" + config->id + "' has no segment " + msn_text +
                                     (part >= 0 ? " part " + std::to_string(part) : std::string()) + " after " +
                                     std::to_string(timeout_seconds) + " s");
    });
}

const uint8_t* hlsrelay_resource_data(const hlsrelay_resource* resource) {
    if (!resource || !resource->data) return nullptr;
    return reinterpret_cast<const uint8_t*>(resource->bytes.data());
}

size_t hlsrelay_resource_size(const hlsrelay_resource* resource) {
    return resource && resource->data ? resource->bytes.size() : 0;
}

const char* hlsrelay_resource_content_type(const hlsrelay_resource* resource) {
    return resource ? resource->content_type.c_str() : "";
}

int hlsrelay_resource_immutable(const hlsrelay_resource* resource) { return resource && resource->immutable ? 1 : 0; }

void hlsrelay_resource_free(hlsrelay_resource* resource) { delete resource; }

// ---- Events ----

int hlsrelay_subscribe(hlsrelay_engine* engine, hlsrelay_event_cb callback, void* user_data, uint64_t* subscription) {
    return wrap("hlsrelay_subscribe", [&]() -> int {
        auto& e = engine_of(engine);
        need(callback, "callback");
        need(subscription, "subscription");
        // Set just before subscribe returns; the caller cannot know the id earlier either.
        auto own_id = std::make_shared<std::atomic<uint64_t>>(0);
        const uint64_t id = e.subscribe([engine, callback, user_data, own_id](const hlsrelay::Event& ev) {
            hlsrelay_event c{};
            c.struct_size = sizeof c;
            c.channel = ev.channel.c_str();
            c.state = "";
            c.message = "";
            c.sequence = -1;
            c.duration = 0;
            c.state_code = -1;
            c.part = -1;
            c.rendition = ev.rendition.c_str();
            switch (ev.type) {
                case hlsrelay::EventType::StateChanged:
                    c.type = HLSRELAY_EVENT_STATE;
                    c.state = state_name(ev.state);
                    c.state_code = static_cast<int>(ev.state);
                    break;
                case hlsrelay::EventType::SegmentPublished:
                    c.type = HLSRELAY_EVENT_SEGMENT;
                    c.state = state_name(ev.state);
                    c.state_code = static_cast<int>(ev.state);
                    c.sequence = ev.sequence;
                    c.duration = ev.duration;
                    break;
                case hlsrelay::EventType::Error:
                    c.type = HLSRELAY_EVENT_ERROR;
                    c.message = ev.message.c_str();
                    break;
                case hlsrelay::EventType::PartPublished:
                    c.type = HLSRELAY_EVENT_PART;
                    c.state = state_name(ev.state);
                    c.state_code = static_cast<int>(ev.state);
                    c.sequence = ev.sequence;
                    c.part = ev.part;
                    c.duration = ev.duration;
                    break;
            }
            struct Frame {
                CallbackFrame frame;
                explicit Frame(CallbackFrame f) : frame(f) { tl_frames = &frame; }
                ~Frame() { tl_frames = frame.outer; }
                Frame(const Frame&) = delete;
                Frame& operator=(const Frame&) = delete;
            } frame(CallbackFrame{engine, own_id.get(), tl_frames});
            callback(&c, user_data);
        });
        try {
            std::lock_guard lock(engine->subscriptions_mu);
            engine->subscriptions.insert(id);
        } catch (...) {
            e.unsubscribe(id);
            throw;
        }
        own_id->store(id);
        *subscription = id;
        return HLSRELAY_OK;
    });
}

int hlsrelay_unsubscribe(hlsrelay_engine* engine, uint64_t subscription) {
    return wrap("hlsrelay_unsubscribe", [&]() -> int {
        auto& e = engine_of(engine);
        if (in_callback(engine, subscription))
            fail(HLSRELAY_ESTATE,
                 "cannot unsubscribe another subscription from inside an event callback (it would deadlock)");
        bool known;
        {
            std::lock_guard lock(engine->subscriptions_mu);
            known = engine->subscriptions.erase(subscription) > 0;
        }
        e.unsubscribe(subscription);
        if (!known) fail(HLSRELAY_ENOTFOUND, "no subscription " + std::to_string(subscription));
        return HLSRELAY_OK;
    });
}

// ---- Continuous TS ----

int hlsrelay_ts_open(hlsrelay_engine* engine, const char* channel, hlsrelay_ts_reader** out) {
    return wrap("hlsrelay_ts_open", [&]() -> int {
        need(out, "out");
        *out = nullptr;
        auto& e = engine_of(engine);
        need(channel, "channel");
        refuse_in_callback(engine, "open a TS stream");
        const auto config = e.find_channel(channel);
        if (!config) fail(HLSRELAY_ENOTFOUND, "Channel not found: " + std::string(channel));
        check_ts_streamable(e, config->id);  // before starting anything
        if (!e.running(config->id)) e.start(config->id);
        check_ts_streamable(e, config->id);  // separate audio renditions, if known by now (else before the first chunk)
        *out = new hlsrelay_ts_reader(engine, config->id);
        return HLSRELAY_OK;
    });
}

int hlsrelay_ts_next(hlsrelay_ts_reader* reader, double timeout_seconds, const uint8_t** data, size_t* size) {
    return wrap("hlsrelay_ts_next", [&]() -> int {
        if (data) *data = nullptr;
        if (size) *size = 0;
        need(reader, "reader");
        reader->chunk.reset();  // whatever this call returns, the previous chunk is released
        need(data, "data");
        need(size, "size");
        if (!(timeout_seconds >= 0)) fail(HLSRELAY_EINVAL, "timeout_seconds must be a number >= 0");
        if (reader->end_code != HLSRELAY_OK) fail(reader->end_code, reader->end_message);
        const GatePass pass(*reader->gate);
        if (!pass.entered())
            end_stream(*reader, HLSRELAY_EEND, "the engine of channel '" + reader->stream.channel() + "' was destroyed");
        refuse_in_callback(reader->owner, "wait for a TS chunk");
        std::optional<hlsrelay::Resource> chunk = next_chunk(*reader, timeout_seconds);
        if (!chunk)
            fail(HLSRELAY_ETIMEDOUT, "channel '" + reader->stream.channel() + "' published no new segment within " +
                                         std::to_string(timeout_seconds) + " s");
        if (!reader->given_any) {
            // A presentation's separate audio is known only once it runs: refused before the first byte.
            try {
                check_ts_streamable(reader->owner->engine, reader->stream.channel());
            } catch (const CError& refused) {
                end_stream(*reader, refused.code == HLSRELAY_ENOTFOUND ? HLSRELAY_EEND : refused.code, refused.message);
            }
        }
        const std::string_view bytes = chunk->bytes();
        reader->chunk = chunk->owner();
        reader->given_any = true;
        reader->sent.fetch_add(1);
        *data = reinterpret_cast<const uint8_t*>(bytes.data());
        *size = bytes.size();
        return HLSRELAY_OK;
    });
}

int hlsrelay_ts_stats(const hlsrelay_ts_reader* reader, int64_t* sent, int64_t* skipped) {
    return wrap("hlsrelay_ts_stats", [&]() -> int {
        need(reader, "reader");
        if (sent) *sent = reader->sent.load();
        if (skipped) *skipped = reader->skipped.load();
        return HLSRELAY_OK;
    });
}

void hlsrelay_ts_close(hlsrelay_ts_reader* reader) { delete reader; }

int hlsrelay_channel_for_guide_number(hlsrelay_engine* engine, const char* guide_number, char* buf, size_t* size) {
    return wrap("hlsrelay_channel_for_guide_number", [&]() -> int {
        auto& e = engine_of(engine);
        need(guide_number, "guide_number");
        need(size, "size");
        if (!hlsrelay::hdhomerun::normalize_guide_number(guide_number))
            fail(HLSRELAY_EINVAL, "'" + std::string(guide_number) + "' is not a GuideNumber (\"5\", \"5.1\")");
        const auto id = hlsrelay::api::channel_for_guide_number(e, guide_number);
        if (!id) fail(HLSRELAY_ENOTFOUND, "no channel has GuideNumber " + std::string(guide_number));
        return put_string(*id, buf, size);
    });
}

// ---- HTTP API replies ----

int hlsrelay_api(hlsrelay_engine* engine, const char* endpoint, const char* channel, const char* base_url,
                 int* http_status, char* buf, size_t* size) {
    return wrap("hlsrelay_api", [&]() -> int { return api_call(engine, endpoint, channel, base_url, nullptr, 0, http_status, buf, size); });
}

int hlsrelay_api_call(hlsrelay_engine* engine, const char* endpoint, const char* channel, const char* base_url,
                      const char* body, size_t body_size, int* http_status, char* buf, size_t* size) {
    return wrap("hlsrelay_api_call", [&]() -> int {
        if (!body && body_size > 0) fail(HLSRELAY_EINVAL, "body is NULL but body_size is not 0");
        return api_call(engine, endpoint, channel, base_url, body, body_size, http_status, buf, size);
    });
}

}  // extern "C"
