// hlsrelay._core: the engine for Python (pybind11). The GIL is released around every engine call.
#include <hlsrelay/endpoints.hpp>
#include <hlsrelay/ts_stream.hpp>
#include <hlsrelay/engine.hpp>
#include <hlsrelay/registry.hpp>
#include <hlsrelay/settings.hpp>

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace py = pybind11;

namespace {

using hlsrelay::ChannelConfig;
using hlsrelay::Engine;
using hlsrelay::EngineSettings;
using hlsrelay::Error;
using hlsrelay::ErrorCode;
using hlsrelay::Event;
using hlsrelay::EventType;

// The exception types. Deliberately never released: they live as long as the interpreter.
PyObject* g_engine_error = nullptr;
PyObject* g_channel_not_found = nullptr;
PyObject* g_invalid_argument = nullptr;
PyObject* g_unavailable = nullptr;

[[noreturn]] void invalid(const std::string& message) { throw Error(ErrorCode::InvalidArgument, message); }

// True once the interpreter is shutting down: engine threads must then not touch Python at all
// (acquiring the GIL during finalization terminates the calling thread).
bool interpreter_gone() {
#if PY_VERSION_HEX >= 0x030D0000
    return !Py_IsInitialized() || Py_IsFinalizing();
#else
    return !Py_IsInitialized() || _Py_IsFinalizing();
#endif
}

// Engine strings are UTF-8, but source URLs come from users: never fail a status call over a byte.
py::str to_str(const std::string& s) {
    PyObject* o = PyUnicode_DecodeUTF8(s.data(), static_cast<Py_ssize_t>(s.size()), "replace");
    if (!o) throw py::error_already_set();
    return py::reinterpret_steal<py::str>(o);
}

// nlohmann JSON (ordered or not) to Python objects, keeping key order.
template <class Json>
py::object to_python(const Json& j) {
    using nlohmann::detail::value_t;
    switch (j.type()) {
        case value_t::null:
        case value_t::discarded: return py::none();
        case value_t::boolean: return py::bool_(j.template get<bool>());
        case value_t::number_integer: return py::int_(j.template get<std::int64_t>());
        case value_t::number_unsigned: return py::int_(j.template get<std::uint64_t>());
        case value_t::number_float: return py::float_(j.template get<double>());
        case value_t::string: return to_str(j.template get_ref<const std::string&>());
        case value_t::array: {
            py::list list;
            for (const auto& v : j) list.append(to_python(v));
            return list;
        }
        case value_t::object: {
            py::dict dict;
            for (const auto& item : j.items()) dict[to_str(item.key())] = to_python(item.value());
            return dict;
        }
        case value_t::binary: {
            const auto& b = j.get_binary();
            return py::bytes(reinterpret_cast<const char*>(b.data()), b.size());
        }
    }
    return py::none();
}

py::dict channel_dict(const ChannelConfig& c, bool include_sources = false) {
    return to_python(hlsrelay::to_json(c, include_sources));
}

py::dict report_dict(const hlsrelay::LoadReport& r) {
    py::list ids, issues;
    for (const auto& c : r.channels) ids.append(to_str(c.id));
    for (const auto& i : r.issues) {
        py::dict issue;
        issue["line"] = i.line;
        issue["message"] = to_str(i.message);
        issues.append(std::move(issue));
    }
    py::dict d;
    d["channels"] = std::move(ids);
    d["issues"] = std::move(issues);
    return d;
}

py::dict event_dict(const Event& e) {
    py::dict d;
    const bool state = e.type == EventType::StateChanged, segment = e.type == EventType::SegmentPublished,
               part = e.type == EventType::PartPublished;
    d["type"] = state ? "state" : segment ? "segment" : part ? "part" : "error";
    d["channel"] = to_str(e.channel);
    d["state"] = state ? py::object(py::str(std::string(hlsrelay::to_string(e.state)))) : py::object(py::none());
    d["message"] = e.type == EventType::Error ? py::object(to_str(e.message)) : py::object(py::none());
    d["sequence"] = segment || part ? py::object(py::int_(e.sequence)) : py::object(py::none());
    d["duration"] = segment || part ? py::object(py::float_(e.duration)) : py::object(py::none());
    d["part"] = part ? py::object(py::int_(e.part)) : py::object(py::none());
    // A presentation's part events: the rendition ("v1") whose playlist has it; None for the top level.
    d["rendition"] = part && !e.rendition.empty() ? py::object(to_str(e.rendition)) : py::object(py::none());
    return d;
}

// Set while this thread runs a Python event callback. Calls that wait for workers (stop,
// remove_channel, update_channel, close) or emit events on the calling thread (start: the engine
// holds the subscriber's call mutex during the callback) would deadlock there, so they raise.
thread_local int t_in_callback = 0;

void forbid_in_callback(const char* what) {
    if (t_in_callback > 0)
        invalid(std::string(what) +
                " cannot be called from an event callback: it would wait for the engine's threads or for the "
                "callback itself; hand the work to another thread");
}

// A subscriber's Python callable. Engine threads own copies of the shared_ptr, so the last one may
// go away on any thread, with or without the GIL: the destructor takes the GIL to drop the reference.
struct PyCallback {
    py::function fn;

    explicit PyCallback(py::function f) : fn(std::move(f)) {}
    PyCallback(const PyCallback&) = delete;
    PyCallback& operator=(const PyCallback&) = delete;
    ~PyCallback() {
        if (interpreter_gone()) {
            fn.release();  // leak the reference rather than touch a dying interpreter
            return;
        }
        py::gil_scoped_acquire gil;
        fn = py::function();
    }

