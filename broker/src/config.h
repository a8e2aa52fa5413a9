#pragma once

// sluiced's configuration: the flag definitions, the TOML config file and the SLUICE_*
// environment variables. Precedence, lowest to highest (as issue 6 specifies):
//
//   built-in defaults  <  --config FILE  <  command-line flags  <  SLUICE_* variables
//
// Every setting has one name in each layer: file key `max_storage`, flag `--max-storage`,
// variable `SLUICE_MAX_STORAGE`. Thread: main, before any other thread starts.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace sluice::daemon {

// The smallest storage limit sluiced accepts.
constexpr uint64_t kMinStorageBytes = 16ull << 20;

// The effective settings of one sluiced run. Each field states its default.
struct Config {
  std::string data = "./data";            // Store directory; created if missing.
  std::string listen = "127.0.0.1:7400";  // RPC HOST:PORT; port 0 picks a free one.
  std::string admin = "127.0.0.1:7401";   // Admin HTTP HOST:PORT; port 0 picks a free one.
  // Storage limit in bytes; 0 is "auto": half of what the data directory's filesystem could
  // hold (its free space plus the store's current size), at least kMinStorageBytes.
  uint64_t maxStorage = 0;
  std::string logLevel = "info";   // trace, debug, info, warn, error, critical, off.
  std::string logFormat = "text";  // text or json (one object per line).
  bool autoCreateTopics = false;
  std::string durability = "sync";  // sync, or the opt-in async.
  // RPC connections served at once; further ones are refused with an error naming the limit.
  uint32_t maxConnections = 10000;
  // Bytes the write log may keep (its entries, and bodies removed while their entry is kept),
  // for a reader such as a follower or `--replay-log`. 0: keep nothing, so a single broker
  // writes each payload once; sequence numbers advance regardless.
  uint64_t writeLogWindow = 0;
  // With a window: entries committed at least this long ago are dropped too. 0: no age bound.
  uint64_t writeLogMaxAgeMs = 0;
  // Replication (see cluster/README.md). A leader serves its write log on replicationListen (a
  // loopback HOST:PORT; empty: none) and acknowledges a write once minInsync members (itself
  // included) hold it; a follower pulls from the leader at `follow` (empty: none) and serves no
  // clients. A follower not caught up for replicaTimeoutMs leaves the in-sync set.
  std::string replicationListen;
  std::string follow;
  // etcd client endpoints (host:port, comma-separated): the cluster's control plane. Given, the
  // broker joins cluster clusterId as brokerId, and etcd decides whether it leads (serving
  // clients on `listen`, followers on replicationListen) or follows the leader.
  std::string etcd;
  std::string clusterId = "sluice";
  std::string brokerId;
  uint32_t minInsync = 2;
  uint64_t replicaTimeoutMs = 5000;
  // RPC over TLS on this HOST:PORT, beside `listen`; empty: no TLS listener. Needs tlsCert and
  // tlsKey (PEM files, checked at start-up); with tlsClientCa (a PEM CA bundle), clients must
  // present a certificate one of those CAs signed.
  std::string listenTls;
  std::string tlsCert;
  std::string tlsKey;
  std::string tlsClientCa;
  // Listen on addresses other than loopback for clients that present no credential. Off, a
  // `listen` (or a `listen_tls` without tlsClientCa) that is not loopback is refused.
  bool allowAnonymous = false;
  // Clients authenticate (a token, a grant, or a client certificate naming a principal) and
  // every call is checked against their principal's rules (see README "Security").
  bool auth = false;
  // A file holding the first admin token (32 to 512 characters, the file's first line): made a
  // token of the principal "admin" at start-up unless it is one. SLUICE_ADMIN_TOKEN may hold
  // the token itself instead.
  std::string adminTokenFile;
  // Host names (comma-separated) besides localhost, 127.0.0.1, [::1] and the admin address's
  // host that browsers may send in Host to reach the console and HTTP API.
  std::string adminHosts;
};

enum class Mode {
  kServe,
  kCheck,        // --check: verify the store and exit.
  kPrintConfig,  // --print-config: print the effective configuration as TOML and exit 0.
  kDump,         // --dump: print a logical dump of the store and exit.
  kReplayLog,    // --replay-log SRC: apply SRC's write log to the empty --data store and exit.
};

struct Invocation {
  Config config;
  Mode mode = Mode::kServe;
  std::string replaySource;  // For kReplayLog: the data directory whose log is applied.
};

// What parseCommandLine decided: run `invocation`, or exit with `exitCode` (0 after --help or
// --version; 2 after an invalid command line or configuration, with one message on stderr).
struct ParseOutcome {
  std::optional<Invocation> invocation;
  int exitCode = 0;
};

// Reads an environment variable; nullopt when unset. Tests pass their own.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;
EnvLookup processEnvironment();

// Defines the flags, parses argv, then layers defaults, the --config file, the flags given
// and the SLUICE_* variables. Prints --help/--version output and error messages itself.
ParseOutcome parseCommandLine(int argc, const char* const* argv,
                              const EnvLookup& env = processEnvironment());

// The layers one by one. Each returns kInvalidArgument with a one-line message that names the
// key (and where it came from), the bad value and what is allowed; `config` may then be
// partly updated.
//
// `text` is a TOML document; `source` names it in messages (the file's path). Unknown keys,
// tables and wrongly typed values are errors.
Status applyToml(std::string_view text, const std::string& source, Config& config);
// Reads `path` and applies it; an unreadable file is an error naming the path.
Status applyFile(const std::string& path, Config& config);
// Applies every SLUICE_* variable that is set and not empty.
Status applyEnvironment(const EnvLookup& env, Config& config);
// Settings that depend on each other, checked once every layer is applied (kInvalidArgument
// naming both keys).
Status checkCombination(const Config& config);

// The configuration as a TOML document that --config accepts (max_storage 0 is "auto").
std::string toToml(const Config& config);

// "auto" -> 0; otherwise <digits>[unit] with KiB MiB GiB TiB (powers of 1024), KB MB GB TB
// (powers of 1000) or B, case-insensitive, at least kMinStorageBytes. The problem otherwise.
Result<uint64_t> parseStorageSize(std::string_view text);

}  // namespace sluice::daemon
