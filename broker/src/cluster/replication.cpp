#include "cluster/replication.h"

#include <algorithm>

#include <capnp/message.h>
#include <kj/debug.h>

#include "common/log.h"
#include "common/text.h"
#include "sluice/schemas/cluster.capnp.h"

namespace sluice::cluster {
namespace {

auto log() {
  return namedLog("cluster");
}

constexpr uint32_t kMaxWaitMs = 5000;
constexpr uint32_t kMinPullBytes = 64u << 10;
constexpr uint32_t kMaxPullBytes = 16u << 20;

int64_t toMs(kj::Duration duration) {
  return duration / kj::MILLISECONDS;
}

}  // namespace

std::string problemWithId(const std::string& id, const char* what) {
  if (isIdText(id)) return "";
  return std::string(what) + " must be 1 to 64 of A-Z, a-z, 0-9, '.', '_', '-', got " +
         std::to_string(id.size()) + " bytes";
}

// ---- ReplicationHub ----

ReplicationHub::ReplicationHub(store::Env& env, kj::Timer& timer, LeaderOptions options)
    : env_(env),
      timer_(timer),
      options_(std::move(options)),
      lastCommitted_(store::ReadTxn(env).lastSeq()),
      nextCommit_(nullptr),
      lagTask_(nullptr),
      deposed_(nullptr) {
  auto paf = kj::newPromiseAndFulfiller<void>();
  newCommit_ = kj::mv(paf.fulfiller);
  nextCommit_ = paf.promise.fork();
  auto deposed = kj::newPromiseAndFulfiller<void>();
  deposedFulfiller_ = kj::mv(deposed.fulfiller);
  deposed_ = deposed.promise.fork();
  // The followers the control plane holds in sync are waited for from the start: each is
  // counted until it pulls or times out.
  kj::TimePoint now = timer_.now();
  if (!options_.leaderId.empty()) persisted_.push_back(options_.leaderId);
  for (const std::string& id : options_.initialInSync) {
    if (id == options_.leaderId) continue;
    Follower& follower = followers_[id];
    follower.inSync = true;
    follower.caughtUp = now;
    follower.shippedUpTo = lastCommitted_;
    persisted_.push_back(id);
  }
  lagTask_ = watchLag().eagerlyEvaluate([](kj::Exception&& e) {
    log()->error("replication: the in-sync watch stopped: {}", e.getDescription().cStr());
  });
}

ReplicationHub::~ReplicationHub() = default;

void ReplicationHub::committed(uint64_t seq) {
  if (seq <= lastCommitted_) return;
  lastCommitted_ = seq;
  auto paf = kj::newPromiseAndFulfiller<void>();
  newCommit_->fulfill();
  newCommit_ = kj::mv(paf.fulfiller);
  nextCommit_ = paf.promise.fork();
  settle();
}

bool ReplicationHub::replicatedUpTo(uint64_t seq) const {
  if (options_.mayAcknowledge && !options_.mayAcknowledge()) return false;
  size_t members = 1;
  for (const auto& [id, follower] : followers_) {
    if (!follower.inSync) continue;
    if (follower.acked < seq) return false;
    ++members;
  }
  return members >= options_.minInsync;
}

size_t ReplicationHub::inSyncCount() const {
  size_t members = 1;
  for (const auto& [id, follower] : followers_)
    members += follower.inSync ? 1 : 0;
  return members;
}

std::vector<core::ReplicaView> ReplicationHub::followers() const {
  kj::TimePoint now = timer_.now();
  std::vector<core::ReplicaView> out;
  for (const auto& [id, follower] : followers_) {
    core::ReplicaView view;
    view.id = id;
    view.inSync = follower.inSync;
    view.ackedSeq = follower.acked;
    if (follower.waiting) {
      view.caughtUpAgoMs = 0;
    } else if (follower.caughtUp != kj::origin<kj::TimePoint>()) {
      view.caughtUpAgoMs = (now - follower.caughtUp) / kj::MILLISECONDS;
    }
    out.push_back(std::move(view));
  }
  return out;
}

Status ReplicationHub::admits() const {
  if (options_.mayAcknowledge && !options_.mayAcknowledge()) {
    return Status(Code::kNotEnoughReplicas,
                  "this broker cannot confirm its leadership with the control plane; no write is "
                  "accepted until it can (or another broker leads)");
  }
  size_t members = inSyncCount();
  if (members < options_.minInsync) {
    return Status(Code::kNotEnoughReplicas,
                  std::to_string(members) +
                      " of the shard's members are in sync, fewer than "
                      "min_insync " +
                      std::to_string(options_.minInsync) +
                      "; no write is accepted until a replica catches up");
  }
  return Status();
}

kj::Promise<void> ReplicationHub::replicated(uint64_t seq) {
  if (waiters_.empty() && replicatedUpTo(seq)) return kj::READY_NOW;
  auto paf = kj::newPromiseAndFulfiller<void>();
  auto at = std::upper_bound(waiters_.begin(), waiters_.end(), seq,
                             [](uint64_t s, const Waiter& w) { return s < w.seq; });
  waiters_.insert(at, Waiter{seq, kj::mv(paf.fulfiller)});
  return handedOut_.wrap(kj::mv(paf.promise));
}

void ReplicationHub::settle() {
  size_t done = 0;
  while (done < waiters_.size() && replicatedUpTo(waiters_[done].seq)) {
    waiters_[done].fulfiller->fulfill();
    ++done;
  }
  waiters_.erase(waiters_.begin(), waiters_.begin() + static_cast<std::ptrdiff_t>(done));
}

kj::Promise<void> ReplicationHub::watchLag() {
  kj::Duration tick = std::max(options_.replicaTimeout / 4, 10 * kj::MILLISECONDS);
  return timer_.afterDelay(tick).then([this]() {
    kj::TimePoint now = timer_.now();
    for (auto& [id, follower] : followers_) {
      if (follower.waiting) follower.caughtUp = now;
      if (follower.inSync && !follower.leaving &&
          now - follower.caughtUp > options_.replicaTimeout) {
        log()->warn(
            "replication: follower {} leaves the in-sync set: not caught up for {} ms (holds up "
            "to {}, last committed {})",
            id, toMs(now - follower.caughtUp), follower.acked, lastCommitted_);
        if (options_.persistInSync) {
          follower.leaving = true;  // Waited for until the control plane has dropped it.
        } else {
          follower.inSync = false;
        }
      }
    }
    persist();
    settle();  // Also when the lease became valid again.
    return watchLag();
  });
}

std::vector<std::string> ReplicationHub::desiredInSync() const {
  std::vector<std::string> out = {options_.leaderId};
  for (const auto& [id, follower] : followers_)
    if (follower.inSync && !follower.leaving) out.push_back(id);
  return out;
}

void ReplicationHub::persist() {
  if (!options_.persistInSync || persisting_) return;
  std::vector<std::string> desired = desiredInSync();
  if (desired == persisted_) return;
  persisting_ = true;
  persistTask_ =
      options_.persistInSync(desired)
          .then(
              [this, desired](bool written) {
                persisting_ = false;
                if (!written) {
                  log()->warn("replication: the shard record changed: another broker leads");
                  if (deposedFulfiller_->isWaiting()) deposedFulfiller_->fulfill();
                  return;
                }
                persisted_ = desired;
                for (auto& [id, follower] : followers_) {
                  bool kept = std::find(desired.begin(), desired.end(), id) != desired.end();
                  if (follower.leaving && !kept) {
                    follower.inSync = false;
                    follower.leaving = false;
                  }
                }
                log()->info("replication: in-sync set is now {} member(s)", desired.size());
                settle();
              },
              [this](kj::Exception&& e) {
                persisting_ = false;  // Tried again at the next tick.
                log()->warn("replication: cannot write the in-sync set: {}",
                            e.getDescription().cStr());
              })
          .eagerlyEvaluate(nullptr);
}

Result<ReplicationHub::PullAnswer> ReplicationHub::read(uint64_t from, size_t maxBytes) const {
  PullAnswer answer;
  answer.lastSeq = lastCommitted_;
  if (from > lastCommitted_) return answer;
  auto shipped = store::ReadTxn(env_).shipLog(from, maxBytes);
  if (!shipped.ok()) return shipped.status();
  answer.batches = std::move(shipped).value();
  // The store may already hold a commit whose answer has not reached committed() yet.
  answer.lastSeq = std::max<uint64_t>(answer.lastSeq, from + answer.batches.size() - 1);
  return answer;
}

kj::Promise<Result<ReplicationHub::PullAnswer>> ReplicationHub::pull(const std::string& id,
                                                                     uint64_t from,
                                                                     kj::Duration wait,
                                                                     size_t maxBytes) {
  if (from > lastCommitted_ + 1) {
    return Result<PullAnswer>(
        Status(Code::kInvalidArgument,
               "from " + std::to_string(from) + " is past the leader's log end " +
                   std::to_string(lastCommitted_) +
                   ": the follower holds batches this leader never wrote (it diverged)"));
  }
  kj::TimePoint now = timer_.now();
  auto [it, fresh] = followers_.try_emplace(id);
  Follower& follower = it->second;
  if (fresh) log()->info("replication: follower {} pulls from {}", id, from);
  follower.acked = from - 1;
  if (follower.acked >= follower.shippedUpTo) {
    follower.caughtUp = now;
    follower.leaving = false;
    if (!follower.inSync) {
      follower.inSync = true;
      log()->info("replication: follower {} joins the in-sync set at {}; {} in-sync member(s)", id,
                  follower.acked, inSyncCount());
    }
  }
  persist();
  settle();
  auto answer = [this, id, from, maxBytes]() -> Result<PullAnswer> {
    Follower& follower = followers_[id];
    if (follower.waiting) follower.caughtUp = timer_.now();
    follower.waiting = false;
    auto read = this->read(from, maxBytes);
    if (read.ok()) follower.shippedUpTo = read.value().lastSeq;
    return read;
  };
  if (from <= lastCommitted_) return answer();
  // Caught up: it waits at the log's end, and counts as caught up until it is answered. (A
  // dropped connection cancels this wait, and with it that claim.)
  follower.waiting = true;
  return handedOut_.wrap(nextCommit_.addBranch()
                             .exclusiveJoin(timer_.afterDelay(wait))
                             .then(kj::mv(answer))
                             .attach(kj::defer([this, id]() { followers_[id].waiting = false; })));
}

core::ClusterView describeCluster(const ReplicationHub& hub, const ShardState& shard,
                                  const std::map<std::string, BrokerInfo>* alive) {
  const LeaderOptions& options = hub.options();
  core::ClusterView view;
  view.clusterId = options.clusterId;
  view.leader = shard.leader;
  view.epoch = shard.epoch;
  view.minInsync = options.minInsync;
  view.lastSeq = hub.lastCommitted();
  view.inSync = shard.inSync;
  auto addresses = [&](core::ReplicaView& broker) {
    if (!alive) return;
    auto found = alive->find(broker.id);
    broker.alive = found != alive->end();
    if (broker.alive) {
      broker.rpcAddress = found->second.rpc;
      broker.replicationAddress = found->second.replication;
      broker.tlsAddress = found->second.tls;
    }
  };
  core::ReplicaView self;
  self.id = shard.leader;
  self.alive = true;
  self.inSync = true;
  self.ackedSeq = view.lastSeq;
  self.caughtUpAgoMs = 0;
  addresses(self);
  view.brokers.push_back(std::move(self));
  std::vector<core::ReplicaView> followers = hub.followers();
  const int64_t timeoutMs = options.replicaTimeout / kj::MILLISECONDS;
  for (core::ReplicaView& follower : followers) {
    if (follower.id == shard.leader) continue;
    if (alive) {
      addresses(follower);
    } else {
      follower.alive = follower.caughtUpAgoMs >= 0 && follower.caughtUpAgoMs < timeoutMs;
    }
    view.brokers.push_back(std::move(follower));
  }
  // Live members that have not pulled from this leader yet.
  if (alive) {
    for (const auto& [id, info] : *alive) {
      bool listed = std::any_of(view.brokers.begin(), view.brokers.end(),
                                [&](const core::ReplicaView& b) { return b.id == id; });
      if (listed) continue;
      core::ReplicaView member;
      member.id = id;
      addresses(member);
      view.brokers.push_back(std::move(member));
    }
    std::sort(view.brokers.begin() + 1, view.brokers.end(),
              [](const core::ReplicaView& a, const core::ReplicaView& b) { return a.id < b.id; });
  }
  return view;
}

// ---- LogServer ----

namespace {

class LogSourceService final : public wire::LogSource::Server {
 public:
  explicit LogSourceService(ReplicationHub& hub) : hub_(hub) {}

