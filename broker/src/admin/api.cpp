#include "admin/api.h"

#include <algorithm>
#include <charconv>
#include <optional>
#include <set>
#include <string_view>

#include <nlohmann/json.hpp>

#include "admin/ui_assets.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/text.h"
#include "core/names.h"
#include "core/subjects.h"
#include "encoding.h"   // The CLI's: base64, UTF-8, RFC 3339 times.
#include "view_json.h"  // The CLI's documents of topics, groups and messages.

namespace sluice::admin {
namespace {

using Json = nlohmann::ordered_json;

constexpr uint32_t kMaxFetch = 1000;
constexpr uint32_t kMaxFetchWaitMs = 30000;
constexpr uint32_t kMaxBrowse = 1000;
constexpr uint32_t kMaxPage = 500;
constexpr size_t kMaxHttpConsumers = 1024;
constexpr uint8_t kDescribe = kActPublish | kActConsume | kActManage;

// The RPC's error codes, and a few of HTTP's own, as statuses.
int statusOf(Code code) {
  switch (code) {
    case Code::kOk:
      return 200;
    case Code::kInvalidArgument:
      return 400;
    case Code::kTopicNotFound:
    case Code::kGroupNotFound:
      return 404;
    case Code::kMessageTooLarge:
      return 413;
    case Code::kStorageFull:
      return 507;
    case Code::kStorageFailed:
    case Code::kShuttingDown:
    case Code::kNotEnoughReplicas:
      return 503;
    case Code::kTopicExists:
    case Code::kNotPending:
    case Code::kGroupBusy:
    case Code::kStaleDelivery:
    case Code::kTransactionConflict:
      return 409;
    case Code::kLimitExceeded:
      return 429;
    case Code::kNoRoute:
      return 422;
    case Code::kUnauthenticated:
      return 401;
    case Code::kPermissionDenied:
      return 403;
  }
  return 500;
}

// Raised by the request parsing below; answered as 400 invalidArgument (or its own code).
struct BadRequest {
  int status;
  std::string code;
  std::string message;
};

[[noreturn]] void invalid(std::string message) {
  throw BadRequest{400, "invalidArgument", std::move(message)};
}

std::string percentDecode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%') {
      auto hex = [](char h) -> int {
        if (h >= '0' && h <= '9') return h - '0';
        if (h >= 'a' && h <= 'f') return h - 'a' + 10;
        if (h >= 'A' && h <= 'F') return h - 'A' + 10;
        return -1;
      };
      if (i + 2 >= text.size() || hex(text[i + 1]) < 0 || hex(text[i + 2]) < 0) {
        invalid("bad percent-encoding in the request target");
      }
      out += static_cast<char>(hex(text[i + 1]) * 16 + hex(text[i + 2]));
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

std::map<std::string, std::string> parseQuery(const std::string& query) {
  std::map<std::string, std::string> out;
  size_t start = 0;
  while (start <= query.size() && !query.empty()) {
    size_t end = query.find('&', start);
    if (end == std::string::npos) end = query.size();
    std::string_view pair(query.data() + start, end - start);
    if (!pair.empty()) {
      size_t equals = pair.find('=');
      std::string name(pair.substr(0, equals));
      std::string value(equals == std::string_view::npos ? "" : pair.substr(equals + 1));
      std::replace(value.begin(), value.end(), '+', ' ');
      out[percentDecode(name)] = percentDecode(value);
    }
    start = end + 1;
  }
  return out;
}

uint64_t parseNumber(const std::string& text, const char* what, uint64_t min, uint64_t max) {
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < min || value > max) {
    invalid(std::string(what) + " must be a whole number from " + std::to_string(min) + " to " +
            std::to_string(max) + ", not \"" + text + "\"");
  }
  return value;
}

// A field of a JSON body: absent (nullopt) or of the given kind, else 400.
const Json* field(const Json& body, const char* name) {
  auto found = body.find(name);
  if (found == body.end() || found->is_null()) return nullptr;
  return &*found;
}
uint64_t numberField(const Json& body, const char* name, uint64_t fallback, uint64_t max) {
  const Json* value = field(body, name);
  if (!value) return fallback;
  if (!value->is_number_unsigned() && !(value->is_number_integer() && value->get<int64_t>() >= 0))
    invalid(std::string("\"") + name + "\" must be a whole number ≥ 0");
  uint64_t number = value->get<uint64_t>();
  if (number > max) invalid(std::string("\"") + name + "\" must be at most " + std::to_string(max));
  return number;
}
std::optional<std::string> textField(const Json& body, const char* name) {
  const Json* value = field(body, name);
  if (!value) return std::nullopt;
  if (!value->is_string()) invalid(std::string("\"") + name + "\" must be a string");
  return value->get<std::string>();
}
bool boolField(const Json& body, const char* name, bool fallback) {
  const Json* value = field(body, name);
  if (!value) return fallback;
  if (!value->is_boolean()) invalid(std::string("\"") + name + "\" must be true or false");
  return value->get<bool>();
}
std::vector<std::string> textList(const Json& body, const char* name, size_t max) {
  std::vector<std::string> out;
  const Json* value = field(body, name);
  if (!value) return out;
  if (!value->is_array()) invalid(std::string("\"") + name + "\" must be a list of strings");
  if (value->size() > max)
    invalid(std::string("\"") + name + "\" holds at most " + std::to_string(max) + " entries");
  for (const auto& item : *value) {
    if (!item.is_string()) invalid(std::string("\"") + name + "\" must be a list of strings");
    out.push_back(item.get<std::string>());
  }
  return out;
}

core::StartAt parseStart(const Json* value) {
  core::StartAt at;
  if (!value) return at;
  if (value->is_string() && value->get<std::string>() == "earliest") return at;
  if (value->is_string() && value->get<std::string>() == "latest") {
    at.kind = core::StartAt::Kind::kLatest;
    return at;
  }
  if (value->is_object() && value->size() == 1) {
    if (value->contains("offset")) {
      at.kind = core::StartAt::Kind::kOffset;
      at.offset = numberField(*value, "offset", 0, UINT64_MAX);
      return at;
    }
    if (value->contains("time")) {
      at.kind = core::StartAt::Kind::kTimestamp;
      at.timestampMs = static_cast<int64_t>(numberField(*value, "time", 0, INT64_MAX));
      return at;
    }
  }
  invalid(R"(a start is "earliest", "latest", {"offset": N} or {"time": UNIX_MS})");
}

Json topicJson(const core::TopicView& topic) {
  const TopicConfig& settings = topic.settings;
  return cli::topicJsonOf(topic,
                          cli::settingsJsonOf(settings, settings.maxAgeMs, settings.dedupWindowMs,
                                              settings.defaultTtlMs));
}

// As `sluice --json` shows it: the subject is the topic's name when published to the topic.
Json messageJson(const StoredMessageData& message, const std::string& topic) {
  const MessageData& data = message.data;
  Json out{
      {"offset", message.offset},
      {"timestamp", cli::formatTimestamp(message.timestampMs)},
      {"timestamp_ms", message.timestampMs},
      {"subject", data.subject.empty() ? topic : data.subject},
  };
  cli::addMessageBody(out, data.key, data.headers, data.payload);
  out["id"] = cli::nullIfEmpty(data.id);
  if (data.deliverAtMs != 0) out["deliver_at_ms"] = data.deliverAtMs;
  if (int64_t expires = message.expiresAtMs(); expires != 0) out["expires_at_ms"] = expires;
  return out;
}

// A string field that may come as text or, for any bytes, base64 in NAME_base64.
std::optional<std::string> bytesField(const Json& body, const char* name, const char* what) {
  std::string encoded = std::string(name) + "_base64";
  auto text = textField(body, name);
  auto base64 = textField(body, encoded.c_str());
  if (text && base64)
    invalid(std::string(what) + " has both \"" + name + "\" and \"" + encoded + "\"");
  if (base64) {
    auto decoded = cli::base64Decode(*base64);
    if (!decoded) invalid(std::string(what) + ": \"" + encoded + "\" is not valid base64");
    return decoded;
  }
  return text;
}

MessageData parseMessage(const Json& entry, const std::string& what) {
  if (!entry.is_object()) invalid(what + " must be an object");
  static const std::set<std::string> kKnown = {
      "payload", "payload_base64", "key", "key_base64", "headers", "id", "delay_ms", "ttl_ms"};
  for (const auto& item : entry.items()) {
    if (kKnown.count(item.key()) == 0) invalid(what + ": unknown field \"" + item.key() + "\"");
  }
  MessageData message;
  auto payload = bytesField(entry, "payload", what.c_str());
  if (!payload) invalid(what + " has no \"payload\" (or \"payload_base64\")");
  message.payload = std::move(*payload);
  message.key = bytesField(entry, "key", what.c_str());
  if (const Json* headers = field(entry, "headers")) {
    if (!headers->is_object()) invalid(what + ": \"headers\" must be an object of strings");
    if (auto problem = core::validateHeaderCount(headers->size())) invalid(what + ": " + *problem);
    for (const auto& item : headers->items()) {
      if (!item.value().is_string())
        invalid(what + ": header \"" + item.key() + "\" must be a string");
      message.headers.emplace_back(item.key(), item.value().get<std::string>());
    }
  }
  message.id = textField(entry, "id").value_or("");
  message.delayMs = static_cast<uint32_t>(numberField(entry, "delay_ms", 0, UINT32_MAX));
  if (field(entry, "ttl_ms")) {
    message.hasTtl = true;
    message.ttlMs = static_cast<uint32_t>(numberField(entry, "ttl_ms", 0, UINT32_MAX));
  }
  return message;
}

core::RequestedSettings parseSettings(const Json* settings) {
  core::RequestedSettings out;
  if (!settings) return out;
  if (!settings->is_object()) invalid("\"settings\" must be an object");
  static const std::set<std::string> kKnown = {
      "max_age_ms",     "max_bytes",           "max_messages",      "max_message_size",
      "work_queue",     "max_deliveries",      "dead_letter_topic", "dedup_window_ms",
      "default_ttl_ms", "dead_letter_expired", "subjects"};
  for (const auto& item : settings->items()) {
    if (kKnown.count(item.key()) == 0) invalid("settings: unknown field \"" + item.key() + "\"");
  }
  out.maxAgeMs = numberField(*settings, "max_age_ms", 0, UINT64_MAX);
  out.maxBytes = numberField(*settings, "max_bytes", 0, UINT64_MAX);
  out.maxMessages = numberField(*settings, "max_messages", 0, UINT64_MAX);
  out.maxMessageSize =
      static_cast<uint32_t>(numberField(*settings, "max_message_size", 0, UINT32_MAX));
  out.workQueue = boolField(*settings, "work_queue", false);
  out.maxDeliveries =
      static_cast<uint32_t>(numberField(*settings, "max_deliveries", 0, UINT32_MAX));
  out.deadLetterTopic = textField(*settings, "dead_letter_topic").value_or("");
  out.dedupWindowMs = numberField(*settings, "dedup_window_ms", 0, UINT64_MAX);
  out.defaultTtlMs = numberField(*settings, "default_ttl_ms", 0, UINT32_MAX);
  out.deadLetterExpired = boolField(*settings, "dead_letter_expired", false);
  out.subjects = textList(*settings, "subjects", core::kMaxPatternsPerTopic);
  return out;
}

// The host part of a Host header ("name:port", "[v6]:port"), lowercased.
std::string hostOf(const std::string& header) {
  std::string host = header;
  if (!host.empty() && host[0] == '[') {
    host = host.substr(0, host.find(']') + 1);
  } else if (auto colon = host.rfind(':'); colon != std::string::npos) {
    host = host.substr(0, colon);
  }
  return lowerAscii(host);
}

std::vector<std::string> splitPath(const std::string& path) {
  std::vector<std::string> parts;
  size_t start = 1;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    parts.push_back(percentDecode(std::string_view(path).substr(start, end - start)));
    start = end + 1;
  }
  return parts;
}

}  // namespace

