#include "config.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <sstream>
#include <variant>
#include <vector>

#include <arpa/inet.h>

#include <toml++/toml.h>
#include <CLI/CLI.hpp>

#include "common/text.h"
#include "net/host_port.h"
#include "parse.h"

namespace sluice::daemon {
namespace {

constexpr const char* kPrecedence =
    "built-in defaults < --config file < command-line flags < SLUICE_* environment variables";

// A setting's value as TOML types it.
using Shown = std::variant<std::string, int64_t, bool>;

// One setting: its names in the three layers and how to read it from text.
struct Key {
  const char* name;  // File key.
  const char* flag;  // Command-line flag.
  const char* env;   // Environment variable.
  const char* type;  // Value placeholder in --help.
  const char* help;  // Flag help; the default is appended.
  // What a valid value looks like, for error messages.
  const char* allowed;
  // Sets the field from `text`; false when the text is not allowed.
  bool (*set)(Config& config, std::string_view text);
  // The field's value, as toToml writes it and the help text shows it.
  Shown (*show)(const Config& config);
};

// `value` as TOML writes it (strings quoted and escaped by toml++).
// toml++'s formatting, with strings always in basic ("...") form.
constexpr toml::format_flags kTomlFlags =
    toml::toml_formatter::default_flags & ~toml::format_flags::allow_literal_strings;

template <typename T>
std::string tomlText(T value) {
  toml::value<T> node(std::move(value));
  std::ostringstream out;
  out << toml::toml_formatter(node, kTomlFlags);
  return out.str();
}

std::string quote(std::string_view text) {
  return tomlText(std::string(text));
}

std::string shownText(const Shown& shown) {
  return std::visit([](const auto& v) { return tomlText(v); }, shown);
}

bool isOneOf(std::string_view text, std::initializer_list<std::string_view> allowed) {
  for (auto a : allowed)
    if (text == a) return true;
  return false;
}

bool validHostPort(std::string_view text) {
  return net::parseHostPort(text, nullptr).has_value();
}

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

// "true"/"1" or "false"/"0" (any case) into `out`; false for anything else.
bool setBool(bool& out, std::string_view text) {
  std::string v = lower(text);
  if (v == "true" || v == "1") {
    out = true;
  } else if (v == "false" || v == "0") {
    out = false;
  } else {
    return false;
  }
  return true;
}

// localhost, 127.0.0.0/8 or ::1. Any other name counts as not loopback: it is not resolved here.
bool isLoopbackHost(const std::string& host) {
  if (lower(host) == "localhost") return true;
  in_addr v4{};
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  return inet_pton(AF_INET6, host.c_str(), &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}

std::string showSize(uint64_t bytes) {
  if (bytes == 0) return "auto";
  const struct {
    uint64_t factor;
    const char* unit;
  } units[] = {{1ull << 40, "TiB"}, {1ull << 30, "GiB"}, {1ull << 20, "MiB"}, {1ull << 10, "KiB"}};
  for (const auto& u : units) {
    if (bytes % u.factor == 0) return std::to_string(bytes / u.factor) + u.unit;
  }
  return std::to_string(bytes);
}

// Exact, in the largest unit that divides it: 90000 -> 90s, 5400000 -> 90m.
std::string showDuration(uint64_t ms) {
  if (ms == 0) return "0";
  const struct {
    uint64_t factor;
    const char* unit;
  } units[] = {{86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}, {1, "ms"}};
  for (const auto& u : units) {
    if (ms % u.factor == 0) return std::to_string(ms / u.factor) + u.unit;
  }
  return std::to_string(ms) + "ms";
}

const char* const kSizeAllowed =
    "\"auto\" or a size of at least 16MiB: <digits>[unit] with unit KiB, MiB, GiB, TiB "
    "(powers of 1024), KB, MB, GB, TB (powers of 1000) or B, e.g. 512MiB or 20GiB";
const char* const kAddressAllowed =
    "HOST:PORT with a port from 0 to 65535 (0 picks a free port), e.g. 127.0.0.1:7400, "
    "0.0.0.0:7400 or [::1]:7400";

const Key kKeys[] = {
    {"data", "--data", "SLUICE_DATA", "DIR", "Directory of the store (created if missing)",
     "a non-empty directory path",
     [](Config& c, std::string_view t) {
       if (t.empty()) return false;
       c.data = std::string(t);
       return true;
     },
     [](const Config& c) { return Shown(std::string(c.data)); }},
    {"listen", "--listen", "SLUICE_LISTEN", "HOST:PORT",
     "RPC address HOST:PORT; port 0 picks a free one", kAddressAllowed,
     [](Config& c, std::string_view t) {
       if (!validHostPort(t)) return false;
       c.listen = std::string(t);
       return true;
     },
     [](const Config& c) { return Shown(std::string(c.listen)); }},
    {"admin", "--admin", "SLUICE_ADMIN", "HOST:PORT",
     "Admin HTTP address HOST:PORT for /metrics, /healthz, /readyz, the HTTP API (/api/v1) and "
     "the web console (/ui/); port 0 picks a free one",
     kAddressAllowed,
     [](Config& c, std::string_view t) {
       if (!validHostPort(t)) return false;
       c.admin = std::string(t);
       return true;
     },
     [](const Config& c) { return Shown(std::string(c.admin)); }},
    {"max_storage", "--max-storage", "SLUICE_MAX_STORAGE", "SIZE",
     "Storage limit, e.g. 512MiB or 20GiB; auto: half of the free disk", kSizeAllowed,
     [](Config& c, std::string_view t) {
       auto size = parseStorageSize(t);
       if (!size.ok()) return false;
       c.maxStorage = size.value();
       return true;
     },
     [](const Config& c) { return Shown(std::string(showSize(c.maxStorage))); }},
    {"log_level", "--log-level", "SLUICE_LOG_LEVEL", "LEVEL", "Least severe log level written",
     "one of trace, debug, info, warn, error, critical, off",
     [](Config& c, std::string_view t) {
       if (!isOneOf(t, {"trace", "debug", "info", "warn", "error", "critical", "off"}))
         return false;
       c.logLevel = std::string(t);
       return true;
     },
     [](const Config& c) { return Shown(std::string(c.logLevel)); }},
    {"log_format", "--log-format", "SLUICE_LOG_FORMAT", "FORMAT",
     "text, or json: one object per line with ts, level, logger, msg", "text or json",
     [](Config& c, std::string_view t) {
       if (!isOneOf(t, {"text", "json"})) return false;
       c.logFormat = std::string(t);
       return true;
     },
     [](const Config& c) { return Shown(std::string(c.logFormat)); }},
    {"auto_create_topics", "--auto-create-topics", "SLUICE_AUTO_CREATE_TOPICS", "BOOL",
     "Create a topic with default settings on its first publish (--auto-create-topics=false "
     "turns it off)",
     "true or false (also 1 or 0)",
     [](Config& c, std::string_view t) { return setBool(c.autoCreateTopics, t); },
     [](const Config& c) { return Shown(c.autoCreateTopics); }},
    {"durability", "--durability", "SLUICE_DURABILITY", "MODE",
     "sync: acknowledge after fsync; async: OPT-IN, acknowledge before fsync, may lose the last "
     "acknowledged messages on a crash",
     "sync or async",
     [](Config& c, std::string_view t) {
       if (!isOneOf(t, {"sync", "async"})) return false;
       c.durability = std::string(t);
       return true;
     },
     [](const Config& c) { return Shown(std::string(c.durability)); }},
    {"max_connections", "--max-connections", "SLUICE_MAX_CONNECTIONS", "N",
     "RPC connections served at once; further ones are refused with an error naming the limit",
     "an integer from 1 to 1000000",
     [](Config& c, std::string_view t) {
       if (t.empty() || t.size() > 7 || t.find_first_not_of("0123456789") != t.npos) return false;
       uint32_t n = static_cast<uint32_t>(std::stoul(std::string(t)));
       if (n < 1 || n > 1000000) return false;
       c.maxConnections = n;
       return true;
     },
     [](const Config& c) { return Shown(int64_t{c.maxConnections}); }},
    {"write_log_window", "--write-log-window", "SLUICE_WRITE_LOG_WINDOW", "SIZE",
     "Bytes of write log kept for readers (a follower, --replay-log); 0 keeps none and costs "
     "nothing",
     "0, or a size of at least 16MiB: <digits>[unit] with unit KiB, MiB, GiB, TiB, KB, MB, GB, TB "
     "or B, e.g. 1GiB",
     [](Config& c, std::string_view t) {
       if (t == "0") {
         c.writeLogWindow = 0;
         return true;
       }
       auto size = parseStorageSize(t);
       if (!size.ok() || size.value() == 0) return false;
       c.writeLogWindow = size.value();
       return true;
     },
     [](const Config& c) {
       return Shown(c.writeLogWindow == 0 ? std::string("0") : showSize(c.writeLogWindow));
     }},
    {"write_log_max_age", "--write-log-max-age", "SLUICE_WRITE_LOG_MAX_AGE", "DUR",
     "With a write log window: also drop log entries committed this long ago (checked at each "
     "commit); 0: no age bound",
     "0, or a duration of one or more <digits><unit> groups with unit ms, s, m, h or d, e.g. "
     "30m, 24h or 1h30m (needs write_log_window)",
     [](Config& c, std::string_view t) {
       auto age = cli::parseDuration(t);
       if (!age.ok()) return false;
       c.writeLogMaxAgeMs = static_cast<uint64_t>(age.value->count());
       return true;
     },
     [](const Config& c) { return Shown(showDuration(c.writeLogMaxAgeMs)); }},
    {"replication_listen", "--replication-listen", "SLUICE_REPLICATION_LISTEN", "HOST:PORT",
     "Serve this broker's write log to followers on HOST:PORT (a loopback address; port 0 picks "
     "one) and acknowledge each write only once min_insync members hold it; empty: none",
     "empty, or a loopback HOST:PORT with a port from 0 to 65535, e.g. 127.0.0.1:7402",
     [](Config& c, std::string_view t) {
       if (!t.empty() && !validHostPort(t)) return false;
       c.replicationListen = std::string(t);
       return true;
     },
     [](const Config& c) { return Shown(std::string(c.replicationListen)); }},
    {"follow", "--follow", "SLUICE_FOLLOW", "HOST:PORT",
     "Be a follower: pull and apply the write log of the leader whose replication_listen is "
     "HOST:PORT (no client listener meanwhile); empty: serve clients",
     "empty, or HOST:PORT with a port from 1 to 65535",
     [](Config& c, std::string_view t) {
       if (!t.empty() && (!validHostPort(t) || t.substr(t.rfind(':') + 1) == "0")) return false;
       c.follow = std::string(t);
       return true;
     },
     [](const Config& c) { return Shown(std::string(c.follow)); }},
    {"etcd", "--etcd", "SLUICE_ETCD", "ENDPOINTS",
     "etcd client endpoints HOST:PORT[,HOST:PORT...]: join a cluster whose leader etcd decides "
     "(needs broker_id, and fixed ports in listen and replication_listen); empty: no cluster",
     "empty, or HOST:PORT addresses separated by commas",
     [](Config& c, std::string_view t) {
       if (!t.empty()) {
         for (std::string_view endpoint : net::splitList(t))
           if (!validHostPort(endpoint)) return false;
       }
       c.etcd = std::string(t);
       return true;
     },
     [](const Config& c) { return Shown(std::string(c.etcd)); }},
    {"cluster_id", "--cluster-id", "SLUICE_CLUSTER_ID", "ID",
     "The cluster's name: a leader serves only followers that name the same one",
     "1 to 64 of A-Z, a-z, 0-9, '.', '_', '-'",
     [](Config& c, std::string_view t) {
       if (!isIdText(t)) return false;
       c.clusterId = std::string(t);
       return true;
     },
     [](const Config& c) { return Shown(std::string(c.clusterId)); }},
    {"broker_id", "--broker-id", "SLUICE_BROKER_ID", "ID",
     "This broker's name in its cluster (a follower needs one); empty: none",
     "empty, or 1 to 64 of A-Z, a-z, 0-9, '.', '_', '-'",
     [](Config& c, std::string_view t) {
       if (!t.empty() && !isIdText(t)) return false;
       c.brokerId = std::string(t);
       return true;
     },
     [](const Config& c) { return Shown(std::string(c.brokerId)); }},
    {"min_insync", "--min-insync", "SLUICE_MIN_INSYNC", "N",
     "With replication_listen: members (this broker included) that must hold a write before it "
     "is acknowledged; with fewer in sync, writes wait",
     "an integer from 1 to 16",
     [](Config& c, std::string_view t) {
       if (t.empty() || t.size() > 2 || t.find_first_not_of("0123456789") != t.npos) return false;
       uint32_t n = static_cast<uint32_t>(std::stoul(std::string(t)));
       if (n < 1 || n > 16) return false;
       c.minInsync = n;
       return true;
     },
     [](const Config& c) { return Shown(int64_t{c.minInsync}); }},
    {"replica_timeout", "--replica-timeout", "SLUICE_REPLICA_TIMEOUT", "DUR",
     "A follower not caught up for this long leaves the in-sync set (acknowledgements stop "
     "waiting for it) until it catches up again",
     "a duration from 100ms to 1h, e.g. 5s",
     [](Config& c, std::string_view t) {
       auto age = cli::parseDuration(t);
       if (!age.ok() || age.value->count() < 100 || age.value->count() > 3600000) return false;
       c.replicaTimeoutMs = static_cast<uint64_t>(age.value->count());
       return true;
     },
     [](const Config& c) { return Shown(showDuration(c.replicaTimeoutMs)); }},
    {"listen_tls", "--listen-tls", "SLUICE_LISTEN_TLS", "HOST:PORT",
     "RPC over TLS on HOST:PORT (port 0 picks a free one), beside --listen; needs --tls-cert "
     "and --tls-key; empty: none",
     "empty, or HOST:PORT with a port from 0 to 65535, e.g. 0.0.0.0:7443",
     [](Config& c, std::string_view t) {
       if (!t.empty() && !validHostPort(t)) return false;
       c.listenTls = std::string(t);
       return true;
     },
     [](const Config& c) { return Shown(std::string(c.listenTls)); }},
    {"tls_cert", "--tls-cert", "SLUICE_TLS_CERT", "FILE",
     "PEM certificate chain (leaf first) of the TLS listener; given, the admin endpoint serves "
     "HTTPS with it",
     "a file path, or empty",
     [](Config& c, std::string_view t) {
       c.tlsCert = std::string(t);
       return true;
     },
     [](const Config& c) { return Shown(std::string(c.tlsCert)); }},
    {"tls_key", "--tls-key", "SLUICE_TLS_KEY", "FILE",
     "PEM private key of --tls-cert (not encrypted)", "a file path, or empty",
     [](Config& c, std::string_view t) {
       c.tlsKey = std::string(t);
       return true;
     },
     [](const Config& c) { return Shown(std::string(c.tlsKey)); }},
    {"tls_client_ca", "--tls-client-ca", "SLUICE_TLS_CLIENT_CA", "FILE",
     "PEM CA bundle: TLS clients must present a certificate one of these signed (mutual TLS)",
     "a file path, or empty",
     [](Config& c, std::string_view t) {
       c.tlsClientCa = std::string(t);
       return true;
     },
     [](const Config& c) { return Shown(std::string(c.tlsClientCa)); }},
    {"allow_anonymous", "--allow-anonymous", "SLUICE_ALLOW_ANONYMOUS", "BOOL",
     "Serve clients that present no credential on addresses other than loopback (refused "
     "otherwise: anyone who reaches the port could read, publish and delete every topic)",
     "true or false (also 1 or 0)",
     [](Config& c, std::string_view t) { return setBool(c.allowAnonymous, t); },
     [](const Config& c) { return Shown(c.allowAnonymous); }},
    {"auth", "--auth", "SLUICE_AUTH", "BOOL",
     "Clients authenticate with a token, a grant or a client certificate, and every call is "
     "checked against their principal's rules",
     "true or false (also 1 or 0)",
     [](Config& c, std::string_view t) { return setBool(c.auth, t); },
     [](const Config& c) { return Shown(c.auth); }},
    {"admin_hosts", "--admin-hosts", "SLUICE_ADMIN_HOSTS", "HOSTS",
     "Further host names (comma-separated) under which browsers may reach the console and the "
     "HTTP API; localhost, 127.0.0.1, [::1] and the admin address's host always may (others are "
     "refused: DNS rebinding)",
     "empty, or host names and addresses separated by commas, e.g. broker1.example,10.0.0.5",
     [](Config& c, std::string_view t) {
       if (t.find_first_not_of(
               "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[],_") !=
           std::string_view::npos)
         return false;
       c.adminHosts = std::string(t);
       return true;
     },
     [](const Config& c) { return Shown(std::string(c.adminHosts)); }},
    {"admin_token_file", "--admin-token-file", "SLUICE_ADMIN_TOKEN_FILE", "FILE",
     "File whose first line is the first admin token (32 to 512 characters), registered at "
     "start-up for the principal \"admin\"; SLUICE_ADMIN_TOKEN may hold the token instead",
     "a file path, or empty",
     [](Config& c, std::string_view t) {
       c.adminTokenFile = std::string(t);
       return true;
     },
     [](const Config& c) { return Shown(std::string(c.adminTokenFile)); }},
};

bool isBoolKey(const Key& key) {
  return std::string_view(key.type) == "BOOL";
}

std::string allKeyNames() {
  std::string names;
  for (const Key& key : kKeys) {
    if (!names.empty()) names += ", ";
    names += key.name;
  }
  return names;
}

Status invalid(const Key& key, const std::string& shownValue, const std::string& from) {
  return Status(Code::kInvalidArgument, std::string(key.name) + " = " + shownValue + " (from " +
                                            from + "): must be " + key.allowed);
}

// Applies `text` for `key`; `shown` is how the value appears in a message.
Status setFromText(const Key& key, std::string_view text, const std::string& shown,
                   const std::string& from, Config& config) {
  if (!key.set(config, text)) return invalid(key, shown, from);
  return Status();
}

std::string showNode(const toml::node& node) {
  if (auto s = node.as_string()) return quote(s->get());
  if (auto i = node.as_integer()) return std::to_string(i->get());
  if (auto b = node.as_boolean()) return b->get() ? "true" : "false";
  if (auto f = node.as_floating_point()) {
    std::ostringstream out;
    out << f->get();
    return out.str();
  }
  if (node.is_table()) return "a table";
  if (node.is_array()) return "an array";
  return "a date or time";
}

std::string whereIn(const std::string& source, const toml::node& node) {
  auto line = node.source().begin.line;
  return line > 0 ? source + " line " + std::to_string(line) : source;
}

}  // namespace

Result<uint64_t> parseStorageSize(std::string_view text) {
  auto fail = [&]() {
    return Status(Code::kInvalidArgument,
                  "storage size " + quote(text) + " must be " + std::string(kSizeAllowed));
  };
  if (text == "auto") return uint64_t{0};
  size_t digits = 0;
  uint64_t value = 0;
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') {
    uint64_t d = static_cast<uint64_t>(text[digits] - '0');
    if (value > (kMax - d) / 10) return fail();
    value = value * 10 + d;
    ++digits;
  }
  if (digits == 0) return fail();
  static const std::map<std::string, uint64_t> kUnits = {
      {"", 1},
      {"b", 1},
      {"kib", 1ull << 10},
      {"mib", 1ull << 20},
      {"gib", 1ull << 30},
      {"tib", 1ull << 40},
      {"kb", 1000ull},
      {"mb", 1000ull * 1000},
      {"gb", 1000ull * 1000 * 1000},
      {"tb", 1000ull * 1000 * 1000 * 1000},
  };
  auto unit = kUnits.find(lower(text.substr(digits)));
  if (unit == kUnits.end()) return fail();
  if (value > kMax / unit->second) return fail();
  value *= unit->second;
  if (value < kMinStorageBytes) return fail();
  return value;
}

EnvLookup processEnvironment() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  };
}

