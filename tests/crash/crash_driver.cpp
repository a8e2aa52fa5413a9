// crash_driver: kill -9 loops against a real sluiced under load, then proof that every promise
// held. See tests/crash/README.md.
//
//   crash_driver [--cycles N] [--soak] [--seed S] [--data DIR] [--min-run-ms A] [--max-run-ms B]
//
// Exit code 0 when every check passed, 1 on any violation, 2 on bad usage.

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <sluice/sluice.h>

#include "crash/ledger.h"
#include "crash/ordered.h"
#include "crash/routed.h"
#include "crash/workload.h"
#include "support/run_process.h"
#include "support/sluiced_process.h"

namespace sluice::crash {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr uint32_t kProducers = 4;
const std::vector<std::string> kGroups = {"workers", "audit"};
constexpr uint32_t kConsumersPerGroup = 2;

std::atomic<bool> stopRequested{false};

struct Args {
  uint32_t cycles = 20;
  bool soak = false;
  uint64_t seed = 0;
  std::string data;
  uint32_t minRunMs = 150;
  uint32_t maxRunMs = 1000;
};

[[noreturn]] void usage(const std::string& problem) {
  std::fprintf(stderr,
               "crash_driver: %s\n"
               "usage: crash_driver [--cycles N] [--soak] [--seed S] [--data DIR]\n"
               "                    [--min-run-ms A] [--max-run-ms B]\n"
               "  --cycles N   broker runs ended by kill -9 (default 20; with --soak: until "
               "Ctrl-C)\n"
               "  --soak       longer runs (1-8 s each), until Ctrl-C or --cycles\n"
               "  --seed S     random seed (default: from the clock; printed)\n"
               "  --data DIR   store directory to use and keep (default: a temp dir, removed "
               "when the run passes)\n",
               problem.c_str());
  std::exit(2);
}

Args parseArgs(int argc, char** argv) {
  Args args;
  bool cyclesGiven = false;
  bool seedGiven = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(arg + " needs a value");
      return argv[++i];
    };
    auto number = [&]() -> uint64_t {
      std::string text = value();
      try {
        size_t used = 0;
        uint64_t n = std::stoull(text, &used);
        if (used != text.size()) throw std::invalid_argument(text);
        return n;
      } catch (const std::exception&) {
        usage(arg + " needs a number, got \"" + text + "\"");
      }
    };
    if (arg == "--cycles") {
      args.cycles = static_cast<uint32_t>(number());
      cyclesGiven = true;
    } else if (arg == "--soak") {
      args.soak = true;
    } else if (arg == "--seed") {
      args.seed = number();
      seedGiven = true;
    } else if (arg == "--data") {
      args.data = value();
    } else if (arg == "--min-run-ms") {
      args.minRunMs = static_cast<uint32_t>(number());
    } else if (arg == "--max-run-ms") {
      args.maxRunMs = static_cast<uint32_t>(number());
    } else if (arg == "--help" || arg == "-h") {
      usage("kill -9 loops against sluiced under load");
    } else {
      usage("unknown argument " + arg);
    }
  }
  if (args.soak) {
    if (!cyclesGiven) args.cycles = UINT32_MAX;
    args.minRunMs = std::max<uint32_t>(args.minRunMs, 1000);
    args.maxRunMs = std::max<uint32_t>(args.maxRunMs, 8000);
  }
  if (args.cycles == 0) usage("--cycles must be at least 1");
  if (args.maxRunMs < args.minRunMs) usage("--max-run-ms must be at least --min-run-ms");
  if (!seedGiven) {
    args.seed = static_cast<uint64_t>(Clock::now().time_since_epoch().count()) ^
                (static_cast<uint64_t>(getpid()) << 32);
  }
  return args;
}

void onSignal(int) {
  stopRequested.store(true);
}

std::vector<std::string> brokerArgs() {
  return {"--max-storage", "4GiB", "--log-level", "warn"};
}

