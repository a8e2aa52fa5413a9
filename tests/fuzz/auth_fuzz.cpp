// libFuzzer target: the authentication path (broker/src/core/auth.h) over a real store.
//
// The input is lines. The first is a secret presented to authenticate(); then `aX PATTERN`
// and `dX PATTERN` are allow and deny rules of a principal, `gX PATTERN` rules of a grant's
// scope and `t TOPIC` topics to probe, X being a hex digit of action bits (1 publish, 2
// consume, 4 manage, 8 admin). Each input makes the principal, a token of it and (when the
// scope is valid and narrower) a grant from that token, probes every topic, then deletes the
// principal.
//
// Oracles beyond "no crash, no sanitizer report": a presented secret never authenticates and
// its refusal never quotes it; the principal is refused exactly when its rules are invalid;
// the rights the check answers equal those of a brute-force reading of the rules (deny wins)
// for the principal, and for the grant the intersection with its scope; a grant is refused
// exactly when its scope is invalid or wider than the principal's rules (patternCovers, itself
// checked against the matcher); and every 500 inputs the store passes Env::check().

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <kj/async-io.h>

#include "common/clock.h"
#include "core/auth.h"
#include "core/broker.h"
#include "fuzz_support.h"
#include "fuzz_world.h"

namespace {

using namespace sluice;
using fuzz::check;

const std::string kAdminSecret = "fuzz-admin-secret-that-no-input-is-expected-to-guess-42";
constexpr uint64_t kCheckEvery = 500;

core::BrokerOptions brokerOptions() {
  core::BrokerOptions options;
  options.authentication = true;
  return options;
}

class World {
 public:
  World() : io_(kj::setupAsyncIo()), base_(io_, brokerOptions(), "sluice-fuzz-auth") {
    check(wait(auth().ensureAdminToken(kAdminSecret)).ok());
    auto admin = auth().authenticate(kAdminSecret, wallClockMs());
    check(admin.ok());
    admin_ = admin.value();
  }

  core::Authority& auth() { return base_.broker().auth(); }
  const core::Identity& admin() const { return admin_; }
  template <typename T>
  T wait(kj::Promise<T>&& promise) {
    return base_.wait(kj::mv(promise));
  }
  void checkStore() { base_.checkStore(); }  // Every queued change committed, then checked.

 private:
  kj::AsyncIoContext io_;
  fuzz::BrokerWorld base_;
  core::Identity admin_;
};

struct Input {
  std::string secret;
  std::vector<AuthRule> rules, scope;
  std::vector<std::string> topics;
};

Input parse(std::string_view text) {
  Input in;
  size_t start = 0;
  bool first = true;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    std::string_view line = text.substr(start, end == std::string_view::npos ? end : end - start);
    start = end == std::string_view::npos ? text.size() + 1 : end + 1;
    if (first) {
      in.secret = std::string(line);
      first = false;
      continue;
    }
    if (line.size() < 2) continue;
    if (line[0] == 't') {
      if (in.topics.size() < 16) in.topics.emplace_back(line.substr(2));
      continue;
    }
    char digit = line[1];
    int actions = digit >= '0' && digit <= '9'   ? digit - '0'
                  : digit >= 'a' && digit <= 'f' ? digit - 'a' + 10
                                                 : 0x10;  // Out of range: invalid.
    AuthRule rule{line[0] != 'd', static_cast<uint8_t>(actions),
                  std::string(line.substr(line.size() > 2 ? 3 : 2))};
    if (line[0] == 'g') {
      if (in.scope.size() < 8) in.scope.push_back(rule);
    } else if (line[0] == 'a' || line[0] == 'd') {
      if (in.rules.size() < 16) in.rules.push_back(rule);
    }
  }
  return in;
}

// The rules read by hand: the actions allowed on `topic`, denies applied.
uint8_t bruteForce(const std::vector<AuthRule>& rules, std::string_view topic) {
  uint8_t allow = 0, deny = 0;
  for (const AuthRule& rule : rules) {
    if (core::subjectMatches(rule.pattern, topic)) (rule.allow ? allow : deny) |= rule.actions;
  }
  return static_cast<uint8_t>(allow & ~deny);
}

bool scopeWithin(const std::vector<AuthRule>& scope, const std::vector<AuthRule>& rules) {
  for (const AuthRule& s : scope) {
    uint8_t covered = 0;
    bool admin = false, adminDenied = false;
    for (const AuthRule& r : rules) {
      if (r.allow && core::patternCovers(r.pattern, s.pattern)) covered |= r.actions;
      if ((r.actions & kActAdmin) != 0) (r.allow ? admin : adminDenied) = true;
    }
    if ((covered & s.actions) != s.actions) return false;
    if ((s.actions & kActAdmin) != 0 && !(admin && !adminDenied)) return false;
  }
  return true;
}

