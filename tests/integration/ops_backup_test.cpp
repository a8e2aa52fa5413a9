// Backup and restore against a real sluiced: an online copy taken while publishing goes on,
// restored by starting sluiced on it, holds every topic, message, group position and pending
// delivery as they were. Also `sluice backup` and the errors of Admin::backup.

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "integration/broker_fixture.h"
#include "support/run_process.h"

namespace sluice::test {
namespace {

using Catch::Matchers::Contains;
namespace fs = std::filesystem;

bool hasNoConsumers(Admin admin, std::string_view topic, std::string_view group) {
  auto info = admin.describeGroup(topic, group);
  return info.ok() && info.value().consumers.empty();
}

// Starts a broker on a copy of `backupFile`, the documented restore: DIR/data.mdb.
std::unique_ptr<SluicedProcess> restore(const TempDir& dir, const std::string& backupFile) {
  fs::copy_file(backupFile, dir.path() + "/data.mdb");
  return SluicedProcess::start(dir.path());
}

void checkSameMessages(const std::vector<Message>& restored, const std::vector<Message>& original) {
  REQUIRE(restored.size() == original.size());
  for (size_t i = 0; i < restored.size(); ++i) {
    INFO("offset " << original[i].offset());
    CHECK(restored[i].offset() == original[i].offset());
    CHECK(restored[i].payload() == original[i].payload());
    CHECK(restored[i].key() == original[i].key());
    CHECK(restored[i].headers() == original[i].headers());
    CHECK(restored[i].id() == original[i].id());
    CHECK(restored[i].timestampMs() == original[i].timestampMs());
  }
}

TEST_CASE("a backup taken while publishing restores every topic, message, group and pending one",
          "[integration][ops]") {
  Broker broker;
  TopicSettings settings;
  settings.maxDeliveries = 7;
  createTopic(broker.admin(), "orders", settings);
  createTopic(broker.admin(), "audit");
  publishPayloads(broker.producer(), "orders", 500, "order-");
  std::vector<OutgoingMessage> audit(30);
  for (size_t i = 0; i < audit.size(); ++i) {
    audit[i].payload = std::string(3000, static_cast<char>('a' + i % 26));  // Overflow pages.
    audit[i].key = "k" + std::to_string(i % 3);
    audit[i].headers = {{"source", "test"}, {"n", std::to_string(i)}};
    audit[i].id = "audit-" + std::to_string(i);
  }
  REQUIRE(broker.producer().publishBatch("audit", audit).ok());
  // Enough data that the copy streams many 1 MiB chunks and takes a while.
  createTopic(broker.admin(), "bulk");
  for (int batch = 0; batch < 6; ++batch) {
    std::vector<OutgoingMessage> bulk(1000);
    for (size_t i = 0; i < bulk.size(); ++i)
      bulk[i].payload = std::string(4096, static_cast<char>('A' + (batch * 1000 + i) % 26));
    REQUIRE(broker.producer().publishBatch("bulk", bulk).ok());
  }

  // billing: 60 acknowledged, the rest of what was pushed to it pending. shipping: at latest.
  SubscribeOptions options;
  options.prefetch = 100;
  {
    auto consumer = subscribe(broker.client(), "orders", "billing", options);
    auto received = receiveMessages(consumer, 100);
    REQUIRE(received.size() == 100);
    ackAll({received.begin(), received.begin() + 60});
    consumer.close();
  }
  REQUIRE(eventually([&] { return hasNoConsumers(broker.admin(), "orders", "billing"); }));
  REQUIRE(broker.admin().createGroup("orders", "shipping", StartPosition::latest()).ok());
  REQUIRE(broker.admin().createGroup("audit", "reader", StartPosition::atOffset(10)).ok());
  auto billing = describeGroup(broker.admin(), "orders", "billing");
  auto shipping = describeGroup(broker.admin(), "orders", "shipping");
  auto reader = describeGroup(broker.admin(), "audit", "reader");
  CHECK(billing.ackFloor == 61);
  CHECK(billing.pending == billing.position - 61);
  CHECK(billing.pending >= 40);

  // Publishing goes on, from another connection, during the whole backup.
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> publishedDuring{0};
  std::atomic<uint64_t> failures{0};
  // Connected here: connectTo() asserts with Catch, which is not safe from other threads.
  Client publisherClient = connectTo(broker.process());
  std::thread publisher([&] {
    Producer producer = publisherClient.producer();
    while (!stop.load()) {
      std::vector<OutgoingMessage> batch(20);
      for (auto& m : batch)
        m.payload = "during-" + std::to_string(publishedDuring.load());
      if (producer.publishBatch("orders", batch).ok()) {
        publishedDuring += batch.size();
      } else {
        ++failures;
      }
    }
  });
  REQUIRE(eventually([&] { return publishedDuring.load() > 0; }));
  TempDir backups;
  std::string file = backups.path() + "/sluice.mdb";
  uint64_t beforeBackup = publishedDuring.load();
  auto bytes = broker.admin().backup(file);
  uint64_t duringBackup = publishedDuring.load();
  REQUIRE(eventually([&] { return publishedDuring.load() > duringBackup + 100; }));
  stop = true;
  publisher.join();
  INFO(outcome(bytes));
  REQUIRE(bytes.ok());
  CHECK(failures.load() == 0);
  CHECK(duringBackup > beforeBackup);  // The broker kept serving publishes during the copy.
  CHECK(bytes.value() > 24u << 20);
  CHECK(fs::file_size(file) == bytes.value());
  CHECK(std::distance(fs::directory_iterator(backups.path()), fs::directory_iterator()) == 1);

  // The copy passes the offline check, then serves as the store of a new broker.
  TempDir restoredDir;
  fs::copy_file(file, restoredDir.path() + "/data.mdb");
  auto check = runProcess({sluicedPath(), "--check", "--data", restoredDir.path()});
  INFO(check.stderrText);
  CHECK(check.exitCode == 0);
  fs::remove(restoredDir.path() + "/data.mdb");
  auto restored = restore(restoredDir, file);
  Client client = connectTo(*restored);
  Admin admin = client.admin();

  auto topics = admin.listTopics();
  REQUIRE(topics.ok());
  REQUIRE(topics.value().size() == 3);
  // orders: the 500, then a prefix of what was published meanwhile, identical to the source.
  auto orders = describeTopic(admin, "orders");
  auto ordersNow = describeTopic(broker.admin(), "orders");
  CHECK(orders.lastOffset >= 500);
  CHECK(orders.lastOffset <= ordersNow.lastOffset);
  CHECK(orders.messages == orders.lastOffset);
  CHECK(orders.settings.maxDeliveries == 7);
  checkSameMessages(peekAll(admin, "orders"), [&] {
    auto all = peekAll(broker.admin(), "orders");
    all.resize(orders.lastOffset);
    return all;
  }());
  checkSameMessages(peekAll(admin, "audit"), peekAll(broker.admin(), "audit"));
  checkSameMessages(peekAll(admin, "bulk"), peekAll(broker.admin(), "bulk"));

  // Group positions and pending deliveries as they were.
  auto billingAfter = describeGroup(admin, "orders", "billing");
  CHECK(billingAfter.position == billing.position);
  CHECK(billingAfter.ackFloor == billing.ackFloor);
  CHECK(billingAfter.pending == billing.pending);
  CHECK(describeGroup(admin, "orders", "shipping").position == shipping.position);
  CHECK(describeGroup(admin, "audit", "reader").position == reader.position);

  // The pending ones come again (redelivered), then the rest, in order.
  options.prefetch = 1000;
  auto consumer = subscribe(client, "orders", "billing", options);
  auto again = receiveMessages(consumer, billing.pending);
  REQUIRE(again.size() == billing.pending);
  std::vector<uint64_t> pendingOffsets = offsetsOf(again);
  std::sort(pendingOffsets.begin(), pendingOffsets.end());
  CHECK(pendingOffsets == offsetRange(61, billing.position - 1));
  for (const auto& m : again)
    CHECK(m.deliveries() >= 2);
  auto next = receiveMessages(consumer, 1);
  REQUIRE(next.size() == 1);
  CHECK(next[0].offset() == billing.position);
  CHECK(next[0].deliveries() == 1);
  // Deduplication ids survived too.
  OutgoingMessage repeat;
  repeat.payload = "again";
  repeat.id = "audit-3";
  auto ack = client.producer().publish("audit", repeat);
  REQUIRE(ack.ok());
  CHECK(ack.value().duplicate);
  CHECK(ack.value().offset == 4);
}

TEST_CASE("sluice backup writes the file and reports its size, also as JSON",
          "[integration][ops]") {
  Broker broker;
  createTopic(broker.admin(), "t");
  publishPayloads(broker.producer(), "t", 10);
  TempDir backups;
  std::string file = backups.path() + "/copy.mdb";
  std::ofstream(file) << "an older backup";  // Replaced atomically.
  std::string address = broker.process().address();

  auto human = runProcess({sluiceCliPath(), "--broker", address, "backup", file});
  INFO(human.stderrText);
  REQUIRE(human.exitCode == 0);
  auto size = fs::file_size(file);
  CHECK(size > 4096);
  CHECK_THAT(human.stdoutText, Contains(file) && Contains(std::to_string(size) + " bytes"));

  auto json = runProcess({sluiceCliPath(), "--broker", address, "backup", file, "--json"});
  INFO(json.stderrText);
  REQUIRE(json.exitCode == 0);
  auto document = nlohmann::json::parse(json.stdoutText);
  CHECK(document["path"] == file);
  CHECK(document["bytes"] == fs::file_size(file));
  CHECK(std::distance(fs::directory_iterator(backups.path()), fs::directory_iterator()) == 1);

  TempDir restoredDir;
  auto restored = restore(restoredDir, file);
  Client client = connectTo(*restored);
  CHECK(describeTopic(client.admin(), "t").messages == 10);
}

TEST_CASE("backup refuses a path it cannot write and leaves nothing behind", "[integration][ops]") {
  Broker broker;
  TempDir dir;
  SECTION("the directory does not exist") {
    auto result = broker.admin().backup(dir.path() + "/missing/copy.mdb");
    CHECK_THAT(outcome(result), IsError(ErrorCode::kInvalidArgument));
    CHECK_THAT(outcome(result), Contains("does not exist"));
  }
  SECTION("the path is a directory") {
    CHECK_THAT(outcome(broker.admin().backup(dir.path())), IsError(ErrorCode::kInvalidArgument));
  }
  SECTION("the parent is a file") {
    std::ofstream(dir.path() + "/file") << "x";
    auto result = broker.admin().backup(dir.path() + "/file/copy.mdb");
    CHECK_THAT(outcome(result), IsError(ErrorCode::kInvalidArgument));
  }
  SECTION("an empty path") {
    CHECK_THAT(outcome(broker.admin().backup("")), IsError(ErrorCode::kInvalidArgument));
  }
  SECTION("the directory is not writable") {
    if (::geteuid() == 0) {
      WARN("running as root: every directory is writable, nothing to test");
      return;
    }
    fs::create_directory(dir.path() + "/ro");
    fs::permissions(dir.path() + "/ro", fs::perms::owner_read | fs::perms::owner_exec);
    auto result = broker.admin().backup(dir.path() + "/ro/copy.mdb");
    fs::permissions(dir.path() + "/ro", fs::perms::owner_all);
    CHECK_THAT(outcome(result), IsError(ErrorCode::kInvalidArgument));
    CHECK_THAT(outcome(result), Contains("Permission denied"));
  }
  SECTION("the CLI says why and exits 1") {
    auto run = runProcess({sluiceCliPath(), "--broker", broker.process().address(), "backup",
                           dir.path() + "/missing/copy.mdb"});
    CHECK(run.exitCode == 1);
    CHECK_THAT(run.stderrText, Contains("invalidArgument") && Contains("does not exist"));
  }
  for (const auto& entry : fs::recursive_directory_iterator(dir.path())) {
    INFO(entry.path());
    CHECK(entry.path().filename().string().find(".tmp-") == std::string::npos);
  }
  CHECK(broker.admin().stats().ok());
}

}  // namespace
}  // namespace sluice::test
