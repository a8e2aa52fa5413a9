#pragma once

// The web console's files (broker/ui), embedded in the binary at build time by
// cmake/embed_ui.cmake. Thread: any (constant data).

#include <cstddef>
#include <string_view>

namespace sluice::admin {

struct UiAsset {
  const char* name;  // Path under /ui/, e.g. "app.js".
  const char* contentType;
  const char* data;
  size_t size;
};

// The file `name` ("index.html", "app.js", ...), or nullptr.
const UiAsset* findUiAsset(std::string_view name);

}  // namespace sluice::admin
