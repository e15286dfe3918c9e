// Request handling over the engine: one function per route kind, replies shaped by hlsrelay/api.hpp.
#include "request_handler.hpp"

#include "log.hpp"

#include <hlsrelay/json.hpp>
#include <hlsrelay/ts_stream.hpp>
#include <hlsrelay/playlist.hpp>
#include <hlsrelay/text.hpp>

#include <algorithm>
#include <atomic>
#include <memory>

namespace hlsrelay::server {

namespace {

constexpr const char* kJson = "application/json";

Response text_response(int status, std::string content_type, std::string body) {
    Response r;
    r.status = status;
    r.set("Content-Type", std::move(content_type));
    r.set("Cache-Control", "no-store");
    r.body = std::move(body);
    return r;
}

bool is_playlist(std::string_view file) { return file == kMasterPlaylistName || file == kMediaPlaylistName; }

// A disabled channel is not started on demand: its viewers hear so at once (409) instead of waiting.
std::optional<Response> disabled_refusal(const Engine& engine, const std::string& id) {
    const auto c = engine.find_channel(id);
    if (!c || c->enabled || engine.running(c->id)) return std::nullopt;
    Response r = RequestHandler::error_response(409, "Channel '" + c->id + "' is disabled");
    r.cors = true;
    return r;
}

// The request target as it may be logged: the query can carry the API token.
std::string loggable_target(const std::string& target) {
    const std::size_t query = target.find('?');
    return query == std::string::npos ? target : target.substr(0, query) + "?...";
}

}  // namespace

Response RequestHandler::error_response(int status, std::string detail) {
    return reply_response(api::error(status, std::move(detail)));
}

Response reply_response(const api::Reply& reply) {
    const bool json = reply.content_type == kJson;
    const std::string type = json || reply.binary() ? reply.content_type : reply.content_type + "; charset=utf-8";
    Response r = text_response(reply.status, type, reply.shared ? std::string() : reply.dump());
    if (reply.shared) {  // sent in place, not copied
        r.shared_body = reply.shared;
        r.length = reply.shared->size();
    }
    for (const auto& [name, value] : reply.headers) r.set(name, value);
    return r;
}

// A file as api::hls_file answers it: the error, or the bytes (shared, not copied) with its headers.
Response file_response(const api::FileAnswer& a) {
    if (a.kind != api::FileAnswer::Kind::resource) return reply_response(a.reply);
    Response r;
    r.status = a.status;
    for (const auto& [name, value] : a.headers) r.set(name, value);
    const std::string_view bytes = a.resource.bytes();  // a part or a range: some of its data's bytes
    if (a.resource.file) {
        r.file = a.resource.file;
        r.offset = static_cast<std::size_t>(bytes.data() - a.resource.file->bytes().data());
    } else {
        r.shared_body = a.resource.data;
        r.offset = static_cast<std::size_t>(bytes.data() - a.resource.data->data());
    }
    r.length = bytes.size();
    return r;
}

RequestHandler::RequestHandler(Engine& engine, asio::io_context& io, asio::thread_pool& blocking, Activity& activity,
                               HandlerSettings settings)
    : engine_(engine),
      io_(io),
      blocking_(blocking),
      activity_(activity),
      settings_(std::move(settings)),
      policy_{settings_.api_token, settings_.allowed_hosts} {
    // Blocked playlist reloads are looked at again on the io threads, never on the engine's.
    subscription_ = engine_.subscribe([this](const Event& e) {
        if (e.type == EventType::StateChanged && e.state != ChannelState::Stopped && e.state != ChannelState::Failed) return;
        if (e.type == EventType::Error) return;
        {
            std::lock_guard lock(blocked_mu_);
            if (!blocked_.count(e.channel) && !ts_waiting_.count(e.channel)) return;
        }
        asio::post(io_, [this, id = e.channel] { wake(id); });
    });
}

RequestHandler::~RequestHandler() { engine_.unsubscribe(subscription_); }

// An HLS request api::hls_file said to wait for (a blocking playlist reload, a preload hint's part):
// parked per channel on a timer, asked again on each of the channel's publications.
struct BlockedReload {
    BlockedReload(asio::io_context& io, std::string channel, std::string name, api::PlaylistDirectives directives,
                  bool head_only, RequestHandler::Done d)
        : timer(io), id(std::move(channel)), file(std::move(name)), query(std::move(directives)), head(head_only), done(std::move(d)) {}
    asio::steady_timer timer;
    const std::string id, file;
    const api::PlaylistDirectives query;
    const bool head;
    RequestHandler::Done done;
    std::atomic<bool> answered{false};

