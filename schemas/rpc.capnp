@0x992f0d7b263ff4cd;
# The Sluice RPC interface. A client bootstraps a `Broker` capability and publishes, subscribes
# and administers through it. Every business failure is an `Error` in a result union; an RPC
# exception means a bug or a lost connection, never a rejected request.
#
# Compatibility: fields and methods are only ever added, never renumbered or removed.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("sluice::wire");

enum ErrorCode {
  # The registry of errors a client can act on. Each says when it is returned and whether a
  # retry can help.
  unspecified @0;
  invalidArgument @1;   # Malformed request (bad name, bad field, out-of-range value); resending it fails again.
  topicNotFound @2;     # No topic has that name.
  groupNotFound @3;     # The topic has no consumer group with that name.
  messageTooLarge @4;   # A payload exceeds the topic's max message size; nothing of the batch is stored.
  storageFull @5;       # Storage is at its configured limit; consumers, acks, deletes and purges still work. Retry later.
  storageFailed @6;     # An earlier commit failed; this broker refuses writes until restarted.
  topicExists @7;       # A topic with that name already exists; nothing changed.
  notPending @8;        # Ack or nack of an offset that is not pending for this subscription.
  groupBusy @9;         # The group has connected consumers; disconnect them first.
  limitExceeded @10;    # A broker limit was reached (batch size, subscriptions, topics, groups).
  shuttingDown @11;     # The broker is stopping; retry against it once it is back.
  staleDelivery @12;    # Ack or nack naming an earlier delivery of a message delivered again since (to this or another consumer); nothing changed.
  transactionConflict @13;  # A transaction id already applied (within its window) with other content; nothing changed.
  noRoute @14;          # No topic captures the subject published to; nothing was stored.
  unauthenticated @15;  # Authentication is on and the connection holds no valid credential
                        # (none given, wrong, expired or revoked). Authenticate again.
  permissionDenied @16; # The principal's rules (or its grant's scope) do not allow the action
                        # on the topic; the message names both. Nothing changed.
  notEnoughReplicas @17; # A replicated broker has fewer members in sync than min_insync, so it
                         # accepts no write; nothing changed. Reads and deliveries go on. Retry
                         # once a replica has caught up.
}

struct Error {
  code @0 :ErrorCode;
  message @1 :Text;     # States the problem, the rule and what was received.
}

struct Header {
  key @0 :Text;
  value @1 :Text;
}

struct PublishMessage {
  payload @0 :Data;
  key @1 :Data;
  hasKey @2 :Bool;          # Distinguishes an empty key from no key.
  headers @3 :List(Header);
  id @4 :Text;              # Producer message id for deduplication; empty for none.
  deliverAtMs @5 :Int64;    # Delayed delivery: no group gets it before this Unix time; 0: at
                            # once; in the past: at once; at most 30 days ahead.
  delayMs @6 :UInt32;       # Or: no group gets it before this long after the publish (at most
                            # 30 days). Not both.
  ttlMs @7 :UInt32;         # With hasTtl: time to live, from when the message becomes
  hasTtl @8 :Bool;          # deliverable; 1 ms to 30 days. Without: the topic's default.
}

struct PublishAck {
  offset @0 :UInt64;
  duplicate @1 :Bool;       # The id was seen within the dedup window; `offset` is the original's.
}

struct PublishResult {
  union {
    acks @0 :List(PublishAck);  # One per message, in request order.
    error @1 :Error;            # Nothing of the batch was stored.
  }
}

struct TopicSettings {
  # Zero means "no limit" for the retention limits and maxDeliveries, and "broker default" for
  # maxMessageSize (1 MiB) and dedupWindowMs (2 minutes). Describe answers effective values.
  maxAgeMs @0 :UInt64;
  maxBytes @1 :UInt64;
  maxMessages @2 :UInt64;
  maxMessageSize @3 :UInt32;
  workQueue @4 :Bool;           # Also drop messages once every group has acknowledged them.
  maxDeliveries @5 :UInt32;
  deadLetterTopic @6 :Text;     # Empty: past maxDeliveries a message is dropped from the group.
  dedupWindowMs @7 :UInt64;
  defaultTtlMs @8 :UInt64;      # Time to live of messages published without one; 0: none;
                                # at most 30 days.
  deadLetterExpired @9 :Bool;   # Send expired messages to deadLetterTopic (needs one).
  subjects @10 :List(Text);     # Subject patterns the topic captures (at most 32): tokens
                                # separated by '.', '*' one token, '>' one or more trailing
                                # ones. Empty: the topic captures exactly its own name.
}

