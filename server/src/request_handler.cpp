// Request handling over the engine: one function per route kind, replies shaped by hlsrelay/api.hpp.
#include "request_handler.hpp"

#include "log.hpp"

#include <hlsrelay/json.hpp>
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

// A Host header is echoed into the M3U: only host[:port] characters may pass.
bool valid_host(std::string_view host) {
    if (host.empty() || host.size() > 255) return false;
    for (char c : host)
        if (!(is_ascii_alnum(c) || c == '.' || c == '-' || c == ':' || c == '[' || c == ']' || c == '_')) return false;
    return true;
}

bool is_playlist(std::string_view file) { return file == kMasterPlaylistName || file == kMediaPlaylistName; }

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
    Response r = text_response(reply.status, json ? reply.content_type : reply.content_type + "; charset=utf-8",
                               json ? dump_json(reply.body) : reply.text);
    for (const auto& [name, value] : reply.headers) r.set(name, value);
    return r;
}

Response resource_response(const Resource& res, std::optional<std::string_view> range) {
    Response r;
    r.set("Content-Type", std::string(res.content_type));
    const std::string_view bytes = res.bytes();  // a part: a range of its segment's bytes
    r.shared_body = res.data;
    r.offset = static_cast<std::size_t>(bytes.data() - res.data->data());
    r.length = bytes.size();
    if (!res.immutable) {
        r.set("Cache-Control", "no-cache");
        return r;
    }
    r.set("Cache-Control", "public, max-age=86400, immutable");
    r.set("Accept-Ranges", "bytes");
    if (!range) return r;
    const std::size_t size = bytes.size();
    const ByteRange br = parse_range(*range, size);
    if (br.kind == ByteRange::unsatisfiable) {
        Response e = RequestHandler::error_response(416, "Range not satisfiable");
        e.set("Content-Range", "bytes */" + std::to_string(size));
        return e;
    }
    if (br.kind == ByteRange::satisfiable) {
        r.status = 206;
        r.offset += br.first;
        r.length = br.last - br.first + 1;
        r.set("Content-Range", "bytes " + std::to_string(br.first) + "-" + std::to_string(br.last) + "/" + std::to_string(size));
    }
    return r;
}

// A playlist answering LL-HLS directives: cacheable for `cache_seconds` when its URL names what it
// holds (a blocking request), else like any playlist.
Response playlist_response(const Resource& res, int cache_seconds) {
    Response r = resource_response(res, std::nullopt);
    if (cache_seconds > 0)
        for (auto& [name, value] : r.headers)
            if (iequals(name, "Cache-Control")) value = "public, max-age=" + std::to_string(cache_seconds);
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
            if (!blocked_.count(e.channel)) return;
        }
        asio::post(io_, [this, id = e.channel] { wake(id); });
    });
}

RequestHandler::~RequestHandler() { engine_.unsubscribe(subscription_); }

struct BlockedReload {
    BlockedReload(asio::io_context& io, std::string channel, std::string name, api::PlaylistDirectives directives,
                  Delivery how, RequestHandler::Done d)
        : timer(io), id(std::move(channel)), file(std::move(name)), query(std::move(directives)), delivery(how), done(std::move(d)) {}
    asio::steady_timer timer;
    const std::string id, file;
    const api::PlaylistDirectives query;
    const Delivery delivery;
    RequestHandler::Done done;
    std::atomic<bool> answered{false};
    // A preload hint's part (EXT-X-PRELOAD-HINT) asked for before it is complete: `file` is that
    // part, this its number.
    std::optional<int64_t> part;
    std::string playlist{kMediaPlaylistName};  // ... of this media playlist ("v1/index.m3u8" for a rendition's)
};

void RequestHandler::serve_playlist(const std::string& id, const std::string& file, const api::PlaylistDirectives& d,
                                    Delivery delivery, Done done) {
    const api::PlaylistAnswer a = api::hls_playlist(engine_, id, file, d);
    if (a.kind == api::PlaylistAnswer::Kind::error) return done(reply_response(a.error));
    if (a.kind == api::PlaylistAnswer::Kind::serve) {
        if (auto res = engine_.read(id, a.file, delivery)) return done(playlist_response(*res, a.cache_seconds));
        return done(error_response(404, engine_.running(id) ? "Not found" : "Stream not running"));
    }
    auto b = std::make_shared<BlockedReload>(io_, id, file, d, delivery, std::move(done));
    b->timer.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(a.wait_seconds)));
    block(std::move(b));
}

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
    api::PlaylistAnswer a;
    try {
        if (b->part) {
            const auto p = engine_.playlist_position(b->id, b->playlist);
            a.kind = p && p->next_part <= *b->part ? api::PlaylistAnswer::Kind::wait : api::PlaylistAnswer::Kind::serve;
            a.file = b->file;
        } else {
            a = api::hls_playlist(engine_, b->id, b->file, b->query);
        }
    } catch (const std::exception&) {
        a.kind = api::PlaylistAnswer::Kind::serve;  // the channel went away: read() says so below
    }
    if (a.kind == api::PlaylistAnswer::Kind::wait && engine_.running(b->id)) return false;
    if (b->answered.exchange(true)) return true;
    b->timer.cancel();
    if (a.kind == api::PlaylistAnswer::Kind::error) {
        b->done(reply_response(a.error));
    } else if (auto res = a.kind == api::PlaylistAnswer::Kind::serve ? engine_.read(b->id, a.file, b->delivery) : std::nullopt) {
        b->done(b->part ? resource_response(*res, std::nullopt) : playlist_response(*res, a.cache_seconds));
    } else {
        b->done(error_response(404, engine_.running(b->id) ? "Not found" : "Stream not running"));
    }
    return true;
}

