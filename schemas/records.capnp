@0xf7703a00080966d1;
# Stored record formats (values in the LMDB databases; keys are documented in
# broker/src/store/README.md). An on-disk format: only add fields.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("sluice::records");

using Rpc = import "rpc.capnp";

struct StoredMessage {
  timestampMs @0 :Int64;
  key @1 :Data;
  hasKey @2 :Bool;
  headers @3 :List(Rpc.Header);
  payload @4 :Data;
  id @5 :Text;
}

struct StoredTopic {
  id @0 :UInt32;
  settings @1 :Rpc.TopicSettings;
  nextOffset @2 :UInt64;        # Offset the next message gets (offsets start at 1).
  firstOffset @3 :UInt64;       # Oldest retained offset; equals nextOffset when empty.
  messages @4 :UInt64;
  bytes @5 :UInt64;
  createdMs @6 :Int64;
  lastTimestampMs @7 :Int64;    # Timestamps never go backwards within a topic.
}

struct StoredGroup {
  position @0 :UInt64;          # Next offset never yet delivered.
  createdMs @1 :Int64;
  redelivered @2 :UInt64;
  deadLettered @3 :UInt64;
}

struct StoredPending {
  deliveries @0 :UInt32;        # Times delivered so far.
  visibleAtMs @1 :Int64;        # Not redelivered before this time (nack delay).
}

struct StoredDedup {
  offset @0 :UInt64;
  expiresMs @1 :Int64;
}