    void operator()(const Event& e) const {
        if (interpreter_gone()) return;
        py::gil_scoped_acquire gil;
        struct Mark {
            Mark() { ++t_in_callback; }
            ~Mark() { --t_in_callback; }
        } mark;
        // Nothing may cross into the engine: Python errors go to sys.unraisablehook.
        try {
            fn(event_dict(e));
        } catch (py::error_already_set& err) {
            err.discard_as_unraisable(fn);
        } catch (const std::exception& ex) {
            PyErr_SetString(PyExc_RuntimeError, ex.what());
            PyErr_WriteUnraisable(fn.ptr());
        } catch (...) {
            PyErr_SetString(PyExc_RuntimeError, "unknown C++ exception in an event callback");
            PyErr_WriteUnraisable(fn.ptr());
        }
    }
};

// Bytes read from a channel, shared with the engine (no copy) and exported via the buffer protocol.
struct PyResource {
    std::shared_ptr<const void> data;  // shared with the engine (Resource::owner): the resource is `bytes` of it
    std::string_view bytes;
    std::string content_type;
    bool immutable = false;
};

// A Resource for Python (the bytes shared with the engine), or None.
py::object resource_or_none(std::optional<hlsrelay::Resource> r) {
    if (!r || !r->held()) return py::none();
    const std::string_view bytes = r->bytes();
    return py::cast(PyResource{r->owner(), bytes, std::string(r->content_type), r->immutable});
}

hlsrelay::LogLevel parse_log_level(const std::string& level) {
    const auto parsed = hlsrelay::parse_log_level(level);
    if (!parsed) invalid("log_level '" + level + "' is not one of " + std::string(hlsrelay::kLogLevelNames));
    return *parsed;
}

hlsrelay::Container parse_container(const std::string& container) {
    const auto parsed = hlsrelay::parse_container(container);
    if (!parsed) invalid("container '" + container + "' is not ts or fmp4");
    return *parsed;
}

// A selection string ("max-height=720", "1080p,360p") or a list of heights (["1080p", "360p"]).
std::string renditions_of(const py::handle& v) {
    if (py::isinstance<py::str>(v)) return v.cast<std::string>();
    if (py::isinstance<py::list>(v) || py::isinstance<py::tuple>(v)) {
        std::string joined;
        for (const py::handle& h : v) {
            if (!py::isinstance<py::str>(h)) throw py::type_error("renditions: expected a str or a list of str like '720p'");
            joined += (joined.empty() ? "" : ",") + h.cast<std::string>();
        }
        if (joined.empty()) invalid("renditions: an empty list selects nothing");
        return joined;
    }
    throw py::type_error("renditions: expected a str or a list of str like '720p'");
}

std::string fspath(const py::handle& path) {
    return py::module_::import("os").attr("fsdecode")(path).cast<std::string>();  // str, bytes or PathLike
}

// Optional keyword values: None means "unset".
template <class T>
std::optional<T> optional_of(const py::handle& v, const char* field) {
    if (v.is_none()) return std::nullopt;
    try {
        return v.cast<T>();
    } catch (const py::cast_error&) {
        throw py::type_error(std::string(field) + ": unexpected type " +
                             py::str(v.get_type().attr("__name__")).cast<std::string>());
    }
}

std::string variant_of(const py::handle& v) {
    if (py::isinstance<py::bool_>(v)) throw py::type_error("variant: expected \"highest\", \"lowest\" or a bandwidth");
    if (py::isinstance<py::int_>(v)) return std::to_string(v.cast<long long>());
    if (py::isinstance<py::str>(v)) return v.cast<std::string>();
    throw py::type_error("variant: expected \"highest\", \"lowest\" or a bandwidth");
}

std::map<std::string, std::string> headers_of(const py::handle& v) {
    if (v.is_none()) return {};
    if (!py::isinstance<py::dict>(v)) throw py::type_error("headers: expected a dict of str to str");
    return v.cast<std::map<std::string, std::string>>();
}

std::vector<std::string> urls_of(const py::handle& urls, const py::handle& url) {
    const bool have_urls = !urls.is_none(), have_url = !url.is_none();
    if (have_urls && have_url) invalid("give either url= or urls=, not both");
    if (have_url) {
        if (!py::isinstance<py::str>(url)) throw py::type_error("url: expected a str");
        return {url.cast<std::string>()};
    }
    if (!have_urls) invalid("a channel needs urls=[...] or url=...");
    if (py::isinstance<py::str>(urls) || py::isinstance<py::bytes>(urls))
        throw py::type_error("urls: expected a list of str (use url= for a single source)");
    return urls.cast<std::vector<std::string>>();
}

// The fields add_channel and update_channel accept, applied onto `c`; absent keys stay as they are.
void apply_fields(ChannelConfig& c, const py::dict& fields) {
    static const std::set<std::string> known = {"name",     "urls",    "url",
                                                "id",       "logo",    "group",
                                                "headers",  "loop",    "realtime",
                                                "variant",  "segment_duration", "max_segments",
                                                "container", "renditions", "low_latency", "part_duration",
                                                "cleanup_interval", "max_playlist_bytes", "max_segment_bytes",
                                                "max_redirects", "playlist_deadline", "segment_deadline",
                                                "tvg_id", "tvg_name", "chno", "tvg_shift", "attributes", "provider", "enabled"};
    for (const auto& item : fields) {
        const std::string key = py::str(item.first);
        if (!known.count(key)) throw py::type_error("unexpected keyword argument '" + key + "'");
    }
    auto has = [&](const char* key) { return fields.contains(key); };
    if (has("urls") || has("url")) {
        py::object none = py::none();
        c.urls = urls_of(has("urls") ? py::object(fields["urls"]) : none,
                         has("url") ? py::object(fields["url"]) : none);
    }
    if (has("id") && !fields["id"].is_none()) {
        const std::string id = py::str(fields["id"]);
        if (!c.id.empty() && id != c.id) invalid("a channel's id cannot change ('" + c.id + "' to '" + id + "')");
        c.id = id;
    }
    if (has("name")) c.name = fields["name"].is_none() ? std::string() : fields["name"].cast<std::string>();
    if (has("logo")) c.logo = fields["logo"].is_none() ? std::string() : fields["logo"].cast<std::string>();
    if (has("group")) c.group = fields["group"].is_none() ? std::string() : fields["group"].cast<std::string>();
    if (has("headers")) c.headers = headers_of(fields["headers"]);
    if (has("loop")) c.loop = fields["loop"].cast<bool>();
    if (has("realtime")) c.realtime = optional_of<bool>(fields["realtime"], "realtime");
    if (has("variant"))
        c.variant = fields["variant"].is_none() ? std::nullopt : std::optional<std::string>(variant_of(fields["variant"]));
    if (has("container"))
        c.hls.container = fields["container"].is_none()
                              ? std::nullopt
                              : std::optional<hlsrelay::Container>(parse_container(py::str(fields["container"])));
    if (has("renditions"))
        c.hls.renditions = fields["renditions"].is_none() ? std::nullopt
                                                          : std::optional<std::string>(renditions_of(fields["renditions"]));
    if (has("low_latency")) c.hls.low_latency = optional_of<bool>(fields["low_latency"], "low_latency");
    if (has("part_duration")) c.hls.part_duration = optional_of<double>(fields["part_duration"], "part_duration");
    if (has("segment_duration"))
        c.hls.segment_duration = optional_of<double>(fields["segment_duration"], "segment_duration");
    if (has("max_segments")) c.hls.max_segments = optional_of<int>(fields["max_segments"], "max_segments");
    if (has("cleanup_interval"))
        c.hls.cleanup_interval = optional_of<double>(fields["cleanup_interval"], "cleanup_interval");
    if (has("max_playlist_bytes"))
        c.limits.max_playlist_bytes = optional_of<std::int64_t>(fields["max_playlist_bytes"], "max_playlist_bytes");
    if (has("max_segment_bytes"))
        c.limits.max_segment_bytes = optional_of<std::int64_t>(fields["max_segment_bytes"], "max_segment_bytes");
    if (has("max_redirects")) c.limits.max_redirects = optional_of<int>(fields["max_redirects"], "max_redirects");
    if (has("playlist_deadline"))
        c.limits.playlist_deadline = optional_of<double>(fields["playlist_deadline"], "playlist_deadline");
    if (has("segment_deadline"))
        c.limits.segment_deadline = optional_of<double>(fields["segment_deadline"], "segment_deadline");
    auto text = [&](const char* key, std::string& field) {
        if (has(key)) field = fields[key].is_none() ? std::string() : py::str(fields[key]).cast<std::string>();
    };
    text("tvg_id", c.tvg_id);
    text("tvg_name", c.tvg_name);
    text("chno", c.chno);
    text("provider", c.provider);
    if (has("tvg_shift")) c.tvg_shift = fields["tvg_shift"].is_none() ? 0.0 : fields["tvg_shift"].cast<double>();
    if (has("enabled")) c.enabled = fields["enabled"].is_none() ? true : fields["enabled"].cast<bool>();
    if (has("attributes")) {
        c.attributes.clear();
        if (!fields["attributes"].is_none())
            for (const auto& [k, v] : fields["attributes"].cast<py::dict>())
                c.attributes[hlsrelay::ascii_lower(py::str(k).cast<std::string>())] = py::str(v).cast<std::string>();
    }
}

// A channel's continuous TS (api::TsStream) over a PyEngine: each call re-acquires the engine.
struct PyTsStream {
    py::object owner;  // the PyEngine, kept alive
    hlsrelay::api::TsStream ts;
};

class PyEngine;
// Engines not yet closed; an atexit hook closes them while engine threads may still take the GIL.
// Only touched with the GIL held.
std::set<PyEngine*>& live_engines() {
    static auto* engines = new std::set<PyEngine*>();
    return *engines;
}

class PyEngine {
public:
    explicit PyEngine(EngineSettings settings) : settings_(settings) {
        engine_ = std::make_shared<Engine>(std::move(settings));
        live_engines().insert(this);
    }

