// The write batch codec: round trips, the stored form, fields from a newer broker, and
// truncated or corrupt input rejected with kInvalidArgument.

#include "store/batch_codec.h"

#include <capnp/any.h>
#include <capnp/message.h>
#include <capnp/schema.h>
#include <capnp/serialize.h>

#include <cstring>

#include "sluice/schemas/records.capnp.h"
#include "store_fixture.h"

namespace sluice::store::test {
namespace {

using Catch::Matchers::Contains;
using codec::BatchForm;

std::string bytesOf(const kj::Array<capnp::word>& words) {
  auto bytes = words.asBytes();
  return std::string(reinterpret_cast<const char*>(bytes.begin()), bytes.size());
}

std::string encoded(uint64_t seq, const core::WriteBatch& batch,
                    BatchForm form = BatchForm::kShipped) {
  return bytesOf(codec::encodeBatch(seq, batch, form));
}

// One op of every kind, with every field set to something other than its default.
CredentialRecord credential() {
  CredentialRecord c;
  c.id = 9;
  c.principal = "svc.billing";
  c.issuer = 4;
  c.scoped = true;
  c.scope = {{true, 1, "orders.eu"}};
  c.expiresAtMs = 7777;
  c.createdMs = 66;
  c.note = "eu feeder";
  c.secretHash = std::string(31, 'h') + std::string(1, '\0');
  return c;
}

core::WriteBatch everyOp() {
  TopicConfig settings;
  settings.maxAgeMs = 1;
  settings.maxBytes = 2;
  settings.maxMessages = 3;
  settings.maxMessageSize = 4;
  settings.workQueue = true;
  settings.maxDeliveries = 5;
  settings.deadLetterTopic = "dlq";
  settings.dedupWindowMs = 6;
  settings.defaultTtlMs = 8;
  settings.deadLetterExpired = true;
  settings.subjects = {"orders.>", "audit.*.x"};
  MessageData rich;
  rich.key = std::string("k\0k", 3);
  rich.headers = {{"a", "b"}, {"c", ""}};
  rich.payload = std::string("p\0p", 3);
  rich.id = "id-1";
  rich.deliverAtMs = 1500;
  rich.ttlMs = 250;
  rich.subject = "orders.eu.created";
  core::AppendOp append{7, "orders", 10, {}};
  append.messages.push_back({1000, rich, 5000});
  append.messages.push_back({1001, message("plain"), 0});
  GroupRecord group;
  group.topicId = 7;
  group.name = "workers";
  group.position = 12;
  group.createdMs = 900;
  group.redelivered = 3;
  group.deadLettered = 2;
  group.filter = {"orders.eu.>", "orders.*.paid"};
  return batchOf(
      {core::CreateTopicOp{7, "orders", settings, 123}, append, core::TrimOp{7, "orders", 11},
       core::PutGroupOp{group},
       core::PutPendingOp{7, "workers", 11, 2, 777, core::RedeliveryCause::kAckTimeout},
       core::RemovePendingOp{7, "workers", 10}, core::ClearPendingOp{7, "workers"},
       core::DeleteGroupOp{7, "workers"}, core::ExpireDedupOp{4242},
       core::PurgeTopicOp{7, "orders"}, core::DeleteTopicOp{7, "orders"},
       core::PutTxnOp{
           "tx-1", std::string("\x01\x00\x02", 3), 9000, {{{10, false}, {11, true}}, {{3, false}}}},
       core::SetSubjectsOp{7, "orders", {"orders.*", ">"}},
       core::PutPrincipalOp{{"svc.billing", {{true, 3, "orders.>"}, {false, 2, "orders.x"}}, 55}},
       core::PutCredentialOp{credential()}, core::RevokeCredentialsOp{{9, 10}},
       core::DeletePrincipalOp{"svc.billing"}});
}

TEST_CASE("every write op survives a round trip through the shipped form", "[store][codec]") {
  core::WriteBatch batch = everyOp();
  std::string bytes = encoded(42, batch);
  auto decoded = codec::decodeBatch(bytes);
  REQUIRE(decoded.status().toString() == "ok");
  CHECK(decoded.value().seq == 42);
  REQUIRE(decoded.value().batch.ops.size() == batch.ops.size());
  // Encoding what was decoded gives the same bytes: nothing was lost or changed.
  CHECK(encoded(42, decoded.value().batch) == bytes);

  const auto& ops = decoded.value().batch.ops;
  const auto& create = std::get<core::CreateTopicOp>(ops[0]);
  CHECK(create.settings.deadLetterTopic == "dlq");
  CHECK(create.settings.workQueue);
  CHECK(create.createdMs == 123);
  CHECK(create.settings.defaultTtlMs == 8);
  CHECK(create.settings.deadLetterExpired);
  const auto& append = std::get<core::AppendOp>(ops[1]);
  REQUIRE(append.messages.size() == 2);
  CHECK(append.firstOffset == 10);
  CHECK(append.messages[0].data.key == std::string("k\0k", 3));
  CHECK(append.messages[0].data.payload == std::string("p\0p", 3));
  CHECK(append.messages[0].data.headers.size() == 2);
  CHECK(append.messages[0].dedupExpiresMs == 5000);
  CHECK(append.messages[0].data.deliverAtMs == 1500);
  CHECK(append.messages[0].data.ttlMs == 250);
  CHECK_FALSE(append.messages[1].data.key.has_value());
  const auto& pending = std::get<core::PutPendingOp>(ops[4]);
  CHECK(pending.cause == core::RedeliveryCause::kAckTimeout);
  CHECK(pending.visibleAtMs == 777);
  CHECK(std::get<core::PutGroupOp>(ops[3]).group.deadLettered == 2);
  CHECK(std::get<core::ExpireDedupOp>(ops[8]).nowMs == 4242);
  const auto& txn = std::get<core::PutTxnOp>(ops[11]);
  CHECK(txn.id == "tx-1");
  CHECK(txn.fingerprint == std::string("\x01\x00\x02", 3));
  CHECK(txn.expiresMs == 9000);
  REQUIRE(txn.outputs.size() == 2);
  REQUIRE(txn.outputs[0].size() == 2);
  CHECK(txn.outputs[0][1].offset == 11);
  CHECK(txn.outputs[0][1].duplicate);
  CHECK(txn.outputs[1][0].offset == 3);
  CHECK(create.settings.subjects == std::vector<std::string>{"orders.>", "audit.*.x"});
  CHECK(append.messages[0].data.subject == "orders.eu.created");
  CHECK(append.messages[1].data.subject.empty());
  CHECK(std::get<core::PutGroupOp>(ops[3]).group.filter ==
        std::vector<std::string>{"orders.eu.>", "orders.*.paid"});
  const auto& subjects = std::get<core::SetSubjectsOp>(ops[12]);
  CHECK(subjects.id == 7);
  CHECK(subjects.topic == "orders");
  CHECK(subjects.subjects == std::vector<std::string>{"orders.*", ">"});
  const auto& principal = std::get<core::PutPrincipalOp>(ops[13]).principal;
  CHECK(principal.name == "svc.billing");
  REQUIRE(principal.rules.size() == 2);
  CHECK_FALSE(principal.rules[1].allow);
  CHECK(principal.rules[1].actions == 2);
  CHECK(principal.rules[1].pattern == "orders.x");
  CHECK(principal.createdMs == 55);
  const auto& credential = std::get<core::PutCredentialOp>(ops[14]).credential;
  CHECK(credential.secretHash == std::string(31, 'h') + std::string(1, '\0'));
  CHECK(credential.scope[0].pattern == "orders.eu");
  CHECK(credential.issuer == 4);
  CHECK(credential.expiresAtMs == 7777);
  CHECK(credential.note == "eu feeder");
  CHECK(std::get<core::RevokeCredentialsOp>(ops[15]).ids == std::vector<uint64_t>{9, 10});
  CHECK(std::get<core::DeletePrincipalOp>(ops[16]).name == "svc.billing");
}

TEST_CASE("a batch's commit time survives both forms and reads without its ops", "[store][codec]") {
  for (BatchForm form : {BatchForm::kShipped, BatchForm::kStored}) {
    std::string bytes = bytesOf(codec::encodeBatch(9, everyOp(), form, 1'700'000'000'123));
    std::vector<codec::StoredAppendRef> refs;
    auto decoded = codec::decodeBatch(bytes, &refs);
    REQUIRE(decoded.status().toString() == "ok");
    CHECK(decoded.value().loggedAtMs == 1'700'000'000'123);
    auto at = codec::loggedAtMsOf(bytes);
    REQUIRE(at.ok());
    CHECK(at.value() == 1'700'000'000'123);
  }
  CHECK(codec::decodeBatch(encoded(9, everyOp())).value().loggedAtMs == 0);  // not recorded
  CHECK(codec::loggedAtMsOf("short").status().code() == Code::kInvalidArgument);
}

TEST_CASE("the largest batch a publish makes decodes in both forms", "[store][codec]") {
  core::AppendOp append{1, "orders", 1, {}};
  for (int i = 0; i < 10'000; ++i) {
    MessageData m = message("p", "id-" + std::to_string(i));
    m.key = "k";
    m.headers = {{"h", "v"}};
    append.messages.push_back({1, m, 2});
  }
  core::WriteBatch batch = batchOf({append});
  auto shipped = codec::decodeBatch(encoded(1, batch));
  REQUIRE(shipped.status().toString() == "ok");
  CHECK(std::get<core::AppendOp>(shipped.value().batch.ops[0]).messages.size() == 10'000);
  std::vector<codec::StoredAppendRef> refs;
  auto stored = codec::decodeBatch(encoded(1, batch, BatchForm::kStored), &refs);
  REQUIRE(stored.status().toString() == "ok");
  CHECK(refs.at(0).count == 10'000);
}

TEST_CASE("the stored form leaves the bodies out and says where they are", "[store][codec]") {
  core::WriteBatch batch = everyOp();
  std::string stored = encoded(3, batch, BatchForm::kStored);
  CHECK(stored.size() < encoded(3, batch).size());
  CHECK(stored.find("plain") == std::string::npos);

  std::vector<codec::StoredAppendRef> refs;
  auto decoded = codec::decodeBatch(stored, &refs);
  REQUIRE(decoded.ok());
  REQUIRE(refs.size() == 1);
  CHECK(refs[0].op == 1);
  CHECK(refs[0].topic == 7);
  CHECK(refs[0].firstOffset == 10);
  CHECK(refs[0].count == 2);
  const auto& append = std::get<core::AppendOp>(decoded.value().batch.ops[1]);
  REQUIRE(append.messages.size() == 2);
  CHECK(append.messages[0].dedupExpiresMs == 5000);
  CHECK(append.messages[0].data.payload.empty());

  // Where complete ops are expected, a stored append is an error, not an empty message.
  auto shipped = codec::decodeBatch(stored);
  CHECK(shipped.status().code() == Code::kInvalidArgument);
  CHECK_THAT(shipped.status().message(), Contains("without its message bodies"));
}

TEST_CASE("fields a newer broker added are ignored", "[store][codec]") {
  std::string bytes = encoded(5, everyOp());
  auto words = kj::heapArray<capnp::word>(bytes.size() / sizeof(capnp::word));
  std::memcpy(words.begin(), bytes.data(), bytes.size());
  capnp::FlatArrayMessageReader reader(words);
  auto old = reader.getRoot<capnp::AnyStruct>();

  // The same batch with a bigger root struct: one more data word and one more pointer.
  capnp::MallocMessageBuilder builder;
  auto grown = builder.getRoot<capnp::AnyPointer>().initAsAnyStruct(
      static_cast<uint32_t>(old.getDataSection().size() / sizeof(capnp::word) + 1),
      static_cast<uint32_t>(old.getPointerSection().size() + 1));
  auto data = grown.getDataSection();
  std::memcpy(data.begin(), old.getDataSection().begin(), old.getDataSection().size());
  std::memset(data.begin() + old.getDataSection().size(), 0xab, sizeof(capnp::word));
  auto pointers = grown.getPointerSection();
  for (size_t i = 0; i < old.getPointerSection().size(); ++i)
    pointers[i].set(old.getPointerSection()[i]);
  pointers[old.getPointerSection().size()].setAs<capnp::Text>("from the future");

  auto decoded = codec::decodeBatch(bytesOf(capnp::messageToFlatArray(builder)));
  REQUIRE(decoded.status().toString() == "ok");
  CHECK(decoded.value().seq == 5);
  CHECK(encoded(5, decoded.value().batch) == bytes);
}

TEST_CASE("a truncated batch is rejected with kInvalidArgument", "[store][codec]") {
  std::string bytes = encoded(9, everyOp());
  for (size_t size = 0; size < bytes.size(); ++size) {
    auto decoded = codec::decodeBatch(std::string_view(bytes.data(), size));
    INFO("truncated to " << size << " of " << bytes.size() << " bytes");
    REQUIRE_FALSE(decoded.ok());
    CHECK(decoded.status().code() == Code::kInvalidArgument);
    CHECK_THAT(decoded.status().message(), Contains("write batch of " + std::to_string(size)));
  }
  auto trailing = codec::decodeBatch(bytes + std::string(8, '\0'));
  CHECK_THAT(trailing.status().message(), Contains("trailing bytes"));
}

TEST_CASE("corrupt bytes decode to an error or to a valid batch, never worse", "[store][codec]") {
  std::string bytes = encoded(9, everyOp());
  size_t rejected = 0;
  for (size_t i = 0; i < bytes.size(); ++i) {
    for (char flip : {'\x01', '\x80', '\xff'}) {
      std::string corrupt = bytes;
      corrupt[i] = static_cast<char>(corrupt[i] ^ flip);
      auto decoded = codec::decodeBatch(corrupt);
      if (decoded.ok()) continue;
      ++rejected;
      CHECK(decoded.status().code() == Code::kInvalidArgument);
    }
  }
  CHECK(rejected > 0);
}

// Encodes `batch` (in `form`), lets `edit` change the encoding, and returns it.
template <typename Edit>
std::string edited(const core::WriteBatch& batch, Edit edit, BatchForm form = BatchForm::kShipped) {
  std::string bytes = encoded(1, batch, form);
  auto words = kj::heapArray<capnp::word>(bytes.size() / sizeof(capnp::word));
  std::memcpy(words.begin(), bytes.data(), bytes.size());
  capnp::FlatArrayMessageReader reader(words);
  capnp::MallocMessageBuilder builder;
  builder.setRoot(reader.getRoot<records::WriteBatch>());
  edit(builder.getRoot<records::WriteBatch>());
  return bytesOf(capnp::messageToFlatArray(builder));
}

TEST_CASE("batches that decode but cannot be meant are rejected naming the problem",
          "[store][codec]") {
  auto reject = [](const std::string& bytes, const std::string& why) {
    auto decoded = codec::decodeBatch(bytes);
    REQUIRE_FALSE(decoded.ok());
    CHECK(decoded.status().code() == Code::kInvalidArgument);
    CHECK_THAT(decoded.status().message(), Contains(why));
  };
  core::WriteBatch batch = everyOp();
  reject(encoded(0, batch), "sequence number 0");
  reject(edited(batch,
                [](records::WriteBatch::Builder b) {
                  b.getOps()[0].getCreateTopic().setName("bad name");
                }),
         "op 1:");
  reject(
      edited(batch,
             [](records::WriteBatch::Builder b) { b.getOps()[0].getCreateTopic().setTopicId(0); }),
      "op 1: topic id 0");
  reject(
      edited(batch,
             [](records::WriteBatch::Builder b) { b.getOps()[1].getAppend().setFirstOffset(0); }),
      "op 2: offset 0");
  reject(edited(batch,
                [](records::WriteBatch::Builder b) { b.getOps()[1].getAppend().initMessages(0); }),
         "op 2: an append of no messages");
  // A corrupt count must not make the decoder allocate for billions of messages.
  std::string hugeCount = edited(
      batch,
      [](records::WriteBatch::Builder b) {
        auto append = b.getOps()[1].getAppend();
        append.setCount(4'000'000'000u);
        append.disownDedupExpiresMs();
      },
      BatchForm::kStored);
  std::vector<codec::StoredAppendRef> refs;
  auto huge = codec::decodeBatch(hugeCount, &refs);
  CHECK(huge.status().code() == Code::kInvalidArgument);
  CHECK_THAT(huge.status().message(), Contains("op 2: an append of more than 65536 messages"));
  reject(edited(batch,
                [](records::WriteBatch::Builder b) {
                  b.getOps()[4].getPutPending().getPending().setCause(99);
                }),
         "op 5: unknown redelivery cause 99");
  reject(edited(batch,
                [](records::WriteBatch::Builder b) {
                  b.getOps()[12].getSetSubjects().getSubjects().set(0, "orders.a*");
                }),
         "op 13: subject pattern");
  reject(edited(batch,
                [](records::WriteBatch::Builder b) {
                  b.getOps()[3].getPutGroup().getGroup().getFilter().set(1, "orders.eu.>");
                }),
         "twice");
  reject(edited(batch,
                [](records::WriteBatch::Builder b) {
                  b.getOps()[0].getCreateTopic().getSettings().getSubjects().set(0, "a.>.b");
                }),
         "op 1: subject pattern");
  reject(edited(batch,
                [](records::WriteBatch::Builder b) {
                  // A union member this broker does not know: the discriminant of a newer op.
                  capnp::AnyStruct::Builder op = b.getOps()[2];
                  auto offset = capnp::Schema::from<records::WriteOp>()
                                    .getProto()
                                    .getStruct()
                                    .getDiscriminantOffset();
                  uint16_t which = 200;
                  std::memcpy(op.getDataSection().begin() + offset * 2, &which, sizeof which);
                }),
         "op 3: unknown operation (200)");
}

}  // namespace
}  // namespace sluice::store::test