double quantileBetween(const HistogramSnapshot& before, const HistogramSnapshot& after, double q) {
  if (after.buckets.empty() || after.count <= before.count) return 0;
  auto bucket = [&](size_t i) {
    uint64_t was = i < before.buckets.size() ? before.buckets[i] : 0;
    return after.buckets[i] - std::min(after.buckets[i], was);
  };
  uint64_t total = after.count - before.count;
  double rank = q * static_cast<double>(total);
  for (size_t i = 0; i < after.buckets.size(); ++i) {
    if (static_cast<double>(bucket(i)) >= rank) {
      double lower = i == 0 ? 0 : after.bounds[i - 1];
      uint64_t below = i == 0 ? 0 : bucket(i - 1);
      uint64_t in = bucket(i) - below;
      if (in == 0) return after.bounds[i];
      return lower + (after.bounds[i] - lower) * (rank - static_cast<double>(below)) /
                         static_cast<double>(in);
    }
  }
  return after.bounds.back();  // Beyond the last bound (+Inf): its lower edge.
}

// One request on its way to an answer.
struct HttpApi::Call {
  HttpApi* api = nullptr;
  uint64_t id = 0;
  HttpRequest request;
  HttpReply reply;
  bool answered = false;
  core::Identity identity;
  std::map<std::string, std::string> query;
  Json body;

