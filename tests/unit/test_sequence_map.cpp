// SequenceMap's shared discontinuities: renditions that publish the same output numbers end up with
// their discontinuity tags at the same numbers, whatever order they publish in.
#include "engine/sequence_map.hpp"

#include <catch2/catch.hpp>

using hlsrelay::SequenceMap;

TEST_CASE("sequence map: a break where no rendition has published yet is everyone's") {
    SequenceMap map(100, 1000);
    CHECK_FALSE(map.publish(1000, false).discontinuity);  // rendition A
    CHECK_FALSE(map.publish(1000, false).discontinuity);  // rendition B
    // A's source breaks at 1001, before anyone published it: there for A, and B tags it too.
    const auto a = map.publish(1001, true);
    CHECK(a.discontinuity);
    CHECK(a.withhold_until == 0);
    CHECK(map.publish(1001, false).discontinuity);
    // The source's own break, seen by both (a conforming ladder): one discontinuity, not two.
    CHECK(map.publish(1002, true).discontinuity);
    const auto b = map.publish(1002, true);
    CHECK(b.discontinuity);
    CHECK(b.withhold_until == 0);
    CHECK_FALSE(map.publish(1003, false).discontinuity);
}

TEST_CASE("sequence map: a rendition back behind the others moves its break to the next unpublished number") {
    SequenceMap map(0, 50);
    for (int64_t n = 50; n < 60; ++n) CHECK_FALSE(map.publish(n, false).discontinuity);  // the others, up to 59
    // The lone one reconnects at 57 (published by the others already, without a break).
    const auto late = map.publish(57, true);
    CHECK_FALSE(late.discontinuity);
    CHECK(late.withhold_until == 60);
    // What it has before 60 it publishes as gaps, without a break.
    CHECK_FALSE(map.publish(58, false).discontinuity);
    CHECK_FALSE(map.publish(59, false).discontinuity);
    // 60 is a discontinuity for whoever publishes it first, and for the rest.
    CHECK(map.publish(60, false).discontinuity);
    CHECK(map.publish(60, false).discontinuity);
    CHECK_FALSE(map.publish(61, false).discontinuity);
}

TEST_CASE("sequence map: old breaks are forgotten, recent ones kept") {
    SequenceMap map(0, 0);
    CHECK(map.publish(1, true).discontinuity);
    for (int64_t n = 2; n <= static_cast<int64_t>(SequenceMap::kDates); ++n) map.publish(n, false);
    CHECK(map.publish(1, false).discontinuity);  // still within the kept numbers
    for (int64_t n = 0; n < 10; ++n) map.publish(300 + n, false);
    CHECK_FALSE(map.publish(1, false).discontinuity);  // long gone from every playlist
}