struct StartPosition {
  # Where a group created by this call starts. Ignored for an existing group.
  union {
    earliest @0 :Void;
    latest @1 :Void;            # Only messages published after the group was created.
    offset @2 :UInt64;          # This offset (or the first retained one after it).
    timestampMs @3 :Int64;      # The first message published at or after this time.
  }
}

struct ConsumerInfo {
  id @0 :UInt64;
  peer @1 :Text;
  prefetch @2 :UInt32;
  inFlight @3 :UInt32;
  connectedMs @4 :Int64;
}

struct GroupInfo {
  topic @0 :Text;
  name @1 :Text;
  position @2 :UInt64;          # Next offset never yet delivered to this group.
  ackFloor @3 :UInt64;          # Every offset below this is acknowledged (or no longer retained).
  pending @4 :UInt64;           # Delivered or due for redelivery, not yet acknowledged.
  lagMessages @5 :UInt64;       # Retained messages at or after `position`.
  lagMs @6 :Int64;              # Age of the oldest undelivered message; 0 when caught up.
  delivered @7 :UInt64;         # Deliveries since the broker started (including redeliveries).
  acked @8 :UInt64;             # Since the broker started.
  nacked @9 :UInt64;            # Since the broker started.
  redelivered @10 :UInt64;      # Durable total.
  deadLettered @11 :UInt64;     # Durable total.
  consumers @12 :List(ConsumerInfo);
  createdMs @13 :Int64;
  expired @14 :UInt64;          # Since the broker started: passed over for their time to live.
  keyOrdered @15 :Bool;
  keyBlocked @16 :UInt64;       # Key-ordered: messages parked behind an earlier one of their key.
  scheduled @17 :UInt64;        # Delayed messages the group holds for their time, not yet delivered.
  filter @18 :List(Text);       # Subject patterns; the group gets only matching messages, and
                                # lagMessages counts only those. Empty: every message.
}

struct TopicInfo {
  name @0 :Text;
  settings @1 :TopicSettings;   # Effective values.
  messages @2 :UInt64;          # Retained messages.
  bytes @3 :UInt64;             # Retained payload + key + header bytes.
  firstOffset @4 :UInt64;       # Oldest retained offset; 0 when empty.
  lastOffset @5 :UInt64;        # Newest offset ever assigned; 0 when nothing was published.
  groups @6 :List(GroupInfo);
  createdMs @7 :Int64;
  publishedTotal @8 :UInt64;    # Messages appended since the broker started.
  publishRate @9 :Float64;      # Messages per second over the last few seconds.
  expired @10 :UInt64;          # Since the broker started: removed for their time to live.
  scheduled @11 :UInt64;        # Sum over its groups (GroupInfo.scheduled).
  keyBlocked @12 :UInt64;       # Sum over its groups (GroupInfo.keyBlocked).
  leader @13 :Text;             # In a cluster: the broker leading the topic's shard. Empty:
                                # a standalone broker.
  replicas @14 :List(Text);     # In a cluster: the brokers replicating it, the leader first.
  inSync @15 :List(Text);       # Those of them a write waits for (the leader included).
}

struct Delivery {
  offset @0 :UInt64;
  timestampMs @1 :Int64;
  key @2 :Data;
  hasKey @3 :Bool;
  headers @4 :List(Header);
  payload @5 :Data;
  deliveries @6 :UInt32;        # 1 on first delivery; 0 when read by peek.
  id @7 :Text;
  deliveryId @8 :UInt64;        # Names this delivery in ack and nack (unique per broker run); 0 from peek.
  deliverAtMs @9 :Int64;        # A delayed message's delivery time; 0 for one sent at once.
  expiresAtMs @10 :Int64;       # When its time to live ends (it is not delivered after); 0: never.
  subject @11 :Text;            # The subject it was published to (its topic's name when
                                # published to the topic directly).
}

