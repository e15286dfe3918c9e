// What a channel's sources handed over so far, kept by the channel worker across reconnects and
// failovers so that a source reopened after an outage never republishes what was already taken
// (a frozen origin that comes back with its last segments, an origin that restarts its sequence).
// Written and read only by the channel's worker thread.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace hlsrelay {

struct SourceHistory {
    // The last source segment taken from one media playlist: its media sequence number and URI.
    struct Position {
        int64_t sequence = -1;
        std::string uri;
    };
    static constexpr std::size_t kMaxPlaylists = 16;     // media playlist URLs remembered (failover URLs, variants)
    static constexpr std::size_t kFingerprints = 64;     // content fingerprints of the last segments taken

    // The position reached in the media playlist `playlist_url`, or nullptr if none was taken from it.
    const Position* position(const std::string& playlist_url) const {
        auto it = positions_.find(playlist_url);
        return it == positions_.end() ? nullptr : &it->second;
    }

    // A segment of `playlist_url` was taken (published, or given up on after its retries).
    void taken(const std::string& playlist_url, int64_t sequence, const std::string& uri) {
        if (positions_.size() >= kMaxPlaylists && !positions_.count(playlist_url)) positions_.erase(positions_.begin());
        positions_[playlist_url] = Position{sequence, uri};
    }

    // The channel switched to another URL (a failover or a fail-back): the positions are stale, as
    // another source played meanwhile; the next playlist starts at its live edge. The fingerprints
    // stay (a mirror's segments already taken are still skipped).
    void forget_positions() { positions_.clear(); }

    // Content fingerprints, across every playlist of the channel (a mirror serves the same bytes).
    bool seen(uint64_t fingerprint) const {
        for (std::size_t i = 0; i < count_; ++i)
            if (ring_[i] == fingerprint) return true;
        return false;
    }
    void remember(uint64_t fingerprint) {
        if (seen(fingerprint)) return;
        ring_[next_] = fingerprint;
        next_ = (next_ + 1) % kFingerprints;
        if (count_ < kFingerprints) ++count_;
    }

    // A 64-bit fingerprint of a segment's bytes (after decryption): FNV-1a-like over the size, the
    // first and last 8 KiB and 64 bytes at 32 evenly spaced places between them. Not cryptographic,
    // and not every byte: it tells a replayed segment (the same bytes) from a new one, whose start
    // differs anyway (its timestamps are in its first packets). Hashing every byte cost a fifth of
    // the server's CPU at 1,000 channels (a serial multiply chain over ~650 kB per segment).
    static uint64_t fingerprint(std::string_view bytes) {
        uint64_t h = 1469598103934665603ull ^ static_cast<uint64_t>(bytes.size());
        auto mix = [&h](std::string_view part) {
            std::size_t i = 0;
            for (; i + 8 <= part.size(); i += 8) {
                uint64_t word = 0;
                for (int b = 0; b < 8; ++b) word |= static_cast<uint64_t>(static_cast<unsigned char>(part[i + b])) << (8 * b);
                h = (h ^ word) * 1099511628211ull;
                h ^= h >> 29;
            }
            for (; i < part.size(); ++i) h = (h ^ static_cast<unsigned char>(part[i])) * 1099511628211ull;
        };
        constexpr std::size_t kEdge = 8192, kSamples = 32, kSample = 64;
        if (bytes.size() <= 2 * kEdge + kSamples * kSample) {
            mix(bytes);
            return h;
        }
        mix(bytes.substr(0, kEdge));
        const std::size_t middle = bytes.size() - 2 * kEdge;
        for (std::size_t k = 0; k < kSamples; ++k) mix(bytes.substr(kEdge + middle * k / kSamples, kSample));
        mix(bytes.substr(bytes.size() - kEdge));
        return h;
    }

private:
    std::map<std::string, Position> positions_;
    std::array<uint64_t, kFingerprints> ring_{};
    std::size_t count_ = 0, next_ = 0;
};

}  // namespace hlsrelay