  kj::Promise<void> pull(PullContext context) override {
    auto params = context.getParams();
    std::string cluster = params.getClusterId();
    std::string follower = params.getFollower();
    uint64_t epoch = params.getEpoch();
    uint64_t from = params.getFrom();
    uint32_t waitMs = params.getWaitMs();
    size_t maxBytes = std::clamp(params.getMaxBytes(), kMinPullBytes, kMaxPullBytes);
    const LeaderOptions& options = hub_.options();
    auto refuse = [&](wire::ReplicationError code, std::string message) {
      log()->warn("replication: refused a pull from {}: {}",
                  isIdText(follower) ? follower : "(an invalid id)", message);
      auto error = context.getResults().initResult().initError();
      error.setCode(code);
      error.setMessage(message);
      return kj::Promise<void>(kj::READY_NOW);
    };
    if (std::string problem = problemWithId(follower, "follower id"); !problem.empty())
      return refuse(wire::ReplicationError::INVALID_ARGUMENT, problem);
    if (cluster != options.clusterId) {
      return refuse(
          wire::ReplicationError::WRONG_CLUSTER,
          "this broker belongs to cluster " + options.clusterId + ", not " + cluster.substr(0, 64));
    }
    if (options.isMember && !options.isMember(follower)) {
      return refuse(wire::ReplicationError::NOT_MEMBER,
                    "broker " + follower + " is not a live member of cluster " + options.clusterId);
    }
    if (epoch != options.epoch) {
      return refuse(wire::ReplicationError::STALE_EPOCH, "epoch " + std::to_string(epoch) +
                                                             " is not this leader's epoch " +
                                                             std::to_string(options.epoch));
    }
    if (from == 0) return refuse(wire::ReplicationError::INVALID_ARGUMENT, "from must be >= 1");
    if (waitMs > kMaxWaitMs) {
      return refuse(wire::ReplicationError::INVALID_ARGUMENT,
                    "waitMs " + std::to_string(waitMs) + " is above 5000");
    }
    return hub_.pull(follower, from, waitMs * kj::MILLISECONDS, maxBytes)
        .then([epoch = options.epoch, context,
               follower](Result<ReplicationHub::PullAnswer> answer) mutable {
          auto result = context.getResults().initResult();
          if (!answer.ok()) {
            auto error = result.initError();
            bool window = answer.status().code() == Code::kInvalidArgument;
            error.setCode(window ? wire::ReplicationError::OUTSIDE_WINDOW
                                 : wire::ReplicationError::STORAGE_FAILED);
            error.setMessage(answer.status().message());
            log()->warn("replication: follower {} cannot be served: {}", follower,
                        answer.status().message());
            return;
          }
          auto shipped = result.initBatches();
          shipped.setEpoch(epoch);
          shipped.setLastSeq(answer.value().lastSeq);
          auto& batches = answer.value().batches;
          auto list = shipped.initBatches(static_cast<unsigned>(batches.size()));
          for (size_t i = 0; i < batches.size(); ++i)
            list.set(static_cast<unsigned>(i), batches[i].asBytes());
        });
  }

