#include "cluster/etcd.h"

#include <kj/debug.h>

#include <charconv>
#include <nlohmann/json.hpp>

#include "encoding.h"  // The CLI's base64 (RFC 4648), as the gateway encodes bytes.

namespace sluice::cluster {
namespace {

using Json = nlohmann::json;

// Largest body the gateway's answer may have: a range over the control plane's keys.
constexpr uint64_t kMaxAnswerBytes = 64u << 20;

std::string b64(const std::string& bytes) {
  return cli::base64Encode(bytes);
}

kj::Exception protocolError(const std::string& what) {
  return KJ_EXCEPTION(FAILED, "etcd: unexpected answer", what);
}

std::string unb64(const Json& value) {
  if (value.is_null()) return "";
  if (!value.is_string()) throw protocolError("a key or value is not a string");
  auto decoded = cli::base64Decode(value.get<std::string>());
  if (!decoded) throw protocolError("a key or value is not base64");
  return std::move(*decoded);
}

// The gateway writes int64 as a JSON string ("12"); absent means 0.
int64_t number(const Json& object, const char* name) {
  auto found = object.find(name);
  if (found == object.end() || found->is_null()) return 0;
  if (found->is_number_integer()) return found->get<int64_t>();
  if (!found->is_string()) throw protocolError(std::string(name) + " is not a number");
  const std::string& text = found->get_ref<const std::string&>();
  int64_t out = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  if (ec != std::errc() || end != text.data() + text.size()) {
    throw protocolError(std::string(name) + " is not a number: " + text);
  }
  return out;
}

bool flag(const Json& object, const char* name) {
  auto found = object.find(name);
  return found != object.end() && found->is_boolean() && found->get<bool>();
}

Json parse(const std::string& text) {
  Json out = Json::parse(text, nullptr, false);
  if (out.is_discarded() || !out.is_object()) throw protocolError("not a JSON object");
  return out;
}

KeyValue keyValueOf(const Json& kv) {
  KeyValue out;
  out.key = unb64(kv.value("key", Json()));
  out.value = unb64(kv.value("value", Json()));
  out.createRevision = number(kv, "create_revision");
  out.modRevision = number(kv, "mod_revision");
  out.version = number(kv, "version");
  out.lease = number(kv, "lease");
  return out;
}

RangeResult rangeOf(const Json& answer) {
  RangeResult out;
  if (auto header = answer.find("header"); header != answer.end()) {
    out.revision = number(*header, "revision");
  }
  if (auto kvs = answer.find("kvs"); kvs != answer.end() && kvs->is_array()) {
    for (const auto& kv : *kvs)
      out.kvs.push_back(keyValueOf(kv));
  }
  out.more = flag(answer, "more");
  out.count = number(answer, "count");
  return out;
}

int64_t revisionOf(const Json& answer) {
  auto header = answer.find("header");
  return header == answer.end() ? 0 : number(*header, "revision");
}

Json rangeRequest(const std::string& key, bool prefix) {
  Json out{{"key", b64(key)}};
  if (prefix) out["range_end"] = b64(EtcdClient::prefixEnd(key));
  return out;
}

Json opJson(const TxnOp& op) {
  switch (op.kind) {
    case TxnOp::Kind::kPut: {
      Json put{{"key", b64(op.key)}, {"value", b64(op.value)}};
      if (op.lease != 0) put["lease"] = std::to_string(op.lease);
      return Json{{"request_put", put}};
    }
    case TxnOp::Kind::kDelete:
      return Json{{"request_delete_range", rangeRequest(op.key, op.prefix)}};
    case TxnOp::Kind::kGet:
      return Json{{"request_range", rangeRequest(op.key, op.prefix)}};
  }
  return Json();
}

Json compareJson(const Compare& compare) {
  static const char* const kTargets[] = {"VERSION", "CREATE", "MOD", "VALUE"};
  static const char* const kResults[] = {"EQUAL", "NOT_EQUAL", "GREATER", "LESS"};
  Json out{{"key", b64(compare.key)},
           {"target", kTargets[static_cast<int>(compare.target)]},
           {"result", kResults[static_cast<int>(compare.result)]}};
  switch (compare.target) {
    case Compare::Target::kVersion:
      out["version"] = std::to_string(compare.number);
      break;
    case Compare::Target::kCreateRevision:
      out["create_revision"] = std::to_string(compare.number);
      break;
    case Compare::Target::kModRevision:
      out["mod_revision"] = std::to_string(compare.number);
      break;
    case Compare::Target::kValue:
      out["value"] = b64(compare.value);
      break;
  }
  return out;
}

// etcd's error answer: {"error": "...", "code": N, "message": "..."}.
std::string errorText(const std::string& body) {
  Json error = Json::parse(body, nullptr, false);
  if (error.is_object()) {
    if (auto message = error.find("message"); message != error.end() && message->is_string()) {
      return message->get<std::string>();
    }
    if (auto text = error.find("error"); text != error.end() && text->is_string()) {
      return text->get<std::string>();
    }
  }
  return body.substr(0, 200);
}

// gRPC codes the gateway passes on that mean "this member cannot serve now; another may".
bool unavailable(uint statusCode, const std::string& body) {
  if (statusCode == 503) return true;
  Json error = Json::parse(body, nullptr, false);
  if (!error.is_object()) return false;
  auto code = error.find("code");
  // 14 UNAVAILABLE, 4 DEADLINE_EXCEEDED (e.g. "etcdserver: request timed out").
  return code != error.end() && code->is_number_integer() &&
         (code->get<int>() == 14 || code->get<int>() == 4);
}

}  // namespace

Compare Compare::absent(std::string key) {
  return Compare{std::move(key), Target::kVersion, Result::kEqual, 0, {}};
}

Compare Compare::modRevisionIs(std::string key, int64_t revision) {
  return Compare{std::move(key), Target::kModRevision, Result::kEqual, revision, {}};
}

Compare Compare::valueIs(std::string key, std::string value) {
  return Compare{std::move(key), Target::kValue, Result::kEqual, 0, std::move(value)};
}

TxnOp TxnOp::put(std::string key, std::string value, int64_t lease) {
  return TxnOp{Kind::kPut, std::move(key), std::move(value), lease, false};
}

TxnOp TxnOp::del(std::string key) {
  return TxnOp{Kind::kDelete, std::move(key), {}, 0, false};
}

TxnOp TxnOp::get(std::string key) {
  return TxnOp{Kind::kGet, std::move(key), {}, 0, false};
}

EtcdClient::EtcdClient(kj::Timer& timer, kj::Network& network, std::vector<std::string> endpoints,
                       kj::Duration requestTimeout)
    : timer_(timer),
      endpoints_(std::move(endpoints)),
      requestTimeout_(requestTimeout),
      http_(kj::newHttpClient(timer, headerTable_, network, nullptr)) {
  KJ_REQUIRE(!endpoints_.empty(), "etcd: no endpoint given");
}

EtcdClient::~EtcdClient() = default;

std::string EtcdClient::prefixEnd(const std::string& prefix) {
  // The first key after every key that starts with `prefix`: the last byte below 0xff plus one,
  // with what follows it dropped; "\0" (every key) when the prefix is all 0xff or empty.
  std::string end = prefix;
  while (!end.empty()) {
    auto last = static_cast<unsigned char>(end.back());
    if (last < 0xff) {
      end.back() = static_cast<char>(last + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');
}

kj::Promise<kj::HttpClient::Response> EtcdClient::post(const std::string& endpoint,
                                                       const std::string& path,
                                                       const std::string& body) {
  kj::HttpHeaders headers(headerTable_);
  headers.set(kj::HttpHeaderId::CONTENT_TYPE, "application/json");
  auto request =
      http_->request(kj::HttpMethod::POST, "http://" + endpoint + path, headers, body.size());
  auto owned = kj::heapString(body.data(), body.size());
  auto sent = request.body->write(owned.begin(), owned.size()).attach(kj::mv(owned));
  return sent.then([stream = kj::mv(request.body), response = kj::mv(request.response)]() mutable {
    return kj::mv(response);
  });
}

kj::Promise<std::string> EtcdClient::call(std::string path, std::string body) {
  return callFrom(std::move(path), std::move(body), 0);
}

kj::Promise<std::string> EtcdClient::callFrom(std::string path, std::string body, size_t attempt) {
  size_t endpoint = current_;
  auto answered =
      post(endpoints_[endpoint], path, body).then([](kj::HttpClient::Response&& response) {
        uint status = response.statusCode;
        return response.body->readAllText(kMaxAnswerBytes)
            .attach(kj::mv(response.body))
            .then([status](kj::String text) {
              return std::make_pair(status, std::string(text.cStr(), text.size()));
            });
      });
  return timer_.timeoutAfter(requestTimeout_, kj::mv(answered))
      .then(
          [this, path, body, attempt,
           endpoint](std::pair<uint, std::string> answer) -> kj::Promise<std::string> {
            auto& [status, text] = answer;
            if (status == 200) return kj::mv(text);
            if (unavailable(status, text) && attempt + 1 < endpoints_.size()) {
              if (current_ == endpoint) current_ = (endpoint + 1) % endpoints_.size();
              return callFrom(path, body, attempt + 1);
            }
            return KJ_EXCEPTION(FAILED, "etcd refused the request", endpoints_[endpoint], path,
                                status, errorText(text));
          },
          [this, path, body, attempt, endpoint](kj::Exception&& e) -> kj::Promise<std::string> {
            // Refused, lost or timed out: the next endpoint, if one is left to try.
            if (current_ == endpoint) current_ = (endpoint + 1) % endpoints_.size();
            if (attempt + 1 < endpoints_.size()) return callFrom(path, body, attempt + 1);
            return KJ_EXCEPTION(DISCONNECTED, "etcd: no endpoint answered", path,
                                e.getDescription());
          });
}

kj::Promise<int64_t> EtcdClient::put(std::string key, std::string value, int64_t lease) {
  Json body{{"key", b64(key)}, {"value", b64(value)}};
  if (lease != 0) body["lease"] = std::to_string(lease);
  return call("/v3/kv/put", body.dump()).then([](std::string text) {
    return revisionOf(parse(text));
  });
}

kj::Promise<RangeResult> EtcdClient::get(std::string key) {
  return call("/v3/kv/range", rangeRequest(key, false).dump()).then([](std::string text) {
    return rangeOf(parse(text));
  });
}

kj::Promise<RangeResult> EtcdClient::getPrefix(std::string prefix) {
  return call("/v3/kv/range", rangeRequest(prefix, true).dump()).then([](std::string text) {
    return rangeOf(parse(text));
  });
}

kj::Promise<int64_t> EtcdClient::del(std::string key) {
  return call("/v3/kv/deleterange", rangeRequest(key, false).dump()).then([](std::string text) {
    return number(parse(text), "deleted");
  });
}

kj::Promise<int64_t> EtcdClient::delPrefix(std::string prefix) {
  return call("/v3/kv/deleterange", rangeRequest(prefix, true).dump()).then([](std::string text) {
    return number(parse(text), "deleted");
  });
}

kj::Promise<TxnResult> EtcdClient::txn(std::vector<Compare> compares, std::vector<TxnOp> success,
                                       std::vector<TxnOp> failure) {
  Json body{{"compare", Json::array()}, {"success", Json::array()}, {"failure", Json::array()}};
  for (const auto& compare : compares)
    body["compare"].push_back(compareJson(compare));
  for (const auto& op : success)
    body["success"].push_back(opJson(op));
  for (const auto& op : failure)
    body["failure"].push_back(opJson(op));
  return call("/v3/kv/txn", body.dump()).then([](std::string text) {
    Json answer = parse(text);
    TxnResult out;
    out.succeeded = flag(answer, "succeeded");
    out.revision = revisionOf(answer);
    if (auto responses = answer.find("responses"); responses != answer.end()) {
      for (const auto& response : *responses) {
        if (auto range = response.find("response_range"); range != response.end()) {
          out.reads.push_back(rangeOf(*range));
        }
      }
    }
    return out;
  });
}

kj::Promise<Lease> EtcdClient::grantLease(int64_t ttlSeconds) {
  Json body{{"TTL", std::to_string(ttlSeconds)}};
  return call("/v3/lease/grant", body.dump()).then([](std::string text) {
    Json answer = parse(text);
    if (auto error = answer.find("error");
        error != answer.end() && error->is_string() && !error->get<std::string>().empty()) {
      throw KJ_EXCEPTION(FAILED, "etcd refused the lease", error->get<std::string>());
    }
    Lease out{number(answer, "ID"), number(answer, "TTL")};
    if (out.id == 0) throw protocolError("a granted lease without an ID");
    return out;
  });
}

kj::Promise<int64_t> EtcdClient::keepAlive(int64_t lease) {
  Json body{{"ID", std::to_string(lease)}};
  return call("/v3/lease/keepalive", body.dump()).then([lease](std::string text) {
    // A stream of one answer: {"result": {"ID", "TTL"}}; TTL 0 or absent: the lease is gone.
    auto newline = text.find('\n');
    Json answer = parse(newline == std::string::npos ? text : text.substr(0, newline));
    auto result = answer.find("result");
    int64_t ttl = result == answer.end() ? 0 : number(*result, "TTL");
    if (ttl <= 0) {
      throw KJ_EXCEPTION(FAILED, "etcd: the lease has expired or was revoked", lease);
    }
    return ttl;
  });
}

kj::Promise<void> EtcdClient::revokeLease(int64_t lease) {
  Json body{{"ID", std::to_string(lease)}};
  return call("/v3/lease/revoke", body.dump()).then([](std::string) {});
}

namespace {

// Reads a watch's answer stream: one JSON object per line.
struct WatchStream {
  kj::Own<kj::AsyncInputStream> body;
  std::function<void(const std::vector<WatchEvent>&)> onEvent;
  std::string pending;
  char buffer[16384];

  kj::Promise<void> pump() {
    return body->tryRead(buffer, 1, sizeof(buffer)).then([this](size_t n) -> kj::Promise<void> {
      if (n == 0) return KJ_EXCEPTION(DISCONNECTED, "etcd: the watch stream ended");
      pending.append(buffer, n);
      if (pending.size() > kMaxAnswerBytes) throw protocolError("a watch answer is too long");
      size_t newline;
      while ((newline = pending.find('\n')) != std::string::npos) {
        std::string line = pending.substr(0, newline);
        pending.erase(0, newline + 1);
        if (line.find_first_not_of(" \r\t") != std::string::npos) handle(line);
      }
      return pump();
    });
  }

  void handle(const std::string& line) {
    Json answer = parse(line);
    if (auto error = answer.find("error"); error != answer.end()) {
      throw KJ_EXCEPTION(FAILED, "etcd: the watch failed", line.substr(0, 200));
    }
    auto result = answer.find("result");
    if (result == answer.end()) throw protocolError("a watch answer without a result");
    if (int64_t compacted = number(*result, "compact_revision"); compacted != 0) {
      throw KJ_EXCEPTION(FAILED, "etcd: the watch's start revision was compacted", compacted);
    }
    if (flag(*result, "canceled")) {
      throw KJ_EXCEPTION(FAILED, "etcd: the watch was canceled",
                         result->value("cancel_reason", std::string()));
    }
    auto events = result->find("events");
    if (events == result->end() || !events->is_array() || events->empty()) return;
    std::vector<WatchEvent> out;
    for (const auto& event : *events) {
      WatchEvent change;
      change.type = event.value("type", std::string("PUT")) == "DELETE" ? WatchEvent::Type::kDelete
                                                                        : WatchEvent::Type::kPut;
      if (auto kv = event.find("kv"); kv != event.end()) change.kv = keyValueOf(*kv);
      out.push_back(std::move(change));
    }
    onEvent(out);
  }
};

}  // namespace

kj::Promise<void> EtcdClient::watchPrefix(
    std::string prefix, int64_t fromRevision,
    std::function<void(const std::vector<WatchEvent>&)> onEvent) {
  Json create = rangeRequest(prefix, true);
  if (fromRevision != 0) create["start_revision"] = std::to_string(fromRevision);
  std::string body = Json{{"create_request", create}}.dump();
  std::string where = endpoint();
  // A watch that cannot be opened moves the next request to another endpoint.
  size_t used = current_;
  return post(where, "/v3/watch", body)
      .then(
          [onEvent = std::move(onEvent), where](kj::HttpClient::Response&& response) mutable {
            if (response.statusCode != 200) {
              return response.body->readAllText(kMaxAnswerBytes)
                  .attach(kj::mv(response.body))
                  .then([status = response.statusCode, where](kj::String text) {
                    kj::throwFatalException(
                        KJ_EXCEPTION(FAILED, "etcd refused the watch", where, status,
                                     errorText(std::string(text.cStr(), text.size()))));
                  });
            }
            auto stream = kj::heap<WatchStream>();
            stream->body = kj::mv(response.body);
            stream->onEvent = std::move(onEvent);
            auto pumped = stream->pump();
            return pumped.attach(kj::mv(stream));
          },
          [this, used](kj::Exception&& e) -> kj::Promise<void> {
            if (current_ == used) current_ = (used + 1) % endpoints_.size();
            return KJ_EXCEPTION(DISCONNECTED, "etcd: the watch could not be opened",
                                e.getDescription());
          });
}

}  // namespace sluice::cluster
