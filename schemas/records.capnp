@0xf7703a00080966d1;
# Stored record formats (values in the LMDB databases; keys are documented in
# broker/src/store/README.md) and the write log's batch format. An on-disk format: only add
# fields. Independent of the RPC schema: the wire may change without touching the disk.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("sluice::records");

struct StoredHeader {
  key @0 :Text;
  value @1 :Text;
}

struct StoredSettings {
  # Effective settings (defaults applied); 0 limits mean unlimited.
  maxAgeMs @0 :UInt64;
  maxBytes @1 :UInt64;
  maxMessages @2 :UInt64;
  maxMessageSize @3 :UInt32;
  workQueue @4 :Bool;
  maxDeliveries @5 :UInt32;
  deadLetterTopic @6 :Text;
  dedupWindowMs @7 :UInt64;
  defaultTtlMs @8 :UInt32;      # Time to live of messages published without one (0: none).
  deadLetterExpired @9 :Bool;   # Expired messages go to deadLetterTopic (reason "expired").
  subjects @10 :List(Text);     # Subject patterns the topic captures; empty: its own name.
}

struct StoredMessage {
  timestampMs @0 :Int64;
  key @1 :Data;
  hasKey @2 :Bool;
  headers @3 :List(StoredHeader);
  payload @4 :Data;
  id @5 :Text;
  delayMs @6 :UInt32;           # Delivered from timestampMs + delayMs on (0: at once). Fits
                                # beside hasKey, so it costs no bytes.
  ttlMs @7 :UInt32;             # Expires this long after it became deliverable (timestampMs +
                                # delayMs); 0: never. The broker applies the topic's default
                                # before storing, so replay needs no settings.
  subject @8 :Text;             # The subject it was published to; empty: its topic's name.
}

struct StoredTopic {
  id @0 :UInt32;
  settings @1 :StoredSettings;
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
  pending @4 :UInt64;           # Entries of this group in `pending` (kept by the store).
  keyOrdered @5 :Bool;          # Never two messages of one key in flight; each key in order.
  scheduled @6 :UInt64;         # Of `pending`: delayed messages not yet delivered (waiting at
                                # a time, never delivered; not parked). Kept by the store.
  filter @7 :List(Text);        # Subject patterns: the group gets only matching messages
                                # (empty: all). Chosen at creation, never changed.
}

struct StoredPending {
  deliveries @0 :UInt32;        # Times delivered so far.
  visibleAtMs @1 :Int64;        # Due for (re)delivery at this time; 0: held by a consumer.
  cause @2 :UInt8;              # Why it became due (core::RedeliveryCause), for dead letters.
}

struct StoredDedup {
  offset @0 :UInt64;
  expiresMs @1 :Int64;
}

struct StoredTxn {
  # An applied transaction (ack-and-publish), kept for retries until expiresMs.
  fingerprint @0 :Data;         # SHA-256 of the request's content (core/transaction.cpp).
  expiresMs @1 :Int64;
  counts @2 :List(UInt32);      # Messages published per topic, in request order.
  offsets @3 :List(UInt64);     # Their answers, all topics in request order.
  duplicates @4 :List(Bool);
}

# The write log --------------------------------------------------------------------------------
# Every committed change to durable state is a WriteOp; the ops of one call form a WriteBatch,
# applied in order, all or nothing, and numbered with a gap-free sequence. Applying is
# deterministic: times, offsets and ids are decided before a batch is built and travel in it.

struct LoggedMessage {
  timestampMs @0 :Int64;
  key @1 :Data;
  hasKey @2 :Bool;
  headers @3 :List(StoredHeader);
  payload @4 :Data;
  id @5 :Text;
  dedupExpiresMs @6 :Int64;     # > 0: remember `id` until this time.
  delayMs @7 :UInt32;           # As StoredMessage.delayMs.
  ttlMs @8 :UInt32;             # As StoredMessage.ttlMs.
  subject @9 :Text;             # As StoredMessage.subject.
}

struct StoredRule {
  allow @0 :Bool;
  actions @1 :UInt8;            # Bits: 1 publish, 2 consume, 4 manage, 8 admin.
  pattern @2 :Text;
}

struct StoredPrincipal {
  # In `auth` under "p" + name.
  name @0 :Text;
  rules @1 :List(StoredRule);
  createdMs @2 :Int64;
}

struct StoredCredential {
  # In `auth` under "c" + the id (8 bytes, big-endian). Only the secret's SHA-256 is kept.
  id @0 :UInt64;
  principal @1 :Text;
  issuer @2 :UInt64;            # The credential it was minted with; 0: none.
  scoped @3 :Bool;
  scope @4 :List(StoredRule);
  expiresAtMs @5 :Int64;        # 0: never.
  createdMs @6 :Int64;
  note @7 :Text;
  secretHash @8 :Data;
}

struct WriteOp {
  union {
    createTopic :group {
      topicId @0 :UInt32;
      name @1 :Text;
      settings @2 :StoredSettings;
      createdMs @3 :Int64;
    }
    deleteTopic :group {
      topicId @4 :UInt32;
      name @5 :Text;
    }
    purgeTopic :group {
      topicId @6 :UInt32;
      name @7 :Text;
    }
    append :group {
      topicId @8 :UInt32;
      name @9 :Text;
      firstOffset @10 :UInt64;  # Messages get firstOffset, firstOffset + 1, ...
      messages @11 :List(LoggedMessage);
      count @12 :UInt32;        # In the log as stored: bodies are in `messages` (or spilled)
                                # and `messages` is empty. In a shipped batch: 0.
      dedupExpiresMs @31 :List(Int64);  # As stored: per message, when any has an id.
    }
    trim :group {
      topicId @13 :UInt32;
      name @14 :Text;
      below @15 :UInt64;        # Drop messages and pending entries with offset < below.
    }
    putGroup :group {
      topicId @16 :UInt32;
      name @17 :Text;
      group @18 :StoredGroup;   # `pending` is ignored: the store counts.
    }
    deleteGroup :group {
      topicId @19 :UInt32;
      name @20 :Text;
    }
    clearPending :group {
      topicId @21 :UInt32;
      name @22 :Text;
    }
    putPending :group {
      topicId @23 :UInt32;
      group @24 :Text;
      offset @25 :UInt64;
      pending @26 :StoredPending;
    }
    removePending :group {
      topicId @27 :UInt32;
      group @28 :Text;
      offset @29 :UInt64;
    }
    expireDedup :group {
      nowMs @30 :Int64;         # Forget ids and transactions whose window ended at or
                                # before this time.
    }
    putTxn :group {
      id @32 :Text;
      txn @33 :StoredTxn;
    }
    setSubjects :group {
      topicId @34 :UInt32;
      name @35 :Text;
      subjects @36 :List(Text);  # Replaces the topic's subject patterns.
    }
    putPrincipal @37 :StoredPrincipal;
    deletePrincipal @38 :Text;
    putCredential @39 :StoredCredential;
    revokeCredentials @40 :List(UInt64);
    beginEpoch :group {
      epoch @41 :UInt64;        # The replication epoch its leader was elected for (> 0).
      leader @42 :Text;         # That leader's broker id.
      cluster @43 :Text;        # The cluster's id.
    }
  }
}

struct WriteBatch {
  seq @0 :UInt64;               # 1, 2, 3, ... with no gaps.
  ops @1 :List(WriteOp);
  loggedAtMs @2 :Int64;         # Unix ms of the commit that first held it (0: not recorded).
}
