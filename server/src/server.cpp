// Accept loop, io threads and the on-demand idle sweep.
#include "server.hpp"

#include "log.hpp"

#include <algorithm>
#include <future>

namespace hlsrelay::server {

Server::Server(Engine& engine, ServerConfig config)
    : engine_(engine),
      config_(std::move(config)),
      connections_(config_.max_connections, config_.max_connections_per_client),
      acceptor_(asio::make_strand(io_)),
      idle_timer_(acceptor_.get_executor()),
      accept_retry_(acceptor_.get_executor()) {}

Server::~Server() { stop(); }

void Server::start() {
    std::lock_guard lock(stop_mu_);
    if (started_) return;
    const asio::ip::tcp::endpoint endpoint(asio::ip::make_address(config_.address), config_.port);
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(asio::ip::tcp::acceptor::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen(asio::socket_base::max_listen_connections);
    port_ = acceptor_.local_endpoint().port();
    HandlerSettings hs;
    hs.on_demand = config_.on_demand;
    hs.on_demand_wait = config_.on_demand_wait;
    hs.api_token = config_.api_token;
    hs.allowed_hosts = config_.allowed_hosts;
    hs.web_root = config_.web_root;
    // Host-less (HTTP/1.0) requests for the M3U get absolute URLs against the listening address.
    hs.default_host = authority();
    handler_ = std::make_unique<RequestHandler>(engine_, io_, blocking_, activity_, std::move(hs));
    started_ = true;
    for (int i = 1; i < std::max(1, config_.threads); ++i) {  // before the first accept: fixed from here on
        more_io_.push_back(std::make_unique<asio::io_context>());
        keep_running_.push_back(asio::make_work_guard(*more_io_.back()));
    }
    accept();
    if (config_.on_demand) schedule_idle_sweep();
    threads_.emplace_back([this] { run_handlers([this] { io_.run(); }, "io thread"); });
    for (auto& io : more_io_) threads_.emplace_back([this, &io = *io] { run_handlers([&io] { io.run(); }, "io thread"); });
}

void Server::stop() {
    std::lock_guard lock(stop_mu_);
    if (!started_ || stopped_) return;
    stopped_ = true;
    // The acceptor closes on its strand, and stop_all waits for that: a connection accepted after
    // the snapshot of stop_all would otherwise stay open, its client waiting for a response.
    std::promise<void> acceptor_closed;
    asio::post(acceptor_.get_executor(), [this, &acceptor_closed] {
        asio::error_code ignored;
        acceptor_.close(ignored);
        idle_timer_.cancel();
        accept_retry_.cancel();
        acceptor_closed.set_value();
    });
    acceptor_closed.get_future().wait_for(std::chrono::seconds(2));  // io threads busy for longer: still bounded
    // Clients see their connections close now rather than when the server object goes away.
    connections_.stop_all();
    for (int i = 0; i < 100 && connections_.size() > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    keep_running_.clear();
    io_.stop();
    for (auto& io : more_io_) io->stop();
    for (auto& t : threads_) t.join();
    threads_.clear();
    asio::error_code ignored;
    acceptor_.close(ignored);  // in case the posted close never ran; no io thread is left to race
    // Whatever did not close in time is closed here, on this thread: no io thread is left to race,
    // and a socket must not wait, open, for the io_context's destruction.
    connections_.abort_all();
    // Handlers already queued still run, on this thread: a connection the reactor accepted just
    // before the acceptor closed is only held by its completion, which sees the closed acceptor and
    // drops (closes) it. Without this its client would wait on an open socket.
    drain_handlers();
    blocking_.join();  // engine calls in flight finish; their replies go to closed connections
    drain_handlers();
}

void Server::run_handlers(const std::function<void()>& run, const char* who) {
    for (;;) {
        try {
            run();
            return;
        } catch (const std::exception& e) {
            log::error(std::string(who) + ": " + e.what());  // one handler threw: the others still run
        }
    }
}

void Server::drain_handlers() {
    io_.restart();
    run_handlers([this] { io_.poll(); }, "handler run at shutdown");
    for (auto& io : more_io_) {
        io->restart();
        run_handlers([&io] { io->poll(); }, "handler run at shutdown");
    }
}

uint16_t Server::port() const { return port_; }

std::string Server::authority() const {
    const bool v6 = config_.address.find(':') != std::string::npos;
    return (v6 ? "[" + config_.address + "]" : config_.address) + ":" + std::to_string(port_);
}

std::string Server::url() const { return "http://" + authority() + "/"; }

void Server::accept() {
    // The io_context of the next connection, in turn (next_io_ is only touched on the acceptor's strand).
    const std::size_t pick = next_io_++ % (more_io_.size() + 1);
    asio::io_context& io = pick == 0 ? io_ : *more_io_[pick - 1];
    // Each io_context has one thread: the connection's handlers run in order without a strand.
    acceptor_.async_accept(io, [this](const asio::error_code& ec, asio::ip::tcp::socket socket) {
        if (!acceptor_.is_open()) return;
        if (!ec) {
            // Responses go out in one gathered write; without this, Nagle holds a response's last
            // partial packet until the client's (delayed) ACK: up to 40 ms per response.
            asio::error_code ignored;
            socket.set_option(asio::ip::tcp::no_delay(true), ignored);
            auto c = std::make_shared<Connection>(std::move(socket), connections_, *handler_, config_.timeouts,
                                                  config_.limits);
            // A refused connection is closed as `c` goes out of scope.
            switch (connections_.start(c, c->client())) {
                case ConnectionManager::Admission::started: break;
                case ConnectionManager::Admission::client_full:
                    log::debug("per-client connection limit reached for " + c->client() + ": closing a new connection");
                    break;
                case ConnectionManager::Admission::server_full:
                    log::debug("connection limit reached and none idle: closing a new connection");
                    break;
            }
        } else if (ec != asio::error::operation_aborted) {
            log::warn("accept: " + ec.message());  // e.g. out of file descriptors: retry shortly
            accept_retry_.expires_after(std::chrono::milliseconds(100));
            accept_retry_.async_wait([this](const asio::error_code& e) {
                if (!e) accept();
            });
            return;
        }
        accept();
    });
}

void Server::schedule_idle_sweep() {
    const auto period = std::clamp(config_.idle_timeout / 4, std::chrono::milliseconds(100), std::chrono::milliseconds(1000));
    idle_timer_.expires_after(period);
    idle_timer_.async_wait([this](const asio::error_code& ec) {
        if (ec) return;
        idle_sweep();
        schedule_idle_sweep();
    });
}

void Server::idle_sweep() {
    std::vector<std::string> running;
    for (const auto& s : engine_.statuses())
        if (s.cleanup_running) running.push_back(s.stream_id);
    for (const std::string& id : activity_.idle_channels(running, config_.idle_timeout)) {
        {
            std::lock_guard lock(stopping_mu_);
            if (!stopping_.insert(id).second) continue;
        }
        log::info("stopping idle channel " + id);
        // Stopping waits for the channel's worker: not on an io thread.
        asio::post(blocking_, [this, id] {
            try {
                engine_.stop(id);
            } catch (const std::exception& e) {
                log::warn("idle stop of " + id + " failed: " + e.what());
            }
            std::lock_guard lock(stopping_mu_);
            stopping_.erase(id);
        });
    }
}

}  // namespace hlsrelay::server
