// JSON text for replies, files and logs: bytes that are not UTF-8 (a source's bytes in an error
// message, a Latin-1 channel name) are replaced, never thrown on, as nlohmann's plain dump() would.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace hlsrelay {

// `indent` as for nlohmann's dump(): -1 compact, n >= 0 pretty-printed with n spaces.
template <class Json>
std::string dump_json(const Json& j, int indent = -1) {
    return j.dump(indent, ' ', false, Json::error_handler_t::replace);
}

}  // namespace hlsrelay
