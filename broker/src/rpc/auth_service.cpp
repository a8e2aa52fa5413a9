// The Auth capability: principals, tokens and grants (core/auth.h) on the wire.

#include "common/clock.h"
#include "rpc/services.h"
#include "rpc/wire.h"

namespace sluice::rpc {
namespace {

constexpr wire::Action kWireActions[] = {wire::Action::PUBLISH, wire::Action::CONSUME,
                                         wire::Action::MANAGE, wire::Action::ADMIN};

// Rules from the wire; an action this broker does not know (a newer client) is refused.
Result<std::vector<AuthRule>> rulesOf(capnp::List<wire::Rule>::Reader list, size_t limit) {
  if (list.size() > limit) {
    return Status(Code::kInvalidArgument, "at most " + std::to_string(limit) + " rules, got " +
                                              std::to_string(list.size()));
  }
  std::vector<AuthRule> rules;
  rules.reserve(list.size());
  for (auto rule : list) {
    AuthRule out;
    out.allow = rule.getAllow();
    auto actions = rule.getActions();
    if (actions.size() > 16) {
      return Status(Code::kInvalidArgument, "a rule names each action at most once");
    }
    for (wire::Action action : actions) {
      auto bit = static_cast<unsigned>(action);
      if (bit > 3) {
        return Status(Code::kInvalidArgument,
                      "unknown action " + std::to_string(bit) + " in a rule");
      }
      out.actions |= static_cast<uint8_t>(1u << bit);
    }
    out.pattern = toString(rule.getPattern());
    rules.push_back(std::move(out));
  }
  return rules;
}

void toWire(const std::vector<AuthRule>& rules, capnp::List<wire::Rule>::Builder out) {
  for (unsigned i = 0; i < rules.size(); ++i) {
    out[i].setAllow(rules[i].allow);
    unsigned count = 0;
    for (unsigned bit = 0; bit < 4; ++bit)
      count += (rules[i].actions >> bit) & 1u;
    auto actions = out[i].initActions(count);
    unsigned k = 0;
    for (unsigned bit = 0; bit < 4; ++bit) {
      if ((rules[i].actions >> bit) & 1u) actions.set(k++, kWireActions[bit]);
    }
    out[i].setPattern(rules[i].pattern);
  }
}

void toWire(const CredentialRecord& credential, wire::CredentialInfo::Builder out) {
  out.setId(credential.id);
  out.setPrincipal(credential.principal);
  out.setIssuer(credential.issuer);
  out.setScoped(credential.scoped);
  toWire(credential.scope, out.initScope(static_cast<unsigned>(credential.scope.size())));
  out.setExpiresAtMs(credential.expiresAtMs);
  out.setCreatedMs(credential.createdMs);
  out.setNote(credential.note);
}

void toWire(const core::PrincipalView& view, wire::PrincipalInfo::Builder out) {
  out.setName(view.record.name);
  toWire(view.record.rules, out.initRules(static_cast<unsigned>(view.record.rules.size())));
  out.setCreatedMs(view.record.createdMs);
  out.setCredentials(view.credentials);
}

template <typename Context>
kj::Promise<void> answerMinted(kj::Promise<Result<core::Minted>> minted, Context context) {
  return minted.then([context](Result<core::Minted> answer) mutable {
    auto result = context.getResults().initResult();
    if (!answer.ok()) return setError(result.initError(), answer.status());
    toWire(answer.value().credential, result.initCredential());
    result.setSecret(answer.value().secret);
  });
}

template <typename Context>
kj::Promise<void> answerCount(kj::Promise<Result<uint64_t>> count, Context context) {
  return count.then([context](Result<uint64_t> n) mutable {
    auto result = context.getResults().initResult();
    if (!n.ok()) return setError(result.initError(), n.status());
    result.setCount(n.value());
  });
}

}  // namespace

kj::Promise<void> AuthService::whoami(WhoamiContext context) {
  return guarded("whoami", [this, context]() mutable {
    auto results = context.getResults();
    auto answer = broker_.auth().whoami(identity_, wallClockMs());
    if (!answer.ok()) return;  // Revoked or expired: an empty answer, not authenticated.
    results.setAuthenticated(broker_.auth().enabled() && identity_.authenticated());
    const core::WhoAmI& who = answer.value();
    results.setPrincipal(who.identity.principal);
    if (who.credential) toWire(*who.credential, results.initCredential());
    toWire(who.rules, results.initRules(static_cast<unsigned>(who.rules.size())));
  });
}

kj::Promise<void> AuthService::putPrincipal(PutPrincipalContext context) {
  return guarded("putPrincipal", [this, context]() mutable -> kj::Promise<void> {
    auto params = context.getParams();
    auto rules = rulesOf(params.getRules(), core::kMaxRulesPerPrincipal);
    if (!rules.ok()) {
      setError(context.getResults().initResult().initError(), rules.status());
      return kj::READY_NOW;
    }
    return broker_.auth()
        .putPrincipal(identity_, toString(params.getName()), std::move(rules.value()),
                      params.getCreate())
        .then([context](Result<core::PrincipalView> view) mutable {
          auto result = context.getResults().initResult();
          if (!view.ok()) return setError(result.initError(), view.status());
          toWire(view.value(), result.initPrincipal());
        });
  });
}

kj::Promise<void> AuthService::deletePrincipal(DeletePrincipalContext context) {
  return guarded("deletePrincipal", [this, context]() mutable {
    return answerCount(
        broker_.auth().deletePrincipal(identity_, toString(context.getParams().getName())),
        context);
  });
}

kj::Promise<void> AuthService::listPrincipals(ListPrincipalsContext context) {
  return guarded("listPrincipals", [this, context]() mutable {
    auto result = context.getResults().initResult();
    auto principals = broker_.auth().listPrincipals(identity_, wallClockMs());
    if (!principals.ok()) return setError(result.initError(), principals.status());
    auto out = result.initPrincipals(static_cast<unsigned>(principals.value().size()));
    for (unsigned i = 0; i < principals.value().size(); ++i)
      toWire(principals.value()[i], out[i]);
  });
}

kj::Promise<void> AuthService::createToken(CreateTokenContext context) {
  return guarded("createToken", [this, context]() mutable {
    auto params = context.getParams();
    return answerMinted(broker_.auth().createToken(identity_, toString(params.getPrincipal()),
                                                   toString(params.getNote()), params.getTtlMs()),
                        context);
  });
}

kj::Promise<void> AuthService::mintGrant(MintGrantContext context) {
  return guarded("mintGrant", [this, context]() mutable -> kj::Promise<void> {
    auto params = context.getParams();
    auto scope = rulesOf(params.getScope(), core::kMaxScopeRules);
    if (!scope.ok()) {
      setError(context.getResults().initResult().initError(), scope.status());
      return kj::READY_NOW;
    }
    return answerMinted(broker_.auth().mintGrant(identity_, std::move(scope.value()),
                                                 params.getTtlMs(), toString(params.getNote())),
                        context);
  });
}

kj::Promise<void> AuthService::revoke(RevokeContext context) {
  return guarded("revoke", [this, context]() mutable {
    return answerCount(broker_.auth().revoke(identity_, context.getParams().getId()), context);
  });
}

kj::Promise<void> AuthService::listCredentials(ListCredentialsContext context) {
  return guarded("listCredentials", [this, context]() mutable {
    auto result = context.getResults().initResult();
    auto credentials = broker_.auth().listCredentials(
        identity_, toString(context.getParams().getPrincipal()), wallClockMs());
    if (!credentials.ok()) return setError(result.initError(), credentials.status());
    auto out = result.initCredentials(static_cast<unsigned>(credentials.value().size()));
    for (unsigned i = 0; i < credentials.value().size(); ++i)
      toWire(credentials.value()[i], out[i]);
  });
}

}  // namespace sluice::rpc
