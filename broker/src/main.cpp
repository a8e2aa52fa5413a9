// sluiced: wiring, signals and the shutdown order; the flags and config file are in config.cpp.
#include <malloc.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <kj/async-io.h>
#include <kj/async-unix.h>
#include <spdlog/spdlog.h>

#include "admin/api.h"
#include "admin/http_server.h"
#include "admin/metrics_page.h"
#include "cluster/member.h"
#include "cluster/replication.h"
#include "cluster/snapshot.h"
#include "common/text.h"
#include "config.h"
#include "core/broker.h"
#include "logging.h"
#include "net/host_port.h"
#include "rpc/redirect.h"
#include "rpc/server.h"
#include "rpc/tls.h"
#include "store/fsync_timing.h"
#include "store/store.h"
#include "tools.h"

namespace {

using sluice::Status;
using sluice::daemon::Config;

constexpr uint64_t kMinStorage = sluice::daemon::kMinStorageBytes;

// Half of what the data directory's filesystem could hold for us (free space plus the store's
// current size), so a default broker never fills its disk.
uint64_t defaultMaxStorage(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  struct statvfs fs {};
  uint64_t available = 0;
  if (statvfs(dir.c_str(), &fs) == 0) available = static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
  uint64_t existing = 0;
  auto size = std::filesystem::file_size(std::filesystem::path(dir) / "data.mdb", ec);
  if (!ec) existing = size;
  return std::max(kMinStorage, (available + existing) / 2);
}

// Thread: kj. Plain values only, so the admin thread can render them.
sluice::admin::MetricsSnapshot takeSnapshot(sluice::core::Broker& broker,
                                            const sluice::core::Metrics& metrics,
                                            const sluice::store::Writer& writer) {
  sluice::admin::MetricsSnapshot snapshot;
  snapshot.version = SLUICE_VERSION;
  snapshot.stats = broker.stats();
  auto topics = broker.listTopics();
  if (topics.ok()) snapshot.topics = std::move(topics).value();
  snapshot.ackedTotal = metrics.ackedTotal.load(std::memory_order_relaxed);
  snapshot.nackedTotal = metrics.nackedTotal.load(std::memory_order_relaxed);
  snapshot.redeliveredTotal = metrics.redeliveredTotal.load(std::memory_order_relaxed);
  snapshot.deadLetteredTotal = metrics.deadLetteredTotal.load(std::memory_order_relaxed);
  snapshot.expiredTotal = metrics.expiredTotal.load(std::memory_order_relaxed);
  snapshot.commitSeconds = writer.commitSeconds().snapshot();
  snapshot.fsyncSeconds = sluice::store::fsyncSeconds().snapshot();
  snapshot.batchJobs = writer.batchJobs().snapshot();
  snapshot.storageFailed = writer.failure().has_value();
  snapshot.tlsCertificateExpiry = metrics.tlsCertificateExpiry.load(std::memory_order_relaxed);
  snapshot.tlsHandshakeFailures = metrics.tlsHandshakeFailures.load(std::memory_order_relaxed);
  snapshot.authFailures = metrics.authFailures.load(std::memory_order_relaxed);
  return snapshot;
}

// Thread: admin. Reads counters and the writer's sticky failure; anything more comes from the
// KJ thread through the executor.
sluice::admin::HttpResponse answerAdmin(const sluice::admin::HttpRequest& request,
                                        const kj::Executor& kjThread, sluice::core::Broker& broker,
                                        const sluice::core::Metrics& metrics,
                                        const sluice::store::Writer& writer,
                                        const std::atomic<bool>& ready) {
  sluice::admin::HttpResponse response;
  const std::string& path = request.path;
  if (request.method != "GET" && request.method != "HEAD") {
    response.status = 405;
    response.body = "only GET and HEAD\n";
  } else if (path == "/healthz") {
    if (auto failure = writer.failure()) {
      response.status = 503;
      response.body =
          "unhealthy: a commit failed; writes are refused until restart: " + *failure + "\n";
    } else {
      response.body = "ok\n";
    }
  } else if (path == "/readyz") {
    bool isReady = ready.load();
    response.status = isReady ? 200 : 503;
    response.body = isReady ? "ready\n" : "not ready: starting or stopping\n";
  } else if (path == "/metrics") {
    auto snapshot = kjThread.executeSync([&]() { return takeSnapshot(broker, metrics, writer); });
    response.contentType = "text/plain; version=0.0.4; charset=utf-8";
    response.body = sluice::admin::renderMetrics(snapshot);
  } else {
    response.status = 404;
    response.body = "not found; try /ui/, /api/v1/overview, /metrics, /healthz or /readyz\n";
  }
  return response;
}

// Host header names the console and HTTP API answer to: loopback names, the admin address's
// host, and admin_hosts.
std::vector<std::string> allowedHosts(const Config& config) {
  std::vector<std::string> hosts = {"localhost", "127.0.0.1", "[::1]"};
  auto add = [&](std::string_view name) {
    std::string host = sluice::lowerAscii(name);
    if (host.find(':') != std::string::npos && host[0] != '[') host = "[" + host + "]";
    if (!host.empty()) hosts.push_back(host);
  };
  auto colon = config.admin.rfind(':');
  add(config.admin.substr(0, colon));
  if (!config.adminHosts.empty()) {
    for (std::string_view host : sluice::net::splitList(config.adminHosts))
      add(host);
  }
  return hosts;
}

// The operator's first admin token: SLUICE_ADMIN_TOKEN, or the first line of admin_token_file.
// Empty when neither is given; nullopt (after printing why) when the file cannot be read.
std::optional<std::string> adminToken(const Config& config) {
  if (const char* env = std::getenv("SLUICE_ADMIN_TOKEN"); env != nullptr && *env != '\0')
    return std::string(env);
  if (config.adminTokenFile.empty()) return std::string();
  std::FILE* file = std::fopen(config.adminTokenFile.c_str(), "r");
  if (file == nullptr) {
    std::fprintf(stderr, "sluiced: admin_token_file %s: %s\n", config.adminTokenFile.c_str(),
                 std::strerror(errno));
    return std::nullopt;
  }
  char line[1024] = {};
  bool read = std::fgets(line, sizeof line, file) != nullptr;
  std::fclose(file);
  std::string token = read ? line : "";
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back())))
    token.pop_back();
  if (token.empty()) {
    std::fprintf(stderr, "sluiced: admin_token_file %s: its first line is empty\n",
                 config.adminTokenFile.c_str());
    return std::nullopt;
  }
  return token;
}

