// The optional disk mirror of a channel, for hosts that serve static files: {hls_dir}/{id}/.
// A segment file is complete before any playlist names it, playlists are replaced atomically
// (temp file + rename), and a failing disk is reported instead of stopping the channel.
#pragma once

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
    std::string error() const;  // the last failure; empty after a later success
    const std::filesystem::path& dir() const { return dir_; }

private:
    bool write_atomically(const std::string& name, std::string_view bytes);
    void fail(const std::string& what);

    std::filesystem::path dir_;
    std::mutex io_mu_;       // the worker writes while housekeeping sweeps: one at a time
    mutable std::mutex mu_;  // guards error_ (the worker writes, status readers read)
    std::string error_;
};

}  // namespace hlsrelay
