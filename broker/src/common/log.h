#pragma once

// The one logger lookup: the logger main registered under `name` ("core", "store", "rpc",
// "admin"; see logging.cpp), or spdlog's default logger where none is (unit tests, tools).
// Looked up on every call, so a logger registered later (or replaced by a test) is used.
// Thread: any.

#include <memory>

#include <spdlog/spdlog.h>

namespace sluice {

inline std::shared_ptr<spdlog::logger> namedLog(const char* name) {
  if (auto named = spdlog::get(name)) return named;
  return spdlog::default_logger();
}

}  // namespace sluice