  void send(HttpResponse response) {
    if (answered) return;
    answered = true;
    reply(std::move(response));
    api->open_.erase(id);  // Last: may free this call.
  }
  void json(int status, const Json& document) {
    HttpResponse response;
    response.status = status;
    response.contentType = "application/json";
    response.body = document.dump(-1, ' ', false, Json::error_handler_t::replace);
    send(std::move(response));
  }
  void error(int status, const std::string& code, const std::string& message) {
    json(status, Json{{"error", Json{{"code", code}, {"message", message}}}});
  }
  void fail(const Status& status) {
    error(statusOf(status.code()), codeName(status.code()), status.message());
  }
  // Answers the failure and returns false, or returns true.
  bool check(const Status& status) {
    if (status.ok()) return true;
    fail(status);
    return false;
  }
  // `kDescribe` is any of its actions; others are each needed.
  bool allowed(uint8_t actions, const std::string& topic) {
    auto& authority = api->broker_.auth();
    int64_t now = wallClockMs();
    return check(actions == kDescribe ? authority.checkAny(identity, actions, topic, now)
                                      : authority.check(identity, actions, topic, now));
  }
  void requireMethod(std::initializer_list<const char*> methods) const {
    for (const char* method : methods) {
      if (request.method == method || (request.method == "HEAD" && std::string(method) == "GET"))
        return;
    }
    std::string list;
    for (const char* method : methods)
      list += (list.empty() ? "" : ", ") + std::string(method);
    throw BadRequest{405, "methodNotAllowed", request.method + " is not allowed here; use " + list};
  }
};

// Where an HTTP consumer's deliveries would go: nowhere (it fetches; nothing is pushed), and
// where the broker's reasons for ending it are kept.
class HttpApi::Sink final : public core::ConsumerSink {
 public:
  void deliver(std::vector<core::Delivery>) override {}
  void closed(const Status& why) override { closed_ = why; }
  const std::optional<Status>& closedWith() const { return closed_; }

 private:
  std::optional<Status> closed_;
};

struct HttpApi::Consumer {
  uint64_t id = 0;
  std::string topic, group;
  std::string principal;
  uint64_t credential = 0;
  int64_t lastUsedMs = 0;
  bool fetching = false;
  uint64_t watch = 0;
  Sink sink;
};

HttpApi::HttpApi(core::Broker& broker, kj::Timer& timer, ApiOptions options)
    : broker_(broker),
      timer_(timer),
      options_(std::move(options)),
      tasks_(kj::heap<kj::TaskSet>(static_cast<kj::TaskSet::ErrorHandler&>(*this))) {}

HttpApi::~HttpApi() {
  shutdown();
}

bool HttpApi::owns(const std::string& path) {
  return path == "/ui" || path.rfind("/ui/", 0) == 0 || path.rfind("/api/", 0) == 0 ||
         path == "/api" || path == "/";
}

void HttpApi::taskFailed(kj::Exception&& exception) {
  namedLog("admin")->error("http api task failed: {}", exception.getDescription().cStr());
}

void HttpApi::start() {
  lastSampleMs_ = wallClockMs();
  auto stats = broker_.stats();
  lastPublished_ = stats.publishedTotal;
  lastDelivered_ = stats.deliveredTotal;
  lastCommits_ = stats.commits;
  if (options_.commitSeconds) lastCommit_ = options_.commitSeconds();
  if (options_.fsyncSeconds) lastFsync_ = options_.fsyncSeconds();
  tasks_->add(tick());
}

kj::Promise<void> HttpApi::tick() {
  return timer_.afterDelay(1 * kj::SECONDS).then([this]() {
    sample();
    closeIdleConsumers(wallClockMs());
    return tick();
  });
}

