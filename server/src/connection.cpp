// A connection's life: read -> parse -> handle -> write, repeated while keep-alive holds; every phase
// that waits on the peer has a deadline, and a finished connection lingers briefly so a client still
// sending (a pipelined request, an unread body) gets the response rather than a reset.
#include "connection.hpp"

#include "connection_manager.hpp"
#include "log.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>

#include <csignal>
#include <ctime>

#include <pthread.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/types.h>

namespace hlsrelay::server {

namespace {
constexpr std::chrono::milliseconds kLinger{1000};

// sendfile(2) has no MSG_NOSIGNAL: a peer that went away would raise SIGPIPE, whose default action
// ends the process. The io thread that sends files keeps SIGPIPE blocked (asio's own sends use
// MSG_NOSIGNAL, so nothing else on it relies on the signal), and a send that failed with EPIPE takes
// the signal it left pending, so none accumulates.
void block_sigpipe_on_this_thread() {
    thread_local bool blocked = false;
    if (blocked) return;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    blocked = true;
}
void take_pending_sigpipe() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    const timespec none{0, 0};
    while (sigtimedwait(&set, nullptr, &none) == SIGPIPE) {
    }
}
}  // namespace

Connection::Connection(asio::ip::tcp::socket socket, ConnectionManager& manager, RequestHandler& handler,
                       ConnectionTimeouts timeouts, ParserLimits limits)
    : socket_(std::move(socket)),
      timer_(socket_.get_executor()),
      manager_(manager),
      handler_(handler),
      timeouts_(timeouts),
      parser_(limits) {
    asio::error_code ec;
    const auto peer = socket_.remote_endpoint(ec);
    client_ = ec ? std::string("unknown") : peer.address().to_string();
}

void Connection::start() {
    asio::dispatch(socket_.get_executor(), [self = shared_from_this()] {
        self->arm(self->timeouts_.read);  // a new connection is expected to send its request promptly
        self->process();
    });
}

void Connection::stop() {
    asio::dispatch(socket_.get_executor(), [self = shared_from_this()] { self->close(); });
}

void Connection::abort() {
    phase_ = Phase::closed;
    asio::error_code ignored;
    disarm();
    timer_.cancel();
    socket_.close(ignored);
}

// The phase's deadline is a field; the timer only wakes the connection to look at it. Re-arming for
// a later deadline (every response: the write deadline, then the keep-alive one) leaves the timer as
// it is, and the wake-up at its old expiry waits again for what is left. Only an earlier deadline
// (or none pending) sets the timer again: a request costs no timer operation in the usual case.
void Connection::arm(std::chrono::milliseconds timeout) {
    deadline_ = std::chrono::steady_clock::now() + timeout;
    if (timer_pending_ && timer_.expiry() <= deadline_) return;
    wait_for(deadline_);
}

void Connection::disarm() { deadline_ = Clock::time_point::max(); }

void Connection::wait_for(Clock::time_point at) {
    timer_.expires_at(at);  // cancels a pending wait: its handler sees another generation and returns
    timer_pending_ = true;
    timer_.async_wait([self = shared_from_this(), generation = ++timer_generation_](const asio::error_code& ec) {
        if (generation != self->timer_generation_) return;  // superseded by a later wait_for
        self->timer_pending_ = false;
        if (ec || self->phase_ == Phase::closed || self->deadline_ == Clock::time_point::max()) return;
        if (self->deadline_ > Clock::now()) return self->wait_for(self->deadline_);  // moved on meanwhile
        self->disarm();
        self->on_deadline();
    });
}

void Connection::on_deadline() {
    switch (phase_) {
        case Phase::reading:
            if (parser_.started()) {
                log::debug(client_ + " request not received in time");
                Response r = RequestHandler::error_response(408, "Request not received in time");
                r.close = true;
                asio::error_code ignored;
                socket_.cancel(ignored);  // the pending read ends with operation_aborted, ignored below
                send(std::move(r));
            } else {
                close();  // idle keep-alive connection
            }
            return;
        case Phase::writing:
        case Phase::lingering: close(); return;
        case Phase::handling:
        case Phase::closed: return;
    }
}

void Connection::process() {
    if (phase_ != Phase::reading) return;
    const bool was_started = parser_.started();
    const auto [result, end] = parser_.parse(request_, pending_.data(), pending_.data() + pending_.size());
    pending_.erase(0, static_cast<std::size_t>(end - pending_.data()));
    switch (result) {
        case RequestParser::Result::good: return on_request();
        case RequestParser::Result::bad: {
            log::debug(client_ + " bad request: " + parser_.error_detail());
            Response r = RequestHandler::error_response(parser_.error_status(), parser_.error_detail());
            r.close = true;
            return send(std::move(r));
        }
        case RequestParser::Result::indeterminate:
            // The read deadline runs from a request's first byte and is not extended by later bytes.
            if (parser_.started() && !was_started) arm(timeouts_.read);
            return read_more();
    }
}

