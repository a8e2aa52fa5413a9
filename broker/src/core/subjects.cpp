#include "core/subjects.h"

#include <algorithm>
#include <cstring>
#include <functional>

#include "core/names.h"

namespace sluice::core {
namespace {

bool isTokenChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

// Calls `each(token, last)` for every dot-separated token; stops early when it returns false.
template <typename Each>
bool forEachToken(std::string_view text, Each&& each) {
  size_t start = 0;
  while (true) {
    size_t dot = text.find('.', start);
    bool last = dot == std::string_view::npos;
    std::string_view token = text.substr(start, last ? std::string_view::npos : dot - start);
    if (!each(token, last)) return false;
    if (last) return true;
    start = dot + 1;
  }
}

std::optional<std::string> validate(std::string_view what, std::string_view text, bool wild) {
  const std::string rule =
      std::string(what) + " must be 1-" + std::to_string(kMaxSubjectLength) +
      " characters of dot-separated tokens of [A-Za-z0-9_-]" +
      (wild ? ", where a whole token may be '*' (one token) or, last only, '>' (one or more)" : "");
  if (text.empty()) return rule + ", got an empty " + std::string(what);
  if (text.size() > kMaxSubjectLength) {
    return rule + ", got " + std::to_string(text.size()) + " characters";
  }
  std::optional<std::string> problem;
  size_t position = 1;  // Of the token being checked, for the message.
  forEachToken(text, [&](std::string_view token, bool last) {
    if (token.empty()) {
      problem = rule + ", got " + quoted(text) + " with an empty token at character " +
                std::to_string(position);
      return false;
    }
    if (wild && (token == "*" || token == ">")) {
      if (token == ">" && !last) {
        problem = rule + ", got " + quoted(text) + " with '>' before its last token";
        return false;
      }
      position += token.size() + 1;
      return true;
    }
    for (size_t i = 0; i < token.size(); ++i) {
      char c = token[i];
      if (isTokenChar(c)) continue;
      std::string at = " at character " + std::to_string(position + i);
      if (wild && (c == '*' || c == '>')) {
        problem = rule + ", got " + quoted(text) + " with a partial wildcard " + quoted(token) +
                  at + " (a wildcard is a whole token)";
      } else if (!wild && (c == '*' || c == '>')) {
        problem = rule + ", got " + quoted(text) + " with a wildcard" + at +
                  " (a subject names one thing; patterns go on topics and groups)";
      } else {
        problem = rule + ", got " + quoted(text) + " with an invalid character" + at;
      }
      return false;
    }
    position += token.size() + 1;
    return true;
  });
  return problem;
}

}  // namespace

std::optional<std::string> validateSubject(std::string_view subject) {
  return validate("subject", subject, false);
}

std::optional<std::string> validateSubjectPattern(std::string_view pattern) {
  return validate("subject pattern", pattern, true);
}

std::optional<std::string> validateSubjectPatterns(const std::vector<std::string>& patterns,
                                                   size_t limit) {
  if (patterns.size() > limit) {
    return "at most " + std::to_string(limit) + " subject patterns, got " +
           std::to_string(patterns.size());
  }
  for (size_t i = 0; i < patterns.size(); ++i) {
    if (auto problem = validateSubjectPattern(patterns[i])) return problem;
    for (size_t j = 0; j < i; ++j) {
      if (patterns[j] == patterns[i]) {
        return "subject patterns must be distinct, got " + quoted(patterns[i]) + " twice";
      }
    }
  }
  return std::nullopt;
}

bool subjectMatches(std::string_view pattern, std::string_view subject) {
  size_t p = 0;
  size_t s = 0;
  while (true) {
    size_t pEnd = pattern.find('.', p);
    if (pEnd == std::string_view::npos) pEnd = pattern.size();
    std::string_view token = pattern.substr(p, pEnd - p);
    size_t sEnd = subject.find('.', s);
    if (sEnd == std::string_view::npos) sEnd = subject.size();
    if (token == ">") return true;  // Last by validation; at least one subject token is left.
    if (token != "*" && token != subject.substr(s, sEnd - s)) return false;
    bool patternDone = pEnd == pattern.size();
    bool subjectDone = sEnd == subject.size();
    if (patternDone || subjectDone) return patternDone && subjectDone;
    p = pEnd + 1;
    s = sEnd + 1;
  }
}

bool anySubjectMatches(const std::vector<std::string>& patterns, std::string_view subject) {
  for (const std::string& pattern : patterns) {
    if (subjectMatches(pattern, subject)) return true;
  }
  return false;
}

namespace {

// The splitmix64 finalizer: spreads a hash over all 64 bits, so a power-of-two mask of it is
// uniform.
uint64_t mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

uint64_t hashText(std::string_view text) {
  return std::hash<std::string_view>{}(text);
}

constexpr uint64_t kRootPath = 0x243f6a8885a308d3ULL;
constexpr uint64_t kStarHash = 0x13198a2e03707344ULL;  // Stands for `*` as a token's hash.

// The hash of a node's path from the root, from its parent's and its own token's. It needs no
// node index, so a lookup knows every probe of a subject's literal path before its first step.
uint64_t childPath(uint64_t parentPath, uint64_t tokenHash) {
  return mix(parentPath ^ (tokenHash * 0x9e3779b97f4a7c15ULL + 0x632be59bd9b4e019ULL));
}

size_t roundUpToPowerOfTwo(size_t n) {
  size_t p = 1;
  while (p < n)
    p <<= 1;
  return p;
}

}  // namespace

SubjectRouter::SubjectRouter(size_t cacheEntries) {
  nodes_.emplace_back();
  nodes_[0].path = kRootPath;
  hot_.emplace_back();
  if (cacheEntries > 0) {
    size_t slots = std::max<size_t>(2, roundUpToPowerOfTwo(cacheEntries));
    cache_.resize(slots);
    recent_.assign(slots / 2, 0);
  }
}

SubjectRouter::~SubjectRouter() = default;

void SubjectRouter::set(TopicId id, std::string_view name,
                        const std::vector<std::string>& patterns) {
  remove(id);
  Entry entry;
  entry.declared = patterns.size();
  entry.patterns = patterns.empty() ? std::vector<std::string>{std::string(name)} : patterns;
  for (const std::string& pattern : entry.patterns)
    insert(id, pattern);
  explicitPatterns_ += entry.declared;
  byTopic_[id] = std::move(entry);
  ++generation_;
}

void SubjectRouter::remove(TopicId id) {
  auto it = byTopic_.find(id);
  if (it == byTopic_.end()) return;
  for (const std::string& pattern : it->second.patterns)
    erase(id, pattern);
  explicitPatterns_ -= it->second.declared;
  byTopic_.erase(it);
  ++generation_;
}

void SubjectRouter::clear() {
  nodes_.assign(1, Node{});
  nodes_[0].path = kRootPath;
  hot_.assign(1, Hot{});
  freeNodes_.clear();
  edges_.clear();
  edgeCount_ = 0;
  byTopic_.clear();
  explicitPatterns_ = 0;
  ++generation_;
}

uint32_t SubjectRouter::newNode(uint32_t parent, uint64_t path) {
  uint32_t index;
  if (!freeNodes_.empty()) {
    index = freeNodes_.back();  // Reset when it was freed.
    freeNodes_.pop_back();
  } else {
    nodes_.emplace_back();
    hot_.emplace_back();
    index = static_cast<uint32_t>(nodes_.size() - 1);
  }
  nodes_[index].parent = parent;
  nodes_[index].path = path;
  return index;
}

void SubjectRouter::refresh(uint32_t index) {
  const Node& node = nodes_[index];
  Hot& hot = hot_[index];
  hot.flags = (node.named != 0 ? kNamed : 0) | (node.here.empty() ? 0 : kHere) |
              (node.rest.empty() ? 0 : kRest) | (node.here.size() == 1 ? kHereOne : 0) |
              (node.rest.size() == 1 ? kRestOne : 0);
  hot.hereOne = node.here.size() == 1 ? node.here.front() : 0;
  hot.restOne = node.rest.size() == 1 ? node.rest.front() : 0;
  if (!node.token.empty()) edges_[findEdge(node.parent, node.path, node.token)].hot = hot;
}

bool SubjectRouter::edgeIs(const Edge& edge, uint32_t hash, uint32_t parent,
                           std::string_view token) const {
  if (edge.hash != hash || edge.parent != parent || edge.length != token.size()) return false;
  if (std::memcmp(edge.token, token.data(), std::min(token.size(), kInline)) != 0) return false;
  return token.size() <= kInline || nodes_[edge.child].token == token;
}

size_t SubjectRouter::findEdge(uint32_t parent, uint64_t path, std::string_view token) const {
  if (edges_.empty()) return edges_.size();
  const size_t mask = edges_.size() - 1;
  const auto hash = static_cast<uint32_t>(path);
  for (size_t i = hash & mask;; i = (i + 1) & mask) {
    const Edge& edge = edges_[i];
    if (edge.child == kNone) return edges_.size();  // At most half full: a free slot ends it.
    if (edgeIs(edge, hash, parent, token)) return i;
  }
}

void SubjectRouter::place(const Edge& edge) {
  const size_t mask = edges_.size() - 1;
  size_t i = edge.hash & mask;
  while (edges_[i].child != kNone)
    i = (i + 1) & mask;
  edges_[i] = edge;
}

void SubjectRouter::addEdge(uint32_t child) {
  if ((edgeCount_ + 1) * 2 > edges_.size()) {
    std::vector<Edge> old = std::move(edges_);
    edges_.assign(std::max<size_t>(16, old.size() * 2), Edge{});
    for (const Edge& edge : old) {
      if (edge.child != kNone) place(edge);
    }
  }
  const Node& node = nodes_[child];
  Edge edge;
  edge.parent = node.parent;
  edge.child = child;
  edge.hash = static_cast<uint32_t>(node.path);
  edge.hot = hot_[child];
  edge.length = static_cast<uint8_t>(std::min<size_t>(node.token.size(), 255));
  std::memcpy(edge.token, node.token.data(), std::min(node.token.size(), kInline));
  place(edge);
  ++edgeCount_;
}

void SubjectRouter::removeEdge(size_t slot) {
  // Backward-shift deletion keeps every probe sequence unbroken without tombstones: each later
  // edge of the run moves into the hole unless its home slot lies cyclically in (hole, it].
  const size_t mask = edges_.size() - 1;
  size_t hole = slot;
  for (size_t j = (hole + 1) & mask; edges_[j].child != kNone; j = (j + 1) & mask) {
    size_t home = edges_[j].hash & mask;
    bool staysPut = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
    if (!staysPut) {
      edges_[hole] = edges_[j];
      hole = j;
    }
  }
  edges_[hole] = Edge{};
  --edgeCount_;
}

uint32_t SubjectRouter::childOf(uint32_t parent, std::string_view token) const {
  if (token == "*") return hot_[parent].star;
  size_t slot = findEdge(parent, childPath(nodes_[parent].path, hashText(token)), token);
  return slot == edges_.size() ? kNone : edges_[slot].child;
}

void SubjectRouter::insert(TopicId id, std::string_view pattern) {
  uint32_t node = 0;  // Indices only: newNode() may move every node.
  forEachToken(pattern, [&](std::string_view token, bool last) {
    if (token == ">") {
      nodes_[node].rest.push_back(id);
      refresh(node);
      return true;
    }
    uint32_t next = childOf(node, token);
    if (next == kNone) {
      if (token == "*") {
        next = newNode(node, childPath(nodes_[node].path, kStarHash));
        hot_[node].star = next;
      } else {
        next = newNode(node, childPath(nodes_[node].path, hashText(token)));
        nodes_[next].token = std::string(token);
        addEdge(next);
        ++nodes_[node].named;
      }
      refresh(node);
    }
    node = next;
    if (last) {
      nodes_[node].here.push_back(id);
      refresh(node);
    }
    return true;
  });
}

void SubjectRouter::erase(TopicId id, std::string_view pattern) {
  // Down to the pattern's end, the id removed there, then emptied nodes pruned upwards.
  uint32_t node = 0;
  bool rest = false;
  bool found = forEachToken(pattern, [&](std::string_view token, bool) {
    if (token == ">") {
      rest = true;
      return true;
    }
    node = childOf(node, token);
    return node != kNone;
  });
  if (!found) return;
  std::vector<TopicId>& ids = rest ? nodes_[node].rest : nodes_[node].here;
  auto it = std::find(ids.begin(), ids.end(), id);
  if (it != ids.end()) ids.erase(it);
  refresh(node);
  while (node != 0 && empty(node)) {
    const uint32_t parent = nodes_[node].parent;
    if (nodes_[node].token.empty()) {
      hot_[parent].star = kNone;
    } else {
      removeEdge(findEdge(parent, nodes_[node].path, nodes_[node].token));
      --nodes_[parent].named;
    }
    refresh(parent);
    nodes_[node] = Node{};
    hot_[node] = Hot{};
    freeNodes_.push_back(node);
    node = parent;
  }
}

void SubjectRouter::prefetchPath(uint64_t path, size_t at) const {
  if (edges_.empty()) return;
  const size_t mask = edges_.size() - 1;
  for (; at < tokens_.size(); ++at) {
    path = childPath(path, tokens_[at].hash);
    __builtin_prefetch(&edges_[path & mask]);
  }
}

void SubjectRouter::collect(uint32_t index, const Hot& hot, uint64_t path, size_t at,
                            std::vector<TopicId>& out) const {
  // nodes_[index] is read only for a pattern end of two or more topics.
  if (at == tokens_.size()) {
    if (hot.flags & kHereOne)
      out.push_back(hot.hereOne);
    else if (hot.flags & kHere)
      out.insert(out.end(), nodes_[index].here.begin(), nodes_[index].here.end());
    return;
  }
  if (hot.flags & kRestOne)
    out.push_back(hot.restOne);
  else if (hot.flags & kRest)
    out.insert(out.end(), nodes_[index].rest.begin(), nodes_[index].rest.end());
  uint64_t starPath = 0;
  if (hot.star != kNone) {  // Its probes go out now, to arrive while the named branch is walked.
    starPath = childPath(path, kStarHash);
    __builtin_prefetch(&hot_[hot.star]);
    prefetchPath(starPath, at + 1);
  }
  if (hot.flags & kNamed) {
    const uint64_t namedPath = childPath(path, tokens_[at].hash);
    size_t slot = findEdge(index, namedPath, tokens_[at].text);
    if (slot != edges_.size()) {
      const Edge& edge = edges_[slot];
      collect(edge.child, edge.hot, namedPath, at + 1, out);
    }
  }
  if (hot.star != kNone) collect(hot.star, hot_[hot.star], starPath, at + 1, out);
}

void SubjectRouter::lookup(std::string_view subject, std::vector<TopicId>& out) {
  out.clear();
  tokens_.clear();
  forEachToken(subject, [&](std::string_view token, bool) {
    tokens_.push_back(Token{token, hashText(token)});
    return true;
  });
  prefetchPath(kRootPath, 0);  // Every probe of the literal path at once, not one per step.
  collect(0, hot_[0], kRootPath, 0, out);
  if (out.size() > 1) {
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
  }
}

const std::vector<TopicId>& SubjectRouter::route(std::string_view subject) {
  if (cache_.empty()) {
    lookup(subject, scratch_);
    return scratch_;
  }
  const uint64_t hash = hashText(subject);
  const size_t set = mix(hash) & (recent_.size() - 1);
  for (uint8_t way = 0; way < 2; ++way) {
    CacheSlot& slot = cache_[2 * set + way];
    if (slot.generation == generation_ && slot.hash == hash && slot.subject == subject) {
      recent_[set] = way;
      return slot.topics;
    }
  }
  // A miss: fill a stale slot of the set, else the one used less recently.
  uint8_t way = cache_[2 * set].generation != generation_ ? 0
                : cache_[2 * set + 1].generation != generation_
                    ? 1
                    : static_cast<uint8_t>(1 - recent_[set]);
  CacheSlot& slot = cache_[2 * set + way];
  lookup(subject, slot.topics);  // Into the slot: its capacity is reused, nothing is copied.
  slot.subject.assign(subject);
  slot.hash = hash;
  slot.generation = generation_;
  recent_[set] = way;
  return slot.topics;
}

}  // namespace sluice::core