Status applyToml(std::string_view text, const std::string& source, Config& config) {
  toml::table table;
  try {
    table = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    const auto& at = e.source().begin;
    return Status(Code::kInvalidArgument, source + " line " + std::to_string(at.line) + " column " +
                                              std::to_string(at.column) +
                                              ": not valid TOML: " + std::string(e.description()));
  }
  for (const auto& [name, node] : table) {
    const Key* key = nullptr;
    for (const Key& k : kKeys)
      if (name.str() == k.name) key = &k;
    std::string from = whereIn(source, node);
    if (key == nullptr) {
      return Status(Code::kInvalidArgument, "unknown key " + quote(name.str()) + " (in " + from +
                                                "); allowed keys: " + allKeyNames());
    }
    std::string shown = showNode(node);
    std::string keyName = key->name;
    if (auto s = node.as_string()) {
      // A boolean spelled as a string would hide a typo; the file is typed.
      if (isBoolKey(*key)) return invalid(*key, shown, from);
      Status status = setFromText(*key, s->get(), shown, from, config);
      if (!status.ok()) return status;
    } else if (auto b = node.as_boolean(); b && isBoolKey(*key)) {
      key->set(config, b->get() ? "true" : "false");
    } else if (auto n = node.as_integer(); n && std::string_view(key->type) == "N") {
      Status status = setFromText(*key, std::to_string(n->get()), shown, from, config);
      if (!status.ok()) return status;
    } else if (auto i = node.as_integer(); i && keyName == "max_storage") {
      int64_t bytes = i->get();
      if (bytes < static_cast<int64_t>(kMinStorageBytes)) return invalid(*key, shown, from);
      config.maxStorage = static_cast<uint64_t>(bytes);
    } else {
      return invalid(*key, shown, from);
    }
  }
  return Status();
}