    PyEngine(const PyEngine&) = delete;
    PyEngine& operator=(const PyEngine&) = delete;

    ~PyEngine() {
        live_engines().erase(this);
        if (!engine_) return;
        if (interpreter_gone()) {
            // Workers might block on the GIL forever; abandon the engine instead.
            new std::shared_ptr<Engine>(std::move(engine_));
            return;
        }
        py::gil_scoped_release release;
        engine_.reset();  // ~Engine joins the workers, whose callbacks need the GIL
    }

    // Runs f(engine) without the GIL. The engine reference is dropped before the GIL is taken back,
    // so if close() raced with this call, ~Engine (which joins workers) runs without the GIL too.
    template <class F>
    auto call(F&& f) -> decltype(f(std::declval<Engine&>())) {
        std::shared_ptr<Engine> engine = get();
        py::gil_scoped_release release;
        Drop drop{engine};
        return f(*engine);
    }

    void close() {
        forbid_in_callback("close()");
        live_engines().erase(this);
        std::shared_ptr<Engine> engine = std::move(engine_);
        if (!engine) return;
        py::gil_scoped_release release;
        Drop drop{engine};  // ~Engine, if ours is the last reference, also runs without the GIL
        engine->stop_all();
    }

    bool closed() const { return !engine_; }
    const EngineSettings& settings() const { return settings_; }

private:
    // Declared after a gil_scoped_release, releases the engine before the GIL is taken back.
    struct Drop {
        std::shared_ptr<Engine>& engine;
        ~Drop() { engine.reset(); }
    };

    std::shared_ptr<Engine> get() const {
        if (!engine_) throw Error(ErrorCode::Internal, "the engine is closed");
        return engine_;
    }

    EngineSettings settings_;  // a copy, readable after close()
    std::shared_ptr<Engine> engine_;
};

py::dict settings_dict(const EngineSettings& s) {
    py::dict d;
    d["segment_duration"] = s.hls.segment_duration;
    d["max_segments"] = s.hls.max_segments;
    d["cleanup_interval"] = s.hls.cleanup_interval;
    d["container"] = hlsrelay::to_string(s.hls.container);
    d["renditions"] = to_str(s.hls.renditions);
    d["low_latency"] = s.hls.low_latency;
    d["part_duration"] = s.hls.part_duration;
    d["hls_dir"] = s.hls_dir.empty() ? py::object(py::none()) : py::object(to_str(s.hls_dir));
    d["read_timeout"] = s.read_timeout;
    d["reconnect_min"] = s.reconnect_min;
    d["reconnect_max"] = s.reconnect_max;
    d["log_level"] = hlsrelay::to_string(s.log_level);
    d["stall_timeout"] = s.stall_timeout;
    d["live_start_segments"] = s.live_start_segments;
    d["max_playlist_bytes"] = s.limits.max_playlist_bytes;
    d["max_segment_bytes"] = s.limits.max_segment_bytes;
    d["max_redirects"] = s.limits.max_redirects;
    d["playlist_deadline"] = s.limits.playlist_deadline;
    d["segment_deadline"] = s.limits.segment_deadline;
    py::list lists;  // redacted: provider URLs hold credentials
    for (const std::string& url : s.channel_lists) lists.append(to_str(hlsrelay::redact_url(url)));
    d["channel_lists"] = lists;
    d["list_refresh_interval"] = s.list_refresh_interval;
    d["max_list_bytes"] = s.max_list_bytes;
    d["push_url"] = s.push_url.empty() ? py::object(py::none()) : py::object(to_str(hlsrelay::redact_url(s.push_url)));
    return d;
}

void close_all_engines() {
    std::vector<PyEngine*> engines(live_engines().begin(), live_engines().end());
    for (PyEngine* e : engines) e->close();
}

py::object reply_body(const hlsrelay::api::Reply& r) {
    if (r.content_type == "application/json" && !r.shared) return to_python(r.body);
    if (r.binary()) {
        const std::string& bytes = r.shared ? *r.shared : r.text;
        return py::bytes(bytes.data(), bytes.size());
    }
    return to_str(r.shared ? *r.shared : r.text);
}

// A request body as the API takes it: str (UTF-8), bytes, or a dict/list sent as JSON; None: none.
std::string body_of(const py::object& body) {
    if (body.is_none()) return {};
    if (py::isinstance<py::bytes>(body)) return body.cast<std::string>();
    if (py::isinstance<py::str>(body)) return body.cast<std::string>();
    if (py::isinstance<py::dict>(body) || py::isinstance<py::list>(body))
        return py::module_::import("json").attr("dumps")(body).cast<std::string>();
    throw py::type_error("body must be str, bytes, a dict or None, not " + std::string(py::str(py::type::of(body).attr("__name__"))));
}

hlsrelay::api::Reply call_api(PyEngine& self, std::string endpoint, const std::optional<std::string>& channel,
                              const std::string& base_url, bool hide_sources = false, std::string body = {}) {
    const auto sources = hide_sources ? hlsrelay::api::Sources::hidden : hlsrelay::api::Sources::redacted;
    std::replace(endpoint.begin(), endpoint.end(), '_', '-');
    namespace api = hlsrelay::api;
    if (endpoint == "list-channels") endpoint = "channels";  // an alias of the first releases
    const api::EndpointDef* def = api::find_endpoint(endpoint);
    if (!def) invalid("unknown endpoint '" + endpoint + "' (" + api::endpoint_names() + ")");
    api::Call call;
    if (def->needs_channel()) {
        if (!channel) invalid("endpoint '" + endpoint + "' needs a channel");
        call.channel = *channel;
    }
    call.base_url = base_url;
    call.sources = sources;
    call.body = std::move(body);
    if (def->changes_state) forbid_in_callback(("api('" + endpoint + "')").c_str());
    return self.call([&](Engine& e) { return api::call(e, *def, call); });
}

}  // namespace

