// A published segment's bytes in an fd-backed buffer: a memfd mapped into the process. Readers see
// them as a string_view like any other bytes; a server can send them with sendfile(2) from the fd,
// so the kernel copies page-cache pages to the socket instead of the process copying the bytes
// through sendmsg. The pages are shared memory mapped for the buffer's whole life, so they count in
// the process's RSS and PSS like heap memory. Linux only: elsewhere create() returns null and the
// engine keeps the bytes in a std::string.
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>
#include <string_view>

#ifdef __linux__
#include <sys/mman.h>
#include <unistd.h>
#endif

namespace hlsrelay {

class SegmentBytes {
public:
    // A buffer that holds at least `capacity` bytes (rounded up to whole pages), empty; null when
    // the system gives no memfd (the caller keeps its bytes in memory as before).
    static std::shared_ptr<SegmentBytes> create(std::size_t capacity) noexcept {
#ifdef __linux__
        if (capacity == 0) capacity = 1;
        const long page = ::sysconf(_SC_PAGESIZE);
        const std::size_t p = page > 0 ? static_cast<std::size_t>(page) : 4096;
        capacity = (capacity + p - 1) / p * p;
        const int fd = ::memfd_create("hlsrelay-segment", MFD_CLOEXEC);
        if (fd < 0) return nullptr;
        if (::ftruncate(fd, static_cast<off_t>(capacity)) != 0) {
            ::close(fd);
            return nullptr;
        }
        void* map = ::mmap(nullptr, capacity, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (map == MAP_FAILED) {
            ::close(fd);
            return nullptr;
        }
        try {
            return std::shared_ptr<SegmentBytes>(new SegmentBytes(fd, map, capacity));
        } catch (...) {
            ::munmap(map, capacity);
            ::close(fd);
            return nullptr;
        }
#else
        (void)capacity;
        return nullptr;
#endif
    }

    SegmentBytes(const SegmentBytes&) = delete;
    SegmentBytes& operator=(const SegmentBytes&) = delete;
    ~SegmentBytes() {
#ifdef __linux__
        ::munmap(map_, capacity_);
        ::close(fd_);
#endif
    }

    std::string_view bytes() const { return {static_cast<const char*>(map_), size_}; }
    std::size_t size() const { return size_; }
    std::size_t capacity() const { return capacity_; }
    // For sendfile(2): bytes() are the file's bytes [0, size()) (the file may be longer).
    int fd() const { return fd_; }

    // Writing, before the buffer is shared: its first `n` bytes (n <= capacity()) become bytes().
    char* data() { return static_cast<char*>(map_); }
    void resize(std::size_t n) { size_ = n <= capacity_ ? n : capacity_; }
    // Before the buffer is shared: makes its capacity `capacity` (rounded up to whole pages), keeping
    // the bytes below both sizes. Growing keeps the pages it has (only the new ones are faulted in
    // when written); shrinking gives the tail's pages back. False (the buffer unchanged) when the
    // system refuses.
    bool set_capacity(std::size_t capacity) noexcept {
#ifdef __linux__
        if (capacity == 0) capacity = 1;
        const long page = ::sysconf(_SC_PAGESIZE);
        const std::size_t p = page > 0 ? static_cast<std::size_t>(page) : 4096;
        capacity = (capacity + p - 1) / p * p;
        if (capacity == capacity_) return true;
        // The mapping never reaches past the file's end: the file grows first, or shrinks last.
        if (capacity > capacity_ && ::ftruncate(fd_, static_cast<off_t>(capacity)) != 0) return false;
        void* map = ::mremap(map_, capacity_, capacity, MREMAP_MAYMOVE);
        if (map == MAP_FAILED) {
            if (capacity > capacity_) (void)::ftruncate(fd_, static_cast<off_t>(capacity_));
            return false;
        }
        map_ = map;
        if (capacity < capacity_) (void)::ftruncate(fd_, static_cast<off_t>(capacity));  // frees the tail's pages
        capacity_ = capacity;
        if (size_ > capacity_) size_ = capacity_;
        return true;
#else
        (void)capacity;
        return false;
#endif
    }
    void assign(std::string_view b) {
        size_ = b.size() <= capacity_ ? b.size() : capacity_;
        if (size_) std::memcpy(map_, b.data(), size_);
    }

private:
    SegmentBytes(int fd, void* map, std::size_t capacity) : fd_(fd), map_(map), capacity_(capacity) {}
    int fd_;
    void* map_;
    std::size_t capacity_;
    std::size_t size_ = 0;
};

}  // namespace hlsrelay
