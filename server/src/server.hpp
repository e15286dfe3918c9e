// The HTTP server over an Engine: an acceptor, N io threads, the connection manager, a small pool
// for blocking engine calls and (on-demand mode) the idle sweep that stops unwatched channels.
#pragma once

#include "activity.hpp"
#include "connection.hpp"
#include "connection_manager.hpp"
#include "request_handler.hpp"
#include "request_parser.hpp"

#include <hlsrelay/engine.hpp>

#include <asio.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <functional>
#include <thread>
#include <vector>

namespace hlsrelay::server {

struct ServerConfig {
    std::string address = "127.0.0.1";
    uint16_t port = 8000;  // 0: an ephemeral port (see Server::port())
    int threads = 2;
    std::size_t max_connections = 2048;
    std::size_t max_connections_per_client = kDefaultMaxConnectionsPerClient;  // per client IP; 0: no cap
    ConnectionTimeouts timeouts;
    ParserLimits limits;
    bool on_demand = false;
    std::chrono::milliseconds idle_timeout{60000};
    std::chrono::milliseconds on_demand_wait{static_cast<int64_t>(kOnDemandWait * 1000)};
    std::string api_token;
    std::vector<std::string> allowed_hosts;  // names accepted in Host besides IP literals and localhost
    std::filesystem::path web_root;
};

class Server {
public:
    // The engine must outlive the server.
    Server(Engine& engine, ServerConfig config);
    ~Server();  // stop()
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Binds and starts serving on the io threads; throws std::system_error if the address is unusable.
    void start();
    // Stops accepting, drops every connection, waits for the io threads and pending engine calls.
    // Channels keep running: stopping them is the engine owner's call. Idempotent.
    void stop();

    uint16_t port() const;
    std::string url() const;  // "http://ADDRESS:PORT/"
    std::string authority() const;  // "ADDRESS:PORT", an IPv6 address in brackets
    std::size_t connections() const { return connections_.size(); }
    std::size_t idle_connections() const { return connections_.idle_count(); }  // kept, between requests

private:
    // Calls `run` (io_.run or io_.poll) again after a handler throws, until it returns.
    void run_handlers(const std::function<void()>& run, const char* who);
    void drain_handlers();  // runs what is queued, on the calling thread, once no io thread runs
    void accept();
    void schedule_idle_sweep();
    void idle_sweep();

    Engine& engine_;
    const ServerConfig config_;
    // Declared before io_ so that they outlive the handlers io_ destroys unrun (an on-demand wait's
    // destructor updates activity_).
    Activity activity_;
    ConnectionManager connections_;
    std::unique_ptr<RequestHandler> handler_;

    // One io_context per io thread, each run by its thread alone: a connection's handlers stay on
    // the thread that accepted it (no hand-off between threads, no shared scheduler queue). io_ is
    // the first; it also runs the acceptor, the handler's timers and the idle sweep. The others
    // (threads - 1) get new connections in turn with it.
    asio::io_context io_;
    std::vector<std::unique_ptr<asio::io_context>> more_io_;
    std::vector<asio::executor_work_guard<asio::io_context::executor_type>> keep_running_;
    std::size_t next_io_ = 0;  // on the acceptor's strand
    asio::ip::tcp::acceptor acceptor_;
    asio::steady_timer idle_timer_;    // on the acceptor's strand, like accept_retry_: stop() cancels both there
    asio::steady_timer accept_retry_;  // after an accept error such as EMFILE, instead of spinning
    asio::thread_pool blocking_{2};  // engine start/stop may wait on a worker for about a second
    std::vector<std::thread> threads_;
    std::mutex stop_mu_;
    bool started_ = false, stopped_ = false;
    uint16_t port_ = 0;

    std::mutex stopping_mu_;
    std::set<std::string> stopping_;  // channels an idle stop is under way for
};

}  // namespace hlsrelay::server
