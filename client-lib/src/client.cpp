#include <algorithm>
#include <string>
#include <utility>

#include "connection.h"
#include "producer_state.h"

namespace sluice {

Result<Client> Client::connect(std::string_view hostPort, Options options) {
  // Brokers separated by commas: the first that serves (a cluster's follower names its leader,
  // and the connection goes there); the connection tries them again whenever it is lost.
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