void HttpApi::sample() {
  int64_t now = wallClockMs();
  double seconds = std::max<int64_t>(now - lastSampleMs_, 1) / 1000.0;
  auto stats = broker_.stats();
  Sample s;
  s.unixMs = now;
  s.publishRate = static_cast<double>(stats.publishedTotal - lastPublished_) / seconds;
  s.deliveryRate = static_cast<double>(stats.deliveredTotal - lastDelivered_) / seconds;
  s.storageUsed = stats.storageUsed;
  s.storageLimit = stats.storageLimit;
  s.connections = stats.connections;
  s.consumers = stats.consumers;
  s.commits = stats.commits - lastCommits_;
  if (options_.commitSeconds) {
    auto commit = options_.commitSeconds();
    s.commitP50Ms = quantileBetween(lastCommit_, commit, 0.5) * 1000;
    s.commitP99Ms = quantileBetween(lastCommit_, commit, 0.99) * 1000;
    lastCommit_ = std::move(commit);
  }
  if (options_.fsyncSeconds) {
    auto fsync = options_.fsyncSeconds();
    s.fsyncP99Ms = quantileBetween(lastFsync_, fsync, 0.99) * 1000;
    lastFsync_ = std::move(fsync);
  }
  lastSampleMs_ = now;
  lastPublished_ = stats.publishedTotal;
  lastDelivered_ = stats.deliveredTotal;
  lastCommits_ = stats.commits;
  history_.push_back(s);
  while (history_.size() > options_.historySamples)
    history_.pop_front();
}

void HttpApi::closeIdleConsumers(int64_t nowMs) {
  std::vector<uint64_t> idle;
  for (const auto& [id, consumer] : consumers_) {
    if (!consumer->fetching && nowMs - consumer->lastUsedMs >= options_.consumerIdleMs)
      idle.push_back(id);
  }
  for (uint64_t id : idle)
    dropConsumer(id);
}

void HttpApi::dropConsumer(uint64_t id) {
  auto found = consumers_.find(id);
  if (found == consumers_.end()) return;
  broker_.auth().unwatch(found->second->watch);
  if (!found->second->sink.closedWith()) broker_.unsubscribe(id);
  consumers_.erase(found);
}

void HttpApi::shutdown() {
  if (stopped_) return;
  stopped_ = true;
  auto open = open_;
  for (auto& [id, call] : open)
    call->error(503, "shuttingDown", "the broker is stopping");
  std::vector<uint64_t> ids;
  for (const auto& [id, consumer] : consumers_)
    ids.push_back(id);
  for (uint64_t id : ids)
    dropConsumer(id);
  tasks_ = kj::heap<kj::TaskSet>(
      static_cast<kj::TaskSet::ErrorHandler&>(*this));  // Cancels waits still running.
}

void HttpApi::handle(HttpRequest request, HttpReply reply) {
  auto call = std::make_shared<Call>();
  call->api = this;
  call->id = nextCall_++;
  call->request = std::move(request);
  call->reply = std::move(reply);
  open_[call->id] = call;
  if (stopped_) return call->error(503, "shuttingDown", "the broker is stopping");
  try {
    route(call);
  } catch (const BadRequest& bad) {
    call->error(bad.status, bad.code, bad.message);
  } catch (const std::exception& e) {
    namedLog("admin")->error("http api failed path={} err={}", call->request.path, e.what());
    call->error(500, "internal", "internal error");
  }
}

void HttpApi::route(std::shared_ptr<Call> call) {
  const HttpRequest& request = call->request;
  // DNS rebinding: a page of another site reaching us under its own name.
  const std::string* host = request.header("host");
  if (!host) throw BadRequest{403, "hostNotAllowed", "the request has no Host header"};
  std::string hostName = hostOf(*host);
  if (std::find(options_.allowedHosts.begin(), options_.allowedHosts.end(), hostName) ==
      options_.allowedHosts.end()) {
    throw BadRequest{
        403, "hostNotAllowed",
        "host \"" + hostName + "\" is not one this endpoint answers as; add it to admin_hosts"};
  }
  // Cross-site requests: a browser names the page's origin.
  if (const std::string* origin = request.header("origin")) {
    if (*origin != "http://" + *host && *origin != "https://" + *host) {
      throw BadRequest{403, "forbiddenOrigin",
                       "requests from origin " + *origin + " are not accepted"};
    }
  }
  if (const std::string* site = request.header("sec-fetch-site")) {
    if (*site != "same-origin" && *site != "none") {
      throw BadRequest{403, "forbiddenOrigin", "cross-site requests are not accepted"};
    }
  }
  const std::string& path = request.path;
  if (path == "/" || path == "/ui") {
    call->requireMethod({"GET"});
    HttpResponse response;
    response.status = 302;
    response.headers.emplace_back("Location", "/ui/");
    return call->send(std::move(response));
  }
  if (path.rfind("/ui/", 0) == 0) return serveUi(*call, path);

  auto parts = splitPath(path);  // "api", "v1", ...
  if (parts.size() < 3 || parts[0] != "api" || parts[1] != "v1") {
    throw BadRequest{404, "notFound", "no route " + path + "; the API is under /api/v1"};
  }
  const std::string& what = parts[2];
  bool asksWho = parts.size() == 3 && what == "whoami";
  // Who asks: anonymous when authentication is off; else the bearer credential, if any.
  auto& authority = broker_.auth();
  int64_t now = wallClockMs();
  call->identity = authority.initial(std::nullopt);
  const std::string* authorization = request.header("authorization");
  if (authority.enabled() && authorization) {
    if (authorization->rfind("Bearer ", 0) != 0)
      throw BadRequest{401, "unauthenticated", "Authorization must be \"Bearer <token>\""};
    std::string_view secret = std::string_view(*authorization).substr(7);
    uint64_t penalty = authority.penaltyMs(request.peer, now);
    auto identity = authority.authenticate(secret, now);
    authority.recordOutcome(request.peer, identity.ok(), now);
    if (!identity.ok()) {
      // whoami answers "not authenticated"; everything else is refused.
      Status refused = identity.status();
      auto answer = [this, call, refused, asksWho]() {
        if (asksWho) return whoami(*call);
        call->fail(refused);
      };
      if (penalty == 0) return answer();
      // A peer that keeps failing waits for its answers, as over RPC.
      tasks_->add(timer_.afterDelay(penalty * kj::MILLISECONDS).then(kj::mv(answer)));
      return;
    }
    call->identity = std::move(identity).value();
  }

  // With authentication on, nothing of a request without a credential is looked at.
  if (authority.enabled() && !call->identity.authenticated() && !asksWho) {
    throw BadRequest{401, "unauthenticated",
                     "this broker needs a credential: send Authorization: Bearer <token>"};
  }
  call->query = parseQuery(request.query);
  if (request.method == "POST" || request.method == "PUT") {
    const std::string* type = request.header("content-type");
    if (!type || type->rfind("application/json", 0) != 0) {
      throw BadRequest{415, "unsupportedMediaType",
                       "a " + request.method + " must carry Content-Type: application/json"};
    }
    if (request.body.empty()) {
      call->body = Json::object();
    } else {
      call->body = Json::parse(request.body, nullptr, false);
      if (call->body.is_discarded()) invalid("the body is not valid JSON");
      if (!call->body.is_object()) invalid("the body must be a JSON object");
    }
  }

  if (asksWho) {
    call->requireMethod({"GET"});
    return whoami(*call);
  }
  if (parts.size() == 3 && what == "overview") {
    call->requireMethod({"GET"});
    return overview(*call);
  }
  if (parts.size() == 3 && what == "cluster") {
    call->requireMethod({"GET"});
    if (!call->check(broker_.auth().checkValid(call->identity, wallClockMs()))) return;
    return call->json(200, Json{{"cluster", cli::clusterJsonOf(broker_.cluster())}});
  }
  if (what == "topics") {
    if (parts.size() == 3) {
      call->requireMethod({"GET", "POST"});
      if (request.method == "POST") return createTopic(call);
      return listTopics(*call);
    }
    return topic(call, parts[3], std::vector<std::string>(parts.begin() + 4, parts.end()));
  }
  throw BadRequest{404, "notFound", "no route " + path};
}

