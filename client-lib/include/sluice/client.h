#pragma once

// libsluice: the C++ client of the Sluice broker. Standard C++ types only.
//
// Threads: every class here is safe to use from any thread. A Client owns one connection and
// one internal I/O thread on which all network work runs; blocking calls hand their work to it
// and wait. Handles (Producer, Consumer, Admin, Message) share the connection: it stays open
// while the Client or any handle made from it lives, until Client::close().
//
// Authentication: against a broker with authentication on, connect with Options::token (or a
// TLS client certificate). Then any call, besides the errors it lists, may fail with
// kPermissionDenied (the principal's rules, or its grant's scope, do not allow the action on
// that topic; nothing changed) or kUnauthenticated (the credential expired or was revoked
// since connecting; a subscription is closed with it).

#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/error.h"
#include "sluice/types.h"

namespace sluice {

namespace detail {
class Connection;
class SubscriptionState;
struct Settlement;
}  // namespace detail

// TLS to a broker's TLS listener (`sluiced --listen-tls`). The broker's certificate is always
// checked: against caFile, or the system's trusted CAs when it is empty, and for serverName.
// There is no mode that skips the check. Each field states its default.
struct TlsOptions {
  bool enabled = false;    // Default off: plaintext. Needed for any other field to apply.
  std::string caFile;      // PEM bundle of CAs trusted for the broker; default: the system's.
  std::string certFile;    // PEM client certificate (chain) for mutual TLS; default: none.
  std::string keyFile;     // PEM private key of certFile (not encrypted); needed with certFile.
  std::string serverName;  // The name the broker's certificate must carry; default: the host
                           // of the address. kj-tls checks it as a DNS name, so a broker
                           // reached by IP address needs serverName (an IP entry in the
                           // certificate does not match). Kept for every broker of a list.
};

// Connection options. Each field states its default.
struct Options {
  std::chrono::milliseconds connectTimeout{5000};  // Default 5 s.
  std::chrono::milliseconds callTimeout{
      30000};           // Default 30 s; blocking calls give up with kTimeout.
  TlsOptions tls = {};  // Default: plaintext.
  // The secret of a token or grant (Admin::createToken, Admin::mintGrant), for a broker with
  // authentication on. Default empty: no authentication, and such a broker then refuses every
  // call but whoami (kUnauthenticated) unless a TLS client certificate (tls.certFile) names
  // one of its principals. When set, connect() authenticates right after connecting and every
  // later call runs with the credential's rights; a refused secret fails connect() with the
  // broker's error (kUnauthenticated).
  // (`= {}` keeps `Options{connectTimeout, callTimeout}` free of missing-initializer warnings.)
  std::string token = {};
  // With several brokers (Client::connect("a:7400,b:7400,c:7400")), or any member of a
  // cluster, a connection lost later is made again to whichever serves (after a failover: the
  // new leader, found through any live member), round after round for up to this long; 0:
  // never. Calls in flight when it was lost answer
  // kDisconnected (a publish with a message id may be retried without a duplicate); calls made
  // meanwhile wait for the new connection (within callTimeout). A Consumer is subscribed again
  // on the new connection and goes on: the messages it had been sent and had not yet received
  // are dropped (the broker delivers them again), and an ack of a message received before
  // answers kDisconnected, kStaleDelivery or kNotPending (it is delivered again). A fetch()
  // waiting when the connection was lost returns what it had (often nothing) without an
  // error; the next one is served by the new subscription. If the new
  // subscribe is refused, or reconnecting gives up, the Consumer ends with that error. With
  // one standalone broker: never. Default 30 s.
  std::chrono::milliseconds reconnectFor{30000};
};

// How a Producer batches asynchronous publishes. Blocking publish() sends at once.
struct ProducerOptions {
  // Messages per publish RPC at most (the broker's limit is 10,000). Default 1,000.
  size_t maxBatchMessages = 1000;
  // Payload bytes per publish RPC at most (a single larger message still goes alone). Default 4
  // MiB.
  size_t maxBatchBytes = 4 << 20;
  // Publish RPCs in flight per producer at most; further messages wait (backpressure). Default 8.
  size_t maxInFlightBatches = 8;
};

struct SubscribeOptions {
  // Where the group starts if this call creates it. Default: earliest retained message.
  StartPosition start = StartPosition::earliest();
  // Messages delivered to this consumer and not yet acknowledged, at most (1..65536). Default
  // 256. 0 makes a fetch consumer: the broker sends it nothing unasked, and it takes messages
  // with Consumer::fetch() (or receive(), which fetches one). Not with a handler.
  uint32_t prefetch = 256;
  // Unacknowledged longer than this, a message is redelivered (1 ms .. 24 h). Default 30 s.
  std::chrono::milliseconds ackTimeout{30000};
  // Creates the group key-ordered if this call creates it: across all its consumers, never two
  // messages with the same key in flight, and each key's messages in offset order (also
  // through nacks, ack timeouts, disconnects, restarts and dead-lettering). Messages without a
  // key are unordered. Asked of a group that exists unordered: kInvalidArgument. Joining a
  // key-ordered group without asking is fine.
  bool keyOrdered = false;
  // Creates the group with this subject filter (at most 32 patterns) if this call creates it:
  // it receives, and has to ack, only the messages whose subject matches one; the others are
  // passed over without a delivery. An existing group must have been created with the same
  // filter (kInvalidArgument otherwise); empty joins any group.
  std::vector<std::string> filter;
};

// A delivered (or peeked) message.
class Message {
 public:
  Message() = default;

