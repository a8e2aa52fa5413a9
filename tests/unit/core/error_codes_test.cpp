// The broker's error codes are the schema's ErrorCode enumerants (common/status.h).

#include <capnp/schema.h>
#include <catch2/catch.hpp>

#include <set>
#include <string>

#include "common/status.h"
#include "sluice/schemas/rpc.capnp.h"

namespace sluice {
namespace {

TEST_CASE("every broker code is the schema enumerant of the same value and name", "[core]") {
  auto enumerants = capnp::Schema::from<wire::ErrorCode>().getEnumerants();
  // The last code the broker knows is the schema's last enumerant: none is missing here.
  REQUIRE(enumerants.size() == static_cast<size_t>(Code::kNotEnoughReplicas) + 1);
  std::set<std::string> names;
  for (auto enumerant : enumerants) {
    auto code = static_cast<Code>(enumerant.getOrdinal());
    std::string name = codeName(code);
    names.insert(name);
    if (code == Code::kOk) {
      CHECK(name == "ok");
    } else {
      CHECK(name == enumerant.getProto().getName().cStr());
    }
  }
  CHECK(names.size() == enumerants.size());
  CHECK(std::string(codeName(Code::kTopicNotFound)) == "topicNotFound");
  CHECK(std::string(codeName(static_cast<Code>(999))) == "unknown");
  CHECK(Status(Code::kGroupBusy, "g").toString() == "groupBusy: g");
}

}  // namespace
}  // namespace sluice