void HttpApi::serveUi(Call& call, const std::string& path) {
  call.requireMethod({"GET"});
  std::string name = path.substr(4);
  if (name.empty()) name = "index.html";
  const UiAsset* asset = findUiAsset(name);
  if (!asset) throw BadRequest{404, "notFound", "no file " + path};
  HttpResponse response;
  response.contentType = asset->contentType;
  response.body.assign(asset->data, asset->size);
  call.send(std::move(response));
}

void HttpApi::whoami(Call& call) {
  auto& authority = broker_.auth();
  int64_t now = wallClockMs();
  Json rules = Json::array();
  bool authenticated = false, admin = false, manage = false;
  std::optional<std::string> principal;
  if (call.identity.authenticated()) {
    auto who = authority.whoami(call.identity, now);
    if (who.ok()) {
      authenticated = true;
      principal = who.value().identity.principal;
      for (const auto& rule : who.value().rules) {
        Json actions = Json::array();
        for (auto [bit, name] : {std::pair<uint8_t, const char*>{kActPublish, "publish"},
                                 {kActConsume, "consume"},
                                 {kActManage, "manage"},
                                 {kActAdmin, "admin"}}) {
          if (rule.actions & bit) actions.push_back(name);
        }
        rules.push_back(
            Json{{"allow", rule.allow}, {"actions", actions}, {"pattern", rule.pattern}});
        if (rule.allow && (rule.actions & kActManage)) manage = true;
        if (rule.allow && (rule.actions & kActAdmin)) manage = true;
      }
      admin = authority.checkAdmin(call.identity, now).ok();
      if (admin) manage = true;
    }
  }
  call.json(200, Json{{"auth", authority.enabled()},
                      {"principal", principal ? Json(*principal) : Json(nullptr)},
                      {"authenticated", authenticated},
                      {"can", Json{{"admin", admin}, {"manage", manage}}},
                      {"rules", rules}});
}

void HttpApi::overview(Call& call) {
  if (!call.check(broker_.auth().checkValid(call.identity, wallClockMs()))) return;
  auto stats = broker_.stats();
  Json samples = Json::array();
  for (const Sample& s : history_) {
    samples.push_back(Json{{"t", s.unixMs},
                           {"publish_rate", s.publishRate},
                           {"delivery_rate", s.deliveryRate},
                           {"storage_used", s.storageUsed},
                           {"storage_limit", s.storageLimit},
                           {"connections", s.connections},
                           {"consumers", s.consumers},
                           {"commits", s.commits},
                           {"commit_p50_ms", s.commitP50Ms},
                           {"commit_p99_ms", s.commitP99Ms},
                           {"fsync_p99_ms", s.fsyncP99Ms}});
  }
  call.json(200, Json{{"stats", Json{{"version", options_.version},
                                     {"uptime_ms", stats.uptimeMs},
                                     {"topics", stats.topics},
                                     {"messages", stats.messages},
                                     {"bytes", stats.bytes},
                                     {"storage_used", stats.storageUsed},
                                     {"storage_limit", stats.storageLimit},
                                     {"connections", stats.connections},
                                     {"consumers", stats.consumers},
                                     {"published_total", stats.publishedTotal},
                                     {"delivered_total", stats.deliveredTotal},
                                     {"publish_rate", stats.publishRate},
                                     {"delivery_rate", stats.deliveryRate},
                                     {"commits", stats.commits}}},
                      {"history", Json{{"interval_ms", 1000}, {"samples", samples}}}});
}

