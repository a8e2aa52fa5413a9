// libFuzzer target: decoding write batches (broker/src/store/batch_codec.h) from arbitrary bytes,
// as a follower would decode what it pulled and the store decodes its own write log.
//
// The first byte picks the form (shipped: bodies inline; stored: appends by count). Every
// input must either be rejected with kInvalidArgument or decode to a batch that, once
// encoded, decodes and encodes to the same bytes and body references again, in both forms.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.h"
#include "store/batch_codec.h"
#include "store/codec.h"

namespace {

using namespace sluice;
using namespace sluice::store;
using codec::BatchForm;
using fuzz::check;

std::string encoded(const core::LoggedBatch& batch, BatchForm form) {
  return std::string(
      codec::bytesOf(codec::encodeBatch(batch.seq, batch.batch, form, batch.loggedAtMs)));
}

void roundTrip(std::string_view bytes, BatchForm form) {
  std::vector<codec::StoredAppendRef>* noRefs = nullptr;
  std::vector<codec::StoredAppendRef> refs;
  auto decoded = codec::decodeBatch(bytes, form == BatchForm::kStored ? &refs : noRefs);
  if (!decoded.ok()) {
    check(decoded.status().code() == Code::kInvalidArgument);
    check(!decoded.status().message().empty());
    return;
  }
  // The first encoding may normalize (a stored-form entry may hold a complete append, which
  // is then written by count); from there on, decoding and encoding change nothing.
  std::string once = encoded(decoded.value(), form);
  std::vector<codec::StoredAppendRef> refsOnce;
  auto again = codec::decodeBatch(once, form == BatchForm::kStored ? &refsOnce : noRefs);
  check(again.ok());
  check(again.value().seq == decoded.value().seq);
  check(again.value().batch.ops.size() == decoded.value().batch.ops.size());
  std::string twice = encoded(again.value(), form);
  check(twice == once);
  std::vector<codec::StoredAppendRef> refsTwice;
  auto third = codec::decodeBatch(twice, form == BatchForm::kStored ? &refsTwice : noRefs);
  check(third.ok());
  check(refsTwice.size() == refsOnce.size());
  for (size_t i = 0; i < refsOnce.size(); ++i) {
    check(refsTwice[i].op == refsOnce[i].op && refsTwice[i].topic == refsOnce[i].topic);
    check(refsTwice[i].firstOffset == refsOnce[i].firstOffset);
    check(refsTwice[i].count == refsOnce[i].count);
  }
}

core::WriteBatch sample() {
  core::WriteBatch batch;
  TopicConfig settings;
  settings.workQueue = true;
  settings.maxDeliveries = 3;
  settings.deadLetterTopic = "orders.dead";
  batch.ops.push_back(core::CreateTopicOp{3, "orders", settings, 1700000000000});
  core::AppendOp append{3, "orders", 1, {}};
  MessageData m;
  m.payload = "hello";
  m.key = "customer-42";
  m.headers = {{"trace", "abc"}};
  m.id = "order-7";
  append.messages.push_back({1700000000001, m, 1700000120001});
  append.messages.push_back({1700000000002, MessageData{}, 0});
  batch.ops.push_back(append);
  GroupRecord group;
  group.topicId = 3;
  group.name = "workers";
  group.position = 2;
  batch.ops.push_back(core::PutGroupOp{group});
  batch.ops.push_back(
      core::PutPendingOp{3, "workers", 1, 1, 1700000005000, core::RedeliveryCause::kNack});
  batch.ops.push_back(core::RemovePendingOp{3, "workers", 1});
  batch.ops.push_back(core::TrimOp{3, "orders", 2});
  batch.ops.push_back(core::ClearPendingOp{3, "workers"});
  batch.ops.push_back(core::DeleteGroupOp{3, "workers"});
  batch.ops.push_back(core::ExpireDedupOp{1700000200000});
  batch.ops.push_back(core::PurgeTopicOp{3, "orders"});
  batch.ops.push_back(core::DeleteTopicOp{3, "orders"});
  batch.ops.push_back(core::PutTxnOp{"tx-1", "fingerprint", 1700000300000, {{{2, false}}}});
  return batch;
}

void writeSeeds(const std::string& dir) {
  core::WriteBatch batch = sample();
  fuzz::writeSeed(dir, "shipped", 0,
                  codec::bytesOf(codec::encodeBatch(7, batch, BatchForm::kShipped)));
  fuzz::writeSeed(dir, "stored", 1,
                  codec::bytesOf(codec::encodeBatch(7, batch, BatchForm::kStored)));
  fuzz::writeSeed(dir, "empty", 0,
                  codec::bytesOf(codec::encodeBatch(1, core::WriteBatch{}, BatchForm::kShipped)));
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::writeSeedsIfAsked(writeSeeds);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  roundTrip(bytes, data[0] % 2 == 0 ? BatchForm::kShipped : BatchForm::kStored);
  return 0;
}
