#pragma once

// The human views of broker objects (topics, groups, consumers, stats), built from
// format.h's units and tables. Pure functions; every string ends with '\n'.

#include <string>
#include <vector>

#include "sluice/client.h"

namespace sluice::cli {

std::string topicsTable(const std::vector<TopicInfo>& topics);
// Settings, counts, offsets and rates, then the groups table.
std::string topicView(const TopicInfo& topic);
std::string groupsTable(const std::vector<GroupInfo>& groups);
// The group's fields, then its consumers table.
std::string groupView(const GroupInfo& group);
std::string consumersTable(const std::vector<ConsumerInfo>& consumers);
std::string statsView(const BrokerStats& stats);

}  // namespace sluice::cli
