// Segment buffers recycled engine-wide. A channel holds a dozen segments of a few hundred kB each
// (its window plus their RFC 8216 grace) and replaces one every segment duration; left to malloc,
// those large short-lived blocks fragment its heaps (several MB per channel that are free but not
// returned) or, above the mmap threshold, cost page faults and TLB shootdowns on every segment.
// Here a segment that dies hands its buffer to the pool and the next download of about that size
// reuses it, so memory stays at what the windows hold. Published segments keep their bytes in
// fd-backed buffers (SegmentBytes, a mapped memfd, for sendfile): those are recycled the same way, so
// publishing a segment costs no memfd_create/mmap once the pool holds a spare (resized in place when
// none fits: the pages it has are kept).
#pragma once

#include "hlsrelay/segment_bytes.hpp"

#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace hlsrelay {

class BufferPool {
public:
    using Clock = std::chrono::steady_clock;

    explicit BufferPool(size_t max_spares = 16) : max_spares_(max_spares) {}

    // At most this many spares (the engine scales it with its running channels).
    void set_max_spares(size_t n) {
        std::lock_guard lock(mu_);
        max_spares_ = n;
    }

    // A string whose capacity is at least `size`: the smallest spare that fits() (its old bytes still
    // in it: a caller that overwrites them need not clear it, and resizing within the old size costs
    // no zero fill), else an empty new one of exactly `size`.
    std::string take(size_t size) {
        {
            std::lock_guard lock(mu_);
            size_t best = spares_.size();
            for (size_t i = 0; i < spares_.size(); ++i) {
                const size_t cap = spares_[i].bytes.capacity();
                if (fits(cap, size) &&
                    (best == spares_.size() || cap < spares_[best].bytes.capacity()))
                    best = i;
            }
            if (best != spares_.size()) {
                std::string s = std::move(spares_[best].bytes);
                spares_[best] = std::move(spares_.back());
                spares_.pop_back();
                ++hits_;
                return s;
            }
            ++misses_;
        }
        std::string s;
        s.reserve(size);
        return s;
    }

    // A buffer nobody uses any more. Beyond max_spares the oldest spare is freed.
    void give(std::string&& s) {
        if (s.capacity() < kMinSize) return;
        std::string dropped;
        std::lock_guard lock(mu_);
        if (spares_.size() >= max_spares_) {
            dropped = std::move(spares_.front().bytes);  // freed outside the lock, at the end of the scope
            spares_.erase(spares_.begin());
        }
        spares_.push_back({std::move(s), Clock::now()});
    }

    // An fd-backed buffer with room for `size` bytes: a spare one if one fits as take() chooses;
    // else the spare nearest in size, grown or shrunk in place to `size` and an eighth of headroom
    // (the next segments of about that size fit it too: SegmentBytes::set_capacity keeps the pages
    // it has, so only the growth is new memory); else a new one of that capacity. Null when the
    // system gives none.
    std::shared_ptr<SegmentBytes> take_file(size_t size) {
        const size_t wanted = size + size / 8;
        std::shared_ptr<SegmentBytes> nearest;
        {
            std::lock_guard lock(mu_);
            size_t best = file_spares_.size(), near = file_spares_.size();
            auto distance = [&](size_t i) {
                const size_t cap = file_spares_[i].bytes->capacity();
                return cap > wanted ? cap - wanted : wanted - cap;
            };
            for (size_t i = 0; i < file_spares_.size(); ++i) {
                const size_t cap = file_spares_[i].bytes->capacity();
                if (fits(cap, size) &&
                    (best == file_spares_.size() || cap < file_spares_[best].bytes->capacity()))
                    best = i;
                if (near == file_spares_.size() || distance(i) < distance(near)) near = i;
            }
            const size_t pick = best != file_spares_.size() ? best : near;
            if (pick != file_spares_.size()) {
                std::shared_ptr<SegmentBytes> f = std::move(file_spares_[pick].bytes);
                file_spares_[pick] = std::move(file_spares_.back());
                file_spares_.pop_back();
                if (pick == best) {
                    ++file_hits_;
                    f->resize(0);
                    return f;
                }
                nearest = std::move(f);
            }
            ++(nearest ? file_resizes_ : file_misses_);
        }
        // Resized (system calls) outside the lock; a refusal frees it and makes a new one.
        if (nearest && nearest->set_capacity(wanted)) {
            nearest->resize(0);
            return nearest;
        }
        return SegmentBytes::create(wanted);
    }

