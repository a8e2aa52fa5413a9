#pragma once

// A client of etcd's v3 API through its JSON gateway (etcd 3.4: POST /v3/kv/range and the like,
// keys and values base64, 64-bit numbers as strings), over KJ's HTTP client on the caller's event
// loop: the control plane of a cluster of brokers (membership on leases, compare-and-swap of
// placement and leadership, watches). No thread of its own, no state but the endpoint in use.
//
// Failures reject the promise with a kj::Exception: DISCONNECTED when no endpoint answered
// (connection refused or lost, timeout: the request may or may not have been applied), FAILED
// when etcd answered with an error (its message is in the description), which is never retried.
// A request that cannot reach the endpoint in use is tried on the next one, once per endpoint.
// The client must outlive the promises it returns. Thread: the event loop it was made on.

#include <kj/async-io.h>
#include <kj/compat/http.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace sluice::cluster {

struct KeyValue {
  std::string key;
  std::string value;
  int64_t createRevision = 0;
  int64_t modRevision = 0;
  int64_t version = 0;  // 0: the key does not exist (in a compare).
  int64_t lease = 0;
};

struct RangeResult {
  std::vector<KeyValue> kvs;
  int64_t revision = 0;  // The store's revision when read.
  bool more = false;
  int64_t count = 0;
};

// One condition of a transaction: key's version / create or mod revision / value compared.
struct Compare {
  enum class Target { kVersion, kCreateRevision, kModRevision, kValue };
  enum class Result { kEqual, kNotEqual, kGreater, kLess };
  std::string key;
  Target target = Target::kVersion;
  Result result = Result::kEqual;
  int64_t number = 0;  // For kVersion, kCreateRevision, kModRevision.
  std::string value;   // For kValue.

  static Compare absent(std::string key);  // version == 0
  static Compare modRevisionIs(std::string key, int64_t revision);
  static Compare valueIs(std::string key, std::string value);
};

// One operation of a transaction.
struct TxnOp {
  enum class Kind { kPut, kDelete, kGet };
  Kind kind = Kind::kPut;
  std::string key;
  std::string value;    // kPut
  int64_t lease = 0;    // kPut
  bool prefix = false;  // kDelete, kGet: every key starting with `key`.

  static TxnOp put(std::string key, std::string value, int64_t lease = 0);
  static TxnOp del(std::string key);
  static TxnOp get(std::string key);
};

struct TxnResult {
  bool succeeded = false;
  int64_t revision = 0;
  std::vector<RangeResult> reads;  // One per kGet of the branch that ran, in order.
};

struct Lease {
  int64_t id = 0;
  int64_t ttlSeconds = 0;
};

struct WatchEvent {
  enum class Type { kPut, kDelete };
  Type type = Type::kPut;
  KeyValue kv;  // For kDelete: the key and its mod revision (the deletion's).
};

class EtcdClient {
 public:
  // endpoints: "host:port" of the cluster's client URLs (plain HTTP).
  EtcdClient(kj::Timer& timer, kj::Network& network, std::vector<std::string> endpoints,
             kj::Duration requestTimeout = 5 * kj::SECONDS);
  ~EtcdClient();

  kj::Promise<int64_t> put(std::string key, std::string value, int64_t lease = 0);
  kj::Promise<RangeResult> get(std::string key);
  kj::Promise<RangeResult> getPrefix(std::string prefix);
  // The number of keys deleted.
  kj::Promise<int64_t> del(std::string key);
  kj::Promise<int64_t> delPrefix(std::string prefix);
  // If every compare holds, runs `success`, else `failure`, atomically.
  kj::Promise<TxnResult> txn(std::vector<Compare> compares, std::vector<TxnOp> success,
                             std::vector<TxnOp> failure = {});

  kj::Promise<Lease> grantLease(int64_t ttlSeconds);
  // Renews the lease once; its TTL afterwards. FAILED if the lease has expired or was revoked.
  kj::Promise<int64_t> keepAlive(int64_t lease);
  kj::Promise<void> revokeLease(int64_t lease);

  // Calls onEvent for every change of a key under `prefix` from revision `fromRevision` (0: from
  // now), in revision order, until the promise is dropped. Rejects when the stream ends or
  // breaks (DISCONNECTED), or when fromRevision was compacted (FAILED): the caller re-reads and
  // watches again from the revision it read.
  kj::Promise<void> watchPrefix(std::string prefix, int64_t fromRevision,
                                std::function<void(const std::vector<WatchEvent>&)> onEvent);

  // The endpoint requests go to now ("host:port").
  const std::string& endpoint() const { return endpoints_[current_]; }

  // The range end that covers every key starting with `prefix` (etcd's "prefix end").
  static std::string prefixEnd(const std::string& prefix);

 private:
  // POSTs `body` (JSON) to one endpoint; its response once the request is sent.
  kj::Promise<kj::HttpClient::Response> post(const std::string& endpoint, const std::string& path,
                                             const std::string& body);
  // POSTs `body` (JSON) to `path` on the endpoints in turn; the parsed JSON answer as text.
  kj::Promise<std::string> call(std::string path, std::string body);
  kj::Promise<std::string> callFrom(std::string path, std::string body, size_t attempt);

  kj::Timer& timer_;
  std::vector<std::string> endpoints_;
  size_t current_ = 0;
  kj::Duration requestTimeout_;
  kj::HttpHeaderTable headerTable_;
  kj::Own<kj::HttpClient> http_;
};

}  // namespace sluice::cluster
