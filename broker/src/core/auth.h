#pragma once

// Authentication and permissions: principals with rules (action x topic pattern, allow or deny,
// deny wins), tokens and scoped grants (credentials) stored as hashes, and the check every call
// makes. A grant is minted from a credential and can do at most what its issuer can: its own
// scope and every issuer's scope up the chain, and the principal's rules, must all allow an
// action. Revoking a credential (or deleting its principal) revokes every grant minted from it.
//
// Every change is a write operation (PutPrincipalOp, DeletePrincipalOp, PutCredentialOp,
// RevokeCredentialsOp) with its time, ids and secret hash decided here. The live state changes
// at once, with the commit following (as for topics): a revocation takes effect before its
// answer, and a subscription that loses its right is closed through its watch.
// Thread: kj.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <kj/async.h>

#include "common/records.h"
#include "common/status.h"
#include "core/subjects.h"

namespace sluice::core {

class Context;

constexpr size_t kMaxRulesPerPrincipal = 1000;
constexpr size_t kMaxScopeRules = 64;
constexpr size_t kMaxPrincipals = 10000;
constexpr size_t kMaxCredentials = 100000;
constexpr size_t kMaxNoteLength = 200;
constexpr size_t kMinSecretLength = 32;  // Of a secret set by the operator (the admin token).
constexpr size_t kMaxSecretLength = 512;
constexpr uint64_t kMinGrantTtlMs = 1000;
constexpr uint64_t kMaxGrantTtlMs = 366ull * 24 * 3600 * 1000;
constexpr const char* kAdminPrincipal = "admin";
constexpr size_t kMaxGrantDepth = 8;  // A grant of a grant of ... at most this deep.

// Principal names: 1-200 characters of [A-Za-z0-9._@-] (a certificate's common name maps to
// the principal of that name).
std::optional<std::string> validatePrincipalName(std::string_view name);
// Each rule: at least one action, a valid pattern; `admin` only with the pattern `>`.
std::optional<std::string> validateRules(const std::vector<AuthRule>& rules, size_t limit);
// "publish,consume"; "nothing" for 0.
std::string actionNames(uint8_t actions);
// Whether every subject `inner` matches is matched by `outer` (both valid patterns).
bool patternCovers(std::string_view outer, std::string_view inner);

// SHA-256 of a secret, as stored.
std::string hashSecret(std::string_view secret);
// A new secret: "sluice_" and 48 hex digits (192 random bits from OpenSSL's generator).
std::string newSecret();

// What a connection is authenticated as. Copied into every service of the connection.
struct Identity {
  bool anonymous = false;   // Authentication is off: every right.
  std::string principal;    // Empty (and not anonymous): not authenticated.
  uint64_t credential = 0;  // 0: the principal itself (by its client certificate).
  bool authenticated() const { return anonymous || !principal.empty(); }
};

// A rule list compiled for the check: a trie of the patterns (the subject router's) names the
// rules that match a topic, with its cache of recent answers in front.
class RuleSet {
 public:
  explicit RuleSet(std::vector<AuthRule> rules);
  // The actions the rules allow on `topic` (a valid topic name), denies applied.
  uint8_t allowed(std::string_view topic);
  bool admin() const { return admin_; }
  // Whether an allow rule for every action of `actions` covers `pattern`.
  bool covers(uint8_t actions, std::string_view pattern) const;
  const std::vector<AuthRule>& rules() const { return rules_; }

 private:
  std::vector<AuthRule> rules_;
  SubjectRouter router_;
  bool admin_ = false;
};

struct Minted {
  CredentialRecord credential;
  std::string secret;
};

struct WhoAmI {
  Identity identity;
  std::optional<CredentialRecord> credential;
  std::vector<AuthRule> rules;  // The principal's (every right when anonymous).
};

struct PrincipalView {
  PrincipalRecord record;
  uint64_t credentials = 0;
};

class Authority {
 public:
  Authority(Context& ctx, bool enabled) : ctx_(ctx), enabled_(enabled) {}

  bool enabled() const { return enabled_; }
  void load(std::vector<PrincipalRecord> principals, std::vector<CredentialRecord> credentials,
            uint64_t nextCredentialId);
  size_t principals() const { return principals_.size(); }
  // Makes `secret` a token of the principal "admin" (created with every right if missing),
  // unless it is one already. For the operator's first credential (SLUICE_ADMIN_TOKEN).
  kj::Promise<Status> ensureAdminToken(std::string secret);

  // The identity of a connection before it authenticates: anonymous when authentication is
  // off; otherwise unauthenticated, or the principal named by its certificate's common name.
  Identity initial(std::optional<std::string> certificateName) const;
  // Errors: kUnauthenticated (unknown, expired or revoked; the message never holds the secret).
  Result<Identity> authenticate(std::string_view secret, int64_t nowMs);

