// Turns a parsed request into a response over the engine: API replies (from hlsrelay/api.hpp), HLS
// reads from memory, the dashboard, health and metrics. Blocking engine calls (start/stop) run on a
// thread pool and on-demand waits on timers, so io threads never block; the reply arrives via `Done`.
#pragma once

#include "activity.hpp"
#include "http.hpp"
#include "metrics.hpp"
#include "router.hpp"
#include "static_files.hpp"

#include <hlsrelay/api.hpp>
#include <hlsrelay/engine.hpp>

#include <asio.hpp>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <optional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace hlsrelay::server {

struct HandlerSettings {
    bool on_demand = false;
    std::chrono::milliseconds on_demand_wait{static_cast<int64_t>(kOnDemandWait * 1000)};  // for the first playlist of a channel it starts
    std::chrono::milliseconds on_demand_poll{50};
    std::string api_token;  // empty: control endpoints are open (to non-browser and same-origin callers)
    std::vector<std::string> allowed_hosts;  // --allowed-host: names accepted in Host (api::HttpPolicy)
    std::string default_host;  // for absolute URLs when a request has no Host (HTTP/1.0)
    std::filesystem::path web_root;
};

struct PlaylistWait;
struct BlockedReload;
class TsViewer;

class RequestHandler {
public:
    using Done = std::function<void(Response)>;

    RequestHandler(Engine& engine, asio::io_context& io, asio::thread_pool& blocking, Activity& activity,
                   HandlerSettings settings);
    ~RequestHandler();  // unsubscribes from the engine; blocked reloads still waiting are dropped
    RequestHandler(const RequestHandler&) = delete;
    RequestHandler& operator=(const RequestHandler&) = delete;

    // Calls `done` exactly once, possibly before returning, possibly later from another thread.
    void handle(const Request& req, const std::string& client, Done done);

    // A JSON error {"detail": ...} (the shape of hlsrelay::api::error).
    static Response error_response(int status, std::string detail);

    HttpCounters& counters() { return counters_; }

private:
    void dispatch(const Request& req, const std::string& client, const Done& done);
    Response handle_now(const Route& r, const api::HttpVerdict& verdict);
    void serve_hls(const Route& r, const Request& req, const std::string& client, Done done);
    void start_on_demand(const std::string& id, const std::string& why);
    // Why the last on-demand start of `id` was refused (a provider's connections all in use), if it
    // was and no start was tried since; the waiting requests answer 503 with it at once.
    std::optional<std::string> refused_start(const std::string& id);
    void wait_for_playlist(const std::string& id, const std::string& file, Done done);
    void poll(std::shared_ptr<PlaylistWait> wait);
    // LL-HLS blocking playlist reloads and preload hints' parts (api::hls_file's `wait`): parked per
    // channel on a timer (three target durations) and looked at again whenever the channel publishes
    // a part or a segment; no thread waits.
    void block(std::shared_ptr<BlockedReload> b);
    bool answer(const std::shared_ptr<BlockedReload>& b);  // true: answered (or gone), false: still waiting
    void wake(const std::string& id);
    void run_blocking(std::function<api::Reply()> work, Done done);
    // A channel's continuous TS (/stream/{id}.ts, /auto/v{n}): started on demand, answered once its
    // first segment is there (503 if none comes in on_demand_wait), then streamed by a TsViewer that
    // the channel's publications wake.
    void serve_ts(const std::string& id, const std::string& client, Done done);
    void first_ts_chunk(std::shared_ptr<TsViewer> viewer, std::chrono::steady_clock::time_point deadline,
                        std::shared_ptr<asio::steady_timer> timer, Done done);
    friend class TsViewer;
    void add_activity(nlohmann::ordered_json& status) const;
    Response asset(const std::filesystem::path& path, std::string content_type, std::string cache_control);

    Engine& engine_;
    asio::io_context& io_;
    asio::thread_pool& blocking_;
    Activity& activity_;
    const HandlerSettings settings_;
    const api::HttpPolicy policy_;
    StaticFiles files_;
    HttpCounters counters_;
    std::mutex refused_mu_;
    std::map<std::string, std::string> refused_starts_;  // by channel id, under refused_mu_
    std::set<std::string> pending_starts_;               // on-demand starts under way, under refused_mu_
    std::mutex blocked_mu_;
    std::map<std::string, std::vector<std::shared_ptr<BlockedReload>>> blocked_;  // by channel id
    std::map<std::string, std::vector<std::weak_ptr<TsViewer>>> ts_waiting_;      // by channel id, under blocked_mu_
    Engine::SubscriptionId subscription_ = 0;
};

// An HLS file as api::hls_file answers it (headers, status, range): the error reply, or the bytes as
// the engine's shared buffer, not a copy.
Response file_response(const api::FileAnswer& answer);

// The JSON response of an API reply.
Response reply_response(const api::Reply& reply);

}  // namespace hlsrelay::server
