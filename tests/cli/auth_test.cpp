// The pure helpers behind `sluice auth`: rule parsing, the token file's text, and the human
// and JSON forms of rules, principals, credentials and identities.

#include <catch2/catch.hpp>

#include "format.h"
#include "json.h"
#include "parse.h"
#include "views.h"

using namespace sluice::cli;
using Catch::Matchers::Contains;
using sluice::Action;
using sluice::Rule;

namespace {

Rule rule(bool allow, std::vector<Action> actions, std::string pattern) {
  Rule out;
  out.allow = allow;
  out.actions = std::move(actions);
  out.pattern = std::move(pattern);
  return out;
}

sluice::CredentialInfo grant() {
  sluice::CredentialInfo credential;
  credential.id = 13;
  credential.principal = "billing";
  credential.issuer = 12;
  credential.scoped = true;
  credential.scope = {rule(true, {Action::kConsume}, "orders.eu.>")};
  credential.expiresAtMs = 1714557600123;
  credential.createdMs = 1714554000000;
  credential.note = "eu report";
  return credential;
}

}  // namespace

TEST_CASE("action names round-trip through parseAction", "[cli][auth]") {
  for (Action action : {Action::kPublish, Action::kConsume, Action::kManage, Action::kAdmin}) {
    INFO(sluice::actionName(action));
    CHECK(sluice::parseAction(sluice::actionName(action)) == action);
  }
  CHECK(std::string(sluice::actionName(Action::kManage)) == "manage");
  CHECK_FALSE(sluice::parseAction("Publish").has_value());
  CHECK_FALSE(sluice::parseAction("all").has_value());
  CHECK_FALSE(sluice::parseAction("").has_value());
}

TEST_CASE("a rule is ACTIONS:PATTERN with a comma list of actions or all", "[cli][auth]") {
  auto parsed = parseRule("publish,consume:orders.>", true);
  REQUIRE(parsed.ok());
  CHECK(parsed.value->allow);
  CHECK(parsed.value->actions == std::vector<Action>{Action::kPublish, Action::kConsume});
  CHECK(parsed.value->pattern == "orders.>");

  auto deny = parseRule("consume:orders.secret", false);
  REQUIRE(deny.ok());
  CHECK_FALSE(deny.value->allow);
  CHECK(deny.value->actions == std::vector<Action>{Action::kConsume});

  SECTION("all names the four actions, and an action named twice counts once") {
    CHECK(parseRule("all:>", true).value->actions ==
          std::vector<Action>{Action::kPublish, Action::kConsume, Action::kManage, Action::kAdmin});
    CHECK(parseRule("consume,all,consume:>", true).value->actions ==
          std::vector<Action>{Action::kConsume, Action::kPublish, Action::kManage, Action::kAdmin});
  }
  SECTION("the pattern is everything after the first colon") {
    CHECK(parseRule("manage:a:b", true).value->pattern == "a:b");
  }
}

TEST_CASE("a malformed rule is rejected with a message naming it and the syntax", "[cli][auth]") {
  struct Case {
    const char* text;
    const char* why;
  };
  const Case cases[] = {
      {"publish", "no ':'"},
      {":orders", "no action before ':'"},
      {"publish:", "no pattern after ':'"},
      {"publsh:orders", "unknown action \"publsh\""},
      {"publish,,consume:orders", "action 2 is empty"},
      {"publish,:orders", "action 2 is empty"},
      {"PUBLISH:orders", "unknown action \"PUBLISH\""},
      {"", "no ':'"},
  };
  for (const auto& c : cases) {
    INFO(c.text);
    auto parsed = parseRule(c.text, true);
    CHECK_FALSE(parsed.ok());
    CHECK_THAT(parsed.error, Contains(std::string("invalid rule \"") + c.text + "\""));
    CHECK_THAT(parsed.error, Contains(c.why));
    CHECK_THAT(parsed.error, Contains("ACTIONS:PATTERN"));
  }
}

TEST_CASE("rulesOf lists the allow rules, then the deny rules", "[cli][auth]") {
  std::vector<Rule> rules = rulesOf({"publish:a", "consume:b"}, {"consume:b.secret"});
  REQUIRE(rules.size() == 3);
  CHECK(rules[0].allow);
  CHECK(rules[0].pattern == "a");
  CHECK(rules[1].allow);
  CHECK_FALSE(rules[2].allow);
  CHECK(rules[2].pattern == "b.secret");
  CHECK(rulesOf({}, {}).empty());
}

TEST_CASE("a token file's secret loses trailing whitespace only", "[cli][auth]") {
  CHECK(trimTrailingSpace("sluice_abc\n") == "sluice_abc");
  CHECK(trimTrailingSpace("sluice_abc \t\r\n\n") == "sluice_abc");
  CHECK(trimTrailingSpace("  sluice_abc") == "  sluice_abc");
  CHECK(trimTrailingSpace("a b\n") == "a b");
  CHECK(trimTrailingSpace(" \n\r\t").empty());
  CHECK(trimTrailingSpace("").empty());
}

