// The admin endpoint's pure pieces: the history's latency quantiles from histogram snapshots and
// the embedded console files.

#include <catch2/catch.hpp>

#include <string>

#include "admin/api.h"
#include "admin/ui_assets.h"
#include "common/histogram.h"

namespace {

using sluice::Histogram;
using sluice::admin::quantileBetween;

TEST_CASE("a second's latency quantiles come from the difference of two snapshots", "[unit]") {
  Histogram histogram({0.001, 0.002, 0.004, 0.008});
  for (int i = 0; i < 100; ++i)
    histogram.record(0.0005);  // Before the second: must not count.
  auto before = histogram.snapshot();
  for (int i = 0; i < 90; ++i)
    histogram.record(0.0015);
  for (int i = 0; i < 10; ++i)
    histogram.record(0.006);
  auto after = histogram.snapshot();
  // 90 of 100 in (1, 2] ms: the median lies inside that bucket, p99 in (4, 8] ms.
  double p50 = quantileBetween(before, after, 0.5);
  CHECK(p50 > 0.001);
  CHECK(p50 <= 0.002);
  double p99 = quantileBetween(before, after, 0.99);
  CHECK(p99 > 0.004);
  CHECK(p99 <= 0.008);
  CHECK(quantileBetween(after, after, 0.99) == 0);  // No commits: 0, not a stale figure.
}

TEST_CASE("a sample beyond the last bound reports that bound", "[unit]") {
  Histogram histogram({0.001, 0.002});
  auto before = histogram.snapshot();
  histogram.record(5.0);
  CHECK(quantileBetween(before, histogram.snapshot(), 0.99) == 0.002);
}

TEST_CASE("the console's files are embedded with their types", "[unit]") {
  const auto* index = sluice::admin::findUiAsset("index.html");
  REQUIRE(index != nullptr);
  CHECK(std::string(index->contentType) == "text/html; charset=utf-8");
  CHECK(std::string(index->data, index->size).find("<html") != std::string::npos);
  const auto* script = sluice::admin::findUiAsset("app.js");
  REQUIRE(script != nullptr);
  CHECK(std::string(script->contentType) == "text/javascript; charset=utf-8");
  CHECK(sluice::admin::findUiAsset("../CMakeLists.txt") == nullptr);
  CHECK(sluice::admin::findUiAsset("") == nullptr);
}

}  // namespace
