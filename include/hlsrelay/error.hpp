// What the engine throws: an Error with a code that the bindings map onto theirs (C: hlsrelay_error,
// Python: the exception classes, HTTP: 400/404/409/503/500).
#pragma once

#include <stdexcept>
#include <string>

namespace hlsrelay {

// Unavailable: not now, try again later (a provider's connections are all in use): HTTP 503.
// Conflict: the channel's state forbids the call (starting a disabled channel); HTTP 409.
enum class ErrorCode { InvalidArgument = 1, NotFound = 2, Io = 3, Internal = 4, Unavailable = 5, Conflict = 6 };

class Error : public std::runtime_error {
public:
    Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
    ErrorCode code() const { return code_; }

private:
    ErrorCode code_;
};

}  // namespace hlsrelay
