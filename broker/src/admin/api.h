#pragma once

// The JSON HTTP API (/api/v1, docs/http-api.md) and the web console's files (/ui) on the admin
// endpoint. Requests come from the admin thread; `handle` runs on the KJ thread (the broker's),
// where every answer is built, and hands the answer back through the request's reply.
//
// The API keeps, itself: a short history of broker-wide samples (one a second, 15 minutes) for
// the console's charts, and the HTTP consumers that fetch, ack and nack name (closed after 60 s
// unused). Thread: kj.

#include <kj/async.h>
#include <kj/timer.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "admin/http_server.h"
#include "common/histogram.h"
#include "core/broker.h"

namespace sluice::admin {

struct ApiOptions {
  std::string version;
  // Host header values (without the port) that browsers may use to reach the endpoint.
  std::vector<std::string> allowedHosts;
  // The commit and fsync latency histograms (seconds), read for the history.
  std::function<HistogramSnapshot()> commitSeconds;
  std::function<HistogramSnapshot()> fsyncSeconds;
  int64_t consumerIdleMs = 60000;
  size_t historySamples = 900;
};

// One second of the broker, for the console's charts.
struct Sample {
  int64_t unixMs = 0;
  double publishRate = 0, deliveryRate = 0;
  uint64_t storageUsed = 0, storageLimit = 0, connections = 0, consumers = 0, commits = 0;
  double commitP50Ms = 0, commitP99Ms = 0, fsyncP99Ms = 0;
};

// The quantile `q` (0..1) of the samples between two snapshots of one histogram, in the
// snapshots' unit, interpolated within its bucket as Prometheus does; 0 without samples.
double quantileBetween(const HistogramSnapshot& before, const HistogramSnapshot& after, double q);

class HttpApi final : private kj::TaskSet::ErrorHandler {
 public:
  HttpApi(core::Broker& broker, kj::Timer& timer, ApiOptions options);
  ~HttpApi();

  // Whether `path` is the API's or the console's (the rest of the endpoint stays elsewhere).
  static bool owns(const std::string& path);
  // Answers one request through `reply` (now or after a commit or a fetch's wait).
  void handle(HttpRequest request, HttpReply reply);
  // Starts sampling the history and closing idle HTTP consumers.
  void start();
  // Closes every HTTP consumer and answers what still waits with shuttingDown.
  void shutdown();

  const std::deque<Sample>& history() const { return history_; }

 private:
  struct Call;
  struct Consumer;
  class Sink;

  void taskFailed(kj::Exception&& exception) override;
  kj::Promise<void> tick();
  void sample();
  void closeIdleConsumers(int64_t nowMs);
  void dropConsumer(uint64_t id);
  // The HTTP consumer `id` of topic/group made by this call's credential; 404 otherwise. Null
  // (and the call answered with the reason) when the broker closed it meanwhile.
  Consumer* consumerFor(Call& call, uint64_t id, const std::string& topic,
                        const std::string& group);

  void route(std::shared_ptr<Call> call);
  void serveUi(Call& call, const std::string& path);
  void whoami(Call& call);
  void overview(Call& call);
  void listTopics(Call& call);
  void createTopic(std::shared_ptr<Call> call);
  void topic(std::shared_ptr<Call> call, const std::string& name,
             const std::vector<std::string>& rest);
  void browse(Call& call, const std::string& name);
  void publish(std::shared_ptr<Call> call, const std::string& name);
  void createGroup(std::shared_ptr<Call> call, const std::string& name);
  void group(std::shared_ptr<Call> call, const std::string& topic, const std::string& group,
             const std::string& action);
  void fetch(std::shared_ptr<Call> call, const std::string& topic, const std::string& group);
  void settle(std::shared_ptr<Call> call, const std::string& topic, const std::string& group,
              bool ack);

  core::Broker& broker_;
  kj::Timer& timer_;
  ApiOptions options_;
  kj::Own<kj::TaskSet> tasks_;
  std::deque<Sample> history_;
  uint64_t lastPublished_ = 0, lastDelivered_ = 0, lastCommits_ = 0;
  int64_t lastSampleMs_ = 0;
  HistogramSnapshot lastCommit_, lastFsync_;
  std::map<uint64_t, std::unique_ptr<Consumer>> consumers_;
  std::map<uint64_t, std::shared_ptr<Call>> open_;  // Calls still to answer, for shutdown.
  uint64_t nextCall_ = 1;
  bool stopped_ = false;
};

}  // namespace sluice::admin
