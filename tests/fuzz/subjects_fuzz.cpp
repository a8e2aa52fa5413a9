// libFuzzer target: the subject and pattern grammar and the router (broker/src/core/subjects.h).
//
// The input is lines: the first is a subject, each later one a pattern list of one topic
// (patterns separated by spaces; an empty line: a topic that captures its own name). Beyond
// "no crash, no sanitizer report": an accepted subject or pattern obeys the stated grammar and
// a rejection carries a message; a valid subject matches itself as a pattern; the router, with
// its cache and without, answers exactly the topics the brute-force matcher finds, before and
// after a topic is removed.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/subjects.h"
#include "fuzz_support.h"

namespace {

using namespace sluice;
using fuzz::check;

std::vector<std::string_view> split(std::string_view text, char at) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t end = text.find(at, start);
    out.push_back(text.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) return out;
    start = end + 1;
  }
}

bool tokenChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

// The grammar, stated again independently of subjects.cpp.
bool grammarHolds(std::string_view text, bool wild) {
  if (text.empty() || text.size() > core::kMaxSubjectLength) return false;
  auto tokens = split(text, '.');
  for (size_t i = 0; i < tokens.size(); ++i) {
    std::string_view token = tokens[i];
    if (token.empty()) return false;
    if (wild && token == "*") continue;
    if (wild && token == ">" && i + 1 == tokens.size()) continue;
    for (char c : token) {
      if (!tokenChar(c)) return false;
    }
  }
  return true;
}

std::vector<TopicId> bruteForce(const std::vector<std::vector<std::string>>& topics,
                                std::string_view subject) {
  std::vector<TopicId> out;
  for (size_t i = 0; i < topics.size(); ++i) {
    const std::string name = "t" + std::to_string(i);
    bool hit = topics[i].empty() ? subject == name : core::anySubjectMatches(topics[i], subject);
    if (hit) out.push_back(static_cast<TopicId>(i + 1));
  }
  return out;
}

void writeSeeds(const std::string& dir) {
  fuzz::writeSeeds(dir, {{'o', "rders.eu.created\norders.>\n>\norders.*.created orders.*.paid"},
                         {'t', "0\n\nt0\n*"},
                         {'a', ".b.c\na.*.c a.> *.*.*\nb.>\na.b.c.d"},
                         {'f', "oo\nfoo.*\nfoo.>\n*.>"},
                         {'b', "ad..subject\na*b\n>.x\nok"}});
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::writeSeedsIfAsked(writeSeeds);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 4096) return 0;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto lines = split(text, '\n');
  std::string_view subject = lines[0];

  auto subjectProblem = core::validateSubject(subject);
  check(subjectProblem.has_value() != grammarHolds(subject, false));
  if (subjectProblem) check(!subjectProblem->empty());
  auto asPattern = core::validateSubjectPattern(subject);
  check(asPattern.has_value() != grammarHolds(subject, true));
  if (!subjectProblem) {
    check(!asPattern);
    check(core::subjectMatches(subject, subject));
    check(core::subjectMatches(">", subject));
  }

  std::vector<std::vector<std::string>> topics;
  for (size_t i = 1; i < lines.size() && topics.size() < 64; ++i) {
    std::vector<std::string> patterns;
    if (!lines[i].empty()) {
      for (std::string_view p : split(lines[i], ' ')) {
        auto problem = core::validateSubjectPattern(p);
        check(problem.has_value() != grammarHolds(p, true));
        if (problem) check(!problem->empty());
        patterns.emplace_back(p);
      }
    }
    if (core::validateSubjectPatterns(patterns, core::kMaxPatternsPerTopic)) continue;
    topics.push_back(std::move(patterns));
  }
  if (subjectProblem) return 0;

  core::SubjectRouter cached(2);
  core::SubjectRouter uncached(0);
  for (size_t i = 0; i < topics.size(); ++i) {
    const std::string name = "t" + std::to_string(i);
    cached.set(static_cast<TopicId>(i + 1), name, topics[i]);
    uncached.set(static_cast<TopicId>(i + 1), name, topics[i]);
  }
  const auto expected = bruteForce(topics, subject);
  check(uncached.route(subject) == expected);
  check(cached.route(subject) == expected);
  check(cached.route(subject) == expected);
  for (std::string_view other : {std::string_view("t0"), std::string_view("a.b")})
    check(cached.route(other) == uncached.route(other));
  if (!topics.empty()) {
    // Removing the first topic: the rest answer as before, pruning left no trace of it.
    cached.remove(1);
    uncached.remove(1);
    std::vector<TopicId> rest;
    for (TopicId id : expected) {
      if (id != 1) rest.push_back(id);
    }
    check(uncached.route(subject) == rest);
    check(cached.route(subject) == rest);
  }
  return 0;
}
