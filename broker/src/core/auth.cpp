#include "core/auth.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <stdexcept>

#include "core/context.h"
#include "core/log.h"
#include "core/names.h"

namespace sluice::core {
namespace {

constexpr uint32_t kFailuresBeforePenalty = 5;
constexpr int64_t kFailureMemoryMs = 60 * 1000;
constexpr uint64_t kMaxPenaltyMs = 5000;
constexpr size_t kMaxTrackedPeers = 10000;

Status unauthenticated(std::string message) {
  return Status(Code::kUnauthenticated, std::move(message));
}
Status denied(std::string message) {
  return Status(Code::kPermissionDenied, std::move(message));
}

// What a refused action was, for its message: "publish to" and the like.
const char* verbOf(uint8_t actions) {
  switch (actions) {
    case kActPublish:
      return "publish to";
    case kActConsume:
      return "consume from";
    case kActManage:
      return "manage";
    default:
      return "describe";
  }
}

std::vector<std::string_view> tokens(std::string_view pattern) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t dot = pattern.find('.', start);
    out.push_back(pattern.substr(start, dot == std::string_view::npos ? dot : dot - start));
    if (dot == std::string_view::npos) return out;
    start = dot + 1;
  }
}

std::string ruleText(const AuthRule& rule) {
  return actionNames(rule.actions) + ":" + rule.pattern;
}

bool validNote(std::string_view note) {
  return note.size() <= kMaxNoteLength &&
         std::all_of(note.begin(), note.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
}

}  // namespace

std::optional<std::string> validatePrincipalName(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameLength) {
    return "a principal name has 1 to " + std::to_string(kMaxNameLength) + " characters, got " +
           std::to_string(name.size());
  }
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-' || c == '@';
    if (!ok) return "a principal name has only [A-Za-z0-9._@-], got " + quoted(name);
  }
  return std::nullopt;
}

std::optional<std::string> validateRules(const std::vector<AuthRule>& rules, size_t limit) {
  if (rules.size() > limit) {
    return "at most " + std::to_string(limit) + " rules, got " + std::to_string(rules.size());
  }
  for (size_t i = 0; i < rules.size(); ++i) {
    const AuthRule& rule = rules[i];
    std::string which = "rule " + std::to_string(i + 1) + ": ";
    if (rule.actions == 0 || (rule.actions & ~kAllActions) != 0)
      return which + "it names no action (publish, consume, manage, admin)";
    if (auto problem = validateSubjectPattern(rule.pattern)) return which + *problem;
    if ((rule.actions & kActAdmin) != 0 && rule.pattern != ">") {
      return which + "admin is broker-wide: its pattern is \">\", got " + quoted(rule.pattern);
    }
  }
  return std::nullopt;
}

std::string actionNames(uint8_t actions) {
  static const char* kNames[] = {"publish", "consume", "manage", "admin"};
  std::string out;
  for (int bit = 0; bit < 4; ++bit) {
    if ((actions & (1u << bit)) == 0) continue;
    if (!out.empty()) out += ",";
    out += kNames[bit];
  }
  return out.empty() ? "nothing" : out;
}

bool patternCovers(std::string_view outer, std::string_view inner) {
  auto o = tokens(outer), in = tokens(inner);
  for (size_t k = 0;; ++k) {
    if (k == o.size()) return k == in.size();
    if (o[k] == ">") return k < in.size();
    if (k == in.size() || in[k] == ">") return false;
    if (o[k] == "*") continue;
    if (in[k] != o[k]) return false;  // Also a `*` under a literal.
  }
}

std::string hashSecret(std::string_view secret) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned size = 0;
  if (EVP_Digest(secret.data(), secret.size(), out, &size, EVP_sha256(), nullptr) != 1)
    throw std::runtime_error("SHA-256 is not available");
  return std::string(reinterpret_cast<const char*>(out), size);
}