// Runs `sluiced --check` on the (stopped or killed) store; prints its output when it fails.
bool checkStore(const std::string& dir) {
  auto result = test::runProcess({test::sluicedPath(), "--check", "--data", dir}, "", {}, 120s);
  if (result.exitCode == 0) return true;
  std::printf("  VIOLATION sluiced --check failed (exit %d): %s%s\n", result.exitCode,
              result.stdoutText.c_str(), result.stderrText.c_str());
  return false;
}

// Creates the topic (a dedup window far longer than any run), both groups and the
// transformer's group, from offset 1, and the transformer's output topic.
void setUpTopic(const std::string& address) {
  auto client = Client::connect(address).value();
  TopicSettings settings;
  settings.dedupWindow = std::chrono::hours(24);
  client.admin().createTopic(kTopic, settings).value();
  for (const std::string& group : kGroups)
    client.admin().createGroup(kTopic, group, StartPosition::earliest()).value();
  client.admin().createGroup(kTopic, kTxGroup, StartPosition::earliest()).value();
  client.admin().createGroup(kTopic, kOrderedGroup, StartPosition::earliest(), true).value();
  client.admin().createTopic(kOutTopic).value();
  Admin admin = client.admin();
  setUpRouted(admin);
}

class Workers {
 public:
  Workers(std::vector<ProducerLedger>& producers, std::vector<ConsumerLog>& consumers,
          TransformerLog& transformer, OrderLog& ordered, RoutedLog& routed, CycleControl& control,
          std::mt19937_64& rng) {
    for (auto& ledger : producers) {
      threads_.emplace_back(
          [&ledger, &control, seed = rng()] { runProducer(ledger, control, seed); });
    }
    for (auto& log : consumers) {
      threads_.emplace_back([&log, &control, seed = rng()] { runConsumer(log, control, seed); });
    }
    threads_.emplace_back(
        [&transformer, &control, seed = rng()] { runTransformer(transformer, control, seed); });
    threads_.emplace_back(
        [&routed, &control, seed = rng()] { runRoutedProducer(routed, control, seed); });
    for (uint32_t c = 0; c < kOrderedConsumers; ++c) {
      threads_.emplace_back(
          [&ordered, &control, seed = rng()] { runOrderedConsumer(ordered, control, seed); });
    }
  }
  ~Workers() { join(); }
  void join() {
    for (auto& thread : threads_) {
      if (thread.joinable()) thread.join();
    }
  }

 private:
  std::vector<std::thread> threads_;
};

bool waitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return condition();
}

uint64_t ackedSoFar(const std::vector<ProducerLedger>& producers) {
  uint64_t n = 0;
  for (const auto& ledger : producers) {
    for (const auto& record : ledger.records)
      n += record.state == PublishState::kAcked ? 1 : 0;
  }
  return n;
}

// Inputs acknowledged by the transformer's answered transactions.
uint64_t transformedSoFar(const TransformerLog& transformer) {
  uint64_t n = 0;
  for (const TxAttempt& attempt : transformer.attempts) {
    if (attempt.kind == TxKind::kApply && attempt.outcome == TxOutcome::kApplied)
      n += attempt.inputs.size();
  }
  return n;
}

// Reads a whole topic back with peek.
template <typename Each>
void readBack(Admin& admin, const char* topic, uint64_t lastOffset, Each each) {
  for (uint64_t from = 1; from <= lastOffset;) {
    auto page = admin.peek(topic, from, 1000).value();
    if (page.empty()) break;
    for (const Message& message : page)
      each(message);
    from = page.back().offset() + 1;
  }
}

