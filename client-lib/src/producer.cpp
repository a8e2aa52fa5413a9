#include <type_traits>
#include <utility>

#include "producer_io.h"
#include "producer_state.h"

namespace sluice {
namespace {

Error noConnection() {
  return Error{ErrorCode::kDisconnected,
               "this producer has no connection (made from a "
               "default-constructed or moved-from object)"};
}

// Hands `message` to producer `id`'s queue on the I/O thread: for a topic (PublishAck) or a
// subject (RoutedAck).
template <typename Ack>
void enqueue(detail::Connection& connection, uint64_t id, const ProducerOptions& options,
             std::string_view name, OutgoingMessage message, detail::Completion<Ack> completion) {
  // shared_ptr: a Command must be copyable.
  auto done = std::make_shared<detail::Completion<Ack>>(std::move(completion));
  auto payload = std::make_shared<OutgoingMessage>(std::move(message));
  connection.post([id, options, name = std::string(name), payload = std::move(payload),
                   done = std::move(done)](detail::IoState& io) mutable {
    auto& producer = io.producers[id];
    if (!producer) producer = kj::heap<detail::ProducerIo>(io, id, options);
    if constexpr (std::is_same_v<Ack, RoutedAck>) {
      producer->enqueueRouted(std::move(name), std::move(*payload), std::move(*done));
    } else {
      producer->enqueue(std::move(name), std::move(*payload), std::move(*done));
    }
  });
  // If the connection is closed, post() destroyed the command, and with it `done`, which
  // completed with kDisconnected.
}

}  // namespace

Producer::State::State(std::shared_ptr<detail::Connection> connection, ProducerOptions options)
    : connection(std::move(connection)),
      id(this->connection ? this->connection->newId() : 0),
      options(options) {}

Producer::State::~State() {
  if (!connection) return;
  connection->post([id = id](detail::IoState& io) {
    auto it = io.producers.find(id);
    if (it != io.producers.end()) it->second->release();
  });
}

Result<PublishAck> Producer::publish(std::string_view topic, std::string_view payload) {
  OutgoingMessage message;
  message.payload = std::string(payload);
  return publish(topic, std::move(message));
}

Result<PublishAck> Producer::publish(std::string_view topic, OutgoingMessage message) {
  std::vector<OutgoingMessage> one;
  one.push_back(std::move(message));
  auto acks = publishBatch(topic, std::move(one));
  if (!acks.ok()) return acks.error();
  return acks.value().front();
}

Result<std::vector<PublishAck>> Producer::publishBatch(std::string_view topic,
                                                       std::vector<OutgoingMessage> messages) {
  if (!state_ || !state_->connection) return noConnection();
  // shared_ptr: a Command must be copyable, and the messages may be large.
  auto batch = std::make_shared<std::vector<OutgoingMessage>>(std::move(messages));
  return state_->connection->call<std::vector<PublishAck>>("publish", [topic = std::string(topic),
                                                                       batch](detail::IoState& io) {
    auto request = io.broker.publishRequest();
    request.setTopic(detail::asText(topic));
    auto list = request.initMessages(static_cast<unsigned>(batch->size()));
    for (unsigned i = 0; i < batch->size(); ++i)
      detail::toWire((*batch)[i], list[i]);
    size_t count = batch->size();
    return request.send().then([count](capnp::Response<wire::Broker::PublishResults>&& response) {
      return detail::fromWire(response.getResult(), count);
    });
  });
}

Result<RoutedAcks> Producer::publishSubject(std::string_view subject,
                                            std::vector<OutgoingMessage> messages) {
  if (!state_ || !state_->connection) return noConnection();
  auto batch = std::make_shared<std::vector<OutgoingMessage>>(std::move(messages));
  return state_->connection->call<RoutedAcks>(
      "publishSubject", [subject = std::string(subject), batch](detail::IoState& io) {
        auto request = io.broker.publishSubjectRequest();
        request.setSubject(detail::asText(subject));
        auto list = request.initMessages(static_cast<unsigned>(batch->size()));
        for (unsigned i = 0; i < batch->size(); ++i)
          detail::toWire((*batch)[i], list[i]);
        size_t count = batch->size();
        return request.send().then(
            [count](capnp::Response<wire::Broker::PublishSubjectResults>&& response) {
              return detail::fromWire(response.getResult(), count);
            });
      });
}

std::future<Result<PublishAck>> Producer::publishAsync(std::string_view topic,
                                                       OutgoingMessage message) {
  detail::Completion<PublishAck> completion;
  auto future = completion.future();
  if (!state_ || !state_->connection) {
    completion.complete(noConnection());
  } else {
    enqueue(*state_->connection, state_->id, state_->options, topic, std::move(message),
            std::move(completion));
  }
  return future;
}

void Producer::publishAsync(std::string_view topic, OutgoingMessage message,
                            std::function<void(Result<PublishAck>)> done) {
  detail::Completion<PublishAck> completion(std::move(done));
  if (!state_ || !state_->connection) {
    completion.complete(noConnection());
    return;
  }
  enqueue(*state_->connection, state_->id, state_->options, topic, std::move(message),
          std::move(completion));
}

std::future<Result<RoutedAck>> Producer::publishSubjectAsync(std::string_view subject,
                                                             OutgoingMessage message) {
  detail::Completion<RoutedAck> completion;
  auto future = completion.future();
  if (!state_ || !state_->connection) {
    completion.complete(noConnection());
  } else {
    enqueue(*state_->connection, state_->id, state_->options, subject, std::move(message),
            std::move(completion));
  }
  return future;
}

void Producer::publishSubjectAsync(std::string_view subject, OutgoingMessage message,
                                   std::function<void(Result<RoutedAck>)> done) {
  detail::Completion<RoutedAck> completion(std::move(done));
  if (!state_ || !state_->connection) {
    completion.complete(noConnection());
    return;
  }
  enqueue(*state_->connection, state_->id, state_->options, subject, std::move(message),
          std::move(completion));
}

Result<void> Producer::flush() {
  if (!state_ || !state_->connection) return noConnection();
  auto& connection = *state_->connection;
  if (auto problem = connection.checkMayBlock("flush")) return *problem;
  auto done = std::make_shared<detail::Completion<void>>();
  auto future = done->future();
  connection.post([id = state_->id, done = std::move(done)](detail::IoState& io) {
    auto it = io.producers.find(id);
    if (it == io.producers.end()) {
      done->complete(Result<void>());  // Nothing was ever queued, or all of it is answered.
    } else {
      it->second->flush(std::move(*done));
    }
  });
  return connection.await(future, "flush");
}

}  // namespace sluice