    api::FileRequest request() const { return {id, file, head, std::nullopt, query}; }
};

void RequestHandler::block(std::shared_ptr<BlockedReload> b) {
    // The timer is armed before the request is visible to wake(): another io thread may answer it
    // (and cancel the timer) as soon as it is registered, and a timer must not be used from two
    // threads at once.
    b->timer.async_wait([this, b](const asio::error_code& ec) {
        if (ec || b->answered.exchange(true)) return;
        {
            std::lock_guard lock(blocked_mu_);
            auto it = blocked_.find(b->id);
            if (it != blocked_.end()) {
                std::erase(it->second, b);
                if (it->second.empty()) blocked_.erase(it);
            }
        }
        b->done(reply_response(api::blocking_timeout()));
    });
    {
        std::lock_guard lock(blocked_mu_);
        blocked_[b->id].push_back(b);
    }
    // Published between the first look and the parking: look again now that a publication wakes it.
    if (answer(b)) {
        std::lock_guard lock(blocked_mu_);
        auto it = blocked_.find(b->id);
        if (it != blocked_.end()) {
            std::erase(it->second, b);
            if (it->second.empty()) blocked_.erase(it);
        }
    }
}

bool RequestHandler::answer(const std::shared_ptr<BlockedReload>& b) {
    if (b->answered.load()) return true;
    api::FileAnswer a;
    try {
        a = api::hls_file(engine_, b->request());
    } catch (const std::exception&) {
        a.reply = api::channel_not_found();  // the channel went away meanwhile
    }
    if (a.kind == api::FileAnswer::Kind::wait && engine_.running(b->id)) return false;
    if (b->answered.exchange(true)) return true;
    b->timer.cancel();
    if (a.kind == api::FileAnswer::Kind::wait) a = api::hls_file(engine_, b->request());  // stopped: its 404
    b->done(file_response(a));
    return true;
}

// One viewer of a channel's continuous TS (api::TsStream): the connection asks for each next chunk;
// when none is there yet, its callback waits here (in RequestHandler::ts_waiting_) for the channel's
// next publication. Nothing is queued: each chunk is the window's own buffer.
class TsViewer : public BodyStream, public std::enable_shared_from_this<TsViewer> {
public:
    TsViewer(RequestHandler& handler, std::string client, std::string channel)
        : handler_(handler), client_(std::move(client)), ts_(handler.engine_, std::move(channel)) {}

    void next(Ready ready) override {
        {
            std::lock_guard lock(mu_);
            if (cancelled_) return;
            waiting_ = std::move(ready);
        }
        {
            std::lock_guard lock(handler_.blocked_mu_);  // parked before looking: a publication now wakes it
            handler_.ts_waiting_[ts_.channel()].push_back(weak_from_this());
        }
        poll();
    }

    void cancel() override {
        std::lock_guard lock(mu_);
        cancelled_ = true;
        waiting_ = nullptr;
    }

    // Hands the waiting callback its chunk (or the end) if there is one; false while it still waits.
    bool poll() {
        std::unique_lock lock(mu_);
        if (!waiting_) return true;
        std::optional<Resource> chunk;
        try {
            chunk = ts_.next();
        } catch (const std::exception&) {
            // the channel went away: the end
        }
        const bool end = !chunk && ts_.ended();
        if (!chunk && !end) return false;
        Ready ready = std::exchange(waiting_, nullptr);
        lock.unlock();
        if (!chunk) {
            ready(nullptr, {});
            return true;
        }
        handler_.activity_.record_request(ts_.channel(), client_);  // a viewer, and the channel is not idle
        const std::string_view bytes = chunk->bytes();
        ready(chunk->owner(), bytes);
        return true;
    }

