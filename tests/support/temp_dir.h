#pragma once

#include <string>

namespace sluice::test {

// A fresh directory made with mkdtemp under $TMPDIR (or /tmp), removed with everything in it
// when the object is destroyed. Throws std::runtime_error if it cannot be created.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace sluice::test
