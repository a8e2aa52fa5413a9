#include "core/subjects.h"

#include <algorithm>

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

void split(std::string_view text, std::vector<std::string_view>& out) {
  out.clear();
  forEachToken(text, [&](std::string_view token, bool) {
    out.push_back(token);
    return true;
  });
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

struct SubjectRouter::Node {
  std::string token;  // Its own token; the parent's key is a view of it.
  // Keyed by views of each child's `token` (a child is heap-allocated, so they stay put):
  // a lookup hashes the subject's token in place, with no string built.
  std::unordered_map<std::string_view, std::unique_ptr<Node>> children;
  std::unique_ptr<Node> star;  // The `*` child.
  std::vector<TopicId> here;   // Patterns that end at this node.
  std::vector<TopicId> rest;   // Patterns that end with `>` after this node.

  bool empty() const { return children.empty() && !star && here.empty() && rest.empty(); }
};

SubjectRouter::SubjectRouter(size_t cacheEntries)
    : root_(std::make_unique<Node>()), cacheEntries_(cacheEntries) {}

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
  forgetCache();
}

void SubjectRouter::remove(TopicId id) {
  auto it = byTopic_.find(id);
  if (it == byTopic_.end()) return;
  for (const std::string& pattern : it->second.patterns)
    erase(id, pattern);
  explicitPatterns_ -= it->second.declared;
  byTopic_.erase(it);
  forgetCache();
}

void SubjectRouter::clear() {
  root_ = std::make_unique<Node>();
  byTopic_.clear();
  explicitPatterns_ = 0;
  forgetCache();
}

void SubjectRouter::forgetCache() {
  current_.clear();
  previous_.clear();
}

void SubjectRouter::insert(TopicId id, std::string_view pattern) {
  Node* node = root_.get();
  forEachToken(pattern, [&](std::string_view token, bool last) {
    if (token == ">") {
      node->rest.push_back(id);
      return true;
    }
    if (token == "*") {
      if (!node->star) node->star = std::make_unique<Node>();
      node = node->star.get();
    } else {
      auto it = node->children.find(token);
      if (it == node->children.end()) {
        auto child = std::make_unique<Node>();
        child->token = std::string(token);
        std::string_view key = child->token;
        it = node->children.emplace(key, std::move(child)).first;
      }
      node = it->second.get();
    }
    if (last) node->here.push_back(id);
    return true;
  });
}

void SubjectRouter::erase(TopicId id, std::string_view pattern) {
  // The path from the root, then the id removed at its end, then empty nodes pruned upwards.
  struct Step {
    Node* parent;
    std::string_view token;
  };
  std::vector<Step> path;
  Node* node = root_.get();
  bool rest = false;
  forEachToken(pattern, [&](std::string_view token, bool) {
    if (token == ">") {
      rest = true;
      return false;
    }
    Node* next = nullptr;
    if (token == "*") {
      next = node->star.get();
    } else {
      auto it = node->children.find(token);
      if (it != node->children.end()) next = it->second.get();
    }
    if (next == nullptr) {
      node = nullptr;
      return false;
    }
    path.push_back(Step{node, token});
    node = next;
    return true;
  });
  if (node == nullptr) return;
  std::vector<TopicId>& ids = rest ? node->rest : node->here;
  auto found = std::find(ids.begin(), ids.end(), id);
  if (found != ids.end()) ids.erase(found);
  while (!path.empty() && node->empty()) {
    Step step = path.back();
    path.pop_back();
    if (step.token == "*") {
      step.parent->star.reset();
    } else {
      step.parent->children.erase(step.token);
    }
    node = step.parent;
  }
}

void SubjectRouter::collect(const Node& node, const std::vector<std::string_view>& tokens,
                            size_t at, std::vector<TopicId>& out) const {
  if (at == tokens.size()) {
    out.insert(out.end(), node.here.begin(), node.here.end());
    return;
  }
  out.insert(out.end(), node.rest.begin(), node.rest.end());
  if (!node.children.empty()) {
    auto it = node.children.find(tokens[at]);
    if (it != node.children.end()) collect(*it->second, tokens, at + 1, out);
  }
  if (node.star) collect(*node.star, tokens, at + 1, out);
}

void SubjectRouter::lookup(std::string_view subject, std::vector<TopicId>& out) {
  out.clear();
  split(subject, tokens_);
  collect(*root_, tokens_, 0, out);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
}

const std::vector<TopicId>& SubjectRouter::route(std::string_view subject) {
  if (cacheEntries_ == 0) {
    lookup(subject, scratch_);
    return scratch_;
  }
  std::string key(subject);
  if (auto it = current_.find(key); it != current_.end()) return it->second;
  if (auto it = previous_.find(key); it != previous_.end()) {
    std::vector<TopicId> ids = std::move(it->second);
    previous_.erase(it);
    if (current_.size() >= cacheEntries_) {
      previous_ = std::move(current_);
      current_.clear();
    }
    return current_.emplace(std::move(key), std::move(ids)).first->second;
  }
  lookup(subject, scratch_);
  if (current_.size() >= cacheEntries_) {
    previous_ = std::move(current_);
    current_.clear();
  }
  return current_.emplace(std::move(key), scratch_).first->second;
}

}  // namespace sluice::core
