// auth_check: the cost of the permission check every call makes (core::Authority::check), for a
// principal with 1,000 rules, in-process.
//
//   auth_check [--rules N] [--checks N]
//
// The rules (a mix a deployment would have): `team<i>.orders.>` allowing publish and consume,
// `team<i>.*.audit` denying consume, `svc<i>.events` allowing publish, `tenant<i>.*` allowing
// manage. Topics drawn from hits and misses of them. Cases: a token (the principal's rules
// alone) over 100,000 distinct topics, and over a hot set of 100 (the rule trie's answer cache
// holds them); a grant minted from the token (its scope checked too) over 100,000 topics. Each
// check is timed on its own with steady_clock (its own ~20-30 ns included); prints p50 / p99 /
// p99.9 / max and the mean of a run timed as a whole, in ns.

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <kj/async-io.h>
#include <spdlog/spdlog.h>

#include "common/clock.h"
#include "core/auth.h"
#include "core/broker.h"
#include "store/store.h"

namespace {

using namespace sluice;
using Clock = std::chrono::steady_clock;

struct Figures {
  double p50, p99, p999, max, mean;
};

Figures measure(core::Authority& auth, const core::Identity& who,
                const std::vector<std::string>& topics, size_t checks, std::mt19937& rng) {
  std::vector<double> ns;
  ns.reserve(checks);
  size_t allowed = 0;
  std::string topic;
  for (size_t i = 0; i < checks; ++i) {
    topic.assign(topics[rng() % topics.size()]);
    uint8_t action = (i & 1) != 0 ? kActPublish : kActConsume;
    auto start = Clock::now();
    allowed += auth.check(who, action, topic, 0).ok();
    auto end = Clock::now();
    ns.push_back(std::chrono::duration<double, std::nano>(end - start).count());
  }
  // The mean without a clock read per check.
  std::vector<const std::string*> order;
  order.reserve(checks);
  for (size_t i = 0; i < checks; ++i)
    order.push_back(&topics[rng() % topics.size()]);
  auto start = Clock::now();
  for (size_t i = 0; i < checks; ++i)
    allowed += auth.check(who, (i & 1) != 0 ? kActPublish : kActConsume, *order[i], 0).ok();
  double mean =
      std::chrono::duration<double, std::nano>(Clock::now() - start).count() / double(checks);
  if (allowed == 0) std::printf("(nothing allowed)\n");
  std::sort(ns.begin(), ns.end());
  auto at = [&](double q) { return ns[std::min(ns.size() - 1, size_t(q * double(ns.size())))]; };
  return {at(0.5), at(0.99), at(0.999), ns.back(), mean};
}

void print(const char* label, const Figures& f) {
  std::printf("%-44s p50 %6.0f  p99 %6.0f  p99.9 %6.0f  max %8.0f  mean %6.0f ns\n", label, f.p50,
              f.p99, f.p999, f.max, f.mean);
}

}  // namespace

int main(int argc, char** argv) {
  size_t rules = 1000, checks = 1000000;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--rules") == 0) rules = std::strtoul(argv[i + 1], nullptr, 10);
    if (std::strcmp(argv[i], "--checks") == 0) checks = std::strtoul(argv[i + 1], nullptr, 10);
  }
  spdlog::set_level(spdlog::level::warn);
  std::string dir = (std::filesystem::temp_directory_path() / "sluice-auth-bench-XXXXXX").string();
  if (mkdtemp(dir.data()) == nullptr) return 1;
  auto io = kj::setupAsyncIo();
  store::EnvOptions envOptions;
  envOptions.dir = dir;
  envOptions.maxStorageBytes = 64ull << 20;
  auto env = store::Env::open(envOptions);
  if (!env.ok()) return 1;
  store::Writer writer(*env.value());
  store::LmdbStore store(*env.value(), writer);
  core::Metrics metrics;
  core::BrokerOptions options;
  options.authentication = true;
  int status = 0;
  {
    core::Broker broker(store, io.provider->getTimer(), metrics, options);
    broker.start();
    core::Authority& auth = broker.auth();

    PrincipalRecord principal{"bench", {}, 0};
    for (size_t i = 0; principal.rules.size() < rules; ++i) {
      std::string n = std::to_string(i);
      switch (i % 4) {
        case 0:
          principal.rules.push_back({true, kActPublish | kActConsume, "team" + n + ".orders.>"});
          break;
        case 1:
          principal.rules.push_back({false, kActConsume, "team" + n + ".*.audit"});
          break;
        case 2:
          principal.rules.push_back({true, kActPublish, "svc" + n + ".events"});
          break;
        default:
          principal.rules.push_back({true, kActManage, "tenant" + n + ".*"});
          break;
      }
    }
    const std::string tokenSecret = "bench-token-secret-0123456789abcdef";
    const std::string grantSecret = "bench-grant-secret-0123456789abcdef";
    CredentialRecord token;
    token.id = 1;
    token.principal = "bench";
    token.secretHash = core::hashSecret(tokenSecret);
    CredentialRecord grant;
    grant.id = 2;
    grant.principal = "bench";
    grant.issuer = 1;
    grant.scoped = true;
    grant.scope = {{true, kActPublish | kActConsume, "*.orders.>"},
                   {true, kActPublish, "*.events"}};
    grant.secretHash = core::hashSecret(grantSecret);
    auth.load({principal}, {token, grant}, 3);
    auto tokenWho = auth.authenticate(tokenSecret, wallClockMs());
    auto grantWho = auth.authenticate(grantSecret, wallClockMs());
    if (!tokenWho.ok() || !grantWho.ok()) {
      std::fprintf(stderr, "cannot authenticate\n");
      status = 1;
    } else {
      std::mt19937 rng(42);
      std::vector<std::string> topics;
      for (size_t i = 0; i < 100000; ++i) {
        size_t r = rng() % (rules * 2);  // Half of them name no rule's team: misses.
        switch (i % 4) {
          case 0:
            topics.push_back("team" + std::to_string(r) + ".orders.o" + std::to_string(i));
            break;
          case 1:
            topics.push_back("team" + std::to_string(r) + ".x.audit");
            break;
          case 2:
            topics.push_back("svc" + std::to_string(r) + ".events");
            break;
          default:
            topics.push_back("other" + std::to_string(i) + ".t");
            break;
        }
      }
      // Allowed (publish) and refused (anything else) apart: a refusal also builds its message.
      std::vector<std::string> allowed, refused;
      for (const std::string& topic : topics) {
        bool ok = auth.check(tokenWho.value(), kActPublish, topic, 0).ok() &&
                  auth.check(tokenWho.value(), kActConsume, topic, 0).ok();
        (ok ? allowed : refused).push_back(topic);
      }
      std::vector<std::string> hot(allowed.begin(), allowed.begin() + 100);
      std::printf("auth_check: %zu rules, %zu checks per case (%zu allowed, %zu refused topics)\n",
                  principal.rules.size(), checks, allowed.size(), refused.size());
      print("token, allowed, distinct topics",
            measure(auth, tokenWho.value(), allowed, checks, rng));
      print("token, allowed, hot set of 100", measure(auth, tokenWho.value(), hot, checks, rng));
      print("token, refused, distinct topics",
            measure(auth, tokenWho.value(), refused, checks, rng));
      print("grant (token + scope), allowed, distinct",
            measure(auth, grantWho.value(), allowed, checks, rng));
    }
    broker.shutdown();
  }
  writer.stop();
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return status;
}