Status applyFile(const std::string& path, Config& config) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Status(Code::kInvalidArgument,
                  "--config " + quote(path) + ": cannot read the file: " + std::strerror(errno));
  }
  std::ostringstream text;
  text << in.rdbuf();
  return applyToml(text.str(), path, config);
}

Status applyEnvironment(const EnvLookup& env, Config& config) {
  for (const Key& key : kKeys) {
    auto value = env(key.env);
    // Empty counts as unset, as `docker run -e SLUICE_DATA=` or an empty systemd
    // Environment= line would produce.
    if (!value || value->empty()) continue;
    Status status = setFromText(key, *value, quote(*value), key.env, config);
    if (!status.ok()) return status;
  }
  return Status();
}

std::string toToml(const Config& config) {
  toml::table table;
  for (const Key& key : kKeys)
    std::visit([&](const auto& v) { table.insert(key.name, v); }, key.show(config));
  std::ostringstream out;
  out << "# sluiced effective configuration. Precedence: " << kPrecedence << ".\n"
      << toml::toml_formatter(table, kTomlFlags) << "\n";
  return out.str();
}

Status checkCombination(const Config& config) {
  if (config.writeLogMaxAgeMs > 0 && config.writeLogWindow == 0) {
    return Status(Code::kInvalidArgument,
                  "write_log_max_age = " + showDuration(config.writeLogMaxAgeMs) +
                      " needs write_log_window: at 0 the write log keeps nothing; set a window "
                      "such as 1GiB, or write_log_max_age = 0");
  }
  if (!config.etcd.empty()) {
    auto fixedPort = [](const std::string& address) {
      return !address.empty() && address.substr(address.rfind(':') + 1) != "0";
    };
    if (config.brokerId.empty()) {
      return Status(Code::kInvalidArgument, "etcd = " + quote(config.etcd) +
                                                " needs broker_id: this broker's name in the "
                                                "cluster");
    }
    if (!config.follow.empty()) {
      return Status(Code::kInvalidArgument, "etcd = " + quote(config.etcd) +
                                                " and follow = " + quote(config.follow) +
                                                ": in a cluster, etcd decides whom to follow");
    }
    if (!fixedPort(config.replicationListen) || !fixedPort(config.listen)) {
      return Status(Code::kInvalidArgument,
                    "etcd = " + quote(config.etcd) +
                        " needs fixed ports in listen and replication_listen (got " +
                        quote(config.listen) + " and " + quote(config.replicationListen) +
                        "): the other brokers and the clients find a new leader there");
    }
    if (!config.listenTls.empty() && !fixedPort(config.listenTls)) {
      return Status(Code::kInvalidArgument,
                    "etcd = " + quote(config.etcd) + " needs a fixed port in listen_tls (got " +
                        quote(config.listenTls) + "): TLS clients find a new leader there");
    }
  }
  if (!config.replicationListen.empty() && !config.follow.empty()) {
    return Status(Code::kInvalidArgument,
                  "replication_listen = " + quote(config.replicationListen) +
                      " and follow = " + quote(config.follow) +
                      ": a broker either leads (serves its log) or follows, not both");
  }
  if (!config.follow.empty() && config.brokerId.empty()) {
    return Status(Code::kInvalidArgument,
                  "follow = " + quote(config.follow) +
                      " needs broker_id: the leader tells its followers apart by their ids");
  }
  if ((!config.follow.empty() || !config.replicationListen.empty()) &&
      config.durability != "sync") {
    return Status(Code::kInvalidArgument,
                  "durability = " + quote(config.durability) +
                      " cannot be replicated: a leader ships only fsync'd batches and a follower "
                      "counts only fsync'd ones; use durability = \"sync\"");
  }
  if (!config.replicationListen.empty()) {
    // Followers are not authenticated yet: the replication port is for this machine alone.
    std::string problem;
    auto host = net::parseHostPort(config.replicationListen, &problem);
    if (host && !isLoopbackHost(host->host)) {
      return Status(Code::kInvalidArgument,
                    "replication_listen = " + quote(config.replicationListen) +
                        " is not a loopback address: followers are not authenticated yet, and "
                        "anyone who reaches the port could read every message. Use 127.0.0.1");
    }
  }
  if (!config.listenTls.empty() && (config.tlsCert.empty() || config.tlsKey.empty())) {
    return Status(Code::kInvalidArgument,
                  "listen_tls = " + quote(config.listenTls) +
                      " needs tls_cert and tls_key: the listener's certificate and its key");
  }
  if (!config.adminTokenFile.empty() && !config.auth) {
    return Status(Code::kInvalidArgument, "admin_token_file = " + quote(config.adminTokenFile) +
                                              " is used only with auth = true");
  }
  if (!config.allowAnonymous && !config.auth) {
    // Without authentication, only a TLS listener that requires client certificates knows who
    // is calling; any other listener is for this machine alone unless asked.
    std::string problem;
    auto open = [&](const char* key, const std::string& address) {
      auto host = net::parseHostPort(address, &problem);
      if (!host || isLoopbackHost(host->host)) return Status();
      return Status(Code::kInvalidArgument,
                    std::string(key) + " = " + quote(address) +
                        " is not a loopback address, and clients there would need no "
                        "credential: anyone who reaches it could read, publish and delete every "
                        "topic. Listen on 127.0.0.1, turn on authentication (auth = true), "
                        "require client certificates (listen_tls with tls_client_ca), or set "
                        "allow_anonymous = true");
    };
    Status plain = open("listen", config.listen);
    if (!plain.ok()) return plain;
    // The admin endpoint's HTTP API can do all of that too.
    Status admin = open("admin", config.admin);
    if (!admin.ok()) return admin;
    if (!config.listenTls.empty() && config.tlsClientCa.empty()) {
      Status tls = open("listen_tls", config.listenTls);
      if (!tls.ok()) return tls;
    }
  }
  if (config.listenTls.empty()) {
    for (const auto& [name, value] :
         {std::pair<const char*, const std::string&>{"tls_cert", config.tlsCert},
          {"tls_key", config.tlsKey},
          {"tls_client_ca", config.tlsClientCa}}) {
      if (!value.empty()) {
        return Status(Code::kInvalidArgument,
                      std::string(name) + " = " + quote(value) +
                          " is used only by the TLS listener: set listen_tls = \"HOST:PORT\" "
                          "too, or leave " +
                          name + " empty");
      }
    }
  }
  return Status();
}