uint8_t checked(core::Authority& auth, const core::Identity& who, std::string_view topic) {
  uint8_t mask = 0;
  for (uint8_t action : {kActPublish, kActConsume, kActManage}) {
    Status status = auth.check(who, action, topic, wallClockMs());
    check(status.ok() || status.code() == Code::kPermissionDenied);
    if (status.ok()) mask |= action;
  }
  return mask;
}

World* world = nullptr;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::writeSeedsIfAsked([](const std::string& dir) {
    fuzz::writeSeeds(dir, {
                              {'s',
                               "sluice_0123\na3 orders.>\nd2 orders.secret\ng1 orders.eu\n"
                               "t orders.eu\nt orders.secret\nt payments"},
                              {'x', "\na7 >\nd4 a.*\ng3 a.b\ng1 *.c\nt a.b\nt x.c\nt a"},
                              {'a', "short\na8 >\nag a\ng8 >\nt a.b.c"},
                          });
  });
  fuzz::setLogLevelFromEnv();
  world = new World();  // Lives for the whole run.
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static uint64_t runs = 0;
  if (size > 4096) return 0;
  Input in = parse(std::string_view(reinterpret_cast<const char*>(data), size));
  core::Authority& auth = world->auth();

  // A presented secret: refused, typed, never echoed.
  auto presented = auth.authenticate(in.secret, wallClockMs());
  if (in.secret != kAdminSecret) {
    check(!presented.ok() && presented.status().code() == Code::kUnauthenticated);
    if (in.secret.size() >= 8)
      check(presented.status().message().find(in.secret) == std::string::npos);
  }

  // Pattern containment agrees with the matcher on every probed topic.
  for (const AuthRule& outer : in.rules) {
    for (const AuthRule& inner : in.scope) {
      if (core::validateSubjectPattern(outer.pattern) ||
          core::validateSubjectPattern(inner.pattern) ||
          !core::patternCovers(outer.pattern, inner.pattern)) {
        continue;
      }
      for (const std::string& topic : in.topics) {
        if (core::validateSubject(topic)) continue;
        if (core::subjectMatches(inner.pattern, topic))
          check(core::subjectMatches(outer.pattern, topic));
      }
    }
  }

  bool validRules = !core::validateRules(in.rules, core::kMaxRulesPerPrincipal);
  auto made = world->wait(auth.putPrincipal(world->admin(), "fz", in.rules, true));
  check(made.ok() == validRules);
  if (!made.ok()) {
    check(made.status().code() == Code::kInvalidArgument);
    return 0;
  }
  auto token = world->wait(auth.createToken(world->admin(), "fz", "", 0));
  check(token.ok());
  auto principal = auth.authenticate(token.value().secret, wallClockMs());
  check(principal.ok());
  for (const std::string& topic : in.topics) {
    if (core::validateSubject(topic)) continue;
    check(checked(auth, principal.value(), topic) ==
          (bruteForce(in.rules, topic) & (kActPublish | kActConsume | kActManage)));
  }

  bool validScope = !in.scope.empty() && !core::validateRules(in.scope, core::kMaxScopeRules);
  for (const AuthRule& rule : in.scope)
    validScope = validScope && rule.allow;
  auto grant = world->wait(auth.mintGrant(principal.value(), in.scope, 60000, ""));
  check(grant.ok() == (validScope && scopeWithin(in.scope, in.rules)));
  if (grant.ok()) {
    auto bearer = auth.authenticate(grant.value().secret, wallClockMs());
    check(bearer.ok());
    for (const std::string& topic : in.topics) {
      if (core::validateSubject(topic)) continue;
      uint8_t expected = bruteForce(in.rules, topic) & bruteForce(in.scope, topic) &
                         (kActPublish | kActConsume | kActManage);
      check(checked(auth, bearer.value(), topic) == expected);
    }
  } else if (validScope) {
    check(grant.status().code() == Code::kPermissionDenied);
  }

  auto removed = world->wait(auth.deletePrincipal(world->admin(), "fz"));
  check(removed.ok() && removed.value() == (grant.ok() ? 2u : 1u));
  check(!auth.authenticate(token.value().secret, wallClockMs()).ok());
  if (++runs % kCheckEvery == 0) world->checkStore();
  return 0;
}
