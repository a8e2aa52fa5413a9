#include "format.h"

#include <catch2/catch.hpp>

#include "views.h"

using namespace sluice::cli;
using Catch::Matchers::Contains;

TEST_CASE("bytes print in IEC units with one decimal below ten", "[cli][format]") {
  CHECK(formatBytes(0) == "0 B");
  CHECK(formatBytes(512) == "512 B");
  CHECK(formatBytes(1023) == "1023 B");
  CHECK(formatBytes(1024) == "1 KiB");
  CHECK(formatBytes(1536) == "1.5 KiB");
  CHECK(formatBytes(64 * 1024) == "64 KiB");
  CHECK(formatBytes(1258291) == "1.2 MiB");
  CHECK(formatBytes(10 * 1024 * 1024) == "10 MiB");
  CHECK(formatBytes(2ULL << 30) == "2 GiB");
  CHECK(formatBytes(1024 * 1024 - 1) == "1 MiB");  // Not "1024 KiB".
  CHECK(formatBytes(UINT64_MAX) == "16 EiB");
}

TEST_CASE("counts and rates print with SI suffixes", "[cli][format]") {
  CHECK(formatSi(0) == "0");
  CHECK(formatSi(-3) == "0");
  CHECK(formatSi(0.5) == "0.5");
  CHECK(formatSi(7) == "7");
  CHECK(formatSi(950) == "950");
  CHECK(formatSi(999.6) == "1k");
  CHECK(formatSi(3400) == "3.4k");
  CHECK(formatSi(12345) == "12k");
  CHECK(formatSi(1500000) == "1.5M");
  CHECK(formatRate(3400) == "3.4k msg/s");
  CHECK(formatRate(0) == "0 msg/s");
}

TEST_CASE("durations print in their two largest units", "[cli][format]") {
  CHECK(formatDuration(0) == "0s");
  CHECK(formatDuration(-5) == "0s");
  CHECK(formatDuration(450) == "450ms");
  CHECK(formatDuration(1500) == "1.5s");
  CHECK(formatDuration(2000) == "2s");
  CHECK(formatDuration(13000) == "13s");
  CHECK(formatDuration(133000) == "2m13s");
  CHECK(formatDuration(120000) == "2m");
  CHECK(formatDuration(3600000) == "1h");
  CHECK(formatDuration(3 * 3600000 + 7 * 60000 + 5000) == "3h7m");
  CHECK(formatDuration(7LL * 86400000) == "7d");
  CHECK(formatDuration(2LL * 86400000 + 4 * 3600000 + 59000) == "2d4h");
  CHECK(formatDuration(86400000 + 60000) == "1d");
}

TEST_CASE("timestamps print as RFC 3339 UTC with milliseconds", "[cli][format]") {
  CHECK(formatTimestamp(0) == "1970-01-01T00:00:00.000Z");
  CHECK(formatTimestamp(1714557600123) == "2024-05-01T10:00:00.123Z");
  CHECK(formatTimestamp(1709164800000) == "2024-02-29T00:00:00.000Z");
  CHECK(formatTimestamp(-1) == "1969-12-31T23:59:59.999Z");
}

TEST_CASE("tables align columns and right-align numbers", "[cli][format]") {
  Table table({{"NAME"}, {"COUNT", Table::Align::kRight}});
  table.addRow({"orders", "5"});
  table.addRow({"a", "12345"});
  CHECK(table.render() ==
        "NAME    COUNT\n"
        "orders      5\n"
        "a       12345\n");
}

TEST_CASE("table widths count characters, not bytes", "[cli][format]") {
  Table table({{"K"}, {"V"}});
  table.addRow({"caf\xc3\xa9", "x"});
  table.addRow({"tea", "y"});
  CHECK(table.render() == "K     V\ncaf\xc3\xa9  x\ntea   y\n");
}

TEST_CASE("field lists align their values", "[cli][format]") {
  CHECK(renderFields({{"Topic", "orders"}, {"Max age", "7d"}}) ==
        "Topic:    orders\n"
        "Max age:  7d\n");
}