struct BrokerStats {
  version @0 :Text;
  uptimeMs @1 :Int64;
  topics @2 :UInt64;
  messages @3 :UInt64;
  bytes @4 :UInt64;
  storageUsed @5 :UInt64;
  storageLimit @6 :UInt64;
  connections @7 :UInt64;
  consumers @8 :UInt64;
  publishedTotal @9 :UInt64;
  deliveredTotal @10 :UInt64;
  publishRate @11 :Float64;
  deliveryRate @12 :Float64;
  commits @13 :UInt64;
}

struct ReplicaInfo {
  id @0 :Text;
  rpcAddress @1 :Text;          # Where clients reach it; empty when not known.
  replicationAddress @2 :Text;
  alive @3 :Bool;               # It holds a live membership (static roles: it keeps caught up).
  inSync @4 :Bool;              # A write is acknowledged only once it holds it.
  ackedSeq @5 :UInt64;          # The last write-log batch it holds (the leader: its last commit).
  caughtUpAgoMs @6 :Int64;      # Since it last held all it had been sent; -1: never.
}

struct ClusterStatus {
  clusterId @0 :Text;           # Empty: a standalone broker (every other field is empty too).
  leader @1 :Text;              # The broker that answered: only the leader serves clients.
  epoch @2 :UInt64;
  minInsync @3 :UInt32;
  lastSeq @4 :UInt64;           # The leader's last committed batch; lag = lastSeq - ackedSeq.
  inSync @5 :List(Text);
  brokers @6 :List(ReplicaInfo);  # The leader first.
}

struct BrokerAddress {
  id @0 :Text;
  rpc @1 :Text;                 # Its plaintext client address.
  tls @2 :Text;                 # Its TLS client address; empty: it has none.
}

struct Hello {
  # Who answered and where a client is served. Any broker answers, before authentication.
  clusterId @0 :Text;           # Empty: a standalone broker (it serves every call itself).
  brokerId @1 :Text;
  serves @2 :Bool;              # This broker serves clients: standalone, or the leader.
  leader @3 :Text;              # The cluster's leader; empty while none is known.
  leaderRpc @4 :Text;           # Where the leader serves clients (plaintext, TLS).
  leaderTls @5 :Text;
  epoch @6 :UInt64;
  brokers @7 :List(BrokerAddress);  # The cluster's live brokers: seeds for reconnecting.
  why @8 :Text;                 # When it does not serve: why ("follows b1", "no leader").
}

struct ClusterStatusResult {
  union {
    status @0 :ClusterStatus;
    error @1 :Error;
  }
}

struct OffsetError {
  offset @0 :UInt64;
  error @1 :Error;
  deliveryId @2 :UInt64;        # The delivery the request named for this offset (0: none).
}

interface DeliveryHandler {
  # Implemented by the consumer. The broker pushes batches within the prefetch window.
  deliver @0 (messages :List(Delivery)) -> stream;
  # The broker ended the subscription (topic or group deleted, broker stopping).
  closed @1 (error :Error) -> ();
}