  uint64_t offset() const { return offset_; }
  int64_t timestampMs() const { return timestampMs_; }  // Publish time, Unix milliseconds.
  const std::optional<std::string>& key() const { return key_; }
  const Headers& headers() const { return headers_; }
  const std::string& payload() const { return payload_; }
  const std::string& id() const { return id_; }        // Producer message id, or empty.
  uint32_t deliveries() const { return deliveries_; }  // 1 on first delivery; 0 from peek.
  // Which delivery of the message this is (unique per broker run; 0 from peek). ack() and
  // nack() name it, so that settling an earlier delivery fails with kStaleDelivery.
  uint64_t deliveryId() const { return deliveryId_; }
  // A delayed message's delivery time (Unix milliseconds); 0 for one sent at once.
  int64_t deliverAtMs() const { return deliverAtMs_; }
  // When its time to live ends (Unix ms; 0: never). The broker delivers no message after.
  int64_t expiresAtMs() const { return expiresAtMs_; }
  const std::string& topic() const { return topic_; }
  // The subject it was published to (its topic's name when published to the topic directly).
  const std::string& subject() const { return subject_; }

  // Acknowledges the message; returns once the broker committed the acknowledgement, after
  // which this group never receives the message again, even across broker restarts.
  // Errors: kNotPending (already acked or released), kStaleDelivery (this delivery's ack
  //         timeout passed and the message was delivered again, to this or another consumer;
  //         nothing changed), kInvalidArgument (a peeked message), kStorageFailed,
  //         kDisconnected, kTimeout.
  Result<void> ack() const;
  // As ack(), without waiting. Acks from many messages are sent together.
  std::future<Result<void>> ackAsync() const;
  // Negative acknowledgement: the group redelivers the message after `delay` (to any of its
  // consumers), or dead-letters it once the topic's maxDeliveries is reached.
  // Errors: as ack().
  Result<void> nack(std::chrono::milliseconds delay = std::chrono::milliseconds(0)) const;
  // As nack(), without waiting.
  std::future<Result<void>> nackAsync(
      std::chrono::milliseconds delay = std::chrono::milliseconds(0)) const;
  // Lease renewal for a long job: the broker will not redeliver the message before `extend`
  // from now (0: the subscription's ack timeout; at most 24 h). Call it again before that
  // passes to keep the message. Writes nothing to disk: if the broker restarts, the message
  // is redelivered as every held one is.
  // Errors: as ack(); kInvalidArgument (extend above 24 h).
  Result<void> inProgress(std::chrono::milliseconds extend = std::chrono::milliseconds(0)) const;
  // As inProgress(), without waiting.
  std::future<Result<void>> inProgressAsync(
      std::chrono::milliseconds extend = std::chrono::milliseconds(0)) const;

