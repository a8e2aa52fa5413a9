#include "store/keys.h"

#include <catch2/catch.hpp>

namespace sluice::store::test {

TEST_CASE("message keys sort by topic id, then offset numerically", "[store]") {
  CHECK(keys::message(1, 255) < keys::message(1, 256));
  CHECK(keys::message(1, UINT64_MAX) < keys::message(2, 0));
  CHECK(keys::message(0x01020304, 5).size() == 12);
  auto parsed = keys::parseMessage(keys::message(0x01020304, 0x0102030405060708ull));
  REQUIRE(parsed);
  CHECK(parsed->topic == 0x01020304u);
  CHECK(parsed->offset == 0x0102030405060708ull);
  CHECK_FALSE(keys::parseMessage("short"));
}

TEST_CASE("pending keys of a group never collide with a longer group's", "[store]") {
  // "a" and "ab": the 0x00 separator sorts "a"'s entries before "ab"'s.
  CHECK(keys::pending(1, "a", UINT64_MAX) < keys::pending(1, "ab", 0));
  CHECK(keys::pending(1, "a", 9).compare(0, keys::pendingPrefix(1, "a").size(),
                                         keys::pendingPrefix(1, "a")) == 0);
  auto parsed = keys::parsePending(keys::pending(7, "workers", 42));
  REQUIRE(parsed);
  CHECK(parsed->topic == 7);
  CHECK(parsed->group == "workers");
  CHECK(parsed->offset == 42);
}

TEST_CASE("dedup expiry keys sort by expiry time first", "[store]") {
  CHECK(keys::dedupExpiry(10, 9, "z") < keys::dedupExpiry(11, 1, "a"));
  auto parsed = keys::parseDedupExpiry(keys::dedupExpiry(1234, 5, "id-1"));
  REQUIRE(parsed);
  CHECK(parsed->expiresMs == 1234);
  CHECK(parsed->topic == 5);
  CHECK(parsed->id == "id-1");
}

}  // namespace sluice::store::test
