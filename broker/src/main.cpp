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
#include <optional>
#include <string>
#include <vector>

#include <kj/async-io.h>
#include <kj/async-unix.h>
#include <spdlog/spdlog.h>

#include "admin/api.h"
#include "admin/http_server.h"
#include "admin/metrics_page.h"
#include "cluster/replication.h"
#include "common/text.h"
#include "config.h"
#include "core/broker.h"
#include "logging.h"
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
  size_t start = 0;
  while (start < config.adminHosts.size()) {
    size_t comma = config.adminHosts.find(',', start);
    if (comma == std::string::npos) comma = config.adminHosts.size();
    add(config.adminHosts.substr(start, comma - start));
    start = comma + 1;
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
  bool replicated = !config.replicationListen.empty() || !config.follow.empty();
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
  auto env = sluice::store::Env::open(envOptions);
  if (!env.ok()) {
    log->error("cannot open store dir={} err={}", config.data, env.status().toString());
    return 1;
  }
  log->info("store opened dir={} max_storage={} used={}", config.data, envOptions.maxStorageBytes,
            env.value()->usedBytes());

  sluice::store::Writer writer(*env.value());
  sluice::store::LmdbStore lmdbStore(*env.value(), writer);
  auto io = kj::setupAsyncIo();
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
  sluice::core::BrokerOptions brokerOptions;
  brokerOptions.autoCreateTopics = config.autoCreateTopics;
  brokerOptions.authentication = config.auth;
  brokerOptions.version = SLUICE_VERSION;
  int exitCode = 0;
  {
    sluice::core::Broker broker(*store, io.provider->getTimer(), metrics, brokerOptions);
    broker.start();
    if (config.auth) {
      Status registered;
      if (!firstAdminToken->empty())
        registered = broker.auth().ensureAdminToken(*firstAdminToken).wait(io.waitScope);
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
      std::printf("ready rpc=%u tls=%u admin=%u", port, tlsPort,
                  static_cast<unsigned>(adminPort.value()));
    } else {
      std::printf("ready rpc=%u admin=%u", port, static_cast<unsigned>(adminPort.value()));
    }
    if (logServer) {
      log->info("replicating replication={} replication_port={} cluster={} min_insync={}",
                config.replicationListen, replicationPort, config.clusterId, config.minInsync);
      std::printf(" replication=%u", replicationPort);
    }
    std::printf("\n");
    std::fflush(stdout);

    auto& events = io.unixEventPort;
    events.onSignal(SIGTERM).exclusiveJoin(events.onSignal(SIGINT)).wait(io.waitScope);
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
