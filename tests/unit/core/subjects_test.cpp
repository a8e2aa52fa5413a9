// Subjects and subject patterns (core/subjects.h): the grammar, matching, and SubjectRouter
// against the brute-force matcher.

#include "core/subjects.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

using namespace sluice;
using namespace sluice::core;
using Catch::Matchers::Contains;

namespace {

struct MatchCase {
  const char* pattern;
  const char* subject;
  bool matches;
};

// The edge cases NATS documents for its subjects, and the ones our grammar adds.
const MatchCase kMatchCases[] = {
    {"foo", "foo", true},
    {"foo", "foo.bar", false},
    {"foo", "fo", false},
    {"foo.bar", "foo.bar", true},
    {"foo.bar", "foo.baz", false},
    {"foo.*", "foo.bar", true},
    {"foo.*", "foo", false},  // `*` is exactly one token.
    {"foo.*", "foo.bar.baz", false},
    {"*.bar", "foo.bar", true},
    {"*.bar", "bar", false},
    {"foo.*.baz", "foo.bar.baz", true},
    {"foo.*.baz", "foo.bar.qux", false},
    {"foo.*.baz", "foo.baz", false},
    {"*", "foo", true},
    {"*", "foo.bar", false},
    {"*.*", "foo.bar", true},
    {"*.*", "foo", false},
    {"*.*", "foo.bar.baz", false},
    {"foo.>", "foo.bar", true},
    {"foo.>", "foo.bar.baz", true},
    {"foo.>", "foo", false},  // `>` is one or more tokens.
    {"foo.>", "bar.foo", false},
    {">", "foo", true},
    {">", "foo.bar.baz", true},
    {"*.>", "foo", false},
    {"*.>", "foo.bar", true},
    {"foo.*.>", "foo.bar", false},
    {"foo.*.>", "foo.bar.baz", true},
    {"orders.*.created", "orders.eu.created", true},
    {"orders.*.created", "orders.eu.paid", false},
    {"Orders.>", "orders.eu", false},  // Case matters.
    {"a-b_c.>", "a-b_c.x", true},
    {"foo.bar", "foo.barbaz", false},  // Whole tokens, not prefixes.
    {"foo.b", "foo.bar", false},
    {"foo.*", "foob.ar", false},
};

}  // namespace

TEST_CASE("subjects match patterns token by token, as NATS subjects do", "[subjects]") {
  for (const MatchCase& c : kMatchCases) {
    INFO("pattern " << c.pattern << " subject " << c.subject);
    REQUIRE_FALSE(validateSubjectPattern(c.pattern).has_value());
    REQUIRE_FALSE(validateSubject(c.subject).has_value());
    CHECK(subjectMatches(c.pattern, c.subject) == c.matches);
    CHECK(anySubjectMatches({"nothing.here", c.pattern}, c.subject) == c.matches);
    // The router agrees with the matcher, cache on and off.
    for (size_t cache : {size_t{0}, size_t{4}}) {
      SubjectRouter router(cache);
      router.set(7, "t", {c.pattern});
      std::vector<TopicId> expected;
      if (c.matches) expected.push_back(7);
      CHECK(router.route(c.subject) == expected);
      CHECK(router.route(c.subject) == expected);  // Again, from the cache.
    }
  }
  CHECK_FALSE(anySubjectMatches({}, "foo"));
}

TEST_CASE("subjects are validated with the rule and what was received", "[subjects]") {
  struct Bad {
    std::string subject;
    const char* says;
  };
  const std::vector<Bad> bad = {
      {"", "empty subject"},
      {".foo", "empty token at character 1"},
      {"foo.", "empty token at character 5"},
      {"foo..bar", "empty token at character 5"},
      {"foo.*", "wildcard at character 5"},
      {"foo.>", "wildcard"},
      {"fo*o", "wildcard"},
      {"foo bar", "invalid character at character 4"},
      {"foo/bar", "invalid character"},
      {std::string("fo\0o", 4), "\\x00"},
      {std::string(201, 'a'), "got 201 characters"},
  };
  for (const Bad& b : bad) {
    INFO("subject " << b.subject);
    auto problem = validateSubject(b.subject);
    REQUIRE(problem.has_value());
    CHECK_THAT(*problem, Contains("subject must be 1-200 characters"));
    CHECK_THAT(*problem, Contains(b.says));
  }
  for (const char* good : {"foo", "foo.bar", "a-b_c.D9", "x"}) {
    CHECK_FALSE(validateSubject(good).has_value());
  }
  CHECK_FALSE(validateSubject(std::string(200, 'a')).has_value());
}