void HttpApi::listTopics(Call& call) {
  auto& authority = broker_.auth();
  int64_t now = wallClockMs();
  if (!call.check(authority.checkValid(call.identity, now))) return;
  auto get = [&](const char* name, const std::string& fallback) {
    auto found = call.query.find(name);
    return found == call.query.end() ? fallback : found->second;
  };
  std::string filter = get("filter", "");
  if (filter.size() > core::kMaxNameLength) invalid("filter is longer than a topic name can be");
  std::string sort = get("sort", "name");
  static const std::set<std::string> kSorts = {"name",         "messages", "bytes",  "publish_rate",
                                               "lag_messages", "groups",   "created"};
  if (kSorts.count(sort) == 0) {
    invalid(
        "sort must be one of name, messages, bytes, publish_rate, lag_messages, groups, "
        "created");
  }
  std::string order = get("order", sort == "name" ? "asc" : "desc");
  if (order != "asc" && order != "desc") invalid("order must be asc or desc");
  uint64_t offset = parseNumber(get("offset", "0"), "offset", 0, UINT32_MAX);
  uint64_t limit = parseNumber(get("limit", "50"), "limit", 1, kMaxPage);

  auto topics = broker_.listTopics();
  if (!call.check(topics.status())) return;
  std::string needle = lowerAscii(filter);
  struct Row {
    const core::TopicView* topic;
    uint64_t lag = 0, consumers = 0;
  };
  std::vector<Row> rows;
  uint64_t visible = 0;
  for (const auto& topic : topics.value()) {
    if (!authority.checkAny(call.identity, kDescribe, topic.name, now).ok()) continue;
    ++visible;
    if (!needle.empty() && lowerAscii(topic.name).find(needle) == std::string::npos) continue;
    Row row{&topic};
    for (const auto& group : topic.groups) {
      row.lag = std::max(row.lag, group.lagMessages);
      row.consumers += group.consumers.size();
    }
    rows.push_back(row);
  }
  auto key = [&](const Row& row) -> std::tuple<double, const std::string&> {
    const core::TopicView& t = *row.topic;
    double value = 0;
    if (sort == "messages") value = static_cast<double>(t.messages);
    if (sort == "bytes") value = static_cast<double>(t.bytes);
    if (sort == "publish_rate") value = t.publishRate;
    if (sort == "lag_messages") value = static_cast<double>(row.lag);
    if (sort == "groups") value = static_cast<double>(t.groups.size());
    if (sort == "created") value = static_cast<double>(t.createdMs);
    return {value, t.name};
  };
  bool descending = order == "desc";
  std::sort(rows.begin(), rows.end(), [&](const Row& a, const Row& b) {
    return descending ? key(b) < key(a) : key(a) < key(b);
  });
  Json list = Json::array();
  for (size_t i = offset; i < rows.size() && i < offset + limit; ++i) {
    const core::TopicView& t = *rows[i].topic;
    list.push_back(Json{{"name", t.name},
                        {"messages", t.messages},
                        {"bytes", t.bytes},
                        {"publish_rate", t.publishRate},
                        {"published_total", t.publishedTotal},
                        {"groups", t.groups.size()},
                        {"lag_messages", rows[i].lag},
                        {"consumers", rows[i].consumers},
                        {"created", cli::formatTimestamp(t.createdMs)}});
  }
  call.json(200, Json{{"total", visible},
                      {"matched", rows.size()},
                      {"offset", offset},
                      {"limit", limit},
                      {"topics", list}});
}

void HttpApi::createTopic(std::shared_ptr<Call> call) {
  auto name = textField(call->body, "name");
  if (!name) invalid("the body needs \"name\"");
  for (const auto& item : call->body.items()) {
    if (item.key() != "name" && item.key() != "settings")
      invalid("unknown field \"" + item.key() + "\"");
  }
  auto settings = parseSettings(field(call->body, "settings"));
  if (!call->allowed(kActManage, *name)) return;
  tasks_->add(
      broker_.createTopic(*name, std::move(settings)).then([call](Result<core::TopicView> created) {
        if (!call->check(created.status())) return;
        call->json(201, topicJson(created.value()));
      }));
}

void HttpApi::topic(std::shared_ptr<Call> call, const std::string& name,
                    const std::vector<std::string>& rest) {
  const std::string& method = call->request.method;
  if (rest.empty()) {
    call->requireMethod({"GET", "DELETE"});
    if (method == "DELETE") {
      if (!call->allowed(kActManage, name)) return;
      tasks_->add(broker_.deleteTopic(name).then([call, name](Result<uint64_t> deleted) {
        if (!call->check(deleted.status())) return;
        call->json(200, Json{{"deleted", name}, {"messages", deleted.value()}});
      }));
      return;
    }
    if (!call->allowed(kDescribe, name)) return;
    auto view = broker_.describeTopic(name);
    if (!call->check(view.status())) return;
    return call->json(200, topicJson(view.value()));
  }
  if (rest.size() == 1 && rest[0] == "purge") {
    call->requireMethod({"POST"});
    if (!call->allowed(kActManage, name)) return;
    tasks_->add(broker_.purgeTopic(name).then([call](Result<uint64_t> purged) {
      if (!call->check(purged.status())) return;
      call->json(200, Json{{"purged", purged.value()}});
    }));
    return;
  }
  if (rest.size() == 1 && rest[0] == "messages") {
    call->requireMethod({"GET", "POST"});
    if (method == "POST") return publish(call, name);
    return browse(*call, name);
  }
  if (rest.size() == 1 && rest[0] == "groups") {
    call->requireMethod({"POST"});
    return createGroup(call, name);
  }
  if (rest.size() == 2 && rest[0] == "groups") return group(call, name, rest[1], "");
  if (rest.size() == 3 && rest[0] == "groups") return group(call, name, rest[1], rest[2]);
  throw BadRequest{404, "notFound", "no route " + call->request.path};
}