ParseOutcome parseCommandLine(int argc, const char* const* argv, const EnvLookup& env) {
  const Config defaults;
  CLI::App app{"sluiced: the Sluice message broker"};
  app.set_version_flag("--version", SLUICE_VERSION);
  std::string configPath;
  bool check = false;
  bool printConfig = false;
  bool dump = false;
  std::string replaySource;
  app.add_option("--config", configPath,
                 "TOML file with any of the keys: " + allKeyNames() +
                     " (e.g. max_storage = \"20GiB\"); unknown keys are errors")
      ->type_name("FILE");

  std::map<std::string, std::string> flagText;
  std::map<std::string, CLI::Option*> flagOptions;
  for (const Key& key : kKeys) {
    std::string help = std::string(key.help) + "\nfile key: " + key.name + ", env: " + key.env +
                       "; default: " + shownText(key.show(defaults));
    CLI::Option* option = nullptr;
    if (isBoolKey(key)) {
      // A bare flag reads "true"; --auto-create-topics=false is validated like any value.
      option = app.add_flag(key.flag, flagText[key.name], help);
    } else {
      option = app.add_option(key.flag, flagText[key.name], help)->type_name(key.type);
    }
    flagOptions[key.name] = option;
  }
  CLI::Option* checkFlag =
      app.add_flag("--check", check, "Verify the store's invariants and exit (0: healthy)");
  CLI::Option* printFlag =
      app.add_flag("--print-config", printConfig,
                   "Print the effective configuration (all layers applied) as TOML and exit 0");
  CLI::Option* dumpFlag = app.add_flag(
      "--dump", dump, "Print every key and value of the stopped store's state databases and exit");
  CLI::Option* replayFlag =
      app.add_option("--replay-log", replaySource,
                     "Apply the write log of the stopped store in DIR, from sequence 1, to the "
                     "empty --data store and exit")
          ->type_name("DIR");
  checkFlag->excludes(printFlag)->excludes(dumpFlag)->excludes(replayFlag);
  printFlag->excludes(dumpFlag)->excludes(replayFlag);
  dumpFlag->excludes(replayFlag);
  app.footer(std::string("Configuration precedence, lowest to highest: ") + kPrecedence +
             ".\nEvery setting can come from any layer: file key max_storage, flag "
             "--max-storage, variable SLUICE_MAX_STORAGE (empty variables are ignored).\n"
             "Invalid configuration exits with code 2 and one message naming the key, the "
             "value and what is allowed.");

  ParseOutcome outcome;
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    outcome.exitCode = app.exit(e) == 0 ? 0 : 2;
    return outcome;
  }

  Invocation invocation;
  invocation.mode = check                   ? Mode::kCheck
                    : printConfig           ? Mode::kPrintConfig
                    : dump                  ? Mode::kDump
                    : !replaySource.empty() ? Mode::kReplayLog
                                            : Mode::kServe;
  invocation.replaySource = replaySource;
  Status status;
  if (!configPath.empty()) status = applyFile(configPath, invocation.config);
  for (const Key& key : kKeys) {
    if (!status.ok()) break;
    CLI::Option* option = flagOptions[key.name];
    if (option->count() == 0) continue;
    const std::string& text = flagText[key.name];
    status = setFromText(key, text, quote(text), key.flag, invocation.config);
  }
  if (status.ok()) status = applyEnvironment(env, invocation.config);
  if (status.ok()) status = checkCombination(invocation.config);
  if (!status.ok()) {
    std::cerr << "sluiced: invalid configuration: " << status.message() << '\n';
    outcome.exitCode = 2;
    return outcome;
  }
  outcome.invocation = std::move(invocation);
  return outcome;
}

}  // namespace sluice::daemon
