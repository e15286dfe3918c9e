// SegmentBytes (a mapped memfd holding a published segment) and how Resource and Window read it.
#include <hlsrelay/resource.hpp>
#include <hlsrelay/segment_bytes.hpp>
#include <hlsrelay/window.hpp>

#include <catch2/catch.hpp>

#include <fstream>
#include <string>

#ifdef __linux__
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

using namespace hlsrelay;

namespace {

#ifdef __linux__
// The process's proportional set size in kB (/proc/self/smaps_rollup), -1 if unreadable.
long pss_kb() {
    std::ifstream in("/proc/self/smaps_rollup");
    for (std::string key; in >> key;) {
        if (key == "Pss:") {
            long kb = -1;
            in >> kb;
            return kb;
        }
        std::string rest;
        std::getline(in, rest);
    }
    return -1;
}
#endif

}  // namespace

TEST_CASE("SegmentBytes holds bytes in a memfd readable through its fd") {
    auto b = SegmentBytes::create(10000);
#ifdef __linux__
    REQUIRE(b);
    CHECK(b->capacity() >= 10000);
    CHECK(b->size() == 0);
    const std::string text(9000, 'x');
    b->assign(text);
    CHECK(b->bytes() == text);
    b->data()[0] = 'y';
    CHECK(b->bytes()[0] == 'y');
    // The fd shows the same bytes (what sendfile sends).
    char c = 0;
    REQUIRE(::pread(b->fd(), &c, 1, 0) == 1);
    CHECK(c == 'y');
    struct stat st {};
    REQUIRE(::fstat(b->fd(), &st) == 0);
    CHECK(static_cast<size_t>(st.st_size) == b->capacity());
    b->resize(5);
    CHECK(b->bytes() == "yxxxx");
    const int fd = b->fd();
    b.reset();
    CHECK(::fcntl(fd, F_GETFD) == -1);  // closed with its owner
#else
    CHECK(!b);
#endif
}

#ifdef __linux__
TEST_CASE("SegmentBytes pages count in the process's PSS") {
    const long before = pss_kb();
    REQUIRE(before > 0);
    auto b = SegmentBytes::create(16 << 20);
    REQUIRE(b);
    b->assign(std::string(16 << 20, 'z'));  // every page written
    const long after = pss_kb();
    CHECK(after - before >= 15 * 1024);  // a mapped memfd is shared memory counted in full by its only mapper
}
#endif

TEST_CASE("a Resource over SegmentBytes reads its range, and a Window finds parts in it") {
    std::shared_ptr<SegmentBytes> file = SegmentBytes::create(64);
    if (!file) return;  // no memfd on this system: the engine keeps bytes in memory
    file->assign("0123456789");
    Resource r{nullptr, "video/mp2t", true};
    r.file = file;
    CHECK(r.held());
    CHECK(r.bytes() == "0123456789");
    r.offset = 3;
    r.length = 4;
    CHECK(r.bytes() == "3456");
    CHECK(r.owner() == std::static_pointer_cast<const void>(std::shared_ptr<const SegmentBytes>(file)));
    CHECK(!Resource{}.held());

    auto seg = std::make_shared<Segment>();
    seg->sequence = 1;
    seg->duration = 2;
    seg->file = file;
    seg->parts = {PartSpan{0, 4, 1, true, 10}, PartSpan{4, 6, 1, false, 11}};
    CHECK(seg->bytes() == "0123456789");
    Window w(5);
    w.push(seg, SteadyClock::now());
    const Window::PartBytes p = w.find_part(11, SteadyClock::now());
    REQUIRE(p);
    CHECK(!p.data);
    REQUIRE(p.file);
    CHECK(p.file->bytes().substr(p.offset, p.length) == "456789");
    CHECK(!w.find_part(12, SteadyClock::now()));
}
