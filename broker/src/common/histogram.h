#pragma once

// A fixed-bucket histogram that threads record into and read without locks (relaxed atomics: a
// reader may see a sample in `count` a moment before its bucket, which Prometheus tolerates).
// Thread: any.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace sluice {

struct HistogramSnapshot {
  std::vector<double> bounds;     // Upper bounds, ascending (le="...").
  std::vector<uint64_t> buckets;  // Cumulative counts per bound.
  uint64_t count = 0;
  double sum = 0;
};

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds)
      : bounds_(std::move(bounds)), counts_(bounds_.size()) {}

  void record(double value) {
    for (std::size_t i = 0; i < bounds_.size(); ++i) {
      if (value <= bounds_[i]) {
        counts_[i].fetch_add(1, std::memory_order_relaxed);
        break;
      }
    }
    count_.fetch_add(1, std::memory_order_relaxed);
    double sum = sum_.load(std::memory_order_relaxed);
    while (!sum_.compare_exchange_weak(sum, sum + value, std::memory_order_relaxed)) {
    }
  }

  HistogramSnapshot snapshot() const {
    HistogramSnapshot out;
    out.bounds = bounds_;
    uint64_t running = 0;
    for (const auto& c : counts_) {
      running += c.load(std::memory_order_relaxed);
      out.buckets.push_back(running);
    }
    out.count = count_.load(std::memory_order_relaxed);
    out.sum = sum_.load(std::memory_order_relaxed);
    return out;
  }

 private:
  std::vector<double> bounds_;
  std::vector<std::atomic<uint64_t>> counts_;
  std::atomic<uint64_t> count_{0};
  std::atomic<double> sum_{0};
};

}  // namespace sluice