  // kUnauthenticated when the identity is not (or no longer) valid, kPermissionDenied when
  // its rights do not hold `action` (one AuthAction) on `topic`, else ok. A topic name that is
  // not valid is left for the call to refuse. The message names the action and the topic.
  Status check(const Identity& who, uint8_t action, std::string_view topic, int64_t nowMs);
  // Any of `actions` (describing and listing need one of publish, consume, manage).
  Status checkAny(const Identity& who, uint8_t actions, std::string_view topic, int64_t nowMs);
  Status checkAdmin(const Identity& who, int64_t nowMs);
  Status checkValid(const Identity& who, int64_t nowMs);  // Authenticated, not revoked.

  Result<WhoAmI> whoami(const Identity& who, int64_t nowMs);
  kj::Promise<Result<PrincipalView>> putPrincipal(const Identity& who, std::string name,
                                                  std::vector<AuthRule> rules, bool create);
  kj::Promise<Result<uint64_t>> deletePrincipal(const Identity& who, std::string name);
  Result<std::vector<PrincipalView>> listPrincipals(const Identity& who, int64_t nowMs);
  kj::Promise<Result<Minted>> createToken(const Identity& who, std::string principal,
                                          std::string note, uint64_t ttlMs);
  kj::Promise<Result<Minted>> mintGrant(const Identity& who, std::vector<AuthRule> scope,
                                        uint64_t ttlMs, std::string note);
  kj::Promise<Result<uint64_t>> revoke(const Identity& who, uint64_t id);
  Result<std::vector<CredentialRecord>> listCredentials(const Identity& who,
                                                        std::string_view principal, int64_t nowMs);

  // Live rights: `close` is called (once, and the watch dropped) when a change, or the end of
  // the credential's life, leaves `who` without `action` on `topic`.
  uint64_t watch(Identity who, uint8_t action, std::string topic,
                 std::function<void(const Status&)> close);
  void unwatch(uint64_t id) { watches_.erase(id); }
  // Closes the watches whose credential expired by nowMs (called by the periodic work).
  void sweep(int64_t nowMs);

  // Failed authentications per peer address: how long to hold the next attempt's answer
  // (0 for a peer without recent failures), and the bookkeeping of an outcome. The first
  // failure of a burst is logged.
  uint64_t penaltyMs(std::string_view peerAddress, int64_t nowMs) const;
  void recordOutcome(std::string_view peerAddress, bool ok, int64_t nowMs);

 private:
  struct Principal {
    PrincipalRecord record;
    std::unique_ptr<RuleSet> rules;
    uint64_t credentials = 0;
  };
  struct Credential {
    CredentialRecord record;
    std::unique_ptr<RuleSet> scope;  // Scoped only.
  };
  struct Watch {
    Identity who;
    uint8_t action = 0;
    std::string topic;
    std::function<void(const Status&)> close;
  };
  struct Failures {
    uint32_t count = 0;
    int64_t lastMs = 0;
  };

  // A credential and its issuers, the credential first (no allocation on the check's path).
  struct Chain {
    Credential* items[kMaxGrantDepth + 1] = {};
    size_t size = 0;
    Credential** begin() { return items; }
    Credential** end() { return items + size; }
    bool empty() const { return size == 0; }
    Credential* front() const { return items[0]; }
  };
  // The identity's principal and credential chain, or why not.
  Status resolve(const Identity& who, int64_t nowMs, Principal** principal, Chain* chain);
  uint8_t allowed(Principal& principal, Chain& chain, std::string_view topic);
  // `id` and every credential minted from it, directly or not.
  std::vector<uint64_t> descendants(uint64_t id) const;
  void adoptPrincipal(const PrincipalRecord& record);
  void adoptCredential(const CredentialRecord& record);
  void dropCredentials(const std::vector<uint64_t>& ids);
  Minted newCredential(std::string principal, uint64_t issuer, bool scoped,
                       std::vector<AuthRule> scope, int64_t expiresAtMs, std::string note,
                       int64_t nowMs);
  kj::Promise<Result<Minted>> commitMinted(Minted minted);
  // Re-checks every watch after a change.
  void recheck(int64_t nowMs);

  Context& ctx_;
  const bool enabled_;
  std::map<std::string, Principal, std::less<>> principals_;
  std::map<uint64_t, Credential> credentials_;
  std::unordered_map<std::string, uint64_t> byHash_;
  std::multimap<uint64_t, uint64_t> minted_;  // Issuer -> credentials minted from it.
  uint64_t nextCredentialId_ = 1;
  std::map<uint64_t, Watch> watches_;
  uint64_t nextWatchId_ = 1;
  std::unordered_map<std::string, Failures> failures_;
};

}  // namespace sluice::core