// A follower: applies the leader's write log as it comes, serves no clients, until SIGTERM.
int followLeader(const Config& config, sluice::store::Env& env, sluice::store::Writer& writer,
                 kj::AsyncIoContext& io) {
  auto log = spdlog::get("main");
  sluice::cluster::FollowerOptions options;
  options.leader = config.follow;
  options.clusterId = config.clusterId;
  options.brokerId = config.brokerId;
  sluice::cluster::Follower follower(io.provider->getNetwork(), io.provider->getTimer(), env,
                                     writer, options);
  log->info("following leader={} cluster={} broker_id={} applied={}", config.follow,
            config.clusterId, config.brokerId, follower.appliedSeq());
  auto running = follower.run().eagerlyEvaluate([&log](kj::Exception&& e) {
    log->error("following stopped: {}", e.getDescription().cStr());
  });
  std::printf("ready follower=%s\n", config.brokerId.c_str());
  std::fflush(stdout);
  auto& events = io.unixEventPort;
  events.onSignal(SIGTERM).exclusiveJoin(events.onSignal(SIGINT)).wait(io.waitScope);
  log->info("stopping: applied={}", follower.appliedSeq());
  running = nullptr;
  writer.stop();
  if (auto failure = writer.failure()) {
    log->error("stopped after a failed commit: {}", *failure);
    return 1;
  }
  log->info("stopped");
  return 0;
}

// What every way of serving shares, made once at start-up.
struct Runtime {
  const Config& config;
  kj::AsyncIoContext& io;
  sluice::core::Metrics& metrics;
  const std::optional<sluice::rpc::TlsFiles>& tlsFiles;
  const std::optional<std::string>& firstAdminToken;
};

