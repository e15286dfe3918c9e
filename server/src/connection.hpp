// One client connection: reads requests (keep-alive, pipelined), hands them to the RequestHandler and
// writes the responses, all on its own io thread, with per-phase deadlines so a stalled peer is dropped.
#pragma once

#include "http.hpp"
#include "request_handler.hpp"
#include "request_parser.hpp"

#include <asio.hpp>

#include <array>
#include <atomic>
#include <cstdint>
#include <chrono>
#include <memory>
#include <string>

namespace hlsrelay::server {

class ConnectionManager;

struct ConnectionTimeouts {
    std::chrono::milliseconds read{10000};       // to receive a whole request once it has begun
    std::chrono::milliseconds keep_alive{15000};  // idle between requests
    std::chrono::milliseconds write{60000};      // to send a whole response
};

class Connection : public std::enable_shared_from_this<Connection> {
public:
    // `socket`'s executor is an io_context that one thread runs (Server: one per io thread): every
    // handler of this connection runs there, one at a time.
    Connection(asio::ip::tcp::socket socket, ConnectionManager& manager, RequestHandler& handler,
               ConnectionTimeouts timeouts, ParserLimits limits);
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    void start();
    // Thread-safe: closes the socket on the connection's io thread.
    void stop();
    // Closes the socket at once, from any thread: only when no io thread runs any more.
    void abort();
    const std::string& client() const { return client_; }  // the peer's address
    // Thread-safe: 0 unless the connection waits for a next request on a kept connection; then when
    // (steady_clock ticks) its last response began, which orders idle connections oldest first.
    int64_t idle_since() const { return idle_since_.load(std::memory_order_relaxed); }

private:
    enum class Phase { reading, handling, writing, lingering, closed };

    void process();  // parses what is buffered; reads more, answers or fails
    void read_more();
    void on_request();
    void send(Response response);
    using Clock = std::chrono::steady_clock;
    void arm(std::chrono::milliseconds timeout);  // the current phase must end within `timeout`
    void disarm();                                // no deadline (handling a request)
    void wait_for(Clock::time_point at);          // (re)sets the timer to wake the connection at `at`
    void on_deadline();
    void on_written(const asio::error_code& ec);  // the response is out (or failed)
    void write_file();   // head + a fd-backed body (Response::file): send/sendfile as far as the socket takes
    void stream_next();  // a streamed body (Response::stream): its next chunk
    void linger();   // half-close, then drain the peer's bytes until EOF or a short deadline
    void discard();
    void close();

    asio::ip::tcp::socket socket_;
    asio::steady_timer timer_;
    Clock::time_point deadline_ = Clock::time_point::max();  // of the current phase; max: none
    bool timer_pending_ = false;                             // a wait of timer_ is outstanding
    uint64_t timer_generation_ = 0;                          // of the newest wait; older ones are stale
    ConnectionManager& manager_;
    RequestHandler& handler_;
    const ConnectionTimeouts timeouts_;
    std::string client_;
    std::atomic<int64_t> idle_since_{0};

    Phase phase_ = Phase::reading;
    RequestParser parser_;
    Request request_;
    std::array<char, 8192> read_buffer_{};
    std::string pending_;  // received bytes the parser has not consumed yet
    std::chrono::steady_clock::time_point request_start_{};

    Response response_;  // kept alive (with any shared body) until its write completes
    std::string head_;
    std::size_t head_sent_ = 0, file_sent_ = 0;  // write_file's progress
    std::shared_ptr<const void> chunk_;          // a streamed body's chunk being written
    bool keep_alive_ = false;
    int nested_writes_ = 0;  // send() -> on_written() -> ... -> send() on this stack (see send())
    int64_t response_began_ = 0;  // steady_clock ticks
};

}  // namespace hlsrelay::server