void Connection::read_more() {
    socket_.async_read_some(asio::buffer(read_buffer_), [self = shared_from_this()](const asio::error_code& ec, std::size_t n) {
        if (self->phase_ != Phase::reading) return;
        if (ec) return self->close();
        self->idle_since_.store(0, std::memory_order_relaxed);
        self->pending_.append(self->read_buffer_.data(), n);
        self->process();
    });
}

void Connection::on_request() {
    phase_ = Phase::handling;
    disarm();  // the handler answers in its own time (a blocking reload, an on-demand start)
    if (log::enabled(LogLevel::Debug)) request_start_ = std::chrono::steady_clock::now();  // for the log line only
    handler_.handle(request_, client_, [self = shared_from_this()](Response r) {
        asio::dispatch(self->socket_.get_executor(), [self, r = std::move(r)]() mutable { self->send(std::move(r)); });
    });
}

void Connection::send(Response response) {
    if (phase_ == Phase::closed || phase_ == Phase::lingering) return;
    const bool http10 = request_.version_major == 1 && request_.version_minor == 0;
    keep_alive_ = !response.close && !response.stream && request_.keep_alive();
    response_ = std::move(response);
    head_ = serialize_head(response_, keep_alive_, http10);
    handler_.counters().count(response_.status);
    if (log::enabled(LogLevel::Debug)) {
        const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - request_start_).count();
        char took[32];
        std::snprintf(took, sizeof took, "%.1fms", ms);
        // The query may carry the API token: it stays out of the log.
        const std::size_t query = request_.target.find('?');
        const std::string target = query == std::string::npos ? request_.target : request_.target.substr(0, query) + "?...";
        log::debug(client_ + " " + request_.method + " " + target + " " + std::to_string(response_.status) + " " +
                   std::to_string(response_.payload().size()) + " " + (request_start_.time_since_epoch().count() ? took : "-"));
    }
    const bool body = request_.method != "HEAD" && response_.status != 204;
    const std::string_view payload = body ? response_.payload() : std::string_view();
    const std::array<asio::const_buffer, 2> buffers{asio::buffer(head_), asio::buffer(payload.data(), payload.size())};
    phase_ = Phase::writing;
    response_began_ = std::max<int64_t>(1, std::chrono::steady_clock::now().time_since_epoch().count());
    arm(timeouts_.write);
    if (!payload.empty() && response_.file) {
        // A published segment: the kernel sends its pages from the memfd (no copy through sendmsg).
        head_sent_ = file_sent_ = 0;
        return write_file();
    }
    // Most answers (playlists, API replies, errors) fit the socket's send buffer: written here at
    // once, and what follows (the next request, the linger) runs without waiting for a completion;
    // a client that pipelines is taken up again from a posted handler every few requests, so the
    // stack stays shallow. Whatever the socket did not take goes out with async_write.
    asio::error_code ec;
    if (!socket_.native_non_blocking()) socket_.native_non_blocking(true, ec);
    const std::size_t total = head_.size() + payload.size();
    std::size_t written = ec ? 0 : socket_.write_some(buffers, ec);
    if (ec && ec != asio::error::would_block && ec != asio::error::try_again) return close();
    if (written == total) {
        if (nested_writes_ < 4) {
            ++nested_writes_;
            on_written({});
            --nested_writes_;
        } else {
            asio::post(socket_.get_executor(), [self = shared_from_this()] {
                if (self->phase_ == Phase::writing) self->on_written({});
            });
        }
        return;
    }
    std::array<asio::const_buffer, 2> rest{};
    if (written < head_.size()) rest = {asio::buffer(head_) + written, asio::buffer(payload.data(), payload.size())};
    else rest = {asio::buffer(payload.data(), payload.size()) + (written - head_.size()), asio::const_buffer()};
    asio::async_write(socket_, rest, [self = shared_from_this()](const asio::error_code& e, std::size_t) {
        if (self->phase_ != Phase::writing) return;
        self->on_written(e);
    });
}