TEST_CASE("rules print as the options that make them", "[cli][auth]") {
  CHECK(formatRule(rule(true, {Action::kPublish, Action::kConsume}, "orders.>")) ==
        "allow publish,consume:orders.>");
  CHECK(formatRule(rule(false, {Action::kConsume}, "orders.secret")) ==
        "deny consume:orders.secret");
  CHECK(formatActions({Action::kAdmin, Action::kManage, Action::kConsume, Action::kPublish}) ==
        "all");
  CHECK(formatRules({}) == "none");
  CHECK(formatRules({rule(true, {Action::kAdmin}, ">"), rule(false, {Action::kManage}, "x")}) ==
        "allow admin:>; deny manage:x");
  CHECK(formatExpiry(0) == "never");
  CHECK(formatExpiry(1714557600123) == "2024-05-01T10:00:00.123Z");

  // What the CLI prints, it parses back to the same rule.
  Rule original = rule(false, {Action::kManage, Action::kPublish}, "orders.*.created");
  std::string printed = formatRule(original);
  auto reparsed = parseRule(printed.substr(printed.find(' ') + 1), false);
  REQUIRE(reparsed.ok());
  CHECK(reparsed.value->actions == original.actions);
  CHECK(reparsed.value->pattern == original.pattern);
}

TEST_CASE("credential, principal, identity and secret JSON have the documented fields",
          "[cli][auth][json]") {
  Json credential = credentialToJson(grant());
  CHECK(credential["id"] == 13);
  CHECK(credential["principal"] == "billing");
  CHECK(credential["kind"] == "grant");
  CHECK(credential["issuer"] == 12);
  CHECK(credential["scope"][0]["allow"] == true);
  CHECK(credential["scope"][0]["actions"] == Json::array({"consume"}));
  CHECK(credential["scope"][0]["pattern"] == "orders.eu.>");
  CHECK(credential["expires"] == "2024-05-01T10:00:00.123Z");
  CHECK(credential["created"] == "2024-05-01T09:00:00.000Z");
  CHECK(credential["note"] == "eu report");

  sluice::CredentialInfo token;
  token.id = 2;
  token.principal = "billing";
  Json tokenJson = credentialToJson(token);
  CHECK(tokenJson["kind"] == "token");
  CHECK(tokenJson["issuer"].is_null());
  CHECK(tokenJson["expires"].is_null());
  CHECK(tokenJson["note"].is_null());
  CHECK(tokenJson["scope"].is_array());

  Json secret = secretToJson(sluice::Secret{token, "sluice_abc"});
  CHECK(secret["secret"] == "sluice_abc");
  CHECK(secret["id"] == 2);

  sluice::PrincipalInfo principal;
  principal.name = "billing";
  principal.rules = {rule(true, {Action::kPublish}, "orders.>"),
                     rule(false, {Action::kConsume}, "orders.secret")};
  principal.credentials = 3;
  principal.createdMs = 1714557600123;
  Json principalJson = principalToJson(principal);
  CHECK(principalJson["name"] == "billing");
  CHECK(principalJson["rules"].size() == 2);
  CHECK(principalJson["rules"][1]["allow"] == false);
  CHECK(principalJson["credentials"] == 3);
  CHECK(principalJson["created"] == "2024-05-01T10:00:00.123Z");

  sluice::Identity anonymous;
  anonymous.principal = "anonymous";
  anonymous.rules = {rule(true, {Action::kAdmin}, ">")};
  Json identity = identityToJson(anonymous);
  CHECK(identity["principal"] == "anonymous");
  CHECK(identity["authenticated"] == false);
  CHECK(identity["credential"].is_null());
  CHECK(identity["rules"][0]["actions"] == Json::array({"admin"}));

  sluice::Identity granted;
  granted.principal = "billing";
  granted.authenticated = true;
  granted.credential = grant();
  CHECK(identityToJson(granted)["credential"]["id"] == 13);
}

TEST_CASE("the human views of principals, credentials and identities", "[cli][auth]") {
  sluice::PrincipalInfo principal;
  principal.name = "billing";
  principal.rules = {rule(true, {Action::kPublish, Action::kConsume}, "orders.>")};
  principal.credentials = 2;
  std::string principals = principalsTable({principal});
  CHECK_THAT(principals, Contains("PRINCIPAL"));
  CHECK_THAT(principals, Contains("billing"));
  CHECK_THAT(principals, Contains("allow publish,consume:orders.>"));

  std::string credentials = credentialsTable({grant()});
  CHECK_THAT(credentials, Contains("grant"));
  CHECK_THAT(credentials, Contains("eu report"));
  CHECK_THAT(credentials, Contains("allow consume:orders.eu.>"));
  CHECK_THAT(credentials, Contains("2024-05-01T10:00:00.123Z"));

  CHECK(credentialSummary(grant()) ==
        "grant 13 of principal \"billing\" (from credential 12), scope allow "
        "consume:orders.eu.>, expires 2024-05-01T10:00:00.123Z");

  sluice::Identity off;
  off.principal = "anonymous";
  CHECK_THAT(identityView(off), Contains("authentication off"));

  sluice::Identity nobody;  // Authentication on, no credential given.
  CHECK_THAT(identityView(nobody), Contains("authentication on") && Contains("--token-file"));
  CHECK(identityToJson(nobody)["principal"].is_null());

  sluice::Identity certificate;
  certificate.principal = "ops";
  certificate.authenticated = true;
  CHECK_THAT(identityView(certificate), Contains("TLS client certificate"));

  sluice::Identity granted;
  granted.principal = "billing";
  granted.authenticated = true;
  granted.credential = grant();
  std::string view = identityView(granted);
  CHECK_THAT(view, Contains("13 (grant, minted from 12)"));
  CHECK_THAT(view, Contains("Scope:"));
  CHECK_THAT(view, Contains("eu report"));
}