 private:
  Result<void> settle(const char* what, const detail::Settlement& settlement) const;
  std::future<Result<void>> settleAsync(const detail::Settlement& settlement) const;
  friend class detail::SubscriptionState;
  friend class detail::Connection;
  uint64_t offset_ = 0;
  int64_t timestampMs_ = 0;
  std::optional<std::string> key_;
  Headers headers_;
  std::string payload_;
  std::string id_;
  uint32_t deliveries_ = 0;
  uint64_t deliveryId_ = 0;
  int64_t deliverAtMs_ = 0;
  int64_t expiresAtMs_ = 0;
  std::string topic_;
  std::string subject_;
  std::shared_ptr<detail::SubscriptionState> subscription_;  // Null for peeked messages.
};

// One atomic step of a consume-transform-produce pipeline, for Consumer::transact: messages
// this consumer holds to acknowledge, and messages to publish (to one or more topics).
struct Transaction {
  // Names the transaction for retries: a call repeating an applied transaction (same id, same
  // acks and messages) within 5 minutes of its commit gets the first call's offsets back,
  // marked replayed, and changes nothing; the same id with other content fails with
  // kTransactionConflict. Up to 256 printable ASCII bytes; empty: every call applies anew.
  std::string id;
  std::vector<Message> acks;
  // Per topic (each named once), its messages in order.
  std::vector<std::pair<std::string, std::vector<OutgoingMessage>>> publishes;

  Transaction& ack(const Message& message);
  // Appends to the topic's entry (adding one for a topic not named yet).
  Transaction& publish(std::string_view topic, OutgoingMessage message);
};

struct TransactionResult {
  // Per entry of Transaction::publishes, in order: the topic and one ack per message.
  std::vector<std::pair<std::string, std::vector<PublishAck>>> outputs;
  bool replayed = false;  // The id was applied by an earlier call; nothing changed now.
};

// Publishes messages. Obtain from Client::producer().
class Producer {
 public:
  // Publishes one message and returns its offset once the broker committed it with fsync.
  // Errors: kInvalidArgument, kTopicNotFound, kMessageTooLarge, kStorageFull (retry later),
  //         kStorageFailed, kLimitExceeded, kDisconnected (retrying is safe when an id is set),
  //         kTimeout.
  Result<PublishAck> publish(std::string_view topic, std::string_view payload);
  Result<PublishAck> publish(std::string_view topic, OutgoingMessage message);
  // Publishes the messages in one request: all are stored in one commit, or none is.
  // Errors: as publish().
  Result<std::vector<PublishAck>> publishBatch(std::string_view topic,
                                               std::vector<OutgoingMessage> messages);
  // Publishes to a subject: the broker stores the messages, with the subject, in every topic
  // whose subject patterns match it (a topic without patterns: whose name it is), in one
  // fsync'd commit, all or nothing. Answers per topic, by name.
  // Errors: kNoRoute (no topic captures it; nothing stored), kInvalidArgument (a bad subject
  //         or message), kMessageTooLarge / kStorageFull / kLimitExceeded (from any capturing
  //         topic: nothing stored anywhere), kStorageFailed, kDisconnected, kTimeout.
  Result<RoutedAcks> publishSubject(std::string_view subject,
                                    std::vector<OutgoingMessage> messages);

  // Queues a message and returns at once; the future completes after the commit. Queued
  // messages to one topic are sent together in batches (see ProducerOptions). When
  // maxInFlightBatches are outstanding, messages queue in the client until acknowledgements
  // return. Errors: as publish(). Order: offsets follow queueing order per topic.
  std::future<Result<PublishAck>> publishAsync(std::string_view topic, OutgoingMessage message);
  // As above, but calls `done` with the result on the client's I/O thread: it must not block.
  void publishAsync(std::string_view topic, OutgoingMessage message,
                    std::function<void(Result<PublishAck>)> done);
  // publishSubject() for one message, queued as publishAsync() queues: messages to one
  // subject are sent together in batches, each batch one routed publish (one commit), sharing
  // the producer's in-flight limit with its topic publishes. Errors: as publishSubject();
  // a refused batch fails every message in it. Order: offsets follow queueing order per
  // subject.
  std::future<Result<RoutedAck>> publishSubjectAsync(std::string_view subject,
                                                     OutgoingMessage message);
  void publishSubjectAsync(std::string_view subject, OutgoingMessage message,
                           std::function<void(Result<RoutedAck>)> done);
  // Waits until every message queued so far by this producer has been answered.
  // Errors: kTimeout (after Options::callTimeout), kDisconnected.
  Result<void> flush();

