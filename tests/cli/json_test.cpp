#include "json.h"

#include <catch2/catch.hpp>

using namespace sluice::cli;

TEST_CASE("topic JSON has the documented fields", "[cli][json]") {
  sluice::TopicInfo topic;
  topic.name = "orders";
  topic.messages = 3;
  topic.bytes = 30;
  topic.firstOffset = 1;
  topic.lastOffset = 3;
  topic.settings.maxAge = std::chrono::seconds(60);
  topic.createdMs = 1714557600123;
  sluice::GroupInfo group;
  group.topic = "orders";
  group.name = "billing";
  group.lagMs = 5;
  topic.groups.push_back(group);

  Json doc = topicToJson(topic);
  CHECK(doc["name"] == "orders");
  CHECK(doc["messages"] == 3);
  CHECK(doc["first_offset"] == 1);
  CHECK(doc["last_offset"] == 3);
  CHECK(doc["created"] == "2024-05-01T10:00:00.123Z");
  CHECK(doc["settings"]["max_age_ms"] == 60000);
  CHECK(doc["settings"]["dead_letter_topic"].is_null());
  CHECK(doc["groups"][0]["name"] == "billing");
  CHECK(doc["groups"][0]["lag_ms"] == 5);
  CHECK(doc["groups"][0]["consumers"].is_array());
  for (const char* key : {"bytes", "published_total", "publish_rate"}) {
    INFO(key);
    CHECK(doc.contains(key));
  }
  for (const char* key : {"max_bytes", "max_messages", "max_message_size", "work_queue",
                          "max_deliveries", "dedup_window_ms"}) {
    INFO(key);
    CHECK(doc["settings"].contains(key));
  }
  CHECK(doc["settings"]["subjects"] == Json::array());
  CHECK(doc["groups"][0]["filter"] == Json::array());
}

TEST_CASE("topic subjects and group filters are arrays of patterns", "[cli][json]") {
  sluice::TopicInfo topic;
  topic.name = "orders";
  topic.settings.subjects = {"orders.>", "billing.*"};
  sluice::GroupInfo group;
  group.name = "eu";
  group.filter = {"orders.eu.*"};
  topic.groups.push_back(group);
  Json doc = topicToJson(topic);
  CHECK(doc["settings"]["subjects"] == Json::array({"orders.>", "billing.*"}));
  CHECK(doc["groups"][0]["filter"] == Json::array({"orders.eu.*"}));
  CHECK(groupToJson(group)["filter"] == Json::array({"orders.eu.*"}));
}

TEST_CASE("a routed publish prints one object per message with each topic's ack", "[cli][json]") {
  sluice::RoutedAcks acks = {{"audit", {{12, false}, {13, true}}},
                             {"orders", {{5, false}, {6, false}}}};
  CHECK(dumpLine(routedAckToJson("orders.eu.created", acks, 1)) ==
        R"({"subject":"orders.eu.created","topics":{"audit":{"offset":13,"duplicate":true},)"
        R"("orders":{"offset":6,"duplicate":false}}})");
}

TEST_CASE("group JSON includes consumers with their in-flight counts", "[cli][json]") {
  sluice::GroupInfo group;
  group.name = "billing";
  group.pending = 4;
  group.deadLettered = 2;
  sluice::ConsumerInfo consumer;
  consumer.id = 9;
  consumer.inFlight = 4;
  group.consumers.push_back(consumer);
  Json doc = groupToJson(group);
  CHECK(doc["pending"] == 4);
  CHECK(doc["dead_lettered"] == 2);
  CHECK(doc["consumers"][0]["id"] == 9);
  CHECK(doc["consumers"][0]["in_flight"] == 4);
  for (const char* key : {"topic", "position", "ack_floor", "lag_messages", "delivered", "acked",
                          "nacked", "redelivered", "created"}) {
    INFO(key);
    CHECK(doc.contains(key));
  }
}

TEST_CASE("stats JSON has the documented fields", "[cli][json]") {
  sluice::BrokerStats stats;
  stats.version = "0.1.0";
  stats.storageLimit = 100;
  Json doc = statsToJson(stats);
  CHECK(doc["version"] == "0.1.0");
  CHECK(doc["storage_limit"] == 100);
  for (const char* key :
       {"uptime_ms", "topics", "messages", "bytes", "storage_used", "connections", "consumers",
        "published_total", "delivered_total", "publish_rate", "delivery_rate", "commits"}) {
    INFO(key);
    CHECK(doc.contains(key));
  }
}

TEST_CASE("a message with default fields has text payload and null key", "[cli][json]") {
  sluice::Message message;
  Json doc = messageToJson(message);
  CHECK(doc["offset"] == 0);
  CHECK(doc["timestamp"] == "1970-01-01T00:00:00.000Z");
  CHECK(doc["key"].is_null());
  CHECK(doc["headers"].is_object());
  CHECK(doc["payload"] == "");
  CHECK_FALSE(doc.contains("payload_base64"));
  CHECK(doc["deliveries"] == 0);
  CHECK(doc["id"].is_null());
  CHECK(doc["subject"].is_null());  // Only a message from no broker lacks a subject.
}

TEST_CASE("publish acks print offset and duplicate", "[cli][json]") {
  CHECK(dumpLine(publishAckToJson({12, true})) == R"({"offset":12,"duplicate":true})");
}

TEST_CASE("invalid UTF-8 in a string does not throw when dumped", "[cli][json]") {
  Json doc{{"peer", "bad\xff"}};
  CHECK(dumpLine(doc) == "{\"peer\":\"bad\xef\xbf\xbd\"}");
}

TEST_CASE("cluster status JSON has the documented fields", "[cli][json]") {
  sluice::ClusterStatus standalone;
  Json alone = clusterToJson(standalone);
  CHECK(alone["cluster"].is_null());
  CHECK(alone["brokers"].empty());

  sluice::ClusterStatus cluster;
  cluster.clusterId = "prod";
  cluster.leader = "b1";
  cluster.epoch = 2;
  cluster.lastSeq = 50;
  cluster.inSync = {"b1"};
  cluster.brokers = {{"b1", "127.0.0.1:7400", "127.0.0.1:7402", true, true, 50, 0},
                     {"b2", "", "", false, false, 40, -1}};
  Json doc = clusterToJson(cluster);
  CHECK(doc["cluster"] == "prod");
  CHECK(doc["leader"] == "b1");
  CHECK(doc["epoch"] == 2);
  CHECK(doc["in_sync"] == Json::array({"b1"}));
  CHECK(doc["brokers"][0]["role"] == "leader");
  CHECK(doc["brokers"][0]["rpc"] == "127.0.0.1:7400");
  CHECK(doc["brokers"][1]["role"] == "follower");
  CHECK(doc["brokers"][1]["rpc"].is_null());
  CHECK(doc["brokers"][1]["lag"] == 10);
  CHECK(doc["brokers"][1]["caught_up_ago_ms"].is_null());
  for (const char* key : {"min_insync", "last_seq"}) {
    INFO(key);
    CHECK(doc.contains(key));
  }
}
