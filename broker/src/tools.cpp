#include "tools.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "config.h"
#include "store/store.h"

namespace sluice::daemon {
namespace {

constexpr size_t kReplayChunk = 32;  // Batches read, applied and committed at a time.

// Opens an existing store as it is: read-only, mapped at its own size.
Result<std::unique_ptr<store::Env>> openExisting(const std::string& dir, const char* what) {
  std::error_code ec;
  auto size = std::filesystem::file_size(std::filesystem::path(dir) / "data.mdb", ec);
  if (ec) {
    return Status(Code::kInvalidArgument,
                  std::string(what) + ": no store in " + dir + " (" + ec.message() + ")");
  }
  store::EnvOptions options;
  options.dir = dir;
  options.maxStorageBytes = std::max<uint64_t>(size, kMinStorageBytes);
  options.readOnly = true;  // Even a full store opens; nothing is written.
  return store::Env::open(options);
}

}  // namespace

int runCheck(const std::string& dataDir) {
  auto env = openExisting(dataDir, "check failed");
  if (!env.ok()) {
    std::fprintf(stderr, "check failed: %s\n", env.status().message().c_str());
    return 1;
  }
  Status status = env.value()->check();
  if (!status.ok()) {
    std::fprintf(stderr, "check failed: %s\n", status.message().c_str());
    return 1;
  }
  std::printf("check passed: %s\n", dataDir.c_str());
  return 0;
}

int runDump(const std::string& dataDir) {
  auto env = openExisting(dataDir, "dump failed");
  if (!env.ok()) {
    std::fprintf(stderr, "dump failed: %s\n", env.status().message().c_str());
    return 1;
  }
  Status status = env.value()->dump(stdout);
  if (!status.ok()) {
    std::fprintf(stderr, "dump failed: %s\n", status.message().c_str());
    return 1;
  }
  return 0;
}

int runReplayLog(const std::string& sourceDir, const std::string& dataDir, uint64_t windowBytes,
                 uint64_t maxAgeMs) {
  auto source = openExisting(sourceDir, "replay failed");
  if (!source.ok()) {
    std::fprintf(stderr, "replay failed: %s\n", source.status().message().c_str());
    return 1;
  }
  std::error_code ec;
  if (std::filesystem::exists(std::filesystem::path(dataDir) / "data.mdb", ec)) {
    std::fprintf(stderr, "replay failed: %s already holds a store; replay into an empty one\n",
                 dataDir.c_str());
    return 2;
  }
  store::EnvOptions options;
  options.dir = dataDir;
  // The same map size as the source: the replayed store holds the same data.
  options.maxStorageBytes =
      std::max<uint64_t>(source.value()->options().maxStorageBytes * 2, uint64_t{256} << 20);
  options.logWindowBytes = windowBytes;
  options.logMaxAgeMs = maxAgeMs;
  auto target = store::Env::open(options);
  if (!target.ok()) {
    std::fprintf(stderr, "replay failed: %s\n", target.status().message().c_str());
    return 1;
  }
  store::Writer writer(*target.value());
  uint64_t last = store::ReadTxn(*source.value()).lastSeq();
  uint64_t next = 1;
  while (next <= last) {
    auto batches = store::ReadTxn(*source.value()).readLog(next, kReplayChunk);
    if (!batches.ok()) {
      std::fprintf(stderr, "replay failed at sequence %llu: %s\n",
                   static_cast<unsigned long long>(next), batches.status().message().c_str());
      return 1;
    }
    size_t count = batches.value().size();
    if (count == 0) break;
    Status applied = writer.replay(std::move(batches).value());
    if (!applied.ok()) {
      std::fprintf(stderr, "replay failed at sequence %llu: %s\n",
                   static_cast<unsigned long long>(next), applied.message().c_str());
      return 1;
    }
    next += count;
  }
  writer.stop();
  std::printf("replayed %llu batches from %s into %s\n", static_cast<unsigned long long>(next - 1),
              sourceDir.c_str(), dataDir.c_str());
  return 0;
}

}  // namespace sluice::daemon
