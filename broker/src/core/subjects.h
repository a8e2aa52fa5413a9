#pragma once

// Subjects and the patterns topics capture them with, in the style of NATS subjects and AMQP
// topic exchanges. A subject is a dot-separated list of tokens of [A-Za-z0-9_-] (the topic name
// rule); a pattern is a subject in which a token may be `*` (exactly one token) or, as the last
// token only, `>` (one or more trailing tokens). `a*b` and `a>` are invalid: a wildcard is a
// whole token or nothing.

#include <cstddef>
#include <cstdint>
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
// captures its own name), with a small cache of recent answers in front of it: a publish looks
// up its subject once per batch, and most producers publish to few subjects. Runs on the KJ
// thread; not thread-safe.
//
// Laid out for the lookup, which walks one trie node per subject token (and a `*` branch where
// one exists), and is bound by memory latency once the trie outgrows the CPU's caches: nodes sit
// in one vector and are named by index; every named edge of the trie sits in one open-addressing
// table of 64-byte slots, keyed by a hash of the child's path from the root, each slot holding
// what the step needs of the child. A step is then one cache line, and since a path hash needs
// no node index, every probe of a subject's literal path (and of the literal rest after each `*`
// branch) is prefetched before the first step, so the misses overlap instead of queueing. The
// parent and token are compared too: a hash collision costs a probe, never a wrong route. The cache
// is a 2-way set-associative array of fixed size: no allocation once warm, and a change of any
// topic's patterns empties it in O(1).
class SubjectRouter {
 public:
  // `cacheEntries` 0 turns the cache off; otherwise it holds at most that many answers
  // (rounded up to a power of two, at least 2).
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
  size_t nodes() const { return nodes_.size() - freeNodes_.size(); }  // Live trie nodes.
  void clear();

 private:
  static constexpr uint32_t kNone = UINT32_MAX;
  static constexpr uint32_t kNamed = 1, kHere = 2, kRest = 4, kHereOne = 8, kRestOne = 16;
  // A node's lookup-time facts, apart from the rest so that they stay in cache: 16 bytes. A
  // pattern end that names one topic (the usual case) is answered from here alone.
  struct Hot {
    uint32_t star = kNone;  // The `*` child.
    uint32_t flags = 0;     // kNamed | kHere | kRest, and kHereOne / kRestOne for one topic.
    TopicId hereOne = 0;    // The only topic of `here`, with kHereOne.
    TopicId restOne = 0;    // The only topic of `rest`, with kRestOne.
  };
  struct Node {
    std::string token;          // Its own token: "" for the root and `*` nodes.
    uint64_t path = 0;          // Hash of its path from the root (childPath in subjects.cpp).
    uint32_t parent = kNone;    // kNone for the root.
    uint32_t named = 0;         // Named children (edges in `edges_` from this node).
    std::vector<TopicId> here;  // Patterns that end at this node.
    std::vector<TopicId> rest;  // Patterns that end with `>` after this node.
  };
  // One cache line: the key, the child, and a copy of the child's Hot (kept equal by refresh),
  // so a step of a lookup reads one line. A token of up to kInline bytes is compared here.
  static constexpr size_t kInline = 35;
  struct alignas(64) Edge {
    uint32_t parent = 0;
    uint32_t child = kNone;  // kNone: a free slot.
    uint32_t hash = 0;       // The child's path hash, low bits: its home slot is hash & mask.
    Hot hot;
    uint8_t length = 0;  // Of the token, capped at 255 (tokens are at most 200 bytes).
    char token[kInline] = {};
  };
  static_assert(sizeof(Edge) == 64);
  struct Token {
    std::string_view text;
    uint64_t hash;
  };
  struct Entry {
    std::vector<std::string> patterns;  // As inserted into the trie (own name when none given).
    size_t declared = 0;
  };
  struct CacheSlot {
    uint64_t hash = 0;
    uint64_t generation = 0;  // Valid while equal to `generation_`.
    std::string subject;
    std::vector<TopicId> topics;
  };

  void insert(TopicId id, std::string_view pattern);
  void erase(TopicId id, std::string_view pattern);
  uint32_t newNode(uint32_t parent, uint64_t path);
  void refresh(uint32_t node);  // Recomputes hot_[node] (and its edge's copy) from nodes_[node].
  bool empty(uint32_t node) const { return hot_[node].flags == 0 && hot_[node].star == kNone; }
  bool edgeIs(const Edge& edge, uint32_t hash, uint32_t parent, std::string_view token) const;
  // The slot of the edge from `parent` to its child `token` whose path hash is `path`, or
  // edges_.size().
  size_t findEdge(uint32_t parent, uint64_t path, std::string_view token) const;
  uint32_t childOf(uint32_t parent, std::string_view token) const;  // `*` too; or kNone.
  void place(const Edge& edge);
  void addEdge(uint32_t child);
  void removeEdge(size_t slot);
  void prefetchPath(uint64_t path, size_t at) const;  // The literal path from tokens_[at] on.
  void collect(uint32_t node, const Hot& hot, uint64_t path, size_t at,
               std::vector<TopicId>& out) const;
  void lookup(std::string_view subject, std::vector<TopicId>& out);

  std::vector<Node> nodes_;  // nodes_[0] is the root.
  std::vector<Hot> hot_;     // Parallel to nodes_.
  std::vector<uint32_t> freeNodes_;
  std::vector<Edge> edges_;  // A power of two in size (at most 2^32), at most half full.
  size_t edgeCount_ = 0;
  std::unordered_map<TopicId, Entry> byTopic_;
  size_t explicitPatterns_ = 0;
  std::vector<CacheSlot> cache_;  // Sets of two adjacent slots; empty when the cache is off.
  std::vector<uint8_t> recent_;   // Per set: which of its two slots was used last.
  uint64_t generation_ = 1;
  std::vector<TopicId> scratch_;
  std::vector<Token> tokens_;
};

}  // namespace sluice::core