void RequestHandler::wake(const std::string& id) {
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
        case RouteKind::start_stream:
            return run_blocking(
                [this, name = r.channel] {
                    api::Reply reply = api::start_stream(engine_, name);
                    if (reply.status == 200)
                        if (auto c = engine_.find_channel(name)) activity_.touch(c->id);
                    return reply;
                },
                done);
        case RouteKind::stop_stream:
            return run_blocking([this, name = r.channel] { return api::stop_stream(engine_, name); }, done);
        default: return done(handle_now(r, req, verdict));
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

Response RequestHandler::handle_now(const Route& r, const Request& req, const api::HttpVerdict& verdict) {
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
        case RouteKind::list_channels: return reply_response(api::list_channels(engine_));
        case RouteKind::stream_status: {
            api::Reply reply = api::stream_status(engine_, r.channel, verdict.sources);
            if (reply.status == 200) add_activity(reply.body);
            return reply_response(reply);
        }
        case RouteKind::streams_status: {
            api::Reply reply = api::streams_status(engine_, verdict.sources);
            if (reply.status == 200 && reply.body.contains("streams"))
                for (auto& s : reply.body["streams"]) add_activity(s);
            return reply_response(reply);
        }
        case RouteKind::static_hls_m3u: {
            const auto host = req.header("Host");
            if (host && !valid_host(*host)) return error_response(400, "Invalid Host header");
            return reply_response(api::static_hls_m3u(engine_, "http://" + (host ? std::string(*host) : settings_.default_host)));
        }
        default: return error_response(500, "Unhandled route");
    }
}

void RequestHandler::serve_hls(const Route& r, const Request& req, const std::string& client, Done done) {
    // Engine::read also accepts display names; this path serves registry ids only.
    const auto channel = engine_.find_channel(r.channel);
    if (!channel || channel->id != r.channel) return done(reply_response(api::channel_not_found()));
    const std::string& id = channel->id;
    activity_.record_request(id, client);
    // bytes_out counts what clients get: a HEAD request gets none of the bytes.
    const Delivery delivery = req.method == "HEAD" ? Delivery::headers : Delivery::whole;
    if (api::is_media_playlist(r.file) && engine_.running(id)) {  // LL-HLS directives, if any (api::hls_playlist)
        api::PlaylistDirectives d;
        for (auto [name, field] : {std::pair{"_HLS_msn", &d.msn}, {"_HLS_part", &d.part}, {"_HLS_skip", &d.skip}})
            if (const auto it = r.query.find(name); it != r.query.end()) *field = it->second;
        if (d.msn || d.part || d.skip) return serve_playlist(id, r.file, d, delivery, std::move(done));
    }
    if (auto res = engine_.read(id, r.file, delivery)) return done(resource_response(*res, req.header("Range")));
    // A part (a rendition's: "v1/part_7.m4s") in the playlist of that directory.
    const auto sub = split_rendition_path(r.file);
    if (const auto part = parse_part_name(sub ? sub->file : std::string_view(r.file))) {
        // The part a preload hint names, asked for before it is complete: held until it is (at
        // most three target durations), as a blocking reload for it would be.
        const std::string playlist =
            sub ? std::string(sub->rendition) + "/" + std::string(kMediaPlaylistName) : std::string(kMediaPlaylistName);
        const auto p = engine_.playlist_position(id, playlist);
        if (p && p->low_latency && p->target_duration > 0 && part->first == p->next_part) {
            auto b = std::make_shared<BlockedReload>(io_, id, r.file, api::PlaylistDirectives{}, delivery, std::move(done));
            b->part = part->first;
            b->playlist = playlist;
            b->timer.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                std::chrono::duration<double>(3.0 * p->target_duration)));
            return block(std::move(b));
        }
    }
    if (!settings_.on_demand || !is_playlist(r.file))
        return done(error_response(404, engine_.running(id) ? "Not found" : "Stream not running"));
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

void RequestHandler::wait_for_playlist(const std::string& id, const std::string& file, Done done) {
    if (!engine_.running(id)) {
        log::info("on-demand start of " + id);
        asio::post(blocking_, [this, id] {
            try {
                engine_.start(id);
                activity_.touch(id);
            } catch (const std::exception& e) {
                log::warn("on-demand start of " + id + " failed: " + scrub_urls(e.what()));
            }
        });
    }
    poll(std::make_shared<PlaylistWait>(io_, activity_, id, file, std::move(done),
                                        std::chrono::steady_clock::now() + settings_.on_demand_wait));
}

// Polling keeps this independent of event ordering: the playlist may appear before a subscriber could.
void RequestHandler::poll(std::shared_ptr<PlaylistWait> wait) {
    wait->timer.expires_after(settings_.on_demand_poll);
    wait->timer.async_wait([this, wait](const asio::error_code& ec) {
        if (ec) return;
        if (auto res = engine_.read(wait->id, wait->file)) return wait->done(resource_response(*res, std::nullopt));
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