    // An fd-backed buffer nobody uses any more (only the caller holds it). Beyond max_spares the
    // oldest spare is freed (unmapped and closed).
    void give_file(std::shared_ptr<SegmentBytes>&& f) {
        if (!f || f.use_count() != 1) return;
        std::shared_ptr<SegmentBytes> dropped;
        std::lock_guard lock(mu_);
        if (file_spares_.size() >= max_spares_) {
            dropped = std::move(file_spares_.front().bytes);
            file_spares_.erase(file_spares_.begin());
        }
        file_spares_.push_back({std::move(f), Clock::now()});
    }

    // Frees the spares nobody took within `max_age`: a spare that fits no download is only memory.
    void trim(Clock::duration max_age) {
        std::vector<std::string> dropped;
        std::vector<std::shared_ptr<SegmentBytes>> dropped_files;  // unmapped outside the lock too
        std::lock_guard lock(mu_);
        const auto cutoff = Clock::now() - max_age;
        for (size_t i = 0; i < spares_.size();) {
            if (spares_[i].since < cutoff) {
                dropped.push_back(std::move(spares_[i].bytes));
                spares_[i] = std::move(spares_.back());
                spares_.pop_back();
            } else {
                ++i;
            }
        }
        for (size_t i = 0; i < file_spares_.size();) {
            if (file_spares_[i].since < cutoff) {
                dropped_files.push_back(std::move(file_spares_[i].bytes));
                file_spares_[i] = std::move(file_spares_.back());
                file_spares_.pop_back();
            } else {
                ++i;
            }
        }
    }

    size_t spares() const {
        std::lock_guard lock(mu_);
        return spares_.size();
    }
    size_t file_spares() const {
        std::lock_guard lock(mu_);
        return file_spares_.size();
    }
    size_t file_hits() const {
        std::lock_guard lock(mu_);
        return file_hits_;
    }
    size_t file_misses() const {
        std::lock_guard lock(mu_);
        return file_misses_;
    }
    size_t file_resizes() const {  // takes served by a spare resized in place
        std::lock_guard lock(mu_);
        return file_resizes_;
    }
    size_t hits() const {
        std::lock_guard lock(mu_);
        return hits_;
    }
    size_t misses() const {
        std::lock_guard lock(mu_);
        return misses_;
    }

    static constexpr size_t kMinSize = 16 * 1024;  // small buffers are malloc's business

    // A spare of `capacity` serves a request for `size` bytes when it wastes at most a quarter of
    // itself. Segment sizes swing by a third and more within a channel (scene changes, a looped
    // set), and spares circulate between channels: with an eighth, a third of the takes at 2,000
    // channels found no fitting spare among hundreds and paid fresh pages (allocation, page
    // faults, the kernel's zeroing) for a buffer the pool had in a slightly other size.
    static constexpr bool fits(size_t capacity, size_t size) { return capacity >= size && capacity - size <= capacity / 4; }

private:
    struct Spare {
        std::string bytes;
        Clock::time_point since;
    };
    mutable std::mutex mu_;
    size_t max_spares_;
    std::vector<Spare> spares_;
    size_t hits_ = 0, misses_ = 0;
    struct FileSpare {
        std::shared_ptr<SegmentBytes> bytes;
        Clock::time_point since;
    };
    std::vector<FileSpare> file_spares_;
    size_t file_hits_ = 0, file_misses_ = 0, file_resizes_ = 0;
};

}  // namespace hlsrelay