interface Subscription {
  # Dropping this capability (or the connection) ends the subscription: its unacknowledged
  # messages become available to the group's other consumers.
  ack @0 (offsets :List(UInt64), deliveryIds :List(UInt64)) -> (failures :List(OffsetError));
  # Answers once the acknowledgements are committed. Offsets not listed in `failures` are done.
  # deliveryIds[i] is the deliveryId of the delivery being acknowledged: an earlier delivery of
  # a message delivered again since fails with staleDelivery. Empty: offsets are not checked
  # against deliveries (clients older than deliveryId); otherwise one per offset.
  nack @1 (offsets :List(UInt64), delayMs :UInt32, deliveryIds :List(UInt64))
      -> (failures :List(OffsetError));
  # Redeliver after `delayMs` (to any consumer of the group). deliveryIds as for ack.
  fetch @2 (max :UInt32, timeoutMs :UInt32) -> (result :FetchResult);
  # For a subscription made with prefetch 0 (a fetch consumer, to which nothing is pushed):
  # answers with `max` (1..65536) messages as soon as that many are available, or with fewer
  # (perhaps none) after `timeoutMs` (at most 300000), or once the answer holds 4 MiB of
  # payload. Exactly the answered messages are held by this consumer, their ack timeout
  # counting from the answer. One fetch at a time per subscription.
  inProgress @3 (offsets :List(UInt64), deliveryIds :List(UInt64), extendMs :UInt32)
      -> (failures :List(OffsetError));
  # Lease renewal for long jobs: the ack deadline of each held message becomes `extendMs` from
  # now (0: the subscription's ack timeout; at most 24 h). deliveryIds as for ack.
  transact @4 (id :Text, offsets :List(UInt64), deliveryIds :List(UInt64),
               publishes :List(TopicMessages)) -> (result :TransactResult);
  # Atomic ack-and-publish: acknowledges the held messages `offsets` (deliveryIds as for ack)
  # and publishes `publishes` (each topic at most once), in one commit, all or nothing: any
  # ack or publish that would fail fails the whole call and nothing changes. With an `id`
  # (rules of a message id), a retry within 5 minutes of the commit answers the first
  # application's offsets with `replayed` set and changes nothing; the same id with other
  # content fails with transactionConflict.
  transactMany @5 (transactions :List(TransactRequest))
      -> (results :List(TransactResult), refused :Error);
  # Several transactions (at most 1024) in one call: each applied as by transact, in order (a
  # refused one changes nothing and the others go on), those that apply in one commit. One
  # result per transaction, in order; or, for a call of more than 1024, no result and
  # `refused` (limitExceeded), nothing applied. Libsluice sends what transactAsync queued so.
}

struct TransactRequest {
  # The parameters of Subscription.transact, as one element of transactMany.
  id @0 :Text;
  offsets @1 :List(UInt64);
  deliveryIds @2 :List(UInt64);
  publishes @3 :List(TopicMessages);
}

struct RoutedPublishResult {
  union {
    outputs @0 :List(TopicAcks);  # One per capturing topic, by topic name.
    error @1 :Error;              # Nothing was stored in any topic.
  }
}

struct RouteResult {
  union {
    topics @0 :List(Text);        # The topics capturing the subject, by name.
    error @1 :Error;
  }
}

struct TopicMessages {
  topic @0 :Text;
  messages @1 :List(PublishMessage);
}

struct TopicAcks {
  topic @0 :Text;
  acks @1 :List(PublishAck);    # One per message, in request order.
}

struct TransactResult {
  union {
    outputs @0 :List(TopicAcks);  # One per topic, in request order.
    error @1 :Error;              # Nothing changed.
  }
  replayed @2 :Bool;              # Applied by an earlier call with the same id.
}

struct FetchResult {
  union {
    messages @0 :List(Delivery);
    error @1 :Error;
  }
}

struct SubscribeResult {
  union {
    subscription @0 :Subscription;
    error @1 :Error;
  }
  consumerId @2 :UInt64;
}

struct TopicResult {
  union {
    topic @0 :TopicInfo;
    error @1 :Error;
  }
}

struct TopicListResult {
  union {
    topics @0 :List(TopicInfo);
    error @1 :Error;
  }
}

struct GroupResult {
  union {
    group @0 :GroupInfo;
    error @1 :Error;
  }
}

struct GroupListResult {
  union {
    groups @0 :List(GroupInfo);
    error @1 :Error;
  }
}

struct CountResult {
  union {
    count @0 :UInt64;
    error @1 :Error;
  }
}

struct PeekResult {
  union {
    messages @0 :List(Delivery);
    error @1 :Error;
  }
}