void HttpApi::browse(Call& call, const std::string& name) {
  if (!call.allowed(kActConsume, name)) return;
  auto view = broker_.describeTopic(name);
  if (!call.check(view.status())) return;
  uint64_t limit = 50;
  if (auto found = call.query.find("limit"); found != call.query.end())
    limit = parseNumber(found->second, "limit", 1, kMaxBrowse);
  Offset from = view.value().firstOffset;
  auto fromOffset = call.query.find("from_offset");
  auto fromTime = call.query.find("from_time");
  if (fromOffset != call.query.end() && fromTime != call.query.end())
    invalid("give from_offset or from_time, not both");
  if (fromOffset != call.query.end()) {
    from = parseNumber(fromOffset->second, "from_offset", 0, UINT64_MAX);
  } else if (fromTime != call.query.end()) {
    auto at = static_cast<int64_t>(parseNumber(fromTime->second, "from_time", 0, INT64_MAX));
    // Timestamps grow with offsets: the first message at or after `at`, by halving.
    Offset low = view.value().firstOffset, high = view.value().lastOffset + 1;
    while (low < high) {
      Offset middle = low + (high - low) / 2;
      auto one = broker_.peek(name, middle, 1);
      if (!call.check(one.status())) return;
      if (one.value().empty()) {
        high = middle;
      } else if (one.value()[0].timestampMs < at) {
        low = one.value()[0].offset + 1;
      } else {
        high = middle;
      }
    }
    from = low;
  }
  auto messages = broker_.peek(name, from, static_cast<uint32_t>(limit));
  if (!call.check(messages.status())) return;
  Json list = Json::array();
  Offset next = from;
  for (const auto& message : messages.value()) {
    list.push_back(messageJson(message, name));
    next = message.offset + 1;
  }
  call.json(200, Json{{"messages", list}, {"next_offset", next}});
}

void HttpApi::publish(std::shared_ptr<Call> call, const std::string& name) {
  const Json* list = field(call->body, "messages");
  if (!list || !list->is_array() || list->empty())
    invalid("the body needs \"messages\", a non-empty list");
  if (!call->check(broker_.checkBatchCount(list->size()))) return;
  std::vector<MessageData> messages;
  messages.reserve(list->size());
  for (size_t i = 0; i < list->size(); ++i)
    messages.push_back(parseMessage((*list)[i], "message " + std::to_string(i + 1)));
  if (!call->allowed(kActPublish, name)) return;
  tasks_->add(broker_.publish(name, std::move(messages))
                  .then([call](Result<std::vector<PublishAckData>> acks) {
                    if (!call->check(acks.status())) return;
                    Json out = Json::array();
                    for (const auto& ack : acks.value())
                      out.push_back(Json{{"offset", ack.offset}, {"duplicate", ack.duplicate}});
                    call->json(200, Json{{"acks", out}});
                  }));
}

void HttpApi::createGroup(std::shared_ptr<Call> call, const std::string& topic) {
  auto name = textField(call->body, "name");
  if (!name) invalid("the body needs \"name\"");
  core::StartAt start = parseStart(field(call->body, "start"));
  std::string ordering = textField(call->body, "ordering").value_or("none");
  if (ordering != "none" && ordering != "key") invalid("ordering must be \"none\" or \"key\"");
  auto filter = textList(call->body, "filter", core::kMaxPatternsPerGroup);
  if (!call->allowed(kActManage, topic)) return;
  tasks_->add(broker_.createGroup(topic, *name, start, ordering == "key", std::move(filter))
                  .then([call](Result<core::GroupView> created) {
                    if (!call->check(created.status())) return;
                    call->json(201, cli::groupJsonOf(created.value()));
                  }));
}

void HttpApi::group(std::shared_ptr<Call> call, const std::string& topic, const std::string& group,
                    const std::string& action) {
  const std::string& method = call->request.method;
  if (action.empty()) {
    call->requireMethod({"GET", "DELETE"});
    if (method == "DELETE") {
      if (!call->allowed(kActManage, topic)) return;
      tasks_->add(broker_.deleteGroup(topic, group).then([call, group](Result<uint64_t> gone) {
        if (!call->check(gone.status())) return;
        call->json(200, Json{{"deleted", group}, {"pending", gone.value()}});
      }));
      return;
    }
    if (!call->allowed(kDescribe, topic)) return;
    auto view = broker_.describeGroup(topic, group);
    if (!call->check(view.status())) return;
    return call->json(200, cli::groupJsonOf(view.value()));
  }
  if (action == "reset") {
    call->requireMethod({"POST"});
    const Json* to = field(call->body, "to");
    if (!to) invalid("the body needs \"to\"");
    core::StartAt at = parseStart(to);
    if (!call->allowed(kActManage, topic)) return;
    tasks_->add(broker_.resetGroup(topic, group, at).then([call](Result<core::GroupView> reset) {
      if (!call->check(reset.status())) return;
      call->json(200, cli::groupJsonOf(reset.value()));
    }));
    return;
  }
  if (action == "fetch") {
    call->requireMethod({"POST"});
    return fetch(call, topic, group);
  }
  if (action == "ack" || action == "nack") {
    call->requireMethod({"POST"});
    return settle(call, topic, group, action == "ack");
  }
  throw BadRequest{404, "notFound", "no route " + call->request.path};
}

HttpApi::Consumer* HttpApi::consumerFor(Call& call, uint64_t id, const std::string& topic,
                                        const std::string& group) {
  auto found = consumers_.find(id);
  if (found == consumers_.end() || found->second->topic != topic || found->second->group != group ||
      found->second->principal != call.identity.principal ||
      found->second->credential != call.identity.credential) {
    throw BadRequest{404, "notFound",
                     "no HTTP consumer " + std::to_string(id) + " of group \"" + group +
                         "\" for this credential (closed after 60 s unused?)"};
  }
  if (auto why = found->second->sink.closedWith()) {
    Status reason = *why;
    dropConsumer(id);
    call.fail(reason);
    return nullptr;
  }
  return found->second.get();
}