    // The first chunk, for the response head: nullopt while there is none.
    std::optional<Resource> first() {
        std::lock_guard lock(mu_);
        return ts_.next();
    }
    const std::string& channel() const { return ts_.channel(); }

private:
    RequestHandler& handler_;
    const std::string client_;
    std::mutex mu_;
    api::TsStream ts_;
    Ready waiting_;
    bool cancelled_ = false;
};

void RequestHandler::serve_ts(const std::string& id, const std::string& client, Done done) {
    if (auto refusal = api::ts_stream_refusal(engine_, id)) return done(reply_response(*refusal));
    if (auto refusal = disabled_refusal(engine_, id)) return done(std::move(*refusal));
    activity_.record_request(id, client);
    start_on_demand(id, " for a TS viewer");
    auto viewer = std::make_shared<TsViewer>(*this, client, id);
    first_ts_chunk(viewer, std::chrono::steady_clock::now() + settings_.on_demand_wait,
                   std::make_shared<asio::steady_timer>(io_), std::move(done));
}

// Polls for the first segment (as the on-demand playlist wait does): the head goes out with it.
void RequestHandler::first_ts_chunk(std::shared_ptr<TsViewer> viewer, std::chrono::steady_clock::time_point deadline,
                                    std::shared_ptr<asio::steady_timer> timer, Done done) {
    std::optional<Resource> chunk;
    try {
        chunk = viewer->first();
    } catch (const std::exception&) {
        // removed meanwhile: the 404 below
    }
    if (chunk) {
        // Checked again once running (api::ts_stream_refusal: removed meanwhile).
        if (auto refusal = api::ts_stream_refusal(engine_, viewer->channel())) return done(reply_response(*refusal));
        Response r;
        r.set("Content-Type", "video/mp2t");
        r.set("Cache-Control", "no-store");
        const std::string_view bytes = chunk->bytes();
        if (chunk->file) {
            r.file = chunk->file;
            r.offset = static_cast<std::size_t>(bytes.data() - chunk->file->bytes().data());
        } else {
            r.shared_body = chunk->data;
            r.offset = static_cast<std::size_t>(bytes.data() - chunk->data->data());
        }
        r.length = bytes.size();
        r.stream = std::move(viewer);
        r.cors = true;
        // HEAD: the connection sends the head alone.
        return done(std::move(r));
    }
    if (!engine_.find_channel(viewer->channel())) return done(reply_response(api::channel_not_found()));
    if (auto refused = refused_start(viewer->channel())) {
        Response e = reply_response(api::unavailable(*refused));
        e.cors = true;
        return done(std::move(e));
    }
    if (std::chrono::steady_clock::now() >= deadline) {
        std::string detail = "Stream '" + viewer->channel() + "' did not produce a segment in time; retry shortly";
        try {
            const ChannelStatus s = engine_.status(viewer->channel());
            if (!s.last_error.empty()) detail += " (last error: " + scrub_urls(s.last_error, !settings_.api_token.empty()) + ")";
        } catch (const std::exception&) {
        }
        Response e = error_response(503, detail);
        e.set("Retry-After", "2");
        e.cors = true;
        return done(std::move(e));
    }
    timer->expires_after(settings_.on_demand_poll);
    timer->async_wait([this, viewer = std::move(viewer), deadline, timer, done = std::move(done)](const asio::error_code& ec) mutable {
        if (ec) return;
        first_ts_chunk(std::move(viewer), deadline, std::move(timer), std::move(done));
    });
}

void RequestHandler::wake(const std::string& id) {
    std::vector<std::weak_ptr<TsViewer>> viewers;
    {
        std::lock_guard lock(blocked_mu_);
        if (auto it = ts_waiting_.find(id); it != ts_waiting_.end()) {
            viewers = std::move(it->second);
            ts_waiting_.erase(it);
        }
    }
    for (const auto& weak : viewers) {
        const auto v = weak.lock();
        if (v && !v->poll()) {
            std::lock_guard lock(blocked_mu_);
            ts_waiting_[id].push_back(v);  // nothing for it in this publication: wait for the next
        }
    }
    std::vector<std::shared_ptr<BlockedReload>> waiting;
    {
        std::lock_guard lock(blocked_mu_);
        auto it = blocked_.find(id);
        if (it == blocked_.end()) return;
        waiting = it->second;
    }
    std::vector<std::shared_ptr<BlockedReload>> done;
    for (const auto& b : waiting)
        if (answer(b)) done.push_back(b);
    if (done.empty()) return;
    std::lock_guard lock(blocked_mu_);
    auto it = blocked_.find(id);
    if (it == blocked_.end()) return;
    std::erase_if(it->second, [&](const auto& b) { return std::find(done.begin(), done.end(), b) != done.end(); });
    if (it->second.empty()) blocked_.erase(it);
}

void RequestHandler::handle(const Request& req, const std::string& client, Done done) {
    // An engine call may throw (a channel removed between two calls): the connection must still get
    // its one response, or it would wait for it forever.
    try {
        dispatch(req, client, done);
    } catch (const std::exception& e) {
        const std::string what = scrub_urls(e.what());
        log::error("handling " + req.method + " " + loggable_target(req.target) + ": " + what);
        done(error_response(500, what));
    }
}

void RequestHandler::dispatch(const Request& req, const std::string& client, const Done& done) {
    const Route r = route(req.method, req.target);
    if (r.kind == RouteKind::error) {
        Response e = error_response(r.status, r.detail);
        if (!r.allow.empty()) e.set("Allow", r.allow);
        e.cors = r.endpoint == api::Endpoint::media;
        return done(std::move(e));
    }
    api::HttpRequestView view;
    view.endpoint = r.endpoint;
    view.host = req.header("Host");
    view.origin = req.header("Origin");
    view.sec_fetch_site = req.header("Sec-Fetch-Site");
    view.authorization = req.header("Authorization");
    if (const auto it = r.query.find("token"); it != r.query.end()) view.query_token = it->second;
    const api::HttpVerdict verdict = api::check_request(policy_, view);
    if (verdict.refusal) {
        Response e = reply_response(*verdict.refusal);
        e.cors = verdict.cors;
        return done(std::move(e));
    }
    switch (r.kind) {
        case RouteKind::hls:
            return serve_hls(r, req, client, [done](Response response) {
                response.cors = true;
                done(std::move(response));
            });
        case RouteKind::ts_stream:
            return serve_ts(r.channel, client, [done](Response response) {
                response.cors = true;
                done(std::move(response));
            });
        case RouteKind::tuner_auto: {  // HDHomeRun's /auto/v<GuideNumber>
            const auto id = api::channel_for_guide_number(engine_, r.channel);
            if (!id) {
                Response e = error_response(404, "No channel has GuideNumber " + r.channel);
                e.cors = true;
                return done(std::move(e));
            }
            return serve_ts(*id, client, [done](Response response) {
                response.cors = true;
                done(std::move(response));
            });
        }
        case RouteKind::endpoint: {
            const api::EndpointDef& def = *r.api;
            api::Call call;
            call.channel = r.channel;
            call.sources = verdict.sources;
            call.body = req.body;  // at most kMaxApiBodyBytes + 1 bytes: more is the endpoint's 413
            call.decorate_status = [this](nlohmann::ordered_json& status) { add_activity(status); };
            if (def.needs_base_url) {
                // The Host header goes into the reply's URLs: only a sane host[:port] may.
                const auto host = req.header("Host");
                const auto base = hdhomerun::base_url_from_host(host ? *host : std::string_view(settings_.default_host));
                if (!base) return done(error_response(400, "Invalid Host header"));
                call.base_url = *base;
            }
            if (!def.changes_state) return done(reply_response(api::call(engine_, def, call)));
            // Starting and stopping wait on the engine: off the io threads.
            return run_blocking(
                [this, &def, call = std::move(call)] {
                    api::Reply reply = api::call(engine_, def, call);
                    // A channel a client just started is not idle (on-demand mode).
                    if (reply.status == 200 && def.name == "start-stream")
                        if (auto c = engine_.find_channel(call.channel)) activity_.touch(c->id);
                    return reply;
                },
                done);
        }
        default: return done(handle_now(r, verdict));
    }
}

void RequestHandler::run_blocking(std::function<api::Reply()> work, Done done) {
    asio::post(blocking_, [work = std::move(work), done = std::move(done)] { done(reply_response(work())); });
}

void RequestHandler::add_activity(nlohmann::ordered_json& status) const {
    const std::string id = status.value("stream_id", std::string());
    status["viewers"] = activity_.viewers(id);
    const auto last = activity_.last_request_at(id);
    status["last_request_at"] = last ? nlohmann::ordered_json(*last) : nlohmann::ordered_json(nullptr);
}

Response RequestHandler::asset(const std::filesystem::path& path, std::string content_type, std::string cache_control) {
    Response r;
    r.shared_body = files_.get(path);
    if (!r.shared_body) return error_response(404, "Not found");
    r.length = r.shared_body->size();
    r.set("Content-Type", std::move(content_type));
    r.set("Cache-Control", std::move(cache_control));
    return r;
}

Response RequestHandler::handle_now(const Route& r, const api::HttpVerdict& verdict) {
    switch (r.kind) {
        case RouteKind::preflight: {
            Response p;
            p.status = 204;
            p.set("Allow", r.allow);
            if (verdict.cors) {  // HLS delivery only: control and status paths grant no cross-origin use
                p.cors = true;
                p.set("Access-Control-Allow-Methods", r.allow);
                p.set("Access-Control-Allow-Headers", "Range");
                p.set("Access-Control-Max-Age", "86400");
            }
            return p;
        }
        case RouteKind::index:
            return asset(settings_.web_root / "index.html", "text/html; charset=utf-8", "no-cache");
        case RouteKind::asset: {
            const auto path = settings_.web_root / "node_modules" / "hls.js" / "dist" / "hls.min.js";
            Response a = asset(path, "text/javascript; charset=utf-8", "public, max-age=3600");
            if (a.status == 404) {
                log::warn("hls.js is missing at " + path.string() + ": run `npm ci` in " + settings_.web_root.string());
                return error_response(404, "hls.js is not installed on this server (run `npm ci` in its web root)");
            }
            return a;
        }
        case RouteKind::healthz: {
            const auto all = engine_.statuses();
            int running = 0;
            for (const auto& s : all)
                if (s.cleanup_running) ++running;
            nlohmann::ordered_json j;
            j["status"] = "ok";
            j["channels"] = all.size();
            j["running"] = running;
            return text_response(200, kJson, dump_json(j));
        }
        case RouteKind::metrics:
            return text_response(200, "text/plain; version=0.0.4; charset=utf-8",
                                 render_metrics(engine_.statuses(), activity_, counters_));
        default: return error_response(500, "Unhandled route");
    }
}

void RequestHandler::serve_hls(const Route& r, const Request& req, const std::string& client, Done done) {
    const std::string& id = r.channel;  // a registry id, or api::hls_file answers 404
    api::PlaylistDirectives d;
    for (auto [name, field] : {std::pair{"_HLS_msn", &d.msn}, {"_HLS_part", &d.part}, {"_HLS_skip", &d.skip}})
        if (const auto it = r.query.find(name); it != r.query.end()) *field = it->second;
    const bool head = req.method == "HEAD";
    const api::FileAnswer a = api::hls_file(engine_, {id, r.file, head, req.header("Range"), d});
    if (a.channel_known) activity_.record_request(id, client);  // a viewer of a channel that exists
    if (a.kind == api::FileAnswer::Kind::wait) {
        auto b = std::make_shared<BlockedReload>(io_, id, r.file, d, head, std::move(done));
        b->timer.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
            std::chrono::duration<double>(a.wait_seconds)));
        return block(std::move(b));
    }
    // On demand: a stopped channel's playlist starts it, and the request waits for the first one.
    if (a.kind == api::FileAnswer::Kind::resource || a.reply.status != 404 || !settings_.on_demand ||
        !is_playlist(r.file) || engine_.running(id))
        return done(file_response(a));
    if (auto refusal = disabled_refusal(engine_, id)) return done(std::move(*refusal));
    wait_for_playlist(id, r.file, std::move(done));
}

