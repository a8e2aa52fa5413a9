#pragma once

#include <memory>

#include <spdlog/spdlog.h>

namespace sluice::core {

// The "core" logger (created in main); the default logger when main has not made one.
std::shared_ptr<spdlog::logger> coreLog();

}  // namespace sluice::core