// Serves clients from `store` until `until` resolves, then shuts down in order and stops the
// writer. With a log server, it listens on replication_listen first. announce: print the ready
// line (a standalone broker or a static leader; a cluster member printed its own). cluster: a
// leader's replication state (null: standalone). Returns the exit code.
int serveClients(Runtime& rt, sluice::store::Writer& writer, sluice::core::Store& store,
                 sluice::cluster::LogServer* logServer, kj::Promise<void> until, bool announce,
                 std::function<sluice::core::ClusterView()> cluster = nullptr) {
  auto log = spdlog::get("main");
  const Config& config = rt.config;
  auto& io = rt.io;
  auto& metrics = rt.metrics;
  const auto& tlsFiles = rt.tlsFiles;
  sluice::core::BrokerOptions brokerOptions;
  brokerOptions.autoCreateTopics = config.autoCreateTopics;
  brokerOptions.authentication = config.auth;
  brokerOptions.version = SLUICE_VERSION;
  brokerOptions.cluster = std::move(cluster);
  int exitCode = 0;
  {
    sluice::core::Broker broker(store, io.provider->getTimer(), metrics, brokerOptions);
    broker.start();
    if (config.auth) {
      Status registered;
      if (!rt.firstAdminToken->empty())
        registered = broker.auth().ensureAdminToken(*rt.firstAdminToken).wait(io.waitScope);
      if (registered.ok() && broker.auth().principals() == 0) {
        registered = Status(sluice::Code::kInvalidArgument,
                            "auth is on and the store has no principal yet: give the first admin "
                            "token in SLUICE_ADMIN_TOKEN or admin_token_file");
      }
      if (!registered.ok()) {
        std::fprintf(stderr, "sluiced: %s\n", registered.message().c_str());
        broker.shutdown();
        writer.stop();
        return 2;
      }
    }
    sluice::rpc::ServerOptions serverOptions;
    serverOptions.lowLevelIo = io.lowLevelProvider.get();
    serverOptions.timer = &io.provider->getTimer();
    serverOptions.maxConnections = config.maxConnections;
    sluice::rpc::RpcServer server(broker, metrics, io.provider->getNetwork(), serverOptions);
    kj::Own<kj::TlsContext> tls;
    if (tlsFiles) {
      tls = sluice::rpc::makeServerTls(*tlsFiles, io.provider->getTimer(), 10 * kj::SECONDS);
    }
    uint port = 0;
    uint tlsPort = 0;
    uint replicationPort = 0;
    std::string listening = config.listen;
    try {
      if (logServer) {
        listening = config.replicationListen;
        replicationPort = logServer->listen(config.replicationListen).wait(io.waitScope);
        listening = config.listen;
      }
      port = server.listen(config.listen).wait(io.waitScope);
      if (tls) {
        listening = config.listenTls;
        tlsPort = server.listenTls(config.listenTls, *tls).wait(io.waitScope);
      }
    } catch (const kj::Exception& e) {
      log->error("cannot listen on {}: {}", listening, e.getDescription().cStr());
      broker.shutdown();
      writer.stop();
      return 1;
    }
    std::atomic<bool> ready{false};
    const kj::Executor& kjThread = kj::getCurrentThreadExecutor();
    sluice::admin::HttpOptions adminOptions;
    adminOptions.listen = config.admin;
    if (tlsFiles) adminOptions.tls = sluice::admin::HttpTls{tlsFiles->certPem, tlsFiles->keyPem};
    sluice::admin::ApiOptions apiOptions;
    apiOptions.version = SLUICE_VERSION;
    apiOptions.allowedHosts = allowedHosts(config);
    apiOptions.commitSeconds = [&writer] { return writer.commitSeconds().snapshot(); };
    apiOptions.fsyncSeconds = [] { return sluice::store::fsyncSeconds().snapshot(); };
    sluice::admin::HttpApi api(broker, io.provider->getTimer(), apiOptions);
    api.start();
    sluice::admin::HttpServer adminServer(
        adminOptions, [&](sluice::admin::HttpRequest request, sluice::admin::HttpReply reply) {
          if (sluice::admin::HttpApi::owns(request.path)) {
            kjThread.executeSync([&]() { api.handle(std::move(request), std::move(reply)); });
          } else {
            reply(answerAdmin(request, kjThread, broker, metrics, writer, ready));
          }
        });
    auto adminPort = adminServer.start();
    if (!adminPort.ok()) {
      log->error("{}", adminPort.status().message());
      broker.shutdown();
      writer.stop();
      return 1;
    }
    ready = true;
    log->info("listening rpc={} rpc_port={} admin={} admin_port={} version={}", config.listen, port,
              config.admin, adminPort.value(), SLUICE_VERSION);
    if (tls) {
      log->info("listening tls={} tls_port={} client_certificates={}", config.listenTls, tlsPort,
                tlsFiles->clientCaPem.empty() ? "not asked" : "required");
    }
    if (logServer) {
      log->info("replicating replication={} replication_port={} cluster={} min_insync={}",
                config.replicationListen, replicationPort, config.clusterId, config.minInsync);
    }
    if (announce) {
      std::printf("ready rpc=%u", port);
      if (tls) std::printf(" tls=%u", tlsPort);
      std::printf(" admin=%u", static_cast<unsigned>(adminPort.value()));
      if (logServer) std::printf(" replication=%u", replicationPort);
      std::printf("\n");
      std::fflush(stdout);
    }

    until.wait(io.waitScope);
    log->info("stopping: no new connections; finishing in-flight commits");
    // Shutdown order: stop accepting, let calls waiting on commits get their answers, end
    // subscriptions, close connections, stop the writer (it commits what is queued), then LMDB.
    ready = false;
    server.stopAccepting();
    auto& timer = io.provider->getTimer();
    auto deadline = timer.now() + 10 * kj::SECONDS;
    while (broker.callsAwaitingCommit() > 0 && timer.now() < deadline) {
      timer.afterDelay(2 * kj::MILLISECONDS).wait(io.waitScope);
    }
    api.shutdown();
    broker.shutdown();
    // One more short turn so that answers and `closed` notices reach the sockets.
    timer.afterDelay(20 * kj::MILLISECONDS).wait(io.waitScope);
    server.disconnectAll();
    // Before the KJ loop it reads through goes away; the loop turns meanwhile, so that a request
    // the admin thread is handing over still gets through.
    adminServer.requestStop();
    while (!adminServer.finished())
      timer.afterDelay(1 * kj::MILLISECONDS).wait(io.waitScope);
    adminServer.stop();
    writer.stop();
    if (auto failure = writer.failure()) {
      log->error("stopped after a failed commit: {}", *failure);
      exitCode = 1;
    }
  }
  return exitCode;
}