 private:
  friend class Client;
  struct State;
  std::shared_ptr<State> state_;
};

// A member of a consumer group on one topic. Obtain from Client::subscribe().
// Destroying the last handle (or close()) ends the subscription: its unacknowledged messages
// go to the group's other consumers.
class Consumer {
 public:
  // Waits up to `timeout` for the next message.
  // Errors: kTimeout (nothing arrived), kDisconnected, kTopicNotFound / kGroupNotFound (the
  //         topic or group was deleted), kInvalidArgument (a consumer in callback mode).
  Result<Message> receive(std::chrono::milliseconds timeout);
  // A fetch consumer's pull (subscribed with prefetch 0): returns `max` messages (1..65536) as
  // soon as that many are available, or fewer (perhaps none) once `timeout` (at most 5 min)
  // passes. The broker hands this consumer exactly the messages returned, each to be acked or
  // nacked; nothing else is held for it. Holding more than 65536 unacknowledged is refused.
  // Errors: kInvalidArgument (max 0 or above 65536, timeout negative or above 5 min, a
  //         consumer with prefetch or a handler), kLimitExceeded, kTopicNotFound /
  //         kGroupNotFound (deleted), kDisconnected, kTimeout (the broker did not answer).
  Result<std::vector<Message>> fetch(uint32_t max, std::chrono::milliseconds timeout);
  // Atomic ack-and-publish: acknowledges `transaction.acks` (messages this consumer holds, by
  // delivery, as ack() does) and publishes its messages in one broker commit, all or nothing,
  // answered after the fsync. If anything would fail, nothing changes: the acks stay held and
  // nothing is published. After kTimeout, retry the same transaction on this consumer: the
  // broker applies it at most once and answers a repeat `replayed`. After kDisconnected, the
  // outcome shows in what comes back: if the commit did not happen, the messages are
  // delivered again (to this group) and the step is redone; if it did, they never come back.
  // Errors (nothing changed): kInvalidArgument (bad id, nothing to do, a message named twice
  //         or held by another consumer, a topic named twice, bad messages), kNotPending /
  //         kStaleDelivery (an ack, as for ack()), kTransactionConflict, kTopicNotFound,
  //         kMessageTooLarge, kStorageFull, kLimitExceeded, kStorageFailed, kDisconnected,
  //         kTimeout.
  Result<TransactionResult> transact(const Transaction& transaction);
  // As transact(), returning at once: the future completes with its answer. Many may be
  // outstanding; each is applied on its own (a failed one changes nothing, the others go on).
  std::future<Result<TransactionResult>> transactAsync(const Transaction& transaction);
  // As above, but calls `done` with the answer on the client's I/O thread: it must not block.
  void transactAsync(const Transaction& transaction,
                     std::function<void(Result<TransactionResult>)> done);
  // Ends the subscription; idempotent. Messages not yet received are redelivered to others.
  void close();
  // The broker's id for this consumer (shown by `sluice groups describe`).
  uint64_t id() const;

