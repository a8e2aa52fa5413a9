#pragma once

// The wall clock as the broker reads it: Unix milliseconds. One definition for core (which
// decides every time that goes into a write batch) and the store's writer (which records when
// a batch was logged). Thread: any.

#include <chrono>
#include <cstdint>

namespace sluice {

inline int64_t wallClockMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

}  // namespace sluice