// A cluster member (cluster/README.md): etcd decides whether this broker leads or follows; each
// role runs until the cluster's state says otherwise, with the store reopened in between.
int serveCluster(Runtime& rt, const sluice::store::EnvOptions& envOptions) {
  namespace cluster = sluice::cluster;
  auto log = spdlog::get("cluster");
  const Config& config = rt.config;
  auto& io = rt.io;
  auto& timer = io.provider->getTimer();
  auto& network = io.provider->getNetwork();
  cluster::MemberOptions memberOptions;
  for (std::string_view endpoint : sluice::net::splitList(config.etcd))
    memberOptions.etcd.emplace_back(endpoint);
  memberOptions.clusterId = config.clusterId;
  memberOptions.brokerId = config.brokerId;
  memberOptions.rpcAddress = config.listen;
  memberOptions.replicationAddress = config.replicationListen;
  memberOptions.tlsAddress = config.listenTls;
  cluster::ClusterMember member(timer, network, memberOptions);
  try {
    member.join().wait(io.waitScope);
  } catch (const kj::Exception& e) {
    log->error("cannot join cluster {} through etcd {}: {}", config.clusterId, config.etcd,
               e.getDescription().cStr());
    return 1;
  }
  auto& events = io.unixEventPort;
  auto signal =
      events.onSignal(SIGTERM).exclusiveJoin(events.onSignal(SIGINT)).then([](siginfo_t) {}).fork();
  bool stopping = false;
  auto noteStop =
      signal.addBranch().then([&stopping]() { stopping = true; }).eagerlyEvaluate(nullptr);

  // While this broker does not lead, its client addresses answer who leads (rpc/redirect.h).
  sluice::rpc::Redirect redirect;
  redirect.self = config.brokerId;
  redirect.view.clusterId = config.clusterId;
  redirect.why = "starting";
  auto redirectTo = [&](const cluster::ShardState& shard,
                        const std::map<std::string, cluster::BrokerInfo>& alive, std::string why) {
    redirect.view.epoch = shard.epoch;
    redirect.view.leader =
        shard.leader != config.brokerId && alive.count(shard.leader) > 0 ? shard.leader : "";
    redirect.view.brokers.clear();
    for (const auto& [id, info] : alive) {
      sluice::core::ReplicaView broker;
      broker.id = id;
      broker.alive = true;
      broker.rpcAddress = info.rpc;
      broker.replicationAddress = info.replication;
      broker.tlsAddress = info.tls;
      redirect.view.brokers.push_back(std::move(broker));
    }
    redirect.why = std::move(why);
  };
  sluice::rpc::ServerOptions redirectOptions;
  redirectOptions.timer = &timer;
  redirectOptions.maxConnections = config.maxConnections;
  sluice::rpc::RpcServer redirector(
      [&redirect](std::shared_ptr<sluice::rpc::ConnectionInfo>,
                  std::optional<std::string>) -> capnp::Capability::Client {
        return kj::heap<sluice::rpc::RedirectService>([&redirect]() { return redirect; });
      },
      rt.metrics, network, redirectOptions);
  kj::Own<kj::TlsContext> redirectTls;
  if (rt.tlsFiles) redirectTls = sluice::rpc::makeServerTls(*rt.tlsFiles, timer, 10 * kj::SECONDS);
  auto redirectClients = [&]() -> bool {
    try {
      redirector.listen(config.listen).wait(io.waitScope);
      if (redirectTls) redirector.listenTls(config.listenTls, *redirectTls).wait(io.waitScope);
      return true;
    } catch (const kj::Exception& e) {
      log->error("cannot listen on {}: {}", config.listen, e.getDescription().cStr());
      return false;
    }
  };
  if (!redirectClients()) {
    member.leave().wait(io.waitScope);
    return 1;
  }
  std::printf("ready broker=%s cluster=%s\n", config.brokerId.c_str(), config.clusterId.c_str());
  std::fflush(stdout);

  int exitCode = 0;
  std::string waitingWhy;
  bool awaitingLease = false;
  while (!stopping && exitCode == 0) {
    auto env = sluice::store::Env::open(envOptions);
    if (!env.ok()) {
      log->error("cannot open store dir={} err={}", config.data, env.status().toString());
      exitCode = 1;
      break;
    }
    uint64_t lastSeq = 0;
    sluice::store::ReadTxn::EpochMark mark;
    {
      sluice::store::ReadTxn read(*env.value());
      lastSeq = read.lastSeq();
      mark = read.leaderEpoch();
    }
    cluster::ShardState shard;
    std::map<std::string, cluster::BrokerInfo> alive;
    try {
      shard = member.shard().wait(io.waitScope);
      alive = member.brokers().wait(io.waitScope);
    } catch (const kj::Exception& e) {
      log->warn("cannot read the cluster's state: {}", e.getDescription().cStr());
      redirect.view.leader.clear();
      redirect.why = "cannot reach etcd to learn the leader";
      member.changed(500 * kj::MILLISECONDS).exclusiveJoin(signal.addBranch()).wait(io.waitScope);
      continue;
    }
    // A store of another cluster, or one with data of its own that never was in a cluster,
    // is not replaced by a snapshot: the operator decides.
    if (!mark.cluster.empty() && mark.cluster != config.clusterId) {
      log->error("the store in {} belongs to cluster {}, not {}; refusing to join", config.data,
                 mark.cluster, config.clusterId);
      exitCode = 2;
      break;
    }
    cluster::Role role = cluster::decideRole(shard, alive, config.brokerId, lastSeq);
    if (role.kind == cluster::Role::Kind::kFollow && mark.cluster.empty() && lastSeq > 0) {
      log->error(
          "the store in {} holds {} batches of a broker that was never in a cluster; a follower "
          "starts from an empty store (only the first broker of a new cluster may bring its "
          "data). Refusing to join",
          config.data, lastSeq);
      exitCode = 2;
      break;
    }
    redirectTo(shard, alive,
               role.kind == cluster::Role::Kind::kFollow ? "follows " + role.leader.id
               : role.kind == cluster::Role::Kind::kWait ? role.why
                                                         : "about to lead");
    if (role.kind == cluster::Role::Kind::kWait) {
      if (role.why != waitingWhy) log->warn("waiting: {}", role.why);
      waitingWhy = role.why;
      member.changed().exclusiveJoin(signal.addBranch()).wait(io.waitScope);
      continue;
    }
    waitingWhy.clear();

    if (role.kind == cluster::Role::Kind::kFollow) {
      std::string snapshotWhy;
      if (cluster::diverged(shard, mark.epoch, lastSeq)) {
        snapshotWhy = "this store holds batches the cluster's history does not (its epoch " +
                      std::to_string(mark.epoch) + ", last " + std::to_string(lastSeq) + ")";
      } else {
        log->info("following leader={} epoch={} from={}", role.leader.id, shard.epoch, lastSeq + 1);
        sluice::store::Writer writer(*env.value());
        cluster::FollowerOptions options;
        options.leader = role.leader.replication;
        options.clusterId = config.clusterId;
        options.brokerId = config.brokerId;
        options.epoch = shard.epoch;
        cluster::Follower follower(network, timer, *env.value(), writer, options);
        auto needsSnapshot = follower.needsSnapshot().fork();
        auto running = follower.run().eagerlyEvaluate(nullptr);
        // Until the leader or its epoch changes (or it is gone), or the leader says this store
        // must catch up from a snapshot.
        std::function<kj::Promise<void>()> leaderChanged = [&]() -> kj::Promise<void> {
          return member.changed().then([&]() {
            return member.shard().then(
                [&](cluster::ShardState now) -> kj::Promise<void> {
                  if (now.leader != shard.leader || now.epoch != shard.epoch) return kj::READY_NOW;
                  return member.brokers().then(
                      [&](std::map<std::string, cluster::BrokerInfo> brokers) -> kj::Promise<void> {
                        if (brokers.count(shard.leader) == 0) return kj::READY_NOW;
                        redirectTo(shard, brokers, redirect.why);  // Members come and go.
                        return leaderChanged();
                      });
                },
                [&](kj::Exception&&) { return leaderChanged(); });
          });
        };
        leaderChanged()
            .exclusiveJoin(signal.addBranch())
            .exclusiveJoin(needsSnapshot.addBranch().then(
                [&snapshotWhy](std::string why) { snapshotWhy = std::move(why); }))
            .wait(io.waitScope);
        running = nullptr;
        writer.stop();
        log->info("stopped following leader={} applied={}", role.leader.id, follower.appliedSeq());
        if (writer.failure()) exitCode = 1;
      }
      if (!snapshotWhy.empty() && !stopping) {
        log->warn("catching up from a snapshot of leader {}: {}", role.leader.id, snapshotWhy);
        std::string part = config.data + "/snapshot.mdb.part";
        env.value().reset();  // The store is closed while it is replaced.
        try {
          uint64_t bytes =
              cluster::fetchSnapshot(network, role.leader.rpc, part).wait(io.waitScope);
          cluster::installSnapshot(part, config.data);
          log->info("installed a snapshot of leader {} bytes={}", role.leader.id, bytes);
        } catch (const kj::Exception& e) {
          log->warn("snapshot failed: {}", e.getDescription().cStr());
          std::remove(part.c_str());
          timer.afterDelay(1 * kj::SECONDS).exclusiveJoin(signal.addBranch()).wait(io.waitScope);
        }
      }
      continue;
    }

    // Lead, but only with a lease etcd has confirmed lately: after etcd was unreachable, the
    // record may be writable again before this broker's next renewal is answered, and a leader
    // without a valid lease would step down at once.
    if (!member.leaseValid()) {
      if (!awaitingLease) log->info("waiting for a lease renewal before leading");
      awaitingLease = true;
      member.changed(200 * kj::MILLISECONDS).exclusiveJoin(signal.addBranch()).wait(io.waitScope);
      continue;
    }
    awaitingLease = false;
    // Lead: take the shard record by compare-and-swap, then begin the epoch in the log.
    int64_t revision = 0;
    try {
      revision = member.swapShard(shard, role.next).wait(io.waitScope);
    } catch (const kj::Exception& e) {
      log->warn("cannot take the lead: {}", e.getDescription().cStr());
      continue;
    }
    if (revision == 0) continue;  // Someone else changed the record first: decide again.
    auto current = std::make_shared<cluster::ShardState>(role.next);
    current->modRevision = revision;
    log->info("leading epoch={} from={} in_sync={}", current->epoch, lastSeq + 1,
              current->inSync.size());
    // The leader's own server takes the client addresses until it stops leading.
    redirector.stopAccepting();
    redirector.disconnectAll();
    KJ_DEFER(if (!stopping && !redirectClients()) exitCode = 1);
    sluice::store::Writer writer(*env.value());
    sluice::store::LmdbStore lmdbStore(*env.value(), writer);
    sluice::core::WriteBatch begin;
    begin.ops.push_back(
        sluice::core::BeginEpochOp{current->epoch, config.brokerId, config.clusterId});
    auto begun = writer.commit(std::move(begin)).wait(io.waitScope);
    if (!begun.ok()) {
      log->error("cannot begin epoch {}: {}", current->epoch, begun.status().toString());
      writer.stop();
      exitCode = 1;
      break;
    }
    cluster::LeaderOptions leaderOptions;
    leaderOptions.clusterId = config.clusterId;
    leaderOptions.epoch = current->epoch;
    leaderOptions.minInsync = config.minInsync;
    leaderOptions.replicaTimeout = config.replicaTimeoutMs * kj::MILLISECONDS;
    leaderOptions.leaderId = config.brokerId;
    leaderOptions.initialInSync = current->inSync;
    leaderOptions.mayAcknowledge = [&member]() { return member.leaseValid(); };
    leaderOptions.isMember = [&alive](const std::string& id) { return alive.count(id) > 0; };
    leaderOptions.persistInSync = [&member, current](std::vector<std::string> inSync) {
      cluster::ShardState next = *current;
      next.inSync = std::move(inSync);
      return member.swapShard(*current, next).then([current, next](int64_t written) mutable {
        if (written == 0) return false;
        next.modRevision = written;
        *current = next;
        return true;
      });
    };
    cluster::ReplicationHub hub(*env.value(), timer, leaderOptions);
    cluster::ReplicatedStore store(lmdbStore, hub);
    cluster::LogServer logServer(hub, network);
    // Until stopped, deposed (the record changed hands), or the lease may have expired.
    std::function<kj::Promise<void>()> stillLeading = [&]() -> kj::Promise<void> {
      return member.changed(200 * kj::MILLISECONDS).then([&]() -> kj::Promise<void> {
        if (!member.leaseValid()) {
          log->warn("the lease may have expired: stepping down");
          return kj::READY_NOW;
        }
        return member.brokers()
            .then([&](std::map<std::string, cluster::BrokerInfo> now) { alive = std::move(now); },
                  [](kj::Exception&&) {})
            .then([&]() { return member.shard(); })
            .then(
                [&](cluster::ShardState now) -> kj::Promise<void> {
                  if (now.leader != config.brokerId || now.epoch != current->epoch) {
                    log->warn("deposed: leader={} epoch={}", now.leader, now.epoch);
                    return kj::READY_NOW;
                  }
                  return stillLeading();
                },
                [&](kj::Exception&&) { return stillLeading(); });
      });
    };
    int code = serveClients(
        rt, writer, store, &logServer,
        stillLeading().exclusiveJoin(hub.deposed()).exclusiveJoin(signal.addBranch()), false,
        [&hub, &alive, current]() { return cluster::describeCluster(hub, *current, &alive); });
    log->info("stopped leading epoch={}", current->epoch);
    if (code != 0) exitCode = code;
  }
  member.leave().wait(io.waitScope);
  return exitCode;
}