TEST_CASE("patterns allow whole-token wildcards only, and '>' last", "[subjects]") {
  struct Bad {
    std::string pattern;
    const char* says;
  };
  const std::vector<Bad> bad = {
      {"", "empty subject pattern"},
      {"foo..*", "empty token"},
      {".>", "empty token at character 1"},
      {"foo.>.bar", "'>' before its last token"},
      {">.>", "'>' before its last token"},
      {"foo*", "partial wildcard \"foo*\""},
      {"*foo", "partial wildcard"},
      {"a*b", "partial wildcard"},
      {"foo.bar>", "partial wildcard \"bar>\" at character 8"},
      {"**", "partial wildcard"},
      {"foo.#", "invalid character"},
      {std::string(201, 'a'), "got 201 characters"},
  };
  for (const Bad& b : bad) {
    INFO("pattern " << b.pattern);
    auto problem = validateSubjectPattern(b.pattern);
    REQUIRE(problem.has_value());
    CHECK_THAT(*problem, Contains("subject pattern must be 1-200 characters"));
    CHECK_THAT(*problem, Contains(b.says));
  }
  for (const char* good : {"foo", "*", ">", "*.*", "foo.*.bar", "foo.>", "*.>", "a.*.>"}) {
    CHECK_FALSE(validateSubjectPattern(good).has_value());
  }
}

TEST_CASE("a pattern list is limited and without duplicates", "[subjects]") {
  CHECK_FALSE(validateSubjectPatterns({}, 2).has_value());
  CHECK_FALSE(validateSubjectPatterns({"a", "b"}, 2).has_value());
  auto many = validateSubjectPatterns({"a", "b", "c"}, 2);
  REQUIRE(many.has_value());
  CHECK_THAT(*many, Contains("at most 2 subject patterns, got 3"));
  auto twice = validateSubjectPatterns({"a.>", "b", "a.>"}, 5);
  REQUIRE(twice.has_value());
  CHECK_THAT(*twice, Contains("\"a.>\" twice"));
  auto invalid = validateSubjectPatterns({"a", "b*"}, 5);
  REQUIRE(invalid.has_value());
  CHECK_THAT(*invalid, Contains("partial wildcard"));
}

TEST_CASE("the router answers every capturing topic once, ascending", "[subjects]") {
  SubjectRouter router;
  router.set(3, "orders", {"orders.>", "orders.*.created"});  // Overlapping: still once.
  router.set(1, "audit", {">"});
  router.set(2, "payments", {});  // Its own name only.
  CHECK(router.topics() == 3);
  CHECK(router.patterns() == 3);
  CHECK(router.route("orders.eu.created") == std::vector<TopicId>{1, 3});
  CHECK(router.route("payments") == std::vector<TopicId>{1, 2});
  CHECK(router.route("payments.x") == std::vector<TopicId>{1});
  CHECK(router.route("orders") == std::vector<TopicId>{1});

  // Replacing patterns changes the answer at once, past the cache.
  router.set(3, "orders", {"orders"});
  CHECK(router.patterns() == 2);
  CHECK(router.route("orders.eu.created") == std::vector<TopicId>{1});
  CHECK(router.route("orders") == std::vector<TopicId>{1, 3});
  router.remove(1);
  CHECK(router.route("orders") == std::vector<TopicId>{3});
  CHECK(router.route("anything").empty());
  router.remove(1);  // Twice: nothing.
  router.remove(3);
  router.remove(2);
  CHECK(router.topics() == 0);
  CHECK(router.patterns() == 0);
  CHECK(router.route("payments").empty());
  router.set(4, "x", {"a.*"});
  router.clear();
  CHECK(router.route("a.b").empty());
}

