// The C++ headers are à la carte (issue 12): the settings, log, error, resource, text and channel
// headers compile on their own without nlohmann/json, and engine.hpp does not pull in the
// channel-list parsers (registry.hpp). Two translation units: this one checks at compile time (an
// #error fails the build, so the test cannot pass by accident), and main() checks the types work.
#include <hlsrelay/channel.hpp>
#include <hlsrelay/error.hpp>
#include <hlsrelay/log.hpp>
#include <hlsrelay/resource.hpp>
#include <hlsrelay/settings.hpp>
#include <hlsrelay/text.hpp>

#ifdef INCLUDE_NLOHMANN_JSON_HPP_
#error "a settings-level header pulled in nlohmann/json.hpp"
#endif
#ifdef HLSRELAY_REGISTRY_HPP
#error "a settings-level header pulled in registry.hpp"
#endif

#include <hlsrelay/engine.hpp>

#ifdef HLSRELAY_REGISTRY_HPP
#error "engine.hpp pulled in registry.hpp (the channel-list parsers)"
#endif

#include <cstdio>

int main() {
    int failures = 0;
    auto check = [&](bool ok, const char* what) {
        if (!ok) {
            std::fprintf(stderr, "FAILED: %s\n", what);
            ++failures;
        }
    };
    hlsrelay::EngineSettings s;
    check(hlsrelay::hls_problem(s.hls).empty(), "the default HLS settings are in range");
    check(hlsrelay::limits_problem(s.limits).empty(), "the default fetch limits are in range");
    s.hls.renditions = "max-height=abc";
    check(!hlsrelay::hls_problem(s.hls).empty(), "a bad renditions selection is a problem");
    check(hlsrelay::parse_log_level("WARNING") == hlsrelay::LogLevel::Warn, "log levels parse in any case");
    hlsrelay::LoadReport report;  // Engine::load's result, without the parsers
    check(report.channels.empty() && report.issues.empty(), "LoadReport is usable from channel.hpp");
    hlsrelay::Error e(hlsrelay::ErrorCode::NotFound, "x");
    check(e.code() == hlsrelay::ErrorCode::NotFound, "Error carries its code");
    std::puts(failures ? "headers: FAILED" : "headers: ok");
    return failures ? 1 : 0;
}