int serve(const Config& config) {
  auto log = spdlog::get("main");
  sluice::core::Metrics metrics;
  std::optional<std::string> firstAdminToken;
  if (config.auth) {
    firstAdminToken = adminToken(config);
    if (!firstAdminToken) return 2;
  }
  // Checked before anything else: a bad certificate stops the broker here, not at every
  // handshake.
  std::optional<sluice::rpc::TlsFiles> tlsFiles;
  if (!config.listenTls.empty()) {
    auto loaded = sluice::rpc::loadTlsFiles(config.tlsCert, config.tlsKey, config.tlsClientCa);
    if (!loaded.ok()) {
      std::fprintf(stderr, "sluiced: %s\n", loaded.status().message().c_str());
      return 2;
    }
    tlsFiles = std::move(loaded.value());
    metrics.tlsCertificateExpiry.store(tlsFiles->notAfterUnix, std::memory_order_relaxed);
  }
  sluice::store::EnvOptions envOptions;
  envOptions.dir = config.data;
  envOptions.maxStorageBytes =
      config.maxStorage != 0 ? config.maxStorage : defaultMaxStorage(config.data);
  envOptions.syncCommits = config.durability == "sync";
  envOptions.logWindowBytes = config.writeLogWindow;
  bool replicated =
      !config.replicationListen.empty() || !config.follow.empty() || !config.etcd.empty();
  // A leader ships its log to followers, and a follower may lead later: both keep a window.
  if (replicated && envOptions.logWindowBytes == 0) envOptions.logWindowBytes = 256ull << 20;
  envOptions.logMaxAgeMs = config.writeLogMaxAgeMs;
  if (config.allowAnonymous) {
    log->warn(
        "allow_anonymous: clients need no credential on listen={}{}; anyone who reaches it can "
        "read, publish and delete every topic",
        config.listen, config.listenTls.empty() ? "" : " and listen_tls=" + config.listenTls);
  }
  if (!envOptions.syncCommits) {
    log->warn(
        "durability=async: publishes are acknowledged before they are on disk; a crash "
        "can lose the last ~100 ms of acknowledged messages");
  }
  auto io = kj::setupAsyncIo();
  Runtime rt{config, io, metrics, tlsFiles, firstAdminToken};
  if (!config.etcd.empty()) {
    int code = serveCluster(rt, envOptions);
    log->info("stopped");
    return code;
  }
  auto env = sluice::store::Env::open(envOptions);
  if (!env.ok()) {
    log->error("cannot open store dir={} err={}", config.data, env.status().toString());
    return 1;
  }
  log->info("store opened dir={} max_storage={} used={}", config.data, envOptions.maxStorageBytes,
            env.value()->usedBytes());

  sluice::store::Writer writer(*env.value());
  sluice::store::LmdbStore lmdbStore(*env.value(), writer);
  if (!config.follow.empty()) return followLeader(config, *env.value(), writer, io);
  // A leader: every commit is answered once the in-sync followers hold it.
  kj::Own<sluice::cluster::ReplicationHub> hub;
  kj::Own<sluice::cluster::ReplicatedStore> replicatedStore;
  kj::Own<sluice::cluster::LogServer> logServer;
  sluice::core::Store* store = &lmdbStore;
  if (!config.replicationListen.empty()) {
    sluice::cluster::LeaderOptions leaderOptions;
    leaderOptions.clusterId = config.clusterId;
    leaderOptions.minInsync = config.minInsync;
    leaderOptions.replicaTimeout = config.replicaTimeoutMs * kj::MILLISECONDS;
    hub = kj::heap<sluice::cluster::ReplicationHub>(*env.value(), io.provider->getTimer(),
                                                    leaderOptions);
    replicatedStore = kj::heap<sluice::cluster::ReplicatedStore>(lmdbStore, *hub);
    logServer = kj::heap<sluice::cluster::LogServer>(*hub, io.provider->getNetwork());
    store = replicatedStore.get();
  }
  std::function<sluice::core::ClusterView()> cluster;
  if (hub) {
    // Static roles: no record; the followers in sync are the hub's.
    cluster = [&hub, &config]() {
      sluice::cluster::ShardState shard;
      shard.leader = config.brokerId.empty() ? "leader" : config.brokerId;
      shard.inSync.push_back(shard.leader);
      for (const auto& follower : hub->followers()) {
        if (follower.inSync) shard.inSync.push_back(follower.id);
      }
      return sluice::cluster::describeCluster(*hub, shard, nullptr);
    };
  }
  auto& events = io.unixEventPort;
  int exitCode = serveClients(
      rt, writer, *store, logServer.get(),
      events.onSignal(SIGTERM).exclusiveJoin(events.onSignal(SIGINT)).then([](siginfo_t) {}), true,
      std::move(cluster));
  log->info("stopped");
  return exitCode;
}

}  // namespace

