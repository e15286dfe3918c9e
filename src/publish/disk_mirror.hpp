// The optional disk mirror of a channel, for hosts that serve static files: {hls_dir}/{id}/.
// A segment file is complete before any playlist names it, playlists are replaced atomically
// (temp file + rename), and a failing disk is reported instead of stopping the channel.
#pragma once

#include <hlsrelay/playlist.hpp>
#include <hlsrelay/window.hpp>

#include <filesystem>
#include <mutex>
#include <set>
#include <string>

namespace hlsrelay {

class DiskMirror {
public:
    explicit DiskMirror(std::filesystem::path dir);
    void write_segment(const Segment& segment);
    void write_playlist(std::string_view name, const std::string& text);
    void remove_segment(const Segment& segment);
    // Removes files this channel does not list or hold in grace any more (strays of a crash, too).
    void sweep(const std::set<std::string>& keep);
    void remove_all();
    // The failures still standing: a segment write failure stays reported until a segment write
    // succeeds, a playlist's until that playlist is written (a disk too full for segments may still
    // take a small playlist: that must not hide the segments' failure). Empty when all is well.
    std::string error() const;
    const std::filesystem::path& dir() const { return dir_; }

private:
    // What a write was for: each kind's failure is cleared only by a success of the same kind.
    enum Kind { kSegment, kMediaPlaylist, kMasterPlaylist, kKinds };
    bool write_atomically(const std::string& name, std::string_view bytes, Kind kind);
    void fail(Kind kind, const std::string& what);

    std::filesystem::path dir_;
    std::mutex io_mu_;       // the worker writes while housekeeping sweeps: one at a time
    mutable std::mutex mu_;  // guards errors_ (the worker writes, status readers read)
    std::string errors_[kKinds];
};

}  // namespace hlsrelay