interface Admin {
  createTopic @0 (name :Text, settings :TopicSettings) -> (result :TopicResult);
  listTopics @1 () -> (result :TopicListResult);
  describeTopic @2 (name :Text) -> (result :TopicResult);
  deleteTopic @3 (name :Text) -> (result :CountResult);       # count: messages removed
  purgeTopic @4 (name :Text) -> (result :CountResult);        # count: messages removed
  createGroup @5 (topic :Text, group :Text, start :StartPosition, keyOrdered :Bool,
                  filter :List(Text)) -> (result :GroupResult);
  # keyOrdered: never two messages of one key in flight at once, each key's in offset order
  # (see Broker.subscribe). Asked of a group that exists without it: invalidArgument.
  # filter: subject patterns (see Broker.subscribe), the same rule.
  listGroups @6 (topic :Text) -> (result :GroupListResult);
  describeGroup @7 (topic :Text, group :Text) -> (result :GroupResult);
  resetGroup @8 (topic :Text, group :Text, to :StartPosition) -> (result :GroupResult);
  deleteGroup @9 (topic :Text, group :Text) -> (result :CountResult);  # count: pending dropped
  peek @10 (topic :Text, fromOffset :UInt64, count :UInt32) -> (result :PeekResult);
  stats @11 () -> (stats :BrokerStats);
  backup @12 (sink :BackupSink) -> (result :CountResult);
  # Streams an online, consistent, compacted copy of the whole store (an LMDB data.mdb file,
  # mdb_env_copy2 with MDB_CP_COMPACT) to `sink`; count: bytes sent. Publishing goes on
  # meanwhile; the copy is the state as of the call.
  changeSubjects @13 (name :Text, add :List(Text), remove :List(Text)) -> (result :TopicResult);
  # Adds and removes subject patterns of a live topic in one commit (removing one it does not
  # have: invalidArgument); publishes answered after it route by the new set, messages already
  # stored stay where they are.
  route @14 (subject :Text) -> (result :RouteResult);
  # The topics a publish to `subject` would be stored in.
  clusterStatus @15 () -> (result :ClusterStatusResult);
  # The leader's view of its cluster: members, the in-sync set and each replica's position.
  # Needs only a valid credential, like stats.
}

enum Action {
  publish @0;   # Broker.publish (the topic), publishSubject (the subject), transact's publishes.
  consume @1;   # Broker.subscribe (the group is created if missing), Admin.peek.
  manage @2;    # Create, delete, purge, change subjects of topics; create, reset, delete groups.
  admin @3;     # Principals, their rules and tokens, every credential; Admin.backup. Broker-wide:
                # its rules' pattern is `>`.
}
# Describing and listing a topic or its groups needs any of publish, consume or manage on it;
# listTopics answers those topics only. Stats, route and clusterStatus need only a valid
# credential.

struct Rule {
  allow @0 :Bool;               # false: deny. A deny matching an action on a topic wins.
  actions @1 :List(Action);
  pattern @2 :Text;             # Topic names (and subjects), as subject patterns: `*` one
                                # token, `>` one or more trailing tokens.
}

struct CredentialInfo {
  # A token of a principal (full rights of the principal) or a grant minted from a credential
  # (scoped: at most the issuer's rights and within `scope`).
  id @0 :UInt64;
  principal @1 :Text;
  issuer @2 :UInt64;            # The credential it was minted with; 0: made by an admin for the
                                # principal (or minted by a certificate-authenticated principal).
  scoped @3 :Bool;
  scope @4 :List(Rule);         # With scoped: allow rules, each within the issuer's rights.
  expiresAtMs @5 :Int64;        # 0: never (a grant always has an expiry at or before its issuer's).
  createdMs @6 :Int64;
  note @7 :Text;
}

struct PrincipalInfo {
  name @0 :Text;
  rules @1 :List(Rule);
  createdMs @2 :Int64;
  credentials @3 :UInt64;       # Live tokens and grants.
}

struct PrincipalResult {
  union {
    principal @0 :PrincipalInfo;
    error @1 :Error;
  }
}

struct PrincipalListResult {
  union {
    principals @0 :List(PrincipalInfo);
    error @1 :Error;
  }
}

struct SecretResult {
  union {
    credential @0 :CredentialInfo;
    error @1 :Error;
  }
  secret @2 :Text;              # The bearer string, shown this once; the broker keeps a hash.
}

struct CredentialListResult {
  union {
    credentials @0 :List(CredentialInfo);
    error @1 :Error;
  }
}

