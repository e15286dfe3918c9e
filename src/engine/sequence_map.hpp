// The numbering shared by the renditions of a presentation: output media sequence number = source
// media sequence number + one channel-wide offset, so the same output number covers the same time
// span in every rendition (the source's renditions are numbered alike in a conforming ladder). All
// renditions start at the same source number (chosen from the highest video variant's live edge);
// an origin that restarts its numbering is rebased once for all of them.
#pragma once

#include <algorithm>
#include <cstdint>
#include <mutex>

namespace hlsrelay {

class SequenceMap {
public:
    struct Mapping {
        int64_t start = 0;   // the source number every rendition starts at (in this epoch)
        int64_t offset = 0;  // output = source + offset
        int64_t epoch = 0;   // rises with every rebase
    };

    SequenceMap(int64_t source_start, int64_t output_start)
        : mapping_{source_start, output_start - source_start, 0}, next_output_(output_start) {}

    Mapping current() const {
        std::lock_guard lock(mu_);
        return mapping_;
    }

    // A rendition that knew epoch `seen` saw the source's numbering go back, and would go on at
    // source number `proposed`. The first one to report a restart sets the new mapping (its proposal,
    // numbered after everything any rendition published); the others take that mapping.
    Mapping rebase(int64_t seen, int64_t proposed) {
        std::lock_guard lock(mu_);
        if (seen == mapping_.epoch) {
            ++mapping_.epoch;
            mapping_.start = proposed;
            mapping_.offset = next_output_ - proposed;
        }
        return mapping_;
    }

    // A rendition published output numbers up to `next` - 1.
    void published(int64_t next) {
        std::lock_guard lock(mu_);
        next_output_ = std::max(next_output_, next);
    }

private:
    mutable std::mutex mu_;
    Mapping mapping_;
    int64_t next_output_;
};

}  // namespace hlsrelay