void HttpApi::fetch(std::shared_ptr<Call> call, const std::string& topic,
                    const std::string& group) {
  const Json& body = call->body;
  for (const auto& item : body.items()) {
    static const std::set<std::string> kKnown = {"max", "timeout_ms", "consumer", "ack_timeout_ms",
                                                 "start"};
    if (kKnown.count(item.key()) == 0) invalid("unknown field \"" + item.key() + "\"");
  }
  auto max = static_cast<uint32_t>(numberField(body, "max", 10, kMaxFetch));
  if (max == 0) invalid("\"max\" must be at least 1");
  auto timeoutMs = static_cast<uint32_t>(numberField(body, "timeout_ms", 1000, kMaxFetchWaitMs));
  uint64_t ackTimeoutMs = numberField(body, "ack_timeout_ms", 0, UINT32_MAX);
  core::StartAt start = parseStart(field(body, "start"));
  if (!call->allowed(kActConsume, topic)) return;
  int64_t now = wallClockMs();
  Consumer* consumer = nullptr;
  if (field(body, "consumer")) {
    uint64_t id = numberField(body, "consumer", 0, UINT64_MAX);
    consumer = consumerFor(*call, id, topic, group);
    if (consumer == nullptr) return;
    if (consumer->fetching) {
      throw BadRequest{409, "groupBusy",
                       "HTTP consumer " + std::to_string(id) + " is already fetching"};
    }
  } else {
    if (consumers_.size() >= kMaxHttpConsumers) {
      return call->fail(
          Status(Code::kLimitExceeded, "the broker holds " + std::to_string(kMaxHttpConsumers) +
                                           " HTTP consumers; reuse one (\"consumer\")"));
    }
    auto made = std::make_unique<Consumer>();
    auto id = broker_.subscribe(topic, group, start, 0, ackTimeoutMs, made->sink,
                                "http " + call->request.peer);
    if (!call->check(id.status())) return;
    made->id = id.value();
    made->topic = topic;
    made->group = group;
    made->principal = call->identity.principal;
    made->credential = call->identity.credential;
    uint64_t consumerId = made->id;
    made->watch = broker_.auth().watch(
        call->identity, kActConsume, topic,
        [this, consumerId](const Status& why) { broker_.closeConsumer(consumerId, why); });
    consumer = made.get();
    consumers_[consumerId] = std::move(made);
  }
  consumer->fetching = true;
  consumer->lastUsedMs = now;
  uint64_t id = consumer->id;
  // Whatever is ready, up to max, as soon as there is any: a long poll.
  tasks_->add(broker_.fetch(id, max, timeoutMs, 1)
                  .then([this, call, id, topic](Result<std::vector<core::Delivery>> fetched) {
                    auto found = consumers_.find(id);
                    if (found != consumers_.end()) {
                      found->second->fetching = false;
                      found->second->lastUsedMs = wallClockMs();
                    }
                    if (!call->check(fetched.status())) return;
                    Json list = Json::array();
                    for (const auto& delivery : fetched.value()) {
                      Json message = messageJson(delivery.message, topic);
                      message["deliveries"] = delivery.deliveries;
                      message["delivery_id"] = delivery.deliveryId;
                      list.push_back(std::move(message));
                    }
                    call->json(200, Json{{"consumer", id}, {"messages", list}});
                  }));
}

void HttpApi::settle(std::shared_ptr<Call> call, const std::string& topic, const std::string& group,
                     bool ack) {
  const Json& body = call->body;
  if (!field(body, "consumer")) invalid("the body needs \"consumer\" (from fetch)");
  uint64_t id = numberField(body, "consumer", 0, UINT64_MAX);
  const Json* list = field(body, "messages");
  if (!list || !list->is_array() || list->empty())
    invalid("the body needs \"messages\", a non-empty list of {\"offset\", \"delivery_id\"}");
  if (list->size() > kMaxFetch)
    invalid("at most " + std::to_string(kMaxFetch) + " messages at once");
  uint32_t delayMs = 0;
  if (!ack) delayMs = static_cast<uint32_t>(numberField(body, "delay_ms", 0, UINT32_MAX));
  std::vector<Offset> offsets;
  std::vector<uint64_t> deliveryIds;
  bool anyId = false;
  for (const auto& entry : *list) {
    if (!entry.is_object()) invalid("each of \"messages\" is {\"offset\", \"delivery_id\"}");
    if (!field(entry, "offset")) invalid("each of \"messages\" needs \"offset\"");
    offsets.push_back(numberField(entry, "offset", 0, UINT64_MAX));
    deliveryIds.push_back(numberField(entry, "delivery_id", 0, UINT64_MAX));
    anyId = anyId || deliveryIds.back() != 0;
  }
  if (!anyId) deliveryIds.clear();
  if (!call->allowed(kActConsume, topic)) return;
  Consumer* consumer = consumerFor(*call, id, topic, group);
  if (consumer == nullptr) return;
  consumer->lastUsedMs = wallClockMs();
  auto settled = ack ? broker_.ack(id, std::move(offsets), std::move(deliveryIds))
                     : broker_.nack(id, std::move(offsets), delayMs, std::move(deliveryIds));
  tasks_->add(settled.then([call](std::vector<core::OffsetFailure> failures) {
    Json out = Json::array();
    for (const auto& failure : failures) {
      out.push_back(Json{{"offset", failure.offset},
                         {"code", codeName(failure.status.code())},
                         {"message", failure.status.message()}});
    }
    call->json(200, Json{{"failures", out}});
  }));
}

}  // namespace sluice::admin
