#pragma once

// A broker driven through every kind of durable change it makes (publishes with ids, keys and
// headers, delays, acks, nacks, ack timeouts, dead-lettering, held and released messages, group
// create/delete/reset, every retention rule, work queues, a transaction, purge and delete),
// through the client library: what replay and replication tests compare stores after.

#include "broker_fixture.h"

namespace sluice::test {

void driveEveryKindOfWrite(Broker& broker);

}  // namespace sluice::test