TEST_CASE("views show limits, units and groups", "[cli][format]") {
  sluice::TopicInfo topic;
  topic.name = "orders";
  topic.messages = 1204;
  topic.bytes = 1258291;
  topic.firstOffset = 1;
  topic.lastOffset = 1204;
  topic.publishRate = 3400;
  topic.settings.maxAge = std::chrono::hours(24 * 7);
  topic.settings.maxMessageSize = 1 << 20;
  topic.settings.dedupWindow = std::chrono::minutes(2);
  sluice::GroupInfo group;
  group.name = "billing";
  group.position = 1100;
  group.lagMessages = 105;
  group.lagMs = 133000;
  group.consumers.resize(2);
  topic.groups.push_back(group);

  std::string view = topicView(topic);
  CHECK_THAT(view, Contains("Topic:              orders\n"));
  CHECK_THAT(view, Contains("Bytes:              1.2 MiB\n"));
  CHECK_THAT(view, Contains("Max age:            7d\n"));
  CHECK_THAT(view, Contains("Max bytes:          unlimited\n"));
  CHECK_THAT(view, Contains("Max message size:   1 MiB\n"));
  CHECK_THAT(view, Contains("Dead-letter topic:  -\n"));
  CHECK_THAT(view, Contains("Default TTL:        none\n"));
  CHECK_THAT(view, Contains("Expired messages:   dropped\n"));
  CHECK_THAT(view, Contains("Expired:            0 removed since broker start\n"));
  CHECK_THAT(view, Contains("Publish rate:       3.4k msg/s\n"));
  CHECK_THAT(view, Contains("Subjects:           orders (its own name only)\n"));
  CHECK_THAT(view, Contains("GROUP    POSITION  PENDING  LAG  LAG TIME"));
  CHECK_THAT(view, Contains("billing      1100        0  105     2m13s"));

  std::string list = topicsTable({topic});
  CHECK_THAT(list, Contains("orders      1204  1.2 MiB      1  1204       1    3.4k msg/s"));

  sluice::TopicInfo empty;
  empty.name = "new";
  CHECK_THAT(topicsTable({empty}),
             Contains("new           0    0 B      -     -       0       0 msg/s"));
  CHECK_THAT(topicView(empty), Contains("No consumer groups."));
}

TEST_CASE("views show a topic's subject patterns and a group's filter", "[cli][format]") {
  sluice::TopicInfo topic;
  topic.name = "orders";
  topic.settings.subjects = {"orders.>", "billing.*"};
  sluice::GroupInfo group;
  group.topic = "orders";
  group.name = "eu";
  group.lagMessages = 3;
  group.filter = {"orders.eu.*", "orders.uk.*"};
  topic.groups.push_back(group);
  sluice::GroupInfo all;
  all.name = "all";
  topic.groups.push_back(all);

  std::string view = topicView(topic);
  CHECK_THAT(view, Contains("Subjects:           orders.>,billing.*\n"));
  CHECK_THAT(view, Contains("CONSUMERS  FILTER\n"));
  CHECK_THAT(view, Contains("0  orders.eu.*,orders.uk.*\n"));
  CHECK_THAT(view, Contains("0  -\n"));  // The unfiltered group.
  CHECK_THAT(topicsTable({topic}), Contains("SUBJECTS\n"));
  CHECK_THAT(topicsTable({topic}), Contains("msg/s  orders.>,billing.*\n"));
  sluice::TopicInfo plain;
  plain.name = "plain";
  CHECK_THAT(topicsTable({plain}), Contains("msg/s  -\n"));

  std::string groupText = groupView(group);
  CHECK_THAT(groupText, Contains("Filter:         orders.eu.*,orders.uk.*\n"));
  CHECK_THAT(groupText, Contains("Lag:            3 messages, 0s (matching the filter)\n"));
  CHECK_THAT(groupView(all), Contains("Filter:         none (every message)\n"));
}