PYBIND11_MODULE(_core, m) {
    m.doc() = "hlsrelay's engine: restream live channels into low-latency HLS, in-process.";
    m.attr("__version__") = HLSRELAY_VERSION;
    m.attr("IMMUTABLE_CACHE_CONTROL") = std::string(hlsrelay::api::kImmutableCacheControl);  // segments, parts
    m.attr("PLAYLIST_CACHE_CONTROL") = std::string(hlsrelay::api::kPlaylistCacheControl);
    // Seconds after which a start refused for a provider's connections is worth retrying (Retry-After).
    m.attr("PROVIDER_RETRY_AFTER") = static_cast<int>(hlsrelay::kProviderReclaimIdle);
    m.attr("MAX_API_BODY_BYTES") = hlsrelay::kMaxApiBodyBytes;
    m.attr("ON_DEMAND_WAIT") = hlsrelay::kOnDemandWait;  // a viewer's wait for the first segment of a channel it starts  // request bodies of channel-add/-update
    m.def(
        "endpoints",
        [] {
            py::list out;
            for (const auto& d : hlsrelay::api::endpoints()) {
                py::dict e;
                e["name"] = std::string(d.name);
                e["method"] = std::string(d.method);
                e["path"] = std::string(d.path);
                e["access"] = std::string(hlsrelay::api::to_string(d.access));
                e["changes_state"] = d.changes_state;
                e["needs_base_url"] = d.needs_base_url;
                e["needs_channel"] = d.needs_channel();
                out.append(e);
            }
            return out;
        },
        "The HTTP API's endpoint table (hlsrelay/endpoints.hpp), one dict per route: name (for Engine.api), method,\n"
        "path ({channel_name} captures), access (check_request's kind), changes_state, needs_base_url, needs_channel.");
    m.def(
        "blocking_timeout",
        [] {
            const auto r = hlsrelay::api::blocking_timeout();
            py::list headers;
            for (const auto& [k, v] : r.headers) headers.append(py::make_tuple(k, v));
            return py::make_tuple(r.status, reply_body(r), headers);
        },
        "(status, body, headers) of the answer to an LL-HLS request whose part did not come in time.");
    {
        py::list states;
        for (const auto st : hlsrelay::kChannelStates) states.append(std::string(hlsrelay::to_string(st)));
        m.attr("CHANNEL_STATES") = py::tuple(states);  // every "state" a status or event can show
    }

    g_engine_error = PyErr_NewExceptionWithDoc("hlsrelay.EngineError", "Base class of the engine's errors.",
                                               PyExc_Exception, nullptr);
    g_channel_not_found = PyErr_NewExceptionWithDoc("hlsrelay.ChannelNotFound",
                                                    "No channel has that stream id or name.", g_engine_error, nullptr);
    g_invalid_argument = PyErr_NewExceptionWithDoc("hlsrelay.InvalidArgument",
                                                   "A setting, channel or argument the engine refuses.", g_engine_error,
                                                   nullptr);
    g_unavailable = PyErr_NewExceptionWithDoc("hlsrelay.Unavailable",
                                              "Not now: a provider's connections are all in use (HTTP 503).",
                                              g_engine_error, nullptr);
    if (!g_engine_error || !g_channel_not_found || !g_invalid_argument || !g_unavailable) throw py::error_already_set();
    m.add_object("EngineError", py::handle(g_engine_error));
    m.add_object("ChannelNotFound", py::handle(g_channel_not_found));
    m.add_object("InvalidArgument", py::handle(g_invalid_argument));
    m.add_object("Unavailable", py::handle(g_unavailable));
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const Error& e) {
            PyObject* type = e.code() == ErrorCode::NotFound          ? g_channel_not_found
                             : e.code() == ErrorCode::InvalidArgument ? g_invalid_argument
                             : e.code() == ErrorCode::Unavailable     ? g_unavailable
                                                                      : g_engine_error;
            PyErr_SetString(type, e.what());
        }
    });

    py::class_<PyTsStream>(m, "TsStream", "A channel's continuous MPEG-TS: Engine.open_ts_stream().")
        .def(
            "next",
            [](PyTsStream& t) -> py::object {
                return resource_or_none(t.owner.cast<PyEngine&>().call([&](Engine& e) {
                    t.ts.rebind(e);
                    return t.ts.next();
                }));
            },
            "The next chunk (a Resource) if it is published already, else None; a reader that fell behind the window "
            "skips to its newest segment.")
        .def(
            "wait_next",
            [](PyTsStream& t, double timeout) -> py::object {
                forbid_in_callback("TsStream.wait_next()");
                if (!(timeout >= 0)) invalid("wait_next: timeout must be a number >= 0");
                return resource_or_none(t.owner.cast<PyEngine&>().call([&](Engine& e) {
                    t.ts.rebind(e);
                    return t.ts.wait_next(std::min(timeout, 3600.0));
                }));
            },
            py::arg("timeout"), "As next(), waiting up to `timeout` seconds for the publication (the GIL released).")
        .def_property_readonly("ended",
                               [](PyTsStream& t) {
                                   return t.owner.cast<PyEngine&>().call([&](Engine& e) {
                                       t.ts.rebind(e);
                                       return t.ts.ended();
                                   });
                               })
        .def_property_readonly("channel", [](const PyTsStream& t) { return t.ts.channel(); })
        .def_property_readonly("sent", [](const PyTsStream& t) { return t.ts.sent(); })
        .def_property_readonly("skipped", [](const PyTsStream& t) { return t.ts.skipped(); });

    py::class_<PyResource>(m, "Resource", py::buffer_protocol(),
                           "A playlist or segment read from memory. Shares the engine's bytes: memoryview(res) "
                           "copies nothing, bytes(res) copies once.")
        .def_buffer([](PyResource& r) {
            return py::buffer_info(const_cast<char*>(r.bytes.data()), 1, "B", static_cast<py::ssize_t>(r.bytes.size()),
                                   /*readonly=*/true);
        })
        .def_property_readonly("content_type", [](const PyResource& r) { return r.content_type; })
        .def_property_readonly("immutable", [](const PyResource& r) { return r.immutable; })
        .def("__len__", [](const PyResource& r) { return r.bytes.size(); })
        .def("__bytes__", [](const PyResource& r) { return py::bytes(r.bytes.data(), r.bytes.size()); })
        .def("tobytes", [](const PyResource& r) { return py::bytes(r.bytes.data(), r.bytes.size()); })
        .def("__repr__", [](const PyResource& r) {
            return "<hlsrelay.Resource " + r.content_type + ", " + std::to_string(r.bytes.size()) + " bytes" +
                   (r.immutable ? ", immutable>" : ">");
        });

    py::class_<PyEngine>(m, "Engine")
        .def(py::init([](double segment_duration, int max_segments, double cleanup_interval, const py::object& hls_dir,
                         double read_timeout, double reconnect_min, double reconnect_max, const std::string& log_level,
                         double stall_timeout, int live_start_segments, std::int64_t max_playlist_bytes,
                         std::int64_t max_segment_bytes, int max_redirects, double playlist_deadline,
                         double segment_deadline, const std::string& container, const py::object& renditions,
                         bool low_latency, double part_duration, const std::vector<std::string>& guide_urls,
                         double guide_refresh_interval, const std::string& tuner_name, int tuner_count,
                         const std::string& device_id, const std::string& tuner_seed,
                         const std::vector<std::string>& providers, const std::vector<std::string>& channel_lists,
                         double list_refresh_interval, std::int64_t max_list_bytes, const py::object& state_file,
                         const py::object& push_url) {
                 EngineSettings s;
                 if (!push_url.is_none()) s.push_url = py::cast<std::string>(push_url);
                 if (!state_file.is_none()) s.state_file = fspath(state_file);
                 for (const std::string& text : providers) {
                     std::string why;
                     auto p = hlsrelay::parse_provider(text, &why);
                     if (!p) invalid(why);
                     s.providers.push_back(std::move(*p));
                 }
                 s.channel_lists = channel_lists;
                 s.list_refresh_interval = list_refresh_interval;
                 s.max_list_bytes = max_list_bytes;
                 s.guide_urls = guide_urls;
                 s.guide_refresh_interval = guide_refresh_interval;
                 s.tuner.name = tuner_name;
                 s.tuner.tuner_count = tuner_count;
                 s.tuner.device_id = device_id;
                 s.tuner.seed = tuner_seed;
                 s.hls.segment_duration = segment_duration;
                 s.hls.max_segments = max_segments;
                 s.hls.cleanup_interval = cleanup_interval;
                 if (!hls_dir.is_none()) s.hls_dir = fspath(hls_dir);
                 s.read_timeout = read_timeout;
                 s.reconnect_min = reconnect_min;
                 s.reconnect_max = reconnect_max;
                 s.log_level = parse_log_level(log_level);
                 s.stall_timeout = stall_timeout;
                 s.live_start_segments = live_start_segments;
                 s.limits.max_playlist_bytes = max_playlist_bytes;
                 s.limits.max_segment_bytes = max_segment_bytes;
                 s.limits.max_redirects = max_redirects;
                 s.limits.playlist_deadline = playlist_deadline;
                 s.limits.segment_deadline = segment_deadline;
                 s.hls.container = parse_container(container);
                 s.hls.renditions = renditions_of(renditions);
                 s.hls.low_latency = low_latency;
                 s.hls.part_duration = part_duration;
                 return std::make_unique<PyEngine>(std::move(s));
             }),
             // The defaults are EngineSettings' own (settings.hpp), not a copy of them.
             py::arg("segment_duration") = EngineSettings{}.hls.segment_duration,
             py::arg("max_segments") = EngineSettings{}.hls.max_segments,
             py::arg("cleanup_interval") = EngineSettings{}.hls.cleanup_interval, py::arg("hls_dir") = py::none(),
             py::arg("read_timeout") = EngineSettings{}.read_timeout, py::arg("reconnect_min") = EngineSettings{}.reconnect_min,
             py::arg("reconnect_max") = EngineSettings{}.reconnect_max,
             py::arg("log_level") = std::string(hlsrelay::to_string(EngineSettings{}.log_level)), py::kw_only(),
             py::arg("stall_timeout") = EngineSettings{}.stall_timeout,
             py::arg("live_start_segments") = EngineSettings{}.live_start_segments,
             py::arg("max_playlist_bytes") = hlsrelay::FetchLimits{}.max_playlist_bytes,
             py::arg("max_segment_bytes") = hlsrelay::FetchLimits{}.max_segment_bytes,
             py::arg("max_redirects") = hlsrelay::FetchLimits{}.max_redirects,
             py::arg("playlist_deadline") = hlsrelay::FetchLimits{}.playlist_deadline,
             py::arg("segment_deadline") = hlsrelay::FetchLimits{}.segment_deadline,
             py::arg("container") = hlsrelay::to_string(hlsrelay::HlsSettings{}.container),
             py::arg("renditions") = hlsrelay::HlsSettings{}.renditions,
             py::arg("low_latency") = hlsrelay::HlsSettings{}.low_latency,
             py::arg("part_duration") = hlsrelay::HlsSettings{}.part_duration,
             py::arg("guide_urls") = std::vector<std::string>{},
             py::arg("guide_refresh_interval") = EngineSettings{}.guide_refresh_interval,
             py::arg("tuner_name") = hlsrelay::TunerSettings{}.name, py::arg("tuner_count") = hlsrelay::TunerSettings{}.tuner_count,
             py::arg("device_id") = hlsrelay::TunerSettings{}.device_id, py::arg("tuner_seed") = hlsrelay::TunerSettings{}.seed,
             py::arg("providers") = std::vector<std::string>{},
             py::arg("channel_lists") = std::vector<std::string>{},
             py::arg("list_refresh_interval") = EngineSettings{}.list_refresh_interval,
             py::arg("max_list_bytes") = EngineSettings{}.max_list_bytes, py::arg("state_file") = py::none(),
             py::arg("push_url") = py::none())

        // Registry.
        .def(
            "load",
            [](PyEngine& self, const std::string& text) {
                auto report = self.call([&](Engine& e) { return e.load(text); });
                return report_dict(report);
            },
            py::arg("text"), "Adds the channels of an M3U or JSON channel list; returns their ids and the issues.")
        .def(
            "load_file",
            [](PyEngine& self, const py::object& path) {
                const std::string p = fspath(path);
                auto report = self.call([&](Engine& e) { return e.load_file(p); });
                return report_dict(report);
            },
            py::arg("path"))
        .def(
            "add_channel",
            [](PyEngine& self, const py::object& name, const py::object& urls, const py::kwargs& kwargs) {
                py::dict fields;
                for (const auto& item : kwargs) fields[item.first] = item.second;
                fields["name"] = name;
                fields["urls"] = urls;
                if (!fields.contains("url")) fields["url"] = py::none();
                ChannelConfig c;
                apply_fields(c, fields);
                auto added = self.call([&](Engine& e) { return e.add_channel(std::move(c)); });
                return channel_dict(added);
            },
            py::arg("name"), py::arg("urls") = py::none(),
            "add_channel(name, urls=None, *, url=None, id=None, logo='', group='', headers=None, loop=False, "
            "realtime=None, variant=None, segment_duration=None, max_segments=None, cleanup_interval=None, "
            "container=None, renditions=None, "
            "max_playlist_bytes=None, max_segment_bytes=None, max_redirects=None, playlist_deadline=None, "
            "segment_deadline=None, tvg_id='', tvg_name='', chno='', tvg_shift=0, attributes=None, provider='')")
        .def(
            "update_channel",
            [](PyEngine& self, const std::string& channel, const py::kwargs& kwargs) {
                forbid_in_callback("update_channel()");
                auto current = self.call([&](Engine& e) { return e.find_channel(channel); });
                if (!current) throw Error(ErrorCode::NotFound, "Channel not found: " + channel);
                ChannelConfig c = *current;
                apply_fields(c, kwargs);
                auto updated = self.call([&](Engine& e) { return e.update_channel(current->id, std::move(c)); });
                return channel_dict(updated);
            },
            py::arg("channel"), "Changes the given fields (same keywords as add_channel); restarts it if running.")
        .def(
            "set_enabled",
            [](PyEngine& self, const std::string& channel, bool enabled) {
                forbid_in_callback("set_enabled()");
                return channel_dict(self.call([&](Engine& e) { return e.set_enabled(channel, enabled); }));
            },
            py::arg("channel"), py::arg("enabled"), "Enables or disables a channel; disabling stops it.")
        .def(
            "remove_channel",
            [](PyEngine& self, const std::string& channel) {
                forbid_in_callback("remove_channel()");
                self.call([&](Engine& e) { e.remove_channel(channel); });
            },
            py::arg("channel"))
        .def(
            "channels",
            [](PyEngine& self, bool include_sources) {
                auto list = self.call([](Engine& e) { return e.channels(); });
                py::list out;
                for (const auto& c : list) out.append(channel_dict(c, include_sources));
                return out;
            },
            py::kw_only(), py::arg("include_sources") = false,
            "The registry; source URLs redacted and header values hidden unless include_sources=True.")
        .def(
            "channel",
            [](PyEngine& self, const std::string& channel, bool include_sources) {
                auto c = self.call([&](Engine& e) { return e.find_channel(channel); });
                if (!c) throw Error(ErrorCode::NotFound, "Channel not found: " + channel);
                return channel_dict(*c, include_sources);
            },
            py::arg("channel"), py::kw_only(), py::arg("include_sources") = false)

        // Control.
        .def(
            "start",
            [](PyEngine& self, const std::string& channel, bool on_demand) {
                forbid_in_callback("start()");
                auto c = self.call([&](Engine& e) { return e.start(channel, on_demand ? hlsrelay::StartMode::on_demand : hlsrelay::StartMode::manual); });
                return channel_dict(c);
            },
            py::arg("channel"), py::kw_only(), py::arg("on_demand") = false)
        .def(
            "providers",
            [](PyEngine& self) {
                auto list = self.call([](Engine& e) { return e.providers(); });
                nlohmann::ordered_json j = nlohmann::ordered_json::array();
                for (const auto& p : list) j.push_back(hlsrelay::to_json(p));
                return to_python(j);
            })
        .def(
            "stop",
            [](PyEngine& self, const std::string& channel) {
                forbid_in_callback("stop()");
                self.call([&](Engine& e) { e.stop(channel); });
            },
            py::arg("channel"))
        .def("stop_all",
             [](PyEngine& self) {
                 forbid_in_callback("stop_all()");
                 self.call([](Engine& e) { e.stop_all(); });
             })
        .def(
            "running",
            [](PyEngine& self, const std::string& channel) {
                return self.call([&](Engine& e) { return e.running(channel); });
            },
            py::arg("channel"))

        // Status.
        .def(
            "status",
            [](PyEngine& self, const std::string& channel) {
                auto s = self.call([&](Engine& e) { return e.status(channel); });
                return to_python(hlsrelay::to_json(s));
            },
            py::arg("channel"))
        .def("statuses",
             [](PyEngine& self) {
                 auto all = self.call([](Engine& e) { return e.statuses(); });
                 py::list out;
                 for (const auto& s : all) out.append(to_python(hlsrelay::to_json(s)));
                 return out;
             })
        .def(
            "read",
            [](PyEngine& self, const std::string& channel, const std::string& name, bool headers_only) -> py::object {
                const auto delivery = headers_only ? hlsrelay::Delivery::headers : hlsrelay::Delivery::whole;
                return resource_or_none(self.call([&](Engine& e) { return e.read(channel, name, delivery); }));
            },
            py::arg("channel"), py::arg("name"), py::kw_only(), py::arg("headers_only") = false,
            "master.m3u8, index.m3u8 or a segment from memory; None when unknown, stopped or gone.\n"
            "Its size is added to the channel's bytes_out (delivered), unless headers_only=True (an HTTP HEAD).")
        .def(
            "ts_stream_refusal",
            [](PyEngine& self, const std::string& channel) -> py::object {
                const auto r = self.call([&](Engine& e) { return hlsrelay::api::ts_stream_refusal(e, channel); });
                if (!r) return py::none();
                return py::make_tuple(r->status, reply_body(*r));
            },
            py::arg("channel"),
            "None when the channel can be streamed as continuous TS (/stream/{id}.ts), else (status, body): 404 for an\n"
            "unknown channel (every known one can be streamed: fMP4 and presentations are remuxed into TS).")
        .def(
            "channel_for_guide_number",
            [](PyEngine& self, const std::string& number) -> py::object {
                const auto id = self.call([&](Engine& e) { return hlsrelay::api::channel_for_guide_number(e, number); });
                return id ? py::object(to_str(*id)) : py::object(py::none());
            },
            py::arg("number"), "The id of the channel the lineup numbers `number` (\"5\", \"5.1\"), or None.")
        .def(
            "open_ts_stream",
            [](py::object self_obj, const std::string& channel) {
                PyEngine& self = self_obj.cast<PyEngine&>();
                auto ts = self.call([&](Engine& e) { return hlsrelay::api::TsStream(e, channel); });
                return PyTsStream{std::move(self_obj), std::move(ts)};
            },
            py::arg("channel"),
            "A reader of the channel's continuous MPEG-TS (it does not start the channel): next() gives the newest whole\n"
            "segment first (it opens with a keyframe), then each segment as it is published.")
        .def(
            "hls_file",
            [](PyEngine& self, const std::string& channel, const std::string& name, bool head, const std::optional<std::string>& range,
               const std::optional<std::string>& msn, const std::optional<std::string>& part, const std::optional<std::string>& skip) {
                namespace api = hlsrelay::api;
                api::FileRequest req{channel, name, head, std::nullopt, {msn, part, skip}};
                if (range) req.range = *range;
                const api::FileAnswer a = self.call([&](Engine& e) { return api::hls_file(e, req); });
                py::dict out;
                using K = api::FileAnswer::Kind;
                out["kind"] = a.kind == K::resource ? "resource" : a.kind == K::wait ? "wait" : "reply";
                py::list headers;
                for (const auto& [k, v] : a.kind == K::resource ? a.headers : a.reply.headers) headers.append(py::make_tuple(to_str(k), to_str(v)));
                out["headers"] = headers;
                out["status"] = a.kind == K::resource ? a.status : a.kind == K::wait ? 0 : a.reply.status;
                out["body"] = a.kind == K::reply ? reply_body(a.reply) : py::object(py::none());
                out["resource"] = a.kind == K::resource && a.resource.held()
                                      ? py::cast(PyResource{a.resource.owner(), a.resource.bytes(), std::string(a.resource.content_type), a.resource.immutable})
                                      : py::object(py::none());
                out["wait_seconds"] = a.wait_seconds;
                return out;
            },
            py::arg("channel"), py::arg("name"), py::kw_only(), py::arg("head") = false, py::arg("range") = py::none(),
            py::arg("msn") = py::none(), py::arg("part") = py::none(), py::arg("skip") = py::none(),
            "An HLS file request (/hls_streams/{channel}/{name}) as every transport answers it: registry ids only, the Range\n"
            "header, the LL-HLS directives (_HLS_msn/_HLS_part/_HLS_skip raw query values) and a preload hint's part.\n"
            "{'kind': 'resource'|'reply'|'wait', 'status', 'headers': [(name, value)], 'resource': the bytes (already the\n"
            "range), 'body': the error reply's dict, 'wait_seconds'}. On 'wait', ask again on the channel's next 'part',\n"
            "'segment' or 'state' event; after wait_seconds from the request answer 503 (blocking_timeout()).")
        .def(
            "hls_playlist",
            [](PyEngine& self, const std::string& channel, const std::string& name, const py::object& msn,
               const py::object& part, const py::object& skip) {
                auto text = [](const py::object& o) {
                    return o.is_none() ? std::nullopt : std::optional<std::string>(py::str(o).cast<std::string>());
                };
                namespace api = hlsrelay::api;
                const api::PlaylistDirectives d{text(msn), text(part), text(skip)};
                const auto a = self.call([&](Engine& e) { return api::hls_playlist(e, channel, name, d); });
                py::dict out;
                using K = api::PlaylistAnswer::Kind;
                out["kind"] = a.kind == K::serve ? "serve" : a.kind == K::wait ? "wait" : "error";
                out["file"] = to_str(a.file);
                out["status"] = a.kind == K::error ? a.error.status : 200;
                out["detail"] = a.kind == K::error ? py::object(to_str(a.error.body.value("detail", std::string()))) : py::object(py::none());
                out["wait_seconds"] = a.wait_seconds;
                out["cache_seconds"] = a.cache_seconds;
                return out;
            },
            py::arg("channel"), py::arg("name"), py::arg("msn") = py::none(), py::arg("part") = py::none(),
            py::arg("skip") = py::none(),
            "LL-HLS: what to do with a media playlist request and its _HLS_msn/_HLS_part/_HLS_skip query values "
            "(the raw strings, None when absent), as every transport reads them: {'kind': 'serve'|'wait'|'error', "
            "'file': the name to read(), 'status', 'detail', 'wait_seconds': answer 503 after this long, "
            "'cache_seconds': Cache-Control max-age (0: no-cache)}. On 'wait', ask again on the channel's next "
            "'part' or 'segment' event.")
        .def(
            "wait_playlist",
            [](PyEngine& self, const std::string& channel, std::int64_t msn, int part, double timeout, const std::string& playlist) {
                forbid_in_callback("wait_playlist()");
                if (!(timeout >= 0)) invalid("wait_playlist: timeout must be a number >= 0");
                // In slices, as wait_ready: Ctrl-C interrupts, each slice wakes at the publication.
                constexpr double kSlice = 0.25;
                const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(std::min(timeout, 1e9));
                for (;;) {
                    const double left = std::chrono::duration<double>(deadline - std::chrono::steady_clock::now()).count();
                    const double slice = std::clamp(left, 0.0, kSlice);
                    if (self.call([&](Engine& e) { return e.wait_playlist(channel, playlist, msn, part, slice); })) return true;
                    if (left <= kSlice) return false;
                    if (!self.call([&](Engine& e) { return e.playlist_position(channel, playlist).has_value(); })) return false;
                    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
                }
            },
            py::arg("channel"), py::arg("msn"), py::arg("part") = -1, py::arg("timeout") = 10.0,
            py::arg("playlist") = std::string(hlsrelay::kMediaPlaylistName),
            "LL-HLS blocking playlist reload: waits until the channel's media playlist (index.m3u8, or a "
            "presentation's rendition's: 'v1/index.m3u8') holds segment msn (part >= 0: its part `part`) and returns "
            "True, or False after `timeout` seconds, when the channel stops or has no such playlist. Releases the GIL.")
        .def(
            "wait_ready",
            [](PyEngine& self, const std::string& channel, double timeout) {
                forbid_in_callback("wait_ready()");
                if (!(timeout >= 0)) invalid("wait_ready: timeout must be a number >= 0");
                if (!self.call([&](Engine& e) { return e.find_channel(channel); }))
                    throw Error(ErrorCode::NotFound, "Channel not found: " + channel);
                // In slices, so that Ctrl-C (a signal handled between them) interrupts a long wait; each
                // slice wakes at once when the playlists appear.
                constexpr double kSlice = 0.25;
                const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(std::min(timeout, 1e9));
                for (;;) {
                    const double left = std::chrono::duration<double>(deadline - std::chrono::steady_clock::now()).count();
                    const double slice = std::clamp(left, 0.0, kSlice);
                    if (self.call([&](Engine& e) { return e.wait_ready(channel, slice); })) return true;
                    if (left <= kSlice) return false;
                    const bool running = self.call([&](Engine& e) {
                        const auto c = e.find_channel(channel);
                        return c && e.running(c->id) && e.status(c->id).state != hlsrelay::ChannelState::Failed;
                    });
                    if (!running) return false;
                    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
                }
            },
            py::arg("channel"), py::arg("timeout"),
            "Waits until the channel's first playlists can be read: True then (at once if they can), False when\n"
            "`timeout` seconds pass first or at once when the channel is stopped or has failed. Releases the GIL;\n"
            "Ctrl-C interrupts it. Raises ChannelNotFound for an unknown channel.")

        // The replaced HTTP API.
        .def(
            "api",
            [](PyEngine& self, const std::string& endpoint, const std::optional<std::string>& channel,
               const std::string& base_url, bool hide_sources, const py::object& body) {
                auto reply = call_api(self, endpoint, channel, base_url, hide_sources, body_of(body));
                return py::make_tuple(reply.status, reply_body(reply));
            },
            py::arg("endpoint"), py::arg("channel") = py::none(), py::arg("base_url") = "", py::kw_only(),
            py::arg("hide_sources") = false, py::arg("body") = py::none(),
            "(status_code, body) of an endpoint of the replaced HTTP API; body is a dict, or str for the M3U.\n"
            "hide_sources: status replies show no source and hide URLs in errors (a caller without the token).\n"
            "body: the request body of channel-add and channel-update (str, bytes or a dict sent as JSON).")
        .def(
            "api_reply",
            [](PyEngine& self, const std::string& endpoint, const std::optional<std::string>& channel,
               const std::string& base_url, bool hide_sources, const py::object& body) {
                auto reply = call_api(self, endpoint, channel, base_url, hide_sources, body_of(body));
                return py::make_tuple(reply.status, reply.content_type, reply_body(reply));
            },
            py::arg("endpoint"), py::arg("channel") = py::none(), py::arg("base_url") = "", py::kw_only(),
            py::arg("hide_sources") = false, py::arg("body") = py::none(),
            "Like api(), with the media type: (status_code, content_type, body).")

        // Events.
        .def(
            "subscribe",
            [](PyEngine& self, const py::function& callback) {
                auto cb = std::make_shared<PyCallback>(callback);
                return self.call([&](Engine& e) { return e.subscribe([cb](const Event& ev) { (*cb)(ev); }); });
            },
            py::arg("callback"), "Calls callback(event_dict) on engine threads; returns a subscription id.")
        .def(
            "unsubscribe",
            [](PyEngine& self, Engine::SubscriptionId id) { self.call([&](Engine& e) { e.unsubscribe(id); }); },
            py::arg("id"), "After it returns the callback is not running (unless called from it) and never runs again.")

        // Lifetime.
        .def("close", &PyEngine::close, "Stops every channel and releases the engine; idempotent.")
        .def_property_readonly("closed", &PyEngine::closed)
        .def("__enter__", [](py::object self) { return self; })
        .def(
            "__exit__",
            [](PyEngine& self, const py::args&) {
                self.close();
                return false;
            })
        .def_property_readonly("hls_dir",
                               [](const PyEngine& self) -> py::object {
                                   if (self.settings().hls_dir.empty()) return py::none();
                                   return to_str(self.settings().hls_dir);
                               })
        .def_property_readonly("settings", [](const PyEngine& self) { return settings_dict(self.settings()); })
        .def("__repr__", [](const PyEngine& self) {
            return std::string("<hlsrelay.Engine ") + (self.closed() ? "closed>" : "open>");
        });

    // The HTTP rules of include/hlsrelay/api.hpp, for the FastAPI router (pure functions, no engine).
    m.def("redact_url", [](const std::string& url) { return to_str(hlsrelay::redact_url(url)); }, py::arg("url"),
          "A source URL as status and logs show it: userinfo, query and path credentials removed.");
    m.def("scrub_urls", [](const std::string& text, bool hide) { return to_str(hlsrelay::scrub_urls(text, hide)); },
          py::arg("text"), py::arg("hide") = false,
          "text with every URL in it redacted, or replaced by '<url hidden>' with hide=True.");
    m.def(
        "check_request",
        [](const std::string& endpoint, const std::optional<std::string>& host, const std::optional<std::string>& origin,
           const std::optional<std::string>& sec_fetch_site, const std::optional<std::string>& authorization,
           const std::optional<std::string>& query_token, const std::string& api_token,
           const std::vector<std::string>& allowed_hosts) {
            const auto kind = hlsrelay::api::endpoint_from_name(endpoint);
            if (!kind) invalid("unknown endpoint kind '" + endpoint + "' (media, health, status, registry, control)");
            hlsrelay::api::HttpRequestView view;
            view.endpoint = *kind;
            view.host = host;
            view.origin = origin;
            view.sec_fetch_site = sec_fetch_site;
            view.authorization = authorization;
            view.query_token = query_token;
            const auto v = hlsrelay::api::check_request(hlsrelay::api::HttpPolicy{api_token, allowed_hosts}, view);
            py::dict out;
            out["status"] = v.refusal ? py::object(py::int_(v.refusal->status)) : py::none();
            out["body"] = v.refusal ? to_python(v.refusal->body) : py::none();
            py::dict headers;
            if (v.refusal)
                for (const auto& [name, value] : v.refusal->headers) headers[to_str(name)] = to_str(value);
            out["headers"] = headers;
            out["authenticated"] = v.authenticated;
            out["hide_sources"] = v.sources == hlsrelay::api::Sources::hidden;
            out["cors"] = v.cors;
            return out;
        },
        py::arg("endpoint"), py::kw_only(), py::arg("host") = py::none(), py::arg("origin") = py::none(),
        py::arg("sec_fetch_site") = py::none(), py::arg("authorization") = py::none(),
        py::arg("query_token") = py::none(), py::arg("api_token") = "",
        py::arg("allowed_hosts") = std::vector<std::string>{},
        "Applies the HTTP rules (Host, cross-site, token) to a request for an endpoint kind: media, health, "
        "status, registry or control. Returns {status, body, headers} of the refusal (status None: go on), "
        "authenticated, hide_sources and cors.");

    // Stop engines left open at exit while their threads can still take the GIL.
    py::module_::import("atexit").attr("register")(py::cpp_function(&close_all_engines));
}