// One on-demand request waiting for its channel's playlist; while it lives the channel is not idle.
struct PlaylistWait {
    PlaylistWait(asio::io_context& io, Activity& a, std::string channel, std::string name, RequestHandler::Done d,
                 std::chrono::steady_clock::time_point until)
        : timer(io), activity(a), id(std::move(channel)), file(std::move(name)), done(std::move(d)), deadline(until) {
        activity.add_waiter(id);
    }
    ~PlaylistWait() { activity.remove_waiter(id); }
    PlaylistWait(const PlaylistWait&) = delete;
    PlaylistWait& operator=(const PlaylistWait&) = delete;

    asio::steady_timer timer;
    Activity& activity;
    const std::string id, file;
    RequestHandler::Done done;
    const std::chrono::steady_clock::time_point deadline;
};

// Starts a stopped channel on the blocking pool (engine calls wait), never on an io thread.
void RequestHandler::start_on_demand(const std::string& id, const std::string& why) {
    if (engine_.running(id)) return;
    {
        // One start at a time per channel: the requests arriving meanwhile wait for its outcome (a
        // start at a full provider may wait kProviderWait seconds on a blocking thread).
        std::lock_guard lock(refused_mu_);
        if (!pending_starts_.insert(id).second) return;
        refused_starts_.erase(id);
    }
    log::info("on-demand start of " + id + why);
    asio::post(blocking_, [this, id] {
        std::optional<std::string> refused;
        try {
            engine_.start(id, StartMode::on_demand);
            activity_.touch(id);
        } catch (const Error& e) {
            log::warn("on-demand start of " + id + " failed: " + scrub_urls(e.what()));
            if (e.code() == ErrorCode::Unavailable) refused = e.what();
        } catch (const std::exception& e) {
            log::warn("on-demand start of " + id + " failed: " + scrub_urls(e.what()));
        }
        std::lock_guard lock(refused_mu_);
        pending_starts_.erase(id);
        if (refused) refused_starts_[id] = std::move(*refused);
    });
}