// Non-blocking send(2) of the head (MSG_MORE: it leaves with the body's first bytes), then
// sendfile(2) of the body from the memfd, each as far as the socket takes; on EAGAIN it waits for
// the socket to be writable again. The write deadline armed in send() bounds the whole response,
// and close() (deadline, stop) ends a pending wait with an error.
void Connection::write_file() {
    asio::error_code ec;
    if (!socket_.native_non_blocking()) socket_.native_non_blocking(true, ec);
    if (ec) return close();
    block_sigpipe_on_this_thread();
    const int sock = socket_.native_handle();
    while (head_sent_ < head_.size()) {
        const ssize_t n = ::send(sock, head_.data() + head_sent_, head_.size() - head_sent_, MSG_NOSIGNAL | MSG_MORE);
        if (n > 0) {
            head_sent_ += static_cast<std::size_t>(n);
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        } else {
            return close();
        }
    }
    if (head_sent_ == head_.size()) {
        while (file_sent_ < response_.length) {
            off_t at = static_cast<off_t>(response_.offset + file_sent_);
            const ssize_t n = ::sendfile(sock, response_.file->fd(), &at, response_.length - file_sent_);
            if (n > 0) {
                file_sent_ += static_cast<std::size_t>(n);
            } else if (n < 0 && errno == EINTR) {
                continue;
            } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                break;
            } else {
                if (n < 0 && errno == EPIPE) take_pending_sigpipe();
                return close();  // a socket error, or (n == 0) a file shorter than it says
            }
        }
        if (file_sent_ == response_.length) return on_written({});
    }
    socket_.async_wait(asio::socket_base::wait_write, [self = shared_from_this()](const asio::error_code& e) {
        if (self->phase_ != Phase::writing) return;
        if (e) return self->close();
        self->write_file();
    });
}

void Connection::on_written(const asio::error_code& ec) {
    if (ec) return close();
    if (response_.stream && request_.method != "HEAD") return stream_next();
    response_ = Response{};  // releases a shared segment as soon as it is sent
    if (!keep_alive_) return linger();
    request_ = Request{};
    request_start_ = {};
    parser_.reset();
    phase_ = Phase::reading;
    arm(timeouts_.keep_alive);
    // Waiting for the next request (nothing buffered, nothing unread in the socket): reclaimable
    // first when the server is full. Idle since its last response began, not since this handler
    // runs: a client may have read the response and moved on already. Whether the socket holds
    // unread bytes costs a system call (FIONREAD), asked only once the server is crowded: before
    // that no connection is reclaimed, and a request already in the socket clears the mark as soon
    // as the read below takes it.
    if (pending_.empty()) {
        asio::error_code unread;
        if (!manager_.crowded() || (socket_.available(unread) == 0 && !unread))
            idle_since_.store(response_began_, std::memory_order_relaxed);
    }
    process();
}

// A streamed body: wait for its next chunk, then write it; the write deadline bounds both (a
// client that cannot take a chunk in time is dropped, and so is a stream whose source sent nothing
// for that long: the connection of a viewer who left is not kept by a stalled channel).
void Connection::stream_next() {
    arm(timeouts_.write);
    response_.shared_body.reset();  // the chunk just sent
    response_.file.reset();
    chunk_.reset();
    response_.stream->next([self = shared_from_this()](std::shared_ptr<const void> data, std::string_view bytes) {
        asio::dispatch(self->socket_.get_executor(), [self, data = std::move(data), bytes] {
            if (self->phase_ != Phase::writing) return;
            if (!data) return self->linger();  // the end of the stream
            self->chunk_ = std::move(data);
            self->arm(self->timeouts_.write);
            asio::async_write(self->socket_, asio::buffer(bytes.data(), bytes.size()),
                              [self](const asio::error_code& ec, std::size_t) {
                                  if (self->phase_ != Phase::writing) return;
                                  if (ec) return self->close();
                                  self->stream_next();
                              });
        });
    });
}

void Connection::linger() {
    phase_ = Phase::lingering;
    manager_.release_client(shared_from_this());  // on its way out: no longer held against its client
    asio::error_code ignored;
    socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
    arm(kLinger);
    discard();
}

void Connection::discard() {
    socket_.async_read_some(asio::buffer(read_buffer_), [self = shared_from_this()](const asio::error_code& ec, std::size_t) {
        if (self->phase_ != Phase::lingering) return;
        if (ec) return self->close();  // EOF: the peer has everything
        self->discard();
    });
}

void Connection::close() {
    if (phase_ == Phase::closed) return;
    phase_ = Phase::closed;
    if (response_.stream) response_.stream->cancel();
    asio::error_code ignored;
    disarm();
    timer_.cancel();
    socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    manager_.remove(shared_from_this());
}

}  // namespace hlsrelay::server