// The final run: retry what is in doubt, drain all three groups, read both topics back.
bool finalRun(const std::string& dir, uint32_t epoch, std::vector<ProducerLedger>& producers,
              std::vector<ConsumerLog>& consumers, TransformerLog& transformer, OrderLog& ordered,
              RoutedLog& routed, std::mt19937_64& rng, std::vector<StoredMessage>* stored,
              uint64_t* lastOffset, std::vector<StoredOutput>* outputs, uint64_t* outputsLastOffset,
              std::vector<RoutedCopy>* copies) {
  auto broker = test::SluicedProcess::start(dir, brokerArgs());
  CycleControl control;
  control.address = broker->address();
  control.epoch = epoch;
  control.resolveOnly = true;
  Workers workers(producers, consumers, transformer, ordered, routed, control, rng);
  bool ok = true;
  // The numbered producers and the routed one.
  if (!waitFor([&] { return control.producersDone.load() == kProducers + 1; }, 120s)) {
    std::printf("  VIOLATION final run: producers did not finish their retries within 120 s\n");
    ok = false;
  }
  auto client = Client::connect(broker->address()).value();
  Admin admin = client.admin();
  bool drained = waitFor(
      [&] {
        std::vector<std::string> groups = kGroups;
        groups.push_back(kTxGroup);
        groups.push_back(kOrderedGroup);
        for (const std::string& group : groups) {
          auto info = admin.describeGroup(kTopic, group);
          if (!info.ok() || info.value().pending != 0 || info.value().lagMessages != 0) {
            return false;
          }
        }
        return true;
      },
      120s);
  control.stop = true;
  workers.join();
  if (!drained) {
    std::printf("  VIOLATION final run: the groups did not drain within 120 s\n");
    ok = false;
  }
  auto topic = admin.describeTopic(kTopic).value();
  *lastOffset = topic.lastOffset;
  readBack(admin, kTopic, topic.lastOffset, [&](const Message& message) {
    stored->push_back(StoredMessage{message.offset(), message.timestampMs(),
                                    keyOfPayload(message.payload()), message.id()});
  });
  if (topic.messages != stored->size()) {
    std::printf("  VIOLATION topic describes %llu messages, peek returned %zu\n",
                static_cast<unsigned long long>(topic.messages), stored->size());
    ok = false;
  }
  auto out = admin.describeTopic(kOutTopic).value();
  *outputsLastOffset = out.lastOffset;
  readBack(admin, kOutTopic, out.lastOffset, [&](const Message& message) {
    outputs->push_back(StoredOutput{message.offset(), message.payload()});
  });
  if (out.messages != outputs->size()) {
    std::printf("  VIOLATION %s describes %llu messages, peek returned %zu\n", kOutTopic,
                static_cast<unsigned long long>(out.messages), outputs->size());
    ok = false;
  }
  for (const char* name : {kRoutedAll, kRoutedEu}) {
    auto info = admin.describeTopic(name).value();
    size_t before = copies->size();
    readBack(admin, name, info.lastOffset, [&](const Message& message) {
      copies->push_back(RoutedCopy{name, message.offset(), message.subject(), message.payload()});
    });
    if (info.messages != copies->size() - before) {
      std::printf("  VIOLATION %s describes %llu messages, peek returned %zu\n", name,
                  static_cast<unsigned long long>(info.messages), copies->size() - before);
      ok = false;
    }
  }
  client.close();
  int exitCode = broker->stop();
  if (exitCode != 0) {
    std::printf("  VIOLATION sluiced exited with %d on SIGTERM\n%s\n", exitCode,
                broker->stderrText().c_str());
    ok = false;
  }
  return ok;
}

