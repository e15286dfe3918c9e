// Fail-back probes of a channel's primary URL: see source.hpp (probe_source).
#include "ingest/http_client.hpp"
#include "ingest/source.hpp"
#include "ingest/url_policy.hpp"

#include <hlsrelay/text.hpp>

#include <algorithm>
#include <chrono>

namespace hlsrelay {

namespace {
constexpr std::size_t kProbeBytes = 4096;  // a continuous source answers with this much media

double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

bool probe_playlist(SourceContext& ctx, ProbeMemory& memory, std::string& why) {
    std::string final_url;
    m3u8::Playlist playlist = fetch_hls_playlist(ctx, ctx.url, ctx.url, final_url);
    if (playlist.is_master()) {  // the first variant stands for the presentation
        const auto& variants = playlist.master().variants;
        if (variants.empty()) {
            why = "its master playlist lists no variant";
            return false;
        }
        const std::string variant = variants.front().uri;
        if (!url::is_remote(variant)) {
            why = "its variant is not http(s)";
            return false;
        }
        playlist = fetch_hls_playlist(ctx, variant, final_url, final_url);
        if (playlist.is_master()) {
            why = "its variant is itself a master playlist";
            return false;
        }
    }
    const m3u8::MediaPlaylist& media = playlist.media();
    if (media.segments.empty()) {
        why = "its playlist lists no segment";
        return false;
    }
    if (media.endlist) {
        why = "its playlist has ended (EXT-X-ENDLIST)";
        return false;
    }
    const int64_t last = media.segments.back().sequence;
    const auto now = std::chrono::steady_clock::now();
    if (memory.last_sequence < 0 || last > memory.last_sequence) {  // the first answer, or it advanced
        memory.last_sequence = last;
        memory.advanced_at = now;
        return true;
    }
    // Not advanced since the last probe: healthy while the live edge is younger than a stall.
    const double stale = seconds_since(memory.advanced_at);
    if (stale <= std::max(5.0, 3 * media.target_duration)) return true;
    why = "its playlist has not advanced for " + format_number(stale) + " s";
    return false;
}

bool probe_stream(SourceContext& ctx, std::string& why) {
    FetchSpec spec;
    spec.headers = &ctx.channel.headers;
    spec.trusted_origin = ctx.url;
    spec.what = "stream";
    spec.read_timeout = ctx.read_timeout;
    spec.max_redirects = ctx.limits.max_redirects;
    spec.limit_name = "max_segment_bytes";
    spec.max_bytes = ctx.limits.max_segment_bytes;
    HttpClient client;
    const auto start = std::chrono::steady_clock::now();
    client.open_stream(ctx.url, spec, ctx.interrupter);
    char buf[kProbeBytes];
    std::size_t got = 0;
    while (got < kProbeBytes) {
        if (seconds_since(start) > ctx.read_timeout) {
            why = "it sent " + std::to_string(got) + " bytes in " + format_number(ctx.read_timeout) + " s";
            return false;
        }
        const std::size_t n = client.read_stream(buf, sizeof buf - got, ctx.interrupter);
        if (n == 0) {
            why = "its stream ended after " + std::to_string(got) + " bytes";
            return false;
        }
        got += n;
    }
    return true;
}
}  // namespace

bool probe_source(SourceContext& ctx, ProbeMemory& memory, std::string& why) {
    why.clear();
    if (!url::is_remote(ctx.url)) {
        why = "only http(s) sources are probed";
        return false;
    }
    try {
        return is_hls_url(ctx.url) ? probe_playlist(ctx, memory, why) : probe_stream(ctx, why);
    } catch (const av::SourceError& e) {
        why = e.what();
        return false;
    }
}

}  // namespace hlsrelay
