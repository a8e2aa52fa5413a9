#pragma once

// The human views of broker objects (topics, groups, consumers, stats, principals,
// credentials), built from
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
// The cluster's fields, then one row per broker; a one-line answer for a standalone broker.
std::string clusterView(const ClusterStatus& cluster);
// Principal, whether authentication is on, the credential and its expiry, rules, scope.
std::string identityView(const Identity& identity);
std::string principalsTable(const std::vector<PrincipalInfo>& principals);
std::string credentialsTable(const std::vector<CredentialInfo>& credentials);
// One line without '\n' describing a credential just made (for stderr beside its secret):
// `token 12 of principal "alice", expires never`, `grant 13 of principal "alice" (minted from
// 12), scope allow consume:orders.>, expires 2024-05-01T10:00:00.000Z`.
std::string credentialSummary(const CredentialInfo& credential);

}  // namespace sluice::cli
