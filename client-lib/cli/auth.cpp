// `sluice auth whoami|principals|tokens|grants|credentials|revoke`: who the connection is,
// and the broker's principals, their rules and their credentials.

#include <iostream>
#include <memory>

#include "commands.h"
#include "format.h"
#include "json.h"
#include "parse.h"
#include "views.h"

namespace sluice::cli {
namespace {

struct PrincipalArgs {
  std::string name;
  std::vector<std::string> allow;  // ACTIONS:PATTERN values.
  std::vector<std::string> deny;   // ACTIONS:PATTERN values.
  bool yes = false;
};

struct CredentialArgs {
  std::string principal;
  std::vector<std::string> allow;  // ACTIONS:PATTERN values (grants).
  std::string note;
  std::string ttl;  // DUR; empty: none given.
  uint64_t id = 0;
  bool yes = false;
};

std::string inQuotes(const std::string& text) {
  return "\"" + text + "\"";
}

int runWhoami(Context& context) {
  Identity identity = context.take(context.admin().whoami());
  if (context.options.json) {
    context.print(dumpDocument(identityToJson(identity)));
  } else {
    std::cout << identityView(identity);
  }
  return kExitOk;
}

int runPutPrincipal(Context& context, const PrincipalArgs& args, bool create) {
  std::vector<Rule> rules = rulesOf(args.allow, args.deny);
  PrincipalInfo principal =
      context.take(create ? context.admin().createPrincipal(args.name, std::move(rules))
                          : context.admin().setRules(args.name, std::move(rules)));
  if (context.options.json) {
    context.print(dumpDocument(principalToJson(principal)));
  } else {
    context.print(std::string(create ? "created principal " : "set the rules of principal ") +
                  inQuotes(principal.name) + ": " + formatRules(principal.rules));
  }
  return kExitOk;
}

int runListPrincipals(Context& context) {
  std::vector<PrincipalInfo> principals = context.take(context.admin().listPrincipals());
  if (context.options.json) {
    Json list = Json::array();
    for (const auto& principal : principals)
      list.push_back(principalToJson(principal));
    context.print(dumpDocument(Json{{"principals", list}}));
  } else if (principals.empty()) {
    context.print("No principals.");
  } else {
    std::cout << principalsTable(principals);
  }
  return kExitOk;
}

// Asks before deleting. The listing also proves the principal exists, so an unknown name
// goes straight to the broker, whose refusal names it, without asking anything.
void confirmPrincipalDelete(Context& context, const PrincipalArgs& args) {
  if (args.yes) return;
  for (const auto& principal : context.take(context.admin().listPrincipals())) {
    if (principal.name != args.name) continue;
    context.confirm(false,
                    "Delete principal " + inQuotes(principal.name) + " and revoke its " +
                        std::to_string(principal.credentials) + " credentials?",
                    "delete principal " + inQuotes(principal.name));
    return;
  }
}

int runDeletePrincipal(Context& context, const PrincipalArgs& args) {
  confirmPrincipalDelete(context, args);
  uint64_t revoked = context.take(context.admin().deletePrincipal(args.name));
  if (context.options.json) {
    context.print(dumpDocument(
        Json{{"principal", args.name}, {"deleted", true}, {"credentials_revoked", revoked}}));
  } else {
    context.print("deleted principal " + inQuotes(args.name) + " (" + std::to_string(revoked) +
                  " credentials revoked)");
  }
  return kExitOk;
}

// The secret alone on stdout, so that `SECRET=$(sluice auth tokens create ...)` captures it;
// what it is goes to stderr. With --json, one document on stdout holding both.
int printSecret(Context& context, const Secret& secret, const std::string& made) {
  if (context.options.json) {
    context.print(dumpDocument(secretToJson(secret)));
    return kExitOk;
  }
  context.print(secret.secret);
  context.note(made + " " + credentialSummary(secret.credential) +
               "; the secret is shown only this once");
  return kExitOk;
}

std::chrono::milliseconds ttlOf(const CredentialArgs& args) {
  // The validator already accepted it.
  return args.ttl.empty() ? std::chrono::milliseconds(0) : *parseDuration(args.ttl).value;
}

int runCreateToken(Context& context, const CredentialArgs& args) {
  Secret secret = context.take(context.admin().createToken(args.principal, args.note, ttlOf(args)));
  return printSecret(context, secret, "created");
}

int runMintGrant(Context& context, const CredentialArgs& args) {
  Secret secret =
      context.take(context.admin().mintGrant(rulesOf(args.allow, {}), ttlOf(args), args.note));
  return printSecret(context, secret, "minted");
}

int runListCredentials(Context& context, const CredentialArgs& args) {
  std::vector<CredentialInfo> credentials =
      context.take(context.admin().listCredentials(args.principal));
  if (context.options.json) {
    Json list = Json::array();
    for (const auto& credential : credentials)
      list.push_back(credentialToJson(credential));
    context.print(dumpDocument(Json{{"credentials", list}}));
  } else if (credentials.empty()) {
    context.print(args.principal.empty()
                      ? "No credentials."
                      : "No credentials of principal " + inQuotes(args.principal) + ".");
  } else {
    std::cout << credentialsTable(credentials);
  }
  return kExitOk;
}

// Asks before revoking, naming the credential when this connection may list it (an admin, or
// the issuer of the grant); otherwise the broker's answer to the revoke is the error to show.
void confirmRevoke(Context& context, const CredentialArgs& args) {
  if (args.yes) return;
  for (const auto& credential : context.take(context.admin().listCredentials())) {
    if (credential.id != args.id) continue;
    context.confirm(false,
                    "Revoke " + credentialSummary(credential) + ", and every grant minted from it?",
                    "revoke credential " + std::to_string(args.id));
    return;
  }
}

int runRevoke(Context& context, const CredentialArgs& args) {
  confirmRevoke(context, args);
  uint64_t revoked = context.take(context.admin().revoke(args.id));
  if (context.options.json) {
    context.print(dumpDocument(
        Json{{"credential", args.id}, {"revoked", true}, {"credentials_revoked", revoked}}));
  } else {
    context.print("revoked credential " + std::to_string(args.id) + " (" + std::to_string(revoked) +
                  " credentials, with the grants minted from it)");
  }
  return kExitOk;
}

constexpr const char* kRuleHelp =
    "ACTIONS:PATTERN: ACTIONS is a comma-separated list of publish, consume, manage, admin, or\n"
    "all; PATTERN a topic (or subject) pattern, `*` one token, `>` one or more trailing ones.\n"
    "A deny matching an action on a topic wins over any allow. admin is broker-wide: `admin:>`.";

void addRuleOptions(CLI::App* cmd, PrincipalArgs& args) {
  cmd->add_option("--allow", args.allow, "Allow ACTIONS on the topics matching PATTERN; repeatable")
      ->check(allowRuleValidator())
      ->type_name("ACTIONS:PATTERN")
      ->allow_extra_args(false);
  cmd->add_option("--deny", args.deny, "Deny ACTIONS on the topics matching PATTERN; repeatable")
      ->check(denyRuleValidator())
      ->type_name("ACTIONS:PATTERN")
      ->allow_extra_args(false);
}

void addPrincipalsCommands(CLI::App* auth, Context& context) {
  CLI::App* principals = auth->add_subcommand(
      "principals", "Create, change, list and delete principals and their rules (admin)");
  principals->require_subcommand(1);
  principals->footer("Example:\n  sluice auth principals list");

  auto create = std::make_shared<PrincipalArgs>();
  CLI::App* createCmd = principals->add_subcommand(
      "create", "Create a principal with rules (no rule: no right); then make it a token");
  createCmd->footer(std::string(kRuleHelp) +
                    "\nExamples:\n"
                    "  sluice auth principals create billing --allow publish,consume:'orders.>' "
                    "--deny consume:orders.secret\n"
                    "  sluice auth principals create ops --allow all:'>'");
  createCmd->add_option("NAME", create->name, "Principal name")->required();
  addRuleOptions(createCmd, *create);
  createCmd->callback([&context, create] {
    context.action = [&context, create] { return runPutPrincipal(context, *create, true); };
  });

  auto setRules = std::make_shared<PrincipalArgs>();
  CLI::App* setRulesCmd = principals->add_subcommand(
      "set-rules", "Replace a principal's rules; live connections get them at once");
  setRulesCmd->footer(std::string(kRuleHelp) +
                      "\nThe rules given replace every rule the principal had (none given: it "
                      "keeps no right).\n"
                      "Example:\n"
                      "  sluice auth principals set-rules billing --allow consume:'orders.>'");
  setRulesCmd->add_option("NAME", setRules->name, "Principal name")->required();
  addRuleOptions(setRulesCmd, *setRules);
  setRulesCmd->callback([&context, setRules] {
    context.action = [&context, setRules] { return runPutPrincipal(context, *setRules, false); };
  });

  CLI::App* listCmd =
      principals->add_subcommand("list", "List principals with their rules and credential counts");
  listCmd->footer("Example:\n  sluice auth principals list --json");
  listCmd->callback(
      [&context] { context.action = [&context] { return runListPrincipals(context); }; });

  auto remove = std::make_shared<PrincipalArgs>();
  CLI::App* deleteCmd = principals->add_subcommand(
      "delete", "Delete a principal and revoke all its credentials, live connections too");
  deleteCmd->footer("Example:\n  sluice auth principals delete billing --yes");
  deleteCmd->add_option("NAME", remove->name, "Principal name")->required();
  deleteCmd->add_flag("--yes,-y", remove->yes, "Do not ask for confirmation");
  deleteCmd->callback([&context, remove] {
    context.action = [&context, remove] { return runDeletePrincipal(context, *remove); };
  });
}

void addCredentialsCommands(CLI::App* auth, Context& context) {
  CLI::App* tokens = auth->add_subcommand("tokens", "Make tokens of principals (admin)");
  tokens->require_subcommand(1);
  tokens->footer("Example:\n  sluice auth tokens create billing --note 'billing service'");

  auto token = std::make_shared<CredentialArgs>();
  CLI::App* createCmd = tokens->add_subcommand(
      "create", "Make a token with the principal's full rights; prints its secret once");
  createCmd->footer(
      "Stdout gets the secret alone on one line (the broker keeps only a hash: it is shown\n"
      "once), stderr what was made; --json prints both as one document.\n"
      "Examples:\n"
      "  sluice auth tokens create billing --note 'billing service' > billing.token\n"
      "  sluice --token-file billing.token auth whoami\n"
      "  sluice auth tokens create ci --ttl 30d --json");
  createCmd->add_option("PRINCIPAL", token->principal, "Principal name")->required();
  createCmd->add_option("--note", token->note, "Free text shown when listing credentials")
      ->type_name("TEXT");
  createCmd->add_option("--ttl", token->ttl, "Expire after this long (default: never)")
      ->check(durationValidator())
      ->type_name("DUR");
  createCmd->callback([&context, token] {
    context.action = [&context, token] { return runCreateToken(context, *token); };
  });

  CLI::App* grants = auth->add_subcommand(
      "grants", "Mint grants: credentials with part of this connection's rights, to hand out");
  grants->require_subcommand(1);
  grants->footer("Example:\n  sluice auth grants mint --allow consume:'orders.eu.>' --ttl 1h");

  auto grant = std::make_shared<CredentialArgs>();
  CLI::App* mintCmd = grants->add_subcommand(
      "mint", "Mint a grant from this connection's credential; prints its secret once");
  mintCmd->footer(
      "ACTIONS:PATTERN as for `auth principals create`; a grant takes allow rules only, each\n"
      "within an allow rule of this connection for the same actions. It expires after --ttl\n"
      "(1s to 365d), and never after this connection's credential. Revoking that credential\n"
      "revokes the grant. Output as for `auth tokens create`.\n"
      "Examples:\n"
      "  sluice auth grants mint --allow consume:'orders.eu.>' --ttl 1h --note 'eu report'\n"
      "  SLUICE_TOKEN=$(sluice auth grants mint --allow publish:orders.eu --ttl 10m) ./job");
  mintCmd
      ->add_option("--allow", grant->allow,
                   "Allow ACTIONS on the topics matching PATTERN; repeatable, at least one")
      ->check(allowRuleValidator())
      ->type_name("ACTIONS:PATTERN")
      ->allow_extra_args(false)
      ->required();
  mintCmd->add_option("--ttl", grant->ttl, "Expire after this long (1s to 365d)")
      ->check(durationValidator())
      ->type_name("DUR")
      ->required();
  mintCmd->add_option("--note", grant->note, "Free text shown when listing credentials")
      ->type_name("TEXT");
  mintCmd->callback([&context, grant] {
    context.action = [&context, grant] { return runMintGrant(context, *grant); };
  });

  CLI::App* credentials =
      auth->add_subcommand("credentials", "List tokens and grants (never their secrets)");
  credentials->require_subcommand(1);
  credentials->footer("Example:\n  sluice auth credentials list --principal billing");

  auto list = std::make_shared<CredentialArgs>();
  CLI::App* listCmd =
      credentials->add_subcommand("list",
                                  "An admin: every credential (or one principal's); anyone else: "
                                  "its own and the grants minted from "
                                  "this connection's credential");
  listCmd->footer(
      "Example:\n  sluice auth credentials list --principal billing\n"
      "  sluice auth credentials list --json");
  listCmd->add_option("--principal", list->principal, "Only this principal's credentials")
      ->type_name("NAME");
  listCmd->callback([&context, list] {
    context.action = [&context, list] { return runListCredentials(context, *list); };
  });

  auto revoke = std::make_shared<CredentialArgs>();
  CLI::App* revokeCmd = auth->add_subcommand(
      "revoke", "Revoke a credential and every grant minted from it, live connections too");
  revokeCmd->footer(
      "An admin may revoke any credential; anyone else the grants minted from their own.\n"
      "Example:\n  sluice auth revoke 12 --yes");
  revokeCmd->add_option("ID", revoke->id, "Credential id (auth credentials list)")
      ->required()
      ->check(CLI::NonNegativeNumber);
  revokeCmd->add_flag("--yes,-y", revoke->yes, "Do not ask for confirmation");
  revokeCmd->callback([&context, revoke] {
    context.action = [&context, revoke] { return runRevoke(context, *revoke); };
  });
}

}  // namespace

void addAuthCommands(CLI::App& app, Context& context) {
  CLI::App* auth = app.add_subcommand(
      "auth", "Who am I; principals and their rules; tokens, grants and revocation");
  auth->require_subcommand(1);
  auth->footer(
      "Connect with --token-file FILE (or $SLUICE_TOKEN) to a broker with authentication on.\n"
      "Examples:\n"
      "  sluice auth whoami\n"
      "  sluice auth principals create billing --allow publish,consume:'orders.>'\n"
      "  sluice auth tokens create billing > billing.token");

  CLI::App* whoami = auth->add_subcommand(
      "whoami", "Show this connection's principal, credential, expiry and rules");
  whoami->footer("Example:\n  sluice --token-file billing.token auth whoami --json");
  whoami->callback([&context] { context.action = [&context] { return runWhoami(context); }; });

  addPrincipalsCommands(auth, context);
  addCredentialsCommands(auth, context);
}

}  // namespace sluice::cli