 private:
  ReplicationHub& hub_;
};

}  // namespace

LogServer::LogServer(ReplicationHub& hub, kj::Network& network)
    : network_(network),
      server_(kj::heap<capnp::TwoPartyServer>(
          wire::LogSource::Client(kj::heap<LogSourceService>(hub)))) {}

LogServer::~LogServer() = default;

kj::Promise<uint> LogServer::listen(const std::string& address) {
  return network_.parseAddress(address).then([this](kj::Own<kj::NetworkAddress> parsed) {
    receiver_ = parsed->listen();
    accepting_ = server_->listen(*receiver_).eagerlyEvaluate([](kj::Exception&& e) {
      log()->error("replication: stopped accepting: {}", e.getDescription().cStr());
    });
    return receiver_->getPort();
  });
}

// ---- ReplicatedStore ----

class ReplicatedStore::Detached final : public kj::TaskSet::ErrorHandler {
 public:
  void taskFailed(kj::Exception&& exception) override {
    log()->error("replication: a detached commit failed: {}", exception.getDescription().cStr());
  }
};

ReplicatedStore::ReplicatedStore(core::Store& inner, ReplicationHub& hub)
    : inner_(inner), hub_(hub), errors_(kj::heap<Detached>()) {
  detached_ = kj::heap<kj::TaskSet>(*errors_);
}

ReplicatedStore::~ReplicatedStore() noexcept {}  // NOLINT(modernize-use-equals-default)

Status ReplicatedStore::admitWrite() const {
  return hub_.admits();
}

kj::Promise<Result<uint64_t>> ReplicatedStore::commit(core::WriteBatch batch) {
  return handedOut_.wrap(
      inner_.commit(std::move(batch))
          .then([this](Result<uint64_t> committed) -> kj::Promise<Result<uint64_t>> {
            if (!committed.ok()) return committed;
            uint64_t seq = committed.value();
            // An empty batch only waits for the commits queued before it:
            // their replication too.
            if (seq == 0) {
              seq = hub_.lastCommitted();
            } else {
              hub_.committed(seq);
            }
            return hub_.replicated(seq).then([committed]() { return committed; });
          }));
}

void ReplicatedStore::commitDetached(core::WriteBatch batch, const char* what) {
  std::string name(what);
  detached_->add(inner_.commit(std::move(batch)).then([this, name](Result<uint64_t> committed) {
    if (!committed.ok()) {
      log()->warn("{} failed: {}", name, committed.status().toString());
    } else {
      hub_.committed(committed.value());
    }
  }));
}

// ---- Follower ----

struct Follower::Connection {
  kj::Own<kj::AsyncIoStream> stream;
  capnp::TwoPartyClient client;
  wire::LogSource::Client source;
  explicit Connection(kj::Own<kj::AsyncIoStream> s)
      : stream(kj::mv(s)), client(*stream), source(client.bootstrap().castAs<wire::LogSource>()) {}
};

Follower::Follower(kj::Network& network, kj::Timer& timer, store::Env& env, store::Writer& writer,
                   FollowerOptions options)
    : network_(network),
      timer_(timer),
      writer_(writer),
      options_(std::move(options)),
      applied_(store::ReadTxn(env).lastSeq()),
      retry_(options_.retryMin) {}

Follower::~Follower() = default;

kj::Promise<std::string> Follower::needsSnapshot() {
  auto paf = kj::newPromiseAndFulfiller<std::string>();
  needsSnapshot_ = kj::mv(paf.fulfiller);
  return kj::mv(paf.promise);
}

kj::Promise<void> Follower::run() {
  return session()
      .then([]() {},
            [this](kj::Exception&& e) {
              std::string problem = e.getDescription().cStr();
              if (problem != lastProblem_) {
                log()->warn("replication: pulling from {} failed (retrying): {}", options_.leader,
                            problem);
                lastProblem_ = problem;
              }
            })
      .then([this]() {
        kj::Duration delay = retry_;
        retry_ = std::min(retry_ * 2, options_.retryMax);
        return timer_.afterDelay(delay);
      })
      .then([this]() { return run(); });
}

kj::Promise<void> Follower::session() {
  return network_.parseAddress(options_.leader)
      .then([](kj::Own<kj::NetworkAddress> address) {
        return address->connect().attach(kj::mv(address));
      })
      .then([this](kj::Own<kj::AsyncIoStream> stream) {
        auto connection = kj::heap<Connection>(kj::mv(stream));
        auto& ref = *connection;
        return pullLoop(ref).attach(kj::mv(connection));
      });
}

kj::Promise<void> Follower::pullLoop(Connection& connection) {
  auto request = connection.source.pullRequest();
  request.setClusterId(options_.clusterId);
  request.setFollower(options_.brokerId);
  request.setEpoch(options_.epoch);
  request.setFrom(applied_ + 1);
  request.setWaitMs(options_.waitMs);
  request.setMaxBytes(options_.maxBytes);
  return request.send()
      .then([this](capnp::Response<wire::LogSource::PullResults> response) -> kj::Promise<void> {
        auto result = response.getResult();
        if (result.isError()) {
          auto error = result.getError();
          if (error.getCode() == wire::ReplicationError::OUTSIDE_WINDOW && needsSnapshot_) {
            needsSnapshot_->fulfill(std::string(error.getMessage()));
            needsSnapshot_ = nullptr;
          }
          KJ_FAIL_REQUIRE("the leader refused the pull", error.getMessage().cStr());
        }
        auto shipped = result.getBatches();
        std::vector<core::LoggedBatch> batches;
        batches.reserve(shipped.getBatches().size());
        for (auto bytes : shipped.getBatches()) {
          auto decoded = store::decodeShipped(
              std::string_view(reinterpret_cast<const char*>(bytes.begin()), bytes.size()));
          if (!decoded.ok()) {
            KJ_FAIL_REQUIRE("a shipped batch does not decode", decoded.status().message());
          }
          uint64_t expected = applied_ + 1 + batches.size();
          KJ_REQUIRE(decoded.value().seq == expected, "the leader shipped batches out of order",
                     decoded.value().seq, expected);
          batches.push_back(std::move(decoded).value());
        }
        if (batches.empty()) return kj::READY_NOW;
        uint64_t last = batches.back().seq;
        return writer_.replayAsync(std::move(batches)).then([this, last](Status applied) {
          if (!applied.ok())
            KJ_FAIL_REQUIRE("applying the leader's batches failed", applied.toString());
          applied_ = last;
        });
      })
      .then([this, &connection]() {
        retry_ = options_.retryMin;
        lastProblem_.clear();
        return pullLoop(connection);
      });
}

}  // namespace sluice::cluster
