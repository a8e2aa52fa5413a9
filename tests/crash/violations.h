#pragma once

// The verification's tally of broken promises, shared by ledger.cpp and tx_ledger.cpp.
// Thread: the main thread, after the final run.

#include <cstdio>
#include <map>
#include <string>

namespace sluice::crash {

// Collects violations, printing the first few of each kind in full.
class Violations {
 public:
  void add(const std::string& kind, const std::string& detail) {
    size_t& n = counts_[kind];
    if (++n <= 5) std::printf("  VIOLATION %s: %s\n", kind.c_str(), detail.c_str());
    ++total_;
  }
  size_t count(const std::string& kind) const {
    auto it = counts_.find(kind);
    return it == counts_.end() ? 0 : it->second;
  }
  size_t total() const { return total_; }

 private:
  std::map<std::string, size_t> counts_;
  size_t total_ = 0;
};

}  // namespace sluice::crash
