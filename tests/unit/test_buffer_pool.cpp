// BufferPool (src/common/buffer_pool.hpp): which spare a take gets, what it keeps, and its bounds.
#include "common/buffer_pool.hpp"

#include <catch2/catch.hpp>

#include <cstring>
#include <string>

#ifdef __linux__
#include <sys/stat.h>
#include <unistd.h>
#endif

using namespace hlsrelay;

namespace {
std::string filled(size_t size, char c) { return std::string(size, c); }
}  // namespace

TEST_CASE("buffer pool: a spare serves sizes down to three quarters of its capacity") {
    CHECK(BufferPool::fits(400'000, 400'000));
    CHECK(BufferPool::fits(400'000, 300'000));
    CHECK_FALSE(BufferPool::fits(400'000, 299'999));  // would waste more than a quarter
    CHECK_FALSE(BufferPool::fits(400'000, 400'001));  // too small

    BufferPool pool;
    std::string spare = filled(400'000, 'x');
    const size_t cap = spare.capacity();
    const char* storage = spare.data();
    pool.give(std::move(spare));
    REQUIRE(pool.spares() == 1);

    // Too small a request leaves the spare where it is: a new buffer of exactly that size.
    std::string small = pool.take(cap / 2);
    CHECK(small.capacity() >= cap / 2);
    CHECK(small.data() != storage);
    CHECK(pool.spares() == 1);
    CHECK(pool.misses() == 1);

    // A request it fits gets it, old bytes and all (resizing down to the request fills nothing).
    std::string got = pool.take(cap - cap / 5);
    CHECK(got.data() == storage);
    CHECK(got.size() == 400'000);
    CHECK(got[0] == 'x');
    CHECK(pool.hits() == 1);
    CHECK(pool.spares() == 0);
}

TEST_CASE("buffer pool: the smallest spare that fits is taken, small buffers are not kept") {
    BufferPool pool;
    pool.give(filled(500'000, 'b'));
    pool.give(filled(420'000, 'a'));
    pool.give(filled(BufferPool::kMinSize / 2, 's'));  // malloc's business
    CHECK(pool.spares() == 2);
    const std::string got = pool.take(400'000);
    CHECK(got[0] == 'a');
    CHECK(pool.take(400'000)[0] == 'b');
    CHECK(pool.spares() == 0);
}

TEST_CASE("buffer pool: at most max_spares are kept, the oldest go first, trim frees old ones") {
    BufferPool pool(2);
    pool.give(filled(100'000, '1'));
    pool.give(filled(100'000, '2'));
    pool.give(filled(100'000, '3'));
    CHECK(pool.spares() == 2);
    CHECK(pool.take(100'000)[0] != '1');
    pool.trim(std::chrono::hours(1));
    CHECK(pool.spares() == 1);  // young enough to stay
    pool.trim(std::chrono::seconds(0));
    CHECK(pool.spares() == 0);
}

#ifdef __linux__
TEST_CASE("buffer pool: fd-backed buffers are reused when they fit and only when nobody holds them") {
    BufferPool pool;
    auto file = pool.take_file(300'000);
    REQUIRE(file);
    CHECK(file->capacity() >= 300'000 + 300'000 / 8);  // an eighth of headroom for the next ones
    file->assign(filled(300'000, 'f'));
    const int fd = file->fd();
    auto held = file;  // still read by someone: not a spare
    pool.give_file(std::move(file));
    CHECK(pool.file_spares() == 0);
    file.reset();
    pool.give_file(std::move(held));
    CHECK(pool.file_spares() == 1);

    // Smaller by a fifth still fits; the buffer comes back empty, its pages already there.
    auto again = pool.take_file(260'000);
    REQUIRE(again);
    CHECK(again->fd() == fd);
    CHECK(again->size() == 0);
    CHECK(pool.file_hits() == 1);
    pool.give_file(std::move(again));

    // Far smaller: no spare fits, so the nearest one is shrunk in place (its tail's pages freed).
    auto other = pool.take_file(100'000);
    REQUIRE(other);
    CHECK(other->fd() == fd);
    CHECK(other->capacity() >= 100'000 + 100'000 / 8);
    CHECK(other->capacity() < 200'000);
    CHECK(other->size() == 0);
    CHECK(pool.file_resizes() == 1);
    CHECK(pool.file_misses() == 1);
    // With no spare at all: a new one.
    auto fresh = pool.take_file(100'000);
    REQUIRE(fresh);
    CHECK(fresh->fd() != fd);
    CHECK(pool.file_misses() == 2);
}

TEST_CASE("segment bytes: the capacity changes in place, keeping the bytes below both sizes") {
    auto b = SegmentBytes::create(10'000);
    REQUIRE(b);
    b->assign(filled(10'000, 'q'));
    REQUIRE(b->set_capacity(3'000'000));
    CHECK(b->capacity() >= 3'000'000);
    CHECK(b->size() == 10'000);
    CHECK(b->bytes() == filled(10'000, 'q'));
    std::memset(b->data() + 10'000, 'r', 3'000'000 - 10'000);  // the grown part is writable
    b->resize(3'000'000);
    CHECK(b->bytes().back() == 'r');
    // The fd sees what the mapping holds (sendfile reads it).
    char c = 0;
    CHECK(::pread(b->fd(), &c, 1, 2'999'999) == 1);
    CHECK(c == 'r');

    REQUIRE(b->set_capacity(5'000));
    CHECK(b->capacity() < 10'000);
    CHECK(b->size() == b->capacity());  // cut to what is left
    CHECK(b->bytes().substr(0, 5'000) == filled(5'000, 'q'));
    struct stat st {};
    REQUIRE(::fstat(b->fd(), &st) == 0);
    CHECK(static_cast<size_t>(st.st_size) == b->capacity());
}
#endif
