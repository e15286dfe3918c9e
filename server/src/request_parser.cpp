// The incremental request parser: line by line for the head, a byte count for the body (its first
// bytes kept for the API, the rest discarded).
#include "request_parser.hpp"

#include <algorithm>
#include <charconv>
#include <string_view>

namespace hlsrelay::server {

namespace {
bool is_token_char(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) { return !s.empty() && std::all_of(s.begin(), s.end(), is_token_char); }

// Controls other than tab, and DEL; bytes >= 0x80 (obs-text) are allowed in values.
bool is_control(char c) {
    const auto u = static_cast<unsigned char>(c);
    return (u < 0x20 && c != '\t') || u == 0x7f;
}

std::string_view trim_ows(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}
}  // namespace

void RequestParser::reset() {
    state_ = State::request_line;
    line_.clear();
    header_bytes_ = 0;
    body_left_ = 0;
    started_ = false;
    seen_content_length_ = false;
    error_status_ = 400;
    error_detail_.clear();
}

RequestParser::Result RequestParser::fail(int status, std::string detail) {
    state_ = State::failed;
    error_status_ = status;
    error_detail_ = std::move(detail);
    return Result::bad;
}

std::pair<RequestParser::Result, const char*> RequestParser::parse(Request& req, const char* begin, const char* end) {
    const char* p = begin;
    while (p != end) {
        switch (state_) {
            case State::failed: return {Result::bad, p};
            case State::done: return {Result::good, p};
            case State::body: {
                const auto n = std::min<std::size_t>(body_left_, static_cast<std::size_t>(end - p));
                if (req.body.size() < limits_.max_kept_body)
                    req.body.append(p, std::min(n, limits_.max_kept_body - req.body.size()));
                p += n;
                body_left_ -= n;
                if (body_left_ == 0) {
                    state_ = State::done;
                    return {Result::good, p};
                }
                continue;
            }
            case State::request_line:
            case State::headers: {
                const char c = *p++;
                started_ = true;
                if (c != '\n') {
                    line_ += c;
                    if (state_ == State::request_line && line_.size() > limits_.max_request_line)
                        return {fail(414, "Request line too long"), p};
                    if (state_ == State::headers && header_bytes_ + line_.size() > limits_.max_header_bytes)
                        return {fail(431, "Request headers too large"), p};
                    continue;
                }
                if (!line_.empty() && line_.back() == '\r') line_.pop_back();  // bare LF is tolerated
                const Result r = state_ == State::request_line ? on_request_line(req) : on_header_line(req);
                line_.clear();
                if (r != Result::indeterminate) return {r, p};
                continue;
            }
        }
    }
    if (state_ == State::done) return {Result::good, p};
    if (state_ == State::failed) return {Result::bad, p};
    return {Result::indeterminate, p};
}

RequestParser::Result RequestParser::on_request_line(Request& req) {
    if (line_.empty()) {  // RFC 9112 2.2: ignore empty lines before the request line
        started_ = false;
        return Result::indeterminate;
    }
    const std::string_view line = line_;
    const std::size_t sp1 = line.find(' ');
    const std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos)
        return fail(400, "Malformed request line");
    const std::string_view method = line.substr(0, sp1);
    const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    const std::string_view version = line.substr(sp2 + 1);
    if (!is_token(method)) return fail(400, "Malformed method");
    if (target.empty() || std::any_of(target.begin(), target.end(), [](char c) {
            return static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f;
        }))
        return fail(400, "Malformed request target");
    if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' || version[5] < '0' ||
        version[5] > '9' || version[7] < '0' || version[7] > '9')
        return fail(400, "Malformed HTTP version");
    req.version_major = version[5] - '0';
    req.version_minor = version[7] - '0';
    if (req.version_major != 1) return fail(505, "HTTP version not supported");
    req.method = std::string(method);
    req.target = std::string(target);
    state_ = State::headers;
    return Result::indeterminate;
}

RequestParser::Result RequestParser::on_header_line(Request& req) {
    if (line_.empty()) return on_headers_end(req);
    header_bytes_ += line_.size() + 2;
    if (line_.front() == ' ' || line_.front() == '\t') return fail(400, "Obsolete header line folding");
    if (req.headers.size() >= limits_.max_headers) return fail(431, "Too many request headers");
    const std::string_view line = line_;
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) return fail(400, "Malformed header line");
    const std::string_view name = line.substr(0, colon);
    if (!is_token(name)) return fail(400, "Malformed header name");
    const std::string_view value = trim_ows(line.substr(colon + 1));
    if (std::any_of(value.begin(), value.end(), is_control)) return fail(400, "Control character in header value");
    if (iequals(name, "Content-Length")) {
        std::size_t n = 0;
        const auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
        if (value.empty() || ec != std::errc() || ptr != value.data() + value.size())
            return fail(ec == std::errc::result_out_of_range ? 413 : 400, "Invalid Content-Length");
        if (seen_content_length_ && n != req.content_length) return fail(400, "Conflicting Content-Length headers");
        seen_content_length_ = true;
        req.content_length = n;
    }
    req.headers.push_back({std::string(name), std::string(value)});
    return Result::indeterminate;
}

RequestParser::Result RequestParser::on_headers_end(Request& req) {
    // Request bodies are never needed here, so chunked uploads are not worth supporting.
    if (req.header("Transfer-Encoding")) return fail(501, "Transfer-Encoding in requests is not supported");
    if (req.content_length > limits_.max_body) return fail(413, "Request body too large");
    if (req.version_minor >= 1 && !req.header("Host")) return fail(400, "Missing Host header");
    body_left_ = req.content_length;
    state_ = body_left_ > 0 ? State::body : State::done;
    return state_ == State::done ? Result::good : Result::indeterminate;
}

}  // namespace hlsrelay::server
