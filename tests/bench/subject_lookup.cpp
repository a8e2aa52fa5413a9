// subject_lookup: the latency of one SubjectRouter lookup (a publish batch routes its subject
// once), per lookup, with 10,000 patterns over 1,000 topics.
//
//   subject_lookup [--patterns N] [--lookups N]
//
// Patterns (10 per topic, a mix a deployment would have): exact subjects
// (`region<r>.orders.<k>.created`), `*` in the middle (`region<r>.*.<k>.paid`), trailing `>`
// (`tenant<t>.>`), and a few broad ones (`*.orders.>`). Subjects drawn from hits and misses.
// Cases: the cache off, over 100,000 subjects and over a hot set of 100 (which shows the cost
// of the work itself, with the trie in cache); the default cache with the hot set; the cache
// with 100,000 distinct subjects (mostly misses of the cache); and, for comparison, the
// brute-force matcher over every pattern. The subject is copied into a buffer before the clock
// starts, so it is in cache as in the broker (where validation has just read it). Each lookup is
// timed on its own with steady_clock (whose own cost, ~20-30 ns here, is included); prints
// p50 / p99 / p99.9 / max in ns.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "core/subjects.h"

namespace {

using Clock = std::chrono::steady_clock;
using sluice::TopicId;
using sluice::core::SubjectRouter;

struct Figures {
  double p50, p99, p999, max;
};

template <typename Lookup>
Figures measure(const std::vector<std::string>& subjects, size_t lookups, std::mt19937& rng,
                Lookup&& lookup) {
  std::vector<double> ns;
  ns.reserve(lookups);
  size_t sink = 0;
  std::string subject;
  for (size_t i = 0; i < lookups; ++i) {
    // Copied into one buffer first, so the subject is in cache when the clock starts, as in the
    // broker, where validateSubject has just read every byte of it from the request.
    subject.assign(subjects[rng() % subjects.size()]);
    auto start = Clock::now();
    sink += lookup(subject);
    auto end = Clock::now();
    ns.push_back(std::chrono::duration<double, std::nano>(end - start).count());
  }
  if (sink == 42) std::printf(" ");  // Keeps the lookups from being optimized away.
  std::sort(ns.begin(), ns.end());
  auto at = [&](double q) {
    return ns[std::min(ns.size() - 1, static_cast<size_t>(q * ns.size()))];
  };
  return {at(0.50), at(0.99), at(0.999), ns.back()};
}

void print(const char* name, const Figures& f) {
  std::printf("%-44s %8.0f %8.0f %8.0f %9.0f\n", name, f.p50, f.p99, f.p999, f.max);
}

}  // namespace

int main(int argc, char** argv) {
  size_t patternCount = 10000;
  size_t lookups = 1000000;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string arg = argv[i];
    size_t value = std::strtoull(argv[i + 1], nullptr, 10);
    if (arg == "--patterns") {
      patternCount = value;
    } else if (arg == "--lookups") {
      lookups = value;
    } else {
      std::fprintf(stderr, "usage: subject_lookup [--patterns N] [--lookups N]\n");
      return 2;
    }
  }
  const size_t topics = std::max<size_t>(1, patternCount / 10);
  std::mt19937 rng(42);
  std::vector<std::vector<std::string>> byTopic(topics);
  std::vector<std::string> all;
  for (size_t t = 0; t < topics; ++t) {
    for (size_t k = 0; k < 10 && all.size() < patternCount; ++k) {
      std::string r = std::to_string(rng() % 50);
      std::string n = std::to_string(t * 10 + k);
      std::string p;
      switch (k % 10) {
        case 0:
        case 1:
        case 2:
        case 3:
          p = "region" + r + ".orders." + n + ".created";
          break;
        case 4:
        case 5:
        case 6:
          p = "region" + r + ".*." + n + ".paid";
          break;
        case 7:
        case 8:
          p = "tenant" + n + ".>";
          break;
        default:
          p = "*.orders." + n + ".>";
          break;
      }
      byTopic[t].push_back(p);
      all.push_back(p);
    }
  }
  SubjectRouter uncached(0);
  SubjectRouter cached;  // The broker's default cache.
  for (size_t t = 0; t < topics; ++t) {
    uncached.set(static_cast<TopicId>(t + 1), "topic" + std::to_string(t), byTopic[t]);
    cached.set(static_cast<TopicId>(t + 1), "topic" + std::to_string(t), byTopic[t]);
  }
  auto subjectFor = [&](size_t i) {
    std::string n = std::to_string(rng() % (topics * 10));
    std::string r = std::to_string(rng() % 50);
    switch (i % 4) {
      case 0:
        return "region" + r + ".orders." + n + ".created";
      case 1:
        return "region" + r + ".billing." + n + ".paid";
      case 2:
        return "tenant" + n + ".events.login";
      default:
        return "region" + r + ".orders.miss" + n + ".shipped";  // Captured by nothing.
    }
  };
  std::vector<std::string> hot;
  for (size_t i = 0; i < 100; ++i)
    hot.push_back(subjectFor(i));
  std::vector<std::string> wide;
  for (size_t i = 0; i < 100000; ++i)
    wide.push_back(subjectFor(i));
  size_t hits = 0;
  for (const std::string& s : wide)
    hits += uncached.route(s).empty() ? 0 : 1;

  std::printf(
      "%zu patterns over %zu topics (%zu trie nodes); %zu lookups per case; %zu of 100,000 wide "
      "subjects captured\n",
      all.size(), topics, uncached.nodes(), lookups, hits);
  std::printf("%-44s %8s %8s %8s %9s\n", "case (ns per lookup)", "p50", "p99", "p99.9", "max");
  auto routeWith = [](SubjectRouter& router) {
    return [&router](const std::string& s) { return router.route(s).size(); };
  };
  print("trie, cache off, 100,000 subjects", measure(wide, lookups, rng, routeWith(uncached)));
  print("trie, cache off, hot set of 100 subjects",
        measure(hot, lookups, rng, routeWith(uncached)));
  print("trie + cache, hot set of 100 subjects", measure(hot, lookups, rng, routeWith(cached)));
  print("trie + cache, 100,000 subjects", measure(wide, lookups, rng, routeWith(cached)));
  print("brute force over every pattern (baseline)",
        measure(wide, std::min<size_t>(lookups, 2000), rng, [&](const std::string& s) {
          size_t n = 0;
          for (const std::string& p : all)
            n += sluice::core::subjectMatches(p, s) ? 1 : 0;
          return n;
        }));
  return 0;
}