 private:
  friend class Client;
  std::shared_ptr<detail::SubscriptionState> state_;
};

// Topic, group and access administration. Obtain from Client::admin(). Errors common to every
// call: kDisconnected, kTimeout, kShuttingDown; with authentication on, also kPermissionDenied
// (the principal's rules do not allow it) and kUnauthenticated (the credential was revoked or
// has expired).
class Admin {
 public:
  // Errors: kInvalidArgument (bad name or setting), kTopicExists, kLimitExceeded, kStorageFull.
  Result<TopicInfo> createTopic(std::string_view name, const TopicSettings& settings = {});
  Result<std::vector<TopicInfo>> listTopics();
  // Errors: kInvalidArgument, kTopicNotFound.
  Result<TopicInfo> describeTopic(std::string_view name);
  // Deletes the topic, its messages and groups; returns how many messages were removed.
  // Connected consumers of it are closed with kTopicNotFound. Errors: kTopicNotFound.
  Result<uint64_t> deleteTopic(std::string_view name);
  // Removes every message (offsets keep counting up); returns how many. Errors: kTopicNotFound.
  Result<uint64_t> purgeTopic(std::string_view name);
  // Creates a group that starts at `start`, key-ordered if asked (see
  // SubscribeOptions::keyOrdered). Errors: kTopicNotFound, kInvalidArgument (also: key ordering
  // asked of a group that exists without it), kLimitExceeded; an existing group is returned
  // unchanged.
  Result<GroupInfo> createGroup(std::string_view topic, std::string_view group,
                                StartPosition start = StartPosition::earliest(),
                                bool keyOrdered = false, std::vector<std::string> filter = {});
  // Adds and removes subject patterns of a live topic in one commit; publishes answered
  // afterwards route by the new set. Errors: kTopicNotFound, kInvalidArgument (a bad pattern,
  // removing one the topic lacks, nothing to do), kLimitExceeded (32 per topic).
  Result<TopicInfo> changeSubjects(std::string_view topic, std::vector<std::string> add,
                                   std::vector<std::string> remove = {});
  // The topics a publish to `subject` would be stored in, by name. Errors: kInvalidArgument.
  Result<std::vector<std::string>> route(std::string_view subject);
  // Errors: kTopicNotFound.
  Result<std::vector<GroupInfo>> listGroups(std::string_view topic);
  // Errors: kTopicNotFound, kGroupNotFound.
  Result<GroupInfo> describeGroup(std::string_view topic, std::string_view group);
  // Moves the group's position and forgets its pending messages.
  // Errors: kTopicNotFound, kGroupNotFound, kGroupBusy (consumers connected).
  Result<GroupInfo> resetGroup(std::string_view topic, std::string_view group, StartPosition to);
  // Returns how many pending messages were dropped. Errors: kTopicNotFound, kGroupNotFound,
  // kGroupBusy.
  Result<uint64_t> deleteGroup(std::string_view topic, std::string_view group);
  // Reads up to `count` (1..1000) messages from `fromOffset` on, touching no group.
  // Errors: kTopicNotFound, kInvalidArgument.
  Result<std::vector<Message>> peek(std::string_view topic, uint64_t fromOffset, uint32_t count);
  Result<BrokerStats> stats();
  // The cluster this broker leads: members, the in-sync set and each replica's position. From a
  // standalone broker, a status with an empty clusterId.
  Result<ClusterStatus> clusterStatus();

  // Takes an online, consistent, compacted copy of the broker's whole store (every topic,
  // message, group position and pending delivery as of the call) and writes it to `path` on
  // this machine; returns its size in bytes. The broker streams the copy over this connection
  // (it writes no file of its own) and keeps serving meanwhile.
  // The file appears atomically: the copy goes to a temporary file next to `path` (mode 0600;
  // unnamed until complete where the filesystem has O_TMPFILE, so even a killed process
  // leaves nothing behind), is fsync'd, then renamed over `path`, and the directory is
  // fsync'd. On any failure the temporary file is removed and an existing `path` is untouched.
  // Restore: stop the broker (or use a fresh directory), put the file at DIR/data.mdb and start
  // `sluiced --data DIR`.
  // Waits as long as data keeps arriving: kTimeout only when nothing arrives for
  // Options::callTimeout.
  // Errors: kInvalidArgument (empty path, `path` is a directory, its directory does not exist,
  //         is not a directory or is not writable), kInternal (writing or syncing the local
  //         file failed, e.g. the disk is full; or the sizes disagree), kStorageFailed (the
  //         broker could not copy its store), kLimitExceeded (too many backups running on the
  //         broker; retry later), kDisconnected, kTimeout.
  // Thread: any but the client's I/O thread (kInvalidArgument there); the chunks are written
  // to the file on the I/O thread.
  Result<uint64_t> backup(const std::string& path);

  // --- Authentication -------------------------------------------------------------------------
  // With authentication on, each call below needs the connection's principal to have the
  // `admin` action, except whoami(), mintGrant(), and listCredentials() and revoke() of the
  // grants minted from the connection's own credential. Changes take effect at once, also on
  // live connections. kUnauthenticated: the credential expired or was revoked since
  // connecting; reconnect with a good one.