TEST_CASE("a routed publish prints TOPIC=OFFSET per capturing topic", "[cli][format]") {
  sluice::RoutedAcks acks = {{"audit", {{12, false}, {13, false}}},
                             {"orders", {{5, false}, {6, true}}}};
  CHECK(formatRoutedAck(acks, 0) == "audit=12 orders=5");
  CHECK(formatRoutedAck(acks, 1) == "audit=13 orders=6");
  CHECK(formatRoutedAck({{"orders", {{9, false}}}}, 0) == "orders=9");
  CHECK(joinPatterns({"a.>", "b.*"}) == "a.>,b.*");
  CHECK(joinPatterns({}).empty());
}

TEST_CASE("the group view lists each consumer with its in-flight count", "[cli][format]") {
  sluice::GroupInfo group;
  group.topic = "orders";
  group.name = "billing";
  sluice::ConsumerInfo consumer;
  consumer.id = 7;
  consumer.peer = "127.0.0.1:5555";
  consumer.inFlight = 3;
  consumer.prefetch = 256;
  group.consumers.push_back(consumer);
  std::string view = groupView(group);
  CHECK_THAT(view, Contains("Consumers:      1\n"));
  CHECK_THAT(view, Contains("CONSUMER  PEER            IN FLIGHT  PREFETCH  CONNECTED"));
  CHECK_THAT(view, Contains("       7  127.0.0.1:5555          3       256"));
  group.consumers[0].prefetch = 0;  // A fetch consumer.
  CHECK_THAT(groupView(group), Contains("       7  127.0.0.1:5555          3     fetch"));
}

TEST_CASE("stats show storage against its limit", "[cli][format]") {
  sluice::BrokerStats stats;
  stats.version = "0.1.0";
  stats.uptimeMs = 133000;
  stats.storageUsed = 512ULL << 20;
  stats.storageLimit = 2ULL << 30;
  std::string view = statsView(stats);
  CHECK_THAT(view, Contains("Version:        0.1.0\n"));
  CHECK_THAT(view, Contains("Uptime:         2m13s\n"));
  CHECK_THAT(view, Contains("Storage:        512 MiB of 2 GiB (25%)\n"));
}

TEST_CASE("cluster status shows each broker's role, sync and lag", "[cli][format]") {
  sluice::ClusterStatus standalone;
  CHECK(clusterView(standalone) == "Standalone broker: not in a cluster, nothing is replicated.\n");

  sluice::ClusterStatus cluster;
  cluster.clusterId = "prod";
  cluster.leader = "b2";
  cluster.epoch = 4;
  cluster.minInsync = 2;
  cluster.lastSeq = 120;
  cluster.inSync = {"b2", "b1"};
  sluice::ReplicaInfo leader{"b2", "10.0.0.2:7400", "10.0.0.2:7402", true, true, 120, 0};
  sluice::ReplicaInfo behind{"b1", "10.0.0.1:7400", "10.0.0.1:7402", true, true, 117, 1500};
  sluice::ReplicaInfo gone{"b3", "", "", false, false, 90, -1};
  cluster.brokers = {leader, behind, gone};
  std::string view = clusterView(cluster);
  CHECK_THAT(view, Contains("Cluster:     prod\n"));
  CHECK_THAT(view, Contains("Leader:      b2 (epoch 4)\n"));
  CHECK_THAT(view, Contains("In sync:     b2, b1 (min_insync 2)\n"));
  CHECK_THAT(view,
             Contains("b2      leader    yes    yes        120    0        now  10.0.0.2:7400"));
  CHECK_THAT(view, Contains("b1      follower  yes    yes        117    3   1.5s ago"));
  CHECK_THAT(view, Contains("b3      follower  no     no          90   30      never  -"));
}

TEST_CASE("a replicated topic shows its leader and replicas", "[cli][format]") {
  sluice::TopicInfo topic;
  topic.name = "orders";
  CHECK_THAT(topicView(topic), !Contains("Leader:"));
  topic.leader = "b2";
  topic.replicas = {"b2", "b1", "b3"};
  topic.inSync = {"b2", "b1"};
  std::string view = topicView(topic);
  CHECK_THAT(view, Contains("Leader:"));
  CHECK_THAT(view, Contains("b2, b1, b3\n"));
  CHECK_THAT(view, Contains("In sync:"));
}
