// The optional disk mirror of a channel: see disk_mirror.hpp.
#include "publish/disk_mirror.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

namespace hlsrelay {

namespace fs = std::filesystem;

DiskMirror::DiskMirror(fs::path dir) : dir_(std::move(dir)) {
    std::error_code ec;
    fs::create_directories(dir_, ec);
    // Reported as a segment failure: the first segment written clears it, as the directory then exists.
    if (ec) fail(kSegment, "cannot create " + dir_.string() + ": " + ec.message());
}

void DiskMirror::fail(Kind kind, const std::string& what) {
    std::lock_guard lock(mu_);
    errors_[kind] = what;
}

std::string DiskMirror::error() const {
    std::lock_guard lock(mu_);
    std::string out;
    for (const std::string& e : errors_) {
        if (e.empty() || out.find(e) != std::string::npos) continue;
        if (!out.empty()) out += "; ";
        out += e;
    }
    return out;
}

bool DiskMirror::write_atomically(const std::string& name, std::string_view bytes, Kind kind) {
    std::lock_guard io(io_mu_);
    std::error_code ec;
    fs::create_directories(dir_, ec);  // it may have been removed under us
    if (ec) {  // the cause (read-only, not a directory) rather than the open's "no such file"
        fail(kind, "cannot create " + dir_.string() + ": " + ec.message());
        return false;
    }
    const fs::path final_path = dir_ / name;
    const fs::path temp_path = dir_ / ("." + name + ".tmp");
    const int fd = ::open(temp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        fail(kind, "cannot write " + temp_path.string() + ": " + std::strerror(errno));
        return false;
    }
    size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            const int e = errno;
            ::close(fd);
            ::unlink(temp_path.c_str());
            fail(kind, "cannot write " + final_path.string() + ": " + std::strerror(e));
            return false;
        }
        done += static_cast<size_t>(n);
    }
    if (::close(fd) != 0 || ::rename(temp_path.c_str(), final_path.c_str()) != 0) {
        const int e = errno;
        ::unlink(temp_path.c_str());
        fail(kind, "cannot write " + final_path.string() + ": " + std::strerror(e));
        return false;
    }
    std::lock_guard lock(mu_);
    errors_[kind].clear();
    return true;
}

void DiskMirror::write_segment(const Segment& segment) {
    if (segment.gap) return;  // a placeholder has no file
    // An fMP4 segment's init section first (once per version): a playlist naming the segment names it too.
    if (segment.init) {
        std::error_code ec;
        if (!fs::exists(dir_ / segment.init->name(), ec)) write_atomically(segment.init->name(), segment.init->data, kSegment);
    }
    write_atomically(segment.name(), segment.bytes(), kSegment);
}

void DiskMirror::write_playlist(std::string_view name, const std::string& text) {
    write_atomically(std::string(name), text, name == kMasterPlaylistName ? kMasterPlaylist : kMediaPlaylist);
}

void DiskMirror::remove_segment(const Segment& segment) {
    std::lock_guard io(io_mu_);
    std::error_code ec;
    fs::remove(dir_ / segment.name(), ec);
}

void DiskMirror::sweep(const std::set<std::string>& keep) {
    std::lock_guard io(io_mu_);
    std::error_code ec;
    for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
        const std::string name = it->path().filename().string();
        const bool ours = Segment::parse_any_name(name).has_value() || InitSection::parse_name(name).has_value() ||
                          (name.size() > 4 && name.ends_with(".tmp"));
        if (ours && !keep.count(name)) {
            std::error_code rm;
            fs::remove(it->path(), rm);
        }
    }
}

void DiskMirror::remove_all() {
    std::lock_guard io(io_mu_);
    std::error_code ec;
    fs::remove_all(dir_, ec);
}

}  // namespace hlsrelay
