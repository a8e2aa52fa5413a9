// sluiced: flags, wiring, signals and the shutdown order. Decides nothing else.
#include <signal.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include <kj/async-io.h>
#include <kj/async-unix.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "admin/http_server.h"
#include "admin/metrics_page.h"
#include "core/broker.h"
#include "rpc/server.h"
#include "store/store.h"

namespace {

struct Flags {
  std::string data = "./data";
  std::string listen = "127.0.0.1:7400";
  std::string admin = "127.0.0.1:7401";
  uint64_t maxStorage = 0;
  std::string logLevel = "info";
  bool autoCreateTopics = false;
  std::string durability = "sync";
  bool check = false;
};

constexpr uint64_t kMinStorage = 16ull << 20;

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

void setUpLogging(const std::string& level) {
  auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  for (const char* name : {"main", "core", "store", "rpc", "admin"}) {
    auto logger = std::make_shared<spdlog::logger>(name, sink);
    spdlog::register_logger(logger);
  }
  spdlog::set_default_logger(spdlog::get("main"));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %n %v");
  spdlog::set_level(spdlog::level::from_str(level));
}

int runCheck(const Flags& flags) {
  sluice::store::EnvOptions options;
  options.dir = flags.data;
  std::error_code ec;
  auto size = std::filesystem::file_size(std::filesystem::path(flags.data) / "data.mdb", ec);
  if (ec) {
    std::fprintf(stderr, "check failed: no store in %s (%s)\n", flags.data.c_str(),
                 ec.message().c_str());
    return 1;
  }
  options.maxStorageBytes = std::max<uint64_t>(size, kMinStorage);
  auto env = sluice::store::Env::open(options);
  if (!env.ok()) {
    std::fprintf(stderr, "check failed: %s\n", env.status().toString().c_str());
    return 1;
  }
  sluice::Status status = env.value()->check();
  if (!status.ok()) {
    std::fprintf(stderr, "check failed: %s\n", status.message().c_str());
    return 1;
  }
  std::printf("check passed: %s\n", flags.data.c_str());
  return 0;
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
  snapshot.commitSeconds = writer.commitSeconds().snapshot();
  snapshot.batchJobs = writer.batchJobs().snapshot();
  snapshot.storageFailed = writer.failure().has_value();
  return snapshot;
}

// Thread: admin. Reads counters and the writer's sticky failure; anything more comes from the
// KJ thread through the executor.
sluice::admin::HttpResponse answerAdmin(const std::string& path, const kj::Executor& kjThread,
                                        sluice::core::Broker& broker,
                                        const sluice::core::Metrics& metrics,
                                        const sluice::store::Writer& writer,
                                        const std::atomic<bool>& ready) {
  sluice::admin::HttpResponse response;
  if (path == "/healthz") {
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
    response.body = "not found; try /metrics, /healthz or /readyz\n";
  }
  return response;
}

int serve(const Flags& flags) {
  auto log = spdlog::get("main");
  sluice::store::EnvOptions envOptions;
  envOptions.dir = flags.data;
  envOptions.maxStorageBytes =
      flags.maxStorage != 0 ? flags.maxStorage : defaultMaxStorage(flags.data);
  envOptions.syncCommits = flags.durability == "sync";
  if (!envOptions.syncCommits) {
    log->warn(
        "durability=async: publishes are acknowledged before they are on disk; a crash "
        "can lose the last ~100 ms of acknowledged messages");
  }
  auto env = sluice::store::Env::open(envOptions);
  if (!env.ok()) {
    log->error("cannot open store dir={} err={}", flags.data, env.status().toString());
    return 1;
  }
  log->info("store opened dir={} max_storage={} used={}", flags.data, envOptions.maxStorageBytes,
            env.value()->usedBytes());

  sluice::store::Writer writer(*env.value());
  auto io = kj::setupAsyncIo();
  sluice::core::Metrics metrics;
  sluice::core::BrokerOptions brokerOptions;
  brokerOptions.autoCreateTopics = flags.autoCreateTopics;
  brokerOptions.version = SLUICE_VERSION;
  int exitCode = 0;
  {
    sluice::core::Broker broker(*env.value(), writer, io.provider->getTimer(), metrics,
                                brokerOptions);
    broker.start();
    sluice::rpc::RpcServer server(broker, metrics, io.provider->getNetwork(), {});
    uint port = 0;
    try {
      port = server.listen(flags.listen).wait(io.waitScope);
    } catch (const kj::Exception& e) {
      log->error("cannot listen on {}: {}", flags.listen, e.getDescription().cStr());
      broker.shutdown();
      writer.stop();
      return 1;
    }
    std::atomic<bool> ready{false};
    const kj::Executor& kjThread = kj::getCurrentThreadExecutor();
    sluice::admin::HttpOptions adminOptions;
    adminOptions.listen = flags.admin;
    sluice::admin::HttpServer adminServer(adminOptions, [&](const std::string& path) {
      return answerAdmin(path, kjThread, broker, metrics, writer, ready);
    });
    auto adminPort = adminServer.start();
    if (!adminPort.ok()) {
      log->error("{}", adminPort.status().message());
      broker.shutdown();
      writer.stop();
      return 1;
    }
    ready = true;
    log->info("listening rpc={} rpc_port={} admin={} admin_port={} version={}", flags.listen, port,
              flags.admin, adminPort.value(), SLUICE_VERSION);
    std::printf("ready rpc=%u admin=%u\n", port, static_cast<unsigned>(adminPort.value()));
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
    broker.shutdown();
    // One more short turn so that answers and `closed` notices reach the sockets.
    timer.afterDelay(20 * kj::MILLISECONDS).wait(io.waitScope);
    server.disconnectAll();
    adminServer.stop();  // Before the KJ loop it reads through goes away.
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

  Flags flags;
  CLI::App app{"sluiced: the Sluice message broker"};
  app.set_version_flag("--version", SLUICE_VERSION);
  app.add_option("--data", flags.data, "Directory of the store (created if missing)")
      ->capture_default_str();
  app.add_option("--listen", flags.listen, "RPC address HOST:PORT; port 0 picks a free one")
      ->capture_default_str();
  app.add_option("--admin", flags.admin,
                 "Admin HTTP address HOST:PORT for /metrics, /healthz, /readyz; port 0 picks one")
      ->capture_default_str();
  app.add_option("--max-storage", flags.maxStorage,
                 "Storage limit, e.g. 512MiB or 20GiB (default: half of the free disk)")
      ->transform(CLI::AsSizeValue(false));
  app.add_option("--log-level", flags.logLevel, "trace, debug, info, warn, error or off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}))
      ->capture_default_str();
  app.add_flag("--auto-create-topics", flags.autoCreateTopics,
               "Create a topic with default settings on its first publish");
  app.add_option("--durability", flags.durability,
                 "sync: acknowledge after fsync (default); async: OPT-IN, acknowledge before "
                 "fsync, may lose the last acknowledged messages on a crash")
      ->check(CLI::IsMember({"sync", "async"}))
      ->capture_default_str();
  app.add_flag("--check", flags.check, "Verify the store's invariants and exit (0: healthy)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  if (flags.maxStorage != 0 && flags.maxStorage < kMinStorage) {
    std::fprintf(stderr, "--max-storage: must be at least 16MiB, got %llu bytes\n",
                 static_cast<unsigned long long>(flags.maxStorage));
    return 2;
  }
  setUpLogging(flags.logLevel);
  if (flags.check) return runCheck(flags);
  try {
    return serve(flags);
  } catch (const kj::Exception& e) {
    spdlog::get("main")->critical("fatal: {}", e.getDescription().cStr());
    return 1;
  } catch (const std::exception& e) {
    spdlog::get("main")->critical("fatal: {}", e.what());
    return 1;
  }
}
