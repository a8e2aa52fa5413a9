#pragma once

// Subjects and the patterns topics capture them with, in the style of NATS subjects and AMQP
// topic exchanges. A subject is a dot-separated list of tokens of [A-Za-z0-9_-] (the topic name
// rule); a pattern is a subject in which a token may be `*` (exactly one token) or, as the last
// token only, `>` (one or more trailing tokens). `a*b` and `a>` are invalid: a wildcard is a
// whole token or nothing.

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/records.h"

namespace sluice::core {

constexpr size_t kMaxSubjectLength = 200;
constexpr size_t kMaxPatternsPerTopic = 32;
constexpr size_t kMaxPatternsPerGroup = 32;

// nullopt when valid, else the rule and what was received.
std::optional<std::string> validateSubject(std::string_view subject);
std::optional<std::string> validateSubjectPattern(std::string_view pattern);
// Each pattern valid, at most `limit` of them, no duplicates.
std::optional<std::string> validateSubjectPatterns(const std::vector<std::string>& patterns,
                                                   size_t limit);

// Whether a valid pattern matches a valid subject.
bool subjectMatches(std::string_view pattern, std::string_view subject);
bool anySubjectMatches(const std::vector<std::string>& patterns, std::string_view subject);

// Which topics capture a subject. A token trie over every topic's patterns (a topic with none
// captures its own name), with a bounded cache of recent answers in front of it: a publish looks
// up its subject once per batch, and most producers publish to few subjects. Runs on the KJ
// thread; not thread-safe.
class SubjectRouter {
 public:
  // `cacheEntries` 0 turns the cache off. It holds at most 2 × cacheEntries answers.
  explicit SubjectRouter(size_t cacheEntries = 4096);
  ~SubjectRouter();
  SubjectRouter(const SubjectRouter&) = delete;
  SubjectRouter& operator=(const SubjectRouter&) = delete;

  // Replaces the patterns of topic `id`; empty patterns: the topic captures exactly `name`.
  void set(TopicId id, std::string_view name, const std::vector<std::string>& patterns);
  void remove(TopicId id);
  // The topics capturing a valid subject, ascending and unique. The reference stays valid until
  // the next call to any member.
  const std::vector<TopicId>& route(std::string_view subject);

  size_t patterns() const { return explicitPatterns_; }  // Declared patterns, not own names.
  size_t topics() const { return byTopic_.size(); }
  void clear();

 private:
  struct Node;
  struct Entry {
    std::vector<std::string> patterns;  // As inserted into the trie (own name when none given).
    size_t declared = 0;
  };

  void insert(TopicId id, std::string_view pattern);
  void erase(TopicId id, std::string_view pattern);
  void collect(const Node& node, const std::vector<std::string_view>& tokens, size_t at,
               std::vector<TopicId>& out) const;
  void lookup(std::string_view subject, std::vector<TopicId>& out);
  void forgetCache();

  std::unique_ptr<Node> root_;
  std::unordered_map<TopicId, Entry> byTopic_;
  size_t explicitPatterns_ = 0;
  size_t cacheEntries_;
  // Two generations: a hit in `previous_` is moved to `current_`; a full `current_` becomes
  // `previous_`. Bounded, and a hot set survives a turn of the generations.
  std::unordered_map<std::string, std::vector<TopicId>> current_;
  std::unordered_map<std::string, std::vector<TopicId>> previous_;
  std::vector<TopicId> scratch_;
  std::vector<std::string_view> tokens_;
};

}  // namespace sluice::core