std::string newSecret() {
  unsigned char bytes[24];
  if (RAND_bytes(bytes, sizeof bytes) != 1) throw std::runtime_error("the random generator failed");
  static const char* kHex = "0123456789abcdef";
  std::string out = "sluice_";
  for (unsigned char b : bytes) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

// RuleSet --------------------------------------------------------------------------------------

RuleSet::RuleSet(std::vector<AuthRule> rules) : rules_(std::move(rules)), router_(256) {
  bool adminAllowed = false, adminDenied = false;
  for (size_t i = 0; i < rules_.size(); ++i) {
    router_.set(static_cast<TopicId>(i + 1), "", {rules_[i].pattern});
    if ((rules_[i].actions & kActAdmin) != 0) (rules_[i].allow ? adminAllowed : adminDenied) = true;
  }
  admin_ = adminAllowed && !adminDenied;
}

uint8_t RuleSet::allowed(std::string_view topic) {
  uint8_t allow = 0, deny = 0;
  for (TopicId id : router_.route(topic)) {
    const AuthRule& rule = rules_[id - 1];
    (rule.allow ? allow : deny) |= rule.actions;
  }
  return static_cast<uint8_t>(allow & ~deny);
}

bool RuleSet::covers(uint8_t actions, std::string_view pattern) const {
  uint8_t covered = 0;
  for (const AuthRule& rule : rules_) {
    if (rule.allow && patternCovers(rule.pattern, pattern)) covered |= rule.actions;
  }
  return (covered & actions) == actions;
}

// Authority: state ------------------------------------------------------------------------------

void Authority::load(std::vector<PrincipalRecord> principals,
                     std::vector<CredentialRecord> credentials, uint64_t nextCredentialId) {
  for (const PrincipalRecord& record : principals)
    adoptPrincipal(record);
  for (const CredentialRecord& record : credentials)
    adoptCredential(record);
  nextCredentialId_ = std::max(nextCredentialId_, nextCredentialId);
  if (enabled_) {
    coreLog()->info("authentication on principals={} credentials={}", principals_.size(),
                    credentials_.size());
  }
}

void Authority::adoptPrincipal(const PrincipalRecord& record) {
  Principal& principal = principals_[record.name];
  principal.record = record;
  principal.rules = std::make_unique<RuleSet>(record.rules);
}

void Authority::adoptCredential(const CredentialRecord& record) {
  Credential& credential = credentials_[record.id];
  credential.record = record;
  if (record.scoped) credential.scope = std::make_unique<RuleSet>(record.scope);
  byHash_[record.secretHash] = record.id;
  if (record.issuer != 0) minted_.emplace(record.issuer, record.id);
  auto principal = principals_.find(record.principal);
  if (principal != principals_.end()) ++principal->second.credentials;
  nextCredentialId_ = std::max(nextCredentialId_, record.id + 1);
}

void Authority::dropCredentials(const std::vector<uint64_t>& ids) {
  for (uint64_t id : ids) {
    auto it = credentials_.find(id);
    if (it == credentials_.end()) continue;
    const CredentialRecord& record = it->second.record;
    byHash_.erase(record.secretHash);
    auto range = minted_.equal_range(record.issuer);
    for (auto m = range.first; m != range.second; ++m) {
      if (m->second == id) {
        minted_.erase(m);
        break;
      }
    }
    auto principal = principals_.find(record.principal);
    if (principal != principals_.end() && principal->second.credentials > 0)
      --principal->second.credentials;
    credentials_.erase(it);
  }
}

std::vector<uint64_t> Authority::descendants(uint64_t id) const {
  std::vector<uint64_t> out{id};
  for (size_t i = 0; i < out.size(); ++i) {
    auto range = minted_.equal_range(out[i]);
    for (auto m = range.first; m != range.second; ++m)
      out.push_back(m->second);
  }
  return out;
}

// Authority: checks -----------------------------------------------------------------------------

Identity Authority::initial(std::optional<std::string> certificateName) const {
  Identity identity;
  if (!enabled_) {
    identity.anonymous = true;
    identity.principal = "anonymous";
  } else if (certificateName && principals_.count(*certificateName) != 0) {
    identity.principal = *certificateName;
  }
  return identity;
}

Result<Identity> Authority::authenticate(std::string_view secret, int64_t nowMs) {
  if (!enabled_) return initial(std::nullopt);
  if (secret.empty() || secret.size() > kMaxSecretLength)
    return unauthenticated("no token or grant given, or one of the wrong length");
  auto found = byHash_.find(hashSecret(secret));
  if (found == byHash_.end()) return unauthenticated("unknown or revoked token or grant");
  Identity identity;
  identity.principal = credentials_.at(found->second).record.principal;
  identity.credential = found->second;
  Status valid = checkValid(identity, nowMs);
  if (!valid.ok()) return valid;
  return identity;
}

Status Authority::resolve(const Identity& who, int64_t nowMs, Principal** principal, Chain* chain) {
  if (!who.authenticated()) {
    return unauthenticated(
        "authentication is on: authenticate with a token or grant (or a client certificate) "
        "first");
  }
  auto p = principals_.find(who.principal);
  if (p == principals_.end())
    return unauthenticated("principal " + quoted(who.principal) + " was deleted");
  *principal = &p->second;
  for (uint64_t id = who.credential; id != 0;) {
    auto c = credentials_.find(id);
    if (c == credentials_.end()) {
      return unauthenticated(id == who.credential
                                 ? "credential " + std::to_string(id) + " was revoked"
                                 : "credential " + std::to_string(who.credential) +
                                       " was minted from credential " + std::to_string(id) +
                                       ", which was revoked");
    }
    if (expiredAt(c->second.record.expiresAtMs, nowMs)) {
      return unauthenticated("credential " + std::to_string(id) + " expired at " +
                             std::to_string(c->second.record.expiresAtMs) + " (Unix ms)");
    }
    if (chain->size == kMaxGrantDepth + 1) {
      return unauthenticated("credential " + std::to_string(who.credential) +
                             " is minted too deep");  // mintGrant never makes one.
    }
    chain->items[chain->size++] = &c->second;
    id = c->second.record.issuer;
  }
  return Status();
}

uint8_t Authority::allowed(Principal& principal, Chain& chain, std::string_view topic) {
  uint8_t mask = principal.rules->allowed(topic);
  for (Credential* credential : chain) {
    if (mask == 0) break;
    if (credential->scope) mask &= credential->scope->allowed(topic);
  }
  return mask;
}

Status Authority::checkValid(const Identity& who, int64_t nowMs) {
  if (!enabled_ || who.anonymous) return Status();
  Principal* principal = nullptr;
  Chain chain;
  return resolve(who, nowMs, &principal, &chain);
}

Status Authority::check(const Identity& who, uint8_t action, std::string_view topic,
                        int64_t nowMs) {
  return checkAny(who, action, topic, nowMs);
}

Status Authority::checkAny(const Identity& who, uint8_t actions, std::string_view topic,
                           int64_t nowMs) {
  if (!enabled_ || who.anonymous) return Status();
  Principal* principal = nullptr;
  Chain chain;
  Status valid = resolve(who, nowMs, &principal, &chain);
  if (!valid.ok()) return valid;
  if (validateSubject(topic)) return Status();  // The call refuses the name itself.
  if ((allowed(*principal, chain, topic) & actions) != 0) return Status();
  // Built in one buffer: the principal's name and the topic are valid (printable, no quotes),
  // so they need no escaping.
  std::string message;
  message.reserve(96 + who.principal.size() + topic.size());
  message.append("principal \"").append(who.principal).append("\" may not ");
  message.append(verbOf(actions)).append(" topic \"").append(topic).append("\"");
  bool scoped = false;
  for (Credential* credential : chain)
    scoped = scoped || credential->scope != nullptr;
  if (scoped && (principal->rules->allowed(topic) & actions) != 0)
    message += " (the scope of grant " + std::to_string(who.credential) + " does not cover it)";
  return denied(std::move(message));
}

Status Authority::checkAdmin(const Identity& who, int64_t nowMs) {
  if (!enabled_ || who.anonymous) return Status();
  Principal* principal = nullptr;
  Chain chain;
  Status valid = resolve(who, nowMs, &principal, &chain);
  if (!valid.ok()) return valid;
  bool ok = principal->rules->admin();
  for (Credential* credential : chain) {
    if (credential->scope && !credential->scope->admin()) ok = false;
  }
  if (ok) return Status();
  return denied("principal " + quoted(who.principal) +
                " may not administer principals, credentials or backups (that needs admin)");
}

// Authority: changes ----------------------------------------------------------------------------

Result<WhoAmI> Authority::whoami(const Identity& who, int64_t nowMs) {
  WhoAmI answer;
  answer.identity = who;
  if (!enabled_ || who.anonymous) {
    answer.rules = {AuthRule{true, kAllActions, ">"}};
    return answer;
  }
  if (!who.authenticated()) return answer;
  Principal* principal = nullptr;
  Chain chain;
  Status valid = resolve(who, nowMs, &principal, &chain);
  if (!valid.ok()) return valid;
  answer.rules = principal->record.rules;
  if (!chain.empty()) answer.credential = chain.front()->record;
  return answer;
}

kj::Promise<Result<PrincipalView>> Authority::putPrincipal(const Identity& who, std::string name,
                                                           std::vector<AuthRule> rules,
                                                           bool create) {
  int64_t now = wallClockMs();
  Status allowed = checkAdmin(who, now);
  if (!allowed.ok()) return Result<PrincipalView>(allowed);
  if (!enabled_) {
    return Result<PrincipalView>(
        Status(Code::kInvalidArgument, "authentication is off (start sluiced with --auth)"));
  }
  if (auto problem = validatePrincipalName(name))
    return Result<PrincipalView>(Status(Code::kInvalidArgument, *problem));
  if (auto problem = validateRules(rules, kMaxRulesPerPrincipal)) {
    return Result<PrincipalView>(
        Status(Code::kInvalidArgument, "principal " + quoted(name) + ": " + *problem));
  }
  auto existing = principals_.find(name);
  if (create && existing != principals_.end()) {
    return Result<PrincipalView>(
        Status(Code::kInvalidArgument, "a principal named " + quoted(name) + " exists"));
  }
  if (!create && existing == principals_.end()) {
    return Result<PrincipalView>(
        Status(Code::kInvalidArgument, "no principal is named " + quoted(name)));
  }
  if (create && principals_.size() >= kMaxPrincipals) {
    return Result<PrincipalView>(
        Status(Code::kLimitExceeded, "at most " + std::to_string(kMaxPrincipals) + " principals"));
  }
  PrincipalRecord record{name, std::move(rules), create ? now : existing->second.record.createdMs};
  adoptPrincipal(record);
  PrincipalView view{record, principals_[name].credentials};
  recheck(now);
  coreLog()->info("principal {} name={} rules={}", create ? "created" : "changed", name,
                  record.rules.size());
  WriteBatch batch;
  batch.ops.push_back(PutPrincipalOp{std::move(record)});
  return ctx_.commit(std::move(batch)).then([view](Result<uint64_t> committed) {
    if (!committed.ok()) return Result<PrincipalView>(committed.status());
    return Result<PrincipalView>(view);
  });
}

kj::Promise<Result<uint64_t>> Authority::deletePrincipal(const Identity& who, std::string name) {
  int64_t now = wallClockMs();
  Status allowed = checkAdmin(who, now);
  if (!allowed.ok()) return Result<uint64_t>(allowed);
  if (principals_.find(name) == principals_.end()) {
    return Result<uint64_t>(
        Status(Code::kInvalidArgument, "no principal is named " + quoted(name)));
  }
  std::vector<uint64_t> ids;
  for (const auto& [id, credential] : credentials_) {
    if (credential.record.principal == name) ids.push_back(id);
  }
  dropCredentials(ids);
  principals_.erase(name);
  recheck(now);
  coreLog()->info("principal deleted name={} credentials_revoked={}", name, ids.size());
  uint64_t count = ids.size();
  WriteBatch batch;
  batch.ops.push_back(RevokeCredentialsOp{std::move(ids)});
  batch.ops.push_back(DeletePrincipalOp{std::move(name)});
  return ctx_.commit(std::move(batch)).then([count](Result<uint64_t> committed) {
    if (!committed.ok()) return Result<uint64_t>(committed.status());
    return Result<uint64_t>(count);
  });
}

Result<std::vector<PrincipalView>> Authority::listPrincipals(const Identity& who, int64_t nowMs) {
  Status allowed = checkAdmin(who, nowMs);
  if (!allowed.ok()) return allowed;
  std::vector<PrincipalView> out;
  out.reserve(principals_.size());
  for (const auto& [name, principal] : principals_)
    out.push_back({principal.record, principal.credentials});
  return out;
}

Minted Authority::newCredential(std::string principal, uint64_t issuer, bool scoped,
                                std::vector<AuthRule> scope, int64_t expiresAtMs, std::string note,
                                int64_t nowMs) {
  Minted minted;
  minted.secret = newSecret();
  CredentialRecord& record = minted.credential;
  record.id = nextCredentialId_++;
  record.principal = std::move(principal);
  record.issuer = issuer;
  record.scoped = scoped;
  record.scope = std::move(scope);
  record.expiresAtMs = expiresAtMs;
  record.createdMs = nowMs;
  record.note = std::move(note);
  record.secretHash = hashSecret(minted.secret);
  return minted;
}

kj::Promise<Result<Minted>> Authority::commitMinted(Minted minted) {
  adoptCredential(minted.credential);
  coreLog()->info("credential created id={} principal={} issuer={} scoped={} expires_ms={}",
                  minted.credential.id, minted.credential.principal, minted.credential.issuer,
                  minted.credential.scoped, minted.credential.expiresAtMs);
  WriteBatch batch;
  batch.ops.push_back(PutCredentialOp{minted.credential});
  return ctx_.commit(std::move(batch))
      .then([minted = std::move(minted)](Result<uint64_t> committed) mutable {
        if (!committed.ok()) return Result<Minted>(committed.status());
        return Result<Minted>(std::move(minted));
      });
}

kj::Promise<Result<Minted>> Authority::createToken(const Identity& who, std::string principal,
                                                   std::string note, uint64_t ttlMs) {
  int64_t now = wallClockMs();
  Status allowed = checkAdmin(who, now);
  if (!allowed.ok()) return Result<Minted>(allowed);
  if (!enabled_) {
    return Result<Minted>(
        Status(Code::kInvalidArgument, "authentication is off (start sluiced with --auth)"));
  }
  if (principals_.find(principal) == principals_.end()) {
    return Result<Minted>(
        Status(Code::kInvalidArgument, "no principal is named " + quoted(principal)));
  }
  if (!validNote(note)) {
    return Result<Minted>(Status(
        Code::kInvalidArgument,
        "a note has at most " + std::to_string(kMaxNoteLength) + " printable ASCII characters"));
  }
  if (ttlMs > kMaxGrantTtlMs) {
    return Result<Minted>(
        Status(Code::kInvalidArgument,
               "a token's time to live is at most 366 days, got " + std::to_string(ttlMs) + " ms"));
  }
  if (credentials_.size() >= kMaxCredentials) {
    return Result<Minted>(Status(Code::kLimitExceeded,
                                 "at most " + std::to_string(kMaxCredentials) + " credentials"));
  }
  int64_t expires = ttlMs == 0 ? 0 : now + static_cast<int64_t>(ttlMs);
  return commitMinted(
      newCredential(std::move(principal), 0, false, {}, expires, std::move(note), now));
}

kj::Promise<Result<Minted>> Authority::mintGrant(const Identity& who, std::vector<AuthRule> scope,
                                                 uint64_t ttlMs, std::string note) {
  int64_t now = wallClockMs();
  if (!enabled_ || who.anonymous) {
    return Result<Minted>(Status(Code::kInvalidArgument,
                                 "authentication is off: there is no credential to mint from"));
  }
  Principal* principal = nullptr;
  Chain chain;
  Status valid = resolve(who, now, &principal, &chain);
  if (!valid.ok()) return Result<Minted>(valid);
  if (scope.empty()) {
    return Result<Minted>(
        Status(Code::kInvalidArgument, "a grant needs at least one allow rule in its scope"));
  }
  if (auto problem = validateRules(scope, kMaxScopeRules))
    return Result<Minted>(Status(Code::kInvalidArgument, "grant scope: " + *problem));
  for (const AuthRule& rule : scope) {
    if (!rule.allow) {
      return Result<Minted>(
          Status(Code::kInvalidArgument,
                 "a grant's scope holds allow rules only, got deny " + ruleText(rule)));
    }
  }
  if (chain.size >= kMaxGrantDepth) {
    return Result<Minted>(
        Status(Code::kLimitExceeded, "grants nest at most " + std::to_string(kMaxGrantDepth) +
                                         " deep: mint this one from an earlier credential"));
  }
  if (ttlMs < kMinGrantTtlMs || ttlMs > kMaxGrantTtlMs) {
    return Result<Minted>(Status(Code::kInvalidArgument, "a grant lives 1 s to 366 days, got " +
                                                             std::to_string(ttlMs) + " ms"));
  }
  if (!validNote(note)) {
    return Result<Minted>(Status(
        Code::kInvalidArgument,
        "a note has at most " + std::to_string(kMaxNoteLength) + " printable ASCII characters"));
  }
  if (credentials_.size() >= kMaxCredentials) {
    return Result<Minted>(Status(Code::kLimitExceeded,
                                 "at most " + std::to_string(kMaxCredentials) + " credentials"));
  }
  // Narrower by construction: each allow rule must lie within the issuer's rights, which are
  // the principal's rules and every scope up the chain.
  for (const AuthRule& rule : scope) {
    bool within = principal->rules->covers(rule.actions, rule.pattern);
    if ((rule.actions & kActAdmin) != 0) within = within && principal->rules->admin();
    for (Credential* credential : chain) {
      if (credential->scope)
        within = within && credential->scope->covers(rule.actions, rule.pattern);
    }
    if (!within) {
      return Result<Minted>(denied(
          "grant rule " + ruleText(rule) + " is wider than the rights of its issuer (principal " +
          quoted(who.principal) +
          (who.credential != 0 ? ", credential " + std::to_string(who.credential) : std::string()) +
          ")"));
    }
  }
  int64_t expires = now + static_cast<int64_t>(ttlMs);
  for (Credential* credential : chain) {
    if (credential->record.expiresAtMs != 0)
      expires = std::min(expires, credential->record.expiresAtMs);
  }
  return commitMinted(newCredential(who.principal, who.credential, true, std::move(scope), expires,
                                    std::move(note), now));
}

kj::Promise<Result<uint64_t>> Authority::revoke(const Identity& who, uint64_t id) {
  int64_t now = wallClockMs();
  Status valid = checkValid(who, now);
  if (!valid.ok()) return Result<uint64_t>(valid);
  auto target = credentials_.find(id);
  if (target == credentials_.end()) {
    return Result<uint64_t>(
        Status(Code::kInvalidArgument,
               "no credential has id " + std::to_string(id) + " (revoked already, or never made)"));
  }
  bool mayRevoke = checkAdmin(who, now).ok();
  if (!mayRevoke && who.credential == 0) {
    // A certificate-authenticated principal: the grants it minted.
    mayRevoke = target->second.record.principal == who.principal && target->second.record.scoped;
  }
  for (uint64_t up = id; !mayRevoke && up != 0;) {
    if (up == who.credential) mayRevoke = true;
    auto c = credentials_.find(up);
    up = c == credentials_.end() ? 0 : c->second.record.issuer;
  }
  if (!mayRevoke) {
    return Result<uint64_t>(denied("principal " + quoted(who.principal) +
                                   " may not revoke credential " + std::to_string(id) +
                                   ": it was not minted from this connection's credential"));
  }
  std::vector<uint64_t> ids = descendants(id);
  dropCredentials(ids);
  recheck(now);
  coreLog()->info("credentials revoked id={} count={}", id, ids.size());
  uint64_t count = ids.size();
  WriteBatch batch;
  batch.ops.push_back(RevokeCredentialsOp{std::move(ids)});
  return ctx_.commit(std::move(batch)).then([count](Result<uint64_t> committed) {
    if (!committed.ok()) return Result<uint64_t>(committed.status());
    return Result<uint64_t>(count);
  });
}

Result<std::vector<CredentialRecord>> Authority::listCredentials(const Identity& who,
                                                                 std::string_view principal,
                                                                 int64_t nowMs) {
  Status valid = checkValid(who, nowMs);
  if (!valid.ok()) return valid;
  std::vector<CredentialRecord> out;
  if (checkAdmin(who, nowMs).ok()) {
    for (const auto& [id, credential] : credentials_) {
      if (principal.empty() || credential.record.principal == principal)
        out.push_back(credential.record);
    }
    return out;
  }
  if (who.credential == 0) {
    for (const auto& [id, credential] : credentials_) {
      if (credential.record.principal == who.principal && credential.record.scoped)
        out.push_back(credential.record);
    }
    return out;
  }
  for (uint64_t id : descendants(who.credential))
    out.push_back(credentials_.at(id).record);
  return out;
}

kj::Promise<Status> Authority::ensureAdminToken(std::string secret) {
  if (secret.size() < kMinSecretLength || secret.size() > kMaxSecretLength) {
    return Status(Code::kInvalidArgument, "the admin token has " +
                                              std::to_string(kMinSecretLength) + " to " +
                                              std::to_string(kMaxSecretLength) +
                                              " characters (at least 128 random bits), got " +
                                              std::to_string(secret.size()));
  }
  std::string hash = hashSecret(secret);
  if (byHash_.count(hash) != 0) return Status();
  int64_t now = wallClockMs();
  WriteBatch batch;
  if (principals_.find(kAdminPrincipal) == principals_.end()) {
    PrincipalRecord admin{kAdminPrincipal, {AuthRule{true, kAllActions, ">"}}, now};
    adoptPrincipal(admin);
    batch.ops.push_back(PutPrincipalOp{std::move(admin)});
  }
  CredentialRecord record;
  record.id = nextCredentialId_++;
  record.principal = kAdminPrincipal;
  record.createdMs = now;
  record.note = "the operator's admin token";
  record.secretHash = std::move(hash);
  adoptCredential(record);
  coreLog()->info("admin token registered id={}", record.id);
  batch.ops.push_back(PutCredentialOp{std::move(record)});
  return ctx_.commit(std::move(batch)).then([](Result<uint64_t> committed) {
    return committed.ok() ? Status() : committed.status();
  });
}

// Authority: live rights -----------------------------------------------------------------------

uint64_t Authority::watch(Identity who, uint8_t action, std::string topic,
                          std::function<void(const Status&)> close) {
  uint64_t id = nextWatchId_++;
  if (enabled_ && !who.anonymous)
    watches_.emplace(id, Watch{std::move(who), action, std::move(topic), std::move(close)});
  return id;
}

void Authority::recheck(int64_t nowMs) {
  std::vector<std::pair<uint64_t, Status>> lost;
  for (auto& [id, watch] : watches_) {
    Status still = check(watch.who, watch.action, watch.topic, nowMs);
    if (!still.ok()) lost.emplace_back(id, std::move(still));
  }
  for (auto& [id, why] : lost) {
    auto it = watches_.find(id);
    if (it == watches_.end()) continue;  // Closed by an earlier close().
    auto close = std::move(it->second.close);
    coreLog()->info("subscription closed for lost rights principal={} topic={} err={}",
                    it->second.who.principal, it->second.topic, why.message());
    watches_.erase(it);
    close(why);
  }
}

void Authority::sweep(int64_t nowMs) {
  if (!watches_.empty()) recheck(nowMs);
}

// Authority: failed authentications ------------------------------------------------------------

uint64_t Authority::penaltyMs(std::string_view peerAddress, int64_t nowMs) const {
  auto it = failures_.find(std::string(peerAddress));
  if (it == failures_.end() || nowMs - it->second.lastMs > kFailureMemoryMs ||
      it->second.count < kFailuresBeforePenalty) {
    return 0;
  }
  uint32_t doublings = std::min<uint32_t>(it->second.count - kFailuresBeforePenalty, 6);
  return std::min<uint64_t>(100ull << doublings, kMaxPenaltyMs);
}

void Authority::recordOutcome(std::string_view peerAddress, bool ok, int64_t nowMs) {
  std::string peer(peerAddress);
  if (ok) {
    failures_.erase(peer);
    return;
  }
  ctx_.metrics.authFailures.fetch_add(1, std::memory_order_relaxed);
  if (failures_.size() >= kMaxTrackedPeers && failures_.count(peer) == 0) {
    for (auto it = failures_.begin(); it != failures_.end();) {
      it = nowMs - it->second.lastMs > kFailureMemoryMs ? failures_.erase(it) : std::next(it);
    }
    if (failures_.size() >= kMaxTrackedPeers) failures_.clear();
  }
  Failures& f = failures_[peer];
  if (nowMs - f.lastMs > kFailureMemoryMs) f.count = 0;
  ++f.count;
  f.lastMs = nowMs;
  if (f.count == kFailuresBeforePenalty) {
    coreLog()->warn(
        "authentication failures peer={} count={} reason=\"answers to this address are now "
        "slowed down until it stops failing for {} s\"",
        peer, f.count, kFailureMemoryMs / 1000);
  }
}

}  // namespace sluice::core
