#include <algorithm>
#include <string>
#include <utility>

#include "connection.h"
#include "producer_state.h"

namespace sluice {

namespace {

Result<std::shared_ptr<detail::Connection>> connectOne(std::string_view hostPort,
                                                       const Options& options) {
  try {
    return detail::Connection::open(hostPort, options);
  } catch (const std::exception& e) {
    // std::thread could not start, or memory ran out.
    return Result<std::shared_ptr<detail::Connection>>(
        Error{ErrorCode::kInternal, std::string("could not start the client: ") + e.what()});
  }
}

}  // namespace

Result<Client> Client::connect(std::string_view hostPort, Options options) {
  if (hostPort.find(',') != std::string_view::npos) {
    // A cluster's brokers: the first that accepts is the leader (followers serve no clients).
    std::string refusals;
    size_t start = 0;
    while (start <= hostPort.size()) {
      size_t comma = std::min(hostPort.find(',', start), hostPort.size());
      std::string_view one = hostPort.substr(start, comma - start);
      start = comma + 1;
      auto connection = connectOne(one, options);
      if (connection.ok()) return Client(std::move(connection).value());
      if (connection.error().code != ErrorCode::kConnectFailed) return connection.error();
      refusals += (refusals.empty() ? "" : "; ") + connection.error().message;
    }
    return Error{ErrorCode::kConnectFailed,
                 "no broker of " + std::string(hostPort) + " accepted the connection: " + refusals};
  }
  Result<std::shared_ptr<detail::Connection>> connection = [&] {
    try {
      return detail::Connection::open(hostPort, options);
    } catch (const std::exception& e) {
      // std::thread could not start, or memory ran out.
      return Result<std::shared_ptr<detail::Connection>>(
          Error{ErrorCode::kInternal, std::string("could not start the client: ") + e.what()});
    }
  }();
  if (!connection.ok()) return connection.error();
  return Client(std::move(connection).value());
}

Client::Client(std::shared_ptr<detail::Connection> connection)
    : connection_(std::move(connection)) {}

Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&&) noexcept = default;
Client::~Client() = default;

Producer Client::producer(ProducerOptions options) {
  Producer producer;
  producer.state_ = std::make_shared<Producer::State>(connection_, options);
  return producer;
}

Admin Client::admin() {
  Admin admin;
  admin.connection_ = connection_;
  return admin;
}

bool Client::connected() const {
  return connection_ && connection_->connected();
}

void Client::close() {
  if (connection_) connection_->close();
}

}  // namespace sluice
