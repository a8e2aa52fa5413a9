#include "store/fsync_timing.h"

#include <dlfcn.h>

#include <cerrno>
#include <chrono>

namespace sluice::store {
namespace {

Histogram& histogram() {
  // Never destroyed: a late sync (a thread still closing) must not record into a dead object.
  static Histogram* samples = new Histogram(
      {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1});
  return *samples;
}

using SyncFn = int (*)(int);

SyncFn nextDefinition(const char* name) {
  // The libc definition (or a sanitizer's interceptor in front of it).
  return reinterpret_cast<SyncFn>(dlsym(RTLD_NEXT, name));
}

int timed(SyncFn real, int fd) {
  if (real == nullptr) {
    errno = ENOSYS;
    return -1;
  }
  auto start = std::chrono::steady_clock::now();
  int rc = real(fd);
  int saved = errno;
  histogram().record(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  errno = saved;
  return rc;
}

}  // namespace

const Histogram& fsyncSeconds() {
  return histogram();
}

}  // namespace sluice::store

extern "C" int fdatasync(int fd) {
  static const sluice::store::SyncFn real = sluice::store::nextDefinition("fdatasync");
  return sluice::store::timed(real, fd);
}

extern "C" int fsync(int fd) {
  static const sluice::store::SyncFn real = sluice::store::nextDefinition("fsync");
  return sluice::store::timed(real, fd);
}