struct AuthenticateResult {
  union {
    broker @0 :Broker;          # Restricted to the credential's rights.
    error @1 :Error;            # unauthenticated; the message never repeats the secret.
  }
  principal @2 :Text;
}

interface Auth {
  whoami @0 () -> (principal :Text, credential :CredentialInfo, rules :List(Rule),
                   authenticated :Bool);
  # authenticated false: authentication is off (principal "anonymous", every right), or it is
  # on and this connection holds no valid credential (principal empty, no rules). A
  # certificate-authenticated connection has credential id 0.
  putPrincipal @1 (name :Text, rules :List(Rule), create :Bool) -> (result :PrincipalResult);
  # admin. create: a new principal (topicExists-like refusal if the name is taken:
  # invalidArgument); otherwise replaces the rules of an existing one. Applies at once to live
  # connections: a subscription whose topic loses consume is closed with permissionDenied.
  deletePrincipal @2 (name :Text) -> (result :CountResult);
  # admin. Revokes every credential of the principal; count: credentials revoked.
  listPrincipals @3 () -> (result :PrincipalListResult);  # admin
  createToken @4 (principal :Text, note :Text, ttlMs :UInt64) -> (result :SecretResult);
  # admin. A token with the principal's full rights; ttlMs 0: no expiry.
  mintGrant @5 (scope :List(Rule), ttlMs :UInt64, note :Text) -> (result :SecretResult);
  # Any credential: a grant whose rights are at most this connection's (every allow rule of
  # `scope` must lie within an allow rule of the issuer for the same actions, else
  # permissionDenied), expiring after ttlMs (1 s to 1 year; never after the issuer's expiry).
  revoke @6 (id :UInt64) -> (result :CountResult);
  # An admin, or a credential the grant was minted from (directly or not). Revokes it and every
  # grant minted from it, at once, live connections too; count: credentials revoked.
  listCredentials @7 (principal :Text) -> (result :CredentialListResult);
  # admin: the principal's (empty: everyone's); otherwise those minted from this connection's
  # credential, directly or not.
}

interface BackupSink {
  # Implemented by the caller of Admin.backup.
  write @0 (chunk :Data) -> stream;
}

interface Broker {
  publish @0 (topic :Text, messages :List(PublishMessage)) -> (result :PublishResult);
  # Answers after the commit holding the batch is fsync'd. All or nothing per call.
  subscribe @1 (topic :Text, group :Text, start :StartPosition, prefetch :UInt32,
                ackTimeoutMs :UInt32, handler :DeliveryHandler, keyOrdered :Bool,
                filter :List(Text)) -> (result :SubscribeResult);
  # Creates the group if it does not exist (key-ordered if asked: across all its consumers, a
  # key's next message is delivered only once the last one is acknowledged or dead-lettered,
  # in offset order; messages without a key are unordered). prefetch 1..65536, or 0 for a
  # fetch consumer (see Subscription.fetch); ackTimeoutMs 0 = 30 s default. filter: subject
  # patterns (at most 32): a new group gets only the messages whose subject matches one (and
  # must ack only those); an existing group must have been created with the same filter
  # (else invalidArgument). Empty: every message.
  admin @2 () -> (admin :Admin);
  publishSubject @3 (subject :Text, messages :List(PublishMessage)) -> (result :RoutedPublishResult);
  # Stores the batch, with its subject, in every topic whose subject patterns match (a topic
  # without patterns: whose name is the subject), in one fsync'd commit, all or nothing: a
  # rejection by any of them rejects the whole publish. No capturing topic: noRoute (with
  # --auto-create-topics a topic named as the subject is created instead).
  authenticate @4 (secret :Text) -> (result :AuthenticateResult);
  # With authentication on, the bootstrap Broker answers only this (every other call:
  # unauthenticated) unless the connection presented a client certificate whose common name
  # is a principal's. Failed attempts are slowed down per peer address.
  auth @5 () -> (auth :Auth);
  hello @6 () -> (hello :Hello);
  # Answered by every broker of a cluster, with or without a credential: a follower serves no
  # other call (each fails with an exception naming the leader), so a client asks first and
  # connects to `leaderRpc` (or `leaderTls`) when `serves` is false.
}