int run(const Args& args) {
  std::printf("crash_driver: seed %llu, %s%u cycles, runs of %u-%u ms\n",
              static_cast<unsigned long long>(args.seed), args.soak ? "soak, up to " : "",
              args.cycles, args.minRunMs, args.maxRunMs);
  std::string dir = args.data;
  bool ownDir = dir.empty();
  if (ownDir) {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern =
        std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/sluice-crash-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) {
      std::perror("mkdtemp");
      return 1;
    }
    dir = pattern;
  }
  std::printf("crash_driver: store %s\n", dir.c_str());
  std::fflush(stdout);

  auto started = Clock::now();
  std::mt19937_64 rng(args.seed);
  std::vector<ProducerLedger> producers(kProducers);
  for (uint32_t p = 0; p < kProducers; ++p)
    producers[p].producer = p;
  std::vector<ConsumerLog> consumers;
  for (const std::string& group : kGroups) {
    for (uint32_t c = 0; c < kConsumersPerGroup; ++c)
      consumers.push_back(ConsumerLog{group, {}, {}});
  }
  TransformerLog transformer;
  OrderLog ordered;
  RoutedLog routed;
  RunFigures figures;
  uint32_t epoch = 0;
  for (uint32_t cycle = 1; cycle <= args.cycles && !stopRequested.load(); ++cycle) {
    epoch = cycle;
    auto broker = test::SluicedProcess::start(dir, brokerArgs());
    if (cycle == 1) setUpTopic(broker->address());
    CycleControl control;
    control.address = broker->address();
    control.epoch = epoch;
    control.soak = args.soak;
    Workers workers(producers, consumers, transformer, ordered, routed, control, rng);
    uint32_t runMs =
        args.minRunMs + static_cast<uint32_t>(rng() % (args.maxRunMs - args.minRunMs + 1));
    std::this_thread::sleep_for(std::chrono::milliseconds(runMs));
    // One cycle in three ends in a burst: kill while large async batches are being committed.
    bool heavy = rng() % 3 == 0;
    if (heavy) {
      control.burst = true;
      waitFor([&] { return control.publishesInFlight.load() > 1000; }, 1000ms);
      std::this_thread::sleep_for(std::chrono::microseconds(rng() % 20000));
    }
    int64_t inFlight = control.publishesInFlight.load();
    broker->kill(SIGKILL);
    control.stop = true;
    workers.join();
    figures.cycles = cycle;
    if (inFlight > 0) ++figures.killsWithPublishesInFlight;
    ++figures.checksRun;
    bool checked = checkStore(dir);
    if (checked) ++figures.checksPassed;
    std::printf(
        "cycle %u: ran %u ms%s, killed with %lld publishes in flight, acked so far %llu, "
        "transformed %llu, check %s\n",
        cycle, runMs, heavy ? " + burst" : "", static_cast<long long>(inFlight),
        static_cast<unsigned long long>(ackedSoFar(producers)),
        static_cast<unsigned long long>(transformedSoFar(transformer)),
        checked ? "passed" : "FAILED");
    std::fflush(stdout);
  }

  std::vector<StoredMessage> stored;
  std::vector<StoredOutput> outputs;
  uint64_t lastOffset = 0;
  uint64_t outputsLastOffset = 0;
  std::vector<RoutedCopy> copies;
  bool finalOk = finalRun(dir, epoch + 1, producers, consumers, transformer, ordered, routed, rng,
                          &stored, &lastOffset, &outputs, &outputsLastOffset, &copies);
  ++figures.checksRun;
  if (checkStore(dir)) ++figures.checksPassed;
  size_t violations = verifyAndReport(figures, producers, consumers, stored, lastOffset, kGroups,
                                      transformer, outputs, outputsLastOffset);
  Violations orderViolations;
  verifyOrder(orderViolations, ordered, stored);
  violations += orderViolations.total();
  Violations routedViolations;
  verifyRouted(routedViolations, routed, copies);
  violations += routedViolations.total();
  bool passed = finalOk && violations == 0 && figures.checksPassed == figures.checksRun;
  double seconds = std::chrono::duration<double>(Clock::now() - started).count();
  std::printf("  elapsed: %.1f s, seed %llu\n", seconds,
              static_cast<unsigned long long>(args.seed));
  std::printf("crash_driver: %s\n", passed ? "PASS" : "FAIL");
  if (ownDir && passed) {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  } else if (!passed) {
    std::printf("crash_driver: store kept for inspection: %s\n", dir.c_str());
  }
  return passed ? 0 : 1;
}

}  // namespace
}  // namespace sluice::crash

int main(int argc, char** argv) {
  auto args = sluice::crash::parseArgs(argc, argv);
  signal(SIGINT, sluice::crash::onSignal);
  signal(SIGTERM, sluice::crash::onSignal);
  signal(SIGPIPE, SIG_IGN);
  try {
    return sluice::crash::run(args);
  } catch (const std::exception& e) {
    std::printf("crash_driver: FAIL: %s\n", e.what());
    return 1;
  }
}