  // Who this connection is: its principal, credential and rules. With authentication off, the
  // principal is "anonymous", `authenticated` false, and every call is allowed; with it on and
  // no credential given, the principal is empty and `authenticated` false.
  // Errors: kUnauthenticated (the credential expired or was revoked).
  Result<Identity> whoami();
  // Creates a principal with `rules` (it has no right beyond them; none: no right at all).
  // Errors: kInvalidArgument (a bad name, action or pattern; or the name is taken),
  //         kPermissionDenied, kUnauthenticated, kStorageFull.
  Result<PrincipalInfo> createPrincipal(std::string_view name, std::vector<Rule> rules);
  // Replaces the rules of an existing principal. Its live connections get the new rights at
  // once: a subscription whose topic loses `consume` is closed with kPermissionDenied.
  // Errors: kInvalidArgument (also: no principal has that name), kPermissionDenied,
  //         kUnauthenticated, kStorageFull.
  Result<PrincipalInfo> setRules(std::string_view name, std::vector<Rule> rules);
  // Deletes the principal and revokes every credential of it (live connections too); returns
  // how many credentials were revoked. Errors: kInvalidArgument, kPermissionDenied,
  // kUnauthenticated.
  Result<uint64_t> deletePrincipal(std::string_view name);
  // Errors: kPermissionDenied, kUnauthenticated.
  Result<std::vector<PrincipalInfo>> listPrincipals();
  // Makes a token with the principal's full rights, expiring after `ttl` (default 0: never).
  // The secret in the answer is shown only this once.
  // Errors: kInvalidArgument (no such principal, a negative ttl), kPermissionDenied,
  //         kUnauthenticated, kStorageFull.
  Result<Secret> createToken(std::string_view principal, std::string_view note = {},
                             std::chrono::milliseconds ttl = {});
  // Mints a grant from this connection's credential, for handing to someone else: rights at
  // most this connection's, limited to `scope` (allow rules only, each within an allow rule
  // of this connection for the same actions), expiring after `ttl` (1 s to 1 year, and never
  // after this connection's credential). Needs no `admin` action. The secret in the answer is
  // shown only this once.
  // Errors: kInvalidArgument (an empty scope, a deny rule, a ttl out of range),
  //         kPermissionDenied (the scope exceeds this connection's rights), kUnauthenticated,
  //         kStorageFull.
  Result<Secret> mintGrant(std::vector<Rule> scope, std::chrono::milliseconds ttl,
                           std::string_view note = {});
  // Revokes the credential and every grant minted from it (directly or not), at once, live
  // connections too; returns how many credentials were revoked. Allowed to an admin, and to a
  // connection whose credential the grant was minted from (directly or not).
  // Errors: kInvalidArgument (no such credential), kPermissionDenied, kUnauthenticated.
  Result<uint64_t> revoke(uint64_t credentialId);
  // An admin: the credentials of `principal` (empty: of everyone). Anyone else: this
  // connection's credential and the grants minted from it, directly or not. Secrets are never
  // listed.
  // Errors: kInvalidArgument, kPermissionDenied, kUnauthenticated.
  Result<std::vector<CredentialInfo>> listCredentials(std::string_view principal = {});

 private:
  friend class Client;
  std::shared_ptr<detail::Connection> connection_;
};

// A connection to one broker. Move-only handle.
class Client {
 public:
  // Connects to "host:port" (IPv4, [IPv6] or a name), and authenticates with
  // options.token when it is set. Errors: kConnectFailed, kInvalidArgument (malformed
  // address, unusable TLS files), kUnauthenticated (the broker refused options.token: wrong,
  // expired or revoked; the message is the broker's).
  // "host:port,host:port,...": brokers tried in order; the connection is to the first that
  // serves. A cluster's follower serves no clients: it names its leader (Broker.hello), and the
  // connection goes there, so one member's address is enough. The cluster's live members
  // named by the broker are tried after the given ones. When the connection is lost (a
  // failover), it is made again (Options::reconnectFor): the Client, its Producers and Admins
  // go on. kConnectFailed names every refusal.
  static Result<Client> connect(std::string_view hostPort, Options options = {});

  Client(Client&&) noexcept;
  Client& operator=(Client&&) noexcept;
  ~Client();

  Producer producer(ProducerOptions options = {});
  Admin admin();
  // Joins (creating if needed) `group` on `topic` as a pull consumer: use receive(), or
  // fetch() with options.prefetch 0.
  // Errors: kInvalidArgument, kTopicNotFound, kLimitExceeded, kDisconnected, kTimeout.
  Result<Consumer> subscribe(std::string_view topic, std::string_view group,
                             SubscribeOptions options = {});
  // Callback mode: `handler` runs for each message on a thread owned by the consumer, one
  // message at a time; it may block and may ack/nack. Errors: as above.
  Result<Consumer> subscribe(std::string_view topic, std::string_view group,
                             SubscribeOptions options, std::function<void(Message)> handler);

  // False once the connection is gone.
  bool connected() const;
  // Closes the connection now; later calls on any handle return kDisconnected. Idempotent.
  void close();

 private:
  explicit Client(std::shared_ptr<detail::Connection> connection);
  std::shared_ptr<detail::Connection> connection_;
};

}  // namespace sluice