std::optional<std::string> RequestHandler::refused_start(const std::string& id) {
    std::lock_guard lock(refused_mu_);
    auto it = refused_starts_.find(id);
    if (it == refused_starts_.end()) return std::nullopt;
    return it->second;
}

void RequestHandler::wait_for_playlist(const std::string& id, const std::string& file, Done done) {
    start_on_demand(id, "");
    poll(std::make_shared<PlaylistWait>(io_, activity_, id, file, std::move(done),
                                        std::chrono::steady_clock::now() + settings_.on_demand_wait));
}

// Polling keeps this independent of event ordering: the playlist may appear before a subscriber could.
void RequestHandler::poll(std::shared_ptr<PlaylistWait> wait) {
    wait->timer.expires_after(settings_.on_demand_poll);
    wait->timer.async_wait([this, wait](const asio::error_code& ec) {
        if (ec) return;
        const api::FileAnswer a = api::hls_file(engine_, {wait->id, wait->file, false, std::nullopt, {}});
        if (a.kind == api::FileAnswer::Kind::resource) return wait->done(file_response(a));
        if (auto refused = refused_start(wait->id)) return wait->done(reply_response(api::unavailable(*refused)));
        if (std::chrono::steady_clock::now() < wait->deadline) return poll(wait);
        std::string detail = "Stream '" + wait->id + "' did not produce a playlist in time; retry shortly";
        try {
            const ChannelStatus s = engine_.status(wait->id);
            // HLS requests carry no token: with one set, the error's URLs are hidden as on status.
            if (!s.last_error.empty())
                detail += " (last error: " + scrub_urls(s.last_error, !settings_.api_token.empty()) + ")";
        } catch (const std::exception&) {
            // removed meanwhile: the plain detail will do
        }
        Response e = error_response(503, detail);
        e.set("Retry-After", "2");
        wait->done(std::move(e));
    });
}

}  // namespace hlsrelay::server
