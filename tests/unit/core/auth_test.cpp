// Principals, rules, tokens and grants (core/auth.h) over a real store.

#include <catch2/catch.hpp>

#include "core/auth.h"
#include "harness.h"

namespace sluice::core {
namespace {

using Catch::Matchers::Contains;
using testing::Harness;

const std::string kAdminSecret = "test-admin-token-0123456789abcdef0123456789";

BrokerOptions withAuth() {
  BrokerOptions options;
  options.authentication = true;
  return options;
}

AuthRule allow(uint8_t actions, std::string pattern) {
  return AuthRule{true, actions, std::move(pattern)};
}
AuthRule deny(uint8_t actions, std::string pattern) {
  return AuthRule{false, actions, std::move(pattern)};
}

// A broker with authentication on and the admin token registered; the admin's identity.
struct Authed {
  Harness harness{withAuth()};
  Identity admin;
  Authed() {
    REQUIRE(harness.wait(auth().ensureAdminToken(kAdminSecret)).ok());
    auto who = auth().authenticate(kAdminSecret, wallClockMs());
    REQUIRE(who.ok());
    admin = who.value();
  }
  Authority& auth() { return harness.broker().auth(); }
  void principal(const std::string& name, std::vector<AuthRule> rules) {
    auto made = harness.wait(auth().putPrincipal(admin, name, std::move(rules), true));
    REQUIRE(made.ok());
  }
  Minted token(const std::string& principal, uint64_t ttlMs = 0) {
    auto minted = harness.wait(auth().createToken(admin, principal, "test", ttlMs));
    REQUIRE(minted.ok());
    return minted.value();
  }
  Identity login(const std::string& secret) {
    auto who = auth().authenticate(secret, wallClockMs());
    REQUIRE(who.ok());
    return who.value();
  }
  Code code(const Identity& who, uint8_t action, const std::string& topic,
            int64_t nowMs = wallClockMs()) {
    return auth().check(who, action, topic, nowMs).code();
  }
};

TEST_CASE("patternCovers: a pattern covers exactly the patterns whose subjects it matches",
          "[auth]") {
  struct Case {
    const char* outer;
    const char* inner;
    bool covers;
  };
  for (const Case& c : std::vector<Case>{{">", "a", true},
                                         {">", "a.>", true},
                                         {">", "*", true},
                                         {"a.>", "a.b", true},
                                         {"a.>", "a.*.c", true},
                                         {"a.>", "a", false},
                                         {"a.>", "a.>", true},
                                         {"a.*", "a.b", true},
                                         {"a.*", "a.*", true},
                                         {"a.*", "a.>", false},
                                         {"a.*", "a.b.c", false},
                                         {"a.b", "a.*", false},
                                         {"a.b", "a.b", true},
                                         {"*.b", "a.b", true},
                                         {"*.b", "a.c", false},
                                         {"a.*.c", "a.b.c", true},
                                         {"a.b.c", "a.b", false},
                                         {"*", ">", false},
                                         {"orders.>", "orders", false}}) {
    INFO(c.outer << " over " << c.inner);
    CHECK(patternCovers(c.outer, c.inner) == c.covers);
  }
}

TEST_CASE("rules are validated: an action, a valid pattern, admin only over >", "[auth]") {
  CHECK_FALSE(validateRules({allow(kActPublish, "orders.>")}, 10));
  CHECK_THAT(*validateRules({allow(0, "orders")}, 10), Contains("names no action"));
  CHECK_THAT(*validateRules({allow(kActPublish, "orders.>.x")}, 10), Contains("rule 1"));
  CHECK_THAT(*validateRules({allow(kActAdmin, "orders")}, 10), Contains("broker-wide"));
  CHECK_THAT(*validateRules(std::vector<AuthRule>(3, allow(kActPublish, "a")), 2),
             Contains("at most 2 rules"));
  CHECK(validatePrincipalName("svc.billing@eu-1") == std::nullopt);
  CHECK(validatePrincipalName("has space").has_value());
  CHECK(validatePrincipalName("").has_value());
}

TEST_CASE("checks: allow by pattern, deny wins, admin, and the typed errors", "[auth]") {
  Authed a;
  a.principal("billing", {allow(kActPublish | kActConsume, "orders.>"),
                          deny(kActConsume, "orders.secret.>"), allow(kActManage, "billing.*")});
  Identity billing = a.login(a.token("billing").secret);

  CHECK(a.code(billing, kActPublish, "orders.eu") == Code::kOk);
  CHECK(a.code(billing, kActConsume, "orders.eu.paid") == Code::kOk);
  CHECK(a.code(billing, kActConsume, "orders.secret.keys") == Code::kPermissionDenied);
  CHECK(a.code(billing, kActPublish, "orders.secret.keys") == Code::kOk);    // Deny names consume.
  CHECK(a.code(billing, kActPublish, "orders") == Code::kPermissionDenied);  // `>`: 1 or more.
  CHECK(a.code(billing, kActManage, "billing.runs") == Code::kOk);
  CHECK(a.code(billing, kActManage, "billing.runs.x") == Code::kPermissionDenied);
  CHECK(a.code(billing, kActConsume, "payments") == Code::kPermissionDenied);
  Status refused = a.auth().check(billing, kActConsume, "payments", wallClockMs());
  CHECK_THAT(refused.message(),
             Contains("\"billing\"") && Contains("consume from") && Contains("\"payments\""));
  CHECK(a.auth().checkAdmin(billing, wallClockMs()).code() == Code::kPermissionDenied);
  CHECK(a.auth().checkAdmin(a.admin, wallClockMs()).ok());

  Identity nobody;  // Not authenticated.
  CHECK(a.code(nobody, kActPublish, "orders.eu") == Code::kUnauthenticated);
  auto wrong = a.auth().authenticate("sluice_wrong", wallClockMs());
  REQUIRE_FALSE(wrong.ok());
  CHECK(wrong.status().code() == Code::kUnauthenticated);
  CHECK_THAT(wrong.status().message(), !Contains("sluice_wrong"));
}

TEST_CASE("a grant is at most its issuer's rights, expires, and dies with its issuer", "[auth]") {
  Authed a;
  a.principal("svc", {allow(kActPublish | kActConsume, "orders.>")});
  Minted svcToken = a.token("svc");
  Identity svc = a.login(svcToken.secret);

  SECTION("narrower: one topic, publish only") {
    auto grant = a.harness.wait(
        a.auth().mintGrant(svc, {allow(kActPublish, "orders.eu")}, 60000, "eu publisher"));
    REQUIRE(grant.ok());
    CHECK(grant.value().credential.issuer == svcToken.credential.id);
    Identity bearer = a.login(grant.value().secret);
    CHECK(a.code(bearer, kActPublish, "orders.eu") == Code::kOk);
    CHECK(a.code(bearer, kActConsume, "orders.eu") == Code::kPermissionDenied);
    CHECK(a.code(bearer, kActPublish, "orders.us") == Code::kPermissionDenied);
    // It expires: checked at a later time, the same identity is no longer valid.
    CHECK(a.code(bearer, kActPublish, "orders.eu", wallClockMs() + 61000) ==
          Code::kUnauthenticated);
    // A grant of the grant is narrower still; revoking the token revokes both.
    auto sub =
        a.harness.wait(a.auth().mintGrant(bearer, {allow(kActPublish, "orders.eu")}, 10000, ""));
    REQUIRE(sub.ok());
    Identity subBearer = a.login(sub.value().secret);
    auto revoked = a.harness.wait(a.auth().revoke(svc, svcToken.credential.id));
    REQUIRE(revoked.ok());
    CHECK(revoked.value() == 3);
    CHECK(a.code(subBearer, kActPublish, "orders.eu") == Code::kUnauthenticated);
    CHECK(a.code(svc, kActPublish, "orders.eu") == Code::kUnauthenticated);
    CHECK_FALSE(a.auth().authenticate(grant.value().secret, wallClockMs()).ok());
  }
  SECTION("wider is refused, and so is a deny in a scope") {
    for (const AuthRule& rule : {allow(kActPublish, ">"), allow(kActManage, "orders.eu"),
                                 allow(kActPublish, "payments"), allow(kActAdmin, ">")}) {
      auto grant = a.harness.wait(a.auth().mintGrant(svc, {rule}, 60000, ""));
      REQUIRE_FALSE(grant.ok());
      CHECK(grant.status().code() == Code::kPermissionDenied);
      CHECK_THAT(grant.status().message(), Contains("wider than the rights"));
    }
    auto denyScope =
        a.harness.wait(a.auth().mintGrant(svc, {deny(kActPublish, "orders.eu")}, 60000, ""));
    REQUIRE_FALSE(denyScope.ok());
    CHECK(denyScope.status().code() == Code::kInvalidArgument);
    auto tooShort =
        a.harness.wait(a.auth().mintGrant(svc, {allow(kActPublish, "orders.eu")}, 10, ""));
    CHECK(tooShort.status().code() == Code::kInvalidArgument);
  }
  SECTION("another principal's grant cannot be revoked; the admin can revoke any") {
    a.principal("other", {allow(kActPublish, "other.>")});
    Identity other = a.login(a.token("other").secret);
    auto grant =
        a.harness.wait(a.auth().mintGrant(svc, {allow(kActPublish, "orders.eu")}, 60000, ""));
    REQUIRE(grant.ok());
    auto refused = a.harness.wait(a.auth().revoke(other, grant.value().credential.id));
    CHECK(refused.status().code() == Code::kPermissionDenied);
    auto revoked = a.harness.wait(a.auth().revoke(a.admin, grant.value().credential.id));
    REQUIRE(revoked.ok());
    CHECK(revoked.value() == 1);
  }
}

TEST_CASE("principals and credentials survive a restart; revocations too", "[auth]") {
  Authed a;
  a.principal("svc", {allow(kActPublish, "orders.>")});
  Minted kept = a.token("svc");
  Minted dropped = a.token("svc");
  Identity svc = a.login(kept.secret);
  auto grant =
      a.harness.wait(a.auth().mintGrant(svc, {allow(kActPublish, "orders.eu")}, 60000, "g"));
  REQUIRE(grant.ok());
  REQUIRE(a.harness.wait(a.auth().revoke(a.admin, dropped.credential.id)).ok());
  a.harness.restart();
  Authority& auth = a.harness.broker().auth();
  CHECK(auth.principals() == 2);
  CHECK(auth.authenticate(kAdminSecret, wallClockMs()).ok());
  CHECK(auth.authenticate(kept.secret, wallClockMs()).ok());
  CHECK_FALSE(auth.authenticate(dropped.secret, wallClockMs()).ok());
  auto bearer = auth.authenticate(grant.value().secret, wallClockMs());
  REQUIRE(bearer.ok());
  CHECK(auth.check(bearer.value(), kActPublish, "orders.eu", wallClockMs()).ok());
  CHECK(auth.check(bearer.value(), kActPublish, "orders.us", wallClockMs()).code() ==
        Code::kPermissionDenied);
  // New ids continue past every id ever given, the revoked one's included.
  auto again = a.harness.wait(auth.createToken(a.admin, "svc", "", 0));
  REQUIRE(again.ok());
  CHECK(again.value().credential.id > grant.value().credential.id);
}

TEST_CASE("a watch closes when a rule change, revocation or deletion takes the right away",
          "[auth]") {
  Authed a;
  a.principal("reader", {allow(kActConsume, "orders.>")});
  Minted token = a.token("reader");
  Identity reader = a.login(token.secret);
  std::vector<Status> closed;
  a.auth().watch(reader, kActConsume, "orders.eu",
                 [&](const Status& why) { closed.push_back(why); });
  a.auth().watch(reader, kActConsume, "orders.us",
                 [&](const Status& why) { closed.push_back(why); });

  // Narrowing the rules closes only the watch that lost its right.
  auto changed = a.harness.wait(
      a.auth().putPrincipal(a.admin, "reader", {allow(kActConsume, "orders.us")}, false));
  REQUIRE(changed.ok());
  REQUIRE(closed.size() == 1);
  CHECK(closed[0].code() == Code::kPermissionDenied);
  CHECK_THAT(closed[0].message(), Contains("orders.eu"));

  REQUIRE(a.harness.wait(a.auth().revoke(a.admin, token.credential.id)).ok());
  REQUIRE(closed.size() == 2);
  CHECK(closed[1].code() == Code::kUnauthenticated);
}

TEST_CASE("failed authentications slow down their peer only", "[auth]") {
  Authed a;
  int64_t now = wallClockMs();
  for (int i = 0; i < 4; ++i)
    a.auth().recordOutcome("10.0.0.1", false, now);
  CHECK(a.auth().penaltyMs("10.0.0.1", now) == 0);
  a.auth().recordOutcome("10.0.0.1", false, now);
  CHECK(a.auth().penaltyMs("10.0.0.1", now) == 100);
  for (int i = 0; i < 20; ++i)
    a.auth().recordOutcome("10.0.0.1", false, now);
  CHECK(a.auth().penaltyMs("10.0.0.1", now) == 5000);
  CHECK(a.auth().penaltyMs("10.0.0.2", now) == 0);
  CHECK(a.auth().penaltyMs("10.0.0.1", now + 61000) == 0);  // Forgotten after a quiet minute.
  a.auth().recordOutcome("10.0.0.1", true, now);
  CHECK(a.auth().penaltyMs("10.0.0.1", now) == 0);
}

TEST_CASE("with authentication off every identity is anonymous with every right", "[auth]") {
  Harness harness;
  Authority& auth = harness.broker().auth();
  Identity who = auth.initial(std::nullopt);
  CHECK(who.anonymous);
  CHECK(auth.check(who, kActManage, "anything", wallClockMs()).ok());
  CHECK(auth.checkAdmin(who, wallClockMs()).ok());
}

}  // namespace
}  // namespace sluice::core
