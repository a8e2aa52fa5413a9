#pragma once

// Producer::State: what a Producer handle shares with its copies — the connection, this
// producer's id (naming its ProducerIo on the I/O thread) and its batching options. The
// batching itself happens on the I/O thread; see producer_io.h.
//
// Thread: any; every field is constant after construction.

#include <cstdint>
#include <memory>

#include "connection.h"
#include "sluice/client.h"

namespace sluice {

struct Producer::State {
  State(std::shared_ptr<detail::Connection> connection, ProducerOptions options);
  // Lets the I/O thread drop this producer's queues once they are empty. Queued messages are
  // still sent: their futures and callbacks complete as usual.
  ~State();
  State(const State&) = delete;
  State& operator=(const State&) = delete;

  const std::shared_ptr<detail::Connection> connection;  // Null for a moved-from Client's.
  const uint64_t id;
  const ProducerOptions options;
};

}  // namespace sluice