int main(int argc, char** argv) {
  // Signals must be captured before any thread starts so that every thread blocks them.
  kj::UnixEventPort::captureSignal(SIGTERM);
  kj::UnixEventPort::captureSignal(SIGINT);
  signal(SIGPIPE, SIG_IGN);
  // Past a file size limit (ulimit -f) a commit fails (sticky, reported by /healthz) instead of
  // the kernel killing the broker mid-write.
  signal(SIGXFSZ, SIG_IGN);
  // Every delivery builds its RPC message in a fresh heap segment of up to the delivery batch
  // size and frees it once sent. With glibc's adaptive default the freed top of the heap went
  // back to the kernel after each delivery and was faulted in again by the next one (a tenth
  // of the event loop's time in a drain). Keep up to 16 MiB of freed heap; mmap only for
  // blocks above any delivery batch.
  mallopt(M_TRIM_THRESHOLD, 16 << 20);
  mallopt(M_MMAP_THRESHOLD, 8 << 20);

  auto parsed = sluice::daemon::parseCommandLine(argc, argv);
  if (!parsed.invocation) return parsed.exitCode;
  const Config& config = parsed.invocation->config;
  if (parsed.invocation->mode == sluice::daemon::Mode::kPrintConfig) {
    std::fputs(sluice::daemon::toToml(config).c_str(), stdout);
    return 0;
  }
  sluice::daemon::setUpLogging(config.logLevel, config.logFormat);
  switch (parsed.invocation->mode) {
    case sluice::daemon::Mode::kCheck:
      return sluice::daemon::runCheck(config.data);
    case sluice::daemon::Mode::kDump:
      return sluice::daemon::runDump(config.data);
    case sluice::daemon::Mode::kReplayLog:
      return sluice::daemon::runReplayLog(parsed.invocation->replaySource, config.data,
                                          config.writeLogWindow, config.writeLogMaxAgeMs);
    default:
      break;
  }
  try {
    return serve(config);
  } catch (const kj::Exception& e) {
    spdlog::get("main")->critical("fatal: {}", e.getDescription().cStr());
    return 1;
  } catch (const std::exception& e) {
    spdlog::get("main")->critical("fatal: {}", e.what());
    return 1;
  }
}
