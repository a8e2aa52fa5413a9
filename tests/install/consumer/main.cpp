// Uses the installed libsluice: a plain function, and a connection attempt that goes through
// the library's I/O thread (and so through Cap'n Proto and KJ) to a port nobody listens on.

#include <sluice/sluice.h>

#include <chrono>
#include <cstdio>
#include <string>

int main() {
  std::string name = sluice::errorCodeName(sluice::ErrorCode::kTopicNotFound);
  sluice::Options options;
  options.connectTimeout = std::chrono::seconds(5);
  auto client = sluice::Client::connect("127.0.0.1:1", options);
  if (name != "topicNotFound" || client.ok() ||
      client.error().code != sluice::ErrorCode::kConnectFailed) {
    std::printf("unexpected: %s %s\n", name.c_str(),
                client.ok() ? "connected" : client.error().toString().c_str());
    return 1;
  }
  std::printf("sluice consumer ok: %s, %s\n", name.c_str(),
              sluice::errorCodeName(client.error().code));
  return 0;
}