TEST_CASE("the router agrees with the brute-force matcher on random patterns", "[subjects]") {
  std::mt19937 rng(1234);
  const std::vector<std::string> tokens = {"a", "b", "c", "orders", "eu"};
  auto subject = [&] {
    std::string out;
    size_t n = 1 + rng() % 4;
    for (size_t i = 0; i < n; ++i)
      out += (i ? "." : "") + tokens[rng() % tokens.size()];
    return out;
  };
  auto pattern = [&] {
    std::string out;
    size_t n = 1 + rng() % 4;
    for (size_t i = 0; i < n; ++i) {
      uint32_t pick = rng() % 10;
      std::string token = pick < 2 ? "*" : tokens[rng() % tokens.size()];
      if (i + 1 == n && pick == 9) token = ">";
      out += (i ? "." : "") + token;
    }
    return out;
  };
  std::vector<std::vector<std::string>> patterns(60);
  SubjectRouter cached(16);  // Small: its sets evict often.
  SubjectRouter uncached(0);
  auto setTopic = [&](TopicId id) {
    std::vector<std::string> list;
    size_t n = rng() % 4;
    for (size_t i = 0; i < n; ++i) {
      std::string p = pattern();
      if (std::find(list.begin(), list.end(), p) == list.end()) list.push_back(p);
    }
    REQUIRE_FALSE(validateSubjectPatterns(list, kMaxPatternsPerTopic).has_value());
    patterns[id] = list;
    std::string name = "topic" + std::to_string(id);
    cached.set(id, name, list);
    uncached.set(id, name, list);
  };
  for (TopicId id = 1; id < patterns.size(); ++id)
    setTopic(id);
  std::vector<std::string> subjects;
  for (int i = 0; i < 40; ++i)
    subjects.push_back(subject());
  for (TopicId id = 1; id < patterns.size(); ++id)
    subjects.push_back("topic" + std::to_string(id));
  for (int step = 0; step < 3000; ++step) {
    if (step % 100 == 99) {  // Change or remove a topic now and then.
      TopicId id = 1 + rng() % (patterns.size() - 1);
      if (rng() % 3 == 0) {
        cached.remove(id);
        uncached.remove(id);
        patterns[id] = {"\x01gone"};
      } else {
        setTopic(id);
      }
    }
    const std::string& s = subjects[rng() % subjects.size()];
    std::vector<TopicId> expected;
    for (TopicId id = 1; id < patterns.size(); ++id) {
      const auto& list = patterns[id];
      if (!list.empty() && list[0] == "\x01gone") continue;
      bool hit = list.empty() ? s == "topic" + std::to_string(id) : anySubjectMatches(list, s);
      if (hit) expected.push_back(id);
    }
    INFO("subject " << s << " step " << step);
    REQUIRE(uncached.route(s) == expected);
    REQUIRE(cached.route(s) == expected);
  }
}

TEST_CASE("the router's tables grow with patterns and shrink back to the root", "[subjects]") {
  // Enough named edges to grow the edge table many times, long tokens (past the bytes kept in
  // an edge) beside short ones, then removal in a shuffled order: every answer stays right
  // while edges move back over the holes, and nothing is left behind.
  SubjectRouter router(0);
  const std::string longToken(60, 'x');
  auto patternsOf = [&](TopicId id) {
    std::string n = std::to_string(id);
    return std::vector<std::string>{"t" + n + ".a", "t" + n + "." + longToken + n, "*.k" + n + ".>",
                                    longToken + ".k" + n};
  };
  const TopicId topics = 400;
  for (TopicId id = 1; id <= topics; ++id)
    router.set(id, "topic" + std::to_string(id), patternsOf(id));
  CHECK(router.patterns() == 4 * topics);
  std::vector<TopicId> order;
  for (TopicId id = 1; id <= topics; ++id)
    order.push_back(id);
  std::shuffle(order.begin(), order.end(), std::mt19937(7));
  std::vector<bool> live(topics + 1, true);
  auto check = [&](TopicId id) {
    std::string n = std::to_string(id);
    std::vector<TopicId> one;
    if (live[id]) one.push_back(id);
    INFO("topic " << id);
    CHECK(router.route("t" + n + ".a") == one);
    CHECK(router.route("t" + n + "." + longToken + n) == one);
    CHECK(router.route("t" + n + "." + longToken + n + "y").empty());  // Same first bytes.
    CHECK(router.route("any.k" + n + ".b.c") == one);
    CHECK(router.route(longToken + ".k" + n) == one);
  };
  for (size_t i = 0; i < order.size(); ++i) {
    router.remove(order[i]);
    live[order[i]] = false;
    if (i % 37 == 0) {
      for (TopicId id = 1; id <= topics; ++id)
        check(id);
    }
  }
  CHECK(router.topics() == 0);
  CHECK(router.nodes() == 1);  // Only the root: every emptied node was pruned.
  for (TopicId id = 1; id <= topics; ++id)
    router.set(id, "topic" + std::to_string(id), patternsOf(id));  // Reuses freed nodes.
  for (TopicId id = 1; id <= topics; ++id) {
    live[id] = true;
    check(id);
  }
}
